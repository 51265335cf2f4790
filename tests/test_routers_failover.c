/* test_routers_failover — no single point of failure: two routers
 * (active-active) in front of three shard groups, and clients that survive a
 * router's death with the exact same answer.
 *
 * The cluster: routers r1 and r2 ([router NAME] sections of one config),
 * groups c0 (cluster 0: math + qa), c3 (cluster 3: story) and d (dense), one
 * stage each; every group serves both routers.  One client (client/client.h,
 * as `ifp client --router A,B`) runs 16 concurrent streams, sampled
 * (temperature 0.8, top-p 0.95, top-k 40, fixed seeds), 160 tokens each
 * (EOS ignored), spread over both routers round robin.
 *
 *   reference: the 16 streams with no fault;
 *   router:    the same, and kill -9 r1 while 3 of its streams run: the client moves
 *              r1's requests to r2 with the tokens it has (resume_tokens);
 *   both:      r1 restarted (it takes new requests again), the same streams,
 *              and kill -9 of r2 and of group c0's rank at once.
 * Every run: 0 requests lost (each ends with its Reply), every stream whole
 * (indices 0..159 once each, in order: the library drops any duplicate, and
 * their count is printed), its tokens and text equal to its Reply's and its
 * tokens equal to the reference's.  Then 60 requests at once through both
 * routers for the 24 slots: every group's own count (its stop line) shows
 * it never held more requests than its slots.  Printed: the requests that moved, the
 * duplicates dropped, the longest stall a stream saw (the figure of the
 * issue).  No assertion on a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client.h"
#include "cluster_testlib.h"
#include "testutil.h"

#define N_STREAMS 16
#define N_TOKENS 160
#define START_MS 30000
#define RUN_MS 120000

static const char *const GROUPS =
    "[group c0]\nstages = 1\ncluster = 0\nslots = 8\nbatch_timeout_ms = 3000\n\n"
    "[group c3]\nstages = 1\ncluster = 3\nslots = 8\nbatch_timeout_ms = 3000\n\n"
    "[group d]\nstages = 1\ncluster = dense\nslots = 8\nbatch_timeout_ms = 3000\n";

typedef struct {
    int32_t tokens[N_TOKENS + 1];
    int n;                   /* token events delivered */
    int bad;                 /* events out of order */
    char text[16384];
    size_t text_len;
    Ifp__ServerMessage *reply; /* owned */
    int failovers, final, failed;
    double stall_ms;
    int routers_seen;        /* bit k: a token came from router k */
} stream_t;

typedef struct {
    ct_cluster_t *cl;
    cJSON **calib;
    int n_calib;
    const char *prompt[N_STREAMS];
    stream_t ref[N_STREAMS];
} fx_t;

static void stream_free(stream_t *s) {
    if (s->reply) ifp__server_message__free_unpacked(s->reply, NULL);
    memset(s, 0, sizeof *s);
}

static ifp_client_t *open_client(ct_cluster_t *cl) {
    const char *addrs[CT_MAX_ROUTERS];
    for (int k = 0; k < cl->n_routers; k++) addrs[k] = cl->rfront[k];
    ifp_client_opts_t o = ifp_client_default_opts();
    o.keys = cl->keys;
    o.request_timeout_ms = RUN_MS;
    ifp_err_t err = {0};
    ifp_client_t *c = ifp_client_open(addrs, cl->n_routers, &o, &err);
    if (!c) {
        fprintf(stderr, "ifp_client_open: %s\n", err.msg);
        return NULL;
    }
    /* connected to every router (in the background) before the streams go out */
    double end = ct_now_ms() + START_MS;
    for (int k = 0; k < cl->n_routers && ct_now_ms() < end; k += ifp_client_router_up(c, k)) {
        ifp_client_event_t ev;
        ifp_client_poll(c, 20, &ev);
    }
    return c;
}

/* The fault a run injects once half the streams have tokens. */
typedef enum { FAULT_NONE, FAULT_ROUTER1, FAULT_ROUTER2_AND_GROUP } fault_t;

