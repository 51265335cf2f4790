/* cluster_testlib.h — a real cluster on loopback for the integration tests
 * (header-only, like testutil.h): a temp dir holding the INI config, the
 * ipc:// sockets and the logs; ifp-router and one mpirun job per group
 * launched with fork/exec, each the leader of its own process group so that
 * a whole job can be signalled at once; a DEALER client that keeps many
 * requests in flight and records every TokenEvent and the Reply.
 *
 * Everything started is reaped by ct_cluster_destroy (call it from a cmocka
 * teardown: it runs even when the test failed) and, as a last resort, the
 * children get SIGKILL when the test process dies (PR_SET_PDEATHSIG). */
#ifndef IFP_CLUSTER_TESTLIB_H
#define IFP_CLUSTER_TESTLIB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"
#include "clock.h"
#include "curve.h"

#define CT_ROUTER_BIN IFP_BINARY_DIR "/router/ifp-router"
#define CT_IFP_BIN IFP_BINARY_DIR "/tools/ifp"
#define CT_SHARD_BIN IFP_BINARY_DIR "/shard/ifp-shard"
#define CT_IFP_BIN IFP_BINARY_DIR "/tools/ifp"
#define CT_MAX_GROUPS 4
#define CT_MAX_ROUTERS 4
#define CT_MAX_EVENTS 512
#define CT_EOS 2 /* ifp-mix's end-of-sequence id */

typedef struct {
    char name[32];
    int np;
    pid_t pid; /* mpirun; the leader of the job's process group; 0 = not running */
    char log[320];
} ct_group_t;

typedef struct {
    char dir[128];        /* temp dir: config.ini, fe/be sockets, *.log */
    char keys[160];       /* dir/keys: the deployment's CURVE keys */
    char cfg[192], frontend[192], router_log[192];
    pid_t router;         /* router 0 (the only one, or [router r1]) */
    int n_routers;        /* 1, or the [router rK] sections of ct_cluster_new_routers */
    pid_t rpid[CT_MAX_ROUTERS];              /* routers 1.. (router 0 is `router`) */
    char rfront[CT_MAX_ROUTERS][192], rlog[CT_MAX_ROUTERS][192]; /* each router's frontend and log */
    int n_groups;
    ct_group_t groups[CT_MAX_GROUPS];
    void *zctx;
    int ok;               /* set by a test that passed: logs are not dumped */
} ct_cluster_t;

/* One request and everything the router sent back for it. */
typedef struct {
    char id[48];
    int n_events, bad_order;      /* events; events whose index was not the next one */
    uint32_t index[CT_MAX_EVENTS];
    int32_t token[CT_MAX_EVENTS];
    double t_event[CT_MAX_EVENTS]; /* arrival times (ms, ifp_now_ms) */
    char text[8192];              /* concatenated TokenEvent pieces */
    size_t text_len;
    Ifp__ServerMessage *answer;   /* the Reply or the Error (owned) */
    double t_sent, t_first;
} ct_req_t;

typedef struct {
    const char *prompt;
    uint32_t max_tokens;
    float temperature, top_p;
    uint32_t top_k;
    uint64_t seed;
    Ifp__MaskMode mode;
    int ignore_eos;
} ct_params_t;

static inline double ct_now_ms(void) { return ifp_now_ms(); }

/* ---------------------------------------------------------------- processes */

/* fork/exec argv with stdout+stderr appended to log, in a session of its
 * own (ct_stop_pgroup), killed if this process dies. */
static inline pid_t ct_spawn_env(const char *const *argv, const char *log, const char *env);
static inline pid_t ct_spawn(const char *const *argv, const char *log) { return ct_spawn_env(argv, log, NULL); }

