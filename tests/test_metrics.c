/* test_metrics — router/metrics.c and router/reqlog.c without a router: a
 * metrics set fed finishes, predictor jobs, replays and tokens, rendered
 * against a made-up router state, and the text checked line by line as
 * Prometheus reads it (text format 0.0.4: every family has # HELP and
 * # TYPE before its samples, samples are `name{labels} value`, a histogram's
 * buckets are cumulative and end with le="+Inf" equal to _count), the
 * numbers moving as fed; then the same text through Prometheus's own
 * checker (`promtool check metrics`) when it is installed.  Also the
 * request log line: its fields in order, values from outside quoted and
 * escaped so no id can break the line, and the log stamp's format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "prom_testlib.h"
#include "reqlog.h"
#include "rt.h"

/* ---------------------------------------------------------------- a state */

typedef struct {
    rt_metrics_t *m;
    rt_stats_t st;
    rt_mgroup_t groups[3];
    double demand[3];
    rt_mview_t v;
    ifp_buf_t out;
} env_t;

static void env_init(env_t *e) {
    memset(e, 0, sizeof *e);
    e->m = rt_metrics_new(3, 3);
    assert_non_null(e->m);
    e->groups[0] = (rt_mgroup_t){"g0", 0, 1, 4, 3, 120, 0};
    e->groups[1] = (rt_mgroup_t){"g1", 1, 0, 4, 0, 0, 2};
    e->groups[2] = (rt_mgroup_t){"d", IFP_CLUSTER_DENSE, 1, 8, 8, 0, 0};
    e->demand[0] = 1.5, e->demand[1] = 0.25, e->demand[2] = 0;
    e->v = (rt_mview_t){.now_ms = ifp_now_ms() + 5000,
                        .inflight = 3,
                        .queued = 1,
                        .predicting = 2,
                        .workers = 2,
                        .busy_ms = 0,
                        .stats = (const uint64_t *)&e->st,
                        .n_groups = 3,
                        .groups = e->groups,
                        .demand = e->demand};
}

static void env_free(env_t *e) {
    rt_metrics_destroy(&e->m);
    assert_null(e->m);
    ifp_buf_free(&e->out);
}

static const char *render(env_t *e) {
    ifp_buf_reset(&e->out);
    assert_int_equal(rt_metrics_render_view(e->m, &e->v, &e->out), IFP_OK);
    char err[512];
    if (pt_check_exposition(e->out.p, err, sizeof err)) fail_msg("%s\n--- the text:\n%s", err, e->out.p);
    return e->out.p;
}

/* A request answered on group g of cluster gc (mask nearest cluster c):
 * arrival 1000 ms, mask 1010, dispatch 1030, first token 1130, then 9 ms
 * per token (no time on a bucket bound). */
static rt_mfinish_t answered(int n_tokens, int g, int gc, int c, double coverage) {
    return (rt_mfinish_t){.status = RT_MSTATUS_OK,
                          .finish = RT_FIN_LENGTH,
                          .n_prompt = 12,
                          .n_tokens = n_tokens,
                          .t_arrival = 1000,
                          .t_masked = 1010,
                          .t_dispatch = 1030,
                          .t_first = 1130,
                          .t_end = 1130 + 9.0 * (n_tokens - 1),
                          .group = g,
                          .group_cluster = gc,
                          .cluster = c,
                          .coverage = coverage};
}

/* ---------------------------------------------------------------- tests */

static void histogram_buckets(void **u) {
    (void)u;
    static const double le[] = {0.1, 1, 10};
    rt_hist_t h;
    rt_hist_init(&h, le, 3);
    rt_hist_observe(&h, 0.1); /* a bound is in its own bucket (le: less or equal) */
    rt_hist_observe(&h, 0.5);
    rt_hist_observe(&h, 10);
    rt_hist_observe(&h, 11);
    rt_hist_observe(&h, NAN); /* ignored */
    assert_int_equal(h.count, 4);
    assert_int_equal(h.bucket[0], 1);
    assert_int_equal(h.bucket[1], 1);
    assert_int_equal(h.bucket[2], 1);
    assert_int_equal(h.bucket[3], 1);
    assert_true(fabs(h.sum - 21.6) < 1e-9);
}

