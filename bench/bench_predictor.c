/* bench_predictor.c — the cost of choosing a mask (predictor + routing)
 * against the prefill it precedes, as a share of time-to-first-token.
 *
 * Predictor (core/synth.h ifp_synth_predictor_default): the paper's
 * proportions — a Llama backbone of d 1024, 16 layers, 16 heads of 64,
 * d_ffn 4096, vocab 32000 (301M parameters with the embedding; the paper's
 * is 302M) and a head fc1 1024 -> 128, fc2 128 -> 56 x d_ffn — with random
 * weights, written as a predictor GGUF to a temporary file (/dev/shm when
 * writable) and loaded by ifp_predictor_load, so the timed calls are the
 * serving path's own (the backbone's matrices in each type of --types, default
 * f32 and bf16: ifp_predictor_load_typed; the head stays f32; the types run
 * alternating, run for run, on the same prompt):
 *   scores   ifp_predictor_scores on [BOS] + P-1 prompt ids (P = 512)
 *   top-K    ifp_predictor_mask_from_scores (K = 6656 of d_ffn, 56 layers): a
 *            selection per layer; the full sort it replaced (a new mask, then
 *            ifp_mask_set_topk_ref per layer) is timed on the same scores
 *            right after it and must give the same mask ("sort" below)
 *   route    the router's balancer decision: ifp_mask_coverage of the mask
 *            against 4 cluster unions (random, 1.25 K per layer), the best
 *   submask  ifp_mask_submask against that union (what the stages do when a
 *            request is set up; reported, not counted in the share)
 * Prefill: a dense stage of N layers of each shape (bench/stagerun.h) runs one
 * P-token prompt; the 56-layer prefill is composed as 56 x (stage time / N).
 * The LM head of the last row (~20 ms) and the embedding lookups are left out.
 *   share(X)      = overhead / (overhead + prefill56(dense X))
 *   share(ifp X)  = overhead / (overhead + prefill56(dense 3b)): the served
 *                   model is X compacted to K, which computes as the 3b shape
 * (the prefills are the f32 model's for every predictor type).
 * Output: table, CSV (--csv), one headline line: the unsuffixed keys for the
 * first type, pred_share_9b_<type> / pred_ms_9b_<type> for each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "kernels.h"
#include "mask.h"
#include "predictor.h"
#include "stagerun.h"
#include "synth.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#define BP_DEFAULT_CSV IFP_SOURCE_DIR "/bench/results/predictor.csv"

enum { BP_CLUSTERS = 4, BP_MAX_RUNS = 64, BP_SHORT = 128, BP_MAX_TYPES = 4 };

typedef struct {
    int runs, threads, prompt, layers, quick;
    const char *csv, *tmpdir;
    int wtypes[BP_MAX_TYPES];        /* predictor backbone types (ifp_ggml_type_t) */
    const char *type_names[BP_MAX_TYPES];
    int n_types;
} bp_opts_t;

typedef struct {
    const char *shape, *type;
    double params, head_params, gflop;
    double scores_s, topk_s, route_s, submask_s; /* medians */
    double topk_sort_s; /* the same top-K by a full sort (ifp_mask_set_topk_ref) */
    double scores_short_s; /* scores when the predictor reads only the first BP_SHORT tokens */
    double coverage;
} bp_pred_t;

/* --quick measures what the headline needs: the 9b predictor, and the 3b
 * and 9b prefills (shape 3b has no predictor). */
static int wanted(const bp_opts_t *o, const char *shape, int predictor) {
    if (predictor && !strcmp(shape, "3b")) return 0;
    return !o->quick || !strcmp(shape, "9b") || (!predictor && !strcmp(shape, "3b"));
}

