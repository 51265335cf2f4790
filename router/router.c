/* router.c — rt_router: start-up (model side, balancer, sockets), the poll
 * loop with its timers, shutdown, and the helpers every handler uses
 * (non-blocking send, rate-limited logging). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"
#include "clock.h"

#define RT_FRONT_MAXMSG (4 << 20)   /* a client message larger than this disconnects the client */
#define RT_BACK_MAXMSG (16 << 20)
#define RT_HWM 100000               /* messages queued per peer before sends fail with EAGAIN */
#define RT_DRAIN_BACK 4096          /* messages read per wake-up, backend first */
#define RT_DRAIN_FRONT 1024
#define RT_LOG_PER_SEC 20
#define RT_TASK_CACHE 32
#define RT_MAX_WAIT_MS 1000         /* longest poll even with no timer due */

rt_router_opts_t rt_router_default_opts(void) {
    return (rt_router_opts_t){.verbose = 0, .shutdown_groups = 0, .stats_ms = 2000};
}

/* ---------------------------------------------------------------- helpers */

void rt_log(rt_router_t *R, int kind, const char *fmt, ...) {
    double now = ifp_now_ms();
    if (now - R->rl[kind].window >= 1000) {
        if (R->rl[kind].dropped)
            fprintf(stderr, "ifp-router: (%llu similar messages suppressed)\n",
                    (unsigned long long)R->rl[kind].dropped);
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
    fputs("ifp-router: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int rt_send(rt_router_t *R, void *sock, const void *ident, size_t ident_len, int delim, const ProtobufCMessage *m) {
    (void)R;
    const void *env[2] = {ident, ""};
    size_t env_len[2] = {ident_len, 0};
    return ifp_wire_send_flags(sock, env, env_len, delim ? 2 : 1, m, ZMQ_DONTWAIT);
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
    if (R->cfg.predictor[0]) {
        rc = ifp_predictor_load(R->cfg.predictor, &R->pred, err);
        if (!rc) rc = ifp_predictor_check_target(R->pred, &R->model, err);
        if (rc) return ifp_err_prefix(err, "[model] predictor %s", R->cfg.predictor);
    }
    if (R->cfg.clusters[0]) {
        rc = ifp_cluster_table_load(R->cfg.clusters, &R->clusters, err);
        if (rc) return ifp_err_prefix(err, "[model] clusters");
        if (R->clusters->n_layers != R->model.n_layers || R->clusters->d_ffn != R->model.d_ffn)
            return ifp_errf(err, IFP_EINVAL, "[model] clusters %s: masks of %d layers x %d channels, the model has %d x %d",
                            R->cfg.clusters, R->clusters->n_layers, R->clusters->d_ffn, R->model.n_layers,
                            R->model.d_ffn);
    }
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
                           .have_predictor = R->pred != NULL};
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
    int nc = R->clusters ? R->clusters->n_clusters : 0;
    R->bal = rt_balancer_new(&bp, R->model.n_layers, R->model.d_ffn, nc);
    if (!R->bal) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int i = 0; i < R->cfg.n_groups; i++) {
        const ifp_group_cfg_t *g = &R->cfg.groups[i];
        if (g->cluster != IFP_CLUSTER_DENSE && g->cluster >= nc)
            return ifp_errf(err, IFP_EINVAL, "[group %s] cluster %d: the clusters file has %d clusters", g->name,
                            g->cluster, nc);
        const ifp_mask_t *uni = g->cluster == IFP_CLUSTER_DENSE ? NULL : R->clusters->c[g->cluster].uni;
        if (rt_balancer_add_group(R->bal, g->name, g->cluster, uni, g->slots) < 0)
            return ifp_errf(err, IFP_EINVAL, "[group %s]: cannot add the group", g->name);
    }
    return IFP_OK;
}

