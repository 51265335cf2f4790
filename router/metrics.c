/* metrics.c — the router's Prometheus metrics (see metrics.h; the families
 * are listed in docs/OPERATIONS.md "Metrics and logs"). */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reqlog.h"
#include "rt.h"

#ifndef IFP_VERSION
#define IFP_VERSION "unknown"
#endif
#ifndef IFP_GIT
#define IFP_GIT "unknown"
#endif

#define BUSY_WINDOW_MS 60000.0 /* ifp_predictor_busy_ratio: over about the last minute */
#define BUSY_SAMPLES 128       /* one at most every second */

/* ---------------------------------------------------------------- statuses */

static const char *const STATUS_NAMES[RT_MSTATUS_N] = {"ok",        "bad_request", "overloaded",  "unauthorized",
                                                        "deadline",  "cancelled",   "client_gone", "error"};
/* finish reasons by RT_FIN_* value (NONE is never a finish) */
static const char *const FINISH_NAMES[] = {NULL, "length", "stop", "eos", "cancelled", "error"};
enum { N_FINISH = sizeof FINISH_NAMES / sizeof *FINISH_NAMES };

const char *rt_mstatus_name(int status) {
    return status >= 0 && status < RT_MSTATUS_N ? STATUS_NAMES[status] : "error";
}

const char *rt_finish_name(int finish) { return finish > 0 && finish < N_FINISH ? FINISH_NAMES[finish] : "-"; }

int rt_mstatus_of(int finish, int code) {
    if (code == IFP__ERROR_CODE__ERR_DEADLINE) return RT_MSTATUS_DEADLINE;
    if (code == IFP__ERROR_CODE__ERR_BAD_REQUEST) return RT_MSTATUS_BAD_REQUEST;
    if (code == IFP__ERROR_CODE__ERR_OVERLOADED) return RT_MSTATUS_OVERLOADED;
    if (code == IFP__ERROR_CODE__ERR_UNAUTHORIZED) return RT_MSTATUS_UNAUTHORIZED;
    if (code != IFP__ERROR_CODE__ERR_NONE || finish == RT_FIN_ERROR) return RT_MSTATUS_ERROR;
    if (finish == RT_FIN_CANCELLED) return RT_MSTATUS_CANCELLED;
    return RT_MSTATUS_OK;
}

/* ---------------------------------------------------------------- histograms */

void rt_hist_init(rt_hist_t *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->n = n < 0 ? 0 : n > RT_HIST_MAX ? RT_HIST_MAX : n;
    memcpy(h->le, le, (size_t)h->n * sizeof *le);
}

void rt_hist_observe(rt_hist_t *h, double v) {
    if (!isfinite(v)) return;
    int i = 0;
    while (i < h->n && v > h->le[i]) i++;
    h->bucket[i]++;
    h->sum += v;
    h->count++;
}

/* seconds */
static const double LE_TTFT[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
                                 1,     1.5,  2,     3,    5,     7.5, 10,   20,  40,  80};
static const double LE_TPOT[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1,
                                 0.15,  0.2,    0.3,   0.5,  0.75, 1,    2.5,  5};
