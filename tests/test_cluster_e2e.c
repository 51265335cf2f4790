/* test_cluster_e2e — the real cluster (ifp-router + ifp-shard groups over
 * mpirun) on loopback, ipc:// sockets in a temp dir:
 *  - every golden prompt, greedy with its per-input mask, all 12 in flight at
 *    once from one DEALER, is token-for-token the golden masked answer (=
 *    `ifp run --predictor P --mask input`, checked here for one prompt), with
 *    coverage 1, for P = 1, 2, 3 stages and G = 1, 2 groups;
 *  - requests land on the group holding their cluster (math/qa -> cluster 0,
 *    story -> cluster 3, the rest -> dense);
 *  - a saturated cluster group (1 slot) spills to the dense group, answers
 *    still exact. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster_testlib.h"
#include "testutil.h"

#define N_GOLDEN 12
#define N_TOKENS 32
#define START_MS 30000
#define ANSWER_MS 60000

static cJSON **golden;
static int n_golden;

/* A golden prompt of `domain` (the first), for readiness probes. */
static const char *golden_prompt(const char *domain) {
    for (int i = 0; i < n_golden; i++)
        if (!strcmp(cJSON_GetObjectItem(golden[i], "domain")->valuestring, domain))
            return cJSON_GetObjectItem(golden[i], "prompt")->valuestring;
    return NULL;
}

/* Checks r against golden row g (masked greedy): tokens, finish reason,
 * text, coverage 1, and the stream (events 0..n-1 once, pieces == text). */
static void check_golden(const ct_req_t *r, const cJSON *g) {
    const Ifp__Reply *rep = ct_reply(r);
    if (!rep && r->answer)
        fprintf(stderr, "%s: error %d: %s\n", r->id, r->answer->error->code, r->answer->error->message);
    assert_non_null(rep);
    const cJSON *masked = cJSON_GetObjectItem(g, "masked"), *want = cJSON_GetObjectItem(masked, "greedy_ids");
    int nw = cJSON_GetArraySize(want), w_eos = nw > 0 && cJSON_GetArrayItem(want, nw - 1)->valueint == CT_EOS;
    int same = (int)rep->n_tokens == nw - w_eos;
    for (int k = 0; same && k < nw - w_eos; k++) same = rep->tokens[k] == cJSON_GetArrayItem(want, k)->valueint;
    if (!same) {
        fprintf(stderr, "%s (%s) on group %s: got", r->id, cJSON_GetObjectItem(g, "domain")->valuestring, rep->group);
        for (size_t k = 0; k < rep->n_tokens; k++) fprintf(stderr, " %d", rep->tokens[k]);
        fprintf(stderr, "\n  want");
        for (int k = 0; k < nw; k++) fprintf(stderr, " %d", cJSON_GetArrayItem(want, k)->valueint);
        fprintf(stderr, "\n");
    }
    assert_true(same);
    assert_int_equal(rep->finish, w_eos ? IFP__FINISH_REASON__FINISH_EOS : IFP__FINISH_REASON__FINISH_LENGTH);
    const char *wt = cJSON_GetObjectItem(masked, "greedy_text")->valuestring;
    assert_int_equal(rep->text.len, strlen(wt));
    assert_memory_equal(rep->text.data, wt, rep->text.len);
    assert_true(rep->coverage == 1.0);
    /* the stream: one event per token (an EOS may have its own last event) */
    assert_int_equal(r->bad_order, 0);
    int n_ev = r->n_events, eos_ev = n_ev == (int)rep->n_tokens + 1 && r->token[n_ev - 1] == CT_EOS;
    assert_int_equal(n_ev - eos_ev, (int)rep->n_tokens);
    for (int k = 0; k < n_ev - eos_ev; k++) assert_int_equal(r->token[k], rep->tokens[k]);
    assert_int_equal(r->text_len, rep->text.len);
    assert_memory_equal(r->text, rep->text.data, r->text_len);
    assert_int_equal((int)rep->n_prompt_tokens, cJSON_GetArraySize(cJSON_GetObjectItem(g, "prompt_ids")));
}

/* Sends golden rows idx[0..n) at once (greedy, input masks, 32 tokens),
 * waits for every answer, checks each.  groups_out[i] (if given) gets the
 * group that answered idx[i] (strdup'd). */
