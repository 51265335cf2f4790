#define _GNU_SOURCE /* qsort_r */
#include "mask.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"
#include "gguf.h"

/* Storage: kept[l] points into one block of n_layers * d_ffn ints, so any
 * layer can grow to d_ffn without reallocation. */
ifp_mask_t *ifp_mask_new(int n_layers, int d_ffn) {
    if (n_layers <= 0 || d_ffn <= 0 || n_layers > 4096 || d_ffn > (1 << 22)) return NULL;
    ifp_mask_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n_layers = n_layers;
    m->d_ffn = d_ffn;
    m->n_kept = calloc((size_t)n_layers, sizeof *m->n_kept);
    m->kept = calloc((size_t)n_layers, sizeof *m->kept);
    int32_t *block = malloc((size_t)n_layers * d_ffn * sizeof *block);
    if (!m->n_kept || !m->kept || !block) {
        free(block);
        ifp_mask_destroy(&m);
        return NULL;
    }
    for (int l = 0; l < n_layers; l++) m->kept[l] = block + (size_t)l * d_ffn;
    return m;
}

ifp_mask_t *ifp_mask_dense(int n_layers, int d_ffn) {
    ifp_mask_t *m = ifp_mask_new(n_layers, d_ffn);
    if (!m) return NULL;
    for (int l = 0; l < n_layers; l++) {
        for (int j = 0; j < d_ffn; j++) m->kept[l][j] = j;
        m->n_kept[l] = d_ffn;
    }
    return m;
}

ifp_mask_t *ifp_mask_clone(const ifp_mask_t *src) {
    ifp_mask_t *m = ifp_mask_new(src->n_layers, src->d_ffn);
    if (!m) return NULL;
    for (int l = 0; l < src->n_layers; l++) {
        memcpy(m->kept[l], src->kept[l], (size_t)src->n_kept[l] * sizeof(int32_t));
        m->n_kept[l] = src->n_kept[l];
    }
    return m;
}

void ifp_mask_destroy(ifp_mask_t **mp) {
    if (!mp || !*mp) return;
    ifp_mask_t *m = *mp;
    if (m->kept) free(m->kept[0]);
    free(m->kept);
    free(m->n_kept);
    free(m);
    *mp = NULL;
}

int ifp_mask_set_layer(ifp_mask_t *m, int l, const int32_t *kept, int n, ifp_err_t *err) {
    if (l < 0 || l >= m->n_layers) return ifp_errf(err, IFP_ERANGE, "mask layer %d out of range [0, %d)", l, m->n_layers);
    if (n == 0) {
        m->n_kept[l] = 0;
        return IFP_OK;
    }
    int rc = ifp_kept_validate(kept, n, m->d_ffn, l, err);
    if (rc) return rc;
    memcpy(m->kept[l], kept, (size_t)n * sizeof *kept);
    m->n_kept[l] = n;
    return IFP_OK;
}

int ifp_mask_validate(const ifp_mask_t *m, ifp_err_t *err) {
    for (int l = 0; l < m->n_layers; l++) {
        if (m->n_kept[l] == 0) continue;
        int rc = ifp_kept_validate(m->kept[l], m->n_kept[l], m->d_ffn, l, err);
        if (rc) return rc;
    }
    return IFP_OK;
}

/* ---- top-k ----
 * The order: score descending, then index ascending.  A NaN score ranks as
 * -inf (after every other score, tied with -inf and broken by index) and -0
 * ties +0: the rule of the sort this replaced, kept as ifp_mask_set_topk_ref.
 * topk_key maps a score to a 32-bit key whose unsigned order is that score
 * order (equal keys = equal scores), so the k best channels are those whose
 * keys exceed the k-th largest key t, plus the lowest-indexed channels equal
 * to t. */
static inline uint32_t topk_key(float x) {
    uint32_t u, a;
    memcpy(&u, &x, sizeof u);
    a = u & 0x7FFFFFFFu;
    u = a > 0x7F800000u ? 0xFF800000u : a == 0 ? 0 : u; /* NaN ranks as -inf; -0 == +0 */
    return u ^ ((uint32_t)-(int32_t)(u >> 31) | 0x80000000u); /* negative: flip all; positive: set the sign bit */
}

