/* client.h — the one client of ifp-router: requests, answers, and failover
 * between several routers of one deployment (active-active).
 *
 * Every program that talks to a router goes through it: `ifp client`,
 * `ifp status`, bench_load, bench_router and the router tests
 * (tests/router_testlib.h).  One DEALER per router address, each with
 * CURVE when the deployment has keys (security/curve.h), ZeroMQ heartbeats
 * and a socket monitor; the messages are proto/ifp.proto's ClientMessage and
 * ServerMessage (docs/PROTOCOL.md §1, §2).
 *
 *   ifp_client_opts_t o = ifp_client_default_opts();
 *   ifp_client_t *cl = ifp_client_open(addrs, n, &o, &err);
 *   ifp_client_submit(cl, &request, user, &err);
 *   ifp_client_event_t ev;
 *   while (ifp_client_poll(cl, 100, &ev) >= 0) switch (ev.kind) { ... }
 *   ifp_client_close(&cl);
 *
 * Failover (docs/PROTOCOL.md §4, Request.resume_tokens):
 *  - A new request goes to the next router in round-robin order that is up;
 *    with none up it waits until one is, or until request_timeout_ms.
 *  - A router is down when its monitor says the connection closed (a killed
 *    router: milliseconds; a vanished host: the ZeroMQ heartbeat timeout),
 *    or when a request on it heard nothing (token, Progress, anything) for
 *    silence_ms.  A router refused at the handshake (CURVE keys) is down too.
 *  - Every request on a router that goes down is sent again to the next
 *    router that is up — same id, prompt, sampling parameters, seed, stop
 *    strings, mask mode and task, the deadline that is left, and
 *    resume_tokens = the tokens delivered so far (none for a request that
 *    does not stream) — and a Cancel goes to the old router (best effort).
 *    With no other router up it waits for one (a closed connection; the
 *    same router counts once it is connected again: a new connection is a
 *    new client to it) or stays where it is (silence).  A request never
 *    goes back to a connection it was cancelled on (that router's answer
 *    to the Cancel could pass for the new attempt's).
 *  - The caller sees each token once, in index order: an index already
 *    delivered is dropped; an index past the next one (a gap) is a fault of
 *    that router for that request, which moves elsewhere (or fails, with no
 *    other router up).  What a router sends about a request that left it
 *    (or that the client cancelled there) is dropped.
 *  - ERR_OVERLOADED moves the request to another router up to
 *    overload_retries times; ERR_INTERNAL "the router is shutting down"
 *    moves it as a failure of that router does.  With no other router to go
 *    to, and for every other Error, the Error is the router's answer
 *    (ERR_DEADLINE and ERR_INTERNAL are followed by a Reply).
 *  - A router down is pinged every ping_ms while connected; an answer (any
 *    message) or a new handshake makes it up again and it takes new
 *    requests.
 *
 * Ownership: ifp_client_open returns an owned client or NULL;
 * ifp_client_close(&cl) accepts NULL and nulls the pointer.  Strings and
 * messages handed in are copied.  An event's pointers are valid until the
 * next ifp_client_poll or ifp_client_close (ifp_client_event_take keeps
 * the message).  Not thread-safe: one thread per client.
 *
 * Return codes: 0 (IFP_OK) or a negative IFP_E* code of core/err.h with a
 * message in the caller's ifp_err_t. */
#ifndef IFP_CLIENT_H
#define IFP_CLIENT_H

#include <stdint.h>
#include <zmq.h>

#include "err.h"
#include "ifp.pb-c.h"

#define IFP_CLIENT_MAX_ROUTERS 16
#define IFP_CLIENT_ADDR_MAX 256 /* bytes of one router address, NUL included */
#define IFP_CLIENT_ID_MAX 256   /* bytes of a request id (docs/PROTOCOL.md §7) */

typedef struct ifp_client ifp_client_t;

