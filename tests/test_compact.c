/* test_compact — compacted FFN weights compute exactly the masked full FFN. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "compact.h"
#include "kernels.h"
#include "forward.h"
#include "model.h"
#include "testutil.h"

static uint64_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* Picks k distinct sorted channels of F. */
static void pick(int32_t *out, int k, int F) {
    int n = 0;
    for (int j = 0; j < F && n < k; j++)
        if ((int)(rnd() % (uint32_t)(F - j)) < k - n) out[n++] = j;
}

/* Compares, for a prompt, logits of (a) the full model with a float mask and
 * (b) the compacted model, over every position; returns max |diff|. */
static double compare(ifp_model_t *full, int k_frac_num, int k_frac_den, int n_tokens) {
    const ifp_config_t *c = &full->cfg;
    int F = c->d_ffn, NL = c->n_layers, K = F * k_frac_num / k_frac_den;
    int32_t *kept_buf = malloc(sizeof(int32_t) * NL * K);
    const int32_t *kept[64] = {0};
    int n_kept[64] = {0};
    float *mbuf = malloc(sizeof(float) * NL * F);
    const float *layer[64];
    for (int l = 0; l < NL; l++) {
        pick(kept_buf + (size_t)l * K, K, F);
        kept[l] = kept_buf + (size_t)l * K;
        n_kept[l] = K;
        ifp_mask_from_kept(mbuf + (size_t)l * F, F, kept[l], K);
        layer[l] = mbuf + (size_t)l * F;
    }
    ifp_model_t *cm = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_compact_model(full, kept, n_kept, &cm, &err), 0);
    for (int l = 0; l < NL; l++) assert_int_equal(cm->layers[l].d_ffn, K);
    ifp_ffn_mask_t mask = {.layer = layer};
    int32_t *tok = malloc(sizeof(int32_t) * n_tokens), *pos = malloc(sizeof(int32_t) * n_tokens),
            *sl = calloc((size_t)n_tokens, sizeof(int32_t));
    const ifp_ffn_mask_t **mk = malloc(sizeof(*mk) * n_tokens);
    for (int i = 0; i < n_tokens; i++) tok[i] = (int32_t)(rnd() % (uint32_t)c->vocab), pos[i] = i, mk[i] = &mask;
    ifp_batch_t b = {.n = n_tokens, .token = tok, .pos = pos, .slot = sl, .mask = mk};
    ifp_state_t *sf = NULL, *sc = NULL;
    ifp_state_params_t sp = ifp_state_default_params();
    sp.max_batch = n_tokens;
    sp.ctx = n_tokens;
    assert_int_equal(ifp_state_new(full, &sp, &sf, NULL), 0);
    assert_int_equal(ifp_state_new(cm, &sp, &sc, NULL), 0);
    assert_int_equal(ifp_forward(sf, &b, NULL), n_tokens);
    b.mask = NULL; /* the compacted model needs no mask */
    assert_int_equal(ifp_forward(sc, &b, NULL), n_tokens);
    double worst = 0;
    for (size_t i = 0; i < (size_t)n_tokens * c->vocab; i++) {
        double d = fabs(ifp_state_logits(sf)[i] - ifp_state_logits(sc)[i]);
        if (d > worst) worst = d;
    }
    ifp_state_free(&sf);
    ifp_state_free(&sc);
    ifp_model_free(&cm);
    free(tok), free(pos), free(sl), free(mk), free(mbuf), free(kept_buf);
    return worst;
}

static const ifp_ggml_type_t TYPES[] = {IFP_GGML_F32, IFP_GGML_F16, IFP_GGML_BF16, IFP_GGML_Q8_0};

static ifp_model_t *load_as(ifp_ggml_type_t t, int load_ffn) {
    ifp_model_params_t p = ifp_model_default_params();
    p.wtype = t;
    p.load_ffn = load_ffn;
    ifp_model_t *m = NULL;
    ifp_err_t err = {0};
    int rc = ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &p, &m, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return m;
}

/* Per weight type: with the reference kernel the compacted model computes
 * exactly (bit for bit) what the masked full model computes; with the fast
 * kernels a prefill runs through panel GEMMs of different shapes, so only
 * rounding differs. */