/* Median 56-layer prefill time of each dense shape, from an N-layer stage. */
static int measure_prefill(const bp_opts_t *o, double *prefill56, ifp_err_t *err) {
    for (int i = 0; i < ifp_synth_n_shapes(); i++) {
        const char *shape = ifp_synth_shape_at(i)->name;
        if (!wanted(o, shape, 0)) continue;
        ifp_model_t *m = NULL;
        sr_stage_t *s = NULL;
        char label[32];
        snprintf(label, sizeof label, "dense-%s x%d", shape, o->layers);
        bl_log("%s: generating the stage", label);
        int rc = sr_synth(shape, o->layers, o->prompt + 1, 1, &m, err);
        double t = 0;
        if (!rc) rc = sr_new(m, o->prompt, 1, 0, 1, &s, err);
        if (!rc) rc = sr_measure_prefill(s, label, 0, o->runs, &t, err);
        sr_free(&s);
        ifp_model_free(&m);
        if (rc) return rc;
        prefill56[i] = IFP_SYNTH_LAYERS * t / o->layers;
    }
    return IFP_OK;
}

/* 4 cluster unions: per layer a random 1.25 K of the channels. */
static int make_unions(int L, int F, ifp_mask_t **u, ifp_err_t *err) {
    int n = IFP_SYNTH_KEEP * 5 / 4;
    int32_t *kept = malloc((size_t)n * sizeof *kept);
    uint64_t s = 0xC1u;
    int rc = kept ? IFP_OK : ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int c = 0; c < BP_CLUSTERS && !rc; c++) {
        if (!(u[c] = ifp_mask_new(L, F))) rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        for (int l = 0; l < L && !rc; l++) {
            bl_random_kept(kept, F, n, &s);
            rc = ifp_mask_set_layer(u[c], l, kept, n, err);
        }
    }
    free(kept);
    return rc;
}

/* Scratch of one predictor type's runs. */
typedef struct {
    ifp_predictor_t *p;
    ifp_mask_t *mask, *sorted;
    double ts[BP_MAX_RUNS], tk[BP_MAX_RUNS], tr[BP_MAX_RUNS], tm[BP_MAX_RUNS], tq[BP_MAX_RUNS], tko[BP_MAX_RUNS];
} bp_typed_t;

/* One run of predictor x on ids: scores, top-K (and the full sort), route,
 * submask, scores of the first BP_SHORT tokens; times into x's arrays. */
static int one_run(const bp_opts_t *o, bp_typed_t *x, int run, int keep, const int32_t *ids, float *scores,
                   ifp_mask_t *const *u, float **sub, bp_pred_t *r, ifp_err_t *err) {
    int L = ifp_predictor_n_layers(x->p), F = ifp_predictor_d_ffn(x->p), rc;
    double t0 = bl_now();
    if ((rc = ifp_predictor_scores(x->p, ids, o->prompt, scores, err))) return rc;
    double t1 = bl_now();
    ifp_mask_destroy(&x->mask);
    if ((rc = ifp_predictor_mask_from_scores(x->p, scores, 0, &x->mask, err))) return rc;
    double t2 = bl_now();
    x->tk[run] = t2 - t1;
    ifp_mask_destroy(&x->sorted); /* the replaced full sort, on the same scores, built the same way */
    double t5 = bl_now();
    if (!(x->sorted = ifp_mask_new(L, F))) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int l = 0; l < L; l++) ifp_mask_set_topk_ref(x->sorted, l, scores + (size_t)l * F, keep);
    x->tko[run] = bl_now() - t5;
    if (!ifp_mask_equal(x->mask, x->sorted))
        return ifp_errf(err, IFP_EINVAL, "top-K: the selection and the full sort disagree (run %d)", run + 1);
    t2 = bl_now(); /* the route starts after the sort */
    int best = 0;
    double cov = -1;
    for (int c = 0; c < BP_CLUSTERS; c++) { /* the balancer: best coverage wins */
        double v = ifp_mask_coverage(x->mask, u[c]);
        if (v > cov) cov = v, best = c;
    }
    double t3 = bl_now();
    ifp_mask_submask(x->mask, u[best], sub);
    double t4 = bl_now();
    int short_n = o->prompt < BP_SHORT ? o->prompt : BP_SHORT;
    if ((rc = ifp_predictor_scores(x->p, ids, short_n, scores, err))) return rc;
    x->tq[run] = bl_now() - t4;
    x->ts[run] = t1 - t0, x->tr[run] = t3 - t2, x->tm[run] = t4 - t3;
    r->coverage = cov;
    fprintf(stderr,
            "  predictor-%-4s %-4s run %d: scores / top-K (sort) / route / submask %.0f/%.1f (%.1f)/%.3f/%.1f ms "
            "(%d tokens: %.0f ms)\n", r->shape, r->type, run + 1, x->ts[run] * 1e3, x->tk[run] * 1e3,
            x->tko[run] * 1e3, x->tr[run] * 1e3, x->tm[run] * 1e3, short_n, x->tq[run] * 1e3);
    return IFP_OK;
}