static void statuses(void **u) {
    (void)u;
    assert_int_equal(rt_mstatus_of(RT_FIN_EOS, IFP__ERROR_CODE__ERR_NONE), RT_MSTATUS_OK);
    assert_int_equal(rt_mstatus_of(RT_FIN_STOP, IFP__ERROR_CODE__ERR_NONE), RT_MSTATUS_OK);
    assert_int_equal(rt_mstatus_of(RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE), RT_MSTATUS_CANCELLED);
    assert_int_equal(rt_mstatus_of(RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_DEADLINE), RT_MSTATUS_DEADLINE);
    assert_int_equal(rt_mstatus_of(RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL), RT_MSTATUS_ERROR);
    assert_int_equal(rt_mstatus_of(RT_FIN_ERROR, IFP__ERROR_CODE__ERR_NONE), RT_MSTATUS_ERROR);
    assert_string_equal(rt_mstatus_name(RT_MSTATUS_CLIENT_GONE), "client_gone");
    assert_string_equal(rt_finish_name(RT_FIN_EOS), "eos");
    assert_string_equal(rt_finish_name(RT_FIN_NONE), "-");
}

/* The checker itself refuses what Prometheus would. */
static void checker_refuses(void **u) {
    (void)u;
    static const char *const bad[] = {
        "a_total 1\n",                                                        /* no HELP / TYPE */
        "# TYPE a gauge\n# HELP a x\na 1\n",                                 /* TYPE first */
        "# HELP a x\n# TYPE a gauge\na 1",                                   /* no final newline */
        "# HELP a x\n# TYPE a gauge\na{l=\"v} 1\n",                         /* unterminated value */
        "# HELP a x\n# TYPE a gauge\na{l=\"\\q\"} 1\n",                    /* bad escape */
        "# HELP a x\n# TYPE a gauge\na one\n",                               /* not a number */
        "# HELP a x\n# TYPE a counter\na -1\n",                              /* negative counter */
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
        "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",                        /* not cumulative */
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n", /* no +Inf */
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", /* +Inf != count */
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na 2\n", /* a split */
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!pt_check_exposition(bad[i], err, sizeof err)) fail_msg("case %zu accepted:\n%s", i, bad[i]);
    assert_int_equal(pt_check_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{l=\"a\\\\\\n\\\"\",le=\"1\"} 1\n"
                                         "h_bucket{l=\"a\\\\\\n\\\"\",le=\"+Inf\"} 2\nh_sum{l=\"a\\\\\\n\\\"\"} 3\n"
                                         "h_count{l=\"a\\\\\\n\\\"\"} 2\n",
                                         err, sizeof err),
                     0);
}

/* An empty set renders every family, and the checker accepts it. */
static void empty_renders(void **u) {
    (void)u;
    env_t e;
    env_init(&e);
    const char *t = render(&e);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"ok\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_time_to_first_token_seconds_count"), 0);
    assert_int_equal(pt_value_of(t, "ifp_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_requests_inflight"), 3);
    assert_int_equal(pt_value_of(t, "ifp_queue_depth"), 1);
    assert_int_equal(pt_value_of(t, "ifp_requests_predicting"), 2);
    assert_int_equal(pt_value_of(t, "ifp_predictor_workers"), 2);
    assert_int_equal(pt_value_of(t, "ifp_group_live{group=\"g1\",cluster=\"1\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_group_free_slots{group=\"g0\",cluster=\"0\"}"), 3);
    assert_int_equal(pt_value_of(t, "ifp_group_slots{group=\"d\",cluster=\"dense\"}"), 8);
    assert_int_equal(pt_value_of(t, "ifp_group_load{group=\"g0\",cluster=\"0\"}"), 120);
    assert_int_equal(pt_value_of(t, "ifp_group_deaths_total{group=\"g1\",cluster=\"1\"}"), 2);
    assert_true(pt_value_of(t, "ifp_cluster_demand{cluster=\"0\"}") == 1.5);
    assert_true(pt_value_of(t, "ifp_cluster_demand{cluster=\"1\"}") == 0.25);
    assert_true(isnan(pt_value_of(t, "ifp_cluster_demand{cluster=\"dense\"}"))); /* demand is per cluster only */
    assert_int_equal(pt_value_of(t, "ifp_cluster_requests_total{cluster=\"dense\"}"), 0);
    assert_true(pt_value_of(t, "ifp_router_uptime_seconds") >= 5);
    assert_non_null(strstr(t, "\nifp_build_info{version=\""));
    assert_non_null(strstr(t, "# TYPE ifp_time_per_output_token_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE ifp_cluster_coverage summary\n"));
    assert_non_null(strstr(t, "# TYPE ifp_router_tok_gap_total counter\n"));
    env_free(&e);
}

