/* shard_testlib.h — a fake router for the ifp-shard tests (header-only,
 * like testutil.h): a ZeroMQ ROUTER bound on an ipc:// endpoint in a temp
 * dir, the INI config of one group g0, `mpirun -np P ifp-shard` started with
 * fork/exec (the leader of its own process group, output to a log in the
 * temp dir), and the group's messages collected per request: tokens in
 * order, finish, work errors, the heartbeat fields (the finished list per
 * request).  Work carries a router epoch and a dispatch number (1, 2, ...)
 * as the real router's does.  Like the real router, the rig sends a Work
 * refused as busy (WorkError.busy: no free slot, e.g. a slot whose request
 * ended is not yet back from the pipe) again after the next heartbeat, with
 * a new dispatch number (rig_pump, rig_resend_busy).
 *
 * A test that fails mid-way leaves its job to rig_reap (call it from a
 * teardown); if the test process dies, the job gets SIGTERM
 * (PR_SET_PDEATHSIG).  Include after cmocka.h. */
#ifndef IFP_SHARD_TESTLIB_H
#define IFP_SHARD_TESTLIB_H

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "mask.h"
#include "testutil.h"
#include "wire.h"
#include "clock.h"

#define SHARD_BIN IFP_BINARY_DIR "/shard/ifp-shard"
#define MAX_REQ 128
#define MAX_TOK 200

#define RIG_EPOCH 0x5eed0000e90c4ULL

typedef struct {
    uint64_t rid;
    uint64_t seq;          /* Work.seq it was sent with */
    int n, finish, error;
    int32_t tok[MAX_TOK];
    int n_head, argmax;
    float head[16];
    double t_first, t_last;
    int fin_seen;          /* heartbeats listing it as finished */
    uint32_t fin_tokens;   /* Finished.tokens there */
    uint8_t *work;         /* its RouterToGroup as sent (for a re-send), owned */
    size_t work_len;
    int busy;              /* refused as busy, times */
    int resend;            /* refused as busy: to send again after the next heartbeat */
    int resend_after;      /* ... the heartbeat count when it was refused */
} req_t;

typedef struct {
    /* the group's config: these, set before rig_start_ex, go into [group g0] */
    int batch_timeout_ms;  /* 0 = the default */
    const char *fault;     /* IFP_SHARD_FAULT for the job, or NULL */
} rig_opts_t;

typedef struct {
    char dir[64], cfg[128], endpoint[128], log[128];
    void *zctx, *sock;
    char ident[64];   /* stage 0's routing id (from its messages) */
    size_t ident_len;
    pid_t pid;
    req_t req[MAX_REQ];
    int n_req;
    uint64_t work_seq; /* Work.seq of the last Work sent */
    int min_free, last_free, last_running, last_cluster, last_draining, heartbeats, work_errors;
    int busy_errors;  /* WorkError.busy: counted apart from work_errors */
    uint64_t last_epoch, last_work_seen, last_tokens_generated, last_requests_done;
    int max_finished; /* longest finished list seen */
    uint64_t error_rid[64];
} rig_t;

static inline double now_ms(void) { return ifp_now_ms(); }

/* The running job and its log, for rig_reap. */
static pid_t rig_live_pid;
static char rig_live_log[128];

static inline const char *read_log(const char *path);

/* Stops a job left running by a failed test: SIGTERM to its process group
 * (the ranks stop cleanly at once), SIGKILL if it lingers. */
static inline void rig_reap(void) {
    if (rig_live_pid <= 0) return;
    fprintf(stderr, "reaping the job a failed test left running; its log %s:\n", rig_live_log);
    kill(-rig_live_pid, SIGTERM);
    for (int i = 0; i < 250 && waitpid(rig_live_pid, NULL, WNOHANG) == 0; i++) usleep(20000);
    if (waitpid(rig_live_pid, NULL, WNOHANG) == 0) {
        kill(-rig_live_pid, SIGKILL);
        waitpid(rig_live_pid, NULL, 0);
    }
    read_log(rig_live_log);
    rig_live_pid = 0;
}

/* Starts `mpirun -np np ifp-shard --config cfg --group group`, its output
 * to log; fault (or NULL) becomes the job's IFP_SHARD_FAULT. */
static inline pid_t spawn_shard_fault(int np, const char *cfg, const char *group, const char *log, const char *fault) {
    const char *mpirun = getenv("IFP_MPIRUN") ? getenv("IFP_MPIRUN") : "/usr/bin/mpirun";
    char nps[8];
    snprintf(nps, sizeof nps, "%d", np);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        unsetenv("IFP_SHARD_FAULT");
        if (!freopen(log, "w", stderr) || dup2(fileno(stderr), 1) < 0) _exit(126);
        const char *argv[24] = {mpirun, "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader"};
        int n = 7;
        if (fault) { /* -x: into the ranks' environment, wherever they run */
            setenv("IFP_SHARD_FAULT", fault, 1);
            argv[n++] = "-x";
            argv[n++] = "IFP_SHARD_FAULT";
        }
        const char *rest[] = {"-np", nps, SHARD_BIN, "--config", cfg, "--group", group, NULL};
        memcpy(argv + n, rest, sizeof rest);
        execv(mpirun, (char *const *)argv);
        perror("exec mpirun");
        _exit(127);
    }
    return pid;
}

