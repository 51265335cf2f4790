/* reqtable.c — requests in flight: two hash indexes, arrival order, the
 * queue and the per-group running lists (see reqtable.h). */
#include "reqtable.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct rt_reqtable {
    uint64_t next_rid, rid_step;
    int n, n_buckets;           /* n_buckets: power of two */
    rt_req_t **by_rid, **by_cli;
    rt_req_t *first, *last;     /* all, arrival order */
    rt_req_t *qhead, *qtail;
    int qlen;
    int n_state[RT_REQ_N_STATES];
    int n_groups;
    rt_req_t **ghead;           /* [n_groups] */
    int *gcount;                /* [n_groups] */
    int *ccount, n_ccount;      /* requests per client key index */
};

/* ---------------------------------------------------------------- hashing */

static uint64_t mix64(uint64_t x) { /* splitmix64 finalizer */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t cli_hash(const void *ident, int ident_len, const char *id) {
    uint64_t h = fnv(0xcbf29ce484222325ull, ident, (size_t)ident_len);
    h = fnv(h ^ 0xff, id, strlen(id));
    return mix64(h);
}

static size_t slot_rid(const rt_reqtable_t *t, uint64_t rid) { return mix64(rid) & (size_t)(t->n_buckets - 1); }

static size_t slot_cli(const rt_reqtable_t *t, const void *ident, int len, const char *id) {
    return cli_hash(ident, len, id) & (size_t)(t->n_buckets - 1);
}

static void link_hashes(rt_reqtable_t *t, rt_req_t *r) {
    size_t a = slot_rid(t, r->rid), b = slot_cli(t, r->ident, r->ident_len, r->id);
    r->h_rid = t->by_rid[a];
    t->by_rid[a] = r;
    r->h_cli = t->by_cli[b];
    t->by_cli[b] = r;
}

/* Doubles the buckets when the table gets full (best effort: on allocation
 * failure the chains just grow longer). */
static void maybe_grow(rt_reqtable_t *t) {
    if (t->n < t->n_buckets) return;
    int nb = t->n_buckets * 2;
    rt_req_t **a = calloc((size_t)nb, sizeof *a), **b = calloc((size_t)nb, sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return;
    }
    free(t->by_rid);
    free(t->by_cli);
    t->by_rid = a;
    t->by_cli = b;
    t->n_buckets = nb;
    for (rt_req_t *r = t->first; r; r = r->next) link_hashes(t, r);
}

/* ---------------------------------------------------------------- table */

rt_reqtable_t *rt_reqtable_new(uint64_t first_rid, int n_groups) {
    if (n_groups < 0) return NULL;
    rt_reqtable_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->next_rid = first_rid ? first_rid : 1;
    t->rid_step = 1;
    t->n_buckets = 64;
    t->n_groups = n_groups;
    t->by_rid = calloc((size_t)t->n_buckets, sizeof *t->by_rid);
    t->by_cli = calloc((size_t)t->n_buckets, sizeof *t->by_cli);
    t->ghead = calloc((size_t)(n_groups ? n_groups : 1), sizeof *t->ghead);
    t->gcount = calloc((size_t)(n_groups ? n_groups : 1), sizeof *t->gcount);
    if (!t->by_rid || !t->by_cli || !t->ghead || !t->gcount) rt_reqtable_destroy(&t);
    return t;
}

void rt_reqtable_rid_step(rt_reqtable_t *t, uint64_t step) { t->rid_step = step ? step : 1; }

void rt_reqtable_destroy(rt_reqtable_t **tp) {
    if (!tp || !*tp) return;
    rt_reqtable_t *t = *tp;
    for (rt_req_t *r = t->first, *nx; r; r = nx) {
        nx = r->next;
        rt_req_free(r);
    }
    free(t->by_rid);
    free(t->by_cli);
    free(t->ghead);
    free(t->gcount);
    free(t->ccount);
    free(t);
    *tp = NULL;
}

rt_req_t *rt_reqtable_add(rt_reqtable_t *t, const void *ident, int ident_len, const char *id) {
    rt_req_t *r = rt_req_new(t->next_rid, ident, ident_len, id);
    if (!r) return NULL;
    t->next_rid += t->rid_step;
    maybe_grow(t);
    link_hashes(t, r);
    r->prev = t->last;
    if (t->last) t->last->next = r;
    else t->first = r;
    t->last = r;
    t->n++;
    t->n_state[r->state]++;
    return r;
}

static void unlink_chain(rt_req_t **head, rt_req_t *r, int by_rid) {
    for (rt_req_t **pp = head; *pp; pp = by_rid ? &(*pp)->h_rid : &(*pp)->h_cli)
        if (*pp == r) {
            *pp = by_rid ? r->h_rid : r->h_cli;
            return;
        }
}

void rt_reqtable_remove(rt_reqtable_t *t, rt_req_t **rp) {
    if (!rp || !*rp) return;
    rt_req_t *r = *rp;
    rt_reqtable_dequeue(t, r);
    rt_reqtable_group_unlink(t, r);
    unlink_chain(&t->by_rid[slot_rid(t, r->rid)], r, 1);
    unlink_chain(&t->by_cli[slot_cli(t, r->ident, r->ident_len, r->id)], r, 0);
    if (r->prev) r->prev->next = r->next;
    else t->first = r->next;
    if (r->next) r->next->prev = r->prev;
    else t->last = r->prev;
    t->n--;
    t->n_state[r->state]--;
    if (r->client > 0 && r->client <= t->n_ccount) t->ccount[r->client - 1]--;
    rt_req_free(r);
    *rp = NULL;
}

rt_req_t *rt_reqtable_find(const rt_reqtable_t *t, uint64_t rid) {
    for (rt_req_t *r = t->by_rid[slot_rid(t, rid)]; r; r = r->h_rid)
        if (r->rid == rid) return r;
    return NULL;
}

rt_req_t *rt_reqtable_find_client(const rt_reqtable_t *t, const void *ident, int ident_len, const char *id) {
    if (ident_len < 1 || ident_len > RT_IDENT_MAX || !id) return NULL;
    for (rt_req_t *r = t->by_cli[slot_cli(t, ident, ident_len, id)]; r; r = r->h_cli)
        if (r->ident_len == ident_len && memcmp(r->ident, ident, (size_t)ident_len) == 0 && strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

int rt_reqtable_count(const rt_reqtable_t *t) { return t->n; }
rt_req_t *rt_reqtable_first(const rt_reqtable_t *t) { return t->first; }

int rt_reqtable_count_state(const rt_reqtable_t *t, rt_req_state_t s) {
    return (unsigned)s < RT_REQ_N_STATES ? t->n_state[s] : 0;
}

void rt_reqtable_note_state(rt_reqtable_t *t, rt_req_state_t from, rt_req_state_t to) {
    t->n_state[from]--;
    t->n_state[to]++;
}

/* ---------------------------------------------------------------- queue */

void rt_reqtable_enqueue(rt_reqtable_t *t, rt_req_t *r, int at_front) {
    if (r->queued) rt_reqtable_dequeue(t, r);
    if (at_front) {
        r->qprev = NULL;
        r->qnext = t->qhead;
        if (t->qhead) t->qhead->qprev = r;
        else t->qtail = r;
        t->qhead = r;
    } else {
        r->qnext = NULL;
        r->qprev = t->qtail;
        if (t->qtail) t->qtail->qnext = r;
        else t->qhead = r;
        t->qtail = r;
    }
    r->queued = 1;
    t->qlen++;
}

void rt_reqtable_dequeue(rt_reqtable_t *t, rt_req_t *r) {
    if (!r->queued) return;
    if (r->qprev) r->qprev->qnext = r->qnext;
    else t->qhead = r->qnext;
    if (r->qnext) r->qnext->qprev = r->qprev;
    else t->qtail = r->qprev;
    r->qprev = r->qnext = NULL;
    r->queued = 0;
    t->qlen--;
}

rt_req_t *rt_reqtable_queue_head(const rt_reqtable_t *t) { return t->qhead; }
int rt_reqtable_queue_len(const rt_reqtable_t *t) { return t->qlen; }

/* ---------------------------------------------------------------- groups */

void rt_reqtable_group_link(rt_reqtable_t *t, rt_req_t *r, int g) {
    if (g < 0 || g >= t->n_groups) return;
    rt_reqtable_group_unlink(t, r);
    r->gprev = NULL;
    r->gnext = t->ghead[g];
    if (t->ghead[g]) t->ghead[g]->gprev = r;
    t->ghead[g] = r;
    t->gcount[g]++;
    r->group = g;
}

void rt_reqtable_group_unlink(rt_reqtable_t *t, rt_req_t *r) {
    int g = r->group;
    if (g < 0 || g >= t->n_groups) return;
    if (r->gprev) r->gprev->gnext = r->gnext;
    else t->ghead[g] = r->gnext;
    if (r->gnext) r->gnext->gprev = r->gprev;
    r->gprev = r->gnext = NULL;
    t->gcount[g]--;
    r->group = -1;
}

rt_req_t *rt_reqtable_group_first(const rt_reqtable_t *t, int g) {
    return g >= 0 && g < t->n_groups ? t->ghead[g] : NULL;
}

int rt_reqtable_group_count(const rt_reqtable_t *t, int g) { return g >= 0 && g < t->n_groups ? t->gcount[g] : 0; }

int rt_reqtable_set_client(rt_reqtable_t *t, rt_req_t *r, int c) {
    if (c < 0 || r->client) return IFP_EINVAL;
    if (c >= t->n_ccount) {
        int n = c + 16;
        int *p = realloc(t->ccount, (size_t)n * sizeof *p);
        if (!p) return IFP_ENOMEM;
        memset(p + t->n_ccount, 0, (size_t)(n - t->n_ccount) * sizeof *p);
        t->ccount = p;
        t->n_ccount = n;
    }
    t->ccount[c]++;
    r->client = c + 1;
    return IFP_OK;
}

int rt_reqtable_client_count(const rt_reqtable_t *t, int c) { return c >= 0 && c < t->n_ccount ? t->ccount[c] : 0; }
