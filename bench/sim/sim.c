/* sim.c — the simulator's event loop: arrivals, one router per cell of
 * groups (the real balancer, router/balancer.h, and the router's FIFO
 * queue), the hot-cluster rebalancer, failure injection and the results.
 * The groups' pipelines are in group.c; the model is described in sim.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"
#include "workload.h"

#define SIM_COV_EPS 1e-12
#define SIM_MAX_REPLAYS 8
#define SIM_DEFAULT_MAX_REQUESTS 4000000

sim_params_t sim_default_params(void) {
    rt_balancer_params_t b = rt_balancer_default_params();
    return (sim_params_t){.groups = 1000, .stages = 4, .slots = 16, .max_prefill = 512, .cell_size = 50, .layers = 56,
                          .dense_frac = 0.1, .rate = 100, .duration_s = 600, .shift_s = -1, .hot_factor = 4,
                          .len_scale = 1, .policy = RT_POLICY_AFFINITY, .min_coverage = b.min_coverage,
                          .balance_rel = b.balance_rel, .balance_abs = b.balance_abs, .queue_max = 256, .net_ms = 0.1,
                          .hop_ms = 0.02, .link_gbps = 100, .router_ms = 1, .rebalance_ms = 2000,
                          .rebalance_ratio = 2, .compact_ms = 2000, .fail_at_s = 30, .seed = 1};
}

int sim_push(sim_t *s, double t, int kind, int a, int b) {
    int rc = sim_heap_push(&s->h, t, kind, a, b);
    if (rc && !s->err) s->err = rc;
    return rc;
}

/* ---------------------------------------------------------------- router queue */

static void q_unlink(sim_cell_t *c, sim_req_t *R, int ri) {
    sim_req_t *r = &R[ri];
    if (r->qprev >= 0) R[r->qprev].qnext = r->qnext; else c->q_head = r->qnext;
    if (r->qnext >= 0) R[r->qnext].qprev = r->qprev; else c->q_tail = r->qprev;
    r->qprev = r->qnext = -1;
    c->q_len--;
}

static void q_push(sim_cell_t *c, sim_req_t *R, int ri, int front) {
    sim_req_t *r = &R[ri];
    r->state = RQ_QUEUED;
    if (front) {
        r->qprev = -1, r->qnext = c->q_head;
        if (c->q_head >= 0) R[c->q_head].qprev = ri; else c->q_tail = ri;
        c->q_head = ri;
    } else {
        r->qnext = -1, r->qprev = c->q_tail;
        if (c->q_tail >= 0) R[c->q_tail].qnext = ri; else c->q_head = ri;
        c->q_tail = ri;
    }
    c->q_len++;
}

/* Which of the cell's groups could ever serve each pool mask: coverage >=
 * min_coverage (dense: always; dense-only: dense groups only), as the
 * balancer decides eligibility. */
static void compute_cover(sim_t *s, sim_cell_t *c) {
    for (int m = 0; m < s->pool->n; m++) {
        uint64_t bits = 0;
        for (int i = 0; i < c->n; i++) {
            int cl = s->g[c->g0 + i].cluster;
            int ok = cl == IFP_CLUSTER_DENSE ||
                     (s->p->policy != RT_POLICY_DENSE_ONLY &&
                      s->cov[(size_t)m * s->n_clusters + cl] >= s->p->min_coverage - SIM_COV_EPS);
            bits |= (uint64_t)ok << i;
        }
        c->cover[m] = bits;
    }
}

/* Places request ri with the real balancer.  Groups the balancer would skip
 * anyway (full, draining, dead, or not covering the mask) are passed in its
 * avoid set, which leaves its choice unchanged (tests/test_sim.c checks it)
 * and saves the coverage computations.  Returns RT_PICK_*. */
