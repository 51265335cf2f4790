/* test_synth — the paper's shape table, seeded synthetic weights (same seed
 * same weights; a stage's layers do not depend on which layers it holds),
 * GGUF write -> load round trips (library and `ifp synth`), the synthetic
 * predictor, a predictor for ifp-mix (`ifp synth --predictor-for`: backbone
 * sizes, loading, target, tokenizer, masks, seeds, `ifp run`), and bad flags. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include "compact.h"
#include "gguf.h"
#include "mask.h"
#include "model.h"
#include "predictor.h"
#include "synth.h"
#include "testutil.h"
#include "tokenizer.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"

/* A temporary file name (removed by the caller). */
static void tmp_path(char *buf, size_t len, const char *tag) {
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/test_synth_%ld_%s.gguf", dir && *dir ? dir : "/tmp", (long)getpid(), tag);
}

/* Layer l of a and b hold identical weights (same FFN width). */
static int mat_equal(const ifp_wmat_t *x, const ifp_wmat_t *y) {
    return x->type == y->type && x->rows == y->rows && x->cols == y->cols &&
           !memcmp(x->data, y->data, (size_t)x->rows * x->row_bytes);
}

static int layer_equal(const ifp_model_t *a, const ifp_model_t *b, int l) {
    const ifp_config_t *c = &a->cfg;
    size_t d = (size_t)c->dim;
    const ifp_layer_t *x = &a->layers[l], *y = &b->layers[l];
    return x->d_ffn == y->d_ffn && !memcmp(x->attn_norm, y->attn_norm, d * 4) && mat_equal(&x->wq, &y->wq) &&
           mat_equal(&x->wk, &y->wk) && mat_equal(&x->wv, &y->wv) && mat_equal(&x->wo, &y->wo) &&
           !memcmp(x->ffn_norm, y->ffn_norm, d * 4) && mat_equal(&x->w_gate, &y->w_gate) &&
           mat_equal(&x->w_up, &y->w_up) && mat_equal(&x->w_down, &y->w_down);
}

static void shape_table(void **unused) {
    (void)unused;
    static const struct { const char *name; int d_ffn; double billions; } want[] = {
        {"3b", 6656, 2.95}, {"6b", 16384, 6.30}, {"9b", 24576, 9.12}, {"12b", 32768, 11.93}};
    assert_int_equal(ifp_synth_n_shapes(), 4);
    assert_int_equal(IFP_SYNTH_KEEP, 6656);
    for (int i = 0; i < 4; i++) {
        const ifp_synth_shape_t *s = ifp_synth_shape_at(i);
        assert_string_equal(s->name, want[i].name);
        assert_int_equal(s->d_ffn, want[i].d_ffn);
        ifp_config_t c;
        assert_int_equal(ifp_synth_config(s->name, 0, 0, 0, &c, NULL), IFP_OK);
        assert_int_equal(c.dim, 2048);
        assert_int_equal(c.n_layers, 56);
        assert_int_equal(c.n_heads, 16);
        assert_int_equal(c.n_kv_heads, 2);
        assert_int_equal(c.head_dim, 128);
        assert_int_equal(c.rope_dim, 128);
        assert_int_equal(c.d_ffn, want[i].d_ffn);
        assert_int_equal(c.vocab, 32000);
        /* 56 layers + untied embedding and head: the paper's 3B / 6B / 9B / 12B */
        double total = 56.0 * (double)ifp_synth_layer_params(&c, c.d_ffn) + 2.0 * c.vocab * c.dim + c.dim;
        assert_true(fabs(total / 1e9 - want[i].billions) < 0.05);
    }
    ifp_config_t c;
    assert_int_equal(ifp_synth_config("9b", 0, 0, 0, &c, NULL), IFP_OK);
    assert_int_equal(ifp_synth_layer_params(&c, 24576), 160436224ull); /* 2·2048 + 2·2048² + 2·256·2048 + 3·24576·2048 */
    assert_int_equal(ifp_synth_layer_params(&c, IFP_SYNTH_KEEP), 50335744ull);
    assert_ptr_equal(ifp_synth_shape_find("9B"), ifp_synth_shape_at(2));
    assert_null(ifp_synth_shape_find("7b"));
    assert_null(ifp_synth_shape_find("9"));
    assert_null(ifp_synth_shape_find(NULL));
    ifp_err_t err = {0};
    assert_int_equal(ifp_synth_config("7b", 0, 0, 0, &c, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "3b, 6b, 9b, 12b"));
    assert_int_equal(ifp_synth_config("3b", 4, 100, 64, &c, NULL), IFP_OK);
    assert_int_equal(c.n_layers, 4);
    assert_int_equal(c.vocab, 100);
    assert_int_equal(c.ctx, 64);
}

