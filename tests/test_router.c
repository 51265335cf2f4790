/* test_router — the real ifp-router process against fake shard groups played
 * by this test over ZeroMQ (router_testlib.h): routing to the group whose
 * union covers the request's predicted mask, spill to the dense group when
 * its slots are full, streaming with dedup, stop strings, a group that stops
 * heartbeating (its request replayed on another group from the tokens
 * already streamed: no gap, no duplicate), work errors and token gaps,
 * deadlines, cancellation, bad requests, the bounded queue, and malformed
 * input on both sockets (the router answers or counts it and stays up).
 *
 * The cluster table is built here: cluster 0's union is exactly the mask the
 * predictor gives PROMPT_A, cluster 1's is disjoint from it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster.h"
#include "predictor.h"
#include "router_testlib.h"
#include "testutil.h"
#include "tokenizer.h"
#include "clock.h"

#define PROMPT_A "Question: What is 12 plus 7?\nAnswer:"
#define T_WAIT 5000 /* ms: generous, the machine may be busy */

enum { MSG_TOKEN = IFP__SERVER_MESSAGE__MSG_TOKEN, MSG_REPLY = IFP__SERVER_MESSAGE__MSG_REPLY };

static ifp_tokenizer_t *g_tok;
static ifp_mask_t *g_mask_a;
static int32_t g_ids_a[256], g_script[16];
static int g_n_ids_a, g_n_script;
static char g_clusters[256], g_dir[128];

static rl_env_t g_env; /* the current test's router (stopped by the teardown if the test failed) */

static int teardown_env(void **u) {
    (void)u;
    if (g_env.zctx) rl_stop(&g_env);
    return 0;
}

static int setup_all(void **u) {
    (void)u;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_predictor_t *p = NULL;
    if (ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &g, &err) || ifp_tokenizer_from_gguf(g, &g_tok, &err) ||
        ifp_predictor_load(MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), &p, &err) ||
        ifp_predictor_mask_text(p, g_tok, PROMPT_A, 0, &g_mask_a, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ifp_gguf_close(&g);
    ifp_predictor_destroy(&p);
    g_n_ids_a = ifp_tokenizer_encode(g_tok, PROMPT_A, 1, g_ids_a, 256);
    g_n_script = ifp_tokenizer_encode(g_tok, " one two three four five six seven", 0, g_script, 16);
    if (g_n_script < 8) return -1;
    /* cluster 1: per layer, the first K channels that mask A does not keep */
    ifp_mask_t *b = ifp_mask_new(g_mask_a->n_layers, g_mask_a->d_ffn);
    for (int l = 0; l < b->n_layers; l++) {
        int n = 0, j = 0;
        for (int c = 0; c < b->d_ffn && n < g_mask_a->n_kept[l]; c++) {
            while (j < g_mask_a->n_kept[l] && g_mask_a->kept[l][j] < c) j++;
            if (j < g_mask_a->n_kept[l] && g_mask_a->kept[l][j] == c) continue;
            b->kept[l][n++] = c;
        }
        b->n_kept[l] = n;
    }
    const ifp_mask_t *masks[2] = {g_mask_a, b};
    int medoid[2] = {0, 1}, assign[2] = {0, 1};
    ifp_cluster_table_t *t = NULL;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp-test-router-tab-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_clusters, sizeof g_clusters, "%s/clusters.gguf", g_dir);
    int rc = ifp_cluster_table_build(masks, 2, 2, medoid, assign, 0, &t, &err) ||
             ifp_cluster_table_save(t, g_clusters, &err);
    if (rc) fprintf(stderr, "setup: %s\n", err.msg);
    ifp_cluster_table_destroy(&t);
    ifp_mask_destroy(&b);
    return rc ? -1 : 0;
}

static int teardown_all(void **u) {
    (void)u;
    ifp_tokenizer_destroy(&g_tok);
    ifp_mask_destroy(&g_mask_a);
    unlink(g_clusters);
    rmdir(g_dir);
    return 0;
}