static int place(sim_t *s, int ci, int ri, double delay) {
    sim_cell_t *c = &s->c[ci];
    sim_req_t *r = &s->r[ri];
    uint64_t cover = c->cover[r->pool] & ~r->avoid, ready = 0;
    for (int i = 0; i < c->n; i++) {
        const rt_group_t *g = rt_balancer_group(c->b, i);
        if (g->alive && !g->draining && rt_balancer_free_slots(c->b, i) > 0) ready |= 1ull << i;
    }
    rt_pick_t pk;
    int rc = rt_balancer_pick(c->b, s->pool->mask[r->pool], c->all & ~(cover & ready), &pk);
    if (rc != RT_PICK_OK) return cover ? RT_PICK_WAIT : RT_PICK_NEVER;
    int gi = c->g0 + pk.group;
    r->group = gi;
    r->cluster = s->g[gi].cluster;
    r->cov = (float)pk.coverage;
    r->state = RQ_SENT;
    r->charged = r->prompt + r->gen + (r->max_new - r->gen);
    rt_balancer_take(c->b, pk.group, r->charged);
    s->res->spills += pk.spilled;
    sim_push(s, s->now + delay + s->p->net_ms, EV_WORK, gi, ri);
    return RT_PICK_OK;
}

static void fail_request(sim_t *s, int ri) {
    s->r[ri].state = RQ_FAILED;
    s->res->failed++;
    s->in_system--;
}

/* The router's rt_pump_queue: queued requests in order while any slot is
 * free.  Within one pump free slots only shrink, so once a pool mask got
 * WAIT, later requests with that mask (and no avoid set) are skipped. */
static void pump(sim_t *s, int ci) {
    sim_cell_t *c = &s->c[ci];
    c->need_pump = 0;
    if (c->q_len == 0) return;
    s->stamp++;
    int free_slots = rt_balancer_total_free(c->b); /* only placements change it during a pump */
    for (int ri = c->q_head, nx; ri >= 0 && free_slots > 0; ri = nx) {
        sim_req_t *r = &s->r[ri];
        nx = r->qnext;
        if (!r->avoid && s->wait_stamp[r->pool] == s->stamp) continue;
        q_unlink(c, s->r, ri);
        int rc = place(s, ci, ri, 0);
        if (rc == RT_PICK_OK) {
            free_slots--;
        } else if (rc == RT_PICK_NEVER) {
            fail_request(s, ri);
        } else if (rc == RT_PICK_WAIT) {
            if (nx >= 0) { /* back where it was */
                sim_req_t *n = &s->r[nx];
                r->qnext = nx, r->qprev = n->qprev;
                if (n->qprev >= 0) s->r[n->qprev].qnext = ri; else c->q_head = ri;
                n->qprev = ri;
                c->q_len++;
                r->state = RQ_QUEUED;
            } else {
                q_push(c, s->r, ri, 0);
            }
            if (!r->avoid) s->wait_stamp[r->pool] = s->stamp;
        }
    }
}

/* ---------------------------------------------------------------- callbacks from group.c */

void sim_charge(sim_t *s, int ri, int64_t delta) {
    sim_req_t *r = &s->r[ri];
    sim_group_t *g = &s->g[r->group];
    rt_balancer_add_load(s->c[g->cell].b, g->local, -delta);
    r->charged -= delta;
}

void sim_token(sim_t *s, int ri, double t_router) {
    sim_req_t *r = &s->r[ri];
    if (r->gen++ == 0) r->t_first = t_router;
    r->t_last = t_router;
    if (t_router <= s->window_ms) s->res->tokens_window++;
}

void sim_finished(sim_t *s, int ri) {
    sim_req_t *r = &s->r[ri];
    sim_group_t *g = &s->g[r->group];
    sim_cell_t *c = &s->c[g->cell];
    rt_balancer_release(c->b, g->local, r->charged, 1);
    r->charged = 0;
    r->state = RQ_DONE;
    r->t_done = r->t_last;
    s->res->completed++;
    s->completed_window += r->t_done <= s->window_ms;
    s->in_system--;
    c->need_pump = 1;
    if (c->rebal == g->local && g->running == 0 && !g->compacting) { /* drained: reload */
        g->compacting = 1;
        sim_push(s, s->now + s->p->compact_ms, EV_COMPACTED, r->group, g->target);
    }
}

/* ---------------------------------------------------------------- arrivals */

/* Draws the next request's pool example: domain by the mix of the current
 * phase (phase 0: the pool's own mix; phase k >= 1: domain (k-1) mod D hot,
 * weight x hot_factor), then an example of that domain uniformly. */