typedef struct {
    int moved;               /* FAILOVER events */
    uint64_t duplicates;     /* token events the library dropped */
    double worst_stall_ms;
    int per_router[CT_MAX_ROUTERS]; /* streams that got tokens from router k */
    int mid_stream;          /* streams with tokens from the killed router, unfinished when it died */
    int moved_with_tokens;   /* FAILOVER events after 1 or more tokens (resume_tokens sent) */
    uint32_t most_resumed;   /* the most tokens a moved stream had */
} figures_t;

/* Runs the 16 streams (ids TAG-i) to the end; injects the fault; fills out
 * and fig.  Returns the streams answered with a Reply. */
static int run_streams(fx_t *f, ifp_client_t *c, const char *tag, fault_t fault, stream_t *out, figures_t *fig) {
    memset(fig, 0, sizeof *fig);
    char ids[N_STREAMS][32];
    for (int i = 0; i < N_STREAMS; i++) {
        memset(&out[i], 0, sizeof out[i]);
        snprintf(ids[i], sizeof ids[i], "%s-%d", tag, i);
        Ifp__Request q = IFP__REQUEST__INIT;
        q.id = ids[i];
        q.prompt = (char *)f->prompt[i];
        q.max_tokens = N_TOKENS;
        q.temperature = 0.8f;
        q.top_p = 0.95f;
        q.top_k = 40;
        q.seed = 1000 + (uint64_t)i;
        q.stream = 1;
        q.ignore_eos = 1;
        q.mask_mode = IFP__MASK_MODE__MASK_INPUT;
        ifp_err_t err = {0};
        if (ifp_client_submit(c, &q, &out[i], &err)) fail_msg("submit %s: %s", ids[i], err.msg);
    }
    int finals = 0, injected = fault == FAULT_NONE;
    double end = ct_now_ms() + RUN_MS;
    while (finals < N_STREAMS && ct_now_ms() < end) {
        if (!injected) {
            /* once the router to kill has streams under way (3 of them, or
             * one when every stream has started): they die mid-stream */
            int streaming = 0, victim = fault == FAULT_ROUTER1 ? 0 : 1, mid = 0;
            for (int i = 0; i < N_STREAMS; i++) {
                streaming += out[i].n > 0;
                mid += !out[i].final && ((out[i].routers_seen >> victim) & 1);
            }
            if (mid >= 3 || (mid >= 1 && streaming == N_STREAMS)) {
                injected = 1;
                fig->mid_stream = mid;
                if (fault == FAULT_ROUTER1) {
                    assert_int_equal(kill(*ct_router_pid(f->cl, 0), SIGKILL), 0);
                } else {
                    pid_t ranks[4];
                    int c0 = ct_group_index(f->cl, "c0");
                    assert_int_equal(ct_rank_pids(f->cl, c0, ranks, 4), 1);
                    assert_int_equal(kill(*ct_router_pid(f->cl, 1), SIGKILL), 0);
                    assert_int_equal(kill(ranks[0], SIGKILL), 0);
                }
                int unfinished = 0;
                for (int i = 0; i < N_STREAMS; i++) unfinished += !out[i].final;
                fprintf(stderr, "  %s: fault injected with %d/%d streams started, %d unfinished\n", tag, streaming,
                        N_STREAMS, unfinished);
            }
        }
        ifp_client_event_t ev;
        int rc = ifp_client_poll(c, 20, &ev);
        assert_true(rc >= 0);
        if (rc == 0) continue;
        if (ev.kind == IFP_CLIENT_FAILOVER) {
            fig->moved++;
            fig->moved_with_tokens += ev.n_tokens > 0;
            if (ev.n_tokens > fig->most_resumed) fig->most_resumed = ev.n_tokens;
        }
        if (!ev.user) continue;
        stream_t *s = ev.user;
        switch (ev.kind) {
        case IFP_CLIENT_TOKEN: {
            const Ifp__TokenEvent *t = ev.msg->token;
            if ((int)t->index != s->n) s->bad++;
            if (s->n <= N_TOKENS) s->tokens[s->n] = t->token;
            s->n++;
            if (ev.router >= 0) s->routers_seen |= 1 << ev.router;
            if (t->text.len && s->text_len + t->text.len < sizeof s->text) { /* (a piece may be empty: data NULL) */
                memcpy(s->text + s->text_len, t->text.data, t->text.len);
                s->text_len += t->text.len;
            }
            break;
        }
        case IFP_CLIENT_REPLY: s->reply = ifp_client_event_take(c, &ev); break;
        case IFP_CLIENT_FAILED: s->failed = 1; fprintf(stderr, "  %s failed: %s\n", ev.id, ev.detail); break;
        case IFP_CLIENT_ERROR:
            fprintf(stderr, "  %s: router error %d: %s\n", ev.id, ev.msg->error->code, ev.msg->error->message);
            break;
        default: break;
        }
        if (ev.final) {
            s->final = 1;
            s->failovers = ev.failovers;
            s->stall_ms = ev.stall_ms;
            finals++;
        }
    }
    int replied = 0;
    for (int i = 0; i < N_STREAMS; i++) {
        replied += out[i].reply != NULL;
        if (out[i].stall_ms > fig->worst_stall_ms) fig->worst_stall_ms = out[i].stall_ms;
        for (int k = 0; k < CT_MAX_ROUTERS; k++) fig->per_router[k] += (out[i].routers_seen >> k) & 1;
    }
    ifp_client_stats_t st;
    ifp_client_stats(c, &st);
    fig->duplicates = st.duplicates;
    return replied;
}

