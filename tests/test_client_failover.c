/* test_client_failover — the client library (client/client.h) against fake
 * routers: ZeroMQ ROUTER sockets in this process on ipc:// (plain), played
 * by the test message by message.
 *   (a) a streaming request's router closes after tokens 0..4: the request
 *       goes to the other router with the same id, seed, prompt, stop
 *       strings, mask mode and task and resume_tokens = those 5 tokens; the
 *       duplicates it sends again are dropped: the caller sees 0..9 once, in
 *       order, then the Reply;
 *   (b) a router that stays connected and says nothing for silence_ms: the
 *       request moves (and its router got a Cancel); the silent router is
 *       pinged and takes requests again once it answers; its answer to that
 *       Cancel is not news for the caller; a request never goes back to a
 *       connection it was cancelled on (the router's next one may take it);
 *   (c) a token index past the next one (a gap) is never delivered: the
 *       request moves;
 *   (d) new requests are spread round robin; a router down takes none; a
 *       non-streaming request moves with no resume tokens; a router that
 *       comes back takes requests again;
 *   (e) ERR_BAD_REQUEST is final, ERR_OVERLOADED moves the request (a
 *       bounded number of times), ERR_DEADLINE is followed by the Reply;
 *   (f) what the caller gets wrong is refused (ids, text, lists of routers);
 *   (g) malformed frames and messages from a router never crash the client.
 * Every wait is bounded and every assertion is on facts (who received what,
 * what the caller saw), never on how long something took. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "wire.h"

#define T_WAIT 10000 /* ms: generous, the machine may be busy */
#define MAX_IN 256
#define MAX_SEEN 32

/* ---------------------------------------------------------------- a fake router */

typedef struct {
    char ep[200];
    void *s;
    uint8_t ident[256]; /* the client connection's routing id (the latest) */
    size_t ident_len;
    Ifp__ClientMessage *in[MAX_IN]; /* received, owned */
    int n_in;
    int pong; /* answer Pings */
} fake_t;

static void *g_zctx;
static char g_dir[128];

