/* client_int.h — the client's parts, shared by its files (not API: see
 * client.h).
 *
 *   conn.c      one router: its DEALER, socket monitor, handshake verdict,
 *               sending, pings
 *   reqs.c      one request: its copy, the table of requests by id, the
 *               message that (re)sends it, token bookkeeping
 *   events.c    the queue of events the caller reads
 *   failover.c  where requests go: round robin, moves, the timers (silence,
 *               timeouts, pings)
 *   client.c    open/close, submit/cancel, the poll loop and the dispatch of
 *               what routers send */
#ifndef IFP_CLIENT_INT_H
#define IFP_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "curve.h"

#define CL_SWEEP_MS 25     /* the timers' period at most */
#define CL_DRAIN_MAX 1024  /* messages read from one router per pass */
#define CL_PING_PREFIX "ifp-client-"
#define CL_GHOSTS 64       /* requests the client cancelled at a router, remembered */

/* ---------------------------------------------------------------- conn.c */

typedef struct {
    char addr[IFP_CLIENT_ADDR_MAX];
    void *sock;       /* DEALER */
    void *mon;        /* PAIR reading its monitor */
    int connected;    /* handshake done and no disconnect since */
    int silent;       /* suspected: a request on it heard nothing for silence_ms (until it answers) */
    int refused;      /* its last handshake failed */
    char why[640];    /* why it refused (security/curve.c's words) */
    double next_ping; /* while connected and silent */
    unsigned ping_seq;
    char user_ping[IFP_CLIENT_ID_MAX + 1]; /* a caller's Ping waiting for the connection ("" none) */
} cl_router_t;

/* What one pass over a router's monitor saw. */
enum { CL_MON_UP = 1, CL_MON_DOWN = 2, CL_MON_REFUSED = 4 };

struct ifp_client;
int cl_conn_open(struct ifp_client *cl, cl_router_t *r, const char *addr, ifp_err_t *err);
void cl_conn_close(cl_router_t *r);
/* Reads the monitor's waiting events; returns CL_MON_* bits (r->why set on
 * a refusal). */
int cl_conn_monitor(struct ifp_client *cl, cl_router_t *r);
/* Packs m and sends it (flags: 0 or ZMQ_DONTWAIT); 0 or -1 (errno). */
int cl_conn_send(struct ifp_client *cl, cl_router_t *r, const ProtobufCMessage *m, int flags);
int cl_conn_send_cancel(struct ifp_client *cl, cl_router_t *r, const char *id);
int cl_conn_send_ping(struct ifp_client *cl, cl_router_t *r, const char *id);
/* 1 when r takes requests. */
static inline int cl_conn_up(const cl_router_t *r) { return r->connected && !r->silent; }

/* ---------------------------------------------------------------- reqs.c */

enum { CL_PENDING, CL_SENT, CL_DONE };

typedef struct cl_req {
    Ifp__Request *q;      /* owned copy (unpacked); q->id is the id */
    void *user;
    int state;            /* CL_PENDING, CL_SENT, CL_DONE */
    int router;           /* CL_SENT: where; CL_PENDING: -1 */
    int from;             /* the router it left (-1 none): a pending move's origin */
    ifp_client_why_t moved_why; /* why it left `from` */
    int32_t *toks;        /* tokens delivered, index 0..n_toks-1 */
    uint32_t n_toks, cap_toks;
    double t_submit, t_first_send, t_heard, t_event;
    double stall_ms;
    int failovers, overloads, heard;
    int wait_reply;       /* an Error said a Reply follows */
    int cancelled;        /* the caller cancelled it: it moves nowhere */
    uint32_t left;        /* bit k: the client cancelled it at router k on k's current connection, where it
                           * never goes again (that router's answer to the Cancel could pass for the new
                           * attempt's); cleared when that connection closes */
    struct cl_req *hnext;             /* the id table's chain */
    struct cl_req *prev, *next;       /* every request in flight, oldest first */
} cl_req_t;

typedef struct {
    cl_req_t **b;
    size_t nb, n;
    cl_req_t *head, *tail;
} cl_reqs_t;

/* *out = a copy of q (validated: id length, text); 0 or a negative code
 * with err. */
int cl_req_new(const Ifp__Request *q, void *user, cl_req_t **out, ifp_err_t *err);
void cl_req_destroy(cl_req_t **pr);
int cl_reqs_add(cl_reqs_t *t, cl_req_t *r);
cl_req_t *cl_reqs_find(const cl_reqs_t *t, const char *id);
void cl_reqs_remove(cl_reqs_t *t, cl_req_t *r);
void cl_reqs_free(cl_reqs_t *t); /* destroys every request */
/* Sends r to router k (DONTWAIT): the deadline left, resume_tokens = the
 * tokens delivered.  0 or -1. */
