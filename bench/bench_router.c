/* bench_router.c — the router with a predictor of the paper's size.
 *
 * Admission (a real ifp-router process): its predictor is a 302M-parameter
 * synthetic backbone for ifp-mix (`ifp synth --predictor-for`, made by
 * bench/run.sh), four fake dense groups played by this process answer every
 * Work at once with one token, so the only limit is the predictor.  A burst
 * of R requests at ifp-mix's context limit (255 prompt tokens, 1 new token)
 * goes in; meanwhile a second connection sends a Ping every 20 ms (both
 * connections are clients of the client library, client/client.h).  Measured
 * with 1 and 2 predictor threads in one router, and with two routers
 * (active-active, one predictor thread each, the burst spread over both by
 * the client library, the fake groups serving both):
 *   admit_rps       requests through the predictor per second (R / span)
 *   ping_*          the event loop's answer time to a health request while
 *                   the predictor is saturated (median, p99, worst)
 *   hb_lag          how stale the newest heartbeat the router had read was
 *                   (Pong.heartbeat_age_ms) beyond the 250 ms period: the
 *                   loop's delay in reading a heartbeat
 *   deaths/replays  from the router's own counters (must be 0)
 * Share of TTFT at the 9B shape (in this process, the router's own code):
 * the predictor pool (router/predict.c) with a 9B-target predictor of the
 * paper's proportions and 4 cluster unions scores a 512-token prompt, picks
 * the top K, packs the mask and computes its coverage and nearest cluster;
 * the balancer then picks a group from that coverage.  That overhead against
 * the composed 56-layer prefill of the dense 9B shape and of the 3B shape
 * the compacted model computes like (bench/stagerun.h), also with the
 * predictor reading only the first 128 tokens.
 * Output: tables, CSV (--csv, and a ping trace next to it), one headline. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "balancer.h"
#include "benchlib.h"
#include "client.h"
#include "cluster.h"
#include "gguf.h"
#include "kernels.h"
#include "predict.h"
#include "router_share.h"
#include "stagerun.h"
#include "synth.h"
#include "tokenizer.h"
#include "wire.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#ifndef IFP_BINARY_DIR
#define IFP_BINARY_DIR "build"
#endif
#define BR_MODEL IFP_SOURCE_DIR "/models/ifp-mix/ifp-mix.gguf"
#define BR_GROUPS 4
#define BR_HB_MS 250
#define BR_PING_MS 20
#define BR_MAX_PINGS 200000
#define BR_MAX_RUNS 16
#define BR_MAX_ROUTERS 2

typedef struct {
    int quick, requests, runs, layers;
    const char *predictor, *csv, *tmpdir;
} br_opts_t;

typedef struct {
    int threads, routers, requests, replied, errors; /* routers: processes, each with `threads` predictor threads */
    double rps, span_s;
    double ping_med, ping_p99, ping_max, hb_lag;
    double pred_ms_med; /* Reply.timings.predictor_ms: arrival -> mask */
    long long deaths, replays;
} br_admit_t;

/* ---------------------------------------------------------------- fakes */

typedef struct {
    char name[16];
    void *s;
    uint64_t epoch, seen, done[64];
    int n_done;
    double next_hb;
} fake_group_t;

static void send_msg(void *s, const ProtobufCMessage *m) { ifp_wire_send(s, NULL, NULL, 0, m); }

static void heartbeat(fake_group_t *g) {
    Ifp__Finished fin[64], *fp[64];
    for (int i = 0; i < g->n_done; i++) {
        ifp__finished__init(&fin[i]);
        fin[i].rid = g->done[i];
        fin[i].tokens = 1;
        fp[i] = &fin[i];
    }
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = g->name;
    hb.cluster = -1;
    hb.stages = 1;
    hb.slots = hb.free_slots = 64;
    hb.incarnation = 7;
    hb.router_epoch = g->epoch;
    hb.work_seen = g->seen;
    hb.n_finished = (size_t)g->n_done;
    hb.finished = fp;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    send_msg(g->s, &m.base);
}

