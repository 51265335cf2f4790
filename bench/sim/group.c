/* group.c — one simulated shard group: stage 0's continuous-batching
 * scheduler (as shard/sched.c) feeding a linear pipeline of P stages.
 *
 * A micro-batch of `rows` rows takes ts = t(rows, width) x layers/P on every
 * stage.  Launched at `now` (stage 0 is free), it leaves stage s at
 *   end_0 = now + ts,  end_s = max(end_{s-1} + hop(rows), free_s) + ts,
 * and its sampled tokens are back at stage 0 (and, one net_ms later, at the
 * router) at end_{P-1} + hop_ms.  Stage 0 builds the next micro-batch when it
 * is free again, if some slot has rows to feed and fewer than P micro-batches
 * are in flight.  Micro-batches complete in launch order. */
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

int sim_group_init(sim_t *s, sim_group_t *g) {
    int P = s->p->stages, S = s->p->slots;
    g->free_at = calloc((size_t)P, sizeof *g->free_at);
    g->slot = calloc((size_t)S, sizeof *g->slot);
    g->flight = calloc((size_t)P, sizeof *g->flight);
    g->mark = calloc((size_t)S, sizeof *g->mark);
    if (!g->free_at || !g->slot || !g->flight || !g->mark) return IFP_ENOMEM;
    for (int k = 0; k < S; k++) g->slot[k].req = -1;
    for (int f = 0; f < P; f++) {
        sim_flight_t *fl = &g->flight[f];
        fl->slot = calloc((size_t)S, sizeof *fl->slot);
        fl->rows = calloc((size_t)S, sizeof *fl->rows);
        fl->want = calloc((size_t)S, sizeof *fl->want);
        if (!fl->slot || !fl->rows || !fl->want) return IFP_ENOMEM;
    }
    return IFP_OK;
}

void sim_group_free(sim_group_t *g, int P) {
    if (g->flight)
        for (int f = 0; f < P; f++) {
            free(g->flight[f].slot);
            free(g->flight[f].rows);
            free(g->flight[f].want);
        }
    free(g->flight);
    free(g->free_at);
    free(g->slot);
    free(g->mark);
    memset(g, 0, sizeof *g);
}

static void schedule_wake(sim_t *s, sim_group_t *g, int gi) {
    if (g->wake_pending) return;
    g->wake_pending = 1;
    sim_push(s, g->free_at[0], EV_WAKE, gi, g->epoch);
}

/* Forms and launches one micro-batch if stage 0 is free (shard/sched.c's
 * sh_sched_build: decode rows round robin, at most ceil(decoding / P), then
 * prefill chunks oldest first up to max_prefill rows). */
