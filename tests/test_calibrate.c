/* test_calibrate — predictor calibration (core/calib.h, `ifp calibrate`):
 * the ridge solver and head fitting on a planted map, the importance pass on
 * a synthetic model against a layer-by-layer brute-force recomputation, the
 * written predictor against ifp_predictor_load, GGUF key/value copying, and
 * `ifp calibrate` end to end on stories260K (per-input masks must beat the
 * static mask on held-out prompts) plus its input validation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calib.h"
#include "forward.h"
#include "kernels.h"
#include "predictor.h"
#include "testutil.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"
#define STORIES MODEL_PATH("stories260K.gguf")

static uint64_t rng_state = 12345;
static double urand(void) { /* xorshift64*, in [0, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}
static double grand(void) {
    double u = urand() + 1e-12, v = urand();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- linear algebra and fitting ---- */

static void ridge_solves(void **unused) {
    (void)unused;
    enum { H = 12, M = 5 };
    double A[H * H], G[H * H] = {0}, R[H * M], W[H * M];
    for (int i = 0; i < H * H; i++) A[i] = grand();
    for (int i = 0; i < H; i++) /* G = A A^T: symmetric positive definite */
        for (int j = 0; j < H; j++)
            for (int k = 0; k < H; k++) G[i * H + j] += A[i * H + k] * A[j * H + k];
    for (int i = 0; i < H * M; i++) R[i] = grand();
    for (int pass = 0; pass < 2; pass++) {
        double lambda = pass ? 0.5 : 0.0;
        assert_int_equal(ifp_ridge_solve(G, H, lambda, R, M, W), IFP_OK);
        for (int i = 0; i < H; i++) /* (G + lambda I) W == R */
            for (int c = 0; c < M; c++) {
                double s = lambda * W[i * M + c];
                for (int k = 0; k < H; k++) s += G[i * H + k] * W[k * M + c];
                assert_true(fabs(s - R[i * M + c]) < 1e-8 * (1.0 + fabs(R[i * M + c])));
            }
    }
    double neg[4] = {1, 0, 0, -1}; /* indefinite */
    assert_int_equal(ifp_ridge_solve(neg, 2, 0.0, R, 1, W), IFP_ERANGE);
}

/* T = X A + c + small noise: the fitted head must predict fresh inputs. */
static void fit_recovers_planted_linear_map(void **unused) {
    (void)unused;
    enum { N = 400, NT = 100, D = 8, M = 12 };
    float *X = malloc(sizeof(float) * (N + NT) * D), *T = malloc(sizeof(float) * (N + NT) * M);
    double A[D * M], c[M];
    for (int i = 0; i < D * M; i++) A[i] = grand();
    for (int j = 0; j < M; j++) c[j] = 5.0 * grand();
    for (int r = 0; r < N + NT; r++) {
        for (int k = 0; k < D; k++) X[r * D + k] = (float)(3.0 * grand() + (k == 2 ? 10.0 : 0.0)); /* scale + offset */
        for (int j = 0; j < M; j++) {
            double t = c[j] + (r < N ? 1e-3 * grand() : 0.0);
            for (int k = 0; k < D; k++) t += X[r * D + k] * A[k * M + j];
            T[r * M + j] = (float)t;
        }
    }
    for (int cv = 0; cv < 2; cv++) {
        ifp_fit_params_t p = ifp_fit_default_params();
        p.hidden = 16; /* 8 principal (near-linear) units + 8 random ones */
        p.lambda = cv ? -1.0f : 1e-6f;
        ifp_head_t *h = NULL;
        float lambda = 0, *oof = malloc(sizeof(float) * N * M);
        ifp_err_t err = {0};
        assert_int_equal(ifp_head_fit(X, N, D, T, M, &p, &h, &lambda, oof, &err), IFP_OK);
        float act[16], y[M];
        double se = 0.0, var = 0.0, se_oof = 0.0;
        for (int r = N; r < N + NT; r++) {
            ifp_head_apply(h, X + r * D, 1, act, y);
            for (int j = 0; j < M; j++) {
                se += (y[j] - T[r * M + j]) * (double)(y[j] - T[r * M + j]);
                var += (T[r * M + j] - c[j]) * (double)(T[r * M + j] - c[j]);
            }
        }
        for (int r = 0; r < N; r++)
            for (int j = 0; j < M; j++) se_oof += (oof[r * M + j] - T[r * M + j]) * (double)(oof[r * M + j] - T[r * M + j]);
        /* R^2 on fresh inputs and out of fold */
        assert_true(se / var < 1e-4);
        assert_true(se_oof / (var * N / NT) < 1e-4);
        if (cv) assert_true(lambda <= 1e-2f); /* CV prefers weak shrinkage on noiseless data */
        ifp_head_destroy(&h);
        free(oof);
    }
    ifp_fit_params_t p = ifp_fit_default_params();
    ifp_head_t *h = NULL;
    ifp_err_t err = {0};
    p.folds = 1;
    assert_int_equal(ifp_head_fit(X, N, D, T, M, &p, &h, NULL, NULL, &err), IFP_EINVAL);
    p = ifp_fit_default_params();
    p.keep = 3, p.n_layers = 5, p.d_ffn = 5; /* 25 outputs, not 12 */
    assert_int_equal(ifp_head_fit(X, N, D, T, M, &p, &h, NULL, NULL, &err), IFP_EINVAL);
    assert_null(h);
    free(X), free(T);
}