static void fake_open(fake_t *f, const char *name) {
    memset(f, 0, sizeof *f);
    snprintf(f->ep, sizeof f->ep, "ipc://%s/%s", g_dir, name);
    f->s = zmq_socket(g_zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(f->s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(f->s, f->ep), 0);
}

/* Closes the socket (the router "dies"); what it received stays readable. */
static void fake_kill(fake_t *f) {
    if (f->s) zmq_close(f->s);
    f->s = NULL;
}

/* A new socket at the same address (the router restarted). */
static void fake_restart(fake_t *f) {
    assert_null(f->s);
    f->s = zmq_socket(g_zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(f->s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(f->s, f->ep), 0);
}

static void fake_free(fake_t *f) {
    fake_kill(f);
    for (int i = 0; i < f->n_in; i++) ifp__client_message__free_unpacked(f->in[i], NULL);
    f->n_in = 0;
}

static void fake_send(fake_t *f, const Ifp__ServerMessage *m) {
    assert_non_null(f->s);
    assert_int_equal(zmq_send(f->s, f->ident, f->ident_len, ZMQ_SNDMORE), (int)f->ident_len);
    assert_int_equal(ifp_wire_send(f->s, NULL, NULL, 0, &m->base), 0);
}

static void fake_pong(fake_t *f, const char *id) {
    Ifp__Pong p = IFP__PONG__INIT;
    p.id = (char *)id;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PONG;
    m.pong = &p;
    fake_send(f, &m);
}

static void fake_drain(fake_t *f) {
    while (f->s) {
        ifp_frames_t fr;
        if (ifp_wire_recv(f->s, &fr, ZMQ_DONTWAIT) < 0) return;
        assert_int_equal(fr.n, 2); /* [identity][ClientMessage] */
        f->ident_len = ifp_frame_size(&fr, 0);
        memcpy(f->ident, ifp_frame_data(&fr, 0), f->ident_len);
        Ifp__ClientMessage *m = ifp_wire_client_msg(ifp_frame_data(&fr, 1), ifp_frame_size(&fr, 1));
        ifp_frames_close(&fr);
        assert_non_null(m);
        if (f->pong && m->msg_case == IFP__CLIENT_MESSAGE__MSG_PING) fake_pong(f, m->ping->id);
        if (f->n_in < MAX_IN) f->in[f->n_in++] = m;
        else ifp__client_message__free_unpacked(m, NULL);
    }
}

/* The n-th (0-based) message of kind `kase` about id (NULL: any id), or NULL. */
static Ifp__ClientMessage *fake_nth(const fake_t *f, int kase, const char *id, int n) {
    for (int i = 0; i < f->n_in; i++) {
        Ifp__ClientMessage *m = f->in[i];
        if ((int)m->msg_case != kase) continue;
        const char *mid = kase == IFP__CLIENT_MESSAGE__MSG_REQUEST ? m->request->id
                          : kase == IFP__CLIENT_MESSAGE__MSG_CANCEL ? m->cancel->id
                                                                    : m->ping->id;
        if (id && strcmp(mid, id)) continue;
        if (n-- == 0) return m;
    }
    return NULL;
}

static int fake_count(const fake_t *f, int kase, const char *id) {
    int n = 0;
    while (fake_nth(f, kase, id, n)) n++;
    return n;
}

static const Ifp__Request *fake_request(const fake_t *f, const char *id) {
    Ifp__ClientMessage *m = fake_nth(f, IFP__CLIENT_MESSAGE__MSG_REQUEST, id, 0);
    return m ? m->request : NULL;
}

static void fake_token(fake_t *f, const char *id, uint32_t index, int32_t token) {
    char text[16];
    snprintf(text, sizeof text, "<%d>", token);
    Ifp__TokenEvent t = IFP__TOKEN_EVENT__INIT;
    t.id = (char *)id;
    t.index = index;
    t.token = token;
    t.text.data = (uint8_t *)text;
    t.text.len = strlen(text);
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_TOKEN;
    m.token = &t;
    fake_send(f, &m);
}

static void fake_reply(fake_t *f, const char *id, const int32_t *toks, int n) {
    Ifp__Reply r = IFP__REPLY__INIT;
    r.id = (char *)id;
    r.n_tokens = (size_t)n;
    r.tokens = (int32_t *)toks;
    r.finish = IFP__FINISH_REASON__FINISH_LENGTH;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_REPLY;
    m.reply = &r;
    fake_send(f, &m);
}

static void fake_error(fake_t *f, const char *id, Ifp__ErrorCode code, const char *text) {
    Ifp__Error e = IFP__ERROR__INIT;
    e.id = (char *)id;
    e.code = code;
    e.message = (char *)text;
    e.retry_after_ms = code == IFP__ERROR_CODE__ERR_OVERLOADED ? 100 : 0;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    fake_send(f, &m);
}

static void fake_progress(fake_t *f, const char *id) {
    Ifp__Progress p = IFP__PROGRESS__INIT;
    p.id = (char *)id;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PROGRESS;
    m.progress = &p;
    fake_send(f, &m);
}

/* ---------------------------------------------------------------- what the caller saw */

typedef struct {
    char id[64];
    uint32_t index[64];
    int32_t token[64];
    int n_tok;
    int replies, errors, failed, finals;
    Ifp__ErrorCode error_code;
    ifp_client_why_t failed_why;
    int n_fo;
    int fo_from[16], fo_to[16];
    ifp_client_why_t fo_why[16];
    uint32_t fo_tokens[16];
    int reply_tokens, failovers_at_end;
} seen_t;

typedef struct {
    ifp_client_t *cl;
    fake_t f[2];
    seen_t seen[MAX_SEEN];
    int n_seen;
    int ups[2], downs[2], others, pongs;
} env_t;

static env_t g;

static seen_t *seen_of(const char *id) {
    for (int i = 0; i < g.n_seen; i++)
        if (!strcmp(g.seen[i].id, id)) return &g.seen[i];
    assert_true(g.n_seen < MAX_SEEN);
    seen_t *s = &g.seen[g.n_seen++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    return s;
}

static void record(const ifp_client_event_t *ev) {
    if (ev->kind == IFP_CLIENT_ROUTER_UP) g.ups[ev->router]++;
    if (ev->kind == IFP_CLIENT_ROUTER_DOWN) g.downs[ev->router]++;
    if (ev->kind == IFP_CLIENT_OTHER) g.others++;
    if (ev->kind == IFP_CLIENT_PONG) g.pongs++;
    if (!*ev->id) return;
    seen_t *s = seen_of(ev->id);
    switch (ev->kind) {
    case IFP_CLIENT_TOKEN:
        assert_true(s->n_tok < 64);
        s->index[s->n_tok] = ev->msg->token->index;
        s->token[s->n_tok++] = ev->msg->token->token;
        assert_int_equal(ev->n_tokens, s->n_tok);
        break;
    case IFP_CLIENT_REPLY:
        s->replies++;
        s->reply_tokens = (int)ev->msg->reply->n_tokens;
        break;
    case IFP_CLIENT_ERROR:
        s->errors++;
        s->error_code = ev->msg->error->code;
        break;
    case IFP_CLIENT_FAILED:
        s->failed++;
        s->failed_why = ev->why;
        break;
    case IFP_CLIENT_FAILOVER:
        assert_true(s->n_fo < 16);
        s->fo_from[s->n_fo] = ev->from;
        s->fo_to[s->n_fo] = ev->router;
        s->fo_why[s->n_fo] = ev->why;
        s->fo_tokens[s->n_fo++] = ev->n_tokens;
        break;
    default: break;
    }
    if (ev->final) {
        s->finals++;
        s->failovers_at_end = ev->failovers;
    }
}

/* Runs the fakes and the client for about ms. */
static void pump(double ms) {
    double end = ifp_now_ms() + ms;
    do {
        fake_drain(&g.f[0]);
        fake_drain(&g.f[1]);
        ifp_client_event_t ev;
        while (ifp_client_poll(g.cl, 2, &ev) == 1) record(&ev);
    } while (ifp_now_ms() < end);
}

#define WAIT_FOR(cond)                                                                 \
    do {                                                                               \
        double end_ = ifp_now_ms() + T_WAIT;                                           \
        while (!(cond) && ifp_now_ms() < end_) pump(5);                               \
        assert_true(cond);                                                             \
    } while (0)

static int setup(void **u) {
    (void)u;
    memset(&g, 0, sizeof g);
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp-test-client-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    g_zctx = zmq_ctx_new();
    return g_zctx ? 0 : -1;
}

static int teardown(void **u) {
    (void)u;
    ifp_client_close(&g.cl);
    fake_free(&g.f[0]);
    fake_free(&g.f[1]);
    zmq_ctx_term(g_zctx);
    g_zctx = NULL;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", g_dir);
    return 0;
}

/* Two fake routers and a client of both, both up. */
static void start(int silence_ms) {
    fake_open(&g.f[0], "a");
    fake_open(&g.f[1], "b");
    ifp_client_opts_t o = ifp_client_default_opts();
    o.plain = 1;
    o.silence_ms = silence_ms;
    const char *addrs[2] = {g.f[0].ep, g.f[1].ep};
    ifp_err_t err = {0};
    g.cl = ifp_client_open(addrs, 2, &o, &err);
    if (!g.cl) fprintf(stderr, "ifp_client_open: %s\n", err.msg);
    assert_non_null(g.cl);
    assert_int_equal(ifp_client_n_routers(g.cl), 2);
    assert_false(ifp_client_curve_on(g.cl));
    WAIT_FOR(ifp_client_router_up(g.cl, 0) && ifp_client_router_up(g.cl, 1));
}

static void submit(const Ifp__Request *q) {
    ifp_err_t err = {0};
    int rc = ifp_client_submit(g.cl, q, NULL, &err);
    if (rc) fprintf(stderr, "submit %s: %s\n", q->id, err.msg);
    assert_int_equal(rc, 0);
}

static Ifp__Request stream_req(const char *id, uint64_t seed) {
    static char *stops[] = {"END", "STOP"};
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = "Once upon a time";
    q.max_tokens = 10;
    q.temperature = 0.7f;
    q.top_p = 0.9f;
    q.top_k = 40;
    q.seed = seed;
    q.n_stop = 2;
    q.stop = stops;
    q.mask_mode = IFP__MASK_MODE__MASK_TASK;
    q.task = "tell a story";
    q.stream = 1;
    q.logprobs = 1;
    return q;
}

/* The resent request carries what the first one did, and resume = toks. */
static void check_resent(const Ifp__Request *first, const Ifp__Request *again, const int32_t *toks, int n) {
    assert_string_equal(again->id, first->id);
    assert_string_equal(again->prompt, first->prompt);
    assert_int_equal(again->max_tokens, first->max_tokens);
    assert_true(again->temperature == first->temperature && again->top_p == first->top_p);
    assert_int_equal(again->top_k, first->top_k);
    assert_true(again->seed == first->seed);
    assert_int_equal(again->n_stop, first->n_stop);
    for (size_t i = 0; i < again->n_stop; i++) assert_string_equal(again->stop[i], first->stop[i]);
    assert_int_equal(again->mask_mode, first->mask_mode);
    assert_string_equal(again->task, first->task);
    assert_int_equal(again->stream, first->stream);
    assert_int_equal(again->logprobs, first->logprobs);
    assert_int_equal(first->n_resume_tokens, 0);
    assert_int_equal(again->n_resume_tokens, n);
    for (int i = 0; i < n; i++) assert_int_equal(again->resume_tokens[i], toks[i]);
}

static void check_stream(const seen_t *s, const int32_t *toks, int n) {
    assert_int_equal(s->n_tok, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(s->index[i], i);
        assert_int_equal(s->token[i], toks[i]);
    }
}

static uint64_t stale_count(void) {
    ifp_client_stats_t st;
    ifp_client_stats(g.cl, &st);
    return st.stale;
}

static const int32_t TOKS[10] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109};

/* ---------------------------------------------------------------- (a) */

static void router_closes(void **u) {
    (void)u;
    start(60000); /* silence: not this test's */
    Ifp__Request q = stream_req("r1", 42);
    submit(&q);
    WAIT_FOR(fake_request(&g.f[0], "r1")); /* round robin: the first router first */
    assert_null(fake_request(&g.f[1], "r1"));
    for (uint32_t i = 0; i < 5; i++) fake_token(&g.f[0], "r1", i, TOKS[i]);
    WAIT_FOR(seen_of("r1")->n_tok == 5);
    fake_kill(&g.f[0]);
    WAIT_FOR(fake_request(&g.f[1], "r1"));
    check_resent(fake_request(&g.f[0], "r1"), fake_request(&g.f[1], "r1"), TOKS, 5);
    const seen_t *s = seen_of("r1");
    assert_int_equal(s->n_fo, 1);
    assert_int_equal(s->fo_from[0], 0);
    assert_int_equal(s->fo_to[0], 1);
    assert_int_equal(s->fo_why[0], IFP_CLIENT_GONE);
    assert_int_equal(s->fo_tokens[0], 5);
    /* B sends 3 and 4 again (dropped), then 5..9 and the Reply */
    for (uint32_t i = 3; i < 10; i++) fake_token(&g.f[1], "r1", i, TOKS[i]);
    fake_reply(&g.f[1], "r1", TOKS, 10);
    WAIT_FOR(s->finals == 1);
    check_stream(s, TOKS, 10);
    assert_int_equal(s->replies, 1);
    assert_int_equal(s->reply_tokens, 10);
    assert_int_equal(s->errors + s->failed, 0);
    assert_int_equal(s->failovers_at_end, 1);
    assert_true(g.downs[0] >= 1);
    ifp_client_stats_t st;
    ifp_client_stats(g.cl, &st);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.failovers, 1);
    assert_int_equal(st.completed, 1);
    assert_int_equal(ifp_client_inflight(g.cl), 0);
}

/* ---------------------------------------------------------------- (b) */

static void router_silent(void **u) {
    (void)u;
    start(200);
    Ifp__Request q = stream_req("s1", 7);
    submit(&q);
    WAIT_FOR(fake_request(&g.f[0], "s1"));
    fake_token(&g.f[0], "s1", 0, TOKS[0]);
    fake_token(&g.f[0], "s1", 1, TOKS[1]);
    WAIT_FOR(seen_of("s1")->n_tok == 2);
    /* A stays connected and says nothing more */
    WAIT_FOR(fake_request(&g.f[1], "s1"));
    check_resent(fake_request(&g.f[0], "s1"), fake_request(&g.f[1], "s1"), TOKS, 2);
    WAIT_FOR(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_CANCEL, "s1") == 1); /* the old one is told */
    const seen_t *s = seen_of("s1");
    assert_int_equal(s->n_fo, 1);
    assert_int_equal(s->fo_why[0], IFP_CLIENT_SILENT);
    assert_false(ifp_client_router_up(g.cl, 0));
    for (uint32_t i = 2; i < 4; i++) fake_token(&g.f[1], "s1", i, TOKS[i]);
    fake_reply(&g.f[1], "s1", TOKS, 4);
    WAIT_FOR(s->finals == 1);
    check_stream(s, TOKS, 4);
    assert_int_equal(s->replies, 1);
    /* A is pinged while down; once it answers it takes requests again */
    WAIT_FOR(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_PING, NULL) >= 1);
    assert_int_equal(strncmp(fake_nth(&g.f[0], IFP__CLIENT_MESSAGE__MSG_PING, NULL, 0)->ping->id, "ifp-client-", 11), 0);
    g.f[0].pong = 1;
    fake_pong(&g.f[0], fake_nth(&g.f[0], IFP__CLIENT_MESSAGE__MSG_PING, NULL, 0)->ping->id);
    WAIT_FOR(ifp_client_router_up(g.cl, 0));
    assert_int_equal(g.pongs, 0); /* the client's own Pongs are not the caller's */
    /* two requests submitted back to back: one on each router (the first
     * new Request each gets; a later move, should the machine stall past
     * silence_ms, cannot make them equal) */
    int a0 = fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL);
    int b0 = fake_count(&g.f[1], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL);
    Ifp__Request q2 = stream_req("s2", 8), q3 = stream_req("s3", 9);
    submit(&q2);
    submit(&q3);
    WAIT_FOR(fake_nth(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL, a0) &&
             fake_nth(&g.f[1], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL, b0));
    assert_string_not_equal(fake_nth(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL, a0)->request->id,
                            fake_nth(&g.f[1], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL, b0)->request->id);
    /* A answers the Cancel the client sent it, after s1 ended on B: stale,
     * not an Error for the caller */
    int others = g.others;
    uint64_t stale = stale_count();
    fake_error(&g.f[0], "s1", IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST, "no such request");
    WAIT_FOR(stale_count() == stale + 1);
    assert_int_equal(g.others, others);
}

