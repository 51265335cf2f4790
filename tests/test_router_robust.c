/* test_router_robust — the real ifp-router against fake groups and clients
 * (router_testlib.h) where input is odd or hostile, peers vanish and
 * messages race:
 *   - a non-streaming client that goes away: its work is cancelled at the
 *     group (Progress keep-alives find out);
 *   - a request over the size any valid request can have: an error reply
 *     and a log line, not a silent drop; text fields with invalid UTF-8 or a
 *     NUL byte refused with the field named (ids that differ after a NUL do
 *     not collide, an invalid id is never echoed);
 *   - counts a group claims are clamped to the configuration (slots) or the
 *     heartbeat is refused (lists longer than the group can hold);
 *   - lost work is decided from facts: a heartbeat that has not yet seen a
 *     Work, or that lists a request as finished while its last tokens are
 *     still on the way, causes no replay; one that saw the Work and does not
 *     hold it causes exactly one;
 *   - work a group runs that the router does not know (a previous router's)
 *     is cancelled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "router_testlib.h"
#include "testutil.h"

#define T_WAIT 5000 /* ms: generous, the machine may be busy */

static rl_env_t g_env;
static const int32_t SCRIPT[] = {300, 301, 302, 303, 304, 305, 306, 307};

static int teardown_env(void **u) {
    (void)u;
    if (g_env.zctx) rl_stop(&g_env);
    return 0;
}

static Ifp__Request dense_req(const char *id, uint32_t max_tokens, int stream) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = "Once upon a time";
    q.max_tokens = max_tokens;
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    q.stream = stream;
    return q;
}

static int has_cancel(const rl_group_t *g, uint64_t rid) {
    for (int i = 0; i < g->n_cancel; i++)
        if (g->cancel[i] == rid) return 1;
    return 0;
}

/* Waits (pumping) until group g got a CancelWork for rid. */
static int wait_cancel(rl_env_t *e, int g, uint64_t rid, double ms) {
    double end = ifp_now_ms() + ms;
    while (!has_cancel(&e->g[g], rid) && ifp_now_ms() < end) rl_pump(e, 10);
    return has_cancel(&e->g[g], rid);
}

/* ---------------------------------------------------------------- clients */

static void vanished_client_cancels(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 4, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    void *c2 = rl_dealer(e, e->front, "client-2");
    Ifp__Request q = dense_req("quiet", 100, 0); /* not streaming */
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &q;
    rl_send_raw(c2, &m.base);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[0], w->rid, 0, SCRIPT, 2, 0); /* it is running */
    rl_pump(e, 100);
    zmq_close(c2); /* the client goes away without a Cancel */
    assert_true(wait_cancel(e, 0, w->rid, 3 * T_WAIT));
    assert_int_equal(rl_counter(e, "cancelled"), 1);
    assert_int_equal(rl_counter(e, "replays"), 0);
    /* a client that stays gets Progress while nothing else comes */
    Ifp__Request q2 = dense_req("waiting", 8, 0);
    rl_request(e, &q2);
    w = rl_wait_work(e, 0, 2, T_WAIT);
    assert_non_null(w);
    double end = ifp_now_ms() + 3 * T_WAIT;
    while (e->n_progress == 0 && ifp_now_ms() < end) rl_pump(e, 20);
    assert_true(e->n_progress > 0);
    assert_false(has_cancel(&e->g[0], w->rid));
    rl_tokens(&e->g[0], w->rid, 0, SCRIPT, 8, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "waiting", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_tokens, 8);
    assert_int_equal(rl_stop(e), 0);
}

/* Appends a protobuf length-delimited field (number f) to buf at *at. */
static void put_bytes(uint8_t *buf, size_t *at, int f, const void *p, size_t n) {
    buf[(*at)++] = (uint8_t)(f << 3 | 2);
    size_t v = n;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        buf[(*at)++] = v ? b | 0x80 : b;
    } while (v);
    memcpy(buf + *at, p, n);
    *at += n;
}

/* A ClientMessage{request: Request{id, prompt, mask_mode = DENSE}} with raw
 * bytes (protobuf-c cannot hold a NUL inside a string). */
static size_t raw_request(uint8_t *out, const void *id, size_t id_len, const void *prompt, size_t p_len) {
    uint8_t inner[512];
    size_t n = 0, at = 0;
    put_bytes(inner, &n, 1, id, id_len);
    put_bytes(inner, &n, 2, prompt, p_len);
    inner[n++] = 10 << 3 | 0; /* mask_mode */
    inner[n++] = IFP__MASK_MODE__MASK_DENSE;
    put_bytes(out, &at, 1, inner, n);
    return at;
}

/* The Error answering the next message (waits), or NULL. */
static Ifp__Error *next_error(rl_env_t *e, int *seen, double ms) {
    double end = ifp_now_ms() + ms;
    for (;;) {
        for (; *seen < e->n_inbox; (*seen)++)
            if (e->inbox[*seen]->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR) return e->inbox[(*seen)++]->error;
        if (ifp_now_ms() >= end) return NULL;
        rl_pump(e, 10);
    }
}

