/* test_reqtable — router/request.c, router/reqtable.c and router/admit.c
 * without sockets: the state machine (allowed and forbidden transitions),
 * lookups by rid and by (client, id) across table growth, the FIFO queue
 * (replays at its front), token dedup / gaps, finishing by length, EOS and
 * stop strings (text cut, streamed text never shows part of a stop string),
 * replay bookkeeping and load, request validation and the task-mask LRU. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admit.h"
#include "err.h"
#include "reqtable.h"

static const int32_t PROMPT[] = {1, 40, 41};

static rt_req_t *new_req(rt_reqtable_t *t, const char *client, const char *id, int max_new) {
    rt_req_t *r = rt_reqtable_add(t, client, (int)strlen(client), id);
    assert_non_null(r);
    assert_int_equal(rt_req_set_prompt(r, PROMPT, 3, max_new), IFP_OK);
    return r;
}

static void lookups_and_growth(void **u) {
    (void)u;
    rt_reqtable_t *t = rt_reqtable_new(1000, 4);
    assert_non_null(t);
    rt_req_t *rs[300];
    char id[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "req-%d", i);
        rs[i] = new_req(t, i % 2 ? "clientB" : "clientA", id, 4);
        assert_int_equal(rs[i]->rid, 1000 + (uint64_t)i);
        assert_int_equal(rs[i]->state, RT_REQ_PREDICTING);
    }
    assert_int_equal(rt_reqtable_count(t), 300);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "req-%d", i);
        assert_ptr_equal(rt_reqtable_find(t, 1000 + (uint64_t)i), rs[i]);
        assert_ptr_equal(rt_reqtable_find_client(t, i % 2 ? "clientB" : "clientA", 7, id), rs[i]);
        assert_null(rt_reqtable_find_client(t, i % 2 ? "clientA" : "clientB", 7, id)); /* other client */
    }
    assert_null(rt_reqtable_find(t, 5));
    assert_null(rt_reqtable_add(t, "", 0, "x")); /* no identity */
    /* the same id from two clients is two requests */
    rt_req_t *a = rt_reqtable_find_client(t, "clientA", 7, "req-0");
    rt_reqtable_remove(t, &a);
    assert_null(a);
    assert_null(rt_reqtable_find(t, 1000));
    assert_int_equal(rt_reqtable_count(t), 299);
    /* arrival order survives */
    int n = 0;
    uint64_t last = 0;
    for (rt_req_t *r = rt_reqtable_first(t); r; r = r->next, n++) {
        assert_true(r->rid > last);
        last = r->rid;
    }
    assert_int_equal(n, 299);
    rt_reqtable_destroy(&t);
    assert_null(t);
}

static void queue_order(void **u) {
    (void)u;
    rt_reqtable_t *t = rt_reqtable_new(1, 4);
    rt_req_t *a = new_req(t, "c", "a", 4), *b = new_req(t, "c", "b", 4), *c = new_req(t, "c", "c", 4);
    rt_reqtable_enqueue(t, a, 0);
    rt_reqtable_enqueue(t, b, 0);
    rt_reqtable_enqueue(t, c, 1); /* a replay: ahead of everything */
    assert_int_equal(rt_reqtable_queue_len(t), 3);
    assert_true(a->queued); /* the queue is a container: states are flight.c's */
    rt_req_t *want[] = {c, a, b};
    int i = 0;
    for (rt_req_t *r = rt_reqtable_queue_head(t); r; r = r->qnext) assert_ptr_equal(r, want[i++]);
    rt_reqtable_dequeue(t, a);
    rt_reqtable_dequeue(t, a); /* twice: no-op */
    assert_int_equal(rt_reqtable_queue_len(t), 2);
    assert_ptr_equal(rt_reqtable_queue_head(t)->qnext, b);
    rt_reqtable_remove(t, &b); /* removing unlinks from the queue */
    assert_int_equal(rt_reqtable_queue_len(t), 1);
    assert_ptr_equal(rt_reqtable_queue_head(t), c);
    assert_null(c->qnext);
    rt_reqtable_destroy(&t);
}