/* Options; start from ifp_client_default_opts() (defaults in brackets). */
typedef struct {
    /* Security (security/curve.h, docs/SECURITY.md): CURVE with the keys
     * folder's client.key and router.pub when client.key exists or a key is
     * named, else plain ZeroMQ.  Every router of the deployment shares one
     * key pair. */
    int plain;              /* no CURVE even when keys exist [0] */
    const char *keys;       /* the keys folder [NULL: $IFP_KEYS, else ${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys] */
    const char *key;        /* this client's secret key file [NULL: KEYS/client.key] */
    const char *server_key; /* the routers' public key: Z85 text or a file [NULL: KEYS/router.pub] */
    /* Failover. */
    int silence_ms;         /* a request that heard nothing this long suspects its router [3000]; 0 = never */
    int request_timeout_ms; /* a request not answered this long fails (IFP_CLIENT_TIMEOUT) [0 = never] */
    int max_failovers;      /* a request that moved this many times fails (IFP_CLIENT_TOO_MANY) [16] */
    int overload_retries;   /* ERR_OVERLOADED: times a request moves to another router [2] */
    int ping_ms;            /* a connected router that is down is pinged this often [1000] */
    /* Sockets. */
    int heartbeat_ms;         /* ZMQ_HEARTBEAT_IVL [1000]; 0 = no ZeroMQ heartbeats */
    int heartbeat_timeout_ms; /* ZMQ_HEARTBEAT_TIMEOUT [5000] */
    int hwm;                  /* send and receive high-water marks [-1: ZeroMQ's, 1000]; 0 = none */
    int linger_ms;            /* ZMQ_LINGER at close: how long a last Cancel may take to leave [0] */
    int immediate;            /* ZMQ_IMMEDIATE: queue nothing for a router not connected [1].  0 queues
                               * (what a raw test client wants); requests are still sent only to routers up */
    const char *routing_id;   /* every DEALER's ZMQ_ROUTING_ID [NULL: ZeroMQ's, new per connection].  Set, a
                               * reconnected socket keeps the identity: only for tests of one router */
    void *zctx;               /* a ZeroMQ context to use [NULL: the client makes and ends its own] */
} ifp_client_opts_t;

ifp_client_opts_t ifp_client_default_opts(void);

/* Connects one DEALER per address (tcp://HOST:PORT, ipc://PATH; 1 to
 * IFP_CLIENT_MAX_ROUTERS, each at most IFP_CLIENT_ADDR_MAX - 1 bytes).
 * Returns immediately: the connections come up in the background
 * (IFP_CLIENT_ROUTER_UP events).  NULL with err set when an address is
 * malformed, the keys cannot be read, or ZeroMQ refuses a socket. */
ifp_client_t *ifp_client_open(const char *const *routers, int n, const ifp_client_opts_t *o, ifp_err_t *err);
/* Closes every socket (after linger_ms), frees the requests, ends the
 * context if it made it.  Requests in flight are abandoned (no Cancel). */
void ifp_client_close(ifp_client_t **pcl);

/* Splits a comma-separated list of router addresses ("tcp://a:5555,
 * tcp://b:5555"; spaces around commas ignored) into out[0..max), pointing
 * into buf (the list copied, cap bytes).  Returns the count (>= 1) or a
 * negative code with err naming the bad entry (empty, no "://", too long,
 * too many). */
int ifp_client_split_routers(const char *list, char *buf, size_t cap, const char **out, int max, ifp_err_t *err);

/* ---------------------------------------------------------------- requests */

/* Submits a request: q is copied (id, prompt or prompt_tokens, max_tokens,
 * temperature, top_p, top_k, seed, stop, mask_mode, task, deadline_ms,
 * stream, debug, ignore_eos, logprobs; resume_tokens, when set, count as
 * tokens 0..n-1 already received).  It is sent at once to the next router
 * up, else when one comes up.  q->id must be 1..IFP_CLIENT_ID_MAX bytes and
 * not be in flight on this client; every string must be valid UTF-8
 * without NUL (as the router requires, docs/PROTOCOL.md §1).  user comes
 * back with every event of the request.  IFP_EINVAL on a bad request. */
