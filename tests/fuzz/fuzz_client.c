/* fuzz_client — what a router sends, as the client library reads it.
 *
 * The client (client/client.h) is opened once, plain, with two router
 * addresses: two ROUTER sockets this target binds (ipc:// in a tmpfs
 * folder), which play the two routers of a deployment.  Two requests are in
 * flight on it — "req-1" streaming, "req-2" not — and whenever one ends (a
 * Reply, a final Error, a failure) it is submitted again with the same id,
 * so every input meets both in flight; one that gathered many tokens is
 * abandoned and submitted afresh.  Each input is the frames of one message
 * (fuzz.h's frame split: [ServerMessage] or ["", ServerMessage] is what the
 * client accepts) that both ROUTERs send to the client's DEALERs (their
 * identities learnt from what the client sent them), so the router holding
 * a request and the other one (stale traffic) both say it.  Once the
 * DEALERs have it, ifp_client_poll(cl, 0) runs until it has nothing more,
 * and every event is walked and checked against client.h's contract:
 * request events name a request in flight with its user pointer; its
 * tokens come once each, in index order; a final event ends it and nothing
 * follows; the message of an event matches its kind and id; the client's
 * count of requests in flight is ours.  What the client sends the ROUTERs
 * (Requests again with resume_tokens, Cancels, Pings) must decode.
 *
 * silence_ms is small (50 ms): a router that said nothing useful for that
 * long is suspected, and the next message it sends brings it back.  So a
 * run's state carries over from input to input (tokens delivered, where
 * each request is, which router is silent): a finding may need the inputs
 * before it, as with fuzz_shard_link. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "fuzz.h"

enum {
    N_ROUTERS = 2,
    MAX_EVENTS = 4096,    /* events one input may cause (more: the client loops) */
    RECYCLE_TOKENS = 256, /* a request with this many tokens is abandoned and submitted again */
    WAIT_MS = 200,        /* how long a message may take to reach a DEALER */
};

static void *zctx, *rtr[N_ROUTERS];
static char ipc_path[N_ROUTERS][512];
static uint8_t ident[N_ROUTERS][256]; /* the client's DEALER as ROUTER k knows it */
static size_t ident_len[N_ROUTERS];
static ifp_client_t *cl;
static int ready; /* set up: both ROUTERs know their DEALER */

/* Our requests; the address of each is its user pointer. */
typedef struct {
    const char *id;
    int stream;
    int inflight;
    uint32_t n_tokens; /* tokens delivered to us */
} slot_t;
static slot_t slots[2] = {{"req-1", 1, 0, 0}, {"req-2", 0, 0, 0}};
#define N_SLOTS ((int)(sizeof slots / sizeof *slots))

static void unlink_paths(void) {
    for (int k = 0; k < N_ROUTERS; k++)
        if (ipc_path[k][0]) unlink(ipc_path[k]);
}

static void submit(slot_t *s) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)s->id;
    q.prompt = "Once upon a time";
    q.max_tokens = 16;
    q.seed = 7;
    q.stream = s->stream;
    ifp_err_t err = {0};
    int rc = ifp_client_submit(cl, &q, s, &err);
    FUZZ_CHECK(rc == 0, "submit %s: %s", s->id, err.msg);
    s->inflight = 1;
    s->n_tokens = 0;
}

/* Reads what the client sent the ROUTERs: learns each DEALER's identity
 * and checks every message decodes. */
