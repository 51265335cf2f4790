/* test_forward — the Llama forward pass against PyTorch golden vectors
 * (ifp-mix), the reference kernel, and batched == sequential. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "forward.h"
#include "kernels.h"
#include "model.h"
#include "sampler.h"
#include "testutil.h"

static ifp_model_t *load(const char *path) {
    ifp_model_t *m = NULL;
    ifp_err_t err = {0};
    int rc = ifp_model_load(path, NULL, &m, &err);
    if (rc) fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return m;
}

/* Feeds ids[0..n) to slot 0 as one prefill; returns the logits of the last. */
static const float *prefill(ifp_state_t *st, const int *ids, int n, int slot) {
    int32_t tok[512], pos[512], sl[512];
    uint8_t want[512];
    assert_true(n <= 512);
    for (int i = 0; i < n; i++) {
        tok[i] = ids[i];
        pos[i] = i;
        sl[i] = slot;
        want[i] = i == n - 1;
    }
    ifp_batch_t b = {.n = n, .token = tok, .pos = pos, .slot = sl, .want_logits = want};
    ifp_err_t err = {0};
    int rows = ifp_forward(st, &b, &err);
    if (rows < 0) fprintf(stderr, "forward: %s\n", err.msg);
    assert_int_equal(rows, 1);
    return ifp_state_logits(st);
}

static const float *step(ifp_state_t *st, int token, int pos, int slot) {
    int32_t t = token, p = pos, s = slot;
    ifp_batch_t b = {.n = 1, .token = &t, .pos = &p, .slot = &s};
    ifp_err_t err = {0};
    assert_int_equal(ifp_forward(st, &b, &err), 1);
    return ifp_state_logits(st);
}

/* Every golden prompt: last-prompt logits to 1e-4, argmax, 32-token greedy. */
static void golden_dense(void **unused) {
    (void)unused;
    ifp_model_t *m = load(MODEL_PATH("ifp-mix/ifp-mix.gguf"));
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(m, NULL, &st, NULL), 0);
    int n_rows;
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n_rows);
    assert_int_equal(n_rows, 12);
    double worst = 0;
    for (int r = 0; r < n_rows; r++) {
        int n, n16, ng;
        int *ids = tu_ints(cJSON_GetObjectItem(rows[r], "prompt_ids"), &n);
        const cJSON *dense = cJSON_GetObjectItem(rows[r], "dense");
        const cJSON *l16 = cJSON_GetObjectItem(dense, "last_logits_first16");
        int *greedy = tu_ints(cJSON_GetObjectItem(dense, "greedy_ids"), &ng);
        n16 = cJSON_GetArraySize(l16);
        ifp_state_reset_slot(st, 0);
        const float *lg = prefill(st, ids, n, 0);
        for (int i = 0; i < n16; i++) {
            double d = fabs(lg[i] - cJSON_GetArrayItem(l16, i)->valuedouble);
            if (d > worst) worst = d;
            assert_true(d < 1e-4);
        }
        assert_int_equal(ifp_argmax(lg, m->cfg.vocab), cJSON_GetObjectItem(dense, "last_argmax")->valueint);
        int pos = n;
        for (int g = 0; g < ng; g++) {
            int next = ifp_argmax(lg, m->cfg.vocab);
            assert_int_equal(next, greedy[g]);
            if (next == 2) break;
            lg = step(st, next, pos++, 0);
        }
        free(ids);
        free(greedy);
    }
    fprintf(stderr, "golden dense: max |logit diff| %.3g over %d prompts\n", worst, n_rows);
    tu_free_jsonl(rows, n_rows);
    ifp_state_free(&st);
    ifp_model_free(&m);
}

