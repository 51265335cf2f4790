/* test_shard_routers — one shard group serving two routers at once
 * (active-active: shard/routers.c).
 *
 * The test plays both routers: two ROUTER sockets bound on ipc:// (the
 * config's [router r1] and [router r2]), and a real `mpirun -np P
 * ifp-shard` connected to both.  Every message is checked as it arrives:
 * a heartbeat of router k lists only k's requests (running and finished)
 * and echoes k's own last Work (router_epoch, work_seen); tokens and work
 * errors for a request come only to the router that sent it, in order; no
 * heartbeat lists more requests than the group holds (slots - free_slots).
 *
 *   (a) P = 2: each router's heartbeats list only its rids and echo its own
 *       work_seen; free_slots is the group's true total (the other router's
 *       requests counted), and so are requests_done and tokens_generated;
 *       a CancelWork from the other router is ignored (the request
 *       completes with every token).
 *   (b) P = 1 and P = 2: both routers send more Work than the group has
 *       slots at once: the excess gets WorkError{busy}, "g0 is busy: 4 of 4
 *       slots taken"; every accepted request completes with its tokens at
 *       the router that sent it; the group never held more than its slots
 *       (its "stopped:" line and every heartbeat).
 *   (c) P = 2: router r1's socket closes with requests running: once the
 *       link has been down longer than liveness × heartbeat_ms the group
 *       cancels r1's requests (one log line naming r1's endpoint and the
 *       count), r2's work carries on and completes, and the freed slots
 *       take r2's new work without a busy refusal.
 *
 * Facts only (counts, ids, log lines); waits have generous deadlines that
 * only turn a hang into a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shard_testlib.h"

#define SLOTS 4
#define N_FR 2
#define MAX_RQ 64
#define LONG_NEW 250 /* ifp-mix's context is 256: a 2-token prompt and 250 tokens */

static const int32_t prompt2[2] = {1, 327};

/* One fake router. */
typedef struct {
    char endpoint[128];
    void *sock;
    char ident[64]; /* stage 0's routing id on this link */
    size_t ident_len;
    uint64_t epoch, work_seq;
    int heartbeats, busy, errors;
    /* the last heartbeat */
    int free_slots, slots, n_running;
    uint64_t running[MAX_RQ];
    uint64_t work_seen, echoed_epoch, requests_done, tokens_generated;
} fr_t;

typedef struct {
    uint64_t rid;
    int router;          /* the one that sent it */
    int max_new;
    int n, finish, error, busy;
    int fin_listed;      /* heartbeats (of its router) listing it as finished */
} rq_t;

typedef struct {
    char dir[64], cfg[128], log[128];
    void *zctx;
    fr_t fr[N_FR];
    rq_t rq[MAX_RQ];
    int n_rq;
    pid_t pid;
} mr_t;

/* The group's log so far, without echoing it. */
static int log_has(const mr_t *m, const char *needle) {
    char *text = tu_read_file(m->log, NULL);
    int yes = text && strstr(text, needle) != NULL;
    free(text);
    return yes;
}

static void mr_start(mr_t *m, int P) {
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "/tmp/ifp-shard-routers-XXXXXX");
    assert_non_null(mkdtemp(m->dir));
    snprintf(m->cfg, sizeof m->cfg, "%s/cluster.ini", m->dir);
    snprintf(m->log, sizeof m->log, "%s/shard.log", m->dir);
    m->zctx = zmq_ctx_new();
    FILE *f = fopen(m->cfg, "w");
    assert_non_null(f);
    /* a link down for liveness × heartbeat_ms = 50 ms loses its requests:
     * far less than the ~250 decode steps of a long request */
    fprintf(f, "[security]\ncurve = off\n[router]\nheartbeat_ms = 25\nliveness = 2\n");
    for (int k = 0; k < N_FR; k++) {
        fr_t *r = &m->fr[k];
        snprintf(r->endpoint, sizeof r->endpoint, "ipc://%s/backend%d", m->dir, k + 1);
        fprintf(f, "[router r%d]\nfrontend = ipc://%s/frontend%d\nbackend = %s\nhttp_listen = off\n", k + 1, m->dir,
                k + 1, r->endpoint);
        r->sock = zmq_socket(m->zctx, ZMQ_ROUTER);
        int one = 1;
        zmq_setsockopt(r->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
        assert_int_equal(zmq_bind(r->sock, r->endpoint), 0);
        r->epoch = 0xe90c0000ULL + 0x1111ULL * (uint64_t)(k + 1);
    }
    fprintf(f, "[model]\nmodel = %s\n[group g0]\nstages = %d\ncluster = dense\nslots = %d\nmax_batch = 48\n",
            MODEL_PATH("ifp-mix/ifp-mix.gguf"), P, SLOTS);
    fclose(f);
    snprintf(rig_live_log, sizeof rig_live_log, "%s", m->log);
    m->pid = rig_live_pid = spawn_shard(P, m->cfg, "g0", m->log);
}