/* Same seed, same weights; another seed, others; a stage's layers are the
 * same layers of the whole model. */
static void determinism(void **unused) {
    (void)unused;
    ifp_config_t c;
    assert_int_equal(ifp_synth_config("3b", 3, 64, 64, &c, NULL), IFP_OK);
    ifp_model_t *a = NULL, *b = NULL, *other = NULL, *stage = NULL;
    assert_int_equal(ifp_model_synth(&c, 42, NULL, &a, NULL), IFP_OK);
    assert_int_equal(ifp_model_synth(&c, 42, NULL, &b, NULL), IFP_OK);
    for (int l = 0; l < 3; l++) assert_true(layer_equal(a, b, l));
    assert_true(mat_equal(&a->tok_embd, &b->tok_embd));
    assert_true(mat_equal(&a->output, &b->output));
    ifp_model_params_t mp = ifp_model_default_params();
    mp.layer_begin = 2, mp.layer_end = 3, mp.load_embd = 0, mp.load_head = 0;
    assert_int_equal(ifp_model_synth(&c, 42, &mp, &stage, NULL), IFP_OK);
    assert_int_equal(stage->layer_begin, 2);
    assert_null(stage->tok_embd.data);
    assert_true(layer_equal(a, stage, 2));
    assert_int_equal(ifp_synth_model_params(stage), ifp_synth_layer_params(&c, c.d_ffn));
    ifp_model_free(&stage);
    mp.layer_begin = 1, mp.layer_end = 2;
    assert_int_equal(ifp_model_synth(&c, 42, &mp, &stage, NULL), IFP_OK);
    assert_true(layer_equal(a, stage, 1));
    mp.layer_begin = 0, mp.layer_end = 1;
    assert_int_equal(ifp_model_synth(&c, 43, &mp, &other, NULL), IFP_OK);
    assert_false(layer_equal(a, other, 0));
    assert_true(memcmp(a->layers[0].wq.data, other->layers[0].wq.data, 4 * 64) != 0);
    ifp_model_free(&a), ifp_model_free(&b), ifp_model_free(&other), ifp_model_free(&stage);
}

