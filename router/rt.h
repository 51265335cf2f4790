/* rt.h — the router's state, shared by router.c (loop, timers, sockets),
 * clients.c (frontend) and groups.c (backend).  Not API: only these files
 * include it. */
#ifndef RT_RT_H
#define RT_RT_H

#include <stdint.h>

#include "admit.h"
#include "balancer.h"
#include "config.h"
#include "mask.h"
#include "model.h"
#include "predictor.h"
#include "reqtable.h"
#include "router.h"
#include "tokenizer.h"
#include "wire.h"

/* Rate-limited log kinds (malformed input must not flood stderr). */
enum {
    RT_LOG_EVENT,  /* groups up / dead / restarted, replays */
    RT_LOG_TRACE,  /* --verbose: every dispatch and reply */
    RT_LOG_CLIENT, /* malformed client input */
    RT_LOG_GROUP,  /* malformed group input */
    RT_LOG_SEND,   /* failed sends */
    RT_LOG_KINDS
};

typedef struct {
    uint64_t requests, replies, bad_requests, overloaded, cancelled, deadlines, internal_errors;
    uint64_t client_malformed, unknown_cancels, client_gone;
    uint64_t group_malformed, group_unknown, heartbeats;
    uint64_t tokens, tok_duplicate, tok_unknown, tok_stale, tok_gap, tok_bad;
    uint64_t work_errors, replays, group_deaths, group_restarts, lost_work, send_failed;
    uint64_t spills, approximate;
} rt_stats_t;

struct rt_router {
    ifp_config_file_t cfg;
    rt_router_opts_t opt;
    void *zctx, *front, *back;
    /* model side: tokenizer, shape, predictor, clusters */
    ifp_tokenizer_t *tok;
    ifp_config_t model;
    int eos;
    ifp_predictor_t *pred;
    ifp_cluster_table_t *clusters;
    rt_limits_t lim;
    /* routing state */
    rt_balancer_t *bal;
    rt_reqtable_t *reqs;
    rt_taskcache_t *tasks;
    int pump;                 /* capacity changed since the queue was last tried */
    /* scratch, sized at start */
    int32_t *ids;             /* ids_cap ids: a tokenized prompt or a Work prompt */
    int ids_cap;
    uint8_t *maskbuf;         /* a packed Work.mask */
    size_t mask_bytes;
    /* timers and stats */
    double next_stats, next_demand;
    double svc_ms;            /* EWMA of arrival -> reply (Retry-After estimate) */
    rt_stats_t st, st_last;
    struct {
        double window;        /* start of the current 1 s window */
        int n;                /* lines logged in it */
        uint64_t dropped;
    } rl[RT_LOG_KINDS];
};

/* router.c */
void rt_log(rt_router_t *R, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends one protobuf message to a ROUTER peer without blocking: frames
 * [ident] ["" if delim] [body].  Returns 0, or -1 with errno (EHOSTUNREACH:
 * the peer is gone; EAGAIN: its queue is full). */
int rt_send(rt_router_t *R, void *sock, const void *ident, size_t ident_len, int delim, const ProtobufCMessage *m);

/* clients.c — frontend */
void rt_on_client(rt_router_t *R, ifp_frames_t *f);
/* Ends request *rp: an Error (when code != ERR_NONE) and then the Reply with
 * finish; frees the group slot (CancelWork to the group when cancel_group),
 * removes the request.  *rp becomes NULL. */
void rt_finish(rt_router_t *R, rt_req_t **rp, int finish, int code, const char *msg, int cancel_group);
/* The TokenEvent for token `index` of r (streaming requests only).  Returns
 * -1 if the client is gone (the caller cancels the request), else 0. */
int rt_stream_token(rt_router_t *R, rt_req_t *r, uint32_t index, int32_t token, float logprob);

/* groups.c — backend */
void rt_on_group(rt_router_t *R, ifp_frames_t *f);
/* Places a NEW / QUEUED request: dispatch to a group, or queue.  Returns
 * RT_PICK_OK / RT_PICK_WAIT; RT_PICK_NEVER when no group can ever take it
 * (the caller answers). */
int rt_place(rt_router_t *R, rt_req_t *r);
/* Tries every queued request again (FIFO) if capacity changed. */
void rt_pump_queue(rt_router_t *R);
/* Takes r off its group (CancelWork sent) and queues it at the front for a
 * replay from the tokens already received; avoid_group >= 0 is never tried
 * for it again.  Finishes it with ERR_INTERNAL when replays run out. */
void rt_replay(rt_router_t *R, rt_req_t **rp, int avoid_group, const char *why);
/* Releases r's group slot and load (no message). */
void rt_unassign(rt_router_t *R, rt_req_t *r, int finished);
void rt_send_cancel(rt_router_t *R, int g, uint64_t rid);
void rt_send_control(rt_router_t *R, int g, int kind, int cluster);
/* Liveness: declares silent groups dead and replays their requests. */
void rt_check_groups(rt_router_t *R, double now);

#endif
