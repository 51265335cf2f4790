#include "shard.h"

#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "kernels.h"
#include "log.h"

/* ---------------------------------------------------------------- aborts */

void sh_abort(const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sh_log("%s; aborting the group (MPI_Abort) so that it restarts and the router replays its work", msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, SH_EXIT_ABORT);
    _exit(SH_EXIT_ABORT); /* MPI_Abort does not return; if it ever did, this rank still must not carry on */
}

uint8_t *sh_ring_acquire_or_abort(sh_group_t *g, int *idx, const char *what) {
    uint8_t *b = sh_ring_acquire_wait(g->ring, idx, g->batch_timeout_ms);
    if (!b)
        sh_abort("cannot send %s: rank %d has not taken any of the %d messages in flight for %.0f ms "
                 "(batch_timeout_ms)",
                 what, g->ring->dest, g->ring->n, g->batch_timeout_ms);
    return b;
}

void sh_ring_send_or_abort(sh_group_t *g, int idx, size_t len, const char *what) {
    if (sh_ring_send(g->ring, idx, len))
        sh_abort("MPI_Isend of %s (%zu bytes) to rank %d failed", what, len, g->ring->dest);
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

void sh_signals_install(void) {
    /* naps of tens of microseconds must not become the default 50 us slack
     * longer: the pipe's wake-up latency is most of its overhead */
    prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int sh_stop_requested(void) { return stop_flag != 0; }

/* ---------------------------------------------------------------- fault hook */

int sh_fault_parse(const char *spec, sh_fault_t *f, char *why, size_t len) {
    *f = (sh_fault_t){0};
    if (!spec || !*spec) return 0;
    char buf[256];
    if (strlen(spec) >= sizeof buf) return snprintf(why, len, "%s is too long", SH_FAULT_ENV), -1;
    strcpy(buf, spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *key = "drop-batch=";
        if (strncmp(item, key, strlen(key)) == 0) {
            const char *v = item + strlen(key);
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (end == v || *end || errno || n < 1 || *v == '-')
                return snprintf(why, len, "%s: drop-batch wants an integer >= 1, got '%s'", SH_FAULT_ENV, v), -1;
            f->drop_batch = n;
        } else {
            return snprintf(why, len, "%s: unknown fault '%s' (known: drop-batch=N)", SH_FAULT_ENV, item), -1;
        }
    }
    return 0;
}

/* Validates the command line against the config; only rank 0 prints. */
static int check_group(const sh_opts_t *o, const ifp_config_file_t *c, int rank, int size,
                       const ifp_group_cfg_t **out) {
    const ifp_group_cfg_t *g = ifp_config_group(c, o->group);
    if (!g) {
        if (rank == 0) {
            char names[IFP_CFG_MAX_GROUPS * (IFP_CFG_NAME + 1) + 8] = "";
            size_t at = 0;
            for (int i = 0; i < c->n_groups && at < sizeof names; i++)
                at += (size_t)snprintf(names + at, sizeof names - at, " %s", c->groups[i].name);
            ifp_logf("ifp-shard", "%s has no group \"%s\"; configured groups:%s", c->path, o->group,
                     c->n_groups ? names : " (none)");
        }
        return 2;
    }
    if (g->stages != size) {
        if (rank == 0)
            ifp_logf(NULL, "ifp-shard %s: the group has stages = %d but the MPI job has %d rank%s: run mpirun -np %d",
                     g->name, g->stages, size, size == 1 ? "" : "s", g->stages);
        return 2;
    }
    *out = g;
    return 0;
}

/* Everything one rank needs besides its stage: sampling (last stage), the
 * router link (stage 0 and last), the send ring and buffers. */
/* The group's CURVE client settings: its own pair (KEYS/groups/NAME.key)
 * and the router's public key (KEYS/router.pub). */
static int link_security(const ifp_config_file_t *cfg, const char *name, ifp_curve_t *c, ifp_err_t *err) {
    memset(c, 0, sizeof *c);
    if (!cfg->curve) return IFP_OK;
    char dir[IFP_KEYS_PATH], base[IFP_KEYS_PATH], secret[IFP_KEYS_PATH + 8], pub[IFP_KEYS_PATH + 8];
    ifp_keys_dir(cfg->keys, dir, sizeof dir);
    ifp_key_base(dir, "group", name, base, sizeof base);
    snprintf(secret, sizeof secret, "%s.key", base);
    ifp_key_base(dir, "router", NULL, base, sizeof base);
    snprintf(pub, sizeof pub, "%s.pub", base);
    int rc = ifp_curve_client_load(dir, secret, pub, 0, c, err);
    if (rc)
        return ifp_err_prefix(err, "group %s: CURVE keys (make the deployment's keys with `ifp keygen --config %s`)",
                              name, ifp_config_file_name(cfg));
    return IFP_OK;
}

static int build_rank(sh_group_t *G, int rank, int size, ifp_err_t *err) {
    const sh_stage_t *s = G->stage;
    const ifp_group_cfg_t *g = G->group;
    size_t mask_bytes = sh_mask_bytes(s->cfg->n_layers, s->cfg->d_ffn);
    size_t cap = sh_batch_bytes(s->max_rows, s->cfg->dim);
    size_t setup = sizeof(sh_hdr_t) + sh_setup_bytes(mask_bytes);
    size_t toks = sizeof(sh_hdr_t) + (size_t)s->max_rows * sizeof(sh_tok_t);
    if (setup > cap) cap = setup;
    if (toks > cap) cap = toks;
    G->msg_cap = cap;
    G->rbuf = malloc(cap);
    G->rows = calloc((size_t)s->max_rows, sizeof *G->rows);
    G->toks = calloc((size_t)s->max_rows, sizeof *G->toks);
    if (!G->rbuf || !G->rows || !G->toks) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    if (s->last && !(G->sampling = sh_sampling_new(s->slots, s->max_rows, s->cfg->vocab, s->ctx, g->name)))
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    if (size > 1) {
        int dest = s->last ? 0 : rank + 1, tag = s->last ? SH_TAG_TOKENS : SH_TAG_PIPE;
        if (!(G->ring = sh_ring_new(s->slots + size + 4, cap, dest, tag)))
            return ifp_errf(err, IFP_ENOMEM, "out of memory for the send ring");
    }
    if (s->first || s->last) {
        /* routing id "G#NONCE" / "G.out#NONCE": a restarted group's new
         * connection never collides with its old one (router/backend.c);
         * the same on the link to every router */
        char id[IFP_CFG_NAME + 32];
        uint64_t nonce = 0;
        if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) nonce = (uint64_t)getpid() * 2654435761u ^ (uint64_t)ifp_now_ms();
        snprintf(id, sizeof id, "%s%s#%016llx", g->name, s->first ? "" : ".out", (unsigned long long)nonce);
        const ifp_config_file_t *c = G->cfg;
        if (c->n_routers < 1 || c->n_routers > IFP_CFG_MAX_ROUTERS)
            return ifp_errf(err, IFP_EINVAL, "the config lists %d routers (1..%d)", c->n_routers, IFP_CFG_MAX_ROUTERS);
        if (!(G->zctx = zmq_ctx_new())) return ifp_errf(err, IFP_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
        zmq_ctx_set(G->zctx, ZMQ_BLOCKY, 0);
        ifp_curve_t curve;
        int rc = link_security(c, g->name, &curve, err);
        for (int i = 0; !rc && i < c->n_routers; i++) {
            /* stage 0 watches its links: a router gone for good has its
             * requests cancelled (routers.c) */
            rc = sh_routerlink_open(&G->links[i], G->zctx, ifp_router_backend_connect(&c->routers[i]), id,
                                    s->max_rows, s->first, &curve, err);
            if (!rc) G->n_links++;
        }
        memset(&curve, 0, sizeof curve);
        if (rc) return rc;
    }
    return IFP_OK;
}

static void free_rank(sh_group_t *G) {
    for (int i = 0; i < G->n_links; i++) sh_routerlink_close(&G->links[i], 500);
    G->n_links = 0;
    if (G->zctx) zmq_ctx_term(G->zctx);
    G->zctx = NULL;
    sh_ring_destroy(&G->ring);
    sh_sampling_destroy(&G->sampling);
    sh_stage_destroy(&G->stage);
    free(G->rbuf);
    free(G->rows);
    free(G->toks);
}

int sh_run(const sh_opts_t *o, int rank, int size) {
    ifp_config_file_t *cfg = calloc(1, sizeof *cfg);
    ifp_err_t err = {0};
    if (!cfg) {
        ifp_logf("ifp-shard", "out of memory");
        return 1;
    }
    if (ifp_config_load(o->config, cfg, &err)) {
        if (rank == 0) ifp_logf("ifp-shard", "%s", err.msg);
        free(cfg);
        return 2;
    }
    sh_group_t G = {.opts = o, .cfg = cfg};
    int code = check_group(o, cfg, rank, size, &G.group);
    if (code) {
        free(cfg);
        return code;
    }
    sh_log_init(G.group->name, rank, o->verbose);
    char why[256];
    if (sh_fault_parse(getenv(SH_FAULT_ENV), &G.fault, why, sizeof why)) {
        if (rank == 0) sh_log("%s", why); /* every rank reads the same environment */
        free(cfg);
        return 2;
    }
    if (G.fault.drop_batch && rank == (size > 1 ? 1 : 0))
        sh_log("test hook %s=%s: this stage will drop micro-batch %lu", SH_FAULT_ENV, getenv(SH_FAULT_ENV),
               G.fault.drop_batch - 1);
    G.batch_timeout_ms = G.group->batch_timeout_ms > 0 ? G.group->batch_timeout_ms : 30000;
    sh_signals_install();
    ifp_blas_threads(o->threads);

    struct stat sb;
    if (stat(cfg->model, &sb) == 0 && sb.st_size > (256 << 20))
        sh_log("loading this stage's layers of %s (%.1f GB file)...", cfg->model, (double)sb.st_size / (1 << 30));
    double t0 = ifp_now_ms();
    int rc = sh_stage_new(cfg, G.group, rank, &G.stage, &err);
    double load_ms = ifp_now_ms() - t0;
    if (!rc) rc = build_rank(&G, rank, size, &err);
    if (rc) sh_log("cannot start: %s", err.msg);
    /* every rank must be ready before any of them talks on the pipe */
    int ok = rc == 0, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ok) {
        if (rc == 0 && rank == 0) sh_log("another stage failed to start; exiting");
        free_rank(&G);
        free(cfg);
        return 1;
    }
    char desc[512];
    sh_stage_describe(G.stage, desc, sizeof desc);
    if (load_ms > 1000) sh_log("%s; loaded in %.1f s", desc, load_ms / 1000);
    else sh_log("%s", desc);
    code = rank == 0 ? sh_intake_loop(&G) : sh_relay_loop(&G);
    free_rank(&G);
    free(cfg);
    return code;
}
