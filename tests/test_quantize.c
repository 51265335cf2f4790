/* test_quantize — `ifp quantize` through the real binary: ifp-mix rewritten
 * as f16, bf16 and q8_0 keeps its logits within a measured tolerance of the
 * f32 model (max |logit diff|, top-1 agreement), sizes and tensor types are
 * what was asked (norms f32, q8_0's down channel-major as ffn_down_t), every
 * key is kept; a channel-major q8_0 file loads to the very bytes of
 * converting the f32 file at load; a llama-layout q8_0 file (re-quantized
 * along dim at load) and its difference; errors (a q4_K tensor, bad flags,
 * missing input, OUT == IN, d_ffn not a multiple of 32 for --llama-layout);
 * `ifp synth --type q8_0`; `ifp info`'s memory section against the bytes a
 * loaded model really holds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compact.h"
#include "forward.h"
#include "gguf.h"
#include "model.h"
#include "synth.h"
#include "testutil.h"
#include "tokenizer.h"
#include "wmat.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"
#define MIX MODEL_PATH("ifp-mix/ifp-mix.gguf")
#define N_TOK 24

/* Bounds, about 3x the values measured on ifp-mix over the 24 positions of
 * the prompt below (printed by the test on every run; the f32 logits span
 * -10.1 .. 13.0):
 *   f16  max |logit diff| 0.0040, top-1 agreement 1.00
 *   bf16 max |logit diff| 0.0281, top-1 agreement 1.00
 *   q8_0 max |logit diff| 0.0815, top-1 agreement 1.00 (channel-major)
 *   q8_0 llama layout     0.0829, top-1 1.00 (re-quantized along dim at
 *        load; 0.0205 from the channel-major file's logits)
 * Top-1: at most one position of 24 may change.  The same bounds hold for
 * decode (one position per forward call, against f32 decode): measured the
 * same to 4 digits (q8_0 0.0815: its activations' int16 rounding in the
 * integer xwt is far below the weights' own). */
static const struct {
    const char *type;
    ifp_ggml_type_t t;
    double max_diff, min_top1;
} kinds[] = {
    {"f16", IFP_GGML_F16, 0.012, 0.95},
    {"bf16", IFP_GGML_BF16, 0.085, 0.95},
    {"q8_0", IFP_GGML_Q8_0, 0.25, 0.95},
};
#define LLAMA_Q8_MAX_DIFF 0.25

static void tmp_path(char *buf, size_t len, const char *tag) {
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/test_quantize_%ld_%s.gguf", dir && *dir ? dir : "/tmp", (long)getpid(), tag);
}

static tu_run_t run_ifp(const char *const *args) {
    const char *argv[32] = {IFP_BIN};
    int n = 1;
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv);
}

/* `ifp quantize MIX out --type type [extra]`, which must succeed. */
static void quantize(const char *out, const char *type, const char *extra) {
    const char *args[] = {"quantize", MIX, out, "--type", type, extra, NULL};
    tu_run_t r = run_ifp(args);
    if (r.status != 0) fprintf(stderr, "ifp quantize --type %s: %s%s", type, r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, " -> "));
    assert_non_null(strstr(r.out, " bytes ("));
    tu_run_free(&r);
}

/* The prompt's first N_TOK tokens. */
static void prompt_tokens(const ifp_model_t *m, int32_t *ids) {
    ifp_tokenizer_t *tok = NULL;
    assert_int_equal(ifp_tokenizer_from_gguf(m->gguf, &tok, NULL), IFP_OK);
    int32_t buf[256];
    int n = ifp_tokenizer_encode(tok, "Question: Natalia sold clips to 48 of her friends in April, and then she sold "
                                      "half as many clips in May. How many clips did she sell altogether?\nAnswer:",
                                 1, buf, 256);
    assert_true(n >= N_TOK);
    memcpy(ids, buf, N_TOK * sizeof *ids);
    ifp_tokenizer_destroy(&tok);
}