/* A request never goes back to a connection the client cancelled it on
 * (that router's answer to the Cancel could pass for the new attempt's);
 * the router's next connection is a new client and may take it. */
static void no_return(void **u) {
    (void)u;
    start(200);
    Ifp__Request q = stream_req("n1", 11);
    submit(&q);
    WAIT_FOR(fake_request(&g.f[0], "n1"));
    fake_token(&g.f[0], "n1", 0, TOKS[0]);
    WAIT_FOR(fake_request(&g.f[1], "n1")); /* A silent: n1 on B */
    g.f[0].pong = 1;                        /* A answers its Pings: up again */
    WAIT_FOR(ifp_client_router_up(g.cl, 0));
    WAIT_FOR(g.downs[1] >= 1); /* B says nothing either */
    pump(50);
    assert_int_equal(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, "n1"), 1);
    assert_int_equal(seen_of("n1")->finals, 0);
    /* A restarts: a new connection, where n1 may go */
    fake_kill(&g.f[0]);
    fake_restart(&g.f[0]);
    WAIT_FOR(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, "n1") == 2);
    const Ifp__Request *again = fake_nth(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, "n1", 1)->request;
    check_resent(fake_request(&g.f[0], "n1"), again, TOKS, 1);
    for (uint32_t i = 1; i < 3; i++) fake_token(&g.f[0], "n1", i, TOKS[i]);
    fake_reply(&g.f[0], "n1", TOKS, 3);
    WAIT_FOR(seen_of("n1")->finals == 1);
    check_stream(seen_of("n1"), TOKS, 3);
    assert_int_equal(seen_of("n1")->replies, 1);
}