/* A Work: answered at once with one token (finish LENGTH). */
static void on_group(fake_group_t *g) {
    ifp_frames_t f;
    while (ifp_wire_recv(g->s, &f, ZMQ_DONTWAIT) > 0) {
        Ifp__RouterToGroup *m = ifp_wire_router_msg(ifp_frame_data(&f, f.n - 1), ifp_frame_size(&f, f.n - 1));
        ifp_frames_close(&f);
        if (m && m->msg_case == IFP__ROUTER_TO_GROUP__MSG_WORK) {
            g->epoch = m->work->router_epoch;
            g->seen = m->work->seq;
            Ifp__GroupToken t = IFP__GROUP_TOKEN__INIT, *tp = &t;
            t.rid = m->work->rid;
            t.index = m->work->first_index;
            t.token = 100;
            t.logprob = -1;
            t.finish = IFP__FINISH_REASON__FINISH_LENGTH;
            Ifp__TokenBatch b = IFP__TOKEN_BATCH__INIT;
            b.group = g->name;
            b.n_tokens = 1;
            b.tokens = &tp;
            Ifp__GroupToRouter out = IFP__GROUP_TO_ROUTER__INIT;
            out.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
            out.tokens = &b;
            send_msg(g->s, &out.base);
            if (g->n_done == 64) memmove(g->done, g->done + 1, 63 * sizeof g->done[0]), g->n_done--;
            g->done[g->n_done++] = t.rid;
        }
        if (m) ifp__router_to_group__free_unpacked(m, NULL);
    }
}

/* ---------------------------------------------------------------- admission */

static void *dealer(void *zctx, const char *endpoint, const char *ident) {
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0, hwm = 100000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (ident) zmq_setsockopt(s, ZMQ_ROUTING_ID, ident, strlen(ident));
    zmq_connect(s, endpoint);
    return s;
}

/* A client of the router's frontend (plain, as the bench's router is):
 * routing id ident (the router's log names it), deep queues for the burst;
 * one router, so no silence watch (its requests wait for the predictor). */
static ifp_client_t *bench_client(void *zctx, const char *const *endpoints, int n, const char *ident) {
    ifp_client_opts_t o = ifp_client_default_opts();
    o.plain = 1;
    o.zctx = zctx;
    o.routing_id = ident;
    o.hwm = 100000;
    o.silence_ms = 0;
    ifp_err_t err = {0};
    ifp_client_t *cl = ifp_client_open(endpoints, n, &o, &err);
    if (!cl) fprintf(stderr, "bench_router: %s\n", err.msg);
    return cl;
}

static void ping(ifp_client_t *cl, unsigned router, unsigned k) {
    char id[24];
    snprintf(id, sizeof id, "%u", k);
    ifp_client_ping(cl, (int)router, id);
}

