/* reqtable.c — requests in flight: two hash indexes, arrival order, the
 * queue, and token bookkeeping (dedup, gaps, stop strings, replays). */
#include "reqtable.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct rt_reqtable {
    uint64_t next_rid;
    int n, n_buckets;           /* n_buckets: power of two */
    rt_req_t **by_rid, **by_cli;
    rt_req_t *first, *last;     /* all, arrival order */
    rt_req_t *qhead, *qtail;
    int qlen;
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

rt_reqtable_t *rt_reqtable_new(uint64_t first_rid) {
    rt_reqtable_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->next_rid = first_rid ? first_rid : 1;
    t->n_buckets = 64;
    t->by_rid = calloc((size_t)t->n_buckets, sizeof *t->by_rid);
    t->by_cli = calloc((size_t)t->n_buckets, sizeof *t->by_cli);
    if (!t->by_rid || !t->by_cli) rt_reqtable_destroy(&t);
    return t;
}

static void req_free(rt_req_t *r) {
    free(r->id);
    free(r->prompt);
    free(r->tokens);
    free(r->text);
    ifp_mask_destroy(&r->mask);
    free(r);
}

void rt_reqtable_destroy(rt_reqtable_t **tp) {
    if (!tp || !*tp) return;
    rt_reqtable_t *t = *tp;
    for (rt_req_t *r = t->first, *nx; r; r = nx) {
        nx = r->next;
        req_free(r);
    }
    free(t->by_rid);
    free(t->by_cli);
    free(t);
    *tp = NULL;
}

rt_req_t *rt_reqtable_add(rt_reqtable_t *t, const void *ident, int ident_len, const char *id) {
    if (ident_len < 1 || ident_len > RT_IDENT_MAX || !id) return NULL;
    rt_req_t *r = calloc(1, sizeof *r);
    if (!r || !(r->id = strdup(id))) {
        free(r);
        return NULL;
    }
    memcpy(r->ident, ident, (size_t)ident_len);
    r->ident_len = ident_len;
    r->rid = t->next_rid++;
    r->state = RT_REQ_NEW;
    r->group = r->last_group = -1;
    r->mask_cluster = -1;
    r->argmax = -1;
    maybe_grow(t);
    link_hashes(t, r);
    r->prev = t->last;
    if (t->last) t->last->next = r;
    else t->first = r;
    t->last = r;
    t->n++;
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
    unlink_chain(&t->by_rid[slot_rid(t, r->rid)], r, 1);
    unlink_chain(&t->by_cli[slot_cli(t, r->ident, r->ident_len, r->id)], r, 0);
    if (r->prev) r->prev->next = r->next;
    else t->first = r->next;
    if (r->next) r->next->prev = r->prev;
    else t->last = r->prev;
    t->n--;
    req_free(r);
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
    r->state = RT_REQ_QUEUED;
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

/* ---------------------------------------------------------------- work */

int rt_req_set_prompt(rt_req_t *r, const int32_t *ids, int n, int max_new) {
    if (n < 1 || max_new < 1 || r->prompt) return IFP_EINVAL;
    r->prompt = malloc((size_t)n * sizeof *r->prompt);
    r->tokens = malloc((size_t)max_new * sizeof *r->tokens);
    r->text_cap = 64;
    r->text = malloc(r->text_cap);
    if (!r->prompt || !r->tokens || !r->text) return IFP_ENOMEM; /* freed with the request */
    memcpy(r->prompt, ids, (size_t)n * sizeof *ids);
    r->n_prompt = n;
    r->max_new = max_new;
    return IFP_OK;
}

int rt_req_add_stop(rt_req_t *r, const char *s, size_t len) {
    if (r->n_stop >= RT_MAX_STOP || len < 1 || len > RT_STOP_MAX) return IFP_EINVAL;
    memcpy(r->stop[r->n_stop], s, len);
    r->stop[r->n_stop][len] = '\0';
    r->stop_len[r->n_stop++] = (int)len;
    return IFP_OK;
}

/* ---------------------------------------------------------------- tokens */

int rt_req_check_index(const rt_req_t *r, uint32_t index) {
    if (index < (uint32_t)r->n_tokens) return RT_TOK_DUPLICATE;
    if (index > (uint32_t)r->n_tokens) return RT_TOK_GAP;
    return RT_TOK_OK;
}

int32_t rt_req_prev_token(const rt_req_t *r) {
    return r->n_tokens > 0 ? r->tokens[r->n_tokens - 1] : r->prompt[r->n_prompt - 1];
}

static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0 || m > n) return NULL;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

