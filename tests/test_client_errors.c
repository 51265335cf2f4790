/* test_client_errors — the client library (client/client.h) against fake
 * routers (test_client_fake.h) that answer with errors or garbage:
 *   (e) ERR_BAD_REQUEST is final, ERR_OVERLOADED moves the request (a
 *       bounded number of times, never to the same router twice in a row),
 *       ERR_DEADLINE is followed by the Reply, an Error for an id the client
 *       does not know reaches the caller as it is;
 *   (f) what the caller gets wrong is refused (ids, text, lists of routers);
 *   (g) malformed frames and messages from a router never crash the client
 *       (3000 random or mutated frames), and it serves on.
 * Moves between routers: test_client_failover. */
#include "test_client_fake.h"

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
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
        cmocka_unit_test_setup_teardown(caller_mistakes, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_frames, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