/* Writes the predictor for one target shape, loads it in every type of
 * o->wtypes and times them, the types alternating run for run: r[type]. */
static int measure_predictor(const bp_opts_t *o, const char *shape, bp_pred_t *r, ifp_err_t *err) {
    ifp_synth_predictor_t sp;
    int rc = ifp_synth_predictor_default(shape, &sp, err);
    if (rc) return rc;
    sp.max_prompt = o->prompt;
    sp.backbone.ctx = o->prompt;
    const ifp_config_t *bc = &sp.backbone;
    int L = sp.target_layers, F = sp.target_ffn;
    for (int t = 0; t < o->n_types; t++) {
        memset(&r[t], 0, sizeof r[t]);
        r[t].shape = shape, r[t].type = o->type_names[t];
        r[t].params = (double)ifp_synth_predictor_params(&sp);
        r[t].head_params = (double)sp.hidden * (bc->dim + 1) + (double)L * F * (sp.hidden + 1);
        /* 2 flops per weight per prompt row in the backbone layers, once for the head */
        r[t].gflop = (2.0 * o->prompt * bc->n_layers * (double)ifp_synth_layer_params(bc, bc->d_ffn) +
                      2.0 * r[t].head_params) / 1e9;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/ifp-bench-predictor-%ld-%s.gguf", o->tmpdir, (long)getpid(), shape);
    bl_log("predictor for %s: writing %.2f GB to %s", shape, r[0].params * 4 / 1e9, path);
    if ((rc = ifp_synth_predictor_write(&sp, path, err))) return rc;
    bp_typed_t x[BP_MAX_TYPES];
    memset(x, 0, sizeof x);
    for (int t = 0; t < o->n_types && !rc; t++) {
        bl_log("predictor for %s: loading with the backbone in %s", shape, o->type_names[t]);
        rc = ifp_predictor_load_typed(path, o->wtypes[t], &x[t].p, err);
    }
    unlink(path); /* the mapping stays valid; the memory goes with it */
    size_t S = (size_t)L * F;
    float *scores = malloc(S * sizeof *scores), **sub = calloc((size_t)L, sizeof *sub);
    int32_t *ids = malloc((size_t)o->prompt * sizeof *ids);
    float *subbuf = malloc(S * sizeof *subbuf);
    ifp_mask_t *u[BP_CLUSTERS] = {0};
    if (rc) goto done;
    if (!scores || !sub || !ids || !subbuf) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = make_unions(L, F, u, err))) goto done;
    for (int l = 0; l < L; l++) sub[l] = subbuf + (size_t)l * F;
    uint64_t s = 77;
    ids[0] = 1; /* BOS */
    for (int i = 1; i < o->prompt; i++) ids[i] = 3 + (int32_t)(bl_rand(&s) % (uint64_t)(bc->vocab - 3));
    /* warm-up: 8 tokens read every weight once (page tables) */
    for (int t = 0; t < o->n_types && !rc; t++) rc = ifp_predictor_scores(x[t].p, ids, 8, scores, err);
    for (int run = 0; run < o->runs && !rc; run++)
        for (int j = 0; j < o->n_types && !rc; j++) { /* alternating types; odd runs in reverse order */
            int t = run % 2 ? o->n_types - 1 - j : j;
            rc = one_run(o, &x[t], run, sp.keep, ids, scores, u, sub, &r[t], err);
        }
    for (int t = 0; t < o->n_types && !rc; t++) {
        r[t].scores_s = bl_median(x[t].ts, o->runs), r[t].topk_s = bl_median(x[t].tk, o->runs);
        r[t].route_s = bl_median(x[t].tr, o->runs), r[t].submask_s = bl_median(x[t].tm, o->runs);
        r[t].scores_short_s = bl_median(x[t].tq, o->runs), r[t].topk_sort_s = bl_median(x[t].tko, o->runs);
    }
