/* test_union — exact mixed-mask batching over a cluster union.
 *
 * FFN weights are compacted to a union U of several masks; every sequence in
 * a batch carries its own 0/1 sub-mask over U.  Per sequence, the logits must
 * equal running that sequence alone on the full model with its own mask —
 * whatever the mix of masks, lengths, prefill chunks and decode steps. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "compact.h"
#include "forward.h"
#include "kernels.h"
#include "mask.h"
#include "model.h"
#include "testutil.h"

enum { NSEQ = 8, MAXLEN = 48 };

typedef struct {
    ifp_model_t *full;
    ifp_mask_t *masks[12]; /* golden predicted masks */
    int n_masks;
} fixture_t;

static uint64_t rs = 99;
static uint32_t rnd(void) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rs >> 33);
}

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    assert_int_equal(ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), NULL, &f->full, NULL), 0);
    int n;
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n);
    const ifp_config_t *c = &f->full->cfg;
    for (int r = 0; r < n && r < 12; r++) {
        ifp_mask_t *m = ifp_mask_new(c->n_layers, c->d_ffn);
        const cJSON *kc = cJSON_GetObjectItem(rows[r], "kept_channels");
        for (int l = 0; l < c->n_layers; l++) {
            int nk;
            int *k = tu_ints(cJSON_GetArrayItem(kc, l), &nk);
            int32_t *k32 = malloc(sizeof(int32_t) * nk);
            for (int j = 0; j < nk; j++) k32[j] = k[j];
            assert_int_equal(ifp_mask_set_layer(m, l, k32, nk, NULL), 0);
            free(k), free(k32);
        }
        f->masks[f->n_masks++] = m;
    }
    tu_free_jsonl(rows, n);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    for (int i = 0; i < f->n_masks; i++) ifp_mask_destroy(&f->masks[i]);
    ifp_model_free(&f->full);
    free(f);
    return 0;
}

/* Float mask vectors of a mask over d_ffn channels, one per layer. */
static float *float_mask(const ifp_mask_t *m, const float **layer) {
    float *buf = calloc((size_t)m->n_layers * m->d_ffn, sizeof(float));
    for (int l = 0; l < m->n_layers; l++) {
        ifp_mask_from_kept(buf + (size_t)l * m->d_ffn, m->d_ffn, m->kept[l], m->n_kept[l]);
        layer[l] = buf + (size_t)l * m->d_ffn;
    }
    return buf;
}

/* Runs NSEQ sequences (mask masks[s] of the union u, length len[s]) mixed in
 * batches over weights compacted to u; compares each row with the sequence
 * run alone on the full model with mask ref_mask[s].  Returns max |diff|. */
static double run_mixed(fixture_t *f, const ifp_mask_t *u, ifp_mask_t *const *masks, ifp_mask_t *const *ref_mask,
                        const int *len, int chunk) {
    const ifp_config_t *c = &f->full->cfg;
    int V = c->vocab;
    int tok[NSEQ][MAXLEN];
    for (int s = 0; s < NSEQ; s++)
        for (int i = 0; i < len[s]; i++) tok[s][i] = i == 0 ? 1 : 3 + (int)(rnd() % (uint32_t)(V - 3));
    /* reference: alone, full model, float mask, one prefill */
    float *ref = malloc(sizeof(float) * NSEQ * MAXLEN * V);
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = NSEQ;
    sp.max_batch = NSEQ * MAXLEN;
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(f->full, &sp, &st, NULL), 0);
    for (int s = 0; s < NSEQ; s++) {
        const float *layer[16];
        float *buf = float_mask(ref_mask[s], layer);
        ifp_ffn_mask_t fm = {.layer = layer};
        const ifp_ffn_mask_t *mk[MAXLEN];
        int32_t t[MAXLEN], p[MAXLEN], sl[MAXLEN];
        for (int i = 0; i < len[s]; i++) t[i] = tok[s][i], p[i] = i, sl[i] = s, mk[i] = &fm;
        ifp_batch_t b = {.n = len[s], .token = t, .pos = p, .slot = sl, .mask = mk};
        assert_int_equal(ifp_forward(st, &b, NULL), len[s]);
        memcpy(ref + (size_t)s * MAXLEN * V, ifp_state_logits(st), sizeof(float) * len[s] * V);
        free(buf);
    }
    ifp_state_free(&st);
    /* the union model and every sequence's sub-mask over it */
    ifp_model_t *um = NULL;
    assert_int_equal(ifp_compact_model(f->full, (const int32_t *const *)u->kept, u->n_kept, &um, NULL), 0);
    float *subbuf[NSEQ];
    float *sub[NSEQ][16];
    const float *subc[NSEQ][16];
    ifp_ffn_mask_t fm[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        subbuf[s] = malloc(sizeof(float) * ifp_mask_total(u));
        size_t off = 0;
        for (int l = 0; l < c->n_layers; l++) {
            sub[s][l] = subbuf[s] + off;
            subc[s][l] = sub[s][l];
            off += (size_t)u->n_kept[l];
        }
        ifp_mask_submask(masks[s], u, sub[s]);
        fm[s].layer = subc[s];
    }
    assert_int_equal(ifp_state_new(um, &sp, &st, NULL), 0);
    /* schedule: every step, each unfinished sequence contributes either a
     * prefill chunk (random size up to `chunk`) or one decode row */
    int done[NSEQ] = {0}, left = 1;
    double worst = 0;
    while (left) {
        int32_t t[NSEQ * MAXLEN], p[NSEQ * MAXLEN], sl[NSEQ * MAXLEN];
        const ifp_ffn_mask_t *mk[NSEQ * MAXLEN];
        int n = 0;
        left = 0;
        for (int s0 = 0; s0 < NSEQ; s0++) {
            int s = (s0 + done[0]) % NSEQ; /* vary the row order between steps */
            int take = done[s] == 0 ? 1 + (int)(rnd() % (uint32_t)chunk) : 1 + (int)(rnd() % 2);
            for (int k = 0; k < take && done[s] < len[s]; k++, done[s]++) {
                t[n] = tok[s][done[s]], p[n] = done[s], sl[n] = s, mk[n] = &fm[s];
                n++;
            }
        }
        if (n == 0) break;
        ifp_batch_t b = {.n = n, .token = t, .pos = p, .slot = sl, .mask = mk};
        assert_int_equal(ifp_forward(st, &b, NULL), n);
        for (int r = 0; r < n; r++) {
            const float *got = ifp_state_logits(st) + (size_t)r * V;
            const float *want = ref + ((size_t)sl[r] * MAXLEN + p[r]) * V;
            for (int v = 0; v < V; v++) {
                double d = fabs(got[v] - want[v]);
                if (d > worst) worst = d;
            }
        }
        for (int s = 0; s < NSEQ; s++) left |= done[s] < len[s];
    }
    ifp_state_free(&st);
    for (int s = 0; s < NSEQ; s++) free(subbuf[s]);
    ifp_model_free(&um);
    free(ref);
    return worst;
}