/* Appends token tok with text piece after checking its index. */
static int push(rt_req_t *r, uint32_t index, int32_t tok, const char *piece, int fin) {
    int c = rt_req_check_index(r, index);
    if (c != RT_TOK_OK) return c;
    return rt_req_append(r, tok, -0.5f, 0, piece, strlen(piece), fin);
}

static void dedup_gap_and_finish(void **u) {
    (void)u;
    rt_reqtable_t *t = rt_reqtable_new(1, 4);
    rt_req_t *r = new_req(t, "c", "x", 3);
    assert_int_equal(rt_req_prev_token(r), 41);
    assert_int_equal(push(r, 0, 100, "A", RT_FIN_NONE), RT_TOK_OK);
    assert_int_equal(push(r, 0, 100, "A", RT_FIN_NONE), RT_TOK_DUPLICATE);
    assert_int_equal(push(r, 2, 102, "C", RT_FIN_NONE), RT_TOK_GAP);
    assert_int_equal(r->n_tokens, 1);
    assert_int_equal(rt_req_prev_token(r), 100);
    assert_int_equal(push(r, 1, 101, "B", RT_FIN_NONE), RT_TOK_OK);
    assert_int_equal(push(r, 2, 102, "C", RT_FIN_NONE), RT_TOK_DONE); /* max_new reached */
    assert_int_equal(r->finish, RT_FIN_LENGTH);
    assert_int_equal(r->text_len, 3);
    assert_memory_equal(r->text, "ABC", 3);
    /* EOS: finishes, adds neither a token nor text */
    rt_req_t *e = new_req(t, "c", "y", 8);
    assert_int_equal(push(e, 0, 100, "A", RT_FIN_NONE), RT_TOK_OK);
    assert_int_equal(rt_req_append(e, 2, -0.5f, 1, "", 0, RT_FIN_EOS), RT_TOK_DONE);
    assert_int_equal(e->finish, RT_FIN_EOS);
    assert_int_equal(e->n_tokens, 1);
    /* the group flags the last token (its context is full) */
    rt_req_t *g = new_req(t, "c", "z", 8);
    assert_int_equal(push(g, 0, 100, "A", RT_FIN_LENGTH), RT_TOK_DONE);
    assert_int_equal(g->finish, RT_FIN_LENGTH);
    rt_reqtable_destroy(&t);
}

/* Feeds pieces, streaming after each; returns the concatenated stream. */
static void feed(rt_req_t *r, const char *const *pieces, int n, char *streamed) {
    for (int i = 0; i < n && !r->finish; i++) {
        assert_int_not_equal(push(r, (uint32_t)i, 100 + i, pieces[i], RT_FIN_NONE), RT_TOK_GAP);
        const char *p;
        size_t k = rt_req_stream_text(r, &p);
        strncat(streamed, p, k);
        rt_req_stream_advance(r, k);
    }
}