done:
    for (int c = 0; c < BP_CLUSTERS; c++) ifp_mask_destroy(&u[c]);
    for (int t = 0; t < BP_MAX_TYPES; t++) {
        ifp_mask_destroy(&x[t].mask), ifp_mask_destroy(&x[t].sorted);
        ifp_predictor_destroy(&x[t].p);
    }
    free(scores), free(sub), free(ids), free(subbuf);
    return rc;
}

/* Flops of the 56 dense layers of shape over a prompt, GFLOP (2 per weight per row). */
static double dense_gflop(const char *shape, int prompt) {
    ifp_config_t c;
    if (ifp_synth_config(shape, 0, 0, 0, &c, NULL)) return 0;
    return 2.0 * prompt * c.n_layers * (double)ifp_synth_layer_params(&c, c.d_ffn) / 1e9;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_predictor [--quick] [--runs R] [--threads T] [--layers N] [--types L] [--csv PATH]\n"
            "                       [--tmpdir DIR]\n"
            "  --runs R     timed runs, 1..64 (default 3; quick 1)\n"
            "  --threads T  OpenBLAS threads, 1..64 (default 1)\n"
            "  --layers N   layers of the stage whose prefill is scaled to 56, 1..56 (default 2; quick 1)\n"
            "  --types L    the predictor backbone's weight types, comma-separated, of f32,f16,bf16,q8_0\n"
            "               (default f32,bf16; the head stays f32); measured alternating, run for run\n"
            "  --csv PATH   results (default %s)\n"
            "  --tmpdir DIR where the predictor GGUFs are written and removed (default /dev/shm if writable,\n"
            "               else $TMPDIR or /tmp); about 2 GB each\n",
            BP_DEFAULT_CSV);
}

/* "f32,bf16" -> o->wtypes / type_names; -1 if a name is not a weight type or repeats. */
static int parse_types(const char *v, bp_opts_t *o) {
    static const char *names[] = {"f32", "f16", "bf16", "q8_0"};
    char buf[64];
    snprintf(buf, sizeof buf, "%s", v);
    o->n_types = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ifp_ggml_type_t ty;
        if (ifp_wtype_parse(t, &ty, NULL) || o->n_types >= BP_MAX_TYPES) return -1;
        for (int i = 0; i < o->n_types; i++)
            if (o->wtypes[i] == (int)ty) return -1;
        for (size_t k = 0; k < sizeof names / sizeof *names; k++)
            if (!strcmp(t, names[k])) o->type_names[o->n_types] = names[k];
        o->wtypes[o->n_types++] = (int)ty;
    }
    return o->n_types ? 0 : -1;
}

