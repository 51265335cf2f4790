/* test_compact — compacted FFN weights compute exactly the masked full FFN. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

static void compacted_equals_masked_ifp_mix(void **unused) {
    (void)unused;
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), NULL, &m, NULL), 0);
    /* with the reference kernel (double accumulation) the only difference
     * left is summation order: far below 1e-5 */
    ifp_kernel_set(IFP_KERNEL_NAIVE);
    for (int trial = 0; trial < 3; trial++) {
        double d = compare(m, 1, 3, 40); /* K = d_ffn / 3, as the predictor keeps */
        fprintf(stderr, "ifp-mix K=d/3 naive trial %d: max |logit diff| %.3g\n", trial, d);
        assert_true(d < 1e-5);
    }
    ifp_kernel_set(IFP_KERNEL_BLAS);
    /* with BLAS the two GEMMs have different shapes, so float rounding differs
     * a little more (logits are O(10)) */
    double d = compare(m, 1, 3, 40);
    fprintf(stderr, "ifp-mix K=d/3 blas: max |logit diff| %.3g\n", d);
    assert_true(d < 5e-5);
    assert_true(compare(m, 3, 4, 17) < 5e-5);
    ifp_model_free(&m);
}

static void compacted_equals_masked_synth(void **unused) {
    (void)unused;
    ifp_config_t c = {.dim = 96, .n_layers = 3, .n_heads = 6, .n_kv_heads = 2, .head_dim = 16, .d_ffn = 300,
                      .vocab = 97, .ctx = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 16};
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_synth(&c, 7, NULL, &m, NULL), 0);
    double d = compare(m, 1, 2, 33);
    fprintf(stderr, "synth K=d/2: max |logit diff| %.3g\n", d);
    assert_true(d < 1e-5);
    ifp_model_free(&m);
}

/* Gathered rows/columns are the right ones, element for element. */
static void gather_layout(void **unused) {
    (void)unused;
    enum { D = 3, F = 5 };
    float gate[F * D], up[F * D], down[D * F];
    for (int i = 0; i < F * D; i++) gate[i] = (float)i, up[i] = 100.0f + i, down[i] = 1000.0f + i;
    ifp_layer_t L = {.w_gate = gate, .w_up = up, .w_down = down, .d_ffn = F};
    int32_t kept[2] = {1, 4};
    float g[2 * D], u[2 * D], dn[D * 2];
    ifp_compact_gather(&L, D, kept, 2, g, u, dn);
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < D; i++) {
            assert_float_equal(g[j * D + i], gate[kept[j] * D + i], 0);
            assert_float_equal(u[j * D + i], up[kept[j] * D + i], 0);
        }
    for (int r = 0; r < D; r++)
        for (int j = 0; j < 2; j++) assert_float_equal(dn[r * 2 + j], down[r * F + kept[j]], 0);
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
    /* a NULL kept list keeps everything: the same model */
    assert_int_equal(ifp_compact_model(m, NULL, NULL, &cm, &err), 0);
    assert_ptr_equal(cm->layers[2].w_gate, m->layers[2].w_gate);
    ifp_model_free(&cm);
    ifp_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gather_layout),
        cmocka_unit_test(compacted_equals_masked_ifp_mix),
        cmocka_unit_test(compacted_equals_masked_synth),
        cmocka_unit_test(bad_kept_sets_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