/* Radix select, O(d) with no scratch but the layer's own kept block: the
 * keys are written there (as uint32), then up to three counting passes over
 * bits 31..21, 20..10 and 9..0 narrow down the bucket holding the k-th
 * largest key; one ascending pass then writes the kept channels over the
 * keys already read (position n <= j), sorted by construction. */
int ifp_mask_set_topk(ifp_mask_t *m, int l, const float *scores, int k) {
    if (l < 0 || l >= m->n_layers || k < 0 || k > m->d_ffn) return IFP_ERANGE;
    const int d = m->d_ffn;
    int32_t *out = m->kept[l];
    m->n_kept[l] = k;
    if (k == 0) return IFP_OK;
    if (k == d) {
        for (int j = 0; j < d; j++) out[j] = j;
        return IFP_OK;
    }
    uint32_t *key = (uint32_t *)out; /* int32_t storage read as its unsigned type */
    uint32_t hist[1 << 11];
    static const int shift[3] = {21, 10, 0}, width[3] = {11, 11, 10};
    uint32_t prefix = 0, fixed = 0; /* the bits of t known so far, and which bits those are */
    int need = k;                   /* of the keys matching prefix, how many are kept */
    for (int pass = 0; pass < 3; pass++) {
        const int sh = shift[pass];
        const uint32_t nb = 1u << width[pass], bmask = nb - 1;
        memset(hist, 0, nb * sizeof *hist);
        if (pass == 0) { /* the keys in blocks of 16 (vectorized at -O2 too), then the histogram */
            int j = 0;
            for (; j + 16 <= d; j += 16)
                for (int i = 0; i < 16; i++) key[j + i] = topk_key(scores[j + i]);
            for (; j < d; j++) key[j] = topk_key(scores[j]);
            for (j = 0; j < d; j++) hist[key[j] >> sh]++;
        } else {
            for (int j = 0; j < d; j++)
                if ((key[j] & fixed) == prefix) hist[(key[j] >> sh) & bmask]++;
        }
        uint32_t b = bmask; /* buckets from the highest: every key above bucket b is kept */
        while (hist[b] < (uint32_t)need) need -= (int)hist[b--];
        prefix |= b << sh;
        fixed |= bmask << sh;
        if (hist[b] == (uint32_t)need) { /* the whole bucket is kept: t is its lowest key */
            need = d;
            break;
        }
    }
    const uint32_t t = prefix;
    int n = 0;
    for (int j = 0; j < d; j++) { /* branch-free: x > t is a coin flip the predictor would miss */
        uint32_t x = key[j];
        int tie = (x == t) & (need > 0);
        out[n] = j; /* n <= j: over a key already read */
        n += (x > t) | tie;
        need -= tie;
    }
    assert(n == k);
    return IFP_OK;
}

/* The reference: a sort of every index by (score desc, index asc), then of
 * the k kept indices. */
static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *scores = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float x = scores[i], y = scores[j];
    if (x != x) x = -INFINITY; /* NaN scores rank last: keeps the order total */
    if (y != y) y = -INFINITY;
    if (x > y) return -1;
    if (x < y) return 1;
    return (i > j) - (i < j);
}
static int cmp_i32(const void *a, const void *b) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    return (i > j) - (i < j);
}

int ifp_mask_set_topk_ref(ifp_mask_t *m, int l, const float *scores, int k) {
    if (l < 0 || l >= m->n_layers || k < 0 || k > m->d_ffn) return IFP_ERANGE;
    int32_t *idx = m->kept[l];
    for (int j = 0; j < m->d_ffn; j++) idx[j] = j;
    qsort_r(idx, (size_t)m->d_ffn, sizeof *idx, cmp_desc, (void *)scores); /* thread-safe: no global */
    qsort(idx, (size_t)k, sizeof *idx, cmp_i32);
    m->n_kept[l] = k;
    return IFP_OK;
}

int ifp_mask_total(const ifp_mask_t *m) {
    int t = 0;
    for (int l = 0; l < m->n_layers; l++) t += m->n_kept[l];
    return t;
}

