/* test_mask.c — masks and cluster tables: set algebra against brute force on
 * random masks, top-k ties and the selection against the full sort, GGUF
 * round trips, malformed mask files and cluster tables (each rejected with
 * its code and message) and seeded random corruptions (load or fail cleanly,
 * never crash). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "gguf.h"
#include "mask.h"
#include "testutil.h"

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

static uint64_t g_rng = 0x1234567;
static uint32_t rnd(uint32_t n) { /* xorshift64*, uniform enough for tests */
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545f4914f6cdd1dull) >> 33) % n;
}

/* A random mask: each layer keeps each channel with a per-layer density
 * (sometimes 0 or 1, so empty and full layers occur). */
static ifp_mask_t *random_mask(int L, int D) {
    ifp_mask_t *m = ifp_mask_new(L, D);
    assert_non_null(m);
    for (int l = 0; l < L; l++) {
        uint32_t dens = rnd(7) == 0 ? 0 : rnd(7) == 0 ? 100 : rnd(101);
        int n = 0;
        for (int j = 0; j < D; j++)
            if (rnd(100) < dens) m->kept[l][n++] = j;
        m->n_kept[l] = n;
    }
    assert_int_equal(ifp_mask_validate(m, NULL), IFP_OK);
    return m;
}

static int has(const ifp_mask_t *m, int l, int j) {
    for (int i = 0; i < m->n_kept[l]; i++)
        if (m->kept[l][i] == j) return 1;
    return 0;
}

/* Layer l of m keeps every channel (stale contents for the next write). */
static void m_fill(ifp_mask_t *m, int l, int D) {
    for (int j = 0; j < D; j++) m->kept[l][j] = j;
    m->n_kept[l] = D;
}

/* ---------------------------------------------------------------- set algebra */

static void test_algebra_brute(void **state) {
    (void)state;
    for (int trial = 0; trial < 300; trial++) {
        int L = 1 + (int)rnd(4), D = 1 + (int)rnd(trial % 3 ? 70 : 300);
        ifp_mask_t *a = random_mask(L, D), *b = random_mask(L, D);
        ifp_mask_t *u = ifp_mask_new(L, D), *x = ifp_mask_new(L, D), *alias = ifp_mask_clone(a);
        assert_int_equal(ifp_mask_union(u, a, b), IFP_OK);
        assert_int_equal(ifp_mask_intersect(x, a, b), IFP_OK);
        assert_int_equal(ifp_mask_union(alias, alias, b), IFP_OK); /* out aliases an input */
        assert_true(ifp_mask_equal(alias, u));
        int64_t inter = 0, uni = 0, ta = 0, dropped = 0;
        int words = (D + 63) / 64;
        uint64_t *bits = malloc((size_t)words * sizeof *bits);
        float **sub = malloc((size_t)L * sizeof *sub);
        for (int l = 0; l < L; l++) sub[l] = malloc((size_t)D * sizeof **sub);
        int64_t got_dropped = ifp_mask_submask(a, b, sub);
        for (int l = 0; l < L; l++) {
            int il = 0, nu = 0, ni = 0;
            ifp_mask_layer_bits(a, l, bits);
            for (int j = 0; j < D; j++) {
                int ia = has(a, l, j), ib = has(b, l, j);
                il += ia && ib;
                ta += ia;
                uni += ia || ib;
                dropped += ia && !ib;
                assert_int_equal((int)((bits[j >> 6] >> (j & 63)) & 1), ia);
                if (ia || ib) assert_int_equal(u->kept[l][nu++], j);
                if (ia && ib) assert_int_equal(x->kept[l][ni++], j);
            }
            for (int j = D; j < words * 64; j++) assert_int_equal((int)((bits[j >> 6] >> (j & 63)) & 1), 0);
            assert_int_equal(u->n_kept[l], nu);
            assert_int_equal(x->n_kept[l], ni);
            inter += il;
            double ov = ifp_mask_layer_overlap(a, b, l);
            assert_true(ov == (a->n_kept[l] ? (double)il / a->n_kept[l] : 1.0));
            for (int j = 0; j < b->n_kept[l]; j++) assert_true(sub[l][j] == (float)has(a, l, b->kept[l][j]));
        }
        assert_int_equal(ifp_mask_intersection_size(a, b), inter);
        assert_int_equal(ifp_mask_total(a), ta);
        assert_int_equal(got_dropped, dropped);
        double jd = uni == 0 ? 0.0 : 1.0 - (double)inter / (double)uni;
        assert_true(ifp_mask_jaccard_distance(a, b) == jd);
        assert_true(ifp_mask_jaccard_distance(b, a) == jd);
        assert_true(ifp_mask_jaccard_distance(a, a) == 0.0);
        assert_true(ifp_mask_coverage(a, b) == (ta ? (double)inter / ta : 1.0));
        assert_true(ifp_mask_coverage(a, u) == 1.0);
        assert_int_equal(ifp_mask_submask(a, u, sub), 0);
        assert_int_equal(ifp_mask_validate(u, NULL), IFP_OK);
        assert_int_equal(ifp_mask_validate(x, NULL), IFP_OK);
        for (int l = 0; l < L; l++) free(sub[l]);
        free(sub), free(bits);
        ifp_mask_destroy(&a), ifp_mask_destroy(&b), ifp_mask_destroy(&u), ifp_mask_destroy(&x);
        ifp_mask_destroy(&alias);
        assert_null(a);
    }
    ifp_mask_destroy(NULL); /* NULL is fine */
}