static void try_build(sim_t *s, int gi) {
    sim_group_t *g = &s->g[gi];
    int P = s->p->stages, S = s->p->slots;
    if (g->dead) return;
    if (g->free_at[0] > s->now) {
        schedule_wake(s, g, gi);
        return;
    }
    if (g->f_len >= P) return;
    int decoding = 0;
    for (int k = 0; k < S; k++) decoding += g->slot[k].req >= 0 && g->slot[k].fed >= g->slot[k].n_prompt;
    sim_flight_t *fl = &g->flight[(g->f_head + g->f_len) % P];
    int cap = (decoding + P - 1) / P, took = 0, last = -1, rows = 0;
    fl->n = 0;
    for (int k = 0; k < S; k++) g->mark[k] = 0;
    for (int i = 0; i < S && took < cap; i++) { /* 1. decode rows */
        int k = (g->rr + i) % S;
        sim_slot_t *sl = &g->slot[k];
        if (sl->req < 0 || !sl->have_token || sl->inflight) continue;
        sl->have_token = 0;
        sl->fed++;
        sl->inflight++;
        g->mark[k] = 1;
        fl->slot[fl->n] = k, fl->rows[fl->n] = 0, fl->want[fl->n] = 1, fl->n++; /* no prompt row */
        rows++, took++, last = k;
    }
    if (last >= 0) g->rr = (last + 1) % S;
    for (int budget = s->p->max_prefill; budget > 0;) { /* 2. prefill chunks */
        int best = -1;
        for (int k = 0; k < S; k++) {
            const sim_slot_t *sl = &g->slot[k];
            if (sl->req < 0 || sl->fed >= sl->n_prompt || g->mark[k]) continue;
            if (best < 0 || sl->order < g->slot[best].order) best = k;
        }
        if (best < 0) break;
        sim_slot_t *sl = &g->slot[best];
        int take = sl->n_prompt - sl->fed < budget ? sl->n_prompt - sl->fed : budget;
        sl->fed += take;
        sl->inflight++;
        g->mark[best] = 1;
        fl->slot[fl->n] = best, fl->rows[fl->n] = take, fl->want[fl->n] = sl->fed == sl->n_prompt, fl->n++;
        rows += take, budget -= take;
    }
    if (rows == 0) return;
    g->f_len++;
    /* the pipeline: every stage takes ts, in order */
    double ts = sim_step_ms(s->st, g->width, rows) * s->layers_per_stage;
    double hop = s->p->hop_ms + rows * 8192.0 / (s->p->link_gbps * 1e9 / 8) * 1e3;
    double end = s->now + ts;
    g->free_at[0] = end;
    for (int st = 1; st < P; st++) {
        double start = end + hop > g->free_at[st] ? end + hop : g->free_at[st];
        end = start + ts;
        g->free_at[st] = end;
    }
    sim_push(s, end + (P > 1 ? s->p->hop_ms : 0), EV_MBDONE, gi, g->epoch);
    schedule_wake(s, g, gi);
}

void sim_group_work(sim_t *s, int gi, int ri) {
    sim_group_t *g = &s->g[gi];
    sim_req_t *r = &s->r[ri];
    int k = 0;
    while (k < s->p->slots && g->slot[k].req >= 0) k++;
    if (k == s->p->slots) { /* cannot happen: the router counts slots; keep the request alive anyway */
        k = 0;
        while (g->slot[k].req >= 0) k++;
    }
    sim_slot_t *sl = &g->slot[k];
    *sl = (sim_slot_t){.req = ri, .n_prompt = r->prompt + r->gen, .order = g->next_order++};
    r->state = RQ_RUNNING;
    g->running++;
    try_build(s, gi);
}

void sim_group_wake(sim_t *s, int gi) {
    s->g[gi].wake_pending = 0;
    try_build(s, gi);
}

void sim_group_mbdone(sim_t *s, int gi) {
    sim_group_t *g = &s->g[gi];
    int P = s->p->stages;
    if (g->f_len == 0) return;
    sim_flight_t *fl = &g->flight[g->f_head];
    g->f_head = (g->f_head + 1) % P;
    g->f_len--;
    double t_router = s->now + s->p->net_ms;
    for (int i = 0; i < fl->n; i++) {
        sim_slot_t *sl = &g->slot[fl->slot[i]];
        int ri = sl->req;
        sl->inflight--;
        sim_req_t *r = &s->r[ri];
        sim_charge(s, ri, fl->rows[i] + fl->want[i]); /* prompt rows fed + the token sampled */
        if (!fl->want[i]) continue;
        s->width_tokens += g->width;
        sim_token(s, ri, t_router);
        if (r->gen >= r->max_new) { /* finished: no other row of the slot is in flight */
            sl->req = -1;
            g->running--;
            sim_finished(s, ri);
        } else {
            sl->have_token = 1;
        }
    }
    try_build(s, gi);
}

int sim_group_kill(sim_t *s, int gi, int *reqs) {
    sim_group_t *g = &s->g[gi];
    int n = 0;
    for (int k = 0; k < s->p->slots; k++)
        if (g->slot[k].req >= 0) {
            reqs[n++] = g->slot[k].req;
            g->slot[k].req = -1;
        }
    g->dead = 1;
    g->epoch++;
    g->f_len = 0;
    g->running = 0;
    g->wake_pending = 0;
    return n;
}