static int parse_args(int argc, char **argv, bp_opts_t *o) {
    int runs = 0, layers = 0;
    memset(o, 0, sizeof *o);
    parse_types("f32,bf16", o);
    o->threads = 1, o->prompt = 512, o->csv = BP_DEFAULT_CSV;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--quick")) {
            o->quick = 1;
            continue;
        }
        int bad = 0;
        if (!strcmp(a, "--runs")) bad = bl_parse_int(v, 1, BP_MAX_RUNS, &runs);
        else if (!strcmp(a, "--threads")) bad = bl_parse_int(v, 1, 64, &o->threads);
        else if (!strcmp(a, "--layers")) bad = bl_parse_int(v, 1, IFP_SYNTH_LAYERS, &layers);
        else if (!strcmp(a, "--types")) bad = parse_types(v, o);
        else if (!strcmp(a, "--csv")) {
            bad = !*v;
            o->csv = v;
        } else if (!strcmp(a, "--tmpdir")) {
            bad = !*v || access(v, W_OK) != 0;
            o->tmpdir = v;
        } else {
            fprintf(stderr, "bench_predictor: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_predictor: %s: bad value '%s' (see --help)\n", a, v);
            return 2;
        }
        i++;
    }
    o->runs = runs ? runs : o->quick ? 1 : 3;
    o->layers = layers ? layers : o->quick ? 1 : 2;
    if (!o->tmpdir) {
        const char *t = getenv("TMPDIR");
        o->tmpdir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : t && *t ? t : "/tmp";
    }
    return 0;
}

