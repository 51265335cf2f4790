/* test_client_fake.h — fake routers for the client library's tests
 * (test_client_failover.c, test_client_errors.c; header-only).
 *
 * A fake router is a ZeroMQ ROUTER socket of the test on ipc:// (plain),
 * played message by message: it keeps what the client sent and answers with
 * the ServerMessages the test writes (tokens, replies, errors, Progress,
 * Pongs).  start() opens two of them and a client of both (client/client.h)
 * and waits until both are up; pump() runs the fakes and the client and
 * records every event the caller saw (seen_of(id)); WAIT_FOR(cond) pumps
 * until cond holds (bounded).  Assertions are on facts, never on times. */
#ifndef IFP_TEST_CLIENT_FAKE_H
#define IFP_TEST_CLIENT_FAKE_H

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

static inline void fake_open(fake_t *f, const char *name) {
    memset(f, 0, sizeof *f);
    snprintf(f->ep, sizeof f->ep, "ipc://%s/%s", g_dir, name);
    f->s = zmq_socket(g_zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(f->s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(f->s, f->ep), 0);
}

/* Closes the socket (the router "dies"); what it received stays readable. */
static inline void fake_kill(fake_t *f) {
    if (f->s) zmq_close(f->s);
    f->s = NULL;
}

/* A new socket at the same address (the router restarted). */
static inline void fake_restart(fake_t *f) {
    assert_null(f->s);
    f->s = zmq_socket(g_zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(f->s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(f->s, f->ep), 0);
}

static inline void fake_free(fake_t *f) {
    fake_kill(f);
    for (int i = 0; i < f->n_in; i++) ifp__client_message__free_unpacked(f->in[i], NULL);
    f->n_in = 0;
}

static inline void fake_send(fake_t *f, const Ifp__ServerMessage *m) {
    assert_non_null(f->s);
    assert_int_equal(zmq_send(f->s, f->ident, f->ident_len, ZMQ_SNDMORE), (int)f->ident_len);
    assert_int_equal(ifp_wire_send(f->s, NULL, NULL, 0, &m->base), 0);
}

static inline void fake_pong(fake_t *f, const char *id) {
    Ifp__Pong p = IFP__PONG__INIT;
    p.id = (char *)id;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PONG;
    m.pong = &p;
    fake_send(f, &m);
}

static inline void fake_drain(fake_t *f) {
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
static inline Ifp__ClientMessage *fake_nth(const fake_t *f, int kase, const char *id, int n) {
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

static inline int fake_count(const fake_t *f, int kase, const char *id) {
    int n = 0;
    while (fake_nth(f, kase, id, n)) n++;
    return n;
}

static inline const Ifp__Request *fake_request(const fake_t *f, const char *id) {
    Ifp__ClientMessage *m = fake_nth(f, IFP__CLIENT_MESSAGE__MSG_REQUEST, id, 0);
    return m ? m->request : NULL;
}

static inline void fake_token(fake_t *f, const char *id, uint32_t index, int32_t token) {
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

static inline void fake_reply(fake_t *f, const char *id, const int32_t *toks, int n) {
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

static inline void fake_error(fake_t *f, const char *id, Ifp__ErrorCode code, const char *text) {
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

static inline void fake_progress(fake_t *f, const char *id) {
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

static inline seen_t *seen_of(const char *id) {
    for (int i = 0; i < g.n_seen; i++)
        if (!strcmp(g.seen[i].id, id)) return &g.seen[i];
    assert_true(g.n_seen < MAX_SEEN);
    seen_t *s = &g.seen[g.n_seen++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    return s;
}

static inline void record(const ifp_client_event_t *ev) {
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
static inline void pump(double ms) {
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

static inline int setup(void **u) {
    (void)u;
    memset(&g, 0, sizeof g);
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp-test-client-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    g_zctx = zmq_ctx_new();
    return g_zctx ? 0 : -1;
}

static inline int teardown(void **u) {
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
static inline void start(int silence_ms) {
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

static inline void submit(const Ifp__Request *q) {
    ifp_err_t err = {0};
    int rc = ifp_client_submit(g.cl, q, NULL, &err);
    if (rc) fprintf(stderr, "submit %s: %s\n", q->id, err.msg);
    assert_int_equal(rc, 0);
}

static inline Ifp__Request stream_req(const char *id, uint64_t seed) {
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
static inline void check_resent(const Ifp__Request *first, const Ifp__Request *again, const int32_t *toks, int n) {
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

static inline void check_stream(const seen_t *s, const int32_t *toks, int n) {
    assert_int_equal(s->n_tok, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(s->index[i], i);
        assert_int_equal(s->token[i], toks[i]);
    }
}

static inline uint64_t stale_count(void) {
    ifp_client_stats_t st;
    ifp_client_stats(g.cl, &st);
    return st.stale;
}

static const int32_t TOKS[10] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109};

static inline Ifp__Request plain_req(const char *id) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = "2 + 2 =";
    q.max_tokens = 4;
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE; /* no seed: 0, sent again as 0 */
    return q;
}

/* 1 when fake f received a Request id. */
static inline int on(const fake_t *f, const char *id) { return fake_request(f, id) != NULL; }

#endif