/* The same with one more NAME=VALUE in the child's environment. */
static inline pid_t ct_spawn_env(const char *const *argv, const char *log, const char *env) {
    pid_t parent = getpid(), pid = fork();
    if (pid != 0) return pid;
    if (env) putenv((char *)env);
    setsid(); /* a session of its own: mpirun's ranks stay in it (each in a process group of its own) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0), close(null);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* 1 while pid has not exited (reaps it once it has). */
static inline int ct_alive(pid_t pid) {
    if (pid <= 0) return 0;
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

/* The live processes of the machine from /proc: pid, parent and session of
 * each (zombies left out), at most max; returns n. */
typedef struct {
    pid_t pid, ppid, sid;
} ct_proc_t;

static inline int ct_procs(ct_proc_t *out, int max) {
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')'), state;
        int ppid, pgrp, session;
        if (rp && sscanf(rp + 2, "%c %d %d %d", &state, &ppid, &pgrp, &session) == 4 && state != 'Z')
            out[n++] = (ct_proc_t){(pid_t)atoi(e->d_name), (pid_t)ppid, (pid_t)session};
    }
    if (d) closedir(d);
    return n;
}

/* Sends sig to every process of session sid (but this one). */
static inline void ct_kill_session(pid_t sid, int sig) {
    static ct_proc_t ps[8192];
    int n = sid > 0 ? ct_procs(ps, 8192) : 0;
    for (int i = 0; i < n; i++)
        if (ps[i].sid == sid && ps[i].pid != getpid()) kill(ps[i].pid, sig);
}

/* Signals what pid (the leader of a session of ct_spawn's) started: its
 * process group, waits up to wait_ms for it, then SIGKILLs the whole
 * session.  By session, not process group: mpirun puts each rank in a
 * process group of its own, and ranks whose mpirun died would live on.
 * Safe on 0. */