/* Every rt_stats_t counter is rendered with its own HELP line. */
static void every_counter_has_help(void **u) {
    (void)u;
    static const char *const names[] = {
#define RT_STAT_NAME(name) #name,
        RT_STATS(RT_STAT_NAME)
#undef RT_STAT_NAME
    };
    env_t e;
    env_init(&e);
    uint64_t *st = (uint64_t *)&e.st;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) st[i] = 100 + i;
    const char *t = render(&e);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char key[128];
        if (!rt_metrics_stat_help(names[i])) fail_msg("rt_stats_t counter %s has no HELP in router/metrics.c", names[i]);
        snprintf(key, sizeof key, "ifp_router_%s_total", names[i]);
        assert_int_equal(pt_value_of(t, key), 100 + i);
    }
    env_free(&e);
}

/* The numbers move as the traffic fed says. */
static void values_move(void **u) {
    (void)u;
    env_t e;
    env_init(&e);
    /* 3 answered on their own cluster's group (0, 0, 1), 1 on the dense group
     * (a miss for cluster 1, coverage 1), 1 dense-mode request on the dense group */
    rt_mfinish_t f[5] = {answered(5, 0, 0, 0, 1.0), answered(3, 0, 0, 0, 0.9), answered(1, 1, 1, 1, 1.0),
                         answered(8, 2, IFP_CLUSTER_DENSE, 1, 1.0),
                         answered(2, 2, IFP_CLUSTER_DENSE, IFP_CLUSTER_DENSE, 1.0)};
    f[1].finish = RT_FIN_EOS; /* 3 tokens + EOS: 3 steps after the first */
    for (int i = 0; i < 5; i++) rt_metrics_finish(e.m, &f[i]);
    /* one deadline (running, no token yet), one cancelled before dispatch, one client gone */
    rt_mfinish_t dl = {.status = RT_MSTATUS_DEADLINE, .finish = RT_FIN_CANCELLED, .n_prompt = 4, .t_arrival = 1000,
                       .t_masked = 1001, .t_dispatch = 1001.5, .t_end = 3000, .group = 1, .group_cluster = 1,
                       .cluster = 1, .coverage = 1};
    rt_mfinish_t cc = {.status = RT_MSTATUS_CANCELLED, .finish = RT_FIN_CANCELLED, .n_prompt = 4,
                       .t_arrival = 1000, .t_end = 1500, .group = -1, .cluster = 2};
    rt_mfinish_t gone = answered(4, 0, 0, 0, 1.0);
    gone.status = RT_MSTATUS_CLIENT_GONE, gone.finish = RT_FIN_CANCELLED;
    rt_metrics_finish(e.m, &dl);
    rt_metrics_finish(e.m, &cc);
    rt_metrics_finish(e.m, &gone);
    e.st.bad_requests = 7, e.st.overloaded = 2, e.st.auth_refused = 1;
    rt_metrics_job(e.m, 4, 3);       /* 4 ms from submit, 3 on the worker */
    rt_metrics_job(e.m, 2000, 1500);
    rt_metrics_replay(e.m, 1);
    rt_metrics_replay(e.m, 1);
    rt_metrics_replay(e.m, 7); /* no such group: ignored */
    for (int i = 0; i < 10; i++) rt_metrics_token(e.m, 0);
    const char *t = render(&e);

    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"ok\"}"), 5);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"deadline\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"cancelled\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"client_gone\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"error\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"bad_request\"}"), 7); /* from rt_stats_t */
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"overloaded\"}"), 2);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"unauthorized\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_requests_finished_total{finish_reason=\"length\"}"), 4);
    assert_int_equal(pt_value_of(t, "ifp_requests_finished_total{finish_reason=\"eos\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_requests_finished_total{finish_reason=\"cancelled\"}"), 3);
    assert_int_equal(pt_value_of(t, "ifp_prompt_tokens_total"), 6 * 12 + 4 + 4);
    assert_int_equal(pt_value_of(t, "ifp_completion_tokens_total"), 5 + 3 + 1 + 8 + 2 + 4);
    /* TTFT: every request with a first token (6), 0.13 s each */
    assert_int_equal(pt_value_of(t, "ifp_time_to_first_token_seconds_count"), 6);
    assert_true(fabs(pt_value_of(t, "ifp_time_to_first_token_seconds_sum") - 6 * 0.13) < 1e-9);
    assert_int_equal(pt_value_of(t, "ifp_time_to_first_token_seconds_bucket{le=\"0.1\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_time_to_first_token_seconds_bucket{le=\"0.15\"}"), 6);
    /* per output token: answered with 2+ generated tokens: 5, 3+EOS, 8, 2 (not 1, not client_gone) */
    assert_int_equal(pt_value_of(t, "ifp_time_per_output_token_seconds_count"), 4);
    assert_int_equal(pt_value_of(t, "ifp_time_per_output_token_seconds_bucket{le=\"0.005\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_time_per_output_token_seconds_bucket{le=\"0.01\"}"), 4); /* 9, 6, 9, 9 ms */
    assert_true(fabs(pt_value_of(t, "ifp_time_per_output_token_seconds_sum") - 0.033) < 1e-9);
    /* end to end: all 8; queue: the 7 dispatched, 20 ms each but the deadline's 0.5 ms */
    assert_int_equal(pt_value_of(t, "ifp_e2e_request_latency_seconds_count"), 8);
    assert_int_equal(pt_value_of(t, "ifp_e2e_request_latency_seconds_bucket{le=\"1\"}"), 7);
    assert_int_equal(pt_value_of(t, "ifp_queue_time_seconds_count"), 7);
    assert_int_equal(pt_value_of(t, "ifp_queue_time_seconds_bucket{le=\"0.001\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_queue_time_seconds_bucket{le=\"0.025\"}"), 7);
    assert_int_equal(pt_value_of(t, "ifp_request_prompt_tokens_count"), 8);
    assert_int_equal(pt_value_of(t, "ifp_request_completion_tokens_bucket{le=\"1\"}"), 3); /* 1, and two with 0 */
    /* predictor */
    assert_int_equal(pt_value_of(t, "ifp_predictor_latency_seconds_count"), 2);
    assert_int_equal(pt_value_of(t, "ifp_predictor_latency_seconds_bucket{le=\"0.005\"}"), 1);
    assert_true(fabs(pt_value_of(t, "ifp_predictor_work_seconds_sum") - 1.503) < 1e-9);
    /* groups */
    assert_int_equal(pt_value_of(t, "ifp_group_replays_total{group=\"g1\",cluster=\"1\"}"), 2);
    assert_int_equal(pt_value_of(t, "ifp_group_replays_total{group=\"g0\",cluster=\"0\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_group_tokens_total{group=\"g0\",cluster=\"0\"}"), 10);
    /* clusters: 0 -> 3 requests (2 + client gone), all hits; 1 -> 3 (own group, dense group,
     * the deadline on its own group), 2 hits; 2 -> 1, never served; dense -> 1 hit */
    assert_int_equal(pt_value_of(t, "ifp_cluster_requests_total{cluster=\"0\"}"), 3);
    assert_int_equal(pt_value_of(t, "ifp_cluster_hits_total{cluster=\"0\"}"), 3);
    assert_int_equal(pt_value_of(t, "ifp_cluster_requests_total{cluster=\"1\"}"), 3);
    assert_int_equal(pt_value_of(t, "ifp_cluster_hits_total{cluster=\"1\"}"), 2);
    assert_int_equal(pt_value_of(t, "ifp_cluster_requests_total{cluster=\"2\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_cluster_hits_total{cluster=\"2\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_cluster_coverage_count{cluster=\"2\"}"), 0);
    assert_int_equal(pt_value_of(t, "ifp_cluster_requests_total{cluster=\"dense\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_cluster_hits_total{cluster=\"dense\"}"), 1);
    assert_int_equal(pt_value_of(t, "ifp_cluster_coverage_count{cluster=\"0\"}"), 3);
    assert_true(fabs(pt_value_of(t, "ifp_cluster_coverage_sum{cluster=\"0\"}") - 2.9) < 1e-9);

    /* more traffic: the counters only grow */
    rt_metrics_finish(e.m, &f[0]);
    t = render(&e);
    assert_int_equal(pt_value_of(t, "ifp_requests_total{status=\"ok\"}"), 6);
    assert_int_equal(pt_value_of(t, "ifp_time_to_first_token_seconds_count"), 7);
    env_free(&e);
}