/* Logits of every position of ids through m: out[N_TOK × vocab]. */
static void logits_of(const ifp_model_t *m, const int32_t *ids, float *out) {
    ifp_state_params_t sp = ifp_state_default_params();
    sp.max_batch = N_TOK;
    ifp_state_t *st = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_state_new(m, &sp, &st, &err), IFP_OK);
    int32_t pos[N_TOK], slot[N_TOK] = {0};
    for (int i = 0; i < N_TOK; i++) pos[i] = i;
    ifp_batch_t b = {.n = N_TOK, .token = ids, .pos = pos, .slot = slot};
    assert_int_equal(ifp_forward(st, &b, &err), N_TOK);
    memcpy(out, ifp_state_logits(st), (size_t)N_TOK * m->cfg.vocab * sizeof *out);
    ifp_state_free(&st);
}

/* The same, one position per forward call (the decode kernels: batches of
 * 1 row; q8_0's integer xwt runs only there). */
static void logits_decode(const ifp_model_t *m, const int32_t *ids, float *out) {
    ifp_state_params_t sp = ifp_state_default_params();
    sp.max_batch = 1;
    ifp_state_t *st = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_state_new(m, &sp, &st, &err), IFP_OK);
    for (int i = 0; i < N_TOK; i++) {
        int32_t pos = i, slot = 0;
        ifp_batch_t b = {.n = 1, .token = ids + i, .pos = &pos, .slot = &slot};
        assert_int_equal(ifp_forward(st, &b, &err), 1);
        memcpy(out + (size_t)i * m->cfg.vocab, ifp_state_logits(st), (size_t)m->cfg.vocab * sizeof *out);
    }
    ifp_state_free(&st);
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* max |a - b| over every logit, and the share of positions with the same top-1 token. */
static void compare(const float *a, const float *b, int vocab, double *max_diff, double *top1) {
    *max_diff = 0;
    int same = 0;
    for (int i = 0; i < N_TOK; i++) {
        for (int v = 0; v < vocab; v++) {
            double d = fabs((double)a[(size_t)i * vocab + v] - (double)b[(size_t)i * vocab + v]);
            if (d > *max_diff) *max_diff = d;
        }
        same += argmax(a + (size_t)i * vocab, vocab) == argmax(b + (size_t)i * vocab, vocab);
    }
    *top1 = (double)same / N_TOK;
}

/* Bytes of a file's matrices (2-D tensors). */
static uint64_t matrix_bytes(const ifp_gguf_t *g) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++)
        if (ifp_gguf_tensor_at(g, i)->n_dims == 2) n += ifp_gguf_tensor_at(g, i)->n_bytes;
    return n;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Every matrix of out is type t, every vector f32; the down projection is
 * ffn_down_t (channel_major) or ffn_down; every key of in is kept. */
static void check_file(const ifp_gguf_t *in, const ifp_gguf_t *out, ifp_ggml_type_t t, int channel_major) {
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(out); i++) {
        const ifp_gguf_tensor_t *x = ifp_gguf_tensor_at(out, i);
        assert_int_equal(x->type, x->n_dims == 2 ? t : IFP_GGML_F32);
    }
    assert_int_equal(ifp_gguf_n_tensors(out), ifp_gguf_n_tensors(in));
    const ifp_gguf_tensor_t *tok = ifp_gguf_find_tensor(out, "token_embd.weight"), *head = ifp_gguf_find_tensor(out, "output.weight");
    assert_true(tok && head && tok->type == t && head->type == t);
    assert_int_equal(ifp_gguf_find_tensor(out, "blk.0.attn_norm.weight")->type, IFP_GGML_F32);
    assert_int_equal(ifp_gguf_find_tensor(out, "output_norm.weight")->type, IFP_GGML_F32);
    for (int l = 0; l < 4; l++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "blk.%d.ffn_down_t.weight", l);
        snprintf(b, sizeof b, "blk.%d.ffn_down.weight", l);
        const ifp_gguf_tensor_t *down_t = ifp_gguf_find_tensor(out, a), *down = ifp_gguf_find_tensor(out, b);
        assert_true(channel_major ? down_t && !down : down && !down_t);
        const ifp_gguf_tensor_t *d = channel_major ? down_t : down;
        assert_true(d->ne[0] == (channel_major ? 128u : 768u) && d->ne[1] == (channel_major ? 768u : 128u));
    }
    for (uint64_t i = 0; i < ifp_gguf_n_kv(in); i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(in, i), *ko;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        assert_non_null(ko = ifp_gguf_find(out, key));
        assert_int_equal(ko->type, kv->type);
        if (kv->type == IFP_GGUF_ARRAY) assert_true(ko->arr_type == kv->arr_type && ko->arr_n == kv->arr_n);
        if (kv->type == IFP_GGUF_STRING) assert_true(ko->v.str.len == kv->v.str.len && !memcmp(ko->v.str.ptr, kv->v.str.ptr, kv->v.str.len));
    }
    char *name = NULL;
    assert_int_equal(ifp_gguf_get_str(out, "general.name", &name, NULL), IFP_OK);
    assert_string_equal(name, "ifp-mix");
    free(name);
}