static inline void ct_stop_pgroup(pid_t *pid, int sig, int wait_ms) {
    if (*pid <= 0) return;
    if (sig == SIGKILL) ct_kill_session(*pid, SIGKILL);
    else kill(-*pid, sig);
    int st;
    for (int t = 0; t < wait_ms / 10 && waitpid(*pid, &st, WNOHANG) == 0; t++) usleep(10000);
    ct_kill_session(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = 0;
}

static inline const char *ct_mpirun(void) {
    const char *m = getenv("IFP_MPIRUN");
    return m && *m ? m : "/usr/bin/mpirun";
}

/* Writes DIR/config.ini: ipc endpoints in DIR, fast heartbeats, the
 * embedded model, then router_extra (more [router] keys; later keys win)
 * and groups_ini ([group NAME] sections).  Group names and stage counts are
 * taken from groups_ini ("[group NAME]" then "stages = P"). */
static inline ct_cluster_t *ct_cluster_new_full(int n_routers, const char *router_extra, const char *groups_ini,
                                                const char *predictor);
static inline ct_cluster_t *ct_cluster_new(const char *router_extra, const char *groups_ini) {
    return ct_cluster_new_full(1, router_extra, groups_ini, NULL);
}
/* The same with another predictor GGUF (NULL: ifp-mix's). */
static inline ct_cluster_t *ct_cluster_new_pred(const char *router_extra, const char *groups_ini, const char *predictor) {
    return ct_cluster_new_full(1, router_extra, groups_ini, predictor);
}
/* n_routers active-active routers: [router r1] .. [router rN], each with
 * frontend ipc://DIR/feK and backend ipc://DIR/beK (K from 1); router_extra
 * goes to [router] (the settings they share). */
static inline ct_cluster_t *ct_cluster_new_routers(int n_routers, const char *router_extra, const char *groups_ini) {
    return ct_cluster_new_full(n_routers, router_extra, groups_ini, NULL);
}

static inline ct_cluster_t *ct_cluster_new_full(int n_routers, const char *router_extra, const char *groups_ini,
                                                const char *predictor) {
    if (n_routers < 1 || n_routers > CT_MAX_ROUTERS) return NULL;
    ct_cluster_t *cl = calloc(1, sizeof *cl);
    if (!cl) return NULL;
    snprintf(cl->dir, sizeof cl->dir, "/tmp/ifp-ct-XXXXXX");
    if (!mkdtemp(cl->dir)) {
        free(cl);
        return NULL;
    }
    snprintf(cl->cfg, sizeof cl->cfg, "%s/config.ini", cl->dir);
    snprintf(cl->frontend, sizeof cl->frontend, "ipc://%s/fe", cl->dir);
    snprintf(cl->router_log, sizeof cl->router_log, "%s/router.log", cl->dir);
    cl->n_routers = n_routers;
    FILE *f = fopen(cl->cfg, "w");
    if (!f) {
        free(cl);
        return NULL;
    }
    char one[512] = "";
    if (n_routers == 1) {
        snprintf(one, sizeof one, "frontend = %s\nbackend = ipc://%s/be\n", cl->frontend, cl->dir);
        snprintf(cl->rfront[0], sizeof cl->rfront[0], "%s", cl->frontend);
        snprintf(cl->rlog[0], sizeof cl->rlog[0], "%s", cl->router_log);
    } else {
        for (int k = 0; k < n_routers; k++) {
            snprintf(cl->rfront[k], sizeof cl->rfront[k], "ipc://%s/fe%d", cl->dir, k + 1);
            snprintf(cl->rlog[k], sizeof cl->rlog[k], "%s/router-r%d.log", cl->dir, k + 1);
            fprintf(f, "[router r%d]\nfrontend = %s\nbackend = ipc://%s/be%d\n", k + 1, cl->rfront[k], cl->dir, k + 1);
        }
        snprintf(cl->frontend, sizeof cl->frontend, "%s", cl->rfront[0]);
        snprintf(cl->router_log, sizeof cl->router_log, "%s", cl->rlog[0]);
    }
    fprintf(f,
            "[security]\nkeys = keys\n\n"
            "[router]\n%sheartbeat_ms = 100\nliveness = 4\nmax_tokens = 32\n%s\n"
            "[model]\nmodel = %s\npredictor = %s\nclusters = %s\n\n%s\n%s", one,
            router_extra ? router_extra : "", IFP_SOURCE_DIR "/models/ifp-mix/ifp-mix.gguf",
            predictor ? predictor : IFP_SOURCE_DIR "/models/ifp-mix/ifp-mix-predictor.gguf",
            IFP_SOURCE_DIR "/models/ifp-mix/clusters-k4.gguf",
            groups_ini, strstr(groups_ini, "[http]") ? "" : "[http]\nlisten = off\n"); /* HTTP only where a test asks */
    fclose(f);
    for (const char *s = strstr(groups_ini, "[group "); s && cl->n_groups < CT_MAX_GROUPS; s = strstr(s + 1, "[group ")) {
        ct_group_t *g = &cl->groups[cl->n_groups++];
        sscanf(s, "[group %31[^]]", g->name);
        const char *st = strstr(s, "stages"), *next = strstr(s + 1, "[group ");
        g->np = st && (!next || st < next) ? atoi(strchr(st, '=') + 1) : 1;
        char log[sizeof g->log];
        snprintf(log, sizeof log, "%s/group-%s.log", cl->dir, g->name);
        memcpy(g->log, log, sizeof log);
    }
    /* CURVE on, as deployed: the keys of this config in DIR/keys, made by
     * `ifp keygen --config` as deploy/local.sh makes them */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s keygen --config %s >/dev/null", CT_IFP_BIN, cl->cfg);
    if (system(cmd) != 0) fprintf(stderr, "ct_cluster_new: %s failed\n", cmd);
    snprintf(cl->keys, sizeof cl->keys, "%s/keys", cl->dir);
    setenv("IFP_KEYS", cl->keys, 1); /* `ifp client` and `ifp status` run by the tests find them there */
    cl->zctx = zmq_ctx_new();
    return cl;
}

/* (Re)starts router k (0-based) of a cluster. */
static inline void ct_start_router_k(ct_cluster_t *cl, int k) {
    char name[16];
    snprintf(name, sizeof name, "r%d", k + 1);
    const char *argv[] = {CT_ROUTER_BIN, "--config", cl->cfg, cl->n_routers > 1 ? "--name" : NULL, name, NULL};
    pid_t pid = ct_spawn(argv, cl->rlog[k]);
    if (k == 0) cl->router = pid;
    else cl->rpid[k] = pid;
}
static inline pid_t *ct_router_pid(ct_cluster_t *cl, int k) { return k == 0 ? &cl->router : &cl->rpid[k]; }

static inline void ct_start_router(ct_cluster_t *cl) {
    for (int k = 0; k < cl->n_routers; k++) ct_start_router_k(cl, k);
}

/* (Re)starts group i: mpirun -np P ifp-shard --config C --group NAME, with
 * one more NAME=VALUE in the environment of its ranks (mpirun -x NAME) when
 * env is not NULL, e.g. the shard's fault hook IFP_SHARD_FAULT.  With
 * odls_base_sigkill_timeout 0 mpirun kills the other ranks as soon as one
 * dies (by default it waits 1 s before SIGTERM and 1 s more before SIGKILL,
 * and a surviving stage 0 heartbeats for its broken pipeline meanwhile). */
static inline void ct_start_group_env(ct_cluster_t *cl, int i, const char *env) {
    ct_group_t *g = &cl->groups[i];
    char np[16], name[64];
    snprintf(np, sizeof np, "%d", g->np);
    const char *argv[32];
    int n = 0;
    const char *head[] = {ct_mpirun(), "--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1",
                          "--mca", "odls_base_sigkill_timeout", "0", "-np", np};
    for (size_t k = 0; k < sizeof head / sizeof *head; k++) argv[n++] = head[k];
    if (env) {
        snprintf(name, sizeof name, "%.*s", (int)strcspn(env, "="), env);
        argv[n++] = "-x";
        argv[n++] = name;
    }
    const char *tail[] = {CT_SHARD_BIN, "--config", cl->cfg, "--group", g->name, NULL};
    for (size_t k = 0; k < sizeof tail / sizeof *tail; k++) argv[n++] = tail[k];
    g->pid = ct_spawn_env(argv, g->log, env);
}

static inline void ct_start_group(ct_cluster_t *cl, int i) { ct_start_group_env(cl, i, NULL); }

static inline void ct_start_all(ct_cluster_t *cl) {
    ct_start_router(cl);
    for (int i = 0; i < cl->n_groups; i++) ct_start_group(cl, i);
}

/* The pids of the live children of pid (an mpirun's ranks); returns n. */
static inline int ct_children(pid_t pid, pid_t *out, int max) {
    static ct_proc_t ps[8192];
    int n = 0, all = pid > 0 ? ct_procs(ps, 8192) : 0;
    for (int i = 0; i < all && n < max; i++)
        if (ps[i].ppid == pid) out[n++] = ps[i].pid;
    return n;
}

/* The pids of the ranks of group i (children of its mpirun); returns n. */
static inline int ct_rank_pids(const ct_cluster_t *cl, int i, pid_t *out, int max) {
    return ct_children(cl->groups[i].pid, out, max);
}

static inline void ct_dump_log(const char *path, const char *title) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f), from = size > 4000 ? size - 4000 : 0;
    fseek(f, from, SEEK_SET);
    char buf[4001];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- %s (last %zu bytes of %s)\n%s\n", title, n, path, buf);
}

