/* balancer.c — groups, liveness and the mask-affinity pick (see balancer.h). */
#include "balancer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COV_EPS 1e-12

struct rt_balancer {
    rt_balancer_params_t p;
    int n_layers, d_ffn;
    int n;
    rt_group_t g[RT_MAX_GROUPS];
    int rr;              /* round-robin cursor */
    int capacity;        /* free capacity may have appeared */
    int n_clusters;
    double *demand;      /* [n_clusters] EWMA of requests per tick */
    uint64_t *counts;    /* [n_clusters] requests since the last tick */
};

rt_balancer_params_t rt_balancer_default_params(void) {
    return (rt_balancer_params_t){.min_coverage = 1.0,
                                  .balance_abs = 256,
                                  .balance_rel = 1.5,
                                  .policy = RT_POLICY_AFFINITY,
                                  .liveness_ms = 1000,
                                  .demand_alpha = 0.2};
}

static const char *const POLICY_NAMES[] = {"affinity", "round-robin", "least-loaded", "dense-only"};

int rt_policy_parse(const char *s, rt_policy_t *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, POLICY_NAMES[i]) == 0) {
            *out = (rt_policy_t)i;
            return 0;
        }
    return -1;
}

const char *rt_policy_name(rt_policy_t p) { return (unsigned)p < 4 ? POLICY_NAMES[p] : "?"; }

rt_balancer_t *rt_balancer_new(const rt_balancer_params_t *p, int n_layers, int d_ffn, int n_clusters) {
    if (n_layers <= 0 || d_ffn <= 0 || n_clusters < 0) return NULL;
    rt_balancer_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->p = p ? *p : rt_balancer_default_params();
    b->n_layers = n_layers;
    b->d_ffn = d_ffn;
    b->n_clusters = n_clusters;
    if (n_clusters > 0) {
        b->demand = calloc((size_t)n_clusters, sizeof *b->demand);
        b->counts = calloc((size_t)n_clusters, sizeof *b->counts);
        if (!b->demand || !b->counts) rt_balancer_destroy(&b);
    }
    return b;
}

void rt_balancer_destroy(rt_balancer_t **bp) {
    if (!bp || !*bp) return;
    rt_balancer_t *b = *bp;
    for (int i = 0; i < b->n; i++) ifp_mask_destroy(&b->g[i].uni);
    free(b->demand);
    free(b->counts);
    free(b);
    *bp = NULL;
}

int rt_balancer_set_cluster(rt_balancer_t *b, int gi, int cluster, const ifp_mask_t *uni) {
    if (gi < 0 || gi >= b->n) return IFP_EINVAL;
    if (uni && (uni->n_layers != b->n_layers || uni->d_ffn != b->d_ffn)) return IFP_EINVAL;
    ifp_mask_t *copy = NULL;
    if (uni && !(copy = ifp_mask_clone(uni))) return IFP_ENOMEM;
    rt_group_t *g = &b->g[gi];
    ifp_mask_destroy(&g->uni);
    g->uni = copy;
    g->cluster = cluster;
    g->cost = copy ? ifp_mask_total(copy) : (int64_t)b->n_layers * b->d_ffn;
    return IFP_OK;
}

int rt_balancer_add_group(rt_balancer_t *b, const char *name, int cluster, const ifp_mask_t *uni, int slots) {
    if (b->n >= RT_MAX_GROUPS) return IFP_ERANGE;
    if (!name || !*name || strlen(name) >= IFP_CFG_NAME || slots < 0) return IFP_EINVAL;
    if (rt_balancer_find(b, name, strlen(name)) >= 0) return IFP_EINVAL;
    int gi = b->n++;
    rt_group_t *g = &b->g[gi];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->slots = g->cfg_slots = slots;
    g->stages = 1;
    int rc = rt_balancer_set_cluster(b, gi, cluster, uni);
    if (rc) {
        b->n--;
        return rc;
    }
    return gi;
}

int rt_balancer_find(const rt_balancer_t *b, const char *name, size_t len) {
    for (int i = 0; i < b->n; i++)
        if (strlen(b->g[i].name) == len && memcmp(b->g[i].name, name, len) == 0) return i;
    return -1;
}

int rt_balancer_n_groups(const rt_balancer_t *b) { return b->n; }
rt_group_t *rt_balancer_group(rt_balancer_t *b, int gi) { return gi >= 0 && gi < b->n ? &b->g[gi] : NULL; }
const rt_balancer_params_t *rt_balancer_params(const rt_balancer_t *b) { return &b->p; }

/* ---------------------------------------------------------------- liveness */