static rq_t *find_rq(mr_t *m, uint64_t rid) {
    for (int i = 0; i < m->n_rq; i++)
        if (m->rq[i].rid == rid) return &m->rq[i];
    return NULL;
}

/* A heartbeat on router k: only k's requests, k's own last Work, never more
 * listed than the group holds. */
static void on_heartbeat(mr_t *m, int k, const Ifp__Heartbeat *hb) {
    fr_t *r = &m->fr[k];
    assert_string_equal(hb->group, "g0");
    assert_int_equal(hb->slots, SLOTS);
    assert_true(hb->free_slots <= SLOTS);
    assert_true(hb->n_running <= SLOTS - hb->free_slots);
    assert_true(hb->n_running <= MAX_RQ);
    for (size_t i = 0; i < hb->n_running; i++) {
        rq_t *q = find_rq(m, hb->running[i]);
        if (!q || q->router != k)
            fail_msg("router %d's heartbeat lists rid %llu, %s", k + 1, (unsigned long long)hb->running[i],
                     q ? "the other router's" : "never sent");
        r->running[i] = hb->running[i];
    }
    for (size_t i = 0; i < hb->n_finished; i++) {
        rq_t *q = find_rq(m, hb->finished[i]->rid);
        if (!q || q->router != k)
            fail_msg("router %d's heartbeat lists rid %llu as finished, %s", k + 1,
                     (unsigned long long)hb->finished[i]->rid, q ? "the other router's" : "never sent");
        q->fin_listed++;
    }
    /* the echo of this router's own last Work (0 before any) */
    if (hb->work_seen || hb->router_epoch) {
        assert_int_equal(hb->router_epoch, r->epoch);
        assert_true(hb->work_seen <= r->work_seq);
    }
    r->heartbeats++;
    r->free_slots = (int)hb->free_slots;
    r->slots = (int)hb->slots;
    r->n_running = (int)hb->n_running;
    r->work_seen = hb->work_seen;
    r->echoed_epoch = hb->router_epoch;
    r->requests_done = hb->requests_done;
    r->tokens_generated = hb->tokens_generated;
}