/* ---------------------------------------------------------------- (c) */

static void token_gap(void **u) {
    (void)u;
    start(60000);
    Ifp__Request q = stream_req("g1", 3);
    submit(&q);
    WAIT_FOR(fake_request(&g.f[0], "g1"));
    fake_token(&g.f[0], "g1", 0, TOKS[0]);
    fake_token(&g.f[0], "g1", 1, TOKS[1]);
    fake_token(&g.f[0], "g1", 3, TOKS[3]); /* 2 is missing */
    WAIT_FOR(fake_request(&g.f[1], "g1"));
    check_resent(fake_request(&g.f[0], "g1"), fake_request(&g.f[1], "g1"), TOKS, 2);
    WAIT_FOR(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_CANCEL, "g1") == 1);
    const seen_t *s = seen_of("g1");
    assert_int_equal(s->n_tok, 2); /* 3 never reached the caller */
    assert_int_equal(s->n_fo, 1);
    assert_int_equal(s->fo_why[0], IFP_CLIENT_GAP);
    /* what A still sends for it is dropped: the request left A */
    fake_token(&g.f[0], "g1", 4, 999);
    WAIT_FOR(stale_count() == 1);
    for (uint32_t i = 2; i < 5; i++) fake_token(&g.f[1], "g1", i, TOKS[i]);
    fake_reply(&g.f[1], "g1", TOKS, 5);
    WAIT_FOR(s->finals == 1);
    check_stream(s, TOKS, 5);
    ifp_client_stats_t st;
    ifp_client_stats(g.cl, &st);
    assert_int_equal(st.gaps, 1);
    /* a gap with no other router: the request fails, it is not delivered */
    fake_kill(&g.f[1]);
    WAIT_FOR(!ifp_client_router_up(g.cl, 1));
    Ifp__Request q2 = stream_req("g2", 4);
    submit(&q2);
    WAIT_FOR(fake_request(&g.f[0], "g2"));
    fake_token(&g.f[0], "g2", 1, TOKS[1]);
    WAIT_FOR(seen_of("g2")->finals == 1);
    assert_int_equal(seen_of("g2")->failed, 1);
    assert_int_equal(seen_of("g2")->failed_why, IFP_CLIENT_GAP);
    assert_int_equal(seen_of("g2")->n_tok, 0);
}