static void run_golden(ct_cluster_t *cl, const int *idx, int n, char **groups_out) {
    void *sock = ct_client(cl);
    assert_non_null(sock);
    ct_req_t *reqs = calloc((size_t)n, sizeof *reqs);
    assert_non_null(reqs);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "golden-%d-%d", idx[i], i);
        ct_params_t p = {.prompt = cJSON_GetObjectItem(golden[idx[i]], "prompt")->valuestring,
                         .max_tokens = N_TOKENS, .mode = IFP__MASK_MODE__MASK_INPUT};
        assert_int_equal(ct_send(sock, &reqs[i], id, &p), 0);
    }
    int done = ct_wait_all(sock, reqs, n, ANSWER_MS);
    if (done < n) fprintf(stderr, "only %d of %d requests answered\n", done, n);
    assert_int_equal(done, n);
    for (int i = 0; i < n; i++) {
        check_golden(&reqs[i], golden[idx[i]]);
        if (groups_out) groups_out[i] = strdup(ct_reply(&reqs[i])->group);
    }
    for (int i = 0; i < n; i++) ct_req_free(&reqs[i]);
    free(reqs);
    zmq_close(sock);
}

/* ------------------------------------------------------------ fixtures */

typedef struct {
    const char *router_extra, *groups;
    const char *probe_domain[CT_MAX_GROUPS]; /* a domain routed to group i once it is up */
    ct_cluster_t *cl;
} fixture_t;

static int cluster_up(void **state) {
    fixture_t *f = *state;
    if (access(CT_ROUTER_BIN, X_OK) || access(CT_SHARD_BIN, X_OK)) {
        fprintf(stderr, "not built: %s or %s\n", CT_ROUTER_BIN, CT_SHARD_BIN);
        return -1;
    }
    f->cl = ct_cluster_new(f->router_extra, f->groups);
    if (!f->cl) return -1;
    ct_start_all(f->cl);
    void *sock = ct_client(f->cl);
    int rc = sock ? 0 : -1;
    for (int i = 0; i < f->cl->n_groups && !rc; i++) {
        rc = ct_wait_lands(f->cl, sock, golden_prompt(f->probe_domain[i]), f->cl->groups[i].name, START_MS);
        if (rc) fprintf(stderr, "group %s did not take a %s probe within %d ms\n", f->cl->groups[i].name,
                        f->probe_domain[i], START_MS);
    }
    if (sock) zmq_close(sock);
    if (rc) ct_cluster_destroy(&f->cl);
    return rc;
}

static int cluster_down(void **state) {
    fixture_t *f = *state;
    ct_cluster_destroy(&f->cl);
    return 0;
}

#define DENSE_G1(P, LAYERS) \
    {NULL, "[group d0]\nstages = " #P "\n" LAYERS "cluster = dense\nslots = 16\n", {"code"}, NULL}
/* g0 holds cluster 0 (math + qa), g1 is dense; no load diversion */
#define MIXED_G2(P, LAYERS)                                                                                  \
    {"balance_abs = 1000000\n",                                                                              \
     "[group c0]\nstages = " #P "\n" LAYERS "cluster = 0\nslots = 8\n\n[group d1]\nstages = " #P "\n" LAYERS \
     "cluster = dense\nslots = 8\n",                                                                         \
     {"math", "code"},                                                                                       \
     NULL}

static fixture_t fx_p1_g1 = DENSE_G1(1, ""), fx_p2_g1 = DENSE_G1(2, ""), fx_p3_g1 = DENSE_G1(3, "layers = 2,1,1\n");
static fixture_t fx_p1_g2 = MIXED_G2(1, ""), fx_p2_g2 = MIXED_G2(2, ""), fx_p3_g2 = MIXED_G2(3, "layers = 2,1,1\n");
static fixture_t fx_routing = {"balance_abs = 1000000\n",
                               "[group c0]\nstages = 2\ncluster = 0\nslots = 8\n\n"
                               "[group c3]\nstages = 1\ncluster = 3\nslots = 8\n\n"
                               "[group d]\nstages = 1\ncluster = dense\nslots = 8\n",
                               {"math", "story", "code"},
                               NULL};
/* cluster 0 has a single slot; the imbalance test trips at once */
static fixture_t fx_spill = {"balance_abs = 1\nbalance_rel = 1.0\n",
                             "[group c0]\nstages = 1\ncluster = 0\nslots = 1\n\n"
                             "[group d]\nstages = 1\ncluster = dense\nslots = 16\n",
                             {"math", "code"},
                             NULL};

/* ------------------------------------------------------------ tests */

/* The reference: `ifp run --predictor --mask input` on a golden prompt gives
 * the golden masked greedy tokens (all 12 are checked by test_cli_mask). */
static void ifp_run_is_the_reference(void **unused) {
    (void)unused;
    const char *prompt = cJSON_GetObjectItem(golden[0], "prompt")->valuestring;
    char out[] = "/tmp/ifp-ct-run-XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        execl(CT_IFP_BIN, CT_IFP_BIN, "run", "--model", MODEL_PATH("ifp-mix/ifp-mix.gguf"), "--predictor",
              MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), "--mask", "input", "--prompt", prompt, "-n", "32",
              "--temp", "0", "--json", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    close(fd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *text = tu_read_file(out, NULL);
    unlink(out);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    const cJSON *got = cJSON_GetObjectItem(j, "tokens");
    const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(golden[0], "masked"), "greedy_ids");
    int nw = cJSON_GetArraySize(want), w_eos = cJSON_GetArrayItem(want, nw - 1)->valueint == CT_EOS;
    assert_int_equal(cJSON_GetArraySize(got), nw - w_eos);
    for (int k = 0; k < nw - w_eos; k++)
        assert_int_equal(cJSON_GetArrayItem(got, k)->valueint, cJSON_GetArrayItem(want, k)->valueint);
    cJSON_Delete(j);
}