static void compacted_equals_masked_ifp_mix(void **unused) {
    (void)unused;
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        ifp_model_t *m = load_as(TYPES[ti], 1);
        ifp_kernel_set(IFP_KERNEL_NAIVE);
        for (int trial = 0; trial < 2; trial++) {
            double d = compare(m, 1, 3, 40); /* K = d_ffn / 3, as the predictor keeps */
            fprintf(stderr, "ifp-mix %s K=d/3 reference trial %d: max |logit diff| %.3g\n",
                    ifp_ggml_type_name(TYPES[ti]), trial, d);
            assert_true(d == 0.0);
        }
        ifp_kernel_set(IFP_KERNEL_BLAS);
        double d = compare(m, 1, 3, 40);
        fprintf(stderr, "ifp-mix %s K=d/3 fast: max |logit diff| %.3g\n", ifp_ggml_type_name(TYPES[ti]), d);
        assert_true(d < 5e-5);
        /* decode-sized batches: the down kernel accumulates in channel order, so exact */
        d = compare(m, 3, 4, 9);
        fprintf(stderr, "ifp-mix %s K=3d/4 fast, 9 rows: max |logit diff| %.3g\n", ifp_ggml_type_name(TYPES[ti]), d);
        assert_true(d < 5e-5);
        ifp_model_free(&m);
    }
}

static void compacted_equals_masked_synth(void **unused) {
    (void)unused;
    ifp_config_t c = {.dim = 96, .n_layers = 3, .n_heads = 6, .n_kv_heads = 2, .head_dim = 16, .d_ffn = 300,
                      .vocab = 97, .ctx = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 16};
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        ifp_model_params_t p = ifp_model_default_params();
        p.wtype = TYPES[ti];
        ifp_model_t *m = NULL;
        assert_int_equal(ifp_model_synth(&c, 7, &p, &m, NULL), 0);
        ifp_kernel_set(IFP_KERNEL_NAIVE);
        double d = compare(m, 1, 2, 33);
        fprintf(stderr, "synth %s K=d/2 reference: max |logit diff| %.3g\n", ifp_ggml_type_name(TYPES[ti]), d);
        assert_true(d == 0.0);
        ifp_kernel_set(IFP_KERNEL_BLAS);
        ifp_model_free(&m);
    }
}

/* Compacting from the file (a cluster stage holds no full FFN) gives the very
 * bytes that compacting the resident full model gives, in every type. */
static void compact_from_file_equals_from_memory(void **unused) {
    (void)unused;
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        ifp_model_t *full = load_as(TYPES[ti], 1), *lean = load_as(TYPES[ti], 0), *a = NULL, *b = NULL;
        const ifp_config_t *c = &full->cfg;
        assert_int_equal(lean->layers[0].d_ffn, 0);
        assert_true(ifp_model_resident_bytes(lean) < ifp_model_resident_bytes(full));
        int32_t kept_buf[8][1024];
        const int32_t *kept[8] = {0};
        int n_kept[8] = {0};
        for (int l = 0; l < c->n_layers; l++) {
            n_kept[l] = c->d_ffn / 3;
            pick(kept_buf[l], n_kept[l], c->d_ffn);
            kept[l] = kept_buf[l];
        }
        assert_int_equal(ifp_compact_model(full, kept, n_kept, &a, NULL), 0);
        assert_int_equal(ifp_compact_model(lean, kept, n_kept, &b, NULL), 0);
        for (int l = 0; l < c->n_layers; l++) {
            size_t bytes = (size_t)n_kept[l] * a->layers[l].w_gate.row_bytes;
            assert_int_equal(a->layers[l].w_down.type, TYPES[ti]);
            assert_memory_equal(a->layers[l].w_gate.data, b->layers[l].w_gate.data, bytes);
            assert_memory_equal(a->layers[l].w_up.data, b->layers[l].w_up.data, bytes);
            assert_memory_equal(a->layers[l].w_down.data, b->layers[l].w_down.data, bytes);
        }
        /* a lean model refuses to run a layer it has not compacted */
        ifp_state_params_t sp = ifp_state_default_params();
        sp.max_ffn = c->d_ffn;
        sp.max_batch = 4;
        ifp_state_t *st = NULL;
        assert_int_equal(ifp_state_new(lean, &sp, &st, NULL), 0);
        int32_t tok[1] = {5}, pos[1] = {0}, sl[1] = {0};
        ifp_batch_t bt = {.n = 1, .token = tok, .pos = pos, .slot = sl};
        ifp_err_t err = {0};
        assert_int_equal(ifp_forward(st, &bt, &err), IFP_EINVAL);
        assert_non_null(strstr(err.msg, "not loaded"));
        assert_int_equal(ifp_state_set_model(st, b, NULL), 0);
        assert_int_equal(ifp_forward(st, &bt, NULL), 1);
        ifp_state_free(&st);
        ifp_model_free(&a);
        ifp_model_free(&b);
        ifp_model_free(&lean);
        ifp_model_free(&full);
    }
}