static int draw_example(sim_t *s) {
    const int *dom_n = s->dom_n;
    const sim_pool_t *P = s->pool;
    int hot = -1;
    double shift_ms = s->p->shift_s < 0 ? s->window_ms / 4 : s->p->shift_s * 1e3;
    if (shift_ms > 0) {
        long phase = (long)(s->now / shift_ms);
        if (phase > 0) hot = (int)((phase - 1) % P->n_domains);
    }
    double total = 0, w[64];
    int D = P->n_domains < 64 ? P->n_domains : 64;
    for (int d = 0; d < D; d++) total += w[d] = dom_n[d] * (d == hot ? s->p->hot_factor : 1.0);
    double u = wl_uniform(&s->rng) * total;
    int d = 0;
    while (d < D - 1 && (u -= w[d]) >= 0) d++;
    while (dom_n[d] == 0) d = (d + 1) % D;
    return s->dom_ex[d][wl_rand(&s->rng) % (uint64_t)dom_n[d]];
}

static int grow_requests(sim_t *s) {
    if (s->n_req < s->cap_req) return 0;
    int cap = s->cap_req ? 2 * s->cap_req : 4096;
    sim_req_t *r = realloc(s->r, (size_t)cap * sizeof *r);
    if (!r) return s->err = IFP_ENOMEM;
    s->r = r, s->cap_req = cap;
    return 0;
}

static void on_arrival(sim_t *s) {
    int max = s->p->max_requests > 0 ? s->p->max_requests : SIM_DEFAULT_MAX_REQUESTS;
    if (grow_requests(s)) return;
    int ri = s->n_req++, ex = draw_example(s);
    sim_req_t *r = &s->r[ri];
    double scale = s->p->len_scale;
    *r = (sim_req_t){.t_arr = s->now, .pool = ex, .group = -1, .cluster = IFP_CLUSTER_DENSE, .qprev = -1, .qnext = -1};
    r->prompt = (int)fmax(1, round(s->pool->prompt_tokens[ex] * scale));
    r->max_new = (int)fmax(1, round(s->pool->answer_tokens[ex] * scale));
    s->res->arrivals++;
    s->in_system++;
    int ci = (int)(wl_rand(&s->rng) % (uint64_t)s->nc); /* the front tier: any router */
    sim_cell_t *c = &s->c[ci];
    rt_balancer_note_demand(c->b, s->pool->nearest[ex]);
    int rc = place(s, ci, ri, s->p->router_ms);
    if (rc == RT_PICK_NEVER) {
        fail_request(s, ri);
    } else if (rc == RT_PICK_WAIT) {
        if (c->q_len < s->p->queue_max) {
            q_push(c, s->r, ri, 0);
        } else {
            r->state = RQ_REJECTED;
            s->res->rejected++;
            s->in_system--;
        }
    }
    double gap = s->p->fixed_arrivals ? 1e3 / s->p->rate : wl_exp(&s->rng, 1e3 / s->p->rate);
    if (s->now + gap <= s->window_ms && s->n_req < max)
        sim_push(s, s->now + gap, EV_ARRIVAL, 0, 0);
    else
        s->arrivals_done = 1;
}

/* ---------------------------------------------------------------- rebalancer */

/* One cell: per cluster, demand (the balancer's EWMA of requests nearest to
 * it) per slot held.  If the hottest cluster's pressure exceeds ratio x the
 * pressure the coldest would have after giving up one group, that coldest
 * cluster's least-loaded group drains, then reloads as the hot cluster
 * (compact_ms).  One move at a time per cell; dense groups stay dense. */
static void rebalance(sim_t *s, int ci) {
    sim_cell_t *c = &s->c[ci];
    int K = s->n_clusters, S = s->p->slots;
    if (c->rebal >= 0 || K < 2) return;
    double supply[256] = {0};
    if (K > 256) return;
    for (int i = 0; i < c->n; i++) {
        const sim_group_t *g = &s->g[c->g0 + i];
        if (g->cluster >= 0 && !g->dead) supply[g->cluster] += S;
    }
    int hot = -1, cold = -1;
    double p_hot = 0, p_cold = 0;
    for (int k = 0; k < K; k++) {
        double d = rt_balancer_demand(c->b, k), p = d / (supply[k] > 0 ? supply[k] : 0.5 * S);
        if (d > 0 && p > p_hot) hot = k, p_hot = p;
        double after = supply[k] > S ? d / (supply[k] - S) : d > 0 ? INFINITY : 0;
        if (supply[k] > 0 && (cold < 0 || after < p_cold)) cold = k, p_cold = after;
    }
    if (hot < 0 || cold < 0 || hot == cold || !(p_hot > s->p->rebalance_ratio * p_cold)) return;
    int best = -1;
    for (int i = 0; i < c->n; i++) {
        const sim_group_t *g = &s->g[c->g0 + i];
        if (g->cluster == cold && !g->dead && (best < 0 || g->running < s->g[c->g0 + best].running)) best = i;
    }
    if (best < 0) return;
    sim_group_t *g = &s->g[c->g0 + best];
    rt_balancer_group(c->b, best)->draining = 1; /* no new work from now on */
    c->rebal = best;
    g->target = hot;
    if (g->running == 0) {
        g->compacting = 1;
        sim_push(s, s->now + s->p->compact_ms, EV_COMPACTED, c->g0 + best, hot);
    } /* else sim_finished starts the reload when its last request is done */
}