static void stop_strings(void **u) {
    (void)u;
    rt_reqtable_t *t = rt_reqtable_new(1, 4);
    char s[256] = "";
    /* a stop string across three pieces: text cut before it */
    rt_req_t *r = new_req(t, "c", "a", 16);
    assert_int_equal(rt_req_add_stop(r, "lo w", 4), IFP_OK);
    const char *p1[] = {"Hel", "lo", " wor", "ld"};
    feed(r, p1, 4, s);
    assert_int_equal(r->finish, RT_FIN_STOP);
    assert_int_equal(r->n_tokens, 3); /* the token that completed the match is kept */
    assert_int_equal(r->text_len, 3);
    assert_memory_equal(r->text, "Hel", 3);
    assert_string_equal(s, "Hel"); /* the stream never showed "lo" */
    /* earliest match wins among several stop strings */
    rt_req_t *q = new_req(t, "c", "b", 16);
    rt_req_add_stop(q, "xyz", 3);
    rt_req_add_stop(q, "b\n", 2);
    const char *p2[] = {"a", "b\nxyz", "c"};
    s[0] = '\0';
    feed(q, p2, 3, s);
    assert_int_equal(q->finish, RT_FIN_STOP);
    assert_int_equal(q->text_len, 1);
    assert_string_equal(s, "a");
    /* no match: held-back bytes are released by later text or at the end */
    rt_req_t *w = new_req(t, "c", "c", 3);
    rt_req_add_stop(w, "END", 3);
    const char *p3[] = {"E", "x", "EN"};
    s[0] = '\0';
    feed(w, p3, 1, s);
    assert_string_equal(s, ""); /* "E" may start "END" */
    assert_int_equal(push(w, 1, 101, "x", RT_FIN_NONE), RT_TOK_OK);
    const char *p;
    size_t k = rt_req_stream_text(w, &p);
    strncat(s, p, k);
    assert_string_equal(s, "Ex");
    /* not taken (a full client socket): offered again */
    assert_int_equal(rt_req_stream_text(w, &p), 2);
    rt_req_stream_advance(w, k);
    assert_int_equal(push(w, 2, 102, "EN", RT_FIN_NONE), RT_TOK_DONE); /* length: flush everything */
    k = rt_req_stream_text(w, &p);
    strncat(s, p, k);
    rt_req_stream_advance(w, k);
    assert_string_equal(s, "ExEN");
    assert_int_equal(rt_req_stream_text(w, &p), 0);
    assert_int_equal(w->finish, RT_FIN_LENGTH);
    /* limits */
    char big[RT_STOP_MAX + 2];
    memset(big, 'a', sizeof big);
    assert_int_equal(rt_req_add_stop(w, big, RT_STOP_MAX + 1), IFP_EINVAL);
    assert_int_equal(rt_req_add_stop(w, big, 0), IFP_EINVAL);
    assert_int_equal(rt_req_add_stop(w, big, RT_STOP_MAX), IFP_OK);
    rt_req_add_stop(w, "a", 1), rt_req_add_stop(w, "b", 1);
    assert_int_equal(rt_req_add_stop(w, "c", 1), IFP_EINVAL); /* a fifth */
    rt_reqtable_destroy(&t);
}

static void replay_bookkeeping(void **u) {
    (void)u;
    rt_reqtable_t *t = rt_reqtable_new(1, 4);
    rt_req_t *r = new_req(t, "c", "x", 10);
    assert_int_equal(rt_req_load(r), 3 + 10); /* prompt not prefilled + budget */
    push(r, 0, 100, "a", RT_FIN_NONE);
    r->prefilled = 1;
    push(r, 1, 101, "b", RT_FIN_NONE);
    push(r, 2, 102, "c", RT_FIN_NONE);
    assert_int_equal(rt_req_load(r), 7);
    /* the group dies: replay from token 3 */
    assert_int_equal(rt_req_note_replay(r), IFP_OK);
    r->prefilled = 0;
    assert_int_equal(r->n_replays, 1);
    assert_int_equal(r->replays[0], 3);
    int32_t buf[16];
    assert_int_equal(rt_req_work_prompt(r, buf, 16), 6);
    int32_t want[] = {1, 40, 41, 100, 101, 102};
    assert_memory_equal(buf, want, sizeof want);
    assert_int_equal(rt_req_work_prompt(r, buf, 5), -1);
    assert_int_equal(rt_req_load(r), 6 + 7);
    /* the new group resends token 2 (dup), then continues at 3 */
    assert_int_equal(push(r, 2, 102, "c", RT_FIN_NONE), RT_TOK_DUPLICATE);
    assert_int_equal(push(r, 3, 103, "d", RT_FIN_NONE), RT_TOK_OK);
    assert_memory_equal(r->text, "abcd", 4);
    for (int i = 1; i < RT_MAX_REPLAYS; i++) assert_int_equal(rt_req_note_replay(r), IFP_OK);
    assert_int_equal(rt_req_note_replay(r), IFP_ERANGE);
    float logits[20];
    for (int i = 0; i < 20; i++) logits[i] = (float)i;
    rt_req_set_head(r, logits, 20, 7);
    assert_int_equal(r->n_head, RT_HEAD_LOGITS);
    assert_int_equal(r->argmax, 7);
    r->finish = RT_FIN_LENGTH;
    assert_int_equal(rt_req_load(r), 0);
    rt_reqtable_destroy(&t);
}