/* Adam epochs start from the ridge solution and lower the training loss. */
static void adam_lowers_training_loss(void **unused) {
    (void)unused;
    enum { N = 128, D = 4, M = 6 };
    float X[N * D], T[N * M];
    for (int r = 0; r < N; r++) {
        for (int k = 0; k < D; k++) X[r * D + k] = (float)grand();
        for (int j = 0; j < M; j++) T[r * M + j] = (float)(sin(2.0 * X[r * D + j % D]) + X[r * D + (j + 1) % D] * X[r * D]);
    }
    double loss[2];
    for (int pass = 0; pass < 2; pass++) {
        ifp_fit_params_t p = ifp_fit_default_params();
        p.hidden = 32, p.lambda = 1e-2f, p.epochs = pass ? 200 : 0, p.lr = 3e-3f, p.batch = 16;
        ifp_head_t *h = NULL;
        ifp_err_t err = {0};
        assert_int_equal(ifp_head_fit(X, N, D, T, M, &p, &h, NULL, NULL, &err), IFP_OK);
        float act[32 * N], y[N * M];
        ifp_head_apply(h, X, N, act, y);
        loss[pass] = 0.0;
        for (int i = 0; i < N * M; i++) loss[pass] += (y[i] - T[i]) * (double)(y[i] - T[i]);
        ifp_head_destroy(&h);
    }
    assert_true(loss[1] < 0.9 * loss[0]);
}

static void captured_metric(void **unused) {
    (void)unused;
    /* 1 example, 2 layers of 4 channels, keep 2 */
    const float T[8] = {4, 3, 2, 1, 0, 1, 5, 2};
    const float good[8] = {9, 8, 0, 0, 0, 0, 9, 8}, bad[8] = {0, 0, 8, 9, 9, 8, 0, 0};
    assert_true(fabs(ifp_fit_captured(T, 8, T, 1, 2, 4, 2) - 1.0) < 1e-12);
    assert_true(fabs(ifp_fit_captured(good, 8, T, 1, 2, 4, 2) - 1.0) < 1e-12);
    /* layer 0 keeps 2+1 of 4+3, layer 1 keeps 0+1 of 5+2 */
    assert_true(fabs(ifp_fit_captured(bad, 0, T, 1, 2, 4, 2) - (3.0 / 7 + 1.0 / 7) / 2) < 1e-12);
}

/* ---- importance and features ---- */

static ifp_config_t tiny_config(void) {
    ifp_config_t c = {.dim = 16, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4, .d_ffn = 24,
                      .vocab = 40, .ctx = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 4};
    return c;
}

