/* test_router_resume — the router's side of active-active routers, with the
 * real ifp-router process and fake shard groups (router_testlib.h):
 *   - a client's failover: a Request with resume_tokens (the tokens the
 *     client already received from a router that died) is dispatched as a
 *     replay from there — prompt + those tokens, first_index = n, the same
 *     seed — its TokenEvents start at index n, and its Reply holds every
 *     token and the whole text, as a fault-free run's does;
 *   - resume_tokens that leave nothing to generate, or hold an id outside
 *     the vocabulary, are refused naming the field;
 *   - a group that refuses a Work as busy (WorkError.busy: another router
 *     holds its slots) is no failure: the request goes to another group with
 *     no replay counted, and comes back to the busy group once its heartbeat
 *     shows a free slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "router_testlib.h"
#include "testutil.h"
#include "tokenizer.h"

#define PROMPT "Once upon a time"
#define T_WAIT 5000 /* ms: generous, the machine may be busy */

enum { MSG_TOKEN = IFP__SERVER_MESSAGE__MSG_TOKEN };

static ifp_tokenizer_t *g_tok;
static int32_t g_ids[64], g_script[16];
static int g_n_ids, g_n_script;
static rl_env_t g_env;

static int setup_all(void **u) {
    (void)u;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    if (ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &g, &err) || ifp_tokenizer_from_gguf(g, &g_tok, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ifp_gguf_close(&g);
    g_n_ids = ifp_tokenizer_encode(g_tok, PROMPT, 1, g_ids, 64);
    g_n_script = ifp_tokenizer_encode(g_tok, " one two three four five six seven", 0, g_script, 16);
    return g_n_ids > 0 && g_n_script >= 8 ? 0 : -1;
}

static int teardown_all(void **u) {
    (void)u;
    ifp_tokenizer_destroy(&g_tok);
    return 0;
}

static int teardown_env(void **u) {
    (void)u;
    if (g_env.zctx) rl_stop(&g_env);
    return 0;
}

/* The text of script[0..n) after the prompt, as the router decodes it. */
static size_t script_text(int n, char *out) {
    size_t at = 0, len;
    int prev = g_ids[g_n_ids - 1];
    for (int i = 0; i < n; i++) {
        const char *p = ifp_tokenizer_piece(g_tok, prev, g_script[i], &len);
        memcpy(out + at, p, len);
        at += len;
        prev = g_script[i];
    }
    out[at] = '\0';
    return at;
}

static Ifp__Request req(const char *id, uint32_t max_tokens) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = PROMPT;
    q.max_tokens = max_tokens;
    q.temperature = 0.8f;
    q.seed = 42;
    q.stream = 1;
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    return q;
}

/* The indices of id's TokenEvents, in arrival order, into idx; returns n. */
static int event_indices(rl_env_t *e, const char *id, uint32_t *idx, int cap) {
    int n = 0;
    for (int i = 0; i < e->n_inbox && n < cap; i++) {
        Ifp__ServerMessage *m = e->inbox[i];
        if ((int)m->msg_case == MSG_TOKEN && !strcmp(m->token->id, id)) idx[n++] = m->token->index;
    }
    return n;
}

static void busy_error(rl_group_t *g, uint64_t rid) {
    Ifp__WorkError we = IFP__WORK_ERROR__INIT;
    we.rid = rid;
    we.message = "group is busy: 2 of 2 slots taken";
    we.busy = 1;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    m.error = &we;
    rl_send_raw(g->s0, &m.base);
    rl_drop_active(g, rid); /* refused: the group does not hold it */
}

/* The client already has tokens 0..2 (from a router that died): this router
 * continues from 3 exactly as after a group failure. */