static void test_shapes_and_layers(void **state) {
    (void)state;
    ifp_err_t err = {0};
    assert_null(ifp_mask_new(0, 8));
    assert_null(ifp_mask_new(2, 0));
    ifp_mask_t *a = ifp_mask_new(2, 8), *b = ifp_mask_new(3, 8), *d = ifp_mask_dense(2, 8);
    assert_int_equal(ifp_mask_union(a, a, b), IFP_EINVAL);
    assert_int_equal(ifp_mask_intersect(a, b, b), IFP_EINVAL);
    assert_int_equal(ifp_mask_total(d), 16);
    assert_true(ifp_mask_jaccard_distance(a, a) == 0.0); /* both empty */
    assert_true(ifp_mask_jaccard_distance(a, d) == 1.0);
    assert_int_equal(ifp_mask_set_layer(a, 0, (int32_t[]){1, 4, 7}, 3, &err), IFP_OK);
    assert_int_equal(ifp_mask_set_layer(a, 2, (int32_t[]){1}, 1, &err), IFP_ERANGE);
    assert_non_null(strstr(err.msg, "mask layer 2 out of range"));
    assert_int_equal(ifp_mask_set_layer(a, 1, (int32_t[]){3, 3}, 2, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "not strictly increasing"));
    assert_int_equal(ifp_mask_set_layer(a, 1, (int32_t[]){2, 8}, 2, &err), IFP_ERANGE);
    assert_non_null(strstr(err.msg, "channel 8 out of range [0, 8)"));
    assert_int_equal(ifp_mask_set_layer(a, 1, (int32_t[]){-1}, 1, &err), IFP_ERANGE);
    assert_int_equal(a->n_kept[1], 0); /* failed sets leave the layer alone */
    assert_true(ifp_mask_coverage(a, d) == 1.0);
    assert_true(ifp_mask_coverage(d, a) == 3.0 / 16.0);
    ifp_mask_destroy(&a), ifp_mask_destroy(&b), ifp_mask_destroy(&d);
}

static void test_topk_ties(void **state) {
    (void)state;
    for (int trial = 0; trial < 100; trial++) {
        int D = 1 + (int)rnd(200), k = (int)rnd((uint32_t)D + 1);
        float *s = malloc((size_t)D * sizeof *s);
        for (int j = 0; j < D; j++) s[j] = (float)rnd(6) - 2.5f; /* many ties */
        ifp_mask_t *m = ifp_mask_new(1, D);
        assert_int_equal(ifp_mask_set_topk(m, 0, s, k), IFP_OK);
        assert_int_equal(m->n_kept[0], k);
        /* brute: channel j is kept iff fewer than k channels beat it, where
         * i beats j if s[i] > s[j] or (s[i] == s[j] and i < j) */
        for (int j = 0; j < D; j++) {
            int better = 0;
            for (int i = 0; i < D; i++) better += s[i] > s[j] || (s[i] == s[j] && i < j);
            assert_int_equal(has(m, 0, j), better < k);
        }
        assert_int_equal(ifp_mask_validate(m, NULL), IFP_OK);
        assert_int_equal(ifp_mask_set_topk(m, 0, s, D + 1), IFP_ERANGE);
        ifp_mask_destroy(&m);
        free(s);
    }
}

/* A score of kind 0..6: uniform, few distinct values, all equal, NaN/inf/0
 * mixes, one-ulp neighbours (keys differ only in their low bits), signs and
 * magnitudes of every exponent, or 6656-of-24576-like spread. */