/* ---------------------------------------------------------------- (d) */

static Ifp__Request plain_req(const char *id) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = "2 + 2 =";
    q.max_tokens = 4;
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE; /* no seed: 0, sent again as 0 */
    return q;
}

static int on(const fake_t *f, const char *id) { return fake_request(f, id) != NULL; }

static void round_robin_and_back(void **u) {
    (void)u;
    start(60000);
    const char *ids[4] = {"q0", "q1", "q2", "q3"};
    for (int i = 0; i < 4; i++) {
        Ifp__Request q = plain_req(ids[i]);
        submit(&q);
    }
    WAIT_FOR(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL) == 2 &&
             fake_count(&g.f[1], IFP__CLIENT_MESSAGE__MSG_REQUEST, NULL) == 2);
    assert_true(on(&g.f[0], "q0") && on(&g.f[1], "q1") && on(&g.f[0], "q2") && on(&g.f[1], "q3"));
    for (int i = 0; i < 4; i++) fake_reply(&g.f[i % 2], ids[i], TOKS, 4);
    WAIT_FOR(seen_of("q0")->finals + seen_of("q1")->finals + seen_of("q2")->finals + seen_of("q3")->finals == 4);
    /* a non-streaming request moves with no tokens to resume */
    Ifp__Request ns = plain_req("ns");
    submit(&ns);
    WAIT_FOR(on(&g.f[0], "ns"));
    fake_progress(&g.f[0], "ns");
    pump(20);
    fake_kill(&g.f[0]);
    WAIT_FOR(on(&g.f[1], "ns"));
    const Ifp__Request *again = fake_request(&g.f[1], "ns");
    assert_int_equal(again->n_resume_tokens, 0);
    assert_true(again->seed == 0);
    assert_int_equal(again->mask_mode, IFP__MASK_MODE__MASK_DENSE);
    fake_reply(&g.f[1], "ns", TOKS, 4);
    WAIT_FOR(seen_of("ns")->finals == 1);
    assert_int_equal(seen_of("ns")->replies, 1);
    assert_int_equal(seen_of("ns")->failovers_at_end, 1);
    WAIT_FOR(g.downs[0] == 1);
    /* A is down: everything goes to B */
    Ifp__Request q4 = plain_req("q4"), q5 = plain_req("q5");
    submit(&q4);
    submit(&q5);
    WAIT_FOR(on(&g.f[1], "q4") && on(&g.f[1], "q5"));
    /* A comes back: it takes new requests again */
    fake_restart(&g.f[0]);
    WAIT_FOR(ifp_client_router_up(g.cl, 0));
    assert_true(g.ups[0] >= 2);
    Ifp__Request q6 = plain_req("q6"), q7 = plain_req("q7");
    submit(&q6);
    submit(&q7);
    WAIT_FOR((on(&g.f[0], "q6") || on(&g.f[1], "q6")) && (on(&g.f[0], "q7") || on(&g.f[1], "q7")));
    assert_int_equal(on(&g.f[0], "q6") + on(&g.f[0], "q7"), 1);
    assert_int_equal(on(&g.f[1], "q6") + on(&g.f[1], "q7"), 1);
    assert_false(on(&g.f[0], "q4") || on(&g.f[0], "q5"));
}