int ifp_client_submit(ifp_client_t *cl, const Ifp__Request *q, void *user, ifp_err_t *err);
/* Asks the request's router to cancel it: its Reply (FINISH_CANCELLED, the
 * tokens so far) ends it as usual.  A request not sent yet ends at once
 * (IFP_CLIENT_FAILED, IFP_CLIENT_CANCELLED).  IFP_ENOTFOUND for an id not
 * in flight. */
int ifp_client_cancel(ifp_client_t *cl, const char *id);
/* Sends a Cancel (best effort) and forgets the request now: no event of it
 * follows.  For a caller that stops waiting (timeout, SIGINT).  IFP_ENOTFOUND
 * for an id not in flight. */
int ifp_client_abandon(ifp_client_t *cl, const char *id);
/* Requests in flight (submitted, not ended). */
int ifp_client_inflight(const ifp_client_t *cl);

/* ---------------------------------------------------------------- events */

typedef enum {
    IFP_CLIENT_NONE = 0,
    IFP_CLIENT_TOKEN,       /* msg->token: the next token of request id (indices 0, 1, 2, ... once each) */
    IFP_CLIENT_REPLY,       /* msg->reply: the request is done (final) */
    IFP_CLIENT_ERROR,       /* msg->error: final, or (ERR_DEADLINE, ERR_INTERNAL) a Reply follows */
    IFP_CLIENT_FAILED,      /* the client ended the request (why; final; a Cancel went to its router) */
    IFP_CLIENT_FAILOVER,    /* the request moved from router `from` to `router` after n_tokens tokens (why) */
    IFP_CLIENT_ROUTER_UP,   /* router `router` takes requests (connected, or answered again) */
    IFP_CLIENT_ROUTER_DOWN, /* router `router` is down (why); its requests move */
    IFP_CLIENT_REFUSED,     /* router `router` refused the handshake: detail says why, for a user */
    IFP_CLIENT_PONG,        /* msg->pong from router `router`, answering ifp_client_ping(id) */
    IFP_CLIENT_OTHER,       /* msg: a ServerMessage about no request of this client (raw traffic sent with
                             * ifp_client_send, an Error for an unknown id, ERR_MALFORMED) */
} ifp_client_kind_t;

/* Why a request moved, failed, or a router went down. */
typedef enum {
    IFP_CLIENT_WHY_NONE = 0,
    IFP_CLIENT_GONE,       /* the router's connection closed */
    IFP_CLIENT_SILENT,     /* nothing heard for silence_ms */
    IFP_CLIENT_GAP,        /* the router skipped token indices (detail) */
    IFP_CLIENT_SHUTDOWN,   /* the router said it is shutting down */
    IFP_CLIENT_OVERLOADED, /* the router answered ERR_OVERLOADED */
    IFP_CLIENT_TIMEOUT,    /* request_timeout_ms passed */
    IFP_CLIENT_TOO_MANY,   /* max_failovers reached */
    IFP_CLIENT_CANCELLED,  /* ifp_client_cancel before the request was sent, or before it could move */
} ifp_client_why_t;

typedef struct {
    ifp_client_kind_t kind;
    const char *id;          /* the request's id ("" for router events) */
    void *user;              /* the request's user pointer */
    int router;              /* the router it concerns (index into the open list); -1 none */
    int from;                /* FAILOVER: the router the request left */
    ifp_client_why_t why;    /* FAILOVER, FAILED, ROUTER_DOWN */
    const char *detail;      /* a line for a user ("" if none): the handshake's refusal, the gap, ... */
    int final;               /* the request's last event: it is no longer in flight */
    Ifp__ServerMessage *msg; /* TOKEN, REPLY, ERROR, PONG, OTHER; else NULL */
    /* The request's figures so far (request events only). */
    uint32_t n_tokens;       /* tokens delivered */
    int failovers;           /* times it moved to another router (overloads included) */
    int heard;               /* a router said something about it (token, Progress, answer) */
    double stall_ms;         /* the longest time it went without an event to the caller: from the
                              * submission to the first, between two, up to this one */
    double age_ms;           /* since the submission */
} ifp_client_event_t;