static float topk_score(int kind, int j) {
    static const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 1e-45f, -1e-45f};
    float u = (float)rnd(1u << 24) / (float)(1u << 24) - 0.5f;
    switch (kind) {
    case 0: return u * 200.0f;
    case 1: return (float)rnd(5) - 2.0f;
    case 2: return 0.25f;
    case 3: return rnd(3) ? special[rnd(10)] : u;
    case 4: return nextafterf(1.0f, 2.0f) + (float)rnd(40) * 1.1920929e-7f * (j % 2 ? 1.0f : -1.0f);
    case 5: return ldexpf(u, (int)rnd(250) - 125);
    default: return u * u * u * 150.0f;
    }
}

/* The selection equals the full-sort reference, bit for bit, on every kind
 * of input and on k = 0, 1, d-1, d and random k (both write one layer of the
 * same mask, so stale contents cannot hide a difference). */
static void test_topk_selection_vs_sort(void **state) {
    (void)state;
    for (int trial = 0; trial < 700; trial++) {
        int kind = trial % 7, D = trial < 7 ? 24576 : 1 + (int)rnd(trial % 3 ? 300 : 5000);
        float *s = malloc((size_t)D * sizeof *s);
        for (int j = 0; j < D; j++) s[j] = topk_score(kind, j);
        ifp_mask_t *got = ifp_mask_new(2, D), *want = ifp_mask_new(2, D);
        int ks[5] = {0, 1, D - 1, D, (int)rnd((uint32_t)D + 1)};
        if (trial < 7) ks[4] = 6656;
        for (int i = 0; i < 5; i++) {
            int k = ks[i] < 0 ? 0 : ks[i];
            for (int l = 0; l < 2; l++) m_fill(got, l, D), m_fill(want, l, D);
            assert_int_equal(ifp_mask_set_topk(got, 1, s, k), IFP_OK);
            assert_int_equal(ifp_mask_set_topk_ref(want, 1, s, k), IFP_OK);
            if (!ifp_mask_equal(got, want)) fprintf(stderr, "kind %d, d %d, k %d: masks differ\n", kind, D, k);
            assert_true(ifp_mask_equal(got, want));
        }
        assert_int_equal(ifp_mask_set_topk(got, 0, s, D + 1), IFP_ERANGE);
        assert_int_equal(ifp_mask_set_topk(got, 0, s, -1), IFP_ERANGE);
        assert_int_equal(ifp_mask_set_topk(got, 2, s, 1), IFP_ERANGE);
        ifp_mask_destroy(&got), ifp_mask_destroy(&want);
        free(s);
    }
    /* NaN ranks as -inf (ties by index), -0 ties +0 */
    const float s[8] = {NAN, -INFINITY, 1.0f, NAN, -0.0f, 0.0f, -1.0f, INFINITY};
    const int32_t want3[3] = {2, 4, 7}, want4[4] = {2, 4, 5, 7}, want7[7] = {0, 1, 2, 4, 5, 6, 7};
    ifp_mask_t *m = ifp_mask_new(1, 8);
    assert_int_equal(ifp_mask_set_topk(m, 0, s, 3), IFP_OK);
    assert_memory_equal(m->kept[0], want3, sizeof want3);
    assert_int_equal(ifp_mask_set_topk(m, 0, s, 4), IFP_OK);
    assert_memory_equal(m->kept[0], want4, sizeof want4);
    assert_int_equal(ifp_mask_set_topk(m, 0, s, 7), IFP_OK);
    assert_memory_equal(m->kept[0], want7, sizeof want7);
    ifp_mask_destroy(&m);
}

/* ---------------------------------------------------------------- mask files */

static void test_mask_roundtrip(void **state) {
    (void)state;
    ifp_err_t err = {0};
    for (int trial = 0; trial < 40; trial++) {
        int L = 1 + (int)rnd(6), D = 1 + (int)rnd(trial % 2 ? 40 : 2000);
        ifp_mask_t *m = trial == 0 ? ifp_mask_dense(L, D) : trial == 1 ? ifp_mask_new(L, D) : random_mask(L, D);
        ifp_mask_t *back = NULL;
        assert_int_equal(ifp_mask_save(m, tmp_path("rt.mask.gguf"), &err), IFP_OK);
        assert_int_equal(ifp_mask_load(tmp_path("rt.mask.gguf"), &back, &err), IFP_OK);
        assert_int_equal(back->n_layers, L);
        assert_int_equal(back->d_ffn, D);
        assert_true(ifp_mask_equal(m, back));
        ifp_mask_destroy(&m), ifp_mask_destroy(&back);
    }
    ifp_mask_t *bad = ifp_mask_new(1, 8);
    bad->kept[0][0] = 5, bad->kept[0][1] = 2, bad->n_kept[0] = 2;
    assert_int_equal(ifp_mask_save(bad, tmp_path("bad.mask.gguf"), &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "refusing to save an invalid mask"));
    ifp_mask_destroy(&bad);
}