static const double LE_E2E[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600};
static const double LE_QUEUE[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5,   1,      2.5,   5,    10,    30,   60,  120};
static const double LE_PRED[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
/* tokens */
static const double LE_TOKENS[] = {1, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
#define N_OF(a) ((int)(sizeof a / sizeof *a))

/* ---------------------------------------------------------------- the set */

typedef struct {
    double t, busy; /* ifp_now_ms, rt_predict_busy_ms */
} busy_sample_t;

struct rt_metrics {
    double t_start;                /* ifp_now_ms at creation */
    uint64_t status[RT_MSTATUS_N]; /* finished requests (refusals come from rt_stats_t) */
    uint64_t finish[N_FINISH];
    uint64_t prompt_tokens, completion_tokens;
    rt_hist_t ttft, tpot, e2e, queue, pred_latency, pred_work, req_prompt, req_completion;
    int n_groups, n_clusters;
    uint64_t *g_replays, *g_tokens;                     /* [n_groups] */
    uint64_t *c_requests, *c_hits, *c_cov_n;            /* [n_clusters + 1]: the last is "dense" */
    double *c_cov_sum;
    double *demand;                                     /* [n_clusters + 1] scratch of rt_metrics_render */
    ifp_buf_t line;                                     /* the request log line (reused) */
    double busy_seen;                                   /* the largest busy_ms rendered (a counter never falls) */
    busy_sample_t win[BUSY_SAMPLES];                    /* a ring */
    int win_n, win_at;
};

rt_metrics_t *rt_metrics_new(int n_groups, int n_clusters) {
    rt_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n_groups = n_groups > 0 ? n_groups : 0;
    m->n_clusters = n_clusters > 0 ? n_clusters : 0;
    m->t_start = ifp_now_ms();
    rt_hist_init(&m->ttft, LE_TTFT, N_OF(LE_TTFT));
    rt_hist_init(&m->tpot, LE_TPOT, N_OF(LE_TPOT));
    rt_hist_init(&m->e2e, LE_E2E, N_OF(LE_E2E));
    rt_hist_init(&m->queue, LE_QUEUE, N_OF(LE_QUEUE));
    rt_hist_init(&m->pred_latency, LE_PRED, N_OF(LE_PRED));
    rt_hist_init(&m->pred_work, LE_PRED, N_OF(LE_PRED));
    rt_hist_init(&m->req_prompt, LE_TOKENS, N_OF(LE_TOKENS));
    rt_hist_init(&m->req_completion, LE_TOKENS, N_OF(LE_TOKENS));
    size_t ng = (size_t)m->n_groups + 1, nc = (size_t)m->n_clusters + 1;
    m->g_replays = calloc(ng, sizeof *m->g_replays);
    m->g_tokens = calloc(ng, sizeof *m->g_tokens);
    m->c_requests = calloc(nc, sizeof *m->c_requests);
    m->c_hits = calloc(nc, sizeof *m->c_hits);
    m->c_cov_n = calloc(nc, sizeof *m->c_cov_n);
    m->c_cov_sum = calloc(nc, sizeof *m->c_cov_sum);
    m->demand = calloc(nc, sizeof *m->demand);
    if (!m->g_replays || !m->g_tokens || !m->c_requests || !m->c_hits || !m->c_cov_n || !m->c_cov_sum || !m->demand)
        rt_metrics_destroy(&m);
    return m;
}

void rt_metrics_destroy(rt_metrics_t **mp) {
    if (!mp || !*mp) return;
    rt_metrics_t *m = *mp;
    free(m->g_replays);
    free(m->g_tokens);
    free(m->c_requests);
    free(m->c_hits);
    free(m->c_cov_n);
    free(m->c_cov_sum);
    free(m->demand);
    ifp_buf_free(&m->line);
    free(m);
    *mp = NULL;
}

/* The cluster slot of a cluster index: IFP_CLUSTER_DENSE (or out of range)
 * -> the last, "dense". */
static int cslot(const rt_metrics_t *m, int cluster) {
    return cluster >= 0 && cluster < m->n_clusters ? cluster : m->n_clusters;
}

static double secs(double t0_ms, double t1_ms) { return (t1_ms - t0_ms) * 1e-3; }

void rt_metrics_finish(rt_metrics_t *m, const rt_mfinish_t *f) {
    if (!m) return;
    m->status[f->status >= 0 && f->status < RT_MSTATUS_N ? f->status : RT_MSTATUS_ERROR]++;
    if (f->finish > 0 && f->finish < N_FINISH) m->finish[f->finish]++;
    m->prompt_tokens += (uint64_t)(f->n_prompt > 0 ? f->n_prompt : 0);
    m->completion_tokens += (uint64_t)(f->n_tokens > 0 ? f->n_tokens : 0);
    if (f->n_prompt > 0) rt_hist_observe(&m->req_prompt, f->n_prompt);
    rt_hist_observe(&m->req_completion, f->n_tokens > 0 ? f->n_tokens : 0);
    if (f->t_arrival > 0) {
        rt_hist_observe(&m->e2e, secs(f->t_arrival, f->t_end));
        if (f->t_first > 0) rt_hist_observe(&m->ttft, secs(f->t_arrival, f->t_first));
    }
    if (f->t_dispatch > 0) rt_hist_observe(&m->queue, secs(f->t_masked > 0 ? f->t_masked : f->t_arrival, f->t_dispatch));
    /* per output token: the end of an answered request is its last token's
     * arrival (an EOS is a generated token the text does not show) */
    int generated = f->n_tokens + (f->finish == RT_FIN_EOS);
    if (f->status == RT_MSTATUS_OK && f->t_first > 0 && generated >= 2)
        rt_hist_observe(&m->tpot, secs(f->t_first, f->t_end) / (generated - 1));
    int c = cslot(m, f->cluster);
    m->c_requests[c]++;
    if (f->group >= 0) {
        m->c_hits[c] += cslot(m, f->group_cluster) == c;
        m->c_cov_sum[c] += f->coverage;
        m->c_cov_n[c]++;
    }
}

void rt_metrics_job(rt_metrics_t *m, double latency_ms, double work_ms) {
    if (!m) return;
    rt_hist_observe(&m->pred_latency, latency_ms * 1e-3);
    rt_hist_observe(&m->pred_work, work_ms * 1e-3);
}

void rt_metrics_replay(rt_metrics_t *m, int group) {
    if (m && group >= 0 && group < m->n_groups) m->g_replays[group]++;
}

void rt_metrics_token(rt_metrics_t *m, int group) {
    if (m && group >= 0 && group < m->n_groups) m->g_tokens[group]++;
}

/* The workers' busy share over about the last minute (since the start for
 * the first minute), from busy-time samples taken at most once a second. */
static double busy_ratio(rt_metrics_t *m, double now, double busy, int workers) {
    if (busy < m->busy_seen) busy = m->busy_seen;
    m->busy_seen = busy;
    if (!m->win_n || now - m->win[(m->win_at + BUSY_SAMPLES - 1) % BUSY_SAMPLES].t >= 1000) {
        m->win[m->win_at] = (busy_sample_t){now, busy};
        m->win_at = (m->win_at + 1) % BUSY_SAMPLES;
        if (m->win_n < BUSY_SAMPLES) m->win_n++;
    }
    double t0 = m->t_start, b0 = 0; /* the newest sample at least a window old, else the start */
    for (int k = 0; k < m->win_n; k++) {
        int i = (m->win_at + BUSY_SAMPLES - 1 - k) % BUSY_SAMPLES;
        if (now - m->win[i].t >= BUSY_WINDOW_MS) {
            t0 = m->win[i].t, b0 = m->win[i].busy;
            break;
        }
    }
    if (workers <= 0 || now - t0 <= 0) return 0;
    double r = (busy - b0) / ((now - t0) * workers);
    return r < 0 ? 0 : r > 1 ? 1 : r;
}

/* ---------------------------------------------------------------- text format */

/* Appends s escaped for a label value (quote, backslash, newline) or for a
 * HELP text (backslash, newline). */
static void escaped(ifp_buf_t *o, const char *s, int label) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\') ifp_buf_append(o, "\\\\", 2);
        else if (*p == '\n') ifp_buf_append(o, "\\n", 2);
        else if (*p == '"' && label) ifp_buf_append(o, "\\\"", 2);
        else ifp_buf_append(o, p, 1);
    }
}