/* Golden masked logits: the mask from kept_channels given in the file. */
static void golden_masked_logits(void **unused) {
    (void)unused;
    ifp_model_t *m = load(MODEL_PATH("ifp-mix/ifp-mix.gguf"));
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(m, NULL, &st, NULL), 0);
    int n_rows, F = m->cfg.d_ffn, NL = m->cfg.n_layers;
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n_rows);
    float *mbuf = calloc((size_t)NL * F, sizeof(float));
    const float *layer[16];
    for (int r = 0; r < n_rows; r++) {
        const cJSON *kc = cJSON_GetObjectItem(rows[r], "kept_channels");
        for (int l = 0; l < NL; l++) {
            int nk;
            int *k = tu_ints(cJSON_GetArrayItem(kc, l), &nk);
            for (int j = 0; j < F; j++) mbuf[(size_t)l * F + j] = 0;
            for (int j = 0; j < nk; j++) mbuf[(size_t)l * F + k[j]] = 1;
            layer[l] = mbuf + (size_t)l * F;
            free(k);
        }
        ifp_ffn_mask_t mask = {.layer = layer};
        int n;
        int *ids = tu_ints(cJSON_GetObjectItem(rows[r], "prompt_ids"), &n);
        int32_t tok[256], pos[256], sl[256];
        const ifp_ffn_mask_t *mk[256];
        for (int i = 0; i < n; i++) tok[i] = ids[i], pos[i] = i, sl[i] = 0, mk[i] = &mask;
        ifp_state_reset_slot(st, 0);
        ifp_batch_t b = {.n = n, .token = tok, .pos = pos, .slot = sl, .mask = mk};
        assert_int_equal(ifp_forward(st, &b, NULL), n);
        const float *lg = ifp_state_logits(st) + (size_t)(n - 1) * m->cfg.vocab;
        const cJSON *masked = cJSON_GetObjectItem(rows[r], "masked");
        const cJSON *l16 = cJSON_GetObjectItem(masked, "last_logits_first16");
        for (int i = 0; i < cJSON_GetArraySize(l16); i++)
            assert_true(fabs(lg[i] - cJSON_GetArrayItem(l16, i)->valuedouble) < 1e-4);
        assert_int_equal(ifp_argmax(lg, m->cfg.vocab), cJSON_GetObjectItem(masked, "last_argmax")->valueint);
        free(ids);
    }
    free(mbuf);
    tu_free_jsonl(rows, n_rows);
    ifp_state_free(&st);
    ifp_model_free(&m);
}

/* A batch mixing prefills and decodes of several slots gives, per row, the
 * same logits as running each sequence alone token by token; and the naive
 * reference kernel agrees with BLAS. */
static void batched_equals_sequential(void **unused) {
    (void)unused;
    ifp_model_t *m = load(MODEL_PATH("ifp-mix/ifp-mix.gguf"));
    int V = m->cfg.vocab;
    enum { S = 3, N = 20 };
    int seq[S][N];
    for (int s = 0; s < S; s++)
        for (int i = 0; i < N; i++) seq[s][i] = i == 0 ? 1 : 3 + (s * 131 + i * 17) % (V - 3);
    /* reference: each sequence alone, one token per call, naive kernel */
    float *ref = malloc(sizeof(float) * S * N * V);
    ifp_kernel_set(IFP_KERNEL_NAIVE);
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = S;
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(m, &sp, &st, NULL), 0);
    for (int s = 0; s < S; s++)
        for (int i = 0; i < N; i++) memcpy(ref + ((size_t)s * N + i) * V, step(st, seq[s][i], i, s), sizeof(float) * V);
    ifp_kernel_set(IFP_KERNEL_BLAS);
    /* batched: slot 0 prefills 12 then decodes; slot 1 decodes one by one
     * from the start; slot 2 prefills in chunks of 7 — all interleaved. */
    for (int s = 0; s < S; s++) ifp_state_reset_slot(st, s);
    int done[S] = {0};
    double worst = 0;
    while (done[0] < N || done[1] < N || done[2] < N) {
        int32_t tok[64], pos[64], sl[64];
        int n = 0;
        int take[S] = {done[0] == 0 ? 12 : 1, 1, 7};
        for (int s = 0; s < S; s++)
            for (int k = 0; k < take[s] && done[s] < N; k++, done[s]++) {
                tok[n] = seq[s][done[s]];
                pos[n] = done[s];
                sl[n] = s;
                n++;
            }
        ifp_batch_t b = {.n = n, .token = tok, .pos = pos, .slot = sl};
        assert_int_equal(ifp_forward(st, &b, NULL), n);
        for (int r = 0; r < n; r++) {
            const float *got = ifp_state_logits(st) + (size_t)r * V;
            const float *want = ref + ((size_t)sl[r] * N + pos[r]) * V;
            for (int v = 0; v < V; v++) {
                double d = fabs(got[v] - want[v]);
                if (d > worst) worst = d;
            }
        }
    }
    fprintf(stderr, "batched vs sequential (naive): max |diff| %.3g\n", worst);
    assert_true(worst < 1e-4);
    free(ref);
    ifp_state_free(&st);
    ifp_model_free(&m);
}