/* Files are written from a baseline list of keys with edits: an edit
 * replaces (or adds) a key, or removes it (E_DEL). */
enum { E_END, E_DEL, E_U32, E_STR, E_I32S, E_U32S, E_F32S };
typedef struct {
    int kind;
    const char *key;
    uint32_t u;
    const char *s;
    int n;
    int32_t v[8];
} kv_t;

#define U32(k, x) {E_U32, k, x, NULL, 0, {0}}
#define STR(k, x) {E_STR, k, 0, x, 0, {0}}
#define I32S(k, n, ...) {E_I32S, k, 0, NULL, n, {__VA_ARGS__}}
#define DEL(k) {E_DEL, k, 0, NULL, 0, {0}}

static void put_kv(ifp_gguf_writer_t *w, const kv_t *e) {
    int rc = IFP_OK;
    float f[8];
    switch (e->kind) {
    case E_U32: rc = ifp_gguf_writer_set_u32(w, e->key, e->u); break;
    case E_STR: rc = ifp_gguf_writer_set_str(w, e->key, e->s); break;
    case E_I32S: rc = ifp_gguf_writer_set_arr(w, e->key, IFP_GGUF_INT32, e->v, (uint64_t)e->n); break;
    case E_U32S: rc = ifp_gguf_writer_set_arr(w, e->key, IFP_GGUF_UINT32, e->v, (uint64_t)e->n); break;
    case E_F32S:
        for (int i = 0; i < e->n; i++) f[i] = (float)e->v[i];
        rc = ifp_gguf_writer_set_arr(w, e->key, IFP_GGUF_FLOAT32, f, (uint64_t)e->n);
        break;
    }
    assert_int_equal(rc, IFP_OK);
}

static void write_edited(const char *path, const kv_t *base, const kv_t *edits) {
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    for (const kv_t *b = base; b->kind != E_END; b++) {
        int deleted = 0;
        for (const kv_t *e = edits; e->kind != E_END; e++) deleted |= e->kind == E_DEL && !strcmp(e->key, b->key);
        if (!deleted) put_kv(w, b);
    }
    for (const kv_t *e = edits; e->kind != E_END; e++)
        if (e->kind != E_DEL) put_kv(w, e);
    ifp_err_t err = {0};
    assert_int_equal(ifp_gguf_writer_write(w, path, &err), IFP_OK);
    ifp_gguf_writer_destroy(&w);
}

static const kv_t mask_base[] = {
    STR("general.architecture", "ifp-mask"), U32("ifp.mask.block_count", 2), U32("ifp.mask.feed_forward_length", 16),
    I32S("ifp.mask.layer.0", 3, 1, 3, 5), I32S("ifp.mask.layer.1", 2, 0, 15), {E_END, 0, 0, 0, 0, {0}},
};

typedef struct {
    kv_t edit[3];
    int code;
    const char *msg;
} bad_case_t;