static int mat_equal(const ifp_wmat_t *x, const ifp_wmat_t *y) {
    return x->type == y->type && x->rows == y->rows && x->cols == y->cols && x->row_bytes == y->row_bytes &&
           !memcmp(x->data, y->data, (size_t)x->rows * x->row_bytes);
}

/* f16, bf16, q8_0 (and q8_0 in llama's layout) against f32: logits, sizes,
 * types, keys; the channel-major q8_0 file is ifp_model_load(f32, q8_0). */
static void types_against_f32(void **unused) {
    (void)unused;
    ifp_model_t *ref = NULL;
    ifp_gguf_t *gin = NULL;
    assert_int_equal(ifp_model_load(MIX, NULL, &ref, NULL), IFP_OK);
    assert_int_equal(ifp_gguf_open(MIX, &gin, NULL), IFP_OK);
    int vocab = ref->cfg.vocab;
    int32_t ids[N_TOK];
    prompt_tokens(ref, ids);
    float *want = malloc((size_t)N_TOK * vocab * sizeof *want), *got = malloc((size_t)N_TOK * vocab * sizeof *got);
    float *q8 = malloc((size_t)N_TOK * vocab * sizeof *q8);
    logits_of(ref, ids, want);
    float *want_dec = malloc((size_t)N_TOK * vocab * sizeof *want_dec);
    logits_decode(ref, ids, want_dec);
    {
        double d, t;
        compare(want, want_dec, vocab, &d, &t);
        fprintf(stderr, "  f32 decode vs f32 prefill: max |logit diff| %.5f, top-1 agreement %.3f\n", d, t);
        assert_true(d < 1e-3 && t == 1.0);
    }
    float lo = want[0], hi = want[0];
    for (size_t i = 0; i < (size_t)N_TOK * vocab; i++) lo = want[i] < lo ? want[i] : lo, hi = want[i] > hi ? want[i] : hi;
    fprintf(stderr, "  f32 logits of %d positions span %.2f .. %.2f\n", N_TOK, (double)lo, (double)hi);
    uint64_t in_matrices = matrix_bytes(gin), in_file = file_size(MIX);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        char path[512];
        tmp_path(path, sizeof path, kinds[k].type);
        quantize(path, kinds[k].type, NULL);
        ifp_gguf_t *g = NULL;
        assert_int_equal(ifp_gguf_open(path, &g, NULL), IFP_OK);
        int q8_0 = kinds[k].t == IFP_GGML_Q8_0;
        check_file(gin, g, kinds[k].t, q8_0);
        /* sizes: matrices exactly half (f16, bf16) or 34/128 (q8_0) of f32's; the file within 5% of that */
        double ratio = q8_0 ? 34.0 / 128.0 : 0.5, out_file = (double)file_size(path);
        assert_true(matrix_bytes(g) * (q8_0 ? 128 : 2) == in_matrices * (q8_0 ? 34 : 1));
        assert_true(fabs(out_file / ((double)in_file * ratio) - 1) < 0.05);
        ifp_gguf_close(&g);
        ifp_model_t *m = NULL;
        ifp_err_t err = {0};
        if (ifp_model_load(path, NULL, &m, &err)) fprintf(stderr, "%s\n", err.msg);
        assert_non_null(m);
        assert_int_equal(m->ffn_type, kinds[k].t);
        assert_int_equal(m->layers[0].wq.type, kinds[k].t);
        logits_of(m, ids, got);
        double diff, top1;
        compare(want, got, vocab, &diff, &top1);
        fprintf(stderr, "  %-5s %.3f MB (%.3fx of f32): max |logit diff| vs f32 %.5f (bound %.3f), top-1 agreement "
                        "%.3f (bound %.2f)\n", kinds[k].type, out_file / 1e6, out_file / (double)in_file, diff,
                kinds[k].max_diff, top1, kinds[k].min_top1);
        assert_true(diff > 0); /* it did round */
        assert_true(diff <= kinds[k].max_diff);
        assert_true(top1 >= kinds[k].min_top1);
        /* decode (one position per call) against f32 decode: the same bounds */
        logits_decode(m, ids, got);
        compare(want_dec, got, vocab, &diff, &top1);
        fprintf(stderr, "  %-5s decode: max |logit diff| vs f32 decode %.5f (bound %.3f), top-1 agreement %.3f\n",
                kinds[k].type, diff, kinds[k].max_diff, top1);
        assert_true(diff > 0 && diff <= kinds[k].max_diff);
        assert_true(top1 >= kinds[k].min_top1);
        logits_of(m, ids, got); /* the prefill logits again, for what follows */
        if (q8_0) {
            /* both quantize each f32 row once (the down projection by channel): the same bytes */
            memcpy(q8, got, (size_t)N_TOK * vocab * sizeof *q8);
            ifp_model_params_t mp = ifp_model_default_params();
            mp.wtype = IFP_GGML_Q8_0;
            ifp_model_t *conv = NULL;
            assert_int_equal(ifp_model_load(MIX, &mp, &conv, NULL), IFP_OK);
            for (int l = 0; l < 4; l++) {
                const ifp_layer_t *a = &m->layers[l], *b = &conv->layers[l];
                assert_true(mat_equal(&a->w_gate, &b->w_gate) && mat_equal(&a->w_up, &b->w_up) &&
                            mat_equal(&a->w_down, &b->w_down));
                assert_true(mat_equal(&a->wq, &b->wq) && mat_equal(&a->wk, &b->wk) && mat_equal(&a->wv, &b->wv) &&
                            mat_equal(&a->wo, &b->wo));
            }
            assert_true(mat_equal(&m->tok_embd, &conv->tok_embd) && mat_equal(&m->output, &conv->output));
            ifp_model_free(&conv);
        }
        ifp_model_free(&m);
        remove(path);
    }

    /* llama.cpp's layout: ffn_down with blocks along d_ffn (768 = 24 x 32),
     * re-quantized along dim at load */
    char path[512];
    tmp_path(path, sizeof path, "q8_llama");
    quantize(path, "q8_0", "--llama-layout");
    ifp_gguf_t *g = NULL;
    assert_int_equal(ifp_gguf_open(path, &g, NULL), IFP_OK);
    check_file(gin, g, IFP_GGML_Q8_0, 0);
    assert_true(matrix_bytes(g) * 128 == in_matrices * 34);
    ifp_gguf_close(&g);
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_load(path, NULL, &m, NULL), IFP_OK);
    assert_int_equal(m->layers[0].w_down.type, IFP_GGML_Q8_0);
    assert_int_equal(m->layers[0].w_down.rows, 768); /* held channel-major */
    logits_of(m, ids, got);
    double diff, top1, diff_cm, top1_cm, diff_lc, top1_lc;
    compare(want, got, vocab, &diff, &top1);
    compare(want, q8, vocab, &diff_cm, &top1_cm);
    compare(q8, got, vocab, &diff_lc, &top1_lc);
    fprintf(stderr, "  q8_0 max |logit diff| vs f32: llama layout %.5f (top-1 %.3f), channel-major %.5f (top-1 %.3f); "
                    "llama layout vs channel-major %.5f\n", diff, top1, diff_cm, top1_cm, diff_lc);
    assert_true(diff > 0 && diff <= LLAMA_Q8_MAX_DIFF);
    assert_true(top1 >= 0.95);
    assert_true(diff_lc > 0); /* rounded twice: not the channel-major model */
    ifp_model_free(&m);
    remove(path);
    free(want), free(want_dec), free(got), free(q8);
    ifp_gguf_close(&gin);
    ifp_model_free(&ref);
}