/* Busy share: 2 workers, 1 s busy in the 5 s since the start -> 0.1; the
 * busy-seconds counter never goes back even if a reading does. */
static void predictor_busy(void **u) {
    (void)u;
    env_t e;
    env_init(&e);
    e.v.busy_ms = 1000;
    const char *t = render(&e);
    double r = pt_value_of(t, "ifp_predictor_busy_ratio");
    assert_true(r > 0.09 && r <= 0.1);
    assert_true(pt_value_of(t, "ifp_predictor_busy_seconds_total") == 1);
    e.v.busy_ms = 999.999;
    t = render(&e);
    assert_true(pt_value_of(t, "ifp_predictor_busy_seconds_total") == 1);
    /* a minute later, fully busy over the last minute */
    e.v.now_ms += 61000;
    e.v.busy_ms = 1000 + 2 * 61000;
    t = render(&e);
    r = pt_value_of(t, "ifp_predictor_busy_ratio");
    assert_true(r > 0.99 && r <= 1.0);
    env_free(&e);
}

/* Label values are escaped: a group name with a quote, a backslash and a
 * newline still makes one well-formed line. */
static void labels_escaped(void **u) {
    (void)u;
    env_t e;
    env_init(&e);
    e.groups[1].name = "we\"ird\\na\nme";
    const char *t = render(&e);
    assert_non_null(strstr(t, "ifp_group_live{group=\"we\\\"ird\\\\na\\nme\",cluster=\"1\"} 0\n"));
    env_free(&e);
}