/* rm -r path (it holds files and folders of files). */
static inline void ct_rm_tree(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char sub[600];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if ((size_t)snprintf(sub, sizeof sub, "%.300s/%.255s", path, e->d_name) >= sizeof sub) continue;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) ct_rm_tree(sub);
        else unlink(sub);
    }
    if (d) closedir(d);
    rmdir(path);
}

/* Stops everything (TERM, then KILL after 3 s), shows the logs if the test
 * did not pass, removes the temp dir (kept with IFP_TEST_KEEP=1). */
static inline void ct_cluster_destroy(ct_cluster_t **pcl) {
    ct_cluster_t *cl = *pcl;
    if (!cl) return;
    for (int i = 0; i < cl->n_groups; i++) ct_stop_pgroup(&cl->groups[i].pid, SIGTERM, 3000);
    for (int k = 0; k < cl->n_routers; k++) ct_stop_pgroup(ct_router_pid(cl, k), SIGTERM, 3000);
    if (!cl->ok) {
        for (int k = 0; k < cl->n_routers; k++) ct_dump_log(cl->rlog[k], cl->n_routers > 1 ? "a router" : "router");
        for (int i = 0; i < cl->n_groups; i++) ct_dump_log(cl->groups[i].log, cl->groups[i].name);
    }
    if (cl->zctx) zmq_ctx_term(cl->zctx);
    const char *keep = getenv("IFP_TEST_KEEP");
    if (keep && *keep == '1') {
        fprintf(stderr, "kept %s\n", cl->dir);
    } else {
        ct_rm_tree(cl->dir);
    }
    free(cl);
    *pcl = NULL;
}

