/* router.c — rt_router: start-up (model side, balancer, predictor workers,
 * sockets with limits derived from the configuration), the poll loop with
 * its timers, shutdown, and the helpers every part uses (non-blocking send,
 * rate-limited logging). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "curve.h"
#include "http.h"
#include "log.h"
#include "model.h"
#include "wmat.h"
#include "rt.h"

#define RT_DRAIN_BACK 4096     /* messages read per wake-up, backend first */
#define RT_DRAIN_FRONT 1024
#define RT_LOG_PER_SEC 20
#define RT_TASK_CACHE 32
#define RT_MAX_WAIT_MS 1000    /* longest poll even with no timer due */
#define RT_FRONT_RCVHWM 256    /* messages queued per client connection */
#define RT_FRONT_SNDHWM 1000   /* messages queued per client before a stream defers (resent by the sweep) */
#define RT_HARD_MIN (8 << 20)  /* a client message larger than max(this, 4 x the largest valid) closes its connection */

rt_router_opts_t rt_router_default_opts(void) {
    return (rt_router_opts_t){.verbose = 0, .shutdown_groups = 0, .stats_ms = 2000};
}

/* ---------------------------------------------------------------- helpers */

void rt_log(rt_router_t *R, int kind, const char *fmt, ...) {
    double now = ifp_now_ms();
    if (now - R->rl[kind].window >= 1000) {
        if (R->rl[kind].dropped)
            ifp_logf("ifp-router", "(%llu similar messages suppressed)", (unsigned long long)R->rl[kind].dropped);
        R->rl[kind].window = now;
        R->rl[kind].n = 0;
        R->rl[kind].dropped = 0;
    }
    if (R->rl[kind].n >= RT_LOG_PER_SEC) {
        R->rl[kind].dropped++;
        return;
    }
    R->rl[kind].n++;
    va_list ap;
    va_start(ap, fmt);
    ifp_vlogf("ifp-router", fmt, ap);
    va_end(ap);
}

int rt_send(void *sock, const void *ident, size_t ident_len, int delim, const ProtobufCMessage *m) {
    const void *env[2] = {ident, ""};
    size_t env_len[2] = {ident_len, 0};
    return ifp_wire_send_flags(sock, env, env_len, delim ? 2 : 1, m, ZMQ_DONTWAIT);
}

void rt_printable(char *out, size_t cap, const void *data, size_t len) {
    const unsigned char *p = data;
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) out[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '?';
    out[n] = '\0';
}

uint64_t rt_random64(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) == (ssize_t)sizeof x && x) return x;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^ 1;
}

/* ---------------------------------------------------------------- start-up */

static int load_model_side(rt_router_t *R, ifp_err_t *err) {
    ifp_gguf_t *g = NULL;
    int rc = ifp_gguf_open(R->cfg.model, &g, err);
    if (!rc) rc = ifp_config_from_gguf(g, &R->model, err);
    if (!rc) rc = ifp_tokenizer_from_gguf(g, &R->tok, err);
    ifp_gguf_close(&g);
    if (rc) return ifp_err_prefix(err, "[model] model");
    R->eos = ifp_tokenizer_eos(R->tok);
    if (R->cfg.clusters[0]) {
        rc = ifp_cluster_table_load(R->cfg.clusters, &R->clusters, err);
        if (rc) return ifp_err_prefix(err, "[model] clusters");
        if (R->clusters->n_layers != R->model.n_layers || R->clusters->d_ffn != R->model.d_ffn)
            return ifp_errf(err, IFP_EINVAL, "[model] clusters %s: masks of %d layers x %d channels, the model has %d x %d",
                            R->cfg.clusters, R->clusters->n_layers, R->clusters->d_ffn, R->model.n_layers,
                            R->model.d_ffn);
        R->n_clusters = R->clusters->n_clusters;
    }
    R->have_predictor = R->cfg.predictor[0] != '\0';
    /* the longest text one token can stand for bounds the prompt bytes that
     * could still fit the context */
    size_t longest = 1;
    for (int i = 0; i < ifp_tokenizer_n_vocab(R->tok); i++) {
        const char *p = ifp_tokenizer_raw_piece(R->tok, i);
        if (p && strlen(p) > longest) longest = strlen(p);
    }
    R->lim = (rt_limits_t){.vocab = R->model.vocab,
                           .ctx = R->model.ctx,
                           .max_tokens = R->cfg.max_tokens,
                           .max_tokens_limit = R->cfg.max_tokens_limit,
                           .max_prompt_bytes = (size_t)R->model.ctx * longest + 16,
                           .have_predictor = R->have_predictor};
    R->mask_bytes = ifp_wire_mask_bytes(R->model.n_layers, R->model.d_ffn);
    /* the largest ClientMessage a valid request can be: every field at its
     * limit (prompt text and prompt ids both; ids as unpacked varints) */
    R->front_max_valid = 16 + (RT_ID_MAX + 8) + (R->lim.max_prompt_bytes + 8) + 6 * (size_t)R->model.ctx + 8 +
                         RT_MAX_STOP * (RT_STOP_MAX + 4) + (RT_TASK_MAX + 8) + 128;
    R->front_hard_max = (int64_t)(4 * R->front_max_valid > RT_HARD_MIN ? 4 * R->front_max_valid : RT_HARD_MIN);
    return IFP_OK;
}