static void drain_routers(void) {
    for (int k = 0; k < N_ROUTERS; k++)
        for (int i = 0; i < 1024; i++) {
            ifp_frames_t f;
            if (ifp_wire_recv(rtr[k], &f, ZMQ_DONTWAIT) < 0) break;
            FUZZ_CHECK(f.n == 2 && !f.truncated, "the client sent %d frames (truncated %d), not [body]", f.n - 1,
                       f.truncated);
            size_t n = ifp_frame_size(&f, 0);
            FUZZ_CHECK(n > 0 && n <= sizeof ident[k], "identity of %zu bytes", n);
            memcpy(ident[k], ifp_frame_data(&f, 0), n);
            ident_len[k] = n;
            Ifp__ClientMessage *m = ifp_wire_client_msg(ifp_frame_data(&f, 1), ifp_frame_size(&f, 1));
            FUZZ_CHECK(m != NULL, "the client sent router %d %zu bytes that do not decode", k, ifp_frame_size(&f, 1));
            ifp__client_message__free_unpacked(m, NULL);
            ifp_frames_close(&f);
        }
}

static slot_t *slot_of(const char *id) {
    for (int i = 0; i < N_SLOTS; i++)
        if (!strcmp(slots[i].id, id)) return &slots[i];
    return NULL;
}

static int is_request_event(ifp_client_kind_t k) {
    return k == IFP_CLIENT_TOKEN || k == IFP_CLIENT_REPLY || k == IFP_CLIENT_ERROR || k == IFP_CLIENT_FAILED ||
           k == IFP_CLIENT_FAILOVER;
}

/* The message an event carries: its kind, its id. */
static void check_msg(const ifp_client_event_t *ev, Ifp__ServerMessage__MsgCase want) {
    FUZZ_CHECK(ev->msg != NULL, "event %d without its message", (int)ev->kind);
    FUZZ_CHECK(ev->msg->msg_case == want, "event %d holds a message of case %d", (int)ev->kind,
               (int)ev->msg->msg_case);
    if (want != IFP__SERVER_MESSAGE__MSG_PONG)
        FUZZ_CHECK(!strcmp(ifp_wire_server_msg_id(ev->msg), ev->id), "event of '%s' holds a message of '%s'", ev->id,
                   ifp_wire_server_msg_id(ev->msg));
}