static void family(ifp_buf_t *o, const char *name, const char *type, const char *help) {
    ifp_buf_printf(o, "# HELP %s ", name);
    escaped(o, help, 0);
    ifp_buf_printf(o, "\n# TYPE %s %s\n", name, type);
}

static void number(ifp_buf_t *o, double v) {
    if (isnan(v)) ifp_buf_append(o, "NaN", 3);
    else if (isinf(v)) ifp_buf_printf(o, "%cInf", v > 0 ? '+' : '-');
    else if (v == floor(v) && fabs(v) < 9e15) ifp_buf_printf(o, "%.0f", v);
    else ifp_buf_printf(o, "%.10g", v);
}

/* name{k1="v1",k2="v2"} value: labels as a NULL-terminated list of key,
 * value pairs (values escaped here); extra: one more pair already written
 * ("le=\"0.5\""), or NULL. */
static void sample(ifp_buf_t *o, const char *name, const char *const *labels, const char *extra, double v) {
    ifp_buf_append(o, name, strlen(name));
    int any = 0;
    for (int i = 0; labels && labels[i]; i += 2) {
        ifp_buf_printf(o, "%c%s=\"", any++ ? ',' : '{', labels[i]);
        escaped(o, labels[i + 1], 1);
        ifp_buf_append(o, "\"", 1);
    }
    if (extra) ifp_buf_printf(o, "%c%s", any++ ? ',' : '{', extra);
    ifp_buf_append(o, any ? "} " : " ", any ? 2 : 1);
    number(o, v);
    ifp_buf_append(o, "\n", 1);
}

