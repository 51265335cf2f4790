/* rt.h — the router's state, shared by its parts.  Not API: only the router's .c files
 * include it.
 *
 *   router.c   start-up, the poll loop, timers, shutdown, logging, sends
 *   frontend.c client messages in (validate, admit) and out (events, replies, errors, pongs)
 *   backend.c  group messages in (validate, clamp) and out (work, cancel, control)
 *   flight.c   the one owner of a request's life: placement, tokens, finish,
 *              replay, lost and orphaned work, deadlines, keep-alives
 *   predict.c  tokenizer + predictor workers (threads), fed through inproc sockets
 *   balancer.c groups, liveness and the mask-affinity pick (no sockets)
 *   request.c / reqtable.c  a request and the index of requests (no sockets)
 *   admit.c    request field checks and the task-mask cache (no sockets)
 *   bridge.c   the HTTP gateway's side of the loop: its inproc bridge socket
 *              (requests on behalf of HTTP clients, metrics and health asks)
 *   http.c     the HTTP gateway itself (its own thread; router/http.h) */
#ifndef RT_RT_H
#define RT_RT_H

#include <stdint.h>

#include "admit.h"
#include "balancer.h"
#include "clock.h"
#include "config.h"
#include "mask.h"
#include "metrics.h"
#include "model.h"
#include "predict.h"
#include "reqtable.h"
#include "zap.h"
#include "router.h"
#include "tokenizer.h"
#include "wire.h"

/* Rate-limited log kinds (malformed input must not flood stderr). */
enum {
    RT_LOG_EVENT,  /* groups up / dead / restarted, replays */
    RT_LOG_TRACE,  /* --verbose: every dispatch and reply */
    RT_LOG_CLIENT, /* malformed or refused client input */
    RT_LOG_GROUP,  /* malformed group input */
    RT_LOG_SEND,   /* failed sends */
    RT_LOG_KINDS
};

/* The router's counters, by name (stats line, Pong.counters). */
#define RT_STATS(X)                                                                                          \
    X(requests) X(replies) X(bad_requests) X(oversize) X(bad_text) X(overloaded) X(cancelled) X(deadlines)     \
    X(internal_errors) X(client_malformed) X(unknown_cancels) X(client_gone) X(pings) X(predictor_jobs)        \
    X(predictor_errors) X(group_malformed) X(group_unknown) X(heartbeats) X(heartbeats_refused) X(tokens)      \
    X(tok_duplicate) X(tok_unknown) X(tok_stale) X(tok_gap) X(tok_bad) X(work_errors) X(replays)              \
    X(group_deaths) X(group_restarts) X(lost_work) X(lost_tokens) X(lost_in_transit) X(orphans_cancelled)     \
    X(send_failed) X(stream_deferred) X(spills) X(approximate) X(auth_refused) X(group_forged)        \
    X(client_limited) X(group_busy) X(resumed)

typedef struct {
#define RT_STAT_FIELD(name) uint64_t name;
    RT_STATS(RT_STAT_FIELD)
#undef RT_STAT_FIELD
} rt_stats_t;

#define RT_ORPHAN_MEMORY 256 /* rids recently cancelled as unknown (no cancel per token) */

struct rt_router {
    ifp_config_file_t cfg;
    rt_router_opts_t opt;
    void *zctx, *front, *back;
    int own_zctx;
    /* the HTTP gateway (router/http.h): its thread talks to the loop over
     * hsock, an inproc ROUTER bound at hsock_ep */
    void *hsock;
    char hsock_ep[64];
    struct rt_http *http;
    /* link security (router/zap.h): CURVE on, the key table, the keys folder */
    int curve;
    rt_zap_t *zap;
    char keys_dir[1024];
    /* model side: the tokenizer (pieces only: encoding runs on the workers),
     * the shape, the cluster table */
    ifp_tokenizer_t *tok;
    ifp_config_t model;
    int eos;
    int have_predictor;
    ifp_cluster_table_t *clusters;
    int n_clusters;
    rt_limits_t lim;
    size_t mask_bytes;                /* Work.mask bytes */
    size_t front_max_valid;           /* the largest valid ClientMessage */
    int64_t front_hard_max;           /* ZMQ_MAXMSGSIZE of the frontend */
    /* routing state */
    rt_balancer_t *bal;
    rt_reqtable_t *reqs;
    rt_taskcache_t *tasks;
    rt_predict_t *pred;
    rt_metrics_t *metrics;            /* Prometheus metrics (router/metrics.h) */
    uint64_t epoch;                   /* Work.router_epoch: random per run */
    uint64_t orphans[RT_ORPHAN_MEMORY];
    int orphan_at;
    int32_t *ids;                     /* scratch: a Work prompt */
    int ids_cap;
    int hb_max_running, hb_max_finished; /* the largest heartbeat lists accepted */
    uint64_t *hb_keys;                /* scratch: two rid sets of hb_set_cap cells */
    uint32_t *hb_vals;
    int hb_set_cap;
    double next_flight;               /* when rt_flight_timers is due */
    /* timers and stats */
    double next_stats, next_demand, next_keepalive;
    double svc_ms;                    /* EWMA of arrival -> reply (Retry-After estimate) */
    double loop_worst_ms;             /* the longest loop iteration since the last stats line */
    rt_stats_t st, st_last;
    struct {
        double window;                /* start of the current 1 s window */
        int n;                        /* lines logged in it */
        uint64_t dropped;
    } rl[RT_LOG_KINDS];
};