static void *router_socket(rt_router_t *R, const char *endpoint, int64_t maxmsg, int handover, ifp_err_t *err) {
    void *s = zmq_socket(R->zctx, ZMQ_ROUTER);
    int one = 1, hwm = RT_HWM, linger = 0;
    if (!s) {
        ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (handover) zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s, endpoint) != 0) {
        ifp_errf(err, IFP_EIO, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* rids differ from any earlier run's */
    R->reqs = rt_reqtable_new(((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) * 1000u);
    R->tasks = rt_taskcache_new(RT_TASK_CACHE);
    R->ids_cap = R->model.ctx + 1;
    R->ids = malloc((size_t)R->ids_cap * sizeof *R->ids);
    R->mask_bytes = ifp_wire_mask_bytes(R->model.n_layers, R->model.d_ffn);
    R->maskbuf = malloc(R->mask_bytes);
    if (!R->reqs || !R->tasks || !R->ids || !R->maskbuf) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(R->zctx = zmq_ctx_new())) {
        rc = ifp_errf(err, IFP_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto fail;
    }
    if (!(R->front = router_socket(R, R->cfg.frontend, RT_FRONT_MAXMSG, 0, err)) ||
        !(R->back = router_socket(R, R->cfg.backend, RT_BACK_MAXMSG, 1, err))) {
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
    if (R->front) zmq_close(R->front);
    if (R->back) zmq_close(R->back);
    if (R->zctx) zmq_ctx_term(R->zctx);
    rt_reqtable_destroy(&R->reqs);
    rt_taskcache_destroy(&R->tasks);
    rt_balancer_destroy(&R->bal);
    ifp_cluster_table_destroy(&R->clusters);
    ifp_predictor_destroy(&R->pred);
    ifp_tokenizer_destroy(&R->tok);
    free(R->ids);
    free(R->maskbuf);
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
    char demand[256] = "";
    at = 0;
    for (int c = 0; c < rt_balancer_n_clusters(R->bal) && c < 16 && at < sizeof demand - 1; c++) {
        int k = snprintf(demand + at, sizeof demand - at, " c%d:%.1f", c, rt_balancer_demand(R->bal, c));
        if (k < 0) break;
        at += (size_t)k;
    }
    const rt_stats_t *s = &R->st, *p = &R->st_last;
    double tps = dt_ms > 0 ? 1000.0 * (double)(s->tokens - p->tokens) / dt_ms : 0;
    fprintf(stderr,
            "ifp-router: stats groups %d/%d [%s ] inflight %d queued %d | req +%llu reply +%llu tok/s %.1f | "
            "bad %llu overloaded %llu cancelled %llu deadline %llu internal %llu | malformed client %llu group %llu "
            "unknown-group %llu | tok dup %llu stale %llu unknown %llu gap %llu bad %llu | replays %llu deaths %llu "
            "restarts %llu lost %llu spills %llu approx %llu send-failed %llu | demand/s%s\n",
            alive, n, groups, rt_reqtable_count(R->reqs), rt_reqtable_queue_len(R->reqs),
            (unsigned long long)(s->requests - p->requests), (unsigned long long)(s->replies - p->replies), tps,
            (unsigned long long)s->bad_requests, (unsigned long long)s->overloaded, (unsigned long long)s->cancelled,
            (unsigned long long)s->deadlines, (unsigned long long)s->internal_errors,
            (unsigned long long)s->client_malformed, (unsigned long long)s->group_malformed,
            (unsigned long long)s->group_unknown, (unsigned long long)s->tok_duplicate,
            (unsigned long long)s->tok_stale, (unsigned long long)s->tok_unknown, (unsigned long long)s->tok_gap,
            (unsigned long long)s->tok_bad, (unsigned long long)s->replays, (unsigned long long)s->group_deaths,
            (unsigned long long)s->group_restarts, (unsigned long long)s->lost_work, (unsigned long long)s->spills,
            (unsigned long long)s->approximate, (unsigned long long)s->send_failed, demand[0] ? demand : " -");
    R->st_last = R->st;
}

/* Expires deadlines; returns the next deadline (0 if none). */
static double check_deadlines(rt_router_t *R, double now) {
    double next = 0;
    for (rt_req_t *r = rt_reqtable_first(R->reqs), *nx; r; r = nx) {
        nx = r->next;
        if (!r->deadline) continue;
        if (r->deadline <= now) {
            char msg[128];
            snprintf(msg, sizeof msg, "deadline of %.0f ms passed after %d tokens", r->deadline - r->t_arrival,
                     r->n_tokens);
            R->st.deadlines++;
            rt_finish(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_DEADLINE, msg, 1);
        } else if (!next || r->deadline < next) {
            next = r->deadline;
        }
    }
    return next;
}

/* Runs every timer that is due; returns when the next one is. */
static double run_timers(rt_router_t *R, double now) {
    rt_check_groups(R, now);
    double next = now + RT_MAX_WAIT_MS, t;
    if ((t = rt_balancer_next_expiry(R->bal)) && t + 1 < next) next = t + 1; /* dead once strictly past */
    if ((t = check_deadlines(R, now)) && t < next) next = t;
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

/* Reads up to cap waiting messages from sock, one handler call each. */
static void drain(rt_router_t *R, void *sock, void (*handle)(rt_router_t *, ifp_frames_t *), int cap) {
    for (int i = 0; i < cap; i++) {
        ifp_frames_t f;
        if (ifp_wire_recv(sock, &f, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN && errno != EINTR) rt_log(R, RT_LOG_SEND, "receive failed: %s", zmq_strerror(errno));
            return;
        }
        handle(R, &f);
        ifp_frames_close(&f);
    }
}

static void shutdown_all(rt_router_t *R) {
    for (rt_req_t *r = rt_reqtable_first(R->reqs), *nx; r; r = nx) {
        nx = r->next;
        rt_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, "the router is shutting down", 1);
    }
    if (R->opt.shutdown_groups)
        for (int i = 0; i < rt_balancer_n_groups(R->bal); i++)
            if (rt_balancer_group(R->bal, i)->seen) rt_send_control(R, i, IFP__CONTROL__KIND__SHUTDOWN, 0);
    int linger = 500; /* let the last replies and controls leave */
    zmq_setsockopt(R->front, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(R->back, ZMQ_LINGER, &linger, sizeof linger);
    if (R->opt.verbose) print_stats(R, 0);
}

int rt_router_run(rt_router_t *R, volatile sig_atomic_t *stop) {
    zmq_pollitem_t items[2] = {{R->back, 0, ZMQ_POLLIN, 0}, {R->front, 0, ZMQ_POLLIN, 0}};
    fprintf(stderr, "ifp-router: clients on %s, groups on %s; %d groups configured, policy %s, model ctx %d vocab %d%s%s\n",
            R->cfg.frontend, R->cfg.backend, rt_balancer_n_groups(R->bal),
            rt_policy_name(rt_balancer_params(R->bal)->policy), R->model.ctx, R->model.vocab,
            R->pred ? ", predictor" : "", R->clusters ? ", clusters" : "");
    while (!*stop) {
        double now = ifp_now_ms();
        double next = run_timers(R, now);
        rt_pump_queue(R); /* batched work before sleeping */
        double wait = ceil(next - ifp_now_ms());
        long timeout = wait < 0 ? 0 : wait > RT_MAX_WAIT_MS ? RT_MAX_WAIT_MS : (long)wait;
        if (zmq_poll(items, 2, timeout) < 0) {
            if (errno == EINTR) continue;
            rt_log(R, RT_LOG_EVENT, "zmq_poll: %s", zmq_strerror(errno));
            if (errno == ETERM) break;
            continue;
        }
        if (items[0].revents & ZMQ_POLLIN) drain(R, R->back, rt_on_group, RT_DRAIN_BACK);
        rt_pump_queue(R); /* freed slots go to queued requests before new arrivals */
        if (items[1].revents & ZMQ_POLLIN) drain(R, R->front, rt_on_client, RT_DRAIN_FRONT);
    }
    fprintf(stderr, "ifp-router: shutting down (%d requests in flight)\n", rt_reqtable_count(R->reqs));
    shutdown_all(R);
    return IFP_OK;
}
