#include "sched.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

sh_sched_t *sh_sched_new(int n_slots, int ctx, int max_prefill, int depth, int extra) {
    if (n_slots < 1 || ctx < 2 || max_prefill < 1 || depth < 1 || extra < 0 || extra > (1 << 20)) return NULL;
    sh_sched_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_slots = n_slots;
    s->ctx = ctx;
    s->max_prefill = max_prefill;
    s->depth = depth;
    s->prefill_inflight = depth;
    s->extra = extra;
    s->q_cap = n_slots + extra; /* sh_sched_enqueue keeps held() <= n_slots + extra */
    s->slot = calloc((size_t)n_slots, sizeof *s->slot);
    s->queue = calloc((size_t)s->q_cap, sizeof *s->queue);
    s->flight = calloc((size_t)depth, sizeof *s->flight);
    s->mark = calloc((size_t)n_slots, 1);
    s->d_cap = SH_SCHED_FINISHED_PER_SLOT * n_slots;
    s->done = calloc((size_t)s->d_cap, sizeof *s->done);
    int ok = s->slot && s->queue && s->flight && s->mark && s->done;
    for (int i = 0; ok && i < n_slots; i++) ok = (s->slot[i].prompt = malloc(sizeof(int32_t) * (size_t)ctx)) != NULL;
    for (int i = 0; ok && i < depth; i++) ok = (s->flight[i].slots = malloc(sizeof(int) * (size_t)n_slots)) != NULL;
    if (!ok) sh_sched_destroy(&s);
    return s;
}

void sh_sched_destroy(sh_sched_t **sp) {
    if (!sp || !*sp) return;
    sh_sched_t *s = *sp;
    for (int i = 0; s->slot && i < s->n_slots; i++) free(s->slot[i].prompt);
    for (int i = 0; s->flight && i < s->depth; i++) free(s->flight[i].slots);
    for (int i = 0; s->queue && i < s->q_len; i++) sh_work_destroy(&s->queue[(s->q_head + i) % s->q_cap]);
    free(s->slot);
    free(s->queue);
    free(s->flight);
    free(s->mark);
    free(s->done);
    free(s);
    *sp = NULL;
}

int sh_sched_set_prefill_inflight(sh_sched_t *s, int n) {
    s->prefill_inflight = n < 1 || n > s->depth ? s->depth : n;
    return s->prefill_inflight;
}

/* Slot k holds a request that is still to be served: not finished, not
 * cancelled (a finished or cancelled slot is only waiting for its last
 * micro-batch to come back). */
static int holds(const sh_slot_t *sl) { return sl->busy && !sl->cancelled && !sl->finished; }

int sh_sched_held(const sh_sched_t *s) {
    int n = s->q_len;
    for (int k = 0; k < s->n_slots; k++) n += holds(&s->slot[k]);
    return n;
}

int sh_sched_enqueue(sh_sched_t *s, sh_work_t **w) {
    if (sh_sched_held(s) >= s->n_slots + s->extra || s->q_len >= s->q_cap) return -1;
    s->queue[(s->q_head + s->q_len++) % s->q_cap] = *w;
    *w = NULL;
    return 0;
}

int sh_sched_has_rid(const sh_sched_t *s, uint64_t rid) {
    for (int i = 0; i < s->n_slots; i++)
        if (s->slot[i].busy && !s->slot[i].cancelled && s->slot[i].rid == rid) return 1;
    for (int i = 0; i < s->q_len; i++)
        if (s->queue[(s->q_head + i) % s->q_cap]->rid == rid) return 1;
    return 0;
}

int sh_sched_admit(sh_sched_t *s, int *slot, sh_work_t **wp) {
    if (s->q_len == 0) return 0;
    int k = -1;
    for (int i = 0; i < s->n_slots && k < 0; i++)
        if (!s->slot[i].busy) k = i;
    if (k < 0) return 0;
    sh_work_t *w = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
    sh_slot_t *sl = &s->slot[k];
    int32_t *prompt = sl->prompt;
    memset(sl, 0, sizeof *sl);
    sl->prompt = prompt;
    sl->busy = 1;
    sl->rid = w->rid;
    sl->order = s->next_order++;
    sl->n_prompt = w->n_prompt; /* checked: 1 <= n_prompt < ctx */
    memcpy(sl->prompt, w->prompt, sizeof(int32_t) * (size_t)w->n_prompt);
    sl->max_new = w->max_new;
    sl->first_index = w->first_index;
    sl->link = w->link;
    *slot = k;
    *wp = w;
    return 1;
}

void sh_sched_release(sh_sched_t *s, int slot) {
    if (slot < 0 || slot >= s->n_slots) return;
    s->slot[slot].busy = 0;
    s->slot[slot].inflight = 0;
}

/* Removes queue entry i (its work destroyed). */
static void queue_remove(sh_sched_t *s, int i) {
    int at = (s->q_head + i) % s->q_cap;
    sh_work_destroy(&s->queue[at]);
    for (int j = i; j + 1 < s->q_len; j++)
        s->queue[(s->q_head + j) % s->q_cap] = s->queue[(s->q_head + j + 1) % s->q_cap];
    s->q_len--;
}