int rt_balancer_heartbeat(rt_balancer_t *b, int gi, double now, const rt_heartbeat_t *hb) {
    rt_group_t *g = &b->g[gi];
    int kind = !g->seen                          ? RT_HB_FIRST
               : hb->incarnation != g->incarnation ? RT_HB_RESTARTED
               : !g->alive                       ? RT_HB_REVIVED
                                                 : RT_HB_OK;
    int old_free = g->alive && !g->draining ? rt_balancer_free_slots(b, gi) : 0;
    g->seen = 1;
    g->alive = 1;
    g->last_hb = g->last_seen = now;
    g->incarnation = hb->incarnation;
    int slots = hb->slots > 0 ? hb->slots : g->cfg_slots;
    g->slots = slots < g->cfg_slots ? slots : g->cfg_slots;
    g->draining = hb->draining;
    g->stages = hb->stages > 0 ? hb->stages : 1;
    int free_slots = hb->free_slots < 0 ? 0 : hb->free_slots > g->slots ? g->slots : hb->free_slots;
    int busy = g->slots - free_slots;
    g->hb_busy = busy > g->running ? busy - g->running : 0;
    g->hb_extra = hb->queued_tokens > g->load ? hb->queued_tokens - g->load : 0;
    if (!g->draining && rt_balancer_free_slots(b, gi) > old_free) b->capacity = 1;
    return kind;
}

void rt_balancer_seen(rt_balancer_t *b, int gi, double now) {
    if (gi < 0 || gi >= b->n) return;
    rt_group_t *g = &b->g[gi];
    if (g->alive && now > g->last_seen) g->last_seen = now;
}

int rt_balancer_expire(rt_balancer_t *b, double now, int *dead, int cap) {
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        rt_group_t *g = &b->g[i];
        if (!g->alive || now - g->last_seen <= b->p.liveness_ms) continue;
        g->alive = 0;
        g->hb_busy = 0;
        g->hb_extra = 0;
        g->n_deaths++;
        if (n < cap) dead[n] = i;
        n++;
    }
    return n;
}

double rt_balancer_next_expiry(const rt_balancer_t *b) {
    double t = 0;
    for (int i = 0; i < b->n; i++)
        if (b->g[i].alive) {
            double e = b->g[i].last_seen + b->p.liveness_ms;
            if (t == 0 || e < t) t = e;
        }
    return t;
}

/* ---------------------------------------------------------------- choice */

double rt_balancer_coverage(const rt_balancer_t *b, int gi, const ifp_mask_t *m) {
    const rt_group_t *g = &b->g[gi];
    if (!g->uni) return 1.0;
    if (!m) return (double)g->cost / ((double)b->n_layers * b->d_ffn);
    return ifp_mask_coverage(m, g->uni);
}

void rt_balancer_note_full(rt_balancer_t *b, int gi) {
    rt_group_t *g = &b->g[gi];
    g->hb_busy = g->slots > g->running ? g->slots - g->running : 0;
}

int rt_balancer_free_slots(const rt_balancer_t *b, int gi) {
    const rt_group_t *g = &b->g[gi];
    int f = g->slots - g->running - g->hb_busy;
    return f > 0 ? f : 0;
}

int rt_balancer_total_free(const rt_balancer_t *b) {
    int n = 0;
    for (int i = 0; i < b->n; i++)
        if (b->g[i].alive && !b->g[i].draining) n += rt_balancer_free_slots(b, i);
    return n;
}

static int64_t load_of(const rt_group_t *g) { return g->load + g->hb_extra; }

/* 1 if group x is better than y for the request: higher coverage, then lower
 * cost, then lower load, then lower index. */
static int better(const rt_balancer_t *b, int x, int y, const double *cov) {
    if (cov[x] != cov[y]) return cov[x] > cov[y];
    if (b->g[x].cost != b->g[y].cost) return b->g[x].cost < b->g[y].cost;
    if (load_of(&b->g[x]) != load_of(&b->g[y])) return load_of(&b->g[x]) < load_of(&b->g[y]);
    return x < y;
}

static int less_loaded(const rt_balancer_t *b, int x, int y, const double *cov) {
    if (load_of(&b->g[x]) != load_of(&b->g[y])) return load_of(&b->g[x]) < load_of(&b->g[y]);
    return better(b, x, y, cov);
}

void rt_balancer_coverages(const rt_balancer_t *b, const ifp_mask_t *m, double *cov) {
    for (int i = 0; i < b->n; i++) cov[i] = rt_balancer_coverage(b, i, m);
}