/* One message from router k's socket. */
static void on_message(mr_t *m, int k) {
    fr_t *r = &m->fr[k];
    ifp_frames_t f;
    assert_int_equal(ifp_wire_recv(r->sock, &f, 0), 2);
    size_t il = ifp_frame_size(&f, 0);
    int out = il >= 6 && !memcmp(ifp_frame_data(&f, 0), "g0.out", 6);
    assert_true(out || (il >= 3 && !memcmp(ifp_frame_data(&f, 0), "g0#", 3)));
    if (!out && il <= sizeof r->ident) {
        memcpy(r->ident, ifp_frame_data(&f, 0), il);
        r->ident_len = il;
    }
    Ifp__GroupToRouter *g = ifp_wire_group_msg(ifp_frame_data(&f, 1), ifp_frame_size(&f, 1));
    ifp_frames_close(&f);
    assert_non_null(g);
    if (g->msg_case == IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT) {
        assert_false(out);
        on_heartbeat(m, k, g->heartbeat);
    } else if (g->msg_case == IFP__GROUP_TO_ROUTER__MSG_TOKENS) {
        for (size_t i = 0; i < g->tokens->n_tokens; i++) {
            const Ifp__GroupToken *t = g->tokens->tokens[i];
            rq_t *q = find_rq(m, t->rid);
            if (!q || q->router != k)
                fail_msg("router %d got a token of rid %llu, %s", k + 1, (unsigned long long)t->rid,
                         q ? "the other router's" : "never sent");
            if (q->finish) continue; /* late tokens of a cancelled request */
            assert_int_equal(t->index, q->n); /* in order, no gap, no duplicate */
            q->n++;
            if (t->finish) q->finish = t->finish;
        }
    } else if (g->msg_case == IFP__GROUP_TO_ROUTER__MSG_ERROR) {
        rq_t *q = find_rq(m, g->error->rid);
        if (!q || q->router != k)
            fail_msg("router %d got a work error for rid %llu, %s", k + 1, (unsigned long long)g->error->rid,
                     q ? "the other router's" : "never sent");
        if (g->error->busy) {
            char want[64];
            snprintf(want, sizeof want, "group g0 is busy: %d of %d slots taken", SLOTS, SLOTS);
            assert_string_equal(g->error->message, want);
            q->busy = 1;
            r->busy++;
        } else {
            fprintf(stderr, "  work error for %llu: %s\n", (unsigned long long)q->rid, g->error->message);
            q->error = 1;
            r->errors++;
        }
    } else {
        fail_msg("unexpected message kind %d", (int)g->msg_case);
    }
    ifp__group_to_router__free_unpacked(g, NULL);
}

/* Handles what arrives on the open routers' sockets within timeout_ms;
 * returns the number of messages. */
static int mr_pump(mr_t *m, int timeout_ms) {
    zmq_pollitem_t it[N_FR];
    int idx[N_FR], n = 0, got = 0;
    for (int k = 0; k < N_FR; k++)
        if (m->fr[k].sock) {
            it[n] = (zmq_pollitem_t){.socket = m->fr[k].sock, .events = ZMQ_POLLIN};
            idx[n++] = k;
        }
    if (zmq_poll(it, n, timeout_ms) <= 0) return 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 64 && (it[i].revents & ZMQ_POLLIN); j++) {
            int ev = 0;
            size_t len = sizeof ev;
            zmq_getsockopt(m->fr[idx[i]].sock, ZMQ_EVENTS, &ev, &len);
            if (!(ev & ZMQ_POLLIN)) break;
            on_message(m, idx[i]);
            got++;
        }
    return got;
}

/* Pumps until router k has heartbeated `more` more times. */
static void mr_heartbeats(mr_t *m, int k, int more) {
    int want = m->fr[k].heartbeats + more;
    double until = now_ms() + 30000;
    while (m->fr[k].heartbeats < want && now_ms() < until) mr_pump(m, 100);
    assert_true(m->fr[k].heartbeats >= want);
}

static void mr_send(mr_t *m, int k, const Ifp__RouterToGroup *msg) {
    fr_t *r = &m->fr[k];
    assert_true(r->ident_len > 0); /* stage 0 has heartbeated on this link */
    size_t len = ifp__router_to_group__get_packed_size(msg);
    uint8_t *buf = malloc(len + 1);
    ifp__router_to_group__pack(msg, buf);
    assert_int_equal(zmq_send(r->sock, r->ident, r->ident_len, ZMQ_SNDMORE), (int)r->ident_len);
    assert_int_equal(zmq_send(r->sock, buf, len, 0), (int)len);
    free(buf);
}

static rq_t *mr_work(mr_t *m, int k, uint64_t rid, int max_new) {
    fr_t *r = &m->fr[k];
    Ifp__Work w = IFP__WORK__INIT;
    w.rid = rid;
    w.n_prompt = 2;
    w.prompt = (int32_t *)prompt2;
    w.max_new = (uint32_t)max_new;
    w.eos = -1;
    w.router_epoch = r->epoch;
    w.seq = ++r->work_seq;
    Ifp__RouterToGroup msg = IFP__ROUTER_TO_GROUP__INIT;
    msg.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
    msg.work = &w;
    assert_true(m->n_rq < MAX_RQ);
    rq_t *q = &m->rq[m->n_rq++];
    *q = (rq_t){.rid = rid, .router = k, .max_new = max_new};
    mr_send(m, k, &msg);
    return q;
}