static void oversize_and_bad_text(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 4, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    int seen = 0;
    /* 5 MiB of prompt: refused with a reply naming the limit, and logged */
    size_t big = 5u << 20;
    char *prompt = malloc(big + 1);
    memset(prompt, 'a', big);
    prompt[big] = '\0';
    Ifp__Request q = dense_req("huge", 4, 0);
    q.prompt = prompt;
    rl_request(e, &q);
    free(prompt);
    Ifp__Error *er = next_error(e, &seen, T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_BAD_REQUEST);
    assert_non_null(strstr(er->message, "largest valid request"));
    assert_true(rl_wait_log(e, "refused a client message", T_WAIT));
    /* an id with invalid UTF-8: refused, the id not echoed */
    uint8_t raw[1024];
    size_t n = raw_request(raw, "\xff\xfe", 2, "hi", 2);
    zmq_send(e->client, raw, n, 0);
    er = next_error(e, &seen, T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_BAD_REQUEST);
    assert_non_null(strstr(er->message, "request.id: invalid UTF-8 at byte 0"));
    assert_string_equal(er->id, "");
    /* a NUL inside the prompt: refused, naming the field and the byte */
    n = raw_request(raw, "p1", 2, "ab\0cd", 5);
    zmq_send(e->client, raw, n, 0);
    er = next_error(e, &seen, T_WAIT);
    assert_non_null(er);
    assert_non_null(strstr(er->message, "request.prompt: NUL byte at byte 2"));
    assert_string_equal(er->id, "p1");
    /* ids that differ only after a NUL: both refused, neither taken for the other */
    n = raw_request(raw, "a\0b", 3, "hi", 2);
    zmq_send(e->client, raw, n, 0);
    er = next_error(e, &seen, T_WAIT);
    assert_non_null(er);
    assert_non_null(strstr(er->message, "request.id: NUL byte"));
    n = raw_request(raw, "a\0c", 3, "hi", 2);
    zmq_send(e->client, raw, n, 0);
    er = next_error(e, &seen, T_WAIT);
    assert_non_null(er);
    assert_non_null(strstr(er->message, "request.id: NUL byte"));
    assert_int_equal(e->g[0].n_work, 0);
    /* a surrogate (ED A0 80) and an overlong '/' (C0 AF) in stop strings */
    static const char *stops[] = {"\xed\xa0\x80", "\xc0\xaf"};
    for (int i = 0; i < 2; i++) {
        Ifp__Request s = dense_req("stop", 4, 0);
        s.n_stop = 1;
        s.stop = (char **)&stops[i];
        rl_request(e, &s);
        er = next_error(e, &seen, T_WAIT);
        assert_non_null(er);
        assert_non_null(strstr(er->message, "request.stop: invalid UTF-8"));
    }
    assert_int_equal(rl_counter(e, "oversize"), 1);
    assert_int_equal(rl_counter(e, "bad_text"), 6);
    /* still serving, a valid request with multi-byte text goes through */
    Ifp__Request ok = dense_req("ok-\xc3\xa9", 2, 0);
    rl_request(e, &ok);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[0], w->rid, 0, SCRIPT, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_non_null(rl_reply(e, "ok-\xc3\xa9", T_WAIT));
    assert_int_equal(rl_stop(e), 0);
}

/* ---------------------------------------------------------------- groups */

static void peer_counts_clamped(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 2, 1, 1}};
    assert_int_equal(rl_start(e, "queue_max = 8", NULL, gs, 1), 0);
    e->g[0].slots = 1000000; /* the group claims a million free slots */
    rl_pump(e, 3 * RL_HB_MS);
    Ifp__Pong *p = rl_ping(e, T_WAIT);
    assert_non_null(p);
    assert_int_equal(p->n_groups, 1);
    assert_int_equal(p->groups[0]->slots, 2);
    assert_true(p->groups[0]->free_slots <= 2);
    /* four requests: two run (the configured slots), two wait */
    char id[4][8];
    for (int i = 0; i < 4; i++) {
        snprintf(id[i], sizeof id[i], "c%d", i);
        Ifp__Request q = dense_req(id[i], 4, 0);
        rl_request(e, &q);
    }
    rl_pump(e, 5 * RL_HB_MS);
    assert_int_equal(e->g[0].n_work, 2);
    p = rl_ping(e, T_WAIT);
    assert_int_equal(p->queued, 2);
    /* a heartbeat listing more requests than the group can hold is refused */
    uint64_t saved[RL_MAX_RIDS];
    int n_saved = e->g[0].n_active;
    memcpy(saved, e->g[0].active, sizeof saved);
    for (int i = 0; i < RL_MAX_RIDS; i++) e->g[0].active[i] = 7000000 + (uint64_t)i;
    e->g[0].n_active = RL_MAX_RIDS; /* 64 > 5 x 2 slots + 8 */
    rl_heartbeat(&e->g[0]);
    e->g[0].n_active = n_saved;
    memcpy(e->g[0].active, saved, sizeof saved);
    assert_true(rl_wait_log(e, "running requests, at most", T_WAIT));
    assert_int_equal(rl_counter(e, "heartbeats_refused"), 1);
    assert_int_equal(rl_counter(e, "orphans_cancelled"), 0); /* a refused heartbeat is not acted on */
    /* finish the two: the two waiting ones run */
    for (int k = 0; k < 2; k++) rl_tokens(&e->g[0], e->g[0].work[k]->rid, 0, SCRIPT, 4, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_non_null(rl_wait_work(e, 0, 4, T_WAIT));
    for (int k = 2; k < 4; k++) rl_tokens(&e->g[0], e->g[0].work[k]->rid, 0, SCRIPT, 4, IFP__FINISH_REASON__FINISH_LENGTH);
    for (int i = 0; i < 4; i++) assert_non_null(rl_reply(e, id[i], T_WAIT));
    assert_int_equal(rl_counter(e, "replays"), 0);
    assert_int_equal(rl_stop(e), 0);
}