/* Expected text of script[0..n) after the prompt (the router's decoding). */
static size_t script_text(int n, char *out) {
    size_t at = 0, len;
    int prev = g_ids_a[g_n_ids_a - 1];
    for (int i = 0; i < n; i++) {
        const char *p = ifp_tokenizer_piece(g_tok, prev, g_script[i], &len);
        memcpy(out + at, p, len);
        at += len;
        prev = g_script[i];
    }
    out[at] = '\0';
    return at;
}

static Ifp__Request req_a(const char *id, uint32_t max_tokens) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = PROMPT_A;
    q.max_tokens = max_tokens;
    q.temperature = 0.5f;
    q.seed = 7;
    q.stream = 1;
    q.debug = 1;
    return q;
}

/* The TokenEvents of id: each index exactly once, in order; returns n. */
static int check_events(rl_env_t *e, const char *id, char *text) {
    int n = 0;
    size_t at = 0;
    for (int i = 0; i < e->n_inbox; i++) {
        Ifp__ServerMessage *m = e->inbox[i];
        if ((int)m->msg_case != MSG_TOKEN || strcmp(m->token->id, id)) continue;
        assert_int_equal(m->token->index, n);
        assert_int_equal(m->token->token, g_script[n]);
        if (m->token->text.len) memcpy(text + at, m->token->text.data, m->token->text.len);
        at += m->token->text.len;
        n++;
    }
    text[at] = '\0';
    return n;
}

static void check_mask(const Ifp__Work *w, const ifp_mask_t *want) {
    ifp_mask_t *got = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_wire_mask_unpack(w->mask.data, w->mask.len, want->n_layers, want->d_ffn, &got, &err), 0);
    assert_non_null(got);
    assert_true(ifp_mask_equal(got, want));
    ifp_mask_destroy(&got);
}

static const rl_group_spec_t THREE[] = {
    {"gA", 0, 1, 2, 1}, /* union = mask A, one slot, two stages (tokens from gA.out) */
    {"gB", 1, 2, 1, 1}, /* disjoint union */
    {"gD", -1, 2, 1, 1}, /* dense */
};