/* Library write -> ifp_model_load: F32 identical, F16 the rounded values. */
static void gguf_round_trip(void **unused) {
    (void)unused;
    ifp_config_t c;
    assert_int_equal(ifp_synth_config("3b", 1, 48, 128, &c, NULL), IFP_OK);
    ifp_model_t *m = NULL, *back = NULL;
    assert_int_equal(ifp_model_synth(&c, 5, NULL, &m, NULL), IFP_OK);
    char path[512];
    tmp_path(path, sizeof path, "rt");
    ifp_err_t err = {0};
    ifp_synth_write_params_t wp = ifp_synth_write_default_params();
    wp.shape = "3b", wp.seed = 5;
    assert_int_equal(ifp_synth_write_gguf(m, path, &wp, &err), IFP_OK);
    assert_int_equal(ifp_model_load(path, NULL, &back, &err), IFP_OK);
    assert_memory_equal(&back->cfg, &m->cfg, sizeof m->cfg);
    assert_true(layer_equal(m, back, 0));
    assert_true(mat_equal(&back->tok_embd, &m->tok_embd));
    assert_true(mat_equal(&back->output, &m->output));
    assert_memory_equal(back->out_norm, m->out_norm, (size_t)c.dim * 4);
    ifp_model_free(&back);
    ifp_gguf_t *g = NULL;
    assert_int_equal(ifp_gguf_open(path, &g, NULL), IFP_OK);
    char *s = NULL;
    assert_int_equal(ifp_gguf_get_str(g, "ifp.synth.shape", &s, NULL), IFP_OK);
    assert_string_equal(s, "3b");
    free(s);
    assert_non_null(ifp_gguf_find(g, "llama.vocab_size"));
    assert_null(ifp_gguf_find(g, "tokenizer.ggml.tokens"));
    ifp_gguf_close(&g);

    wp.f16 = 1;
    assert_int_equal(ifp_synth_write_gguf(m, path, &wp, &err), IFP_OK);
    assert_int_equal(ifp_model_load(path, NULL, &back, &err), IFP_OK);
    size_t n = (size_t)c.d_ffn * c.dim;
    const float *md = m->layers[0].w_down.data;
    assert_int_equal(back->layers[0].w_down.type, IFP_GGML_F16);
    for (size_t i = 0; i < n; i += 997)
        assert_true(ifp_wrow_get(IFP_GGML_F16, back->layers[0].w_down.data, (int)i) ==
                    ifp_f16_to_f32(ifp_f32_to_f16(md[i])));
    assert_memory_equal(back->layers[0].attn_norm, m->layers[0].attn_norm, (size_t)c.dim * 4); /* norms: F32 */
    ifp_model_free(&back);
    remove(path);

    /* only whole, uncompacted models are llama GGUFs */
    ifp_model_params_t mp = ifp_model_default_params();
    mp.layer_begin = 0, mp.layer_end = 1, mp.load_embd = 0, mp.load_head = 0;
    ifp_model_t *stage = NULL, *cm = NULL;
    assert_int_equal(ifp_model_synth(&c, 5, &mp, &stage, NULL), IFP_OK);
    assert_int_equal(ifp_synth_write_gguf(stage, path, NULL, &err), IFP_EINVAL);
    int32_t kept[4] = {0, 1, 2, 3};
    const int32_t *kp[1] = {kept};
    int nk[1] = {4};
    assert_int_equal(ifp_compact_model(m, kp, nk, &cm, NULL), IFP_OK);
    assert_int_equal(ifp_synth_write_gguf(cm, path, NULL, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "compacted"));
    assert_int_equal(access(path, F_OK), -1);
    ifp_model_free(&cm), ifp_model_free(&stage), ifp_model_free(&m);
}

/* `ifp synth -o` writes what ifp_model_synth builds; `ifp info` reads it. */
static void cli_round_trip(void **unused) {
    (void)unused;
    char path[512];
    tmp_path(path, sizeof path, "cli");
    const char *argv[] = {IFP_BIN, "synth", "--shape", "3B", "--layers", "1", "--seed", "7", "--vocab", "64",
                          "--ctx", "256", "-o", path, NULL};
    tu_run_t r = tu_run(argv);
    if (r.status != 0) fprintf(stderr, "%s%s", r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "parameters: 50,599,936"));
    assert_non_null(strstr(r.out, "wrote "));
    tu_run_free(&r);
    ifp_config_t c;
    ifp_model_t *want = NULL, *got = NULL;
    assert_int_equal(ifp_synth_config("3b", 1, 64, 256, &c, NULL), IFP_OK);
    assert_int_equal(ifp_model_synth(&c, 7, NULL, &want, NULL), IFP_OK);
    assert_int_equal(ifp_model_load(path, NULL, &got, NULL), IFP_OK);
    assert_memory_equal(&got->cfg, &want->cfg, sizeof c);
    assert_true(layer_equal(want, got, 0));
    assert_true(mat_equal(&got->output, &want->output));
    ifp_model_free(&want), ifp_model_free(&got);
    const char *info[] = {IFP_BIN, "info", path, NULL};
    r = tu_run(info);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "d_ffn 6656, vocab 64, ctx 256"));
    tu_run_free(&r);
    remove(path);
    /* in memory: a summary, no file */
    const char *mem[] = {IFP_BIN, "synth", "--shape", "12b", "--layers", "1", "--vocab", "16", NULL};
    r = tu_run(mem);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "d_ffn 32768 (K = 6656)"));
    assert_non_null(strstr(r.out, "(4.19x fewer)"));
    tu_run_free(&r);
}