int ifp_mask_equal(const ifp_mask_t *a, const ifp_mask_t *b) {
    if (a->n_layers != b->n_layers || a->d_ffn != b->d_ffn) return 0;
    for (int l = 0; l < a->n_layers; l++)
        if (a->n_kept[l] != b->n_kept[l] || memcmp(a->kept[l], b->kept[l], (size_t)a->n_kept[l] * sizeof(int32_t)))
            return 0;
    return 1;
}

/* Merge-walks two sorted lists: counts the intersection. */
int ifp_kept_intersection(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0, j = 0, c = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) c++, i++, j++;
        else if (a[i] < b[j]) i++;
        else j++;
    }
    return c;
}

int64_t ifp_mask_intersection_size(const ifp_mask_t *a, const ifp_mask_t *b) {
    int64_t c = 0;
    int nl = a->n_layers < b->n_layers ? a->n_layers : b->n_layers;
    for (int l = 0; l < nl; l++) c += ifp_kept_intersection(a->kept[l], a->n_kept[l], b->kept[l], b->n_kept[l]);
    return c;
}

double ifp_mask_jaccard_distance(const ifp_mask_t *a, const ifp_mask_t *b) {
    int64_t inter = ifp_mask_intersection_size(a, b);
    int64_t uni = (int64_t)ifp_mask_total(a) + ifp_mask_total(b) - inter;
    return uni == 0 ? 0.0 : 1.0 - (double)inter / (double)uni;
}

double ifp_mask_layer_overlap(const ifp_mask_t *a, const ifp_mask_t *b, int l) {
    if (a->n_kept[l] == 0) return 1.0;
    return (double)ifp_kept_intersection(a->kept[l], a->n_kept[l], b->kept[l], b->n_kept[l]) / a->n_kept[l];
}

double ifp_mask_coverage(const ifp_mask_t *m, const ifp_mask_t *u) {
    int total = ifp_mask_total(m);
    return total == 0 ? 1.0 : (double)ifp_mask_intersection_size(m, u) / total;
}

static int check_shape(const ifp_mask_t *out, const ifp_mask_t *a, const ifp_mask_t *b) {
    if (a->n_layers != b->n_layers || a->d_ffn != b->d_ffn || out->n_layers != a->n_layers || out->d_ffn != a->d_ffn)
        return IFP_EINVAL;
    return IFP_OK;
}

/* out may alias a or b: results are built in a scratch layer first. */
static int merge(ifp_mask_t *out, const ifp_mask_t *a, const ifp_mask_t *b, int want_union) {
    if (check_shape(out, a, b)) return IFP_EINVAL;
    int32_t *tmp = malloc((size_t)a->d_ffn * sizeof *tmp);
    if (!tmp) return IFP_ENOMEM;
    for (int l = 0; l < a->n_layers; l++) {
        const int32_t *x = a->kept[l], *y = b->kept[l];
        int nx = a->n_kept[l], ny = b->n_kept[l], i = 0, j = 0, n = 0;
        while (i < nx || j < ny) {
            if (j >= ny || (i < nx && x[i] < y[j])) {
                if (want_union) tmp[n++] = x[i];
                i++;
            } else if (i >= nx || y[j] < x[i]) {
                if (want_union) tmp[n++] = y[j];
                j++;
            } else {
                tmp[n++] = x[i];
                i++, j++;
            }
        }
        memcpy(out->kept[l], tmp, (size_t)n * sizeof *tmp);
        out->n_kept[l] = n;
    }
    free(tmp);
    return IFP_OK;
}

int ifp_mask_union(ifp_mask_t *out, const ifp_mask_t *a, const ifp_mask_t *b) { return merge(out, a, b, 1); }
int ifp_mask_intersect(ifp_mask_t *out, const ifp_mask_t *a, const ifp_mask_t *b) { return merge(out, a, b, 0); }

void ifp_mask_layer_bits(const ifp_mask_t *m, int l, uint64_t *bits) {
    int words = (m->d_ffn + 63) / 64;
    memset(bits, 0, (size_t)words * sizeof *bits);
    for (int j = 0; j < m->n_kept[l]; j++) bits[m->kept[l][j] >> 6] |= 1ull << (m->kept[l][j] & 63);
}