static void mr_cancel(mr_t *m, int k, uint64_t rid) {
    Ifp__CancelWork c = IFP__CANCEL_WORK__INIT;
    c.rid = rid;
    Ifp__RouterToGroup msg = IFP__ROUTER_TO_GROUP__INIT;
    msg.msg_case = IFP__ROUTER_TO_GROUP__MSG_CANCEL;
    msg.cancel = &c;
    mr_send(m, k, &msg);
}

/* Pumps until every request of router k (k < 0: of both) that was not
 * refused has finished. */
static void mr_wait_done(mr_t *m, int k) {
    double until = now_ms() + 60000;
    for (;;) {
        int open = 0;
        for (int i = 0; i < m->n_rq; i++) {
            const rq_t *q = &m->rq[i];
            open += (k < 0 || q->router == k) && !q->finish && !q->error && !q->busy;
        }
        if (!open) return;
        if (now_ms() > until) fail_msg("%d requests unfinished", open);
        mr_pump(m, 100);
    }
}

/* The group's "at most N of S slots held at once" (-1 if not logged). */
static int held_max(const char *log) {
    const char *p = strstr(log, "slots held at once");
    if (!p) return -1;
    while (p > log && p[-1] != ',') p--;
    int n = -1, s = -1;
    if (sscanf(p, " at most %d of %d", &n, &s) != 2 || s != SLOTS) return -1;
    return n;
}