static void bad_flags(void **unused) {
    (void)unused;
    static const struct { const char *args[6]; int status; const char *msg; } cases[] = {
        {{"--layers", "2", NULL}, 2, "--shape is required"},
        {{"--shape", "7b", NULL}, 2, "unknown shape '7b'"},
        {{"--shape", "9b", "--layers", "0", NULL}, 2, "--layers"},
        {{"--shape", "9b", "--layers", "two", NULL}, 2, "expected an integer"},
        {{"--shape", "9b", "--vocab", "0", NULL}, 2, "--vocab"},
        {{"--shape", "9b", "--f16", NULL}, 2, "give -o"},
        {{"--shape", "9b", "--bogus", NULL}, 2, "unknown option"},
        {{"--shape", "9b", "-o", "/nonexistent-dir/x.gguf", NULL}, 1, "cannot write into directory"},
        {{"--shape", "12b", "--layers", "1024", NULL}, 1, "use fewer --layers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[10] = {IFP_BIN, "synth"};
        int n = 2;
        for (int k = 0; cases[i].args[k]; k++) argv[n++] = cases[i].args[k];
        argv[n] = NULL;
        tu_run_t r = tu_run(argv);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg))
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.err, cases[i].msg));
        tu_run_free(&r);
    }
}

/* The synthetic predictor loads through ifp_predictor_load and scores. */
static void synthetic_predictor(void **unused) {
    (void)unused;
    ifp_synth_predictor_t p;
    assert_int_equal(ifp_synth_predictor_default("9b", &p, NULL), IFP_OK);
    /* the paper's proportions: a ~302M backbone, 56 x 24576 scores */
    double backbone = (double)p.backbone.n_layers * (double)ifp_synth_layer_params(&p.backbone, p.backbone.d_ffn) +
                      (double)p.backbone.vocab * p.backbone.dim;
    assert_true(fabs(backbone / 1e6 - 302) < 5);
    assert_int_equal(p.target_layers * p.target_ffn, 56 * 24576);
    assert_int_equal(ifp_synth_predictor_default("5b", &p, NULL), IFP_EINVAL);
    /* a tiny one, end to end */
    ifp_synth_predictor_t t = {
        .backbone = {.dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .d_ffn = 128,
                     .vocab = 100, .ctx = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 16},
        .hidden = 8, .target_layers = 3, .target_ffn = 256, .keep = 64, .max_prompt = 32, .seed = 3};
    char path[512];
    tmp_path(path, sizeof path, "pred");
    ifp_err_t err = {0};
    assert_int_equal(ifp_synth_predictor_write(&t, path, &err), IFP_OK);
    ifp_predictor_t *pr = NULL;
    if (ifp_predictor_load(path, &pr, &err)) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(pr);
    assert_int_equal(ifp_predictor_n_layers(pr), 3);
    assert_int_equal(ifp_predictor_d_ffn(pr), 256);
    assert_int_equal(ifp_predictor_keep(pr), 64);
    assert_int_equal(ifp_predictor_hidden(pr), 8);
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = 1 + (i * 7) % 99;
    ifp_mask_t *m = NULL, *m2 = NULL;
    assert_int_equal(ifp_predictor_mask(pr, ids, 20, 0, &m, &err), IFP_OK);
    assert_int_equal(ifp_predictor_mask(pr, ids, 20, 0, &m2, &err), IFP_OK);
    for (int l = 0; l < 3; l++) assert_int_equal(m->n_kept[l], 64);
    assert_true(ifp_mask_equal(m, m2));
    ifp_mask_destroy(&m), ifp_mask_destroy(&m2);
    ifp_predictor_destroy(&pr);
    remove(path);
    t.keep = 300; /* > target_ffn */
    assert_int_equal(ifp_synth_predictor_write(&t, path, &err), IFP_ERANGE);
}

/* ---- a predictor for an existing model ---- */

#define MIX MODEL_PATH("ifp-mix/ifp-mix.gguf")

/* Sizes, the backbone rule (the paper's shape for 302m; within 15% of any
 * other size, at a small and a large vocabulary), keep and prompt defaults. */
