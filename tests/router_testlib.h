/* router_testlib.h — a real ifp-router process with fake shard groups
 * played by the test over ZeroMQ (header-only, for test_router.c).
 *
 * rl_start writes a config into a temp dir (ipc:// endpoints there), runs
 * IFP_BINARY_DIR/router/ifp-router on it (stderr to router.log), and opens
 * one client (the client library, client/client.h: one DEALER with identity
 * "client-1") plus, per fake group, a DEALER with identity "G" (stage 0:
 * heartbeats, receives work) and optionally "G.out" (a last stage: token
 * batches).  The client speaks the raw protocol (ifp_client_send): what the
 * router sends comes back as it is — token events unfiltered, so the tests
 * see the router's own ordering — and e->client is its socket, for bytes no
 * ClientMessage can hold.  rl_pump runs the test's side of the world for a
 * while: sends the heartbeats that are due (listing the rids a group holds),
 * stores what the router sends to groups and to the client.  Every wait
 * goes through it, so fake groups keep beating while the test waits. */
#ifndef IFP_ROUTER_TESTLIB_H
#define IFP_ROUTER_TESTLIB_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "wire.h"

#define RL_BIN IFP_BINARY_DIR "/router/ifp-router"
#define RL_HB_MS 100
#define RL_LIVENESS 5 /* dead after 500 ms of silence: robust on a busy machine */
#define RL_MAX_GROUPS 4
#define RL_MAX_MSGS 256
#define RL_MAX_RIDS 64

typedef struct {
    char name[16];
    int cluster, slots, stages;
    void *s0, *out;              /* "G", and "G.out" when stages > 1 */
    uint64_t incarnation;
    int beating;
    double next_hb;
    Ifp__Work *work[RL_MAX_MSGS]; /* received, owned */
    int n_work;
    uint64_t cancel[RL_MAX_MSGS];
    int n_cancel, n_control;
    uint64_t active[RL_MAX_RIDS]; /* rids held: in heartbeats */
    int n_active;
    uint64_t done[RL_MAX_RIDS];   /* rids finished lately: Heartbeat.finished */
    int n_done;
    uint64_t epoch, seen;         /* the last Work's router_epoch and seq: echoed */
    int echo;                     /* echo them (a real group does; 0 plays an old group) */
} rl_group_t;

typedef struct {
    char dir[128], cfg[192], log[192], front[200], back[200];
    pid_t pid;
    void *zctx;
    ifp_client_t *cl;                       /* the client */
    void *client;                           /* its DEALER (raw bytes) */
    Ifp__ServerMessage *inbox[RL_MAX_MSGS]; /* everything the client received but Progress, owned */
    int n_inbox;
    int n_progress;                         /* Progress keep-alives received */
    int n_groups;
    rl_group_t g[RL_MAX_GROUPS];
} rl_env_t;

typedef struct {
    const char *name;
    int cluster, slots, stages;
    int beating; /* start heartbeating at once */
} rl_group_spec_t;

static inline void rl_drop_active(rl_group_t *g, uint64_t rid) {
    for (int i = 0; i < g->n_active; i++)
        if (g->active[i] == rid) {
            g->active[i] = g->active[--g->n_active];
            return;
        }
}

/* rid finished at the fake group: it leaves `running` for `finished`. */
static inline void rl_finished(rl_group_t *g, uint64_t rid) {
    rl_drop_active(g, rid);
    if (g->n_done == RL_MAX_RIDS) memmove(g->done, g->done + 1, sizeof g->done[0] * (RL_MAX_RIDS - 1)), g->n_done--;
    g->done[g->n_done++] = rid;
}

static inline void rl_send_raw(void *sock, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    if (zmq_send(sock, buf, n, 0) < 0) fprintf(stderr, "rl_send_raw: %s\n", zmq_strerror(errno));
    free(buf);
}