static void one(ifp_buf_t *o, const char *name, const char *type, const char *help, double v) {
    family(o, name, type, help);
    sample(o, name, NULL, NULL, v);
}

static void histogram(ifp_buf_t *o, const char *name, const char *help, const rt_hist_t *h) {
    char n[160], le[64];
    family(o, name, "histogram", help);
    snprintf(n, sizeof n, "%s_bucket", name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->bucket[i];
        snprintf(le, sizeof le, "le=\"%.10g\"", h->le[i]);
        sample(o, n, NULL, le, (double)cum);
    }
    sample(o, n, NULL, "le=\"+Inf\"", (double)h->count);
    snprintf(n, sizeof n, "%s_sum", name);
    sample(o, n, NULL, NULL, h->sum);
    snprintf(n, sizeof n, "%s_count", name);
    sample(o, n, NULL, NULL, (double)h->count);
}

static const char *cluster_label(char *buf, size_t cap, int cluster) {
    if (cluster < 0) return "dense";
    snprintf(buf, cap, "%d", cluster);
    return buf;
}

/* One help line per rt_stats_t counter (router/rt.h RT_STATS). */
static const struct {
    const char *name, *help;
} STAT_HELP[] = {
    {"requests", "Request messages received from clients, before any check"},
    {"replies", "Replies sent: requests that ended after admission"},
    {"bad_requests", "Requests refused as invalid (ERR_BAD_REQUEST), oversize and bad text included"},
    {"oversize", "Client messages larger than the largest valid request (refused)"},
    {"bad_text", "Client messages with a text field that is not UTF-8 or holds a NUL byte (refused)"},
    {"overloaded", "Requests refused with ERR_OVERLOADED: admission full or the client at its max_inflight"},
    {"cancelled", "Requests cancelled by their client or because the client went away"},
    {"deadlines", "Requests whose deadline passed (ERR_DEADLINE)"},
    {"internal_errors", "Requests ended with ERR_INTERNAL (no group could finish it, out of memory, shutdown)"},
    {"client_malformed", "Client messages that did not decode (ERR_MALFORMED)"},
    {"unknown_cancels", "Cancels for a request not in flight on that connection"},
    {"client_gone", "Sends that found the client gone"},
    {"pings", "Pings answered"},
    {"predictor_jobs", "Jobs handed to the predictor workers (tokenizing, mask prediction)"},
    {"predictor_errors", "Predictor jobs that failed (the request ended with ERR_INTERNAL)"},
    {"group_malformed", "Group messages that did not decode or broke the protocol"},
    {"group_unknown", "Messages from routing ids that are no configured group"},
    {"heartbeats", "Heartbeats received from groups"},
    {"heartbeats_refused", "Heartbeats refused (wrong sender, group or cluster, lists too long)"},
    {"tokens", "Token messages received from groups"},
    {"tok_duplicate", "Tokens dropped as duplicates of ones received"},
    {"tok_unknown", "Tokens and work errors for requests the router does not run"},
    {"tok_stale", "Tokens from a group the request was taken away from"},
    {"tok_gap", "Tokens that skipped an index (the request was replayed)"},
    {"tok_bad", "Tokens with an invalid id or finish (the request was replayed)"},
    {"work_errors", "WorkErrors from groups (the request was replayed)"},
    {"replays", "Requests queued again after their group failed them"},
    {"group_deaths", "Groups declared dead after a silence beyond the liveness time"},
    {"group_restarts", "Groups that came back with a new incarnation (their work lost)"},
    {"lost_work", "Requests a group had received and no longer held (replayed)"},
    {"lost_tokens", "Requests whose last tokens did not arrive after their group finished them (replayed)"},
    {"lost_in_transit", "Work that did not reach its group within 4 heartbeats (replayed)"},
    {"orphans_cancelled", "Requests a group ran that this router does not run there (cancelled at the group)"},
    {"send_failed", "Sends that failed for a reason other than a gone peer"},
    {"stream_deferred", "Token events a full client queue refused (sent again later)"},
    {"spills", "Placements chosen by the load-imbalance test instead of mask affinity"},
    {"approximate", "Placements on a group whose union covers the mask only in part"},
    {"auth_refused", "Client connections refused at the CURVE handshake, and messages from keys revoked since"},
    {"group_forged", "Group messages dropped: their connection's key is not that group's"},
    {"client_limited", "Requests refused because their client key was at its max_inflight"},
    {"group_busy", "Work a group refused as busy (its slots taken by another router's work): placed again"},
    {"resumed", "Requests that arrived with resume_tokens (a client's failover from another router)"},
};