/* For layer l, re-run layers [0, l] from scratch with only layer l's FFN
 * zeroed (so the rows hold its FFN input stream), then the FFN in double. */
static void brute_importance(const ifp_model_t *m, const int32_t *ids, int n, double *imp) {
    const ifp_config_t *c = &m->cfg;
    int d = c->dim, F = c->d_ffn;
    float *zeros = calloc((size_t)F, sizeof *zeros);
    const float *layer[8] = {0};
    ifp_ffn_mask_t mk = {.layer = layer};
    const ifp_ffn_mask_t **rows = malloc(sizeof *rows * n);
    int32_t *pos = malloc(sizeof *pos * n), *slot = calloc((size_t)n, sizeof *slot);
    for (int i = 0; i < n; i++) rows[i] = &mk, pos[i] = i;
    for (int l = 0; l < c->n_layers; l++) {
        ifp_state_t *st = NULL;
        ifp_state_params_t sp = {.n_slots = 1, .max_batch = n, .ctx = c->ctx};
        assert_int_equal(ifp_state_new(m, &sp, &st, NULL), IFP_OK);
        for (int k = 0; k < c->n_layers; k++) layer[k] = k == l ? zeros : NULL;
        ifp_batch_t b = {.n = n, .token = ids, .pos = pos, .slot = slot, .mask = rows};
        assert_int_equal(ifp_forward_embed(st, &b, NULL), IFP_OK);
        assert_int_equal(ifp_forward_layers(st, &b, 0, l + 1, NULL), IFP_OK);
        const float *x = ifp_state_hidden(st);
        const ifp_layer_t *w = &m->layers[l];
        const float *wg = w->w_gate.data, *wu = w->w_up.data, *wd = w->w_down.data; /* f32, down channel-major */
        for (int i = 0; i < F; i++) {
            double dn = 0.0, acc = 0.0;
            for (int r = 0; r < d; r++) dn += (double)wd[i * d + r] * wd[i * d + r];
            for (int t = 0; t < n; t++) {
                double ss = 0.0, g = 0.0, u = 0.0;
                for (int k = 0; k < d; k++) ss += (double)x[t * d + k] * x[t * d + k];
                double inv = 1.0 / sqrt(ss / d + c->norm_eps);
                for (int k = 0; k < d; k++) {
                    double xn = x[t * d + k] * inv * w->ffn_norm[k];
                    g += wg[i * d + k] * xn;
                    u += wu[i * d + k] * xn;
                }
                double a = g / (1.0 + exp(-g)) * u;
                acc += a * a;
            }
            imp[l * F + i] = acc / n * dn;
        }
        ifp_state_free(&st);
    }
    free(zeros), free(rows), free(pos), free(slot);
}