static void lost_work_from_facts(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gA", -1, 4, 2, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    rl_group_t *A = &e->g[0];
    /* 1. finished at the group, its last tokens late (they come from the last
     *    stage on another connection): heartbeats list it as finished for a
     *    while; no replay, and the answer arrives whole */
    Ifp__Request q = dense_req("late", 4, 1);
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(A, w->rid, 0, SCRIPT, 2, 0);
    rl_finished(A, w->rid); /* it finished; tokens 2..3 are "on the way" */
    rl_pump(e, 3 * RL_HB_MS);
    rl_tokens(A, w->rid, 2, SCRIPT + 2, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "late", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_tokens, 4);
    assert_int_equal(r->n_replays, 0);
    /* 2. a Work the group has not received yet (work_seen behind its seq):
     *    heartbeats that do not list it are no evidence of loss */
    A->echo = 0; /* heartbeats stop echoing the router's epoch and seq ... */
    Ifp__Request q2 = dense_req("unseen", 4, 1);
    rl_request(e, &q2);
    w = rl_wait_work(e, 0, 2, T_WAIT);
    assert_non_null(w);
    rl_drop_active(A, w->rid); /* ... and do not list it */
    rl_pump(e, 2 * RL_HB_MS + 20); /* two heartbeats: fewer than lost-in-transit needs */
    assert_int_equal(rl_counter(e, "replays"), 0);
    A->echo = 1; /* it arrives now */
    A->active[A->n_active++] = w->rid;
    rl_tokens(A, w->rid, 0, SCRIPT, 4, IFP__FINISH_REASON__FINISH_LENGTH);
    r = rl_reply(e, "unseen", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_replays, 0);
    /* 3. the group saw the Work and no longer holds it: lost, replayed once */
    Ifp__Request q3 = dense_req("lost", 4, 1);
    rl_request(e, &q3);
    w = rl_wait_work(e, 0, 3, T_WAIT);
    assert_non_null(w);
    rl_drop_active(A, w->rid); /* dropped without a word */
    Ifp__Work *w2 = rl_wait_work(e, 0, 4, 3 * T_WAIT);
    assert_non_null(w2);
    assert_int_equal(w2->rid, w->rid);
    assert_int_equal(w2->first_index, 0);
    rl_tokens(A, w2->rid, 0, SCRIPT, 4, IFP__FINISH_REASON__FINISH_LENGTH);
    r = rl_reply(e, "lost", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_replays, 1);
    assert_int_equal(rl_counter(e, "lost_work"), 1);
    assert_int_equal(rl_counter(e, "group_deaths"), 0);
    assert_int_equal(rl_stop(e), 0);
}

static void orphans_cancelled(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 4, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    /* the group still runs two requests of a router that is gone */
    e->g[0].active[e->g[0].n_active++] = 424242;
    e->g[0].active[e->g[0].n_active++] = 424243;
    assert_true(wait_cancel(e, 0, 424242, T_WAIT));
    assert_true(wait_cancel(e, 0, 424243, T_WAIT));
    assert_int_equal(e->g[0].n_active, 0);
    assert_int_equal(rl_counter(e, "orphans_cancelled"), 2);
    /* tokens for a request the router does not know: cancelled too */
    rl_tokens(&e->g[0], 515151, 0, SCRIPT, 1, 0);
    assert_true(wait_cancel(e, 0, 515151, T_WAIT));
    /* its own work is never cancelled */
    Ifp__Request q = dense_req("mine", 3, 1);
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_pump(e, 4 * RL_HB_MS);
    assert_false(has_cancel(&e->g[0], w->rid));
    rl_tokens(&e->g[0], w->rid, 0, SCRIPT, 3, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_non_null(rl_reply(e, "mine", T_WAIT));
    assert_int_equal(rl_stop(e), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(vanished_client_cancels, teardown_env),
        cmocka_unit_test_teardown(oversize_and_bad_text, teardown_env),
        cmocka_unit_test_teardown(peer_counts_clamped, teardown_env),
        cmocka_unit_test_teardown(lost_work_from_facts, teardown_env),
        cmocka_unit_test_teardown(orphans_cancelled, teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