/* A text of at most max tokens (BOS included) from the calibration prompts. */
static char *context_prompt(ifp_tokenizer_t *tok, int max, int variant) {
    size_t len = 0;
    char *all = NULL, *buf = malloc(16384);
    FILE *f = fopen(IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl", "r");
    if (!buf || !f) {
        free(buf);
        if (f) fclose(f);
        return NULL;
    }
    size_t cap = 0;
    ssize_t n = getdelim(&all, &cap, '\0', f);
    fclose(f);
    buf[0] = '\0';
    /* the "prompt" strings, from a variant-dependent offset, unescaped roughly */
    for (const char *p = all ? strstr(all + (n > 0 ? (size_t)variant * 997 % (size_t)n : 0), "\"prompt\": \"") : NULL;
         p && len < 4000; p = strstr(p, "\"prompt\": \"")) {
        p += 11;
        for (; *p && *p != '"' && len < 4000; p++) buf[len++] = *p == '\\' ? (p++, *p == 'n' ? '\n' : *p) : *p;
        buf[len] = '\0';
    }
    free(all);
    int32_t ids[2048];
    while (len > 0 && ifp_tokenizer_encode(tok, buf, 1, ids, 2048) > max) {
        len -= len > 300 ? 20 : 1;
        while (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80) len--;
        buf[len] = '\0';
    }
    return buf;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One admission run: `routers` router processes (active-active, each with
 * `threads` predictor threads; [router rK] sections when more than one), the
 * fake groups connected to every one of them (a link per router, as a shard
 * group is), the burst spread over them by the client library. */
static int measure_admission(const br_opts_t *o, int threads, int routers, char **prompts, int n_prompts,
                             br_admit_t *res, FILE *trace) {
    memset(res, 0, sizeof *res);
    res->threads = threads;
    res->routers = routers;
    res->requests = o->requests;
    char dir[4200], cfg[4300], log[BR_MAX_ROUTERS][4300], fe[BR_MAX_ROUTERS][4300], be[BR_MAX_ROUTERS][4300];
    snprintf(dir, sizeof dir, "%s/ifp-bench-router-XXXXXX", o->tmpdir);
    if (!mkdtemp(dir)) return -1;
    snprintf(cfg, sizeof cfg, "%s/router.ini", dir);
    FILE *f = fopen(cfg, "w");
    if (!f) return -1;
    /* the loop and the predictor workers under test, with fake peers on ipc
     * (plain: CURVE's cost is bench/run.sh curve's) */
    fprintf(f, "[security]\ncurve = off\n[http]\nlisten = off\n[router]\nheartbeat_ms = %d\nliveness = 4\npredictor_threads = %d\n"
               "queue_max = 4096\nmax_tokens = 1\n", BR_HB_MS, threads);
    for (int k = 0; k < routers; k++) {
        snprintf(log[k], sizeof log[k], "%s/router-r%d.log", dir, k + 1);
        snprintf(fe[k], sizeof fe[k], "ipc://%s/fe%d", dir, k + 1);
        snprintf(be[k], sizeof be[k], "ipc://%s/be%d", dir, k + 1);
        if (routers == 1) fprintf(f, "frontend = %s\nbackend = %s\n", fe[k], be[k]);
        else fprintf(f, "[router r%d]\nfrontend = %s\nbackend = %s\n", k + 1, fe[k], be[k]);
    }
    fprintf(f, "[model]\nmodel = %s\npredictor = %s\n", BR_MODEL, o->predictor);
    for (int g = 0; g < BR_GROUPS; g++) fprintf(f, "[group f%d]\ncluster = dense\nslots = 64\n", g);
    fclose(f);
    pid_t pid[BR_MAX_ROUTERS];
    for (int k = 0; k < routers; k++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", k + 1);
        if ((pid[k] = fork()) == 0) {
            if (!freopen(log[k], "w", stderr)) _exit(126);
            execl(IFP_BINARY_DIR "/router/ifp-router", "ifp-router", "--config", cfg, routers > 1 ? "--name" : NULL,
                  name, (char *)NULL);
            _exit(127);
        }
    }
    void *zctx = zmq_ctx_new();
    const char *fes[BR_MAX_ROUTERS];
    for (int k = 0; k < routers; k++) fes[k] = fe[k];
    ifp_client_t *client = bench_client(zctx, fes, routers, "bench"), *health = bench_client(zctx, fes, routers, "health");
    enum { NG = BR_GROUPS * BR_MAX_ROUTERS };
    fake_group_t G[NG]; /* group g's link to router k: G[g * routers + k] */
    zmq_pollitem_t items[4 * BR_MAX_ROUTERS + NG];
    int n_items = 0, n_links = BR_GROUPS * routers;
    if (client && health) {
        n_items = ifp_client_pollitems(client, items, 2 * BR_MAX_ROUTERS);
        n_items += ifp_client_pollitems(health, items + n_items, 2 * BR_MAX_ROUTERS);
    }
    for (int l = 0; l < n_links; l++) {
        memset(&G[l], 0, sizeof G[l]);
        snprintf(G[l].name, sizeof G[l].name, "f%d", l / routers);
        G[l].s = dealer(zctx, be[l % routers], G[l].name);
        items[n_items++] = (zmq_pollitem_t){G[l].s, 0, ZMQ_POLLIN, 0};
    }
    int alive_k[BR_MAX_ROUTERS] = {0}, counted[BR_MAX_ROUTERS] = {0};
    char *failed = calloc((size_t)o->requests, 1); /* request i had an Error: its Reply is not an answer */
    double *rtt = malloc(BR_MAX_PINGS * sizeof *rtt), *pred = malloc((size_t)o->requests * sizeof *pred);
    int n_rtt = 0, n_pred = 0, alive = 0, sent = 0, rc = 0, n_counted = 0;
    unsigned pk = 0;
    double t_ping = 0, t_first = 0, t_last = 0, next_ping = 0, hb_age = 0, t_end = bl_now() + 120;
    int pending = 0; /* a Ping is out */
    while (client && health && failed && bl_now() < t_end) {
        double now = bl_now();
        for (int l = 0; l < n_links; l++)
            if (now * 1e3 >= G[l].next_hb) {
                heartbeat(&G[l]);
                G[l].next_hb = now * 1e3 + BR_HB_MS;
            }
        if (!pending && now >= next_ping) {
            ++pk;
            ping(health, pk % (unsigned)routers, pk); /* each router in turn */
            t_ping = now, pending = 1;
        }
        alive = BR_GROUPS;
        for (int k = 0; k < routers; k++) alive = alive_k[k] < alive ? alive_k[k] : alive;
        if (alive == BR_GROUPS && sent < o->requests) { /* the burst, once every router sees every group */
            t_first = bl_now();
            for (; sent < o->requests; sent++) {
                char id[24];
                snprintf(id, sizeof id, "q%d", sent);
                Ifp__Request q = IFP__REQUEST__INIT;
                q.id = id;
                q.prompt = prompts[sent % n_prompts];
                q.max_tokens = 1;
                q.mask_mode = IFP__MASK_MODE__MASK_INPUT;
                ifp_err_t err = {0};
                if (ifp_client_submit(client, &q, (void *)(intptr_t)sent, &err))
                    fprintf(stderr, "bench_router: %s\n", err.msg);
            }
            t_end = bl_now() + 60 + 30.0 * o->requests / threads; /* generous: 30 s per request per thread */
        }
        zmq_poll(items, n_items, 5);
        for (int l = 0; l < n_links; l++) on_group(&G[l]);
        ifp_client_event_t ev;
        while (ifp_client_poll(health, 0, &ev) == 1) {
            const Ifp__ServerMessage *m = ev.kind == IFP_CLIENT_PONG ? ev.msg : NULL;
            if (m && (unsigned)atoi(m->pong->id) == pk) {
                double t = bl_now(), ms = (t - t_ping) * 1e3;
                pending = 0;
                next_ping = t_ping + BR_PING_MS * 1e-3;
                int k = ev.router, up = 0;
                double age = 0;
                for (size_t i = 0; i < m->pong->n_groups; i++) {
                    up += m->pong->groups[i]->alive;
                    if (m->pong->groups[i]->heartbeat_age_ms > age) age = m->pong->groups[i]->heartbeat_age_ms;
                }
                if (k >= 0 && k < routers) alive_k[k] = up;
                int busy = sent == o->requests && res->replied + res->errors < o->requests && m->pong->predicting > 0;
                if (busy && n_rtt < BR_MAX_PINGS) {
                    rtt[n_rtt++] = ms;
                    if (age > hb_age) hb_age = age;
                }
                if (trace) fprintf(trace, "%d,%d,%.4f,%.3f,%u,%d\n", routers, threads, t - (t_first ? t_first : t), ms,
                                   m->pong->predicting, busy);
                if (sent == o->requests && res->replied + res->errors == o->requests && k >= 0 && k < routers &&
                    !counted[k]) { /* every router's own counters, once all is answered */
                    counted[k] = 1;
                    for (size_t i = 0; i < m->pong->n_counters; i++) {
                        if (!strcmp(m->pong->counters[i]->name, "group_deaths")) res->deaths += (long long)m->pong->counters[i]->value;
                        if (!strcmp(m->pong->counters[i]->name, "replays")) res->replays += (long long)m->pong->counters[i]->value;
                    }
                    if (++n_counted == routers) goto done;
                }
            }
        }
        while (ifp_client_poll(client, 0, &ev) == 1) {
            int i = (int)(intptr_t)ev.user;
            if (ev.kind == IFP_CLIENT_REPLY && !failed[i]) {
                res->replied++;
                t_last = bl_now();
                if (n_pred < o->requests && ev.msg->reply->timings)
                    pred[n_pred++] = ev.msg->reply->timings->predictor_ms;
                if (res->replied % 5 == 0) bl_log("  %d router%s x %d predictor thread%s: %d/%d answered", routers,
                                                  routers > 1 ? "s" : "", threads, threads > 1 ? "s" : "",
                                                  res->replied, o->requests);
            } else if ((ev.kind == IFP_CLIENT_ERROR || ev.kind == IFP_CLIENT_FAILED) && !failed[i]) {
                failed[i] = 1;
                res->errors++;
                t_last = bl_now();
                if (res->errors == 1)
                    bl_log("  error: %s", ev.kind == IFP_CLIENT_ERROR ? ev.msg->error->message : ev.detail);
            }
        }
    }
    rc = -1; /* ran out of time */
    fprintf(stderr, "bench_router: timed out (%d of %d answered, %d groups alive); router logs: %s\n", res->replied,
            o->requests, alive, dir);
done:
    for (int k = 0; k < routers; k++) kill(pid[k], SIGTERM);
    for (int k = 0; k < routers; k++) waitpid(pid[k], NULL, 0);
    res->span_s = t_last - t_first;
    res->rps = res->span_s > 0 ? res->replied / res->span_s : 0;
    if (n_rtt) {
        qsort(rtt, (size_t)n_rtt, sizeof *rtt, cmp_double);
        res->ping_med = rtt[n_rtt / 2];
        res->ping_p99 = rtt[(int)(0.99 * (n_rtt - 1))];
        res->ping_max = rtt[n_rtt - 1];
    }
    res->hb_lag = hb_age > BR_HB_MS ? hb_age - BR_HB_MS : 0;
    res->pred_ms_med = n_pred ? bl_median(pred, n_pred) : 0;
    free(rtt), free(pred), free(failed);
    ifp_client_close(&client);
    ifp_client_close(&health);
    for (int l = 0; l < n_links; l++) zmq_close(G[l].s);
    zmq_ctx_term(zctx);
    if (!rc) { /* keep the logs of a failed run */
        unlink(cfg);
        for (int k = 0; k < routers; k++) unlink(log[k]);
        rmdir(dir);
    }
    return rc;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f) {
    fprintf(f, "usage: bench_router --predictor P.gguf [--quick] [--requests R] [--runs N] [--layers L] [--csv PATH]"
               " [--tmpdir DIR]\n"
               "  --predictor P  a predictor GGUF for models/ifp-mix/ifp-mix.gguf (ifp synth --predictor-for)\n"
               "  --requests R   requests per admission run (default 20; quick 6)\n"
               "  --runs N       timed runs of the 9B overhead (default 3; quick 1)\n"
               "  --layers L     layers of the stage whose prefill is composed to 56 (default 2; quick 1)\n");
}

int main(int argc, char **argv) {
    br_opts_t o = {.csv = IFP_SOURCE_DIR "/bench/results/router.csv"};
    int requests = 0, runs = 0, layers = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        int bad = 0;
        if (!strcmp(a, "--quick")) {
            o.quick = 1;
            continue;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--predictor")) o.predictor = v, bad = !*v || access(v, R_OK);
        else if (!strcmp(a, "--requests")) bad = bl_parse_int(v, 1, 10000, &requests);
        else if (!strcmp(a, "--runs")) bad = bl_parse_int(v, 1, BR_MAX_RUNS, &runs);
        else if (!strcmp(a, "--layers")) bad = bl_parse_int(v, 1, IFP_SYNTH_LAYERS, &layers);
        else if (!strcmp(a, "--csv")) o.csv = v, bad = !*v;
        else if (!strcmp(a, "--tmpdir")) o.tmpdir = v, bad = !*v || access(v, W_OK);
        else {
            fprintf(stderr, "bench_router: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_router: %s: bad value '%s' (see --help)\n", a, v);
            return 2;
        }
        i++;
    }
    if (!o.predictor) {
        fprintf(stderr, "bench_router: --predictor P.gguf is required (bench/run.sh router makes one)\n");
        return 2;
    }
    o.requests = requests ? requests : o.quick ? 6 : 20;
    o.runs = runs ? runs : o.quick ? 1 : 3;
    o.layers = layers ? layers : o.quick ? 1 : 2;
    if (!o.tmpdir) o.tmpdir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    bl_print_machine(stdout);
    ifp_blas_threads(1);
    /* prompts at the context limit: 255 tokens + 1 new */
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_tokenizer_t *tok = NULL;
    if (ifp_gguf_open(BR_MODEL, &g, &err) || ifp_tokenizer_from_gguf(g, &tok, &err)) {
        fprintf(stderr, "bench_router: %s\n", err.msg);
        return 1;
    }
    ifp_gguf_close(&g);
    char *prompts[4];
    for (int i = 0; i < 4; i++)
        if (!(prompts[i] = context_prompt(tok, 255, i))) return 1;
    int32_t ids[512];
    int n_tok = ifp_tokenizer_encode(tok, prompts[0], 1, ids, 512);
    ifp_tokenizer_destroy(&tok);
    char trace_path[4200];
    snprintf(trace_path, sizeof trace_path, "%.4000s.pings.csv", o.csv);
    FILE *trace = fopen(trace_path, "w");
    if (trace) fprintf(trace, "routers,threads,t_s,ping_ms,predicting,saturated\n");
    /* one router with 1 and 2 predictor threads, two routers with 1 each */
    enum { N_ADM = 3 };
    static const int run_threads[N_ADM] = {1, 2, 1}, run_routers[N_ADM] = {1, 1, 2};
    br_admit_t adm[N_ADM];
    for (int t = 0; t < N_ADM; t++) {
        bl_log("admission: %d requests of %d prompt tokens, %d router%s x %d predictor thread%s", o.requests, n_tok,
               run_routers[t], run_routers[t] > 1 ? "s" : "", run_threads[t], run_threads[t] > 1 ? "s" : "");
        if (measure_admission(&o, run_threads[t], run_routers[t], prompts, 4, &adm[t], trace)) return 1;
    }
    if (trace) fclose(trace);
    br_share_t sh;
    if (br_measure_share(o.runs, o.layers, o.tmpdir, &sh, &err)) {
        fprintf(stderr, "bench_router: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < 4; i++) free(prompts[i]);
    printf("\nadmission: %d requests of %d prompt tokens (+1 new) in one burst, 4 fake groups; Ping every %d ms\n",
           o.requests, n_tok, BR_PING_MS);
    printf("%-8s %-8s %10s %12s %10s %10s %10s %12s %7s %8s\n", "routers", "threads", "req/s", "predictor ms",
           "ping med", "ping p99", "ping max", "hb read lag", "deaths", "replays");
    for (int t = 0; t < N_ADM; t++)
        printf("%-8d %-8d %10.2f %12.0f %9.2fms %9.2fms %9.2fms %10.1fms %7lld %8lld\n", adm[t].routers,
               adm[t].threads, adm[t].rps,
               adm[t].pred_ms_med, adm[t].ping_med, adm[t].ping_p99, adm[t].ping_max, adm[t].hb_lag, adm[t].deaths,
               adm[t].replays);
    br_print_share(&sh);
    bl_csv_t csv;
    if (bl_csv_open(&csv, o.csv, "what,routers,threads,value,unit,openblas_core")) return 1;
    for (int t = 0; t < N_ADM; t++) {
        const char *core = ifp_blas_corename();
        int r = adm[t].routers, th = adm[t].threads;
        bl_csv_row(&csv, "admit_rps,%d,%d,%.3f,req/s,%s", r, th, adm[t].rps, core);
        bl_csv_row(&csv, "ping_median,%d,%d,%.3f,ms,%s", r, th, adm[t].ping_med, core);
        bl_csv_row(&csv, "ping_p99,%d,%d,%.3f,ms,%s", r, th, adm[t].ping_p99, core);
        bl_csv_row(&csv, "ping_max,%d,%d,%.3f,ms,%s", r, th, adm[t].ping_max, core);
        bl_csv_row(&csv, "hb_read_lag,%d,%d,%.3f,ms,%s", r, th, adm[t].hb_lag, core);
        bl_csv_row(&csv, "predictor_ms_median,%d,%d,%.1f,ms,%s", r, th, adm[t].pred_ms_med, core);
    }
    br_share_csv(&sh, &csv);
    if (bl_csv_close(&csv, 1)) return 1;
    bl_headline_t h = {{0}, 0};
    bl_head_add(&h, "admit_rps_t1", "%.2f", adm[0].rps);
    bl_head_add(&h, "admit_rps_t2", "%.2f", adm[1].rps);
    bl_head_add(&h, "admit_speedup_t2", "%.2f", adm[0].rps > 0 ? adm[1].rps / adm[0].rps : 0);
    bl_head_add(&h, "admit_rps_2routers", "%.2f", adm[2].rps);
    bl_head_add(&h, "admit_2routers_vs_1", "%.2f", adm[0].rps > 0 ? adm[2].rps / adm[0].rps : 0);
    double worst = 0, p99 = 0, lag = 0, deaths = 0, replays = 0;
    for (int t = 0; t < N_ADM; t++) {
        if (adm[t].ping_max > worst) worst = adm[t].ping_max;
        if (adm[t].ping_p99 > p99) p99 = adm[t].ping_p99;
        if (adm[t].hb_lag > lag) lag = adm[t].hb_lag;
        deaths += (double)adm[t].deaths, replays += (double)adm[t].replays;
    }
    bl_head_add(&h, "loop_ping_max_ms", "%.2f", worst);
    bl_head_add(&h, "loop_ping_p99_ms", "%.2f", p99);
    bl_head_add(&h, "hb_read_lag_max_ms", "%.1f", lag);
    bl_head_add(&h, "deaths", "%.0f", deaths);
    bl_head_add(&h, "replays", "%.0f", replays);
    br_share_headline(&sh, &h);
    bl_head_print(&h);
    return 0;
}