int main(int argc, char **argv) {
    bp_opts_t o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : 2;
    double t_start = bl_now();
    bl_print_machine(stdout);
    ifp_blas_threads(o.threads);
    ifp_err_t err = {0};
    double prefill56[8] = {0};
    static bp_pred_t pr[8 * BP_MAX_TYPES]; /* shape-major, a row per type */
    int n_pred = 0, rc = measure_prefill(&o, prefill56, &err);
    for (int i = 0; i < ifp_synth_n_shapes() && !rc; i++)
        if (wanted(&o, ifp_synth_shape_at(i)->name, 1) &&
            !(rc = measure_predictor(&o, ifp_synth_shape_at(i)->name, &pr[n_pred], &err)))
            n_pred += o.n_types;
    if (rc) {
        fprintf(stderr, "bench_predictor: %s\n", err.msg[0] ? err.msg : ifp_strerror(rc));
        return 1;
    }
    bl_csv_t csv;
    if (bl_csv_open(&csv, o.csv, "target_shape,prompt_tokens,predictor_params,head_params,predictor_gflop,scores_ms,"
                                 "topk_ms,route_ms,submask_ms,overhead_ms,stage_layers,prefill56_dense_s,share_dense,"
                                 "prefill56_ifp_s,share_ifp,scores_first128_ms,threads,runs,openblas_core,weight_type"))
        return 1;
    printf("\nprompt %d tokens, %d thread%s, median of %d run%s; 56-layer prefill = 56 x (%d-layer stage prefill / %d)\n",
           o.prompt, o.threads, o.threads > 1 ? "s" : "", o.runs, o.runs > 1 ? "s" : "", o.layers, o.layers);
    printf("(the predictor's backbone in each type, the runs alternating; the head stays f32; the prefills are the f32 "
           "model's)\n");
    printf("%-7s %-5s %8s %7s %9s %8s %8s %8s %10s %11s %7s %11s %7s\n", "target", "type", "params", "GFLOP",
           "scores ms", "top-K ms", "route ms", "submask", "overhead", "dense TTFT", "share", "IFP TTFT", "share");
    bl_headline_t h = {{0}, 0};
    for (int i = 0; i < n_pred; i++) {
        const bp_pred_t *r = &pr[i];
        const ifp_synth_shape_t *sh = ifp_synth_shape_find(r->shape);
        int si = 0;
        while (ifp_synth_shape_at(si) != sh) si++;
        double over = r->scores_s + r->topk_s + r->route_s;
        double dense = prefill56[si] + over, ifp = prefill56[0] + over; /* shape 0 is 3b */
        printf("%-7s %-5s %7.0fM %7.0f %9.1f %8.2f %8.3f %8.2f %9.1fms %10.1fs %6.2f%% %10.1fs %6.2f%%\n", r->shape,
               r->type, r->params / 1e6, r->gflop, r->scores_s * 1e3, r->topk_s * 1e3, r->route_s * 1e3, r->submask_s * 1e3,
               over * 1e3, dense, 100 * over / dense, ifp, 100 * over / ifp);
        bl_csv_row(&csv, "%s,%d,%.0f,%.0f,%.2f,%.3f,%.3f,%.4f,%.3f,%.3f,%d,%.3f,%.5f,%.3f,%.5f,%.3f,%d,%d,%s,%s", r->shape,
                   o.prompt, r->params, r->head_params, r->gflop, r->scores_s * 1e3, r->topk_s * 1e3, r->route_s * 1e3,
                   r->submask_s * 1e3, over * 1e3, o.layers, prefill56[si], over / dense, prefill56[0], over / ifp,
                   r->scores_short_s * 1e3, o.threads, o.runs, ifp_blas_corename(), r->type);
        printf("  (%s %s top-K by selection %.2f ms, by the full sort it replaced %.2f ms: %.0fx faster, same masks)\n",
               r->shape, r->type, r->topk_s * 1e3, r->topk_sort_s * 1e3, r->topk_sort_s / r->topk_s);
        if (strcmp(r->shape, "9b")) continue;
        char key[48];
        snprintf(key, sizeof key, "pred_share_9b_%s", r->type);
        bl_head_add(&h, key, "%.4f", over / dense);
        snprintf(key, sizeof key, "pred_ms_9b_%s", r->type);
        bl_head_add(&h, key, "%.1f", r->scores_s * 1e3);
        if (strcmp(r->type, o.type_names[0])) continue; /* the unsuffixed keys: the first type */
        double short_over = r->scores_short_s + r->topk_s + r->route_s;
        bl_head_add(&h, "predictor_share_of_ttft_9b", "%.4f", over / dense);
        bl_head_add(&h, "predictor_share_of_ttft_ifp9b3b", "%.4f", over / ifp);
        bl_head_add(&h, "predictor_flop_share_9b", "%.4f", r->gflop / (r->gflop + dense_gflop(r->shape, o.prompt)));
        bl_head_add(&h, "predictor_share_of_ttft_9b_p128", "%.4f",
                    short_over / (prefill56[si] + short_over));
        bl_head_add(&h, "predictor_ms_9b", "%.1f", r->scores_s * 1e3);
        bl_head_add(&h, "topk_ms_9b", "%.2f", r->topk_s * 1e3);
        bl_head_add(&h, "topk_sort_ms_9b", "%.2f", r->topk_sort_s * 1e3);
        bl_head_add(&h, "route_ms_9b", "%.3f", r->route_s * 1e3);
        bl_head_add(&h, "ttft_dense9b_s", "%.2f", dense);
        bl_head_add(&h, "ttft_ifp9b3b_s", "%.2f", ifp);
        printf("  (9b, the predictor reading only the first %d prompt tokens: scores %.1f ms, share %.2f%% of the dense "
               "TTFT, %.2f%% of the IFP TTFT)\n", BP_SHORT, r->scores_short_s * 1e3,
               100 * short_over / (prefill56[si] + short_over), 100 * short_over / (prefill56[0] + short_over));
    }
    int wrc = bl_csv_close(&csv, 1);
    printf("\nprefill of a %d-token prompt, 56 layers (composed):", o.prompt);
    for (int i = 0; i < ifp_synth_n_shapes(); i++)
        if (prefill56[i] > 0) printf(" %s %.1f s;", ifp_synth_shape_at(i)->name, prefill56[i]);
    printf("\ncsv: %s; total %.0f s\n", o.csv, bl_now() - t_start);
    bl_head_add(&h, "threads", "%.0f", o.threads);
    bl_head_print(&h);
    return wrc ? 1 : 0;
}