static void routes_spills_and_streams(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    assert_int_equal(rl_start(e, NULL, g_clusters, THREE, 3), 0);
    Ifp__Request q1 = req_a("a1", 4);
    rl_request(e, &q1);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w); /* gA: its union covers the mask and is the cheapest */
    assert_int_equal(w->n_prompt, g_n_ids_a);
    assert_memory_equal(w->prompt, g_ids_a, sizeof(int32_t) * (size_t)g_n_ids_a);
    assert_int_equal(w->max_new, 4);
    assert_int_equal(w->first_index, 0);
    assert_int_equal(w->seed, 7);
    assert_true(w->temperature == 0.5f);
    assert_int_equal(w->eos, 2);
    check_mask(w, g_mask_a);
    uint64_t rid1 = w->rid;
    /* gA's only slot is taken: the same mask spills to the dense group */
    Ifp__Request q2 = req_a("a2", 4);
    rl_request(e, &q2);
    Ifp__Work *w2 = rl_wait_work(e, 2, 1, T_WAIT);
    assert_non_null(w2);
    check_mask(w2, g_mask_a);
    /* dense mode: only the dense group covers it */
    Ifp__Request q3 = req_a("d1", 8);
    q3.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    char *stops[] = {" three"};
    q3.n_stop = 1;
    q3.stop = stops;
    rl_request(e, &q3);
    Ifp__Work *w3 = rl_wait_work(e, 2, 2, T_WAIT);
    assert_non_null(w3);
    assert_int_equal(w3->mask.len, 0);
    assert_int_equal(e->g[1].n_work, 0);
    /* gA streams 0,1 then 1 (a duplicate), 2, 3 (LENGTH) */
    rl_tokens(&e->g[0], rid1, 0, g_script, 2, 0);
    rl_tokens(&e->g[0], rid1, 1, g_script + 1, 3, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "a1", T_WAIT);
    assert_non_null(r);
    char want[256], got[256];
    size_t wl = script_text(4, want);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal(r->n_tokens, 4);
    assert_memory_equal(r->tokens, g_script, 4 * sizeof(int32_t));
    assert_int_equal(r->text.len, wl);
    assert_memory_equal(r->text.data, want, wl);
    assert_string_equal(r->group, "gA");
    assert_int_equal(r->cluster, 0);
    assert_true(r->coverage == 1.0);
    assert_int_equal(r->n_replays, 0);
    assert_non_null(r->debug);
    assert_int_equal(r->debug->n_logits_last_prompt, 16);
    assert_int_equal(r->debug->argmax_last_prompt, 5);
    assert_int_equal(r->usage->prompt_tokens, g_n_ids_a);
    assert_int_equal(r->usage->completion_tokens, 4);
    assert_int_equal(check_events(e, "a1", got), 4);
    assert_string_equal(got, want);
    /* gD: a2 ends with EOS after one token */
    int32_t eos = 2;
    rl_tokens(&e->g[2], w2->rid, 0, g_script, 1, 0);
    rl_tokens(&e->g[2], w2->rid, 1, &eos, 1, IFP__FINISH_REASON__FINISH_EOS);
    r = rl_reply(e, "a2", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_EOS);
    assert_int_equal(r->n_tokens, 1);
    assert_string_equal(r->group, "gD");
    assert_int_equal(r->cluster, -1);
    /* d1: the stop string " three" ends it; the group is told to stop */
    rl_tokens(&e->g[2], w3->rid, 0, g_script, 4, 0);
    r = rl_reply(e, "d1", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_STOP);
    script_text(4, want);
    char *cut = strstr(want, " three");
    assert_non_null(cut);
    *cut = '\0';
    wl = strlen(want);
    assert_int_equal(r->text.len, wl);
    assert_memory_equal(r->text.data, want, wl);
    check_events(e, "d1", got);
    assert_string_equal(got, want); /* streamed text never showed " three" */
    rl_pump(e, 50);
    assert_int_equal(e->g[2].n_cancel, 1);
    assert_int_equal(e->g[2].cancel[0], w3->rid);
    assert_true(rl_alive(e));
    assert_int_equal(rl_stop(e), 0);
}