static void importance_matches_brute_force(void **unused) {
    (void)unused;
    ifp_config_t c = tiny_config();
    ifp_model_t *m = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_model_synth(&c, 7, NULL, &m, &err), IFP_OK);
    enum { N = 23 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(urand() * c.vocab);
    int S = c.n_layers * c.d_ffn;
    float *imp = malloc(sizeof(float) * S), *imp2 = malloc(sizeof(float) * S);
    double *want = malloc(sizeof(double) * S);
    brute_importance(m, ids, N, want);
    /* one chunk, and chunks of 5 rows (KV cache carried across chunks) */
    int batches[2] = {0, 5};
    for (int k = 0; k < 2; k++) {
        ifp_calib_t *cal = NULL;
        assert_int_equal(ifp_calib_new(m, batches[k], &cal, &err), IFP_OK);
        assert_int_equal(ifp_calib_importance(cal, ids, N, k ? imp2 : imp, &err), IFP_OK);
        /* the state is reset per call: a second call gives the same result */
        assert_int_equal(ifp_calib_importance(cal, ids, N, k ? imp2 : imp, &err), IFP_OK);
        ifp_calib_destroy(&cal);
        assert_null(cal);
    }
    for (int j = 0; j < S; j++) {
        assert_true(want[j] >= 0.0);
        assert_true(fabs(imp[j] - want[j]) <= 1e-4 * want[j] + 1e-9);
        assert_true(fabs(imp2[j] - want[j]) <= 1e-4 * want[j] + 1e-9);
    }
    /* the feature is the dense model's final-norm state at the last token */
    ifp_calib_t *cal = NULL;
    assert_int_equal(ifp_calib_new(m, 8, &cal, &err), IFP_OK);
    float feat[16];
    assert_int_equal(ifp_calib_feature(cal, ids, N, feat, &err), IFP_OK);
    ifp_state_t *st = NULL;
    ifp_state_params_t sp = {.n_slots = 1, .max_batch = N, .ctx = c.ctx};
    assert_int_equal(ifp_state_new(m, &sp, &st, &err), IFP_OK);
    int32_t pos[N], slot[N] = {0};
    uint8_t want_l[N] = {0};
    for (int i = 0; i < N; i++) pos[i] = i;
    want_l[N - 1] = 1;
    ifp_batch_t b = {.n = N, .token = ids, .pos = pos, .slot = slot, .want_logits = want_l};
    assert_int_equal(ifp_forward(st, &b, &err), 1);
    for (int k = 0; k < c.dim; k++) assert_true(fabsf(feat[k] - ifp_state_normed(st)[k]) < 1e-5f);
    /* bad input */
    assert_int_equal(ifp_calib_importance(cal, ids, 0, imp, &err), IFP_EINVAL);
    assert_int_equal(ifp_calib_importance(cal, ids, c.ctx + 1, imp, &err), IFP_ERANGE);
    ifp_state_free(&st);
    ifp_calib_destroy(&cal);
    ifp_model_free(&m);
    free(imp), free(imp2), free(want);
}

/* ---- output ---- */

/* A random head on stories260K's backbone: the written file loads with
 * ifp_predictor_load and scores like the head; every backbone key/value and
 * tensor is copied. */