static void on_compacted(sim_t *s, int gi, int cluster) {
    sim_group_t *g = &s->g[gi];
    sim_cell_t *c = &s->c[g->cell];
    if (g->dead) return;
    rt_balancer_set_cluster(c->b, g->local, cluster, s->pool->table->c[cluster].uni);
    rt_balancer_group(c->b, g->local)->draining = 0;
    g->cluster = cluster;
    g->width = s->cwidth[cluster];
    g->compacting = 0;
    c->rebal = -1;
    compute_cover(s, c);
    s->res->recompactions++;
    c->need_pump = 1;
}

/* ---------------------------------------------------------------- failures */

/* A request loses its group: the router replays it (DESIGN.md §4) from the
 * tokens already streamed, at the front of its queue, never on that group. */
static void replay(sim_t *s, int ri) {
    sim_req_t *r = &s->r[ri];
    sim_group_t *g = &s->g[r->group];
    sim_cell_t *c = &s->c[g->cell];
    rt_balancer_release(c->b, g->local, r->charged, 0);
    r->charged = 0;
    r->avoid |= 1ull << g->local;
    r->group = -1;
    s->res->replays++;
    if (++r->replays > SIM_MAX_REPLAYS) {
        fail_request(s, ri);
        return;
    }
    q_push(c, s->r, ri, 1);
    c->need_pump = 1;
}

static void on_fail(sim_t *s) {
    int n = s->p->fail_groups < s->ng ? s->p->fail_groups : s->ng;
    int *idx = malloc((size_t)s->ng * sizeof *idx), *held = malloc((size_t)s->p->slots * sizeof *held);
    if (!idx || !held) {
        s->err = IFP_ENOMEM;
        free(idx), free(held);
        return;
    }
    for (int i = 0; i < s->ng; i++) idx[i] = i;
    for (int k = 0; k < n; k++) { /* partial Fisher-Yates: n distinct groups */
        int j = k + (int)(wl_rand(&s->rng) % (uint64_t)(s->ng - k)), gi = idx[j];
        idx[j] = idx[k], idx[k] = gi;
        sim_group_t *g = &s->g[gi];
        sim_cell_t *c = &s->c[g->cell];
        rt_balancer_group(c->b, g->local)->alive = 0;
        if (c->rebal == g->local) c->rebal = -1;
        int nh = sim_group_kill(s, gi, held);
        for (int i = 0; i < nh; i++) replay(s, held[i]);
    }
    for (int ri = 0; ri < s->n_req; ri++) /* work on its way to a dead group */
        if (s->r[ri].state == RQ_SENT && s->g[s->r[ri].group].dead) replay(s, ri);
    for (int ci = 0; ci < s->nc; ci++)
        if (s->c[ci].need_pump) pump(s, ci);
    free(idx), free(held);
}

/* ---------------------------------------------------------------- setup */

/* Clusters of a cell's n_cl cluster groups: proportional to share[k]
 * (largest remainder, ties to the lower cluster). */
static void apportion(const double *share, int K, int n_cl, int *out) {
    double total = 0;
    int given = 0;
    for (int k = 0; k < K; k++) total += share[k];
    int *cnt = calloc((size_t)K, sizeof *cnt);
    double *rem = calloc((size_t)K, sizeof *rem);
    if (!cnt || !rem || total <= 0) {
        for (int i = 0; i < n_cl; i++) out[i] = K ? i % K : IFP_CLUSTER_DENSE;
        free(cnt), free(rem);
        return;
    }
    for (int k = 0; k < K; k++) {
        double q = share[k] / total * n_cl;
        cnt[k] = (int)q, rem[k] = q - cnt[k], given += cnt[k];
    }
    for (; given < n_cl; given++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (rem[k] > rem[best]) best = k;
        cnt[best]++, rem[best] = -1;
    }
    for (int k = 0, i = 0; k < K; k++)
        for (int j = 0; j < cnt[k]; j++) out[i++] = k;
    free(cnt), free(rem);
}

