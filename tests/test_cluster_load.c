/* test_cluster_load — the real local cluster (ifp-router + three 2-stage
 * mpirun groups on loopback) under the loads that used to break it:
 *
 *   heavy_predictor_burst  100 concurrent requests at the context limit
 *                          (224-token prompts + 32 new tokens = ctx 256)
 *                          through a predictor far heavier than ifp-mix's: a
 *                          synthetic backbone made by `ifp synth
 *                          --predictor-for` (IFP_TEST_PREDICTOR_SIZE, default
 *                          20m here; 302m is the paper's size).  The
 *                          predictor works for many liveness windows in a row:
 *                          every answer must equal `ifp run`'s, with 0 groups
 *                          declared dead and 0 replays.
 *   concurrent_64          64 concurrent requests, ifp-mix's predictor and
 *                          cluster groups: the same checks.
 *   burst_600              600 at once: what the queue cannot take is answered
 *                          ERR_OVERLOADED with a retry-after, everything else
 *                          is answered correctly, 0 false replays.
 *
 * Correct = token for token equal to `ifp run --predictor P --temp 0` on the
 * same prompt (exact masked model: coverage 1 on any group that serves it).
 * Nothing here asserts a time: bounds only keep a broken run from hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "cluster_testlib.h"
#include "gguf.h"
#include "testutil.h"
#include "tokenizer.h"

#define N_PROMPTS 16
#define PROMPT_TOKENS 224
#define NEW_TOKENS 32 /* 224 + 32 = the context of ifp-mix */
#define MAX_REQ 600

static const char *GROUPS_DENSE = "[group d0]\nstages = 2\ncluster = dense\nslots = 8\n"
                                  "[group d1]\nstages = 2\ncluster = dense\nslots = 8\n"
                                  "[group d2]\nstages = 2\ncluster = dense\nslots = 8\n";
static const char *GROUPS_MIX = "[group c0]\nstages = 2\ncluster = 0\nslots = 8\n"
                                "[group c3]\nstages = 2\ncluster = 3\nslots = 8\n"
                                "[group g2]\nstages = 2\ncluster = dense\nslots = 8\n";

static char g_dir[128], g_heavy[256];
static char *g_prompt[N_PROMPTS];      /* ~PROMPT_TOKENS tokens each */
static char *g_short[N_PROMPTS];       /* calibration prompts as they are */
static int32_t g_ref_heavy[N_PROMPTS][NEW_TOKENS], g_ref_mix[N_PROMPTS][NEW_TOKENS];
static int g_n_ref_heavy[N_PROMPTS], g_n_ref_mix[N_PROMPTS];
static ct_req_t *g_reqs;               /* [MAX_REQ] */
static ct_cluster_t *g_cl;

/* `ifp run` greedy tokens of prompt with predictor pred (-n NEW_TOKENS). */
static int reference(const char *pred, const char *prompt, int32_t *out) {
    char *o = NULL, *e = NULL;
    char n[16];
    snprintf(n, sizeof n, "%d", NEW_TOKENS);
    const char *argv[] = {CT_IFP_BIN, "run", "--model", MODEL_PATH("ifp-mix/ifp-mix.gguf"), "--predictor", pred,
                          "--prompt", prompt, "-n", n, "--temp", "0", "--json", NULL};
    int rc = ct_run(argv, &o, &e), k = -1;
    cJSON *j = rc == 0 ? cJSON_Parse(o) : NULL;
    const cJSON *toks = j ? cJSON_GetObjectItem(j, "tokens") : NULL;
    if (toks) {
        k = 0;
        for (const cJSON *t = toks->child; t && k < NEW_TOKENS; t = t->next) out[k++] = (int32_t)t->valueint;
    } else {
        fprintf(stderr, "ifp run failed (%d): %s\n", rc, e ? e : "");
    }
    cJSON_Delete(j);
    free(o), free(e);
    return k;
}