static void predictor_sizes(void **unused) {
    (void)unused;
    static const struct { const char *s; uint64_t v; } ok[] = {
        {"302m", 302000000}, {"30M", 30000000}, {"1.2b", 1200000000}, {"5m", 5000000}, {"500k", 500000},
        {"2000000", 2000000}, {".5m", 500000}, {"2G", 2000000000}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t v = 0;
        assert_int_equal(ifp_synth_parse_size(ok[i].s, &v, NULL), IFP_OK);
        assert_int_equal(v, ok[i].v);
    }
    static const char *bad[] = {"", "m", ".", "-5m", "+5m", "5x", "5mb", "nan", "inf", " 5m", "0x10", "1,5m", "1e3"};
    uint64_t v;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(ifp_synth_parse_size(bad[i], &v, NULL), IFP_EINVAL);
    assert_int_equal(ifp_synth_parse_size("0", &v, NULL), IFP_ERANGE);
    assert_int_equal(ifp_synth_parse_size("2000b", &v, NULL), IFP_ERANGE);
    ifp_config_t c;
    ifp_err_t err = {0};
    assert_int_equal(ifp_synth_backbone(NULL, 2048, 256, &c, NULL), IFP_OK); /* the paper's shape, whatever the vocab */
    assert_true(c.dim == 1024 && c.n_layers == 16 && c.n_heads == 16 && c.n_kv_heads == 16 && c.d_ffn == 4096);
    assert_true(c.head_dim == 64 && c.vocab == 2048 && c.ctx == 256);
    assert_int_equal(ifp_synth_backbone_params(&c), 270566400ull);
    assert_int_equal(ifp_synth_backbone("302M", 2048, 256, &c, NULL), IFP_OK);
    assert_int_equal(c.n_layers, 16);
    assert_int_equal(ifp_synth_backbone("302000000", 32000, 512, &c, NULL), IFP_OK); /* the rule finds it too */
    assert_true(c.dim == 1024 && c.n_layers == 16);
    static const char *sizes[] = {"500k", "2m", "5m", "30m", "100m", "1.2b"};
    for (int vi = 0; vi < 2; vi++)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            int vocab = vi ? 32000 : 2048, rc = ifp_synth_backbone(sizes[i], vocab, 512, &c, &err);
            assert_int_equal(ifp_synth_parse_size(sizes[i], &v, NULL), IFP_OK);
            if (64.0 * vocab + 64 + 65664 > 1.15 * (double)v) { /* d 64 x 1 layer is > 15% above */
                assert_int_equal(rc, IFP_ERANGE);
                assert_non_null(strstr(err.msg, "too small"));
                continue;
            }
            assert_int_equal(rc, IFP_OK);
            assert_true(fabs((double)ifp_synth_backbone_params(&c) / (double)v - 1) <= 0.15);
            assert_true(c.head_dim == 64 && c.n_heads == c.dim / 64 && c.n_kv_heads == c.n_heads && c.d_ffn == 4 * c.dim);
            assert_true(c.vocab == vocab && c.ctx == 512);
        }
    assert_int_equal(ifp_synth_backbone("2m", 2048, 256, &c, NULL), IFP_OK);
    assert_true(c.dim == 128 && c.n_layers == 7); /* 2,099,072: +5.0% */
    assert_int_equal(ifp_synth_backbone("10k", 2048, 256, &c, &err), IFP_ERANGE);
    assert_non_null(strstr(err.msg, "smallest backbone (d_model 64, 1 layer) holds 196800 parameters"));
    assert_int_equal(ifp_synth_keep_default(768), 208);
    assert_int_equal(ifp_synth_keep_default(24576), 6656);
    assert_int_equal(ifp_synth_keep_default(1), 1);
    assert_int_equal(ifp_synth_predictor_prompt(256), 256);
    assert_int_equal(ifp_synth_predictor_prompt(2048), 512);
}

/* Scores of a prompt through the predictor at path. */
static void scores_of(const char *path, const int32_t *ids, int n, float *s) {
    ifp_predictor_t *p = NULL;
    assert_int_equal(ifp_predictor_load(path, &p, NULL), IFP_OK);
    assert_int_equal(ifp_predictor_scores(p, ids, n, s, NULL), IFP_OK);
    ifp_predictor_destroy(&p);
}

/* `ifp synth --predictor-for` ifp-mix with a 2M backbone: it loads, targets
 * ifp-mix, carries its tokenizer, masks keep channels per layer, the same
 * seed writes the same file and another seed other scores; `ifp run` uses it. */