static void resume_continues_after_the_tokens(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 2, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    Ifp__Request q = req("r1", 6);
    q.resume_tokens = g_script;
    q.n_resume_tokens = 3;
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    assert_int_equal(w->n_prompt, g_n_ids + 3); /* prompt + the tokens the client has */
    assert_memory_equal(w->prompt, g_ids, sizeof(int32_t) * (size_t)g_n_ids);
    assert_memory_equal(w->prompt + g_n_ids, g_script, 3 * sizeof(int32_t));
    assert_int_equal(w->first_index, 3);
    assert_int_equal(w->max_new, 3);
    assert_int_equal(w->seed, 42);
    assert_int_equal(w->mask.len, 0);
    rl_tokens(&e->g[0], w->rid, 3, g_script + 3, 3, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "r1", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal(r->n_tokens, 6);
    assert_memory_equal(r->tokens, g_script, 6 * sizeof(int32_t));
    char want[256];
    size_t wl = script_text(6, want);
    assert_int_equal(r->text.len, wl);
    assert_memory_equal(r->text.data, want, wl);
    assert_int_equal(r->usage->completion_tokens, 6);
    uint32_t idx[16];
    int n = event_indices(e, "r1", idx, 16);
    assert_int_equal(n, 3); /* only the new ones: 3, 4, 5 */
    for (int i = 0; i < n; i++) assert_int_equal(idx[i], 3 + i);
    assert_int_equal(rl_counter(e, "resumed"), 1);
    assert_int_equal(rl_counter(e, "replays"), 0);

    /* resumed tokens that already complete a stop string: answered at once */
    Ifp__Request q2 = req("r2", 6);
    char stop[64];
    script_text(2, stop); /* the text of tokens 0..1 */
    char *stops[1] = {stop + strlen(stop) - 3};
    q2.stop = stops;
    q2.n_stop = 1;
    q2.resume_tokens = g_script;
    q2.n_resume_tokens = 2;
    rl_request(e, &q2);
    r = rl_reply(e, "r2", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_STOP);
    assert_int_equal(e->g[0].n_work, 1); /* no Work was sent for it */
    assert_int_equal(rl_stop(e), 0);
}

static void resume_is_validated(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 2, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    Ifp__Request q = req("v1", 3);
    q.resume_tokens = g_script;
    q.n_resume_tokens = 3; /* all of max_tokens: nothing left */
    rl_request(e, &q);
    Ifp__Error *er = rl_error(e, "v1", T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_BAD_REQUEST);
    assert_non_null(strstr(er->message, "resume_tokens"));
    int32_t bad[2] = {g_script[0], 1 << 30};
    Ifp__Request q2 = req("v2", 5);
    q2.resume_tokens = bad;
    q2.n_resume_tokens = 2;
    rl_request(e, &q2);
    er = rl_error(e, "v2", T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_BAD_REQUEST);
    assert_non_null(strstr(er->message, "resume_tokens[1]"));
    assert_int_equal(e->g[0].n_work, 0);
    assert_true(rl_alive(e));
    assert_int_equal(rl_stop(e), 0);
}

/* A busy refusal sends the request to its next choice, counted as busy and
 * not as a replay; the group takes work again after its next heartbeat. */
static void busy_group_is_not_a_failure(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gA", -1, 2, 1, 1}, {"gB", -1, 2, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 2), 0);
    Ifp__Request q = req("b1", 3);
    rl_request(e, &q);
    int first = -1;
    Ifp__Work *w = NULL;
    for (double t0 = ifp_now_ms(); first < 0 && ifp_now_ms() - t0 < T_WAIT;) {
        rl_pump(e, 20);
        for (int g = 0; g < 2; g++)
            if (e->g[g].n_work == 1) first = g, w = e->g[g].work[0];
    }
    assert_true(first >= 0);
    busy_error(&e->g[first], w->rid);
    int other = 1 - first;
    Ifp__Work *w2 = rl_wait_work(e, other, 1, T_WAIT);
    assert_non_null(w2);
    assert_int_equal(w2->rid, w->rid);
    assert_int_equal(w2->first_index, 0);
    rl_tokens(&e->g[other], w2->rid, 0, g_script, 3, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "b1", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_replays, 0);
    assert_int_equal(r->n_tokens, 3);
    assert_string_equal(r->group, e->g[other].name);
    assert_int_equal(rl_counter(e, "group_busy"), 1);
    assert_int_equal(rl_counter(e, "replays"), 0);
    assert_int_equal(rl_counter(e, "work_errors"), 0);
    /* the busy group is not avoided: with the other one gone quiet, new work goes there */
    e->g[other].beating = 0;
    char dead[64];
    snprintf(dead, sizeof dead, "group %s died", e->g[other].name);
    assert_true(rl_wait_log(e, dead, T_WAIT));
    Ifp__Request q2 = req("b2", 2);
    rl_request(e, &q2);
    Ifp__Work *w3 = rl_wait_work(e, first, 2, T_WAIT);
    assert_non_null(w3);
    rl_tokens(&e->g[first], w3->rid, 0, g_script, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_non_null(rl_reply(e, "b2", T_WAIT));
    assert_int_equal(rl_stop(e), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(resume_continues_after_the_tokens, teardown_env),
        cmocka_unit_test_teardown(resume_is_validated, teardown_env),
        cmocka_unit_test_teardown(busy_group_is_not_a_failure, teardown_env),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