static int setup(sim_t *s) {
    const sim_params_t *p = s->p;
    const sim_pool_t *P = s->pool;
    const ifp_cluster_table_t *T = P->table;
    int K = s->n_clusters = T ? T->n_clusters : 0;
    s->cov = calloc((size_t)P->n * (K ? K : 1), sizeof *s->cov);
    s->cwidth = calloc((size_t)(K ? K : 1), sizeof *s->cwidth);
    double *share = calloc((size_t)(K ? K : 1), sizeof *share);
    s->dom_n = calloc((size_t)P->n_domains, sizeof *s->dom_n);
    s->dom_ex = calloc((size_t)P->n_domains, sizeof *s->dom_ex);
    s->wait_stamp = calloc((size_t)P->n, sizeof *s->wait_stamp);
    if (!s->cov || !s->cwidth || !share || !s->dom_n || !s->dom_ex || !s->wait_stamp) goto oom;
    for (int k = 0; k < K; k++) {
        double kept = ifp_mask_total(T->c[k].uni) / (double)T->n_layers;
        s->cwidth[k] = sim_scale_width(s->st, kept, T->keep, T->d_ffn);
    }
    for (int m = 0; m < P->n; m++) {
        for (int k = 0; k < K; k++) s->cov[(size_t)m * K + k] = ifp_mask_coverage(P->mask[m], T->c[k].uni);
        if (P->nearest[m] >= 0 && P->nearest[m] < K) share[P->nearest[m]] += 1;
        s->dom_n[P->domain[m]]++;
    }
    for (int d = 0; d < P->n_domains; d++)
        if (!(s->dom_ex[d] = malloc((size_t)(s->dom_n[d] ? s->dom_n[d] : 1) * sizeof **s->dom_ex))) goto oom;
    memset(s->dom_n, 0, (size_t)P->n_domains * sizeof *s->dom_n);
    for (int m = 0; m < P->n; m++) s->dom_ex[P->domain[m]][s->dom_n[P->domain[m]]++] = m;

    s->ng = p->groups;
    s->nc = (p->groups + p->cell_size - 1) / p->cell_size;
    s->g = calloc((size_t)s->ng, sizeof *s->g);
    s->c = calloc((size_t)s->nc, sizeof *s->c);
    int *cl = malloc(64 * sizeof *cl);
    if (!s->g || !s->c || !cl) goto oom_cl;
    rt_balancer_params_t bp = rt_balancer_default_params();
    bp.policy = p->policy, bp.min_coverage = p->min_coverage, bp.balance_abs = p->balance_abs;
    bp.balance_rel = p->balance_rel, bp.liveness_ms = 1e300;
    for (int ci = 0, g0 = 0; ci < s->nc; ci++) {
        sim_cell_t *c = &s->c[ci];
        c->n = p->groups / s->nc + (ci < p->groups % s->nc);
        c->g0 = g0, g0 += c->n;
        c->q_head = c->q_tail = c->rebal = -1;
        c->all = c->n == 64 ? ~0ull : (1ull << c->n) - 1;
        c->b = rt_balancer_new(&bp, T ? T->n_layers : 1, T ? T->d_ffn : 1, K);
        c->cover = calloc((size_t)P->n, sizeof *c->cover);
        if (!c->b || !c->cover) goto oom_cl;
        int n_dense = p->policy == RT_POLICY_DENSE_ONLY || K == 0 ? c->n : (int)fmax(1, round(c->n * p->dense_frac));
        if (n_dense > c->n) n_dense = c->n;
        apportion(share, K, c->n - n_dense, cl);
        for (int i = 0; i < c->n; i++) {
            sim_group_t *g = &s->g[c->g0 + i];
            g->cell = ci, g->local = i;
            g->cluster = i < c->n - n_dense ? cl[i] : IFP_CLUSTER_DENSE;
            g->width = g->cluster >= 0 ? s->cwidth[g->cluster] : s->st->d_ffn;
            if (sim_group_init(s, g)) goto oom_cl;
            char name[32];
            snprintf(name, sizeof name, "g%d", c->g0 + i);
            if (rt_balancer_add_group(c->b, name, g->cluster, g->cluster >= 0 ? T->c[g->cluster].uni : NULL,
                                      p->slots) < 0)
                goto oom_cl;
            rt_heartbeat_t hb = {.incarnation = 1, .slots = p->slots, .free_slots = p->slots, .stages = p->stages};
            rt_balancer_heartbeat(c->b, i, 0, &hb);
        }
        compute_cover(s, c);
    }
    free(cl);
    free(share);
    return IFP_OK;
oom_cl:
    free(cl);
oom:
    free(share);
    return IFP_ENOMEM;
}

