/* test_security — CURVE on every ZeroMQ link, against a real cluster
 * (ifp-router, two shard groups as mpirun jobs, keys made by
 * `ifp keygen --config` as deploy/local.sh makes them).
 *
 * rogue_groups: while clients' requests run, four rogues connect to the
 * backend as group g0 ("g0" / "g0.out" routing ids) and send heartbeats that
 * offer free slots and token batches: one with no key (plain ZeroMQ), one
 * with a key nobody listed, one with the local client's key (admitted on the
 * frontend only), one with group g1's key.  None may receive a single
 * message (no Work), none may inject a token: every answer equals the
 * reference run's, no replay, no death; the router counts the refused
 * handshakes and the forged messages.
 *
 * clients: a client with no key and one with an unknown key are refused at
 * the handshake and `ifp client` says so (not after its timeout); a key
 * readable by others is refused; the listed key works; a [client NAME] key
 * with max_inflight = 2 gets ERR_OVERLOADED for its third request at once.
 *
 * reconnects: 100 connections of group "spare" with its own key, each
 * heartbeating once: the router's open files do not grow.  Then g1 is
 * killed and restarted with its own key: it takes its name back (alive,
 * a new incarnation) and serves requests.
 *
 * plain_warns: a router with [security] curve = off says so at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster_testlib.h"
#include "config.h"
#include "keys.h"
#include "testutil.h"

#define N_REQ 6
#define START_MS 60000

typedef struct {
    ct_cluster_t *cl;
    char backend[200];
    ifp_keypair_t limited; /* the [client limited] pair (max_inflight = 2) */
    ct_req_t ref[N_REQ];
} fx_t;

static const char *const PROMPTS[N_REQ] = {
    "What is 12 times 7?", "Write a short story about a cat.", "Name the capital of France.",
    "Explain photosynthesis in one sentence.", "def add(a, b):", "List three prime numbers.",
};

static ct_params_t params(int i) {
    ct_params_t p = {.prompt = PROMPTS[i], .max_tokens = 24, .temperature = 0.8f, .top_p = 0.95f, .top_k = 40,
                     .seed = 77 + (uint64_t)i, .mode = IFP__MASK_MODE__MASK_INPUT, .ignore_eos = 1};
    return p;
}

/* Waits until the router reports n groups alive. */
static int wait_alive(ct_cluster_t *cl, int n, int timeout_ms) {
    double end = ct_now_ms() + timeout_ms;
    while (ct_now_ms() < end) {
        Ifp__ServerMessage *p = ct_ping(cl, 2000);
        int alive = 0;
        for (size_t i = 0; p && i < p->pong->n_groups; i++) alive += p->pong->groups[i]->alive;
        if (p) ifp__server_message__free_unpacked(p, NULL);
        if (alive >= n) return 0;
        usleep(200000);
    }
    return -1;
}