void ifp_mask_pack(const ifp_mask_t *m, uint8_t *out) {
    memset(out, 0, ifp_mask_bits_bytes(m->n_layers, m->d_ffn));
    for (int l = 0; l < m->n_layers; l++) {
        uint8_t *b = out + (size_t)l * ifp_mask_bits_layer_bytes(m->d_ffn);
        for (int j = 0; j < m->n_kept[l]; j++) b[m->kept[l][j] >> 3] |= (uint8_t)(1u << (m->kept[l][j] & 7));
    }
}

int ifp_mask_bits_check(const uint8_t *bits, size_t len, int n_layers, int d_ffn, int l0, int l1, char *why,
                        size_t wlen) {
    size_t want = ifp_mask_bits_bytes(n_layers, d_ffn), per = ifp_mask_bits_layer_bytes(d_ffn);
    if (len != want)
        return snprintf(why, wlen, "mask has %zu bytes, expected %zu (%d layers x %d channels)", len, want, n_layers,
                        d_ffn),
               -1;
    for (int l = l0; l < l1; l++) {
        const uint8_t *b = ifp_mask_bits_layer(bits, l, d_ffn);
        if (d_ffn % 8 && b[per - 1] >> (d_ffn % 8))
            return snprintf(why, wlen, "mask layer %d has bits set past channel %d", l, d_ffn - 1), -1;
        int any = 0;
        for (size_t i = 0; i < per && !any; i++) any = b[i] != 0;
        if (!any) return snprintf(why, wlen, "mask layer %d keeps no channel", l), -1;
    }
    return 0;
}

int ifp_submask_from_bits(const uint8_t *bits, int d_ffn, const int32_t *kept, int n_kept, float *out) {
    int ones = 0, n = kept ? n_kept : d_ffn;
    for (int j = 0; j < n; j++) {
        int c = kept ? kept[j] : j; /* a union's channels are in [0, d_ffn) */
        int bit = bits[c >> 3] >> (c & 7) & 1;
        out[j] = (float)bit;
        ones += bit;
    }
    return ones;
}

int64_t ifp_mask_submask(const ifp_mask_t *m, const ifp_mask_t *u, float *const *sub) {
    int64_t dropped = 0;
    for (int l = 0; l < u->n_layers; l++) {
        const int32_t *x = m->kept[l], *y = u->kept[l];
        int nx = m->n_kept[l], ny = u->n_kept[l], i = 0;
        for (int j = 0; j < ny; j++) {
            while (i < nx && x[i] < y[j]) dropped++, i++;
            if (i < nx && x[i] == y[j]) {
                sub[l][j] = 1.0f;
                i++;
            } else {
                sub[l][j] = 0.0f;
            }
        }
        dropped += nx - i;
    }
    return dropped;
}

/* ---------------------------------------------------------------- GGUF mask files */

#define MASK_ARCH "ifp-mask"
#define IFP_MASK_MAX_SLOTS (1u << 26)

int ifp_mask_save(const ifp_mask_t *m, const char *path, ifp_err_t *err) {
    int rc = ifp_mask_validate(m, err);
    if (rc) return ifp_err_prefix(err, "%s: refusing to save an invalid mask", path);
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    if (!w) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
    rc = ifp_gguf_writer_set_str(w, "general.architecture", MASK_ARCH);
    rc = rc ? rc : ifp_gguf_writer_set_u32(w, "ifp.mask.block_count", (uint32_t)m->n_layers);
    rc = rc ? rc : ifp_gguf_writer_set_u32(w, "ifp.mask.feed_forward_length", (uint32_t)m->d_ffn);
    for (int l = 0; l < m->n_layers && !rc; l++) {
        char key[64];
        snprintf(key, sizeof key, "ifp.mask.layer.%d", l);
        rc = ifp_gguf_writer_set_arr(w, key, IFP_GGUF_INT32, m->kept[l], (uint64_t)m->n_kept[l]);
    }
    if (rc) rc = ifp_errf(err, rc, "%s: out of memory building the mask file", path);
    else rc = ifp_gguf_writer_write(w, path, err);
    ifp_gguf_writer_destroy(&w);
    return rc;
}

