/* test_failover — groups and routers that die under load.
 *
 * failover: kill -9 a rank of a shard group while it streams.
 *
 * Two groups can serve the same requests exactly: c0 holds the union of
 * cluster 0 (math + qa) and d1 is dense; the balancer sends math/qa to c0.
 * Ten clients (one DEALER each) stream sampled answers (temperature 0.8,
 * fixed seeds, 160 tokens each, EOS ignored).  A reference run comes first;
 * in the second run one rank of c0 is killed mid-stream.  The router must
 * declare c0 dead (liveness x heartbeat_ms), replay its requests on d1 with
 * prompt + tokens already streamed, and every client must get its whole
 * answer: token indices 0..n-1 exactly once, pieces == Reply.text, tokens ==
 * the reference (the sampler's RNG is keyed by position).  The router stays
 * up; c0, restarted, registers again and takes work.
 *
 * lost_micro_batch: c0 is restarted with the shard's fault hook
 * (IFP_SHARD_FAULT=drop-batch=N: its stage 1 drops one micro-batch, as a lost
 * message would).  c0 must notice within batch_timeout_ms, abort the job
 * loudly (MPI_Abort, its log names the micro-batch) instead of hanging while
 * it heartbeats, and its requests must finish on d1 identical to the
 * fault-free reference.
 *
 * router_restart: kill -9 the router while the same streams run, start a
 * new one.  The groups still run the dead router's work; the new router does
 * not know those requests and cancels them at the groups (they are frozen
 * with SIGSTOP until the new router is up, so the check does not race the
 * generation): the groups' own counters show they stop, and they take new
 * work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster_testlib.h"
#include "testutil.h"

#define N_STREAMS 10
/* Every stream runs to N_TOKENS (ignore_eos): the groups decode far faster
 * than a busy client reads, and streams that ended early could be over at
 * the group before the fault hits them.  Prompts are at most ~70 tokens of
 * the 256 of the context. */
#define N_TOKENS 160
#define HEARTBEAT_MS 100
#define LIVENESS 4
#define START_MS 30000

static const char *const ROUTER_EXTRA = "balance_abs = 1000000\n";
static const char *const GROUPS = "[group c0]\nstages = 2\ncluster = 0\nslots = 16\nbatch_timeout_ms = 3000\n\n"
                                  "[group d1]\nstages = 2\ncluster = dense\nslots = 16\nbatch_timeout_ms = 3000\n";

typedef struct {
    ct_cluster_t *cl;
    cJSON **calib;
    int n_calib;
    const char *prompt[N_STREAMS]; /* math, then 2 qa (short answers) */
    const char *code_prompt;
    void *sock[N_STREAMS];
    ct_req_t ref[N_STREAMS], run[N_STREAMS];
} fx_t;

static ct_params_t stream_params(const fx_t *f, int i) {
    ct_params_t p = {.prompt = f->prompt[i], .max_tokens = N_TOKENS, .temperature = 0.8f, .top_p = 0.95f,
                     .top_k = 40, .seed = 1000 + (uint64_t)i, .mode = IFP__MASK_MODE__MASK_INPUT, .ignore_eos = 1};
    return p;
}

/* Handles what arrives on any stream socket within wait_ms; returns how
 * many of reqs are answered. */
static int pump_all(fx_t *f, ct_req_t *reqs, int wait_ms) {
    zmq_pollitem_t items[N_STREAMS];
    for (int i = 0; i < N_STREAMS; i++) items[i] = (zmq_pollitem_t){f->sock[i], 0, ZMQ_POLLIN, 0};
    zmq_poll(items, N_STREAMS, wait_ms);
    int done = 0;
    for (int i = 0; i < N_STREAMS; i++) done += ct_pump(f->sock[i], &reqs[i], 1, 0);
    return done;
}

static int wait_streams(fx_t *f, ct_req_t *reqs, int timeout_ms) {
    double end = ct_now_ms() + timeout_ms;
    int done;
    while ((done = pump_all(f, reqs, 50)) < N_STREAMS && ct_now_ms() < end) {}
    return done;
}