/* Cancels the request in slot k: freed now if no micro-batch holds it. */
static void slot_cancel(sh_slot_t *sl) {
    sl->cancelled = 1;
    if (sl->inflight == 0) sl->busy = 0;
}

int sh_sched_cancel(sh_sched_t *s, uint64_t rid, int link) {
    for (int i = 0; i < s->q_len; i++) {
        const sh_work_t *w = s->queue[(s->q_head + i) % s->q_cap];
        if (w->rid != rid) continue;
        if (link >= 0 && w->link != link) return 0;
        queue_remove(s, i);
        return 1;
    }
    for (int i = 0; i < s->n_slots; i++) {
        sh_slot_t *sl = &s->slot[i];
        if (!sl->busy || sl->cancelled || sl->rid != rid) continue;
        if (link >= 0 && sl->link != link) return 0;
        slot_cancel(sl);
        return 2;
    }
    return 0;
}

int sh_sched_owner(const sh_sched_t *s, uint64_t rid) {
    for (int i = 0; i < s->q_len; i++) {
        const sh_work_t *w = s->queue[(s->q_head + i) % s->q_cap];
        if (w->rid == rid) return w->link;
    }
    for (int i = 0; i < s->n_slots; i++) {
        const sh_slot_t *sl = &s->slot[i];
        if (sl->busy && !sl->cancelled && sl->rid == rid) return sl->link;
    }
    return -1;
}

int sh_sched_cancel_link(sh_sched_t *s, int link) {
    int n = 0;
    for (int i = 0; i < s->q_len;) {
        if (s->queue[(s->q_head + i) % s->q_cap]->link == link) {
            queue_remove(s, i);
            n++;
        } else {
            i++;
        }
    }
    for (int k = 0; k < s->n_slots; k++) {
        sh_slot_t *sl = &s->slot[k];
        if (!holds(sl) || sl->link != link) continue;
        slot_cancel(sl);
        n++;
    }
    return n;
}

/* Slot k may contribute rows: busy, not done, the prompt or a token to feed,
 * and never past the context. */
static int live(const sh_slot_t *sl, int ctx) { return sl->busy && !sl->cancelled && !sl->finished && sl->fed < ctx; }

int sh_sched_build(sh_sched_t *s, sh_row_t *rows, uint32_t *seq) {
    if (s->f_len >= s->depth) return 0;
    int n = 0, decoding = 0;
    for (int k = 0; k < s->n_slots; k++) {
        const sh_slot_t *sl = &s->slot[k];
        decoding += live(sl, s->ctx) && sl->fed >= sl->n_prompt;
    }
    int cap = (decoding + s->depth - 1) / s->depth, took = 0, last = -1;
    memset(s->mark, 0, (size_t)s->n_slots);
    /* 1. decode rows, round robin */
    for (int i = 0; i < s->n_slots && took < cap; i++) {
        int k = (s->rr + i) % s->n_slots;
        sh_slot_t *sl = &s->slot[k];
        if (!live(sl, s->ctx) || !sl->have_token || sl->inflight) continue;
        assert(sl->fed >= sl->n_prompt); /* a token comes back only after the whole prompt */
        rows[n++] = (sh_row_t){.slot = k, .pos = sl->fed, .token = sl->next, .want = 1};
        sl->fed++;
        sl->have_token = 0;
        s->mark[k] = 1;
        took++;
        last = k;
    }
    if (last >= 0) s->rr = (last + 1) % s->n_slots;
    /* 2. prefill chunks, oldest request first; a slot's next chunk may
     * follow its earlier ones down the pipe (sched.h: why that is exact) */
    int budget = s->max_prefill;
    while (budget > 0) {
        int best = -1;
        for (int k = 0; k < s->n_slots; k++) {
            const sh_slot_t *sl = &s->slot[k];
            if (!live(sl, s->ctx) || sl->fed >= sl->n_prompt || s->mark[k]) continue;
            if (sl->inflight >= s->prefill_inflight) continue;
            if (best < 0 || sl->order < s->slot[best].order) best = k;
        }
        if (best < 0) break;
        sh_slot_t *sl = &s->slot[best];
        int take = sl->n_prompt - sl->fed;
        if (take > budget) take = budget;
        for (int r = 0; r < take; r++, sl->fed++)
            rows[n++] = (sh_row_t){.slot = best, .pos = sl->fed, .token = sl->prompt[sl->fed],
                                   .want = sl->fed + 1 == sl->n_prompt};
        s->mark[best] = 1;
        budget -= take;
    }
    if (n == 0) return 0;
    sh_flight_t *f = &s->flight[(s->f_head + s->f_len++) % s->depth];
    f->seq = *seq = s->next_seq++;
    f->n = 0;
    for (int k = 0; k < s->n_slots; k++)
        if (s->mark[k]) {
            f->slots[f->n++] = k;
            s->slot[k].inflight++;
        }
    return n;
}

/* Remembers a finished request for the heartbeats (the oldest entry goes
 * when the ring is full). */