/* All golden prompts at once: the answers are the golden masked ones. */
static void golden_all_at_once(void **state) {
    fixture_t *f = *state;
    int idx[N_GOLDEN];
    for (int i = 0; i < N_GOLDEN; i++) idx[i] = i;
    char *groups[N_GOLDEN];
    run_golden(f->cl, idx, N_GOLDEN, groups);
    fprintf(stderr, "  %d groups x %d stages:", f->cl->n_groups, f->cl->groups[0].np);
    for (int i = 0; i < N_GOLDEN; i++) {
        fprintf(stderr, " %s", groups[i]);
        assert_true(ct_group_index(f->cl, groups[i]) >= 0);
        free(groups[i]);
    }
    fprintf(stderr, "\n");
    f->cl->ok = 1;
}

/* Each domain on the group of its cluster. */
static void routing_by_cluster(void **state) {
    fixture_t *f = *state;
    int idx[N_GOLDEN];
    for (int i = 0; i < N_GOLDEN; i++) idx[i] = i;
    char *groups[N_GOLDEN];
    run_golden(f->cl, idx, N_GOLDEN, groups);
    for (int i = 0; i < N_GOLDEN; i++) {
        const char *d = cJSON_GetObjectItem(golden[i], "domain")->valuestring;
        const char *want = !strcmp(d, "math") || !strcmp(d, "qa") ? "c0" : !strcmp(d, "story") ? "c3" : "d";
        if (strcmp(groups[i], want)) fprintf(stderr, "golden %d (%s): group %s, want %s\n", i, d, groups[i], want);
        assert_string_equal(groups[i], want);
        free(groups[i]);
    }
    f->cl->ok = 1;
}

/* Ten cluster-0 requests at once on a 1-slot cluster group: some spill to
 * the dense group, and every answer is still the golden one. */
static void spill_when_saturated(void **state) {
    fixture_t *f = *state;
    int idx[10], n = 0;
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < N_GOLDEN; i++) {
            const char *d = cJSON_GetObjectItem(golden[i], "domain")->valuestring;
            if (!strcmp(d, "math") || !strcmp(d, "qa")) idx[n++] = i;
        }
    assert_int_equal(n, 10);
    char *groups[10];
    run_golden(f->cl, idx, n, groups);
    int on_c0 = 0, on_d = 0;
    for (int i = 0; i < n; i++) {
        on_c0 += !strcmp(groups[i], "c0");
        on_d += !strcmp(groups[i], "d");
        free(groups[i]);
    }
    fprintf(stderr, "  spill: %d on the 1-slot cluster group, %d on the dense group\n", on_c0, on_d);
    assert_int_equal(on_c0 + on_d, n);
    assert_true(on_c0 >= 1);
    assert_true(on_d >= 1);
    f->cl->ok = 1;
}

/* `ifp client` against the routing cluster: --json fields, streamed text +
 * stats line, a router error (exit 1), the load-test summary. */