static inline void rl_heartbeat(rl_group_t *g) {
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = g->name;
    hb.cluster = g->cluster;
    hb.stages = (uint32_t)g->stages;
    hb.slots = (uint32_t)g->slots;
    hb.free_slots = (uint32_t)(g->slots > g->n_active ? g->slots - g->n_active : 0);
    hb.incarnation = g->incarnation;
    hb.n_running = (size_t)g->n_active;
    hb.running = g->active;
    Ifp__Finished fin[RL_MAX_RIDS], *finp[RL_MAX_RIDS];
    for (int i = 0; i < g->n_done; i++) {
        ifp__finished__init(&fin[i]);
        fin[i].rid = g->done[i];
        finp[i] = &fin[i];
    }
    hb.n_finished = (size_t)g->n_done;
    hb.finished = finp;
    if (g->echo) {
        hb.router_epoch = g->epoch;
        hb.work_seen = g->seen;
    }
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    rl_send_raw(g->s0, &m.base);
}

/* Sends tokens [first, first + n) of rid as one TokenBatch from the last
 * stage (or stage 0 for P = 1); the last one carries `finish`; index 0
 * carries 16 head logits and argmax 5. */
static inline void rl_tokens(rl_group_t *g, uint64_t rid, uint32_t first, const int32_t *toks, int n, int finish) {
    Ifp__GroupToken gt[16], *ptr[16];
    Ifp__Debug dbg = IFP__DEBUG__INIT;
    float head[16];
    for (int i = 0; i < 16; i++) head[i] = 0.5f * (float)i;
    for (int i = 0; i < n; i++) {
        Ifp__GroupToken init = IFP__GROUP_TOKEN__INIT;
        gt[i] = init;
        gt[i].rid = rid;
        gt[i].index = first + (uint32_t)i;
        gt[i].token = toks[i];
        gt[i].logprob = -0.25f;
        gt[i].finish = i == n - 1 ? (Ifp__FinishReason)finish : IFP__FINISH_REASON__FINISH_NONE;
        if (gt[i].index == 0) {
            dbg.n_logits_last_prompt = 16;
            dbg.logits_last_prompt = head;
            dbg.argmax_last_prompt = 5;
            gt[i].debug = &dbg;
        }
        ptr[i] = &gt[i];
    }
    Ifp__TokenBatch b = IFP__TOKEN_BATCH__INIT;
    b.group = g->name;
    b.n_tokens = (size_t)n;
    b.tokens = ptr;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
    m.tokens = &b;
    rl_send_raw(g->out ? g->out : g->s0, &m.base);
    if (finish) rl_finished(g, rid);
}

static inline void rl_work_error(rl_group_t *g, uint64_t rid, const char *msg) {
    Ifp__WorkError e = IFP__WORK_ERROR__INIT;
    e.rid = rid;
    e.message = (char *)msg;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    m.error = &e;
    rl_send_raw(g->s0, &m.base);
    rl_finished(g, rid);
}

static inline int rl_log_has(const rl_env_t *e, const char *s);
static inline void rl_pump(rl_env_t *e, double ms);

/* Waits until the router's log contains s; 1 if it did within timeout_ms. */
static inline int rl_wait_log(rl_env_t *e, const char *s, double timeout_ms) {
    double end = ifp_now_ms() + timeout_ms;
    while (!rl_log_has(e, s)) {
        if (ifp_now_ms() >= end) return 0;
        rl_pump(e, 10);
    }
    return 1;
}