static void predictor_for_model(void **unused) {
    (void)unused;
    char path[3][512];
    const char *tags[3] = {"pf_a", "pf_b", "pf_c"}, *seeds[3] = {"5", "5", "6"};
    for (int i = 0; i < 3; i++) {
        tmp_path(path[i], sizeof path[i], tags[i]);
        const char *argv[] = {IFP_BIN, "synth", "--predictor-for", MIX, "--backbone", "2m", "--seed", seeds[i],
                              "-o", path[i], NULL};
        tu_run_t r = tu_run(argv);
        if (r.status != 0) fprintf(stderr, "%s%s", r.out, r.err);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "backbone 2m: d_model 128, 7 layers"));
        assert_non_null(strstr(r.out, "parameters: backbone 2,099,072"));
        assert_non_null(strstr(r.out, "keep 208 per layer, reads 256 prompt tokens"));
        tu_run_free(&r);
    }
    ifp_model_t *m = NULL;
    ifp_tokenizer_t *mt = NULL, *pt = NULL;
    ifp_predictor_t *p = NULL;
    ifp_gguf_t *g = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_model_load(MIX, NULL, &m, NULL), IFP_OK);
    assert_int_equal(ifp_tokenizer_from_gguf(m->gguf, &mt, NULL), IFP_OK);
    if (ifp_predictor_load(path[0], &p, &err)) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(p);
    assert_int_equal(ifp_predictor_check_target(p, &m->cfg, &err), IFP_OK);
    assert_true(ifp_predictor_n_layers(p) == 4 && ifp_predictor_d_ffn(p) == 768 && ifp_predictor_keep(p) == 208);
    assert_true(ifp_predictor_max_prompt(p) == 256 && ifp_predictor_backbone(p)->cfg.ctx >= 256);
    /* the tokenizer: every tokenizer.ggml.* key of the model, so the same ids */
    assert_int_equal(ifp_gguf_open(path[0], &g, NULL), IFP_OK);
    int n_tok_keys = 0;
    for (uint64_t i = 0; i < ifp_gguf_n_kv(m->gguf); i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(m->gguf, i), *pk;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (strncmp(key, "tokenizer.ggml.", 15)) continue;
        assert_non_null(pk = ifp_gguf_find(g, key));
        assert_true(pk->type == kv->type && pk->arr_n == kv->arr_n);
        n_tok_keys++;
    }
    assert_true(n_tok_keys >= 4);
    assert_int_equal(ifp_tokenizer_from_gguf(g, &pt, NULL), IFP_OK);
    const char *text = "Question: What is 2+3?\nAnswer:";
    int32_t a[64], b[64];
    int na = ifp_tokenizer_encode(mt, text, 1, a, 64), nb = ifp_tokenizer_encode(pt, text, 1, b, 64);
    assert_true(na > 5 && na == nb);
    assert_memory_equal(a, b, sizeof *a * (size_t)na);
    ifp_mask_t *mask = NULL;
    assert_int_equal(ifp_predictor_mask_text(p, pt, text, 0, &mask, &err), IFP_OK);
    for (int l = 0; l < 4; l++) assert_int_equal(mask->n_kept[l], 208);
    assert_int_equal(ifp_mask_validate(mask, NULL), IFP_OK);
    /* a seed is one file; another seed, other scores */
    size_t la = 0, lb = 0;
    char *fa = tu_read_file(path[0], &la), *fb = tu_read_file(path[1], &lb);
    assert_true(fa && fb && la == lb && !memcmp(fa, fb, la));
    free(fa), free(fb);
    float *s0 = malloc(3072 * sizeof *s0), *s1 = malloc(3072 * sizeof *s1), *s2 = malloc(3072 * sizeof *s2);
    scores_of(path[0], a, na, s0), scores_of(path[1], a, na, s1), scores_of(path[2], a, na, s2);
    assert_memory_equal(s0, s1, 3072 * sizeof *s0);
    assert_true(memcmp(s0, s2, 3072 * sizeof *s0) != 0);
    const char *run[] = {IFP_BIN, "run", "--model", MIX, "--predictor", path[0], "--prompt", text, "-n", "4",
                         "--temp", "0", NULL};
    tu_run_t r = tu_run(run);
    if (r.status != 0) fprintf(stderr, "%s%s", r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "kept 208 208 208 208 of 768"));
    tu_run_free(&r);
    free(s0), free(s1), free(s2);
    ifp_mask_destroy(&mask);
    ifp_tokenizer_destroy(&mt), ifp_tokenizer_destroy(&pt);
    ifp_gguf_close(&g);
    ifp_predictor_destroy(&p);
    ifp_model_free(&m);
    for (int i = 0; i < 3; i++) remove(path[i]);
}