static void failover_replays_without_gap(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gA", 0, 2, 2, 1}, {"gD", -1, 2, 1, 1}};
    assert_int_equal(rl_start(e, NULL, g_clusters, gs, 2), 0);
    Ifp__Request q = req_a("f1", 6);
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[0], w->rid, 0, g_script, 3, 0);
    assert_non_null(rl_find(e, "f1", MSG_TOKEN, T_WAIT));
    rl_pump(e, 50);
    /* gA falls silent: within liveness x heartbeat the router replays f1 on gD */
    e->g[0].beating = 0;
    double t0 = ifp_now_ms();
    Ifp__Work *w2 = rl_wait_work(e, 1, 1, T_WAIT);
    assert_non_null(w2);
    double waited = ifp_now_ms() - t0;
    assert_true(waited >= RL_HB_MS * (RL_LIVENESS - 1));
    assert_int_equal(w2->rid, w->rid);
    assert_int_equal(w2->n_prompt, g_n_ids_a + 3); /* prompt + the tokens already streamed */
    assert_memory_equal(w2->prompt, g_ids_a, sizeof(int32_t) * (size_t)g_n_ids_a);
    assert_memory_equal(w2->prompt + g_n_ids_a, g_script, 3 * sizeof(int32_t));
    assert_int_equal(w2->first_index, 3);
    assert_int_equal(w2->max_new, 3);
    assert_int_equal(w2->seed, 7);
    check_mask(w2, g_mask_a);
    /* the dead group's late token and the new group's repeat are both dropped */
    int32_t wrong = g_script[7];
    rl_tokens(&e->g[0], w->rid, 3, &wrong, 1, 0);
    rl_pump(e, 30);
    rl_tokens(&e->g[1], w2->rid, 2, g_script + 2, 4, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "f1", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal(r->n_tokens, 6);
    assert_memory_equal(r->tokens, g_script, 6 * sizeof(int32_t));
    assert_int_equal(r->n_replays, 1);
    assert_int_equal(r->replays[0], 3);
    assert_string_equal(r->group, "gD");
    char want[256], got[256];
    size_t wl = script_text(6, want);
    assert_memory_equal(r->text.data, want, wl);
    assert_int_equal(check_events(e, "f1", got), 6); /* 0..5, each once */
    assert_string_equal(got, want);
    /* gA restarts (new incarnation) and takes work again */
    e->g[0].n_active = 0;
    e->g[0].incarnation++;
    e->g[0].beating = 1;
    assert_true(rl_wait_log(e, "group gA restarted", T_WAIT));
    Ifp__Request q2 = req_a("f2", 2);
    rl_request(e, &q2);
    Ifp__Work *w3 = rl_wait_work(e, 0, 2, T_WAIT);
    assert_non_null(w3);
    assert_int_equal(w3->first_index, 0);
    rl_tokens(&e->g[0], w3->rid, 0, g_script, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    r = rl_reply(e, "f2", T_WAIT);
    assert_non_null(r);
    assert_string_equal(r->group, "gA");
    assert_int_equal(r->n_replays, 0);
    assert_true(rl_log_has(e, "group gA died"));
    assert_true(rl_alive(e));
    assert_int_equal(rl_stop(e), 0);
}

static void work_error_and_gap_replay(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gA", 0, 4, 1, 1}, {"gD", -1, 4, 1, 1}};
    assert_int_equal(rl_start(e, NULL, g_clusters, gs, 2), 0);
    /* a WorkError: replayed from token 0 elsewhere */
    Ifp__Request q = req_a("e1", 3);
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_work_error(&e->g[0], w->rid, "out of KV blocks");
    Ifp__Work *wd = rl_wait_work(e, 1, 1, T_WAIT);
    assert_non_null(wd);
    assert_int_equal(wd->first_index, 0);
    rl_tokens(&e->g[1], wd->rid, 0, g_script, 3, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "e1", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_replays, 1);
    assert_int_equal(r->replays[0], 0);
    assert_int_equal(r->n_tokens, 3);
    /* a gap (index 2 after 0): replayed from token 1 */
    Ifp__Request q2 = req_a("e2", 4);
    rl_request(e, &q2);
    w = rl_wait_work(e, 0, 2, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[0], w->rid, 0, g_script, 1, 0);
    rl_tokens(&e->g[0], w->rid, 2, g_script + 2, 1, 0);
    wd = rl_wait_work(e, 1, 2, T_WAIT);
    assert_non_null(wd);
    assert_int_equal(wd->first_index, 1);
    assert_int_equal(wd->n_prompt, g_n_ids_a + 1);
    rl_tokens(&e->g[1], wd->rid, 1, g_script + 1, 3, IFP__FINISH_REASON__FINISH_LENGTH);
    r = rl_reply(e, "e2", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->n_replays, 1);
    assert_int_equal(r->replays[0], 1);
    assert_memory_equal(r->tokens, g_script, 4 * sizeof(int32_t));
    char got[256];
    assert_int_equal(check_events(e, "e2", got), 4);
    assert_int_equal(rl_stop(e), 0);
}

static void deadline_and_cancel(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 4, 1, 1}};
    assert_int_equal(rl_start(e, NULL, NULL, gs, 1), 0);
    Ifp__Request q = req_a("dl", 8);
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    q.deadline_ms = 300;
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[0], w->rid, 0, g_script, 1, 0);
    Ifp__Error *er = rl_error(e, "dl", T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_DEADLINE);
    Ifp__Reply *r = rl_reply(e, "dl", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_CANCELLED);
    assert_int_equal(r->n_tokens, 1);
    assert_true(r->timings->total_ms >= 290);
    rl_pump(e, 30);
    assert_int_equal(e->g[0].n_cancel, 1);
    assert_int_equal(e->g[0].cancel[0], w->rid);
    /* client cancel */
    Ifp__Request q2 = req_a("c1", 8);
    q2.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    rl_request(e, &q2);
    w = rl_wait_work(e, 0, 2, T_WAIT);
    assert_non_null(w);
    rl_cancel(e, "c1");
    r = rl_reply(e, "c1", T_WAIT);
    assert_non_null(r);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_CANCELLED);
    rl_pump(e, 30);
    assert_int_equal(e->g[0].n_cancel, 2);
    assert_int_equal(e->g[0].cancel[1], w->rid);
    assert_null(rl_error(e, "c1", 0));
    rl_tokens(&e->g[0], w->rid, 0, g_script, 1, 0); /* late: dropped */
    /* cancel of an unknown id */
    rl_cancel(e, "nope");
    er = rl_error(e, "nope", T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST);
    assert_int_equal(rl_stop(e), 0);
}