static void test_mask_malformed(void **state) {
    (void)state;
    ifp_err_t err = {0};
    ifp_mask_t *m = NULL;
    const char *path = tmp_path("m.gguf");
    write_edited(path, mask_base, (kv_t[]){{E_END, 0, 0, 0, 0, {0}}});
    assert_int_equal(ifp_mask_load(path, &m, &err), IFP_OK);
    assert_int_equal(m->n_kept[0], 3);
    assert_int_equal(m->kept[1][1], 15);
    ifp_mask_destroy(&m);
    static const bad_case_t cases[] = {
        {{STR("general.architecture", "llama")}, IFP_EFORMAT, "general.architecture is 'llama', expected 'ifp-mask'"},
        {{STR("general.architecture", "ifp-clusters")}, IFP_EFORMAT, "this is a cluster table"},
        {{DEL("general.architecture")}, IFP_ENOTFOUND, "missing required key general.architecture"},
        {{U32("general.architecture", 1)}, IFP_EFORMAT, "general.architecture has type uint32"},
        {{DEL("ifp.mask.block_count")}, IFP_ENOTFOUND, "missing required key ifp.mask.block_count"},
        {{U32("ifp.mask.block_count", 0)}, IFP_EFORMAT, "block_count = 0"},
        {{U32("ifp.mask.block_count", 100000)}, IFP_EFORMAT, "block_count = 100000"},
        {{U32("ifp.mask.block_count", 3)}, IFP_ENOTFOUND, "missing required key ifp.mask.layer.2"},
        {{U32("ifp.mask.block_count", 1)}, IFP_EFORMAT, "has key ifp.mask.layer.1 but ifp.mask.block_count is 1"},
        {{U32("ifp.mask.feed_forward_length", 0)}, IFP_EFORMAT, "feed_forward_length = 0"},
        {{U32("ifp.mask.block_count", 4096), U32("ifp.mask.feed_forward_length", 1u << 22)}, IFP_EFORMAT,
         "4096 layers x 4194304 channels is too large"},
        {{U32("ifp.mask.feed_forward_length", 15)}, IFP_EFORMAT, "channel 15 out of range [0, 15)"},
        {{STR("ifp.mask.feed_forward_length", "16")}, IFP_EFORMAT, "has type string"},
        {{U32("ifp.mask.feed_forward_length", 2)}, IFP_EFORMAT, "has 3 channels, more than feed_forward_length 2"},
        {{DEL("ifp.mask.layer.1")}, IFP_ENOTFOUND, "missing required key ifp.mask.layer.1"},
        {{I32S("ifp.mask.layer.0", 3, 1, 5, 3)}, IFP_EFORMAT, "ifp.mask.layer.0: layer 0: kept channels not strictly"},
        {{I32S("ifp.mask.layer.0", 2, 4, 4)}, IFP_EFORMAT, "not strictly increasing (4 after 4)"},
        {{I32S("ifp.mask.layer.1", 2, -1, 3)}, IFP_EFORMAT, "layer 1: channel -1 out of range"},
        {{I32S("ifp.mask.layer.1", 1, 16)}, IFP_EFORMAT, "channel 16 out of range [0, 16)"},
        {{{E_U32S, "ifp.mask.layer.0", 0, NULL, 2, {1, 2}}}, IFP_EFORMAT, "has type array of uint32, expected array of int32"},
        {{{E_F32S, "ifp.mask.layer.0", 0, NULL, 2, {1, 2}}}, IFP_EFORMAT, "expected array of int32"},
        {{U32("ifp.mask.layer.0", 3)}, IFP_EFORMAT, "ifp.mask.layer.0 has type uint32, expected array of int32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kv_t edits[4] = {cases[i].edit[0], cases[i].edit[1], cases[i].edit[2], {E_END, 0, 0, 0, 0, {0}}};
        write_edited(path, mask_base, edits);
        memset(&err, 0, sizeof err);
        int rc = ifp_mask_load(path, &m, &err);
        if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
            fprintf(stderr, "case %zu: rc %d msg: %s\n", i, rc, err.msg);
        assert_int_equal(rc, cases[i].code);
        assert_non_null(strstr(err.msg, cases[i].msg));
        assert_non_null(strstr(err.msg, path)); /* every message names the file */
        assert_null(m);
    }
    assert_int_equal(ifp_mask_load(tmp_path("nonexistent.gguf"), &m, &err), IFP_EIO);
    assert_int_equal(ifp_mask_load(IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl", &m, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    assert_int_equal(ifp_mask_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &m, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "'llama', expected 'ifp-mask'"));
    assert_int_equal(ifp_mask_load(path, &m, NULL), IFP_EFORMAT); /* NULL err is fine */
}

/* ---------------------------------------------------------------- cluster tables */

/* Two clusters over 2 layers x 16 channels, keep 3.  Cluster 0 (2 members)
 * is untrimmed; cluster 1 (1 member) too. */
static const kv_t table_base[] = {
    STR("general.architecture", "ifp-clusters"),
    U32("ifp.mask.block_count", 2),
    U32("ifp.mask.feed_forward_length", 16),
    U32("ifp.clusters.count", 2),
    U32("ifp.clusters.keep", 3),
    U32("ifp.cluster.0.members", 2),
    I32S("ifp.cluster.0.union.0", 4, 1, 2, 3, 4),
    I32S("ifp.cluster.0.medoid.0", 3, 1, 2, 3),
    I32S("ifp.cluster.0.freq.0", 4, 2, 2, 1, 1),
    I32S("ifp.cluster.0.union.1", 3, 0, 5, 6),
    I32S("ifp.cluster.0.medoid.1", 3, 0, 5, 6),
    I32S("ifp.cluster.0.freq.1", 3, 2, 2, 2),
    U32("ifp.cluster.1.members", 1),
    I32S("ifp.cluster.1.union.0", 3, 7, 8, 9),
    I32S("ifp.cluster.1.medoid.0", 3, 7, 8, 9),
    I32S("ifp.cluster.1.freq.0", 3, 1, 1, 1),
    I32S("ifp.cluster.1.union.1", 3, 10, 11, 15),
    I32S("ifp.cluster.1.medoid.1", 3, 10, 11, 15),
    I32S("ifp.cluster.1.freq.1", 3, 1, 1, 1),
    {E_END, 0, 0, 0, 0, {0}},
};

static void assert_tables_equal(const ifp_cluster_table_t *a, const ifp_cluster_table_t *b) {
    assert_int_equal(a->n_clusters, b->n_clusters);
    assert_int_equal(a->n_layers, b->n_layers);
    assert_int_equal(a->d_ffn, b->d_ffn);
    assert_int_equal(a->keep, b->keep);
    for (int c = 0; c < a->n_clusters; c++) {
        assert_int_equal(a->c[c].members, b->c[c].members);
        assert_true(ifp_mask_equal(a->c[c].uni, b->c[c].uni));
        assert_true(ifp_mask_equal(a->c[c].medoid, b->c[c].medoid));
        for (int l = 0; l < a->n_layers; l++)
            assert_memory_equal(a->c[c].freq[l], b->c[c].freq[l], (size_t)a->c[c].uni->n_kept[l] * sizeof(int32_t));
    }
}

static void test_table_roundtrip_nearest(void **state) {
    (void)state;
    ifp_err_t err = {0};
    ifp_cluster_table_t *t = NULL, *back = NULL;
    write_edited(tmp_path("t.gguf"), table_base, (kv_t[]){{E_END, 0, 0, 0, 0, {0}}});
    assert_int_equal(ifp_cluster_table_load(tmp_path("t.gguf"), &t, &err), IFP_OK);
    assert_int_equal(t->n_clusters, 2);
    assert_int_equal(t->keep, 3);
    assert_int_equal(t->c[0].members, 2);
    assert_int_equal(t->c[0].uni->n_kept[0], 4);
    assert_int_equal(t->c[0].freq[0][2], 1);
    assert_int_equal(t->c[1].medoid->kept[1][2], 15);
    assert_int_equal(ifp_cluster_table_save(t, tmp_path("t2.gguf"), &err), IFP_OK);
    assert_int_equal(ifp_cluster_table_load(tmp_path("t2.gguf"), &back, &err), IFP_OK);
    assert_tables_equal(t, back);

    /* nearest medoid by Jaccard; ties -> lower cluster; wrong shape -> -1 */
    ifp_mask_t *m = ifp_mask_new(2, 16);
    ifp_mask_set_layer(m, 0, (int32_t[]){7, 8, 9}, 3, NULL);
    assert_int_equal(ifp_cluster_nearest(t, m), 1);
    ifp_mask_set_layer(m, 0, (int32_t[]){1, 2, 4}, 3, NULL);
    assert_int_equal(ifp_cluster_nearest(t, m), 0);
    ifp_mask_set_layer(m, 0, (int32_t[]){12, 13, 14}, 3, NULL);
    assert_int_equal(ifp_cluster_nearest(t, m), 0); /* equidistant: 1.0 from both */
    ifp_mask_t *other = ifp_mask_new(3, 16);
    assert_int_equal(ifp_cluster_nearest(t, other), -1);
    assert_int_equal(ifp_cluster_nearest(NULL, m), -1);
    ifp_mask_destroy(&m), ifp_mask_destroy(&other);

    /* an invalid in-memory table is not written */
    back->c[1].freq[0][0] = 5;
    assert_int_not_equal(ifp_cluster_table_save(back, tmp_path("t3.gguf"), &err), IFP_OK);
    assert_non_null(strstr(err.msg, "refusing to save"));
    assert_int_not_equal(access(tmp_path("t3.gguf"), F_OK), 0);
    ifp_cluster_table_destroy(&t), ifp_cluster_table_destroy(&back);
    assert_null(t);
    ifp_cluster_table_destroy(NULL);
}

static void test_table_malformed(void **state) {
    (void)state;
    static const bad_case_t cases[] = {
        {{STR("general.architecture", "ifp-mask")}, IFP_EFORMAT, "this is a mask file, not a cluster table"},
        {{DEL("ifp.clusters.count")}, IFP_ENOTFOUND, "missing required key ifp.clusters.count"},
        {{U32("ifp.clusters.count", 0)}, IFP_EFORMAT, "ifp.clusters.count = 0, need 1..65536"},
        {{U32("ifp.clusters.count", 3)}, IFP_ENOTFOUND, "missing required key ifp.cluster.2.members"},
        {{U32("ifp.clusters.count", 1)}, IFP_EFORMAT, "has key ifp.cluster.1.members but ifp.clusters.count is 1"},
        {{U32("ifp.clusters.count", 65536)}, IFP_ENOTFOUND, "missing required key ifp.cluster.2.members"},
        {{U32("ifp.mask.block_count", 4096), U32("ifp.mask.feed_forward_length", 1u << 22)}, IFP_EFORMAT,
         "2 clusters x 4096 layers x 4194304 channels is too large"},
        {{DEL("ifp.clusters.keep")}, IFP_ENOTFOUND, "missing required key ifp.clusters.keep"},
        {{U32("ifp.clusters.keep", 0)}, IFP_EFORMAT, "ifp.clusters.keep = 0, need 1..16"},
        {{U32("ifp.clusters.keep", 17)}, IFP_EFORMAT, "ifp.clusters.keep = 17, need 1..16"},
        {{U32("ifp.clusters.keep", 4)}, IFP_EFORMAT, "cluster 0 layer 0: medoid keeps 3 channels, keep is 4"},
        {{U32("ifp.mask.block_count", 1)}, IFP_EFORMAT, "has key ifp.cluster.0.union.1 but ifp.mask.block_count is 1"},
        {{U32("ifp.mask.block_count", 3)}, IFP_ENOTFOUND, "missing required key ifp.cluster.0.union.2"},
        {{U32("ifp.mask.feed_forward_length", 12)}, IFP_EFORMAT, "ifp.cluster.1.union.1: layer 1: channel 15 out of range"},
        {{DEL("ifp.cluster.1.members")}, IFP_ENOTFOUND, "missing required key ifp.cluster.1.members"},
        {{DEL("ifp.cluster.0.freq.1")}, IFP_ENOTFOUND, "missing required key ifp.cluster.0.freq.1"},
        {{DEL("ifp.cluster.1.medoid.0")}, IFP_ENOTFOUND, "missing required key ifp.cluster.1.medoid.0"},
        {{I32S("ifp.cluster.0.freq.0", 3, 2, 2, 1)}, IFP_EFORMAT, "freq.0 has 3 elements, the union layer has 4"},
        {{I32S("ifp.cluster.0.freq.0", 4, 2, 2, 1, 0)}, IFP_EFORMAT, "channel 4 kept by 0 members, need 1..2"},
        {{I32S("ifp.cluster.0.freq.0", 4, 2, 3, 1, 1)}, IFP_EFORMAT, "channel 2 kept by 3 members, need 1..2"},
        {{I32S("ifp.cluster.0.freq.0", 4, 2, 2, 2, 1)}, IFP_EFORMAT, "frequencies sum to 7, more than 2 members x keep 3"},
        {{I32S("ifp.cluster.0.union.0", 4, 1, 3, 2, 4)}, IFP_EFORMAT, "ifp.cluster.0.union.0: layer 0: kept channels not"},
        {{I32S("ifp.cluster.0.union.0", 4, 1, 2, 3, 16)}, IFP_EFORMAT, "channel 16 out of range [0, 16)"},
        {{I32S("ifp.cluster.0.medoid.0", 3, 1, 2, -3)}, IFP_EFORMAT, "ifp.cluster.0.medoid.0: layer 0: channel -3"},
        {{I32S("ifp.cluster.0.union.1", 2, 0, 5), I32S("ifp.cluster.0.freq.1", 2, 1, 1)}, IFP_EFORMAT,
         "cluster 0 layer 1: union has 2 channels, fewer than keep 3"},
        /* untrimmed (frequencies sum to members x keep) but the medoid is outside */
        {{I32S("ifp.cluster.0.medoid.0", 3, 1, 2, 5)}, IFP_EFORMAT, "cluster 0 layer 0: medoid not inside"},
        {{U32("ifp.cluster.1.members", 0)}, IFP_EFORMAT, "cluster 1 has no members but a non-empty layer 0"},
        {{U32("ifp.cluster.1.members", 3000000000u)}, IFP_EFORMAT, "ifp.cluster.1.members = 3000000000"},
        {{{E_U32S, "ifp.cluster.0.freq.0", 0, NULL, 4, {2, 2, 1, 1}}}, IFP_EFORMAT, "expected array of int32"},
        {{U32("ifp.cluster.0.union.0", 1)}, IFP_EFORMAT, "ifp.cluster.0.union.0 has type uint32"},
    };
    ifp_err_t err = {0};
    ifp_cluster_table_t *t = NULL;
    const char *path = tmp_path("bad.clusters.gguf");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kv_t edits[4] = {cases[i].edit[0], cases[i].edit[1], cases[i].edit[2], {E_END, 0, 0, 0, 0, {0}}};
        write_edited(path, table_base, edits);
        memset(&err, 0, sizeof err);
        int rc = ifp_cluster_table_load(path, &t, &err);
        if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
            fprintf(stderr, "case %zu: rc %d msg: %s\n", i, rc, err.msg);
        assert_int_equal(rc, cases[i].code);
        assert_non_null(strstr(err.msg, cases[i].msg));
        assert_non_null(strstr(err.msg, path));
        assert_null(t);
    }
    /* a trimmed union (sum < members x keep) may leave medoid channels out */
    kv_t trimmed[] = {I32S("ifp.cluster.0.union.0", 3, 1, 2, 4), I32S("ifp.cluster.0.freq.0", 3, 2, 2, 1),
                      {E_END, 0, 0, 0, 0, {0}}};
    write_edited(path, table_base, trimmed);
    assert_int_equal(ifp_cluster_table_load(path, &t, &err), IFP_OK);
    ifp_cluster_table_destroy(&t);
    /* an empty cluster is consistent when all its lists are empty */
    kv_t empty[] = {U32("ifp.cluster.1.members", 0), I32S("ifp.cluster.1.union.0", 0, 0), I32S("ifp.cluster.1.medoid.0", 0, 0),
                    I32S("ifp.cluster.1.freq.0", 0, 0), I32S("ifp.cluster.1.union.1", 0, 0), I32S("ifp.cluster.1.medoid.1", 0, 0),
                    I32S("ifp.cluster.1.freq.1", 0, 0), {E_END, 0, 0, 0, 0, {0}}};
    write_edited(path, table_base, empty);
    assert_int_equal(ifp_cluster_table_load(path, &t, &err), IFP_OK);
    assert_int_equal(t->c[1].members, 0);
    ifp_cluster_table_destroy(&t);
    assert_int_equal(ifp_cluster_table_load(MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), &t, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "expected 'ifp-clusters'"));
    assert_int_equal(ifp_cluster_table_load(tmp_path("nonexistent.gguf"), &t, &err), IFP_EIO);
}

/* Seeded random byte corruptions and truncations of valid files: each loads
 * or fails with a message, never crashes (run under ASan). */
static void test_corruptions(void **state) {
    (void)state;
    const char *src[2] = {tmp_path("cm.gguf"), tmp_path("ct.gguf")};
    write_edited(src[0], mask_base, (kv_t[]){{E_END, 0, 0, 0, 0, {0}}});
    write_edited(src[1], table_base, (kv_t[]){{E_END, 0, 0, 0, 0, {0}}});
    const char *path = tmp_path("corrupt.gguf");
    int ok = 0, failed = 0;
    for (int f = 0; f < 2; f++) {
        size_t len = 0;
        char *orig = tu_read_file(src[f], &len);
        assert_non_null(orig);
        char *buf = malloc(len);
        for (int trial = 0; trial < 600; trial++) {
            memcpy(buf, orig, len);
            size_t n = len;
            if (trial % 5 == 0) n = rnd((uint32_t)len); /* truncation */
            int flips = 1 + (int)rnd(4);
            for (int i = 0; i < flips && n; i++) {
                size_t at = rnd((uint32_t)n);
                buf[at] = trial % 3 ? (char)rnd(256) : (char)(buf[at] ^ (1 << rnd(8)));
            }
            FILE *fp = fopen(path, "wb");
            fwrite(buf, 1, n, fp);
            fclose(fp);
            ifp_err_t err = {0};
            ifp_mask_t *m = NULL;
            ifp_cluster_table_t *t = NULL;
            int rc = f == 0 ? ifp_mask_load(path, &m, &err) : ifp_cluster_table_load(path, &t, &err);
            if (rc == IFP_OK) {
                ok++;
                assert_true(f == 0 ? ifp_mask_validate(m, NULL) == IFP_OK : t->n_clusters >= 1);
            } else {
                failed++;
                assert_true(rc < 0 && err.msg[0] != '\0');
                assert_null(f == 0 ? (void *)m : (void *)t);
            }
            ifp_mask_destroy(&m);
            ifp_cluster_table_destroy(&t);
        }
        free(buf), free(orig);
    }
    assert_true(failed > 100);
    (void)ok;
}

/* ---------------------------------------------------------------- main */

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp_test_mask_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_algebra_brute),
        cmocka_unit_test(test_shapes_and_layers),
        cmocka_unit_test(test_topk_ties),
        cmocka_unit_test(test_topk_selection_vs_sort),
        cmocka_unit_test(test_mask_roundtrip),
        cmocka_unit_test(test_mask_malformed),
        cmocka_unit_test(test_table_roundtrip_nearest),
        cmocka_unit_test(test_table_malformed),
        cmocka_unit_test(test_corruptions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