static const Ifp__GroupStatus *group_status(const Ifp__ServerMessage *p, const char *name) {
    for (size_t i = 0; p && i < p->pong->n_groups; i++)
        if (!strcmp(p->pong->groups[i]->name, name)) return p->pong->groups[i];
    return NULL;
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    ifp_err_t err = {0};
    if (!f || ifp_key_generate(&f->limited, &err)) return -1;
    char groups[1024];
    /* spare is configured (it has keys) but never started: the reconnect
     * test plays it */
    snprintf(groups, sizeof groups,
             "[group g0]\nstages = 2\ncluster = dense\nslots = 8\n\n"
             "[group g1]\nstages = 1\ncluster = dense\nslots = 8\n\n"
             "[group spare]\nstages = 1\ncluster = dense\nslots = 8\n\n"
             "[client limited]\nkey = %s\nmax_inflight = 2\n",
             f->limited.pub);
    f->cl = ct_cluster_new("balance_abs = 1000000\n", groups);
    if (!f->cl) return -1;
    f->cl->n_groups = 2; /* ct starts and stops g0 and g1 only */
    snprintf(f->backend, sizeof f->backend, "ipc://%s/be", f->cl->dir);
    ct_start_router(f->cl);
    ct_start_group(f->cl, 0);
    ct_start_group(f->cl, 1);
    if (wait_alive(f->cl, 2, START_MS)) {
        fprintf(stderr, "the groups did not come up\n");
        ct_cluster_destroy(&f->cl);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    for (int i = 0; i < N_REQ; i++) ct_req_free(&f->ref[i]);
    ct_cluster_destroy(&f->cl);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- rogues */

typedef struct {
    const char *what;
    void *in, *out; /* posing as stage 0 ("g0...") and as the last stage ("g0.out...") */
    int received;
} rogue_t;

/* A DEALER to the backend with routing id ident: plain when kp is NULL,
 * else a CURVE client with kp (and the router's real public key). */
static void *rogue_socket(fx_t *f, const char *ident, const ifp_keypair_t *kp) {
    ifp_curve_t c = {0};
    ifp_err_t err = {0};
    if (kp) {
        char base[600], pub[620];
        ifp_key_base(f->cl->keys, "router", NULL, base, sizeof base);
        snprintf(pub, sizeof pub, "%s.pub", base);
        int n;
        char keys[1][IFP_Z85_KEY];
        assert_int_equal(ifp_key_read_public(pub, keys, 1, &n, &err), 0);
        memcpy(c.server_pub, keys[0], IFP_Z85_KEY);
        c.me = *kp;
        c.on = 1;
    }
    void *s = zmq_socket(f->cl->zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, ident, strlen(ident));
    assert_int_equal(ifp_curve_client(s, &c, &err), 0);
    assert_int_equal(zmq_connect(s, f->backend), 0);
    return s;
}

/* never blocks: a rogue that could not connect has no peer to queue for */
static void rogue_send(void *s, const ProtobufCMessage *m) { ifp_wire_send_flags(s, NULL, NULL, 0, m, ZMQ_DONTWAIT); }

/* A heartbeat of g0 offering 8 free slots, and a token batch for rids the
 * router may be running (ids are the router's: a rogue can only guess). */
static void rogue_beat(rogue_t *r, uint64_t rid_guess) {
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = "g0";
    hb.cluster = IFP_CLUSTER_DENSE;
    hb.stages = 1;
    hb.slots = 8;
    hb.free_slots = 8;
    hb.incarnation = 424242;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    rogue_send(r->in, &m.base);
    Ifp__GroupToken t[4], *tp[4];
    for (int k = 0; k < 4; k++) {
        ifp__group_token__init(&t[k]);
        t[k].rid = rid_guess + (uint64_t)k;
        t[k].token = 65;
        t[k].index = 0;
        tp[k] = &t[k];
    }
    Ifp__TokenBatch b = IFP__TOKEN_BATCH__INIT;
    b.group = "g0";
    b.n_tokens = 4;
    b.tokens = tp;
    Ifp__GroupToRouter mt = IFP__GROUP_TO_ROUTER__INIT;
    mt.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
    mt.tokens = &b;
    rogue_send(r->out, &mt.base);
    rogue_send(r->in, &mt.base);
}

static void rogue_drain(rogue_t *r) {
    void *socks[2] = {r->in, r->out};
    for (int k = 0; k < 2; k++)
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, socks[k], ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            r->received++;
            zmq_msg_close(&m);
        }
}

static void run_requests(fx_t *f, ct_req_t *reqs, const char *tag, rogue_t *rogues, int n_rogues) {
    void *sock = ct_client(f->cl);
    assert_non_null(sock);
    for (int i = 0; i < N_REQ; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", tag, i);
        ct_params_t p = params(i);
        assert_int_equal(ct_send(sock, &reqs[i], id, &p), 0);
    }
    double end = ct_now_ms() + 120000;
    uint64_t guess = (uint64_t)time(NULL) * 1000000000ull; /* near the router's rid base (wall clock, µs x 1000) */
    int done = 0;
    for (int k = 0; done < N_REQ && ct_now_ms() < end; k++) {
        done = ct_pump(sock, reqs, N_REQ, 50);
        for (int r = 0; r < n_rogues; r++) {
            rogue_beat(&rogues[r], guess + (uint64_t)k * 4);
            rogue_drain(&rogues[r]);
        }
    }
    assert_int_equal(done, N_REQ);
    zmq_close(sock);
}

static void same_answer(const ct_req_t *got, const ct_req_t *want) {
    const Ifp__Reply *g = ct_reply(got), *w = ct_reply(want);
    assert_non_null(g);
    assert_non_null(w);
    assert_int_equal(g->n_tokens, w->n_tokens);
    for (size_t k = 0; k < g->n_tokens; k++) assert_int_equal(g->tokens[k], w->tokens[k]);
    assert_int_equal(g->text.len, w->text.len);
    assert_memory_equal(g->text.data, w->text.data, g->text.len);
    assert_int_equal((int)g->n_replays, 0);
}

static void rogue_groups(void **state) {
    fx_t *f = *state;
    ifp_err_t err = {0};
    /* the reference: no rogue */
    run_requests(f, f->ref, "ref", NULL, 0);
    Ifp__ServerMessage *p0 = ct_ping(f->cl, 5000);
    assert_non_null(p0);

    ifp_keypair_t stranger, client, g1;
    char base[600], path[620];
    assert_int_equal(ifp_key_generate(&stranger, &err), 0);
    ifp_key_base(f->cl->keys, "local", NULL, base, sizeof base);
    snprintf(path, sizeof path, "%s.key", base);
    assert_int_equal(ifp_key_read_secret(path, &client, &err), 0);
    ifp_key_base(f->cl->keys, "group", "g1", base, sizeof base);
    snprintf(path, sizeof path, "%s.key", base);
    assert_int_equal(ifp_key_read_secret(path, &g1, &err), 0);
    rogue_t rogues[4] = {
        {"no key", rogue_socket(f, "g0", NULL), rogue_socket(f, "g0.out", NULL), 0},
        {"an unlisted key", rogue_socket(f, "g0#0000000000000001", &stranger),
         rogue_socket(f, "g0.out#0000000000000001", &stranger), 0},
        {"the client key", rogue_socket(f, "g0#0000000000000002", &client),
         rogue_socket(f, "g0.out#0000000000000002", &client), 0},
        {"group g1's key", rogue_socket(f, "g0#0000000000000003", &g1), rogue_socket(f, "g0.out#0000000000000003", &g1),
         0},
    };
    usleep(300000); /* the handshakes (refused or not) are done */
    ct_req_t run[N_REQ];
    run_requests(f, run, "run", rogues, 4);
    usleep(300000);
    for (int r = 0; r < 4; r++) {
        rogue_drain(&rogues[r]);
        fprintf(stderr, "  rogue with %s: %d messages received\n", rogues[r].what, rogues[r].received);
        assert_int_equal(rogues[r].received, 0);
        zmq_close(rogues[r].in);
        zmq_close(rogues[r].out);
    }
    for (int i = 0; i < N_REQ; i++) {
        same_answer(&run[i], &f->ref[i]);
        ct_req_free(&run[i]);
    }
    Ifp__ServerMessage *p1 = ct_ping(f->cl, 5000);
    assert_non_null(p1);
    long long refused = ct_counter(p1, "auth_refused") - ct_counter(p0, "auth_refused");
    long long forged = ct_counter(p1, "group_forged") - ct_counter(p0, "group_forged");
    fprintf(stderr, "  router: %lld handshakes refused, %lld forged messages dropped, replays %lld, deaths %lld\n",
            refused, forged, ct_counter(p1, "replays"), ct_counter(p1, "group_deaths"));
    assert_true(refused >= 4); /* the unlisted key and the client key, as g0 and g0.out */
    assert_true(forged >= 2);  /* g1's key posing as g0 */
    assert_int_equal(ct_counter(p1, "replays"), 0);
    assert_int_equal(ct_counter(p1, "group_deaths"), 0);
    assert_int_equal(ct_counter(p1, "tok_unknown") > ct_counter(p0, "tok_unknown"), 0); /* no forged token got in */
    const Ifp__GroupStatus *g0 = group_status(p1, "g0");
    assert_non_null(g0);
    assert_true(g0->alive);
    assert_true(g0->incarnation != 424242);
    ifp__server_message__free_unpacked(p0, NULL);
    ifp__server_message__free_unpacked(p1, NULL);
    memset(&client, 0, sizeof client);
    memset(&g1, 0, sizeof g1);
}

/* ---------------------------------------------------------------- clients */

static int run_client(fx_t *f, const char *const *extra, char **out, char **err, double *ms) {
    const char *argv[24] = {CT_IFP_BIN, "client", "--router", f->cl->frontend, "--prompt", "Hello", "-n", "4",
                            "--timeout-ms", "60000"};
    int n = 10;
    for (int i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    double t0 = ct_now_ms();
    int rc = ct_run(argv, out, err);
    *ms = ct_now_ms() - t0;
    return rc;
}

static void clients(void **state) {
    fx_t *f = *state;
    char *out, *err, path[620], base[600];
    double ms;
    /* the listed key (the deployment's client key, found through IFP_KEYS) */
    assert_int_equal(run_client(f, NULL, &out, &err, &ms), 0);
    free(out), free(err);
    /* no key */
    const char *plain[] = {"--plain", NULL};
    int rc = run_client(f, plain, &out, &err, &ms);
    fprintf(stderr, "  no key: exit %d after %.0f ms: %s", rc, ms, err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "requires CURVE"));
    free(out), free(err);
    /* an unknown key */
    ifp_keypair_t kp;
    ifp_err_t e = {0};
    snprintf(base, sizeof base, "%s/stranger", f->cl->dir);
    assert_int_equal(ifp_key_generate(&kp, &e), 0);
    assert_int_equal(ifp_key_write_pair(base, &kp, "a stranger", 0, &e), 0);
    snprintf(path, sizeof path, "%s.key", base);
    const char *unknown[] = {"--key", path, NULL};
    rc = run_client(f, unknown, &out, &err, &ms);
    fprintf(stderr, "  unknown key: exit %d after %.0f ms: %s", rc, ms, err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "refused this client's key"));
    free(out), free(err);
    /* a secret key others may read */
    chmod(path, 0644);
    rc = run_client(f, unknown, &out, &err, &ms);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "mode 0644"));
    free(out), free(err);

    /* max_inflight = 2 for the key of [client limited]: 5 at once */
    ifp_curve_t c = {0};
    char pub[620];
    int nk;
    char keys[1][IFP_Z85_KEY];
    ifp_key_base(f->cl->keys, "router", NULL, base, sizeof base);
    snprintf(pub, sizeof pub, "%s.pub", base);
    assert_int_equal(ifp_key_read_public(pub, keys, 1, &nk, &e), 0);
    memcpy(c.server_pub, keys[0], IFP_Z85_KEY);
    c.me = f->limited;
    c.on = 1;
    void *s = ifp_client_connect(f->cl->zctx, f->cl->frontend, &c, NULL, &e);
    assert_non_null(s);
    ct_req_t reqs[5];
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "lim-%d", i);
        ct_params_t p = params(i);
        p.max_tokens = 64;
        assert_int_equal(ct_send(s, &reqs[i], id, &p), 0);
    }
    assert_int_equal(ct_wait_all(s, reqs, 5, 120000), 5);
    int ok = 0, limited = 0;
    for (int i = 0; i < 5; i++) {
        if (ct_reply(&reqs[i])) ok++;
        else if (reqs[i].answer->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR &&
                 reqs[i].answer->error->code == IFP__ERROR_CODE__ERR_OVERLOADED &&
                 strstr(reqs[i].answer->error->message, "max_inflight"))
            limited++;
        ct_req_free(&reqs[i]);
    }
    fprintf(stderr, "  client 'limited' (max_inflight 2), 5 at once: %d answered, %d overloaded\n", ok, limited);
    assert_int_equal(ok, 2);
    assert_int_equal(limited, 3);
    zmq_close(s);
}