static const char *const STAT_NAMES[] = {
#define RT_STAT_NAME(name) #name,
    RT_STATS(RT_STAT_NAME)
#undef RT_STAT_NAME
};
enum { N_STATS = sizeof STAT_NAMES / sizeof *STAT_NAMES };

const char *rt_metrics_stat_help(const char *name) {
    for (size_t i = 0; i < sizeof STAT_HELP / sizeof *STAT_HELP; i++)
        if (!strcmp(STAT_HELP[i].name, name)) return STAT_HELP[i].help;
    return NULL;
}

static void render_requests(const rt_metrics_t *m, const rt_mview_t *v, ifp_buf_t *o) {
    const rt_stats_t *st = (const rt_stats_t *)v->stats;
    family(o, "ifp_requests_total", "counter",
           "Requests by how they ended. bad_request, overloaded, unauthorized: refusals (the router counters "
           "bad_requests, overloaded, auth_refused; unauthorized also counts refused CURVE handshakes); the others: "
           "admitted requests at their end");
    for (int s = 0; s < RT_MSTATUS_N; s++) {
        double n = (double)m->status[s];
        if (st && s == RT_MSTATUS_BAD_REQUEST) n += (double)st->bad_requests;
        if (st && s == RT_MSTATUS_OVERLOADED) n += (double)st->overloaded;
        if (st && s == RT_MSTATUS_UNAUTHORIZED) n += (double)st->auth_refused;
        const char *l[] = {"status", STATUS_NAMES[s], NULL};
        sample(o, "ifp_requests_total", l, NULL, n);
    }
    family(o, "ifp_requests_finished_total", "counter", "Admitted requests that ended, by finish reason");
    for (int f = 1; f < N_FINISH; f++) {
        const char *l[] = {"finish_reason", FINISH_NAMES[f], NULL};
        sample(o, "ifp_requests_finished_total", l, NULL, (double)m->finish[f]);
    }
    one(o, "ifp_prompt_tokens_total", "counter", "Prompt tokens of the requests that ended", (double)m->prompt_tokens);
    one(o, "ifp_completion_tokens_total", "counter", "Tokens generated for the requests that ended",
        (double)m->completion_tokens);
    histogram(o, "ifp_time_to_first_token_seconds", "Arrival to the first token, requests that got one", &m->ttft);
    histogram(o, "ifp_time_per_output_token_seconds",
              "(last token - first token) / (generated tokens - 1), answered requests of 2 or more tokens", &m->tpot);
    histogram(o, "ifp_e2e_request_latency_seconds", "Arrival to the end, every admitted request", &m->e2e);
    histogram(o, "ifp_queue_time_seconds", "Mask ready to the first dispatch to a group (waiting for a slot)",
              &m->queue);
    histogram(o, "ifp_request_prompt_tokens", "Prompt tokens per request that ended", &m->req_prompt);
    histogram(o, "ifp_request_completion_tokens", "Generated tokens per request that ended", &m->req_completion);
    one(o, "ifp_requests_inflight", "gauge", "Admitted requests not yet ended", v->inflight);
    one(o, "ifp_queue_depth", "gauge", "Requests waiting for a group slot", v->queued);
    one(o, "ifp_requests_predicting", "gauge", "Requests waiting for or on a predictor worker", v->predicting);
}

