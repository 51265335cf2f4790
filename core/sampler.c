/* sampler.c — next-token sampling: greedy, temperature, top-k, top-p.
 *
 * The pipeline for temperature > 0, over the candidates (every token whose
 * logit is not NaN and not -inf; if there are none, the argmax):
 *
 *   v_i = logit_i * (1 / T)                    scale by temperature (double)
 *   top-k: keep the k best by (v desc, id asc)  then order them best first
 *   e_i = exp(v_i - max v)                     unnormalised softmax, S = sum e_i
 *   top-p: order by (e desc, id asc), keep the shortest prefix whose running
 *          sum reaches top_p * S (at least one token)
 *   draw u = ifp_rng_uniform(seed, pos), walk the kept candidates in their
 *   current order and return the first whose running sum exceeds u * total.
 *
 * Candidates keep token-id order until a truncation sorts them, so every step
 * is a fixed sequence of floating-point operations on (params, logits, pos):
 * equal inputs give equal tokens on every call, with no hidden state.
 *
 * All scratch (one (value, id) pair per vocabulary entry) is allocated by
 * ifp_sampler_new; sampling itself never allocates (no qsort: glibc's may
 * malloc), it uses the heap routines below for both top-k and sorting. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

typedef struct {
    double v; /* scaled logit, then unnormalised probability */
    int id;   /* token id */
} cand_t;

struct ifp_sampler {
    int n_vocab;
    cand_t *c; /* (n_vocab) candidates */
};

ifp_sampler_params_t ifp_sampler_default_params(void) {
    ifp_sampler_params_t p = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 0};
    return p;
}

ifp_sampler_t *ifp_sampler_new(int n_vocab) {
    if (n_vocab <= 0) return NULL;
    ifp_sampler_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = calloc((size_t)n_vocab, sizeof *s->c);
    if (!s->c) {
        free(s);
        return NULL;
    }
    s->n_vocab = n_vocab;
    return s;
}

void ifp_sampler_destroy(ifp_sampler_t **s) {
    if (!s || !*s) return;
    free((*s)->c);
    free(*s);
    *s = NULL;
}

/* ---- random numbers ----------------------------------------------------- */

/* SplitMix64's output finalizer: a bijective 64-bit mix with full avalanche. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

#define IFP_RNG_GOLDEN 0x9E3779B97F4A7C15ull /* 2^64 / phi, odd */
#define IFP_RNG_SEED_SALT 0x243F6A8885A308D3ull /* pi's fraction, keeps seed 0 off 0 */

float ifp_rng_uniform(uint64_t seed, uint64_t pos) {
    uint64_t key = mix64(seed ^ IFP_RNG_SEED_SALT); /* per-request key */
    uint64_t x = mix64(pos * IFP_RNG_GOLDEN + key);  /* SplitMix64 at counter pos */
    x = mix64(x ^ key);                              /* second round */
    return (float)(x >> 40) * (1.0f / 16777216.0f);  /* top 24 bits -> [0,1) exactly */
}

/* ---- ordering ----------------------------------------------------------- */

/* The rank order: larger value first, ties to the lower id.  A strict total
 * order on distinct ids, so any correct sort gives the same sequence. */
static int ranks_before(const cand_t *a, const cand_t *b) {
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

/* Binary heaps over c[0..n), in place.  WORST_ON_TOP keeps the worst-ranked
 * element at the root (top-k selection, heapsort); BEST_ON_TOP the best
 * (extracting the nucleus one token at a time). */
enum { WORST_ON_TOP, BEST_ON_TOP };

static int above(const cand_t *a, const cand_t *b, int kind) {
    return kind == BEST_ON_TOP ? ranks_before(a, b) : ranks_before(b, a);
}

static void sift_down(cand_t *c, int n, int i, int kind) {
    for (;;) {
        int top = i, l = 2 * i + 1, r = l + 1;
        if (l < n && above(&c[l], &c[top], kind)) top = l;
        if (r < n && above(&c[r], &c[top], kind)) top = r;
        if (top == i) return;
        cand_t t = c[i];
        c[i] = c[top];
        c[top] = t;
        i = top;
    }
}

static void heapify(cand_t *c, int n, int kind) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i, kind);
}

/* Moves the root of a heap of n to c[n-1]; the heap is then c[0..n-1). */
static void pop_root(cand_t *c, int n, int kind) {
    cand_t t = c[0];
    c[0] = c[n - 1];
    c[n - 1] = t;
    sift_down(c, n - 1, 0, kind);
}

static int is_rank_sorted(const cand_t *c, int n) {
    for (int i = 1; i < n; i++)
        if (ranks_before(&c[i], &c[i - 1])) return 0;
    return 1;
}

/* Sorts c[0..n) best first (heapsort: in place, no allocation). */
static void rank_sort(cand_t *c, int n) {
    if (is_rank_sorted(c, n)) return;
    heapify(c, n, WORST_ON_TOP);
    for (int h = n; h > 1; h--) pop_root(c, h, WORST_ON_TOP); /* worst to the back */
}

/* Keeps the k best of c[0..n) in c[0..k) (in heap order). 0 < k < n. */
static void select_top_k(cand_t *c, int n, int k) {
    heapify(c, k, WORST_ON_TOP);
    for (int i = k; i < n; i++) {
        if (ranks_before(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0, WORST_ON_TOP);
        }
    }
}