int rt_balancer_pick(rt_balancer_t *b, const ifp_mask_t *m, uint64_t avoid, rt_pick_t *out) {
    double cov[RT_MAX_GROUPS];
    for (int i = 0; i < b->n; i++) cov[i] = avoid >> i & 1 ? 0 : rt_balancer_coverage(b, i, m);
    return rt_balancer_pick_cov(b, m ? cov : NULL, avoid, out);
}

void rt_balancer_capacity_poke(rt_balancer_t *b) { b->capacity = 1; }

int rt_balancer_capacity_changed(rt_balancer_t *b) {
    int c = b->capacity;
    b->capacity = 0;
    return c;
}

int rt_balancer_pick_cov(rt_balancer_t *b, const double *given, uint64_t avoid, rt_pick_t *out) {
    double cov[RT_MAX_GROUPS];
    int elig[RT_MAX_GROUPS], ne = 0, possible = 0;
    out->group = -1;
    out->coverage = 0;
    out->approximate = 0;
    out->spilled = 0;
    out->best_possible = 0;
    for (int i = 0; i < b->n; i++) {
        rt_group_t *g = &b->g[i];
        if (avoid >> i & 1) continue;
        if (b->p.policy == RT_POLICY_DENSE_ONLY && g->uni) continue;
        cov[i] = given ? given[i] : rt_balancer_coverage(b, i, NULL);
        if (cov[i] > out->best_possible) out->best_possible = cov[i];
        if (cov[i] < b->p.min_coverage - COV_EPS) continue;
        possible = 1; /* dead, draining or full groups may take it later */
        if (!g->alive || g->draining || rt_balancer_free_slots(b, i) <= 0) continue;
        elig[ne++] = i;
    }
    if (ne == 0) return possible ? RT_PICK_WAIT : RT_PICK_NEVER;

    int best = elig[0], least = elig[0];
    int64_t lo = load_of(&b->g[elig[0]]), hi = lo;
    for (int k = 1; k < ne; k++) {
        int i = elig[k];
        if (better(b, i, best, cov)) best = i;
        if (less_loaded(b, i, least, cov)) least = i;
        int64_t l = load_of(&b->g[i]);
        if (l < lo) lo = l;
        if (l > hi) hi = l;
    }
    int chosen = best;
    switch (b->p.policy) {
    case RT_POLICY_AFFINITY:
        /* SGLang's two-part test: imbalanced only if both the absolute and
         * the relative gap are large (in tokens) */
        if (hi - lo > b->p.balance_abs && (double)hi > b->p.balance_rel * (double)lo) {
            chosen = least;
            out->spilled = chosen != best;
        }
        break;
    case RT_POLICY_ROUND_ROBIN: {
        chosen = -1;
        for (int k = 0; k < ne && chosen < 0; k++)
            if (elig[k] >= b->rr) chosen = elig[k];
        if (chosen < 0) chosen = elig[0];
        b->rr = chosen + 1;
        break;
    }
    case RT_POLICY_LEAST_LOADED:
    case RT_POLICY_DENSE_ONLY:
        chosen = least;
        break;
    }
    out->group = chosen;
    out->coverage = cov[chosen];
    out->approximate = cov[chosen] < 1.0 - COV_EPS;
    return RT_PICK_OK;
}

/* ---------------------------------------------------------------- accounting */

void rt_balancer_take(rt_balancer_t *b, int gi, int64_t load) {
    rt_group_t *g = &b->g[gi];
    g->running++;
    g->load += load;
    g->n_dispatched++;
}

void rt_balancer_release(rt_balancer_t *b, int gi, int64_t load, int finished) {
    rt_group_t *g = &b->g[gi];
    if (g->running > 0) g->running--;
    g->load -= load;
    if (g->load < 0) g->load = 0;
    if (finished) g->n_finished++;
    b->capacity = 1;
}

void rt_balancer_add_load(rt_balancer_t *b, int gi, int64_t delta) {
    rt_group_t *g = &b->g[gi];
    g->load += delta;
    if (g->load < 0) g->load = 0;
}

/* ---------------------------------------------------------------- demand */

void rt_balancer_note_demand(rt_balancer_t *b, int cluster) {
    if (cluster >= 0 && cluster < b->n_clusters) b->counts[cluster]++;
}

void rt_balancer_demand_tick(rt_balancer_t *b) {
    double a = b->p.demand_alpha;
    for (int c = 0; c < b->n_clusters; c++) {
        b->demand[c] = a * (double)b->counts[c] + (1.0 - a) * b->demand[c];
        b->counts[c] = 0;
    }
}

double rt_balancer_demand(const rt_balancer_t *b, int cluster) {
    return cluster >= 0 && cluster < b->n_clusters ? b->demand[cluster] : 0.0;
}

int rt_balancer_n_clusters(const rt_balancer_t *b) { return b->n_clusters; }