/* A copy of ifp-mix whose blk.0.ffn_gate.weight claims type 12 (q4_K). */
static void write_q4k_copy(const char *path) {
    size_t len = 0;
    char *buf = tu_read_file(MIX, &len);
    assert_non_null(buf);
    const char *name = "blk.0.ffn_gate.weight";
    size_t nl = strlen(name), at = 0;
    for (size_t i = 8; i + nl < len && !at; i++)
        if (!memcmp(buf + i, name, nl) && buf[i - 8] == (char)nl) at = i; /* the u64 length before it */
    assert_true(at > 0);
    uint32_t n_dims, q4_k = 12;
    memcpy(&n_dims, buf + at + nl, 4);
    assert_int_equal(n_dims, 2);
    memcpy(buf + at + nl + 4 + 8 * n_dims, &q4_k, 4); /* name, n_dims, ne[2], then the type */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

static void errors(void **unused) {
    (void)unused;
    char q4k[512], out[512], odd[512];
    tmp_path(q4k, sizeof q4k, "q4k");
    tmp_path(out, sizeof out, "err_out");
    tmp_path(odd, sizeof odd, "odd");
    write_q4k_copy(q4k);
    ifp_model_t *m = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_model_load(q4k, NULL, &m, &err), IFP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "unsupported type 12 (q4_K; ifp reads f32, f16, bf16 and q8_0)"));
    assert_non_null(strstr(err.msg, "blk.0.ffn_gate.weight"));
    /* d_ffn 100: q8_0 is fine channel-major, not in llama's layout */
    ifp_config_t c = {.dim = 64, .n_layers = 1, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .d_ffn = 100,
                      .vocab = 32, .ctx = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 16};
    assert_int_equal(ifp_model_synth(&c, 3, NULL, &m, NULL), IFP_OK);
    assert_int_equal(ifp_synth_write_gguf(m, odd, NULL, NULL), IFP_OK);
    ifp_model_free(&m);
    const struct {
        const char *args[8];
        int status;
        const char *msg;
    } cases[] = {
        {{q4k, out, "--type", "f16"}, 1, "unsupported type 12 (q4_K; ifp reads f32, f16, bf16 and q8_0)"},
        {{MIX, out, "--type", "q4"}, 2, "--type: weight type \"q4\": expected f32, f16, bf16 or q8_0"},
        {{MIX, out}, 2, "--type is required"},
        {{MIX, "--type", "f16"}, 2, "expected IN.gguf and OUT.gguf"},
        {{MIX, out, "--type", "f16", "--bogus"}, 2, "unknown option"},
        {{"/nonexistent/m.gguf", out, "--type", "f16"}, 1, "/nonexistent/m.gguf: cannot open"},
        {{IFP_SOURCE_DIR "/README.md", out, "--type", "f16"}, 1, "README.md: not a GGUF file"},
        {{MODEL_PATH("ifp-mix/clusters-k4.gguf"), out, "--type", "f16"}, 1, "clusters-k4.gguf: general.architecture"},
        {{MIX, MIX, "--type", "f16"}, 1, "is the input file"},
        {{MIX, "/nonexistent-dir/x.gguf", "--type", "f16"}, 1, "cannot write into directory '/nonexistent-dir'"},
        {{odd, out, "--type", "q8_0", "--llama-layout"}, 1, "--llama-layout: d_ffn 100 is not a multiple of 32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[10] = {"quantize"};
        int n = 1;
        for (int k = 0; k < 8 && cases[i].args[k]; k++) args[n++] = cases[i].args[k];
        args[n] = NULL;
        tu_run_t r = run_ifp(args);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg) || strchr(r.err, '\n') != strrchr(r.err, '\n'))
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.err, cases[i].msg));
        assert_true(strchr(r.err, '\n') == strrchr(r.err, '\n')); /* one line */
        assert_int_equal(access(out, F_OK), -1);
        tu_run_free(&r);
    }
    /* the q4_K message names the file */
    const char *args[] = {"quantize", q4k, out, "--type", "f16", NULL};
    tu_run_t r = run_ifp(args);
    assert_non_null(strstr(r.err, q4k));
    tu_run_free(&r);
    /* the odd file as channel-major q8_0 is fine */
    const char *ok[] = {"quantize", odd, out, "--type", "q8_0", NULL};
    r = run_ifp(ok);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "ffn_down channel-major (ffn_down_t)"));
    tu_run_free(&r);
    assert_int_equal(ifp_model_load(out, NULL, &m, NULL), IFP_OK);
    assert_int_equal(m->layers[0].w_down.rows, 100);
    ifp_model_free(&m);
    remove(out), remove(q4k), remove(odd);
}