static int setup_all(void **u) {
    (void)u;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp-test-load-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    /* the heavy predictor */
    const char *size = getenv("IFP_TEST_PREDICTOR_SIZE");
    if (!size || !*size) size = "20m";
    snprintf(g_heavy, sizeof g_heavy, "%s/heavy-%s.gguf", g_dir, size);
    char *o = NULL, *e = NULL;
    const char *argv[] = {CT_IFP_BIN, "synth", "--predictor-for", MODEL_PATH("ifp-mix/ifp-mix.gguf"), "-o", g_heavy,
                          "--backbone", size, "--seed", "3", NULL};
    int rc = ct_run(argv, &o, &e);
    if (rc) fprintf(stderr, "ifp synth --predictor-for: %s\n", e ? e : "");
    else {
        const char *info = o && strstr(o, "parameters") ? strstr(o, "parameters") : e && strstr(e, "parameters") ? strstr(e, "parameters") : "";
        fprintf(stderr, "heavy predictor %s: %.*s\n", size, (int)strcspn(info, "\n"), info);
    }
    free(o), free(e);
    if (rc) return -1;
    /* prompts: calibration prompts of several domains, joined and cut to
     * at most PROMPT_TOKENS tokens (BOS included) */
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_tokenizer_t *tok = NULL;
    if (ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &g, &err) || ifp_tokenizer_from_gguf(g, &tok, &err)) return -1;
    ifp_gguf_close(&g);
    int n_rows = 0;
    cJSON **rows = tu_read_jsonl(IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl", &n_rows);
    if (!rows || n_rows < 4 * N_PROMPTS) return -1;
    int32_t ids[1024];
    for (int i = 0; i < N_PROMPTS; i++) {
        int row = (i * 29 + 3) % n_rows; /* spread over the file: every domain */
        g_short[i] = strdup(cJSON_GetObjectItem(rows[row], "prompt")->valuestring);
        char buf[8192] = "";
        for (int k = 0; strlen(buf) < 3000; k++) {
            const char *p = cJSON_GetObjectItem(rows[(row + k * 7) % n_rows], "prompt")->valuestring;
            strncat(buf, p, sizeof buf - strlen(buf) - 2);
            strcat(buf, "\n");
        }
        size_t len = strlen(buf);
        while (len > 0 && ifp_tokenizer_encode(tok, buf, 1, ids, 1024) > PROMPT_TOKENS) {
            len -= len > 400 ? 40 : 1;
            while (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80) len--; /* whole characters */
            buf[len] = '\0';
        }
        g_prompt[i] = strdup(buf);
    }
    for (int i = 0; i < n_rows; i++) cJSON_Delete(rows[i]);
    free(rows);
    ifp_tokenizer_destroy(&tok);
    /* the references */
    for (int i = 0; i < N_PROMPTS; i++) {
        g_n_ref_heavy[i] = reference(g_heavy, g_prompt[i], g_ref_heavy[i]);
        g_n_ref_mix[i] = reference(MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), g_short[i], g_ref_mix[i]);
        if (g_n_ref_heavy[i] < 1 || g_n_ref_mix[i] < 1) return -1;
    }
    g_reqs = calloc(MAX_REQ, sizeof *g_reqs);
    return g_reqs ? 0 : -1;
}

static int teardown_all(void **u) {
    (void)u;
    for (int i = 0; i < N_PROMPTS; i++) free(g_prompt[i]), free(g_short[i]);
    free(g_reqs);
    unlink(g_heavy);
    rmdir(g_dir);
    return 0;
}

static int teardown(void **u) {
    (void)u;
    for (int i = 0; i < MAX_REQ && g_reqs; i++) ct_req_free(&g_reqs[i]);
    ct_cluster_destroy(&g_cl);
    return 0;
}

/* Starts the cluster and waits until every group serves (a dense request
 * lands on each in turn: the balancer spreads probes by load). */
static void *start(const char *router_extra, const char *groups, const char *predictor) {
    /* the router is what is under test here: a group whose process a busy
     * machine does not run for 400 ms (the cluster tests' default liveness)
     * is not; give groups 3 s */
    char extra[256];
    snprintf(extra, sizeof extra, "liveness = 30\n%s", router_extra ? router_extra : "");
    g_cl = ct_cluster_new_pred(extra, groups, predictor);
    assert_non_null(g_cl);
    ct_start_all(g_cl);
    void *sock = ct_client(g_cl);
    assert_non_null(sock);
    double end = ct_now_ms() + 120000;
    for (;;) {
        Ifp__ServerMessage *p = ct_ping(g_cl, 2000);
        int alive = 0;
        for (size_t i = 0; p && i < p->pong->n_groups; i++) alive += p->pong->groups[i]->alive;
        int n = p ? (int)p->pong->n_groups : 0;
        if (p) ifp__server_message__free_unpacked(p, NULL);
        if (n && alive == n) break;
        assert_true(ct_now_ms() < end && ct_alive(g_cl->router));
        usleep(100000);
    }
    return sock;
}

/* Sends n requests (request k: prompt k % N_PROMPTS) as one burst and waits
 * for every answer.  Returns how many got a Reply (the rest an Error). */
