/* router_share.c — the router's mask choice at the 9B shape as a share of
 * TTFT (see router_share.h). */
#include "router_share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "balancer.h"
#include "cluster.h"
#include "ifp.pb-c.h"
#include "predict.h"
#include "stagerun.h"
#include "synth.h"

#define N_CLUSTERS 4

/* Median 56-layer prefill of a dense stage of shape on a 512-token prompt. */
static int prefill56(const char *shape, int layers, int runs, double *out, ifp_err_t *err) {
    ifp_model_t *m = NULL;
    sr_stage_t *s = NULL;
    char label[32];
    snprintf(label, sizeof label, "dense-%s x%d", shape, layers);
    bl_log("%s: generating the stage", label);
    int rc = sr_synth(shape, layers, BR_SHARE_LONG + 1, 1, &m, err);
    double t = 0;
    if (!rc) rc = sr_new(m, BR_SHARE_LONG, 1, 0, 1, &s, err);
    if (!rc) rc = sr_measure_prefill(s, label, 0, runs, &t, err);
    sr_free(&s);
    ifp_model_free(&m);
    *out = IFP_SYNTH_LAYERS * t / layers;
    return rc;
}

/* 4 clusters of 2 random K-masks each (unions of about 1.5 K per layer). */
static int random_table(int L, int F, int K, ifp_cluster_table_t **out, ifp_err_t *err) {
    enum { N = 2 * N_CLUSTERS };
    ifp_mask_t *m[N] = {0};
    int32_t *kept = malloc((size_t)K * sizeof *kept);
    int medoid[N_CLUSTERS], assign[N], rc = kept ? IFP_OK : ifp_errf(err, IFP_ENOMEM, "out of memory");
    uint64_t s = 0xB0u;
    for (int i = 0; i < N && !rc; i++) {
        if (!(m[i] = ifp_mask_new(L, F))) rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        for (int l = 0; l < L && !rc; l++) {
            bl_random_kept(kept, F, K, &s);
            rc = ifp_mask_set_layer(m[i], l, kept, K, err);
        }
        assign[i] = i / 2;
        if (i % 2 == 0) medoid[i / 2] = i;
    }
    if (!rc) rc = ifp_cluster_table_build((const ifp_mask_t *const *)m, N, N_CLUSTERS, medoid, assign, 0, out, err);
    for (int i = 0; i < N; i++) ifp_mask_destroy(&m[i]);
    free(kept);
    return rc;
}

/* Submits j and waits for it to come back from the pool. */
static rt_job_t *run_job(rt_predict_t *pool, rt_job_t *j) {
    rt_predict_submit(pool, j);
    for (;;) {
        zmq_pollitem_t it = {rt_predict_socket(pool), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 1000);
        rt_job_t *done = rt_predict_collect(pool);
        if (done) return done;
    }
}

int br_measure_share(int runs, int layers, const char *tmpdir, br_share_t *s, ifp_err_t *err) {
    memset(s, 0, sizeof *s);
    s->runs = runs, s->layers = layers;
    int rc = prefill56("9b", layers, runs, &s->prefill56_9b, err);
    if (!rc) rc = prefill56("3b", layers, runs, &s->prefill56_3b, err);
    if (rc) return rc;
    ifp_synth_predictor_t sp;
    if ((rc = ifp_synth_predictor_default("9b", &sp, err))) return rc;
    sp.max_prompt = BR_SHARE_LONG;
    sp.backbone.ctx = BR_SHARE_LONG;
    s->params = (double)ifp_synth_predictor_params(&sp);
    char path[4200];
    snprintf(path, sizeof path, "%s/ifp-bench-router-pred-%ld.gguf", tmpdir, (long)getpid());
    bl_log("9b predictor: writing %.2f GB to %s", s->params * 4 / 1e9, path);
    if ((rc = ifp_synth_predictor_write(&sp, path, err))) return rc;
    ifp_cluster_table_t *t = NULL;
    rt_predict_t *pool = NULL;
    rt_balancer_t *bal = NULL;
    void *zctx = zmq_ctx_new();
    int L = sp.target_layers, F = sp.target_ffn;
    rc = random_table(L, F, sp.keep, &t, err);
    rt_predict_params_t pp = {.predictor = path, .predictor_wtype = IFP_WTYPE_ASIS, .clusters = t, .n_layers = L, .d_ffn = F, .threads = 1, .zctx = zctx};
    if (!rc) rc = rt_predict_new(&pp, &pool, err);
    unlink(path); /* the mapping stays valid */
    rt_balancer_params_t bp = rt_balancer_default_params();
    if (!rc && !(bal = rt_balancer_new(&bp, L, F, N_CLUSTERS))) rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int c = 0; c < N_CLUSTERS && !rc; c++) {
        char name[8];
        snprintf(name, sizeof name, "g%d", c);
        if (rt_balancer_add_group(bal, name, c, t->c[c].uni, 8) < 0) rc = ifp_errf(err, IFP_EINVAL, "balancer");
        rt_heartbeat_t hb = {.incarnation = 1, .slots = 8, .free_slots = 8, .stages = 1};
        rt_balancer_heartbeat(bal, c, 0, &hb);
    }
    double over[2][16], work[2][16], pick[16];
    uint64_t seed = 9;
    fprintf(stderr, "  router overhead at 9b (submit -> job back -> pick), runs:");
    for (int run = 0; run < runs && !rc; run++) {
        for (int v = 0; v < 2 && !rc; v++) {
            int n = v ? BR_SHARE_SHORT : BR_SHARE_LONG;
            rt_job_t *j = rt_job_new(n);
            if (!j) {
                rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
                break;
            }
            j->ids[0] = 1; /* BOS */
            for (int i = 1; i < n; i++) j->ids[i] = 3 + (int32_t)(bl_rand(&seed) % (uint64_t)(sp.backbone.vocab - 3));
            j->n_ids = n;
            j->mode = IFP__MASK_MODE__MASK_INPUT;
            j->need_mask = 1;
            double t0 = bl_now();
            j = run_job(pool, j);
            double t1 = bl_now();
            if (j->rc) {
                rc = ifp_errf(err, j->rc, "%s", j->err);
            } else {
                double cov[N_CLUSTERS];
                for (int c = 0; c < N_CLUSTERS; c++) cov[c] = j->cov[c]; /* group c holds cluster c */
                rt_pick_t p;
                rt_balancer_pick_cov(bal, cov, 0, &p);
                double t2 = bl_now();
                over[v][run] = (t2 - t0) * 1e3;
                work[v][run] = j->work_ms;
                if (!v) pick[run] = (t2 - t1) * 1e6;
                fprintf(stderr, " %d tok %.0f ms (worker %.0f, pick %.1f us);", n, over[v][run], work[v][run],
                        (t2 - t1) * 1e6);
            }
            rt_job_free(j);
        }
    }
    fputc('\n', stderr);
    if (!rc)
        for (int v = 0; v < 2; v++) {
            s->over_ms[v] = bl_median(over[v], runs);
            s->work_ms[v] = bl_median(work[v], runs);
        }
    if (!rc) s->pick_us = bl_median(pick, runs);
    rt_balancer_destroy(&bal);
    rt_predict_destroy(&pool);
    ifp_cluster_table_destroy(&t);
    zmq_ctx_term(zctx);
    return rc;
}