/* ---------------------------------------------------------------- client */

/* A client of the cluster with the deployment's client key (CURVE). */
static inline void *ct_client(ct_cluster_t *cl) {
    ifp_curve_t c;
    ifp_err_t err = {0};
    if (ifp_curve_client_load(cl->keys, NULL, NULL, 0, &c, &err) || !c.on) {
        fprintf(stderr, "ct_client: no client key in %s: %s\n", cl->keys, err.msg);
        return NULL;
    }
    return ifp_client_connect(cl->zctx, cl->frontend, &c, NULL, &err);
}

static inline int ct_send(void *sock, ct_req_t *r, const char *id, const ct_params_t *p) {
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = r->id;
    q.prompt = (char *)p->prompt;
    q.max_tokens = p->max_tokens;
    q.temperature = p->temperature;
    q.top_p = p->top_p;
    q.top_k = p->top_k;
    q.seed = p->seed;
    q.mask_mode = p->mode;
    q.ignore_eos = p->ignore_eos;
    q.stream = 1;
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &q;
    r->t_sent = ct_now_ms();
    return ifp_wire_send(sock, NULL, NULL, 0, &m.base);
}

/* Handles what arrives on sock within wait_ms (and what is already
 * waiting).  Returns how many of reqs[0..n) have their answer. */
static inline int ct_pump(void *sock, ct_req_t *reqs, int n, int wait_ms) {
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, wait_ms) > 0) {
        ifp_frames_t f;
        while (ifp_wire_recv(sock, &f, ZMQ_DONTWAIT) > 0) {
            Ifp__ServerMessage *m = ifp_wire_server_msg(ifp_frame_data(&f, f.n - 1), ifp_frame_size(&f, f.n - 1));
            ifp_frames_close(&f);
            if (!m) {
                fprintf(stderr, "ct_pump: undecodable message from the router\n");
                continue;
            }
            const char *id = ifp_wire_server_msg_id(m);
            ct_req_t *r = NULL;
            for (int i = 0; i < n && !r; i++)
                if (!reqs[i].answer && !strcmp(reqs[i].id, id)) r = &reqs[i];
            if (!r || m->msg_case == IFP__SERVER_MESSAGE__MSG_PROGRESS) { /* keep-alives: nothing to record */
                ifp__server_message__free_unpacked(m, NULL);
                continue;
            }
            if (m->msg_case == IFP__SERVER_MESSAGE__MSG_TOKEN) {
                Ifp__TokenEvent *t = m->token;
                if (!r->n_events) r->t_first = ct_now_ms();
                if ((int)t->index != r->n_events) r->bad_order++;
                if (r->n_events < CT_MAX_EVENTS) {
                    r->index[r->n_events] = t->index;
                    r->token[r->n_events] = t->token;
                    r->t_event[r->n_events] = ct_now_ms();
                }
                r->n_events++;
                if (t->text.len && r->text_len + t->text.len < sizeof r->text) {
                    memcpy(r->text + r->text_len, t->text.data, t->text.len);
                    r->text_len += t->text.len;
                }
                ifp__server_message__free_unpacked(m, NULL);
            } else {
                r->answer = m;
            }
        }
    }
    int done = 0;
    for (int i = 0; i < n; i++) done += reqs[i].answer != NULL;
    return done;
}

/* Pumps until every request is answered or timeout_ms passed. */
static inline int ct_wait_all(void *sock, ct_req_t *reqs, int n, int timeout_ms) {
    double end = ct_now_ms() + timeout_ms;
    int done = 0;
    while ((done = ct_pump(sock, reqs, n, 50)) < n && ct_now_ms() < end) {}
    return done;
}