static void teardown(sim_t *s) {
    for (int i = 0; i < s->ng; i++) sim_group_free(&s->g[i], s->p->stages);
    for (int ci = 0; ci < s->nc; ci++) {
        rt_balancer_destroy(&s->c[ci].b);
        free(s->c[ci].cover);
    }
    if (s->dom_ex)
        for (int d = 0; d < s->pool->n_domains; d++) free(s->dom_ex[d]);
    free(s->dom_ex), free(s->dom_n), free(s->g), free(s->c), free(s->cov), free(s->cwidth), free(s->wait_stamp);
    free(s->r);
    sim_heap_free(&s->h);
}

/* ---------------------------------------------------------------- run */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* p50, p95, p99 (nearest rank) of v[0..n), sorted here. */
static void percentiles(double *v, long n, double *out) {
    static const double P[SIM_NPCT] = {0.50, 0.95, 0.99};
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    for (int k = 0; k < SIM_NPCT; k++) {
        long i = (long)ceil(P[k] * (double)n) - 1;
        out[k] = n ? v[i < 0 ? 0 : i] : 0;
    }
}

static int results(sim_t *s) {
    sim_result_t *o = s->res;
    long n = 0, n_tpot = 0, exact = 0, compact = 0, dense = 0, approx = 0, gen = 0;
    double cov = 0;
    double *ttft = malloc((size_t)(s->n_req + 1) * sizeof *ttft), *tpot = malloc((size_t)(s->n_req + 1) * sizeof *tpot),
           *e2e = malloc((size_t)(s->n_req + 1) * sizeof *e2e);
    if (!ttft || !tpot || !e2e) {
        free(ttft), free(tpot), free(e2e);
        return IFP_ENOMEM;
    }
    for (int i = 0; i < s->n_req; i++) {
        const sim_req_t *r = &s->r[i];
        gen += r->gen;
        if (r->state != RQ_DONE) continue;
        ttft[n] = r->t_first - r->t_arr;
        e2e[n++] = r->t_done - r->t_arr;
        if (r->max_new > 1) tpot[n_tpot++] = (r->t_last - r->t_first) / (r->max_new - 1);
        int ex = r->cov >= 1.0 - 1e-9;
        exact += ex, compact += ex && r->cluster >= 0, dense += r->cluster < 0, approx += !ex;
        cov += r->cov;
    }
    percentiles(ttft, n, o->ttft);
    percentiles(tpot, n_tpot, o->tpot);
    percentiles(e2e, n, o->e2e);
    free(ttft), free(tpot), free(e2e);
    o->window_s = s->window_ms / 1e3;
    o->tps = o->tokens_window / o->window_s;
    o->rps = s->completed_window / o->window_s;
    if (n) {
        o->exact_share = (double)exact / n, o->compact_share = (double)compact / n;
        o->dense_share = (double)dense / n, o->approx_share = (double)approx / n, o->mean_coverage = cov / n;
    }
    o->mean_width = gen ? s->width_tokens / gen : 0;
    o->unfinished = s->in_system;
    o->sim_end_s = s->now / 1e3;
    return IFP_OK;
}

