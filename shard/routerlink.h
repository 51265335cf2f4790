/* routerlink.h — one ZeroMQ link from a shard stage to one router's
 * backend: the only place in the shard that sees protobuf (proto/ifp.proto).
 *
 * A deployment may run several routers at once (active-active: the
 * config's routers[], config.h); a group then serves all of them.  Stage 0
 * opens one link per router (routing id "G#NONCE", the same on every link)
 * and the last stage one more per router ("G.out#NONCE"), all with the
 * group's CURVE key pair (the routers share one key pair).  With one router
 * this is the one link of old.  Stage 0 receives RouterToGroup on each of
 * its links and sends that link's heartbeats, the work errors of the Work it
 * got there and — for a one-stage group — its token batches; the last stage
 * sends the token batches and the work errors of failed micro-batches on
 * the link of the request's router (routers.c, sampling.h).
 *
 * Every message is one frame holding a protobuf envelope.  Incoming messages
 * are decoded and converted once, into plain structs (sh_router_msg_t, with
 * an sh_work_t for a Work); outgoing ones are built here from plain structs
 * (sh_heartbeat_t, sh_token_t).  Sends never block: with the router gone
 * (ZMQ_IMMEDIATE) or its queue full, a message is dropped and counted —
 * heartbeats are periodic anyway (stage 0 retries a dropped one within
 * milliseconds, backing off to the period) and a restarted router replays
 * work.  The socket reconnects 20 ms after losing the router, backing off to
 * 1 s while it stays away, so a restarted router hears of the group (and
 * cancels the work it does not know) right away.
 *
 * A watched link (stage 0's) follows its connection through a socket
 * monitor: up once a handshake succeeded, down on a disconnection (a router
 * that closed, crashed, or — through the ZeroMQ heartbeats, 10 s — vanished
 * with its host); sh_routerlink_watch reads the events and logs each change
 * (at most one line per link every 10 s).  Stage 0 cancels the requests of
 * a link that stays down (routers.c). */
#ifndef SH_ROUTERLINK_H
#define SH_ROUTERLINK_H

#include <stddef.h>
#include <stdint.h>

#include "curve.h"
#include "err.h"
#include "shlog.h"
#include "work.h"

/* ---- incoming: RouterToGroup ---- */
enum { SH_ROUTER_WORK = 1, SH_ROUTER_CANCEL = 2, SH_ROUTER_CONTROL = 3 };
enum { SH_CONTROL_UNKNOWN = 0, SH_CONTROL_SHUTDOWN = 1, SH_CONTROL_LOAD_CLUSTER = 2, SH_CONTROL_DRAIN = 3 };

typedef struct {
    int kind;                     /* SH_ROUTER_* */
    sh_work_t *work;              /* WORK: owned here until taken (set it NULL), unchecked (sh_work_check) */
    uint64_t router_epoch, seq;   /* WORK: Work.router_epoch / Work.seq, for Heartbeat.router_epoch / work_seen */
    uint64_t rid;                 /* CANCEL */
    int control, control_raw;     /* CONTROL: SH_CONTROL_*, and the kind as received */
    int cluster;                  /* CONTROL LOAD_CLUSTER */
} sh_router_msg_t;

/* Frees m's work if still owned and clears m. */
void sh_router_msg_clear(sh_router_msg_t *m);

/* ---- outgoing ---- */
enum { SH_FINISH_NONE = 0, SH_FINISH_LENGTH = 1, SH_FINISH_EOS = 2 };

/* One GroupToken. */
typedef struct {
    uint64_t rid;
    uint32_t index;
    int32_t token;
    float logprob;
    int finish;          /* SH_FINISH_* */
    int n_head;          /* > 0: the Debug fields: head[0..n_head) logits at the last prompt position, argmax */
    const float *head;
    int32_t argmax;
} sh_token_t;

/* One Heartbeat (arrays borrowed for the call). */
typedef struct {
    const char *group;
    int cluster, stages, slots, free_slots, draining;
    uint32_t queued_tokens, kv_free;
    uint64_t incarnation;
    const uint64_t *running;        /* [n_running] rids queued or in a slot, not cancelled */
    int n_running;
    uint64_t router_epoch, work_seen;
    const sh_finished_t *finished;  /* [n_finished] recently finished requests */
    int n_finished;
    uint64_t tokens_generated, requests_done;
} sh_heartbeat_t;

typedef struct sh_routerlink_scratch sh_routerlink_scratch_t;

typedef struct {
    void *sock;
    void *mon;    /* the socket monitor's PAIR (watched links only), else NULL */
    char endpoint[256]; /* the router backend it connects to (for log lines) */
    uint8_t *buf; /* packing buffer, grown as needed */
    size_t cap;
    sh_routerlink_scratch_t *scr; /* protobuf structs for up to max_tokens tokens */
    int max_tokens;
    unsigned long malformed, send_drops, sent;
    double opened_ms;
    /* watched links: connected (a handshake succeeded and no disconnection
     * since), since when (the open, for a link never connected), times up */
    int up;
    double since_ms;
    unsigned long ups;
    sh_ratelimit_t rl_malformed, rl_drop, rl_state;
} sh_routerlink_t;

/* Connects a DEALER of zctx (the caller's, outliving the link) with the
 * given identity to endpoint (as a CURVE client per curve; NULL or
 * curve->on == 0: plain), its connection watched when watch != 0; token
 * batches of up to max_tokens tokens can be sent without allocating. */
int sh_routerlink_open(sh_routerlink_t *l, void *zctx, const char *endpoint, const char *identity, int max_tokens,
                       int watch, const ifp_curve_t *curve, ifp_err_t *err);
/* Closes the socket (lingering up to linger_ms for queued messages). */
void sh_routerlink_close(sh_routerlink_t *l, int linger_ms);

/* A watched link: reads the monitor's events (never waits), updates up and
 * since_ms (stamped now_ms) and logs each change.  Returns the number of
 * changes. */
int sh_routerlink_watch(sh_routerlink_t *l, double now_ms);

/* The next message from the router: 1 with *m filled (sh_router_msg_clear
 * it), 0 if none is waiting, -1 if one was malformed (not exactly one frame,
 * bytes that do not decode, an empty oneof: counted and logged at most once
 * a second; call again). */
int sh_routerlink_recv(sh_routerlink_t *l, sh_router_msg_t *m);

/* Sends without blocking.  Each returns 0, or -1 (dropped, counted; logged
 * every 10 s at most, and not while the router has never been reached in the
 * first 5 s — a group may start before its router). */
int sh_routerlink_heartbeat(sh_routerlink_t *l, const sh_heartbeat_t *hb);
/* One TokenBatch of n <= max_tokens tokens. */
int sh_routerlink_tokens(sh_routerlink_t *l, const char *group, const sh_token_t *t, int n);
/* GroupToRouter.error for rid; busy: WorkError.busy (no free slot, the
 * request itself is fine). */
int sh_routerlink_work_error(sh_routerlink_t *l, uint64_t rid, int busy, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