/* Cuts the text at the earliest stop string that ends in the bytes appended
 * after old_len; returns 1 if one matched. */
static int match_stop(rt_req_t *r, size_t old_len) {
    size_t cut = (size_t)-1;
    for (int s = 0; s < r->n_stop; s++) {
        size_t m = (size_t)r->stop_len[s];
        size_t from = old_len >= m - 1 ? old_len - (m - 1) : 0;
        const char *hit = find_bytes(r->text + from, r->text_len - from, r->stop[s], m);
        if (hit && (size_t)(hit - r->text) < cut) cut = (size_t)(hit - r->text);
    }
    if (cut == (size_t)-1) return 0;
    r->text_len = cut;
    return 1;
}

int rt_req_append(rt_req_t *r, int32_t token, int is_eos, const char *piece, size_t len, int group_finish) {
    if (is_eos) {
        r->finish = RT_FIN_EOS;
        return RT_TOK_DONE;
    }
    if (r->n_tokens >= r->max_new) { /* cannot happen: finished at max_new */
        r->finish = RT_FIN_LENGTH;
        return RT_TOK_DONE;
    }
    if (r->text_len + len > r->text_cap) {
        size_t cap = r->text_cap * 2;
        while (cap < r->text_len + len) cap *= 2;
        char *grown = realloc(r->text, cap);
        if (!grown) return IFP_ENOMEM;
        r->text = grown;
        r->text_cap = cap;
    }
    r->tokens[r->n_tokens++] = token;
    size_t old_len = r->text_len;
    if (len) memcpy(r->text + r->text_len, piece, len);
    r->text_len += len;
    if (r->n_stop && match_stop(r, old_len)) r->finish = RT_FIN_STOP;
    else if (group_finish == RT_FIN_LENGTH || group_finish == RT_FIN_EOS) r->finish = group_finish;
    else if (r->n_tokens >= r->max_new) r->finish = RT_FIN_LENGTH;
    return r->finish ? RT_TOK_DONE : RT_TOK_OK;
}

/* Length of the longest suffix of the text that is a proper prefix of some
 * stop string (bytes that may still turn into a match). */
static size_t held_back(const rt_req_t *r) {
    size_t hold = 0;
    for (int s = 0; s < r->n_stop; s++) {
        size_t m = (size_t)r->stop_len[s] - 1;
        if (m > r->text_len) m = r->text_len;
        for (size_t k = m; k > hold; k--)
            if (memcmp(r->text + r->text_len - k, r->stop[s], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

size_t rt_req_stream_text(rt_req_t *r, const char **p) {
    size_t safe = r->finish ? r->text_len : r->text_len - held_back(r);
    if (safe < r->text_sent) safe = r->text_sent;
    *p = r->text + r->text_sent;
    size_t n = safe - r->text_sent;
    r->text_sent = safe;
    return n;
}

int64_t rt_req_load(const rt_req_t *r) {
    if (r->finish) return 0;
    int64_t left = r->max_new - r->n_tokens;
    return (r->prefilled ? 0 : (int64_t)r->n_prompt + r->n_tokens) + (left > 0 ? left : 0);
}

int rt_req_note_replay(rt_req_t *r) {
    if (r->n_replays >= RT_MAX_REPLAYS) return IFP_ERANGE;
    r->replays[r->n_replays++] = (uint32_t)r->n_tokens;
    return IFP_OK;
}

int rt_req_work_prompt(const rt_req_t *r, int32_t *buf, int cap) {
    int n = r->n_prompt + r->n_tokens;
    if (n > cap) return -1;
    memcpy(buf, r->prompt, (size_t)r->n_prompt * sizeof *buf);
    if (r->n_tokens) memcpy(buf + r->n_prompt, r->tokens, (size_t)r->n_tokens * sizeof *buf);
    return n;
}

void rt_req_set_head(rt_req_t *r, const float *logits, int n, int argmax) {
    if (n > RT_HEAD_LOGITS) n = RT_HEAD_LOGITS;
    if (n < 0) n = 0;
    if (n) memcpy(r->head, logits, (size_t)n * sizeof *logits);
    r->n_head = n;
    r->argmax = argmax;
}