/* Stream s is whole (0..n-1 once each, in order), its tokens and text are
 * its Reply's, and (ref non-NULL) its tokens are the reference's. */
static void check_stream(const char *what, int i, const stream_t *s, const stream_t *ref) {
    if (!s->reply) fail_msg("%s-%d: no Reply (lost)", what, i);
    const Ifp__Reply *r = s->reply->reply;
    assert_int_equal(s->bad, 0);
    assert_int_equal(r->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal((int)r->n_tokens, N_TOKENS);
    assert_int_equal(s->n, N_TOKENS);
    assert_memory_equal(s->tokens, r->tokens, N_TOKENS * sizeof(int32_t));
    assert_int_equal(s->text_len, r->text.len);
    assert_memory_equal(s->text, r->text.data, s->text_len);
    if (ref && memcmp(r->tokens, ref->reply->reply->tokens, N_TOKENS * sizeof(int32_t)))
        fail_msg("%s-%d: tokens differ from the fault-free run's", what, i);
}

static void print_figures(const char *what, const figures_t *g, const stream_t *s) {
    double stalls[N_STREAMS];
    int moved = 0;
    for (int i = 0; i < N_STREAMS; i++) stalls[i] = s[i].stall_ms, moved += s[i].failovers > 0;
    for (int i = 1; i < N_STREAMS; i++)
        for (int j = i; j > 0 && stalls[j] < stalls[j - 1]; j--) {
            double t = stalls[j];
            stalls[j] = stalls[j - 1];
            stalls[j - 1] = t;
        }
    fprintf(stderr, "  %s: %d/%d answered, 0 lost; %d requests moved (%d moves), %llu duplicate token events dropped; "
                    "longest stall per stream: median %.0f ms, worst %.0f ms; streams served by r1 %d, r2 %d; "
                    "%d streams were mid-stream on the killed router, %d moved with their tokens (up to %u)\n",
            what, N_STREAMS, N_STREAMS, moved, g->moved, (unsigned long long)g->duplicates, stalls[N_STREAMS / 2],
            g->worst_stall_ms, g->per_router[0], g->per_router[1], g->mid_stream, g->moved_with_tokens,
            g->most_resumed);
}

static void routers_fail_over(void **state) {
    fx_t *f = *state;
    ct_cluster_t *cl = f->cl;
    ifp_client_t *c = open_client(cl);
    assert_non_null(c);
    figures_t fig;
    stream_t run[N_STREAMS];

    /* 1. the reference: no fault; both routers take streams */
    assert_int_equal(run_streams(f, c, "ref", FAULT_NONE, f->ref, &fig), N_STREAMS);
    for (int i = 0; i < N_STREAMS; i++) check_stream("ref", i, &f->ref[i], NULL);
    print_figures("reference", &fig, f->ref);
    assert_true(fig.per_router[0] > 0 && fig.per_router[1] > 0);

    /* 2. kill -9 r1 mid-stream */
    assert_int_equal(run_streams(f, c, "r1dies", FAULT_ROUTER1, run, &fig), N_STREAMS);
    for (int i = 0; i < N_STREAMS; i++) check_stream("r1dies", i, &run[i], &f->ref[i]);
    print_figures("r1 killed", &fig, run);
    assert_true(fig.moved >= 1);
    assert_true(fig.moved_with_tokens >= fig.mid_stream); /* each resumed after its tokens, identical */
    assert_true(ct_alive(*ct_router_pid(cl, 1)));
    for (int i = 0; i < N_STREAMS; i++) stream_free(&run[i]);

    /* 3. r1 back: it takes new requests; then r2 and group c0 die at once */
    ct_stop_pgroup(ct_router_pid(cl, 0), SIGKILL, 0);
    ct_start_router_k(cl, 0);
    double end = ct_now_ms() + START_MS;
    while (!ifp_client_router_up(c, 0) && ct_now_ms() < end) {
        ifp_client_event_t ev;
        ifp_client_poll(c, 50, &ev);
    }
    assert_true(ifp_client_router_up(c, 0));
    assert_int_equal(run_streams(f, c, "both", FAULT_ROUTER2_AND_GROUP, run, &fig), N_STREAMS);
    for (int i = 0; i < N_STREAMS; i++) check_stream("both", i, &run[i], &f->ref[i]);
    print_figures("r2 and group c0 killed", &fig, run);
    assert_true(fig.moved_with_tokens >= fig.mid_stream);
    assert_true(fig.per_router[0] > 0); /* the restarted r1 served */
    assert_true(fig.moved >= 1);
    assert_true(ct_alive(*ct_router_pid(cl, 0)));
    for (int i = 0; i < N_STREAMS; i++) stream_free(&run[i]);

    /* 4. both routers loaded beyond the groups' slots: counted from the
     * groups' side (their log at stop), none ever held more than its slots */
    ct_stop_pgroup(ct_router_pid(cl, 1), SIGKILL, 0);
    ct_start_router_k(cl, 1);
    int c0 = ct_group_index(cl, "c0");
    ct_stop_pgroup(&cl->groups[c0].pid, SIGKILL, 0);
    ct_start_group(cl, c0);
    end = ct_now_ms() + START_MS;
    while (!(ifp_client_router_up(c, 0) && ifp_client_router_up(c, 1)) && ct_now_ms() < end) {
        ifp_client_event_t ev;
        ifp_client_poll(c, 50, &ev);
    }
    assert_true(ifp_client_router_up(c, 1));
    usleep(500000); /* c0 registers with both routers (a request meanwhile queues or goes to d) */
    enum { N_BURST = 60 };
    char ids[N_BURST][24];
    for (int i = 0; i < N_BURST; i++) {
        snprintf(ids[i], sizeof ids[i], "burst-%d", i);
        Ifp__Request q = IFP__REQUEST__INIT;
        q.id = ids[i];
        q.prompt = (char *)f->prompt[i % N_STREAMS];
        q.max_tokens = 48;
        q.temperature = 0.8f;
        q.seed = (uint64_t)i;
        q.ignore_eos = 1;
        ifp_err_t err = {0};
        assert_int_equal(ifp_client_submit(c, &q, NULL, &err), 0);
    }
    int replies = 0, finals = 0;
    end = ct_now_ms() + RUN_MS;
    while (finals < N_BURST && ct_now_ms() < end) {
        ifp_client_event_t ev;
        if (ifp_client_poll(c, 50, &ev) <= 0) continue;
        replies += ev.kind == IFP_CLIENT_REPLY;
        finals += ev.final;
    }
    assert_int_equal(replies, N_BURST);
    ifp_client_close(&c);
    int busy_total = 0;
    for (int g = 0; g < cl->n_groups; g++) {
        /* SIGTERM to the rank itself (mpirun, signalled, would SIGKILL it at once): it stops and logs */
        pid_t ranks[4];
        int n_ranks = ct_rank_pids(cl, g, ranks, 4);
        for (int k = 0; k < n_ranks; k++) kill(ranks[k], SIGTERM);
        for (int t = 0; t < 1000 && ct_alive(cl->groups[g].pid); t++) usleep(10000);
        ct_stop_pgroup(&cl->groups[g].pid, SIGKILL, 0);
        char *log = tu_read_file(cl->groups[g].log, NULL);
        assert_non_null(log);
        const char *last = NULL;
        for (const char *p = strstr(log, "stopped: "); p; p = strstr(p + 1, "stopped: "))
            if (strstr(p, "slots held at once") && (size_t)(strstr(p, "slots held at once") - p) < 200) last = p;
        if (!last) fail_msg("group %s: no stop line with the slots held in its log", cl->groups[g].name);
        int held = -1, slots = -1, refused = -1;
        const char *b = strstr(last, " refused as busy"), *h = strstr(last, "at most ");
        assert_non_null(b);
        assert_non_null(h);
        for (const char *q = b; q > last && q[-1] != ' ' ; q--) refused = atoi(q - 1);
        assert_int_equal(sscanf(h, "at most %d of %d slots held", &held, &slots), 2);
        fprintf(stderr, "  group %s: at most %d of %d slots held at once, %d Works refused as busy (since its last "
                        "start)\n", cl->groups[g].name, held, slots, refused);
        assert_true(held <= slots);
        busy_total += refused > 0 ? refused : 0;
        free(log);
    }
    fprintf(stderr, "  %d requests through both routers at once for %d slots: all answered; %d busy refusals\n",
            N_BURST, 24, busy_total);
    cl->ok = 1;
}

static int teardown(void **state) {
    fx_t *f = *state;
    if (!f) return 0;
    for (int i = 0; i < N_STREAMS; i++) stream_free(&f->ref[i]);
    ct_cluster_destroy(&f->cl);
    if (f->calib) tu_free_jsonl(f->calib, f->n_calib);
    free(f);
    return 0;
}

/* Up when both routers answer a request that lands on a group of each kind. */
static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    *state = f;
    f->calib = tu_read_jsonl(IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl", &f->n_calib);
    static const char *const domains[] = {"math", "story", "code", "qa", "instruct"};
    int n = 0, used[5] = {0};
    for (int round = 0; n < N_STREAMS && round < 8; round++)
        for (int d = 0; d < 5 && n < N_STREAMS; d++)
            for (int i = 0, seen = 0; i < f->n_calib; i++) {
                if (strcmp(cJSON_GetObjectItem(f->calib[i], "domain")->valuestring, domains[d])) continue;
                /* short prompts: prompt + 160 tokens fit the context of 256 */
                if (strlen(cJSON_GetObjectItem(f->calib[i], "prompt")->valuestring) > 200) continue;
                if (seen++ < used[d]) continue;
                f->prompt[n++] = cJSON_GetObjectItem(f->calib[i], "prompt")->valuestring;
                used[d]++;
                break;
            }
    if (n != N_STREAMS || access(CT_ROUTER_BIN, X_OK) || access(CT_SHARD_BIN, X_OK)) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    f->cl = ct_cluster_new_routers(2, "", GROUPS);
    if (!f->cl) return teardown(state), *state = NULL, -1;
    ct_start_all(f->cl);
    /* every group registered with both routers: each one's Pong lists 3 alive */
    double end = ct_now_ms() + START_MS;
    for (int k = 0; k < 2; k++) {
        int alive = 0;
        while (alive < 3 && ct_now_ms() < end) {
            char saved[192];
            snprintf(saved, sizeof saved, "%s", f->cl->frontend);
            snprintf(f->cl->frontend, sizeof f->cl->frontend, "%s", f->cl->rfront[k]);
            Ifp__ServerMessage *p = ct_ping(f->cl, 1000);
            snprintf(f->cl->frontend, sizeof f->cl->frontend, "%s", saved);
            alive = 0;
            for (size_t g = 0; p && g < p->pong->n_groups; g++) alive += p->pong->groups[g]->alive;
            if (p) ifp__server_message__free_unpacked(p, NULL);
            if (alive < 3) usleep(100000);
        }
        if (alive < 3) {
            fprintf(stderr, "router r%d does not see the 3 groups alive within %d ms\n", k + 1, START_MS);
            teardown(state);
            *state = NULL;
            return -1;
        }
    }
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(routers_fail_over, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