/* ---- top-p -------------------------------------------------------------- */

/* The nucleus of c[0..n) (unnormalised probabilities): the shortest prefix of
 * the rank order whose running sum reaches target, or all n if none does.
 * Leaves it best first in c[0..len), returns len and its sum in *mass.  The
 * tokens beyond it are lost unless all n were taken (then c is a permutation).
 *
 * Pops the best token off a heap until the sum is reached: O(n + len log n),
 * cheap when the nucleus is small next to n. */
static int nucleus(cand_t *c, int n, double target, double *mass) {
    double cum = 0.0;
    int h = n;
    if (is_rank_sorted(c, n)) { /* e.g. after top-k */
        while (h > 0 && cum < target) cum += c[n - h--].v;
        *mass = cum;
        return n - h;
    }
    heapify(c, n, BEST_ON_TOP);
    while (h > 0 && cum < target) {
        pop_root(c, h, BEST_ON_TOP);
        h--;
        cum += c[h].v; /* popped in rank order into c[n-1], c[n-2], ... */
    }
    int len = n - h;
    for (int i = 0; i < len / 2; i++) { /* c[h..n) worst first -> best first */
        cand_t t = c[h + i];
        c[h + i] = c[n - 1 - i];
        c[n - 1 - i] = t;
    }
    memmove(c, c + h, (size_t)len * sizeof *c);
    *mass = cum;
    return len;
}

/* Top-p over c[0..n), unnormalised probabilities summing to total: moves the
 * nucleus, best first, to c[0..len) and returns len; *mass gets its sum.
 *
 * Equal, by construction, to sorting all n and cutting.  A token with
 * p < (1 - top_p) / (n - 1) is never needed (it and the tokens after it would
 * hold < 1 - top_p), so only tokens above half that cutoff are searched
 * first.  They are exactly the head of the full rank order, so if the
 * nucleus ends inside them it is the same nucleus with the same sums; if not
 * (rounding, or top_p < 1/n) the search is repeated over all n. */
static int top_p_cut(cand_t *c, int n, double top_p, double total, double *mass) {
    const double target = top_p * total;
    if (n > 1) {
        const double cutoff = 0.5 * (1.0 - top_p) / (double)(n - 1) * total;
        int f = 0;
        for (int i = 0; i < n; i++) {
            if (c[i].v >= cutoff) {
                cand_t t = c[f];
                c[f] = c[i];
                c[i] = t;
                f++;
            }
        }
        if (f < n) {
            int len = nucleus(c, f, target, mass);
            if (*mass >= target) return len;
        }
    }
    return nucleus(c, n, target, mass);
}

/* ---- sampling ----------------------------------------------------------- */

int ifp_argmax(const float *x, int n) {
    if (!x || n <= 0) return IFP_EINVAL;
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i])) continue; /* NaN ranks below everything, -inf included */
        if (best < 0 || x[i] > x[best]) best = i;
    }
    return best < 0 ? 0 : best;
}

int ifp_sampler_sample(ifp_sampler_t *s, const ifp_sampler_params_t *p, const float *logits, uint64_t pos) {
    if (!s || !p || !logits) return IFP_EINVAL;
    const int n_vocab = s->n_vocab;
    if (!(p->temperature > 0.0f)) return ifp_argmax(logits, n_vocab); /* also NaN */

    /* An infinite temperature flattens every finite logit to equal weight. */
    const double inv_t = isinf(p->temperature) ? 0.0 : 1.0 / (double)p->temperature;
    cand_t *c = s->c;
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        float x = logits[i];
        if (isnan(x) || x == -INFINITY) continue; /* probability 0 */
        c[n].v = isinf(x) ? (double)x : (double)x * inv_t;
        c[n].id = i;
        n++;
    }
    if (n == 0) return ifp_argmax(logits, n_vocab);

    if (p->top_k > 0 && p->top_k < n) {
        select_top_k(c, n, p->top_k);
        n = p->top_k;
        rank_sort(c, n); /* best first: an order independent of the heap */
    }

    double vmax = c[0].v;
    for (int i = 1; i < n; i++)
        if (c[i].v > vmax) vmax = c[i].v;
    /* x == vmax gets weight 1 even when vmax = +inf (inf - inf would be NaN);
     * then every finite logit gets exp(-inf) = 0. */
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].v = c[i].v == vmax ? 1.0 : exp(c[i].v - vmax);
        total += c[i].v;
    }

    if (p->top_p > 0.0f && p->top_p < 1.0f)
        n = top_p_cut(c, n, (double)p->top_p, total, &total);

    /* Inverse CDF: the first candidate whose running sum exceeds u * total.
     * '>' skips zero-probability candidates; the best one has weight 1. */
    const double r = (double)ifp_rng_uniform(p->seed, pos) * total;
    double cum = 0.0;
    int last = c[0].id;
    for (int i = 0; i < n; i++) {
        if (c[i].v <= 0.0) continue;
        cum += c[i].v;
        last = c[i].id;
        if (cum > r) return c[i].id;
    }
    return last; /* only if rounding left r >= cum */
}