/* Runs the client: reads the routers, follows their connections, moves
 * requests, and returns the next event.  Waits up to timeout_ms (0: only
 * what is ready).  Returns 1 with *ev filled, 0 when nothing happened
 * within timeout_ms (or a signal interrupted the wait), or a negative code
 * (ZeroMQ failed).  Call it at least every ~100 ms while requests are in
 * flight: its timers (silence, timeouts, pings) run inside it. */
int ifp_client_poll(ifp_client_t *cl, int timeout_ms, ifp_client_event_t *ev);
/* Takes ownership of the message of the event the last poll returned (free
 * it with ifp__server_message__free_unpacked); NULL if it has none. */
Ifp__ServerMessage *ifp_client_event_take(ifp_client_t *cl, ifp_client_event_t *ev);
/* Fills items[0..cap) with what ifp_client_poll waits on (for a caller's
 * own zmq_poll over more sockets); returns the count.  After that poll,
 * call ifp_client_poll(cl, 0, ...) until it returns 0. */
int ifp_client_pollitems(const ifp_client_t *cl, zmq_pollitem_t *items, int cap);

/* Words for why (e.g. "went away", "went silent"). */
const char *ifp_client_why_str(ifp_client_why_t why);

/* ---------------------------------------------------------------- routers */

int ifp_client_n_routers(const ifp_client_t *cl);
const char *ifp_client_router_addr(const ifp_client_t *cl, int k);
/* 1 when router k takes requests: connected, handshake done, not suspected. */
int ifp_client_router_up(const ifp_client_t *cl, int k);
/* 1 when every router refused this client's handshake (keys): the caller
 * may give up (the REFUSED events said why). */
int ifp_client_all_refused(const ifp_client_t *cl);
/* 1 when the links use CURVE. */
int ifp_client_curve_on(const ifp_client_t *cl);

/* Sends a Ping{id} to router k (as soon as it is connected, with
 * immediate); its Pong comes back as an IFP_CLIENT_PONG event.  ids
 * starting with "ifp-client-" are the client's own. */
int ifp_client_ping(ifp_client_t *cl, int k, const char *id);
/* Sends m as it is to router k, tracked by nothing: its answers come back
 * as IFP_CLIENT_OTHER (and PONG) events.  For tests and tools that speak
 * the raw protocol.  Blocks while k's queue is full (with immediate: while
 * k is not connected).  IFP_EIO when ZeroMQ refuses it. */
int ifp_client_send(ifp_client_t *cl, int k, const Ifp__ClientMessage *m);
/* Router k's DEALER, for tests that send bytes no ClientMessage can hold.
 * Owned by the client. */
void *ifp_client_socket(ifp_client_t *cl, int k);

/* Counters since open. */
typedef struct {
    uint64_t submitted, completed, failed; /* requests */
    uint64_t sends;                        /* Request messages sent (first tries and moves) */
    uint64_t failovers;                    /* requests moved to another router (overloads included) */
    uint64_t overload_retries;             /* of which after ERR_OVERLOADED */
    uint64_t duplicates;                   /* token events dropped: index already delivered */
    uint64_t gaps;                         /* token events past the next index */
    uint64_t stale;                        /* messages from a router the request had left */
    uint64_t malformed;                    /* messages that did not decode or had the wrong frames */
    uint64_t router_downs;                 /* times a router went down */
} ifp_client_stats_t;

void ifp_client_stats(const ifp_client_t *cl, ifp_client_stats_t *st);

#endif