static int burst(void *sock, int n, char **prompts, Ifp__MaskMode mode, int timeout_ms) {
    for (int k = 0; k < n; k++) {
        char id[32];
        snprintf(id, sizeof id, "r%d", k);
        ct_params_t p = {.prompt = prompts[k % N_PROMPTS], .max_tokens = NEW_TOKENS, .mode = mode};
        assert_int_equal(ct_send(sock, &g_reqs[k], id, &p), 0);
    }
    int done = ct_wait_all(sock, g_reqs, n, timeout_ms);
    if (done < n) fprintf(stderr, "only %d of %d requests answered\n", done, n);
    assert_int_equal(done, n);
    int replied = 0;
    for (int k = 0; k < n; k++) replied += ct_reply(&g_reqs[k]) != NULL;
    return replied;
}

/* Every Reply equals its reference, streamed without gap or repeat. */
static void check_answers(int n, int32_t (*ref)[NEW_TOKENS], const int *n_ref) {
    for (int k = 0; k < n; k++) {
        const Ifp__Reply *r = ct_reply(&g_reqs[k]);
        if (!r) continue;
        int i = k % N_PROMPTS;
        if ((int)r->n_tokens != n_ref[i] || memcmp(r->tokens, ref[i], sizeof(int32_t) * r->n_tokens))
            fail_msg("request r%d (prompt %d): %zu tokens, differs from ifp run's %d", k, i, r->n_tokens, n_ref[i]);
        assert_int_equal(r->n_replays, 0);
        assert_int_equal(g_reqs[k].bad_order, 0);
        assert_true(r->finish == IFP__FINISH_REASON__FINISH_LENGTH || r->finish == IFP__FINISH_REASON__FINISH_EOS);
    }
}

/* No group was declared dead and nothing was replayed or lost. */
static void check_no_false_failover(void) {
    Ifp__ServerMessage *p = ct_ping(g_cl, 5000);
    assert_non_null(p);
    static const char *const zero[] = {"group_deaths", "group_restarts", "replays", "lost_work", "lost_tokens",
                                       "lost_in_transit", "internal_errors", "heartbeats_refused"};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        if (ct_counter(p, zero[i]) != 0) fail_msg("router counter %s = %lld, expected 0", zero[i], ct_counter(p, zero[i]));
    for (size_t i = 0; i < p->pong->n_groups; i++) {
        assert_true(p->pong->groups[i]->alive);
        assert_int_equal(p->pong->groups[i]->deaths, 0);
    }
    ifp__server_message__free_unpacked(p, NULL);
}

static void heavy_predictor_burst(void **u) {
    (void)u;
    void *sock = start("predictor_threads = 1\nqueue_max = 256", GROUPS_DENSE, g_heavy);
    int replied = burst(sock, 100, g_prompt, IFP__MASK_MODE__MASK_INPUT, 1800000);
    assert_int_equal(replied, 100);
    check_answers(100, g_ref_heavy, g_n_ref_heavy);
    check_no_false_failover();
    zmq_close(sock);
    g_cl->ok = 1;
}

static void concurrent_64(void **u) {
    (void)u;
    void *sock = start(NULL, GROUPS_MIX, NULL);
    assert_int_equal(burst(sock, 64, g_short, IFP__MASK_MODE__MASK_INPUT, 600000), 64);
    check_answers(64, g_ref_mix, g_n_ref_mix);
    check_no_false_failover();
    zmq_close(sock);
    g_cl->ok = 1;
}

static void burst_600(void **u) {
    (void)u;
    void *sock = start("queue_max = 256", GROUPS_MIX, NULL);
    int replied = burst(sock, 600, g_short, IFP__MASK_MODE__MASK_INPUT, 600000);
    int overloaded = 0;
    for (int k = 0; k < 600; k++) {
        const Ifp__ServerMessage *m = g_reqs[k].answer;
        if (m->msg_case != IFP__SERVER_MESSAGE__MSG_ERROR) continue;
        assert_int_equal(m->error->code, IFP__ERROR_CODE__ERR_OVERLOADED);
        assert_true(m->error->retry_after_ms > 0);
        overloaded++;
    }
    fprintf(stderr, "600-request burst: %d answered, %d overloaded\n", replied, overloaded);
    assert_int_equal(replied + overloaded, 600);
    assert_true(overloaded > 0);   /* 600 > queue_max + 24 slots */
    assert_true(replied >= 256);   /* the queue and the slots were used */
    check_answers(600, g_ref_mix, g_n_ref_mix);
    check_no_false_failover();
    zmq_close(sock);
    g_cl->ok = 1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(heavy_predictor_burst, teardown),
        cmocka_unit_test_teardown(concurrent_64, teardown),
        cmocka_unit_test_teardown(burst_600, teardown),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