/* ---------------------------------------------------------------- reload */

/* Rotation as docs/SECURITY.md tells it: a key added to KEYS/clients and a
 * SIGHUP admit it; removed and SIGHUP again, it is refused at once, on the
 * connection it already has too. */
static void reload(void **state) {
    fx_t *f = *state;
    ifp_err_t e = {0};
    ifp_keypair_t kp;
    char base[600], pub[620], admitted[620];
    snprintf(base, sizeof base, "%s/newcomer", f->cl->dir);
    assert_int_equal(ifp_key_generate(&kp, &e), 0);
    assert_int_equal(ifp_key_write_pair(base, &kp, "a newcomer", 0, &e), 0);
    snprintf(pub, sizeof pub, "%s.pub", base);
    snprintf(admitted, sizeof admitted, "%s/clients/newcomer.pub", f->cl->keys);
    ifp_curve_t c = {0};
    char rbase[600], rpub[620];
    ifp_key_base(f->cl->keys, "router", NULL, rbase, sizeof rbase);
    snprintf(rpub, sizeof rpub, "%s.pub", rbase);
    snprintf(base, sizeof base, "%s/newcomer.key", f->cl->dir);
    assert_int_equal(ifp_curve_client_load(NULL, base, rpub, 0, &c, &e), 0);

    /* admitted after the reload */
    assert_int_equal(link(pub, admitted), 0);
    Ifp__ServerMessage *p0 = ct_ping(f->cl, 5000);
    kill(f->cl->router, SIGHUP);
    void *s = NULL;
    ct_req_t r;
    int served = 0;
    for (double end = ct_now_ms() + 20000; !served && ct_now_ms() < end;) {
        s = ifp_client_connect(f->cl->zctx, f->cl->frontend, &c, NULL, &e);
        ct_params_t p = params(0);
        p.max_tokens = 2;
        assert_int_equal(ct_send(s, &r, "new-0", &p), 0);
        served = ct_wait_all(s, &r, 1, 1000) == 1 && ct_reply(&r);
        ct_req_free(&r);
        if (!served) zmq_close(s), s = NULL;
    }
    assert_true(served);
    /* removed: the open connection is refused from the next message on */
    assert_int_equal(unlink(admitted), 0);
    kill(f->cl->router, SIGHUP);
    int refused = 0;
    for (double end = ct_now_ms() + 20000; !refused && ct_now_ms() < end;) {
        ct_params_t p = params(0);
        p.max_tokens = 2;
        assert_int_equal(ct_send(s, &r, "new-1", &p), 0);
        ct_wait_all(s, &r, 1, 1000);
        refused = r.answer && r.answer->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR &&
                  r.answer->error->code == IFP__ERROR_CODE__ERR_UNAUTHORIZED;
        ct_req_free(&r);
    }
    fprintf(stderr, "  a key added + SIGHUP: served; removed + SIGHUP: %s on its open connection\n",
            refused ? "ERR_UNAUTHORIZED" : "still served");
    assert_true(refused);
    zmq_close(s);
    ifp__server_message__free_unpacked(p0, NULL);
}