static inline const Ifp__Reply *ct_reply(const ct_req_t *r) {
    return r->answer && r->answer->msg_case == IFP__SERVER_MESSAGE__MSG_REPLY ? r->answer->reply : NULL;
}

static inline void ct_req_free(ct_req_t *r) {
    if (r->answer) ifp__server_message__free_unpacked(r->answer, NULL);
    r->answer = NULL;
}

/* Sends one-token greedy probes of `prompt` until one is answered by group
 * `group` (NULL: by any group).  Used to wait for a group to register: the
 * prompt must be one the balancer sends there once it is up.  Returns 0, or
 * -1 after timeout_ms. */
static inline int ct_wait_lands(ct_cluster_t *cl, void *sock, const char *prompt, const char *group, int timeout_ms) {
    double end = ct_now_ms() + timeout_ms;
    ct_params_t p = {.prompt = prompt, .max_tokens = 1, .mode = IFP__MASK_MODE__MASK_INPUT};
    for (int k = 0; ct_now_ms() < end; k++) {
        if (!ct_alive(cl->router)) return -1;
        ct_req_t r;
        char id[32];
        snprintf(id, sizeof id, "probe-%d", k);
        if (ct_send(sock, &r, id, &p)) return -1;
        ct_wait_all(sock, &r, 1, 2000);
        const Ifp__Reply *rep = ct_reply(&r);
        int hit = rep && (!group || (rep->group && !strcmp(rep->group, group)));
        ct_req_free(&r);
        if (hit) return 0;
        usleep(100000);
    }
    return -1;
}

/* Runs argv (NULL-terminated) to completion; *out / *err get its stdout and
 * stderr (malloc'd; stderr must stay small: it is read after stdout).
 * Returns the exit code, or -1 if it was killed. */
static inline char *ct_slurp_fd(int fd) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    if (buf) buf[len] = '\0';
    return buf;
}

static inline int ct_run(const char *const *argv, char **out, char **err) {
    int po[2], pe[2];
    *out = *err = NULL;
    if (pipe(po) || pipe(pe)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1), dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    *out = ct_slurp_fd(po[0]);
    *err = ct_slurp_fd(pe[0]);
    close(po[0]), close(pe[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The router's status (Ping -> Pong) on a connection of its own; the
 * returned ServerMessage is the caller's (ifp__server_message__free_unpacked),
 * NULL if no Pong came within timeout_ms. */
static inline Ifp__ServerMessage *ct_ping(ct_cluster_t *cl, int timeout_ms) {
    void *s = ct_client(cl);
    if (!s) return NULL;
    Ifp__Ping p = IFP__PING__INIT;
    p.id = "ct-ping";
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_PING;
    m.ping = &p;
    Ifp__ServerMessage *got = NULL;
    double end = ct_now_ms() + timeout_ms;
    if (ifp_wire_send(s, NULL, NULL, 0, &m.base) == 0)
        while (!got && ct_now_ms() < end) {
            zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 50) <= 0) continue;
            ifp_frames_t f;
            if (ifp_wire_recv(s, &f, ZMQ_DONTWAIT) < 0) continue;
            Ifp__ServerMessage *x = ifp_wire_server_msg(ifp_frame_data(&f, f.n - 1), ifp_frame_size(&f, f.n - 1));
            ifp_frames_close(&f);
            if (x && x->msg_case == IFP__SERVER_MESSAGE__MSG_PONG) got = x;
            else if (x) ifp__server_message__free_unpacked(x, NULL);
        }
    zmq_close(s);
    return got;
}

/* Counter `name` of a Pong, -1 if absent. */
static inline long long ct_counter(const Ifp__ServerMessage *pong, const char *name) {
    for (size_t i = 0; pong && i < pong->pong->n_counters; i++)
        if (!strcmp(pong->pong->counters[i]->name, name)) return (long long)pong->pong->counters[i]->value;
    return -1;
}

/* Index of group `name` in cl, or -1. */
static inline int ct_group_index(const ct_cluster_t *cl, const char *name) {
    for (int i = 0; i < cl->n_groups; i++)
        if (name && !strcmp(cl->groups[i].name, name)) return i;
    return -1;
}

#endif
