/* bench_load.c — an open-loop load generator against a running ifp cluster.
 *
 * Requests arrive as a Poisson process (--rate R per second, seeded) for
 * --duration S seconds or --requests N; each is drawn uniformly from the
 * ifp-mix calibration prompts (data/ifp-mix/calib.jsonl, the domain mix),
 * with max_tokens = the example's response length in tokens capped by
 * --max-tokens (the cap when it has no response), temperature --temp and a
 * per-request seed.  Prompts that alone fill the model context are left out.
 * Open loop: a request is sent at its arrival time whatever is in flight, all
 * through the client library (client/client.h; stream = true, mask mode
 * input).  --router takes one address or a comma-separated list of the
 * routers of one deployment: requests are spread over them round robin, and
 * a router that goes away has its requests resumed on another (each
 * request's failovers and longest stall go to the --per-request CSV; with
 * several routers a summary line counts them).
 *
 * Per request, times count from the scheduled arrival (a late send counts
 * against the cluster; the largest send lag is reported):
 *   TTFT = first TokenEvent, TPOT = (last - first TokenEvent) / (events - 1),
 *   E2E = the Reply.  Replies with no token event have no TTFT/TPOT.
 * Reported: throughput (completion tokens and replies per second over
 * first arrival -> last answer), TTFT/TPOT/E2E p50/p95/p99 (nearest rank, over
 * ok replies), errors by code, overloads, client timeouts, and routing:
 *   hit_rate     = share of ok replies served by a group holding the request's
 *                  nearest cluster (computed here: predictor + cluster table,
 *                  as the router computes demand), Reply.cluster == nearest;
 *   compact_rate = share served exactly on a compacted group
 *                  (Reply.coverage == 1 and cluster != dense);
 *   dense_share  = share served by a dense group; mean_coverage.
 * Bounded: it stops after the last arrival + --drain-s, cancelling what is
 * left (counted as timeouts).  Targets only ipc:// and loopback tcp://.
 * Output: a summary and one key=value headline on stdout; one CSV row per run
 * appended to --csv (header written when the file is new); --per-request CSV
 * (its last columns: failovers, max_stall_ms = the longest time the request
 * went without a token or its answer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "workload.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#define BL_MODELS IFP_SOURCE_DIR "/models/ifp-mix/"
#define BL_MAX_REQUESTS 1000000

typedef struct {
    const char *router, *model, *predictor, *calib, *clusters, *policy, *csv, *per_request, *keys;
    int plain;
    double rate, duration_s, drain_s, temp;
    int requests, max_tokens;
    uint64_t seed;
} bl_args_t;

enum { BL_PENDING, BL_FLIGHT, BL_OK, BL_FAILED, BL_TIMEOUT };

typedef struct {
    int ex, max_tokens, state, n_events, n_tokens, cluster, err_code, failovers;
    double t_arrival, t_sent, t_first, t_last, t_done, coverage, stall_ms;
} bl_req_t;

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_load --rate R [--duration S | --requests N] [options]\n"
            "  --router ADDR[,ADDR...]  router frontend(s), ipc:// or loopback tcp:// (default tcp://127.0.0.1:5555);\n"
            "                      several: requests spread over them, moved when one goes away\n"
            "  --rate R            Poisson arrivals per second (required)\n"
            "  --duration S        arrival window in seconds (default 10)\n"
            "  --requests N        exactly N arrivals instead of a window\n"
            "  --seed S            arrivals, prompt draws and sampling seeds (default 1)\n"
            "  --max-tokens N      cap on max_tokens (default 64)\n"
            "  --temp T            temperature (default 0.8)\n"
            "  --drain-s S         wait this long after the last arrival (default 30)\n"
            "  --policy NAME       label for the CSV row (the router's policy; default affinity)\n"
            "  --csv FILE          append one row per run\n"
            "  --per-request FILE  one row per request\n"
            "  --model/--predictor/--calib/--clusters FILE   the workload (default ifp-mix, k4 table)\n"
            "  --keys DIR          the deployment's keys folder: CURVE with DIR/client.key and DIR/router.pub\n"
            "                      (default: $IFP_KEYS, else ${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys, if there)\n"
            "  --plain 1           no CURVE (a router with [security] curve = off)\n");
}

static int parse_args(int argc, char **argv, bl_args_t *a) {
    *a = (bl_args_t){.router = "tcp://127.0.0.1:5555", .model = BL_MODELS "ifp-mix.gguf",
                     .predictor = BL_MODELS "ifp-mix-predictor.gguf", .calib = IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl",
                     .clusters = BL_MODELS "clusters-k4.gguf", .policy = "affinity", .duration_s = 10, .drain_s = 30,
                     .temp = 0.8, .max_tokens = 64, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) return usage(stdout), 1;
        if (!v) return fprintf(stderr, "bench_load: %s needs a value\n", k), -1;
        i++;
        char *end = NULL;
        double x = strtod(v, &end);
        int num = end && end != v && !*end;
        if (!strcmp(k, "--router")) a->router = v;
        else if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--predictor")) a->predictor = v;
        else if (!strcmp(k, "--calib")) a->calib = v;
        else if (!strcmp(k, "--clusters")) a->clusters = *v ? v : NULL;
        else if (!strcmp(k, "--policy")) a->policy = v;
        else if (!strcmp(k, "--csv")) a->csv = v;
        else if (!strcmp(k, "--per-request")) a->per_request = v;
        else if (!strcmp(k, "--keys")) a->keys = v;
        else if (!strcmp(k, "--plain")) a->plain = strcmp(v, "0") != 0;
        else if (!num) return fprintf(stderr, "bench_load: %s: expected a number or an unknown option, got '%s'\n", k, v), -1;
        else if (!strcmp(k, "--rate") && x > 0 && x <= 1e5) a->rate = x;
        else if (!strcmp(k, "--duration") && x > 0 && x <= 3600) a->duration_s = x;
        else if (!strcmp(k, "--drain-s") && x >= 0 && x <= 3600) a->drain_s = x;
        else if (!strcmp(k, "--temp") && x >= 0 && x <= 100) a->temp = x;
        else if (!strcmp(k, "--requests") && x >= 1 && x <= BL_MAX_REQUESTS) a->requests = (int)x;
        else if (!strcmp(k, "--max-tokens") && x >= 1 && x <= 4096) a->max_tokens = (int)x;
        else if (!strcmp(k, "--seed") && x >= 0) a->seed = (uint64_t)x;
        else return fprintf(stderr, "bench_load: %s %s: unknown option or value out of range\n", k, v), -1;
    }
    if (a->rate <= 0) return fprintf(stderr, "bench_load: --rate is required (see --help)\n"), -1;
    return 0;
}

/* Only this machine: ipc://, or tcp:// to a loopback host. */
static int local_address(const char *s) {
    static const char *const ok[] = {"ipc://", "tcp://127.", "tcp://localhost:", "tcp://[::1]:"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strncmp(s, ok[i], strlen(ok[i]))) return 1;
    return 0;
}