/* Reads and range-checks the shape keys shared with cluster tables. */
static int read_shape(const ifp_gguf_t *g, const char *path, int *n_layers, int *d_ffn, ifp_err_t *err) {
    uint32_t nl, df;
    int rc = ifp_gguf_get_u32(g, "ifp.mask.block_count", &nl, err);
    if (!rc) rc = ifp_gguf_get_u32(g, "ifp.mask.feed_forward_length", &df, err);
    if (rc) return rc;
    if (nl < 1 || nl > 4096)
        return ifp_errf(err, IFP_EFORMAT, "%s: ifp.mask.block_count = %u, need 1..4096", path, nl);
    if (df < 1 || df > (1u << 22))
        return ifp_errf(err, IFP_EFORMAT, "%s: ifp.mask.feed_forward_length = %u, need 1..%u", path, df, 1u << 22);
    if ((uint64_t)nl * df > IFP_MASK_MAX_SLOTS) /* ifp_mask_t reserves d_ffn per layer */
        return ifp_errf(err, IFP_EFORMAT, "%s: %u layers x %u channels is too large for a mask", path, nl, df);
    *n_layers = (int)nl;
    *d_ffn = (int)df;
    return IFP_OK;
}

int ifp_mask_load(const char *path, ifp_mask_t **out, ifp_err_t *err) {
    *out = NULL;
    ifp_gguf_t *g = NULL;
    ifp_mask_t *m = NULL;
    char *arch = NULL;
    int32_t *buf = NULL;
    int rc = ifp_gguf_open(path, &g, err);
    if (rc) return rc;
    if ((rc = ifp_gguf_get_str(g, "general.architecture", &arch, err))) goto done;
    if (strcmp(arch, MASK_ARCH) != 0) {
        rc = ifp_errf(err, IFP_EFORMAT, "%s: general.architecture is '%s', expected '" MASK_ARCH "'%s", path, arch,
                      strcmp(arch, "ifp-clusters") == 0 ? " (this is a cluster table, not a mask)" : "");
        goto done;
    }
    int n_layers = 0, d_ffn = 0;
    if ((rc = read_shape(g, path, &n_layers, &d_ffn, err))) goto done;
    char key[64];
    snprintf(key, sizeof key, "ifp.mask.layer.%d", n_layers);
    if (ifp_gguf_find(g, key)) {
        rc = ifp_errf(err, IFP_EFORMAT, "%s: has key %s but ifp.mask.block_count is %d", path, key, n_layers);
        goto done;
    }
    m = ifp_mask_new(n_layers, d_ffn);
    buf = malloc((size_t)d_ffn * sizeof *buf);
    if (!m || !buf) {
        rc = ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int l = 0; l < n_layers; l++) {
        const ifp_gguf_kv_t *kv;
        snprintf(key, sizeof key, "ifp.mask.layer.%d", l);
        if ((rc = ifp_gguf_get_arr(g, key, IFP_GGUF_INT32, 0, &kv, err))) goto done;
        if (kv->arr_n > (uint64_t)d_ffn) {
            rc = ifp_errf(err, IFP_EFORMAT, "%s: %s has %llu channels, more than feed_forward_length %d", path, key,
                          (unsigned long long)kv->arr_n, d_ffn);
            goto done;
        }
        for (uint64_t j = 0; j < kv->arr_n; j++) buf[j] = (int32_t)ifp_gguf_arr_num(kv, j);
        if (ifp_mask_set_layer(m, l, buf, (int)kv->arr_n, err)) {
            ifp_err_prefix(err, "%s: %s", path, key);
            rc = err ? (err->code = IFP_EFORMAT) : IFP_EFORMAT;
            goto done;
        }
    }
    *out = m;
    m = NULL;
done:
    free(buf);
    free(arch);
    ifp_mask_destroy(&m);
    ifp_gguf_close(&g);
    return rc;
}