static int check_params(const sim_params_t *p, const sim_pool_t *pool, const sim_steptab_t *st, ifp_err_t *err) {
    if (p->groups < 1 || p->stages < 1 || p->stages > 64 || p->slots < 1 || p->max_prefill < 1 || p->layers < 1)
        return ifp_errf(err, IFP_EINVAL, "groups, stages (1..64), slots, max_prefill and layers must be >= 1");
    if (p->cell_size < 1 || p->cell_size > RT_MAX_GROUPS)
        return ifp_errf(err, IFP_EINVAL, "cell_size must be 1..%d (the balancer's group limit)", RT_MAX_GROUPS);
    if (!(p->rate > 0) || !(p->duration_s > 0) || p->len_scale <= 0 || p->hot_factor <= 0 || p->link_gbps <= 0)
        return ifp_errf(err, IFP_EINVAL, "rate, duration, len_scale, hot_factor and link_gbps must be > 0");
    if (!pool || pool->n < 1 || pool->n_domains < 1 || !st || st->n_width < 1)
        return ifp_errf(err, IFP_EINVAL, "an empty request pool or step-time table");
    for (int m = 0; m < pool->n; m++)
        if (pool->domain[m] < 0 || pool->domain[m] >= pool->n_domains || pool->answer_tokens[m] < 1 ||
            pool->prompt_tokens[m] < 1)
            return ifp_errf(err, IFP_EINVAL, "pool example %d: bad domain or length", m);
    if (p->rebalance && (!(p->rebalance_ms > 0) || p->compact_ms < 0))
        return ifp_errf(err, IFP_EINVAL, "rebalance_ms must be > 0 and compact_ms >= 0");
    return IFP_OK;
}

int sim_run(const sim_params_t *p, const sim_pool_t *pool, const sim_steptab_t *st, sim_result_t *out, ifp_err_t *err) {
    memset(out, 0, sizeof *out);
    int rc = check_params(p, pool, st, err);
    if (rc) return rc;
    sim_t s = {.p = p, .pool = pool, .st = st, .res = out, .rng = p->seed ^ 0x73696d756c61746full};
    s.window_ms = p->duration_s * 1e3;
    s.layers_per_stage = (double)p->layers / p->stages;
    if ((rc = setup(&s))) {
        teardown(&s);
        return ifp_errf(err, rc, "out of memory setting up %d groups", p->groups);
    }
    double first = p->fixed_arrivals ? 0 : wl_exp(&s.rng, 1e3 / p->rate), drain_ms = fmax(60e3, s.window_ms);
    sim_push(&s, first, EV_ARRIVAL, 0, 0);
    sim_push(&s, 1000, EV_DEMAND, 0, 0);
    if (p->rebalance) sim_push(&s, p->rebalance_ms, EV_REBALANCE, 0, 0);
    if (p->fail_groups > 0) sim_push(&s, p->fail_at_s * 1e3, EV_FAIL, 0, 0);
    sim_event_t e;
    while (!s.err && !(s.arrivals_done && s.in_system == 0) && sim_heap_pop(&s.h, &e)) {
        if (e.t > s.window_ms + drain_ms) break; /* what is left stays unfinished */
        s.now = e.t;
        out->events++;
        int cell = -1;
        switch (e.kind) {
        case EV_ARRIVAL: on_arrival(&s); break;
        case EV_WORK:
            if (s.r[e.b].state == RQ_SENT && s.r[e.b].group == e.a && !s.g[e.a].dead) sim_group_work(&s, e.a, e.b);
            break;
        case EV_WAKE:
            if (e.b == s.g[e.a].epoch) sim_group_wake(&s, e.a);
            break;
        case EV_MBDONE:
            if (e.b == s.g[e.a].epoch) sim_group_mbdone(&s, e.a), cell = s.g[e.a].cell;
            break;
        case EV_DEMAND:
            for (int ci = 0; ci < s.nc; ci++) rt_balancer_demand_tick(s.c[ci].b);
            sim_push(&s, s.now + 1000, EV_DEMAND, 0, 0);
            break;
        case EV_REBALANCE:
            for (int ci = 0; ci < s.nc; ci++) rebalance(&s, ci);
            sim_push(&s, s.now + p->rebalance_ms, EV_REBALANCE, 0, 0);
            break;
        case EV_COMPACTED: on_compacted(&s, e.a, e.b), cell = s.g[e.a].cell; break;
        case EV_FAIL: on_fail(&s); break;
        }
        if (cell >= 0 && s.c[cell].need_pump) pump(&s, cell);
    }
    rc = s.err ? s.err : results(&s);
    teardown(&s);
    if (rc) return ifp_errf(err, rc, "out of memory after %ld events", out->events);
    return IFP_OK;
}