static void saved_predictor_loads(void **unused) {
    (void)unused;
    ifp_err_t err = {0};
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_load(STORIES, NULL, &m, &err), IFP_OK);
    const ifp_config_t *c = &m->cfg;
    int S = c->n_layers * c->d_ffn, H = 24;
    ifp_head_t *h = ifp_head_new(c->dim, H, S);
    assert_non_null(h);
    for (int i = 0; i < H * c->dim; i++) h->w1[i] = (float)(0.3 * grand());
    for (int i = 0; i < H; i++) h->b1[i] = (float)grand();
    for (int i = 0; i < S * H; i++) h->w2[i] = (float)grand();
    for (int i = 0; i < S; i++) h->b2[i] = (float)grand();
    int gate[5] = {1, 0, 1, 1, 0};
    float *stat = malloc(sizeof(float) * S);
    for (int i = 0; i < S; i++) stat[i] = (float)i;
    ifp_head_gate(h, gate, stat, c->n_layers, c->d_ffn);
    char path[] = "/tmp/ifp_test_calib_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    ifp_calib_meta_t meta = {.n_layers = c->n_layers, .d_ffn = c->d_ffn, .keep = 86, .max_prompt = 200, .lambda = 3,
                             .n_examples = 9, .gate = gate, .model_name = "stories260K.gguf"};
    assert_int_equal(ifp_calib_save(m->gguf, h, &meta, path, &err), IFP_OK);
    ifp_predictor_t *p = NULL;
    assert_int_equal(ifp_predictor_load(path, &p, &err), IFP_OK);
    assert_int_equal(ifp_predictor_check_target(p, c, &err), IFP_OK);
    assert_int_equal(ifp_predictor_keep(p), 86);
    assert_int_equal(ifp_predictor_max_prompt(p), 200);
    assert_int_equal(ifp_predictor_hidden(p), H);
    int32_t ids[9] = {1, 403, 261, 378, 365, 291, 268, 400, 46};
    float *got = malloc(sizeof(float) * S), *want = malloc(sizeof(float) * S), feat[64], act[24];
    assert_int_equal(ifp_predictor_scores(p, ids, 9, got, &err), IFP_OK);
    ifp_calib_t *cal = NULL;
    assert_int_equal(ifp_calib_new(m, 0, &cal, &err), IFP_OK);
    assert_int_equal(ifp_calib_feature(cal, ids, 9, feat, &err), IFP_OK);
    ifp_head_apply(h, feat, 1, act, want);
    for (int i = 0; i < S; i++) {
        assert_true(fabsf(got[i] - want[i]) < 1e-4f * (1.0f + fabsf(want[i])));
        if (!gate[i / c->d_ffn]) assert_true(got[i] == stat[i]); /* gated-off layers: exactly the static scores */
    }
    /* the copy: every backbone kv (but general.alignment, rewritten) and tensor */
    ifp_gguf_t *g = NULL;
    assert_int_equal(ifp_gguf_open(path, &g, &err), IFP_OK);
    for (uint64_t i = 0; i < ifp_gguf_n_kv(m->gguf); i++) {
        const ifp_gguf_kv_t *a = ifp_gguf_kv_at(m->gguf, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.ptr);
        const ifp_gguf_kv_t *b = ifp_gguf_find(g, key);
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        if (a->type == IFP_GGUF_ARRAY) {
            assert_int_equal(a->arr_type, b->arr_type);
            assert_int_equal(a->arr_n, b->arr_n);
            for (uint64_t k = 0; k < a->arr_n; k++) {
                if (a->arr_type == IFP_GGUF_STRING)
                    assert_memory_equal(a->arr_str[k].ptr, b->arr_str[k].ptr, a->arr_str[k].len);
                else
                    assert_true(ifp_gguf_arr_num(a, k) == ifp_gguf_arr_num(b, k));
            }
        } else if (a->type == IFP_GGUF_STRING) {
            assert_int_equal(a->v.str.len, b->v.str.len);
            assert_memory_equal(a->v.str.ptr, b->v.str.ptr, a->v.str.len);
        } else {
            assert_memory_equal(&a->v, &b->v, sizeof a->v);
        }
    }
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(m->gguf); i++) {
        const ifp_gguf_tensor_t *a = ifp_gguf_tensor_at(m->gguf, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.ptr);
        const ifp_gguf_tensor_t *b = ifp_gguf_find_tensor(g, name);
        assert_non_null(b);
        assert_int_equal(a->n_bytes, b->n_bytes);
        assert_memory_equal(a->data, b->data, a->n_bytes);
    }
    assert_int_equal(ifp_gguf_n_tensors(g), ifp_gguf_n_tensors(m->gguf) + 4);
    const ifp_gguf_kv_t *gk = NULL;
    assert_int_equal(ifp_gguf_get_arr(g, "ifp.calibrate.layer_gate", IFP_GGUF_INT32, 5, &gk, &err), IFP_OK);
    assert_true(ifp_gguf_arr_num(gk, 1) == 0 && ifp_gguf_arr_num(gk, 2) == 1);
    /* inconsistent layouts are refused */
    meta.keep = c->d_ffn + 1;
    assert_int_equal(ifp_calib_save(m->gguf, h, &meta, path, &err), IFP_EINVAL);
    meta.keep = 86, meta.max_prompt = c->ctx + 1;
    assert_int_equal(ifp_calib_save(m->gguf, h, &meta, path, &err), IFP_EINVAL);
    ifp_gguf_close(&g);
    ifp_predictor_destroy(&p);
    ifp_calib_destroy(&cal);
    ifp_head_destroy(&h);
    ifp_model_free(&m);
    free(got), free(want), free(stat);
    unlink(path);
}

/* A backbone that already is a predictor: its head and ifp.predictor.* keys
 * are replaced, not duplicated. */