static ifp_mask_t *union_of(fixture_t *f, const int *which, int n) {
    ifp_mask_t *u = ifp_mask_clone(f->masks[which[0]]);
    for (int i = 1; i < n; i++) assert_int_equal(ifp_mask_union(u, u, f->masks[which[i]]), 0);
    return u;
}

/* Eight sequences with eight different masks, all covered by U. */
static void mixed_masks_exact(void **state) {
    fixture_t *f = *state;
    int which[8] = {0, 1, 2, 5, 6, 8, 10, 11};
    ifp_mask_t *u = union_of(f, which, 8);
    ifp_mask_t *ms[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        ms[s] = f->masks[which[s]];
        assert_float_equal(ifp_mask_coverage(ms[s], u), 1.0, 0);
    }
    int len[NSEQ] = {48, 3, 17, 1, 30, 9, 41, 24};
    fprintf(stderr, "union size per layer: %d %d %d %d (K = %d)\n", u->n_kept[0], u->n_kept[1], u->n_kept[2],
            u->n_kept[3], ms[0]->n_kept[0]);
    for (int kern = 0; kern < 2; kern++) {
        ifp_kernel_set(kern ? IFP_KERNEL_BLAS : IFP_KERNEL_NAIVE);
        for (int chunk = 1; chunk <= 16; chunk *= 4) {
            double d = run_mixed(f, u, ms, ms, len, chunk);
            fprintf(stderr, "%s kernel, prefill chunks <= %d: max |logit diff| %.3g\n", kern ? "blas" : "naive",
                    chunk, d);
            /* the reference kernel accumulates in double: only summation order
             * differs, far below 1e-5; BLAS GEMMs of different shapes round
             * differently (logits are O(10)) */
            assert_true(d < (kern ? 5e-5 : 1e-5));
        }
    }
    ifp_kernel_set(IFP_KERNEL_BLAS);
    ifp_mask_destroy(&u);
}

/* Several sequences sharing one mask, plus the dense-within-union case (a
 * sub-mask of all ones = the union itself). */
static void shared_and_full_submasks(void **state) {
    fixture_t *f = *state;
    int which[3] = {3, 4, 7};
    ifp_mask_t *u = union_of(f, which, 3);
    ifp_mask_t *ms[NSEQ] = {f->masks[3], f->masks[3], f->masks[4], u, f->masks[7], u, f->masks[4], f->masks[3]};
    int len[NSEQ] = {5, 33, 12, 20, 2, 47, 1, 16};
    ifp_kernel_set(IFP_KERNEL_NAIVE);
    double d = run_mixed(f, u, ms, ms, len, 8);
    ifp_kernel_set(IFP_KERNEL_BLAS);
    fprintf(stderr, "shared/full sub-masks: max |logit diff| %.3g\n", d);
    assert_true(d < 1e-5);
    ifp_mask_destroy(&u);
}

/* A mask not covered by U: its missing channels are dropped, i.e. the result
 * is the sequence run alone with m ∩ U (coverage < 1 is reported). */
static void uncovered_channels_dropped(void **state) {
    fixture_t *f = *state;
    int which[2] = {0, 1}; /* math prompts */
    ifp_mask_t *u = union_of(f, which, 2);
    const ifp_config_t *c = &f->full->cfg;
    ifp_mask_t *ms[NSEQ], *inter[NSEQ];
    int idx[NSEQ] = {0, 3, 5, 8, 10, 11, 1, 6};
    for (int s = 0; s < NSEQ; s++) {
        ms[s] = f->masks[idx[s]];
        inter[s] = ifp_mask_new(c->n_layers, c->d_ffn);
        assert_int_equal(ifp_mask_intersect(inter[s], ms[s], u), 0);
    }
    double cov = ifp_mask_coverage(f->masks[5], u);
    fprintf(stderr, "coverage of a story mask by a math union: %.3f\n", cov);
    assert_true(cov < 1.0);
    int len[NSEQ] = {10, 20, 30, 40, 5, 15, 25, 35};
    ifp_kernel_set(IFP_KERNEL_NAIVE);
    double d = run_mixed(f, u, ms, inter, len, 16);
    ifp_kernel_set(IFP_KERNEL_BLAS);
    assert_true(d < 1e-5);
    for (int s = 0; s < NSEQ; s++) ifp_mask_destroy(&inter[s]);
    ifp_mask_destroy(&u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_masks_exact),
        cmocka_unit_test(shared_and_full_submasks),
        cmocka_unit_test(uncovered_channels_dropped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