static void record_done(sh_sched_t *s, const sh_slot_t *sl, double now_ms) {
    if (s->d_len == s->d_cap) {
        s->d_head = (s->d_head + 1) % s->d_cap;
        s->d_len--;
    }
    s->done[(s->d_head + s->d_len++) % s->d_cap] =
        (sh_done_t){.f = {.rid = sl->rid, .tokens = sl->first_index + sl->generated}, .at_ms = now_ms, .link = sl->link};
    s->requests_done++;
}

int sh_sched_complete(sh_sched_t *s, uint32_t seq, const sh_tok_t *tok, int n, double now_ms) {
    if (s->f_len == 0 || s->flight[s->f_head].seq != seq) return -1;
    sh_flight_t *f = &s->flight[s->f_head];
    s->f_head = (s->f_head + 1) % s->depth;
    s->f_len--;
    for (int i = 0; i < f->n; i++) s->slot[f->slots[i]].inflight--;
    for (int i = 0; i < n; i++) {
        int k = tok[i].slot;
        if (k < 0 || k >= s->n_slots || !s->slot[k].busy || s->slot[k].finished) continue;
        sh_slot_t *sl = &s->slot[k];
        if (!(tok[i].flags & SH_TOK_FAILED)) {
            sl->generated++;
            /* a cancelled request's last in-flight tokens go nowhere: once
             * nothing runs, the counter stands still */
            if (!sl->cancelled) s->tokens_generated++;
        }
        if (tok[i].flags & (SH_TOK_FINISHED | SH_TOK_FAILED)) {
            sl->finished = 1;
            if (!sl->cancelled) record_done(s, sl, now_ms);
        } else {
            sl->have_token = 1;
            sl->next = tok[i].token;
        }
    }
    for (int i = 0; i < f->n; i++) {
        sh_slot_t *sl = &s->slot[f->slots[i]];
        if (sl->busy && sl->inflight == 0 && (sl->finished || sl->cancelled || sl->fed >= s->ctx)) sl->busy = 0;
    }
    return 0;
}

int sh_sched_oldest(const sh_sched_t *s, uint32_t *seq) {
    if (s->f_len == 0) return 0;
    *seq = s->flight[s->f_head].seq;
    return 1;
}

int sh_sched_inflight(const sh_sched_t *s) { return s->f_len; }

int sh_sched_busy_slots(const sh_sched_t *s) {
    int n = 0;
    for (int k = 0; k < s->n_slots; k++) n += s->slot[k].busy;
    return n;
}

void sh_sched_stats(const sh_sched_t *s, sh_sched_stats_t *st, uint64_t *rids) {
    uint64_t queued = 0, kv = 0;
    for (int k = 0; k < s->n_slots; k++) {
        const sh_slot_t *sl = &s->slot[k];
        if (!sl->busy) {
            kv += (uint64_t)s->ctx;
            continue;
        }
        kv += (uint64_t)(s->ctx - sl->fed);
        if (!holds(sl)) continue;
        if (sl->fed < sl->n_prompt) queued += (uint64_t)(sl->n_prompt - sl->fed);
        if (sl->generated < sl->max_new) queued += sl->max_new - sl->generated;
    }
    for (int i = 0; i < s->q_len; i++) {
        const sh_work_t *w = s->queue[(s->q_head + i) % s->q_cap];
        queued += (uint64_t)w->n_prompt + w->max_new;
    }
    int held = sh_sched_held(s);
    st->free_slots = held < s->n_slots ? s->n_slots - held : 0;
    st->queued_tokens = queued > UINT32_MAX ? UINT32_MAX : (uint32_t)queued;
    st->kv_free = kv > UINT32_MAX ? UINT32_MAX : (uint32_t)kv;
    st->n_running = rids ? sh_sched_running(s, -1, rids) : held;
    st->tokens_generated = s->tokens_generated;
    st->requests_done = s->requests_done;
}

int sh_sched_running(const sh_sched_t *s, int link, uint64_t *rids) {
    int nr = 0;
    for (int k = 0; k < s->n_slots; k++) {
        const sh_slot_t *sl = &s->slot[k];
        if (holds(sl) && (link < 0 || sl->link == link)) rids[nr++] = sl->rid;
    }
    for (int i = 0; i < s->q_len; i++) {
        const sh_work_t *w = s->queue[(s->q_head + i) % s->q_cap];
        if (link < 0 || w->link == link) rids[nr++] = w->rid;
    }
    return nr;
}

int sh_sched_finished(sh_sched_t *s, int link, double now_ms, double keep_ms, sh_finished_t *out) {
    /* entries are in finishing order, so the ones to drop come first */
    while (s->d_len && now_ms - s->done[s->d_head].at_ms > keep_ms &&
           s->done[s->d_head].listed >= SH_SCHED_FINISHED_BEATS) {
        s->d_head = (s->d_head + 1) % s->d_cap;
        s->d_len--;
    }
    int n = 0;
    for (int i = 0; i < s->d_len; i++) {
        sh_done_t *d = &s->done[(s->d_head + i) % s->d_cap];
        if (link >= 0 && d->link != link) continue;
        d->listed++;
        out[n++] = d->f;
    }
    return n;
}