static void resave_replaces_an_old_head(void **unused) {
    (void)unused;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    assert_int_equal(ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), &g, &err), IFP_OK);
    ifp_head_t *h = ifp_head_new(96, 8, 4 * 768);
    char path[] = "/tmp/ifp_test_calib_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ifp_calib_meta_t meta = {.n_layers = 4, .d_ffn = 768, .keep = 100, .max_prompt = 256};
    assert_int_equal(ifp_calib_save(g, h, &meta, path, &err), IFP_OK);
    ifp_predictor_t *p = NULL;
    assert_int_equal(ifp_predictor_load(path, &p, &err), IFP_OK);
    assert_int_equal(ifp_predictor_hidden(p), 8);
    assert_int_equal(ifp_predictor_keep(p), 100);
    ifp_head_t *bad = ifp_head_new(64, 8, 4 * 768); /* feature size != backbone dim 96 */
    assert_int_equal(ifp_calib_save(g, bad, &meta, path, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "dim"));
    ifp_head_destroy(&bad);
    ifp_predictor_destroy(&p);
    ifp_head_destroy(&h);
    ifp_gguf_close(&g);
    unlink(path);
}

/* The "all" column of the table row `| name |`. */
static double table_all(const char *out, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\n| %s |", name);
    const char *row = strstr(out, key);
    if (!row) return NAN;
    const char *end = strchr(row + 1, '\n'), *cell = row + 1;
    double v[8];
    int k = 0;
    for (const char *s = strchr(cell + 1, '|'); s && s < end && k < 8; s = strchr(s + 1, '|')) {
        char *e;
        double x = strtod(s + 1, &e);
        if (e != s + 1) v[k++] = x;
    }
    return k >= 2 ? v[k - 2] : NAN; /* the last cell is "vs dense" */
}

/* stories260K as model and backbone, keep 86 of 172, the first 120
 * calibration examples, the first 100 held-out ones. */
static void calibrate_stories_end_to_end(void **unused) {
    (void)unused;
    char held[] = "/tmp/ifp_test_calib_held_XXXXXX", pred[] = "/tmp/ifp_test_calib_pred_XXXXXX";
    int fd = mkstemp(held), pfd = mkstemp(pred);
    assert_true(fd >= 0 && pfd >= 0);
    close(pfd);
    char *all = tu_read_file(IFP_SOURCE_DIR "/data/stories/heldout.jsonl", NULL);
    assert_non_null(all);
    const char *p = all;
    for (int i = 0; i < 100 && *p; i++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
    assert_int_equal(write(fd, all, (size_t)(p - all)), (ssize_t)(p - all));
    close(fd);
    free(all);
    const char *argv[] = {IFP_BIN, "calibrate", "--model", STORIES, "--backbone", STORIES, "--calib",
                          IFP_SOURCE_DIR "/data/stories/calib.jsonl", "--keep", "86", "-o", pred, "--limit", "120",
                          "--gate-examples", "48", "--holdout", held, NULL};
    tu_run_t r = tu_run(argv);
    if (r.status != 0) fprintf(stderr, "stderr:\n%s\nstdout:\n%s\n", r.err, r.out);
    assert_int_equal(r.status, 0);
    double dense = table_all(r.out, "dense"), stat = table_all(r.out, "static");
    double input = table_all(r.out, "per-input"), rnd = table_all(r.out, "random");
    fprintf(stderr, "held-out ppl: dense %.3f static %.3f per-input %.3f random %.3f\n", dense, stat, input, rnd);
    assert_true(isfinite(dense) && isfinite(stat) && isfinite(input) && isfinite(rnd));
    assert_true(input < stat);
    assert_true(dense < input && stat < rnd);
    assert_non_null(strstr(r.err, "reloaded with ifp_predictor_load"));
    assert_non_null(strstr(r.err, "cv lambda"));
    /* the file is a predictor for stories260K */
    ifp_err_t err = {0};
    ifp_predictor_t *pr = NULL;
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_predictor_load(pred, &pr, &err), IFP_OK);
    assert_int_equal(ifp_model_load(STORIES, NULL, &m, &err), IFP_OK);
    assert_int_equal(ifp_predictor_check_target(pr, &m->cfg, &err), IFP_OK);
    assert_int_equal(ifp_predictor_keep(pr), 86);
    ifp_mask_t *mk = NULL;
    int32_t ids[4] = {1, 403, 261, 378};
    assert_int_equal(ifp_predictor_mask(pr, ids, 4, 0, &mk, &err), IFP_OK);
    for (int l = 0; l < 5; l++) assert_int_equal(mk->n_kept[l], 86);
    ifp_mask_destroy(&mk);
    ifp_model_free(&m);
    ifp_predictor_destroy(&pr);
    free(r.out), free(r.err);
    unlink(held), unlink(pred);
}