/* promtool check metrics, when Prometheus's tools are installed. */
static void promtool_accepts(void **u) {
    (void)u;
    env_t e;
    env_init(&e);
    rt_mfinish_t f = answered(5, 0, 0, 0, 1.0);
    rt_metrics_finish(e.m, &f);
    rt_metrics_job(e.m, 4, 3);
    e.st.requests = 3;
    char out[4096];
    int st = pt_promtool(render(&e), out, sizeof out);
    env_free(&e);
    if (st < 0) {
        fprintf(stderr, "  promtool not found (Debian package prometheus): skipped\n");
        skip();
    }
    if (st != 0) fail_msg("promtool check metrics (exit %d):\n%s", st, out);
}

/* ---------------------------------------------------------------- the request log */

/* Splits a logfmt line into keys (in order) and values (quoted values
 * unescaped); returns the count, or -1 if it is not logfmt. */
static int logfmt_parse(const char *s, char keys[][32], char vals[][512], int cap) {
    int n = 0;
    while (*s) {
        if (n == cap) return -1;
        size_t k = strcspn(s, "= ");
        if (!k || s[k] != '=' || k >= 32) return -1;
        snprintf(keys[n], 32, "%.*s", (int)k, s);
        s += k + 1;
        size_t vn = 0;
        if (*s == '"') {
            for (s++; *s != '"'; s++) {
                if (!*s || *s == '\n') return -1;
                char ch = *s;
                if (*s == '\\') {
                    s++;
                    if (*s == 'u') { /* \u00XX */
                        ch = (char)strtol((char[]){s[1], s[2], s[3], s[4], 0}, NULL, 16);
                        s += 4;
                    } else {
                        ch = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : *s;
                    }
                }
                if (vn < 511) vals[n][vn++] = ch;
            }
            s++;
        } else {
            while (*s && *s != ' ') {
                if (*s == '"' || *s == '\n' || vn >= 511) return -1;
                vals[n][vn++] = *s++;
            }
        }
        vals[n][vn] = '\0';
        n++;
        if (*s == ' ') s++;
        else if (*s) return -1;
    }
    return n;
}