/* SHUTDOWN from router k; the job exits 0.  Returns the "at most N held". */
static int mr_stop(mr_t *m, int k) {
    Ifp__Control c = IFP__CONTROL__INIT;
    c.kind = IFP__CONTROL__KIND__SHUTDOWN;
    Ifp__RouterToGroup msg = IFP__ROUTER_TO_GROUP__INIT;
    msg.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    msg.control = &c;
    mr_send(m, k, &msg);
    double until = now_ms() + 20000;
    int status = -1;
    pid_t got = 0;
    while ((got = waitpid(m->pid, &status, WNOHANG)) == 0 && now_ms() < until) mr_pump(m, 50);
    if (got == 0) {
        kill(-m->pid, SIGKILL);
        waitpid(m->pid, &status, 0);
    }
    rig_live_pid = 0;
    const char *log = read_log(m->log);
    assert_true(got != 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    int n = held_max(log);
    assert_true(n >= 0);
    return n;
}

static void mr_close(mr_t *m) {
    char path[160];
    for (int k = 0; k < N_FR; k++) {
        if (m->fr[k].sock) zmq_close(m->fr[k].sock);
        snprintf(path, sizeof path, "%s/backend%d", m->dir, k + 1);
        unlink(path);
    }
    zmq_ctx_term(m->zctx);
    unlink(m->cfg);
    unlink(m->log);
    rmdir(m->dir);
}

/* Both links up: stage 0 heartbeated on each. */
static void mr_wait_links(mr_t *m) {
    for (int k = 0; k < N_FR; k++) mr_heartbeats(m, k, 1);
    /* the rank's stderr reaches the log through mpirun: it may lag the heartbeats */
    double until = now_ms() + 20000;
    while (!log_has(m, "serving 2 routers: ") && now_ms() < until) mr_pump(m, 50);
    assert_true(log_has(m, "serving 2 routers: "));
}

/* ---------------------------------------------------------------- (a) */

static void heartbeats_per_router(void **unused) {
    (void)unused;
    mr_t m;
    mr_start(&m, 2);
    mr_wait_links(&m);
    for (int k = 0; k < N_FR; k++) {
        assert_int_equal(m.fr[k].work_seen, 0); /* nothing received yet */
        assert_int_equal(m.fr[k].free_slots, SLOTS);
    }
    /* r1: two long requests (Work 1, 2); r2: one (Work 1) */
    rq_t *a1 = mr_work(&m, 0, 1001, LONG_NEW), *a2 = mr_work(&m, 0, 1002, LONG_NEW);
    rq_t *b1 = mr_work(&m, 1, 2001, LONG_NEW);
    /* each router's heartbeat: its own requests only, its own echo, and
     * the group's true free slots (the other router's request counted) */
    double until = now_ms() + 30000;
    int seen[N_FR] = {0};
    while (!(seen[0] && seen[1])) {
        if (now_ms() > until) fail_msg("no heartbeat showed the three requests running");
        if (a1->finish || a2->finish || b1->finish) fail_msg("a request of %d tokens finished first", LONG_NEW);
        mr_pump(&m, 100);
        for (int k = 0; k < N_FR; k++) {
            fr_t *r = &m.fr[k];
            int want = k == 0 ? 2 : 1;
            if (r->n_running == want && r->free_slots == SLOTS - 3 && r->work_seen == r->work_seq) seen[k] = 1;
        }
    }
    assert_int_equal(m.fr[0].work_seen, 2);
    assert_int_equal(m.fr[0].echoed_epoch, m.fr[0].epoch);
    assert_int_equal(m.fr[1].work_seen, 1);
    assert_int_equal(m.fr[1].echoed_epoch, m.fr[1].epoch);
    /* r2 cancels r1's request: not its own, ignored.  r2 then sends its
     * Work 2: once r2's heartbeat echoes it, the cancel was read (one
     * connection keeps order); r1's echo stays at its own 2 */
    mr_cancel(&m, 1, 1001);
    rq_t *b2 = mr_work(&m, 1, 2002, 8);
    until = now_ms() + 30000;
    while (m.fr[1].work_seen != 2 && now_ms() < until) mr_pump(&m, 100);
    assert_int_equal(m.fr[1].work_seen, 2);
    mr_heartbeats(&m, 0, 2);
    assert_int_equal(m.fr[0].work_seen, 2);
    mr_wait_done(&m, -1);
    /* r1's request ran to its end despite r2's cancel; every request got
     * all its tokens at its own router, and went out as finished there */
    assert_int_equal(a1->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal(a1->n, LONG_NEW);
    assert_int_equal(a2->n, LONG_NEW);
    assert_int_equal(b1->n, LONG_NEW);
    assert_int_equal(b2->n, 8);
    for (int k = 0; k < N_FR; k++) mr_heartbeats(&m, k, 2);
    assert_true(a1->fin_listed > 0 && a2->fin_listed > 0 && b1->fin_listed > 0 && b2->fin_listed > 0);
    for (int k = 0; k < N_FR; k++) {
        assert_int_equal(m.fr[k].free_slots, SLOTS);
        assert_int_equal(m.fr[k].n_running, 0);
        assert_int_equal(m.fr[k].requests_done, 4); /* group-wide */
        assert_int_equal(m.fr[k].tokens_generated, 3 * LONG_NEW + 8);
        assert_int_equal(m.fr[k].busy, 0);
    }
    int held = mr_stop(&m, 0);
    fprintf(stderr, "  P=2, two routers: heartbeats per router, echoes per router, totals group-wide; at most %d of %d "
                    "slots held\n", held, SLOTS);
    assert_true(held >= 3 && held <= SLOTS); /* three seen at once; b2 may have joined them */
    mr_close(&m);
}

/* ---------------------------------------------------------------- (b) */

static void oversubscribed(int P) {
    enum { PER = 6, NEW = 100 };
    mr_t m;
    mr_start(&m, P);
    mr_wait_links(&m);
    /* 12 Works at once, interleaved, for 4 slots */
    for (int i = 0; i < PER; i++)
        for (int k = 0; k < N_FR; k++) mr_work(&m, k, (uint64_t)(k + 1) * 1000 + (uint64_t)i, NEW);
    mr_wait_done(&m, -1);
    int accepted = 0, busy = 0;
    for (int i = 0; i < m.n_rq; i++) {
        const rq_t *q = &m.rq[i];
        assert_false(q->error);
        if (q->busy) {
            busy++;
            assert_int_equal(q->n, 0);
            continue;
        }
        accepted++;
        assert_int_equal(q->n, NEW); /* every token, in order, at the router that sent it */
        assert_int_equal(q->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    }
    assert_int_equal(accepted + busy, 2 * PER);
    assert_true(accepted >= SLOTS);
    assert_true(busy >= 1);
    assert_int_equal(m.fr[0].busy + m.fr[1].busy, busy);
    for (int k = 0; k < N_FR; k++) mr_heartbeats(&m, k, 2);
    for (int k = 0; k < N_FR; k++) {
        assert_int_equal(m.fr[k].free_slots, SLOTS);
        assert_int_equal(m.fr[k].work_seen, PER); /* the refused Work counted too */
        assert_int_equal(m.fr[k].requests_done, (uint64_t)accepted);
    }
    int held = mr_stop(&m, 1);
    fprintf(stderr, "  P=%d, two routers, %d Works for %d slots: %d accepted (r1 %d refused, r2 %d), at most %d held "
                    "at once\n", P, 2 * PER, SLOTS, accepted, m.fr[0].busy, m.fr[1].busy, held);
    assert_int_equal(held, SLOTS); /* full when it refused; never beyond */
    mr_close(&m);
}

static void oversubscribed_p1(void **unused) {
    (void)unused;
    oversubscribed(1);
}

static void oversubscribed_p2(void **unused) {
    (void)unused;
    oversubscribed(2);
}

/* ---------------------------------------------------------------- (c) */

static void router_goes_away(void **unused) {
    (void)unused;
    mr_t m;
    mr_start(&m, 2);
    mr_wait_links(&m);
    rq_t *a[2], *b[2];
    for (int i = 0; i < 2; i++) {
        a[i] = mr_work(&m, 0, 1001 + (uint64_t)i, LONG_NEW);
        b[i] = mr_work(&m, 1, 2001 + (uint64_t)i, LONG_NEW);
    }
    double until = now_ms() + 30000;
    while (!(a[0]->n && a[1]->n && b[0]->n && b[1]->n) && now_ms() < until) mr_pump(&m, 100);
    assert_true(a[0]->n && a[1]->n && b[0]->n && b[1]->n); /* all four streaming */
    assert_true(!a[0]->finish && !a[1]->finish);
    /* r1 goes away (its socket closed, its ipc file gone: no reconnection) */
    zmq_close(m.fr[0].sock);
    m.fr[0].sock = NULL;
    char want[256];
    snprintf(want, sizeof want, "the router at %s is gone: disconnected for ", m.fr[0].endpoint);
    until = now_ms() + 30000;
    while (!log_has(&m, want) && now_ms() < until) mr_pump(&m, 50);
    assert_true(log_has(&m, want));
    assert_true(log_has(&m, "(more than liveness x heartbeat_ms = 50 ms); cancelled its 2 requests"));
    /* its slots are free for r2: two more Works fit beside r2's two */
    rq_t *c[2];
    for (int i = 0; i < 2; i++) c[i] = mr_work(&m, 1, 2101 + (uint64_t)i, 20);
    mr_wait_done(&m, 1);
    for (int i = 0; i < 2; i++) {
        assert_false(c[i]->busy);
        assert_int_equal(c[i]->n, 20);
        assert_int_equal(b[i]->n, LONG_NEW); /* r2's work went on to its end */
        assert_int_equal(b[i]->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    }
    mr_heartbeats(&m, 1, 2);
    assert_int_equal(m.fr[1].free_slots, SLOTS);
    assert_int_equal(m.fr[1].n_running, 0);
    assert_int_equal(m.fr[1].requests_done, 4); /* r2's four; r1's two were cancelled, not done */
    assert_int_equal(m.fr[1].busy, 0);
    int held = mr_stop(&m, 1);
    assert_true(log_has(&m, "2 requests cancelled as their router left"));
    fprintf(stderr, "  P=2: r1 gone with 2 requests: cancelled; r2's 4 requests complete; at most %d held\n", held);
    assert_true(held <= SLOTS);
    mr_close(&m);
}

static int reap(void **unused) {
    (void)unused;
    rig_reap();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(heartbeats_per_router, reap),
        cmocka_unit_test_teardown(oversubscribed_p1, reap),
        cmocka_unit_test_teardown(oversubscribed_p2, reap),
        cmocka_unit_test_teardown(router_goes_away, reap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