/* `ifp synth --type q8_0` writes what ifp_model_synth builds as q8_0. */
static void synth_type(void **unused) {
    (void)unused;
    char path[512];
    tmp_path(path, sizeof path, "synth_q8");
    const char *args[] = {"synth", "--shape", "3b", "--layers", "1", "--vocab", "256", "--ctx", "64", "--type", "q8_0",
                          "--seed", "9", "-o", path, NULL};
    tu_run_t r = run_ifp(args);
    if (r.status != 0) fprintf(stderr, "%s%s", r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "as q8_0 (norms f32) in memory"));
    assert_non_null(strstr(r.out, "(q8_0) in"));
    tu_run_free(&r);
    ifp_gguf_t *g = NULL;
    assert_int_equal(ifp_gguf_open(path, &g, NULL), IFP_OK);
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        assert_int_equal(t->type, t->n_dims == 2 ? IFP_GGML_Q8_0 : IFP_GGML_F32);
    }
    assert_non_null(ifp_gguf_find_tensor(g, "blk.0.ffn_down_t.weight"));
    ifp_gguf_close(&g);
    ifp_config_t c;
    assert_int_equal(ifp_synth_config("3b", 1, 256, 64, &c, NULL), IFP_OK);
    ifp_model_params_t mp = ifp_model_default_params();
    mp.wtype = IFP_GGML_Q8_0;
    ifp_model_t *want = NULL, *got = NULL;
    assert_int_equal(ifp_model_synth(&c, 9, &mp, &want, NULL), IFP_OK);
    assert_int_equal(ifp_model_load(path, NULL, &got, NULL), IFP_OK);
    assert_memory_equal(&got->cfg, &want->cfg, sizeof c);
    const ifp_layer_t *a = &got->layers[0], *b = &want->layers[0];
    assert_true(mat_equal(&a->wq, &b->wq) && mat_equal(&a->wo, &b->wo) && mat_equal(&a->w_gate, &b->w_gate) &&
                mat_equal(&a->w_up, &b->w_up) && mat_equal(&a->w_down, &b->w_down));
    assert_true(mat_equal(&got->tok_embd, &want->tok_embd) && mat_equal(&got->output, &want->output));
    ifp_model_free(&want), ifp_model_free(&got);
    remove(path);
}