static const rt_limits_t LIM = {.vocab = 2048, .ctx = 256, .max_tokens = 128, .max_tokens_limit = 1000,
                                .max_prompt_bytes = 4096, .have_predictor = 1};

static void expect_bad(const Ifp__Request *q, const char *field) {
    char msg[512];
    assert_int_equal(rt_admit_check(q, &LIM, msg, sizeof msg), -1);
    if (strncmp(msg, field, strlen(field)) != 0) fail_msg("expected \"%s...\", got \"%s\"", field, msg);
}

static void admission(void **u) {
    (void)u;
    char msg[512];
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = "r1";
    q.prompt = "Hello";
    assert_int_equal(rt_admit_check(&q, &LIM, msg, sizeof msg), 0);
    Ifp__Request b = q;
    b.id = "";
    expect_bad(&b, "id:");
    b = q, b.temperature = NAN;
    expect_bad(&b, "temperature:");
    b = q, b.temperature = -1;
    expect_bad(&b, "temperature:");
    b = q, b.top_p = 1.5f;
    expect_bad(&b, "top_p:");
    b = q, b.max_tokens = 1001;
    expect_bad(&b, "max_tokens:");
    char *stops5[] = {"a", "b", "c", "d", "e"};
    b = q, b.n_stop = 5, b.stop = stops5;
    expect_bad(&b, "stop:");
    char *empty_stop[] = {"a", ""};
    b = q, b.n_stop = 2, b.stop = empty_stop;
    expect_bad(&b, "stop[1]:");
    b = q, b.mask_mode = (Ifp__MaskMode)7;
    expect_bad(&b, "mask_mode:");
    b = q, b.mask_mode = IFP__MASK_MODE__MASK_TASK;
    expect_bad(&b, "task:");
    int32_t ids[] = {1, 2048};
    b = q, b.n_prompt_tokens = 2, b.prompt_tokens = ids;
    expect_bad(&b, "prompt_tokens[1]:");
    rt_limits_t nopred = LIM;
    nopred.have_predictor = 0;
    assert_int_equal(rt_admit_check(&q, &nopred, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "MASK_DENSE"));
    b = q, b.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    assert_int_equal(rt_admit_check(&b, &nopred, msg, sizeof msg), 0);
    /* the context: cut max_tokens, refuse a prompt that fills it */
    int mn;
    assert_int_equal(rt_admit_fit(&LIM, 10, 0, &mn, msg, sizeof msg), 0);
    assert_int_equal(mn, 128);
    assert_int_equal(rt_admit_fit(&LIM, 200, 100, &mn, msg, sizeof msg), 0);
    assert_int_equal(mn, 56);
    assert_int_equal(rt_admit_fit(&LIM, 256, 1, &mn, msg, sizeof msg), -1);
    assert_int_equal(strncmp(msg, "prompt:", 7), 0);
}

static void task_cache_lru(void **u) {
    (void)u;
    rt_taskcache_t *c = rt_taskcache_new(2, 4, 3);
    const uint8_t b1[4] = {1, 2, 3, 4}, b2[4] = {5, 6, 7, 8}, b3[4] = {9, 9, 9, 9};
    const double cov[3] = {1.0, 0.5, 0.25};
    rt_taskmask_t tm;
    assert_int_equal(rt_taskcache_put(c, "t1", b1, cov, 0), IFP_OK);
    rt_taskcache_put(c, "t2", b2, cov, 1);
    assert_true(rt_taskcache_get(c, "t1", &tm)); /* t1 now most recent */
    rt_taskcache_put(c, "t3", b3, cov, 2); /* evicts t2 */
    assert_int_equal(rt_taskcache_size(c), 2);
    assert_false(rt_taskcache_get(c, "t2", &tm));
    assert_true(rt_taskcache_get(c, "t1", &tm));
    assert_memory_equal(tm.bits, b1, 4);
    assert_true(tm.cov[1] == 0.5);
    assert_int_equal(tm.nearest, 0);
    rt_taskcache_put(c, "t1", b2, cov, 1); /* a newer mask of t1 replaces it */
    assert_int_equal(rt_taskcache_size(c), 2);
    assert_true(rt_taskcache_get(c, "t1", &tm));
    assert_memory_equal(tm.bits, b2, 4);
    assert_true(rt_taskcache_get(c, "t3", &tm));
    rt_taskcache_destroy(&c);
    assert_null(c);
}