static void check_event(ifp_client_event_t *ev) {
    FUZZ_CHECK(ev->kind > IFP_CLIENT_NONE && ev->kind <= IFP_CLIENT_OTHER, "event kind %d", (int)ev->kind);
    FUZZ_CHECK(ev->id && ev->detail, "event %d: id %p, detail %p", (int)ev->kind, (const void *)ev->id,
               (const void *)ev->detail);
    ifp_fuzz_touch_str(ev->id);
    ifp_fuzz_touch_str(ev->detail);
    ifp_fuzz_touch_str(ifp_client_why_str(ev->why));
    ifp_fuzz_touch(&ev->stall_ms, sizeof ev->stall_ms);
    ifp_fuzz_touch(&ev->age_ms, sizeof ev->age_ms);
    if (ev->msg) ifp_fuzz_pb_walk(&ev->msg->base);
    if (!is_request_event(ev->kind)) {
        FUZZ_CHECK(!ev->id[0] && !ev->user && !ev->final, "router event %d: id '%s', user %p, final %d",
                   (int)ev->kind, ev->id, ev->user, ev->final);
        FUZZ_CHECK(ev->router >= 0 && ev->router < N_ROUTERS, "router event %d: router %d", (int)ev->kind, ev->router);
        if (ev->kind == IFP_CLIENT_PONG) check_msg(ev, IFP__SERVER_MESSAGE__MSG_PONG);
        else if (ev->kind == IFP_CLIENT_OTHER) FUZZ_CHECK(ev->msg != NULL, "%s", "OTHER without its message");
        else FUZZ_CHECK(ev->msg == NULL, "router event %d with a message", (int)ev->kind);
        return;
    }
    slot_t *s = slot_of(ev->id);
    FUZZ_CHECK(s && s->inflight, "event %d of '%s', which is not in flight", (int)ev->kind, ev->id);
    FUZZ_CHECK(ev->user == s, "event of '%s': user %p, not %p", ev->id, ev->user, (void *)s);
    FUZZ_CHECK(ev->router >= (ev->kind == IFP_CLIENT_FAILED ? -1 : 0) && ev->router < N_ROUTERS,
               "event %d of '%s': router %d", (int)ev->kind, ev->id, ev->router);
    FUZZ_CHECK(ev->failovers >= 0 && ev->stall_ms >= 0 && ev->age_ms >= 0,
               "event of '%s': failovers %d, stall %g ms, age %g ms", ev->id, ev->failovers, ev->stall_ms, ev->age_ms);
    int final = 0;
    switch (ev->kind) {
    case IFP_CLIENT_TOKEN:
        check_msg(ev, IFP__SERVER_MESSAGE__MSG_TOKEN);
        FUZZ_CHECK(ev->msg->token->index == s->n_tokens, "'%s': token %u delivered where %u was due", ev->id,
                   ev->msg->token->index, s->n_tokens);
        s->n_tokens++;
        break;
    case IFP_CLIENT_REPLY:
        check_msg(ev, IFP__SERVER_MESSAGE__MSG_REPLY);
        final = 1;
        break;
    case IFP_CLIENT_ERROR:
        check_msg(ev, IFP__SERVER_MESSAGE__MSG_ERROR);
        final = ev->msg->error->code != IFP__ERROR_CODE__ERR_DEADLINE &&
                ev->msg->error->code != IFP__ERROR_CODE__ERR_INTERNAL; /* those two: a Reply follows */
        break;
    case IFP_CLIENT_FAILED:
        FUZZ_CHECK(ev->msg == NULL, "%s", "FAILED with a message");
        final = 1;
        break;
    default: /* FAILOVER */
        FUZZ_CHECK(ev->msg == NULL && ev->from >= 0 && ev->from < N_ROUTERS, "FAILOVER: message %p, from %d",
                   (void *)ev->msg, ev->from);
        break;
    }
    FUZZ_CHECK(ev->n_tokens == s->n_tokens, "event %d of '%s' counts %u tokens, %u were delivered", (int)ev->kind,
               ev->id, ev->n_tokens, s->n_tokens);
    FUZZ_CHECK(ev->final == final, "event %d of '%s': final %d", (int)ev->kind, ev->id, ev->final);
    if (final) s->inflight = 0;
    if (ev->kind == IFP_CLIENT_REPLY) { /* the caller keeps it */
        Ifp__ServerMessage *m = ev->msg, *taken = ifp_client_event_take(cl, ev);
        FUZZ_CHECK(taken == m && ev->msg == NULL, "%s", "ifp_client_event_take did not hand the Reply over");
        ifp__server_message__free_unpacked(taken, NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char ep[N_ROUTERS][600];
    const char *addrs[N_ROUTERS];
    zctx = zmq_ctx_new();
    if (!zctx) return 1;
    for (int k = 0; k < N_ROUTERS; k++) {
        snprintf(ipc_path[k], sizeof ipc_path[k], "%s", ifp_fuzz_tmp_path(k ? "client-r1" : "client-r0"));
        snprintf(ep[k], sizeof ep[k], "ipc://%s", ipc_path[k]);
        addrs[k] = ep[k];
        rtr[k] = zmq_socket(zctx, ZMQ_ROUTER);
        int one = 1, linger = 0;
        if (!rtr[k] || zmq_setsockopt(rtr[k], ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
            zmq_setsockopt(rtr[k], ZMQ_LINGER, &linger, sizeof linger) || zmq_bind(rtr[k], ep[k])) {
            fprintf(stderr, "fuzz_client: cannot bind %s: %s\n", ep[k], zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    atexit(unlink_paths); /* (runs before fuzz_util.c's removal of the folder) */
    ifp_client_opts_t o = ifp_client_default_opts();
    o.plain = 1;
    o.silence_ms = 50;
    o.heartbeat_ms = 0;
    o.zctx = zctx;
    ifp_err_t err = {0};
    cl = ifp_client_open(addrs, N_ROUTERS, &o, &err);
    if (!cl) {
        fprintf(stderr, "fuzz_client: ifp_client_open: %s\n", err.msg);
        return 1;
    }
    ifp_client_event_t ev;
    for (int i = 0; i < 500 && !(ifp_client_router_up(cl, 0) && ifp_client_router_up(cl, 1)); i++)
        ifp_client_poll(cl, 10, &ev);
    if (!ifp_client_router_up(cl, 0) || !ifp_client_router_up(cl, 1)) {
        fprintf(stderr, "fuzz_client: the client did not connect to both ROUTERs\n");
        return 1;
    }
    for (int i = 0; i < N_SLOTS; i++) submit(&slots[i]);
    /* a Ping to each, so that both ROUTERs learn their DEALER whatever the
     * requests' places */
    ifp_client_ping(cl, 0, "fuzz-hello-0");
    ifp_client_ping(cl, 1, "fuzz-hello-1");
    for (int i = 0; i < 500 && !(ident_len[0] && ident_len[1]); i++) {
        zmq_poll(NULL, 0, 2);
        drain_routers();
    }
    while (ifp_client_poll(cl, 0, &ev) == 1) {}
    if (!ident_len[0] || !ident_len[1]) {
        fprintf(stderr, "fuzz_client: the ROUTERs heard nothing from the client\n");
        return 1;
    }
    ready = 1;
    return 0;
}

/* Sends the frames of s from ROUTER k to the client's DEALER; 1 if sent. */
static int send_from(int k, const ifp_fuzz_split_t *s) {
    if (zmq_send(rtr[k], ident[k], ident_len[k], ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return 0; /* gone, or full */
    for (int i = 0; i < s->n; i++) zmq_send(rtr[k], s->p[i], s->len[i], i + 1 < s->n ? ZMQ_SNDMORE : 0);
    return 1;
}

/* Waits (WAIT_MS at most) until every DEALER sent to has the message. */
static void await_delivery(const int *sent) {
    int got[N_ROUTERS] = {0};
    for (int t = 0; t < WAIT_MS; t++) {
        zmq_pollitem_t it[N_ROUTERS];
        int who[N_ROUTERS], n = 0;
        for (int k = 0; k < N_ROUTERS; k++)
            if (sent[k] && !got[k]) {
                it[n] = (zmq_pollitem_t){ifp_client_socket(cl, k), 0, ZMQ_POLLIN, 0};
                who[n++] = k;
            }
        if (!n || zmq_poll(it, n, 1) < 0) return;
        for (int i = 0; i < n; i++) got[who[i]] = (it[i].revents & ZMQ_POLLIN) != 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_CHECK(ready, "%s", "not set up (see the first lines of the output)");
    ifp_fuzz_split_t s;
    ifp_fuzz_split_frames(data, size, &s);
    drain_routers();
    int sent[N_ROUTERS];
    for (int k = 0; k < N_ROUTERS; k++) sent[k] = send_from(k, &s);
    await_delivery(sent);
    ifp_client_event_t ev;
    int rc, n = 0;
    while ((rc = ifp_client_poll(cl, 0, &ev)) == 1) {
        FUZZ_CHECK(++n <= MAX_EVENTS, "more than %d events from one message", MAX_EVENTS);
        check_event(&ev);
    }
    FUZZ_CHECK(rc == 0, "ifp_client_poll: %d", rc);
    int inflight = 0;
    for (int i = 0; i < N_SLOTS; i++) inflight += slots[i].inflight;
    FUZZ_CHECK(ifp_client_inflight(cl) == inflight, "the client has %d requests in flight, we count %d",
               ifp_client_inflight(cl), inflight);
    for (int i = 0; i < N_SLOTS; i++) {
        if (slots[i].inflight && slots[i].n_tokens >= RECYCLE_TOKENS) {
            FUZZ_CHECK(ifp_client_abandon(cl, slots[i].id) == 0, "abandon %s", slots[i].id);
            slots[i].inflight = 0;
        }
        if (!slots[i].inflight) submit(&slots[i]);
    }
    drain_routers();
    return 0;
}