/* ---------------------------------------------------------------- reconnects */

static int open_files(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void reconnects(void **state) {
    fx_t *f = *state;
    ifp_err_t e = {0};
    char base[600], path[620], pub[620];
    ifp_key_base(f->cl->keys, "group", "spare", base, sizeof base);
    snprintf(path, sizeof path, "%s.key", base);
    ifp_curve_t c = {0};
    ifp_key_base(f->cl->keys, "router", NULL, base, sizeof base);
    snprintf(pub, sizeof pub, "%s.pub", base);
    assert_int_equal(ifp_curve_client_load(f->cl->keys, path, pub, 0, &c, &e), 0);
    int before = open_files(f->cl->router), connected = 0;
    for (int i = 0; i < 100; i++) {
        char ident[64];
        snprintf(ident, sizeof ident, "spare#%016x", i + 1);
        void *s = zmq_socket(f->cl->zctx, ZMQ_DEALER);
        int linger = 200;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(s, ZMQ_ROUTING_ID, ident, strlen(ident));
        assert_int_equal(ifp_curve_client(s, &c, &e), 0);
        ifp_handshake_t h;
        assert_int_equal(ifp_handshake_watch(f->cl->zctx, s, &h, &e), 0);
        assert_int_equal(zmq_connect(s, f->backend), 0);
        double end = ct_now_ms() + 10000;
        while (!h.state && ct_now_ms() < end) ifp_handshake_poll(&h, &c, 100);
        connected += h.state == 1;
        Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
        hb.group = "spare";
        hb.cluster = IFP_CLUSTER_DENSE;
        hb.stages = 1;
        hb.slots = 8;
        hb.incarnation = 1000 + (uint64_t)i;
        Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
        m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
        m.heartbeat = &hb;
        ifp_wire_send(s, NULL, NULL, 0, &m.base);
        ifp_handshake_close(&h);
        zmq_close(s);
    }
    assert_int_equal(connected, 100);
    int after = open_files(f->cl->router);
    for (double end = ct_now_ms() + 10000; after > before + 2 && ct_now_ms() < end; after = open_files(f->cl->router))
        usleep(100000);
    fprintf(stderr, "  100 reconnects of group spare with its key: router open files %d -> %d\n", before, after);
    assert_true(after <= before + 2);
    Ifp__ServerMessage *p = ct_ping(f->cl, 5000);
    assert_non_null(p);
    const Ifp__GroupStatus *sp = group_status(p, "spare");
    assert_non_null(sp);
    assert_true(sp->seen); /* its key made it the group */
    ifp__server_message__free_unpacked(p, NULL);

    /* g1 killed and restarted with its own key: it takes its name back */
    p = ct_ping(f->cl, 5000);
    uint64_t inc = group_status(p, "g1")->incarnation;
    ifp__server_message__free_unpacked(p, NULL);
    ct_stop_pgroup(&f->cl->groups[1].pid, SIGKILL, 3000);
    ct_start_group(f->cl, 1);
    double end = ct_now_ms() + START_MS;
    int back = 0;
    while (!back && ct_now_ms() < end) {
        usleep(200000);
        p = ct_ping(f->cl, 2000);
        const Ifp__GroupStatus *g = group_status(p, "g1");
        back = g && g->alive && g->incarnation != inc;
        if (p) ifp__server_message__free_unpacked(p, NULL);
    }
    assert_true(back);
    void *sock = ct_client(f->cl);
    assert_int_equal(ct_wait_lands(f->cl, sock, "Name the capital of France.", NULL, 30000), 0);
    zmq_close(sock);
    f->cl->ok = 1;
}

/* ---------------------------------------------------------------- plain */

/* A server key given as a file whose path is 40 characters of Z85 ('/',
 * '.' and '-' are Z85) is read from the file, not taken as the key. */
static void z85_path(void **state) {
    (void)state;
    char dir[] = "/tmp/ifpz85XXXXXX", path[64], cbase[64], ckey[72];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%0*d.pub", dir, (int)(40 - strlen(dir) - 5), 0);
    assert_int_equal(strlen(path), 40);
    assert_true(ifp_key_is_z85(path));
    ifp_err_t e = {0};
    ifp_keypair_t server, me;
    char sbase[64];
    snprintf(sbase, sizeof sbase, "%.*s", (int)(strlen(path) - 4), path);
    assert_int_equal(ifp_key_generate(&server, &e), 0);
    assert_int_equal(ifp_key_write_pair(sbase, &server, "a router", 0, &e), 0);
    snprintf(cbase, sizeof cbase, "%s/me", dir);
    assert_int_equal(ifp_key_generate(&me, &e), 0);
    assert_int_equal(ifp_key_write_pair(cbase, &me, "a client", 0, &e), 0);
    snprintf(ckey, sizeof ckey, "%s.key", cbase);
    ifp_curve_t c = {0};
    if (ifp_curve_client_load(NULL, ckey, path, 0, &c, &e)) fail_msg("%s", e.msg);
    assert_memory_equal(c.server_pub, server.pub, IFP_Z85_KEY);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void plain_warns(void **state) {
    fx_t *f = *state;
    char cfg[400], log[400];
    snprintf(cfg, sizeof cfg, "%s/plain.ini", f->cl->dir);
    snprintf(log, sizeof log, "%s/plain-router.log", f->cl->dir);
    FILE *c = fopen(cfg, "w");
    assert_non_null(c);
    fprintf(c,
            "[security]\ncurve = off\n[router]\nfrontend = ipc://%s/pfe\nbackend = ipc://%s/pbe\n"
            "[model]\nmodel = %s\n[group p0]\ncluster = dense\n",
            f->cl->dir, f->cl->dir, MODEL_PATH("ifp-mix/ifp-mix.gguf"));
    fclose(c);
    const char *argv[] = {CT_ROUTER_BIN, "--config", cfg, NULL};
    pid_t pid = ct_spawn(argv, log);
    char *text = NULL;
    for (double end = ct_now_ms() + 30000; ct_now_ms() < end; usleep(100000)) {
        free(text);
        text = tu_read_file(log, NULL);
        if (text && strstr(text, "CURVE OFF")) break;
    }
    ct_stop_pgroup(&pid, SIGTERM, 3000);
    assert_non_null(text);
    assert_non_null(strstr(text, "WARNING: [security] curve = off"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rogue_groups),
        cmocka_unit_test(clients),
        cmocka_unit_test(plain_warns),
        cmocka_unit_test(reload),
        cmocka_unit_test(reconnects),
        cmocka_unit_test(z85_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