static void render_predictor(rt_metrics_t *m, const rt_mview_t *v, ifp_buf_t *o) {
    histogram(o, "ifp_predictor_latency_seconds", "Predictor job: handed to the pool to collected by the loop",
              &m->pred_latency);
    histogram(o, "ifp_predictor_work_seconds", "Predictor job: time on its worker", &m->pred_work);
    one(o, "ifp_predictor_workers", "gauge", "Predictor worker threads", v->workers);
    double ratio = busy_ratio(m, v->now_ms, v->busy_ms, v->workers);
    one(o, "ifp_predictor_busy_seconds_total", "counter", "Worker time spent on predictor jobs, summed over workers",
        m->busy_seen * 1e-3);
    one(o, "ifp_predictor_busy_ratio", "gauge",
        "Share of the predictor workers' time spent on jobs over about the last minute", ratio);
}

static void render_groups(const rt_metrics_t *m, const rt_mview_t *v, ifp_buf_t *o) {
    static const struct {
        const char *name, *type, *help;
    } F[] = {
        {"ifp_group_live", "gauge", "1 while the group heartbeats within the liveness time"},
        {"ifp_group_slots", "gauge", "Sequence slots configured"},
        {"ifp_group_free_slots", "gauge", "Sequence slots free (0 while not live)"},
        {"ifp_group_load", "gauge", "Tokens in flight on the group: prompt not yet prefilled + decode budget left"},
        {"ifp_group_deaths_total", "counter", "Times the group was declared dead"},
        {"ifp_group_replays_total", "counter", "Requests taken off the group to be replayed elsewhere"},
        {"ifp_group_tokens_total", "counter", "Tokens the router accepted from the group"},
    };
    for (size_t k = 0; k < sizeof F / sizeof *F; k++) {
        family(o, F[k].name, F[k].type, F[k].help);
        for (int g = 0; g < v->n_groups; g++) {
            const rt_mgroup_t *G = &v->groups[g];
            char cb[16];
            const char *l[] = {"group", G->name, "cluster", cluster_label(cb, sizeof cb, G->cluster), NULL};
            double x = k == 0   ? G->live
                       : k == 1 ? G->slots
                       : k == 2 ? G->free_slots
                       : k == 3 ? (double)G->load
                       : k == 4 ? (double)G->deaths
                       : g >= m->n_groups ? 0
                       : k == 5 ? (double)m->g_replays[g]
                                : (double)m->g_tokens[g];
            sample(o, F[k].name, l, NULL, x);
        }
    }
}

static void render_clusters(const rt_metrics_t *m, const rt_mview_t *v, ifp_buf_t *o) {
    family(o, "ifp_cluster_demand", "gauge",
           "Requests per second nearest each cluster (the balancer's moving average, 1 s ticks)");
    for (int c = 0; c < m->n_clusters; c++) {
        char cb[16];
        const char *l[] = {"cluster", cluster_label(cb, sizeof cb, c), NULL};
        sample(o, "ifp_cluster_demand", l, NULL, v->demand ? v->demand[c] : 0);
    }
    static const struct {
        const char *name, *type, *help;
    } F[] = {
        {"ifp_cluster_requests_total", "counter",
         "Requests that ended, by their mask's nearest cluster (dense: no mask, or no cluster table)"},
        {"ifp_cluster_hits_total", "counter", "Of those, requests last served by a group of that cluster"},
        {"ifp_cluster_coverage", "summary",
         "Coverage of the served requests' masks by the group that served them (_sum / _count: the mean)"},
    };
    for (size_t k = 0; k < sizeof F / sizeof *F; k++) {
        family(o, F[k].name, F[k].type, F[k].help);
        for (int c = 0; c <= m->n_clusters; c++) {
            char cb[16];
            const char *l[] = {"cluster", cluster_label(cb, sizeof cb, c < m->n_clusters ? c : -1), NULL};
            if (k == 0) sample(o, F[k].name, l, NULL, (double)m->c_requests[c]);
            else if (k == 1) sample(o, F[k].name, l, NULL, (double)m->c_hits[c]);
            else {
                sample(o, "ifp_cluster_coverage_sum", l, NULL, m->c_cov_sum[c]);
                sample(o, "ifp_cluster_coverage_count", l, NULL, (double)m->c_cov_n[c]);
            }
        }
    }
}