/* Gathered rows are the right ones, element for element, from channel rows
 * and from a llama-layout down (a column per channel). */
static void gather_layout(void **unused) {
    (void)unused;
    enum { D = 32, F = 5 };
    float gate[F * D], up[F * D], down_t[F * D], down_llama[D * F];
    for (int i = 0; i < F * D; i++) gate[i] = (float)i, up[i] = 100.0f + i, down_t[i] = 1000.0f + i;
    for (int j = 0; j < F; j++)
        for (int o = 0; o < D; o++) down_llama[o * F + j] = down_t[j * D + o];
    int32_t kept[2] = {1, 4};
    for (int llama = 0; llama <= 1; llama++) {
        ifp_ffn_src_t src = {.gate = ifp_wmat(gate, IFP_GGML_F32, F, D), .up = ifp_wmat(up, IFP_GGML_F32, F, D),
                             .down = llama ? ifp_wmat(down_llama, IFP_GGML_F32, D, F) : ifp_wmat(down_t, IFP_GGML_F32, F, D),
                             .down_llama = llama};
        float g[2 * D], u[2 * D], dn[2 * D];
        ifp_compact_gather(&src, D, kept, 2, IFP_GGML_F32, g, u, dn);
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < D; i++) {
                assert_float_equal(g[j * D + i], gate[kept[j] * D + i], 0);
                assert_float_equal(u[j * D + i], up[kept[j] * D + i], 0);
                assert_float_equal(dn[j * D + i], down_t[kept[j] * D + i], 0);
            }
        /* into another type: the same as converting the f32 rows */
        ifp_block_q8_0_t q[2], want[2];
        uint16_t h[2 * D];
        ifp_compact_gather(&src, D, kept, 2, IFP_GGML_Q8_0, h, h, q); /* gate/up land in h twice: only down checked */
        ifp_quantize_row(IFP_GGML_Q8_0, down_t + kept[0] * D, D, &want[0]);
        ifp_quantize_row(IFP_GGML_Q8_0, down_t + kept[1] * D, D, &want[1]);
        assert_memory_equal(q, want, sizeof q);
    }
}

static void bad_kept_sets_rejected(void **unused) {
    (void)unused;
    ifp_model_t *m = NULL, *cm = NULL;
    assert_int_equal(ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), NULL, &m, NULL), 0);
    int32_t bad_order[3] = {5, 3, 7}, bad_range[2] = {0, 768}, dup[2] = {4, 4};
    const int32_t *kept[4] = {NULL, bad_order, NULL, NULL};
    int n_kept[4] = {0, 3, 0, 0};
    ifp_err_t err = {0};
    assert_int_equal(ifp_compact_model(m, kept, n_kept, &cm, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "layer 1"));
    kept[1] = bad_range, n_kept[1] = 2;
    assert_int_equal(ifp_compact_model(m, kept, n_kept, &cm, &err), IFP_ERANGE);
    kept[1] = dup;
    assert_int_equal(ifp_compact_model(m, kept, n_kept, &cm, &err), IFP_EINVAL);
    n_kept[1] = 0;
    assert_int_equal(ifp_compact_model(m, kept, n_kept, &cm, &err), IFP_ERANGE);
    assert_null(cm);
    /* a NULL kept list keeps everything: the same weights, shared */
    assert_int_equal(ifp_compact_model(m, NULL, NULL, &cm, &err), 0);
    assert_ptr_equal(cm->layers[2].w_gate.data, m->layers[2].w_gate.data);
    ifp_model_free(&cm);
    ifp_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gather_layout),
        cmocka_unit_test(compacted_equals_masked_ifp_mix),
        cmocka_unit_test(compacted_equals_masked_synth),
        cmocka_unit_test(compact_from_file_equals_from_memory),
        cmocka_unit_test(bad_kept_sets_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