static inline void *rl_dealer(rl_env_t *e, const char *endpoint, const char *ident) {
    void *s = zmq_socket(e->zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (ident) zmq_setsockopt(s, ZMQ_ROUTING_ID, ident, strlen(ident));
    if (zmq_connect(s, endpoint) != 0) fprintf(stderr, "connect %s: %s\n", endpoint, zmq_strerror(errno));
    return s;
}

/* Starts the router: [router] gets `router_extra` lines, [model] the ifp-mix
 * model + predictor (+ clusters when non-NULL), one [group] per spec. */
static inline int rl_start(rl_env_t *e, const char *router_extra, const char *clusters, const rl_group_spec_t *gs,
                           int n_groups) {
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/ifp-test-router-XXXXXX");
    if (!mkdtemp(e->dir)) return -1;
    snprintf(e->cfg, sizeof e->cfg, "%s/router.ini", e->dir);
    snprintf(e->log, sizeof e->log, "%s/router.log", e->dir);
    snprintf(e->front, sizeof e->front, "ipc://%s/fe", e->dir);
    snprintf(e->back, sizeof e->back, "ipc://%s/be", e->dir);
    FILE *f = fopen(e->cfg, "w");
    if (!f) return -1;
    /* the router's routing under test, with plain peers (test_security
     * tests CURVE) */
    fprintf(f, "[security]\ncurve = off\n[http]\nlisten = off\n[router]\nfrontend = %s\nbackend = %s\nheartbeat_ms = %d\nliveness = %d\n%s\n", e->front, e->back,
            RL_HB_MS, RL_LIVENESS, router_extra ? router_extra : "");
    fprintf(f, "[model]\nmodel = %s/models/ifp-mix/ifp-mix.gguf\npredictor = %s/models/ifp-mix/ifp-mix-predictor.gguf\n",
            IFP_SOURCE_DIR, IFP_SOURCE_DIR);
    if (clusters) fprintf(f, "clusters = %s\n", clusters);
    for (int i = 0; i < n_groups; i++) {
        if (gs[i].cluster < 0) fprintf(f, "[group %s]\ncluster = dense\n", gs[i].name);
        else fprintf(f, "[group %s]\ncluster = %d\n", gs[i].name, gs[i].cluster);
        fprintf(f, "slots = %d\nstages = %d\n", gs[i].slots, gs[i].stages);
    }
    fclose(f);
    e->pid = fork();
    if (e->pid < 0) return -1;
    if (e->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *lf = freopen(e->log, "w", stderr);
        (void)lf;
        execl(RL_BIN, RL_BIN, "--config", e->cfg, "--verbose", (char *)NULL);
        _exit(127);
    }
    e->zctx = zmq_ctx_new();
    ifp_client_opts_t o = ifp_client_default_opts();
    o.plain = 1;
    o.zctx = e->zctx;
    o.routing_id = "client-1";
    o.immediate = 0;    /* queued until connected, as a plain DEALER does */
    o.silence_ms = 0;   /* raw traffic: nothing of the client's own to watch */
    o.heartbeat_ms = 0;
    ifp_err_t err = {0};
    const char *front = e->front;
    if (!(e->cl = ifp_client_open(&front, 1, &o, &err))) {
        fprintf(stderr, "rl_start: the client: %s\n", err.msg);
        return -1;
    }
    e->client = ifp_client_socket(e->cl, 0);
    e->n_groups = n_groups;
    for (int i = 0; i < n_groups; i++) {
        rl_group_t *g = &e->g[i];
        snprintf(g->name, sizeof g->name, "%s", gs[i].name);
        g->cluster = gs[i].cluster;
        g->slots = gs[i].slots;
        g->stages = gs[i].stages;
        g->incarnation = 100 + (uint64_t)i;
        g->beating = gs[i].beating;
        g->echo = 1;
        g->s0 = rl_dealer(e, e->back, g->name);
        if (g->stages > 1) {
            char out[32];
            snprintf(out, sizeof out, "%s.out", g->name);
            g->out = rl_dealer(e, e->back, out);
        }
    }
    /* ready when every beating group is registered (the router logs it) */
    for (int i = 0; i < n_groups; i++) {
        char up[64];
        snprintf(up, sizeof up, "group %s up", e->g[i].name);
        if (e->g[i].beating && !rl_wait_log(e, up, 10000)) {
            fprintf(stderr, "rl_start: the router did not register group %s\n", e->g[i].name);
            return -1;
        }
    }
    return 0;
}

static inline void rl_on_group_msg(rl_group_t *g, const void *data, size_t len) {
    Ifp__RouterToGroup *m = ifp_wire_router_msg(data, len);
    if (!m) {
        fprintf(stderr, "fake group %s: undecodable message from the router\n", g->name);
        return;
    }
    if (m->msg_case == IFP__ROUTER_TO_GROUP__MSG_WORK && g->n_work < RL_MAX_MSGS) {
        if (g->n_active < RL_MAX_RIDS) g->active[g->n_active++] = m->work->rid;
        g->epoch = m->work->router_epoch;
        g->seen = m->work->seq;
        g->work[g->n_work++] = m->work;
        m->work = NULL; /* keep it: detach from the envelope */
        m->msg_case = IFP__ROUTER_TO_GROUP__MSG__NOT_SET;
    } else if (m->msg_case == IFP__ROUTER_TO_GROUP__MSG_CANCEL) {
        if (g->n_cancel < RL_MAX_MSGS) g->cancel[g->n_cancel++] = m->cancel->rid;
        rl_drop_active(g, m->cancel->rid);
    } else if (m->msg_case == IFP__ROUTER_TO_GROUP__MSG_CONTROL) {
        g->n_control++;
    }
    ifp__router_to_group__free_unpacked(m, NULL);
}

/* Runs the fake side for ms milliseconds, or until *flag becomes non-zero. */
static inline void rl_pump_until(rl_env_t *e, double ms, const int *flag) {
    double end = ifp_now_ms() + ms;
    zmq_pollitem_t items[8 + 2 * RL_MAX_GROUPS];
    ifp_client_stats_t st;
    ifp_client_stats(e->cl, &st);
    uint64_t malformed = st.malformed;
    for (;;) {
        double now = ifp_now_ms();
        for (int i = 0; i < e->n_groups; i++)
            if (e->g[i].beating && now >= e->g[i].next_hb) {
                rl_heartbeat(&e->g[i]);
                e->g[i].next_hb = now + RL_HB_MS;
            }
        if ((flag && *flag) || now >= end) return;
        int n = ifp_client_pollitems(e->cl, items, 8);
        for (int i = 0; i < e->n_groups; i++) items[n++] = (zmq_pollitem_t){e->g[i].s0, 0, ZMQ_POLLIN, 0};
        zmq_poll(items, n, 5);
        ifp_client_event_t ev;
        while (ifp_client_poll(e->cl, 0, &ev) == 1) {
            Ifp__ServerMessage *m = ifp_client_event_take(e->cl, &ev); /* OTHER and PONG: all raw traffic */
            if (!m) continue;
            if (m->msg_case == IFP__SERVER_MESSAGE__MSG_PROGRESS) e->n_progress++, ifp__server_message__free_unpacked(m, NULL);
            else if (e->n_inbox < RL_MAX_MSGS) e->inbox[e->n_inbox++] = m;
            else ifp__server_message__free_unpacked(m, NULL);
        }
        ifp_client_stats(e->cl, &st);
        if (st.malformed != malformed) fprintf(stderr, "client: undecodable message from the router\n");
        malformed = st.malformed;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        for (int i = 0; i < e->n_groups; i++)
            while (zmq_msg_recv(&msg, e->g[i].s0, ZMQ_DONTWAIT) >= 0)
                rl_on_group_msg(&e->g[i], zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
}

static inline void rl_pump(rl_env_t *e, double ms) { rl_pump_until(e, ms, NULL); }

/* Waits until group g has received at least n Work messages. */
static inline Ifp__Work *rl_wait_work(rl_env_t *e, int g, int n, double timeout_ms) {
    double end = ifp_now_ms() + timeout_ms;
    while (e->g[g].n_work < n && ifp_now_ms() < end) rl_pump(e, 5);
    return e->g[g].n_work >= n ? e->g[g].work[n - 1] : NULL;
}

/* The first message of case `kind` for request id in the inbox (waiting up
 * to timeout_ms for it), or NULL. */
static inline Ifp__ServerMessage *rl_find(rl_env_t *e, const char *id, int kind, double timeout_ms) {
    double end = ifp_now_ms() + timeout_ms;
    for (;;) {
        for (int i = 0; i < e->n_inbox; i++) {
            Ifp__ServerMessage *m = e->inbox[i];
            if ((int)m->msg_case != kind) continue;
            if (strcmp(ifp_wire_server_msg_id(m), id) == 0) return m;
        }
        if (ifp_now_ms() >= end) return NULL;
        rl_pump(e, 5);
    }
}

static inline Ifp__Reply *rl_reply(rl_env_t *e, const char *id, double timeout_ms) {
    Ifp__ServerMessage *m = rl_find(e, id, IFP__SERVER_MESSAGE__MSG_REPLY, timeout_ms);
    return m ? m->reply : NULL;
}

static inline Ifp__Error *rl_error(rl_env_t *e, const char *id, double timeout_ms) {
    Ifp__ServerMessage *m = rl_find(e, id, IFP__SERVER_MESSAGE__MSG_ERROR, timeout_ms);
    return m ? m->error : NULL;
}

/* Sends q as it is (the router's checks under test: nothing is checked or
 * filtered on the client's side). */
static inline void rl_request(rl_env_t *e, const Ifp__Request *q) {
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = (Ifp__Request *)q;
    if (ifp_client_send(e->cl, 0, &m)) fprintf(stderr, "rl_request: %s\n", zmq_strerror(errno));
}

static inline void rl_cancel(rl_env_t *e, const char *id) {
    Ifp__Cancel c = IFP__CANCEL__INIT;
    c.id = (char *)id;
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_CANCEL;
    m.cancel = &c;
    if (ifp_client_send(e->cl, 0, &m)) fprintf(stderr, "rl_cancel: %s\n", zmq_strerror(errno));
}

/* Asks the router for its status (Ping -> Pong); NULL if it did not answer
 * within timeout_ms.  The Pong stays owned by the inbox. */
static inline Ifp__Pong *rl_ping(rl_env_t *e, double timeout_ms) {
    static int n;
    char id[32];
    snprintf(id, sizeof id, "ping-%d", ++n);
    ifp_client_ping(e->cl, 0, id);
    Ifp__ServerMessage *s = rl_find(e, id, IFP__SERVER_MESSAGE__MSG_PONG, timeout_ms);
    return s ? s->pong : NULL;
}

/* The router's counter `name` (a fresh Ping); -1 if it did not answer. */
static inline long long rl_counter(rl_env_t *e, const char *name) {
    Ifp__Pong *p = rl_ping(e, 5000);
    for (size_t i = 0; p && i < p->n_counters; i++)
        if (!strcmp(p->counters[i]->name, name)) return (long long)p->counters[i]->value;
    return -1;
}

static inline int rl_alive(const rl_env_t *e) { return e->pid > 0 && waitpid(e->pid, NULL, WNOHANG) == 0; }

/* 1 if the router's log contains s. */
static inline int rl_log_has(const rl_env_t *e, const char *s) {
    FILE *f = fopen(e->log, "r");
    if (!f) return 0;
    char line[4096];
    int hit = 0;
    while (!hit && fgets(line, sizeof line, f)) hit = strstr(line, s) != NULL;
    fclose(f);
    return hit;
}

/* SIGTERM, wait; returns the exit status (-1 if killed or stuck).  Frees
 * everything; on a failed status the log is copied to stderr. */
static inline int rl_stop(rl_env_t *e) {
    int status = -1, st;
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        for (int i = 0; i < 500; i++) {
            if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
                status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                break;
            }
            usleep(10000);
        }
        if (status == -1 && waitpid(e->pid, &st, WNOHANG) == 0) {
            kill(e->pid, SIGKILL);
            waitpid(e->pid, &st, 0);
        }
    }
    if (status != 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "cat %s >&2", e->log);
        if (system(cmd)) fprintf(stderr, "(no router log)\n");
    }
    for (int i = 0; i < e->n_groups; i++) {
        rl_group_t *g = &e->g[i];
        for (int k = 0; k < g->n_work; k++) ifp__work__free_unpacked(g->work[k], NULL);
        zmq_close(g->s0);
        if (g->out) zmq_close(g->out);
    }
    for (int i = 0; i < e->n_inbox; i++) ifp__server_message__free_unpacked(e->inbox[i], NULL);
    ifp_client_close(&e->cl);
    e->client = NULL;
    zmq_ctx_term(e->zctx);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", e->dir);
    e->zctx = NULL;
    e->pid = 0;
    return status;
}

#endif
