/* routerlink.h — a shard stage's ZeroMQ link to the router backend.
 *
 * A DEALER connected to the router's backend ROUTER: stage 0's identity is
 * the group name (it receives RouterToGroup and sends heartbeats, work errors
 * and — for a one-stage group — token batches); the last stage's identity is
 * "<group>.out" (token batches only).  Every message is one frame holding a
 * protobuf envelope (proto/ifp.proto).  Sends never block: with the router
 * gone (ZMQ_IMMEDIATE) or its queue full, a message is dropped and counted —
 * heartbeats are periodic anyway and a restarted router replays work. */
#ifndef SH_ROUTERLINK_H
#define SH_ROUTERLINK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ifp.pb-c.h"
#include "log.h"

typedef struct {
    void *zctx, *sock;
    uint8_t *buf; /* packing buffer, grown as needed */
    size_t cap;
    unsigned long malformed, send_drops, sent;
    double opened_ms;
    sh_ratelimit_t rl_malformed, rl_drop;
} sh_routerlink_t;

/* Connects a DEALER with the given identity to endpoint. */
int sh_routerlink_open(sh_routerlink_t *l, const char *endpoint, const char *identity, ifp_err_t *err);
/* Closes the socket (lingering up to linger_ms for queued messages). */
void sh_routerlink_close(sh_routerlink_t *l, int linger_ms);

/* Sends one message without blocking.  Returns 0, or -1 (dropped, counted;
 * logged every 10 s at most, and not while the router has never been
 * reached in the first 5 s — a group may start before its router). */
int sh_routerlink_send(sh_routerlink_t *l, const ProtobufCMessage *m);
/* GroupToRouter.error for rid. */
int sh_routerlink_work_error(sh_routerlink_t *l, uint64_t rid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The next RouterToGroup if one is waiting (free it with
 * ifp__router_to_group__free_unpacked), else NULL with *waiting = 0.
 * Malformed input (not exactly one frame, bytes that do not decode, an
 * empty oneof) is counted and logged at most once a second; then NULL with
 * *waiting = 1 (call again). */
Ifp__RouterToGroup *sh_routerlink_recv(sh_routerlink_t *l, int *waiting);

#endif