/* Every flag of --predictor-for mode checked with a message naming it. */
static void predictor_for_bad_flags(void **unused) {
    (void)unused;
    char out[512], notok[512];
    tmp_path(out, sizeof out, "pf_bad");
    tmp_path(notok, sizeof notok, "pf_notok"); /* a llama model without a tokenizer */
    ifp_config_t c = {.dim = 64, .n_layers = 1, .n_heads = 4, .n_kv_heads = 4, .head_dim = 16, .d_ffn = 128,
                      .vocab = 32, .ctx = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 16};
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_synth(&c, 1, NULL, &m, NULL), IFP_OK);
    assert_int_equal(ifp_synth_write_gguf(m, notok, NULL, NULL), IFP_OK);
    ifp_model_free(&m);
    const char *P = MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), *CL = MODEL_PATH("ifp-mix/clusters-k4.gguf");
    const struct { const char *args[8]; int status; const char *msg; } cases[] = {
        {{"--predictor-for", MIX, "--backbone", "2q", "-o", out}, 2, "--backbone: '2q' is not a size"},
        {{"--predictor-for", MIX, "--backbone", "10k", "-o", out}, 2, "--backbone: size '10k' is too small"},
        {{"--predictor-for", MIX, "--backbone", "5000b", "-o", out}, 2, "--backbone: size '5000b' is out of range"},
        {{"--predictor-for", MIX, "--keep", "769", "-o", out}, 2, "--keep: 769 is out of range [1, 768]"},
        {{"--predictor-for", MIX, "--keep", "0", "-o", out}, 2, "--keep: 0 is out of range"},
        {{"--predictor-for", MIX, "--seed", "x", "-o", out}, 2, "--seed: expected an integer"},
        {{"--predictor-for", MIX}, 2, "--predictor-for needs -o P.gguf"},
        {{"--predictor-for", MIX, "--shape", "9b", "-o", out}, 2, "--shape does not apply with --predictor-for"},
        {{"--predictor-for", MIX, "--vocab", "10", "-o", out}, 2, "--vocab does not apply with --predictor-for"},
        {{"--shape", "3b", "--backbone", "2m"}, 2, "--backbone needs --predictor-for"},
        {{"--shape", "3b", "--keep", "2"}, 2, "--keep needs --predictor-for"},
        {{"--predictor-for", "/nonexistent/m.gguf", "-o", out}, 1, "--predictor-for: /nonexistent/m.gguf: cannot open"},
        {{"--predictor-for", IFP_SOURCE_DIR "/README.md", "-o", out}, 1, "README.md: not a GGUF file"},
        {{"--predictor-for", CL, "-o", out}, 1, "clusters-k4.gguf: not a llama model"},
        {{"--predictor-for", P, "-o", out}, 1, "ifp-mix-predictor.gguf is a sparsity predictor"},
        {{"--predictor-for", notok, "-o", out}, 1, "has no tokenizer"},
        {{"--predictor-for", MIX, "-o", "/nonexistent-dir/p.gguf"}, 1, "-o: cannot write into directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[12] = {IFP_BIN, "synth"};
        int n = 2;
        for (int k = 0; k < 8 && cases[i].args[k]; k++) argv[n++] = cases[i].args[k];
        argv[n] = NULL;
        tu_run_t r = tu_run(argv);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg))
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.err, cases[i].msg));
        assert_int_equal(access(out, F_OK), -1);
        tu_run_free(&r);
    }
    remove(notok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shape_table),     cmocka_unit_test(determinism),    cmocka_unit_test(gguf_round_trip),
        cmocka_unit_test(cli_round_trip),  cmocka_unit_test(bad_flags),      cmocka_unit_test(synthetic_predictor),
        cmocka_unit_test(predictor_sizes), cmocka_unit_test(predictor_for_model), cmocka_unit_test(predictor_for_bad_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