static inline pid_t spawn_shard(int np, const char *cfg, const char *group, const char *log) {
    return spawn_shard_fault(np, cfg, group, log, NULL);
}

/* Exit status of pid within timeout_ms (killed and -1 after it). */
static inline int wait_exit(pid_t pid, double timeout_ms) {
    double until = ifp_now_ms() + timeout_ms;
    int status;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && ifp_now_ms() < until) usleep(20000);
    if (got == 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The log's text (a static buffer) — also echoed to stderr for ctest logs. */
static inline const char *read_log(const char *path) {
    static char text[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = 0;
    fputs(text, stderr);
    return text;
}

static inline void rig_start_ex(rig_t *r, int P, const char *layers, const char *cluster, const rig_opts_t *o) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/ifp-shard-test-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->cfg, sizeof r->cfg, "%s/cluster.ini", r->dir);
    snprintf(r->endpoint, sizeof r->endpoint, "ipc://%s/backend", r->dir);
    FILE *f = fopen(r->cfg, "w");
    assert_non_null(f);
    /* the shard's pipeline under test: plain ZeroMQ to the test's ROUTER
     * (CURVE is the cluster tests' business) */
    fprintf(f, "[security]\ncurve = off\n[router]\nbackend = %s\nheartbeat_ms = 50\n[model]\nmodel = %s\nclusters = %s\n", r->endpoint,
            MODEL_PATH("ifp-mix/ifp-mix.gguf"), MODEL_PATH("ifp-mix/clusters-k4.gguf"));
    fprintf(f, "[group g0]\nstages = %d\ncluster = %s\nslots = 8\nmax_batch = 48\n", P, cluster);
    if (layers) fprintf(f, "layers = %s\n", layers);
    if (o && o->batch_timeout_ms) fprintf(f, "batch_timeout_ms = %d\n", o->batch_timeout_ms);
    fclose(f);
    r->zctx = zmq_ctx_new();
    r->sock = zmq_socket(r->zctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt(r->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    assert_int_equal(zmq_bind(r->sock, r->endpoint), 0);
    r->min_free = 1 << 30;
    r->last_cluster = -2;
    snprintf(r->log, sizeof r->log, "%s/shard.log", r->dir);
    snprintf(rig_live_log, sizeof rig_live_log, "%s", r->log);
    r->pid = rig_live_pid = spawn_shard_fault(P, r->cfg, "g0", r->log, o ? o->fault : NULL);
}

static inline void rig_start(rig_t *r, int P, const char *layers, const char *cluster) {
    rig_start_ex(r, P, layers, cluster, NULL);
}

/* One message from the group (NULL on timeout); *from_out = the sender was
 * the last stage's socket. */
static inline Ifp__GroupToRouter *rig_recv(rig_t *r, int timeout_ms, int *from_out) {
    zmq_pollitem_t it = {.socket = r->sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) return NULL;
    ifp_frames_t f;
    assert_int_equal(ifp_wire_recv(r->sock, &f, 0), 2);
    /* routing ids "g0#NONCE" (stage 0) and "g0.out#NONCE" (last stage) */
    size_t il = ifp_frame_size(&f, 0);
    int out = il >= 6 && !memcmp(ifp_frame_data(&f, 0), "g0.out", 6);
    if (from_out) *from_out = out;
    if (!out && il <= sizeof r->ident) {
        memcpy(r->ident, ifp_frame_data(&f, 0), il);
        r->ident_len = il;
    }
    Ifp__GroupToRouter *m = ifp_wire_group_msg(ifp_frame_data(&f, 1), ifp_frame_size(&f, 1));
    ifp_frames_close(&f);
    assert_non_null(m);
    return m;
}

static inline req_t *find_req(rig_t *r, uint64_t rid) {
    for (int i = 0; i < r->n_req; i++)
        if (r->req[i].rid == rid) return &r->req[i];
    return NULL;
}

static inline void rig_resend_busy(rig_t *r);

/* Handles one message (then sends again the Work refused as busy, once a
 * heartbeat came after the refusal); returns 0 on timeout. */
static inline int rig_pump(rig_t *r, int timeout_ms) {
    Ifp__GroupToRouter *m = rig_recv(r, timeout_ms, NULL);
    if (!m) return 0;
    if (m->msg_case == IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT) {
        const Ifp__Heartbeat *hb = m->heartbeat;
        assert_string_equal(hb->group, "g0");
        r->heartbeats++;
        if ((int)hb->free_slots < r->min_free) r->min_free = (int)hb->free_slots;
        r->last_free = (int)hb->free_slots;
        r->last_running = (int)hb->n_running;
        r->last_cluster = hb->cluster;
        r->last_draining = hb->draining;
        r->last_epoch = hb->router_epoch;
        r->last_work_seen = hb->work_seen;
        r->last_tokens_generated = hb->tokens_generated;
        r->last_requests_done = hb->requests_done;
        if ((int)hb->n_finished > r->max_finished) r->max_finished = (int)hb->n_finished;
        for (size_t i = 0; i < hb->n_finished; i++) {
            req_t *q = find_req(r, hb->finished[i]->rid);
            assert_non_null(q); /* only requests we sent */
            if (q->fin_seen++) assert_int_equal(q->fin_tokens, hb->finished[i]->tokens);
            q->fin_tokens = hb->finished[i]->tokens;
        }
    } else if (m->msg_case == IFP__GROUP_TO_ROUTER__MSG_TOKENS) {
        assert_string_equal(m->tokens->group, "g0");
        for (size_t i = 0; i < m->tokens->n_tokens; i++) {
            const Ifp__GroupToken *g = m->tokens->tokens[i];
            req_t *q = find_req(r, g->rid);
            assert_non_null(q);
            if (q->finish) continue; /* late tokens of a cancelled request */
            assert_int_equal(g->index, q->n); /* in order, no gap, no duplicate */
            assert_true(g->logprob <= 0);
            if (g->index == 0) {
                q->n_head = (int)g->debug->n_logits_last_prompt;
                memcpy(q->head, g->debug->logits_last_prompt, sizeof(float) * g->debug->n_logits_last_prompt);
                q->argmax = g->debug->argmax_last_prompt;
                q->t_first = now_ms();
            }
            q->t_last = now_ms();
            if (q->n < MAX_TOK) q->tok[q->n++] = g->token;
            if (g->finish) q->finish = g->finish;
        }
    } else if (m->msg_case == IFP__GROUP_TO_ROUTER__MSG_ERROR && m->error->busy) {
        req_t *q = find_req(r, m->error->rid);
        assert_non_null(q);
        assert_non_null(strstr(m->error->message, "is busy: "));
        r->busy_errors++;
        q->busy++;
        q->resend = 1;
        q->resend_after = r->heartbeats;
    } else if (m->msg_case == IFP__GROUP_TO_ROUTER__MSG_ERROR) {
        if (r->work_errors < 64) r->error_rid[r->work_errors] = m->error->rid;
        r->work_errors++;
        req_t *q = find_req(r, m->error->rid);
        if (q) q->error = 1;
    }
    ifp__group_to_router__free_unpacked(m, NULL);
    rig_resend_busy(r);
    return 1;
}

static inline void rig_wait_heartbeat(rig_t *r) {
    double until = now_ms() + 30000;
    int seen = r->heartbeats;
    while (r->heartbeats == seen && now_ms() < until) rig_pump(r, 200);
    assert_true(r->heartbeats > seen);
}

static inline void rig_send(rig_t *r, const void *data, size_t len) {
    assert_true(r->ident_len > 0); /* stage 0 has heartbeated: its routing id is known */
    assert_int_equal(zmq_send(r->sock, r->ident, r->ident_len, ZMQ_SNDMORE), (int)r->ident_len);
    assert_int_equal(zmq_send(r->sock, data, len, 0), (int)len);
}

static inline void rig_send_msg(rig_t *r, const Ifp__RouterToGroup *m) {
    size_t len = ifp__router_to_group__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    ifp__router_to_group__pack(m, buf);
    rig_send(r, buf, len);
    free(buf);
}

/* Sends q's Work again with the next dispatch number. */
static inline void rig_resend(rig_t *r, req_t *q) {
    Ifp__RouterToGroup *m = ifp__router_to_group__unpack(NULL, q->work_len, q->work);
    assert_non_null(m);
    assert_int_equal(m->msg_case, IFP__ROUTER_TO_GROUP__MSG_WORK);
    m->work->seq = q->seq = ++r->work_seq;
    size_t len = ifp__router_to_group__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    ifp__router_to_group__pack(m, buf);
    ifp__router_to_group__free_unpacked(m, NULL);
    free(q->work);
    q->work = buf;
    q->work_len = len;
    q->resend = 0;
    rig_send(r, buf, len);
}

/* Sends again the Work refused as busy before the last heartbeat. */
static inline void rig_resend_busy(rig_t *r) {
    for (int i = 0; i < r->n_req; i++)
        if (r->req[i].resend && r->heartbeats > r->req[i].resend_after && r->req[i].work) rig_resend(r, &r->req[i]);
}

static inline req_t *rig_work(rig_t *r, uint64_t rid, const int32_t *prompt, int n, const ifp_mask_t *mask, int max_new,
                       int eos) {
    size_t mb = mask ? ifp_wire_mask_bytes(mask->n_layers, mask->d_ffn) : 0;
    uint8_t *packed = mb ? malloc(mb) : NULL;
    if (mask) ifp_wire_mask_pack(mask, packed);
    Ifp__Work w = IFP__WORK__INIT;
    w.rid = rid;
    w.n_prompt = (size_t)n;
    w.prompt = (int32_t *)prompt;
    w.max_new = (uint32_t)max_new;
    w.eos = eos;
    w.debug = 1;
    w.router_epoch = RIG_EPOCH;
    w.seq = ++r->work_seq;
    w.mask.data = packed;
    w.mask.len = mb;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
    m.work = &w;
    assert_true(r->n_req < MAX_REQ);
    req_t *q = &r->req[r->n_req++];
    memset(q, 0, sizeof *q);
    q->rid = rid;
    q->seq = w.seq;
    q->work_len = ifp__router_to_group__get_packed_size(&m);
    q->work = malloc(q->work_len + 1);
    ifp__router_to_group__pack(&m, q->work);
    rig_send(r, q->work, q->work_len);
    free(packed);
    return q;
}

static inline void rig_control(rig_t *r, Ifp__Control__Kind kind) {
    Ifp__Control c = IFP__CONTROL__INIT;
    c.kind = kind;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    m.control = &c;
    rig_send_msg(r, &m);
}

/* Pumps until every request finished or failed. */
static inline void rig_wait_all(rig_t *r, double timeout_ms) {
    double until = now_ms() + timeout_ms;
    for (;;) {
        int open = 0;
        for (int i = 0; i < r->n_req; i++) open += !r->req[i].finish && !r->req[i].error;
        if (!open) return;
        if (now_ms() > until) fail_msg("%d requests unfinished", open);
        rig_pump(r, 200);
    }
}

static inline void rig_close(rig_t *r) {
    if (rig_live_pid == r->pid) rig_live_pid = 0;
    for (int i = 0; i < r->n_req; i++) free(r->req[i].work);
    zmq_close(r->sock);
    zmq_ctx_term(r->zctx);
    char path[160];
    snprintf(path, sizeof path, "%s/backend", r->dir);
    unlink(path);
    unlink(r->cfg);
    unlink(r->log);
    rmdir(r->dir);
}

/* SHUTDOWN; the job must exit 0, every rank having stopped cleanly. */
static inline void rig_stop(rig_t *r) {
    rig_control(r, IFP__CONTROL__KIND__SHUTDOWN);
    double until = now_ms() + 20000;
    int status = -1;
    pid_t got = 0;
    while ((got = waitpid(r->pid, &status, WNOHANG)) == 0 && now_ms() < until) rig_pump(r, 50);
    if (got == 0) {
        kill(-r->pid, SIGKILL);
        waitpid(r->pid, &status, 0);
    }
    const char *log = read_log(r->log);
    assert_true(got != 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(log, "shutdown requested by the router"));
    rig_close(r);
}

static inline void rig_load_cluster(rig_t *r, int cluster) {
    Ifp__Control c = IFP__CONTROL__INIT;
    c.kind = IFP__CONTROL__KIND__LOAD_CLUSTER;
    c.cluster = cluster;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    m.control = &c;
    rig_send_msg(r, &m);
    for (int i = 0; i < 40 && r->last_cluster != cluster; i++) rig_wait_heartbeat(r);
    assert_int_equal(r->last_cluster, cluster);
}

/* CPU time (ns, /proc/PID/schedstat) of pid and its children. */
static inline double tree_cpu_ns(pid_t root) {
    double total = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        int pid = atoi(e->d_name), ppid;
        if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1 || (pid != root && ppid != root)) continue;
        snprintf(path, sizeof path, "/proc/%s/schedstat", e->d_name);
        unsigned long long ns = 0;
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%llu", &ns) == 1) total += (double)ns;
            fclose(f);
        }
    }
    if (d) closedir(d);
    return total;
}

/* Tokens per second after the first token, over the requests rids[first..). */
static inline double rate(const rig_t *r, int first) {
    double t0 = 1e300, t1 = 0;
    int n = 0;
    for (int i = first; i < r->n_req; i++) {
        const req_t *q = &r->req[i];
        if (q->t_first < t0) t0 = q->t_first;
        if (q->t_last > t1) t1 = q->t_last;
        n += q->n - 1;
    }
    return t1 > t0 ? n / ((t1 - t0) / 1000) : 0;
}

#endif