int rt_metrics_render_view(rt_metrics_t *m, const rt_mview_t *v, ifp_buf_t *o) {
    family(o, "ifp_build_info", "gauge", "The router's version and git commit (value 1)");
    const char *bl[] = {"version", IFP_VERSION, "git", IFP_GIT, NULL};
    sample(o, "ifp_build_info", bl, NULL, 1);
    one(o, "ifp_router_uptime_seconds", "gauge", "Seconds since the router started", secs(m->t_start, v->now_ms));
    render_requests(m, v, o);
    render_predictor(m, v, o);
    render_groups(m, v, o);
    render_clusters(m, v, o);
    for (int i = 0; v->stats && i < N_STATS; i++) {
        char name[96];
        snprintf(name, sizeof name, "ifp_router_%s_total", STAT_NAMES[i]);
        const char *help = rt_metrics_stat_help(STAT_NAMES[i]);
        one(o, name, "counter", help ? help : "A router counter (docs/PROTOCOL.md section 5)", (double)v->stats[i]);
    }
    return o->oom ? IFP_ENOMEM : IFP_OK;
}

/* ---------------------------------------------------------------- the router's hooks */

void rt_metrics_on_finish(rt_router_t *R, const rt_req_t *r, int status, double now) {
    int g = r->state == RT_REQ_RUNNING && r->group >= 0 ? r->group : r->last_group;
    const rt_group_t *G = rt_balancer_group(R->bal, g);
    rt_mfinish_t f = {.status = status,
                      .finish = r->finish,
                      .n_prompt = r->n_prompt,
                      .n_tokens = r->n_tokens,
                      .t_arrival = r->t_arrival,
                      .t_masked = r->t_masked,
                      .t_dispatch = r->t_dispatch,
                      .t_first = r->t_first,
                      .t_end = now,
                      .group = G ? g : -1,
                      .group_cluster = G ? G->cluster : IFP_CLUSTER_DENSE,
                      .cluster = r->mask_bits ? r->mask_cluster : IFP_CLUSTER_DENSE,
                      .coverage = r->coverage};
    rt_metrics_t *m = R->metrics;
    rt_metrics_finish(m, &f);
    if (!m) return;
    char stamp[IFP_LOG_STAMP_LEN + 1];
    ifp_buf_reset(&m->line);
    rt_reqlog_line(&m->line, r, ifp_log_stamp(stamp, sizeof stamp), G ? G->name : NULL, f.group_cluster, status, now);
    if (!m->line.oom) fprintf(stderr, "%s\n", m->line.p);
}

void rt_metrics_on_job(rt_router_t *R, const rt_job_t *j, double now) {
    if (j->t_submit > 0) rt_metrics_job(R->metrics, now - j->t_submit, j->work_ms);
}

void rt_metrics_on_replay(rt_router_t *R, int group) { rt_metrics_replay(R->metrics, group); }

void rt_metrics_on_token(rt_router_t *R, int group) { rt_metrics_token(R->metrics, group); }

int rt_metrics_render(rt_router_t *R, ifp_buf_t *out) {
    rt_metrics_t *m = R->metrics;
    if (!m) return IFP_ENOMEM;
    rt_mgroup_t groups[RT_MAX_GROUPS];
    int n = rt_balancer_n_groups(R->bal);
    if (n > RT_MAX_GROUPS) n = RT_MAX_GROUPS;
    for (int i = 0; i < n; i++) {
        const rt_group_t *G = rt_balancer_group(R->bal, i);
        groups[i] = (rt_mgroup_t){.name = G->name,
                                  .cluster = G->cluster,
                                  .live = G->alive,
                                  .slots = G->cfg_slots,
                                  .free_slots = G->alive ? rt_balancer_free_slots(R->bal, i) : 0,
                                  .load = G->load + G->hb_extra,
                                  .deaths = G->n_deaths};
    }
    for (int c = 0; c < m->n_clusters; c++) m->demand[c] = rt_balancer_demand(R->bal, c);
    rt_mview_t v = {.now_ms = ifp_now_ms(),
                    .inflight = rt_reqtable_count(R->reqs),
                    .queued = rt_reqtable_count_state(R->reqs, RT_REQ_QUEUED),
                    .predicting = rt_reqtable_count_state(R->reqs, RT_REQ_PREDICTING),
                    .workers = R->pred ? rt_predict_threads(R->pred) : 0,
                    .busy_ms = R->pred ? rt_predict_busy_ms(R->pred) : 0,
                    .stats = (const uint64_t *)&R->st,
                    .n_groups = n,
                    .groups = groups,
                    .demand = m->demand};
    return rt_metrics_render_view(m, &v, out);
}
