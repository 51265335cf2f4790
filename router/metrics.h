/* metrics.h — the router's Prometheus metrics (text exposition format
 * 0.0.4, served as GET /metrics by the HTTP gateway) and its health.
 *
 * Owned by the event loop: only the loop thread feeds and renders them, so
 * nothing here takes a lock (the gateway asks the loop for a rendering over
 * its bridge).  Two kinds of numbers:
 *   - what only a request's end knows (status, finish reason, latencies,
 *     tokens, cluster hits, coverage) is counted by the hooks below, which
 *     router/flight.c calls;
 *   - what the router's state already holds (rt_stats_t counters, groups,
 *     the balancer's demand, queue lengths, the predictor pool) is read when
 *     rendering.
 * docs/OPERATIONS.md "Metrics and logs" lists every family.
 *
 * The finish hook also writes the request log line: one logfmt line per
 * finished request on stderr, always (docs/OPERATIONS.md). */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include <stdint.h>

#include "jsonw.h"
#include "predict.h"
#include "request.h"
#include "router.h"

/* How a request ended, for ifp_requests_total{status}.  The first three are
 * refusals before admission (never an rt_req: router/frontend.c counts them
 * in rt_stats_t); the others come from rt_flight_finish. */
typedef enum {
    RT_MSTATUS_OK,          /* answered (finish stop / eos / length) */
    RT_MSTATUS_BAD_REQUEST, /* refused: invalid request */
    RT_MSTATUS_OVERLOADED,  /* refused: admission full */
    RT_MSTATUS_UNAUTHORIZED,/* refused: key not admitted */
    RT_MSTATUS_DEADLINE,    /* its deadline passed */
    RT_MSTATUS_CANCELLED,   /* the client cancelled it */
    RT_MSTATUS_CLIENT_GONE, /* the client went away (its connection closed) */
    RT_MSTATUS_ERROR,       /* no group could finish it, out of memory, shutdown */
    RT_MSTATUS_N
} rt_mstatus_t;

const char *rt_mstatus_name(int status); /* "ok", "bad_request", ... */
/* "stop", "eos", "length", "cancelled", "error" for RT_FIN_*; "-" otherwise. */
const char *rt_finish_name(int finish);
/* The status of a request finished with (finish RT_FIN_*, code
 * IFP__ERROR_CODE__*): deadline, error, cancelled or ok. */
int rt_mstatus_of(int finish, int code);

/* ---- a histogram: fixed upper bounds, a count per bucket, sum, count ---- */
#define RT_HIST_MAX 24 /* finite bounds at most (+Inf is implicit) */

typedef struct {
    int n;                          /* finite bounds */
    double le[RT_HIST_MAX];         /* ascending upper bounds */
    uint64_t bucket[RT_HIST_MAX + 1]; /* observations in (le[i-1], le[i]]; [n]: above le[n-1] */
    double sum;
    uint64_t count;
} rt_hist_t;

/* n ascending bounds (n <= RT_HIST_MAX, extra ones dropped). */
void rt_hist_init(rt_hist_t *h, const double *le, int n);
void rt_hist_observe(rt_hist_t *h, double v);

/* ---- the metrics ---- */
typedef struct rt_metrics rt_metrics_t;

/* For n_groups groups and n_clusters clusters (0: no cluster table).  NULL
 * if out of memory. */
rt_metrics_t *rt_metrics_new(int n_groups, int n_clusters);
void rt_metrics_destroy(rt_metrics_t **m);

/* A finished request as the metrics see it (rt_metrics_on_finish fills one
 * from the router; tests fill their own).  Times in ms on the ifp_now_ms
 * clock; 0 = did not happen. */
typedef struct {
    int status;          /* RT_MSTATUS_* */
    int finish;          /* RT_FIN_* */
    int n_prompt, n_tokens;
    double t_arrival, t_masked, t_dispatch, t_first, t_end;
    int group;           /* the group that served it last, -1: none */
    int group_cluster;   /* that group's cluster, IFP_CLUSTER_DENSE for a dense group */
    int cluster;         /* its mask's nearest cluster, IFP_CLUSTER_DENSE: dense mode or no cluster table */
    double coverage;     /* of its mask by that group */
} rt_mfinish_t;

void rt_metrics_finish(rt_metrics_t *m, const rt_mfinish_t *f);
/* A predictor job: latency = submission to collection, work = on a worker. */
void rt_metrics_job(rt_metrics_t *m, double latency_ms, double work_ms);
void rt_metrics_replay(rt_metrics_t *m, int group);
void rt_metrics_token(rt_metrics_t *m, int group);

/* The router's state at rendering time (rt_metrics_render fills one; tests
 * fill their own). */
typedef struct {
    const char *name;
    int cluster;         /* IFP_CLUSTER_DENSE or a cluster index */
    int live, slots, free_slots;
    int64_t load;
    uint64_t deaths;
} rt_mgroup_t;

typedef struct {
    double now_ms;       /* ifp_now_ms */
    int inflight, queued, predicting;
    int workers;
    double busy_ms;      /* rt_predict_busy_ms */
    const uint64_t *stats; /* rt_stats_t (router/rt.h) as an array, or NULL */
    int n_groups;
    const rt_mgroup_t *groups;
    const double *demand; /* [n_clusters] the balancer's demand, or NULL */
} rt_mview_t;

/* The HELP text of rt_stats_t counter `name` (ifp_router_<name>_total), or
 * NULL if it has none. */
const char *rt_metrics_stat_help(const char *name);
/* Appends the whole exposition (every family with # HELP and # TYPE).
 * Returns 0, or IFP_ENOMEM when the buffer could not grow. */
int rt_metrics_render_view(rt_metrics_t *m, const rt_mview_t *v, ifp_buf_t *out);

/* ---- the router's hooks (router/flight.c; the loop thread only) ---- */
/* Request r ends with status (RT_MSTATUS_*) at now: counted, and its
 * request log line written.  Call while r still holds its group (r->group
 * when RUNNING) and with r->finish set. */
void rt_metrics_on_finish(rt_router_t *R, const rt_req_t *r, int status, double now);
/* A predictor job came back from its worker. */
void rt_metrics_on_job(rt_router_t *R, const rt_job_t *j, double now);
/* A request running on group is taken off it to be replayed elsewhere. */
void rt_metrics_on_replay(rt_router_t *R, int group);
/* A token from group was accepted. */
void rt_metrics_on_token(rt_router_t *R, int group);
/* The exposition of R's metrics and state.  0 or IFP_ENOMEM. */
int rt_metrics_render(rt_router_t *R, ifp_buf_t *out);

#endif