/* "%.2f MiB" / "%.1f KiB" as ifp info prints sizes. */
static const char *human(uint64_t b, char *buf, size_t len) {
    if (b >= (1ull << 30)) snprintf(buf, len, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, len, "%.2f MiB", (double)b / (double)(1ull << 20));
    else snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
    return buf;
}

/* `ifp info`'s memory table holds what loaded models hold: a dense stage at
 * each type, a cluster stage (its attention + the compacted union). */
static void info_memory(void **unused) {
    (void)unused;
    const char *args[] = {"info", MIX, "--union", "208", "--stages", "1", NULL};
    tu_run_t r = run_ifp(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\nmemory:\n"));
    assert_non_null(strstr(r.out, "weights as stored: 7.25 MiB (7606784 bytes): f32 7.25 MiB in 39 tensors"));
    assert_non_null(strstr(r.out, "KV cache per slot per stage (f32 keys and values, ctx 256):\n    1 stage: 512.0 KiB"));
    const ifp_ggml_type_t types[3] = {IFP_GGML_F32, IFP_GGML_BF16, IFP_GGML_Q8_0};
    char want[256], b[3][32], u[3][32];
    int32_t *kept[4];
    int n_kept[4] = {208, 208, 208, 208};
    for (int l = 0; l < 4; l++) {
        kept[l] = malloc(208 * sizeof *kept[l]);
        for (int j = 0; j < 208; j++) kept[l][j] = 3 * j + l % 3;
    }
    for (int k = 0; k < 3; k++) {
        ifp_model_params_t mp = ifp_model_default_params();
        mp.wtype = (int)types[k];
        ifp_model_t *m = NULL, *stage = NULL, *cm = NULL;
        assert_int_equal(ifp_model_load(MIX, &mp, &m, NULL), IFP_OK);
        human(ifp_model_resident_bytes(m), b[k], sizeof b[k]);
        mp.load_ffn = 0; /* a cluster stage: the union gathered from the file */
        assert_int_equal(ifp_model_load(MIX, &mp, &stage, NULL), IFP_OK);
        assert_int_equal(ifp_compact_model(stage, (const int32_t *const *)kept, n_kept, &cm, NULL), IFP_OK);
        human(ifp_model_resident_bytes(stage) + ifp_model_resident_bytes(cm), u[k], sizeof u[k]);
        ifp_model_free(&cm), ifp_model_free(&stage), ifp_model_free(&m);
    }
    for (int l = 0; l < 4; l++) free(kept[l]);
    snprintf(want, sizeof want, "1 stage  0      [0,4)    dense 768    %12s %12s %12s\n", b[0], b[1], b[2]);
    if (!strstr(r.out, want)) fprintf(stderr, "want: %sgot:\n%s", want, strstr(r.out, "memory:"));
    assert_non_null(strstr(r.out, want));
    snprintf(want, sizeof want, "1 stage  0      [0,4)    union 208    %12s %12s %12s\n", u[0], u[1], u[2]);
    if (!strstr(r.out, want)) fprintf(stderr, "want: %sgot:\n%s", want, strstr(r.out, "memory:"));
    assert_non_null(strstr(r.out, want));
    tu_run_free(&r);

    /* groups of 1, 2 and 4 stages, and a clusters file */
    const char *cl[] = {"info", MIX, "--clusters", MODEL_PATH("ifp-mix/clusters-k4.gguf"), NULL};
    r = run_ifp(cl);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "2 stages 0      [0,2)    dense 768"));
    assert_non_null(strstr(r.out, "4 stages 0      [0,1)    dense 768"));
    assert_non_null(strstr(r.out, "             3      [3,4)    union <="));
    assert_non_null(strstr(r.out, "the heaviest of the 4 cluster unions"));
    assert_non_null(strstr(r.out, "    4 stages: 128.0 KiB each"));
    tu_run_free(&r);

    /* a paper shape without a file: 4 stages of 9b at q8_0 holding 8320
     * channels: stage 0 = 14 layers x (4608 rows of attention + 3 x 8320
     * FFN rows, 2176 bytes each, + 2 norms) + the embedding */
    const char *shape[] = {"info", "--shape", "9b", "--stages", "4", "--union", "8320", NULL};
    r = run_ifp(shape);
    assert_int_equal(r.status, 0);
    uint64_t row = 2176, stage0 = 14 * ((4608 + 3 * 8320) * row + 2 * 4 * 2048) + 32000 * row;
    snprintf(want, sizeof want, "4 stages 0      [0,14)   union 8320   ");
    char *line = strstr(r.out, want);
    assert_non_null(line);
    char *eol = strchr(line, '\n');
    assert_non_null(eol);
    *eol = '\0';
    assert_non_null(strstr(line, human(stage0, b[0], sizeof b[0])));
    *eol = '\n';
    assert_non_null(strstr(r.out, "4 stages: 56.00 MiB each"));
    tu_run_free(&r);

    const struct { const char *args[8]; const char *msg; } bad[] = {
        {{"info", MIX, "--union", "769"}, "more than the model's d_ffn 768"},
        {{"info", "--shape", "7b"}, "unknown shape"},
        {{"info", MIX, "--layers", "3"}, "go with --shape"},
        {{"info", MIX, "--union", "8", "--clusters", "x"}, "give one"},
        {{"info", MIX, "--stages", "8"}, "8 stages for a model of 4 layers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = run_ifp(bad[i].args);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, bad[i].msg));
        tu_run_free(&r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(types_against_f32),
        cmocka_unit_test(errors),
        cmocka_unit_test(synth_type),
        cmocka_unit_test(info_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