static int build_balancer(rt_router_t *R, ifp_err_t *err) {
    rt_balancer_params_t bp = rt_balancer_default_params();
    bp.min_coverage = R->cfg.min_coverage;
    bp.balance_abs = R->cfg.balance_abs;
    bp.balance_rel = R->cfg.balance_rel;
    bp.liveness_ms = (double)R->cfg.liveness * R->cfg.heartbeat_ms;
    if (rt_policy_parse(R->cfg.policy, &bp.policy))
        return ifp_errf(err, IFP_EINVAL, "[router] policy: unknown \"%s\"", R->cfg.policy);
    R->bal = rt_balancer_new(&bp, R->model.n_layers, R->model.d_ffn, R->n_clusters);
    if (!R->bal) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    int max_slots = 1;
    for (int i = 0; i < R->cfg.n_groups; i++) {
        const ifp_group_cfg_t *g = &R->cfg.groups[i];
        if (g->cluster != IFP_CLUSTER_DENSE && g->cluster >= R->n_clusters)
            return ifp_errf(err, IFP_EINVAL, "[group %s] cluster %d: the clusters file has %d clusters", g->name,
                            g->cluster, R->n_clusters);
        const ifp_mask_t *uni = g->cluster == IFP_CLUSTER_DENSE ? NULL : R->clusters->c[g->cluster].uni;
        if (rt_balancer_add_group(R->bal, g->name, g->cluster, uni, g->slots) < 0)
            return ifp_errf(err, IFP_EINVAL, "[group %s]: cannot add the group", g->name);
        if (g->slots > max_slots) max_slots = g->slots;
    }
    /* a group holds at most its slots plus a local queue of 4 x slots, and
     * remembers finished requests for a few heartbeats (docs/PROTOCOL.md) */
    R->hb_max_running = 5 * max_slots + 8;
    R->hb_max_finished = 8 * max_slots + 8;
    int most = R->hb_max_running > R->hb_max_finished ? R->hb_max_running : R->hb_max_finished;
    R->hb_set_cap = 16;
    while (R->hb_set_cap < 2 * most + 2) R->hb_set_cap *= 2;
    R->hb_keys = calloc(2 * (size_t)R->hb_set_cap, sizeof *R->hb_keys);
    R->hb_vals = calloc(2 * (size_t)R->hb_set_cap, sizeof *R->hb_vals);
    if (!R->hb_keys || !R->hb_vals) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    return IFP_OK;
}

