/* test_client_failover — the client library (client/client.h) moving
 * requests between fake routers (test_client_fake.h):
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
 *       request moves (or fails, with no other router);
 *   (d) new requests are spread round robin; a router down takes none; a
 *       non-streaming request moves with no resume tokens; a router that
 *       comes back takes requests again.
 * Errors, the caller's mistakes and malformed frames: test_client_errors.
 * Every wait is bounded and every assertion is on facts (who received what,
 * what the caller saw), never on how long something took. */
#include "test_client_fake.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(router_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(router_silent, setup, teardown),
        cmocka_unit_test_setup_teardown(no_return, setup, teardown),
        cmocka_unit_test_setup_teardown(token_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(round_robin_and_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