static void expect_bad(rl_env_t *e, Ifp__Request *q, const char *field) {
    rl_request(e, q);
    Ifp__Error *er = rl_error(e, q->id, T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_BAD_REQUEST);
    if (strncmp(er->message, field, strlen(field)) != 0) fail_msg("%s: got \"%s\"", field, er->message);
}

static void bad_requests_and_overload(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gD", -1, 1, 1, 0}}; /* silent at first */
    assert_int_equal(rl_start(e, "queue_max = 1\nmax_tokens_limit = 200", NULL, gs, 1), 0);
    Ifp__Request q = req_a("t", 4);
    q.temperature = NAN;
    expect_bad(e, &q, "temperature:");
    q = req_a("p", 4), q.top_p = 2;
    expect_bad(e, &q, "top_p:");
    q = req_a("m", 201);
    expect_bad(e, &q, "max_tokens:");
    char *five[] = {"a", "b", "c", "d", "e"};
    q = req_a("s", 4), q.n_stop = 5, q.stop = five;
    expect_bad(e, &q, "stop:");
    q = req_a("k", 4), q.mask_mode = IFP__MASK_MODE__MASK_TASK;
    expect_bad(e, &q, "task:");
    q = req_a("mm", 4), q.mask_mode = (Ifp__MaskMode)9;
    expect_bad(e, &q, "mask_mode:");
    int32_t bad_ids[] = {1, 5000};
    q = req_a("ids", 4), q.n_prompt_tokens = 2, q.prompt_tokens = bad_ids;
    expect_bad(e, &q, "prompt_tokens[1]:");
    int32_t long_ids[300];
    for (int i = 0; i < 300; i++) long_ids[i] = 100;
    q = req_a("long", 4), q.n_prompt_tokens = 300, q.prompt_tokens = long_ids;
    expect_bad(e, &q, "prompt_tokens:");
    /* the group is silent: the first request waits, the queue (1) is full for the next */
    q = req_a("q1", 2);
    rl_request(e, &q);
    q = req_a("q1", 2);
    expect_bad(e, &q, "id:"); /* q1 is in flight */
    q = req_a("q2", 2);
    rl_request(e, &q);
    Ifp__Error *er = rl_error(e, "q2", T_WAIT);
    assert_non_null(er);
    assert_int_equal(er->code, IFP__ERROR_CODE__ERR_OVERLOADED);
    assert_true(er->retry_after_ms > 0);
    assert_int_equal(e->g[0].n_work, 0);
    e->g[0].beating = 1; /* the group registers: q1 leaves the queue */
    Ifp__Work *w = rl_wait_work(e, 0, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[0], w->rid, 0, g_script, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    Ifp__Reply *r = rl_reply(e, "q1", T_WAIT);
    assert_non_null(r);
    assert_true(r->timings->queue_ms > 0);
    assert_int_equal(rl_stop(e), 0);
}

static void malformed_input(void **u) {
    (void)u;
    rl_env_t *e = &g_env;
    const rl_group_spec_t gs[] = {{"gA", 0, 2, 2, 1}, {"gD", -1, 2, 1, 1}};
    assert_int_equal(rl_start(e, NULL, g_clusters, gs, 2), 0);
    rl_pump(e, 2 * RL_HB_MS);
    /* frontend: garbage, two body frames, an empty message, an unknown field */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07, 0x00};
    static const uint8_t unknown_field[] = {0xa0, 0x01, 0x01}; /* field 20, varint 1 */
    zmq_send(e->client, garbage, sizeof garbage, 0);
    zmq_send(e->client, "x", 1, ZMQ_SNDMORE);
    zmq_send(e->client, "y", 1, 0);
    zmq_send(e->client, "", 0, 0);
    zmq_send(e->client, unknown_field, sizeof unknown_field, 0);
    int n_err = 0;
    for (double end = ifp_now_ms() + T_WAIT; n_err < 4 && ifp_now_ms() < end;) {
        rl_pump(e, 10);
        n_err = 0;
        for (int i = 0; i < e->n_inbox; i++)
            n_err += e->inbox[i]->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR &&
                     e->inbox[i]->error->code == IFP__ERROR_CODE__ERR_MALFORMED;
    }
    assert_int_equal(n_err, 4);
    /* backend: garbage, two body frames, an empty message, a heartbeat from
     * the last stage, tokens for an unknown rid, a heartbeat naming another
     * group, a heartbeat with an unknown cluster, an unconfigured group */
    zmq_send(e->g[0].s0, garbage, sizeof garbage, 0);
    zmq_send(e->g[0].s0, "x", 1, ZMQ_SNDMORE);
    zmq_send(e->g[0].s0, "y", 1, 0);
    zmq_send(e->g[0].out, "", 0, 0);
    rl_group_t fake = e->g[0];
    fake.s0 = e->g[0].out;
    rl_heartbeat(&fake);
    rl_tokens(&e->g[0], 12345, 0, g_script, 2, 0);
    snprintf(fake.name, sizeof fake.name, "gD");
    fake.s0 = e->g[0].s0;
    rl_heartbeat(&fake);
    fake = e->g[0];
    fake.cluster = 99;
    rl_heartbeat(&fake);
    void *stranger = rl_dealer(e, e->back, "zz");
    fake = e->g[0];
    snprintf(fake.name, sizeof fake.name, "zz");
    fake.s0 = stranger;
    rl_heartbeat(&fake);
    rl_pump(e, 200);
    zmq_close(stranger);
    /* still up and serving */
    Ifp__Request q = req_a("ok", 2);
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    rl_request(e, &q);
    Ifp__Work *w = rl_wait_work(e, 1, 1, T_WAIT);
    assert_non_null(w);
    rl_tokens(&e->g[1], w->rid, 0, g_script, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_non_null(rl_reply(e, "ok", T_WAIT));
    assert_true(rl_alive(e));
    rl_pump(e, 2200); /* one stats line */
    assert_true(rl_log_has(e, "malformed client message"));
    assert_true(rl_log_has(e, "malformed message from group identity 'gA'"));
    assert_true(rl_log_has(e, "malformed message from group identity 'gA.out'"));
    assert_true(rl_log_has(e, "unknown group identity 'zz'"));
    assert_int_equal(rl_counter(e, "client_malformed"), 4);
    assert_int_equal(rl_counter(e, "group_malformed"), 6);
    assert_int_equal(rl_counter(e, "group_unknown"), 1);
    assert_int_equal(rl_counter(e, "tok_unknown"), 2);
    assert_int_equal(rl_counter(e, "orphans_cancelled"), 1); /* rid 12345 */
    assert_int_equal(rl_stop(e), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(routes_spills_and_streams, teardown_env),
        cmocka_unit_test_teardown(failover_replays_without_gap, teardown_env),
        cmocka_unit_test_teardown(work_error_and_gap_replay, teardown_env),
        cmocka_unit_test_teardown(deadline_and_cancel, teardown_env),
        cmocka_unit_test_teardown(bad_requests_and_overload, teardown_env),
        cmocka_unit_test_teardown(malformed_input, teardown_env),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