static double share(double over_ms, double prefill_s) { return over_ms / (over_ms + prefill_s * 1e3); }

void br_print_share(const br_share_t *s) {
    printf("\nchoosing the mask at the 9b shape (predictor %.0fM params, the router's pool + balancer), median of %d:\n",
           s->params / 1e6, s->runs);
    printf("%-14s %12s %10s %10s %14s %8s %12s %8s\n", "prompt tokens", "overhead ms", "worker ms", "pick us",
           "dense 9b TTFT", "share", "IFP TTFT", "share");
    for (int v = 0; v < 2; v++)
        printf("%-14d %12.1f %10.1f %10.2f %13.1fs %7.2f%% %11.1fs %7.2f%%\n", v ? BR_SHARE_SHORT : BR_SHARE_LONG,
               s->over_ms[v], s->work_ms[v], s->pick_us, s->prefill56_9b + s->over_ms[v] / 1e3,
               100 * share(s->over_ms[v], s->prefill56_9b), s->prefill56_3b + s->over_ms[v] / 1e3,
               100 * share(s->over_ms[v], s->prefill56_3b));
    printf("(prefill of %d tokens, 56 layers = 56 x a %d-layer stage: dense 9b %.1f s, 3b %.1f s)\n", BR_SHARE_LONG,
           s->layers, s->prefill56_9b, s->prefill56_3b);
}

void br_share_csv(const br_share_t *s, bl_csv_t *csv) {
    for (int v = 0; v < 2; v++) {
        int n = v ? BR_SHARE_SHORT : BR_SHARE_LONG;
        bl_csv_row(csv, "overhead_9b_p%d,1,%.3f,ms,-", n, s->over_ms[v]);
        bl_csv_row(csv, "share_of_ttft_9b_p%d,1,%.5f,ratio,-", n, share(s->over_ms[v], s->prefill56_9b));
        bl_csv_row(csv, "share_of_ttft_ifp9b3b_p%d,1,%.5f,ratio,-", n, share(s->over_ms[v], s->prefill56_3b));
    }
    bl_csv_row(csv, "pick,1,%.3f,us,-", s->pick_us);
    bl_csv_row(csv, "prefill56_9b,1,%.3f,s,-", s->prefill56_9b);
    bl_csv_row(csv, "prefill56_3b,1,%.3f,s,-", s->prefill56_3b);
}

void br_share_headline(const br_share_t *s, bl_headline_t *h) {
    bl_head_add(h, "router_share_of_ttft_9b", "%.4f", share(s->over_ms[0], s->prefill56_9b));
    bl_head_add(h, "router_share_of_ttft_9b_p128", "%.4f", share(s->over_ms[1], s->prefill56_9b));
    bl_head_add(h, "router_share_of_ttft_ifp9b3b", "%.4f", share(s->over_ms[0], s->prefill56_3b));
    bl_head_add(h, "router_overhead_ms_9b", "%.1f", s->over_ms[0]);
}