/* ---------------------------------------------------------------- (e) */

static void errors(void **u) {
    (void)u;
    start(60000);
    Ifp__Request bad = plain_req("bad");
    submit(&bad);
    WAIT_FOR(on(&g.f[0], "bad"));
    fake_error(&g.f[0], "bad", IFP__ERROR_CODE__ERR_BAD_REQUEST, "temperature: must be a finite number >= 0");
    WAIT_FOR(seen_of("bad")->finals == 1);
    assert_int_equal(seen_of("bad")->errors, 1);
    assert_int_equal(seen_of("bad")->error_code, IFP__ERROR_CODE__ERR_BAD_REQUEST);
    assert_false(on(&g.f[1], "bad"));
    /* overloaded on B: moves to A, whose Reply ends it */
    Ifp__Request busy = plain_req("busy");
    submit(&busy);
    WAIT_FOR(on(&g.f[1], "busy"));
    fake_error(&g.f[1], "busy", IFP__ERROR_CODE__ERR_OVERLOADED, "queue full");
    WAIT_FOR(on(&g.f[0], "busy"));
    fake_reply(&g.f[0], "busy", TOKS, 4);
    WAIT_FOR(seen_of("busy")->finals == 1);
    assert_int_equal(seen_of("busy")->errors, 0);
    assert_int_equal(seen_of("busy")->replies, 1);
    assert_int_equal(seen_of("busy")->n_fo, 1);
    assert_int_equal(seen_of("busy")->fo_why[0], IFP_CLIENT_OVERLOADED);
    /* overloaded everywhere: moved overload_retries (2) times, then the Error stands */
    Ifp__Request full = plain_req("full");
    submit(&full);
    int at = -1, c[2] = {0, 0};
    for (int tries = 0; tries < 3; tries++) {
        WAIT_FOR(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, "full") +
                     fake_count(&g.f[1], IFP__CLIENT_MESSAGE__MSG_REQUEST, "full") == tries + 1);
        int now_at = fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, "full") > c[0] ? 0 : 1;
        if (tries) assert_int_not_equal(now_at, at); /* never the same router twice in a row */
        at = now_at;
        c[at]++;
        fake_error(&g.f[at], "full", IFP__ERROR_CODE__ERR_OVERLOADED, "queue full");
    }
    WAIT_FOR(seen_of("full")->finals == 1);
    assert_int_equal(seen_of("full")->errors, 1);
    assert_int_equal(seen_of("full")->error_code, IFP__ERROR_CODE__ERR_OVERLOADED);
    assert_int_equal(seen_of("full")->n_fo, 2);
    assert_int_equal(fake_count(&g.f[0], IFP__CLIENT_MESSAGE__MSG_REQUEST, "full") +
                         fake_count(&g.f[1], IFP__CLIENT_MESSAGE__MSG_REQUEST, "full"),
                     3);
    /* ERR_DEADLINE: an Error, then the Reply ends it */
    Ifp__Request late = plain_req("late");
    late.deadline_ms = 50;
    submit(&late);
    fake_t *f = NULL;
    WAIT_FOR(on(&g.f[0], "late") || on(&g.f[1], "late"));
    f = on(&g.f[0], "late") ? &g.f[0] : &g.f[1];
    assert_int_equal(fake_request(f, "late")->deadline_ms, 50);
    fake_error(f, "late", IFP__ERROR_CODE__ERR_DEADLINE, "deadline");
    pump(20);
    assert_int_equal(seen_of("late")->finals, 0);
    fake_reply(f, "late", TOKS, 1);
    WAIT_FOR(seen_of("late")->finals == 1);
    assert_int_equal(seen_of("late")->errors, 1);
    assert_int_equal(seen_of("late")->replies, 1);
    /* an Error for an id the client does not know reaches the caller as is */
    fake_error(f, "nobody", IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST, "no such request");
    WAIT_FOR(g.others == 1);
}