static void calibrate_bad_input(void **unused) {
    (void)unused;
    char bad[] = "/tmp/ifp_test_calib_bad_XXXXXX";
    int fd = mkstemp(bad);
    const char *text = "{\"prompt\": \"Once upon a time.\", \"response\": \" The end.\"}\n{\"prompt\": 3}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *calib = IFP_SOURCE_DIR "/data/stories/calib.jsonl";
    struct {
        const char *argv[20];
        int status;
        const char *msg;
    } cases[] = {
        {{IFP_BIN, "calibrate", "--calib", calib, "--keep", "8", "-o", "/tmp/x.gguf", NULL}, 2, "--model is required"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--keep", "8", "-o", "/tmp/x.gguf", NULL}, 2, "--calib is required"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "-o", "/tmp/x.gguf", NULL}, 2, "--keep is required"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "8", NULL}, 2, "-o is required"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "0", "-o", "/tmp/x.gguf", NULL}, 2,
         "out of range"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "8", "-o", "/tmp/x.gguf", "--lambda",
          "-0.5", NULL}, 2, "--lambda must be"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "8x", "-o", "/tmp/x.gguf", NULL}, 2,
         "integer"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "8", "-o", "/tmp/x.gguf", "--folds",
          "1", NULL}, 2, "out of range"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "173", "-o", "/tmp/x.gguf", NULL}, 1,
         "exceeds the model's 172"},
        {{IFP_BIN, "calibrate", "--model", "/nonexistent.gguf", "--calib", calib, "--keep", "8", "-o", "/tmp/x.gguf",
          NULL}, 1, "nonexistent"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--backbone", MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"),
          "--calib", calib, "--keep", "8", "-o", "/tmp/x.gguf", NULL}, 1, "vocabulary"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", "/nonexistent.jsonl", "--keep", "8", "-o", "/tmp/x.gguf",
          NULL}, 1, "cannot open"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", bad, "--keep", "8", "-o", "/tmp/x.gguf", NULL}, 1,
         ":2: \"prompt\" must be a string"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "8", "-o", "/tmp/x.gguf", "--limit", "1",
          NULL}, 1, "at least 2"},
        {{IFP_BIN, "calibrate", "--model", STORIES, "--calib", calib, "--keep", "8", "-o", "/nonexistent/dir/x.gguf",
          "--limit", "6", "--folds", "3", "--gate-examples", "0", NULL}, 1, "cannot create"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tu_run_t r = tu_run(cases[i].argv);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg))
            fprintf(stderr, "case %zu: status %d stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.err, cases[i].msg));
        free(r.out), free(r.err);
    }
    unlink(bad);
    const char *help[] = {IFP_BIN, "calibrate", "--help", NULL};
    tu_run_t r = tu_run(help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--holdout"));
    free(r.out), free(r.err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ridge_solves),
        cmocka_unit_test(fit_recovers_planted_linear_map),
        cmocka_unit_test(adam_lowers_training_loss),
        cmocka_unit_test(captured_metric),
        cmocka_unit_test(importance_matches_brute_force),
        cmocka_unit_test(saved_predictor_loads),
        cmocka_unit_test(resave_replaces_an_old_head),
        cmocka_unit_test(calibrate_stories_end_to_end),
        cmocka_unit_test(calibrate_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