static void *router_socket(rt_router_t *R, const char *endpoint, const char *zap_domain, int64_t maxmsg, int rcvhwm,
                           int sndhwm, const ifp_keypair_t *kp, ifp_err_t *err) {
    void *s = zmq_socket(R->zctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    /* ZeroMQ heartbeats: a connection whose peer vanished without closing
     * it (a host gone, a link down) is closed, not kept for good */
    int hb_ivl = 2000, hb_timeout = 10000, hb_ttl = 20000;
    if (!s) {
        ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &hb_ttl, sizeof hb_ttl);
    if (kp && ifp_curve_server(s, kp, zap_domain, err)) {
        zmq_close(s);
        return NULL;
    }
    if (zmq_bind(s, endpoint) != 0) {
        ifp_errf(err, IFP_EIO, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* CURVE: the router's key pair and the table of admitted keys, before any
 * socket binds (a CURVE server with no ZAP handler would admit anyone). */
static int setup_security(rt_router_t *R, ifp_keypair_t *kp, ifp_err_t *err) {
    R->curve = R->cfg.curve;
    ifp_keys_dir(R->cfg.keys, R->keys_dir, sizeof R->keys_dir);
    if (!R->curve) {
        ifp_logf("ifp-router",
                "WARNING: [security] curve = off: clients and groups connect unauthenticated and "
                "every prompt and answer crosses the network in cleartext; anyone who can reach %s or %s can "
                "pose as a group or a client",
                R->cfg.frontend, R->cfg.backend);
        return IFP_OK;
    }
    if (!zmq_has("curve"))
        return ifp_errf(err, IFP_EUNSUPPORTED, "[security] curve = on, but this libzmq was built without CURVE");
    char base[1024], file[1040];
    ifp_key_base(R->keys_dir, "router", NULL, base, sizeof base);
    snprintf(file, sizeof file, "%s.key", base);
    int rc = ifp_key_read_secret(file, kp, err);
    if (rc) return ifp_err_prefix(err, "the router's secret key (make the deployment's keys with `ifp keygen --config "
                                       "%s`)",
                                  ifp_config_file_name(&R->cfg));
    if ((rc = rt_zap_new(R->zctx, &R->zap, err)) || (rc = rt_zap_load(R->zap, &R->cfg, R->keys_dir, err))) return rc;
    return IFP_OK;
}

int rt_router_reload_keys(rt_router_t *R, ifp_err_t *err) {
    if (!R->curve) return ifp_errf(err, IFP_EINVAL, "[security] curve = off: there are no keys to reload");
    ifp_config_file_t *c = malloc(sizeof *c);
    if (!c) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    int rc = R->cfg.path[0] ? ifp_config_load(R->cfg.path, c, err) : ifp_errf(err, IFP_EINVAL, "no config file");
    if (!rc) {
        /* the groups and the keys folder stay those the router started with */
        int same = c->n_groups == R->cfg.n_groups && !strcmp(c->keys, R->cfg.keys) && c->curve == R->cfg.curve;
        for (int i = 0; same && i < c->n_groups; i++) same = !strcmp(c->groups[i].name, R->cfg.groups[i].name);
        /* the running groups with the file's clients (c is scratch now) */
        c->n_groups = R->cfg.n_groups;
        memcpy(c->groups, R->cfg.groups, sizeof c->groups);
        rc = rt_zap_load(R->zap, c, R->keys_dir, err);
        if (!rc) {
            R->cfg.n_clients = c->n_clients;
            memcpy(R->cfg.clients, c->clients, sizeof c->clients);
            int gk, ck;
            unsigned long long refused;
            rt_zap_counts(R->zap, &gk, &ck, &refused);
            ifp_logf("ifp-router", "keys reloaded from %s: %d group keys, %d client keys%s", R->keys_dir, gk, ck,
                    same ? "" : " (other changes to the config take a restart: the groups and [security] stay as they "
                                "were)");
        }
    }
    free(c);
    return rc;
}

/* Predictor workers: the configured count, or the cores left after the
 * event loop (at least one). */
static int predictor_threads(const rt_router_t *R) {
    if (R->cfg.predictor_threads > 0) return R->cfg.predictor_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 2 ? (int)(n - 1) : 1;
}

int rt_router_new(const ifp_config_file_t *cfg, const rt_router_opts_t *opts, rt_router_t **out, ifp_err_t *err) {
    *out = NULL;
    rt_router_t *R = calloc(1, sizeof *R);
    if (!R) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    R->cfg = *cfg;
    R->opt = opts ? *opts : rt_router_default_opts();
    if (R->opt.stats_ms <= 0) R->opt.stats_ms = 2000;
    int rc = load_model_side(R, err);
    if (!rc) rc = build_balancer(R, err);
    if (rc) goto fail;
    if (!(R->metrics = rt_metrics_new(rt_balancer_n_groups(R->bal), R->n_clusters))) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* rids differ from any earlier run's */
    uint64_t first = R->opt.first_rid ? R->opt.first_rid
                                      : ((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) * 1000u;
    int multi = R->cfg.n_routers > 1 && R->cfg.router_index >= 0; /* active-active: rids of their own */
    if (multi) first = first / IFP_CFG_MAX_ROUTERS * IFP_CFG_MAX_ROUTERS + (uint64_t)R->cfg.router_index;
    R->reqs = rt_reqtable_new(first, rt_balancer_n_groups(R->bal));
    if (R->reqs && multi) rt_reqtable_rid_step(R->reqs, IFP_CFG_MAX_ROUTERS);
    R->tasks = rt_taskcache_new(RT_TASK_CACHE, R->mask_bytes, R->n_clusters);
    R->ids_cap = R->model.ctx + 1;
    R->ids = malloc((size_t)R->ids_cap * sizeof *R->ids);
    R->epoch = R->opt.epoch ? R->opt.epoch : rt_random64();
    if (!R->reqs || !R->tasks || !R->ids) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    R->own_zctx = !R->opt.zctx;
    if (!(R->zctx = R->opt.zctx ? R->opt.zctx : zmq_ctx_new())) {
        rc = ifp_errf(err, IFP_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto fail;
    }
    ifp_ggml_type_t pwt = IFP_GGML_F32;
    int pwtype = strcmp(R->cfg.predictor_weight_type, "as-stored") != 0 &&
                         ifp_wtype_parse(R->cfg.predictor_weight_type, &pwt, NULL) == IFP_OK
                     ? (int)pwt
                     : IFP_WTYPE_ASIS;
    rt_predict_params_t pp = {.model = R->cfg.model,
                              .predictor = R->cfg.predictor,
                              .predictor_wtype = pwtype,
                              .clusters = R->clusters,
                              .model_cfg = &R->model,
                              .n_layers = R->model.n_layers,
                              .d_ffn = R->model.d_ffn,
                              .threads = predictor_threads(R),
                              .zctx = R->zctx};
    if ((rc = rt_predict_new(&pp, &R->pred, err))) goto fail;
    ifp_keypair_t kp;
    if ((rc = setup_security(R, &kp, err))) goto fail;
    /* group links: a few messages per slot in each direction */
    int back_hwm = 64 * (R->hb_max_running > 16 ? R->hb_max_running : 16);
    if (back_hwm > 1000) back_hwm = 1000;
    int64_t back_max = (int64_t)R->model.ctx * 8 + (int64_t)R->mask_bytes + ((int64_t)R->hb_max_finished << 6) +
                       (int64_t)(R->hb_max_running + 64) * 1024 + (1 << 20);
    const ifp_keypair_t *server = R->curve ? &kp : NULL;
    R->front = router_socket(R, R->cfg.frontend, IFP_ZAP_FRONTEND, R->front_hard_max, RT_FRONT_RCVHWM, RT_FRONT_SNDHWM,
                             server, err);
    if (R->front) R->back = router_socket(R, R->cfg.backend, IFP_ZAP_BACKEND, back_max, back_hwm, back_hwm, server, err);
    memset(&kp, 0, sizeof kp);
    if (!R->front || !R->back) {
        rc = err ? err->code : IFP_EIO;
        goto fail;
    }
    /* the HTTP gateway's bridge (router/http.h): inproc, in this process only */
    snprintf(R->hsock_ep, sizeof R->hsock_ep, "inproc://ifp-http-bridge-%p", (void *)R);
    if (!(R->hsock = router_socket(R, R->hsock_ep, NULL, R->front_hard_max, 100000, 100000, NULL, err))) {
        rc = err ? err->code : IFP_EIO;
        goto fail;
    }
    *out = R;
    return IFP_OK;
fail:
    rt_router_destroy(&R);
    return rc ? rc : IFP_EINVAL;
}

void rt_router_destroy(rt_router_t **rp) {
    if (!rp || !*rp) return;
    rt_router_t *R = *rp;
    if (R->reqs) /* requests own no predictor job after this: the pool frees them */
        for (rt_req_t *r = rt_reqtable_first(R->reqs); r; r = r->next) r->job = NULL;
    rt_predict_destroy(&R->pred);
    rt_http_destroy(&R->http); /* its thread's socket closes before the context ends */
    if (R->hsock) zmq_close(R->hsock);
    if (R->front) zmq_close(R->front);
    if (R->back) zmq_close(R->back);
    rt_zap_destroy(&R->zap);
    if (R->zctx && R->own_zctx) zmq_ctx_term(R->zctx);
    rt_reqtable_destroy(&R->reqs);
    rt_taskcache_destroy(&R->tasks);
    rt_balancer_destroy(&R->bal);
    rt_metrics_destroy(&R->metrics);
    ifp_cluster_table_destroy(&R->clusters);
    ifp_tokenizer_destroy(&R->tok);
    free(R->ids);
    free(R->hb_keys);
    free(R->hb_vals);
    free(R);
    *rp = NULL;
}

/* ---------------------------------------------------------------- timers */

/* One line: groups (alive, free slots, load) and what happened since the
 * last line. */
static void print_stats(rt_router_t *R, double dt_ms) {
    char groups[1024];
    size_t at = 0;
    int alive = 0, n = rt_balancer_n_groups(R->bal);
    groups[0] = '\0';
    for (int i = 0; i < n && at < sizeof groups - 1; i++) {
        rt_group_t *g = rt_balancer_group(R->bal, i);
        alive += g->alive;
        int k = snprintf(groups + at, sizeof groups - at, " %s:%s%d/%d,%lld", g->name,
                         g->alive ? "" : (g->seen ? "DEAD:" : "down:"), rt_balancer_free_slots(R->bal, i), g->slots,
                         (long long)(g->load + g->hb_extra));
        if (k < 0) break;
        at += (size_t)k;
    }
    const rt_stats_t *s = &R->st, *p = &R->st_last;
    double tps = dt_ms > 0 ? 1000.0 * (double)(s->tokens - p->tokens) / dt_ms : 0;
    ifp_logf("ifp-router",
            "stats groups %d/%d [%s ] inflight %d predicting %d queued %d | req +%llu reply +%llu tok/s "
            "%.1f loop-worst %.1f ms | bad %llu oversize %llu badtext %llu overloaded %llu cancelled %llu deadline "
            "%llu internal %llu | malformed client %llu group %llu hb-refused %llu | tok dup %llu stale %llu unknown "
            "%llu gap %llu bad %llu | replays %llu deaths %llu restarts %llu lost work %llu tokens %llu transit %llu "
            "orphans %llu | spills %llu approx %llu send-failed %llu deferred %llu",
            alive, n, groups, rt_reqtable_count(R->reqs), rt_reqtable_count_state(R->reqs, RT_REQ_PREDICTING),
            rt_reqtable_count_state(R->reqs, RT_REQ_QUEUED), (unsigned long long)(s->requests - p->requests),
            (unsigned long long)(s->replies - p->replies), tps, R->loop_worst_ms, (unsigned long long)s->bad_requests,
            (unsigned long long)s->oversize, (unsigned long long)s->bad_text, (unsigned long long)s->overloaded,
            (unsigned long long)s->cancelled, (unsigned long long)s->deadlines,
            (unsigned long long)s->internal_errors, (unsigned long long)s->client_malformed,
            (unsigned long long)s->group_malformed, (unsigned long long)s->heartbeats_refused,
            (unsigned long long)s->tok_duplicate, (unsigned long long)s->tok_stale,
            (unsigned long long)s->tok_unknown, (unsigned long long)s->tok_gap, (unsigned long long)s->tok_bad,
            (unsigned long long)s->replays, (unsigned long long)s->group_deaths,
            (unsigned long long)s->group_restarts, (unsigned long long)s->lost_work,
            (unsigned long long)s->lost_tokens, (unsigned long long)s->lost_in_transit,
            (unsigned long long)s->orphans_cancelled, (unsigned long long)s->spills,
            (unsigned long long)s->approximate, (unsigned long long)s->send_failed,
            (unsigned long long)s->stream_deferred);
    R->st_last = R->st;
    R->loop_worst_ms = 0;
}

/* Liveness: declares silent groups dead and replays their requests.  Only
 * called once every waiting group message was read. */
static void check_groups(rt_router_t *R, double now) {
    int dead[RT_MAX_GROUPS];
    int n = rt_balancer_expire(R->bal, now, dead, RT_MAX_GROUPS);
    for (int i = 0; i < n && i < RT_MAX_GROUPS; i++) {
        rt_group_t *G = rt_balancer_group(R->bal, dead[i]);
        char why[160];
        snprintf(why, sizeof why, "group %s died (no message for %.0f ms)", G->name, now - G->last_seen);
        R->st.group_deaths++;
        int k = rt_flight_group_lost(R, dead[i], why);
        rt_log(R, RT_LOG_EVENT, "%s; %d requests replayed", why, k);
    }
}

/* Runs the timers that are due; returns when the next one is. */
static double run_timers(rt_router_t *R, double now) {
    double next = now + RT_MAX_WAIT_MS, t;
    if ((t = rt_balancer_next_expiry(R->bal)) && t + 1 < next) next = t + 1; /* dead once strictly past */
    if (now >= R->next_flight) R->next_flight = rt_flight_timers(R, now);
    if (R->next_flight && R->next_flight < next) next = R->next_flight;
    if (now >= R->next_demand) {
        rt_balancer_demand_tick(R->bal);
        R->next_demand = now + 1000;
    }
    if (R->opt.verbose) {
        if (now >= R->next_stats) {
            if (R->next_stats) print_stats(R, now - (R->next_stats - R->opt.stats_ms));
            R->next_stats = now + R->opt.stats_ms;
        }
        if (R->next_stats < next) next = R->next_stats;
    }
    return next;
}

/* ---------------------------------------------------------------- loop */

/* Reads up to cap waiting messages from sock, one handler call each.
 * Returns 1 if the socket was drained (nothing left waiting). */
static int drain(rt_router_t *R, void *sock, void (*handle)(rt_router_t *, ifp_frames_t *), int cap) {
    for (int i = 0; i < cap; i++) {
        ifp_frames_t f;
        if (ifp_wire_recv(sock, &f, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN && errno != EINTR) rt_log(R, RT_LOG_SEND, "receive failed: %s", zmq_strerror(errno));
            return errno != EINTR;
        }
        handle(R, &f);
        ifp_frames_close(&f);
    }
    return 0;
}

static void drain_predictor(rt_router_t *R) {
    for (rt_job_t *j; (j = rt_predict_collect(R->pred));) rt_flight_job_done(R, j);
}

static void shutdown_all(rt_router_t *R) {
    rt_flight_abort_all(R, "the router is shutting down");
    if (R->opt.shutdown_groups)
        for (int i = 0; i < rt_balancer_n_groups(R->bal); i++)
            if (rt_balancer_group(R->bal, i)->seen) rt_group_send_control(R, i, IFP__CONTROL__KIND__SHUTDOWN, 0);
    int linger = 500; /* let the last replies and controls leave */
    zmq_setsockopt(R->front, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(R->back, ZMQ_LINGER, &linger, sizeof linger);
    if (R->opt.verbose) print_stats(R, 0);
}

static void zap_log(void *ctx, const char *line) {
    rt_router_t *R = ctx;
    R->st.auth_refused++;
    rt_log(R, RT_LOG_CLIENT, "%s", line);
}

int rt_router_run(rt_router_t *R, volatile sig_atomic_t *stop) {
    zmq_pollitem_t items[5] = {{R->back, 0, ZMQ_POLLIN, 0},
                               {rt_predict_socket(R->pred), 0, ZMQ_POLLIN, 0},
                               {R->front, 0, ZMQ_POLLIN, 0},
                               {R->hsock, 0, ZMQ_POLLIN, 0},
                               {R->zap ? rt_zap_socket(R->zap) : NULL, 0, ZMQ_POLLIN, 0}};
    int n_items = R->zap ? 5 : 4;
    char who[IFP_CFG_NAME + 40] = "";
    if (R->cfg.n_routers > 1 && R->cfg.router_index >= 0)
        snprintf(who, sizeof who, "router %s (one of %d): ", R->cfg.routers[R->cfg.router_index].name,
                 R->cfg.n_routers);
    ifp_logf("ifp-router",
            "%sclients on %s, groups on %s; %d groups configured, policy %s, model ctx %d vocab %d%s%s; "
            "%d predictor worker%s; requests up to %zu bytes; %s", who,
            R->cfg.frontend, R->cfg.backend, rt_balancer_n_groups(R->bal),
            rt_policy_name(rt_balancer_params(R->bal)->policy), R->model.ctx, R->model.vocab,
            R->have_predictor ? ", predictor" : "", R->clusters ? ", clusters" : "", rt_predict_threads(R->pred),
            rt_predict_threads(R->pred) == 1 ? "" : "s", R->front_max_valid, R->curve ? "CURVE on" : "CURVE OFF (plain)");
    if (R->curve) {
        int gk, ck;
        unsigned long long refused;
        rt_zap_counts(R->zap, &gk, &ck, &refused);
        ifp_logf("ifp-router", "keys from %s: %d group keys, %d client keys admitted", R->keys_dir, gk, ck);
    }
    double next = 0;
    while (!*stop) {
        double wait = ceil(next - ifp_now_ms());
        long timeout = wait < 0 ? 0 : wait > RT_MAX_WAIT_MS ? RT_MAX_WAIT_MS : (long)wait;
        if (zmq_poll(items, n_items, timeout) < 0) {
            if (errno == EINTR) continue;
            rt_log(R, RT_LOG_EVENT, "zmq_poll: %s", zmq_strerror(errno));
            if (errno == ETERM) break;
            continue;
        }
        double t0 = ifp_now_ms();
        if (R->zap && (items[4].revents & ZMQ_POLLIN)) rt_zap_serve(R->zap, zap_log, R);
        if (R->opt.reload && *R->opt.reload) {
            *R->opt.reload = 0;
            ifp_err_t e = {0};
            if ((R->curve || !R->http) && rt_router_reload_keys(R, &e))
                ifp_logf("ifp-router", "keys NOT reloaded (the old ones stay): %s", e.msg);
            if (R->http && rt_http_reload_keys(R->http, &e))
                ifp_logf("ifp-router", "HTTP API keys NOT reloaded (the old ones stay): %s", e.msg);
        }
        /* group messages first: heartbeats and tokens are read before any
         * liveness verdict, and freed slots before new arrivals */
        int drained = drain(R, R->back, rt_on_group, RT_DRAIN_BACK);
        drain_predictor(R);
        if (drained) check_groups(R, ifp_now_ms());
        rt_flight_pump(R);
        if (items[2].revents & ZMQ_POLLIN) drain(R, R->front, rt_on_client, RT_DRAIN_FRONT);
        if (items[3].revents & ZMQ_POLLIN) drain(R, R->hsock, rt_on_bridge, RT_DRAIN_FRONT);
        next = run_timers(R, ifp_now_ms());
        rt_flight_pump(R); /* batched work before sleeping */
        double took = ifp_now_ms() - t0;
        if (took > R->loop_worst_ms) R->loop_worst_ms = took;
        if (!drained) next = 0; /* more group messages wait: no sleep */
    }
    ifp_logf("ifp-router", "shutting down (%d requests in flight)", rt_reqtable_count(R->reqs));
    shutdown_all(R);
    return IFP_OK;
}