int cl_req_send(struct ifp_client *cl, cl_req_t *r, int k, double now);
/* Appends a delivered token; -1 out of memory. */
int cl_req_push_token(cl_req_t *r, int32_t tok);

/* ---------------------------------------------------------------- events.c */

typedef struct {
    ifp_client_kind_t kind;
    cl_req_t *req;          /* request events */
    int router, from;
    ifp_client_why_t why;
    int final;
    Ifp__ServerMessage *msg; /* owned until delivered */
    char detail[160];
    /* the request's figures when it was queued */
    uint32_t n_tokens;
    int failovers, heard;
    double stall_ms, age_ms;
} cl_event_t;

typedef struct {
    cl_event_t *e;
    size_t cap, head, n;
    cl_event_t cur;  /* the one the caller holds */
    int have_cur;
    cl_req_t *dead;  /* abandoned requests (chained by hnext): freed with the caller's event */
} cl_queue_t;

/* Queues an event (takes msg).  For a request event the request's figures
 * are taken now; a final one ends the request (out of the table, destroyed
 * once the caller is done with the event). */
void cl_emit(struct ifp_client *cl, ifp_client_kind_t kind, cl_req_t *r, int router, Ifp__ServerMessage *msg);
/* The same with a reason and a detail line. */
void cl_emit_why(struct ifp_client *cl, ifp_client_kind_t kind, cl_req_t *r, int router, int from,
                 ifp_client_why_t why, const char *detail);
/* Hands the next event to the caller; 0 when the queue is empty. */
int cl_queue_pop(struct ifp_client *cl, ifp_client_event_t *ev);
/* Ends the caller's hold on the last event (frees it, and its request when
 * it was final). */
void cl_queue_release(struct ifp_client *cl);
void cl_queue_free(cl_queue_t *q);

/* ---------------------------------------------------------------- failover.c */

/* Sends a pending request to the next router up (round robin); 1 sent,
 * 0 still pending. */
int cl_dispatch(struct ifp_client *cl, cl_req_t *r, double now);
/* Sends every pending request that can go. */
void cl_dispatch_pending(struct ifp_client *cl, double now);
/* Moves r off router k (a Cancel to k, best effort) to the next router up
 * but k: FAILOVER, or pending when none (why GONE), or FAILED. */
void cl_move(struct ifp_client *cl, cl_req_t *r, ifp_client_why_t why, const char *detail, double now);
/* 1 when a router up other than r's may take r. */
int cl_can_move(const struct ifp_client *cl, const cl_req_t *r);
/* Router k went down (why); every request on it moves.  Idempotent. */
void cl_router_down(struct ifp_client *cl, int k, ifp_client_why_t why, double now);
/* Router k is up (again). */
void cl_router_up(struct ifp_client *cl, int k, double now);
/* The timers: silence, request timeouts, pings, pending sends.  Returns
 * when it wants to run next. */
double cl_sweep(struct ifp_client *cl, double now);
/* Ends r with IFP_CLIENT_FAILED (a Cancel to its router when sent). */
void cl_fail(struct ifp_client *cl, cl_req_t *r, ifp_client_why_t why, const char *detail);
/* Sends a Cancel for r to router k on the client's own account (a move, a
 * timeout, abandon): what k still sends about r afterwards — tokens, its
 * Reply(FINISH_CANCELLED) or ERR_UNKNOWN_REQUEST — is stale, not news for
 * the caller (cl_ghost_is). */
void cl_cancel_at(struct ifp_client *cl, int k, const char *id);
int cl_ghost_is(const struct ifp_client *cl, int k, const char *id);
void cl_ghosts_free(struct ifp_client *cl);

/* ---------------------------------------------------------------- client.c */

struct ifp_client {
    ifp_client_opts_t o;
    void *zctx;
    int own_ctx;
    ifp_curve_t curve;
    int n;
    cl_router_t r[IFP_CLIENT_MAX_ROUTERS];
    int rr;               /* the next router a new request tries */
    cl_reqs_t reqs;
    int n_pending;
    cl_queue_t q;
    double next_sweep;
    struct {
        int router;
        char *id;
    } ghost[CL_GHOSTS];   /* the last requests cancelled at a router by the client itself */
    int ghost_next;
    ifp_client_stats_t st;
};

#endif