static void bad_batches_rejected(void **unused) {
    (void)unused;
    ifp_model_t *m = load(MODEL_PATH("ifp-mix/ifp-mix.gguf"));
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = 2;
    sp.max_batch = 8;
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(m, &sp, &st, NULL), 0);
    ifp_err_t err = {0};
    int32_t tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, pos[9] = {0}, sl[9] = {0};
    ifp_batch_t b = {.n = 1, .token = tok, .pos = pos, .slot = sl};
    pos[0] = 1; /* gap: slot 0 is empty */
    assert_int_equal(ifp_forward(st, &b, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "gap"));
    pos[0] = 0;
    sl[0] = 2;
    assert_int_equal(ifp_forward(st, &b, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "slot"));
    sl[0] = 0;
    tok[0] = m->cfg.vocab;
    assert_int_equal(ifp_forward(st, &b, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "token"));
    tok[0] = 1;
    b.n = 9;
    assert_int_equal(ifp_forward(st, &b, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "max_batch"));
    b.n = 2; /* same position twice */
    assert_int_equal(ifp_forward(st, &b, &err), IFP_EINVAL);
    pos[0] = m->cfg.ctx;
    b.n = 1;
    assert_int_equal(ifp_forward(st, &b, &err), IFP_EINVAL);
    pos[0] = 0;
    assert_int_equal(ifp_forward(st, &b, &err), 1);
    assert_int_equal(ifp_state_slot_len(st, 0), 1);
    ifp_state_free(&st);
    ifp_model_free(&m);
}

/* A model split into two layer slices (pipeline stages), passing the hidden
 * rows between them, equals the whole model. */
static void stage_split_equals_whole(void **unused) {
    (void)unused;
    ifp_model_t *whole = load(MODEL_PATH("ifp-mix/ifp-mix.gguf"));
    ifp_model_params_t p0 = ifp_model_default_params(), p1 = p0;
    p0.layer_end = 1;
    p0.load_head = 0;
    p1.layer_begin = 1;
    p1.load_embd = 0;
    ifp_model_t *a = NULL, *b = NULL;
    assert_int_equal(ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &p0, &a, NULL), 0);
    assert_int_equal(ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &p1, &b, NULL), 0);
    assert_null(a->output.data);
    assert_null(b->tok_embd.data);
    ifp_state_t *sw = NULL, *sa = NULL, *sb = NULL;
    assert_int_equal(ifp_state_new(whole, NULL, &sw, NULL), 0);
    assert_int_equal(ifp_state_new(a, NULL, &sa, NULL), 0);
    assert_int_equal(ifp_state_new(b, NULL, &sb, NULL), 0);
    int ids[10] = {1, 327, 1994, 1098, 317, 2041, 1965, 282, 1504, 302};
    int32_t tok[10], pos[10], sl[10] = {0};
    for (int i = 0; i < 10; i++) tok[i] = ids[i], pos[i] = i;
    ifp_batch_t bt = {.n = 10, .token = tok, .pos = pos, .slot = sl};
    assert_int_equal(ifp_forward(sw, &bt, NULL), 10);
    assert_int_equal(ifp_forward_embed(sa, &bt, NULL), 0);
    assert_int_equal(ifp_forward_layers(sa, &bt, 0, 1, NULL), 0);
    memcpy(ifp_state_hidden(sb), ifp_state_hidden(sa), sizeof(float) * 10 * whole->cfg.dim);
    assert_int_equal(ifp_forward_layers(sb, &bt, 1, 4, NULL), 0);
    assert_int_equal(ifp_forward_head(sb, &bt, NULL), 10);
    for (size_t i = 0; i < (size_t)10 * whole->cfg.vocab; i++)
        assert_float_equal(ifp_state_logits(sb)[i], ifp_state_logits(sw)[i], 1e-6);
    ifp_err_t err = {0};
    assert_int_equal(ifp_forward_layers(sa, &bt, 0, 2, &err), IFP_ERANGE);
    assert_int_equal(ifp_forward_head(sa, &bt, &err), IFP_EINVAL);
    ifp_state_free(&sw);
    ifp_state_free(&sa);
    ifp_state_free(&sb);
    ifp_model_free(&a);
    ifp_model_free(&b);
    ifp_model_free(&whole);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_dense),
        cmocka_unit_test(golden_masked_logits),
        cmocka_unit_test(batched_equals_sequential),
        cmocka_unit_test(bad_batches_rejected),
        cmocka_unit_test(stage_split_equals_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