/* ---------------------------------------------------------------- (f) */

static void caller_mistakes(void **u) {
    (void)u;
    start(60000);
    ifp_err_t err = {0};
    Ifp__Request q = plain_req("");
    assert_int_equal(ifp_client_submit(g.cl, &q, NULL, &err), IFP_EINVAL);
    char long_id[IFP_CLIENT_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    q.id = long_id;
    assert_int_equal(ifp_client_submit(g.cl, &q, NULL, &err), IFP_EINVAL);
    q.id = "ok";
    q.prompt = "\xff\xfe";
    assert_int_equal(ifp_client_submit(g.cl, &q, NULL, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "request.prompt"));
    q.prompt = "fine";
    assert_int_equal(ifp_client_submit(g.cl, &q, NULL, &err), 0);
    assert_int_equal(ifp_client_submit(g.cl, &q, NULL, &err), IFP_EINVAL); /* in flight already */
    assert_non_null(strstr(err.msg, "in flight"));
    assert_int_equal(ifp_client_cancel(g.cl, "nobody"), IFP_ENOTFOUND);
    assert_int_equal(ifp_client_abandon(g.cl, "ok"), 0);
    assert_int_equal(ifp_client_inflight(g.cl), 0);
    /* lists of routers */
    char buf[512];
    const char *out[4];
    assert_int_equal(ifp_client_split_routers("tcp://a:1, ipc:///x ,tcp://b:2", buf, sizeof buf, out, 4, &err), 3);
    assert_string_equal(out[0], "tcp://a:1");
    assert_string_equal(out[1], "ipc:///x");
    assert_string_equal(out[2], "tcp://b:2");
    assert_true(ifp_client_split_routers("tcp://a:1,,tcp://b:2", buf, sizeof buf, out, 4, &err) < 0);
    assert_true(ifp_client_split_routers("localhost:5555", buf, sizeof buf, out, 4, &err) < 0);
    assert_true(ifp_client_split_routers("tcp://a:1,tcp://a:2", buf, sizeof buf, out, 1, &err) < 0);
    const char *none[1] = {"nowhere"};
    assert_null(ifp_client_open(none, 1, NULL, &err));
    assert_null(ifp_client_open(none, 0, NULL, &err));
}

/* ---------------------------------------------------------------- (g) */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void malformed_frames(void **u) {
    (void)u;
    start(60000);
    Ifp__Request q = stream_req("z1", 1);
    submit(&q);
    WAIT_FOR(on(&g.f[0], "z1"));
    fake_token(&g.f[0], "z1", 0, TOKS[0]);
    WAIT_FOR(seen_of("z1")->n_tok == 1);
    /* a valid message of every kind, packed, to mutate */
    uint8_t good[5][256];
    size_t good_len[5];
    {
        Ifp__TokenEvent t = IFP__TOKEN_EVENT__INIT;
        t.id = "z1", t.index = 1, t.token = 5;
        Ifp__Reply r = IFP__REPLY__INIT;
        r.id = "zz";
        Ifp__Error e = IFP__ERROR__INIT;
        e.id = "z9", e.code = IFP__ERROR_CODE__ERR_OVERLOADED;
        Ifp__Pong p = IFP__PONG__INIT;
        p.id = "ifp-client-0-1";
        Ifp__Progress pr = IFP__PROGRESS__INIT;
        pr.id = "z1";
        Ifp__ServerMessage m[5] = {IFP__SERVER_MESSAGE__INIT, IFP__SERVER_MESSAGE__INIT, IFP__SERVER_MESSAGE__INIT,
                                   IFP__SERVER_MESSAGE__INIT, IFP__SERVER_MESSAGE__INIT};
        m[0].msg_case = IFP__SERVER_MESSAGE__MSG_TOKEN, m[0].token = &t;
        m[1].msg_case = IFP__SERVER_MESSAGE__MSG_REPLY, m[1].reply = &r;
        m[2].msg_case = IFP__SERVER_MESSAGE__MSG_ERROR, m[2].error = &e;
        m[3].msg_case = IFP__SERVER_MESSAGE__MSG_PONG, m[3].pong = &p;
        m[4].msg_case = IFP__SERVER_MESSAGE__MSG_PROGRESS, m[4].progress = &pr;
        for (int i = 0; i < 5; i++) good_len[i] = protobuf_c_message_pack(&m[i].base, good[i]);
    }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    void *a = g.f[0].s;
    for (int i = 0; i < 3000; i++) {
        uint8_t buf[300];
        size_t n;
        int kind = (int)(rng_next(&s) % 4);
        if (kind == 0) { /* random bytes */
            n = rng_next(&s) % sizeof buf;
            for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)rng_next(&s);
        } else { /* a valid message with bytes flipped, cut or extended */
            int w = (int)(rng_next(&s) % 5);
            n = good_len[w];
            memcpy(buf, good[w], n);
            for (int k = 0; k < 1 + (int)(rng_next(&s) % 3); k++) buf[rng_next(&s) % n] ^= (uint8_t)rng_next(&s);
            if (kind == 2) n = rng_next(&s) % (n + 1);
            if (kind == 3 && n + 8 < sizeof buf)
                for (int k = 0; k < 8; k++) buf[n++] = (uint8_t)rng_next(&s);
        }
        int frames = 1 + (int)(rng_next(&s) % 6 == 0) + (int)(rng_next(&s) % 20 == 0) * 4; /* 1, 2 or 5-6 frames */
        zmq_send(a, g.f[0].ident, g.f[0].ident_len, ZMQ_SNDMORE);
        for (int k = 1; k < frames; k++) zmq_send(a, k == 1 && frames == 2 ? "" : "x", k == 1 && frames == 2 ? 0 : 1, ZMQ_SNDMORE);
        zmq_send(a, buf, n, 0);
        if (i % 100 == 0) pump(2);
    }
    pump(50);
    ifp_client_stats_t st;
    ifp_client_stats(g.cl, &st);
    assert_true(st.malformed > 0);
    /* the client still works: a new request on B is answered */
    Ifp__Request q2 = plain_req("after");
    submit(&q2);
    fake_t *f = NULL;
    WAIT_FOR(on(&g.f[0], "after") || on(&g.f[1], "after"));
    f = on(&g.f[0], "after") ? &g.f[0] : &g.f[1];
    fake_reply(f, "after", TOKS, 2);
    WAIT_FOR(seen_of("after")->finals == 1);
    assert_int_equal(seen_of("after")->replies, 1);
    /* z1 delivered only tokens in order, each once */
    const seen_t *z = seen_of("z1");
    for (int i = 0; i < z->n_tok; i++) assert_int_equal(z->index[i], i);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(router_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(router_silent, setup, teardown),
        cmocka_unit_test_setup_teardown(no_return, setup, teardown),
        cmocka_unit_test_setup_teardown(token_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(round_robin_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
        cmocka_unit_test_setup_teardown(caller_mistakes, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_frames, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