static void client_command(void **state) {
    fixture_t *f = *state;
    const cJSON *g = golden[0], *masked = cJSON_GetObjectItem(g, "masked");
    const char *prompt = cJSON_GetObjectItem(g, "prompt")->valuestring;
    char *out, *err;
    const char *a1[] = {CT_IFP_BIN, "client", "--router", f->cl->frontend, "--prompt", prompt, "-n", "32",
                        "--temp", "0", "--json", NULL};
    int rc = ct_run(a1, &out, &err);
    if (rc) fprintf(stderr, "ifp client: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *want = cJSON_GetObjectItem(masked, "greedy_ids"), *got = cJSON_GetObjectItem(j, "tokens");
    assert_int_equal(cJSON_GetArraySize(got), cJSON_GetArraySize(want)); /* golden 0 has no EOS */
    for (int k = 0; k < cJSON_GetArraySize(want); k++)
        assert_int_equal(cJSON_GetArrayItem(got, k)->valueint, cJSON_GetArrayItem(want, k)->valueint);
    assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring,
                        cJSON_GetObjectItem(masked, "greedy_text")->valuestring);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "prompt_tokens")),
                     cJSON_GetArraySize(cJSON_GetObjectItem(g, "prompt_ids")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "logits_last_prompt")), 16);
    assert_int_equal(cJSON_GetObjectItem(j, "argmax_last_prompt")->valueint,
                     cJSON_GetObjectItem(masked, "last_argmax")->valueint);
    assert_string_equal(cJSON_GetObjectItem(j, "group")->valuestring, "c0");
    assert_int_equal(cJSON_GetObjectItem(j, "cluster")->valueint, 0);
    assert_true(cJSON_GetObjectItem(j, "coverage")->valuedouble == 1.0);
    assert_true(cJSON_GetObjectItem(j, "ttft_ms")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(j, "tokens_per_s")->valuedouble > 0);
    assert_string_equal(cJSON_GetObjectItem(j, "finish_reason")->valuestring, "length");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "replays")), 0);
    cJSON_Delete(j);
    free(out), free(err);

    /* streamed: the answer on stdout, the stats line on stderr */
    const cJSON *story = golden[5];
    assert_string_equal(cJSON_GetObjectItem(story, "domain")->valuestring, "story");
    const char *a2[] = {CT_IFP_BIN, "client", "--router", f->cl->frontend, "--prompt",
                        cJSON_GetObjectItem(story, "prompt")->valuestring, "-n", "32", "--temp", "0", NULL};
    assert_int_equal(ct_run(a2, &out, &err), 0);
    const char *st = cJSON_GetObjectItem(cJSON_GetObjectItem(story, "masked"), "greedy_text")->valuestring;
    assert_int_equal(strlen(out), strlen(st) + 1);
    assert_memory_equal(out, st, strlen(st));
    assert_non_null(strstr(err, "[group c3, cluster 3, coverage 1.000"));
    free(out), free(err);

    /* a request the router refuses: the message on stderr, exit 1 */
    const char *a3[] = {CT_IFP_BIN, "client", "--router", f->cl->frontend, "--prompt", prompt, "-n", "5000", NULL};
    assert_int_equal(ct_run(a3, &out, &err), 1);
    assert_non_null(strstr(err, "max_tokens"));
    free(out), free(err);

    /* the load test */
    const char *a4[] = {CT_IFP_BIN, "client", "--router", f->cl->frontend, "--prompt", prompt, "-n", "16",
                        "--n-requests", "8", "--concurrency", "8", "--seed", "3", "--json", NULL};
    assert_int_equal(ct_run(a4, &out, &err), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "ok")->valueint, 8);
    assert_int_equal(cJSON_GetObjectItem(j, "completion_tokens")->valueint, 8 * 16);
    assert_true(cJSON_GetObjectItem(j, "tokens_per_s")->valuedouble > 0);
    cJSON_Delete(j);
    free(out), free(err);
    f->cl->ok = 1;
}

static int load_golden(void **unused) {
    (void)unused;
    golden = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n_golden);
    return golden && n_golden == N_GOLDEN ? 0 : -1;
}

static int free_golden(void **unused) {
    (void)unused;
    tu_free_jsonl(golden, n_golden);
    return 0;
}

#define CLUSTER_TEST(name, fn, fx) {name, fn, cluster_up, cluster_down, &fx}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ifp_run_is_the_reference),
        CLUSTER_TEST("golden_P1_G1", golden_all_at_once, fx_p1_g1),
        CLUSTER_TEST("golden_P2_G1", golden_all_at_once, fx_p2_g1),
        CLUSTER_TEST("golden_P3_G1", golden_all_at_once, fx_p3_g1),
        CLUSTER_TEST("golden_P1_G2", golden_all_at_once, fx_p1_g2),
        CLUSTER_TEST("golden_P2_G2", golden_all_at_once, fx_p2_g2),
        CLUSTER_TEST("golden_P3_G2", golden_all_at_once, fx_p3_g2),
        CLUSTER_TEST("routing_by_cluster", routing_by_cluster, fx_routing),
        CLUSTER_TEST("client_command", client_command, fx_routing),
        CLUSTER_TEST("spill_when_saturated", spill_when_saturated, fx_spill),
    };
    return cmocka_run_group_tests(tests, load_golden, free_golden);
}