static int send_request(ifp_client_t *cl, const bl_args_t *a, const wl_workload_t *w, int i, bl_req_t *r) {
    char id[32];
    snprintf(id, sizeof id, "L%d", i);
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = id;
    q.prompt = (char *)w->ex[r->ex].prompt;
    q.max_tokens = (uint32_t)r->max_tokens;
    q.temperature = (float)a->temp;
    q.seed = a->seed * 1000003u + (uint64_t)i;
    q.mask_mode = IFP__MASK_MODE__MASK_INPUT;
    q.stream = 1;
    ifp_err_t err = {0};
    if (ifp_client_submit(cl, &q, r, &err)) {
        fprintf(stderr, "bench_load: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Handles one event of the client; returns 1 if it ended a request. */
static int on_event(const ifp_client_event_t *ev, double now) {
    bl_req_t *r = ev->user;
    if (!r || r->state != BL_FLIGHT) return 0;
    switch (ev->kind) {
    case IFP_CLIENT_TOKEN:
        if (r->n_events++ == 0) r->t_first = now;
        r->t_last = now;
        return 0;
    case IFP_CLIENT_REPLY: {
        const Ifp__Reply *p = ev->msg->reply;
        r->n_tokens = (int)p->n_tokens;
        r->cluster = p->cluster;
        r->coverage = p->coverage;
        int bad = r->err_code || p->finish == IFP__FINISH_REASON__FINISH_ERROR ||
                  p->finish == IFP__FINISH_REASON__FINISH_CANCELLED;
        r->state = bad ? BL_FAILED : BL_OK;
        break;
    }
    case IFP_CLIENT_ERROR:
        r->err_code = ev->msg->error->code;
        if (!ev->final) return 0; /* deadline and internal errors are followed by a Reply */
        r->state = BL_FAILED;
        break;
    case IFP_CLIENT_FAILED: r->state = BL_FAILED; break; /* moved too often, or a router skipped tokens */
    default: return 0;
    }
    r->t_done = now;
    r->failovers = ev->failovers;
    r->stall_ms = ev->stall_ms;
    return 1;
}

/* Sends every request at its arrival time and collects the answers until all
 * are answered or the drain time is over.  Returns the largest send lag (ms),
 * or -1 if the client failed. */
static double run(ifp_client_t *cl, const bl_args_t *a, const wl_workload_t *w, bl_req_t *reqs, int n,
                  double *t_zero) {
    double t0 = ifp_now_ms(), lag = 0;
    double hard_end = reqs[n - 1].t_arrival + a->drain_s * 1e3;
    int sent = 0, finished = 0;
    *t_zero = t0;
    while (finished < n) {
        double now = ifp_now_ms() - t0;
        while (sent < n && reqs[sent].t_arrival <= now) {
            bl_req_t *r = &reqs[sent];
            if (send_request(cl, a, w, sent, r)) return -1;
            r->state = BL_FLIGHT;
            r->t_sent = now;
            if (now - r->t_arrival > lag) lag = now - r->t_arrival;
            sent++;
        }
        if (now >= hard_end) break;
        double next = sent < n ? reqs[sent].t_arrival : hard_end;
        long wait = (long)ceil(next - now);
        ifp_client_event_t ev;
        int rc = ifp_client_poll(cl, wait > 0 ? (int)wait : 0, &ev);
        if (rc < 0) return -1;
        if (rc == 1) finished += on_event(&ev, ifp_now_ms() - t0);
    }
    for (int i = 0; i < n; i++)
        if (reqs[i].state == BL_FLIGHT || reqs[i].state == BL_PENDING) {
            char id[32];
            snprintf(id, sizeof id, "L%d", i);
            if (reqs[i].state == BL_FLIGHT) ifp_client_abandon(cl, id); /* a Cancel goes out */
            reqs[i].state = BL_TIMEOUT;
        }
    return lag;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p) {
    if (n == 0) return 0;
    int k = (int)ceil(p * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

typedef struct {
    int n, ok, failed, timeouts, by_code[8];
    long tokens;
    double wall_s, tps, rps, ttft[3], tpot[3], e2e[3], hit, compact, dense, coverage, lag;
} bl_summary_t;

static void summarize(const bl_req_t *reqs, int n, const wl_workload_t *w, double lag, bl_summary_t *s) {
    memset(s, 0, sizeof *s);
    double *ttft = malloc((size_t)n * sizeof *ttft), *tpot = malloc((size_t)n * sizeof *tpot),
           *e2e = malloc((size_t)n * sizeof *e2e), t_end = 0;
    int n1 = 0, n2 = 0, n3 = 0, hits = 0, compact = 0, dense = 0;
    for (int i = 0; i < n; i++) {
        const bl_req_t *r = &reqs[i];
        if (r->state == BL_TIMEOUT) s->timeouts++;
        if (r->state == BL_FAILED) s->failed++;
        if (r->err_code > 0 && r->err_code < 8) s->by_code[r->err_code]++;
        if (r->state == BL_OK || r->state == BL_FAILED) t_end = fmax(t_end, r->t_done);
        if (r->state != BL_OK) continue;
        s->ok++;
        s->tokens += r->n_tokens;
        e2e[n3++] = r->t_done - r->t_arrival;
        if (r->n_events) ttft[n1++] = r->t_first - r->t_arrival;
        if (r->n_events > 1) tpot[n2++] = (r->t_last - r->t_first) / (r->n_events - 1);
        hits += r->cluster >= 0 && r->cluster == w->ex[r->ex].nearest;
        compact += r->cluster >= 0 && r->coverage >= 1.0 - 1e-9;
        dense += r->cluster < 0;
        s->coverage += r->coverage;
    }
    qsort(ttft, (size_t)n1, sizeof *ttft, cmp_double);
    qsort(tpot, (size_t)n2, sizeof *tpot, cmp_double);
    qsort(e2e, (size_t)n3, sizeof *e2e, cmp_double);
    static const double P[3] = {0.50, 0.95, 0.99};
    for (int k = 0; k < 3; k++) {
        s->ttft[k] = pct(ttft, n1, P[k]);
        s->tpot[k] = pct(tpot, n2, P[k]);
        s->e2e[k] = pct(e2e, n3, P[k]);
    }
    free(ttft), free(tpot), free(e2e);
    s->n = n;
    s->wall_s = t_end / 1e3;
    s->tps = s->wall_s > 0 ? (double)s->tokens / s->wall_s : 0;
    s->rps = s->wall_s > 0 ? s->ok / s->wall_s : 0;
    if (s->ok) {
        s->hit = (double)hits / s->ok, s->compact = (double)compact / s->ok, s->dense = (double)dense / s->ok;
        s->coverage /= s->ok;
    }
    s->lag = lag;
}

static int write_csv(const bl_args_t *a, const bl_summary_t *s) {
    FILE *f = fopen(a->csv, "a");
    if (!f) return -1;
    if (ftell(f) == 0)
        fprintf(f, "policy,rate,seed,requests,ok,failed,overloaded,timeouts,wall_s,tokens,tokens_per_s,req_per_s,"
                   "ttft_p50_ms,ttft_p95_ms,ttft_p99_ms,tpot_p50_ms,tpot_p95_ms,tpot_p99_ms,e2e_p50_ms,e2e_p95_ms,"
                   "e2e_p99_ms,hit_rate,compact_rate,dense_share,mean_coverage,err_bad_request,err_deadline,"
                   "err_internal,send_lag_max_ms\n");
    fprintf(f, "%s,%g,%llu,%d,%d,%d,%d,%d,%.3f,%ld,%.2f,%.3f,%.2f,%.2f,%.2f,%.3f,%.3f,%.3f,%.1f,%.1f,%.1f,%.4f,%.4f,"
               "%.4f,%.4f,%d,%d,%d,%.2f\n",
            a->policy, a->rate, (unsigned long long)a->seed, s->n, s->ok, s->failed,
            s->by_code[IFP__ERROR_CODE__ERR_OVERLOADED], s->timeouts, s->wall_s, s->tokens, s->tps, s->rps, s->ttft[0],
            s->ttft[1], s->ttft[2], s->tpot[0], s->tpot[1], s->tpot[2], s->e2e[0], s->e2e[1], s->e2e[2], s->hit,
            s->compact, s->dense, s->coverage, s->by_code[IFP__ERROR_CODE__ERR_BAD_REQUEST],
            s->by_code[IFP__ERROR_CODE__ERR_DEADLINE], s->by_code[IFP__ERROR_CODE__ERR_INTERNAL], s->lag);
    return fclose(f);
}

static int write_per_request(const char *path, const bl_req_t *reqs, int n, const wl_workload_t *w) {
    static const char *const STATE[] = {"pending", "flight", "ok", "failed", "timeout"};
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "id,example,domain,arrival_ms,ttft_ms,tpot_ms,e2e_ms,events,tokens,max_tokens,cluster,nearest,coverage,"
               "error_code,status,failovers,max_stall_ms\n");
    for (int i = 0; i < n; i++) {
        const bl_req_t *r = &reqs[i];
        double ttft = r->n_events ? r->t_first - r->t_arrival : NAN;
        double tpot = r->n_events > 1 ? (r->t_last - r->t_first) / (r->n_events - 1) : NAN;
        double e2e = r->state == BL_OK || r->state == BL_FAILED ? r->t_done - r->t_arrival : NAN;
        fprintf(f, "L%d,%d,%s,%.3f,%.3f,%.3f,%.3f,%d,%d,%d,%d,%d,%.4f,%d,%s,%d,%.3f\n", i, r->ex,
                w->domains[w->ex[r->ex].domain], r->t_arrival, ttft, tpot, e2e, r->n_events, r->n_tokens,
                r->max_tokens, r->cluster, w->ex[r->ex].nearest, r->coverage, r->err_code, STATE[r->state],
                r->failovers, r->stall_ms);
    }
    return fclose(f);
}

int main(int argc, char **argv) {
    bl_args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    char list[4096];
    const char *routers[IFP_CLIENT_MAX_ROUTERS];
    ifp_err_t err = {0};
    int n_routers = ifp_client_split_routers(a.router, list, sizeof list, routers, IFP_CLIENT_MAX_ROUTERS, &err);
    if (n_routers < 0) {
        fprintf(stderr, "bench_load: --router: %s\n", err.msg);
        return 2;
    }
    for (int k = 0; k < n_routers; k++)
        if (!local_address(routers[k])) {
            fprintf(stderr, "bench_load: --router %s: only ipc:// and loopback tcp:// (127.x, localhost, [::1]) targets\n",
                    routers[k]);
            return 2;
        }
    wl_workload_t *w = NULL;
    if (wl_load(a.model, a.predictor, a.calib, a.clusters, &w, &err)) {
        fprintf(stderr, "bench_load: %s\n", err.msg);
        return 1;
    }
    /* the draw pool: prompts that leave room for at least one new token */
    int *pool = malloc((size_t)w->n * sizeof *pool), n_pool = 0;
    for (int i = 0; pool && i < w->n; i++)
        if (w->ex[i].prompt_tokens < w->ctx) pool[n_pool++] = i;
    uint64_t rng = a.seed ^ 0x6c6f6164ull; /* "load" */
    int n = a.requests;
    if (!n) { /* Poisson arrivals within the window: count them first */
        uint64_t r2 = rng;
        for (double t = wl_exp(&r2, 1e3 / a.rate); t <= a.duration_s * 1e3 && n < BL_MAX_REQUESTS;
             t += wl_exp(&r2, 1e3 / a.rate))
            n++;
    }
    bl_req_t *reqs = n > 0 ? calloc((size_t)n, sizeof *reqs) : NULL;
    if (!pool || !n_pool || !reqs) {
        fprintf(stderr, "bench_load: %s\n", !n ? "no arrival in the window: raise --rate or --duration"
                                                 : !n_pool ? "no prompt fits the model context" : "out of memory");
        return 1;
    }
    double t = 0;
    for (int i = 0; i < n; i++) {
        bl_req_t *r = &reqs[i];
        t += wl_exp(&rng, 1e3 / a.rate);
        r->t_arrival = t;
        r->ex = pool[wl_rand(&rng) % (uint64_t)n_pool];
        int ans = w->ex[r->ex].answer_tokens;
        r->max_tokens = ans > 0 && ans < a.max_tokens ? ans : a.max_tokens;
        r->cluster = -1;
    }
    fprintf(stderr, "bench_load: %d requests at %.2f/s over %.1f s to %s (%d of %d prompts fit the context)\n", n,
            a.rate, reqs[n - 1].t_arrival / 1e3, a.router, n_pool, w->n);

    int status = 1;
    memset(&err, 0, sizeof err);
    ifp_client_opts_t o = ifp_client_default_opts();
    o.keys = a.keys;
    o.plain = a.plain;
    o.hwm = 0;         /* open loop: every arrival is sent, whatever is in flight */
    o.linger_ms = 200; /* the last Cancels leave */
    ifp_client_t *cl = ifp_client_open(routers, n_routers, &o, &err);
    if (!cl) {
        fprintf(stderr, "bench_load: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "bench_load: %s\n", ifp_client_curve_on(cl) ? "CURVE on" : "plain ZeroMQ (no CURVE)");
    double t_zero;
    double lag = run(cl, &a, w, reqs, n, &t_zero);
    if (lag < 0) {
        fprintf(stderr, "bench_load: the client failed: %s\n", zmq_strerror(zmq_errno()));
        goto done;
    }
    bl_summary_t s;
    summarize(reqs, n, w, lag, &s);
    printf("policy %s, rate %.2f/s: %d requests, %d ok, %d failed (overloaded %d, bad %d, deadline %d, internal %d), "
           "%d timeouts\n",
           a.policy, a.rate, s.n, s.ok, s.failed, s.by_code[IFP__ERROR_CODE__ERR_OVERLOADED],
           s.by_code[IFP__ERROR_CODE__ERR_BAD_REQUEST], s.by_code[IFP__ERROR_CODE__ERR_DEADLINE],
           s.by_code[IFP__ERROR_CODE__ERR_INTERNAL], s.timeouts);
    printf("  %ld tokens in %.2f s: %.1f tok/s, %.2f req/s; TTFT ms p50 %.1f p95 %.1f p99 %.1f; TPOT ms p50 %.2f "
           "p95 %.2f p99 %.2f; E2E ms p50 %.0f p99 %.0f\n",
           s.tokens, s.wall_s, s.tps, s.rps, s.ttft[0], s.ttft[1], s.ttft[2], s.tpot[0], s.tpot[1], s.tpot[2],
           s.e2e[0], s.e2e[2]);
    printf("  hit rate %.3f, compact exact %.3f, dense %.3f, mean coverage %.4f, max send lag %.1f ms\n", s.hit,
           s.compact, s.dense, s.coverage, s.lag);
    if (n_routers > 1) {
        int moved = 0, moves = 0;
        double stall = 0;
        for (int i = 0; i < n; i++) {
            moved += reqs[i].failovers > 0, moves += reqs[i].failovers;
            if (reqs[i].stall_ms > stall) stall = reqs[i].stall_ms;
        }
        printf("  %d routers: %d requests moved (%d moves), longest stall %.1f ms\n", n_routers, moved, moves, stall);
    }
    printf("load policy=%s rate=%g tps=%.1f rps=%.2f ttft_p50_ms=%.1f ttft_p99_ms=%.1f tpot_p50_ms=%.2f "
           "tpot_p99_ms=%.2f hit_rate=%.3f errors=%d overloaded=%d timeouts=%d\n",
           a.policy, a.rate, s.tps, s.rps, s.ttft[0], s.ttft[2], s.tpot[0], s.tpot[2], s.hit, s.failed,
           s.by_code[IFP__ERROR_CODE__ERR_OVERLOADED], s.timeouts);
    if (a.csv && write_csv(&a, &s)) fprintf(stderr, "bench_load: cannot write %s\n", a.csv);
    if (a.per_request && write_per_request(a.per_request, reqs, n, w))
        fprintf(stderr, "bench_load: cannot write %s\n", a.per_request);
    status = 0;
done:
    ifp_client_close(&cl);
    free(reqs);
    free(pool);
    wl_destroy(&w);
    return status;
}