static void send_streams(fx_t *f, ct_req_t *reqs, const char *tag) {
    for (int i = 0; i < N_STREAMS; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", tag, i);
        ct_params_t p = stream_params(f, i);
        assert_int_equal(ct_send(f->sock[i], &reqs[i], id, &p), 0);
    }
}

/* The stream of r is whole: events 0..n-1 once each (an EOS may have its own
 * last event), their tokens and pieces are the Reply's. */
static void check_stream(const ct_req_t *r) {
    const Ifp__Reply *rep = ct_reply(r);
    if (!rep && r->answer)
        fprintf(stderr, "%s: error %d: %s\n", r->id, r->answer->error->code, r->answer->error->message);
    assert_non_null(rep);
    if (r->bad_order) {
        fprintf(stderr, "%s: event indices:", r->id);
        for (int k = 0; k < r->n_events && k < CT_MAX_EVENTS; k++) fprintf(stderr, " %u", r->index[k]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(r->bad_order, 0);
    int n_ev = r->n_events, eos_ev = n_ev == (int)rep->n_tokens + 1 && r->token[n_ev - 1] == CT_EOS;
    assert_int_equal(n_ev - eos_ev, (int)rep->n_tokens);
    for (int k = 0; k < n_ev - eos_ev; k++) assert_int_equal(r->token[k], rep->tokens[k]);
    assert_int_equal(r->text_len, rep->text.len);
    assert_memory_equal(r->text, rep->text.data, r->text_len);
}

static void check_same_answer(const ct_req_t *got, const ct_req_t *want) {
    const Ifp__Reply *g = ct_reply(got), *w = ct_reply(want);
    int same = g->n_tokens == w->n_tokens && g->finish == w->finish;
    for (size_t k = 0; same && k < g->n_tokens; k++) same = g->tokens[k] == w->tokens[k];
    if (!same) {
        fprintf(stderr, "%s (group %s, replays %zu) differs from the reference:\n  got ", got->id, g->group,
                g->n_replays);
        for (size_t k = 0; k < g->n_tokens; k++) fprintf(stderr, " %d", g->tokens[k]);
        fprintf(stderr, "\n  want");
        for (size_t k = 0; k < w->n_tokens; k++) fprintf(stderr, " %d", w->tokens[k]);
        fprintf(stderr, "\n");
    }
    assert_true(same);
}

static void failover(void **state) {
    fx_t *f = *state;
    ct_cluster_t *cl = f->cl;
    int c0 = ct_group_index(cl, "c0");

    /* 1. the reference run: every stream on c0 */
    send_streams(f, f->ref, "ref");
    assert_int_equal(wait_streams(f, f->ref, 60000), N_STREAMS);
    for (int i = 0; i < N_STREAMS; i++) {
        check_stream(&f->ref[i]);
        const Ifp__Reply *rep = ct_reply(&f->ref[i]);
        assert_string_equal(rep->group, "c0");
        assert_true(rep->coverage == 1.0);
        assert_int_equal((int)rep->n_replays, 0);
    }

    /* 2. the same requests; kill -9 one rank of c0 once they stream */
    send_streams(f, f->run, "run");
    int streaming = 0;
    double end = ct_now_ms() + 30000;
    while (streaming < N_STREAMS / 2 && ct_now_ms() < end) {
        pump_all(f, f->run, 5);
        streaming = 0;
        for (int i = 0; i < N_STREAMS; i++) streaming += f->run[i].n_events > 0;
    }
    assert_true(streaming >= N_STREAMS / 2);
    pid_t ranks[8];
    int n_ranks = ct_rank_pids(cl, c0, ranks, 8);
    assert_int_equal(n_ranks, 2);
    const char *which = getenv("IFP_TEST_KILL_RANK"); /* 0 = stage 0; default: the last stage */
    pid_t victim = ranks[which && *which == '0' ? 0 : n_ranks - 1];
    int before[N_STREAMS], unfinished = 0;
    for (int i = 0; i < N_STREAMS; i++) before[i] = f->run[i].n_events, unfinished += !f->run[i].answer;
    double t_kill = ct_now_ms();
    assert_int_equal(kill(victim, SIGKILL), 0);

    assert_int_equal(wait_streams(f, f->run, 60000), N_STREAMS);
    int replayed = 0;
    double worst_gap = 0;
    for (int i = 0; i < N_STREAMS; i++) {
        ct_req_t *r = &f->run[i];
        check_stream(r);
        check_same_answer(r, &f->ref[i]);
        const Ifp__Reply *rep = ct_reply(r);
        if (rep->n_replays) {
            replayed++;
            assert_string_equal(rep->group, "d1");
            /* the first event after the kill came within liveness x
             * heartbeat (+ the replay's prefill and scheduling slack) */
            for (int k = before[i]; k < r->n_events && k < CT_MAX_EVENTS; k++)
                if (r->t_event[k] > t_kill) {
                    if (r->t_event[k] - t_kill > worst_gap) worst_gap = r->t_event[k] - t_kill;
                    break;
                }
        }
    }
    fprintf(stderr, "  killed rank pid %d of c0 with %d/%d streams started, %d unfinished; %d replayed on d1; "
                    "longest pause %.0f ms (liveness x heartbeat = %d ms)\n",
            (int)victim, streaming, N_STREAMS, unfinished, replayed, worst_gap, LIVENESS * HEARTBEAT_MS);
    assert_true(replayed >= 1);
    assert_true(ct_alive(cl->router));

    /* 3. restart c0: it registers again and takes work (math goes to c0) */
    ct_stop_pgroup(&cl->groups[c0].pid, SIGKILL, 0);
    ct_start_group(cl, c0);
    double t_restart = ct_now_ms();
    assert_int_equal(ct_wait_lands(cl, f->sock[0], f->prompt[0], "c0", START_MS), 0);
    fprintf(stderr, "  c0 restarted and took work after %.0f ms\n", ct_now_ms() - t_restart);
    ct_req_t again;
    ct_params_t p = stream_params(f, 0);
    assert_int_equal(ct_send(f->sock[0], &again, "again", &p), 0);
    assert_int_equal(ct_wait_all(f->sock[0], &again, 1, 30000), 1);
    check_stream(&again);
    assert_string_equal(ct_reply(&again)->group, "c0");
    check_same_answer(&again, &f->ref[0]);
    ct_req_free(&again);
    assert_true(ct_alive(cl->router));
    cl->ok = 1;
}

static void lost_micro_batch(void **state) {
    fx_t *f = *state;
    ct_cluster_t *cl = f->cl;
    int c0 = ct_group_index(cl, "c0");
    send_streams(f, f->ref, "ref");
    assert_int_equal(wait_streams(f, f->ref, 60000), N_STREAMS);
    for (int i = 0; i < N_STREAMS; i++) check_stream(&f->ref[i]);
    /* c0 again, its stage 1 set to drop the 40th micro-batch it receives */
    ct_stop_pgroup(&cl->groups[c0].pid, SIGKILL, 0);
    ct_start_group_env(cl, c0, "IFP_SHARD_FAULT=drop-batch=40");
    assert_int_equal(ct_wait_lands(cl, f->sock[0], f->prompt[0], "c0", START_MS), 0);
    send_streams(f, f->run, "run");
    assert_int_equal(wait_streams(f, f->run, 90000), N_STREAMS);
    int replayed = 0;
    for (int i = 0; i < N_STREAMS; i++) {
        check_stream(&f->run[i]);
        check_same_answer(&f->run[i], &f->ref[i]);
        replayed += ct_reply(&f->run[i])->n_replays > 0;
    }
    /* c0 died loudly: its job exited, its log names the lost micro-batch */
    for (int t = 0; t < 500 && ct_alive(cl->groups[c0].pid); t++) usleep(10000);
    assert_false(ct_alive(cl->groups[c0].pid));
    char *log = tu_read_file(cl->groups[c0].log, NULL);
    assert_non_null(log);
    const char *lost = strstr(log, " lost: ");
    assert_non_null(lost);
    fprintf(stderr, "  c0 dropped a micro-batch: %.*s; %d of %d streams replayed on d1, all identical\n",
            (int)strcspn(lost, "\n") < 200 ? (int)strcspn(lost, "\n") : 200, lost, replayed, N_STREAMS);
    free(log);
    assert_true(replayed >= 1);
    assert_true(ct_alive(cl->router));
    cl->ok = 1;
}

/* Sum over the groups of a Pong field; -1 without a Pong. */
static long long groups_sum(ct_cluster_t *cl, int what) {
    Ifp__ServerMessage *p = ct_ping(cl, 5000);
    if (!p) return -1;
    long long sum = 0;
    for (size_t i = 0; i < p->pong->n_groups; i++) {
        const Ifp__GroupStatus *g = p->pong->groups[i];
        sum += what == 0 ? (long long)g->group_running : what == 1 ? (long long)g->tokens_generated : g->alive;
    }
    ifp__server_message__free_unpacked(p, NULL);
    return sum;
}

static void signal_ranks(ct_cluster_t *cl, int sig) {
    for (int g = 0; g < cl->n_groups; g++) {
        pid_t ranks[8];
        int n = ct_rank_pids(cl, g, ranks, 8);
        for (int k = 0; k < n; k++) kill(ranks[k], sig);
    }
}

static void router_restart(void **state) {
    fx_t *f = *state;
    ct_cluster_t *cl = f->cl;
    /* long streams running on the groups (ifp-mix decodes faster than a
     * client reads: they must not be over before the router dies) */
    for (int i = 0; i < N_STREAMS; i++) {
        char id[32];
        snprintf(id, sizeof id, "old-%d", i);
        ct_params_t p = stream_params(f, i);
        assert_int_equal(ct_send(f->sock[i], &f->run[i], id, &p), 0);
    }
    int streaming = 0;
    double end = ct_now_ms() + 30000;
    while (streaming < N_STREAMS && ct_now_ms() < end) {
        pump_all(f, f->run, 5);
        streaming = 0;
        for (int i = 0; i < N_STREAMS; i++) streaming += f->run[i].n_events > 0 && !f->run[i].answer;
    }
    assert_int_equal(streaming, N_STREAMS);
    /* freeze the groups, kill -9 the router, start a new one */
    signal_ranks(cl, SIGSTOP);
    kill(cl->router, SIGKILL);
    ct_stop_pgroup(&cl->router, SIGKILL, 0);
    ct_start_router(cl);
    end = ct_now_ms() + START_MS;
    long long alive = -1;
    while ((alive = groups_sum(cl, 2)) < 0 && ct_now_ms() < end) usleep(50000);
    assert_int_equal(alive, 0); /* the new router knows no group yet: they are frozen */
    long long gen0 = -1;
    signal_ranks(cl, SIGCONT);
    /* the groups register with the new router; it cancels the work it does not know */
    while ((alive = groups_sum(cl, 2)) < cl->n_groups && ct_now_ms() < end) usleep(50000);
    assert_int_equal(alive, cl->n_groups);
    gen0 = groups_sum(cl, 1); /* the groups' own count when they registered with the new router */
    long long budget = (long long)N_STREAMS * N_TOKENS - gen0; /* left then, for nobody */
    assert_true(budget > N_STREAMS);
    long long running = -1;
    while ((running = groups_sum(cl, 0)) != 0 && ct_now_ms() < end) usleep(50000);
    assert_int_equal(running, 0);
    long long gen1 = groups_sum(cl, 1);
    usleep(5 * HEARTBEAT_MS * 1000);
    long long gen2 = groups_sum(cl, 1);
    Ifp__ServerMessage *p = ct_ping(cl, 5000);
    assert_non_null(p);
    long long orphans = ct_counter(p, "orphans_cancelled");
    ifp__server_message__free_unpacked(p, NULL);
    fprintf(stderr, "  router killed with %d streams running (%lld tokens of budget left): the new router cancelled %lld "
                    "orphaned requests; the groups generated %lld tokens after registering, then none (%lld -> %lld)\n",
            streaming, budget, orphans, gen1 - gen0, gen1, gen2);
    assert_true(orphans >= 1);
    assert_true(gen2 == gen1);               /* nothing runs for the old router any more */
    assert_true(gen1 - gen0 < budget / 2);   /* cancelled, not run out to max_tokens */
    /* the old clients heard nothing more; new work is served */
    ct_req_t again;
    ct_params_t p0 = stream_params(f, 0);
    assert_int_equal(ct_send(f->sock[0], &again, "after-restart", &p0), 0);
    assert_int_equal(ct_wait_all(f->sock[0], &again, 1, 30000), 1);
    check_stream(&again);
    ct_req_free(&again);
    /* `ifp status` shows the new router's view: every group alive, exit 0 */
    char *out = NULL, *err = NULL;
    const char *st[] = {CT_IFP_BIN, "status", "--router", cl->frontend, "--json", NULL};
    assert_int_equal(ct_run(st, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *groups = cJSON_GetObjectItem(j, "groups");
    assert_int_equal(cJSON_GetArraySize(groups), cl->n_groups);
    for (const cJSON *g = groups->child; g; g = g->next) assert_true(cJSON_IsTrue(cJSON_GetObjectItem(g, "alive")));
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counters"), "orphans_cancelled")->valuedouble >= 1);
    cJSON_Delete(j);
    free(out), free(err);
    assert_true(ct_alive(cl->router));
    /* and a router that does not answer: exit 2 */
    ct_stop_pgroup(&cl->router, SIGKILL, 0);
    const char *st2[] = {CT_IFP_BIN, "status", "--router", cl->frontend, "--timeout-ms", "300", NULL};
    assert_int_equal(ct_run(st2, &out, &err), 2);
    assert_non_null(strstr(err, "no answer"));
    free(out), free(err);
    cl->ok = 1;
}

static int teardown(void **state);

static int setup_cluster(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    *state = f;
    f->calib = tu_read_jsonl(IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl", &f->n_calib);
    int n_math = 0, n_qa = 0;
    for (int i = 0; i < f->n_calib; i++) {
        const char *d = cJSON_GetObjectItem(f->calib[i], "domain")->valuestring;
        const char *p = cJSON_GetObjectItem(f->calib[i], "prompt")->valuestring;
        if (!strcmp(d, "math") && n_math < N_STREAMS - 2) f->prompt[n_math++] = p;
        else if (!strcmp(d, "qa") && n_qa < 2) f->prompt[N_STREAMS - 2 + n_qa++] = p;
        else if (!strcmp(d, "code") && !f->code_prompt) f->code_prompt = p;
    }
    if (n_math + n_qa != N_STREAMS || !f->code_prompt) return -1;
    if (access(CT_ROUTER_BIN, X_OK) || access(CT_SHARD_BIN, X_OK)) {
        fprintf(stderr, "not built: %s or %s\n", CT_ROUTER_BIN, CT_SHARD_BIN);
        return -1;
    }
    f->cl = ct_cluster_new(ROUTER_EXTRA, GROUPS);
    if (!f->cl) return -1;
    ct_start_all(f->cl);
    for (int i = 0; i < N_STREAMS; i++)
        if (!(f->sock[i] = ct_client(f->cl))) return -1;
    /* c0 is up once math lands there; d1 once code (not in cluster 0) is served */
    if (ct_wait_lands(f->cl, f->sock[0], f->prompt[0], "c0", START_MS) ||
        ct_wait_lands(f->cl, f->sock[0], f->code_prompt, "d1", START_MS)) {
        fprintf(stderr, "the cluster did not come up within %d ms\n", START_MS);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    if (!f) return 0;
    for (int i = 0; i < N_STREAMS; i++) {
        ct_req_free(&f->ref[i]);
        ct_req_free(&f->run[i]);
        if (f->sock[i]) zmq_close(f->sock[i]);
    }
    ct_cluster_destroy(&f->cl);
    if (f->calib) tu_free_jsonl(f->calib, f->n_calib);
    free(f);
    return 0;
}

/* cmocka runs no teardown after a failed setup: clean up here */
static int setup(void **state) {
    int rc = setup_cluster(state);
    if (rc) teardown(state), *state = NULL;
    return rc;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(failover, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_micro_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(router_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