static void request_log_line(void **u) {
    (void)u;
    rt_req_t *r = rt_req_new(42, "c", 1, "a \"quoted\" id\nkey=forged\\ \x01");
    assert_non_null(r);
    static const int32_t prompt[] = {1, 2, 3};
    assert_int_equal(rt_req_set_prompt(r, prompt, 3, 8), IFP_OK);
    r->via_http = 1;
    r->mask_mode = IFP__MASK_MODE__MASK_INPUT;
    r->n_tokens = 2;
    r->t_arrival = 1000, r->t_masked = 1008.25, r->t_dispatch = 1010, r->t_first = 1123.44;
    r->coverage = 0.96;
    r->finish = RT_FIN_EOS;
    static const char *const want[] = {"ts", "level", "msg", "id", "rid", "key", "group", "cluster", "coverage",
                                       "mask", "nearest", "prompt_tokens", "completion_tokens", "ttft_ms",
                                       "duration_ms", "queue_ms", "predictor_ms", "replays", "status", "finish", "via"};
    enum { N = sizeof want / sizeof *want };
    ifp_buf_t b = {0};
    rt_reqlog_line(&b, r, "2026-12-03T10:41:07.123Z", "g0", 0, RT_MSTATUS_OK, 2234.5);
    assert_null(strchr(b.p, '\n'));
    char keys[32][32], vals[32][512];
    int n = logfmt_parse(b.p, keys, vals, 32);
    if (n != N) fail_msg("%d fields in: %s", n, b.p);
    for (int i = 0; i < N; i++) assert_string_equal(keys[i], want[i]);
    assert_string_equal(vals[0], "2026-12-03T10:41:07.123Z");
    assert_string_equal(vals[1], "info");
    assert_string_equal(vals[3], "a \"quoted\" id\nkey=forged\\ \x01");
    assert_non_null(strstr(b.p, " id=\"a \\\"quoted\\\" id\\nkey=forged\\\\ \\u0001\" rid=42 key=- group=g0 cluster=0 "
                                "coverage=0.960 mask=input nearest=- prompt_tokens=3 completion_tokens=2 ttft_ms=123.4 "
                                "duration_ms=1234.5 queue_ms=1.8 predictor_ms=8.2 replays=0 status=ok finish=eos "
                                "via=http"));
    /* no group, no token, a key name; a deadline is a warning */
    snprintf(r->key_name, sizeof r->key_name, "alice");
    r->via_http = 0, r->t_first = 0, r->t_dispatch = 0, r->finish = RT_FIN_CANCELLED;
    ifp_buf_reset(&b);
    rt_reqlog_line(&b, r, "2026-12-03T10:41:07.123Z", NULL, 0, RT_MSTATUS_DEADLINE, 3000);
    assert_non_null(strstr(b.p, " level=warn "));
    assert_non_null(strstr(b.p, " key=alice group=- cluster=- coverage=- "));
    assert_non_null(strstr(b.p, " ttft_ms=- duration_ms=2000.0 queue_ms=- "));
    assert_non_null(strstr(b.p, " status=deadline finish=cancelled via=zmq"));
    assert_int_equal(logfmt_parse(b.p, keys, vals, 32), N);
    ifp_buf_free(&b);
    rt_req_free(r);
}

/* The stamp: RFC 3339, UTC, milliseconds. */
static void log_stamp(void **u) {
    (void)u;
    char s[IFP_LOG_STAMP_LEN + 1];
    assert_string_equal(ifp_log_stamp_at(s, sizeof s, 1796294467.1234), "2026-12-03T10:41:07.123Z");
    assert_string_equal(ifp_log_stamp_at(s, sizeof s, 0), "1970-01-01T00:00:00.000Z");
    ifp_log_stamp(s, sizeof s);
    assert_int_equal(strlen(s), IFP_LOG_STAMP_LEN);
    assert_true(s[4] == '-' && s[10] == 'T' && s[19] == '.' && s[23] == 'Z');
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(histogram_buckets), cmocka_unit_test(statuses),
        cmocka_unit_test(checker_refuses),
        cmocka_unit_test(empty_renders),     cmocka_unit_test(every_counter_has_help),
        cmocka_unit_test(values_move),       cmocka_unit_test(predictor_busy),
        cmocka_unit_test(labels_escaped),    cmocka_unit_test(promtool_accepts),
        cmocka_unit_test(request_log_line),  cmocka_unit_test(log_stamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