/* ---- router.c ---- */
void rt_log(rt_router_t *R, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends one protobuf message to a ROUTER peer without blocking: frames
 * [ident] ["" if delim] [body].  Returns 0, or -1 with errno (EHOSTUNREACH:
 * the peer is gone; EAGAIN: its queue is full). */
int rt_send(void *sock, const void *ident, size_t ident_len, int delim, const ProtobufCMessage *m);
/* Printable form of bytes from outside (for logs): non-printable -> '?'. */
void rt_printable(char *out, size_t cap, const void *data, size_t len);

/* ---- frontend.c ---- */
void rt_on_client(rt_router_t *R, ifp_frames_t *f);
/* The Error of a request (code != ERR_NONE) and its Reply. */
void rt_client_error(rt_router_t *R, const rt_req_t *r, int code, const char *msg, uint32_t retry_after_ms);
void rt_client_reply(rt_router_t *R, const rt_req_t *r, double now);
/* Sends r's token events that are due (tokens the client has not had yet).
 * Returns -1 if the client is gone, else 0 (a full socket defers the rest:
 * call again later). */
int rt_client_stream(rt_router_t *R, rt_req_t *r);
/* A Progress keep-alive; -1 if the client is gone. */
int rt_client_progress(rt_router_t *R, rt_req_t *r);
/* A ClientMessage body the HTTP gateway sent on behalf of an HTTP client
 * (bridge ident, the API key's name); answers go back over the bridge. */
void rt_on_http_client(rt_router_t *R, const void *ident, size_t ilen, const char *key_name, const void *data,
                       size_t len);
/* Milliseconds a rejected client should wait. */
uint32_t rt_retry_after(const rt_router_t *R);

/* ---- bridge.c ---- */
/* One message from the HTTP gateway on hsock. */
void rt_on_bridge(rt_router_t *R, ifp_frames_t *f);
/* Live groups; and whether the router takes new requests now (a group is
 * live and admission is not full). */
int rt_live_groups(const rt_router_t *R);
int rt_ready(const rt_router_t *R);
int rt_admission_full(const rt_router_t *R);

/* ---- backend.c ---- */
void rt_on_group(rt_router_t *R, ifp_frames_t *f);
/* The Work of r for group g (prompt + tokens so far, Work.seq = ++send_seq). */
int rt_group_send_work(rt_router_t *R, rt_req_t *r, int g);
void rt_group_send_cancel(rt_router_t *R, int g, uint64_t rid);
void rt_group_send_control(rt_router_t *R, int g, int kind, int cluster);

/* ---- flight.c ---- */
/* A validated request whose job goes to the predictor workers
 * (PREDICTING). */
void rt_flight_admit(rt_router_t *R, rt_req_t *r, rt_job_t *job);
/* A finished job: the request gets its prompt and mask and is placed,
 * queued or refused. */
void rt_flight_job_done(rt_router_t *R, rt_job_t *job);
/* Places queued requests (FIFO) while a group has a free slot, if capacity
 * may have appeared. */
void rt_flight_pump(rt_router_t *R);
/* Ends request *rp: an Error (when code != ERR_NONE) and then the Reply
 * with finish; frees its group slot (CancelWork to the group when
 * cancel_group) or its predictor job; removes it.  *rp becomes NULL. */
void rt_flight_finish(rt_router_t *R, rt_req_t **rp, int finish, int code, const char *msg, int cancel_group);
/* The same, counted in the metrics as status (RT_MSTATUS_*, router/metrics.h)
 * rather than the one finish and code imply: RT_MSTATUS_CLIENT_GONE when
 * the client went away. */
void rt_flight_finish_as(rt_router_t *R, rt_req_t **rp, int finish, int code, const char *msg, int cancel_group,
                         int status);
/* Takes r off its group (CancelWork sent) and queues it at the front for a
 * replay from the tokens already received; avoid_group >= 0 is never tried
 * for it again.  Finishes it with ERR_INTERNAL when replays run out. */
void rt_flight_replay(rt_router_t *R, rt_req_t **rp, int avoid_group, const char *why);
/* Group g died or restarted: every request running there is replayed. */
int rt_flight_group_lost(rt_router_t *R, int g, const char *why);
/* What a heartbeat of g says about the requests: lost work is replayed,
 * work the router does not know is cancelled at the group. */
void rt_flight_heartbeat(rt_router_t *R, int g, const Ifp__Heartbeat *hb);
void rt_flight_token(rt_router_t *R, int g, const Ifp__GroupToken *t);
void rt_flight_work_error(rt_router_t *R, int g, const Ifp__WorkError *e);
/* Deadlines, deferred stream events and keep-alives; returns when the next
 * deadline is due (0 if none). */
double rt_flight_timers(rt_router_t *R, double now);
/* Answers every request still in flight with an error (shutdown). */
void rt_flight_abort_all(rt_router_t *R, const char *why);

#endif