/* The state machine: the diagram's transitions are accepted, anything else
 * aborts the process (a router bug, never input): checked in a child. */
static int transition_aborts(rt_req_state_t from, rt_req_state_t to, int group) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        rt_req_t *r = rt_req_new(7, "c", 1, "x");
        r->state = from;
        r->group = group;
        rt_req_set_state(r, to);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void states_and_group_lists(void **u) {
    (void)u;
    /* allowed: PREDICTING -> QUEUED -> RUNNING -> QUEUED (replay) -> RUNNING -> DONE */
    rt_reqtable_t *t = rt_reqtable_new(1, 2);
    rt_req_t *r = new_req(t, "c", "x", 4);
    assert_int_equal(rt_reqtable_count_state(t, RT_REQ_PREDICTING), 1);
    rt_req_set_state(r, RT_REQ_QUEUED);
    rt_reqtable_note_state(t, RT_REQ_PREDICTING, RT_REQ_QUEUED);
    rt_reqtable_enqueue(t, r, 0);
    assert_int_equal(rt_reqtable_count_state(t, RT_REQ_QUEUED), 1);
    rt_reqtable_dequeue(t, r);
    rt_reqtable_group_link(t, r, 1);
    assert_int_equal(r->group, 1);
    rt_req_set_state(r, RT_REQ_RUNNING);
    rt_reqtable_note_state(t, RT_REQ_QUEUED, RT_REQ_RUNNING);
    rt_req_t *r2 = new_req(t, "c", "y", 4);
    rt_reqtable_group_link(t, r2, 1);
    assert_int_equal(rt_reqtable_group_count(t, 1), 2);
    assert_int_equal(rt_reqtable_group_count(t, 0), 0);
    int n = 0;
    for (rt_req_t *q = rt_reqtable_group_first(t, 1); q; q = q->gnext) n++;
    assert_int_equal(n, 2);
    rt_reqtable_group_unlink(t, r);
    assert_int_equal(r->group, -1);
    rt_req_set_state(r, RT_REQ_QUEUED); /* a replay */
    rt_reqtable_note_state(t, RT_REQ_RUNNING, RT_REQ_QUEUED);
    rt_req_set_state(r, RT_REQ_DONE);
    rt_reqtable_note_state(t, RT_REQ_QUEUED, RT_REQ_DONE);
    rt_reqtable_remove(t, &r2); /* removing unlinks from the group list */
    assert_int_equal(rt_reqtable_group_count(t, 1), 0);
    assert_null(rt_reqtable_group_first(t, 1));
    rt_reqtable_remove(t, &r);
    assert_int_equal(rt_reqtable_count_state(t, RT_REQ_DONE), 0);
    rt_reqtable_destroy(&t);
    /* forbidden: out of DONE, RUNNING without a group, QUEUED -> PREDICTING,
     * PREDICTING -> RUNNING without a group */
    assert_true(transition_aborts(RT_REQ_DONE, RT_REQ_QUEUED, -1));
    assert_true(transition_aborts(RT_REQ_QUEUED, RT_REQ_PREDICTING, -1));
    assert_true(transition_aborts(RT_REQ_PREDICTING, RT_REQ_RUNNING, -1));
    assert_true(transition_aborts(RT_REQ_RUNNING, RT_REQ_DONE, 1)); /* still linked to a group */
    assert_false(transition_aborts(RT_REQ_PREDICTING, RT_REQ_RUNNING, 0));
    assert_false(transition_aborts(RT_REQ_RUNNING, RT_REQ_QUEUED, -1));
    assert_string_equal(rt_req_state_name(RT_REQ_RUNNING), "running");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookups_and_growth), cmocka_unit_test(queue_order),
        cmocka_unit_test(dedup_gap_and_finish), cmocka_unit_test(stop_strings),
        cmocka_unit_test(replay_bookkeeping), cmocka_unit_test(admission),
        cmocka_unit_test(task_cache_lru), cmocka_unit_test(states_and_group_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
