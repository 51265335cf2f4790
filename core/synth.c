#include "synth.h"

#include "model_write.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf.h"
#include "tokenizer.h"

static const ifp_synth_shape_t g_shapes[] = {
    {"3b", 6656},
    {"6b", 16384},
    {"9b", 24576},
    {"12b", 32768},
};
#define N_SHAPES ((int)(sizeof g_shapes / sizeof *g_shapes))

int ifp_synth_n_shapes(void) { return N_SHAPES; }

const ifp_synth_shape_t *ifp_synth_shape_at(int i) { return i >= 0 && i < N_SHAPES ? &g_shapes[i] : NULL; }

const ifp_synth_shape_t *ifp_synth_shape_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_SHAPES; i++) {
        const char *a = g_shapes[i].name, *b = name;
        while (*a && *b && *a == tolower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return &g_shapes[i];
    }
    return NULL;
}

int ifp_synth_config(const char *shape, int n_layers, int vocab, int ctx, ifp_config_t *cfg, ifp_err_t *err) {
    const ifp_synth_shape_t *s = ifp_synth_shape_find(shape);
    if (!s)
        return ifp_errf(err, IFP_EINVAL, "unknown shape '%s' (known: 3b, 6b, 9b, 12b)", shape ? shape : "(null)");
    ifp_config_t c = {.dim = 2048, .n_layers = n_layers > 0 ? n_layers : IFP_SYNTH_LAYERS, .n_heads = 16,
                      .n_kv_heads = 2, .head_dim = 128, .d_ffn = s->d_ffn, .vocab = vocab > 0 ? vocab : IFP_SYNTH_VOCAB,
                      .ctx = ctx > 0 ? ctx : IFP_SYNTH_CTX, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 128};
    int rc = ifp_config_validate(&c, err);
    if (rc) return rc;
    *cfg = c;
    return IFP_OK;
}

uint64_t ifp_synth_layer_params(const ifp_config_t *c, int d_ffn) {
    uint64_t d = (uint64_t)c->dim, q = (uint64_t)c->n_heads * c->head_dim, kv = (uint64_t)c->n_kv_heads * c->head_dim;
    return 2 * d + q * d + 2 * kv * d + d * q + 3 * (uint64_t)d_ffn * d;
}

uint64_t ifp_synth_model_params(const ifp_model_t *m) {
    const ifp_config_t *c = &m->cfg;
    uint64_t n = 0, vd = (uint64_t)c->vocab * c->dim;
    for (int l = m->layer_begin; l < m->layer_end; l++) n += ifp_synth_layer_params(c, m->layers[l].d_ffn);
    if (m->tok_embd.data) n += vd;
    if (m->out_norm) n += (uint64_t)c->dim;
    if (m->output.data && m->output.data != m->tok_embd.data) n += vd;
    return n;
}

/* ---- GGUF output ------------------------------------------------------------------------------ */

ifp_synth_write_params_t ifp_synth_write_default_params(void) {
    ifp_synth_write_params_t p = {
        .f16 = 0, .wtype = IFP_WTYPE_ASIS, .down_llama = 0, .tokenizer = 0, .name = "ifp-synth", .shape = NULL, .seed = 0};
    return p;
}

static ifp_model_write_params_t write_params(const ifp_synth_write_params_t *p) {
    ifp_model_write_params_t w = ifp_model_write_default_params();
    w.wtype = p->wtype != IFP_WTYPE_ASIS ? p->wtype : p->f16 ? IFP_GGML_F16 : IFP_WTYPE_ASIS;
    w.name = p->name ? p->name : "ifp-synth";
    w.down_llama = p->down_llama;
    return w;
}

uint64_t ifp_synth_gguf_data_bytes(const ifp_model_t *m, int f16) {
    ifp_synth_write_params_t p = ifp_synth_write_default_params();
    p.f16 = f16;
    ifp_model_write_params_t w = write_params(&p);
    return ifp_model_write_bytes(m, &w);
}

/* llama.* hyper-parameters of c (tokenizer-free: the vocabulary is a key). */
static int put_llama_keys(ifp_gguf_writer_t *w, const ifp_config_t *c) {
    int rc = ifp_gguf_writer_set_str(w, "general.architecture", "llama");
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->ctx);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->d_ffn);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    if (!rc) rc = ifp_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    if (!rc) rc = ifp_gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_theta);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)c->rope_dim);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
    return rc;
}

/* A SentencePiece-style vocabulary of n tokens: <unk> <s> </s>, the 256
 * byte-fallback tokens, then "▁t3", "▁t4", ... (normal pieces, descending
 * scores). */
static int put_synth_vocab(ifp_gguf_writer_t *w, int n) {
    if (n < 259) return IFP_EINVAL;
    char **pieces = calloc((size_t)n, sizeof *pieces);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    int rc = pieces && scores && types ? IFP_OK : IFP_ENOMEM;
    static const char *const special[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; !rc && i < n; i++) {
        char buf[32];
        if (i < 3) snprintf(buf, sizeof buf, "%s", special[i]);
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else snprintf(buf, sizeof buf, "\xE2\x96\x81t%d", i);
        if (!(pieces[i] = strdup(buf))) rc = IFP_ENOMEM;
        types[i] = i == 0 ? IFP_TOK_UNKNOWN : i < 3 ? IFP_TOK_CONTROL : i < 259 ? IFP_TOK_BYTE : IFP_TOK_NORMAL;
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    if (!rc) rc = ifp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!rc) rc = ifp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, (uint64_t)n);
    if (!rc) rc = ifp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IFP_GGUF_FLOAT32, scores, (uint64_t)n);
    if (!rc) rc = ifp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IFP_GGUF_INT32, types, (uint64_t)n);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    for (int i = 0; pieces && i < n; i++) free(pieces[i]);
    free(pieces), free(scores), free(types);
    return rc;
}

static int synth_keys(ifp_gguf_writer_t *w, void *ctx) {
    const ifp_synth_write_params_t *p = ((const void **)ctx)[0];
    const ifp_config_t *c = ((const void **)ctx)[1];
    int rc = put_llama_keys(w, c);
    if (!rc && p->shape) rc = ifp_gguf_writer_set_str(w, "ifp.synth.shape", p->shape);
    if (!rc) rc = ifp_gguf_writer_set_u64(w, "ifp.synth.seed", p->seed);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.synth.keep", IFP_SYNTH_KEEP);
    if (!rc && p->tokenizer) rc = put_synth_vocab(w, c->vocab);
    return rc;
}

int ifp_synth_write_gguf(const ifp_model_t *m, const char *path, const ifp_synth_write_params_t *pp,
                         ifp_err_t *err) {
    ifp_synth_write_params_t p = pp ? *pp : ifp_synth_write_default_params();
    ifp_model_write_params_t w = write_params(&p);
    const void *ctx[2] = {&p, &m->cfg};
    w.add_keys = synth_keys;
    w.keys_ctx = ctx;
    return ifp_model_write_gguf(m, path, &w, err);
}

/* ---- a synthetic predictor -------------------------------------------------------------------- */

/* A backbone of the paper's proportions: heads of 64 (no GQA, RoPE over the
 * whole head), d_ffn = 4 d_model.  The paper's own is d 1024, 16 layers. */
static ifp_config_t backbone_shape(int dim, int n_layers, int vocab, int ctx) {
    ifp_config_t c = {.dim = dim, .n_layers = n_layers, .n_heads = dim / 64, .n_kv_heads = dim / 64, .head_dim = 64,
                      .d_ffn = 4 * dim, .vocab = vocab, .ctx = ctx, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                      .rope_dim = 64};
    return c;
}

int ifp_synth_predictor_default(const char *target_shape, ifp_synth_predictor_t *p, ifp_err_t *err) {
    const ifp_synth_shape_t *s = ifp_synth_shape_find(target_shape);
    if (!s)
        return ifp_errf(err, IFP_EINVAL, "unknown shape '%s' (known: 3b, 6b, 9b, 12b)",
                        target_shape ? target_shape : "(null)");
    ifp_synth_predictor_t d = {
        .backbone = backbone_shape(1024, 16, IFP_SYNTH_VOCAB, 512),
        .hidden = 128,
        .target_layers = IFP_SYNTH_LAYERS,
        .target_ffn = s->d_ffn,
        .keep = IFP_SYNTH_KEEP,
        .max_prompt = 512,
        .seed = 0x9E3D,
    };
    *p = d;
    return IFP_OK;
}

uint64_t ifp_synth_backbone_params(const ifp_config_t *c) {
    return (uint64_t)c->n_layers * ifp_synth_layer_params(c, c->d_ffn) + (uint64_t)c->vocab * c->dim + c->dim;
}

uint64_t ifp_synth_predictor_params(const ifp_synth_predictor_t *p) {
    const ifp_config_t *c = &p->backbone;
    uint64_t S = (uint64_t)p->target_layers * p->target_ffn, H = (uint64_t)p->hidden;
    return ifp_synth_backbone_params(c) + H * c->dim + H + S * H + S;
}

#define TOK_PREFIX "tokenizer.ggml."
#define TOK_PREFIX_LEN (sizeof TOK_PREFIX - 1)

/* splitmix64 uniforms in [-scale, scale). */
static void fill_uniform(float *v, size_t n, float scale, uint64_t *s) {
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        v[i] = ((float)(z >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
    }
}

typedef struct {
    const ifp_synth_predictor_t *p;
    float *norm, *w1, *b1, *w2, *b2;
    const char *bad_key; /* a tokenizer key that could not be copied */
    char key[128];
} pred_ctx_t;

static int pred_keys(ifp_gguf_writer_t *w, void *ctx) {
    pred_ctx_t *pc = ctx;
    const ifp_synth_predictor_t *p = pc->p;
    int rc = put_llama_keys(w, &p->backbone);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.target_block_count", (uint32_t)p->target_layers);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.target_feed_forward_length", (uint32_t)p->target_ffn);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.keep", (uint32_t)p->keep);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.max_prompt_tokens", (uint32_t)p->max_prompt);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.head_hidden", (uint32_t)p->hidden);
    if (!rc) rc = ifp_gguf_writer_set_str(w, "ifp.predictor.feature", "last_token_final_norm");
    if (!rc) rc = ifp_gguf_writer_set_str(w, "ifp.predictor.head_activation", "silu");
    if (!rc) rc = ifp_gguf_writer_set_u64(w, "ifp.synth.seed", p->seed);
    for (uint64_t i = 0; p->tokenizer && !rc && i < ifp_gguf_n_kv(p->tokenizer); i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(p->tokenizer, i);
        if (kv->key.len > TOK_PREFIX_LEN && !memcmp(kv->key.ptr, TOK_PREFIX, TOK_PREFIX_LEN) &&
            (rc = ifp_gguf_writer_copy_kv(w, kv)) == IFP_EINVAL) {
            snprintf(pc->key, sizeof pc->key, "%.*s", (int)(kv->key.len > 120 ? 120 : kv->key.len), kv->key.ptr);
            pc->bad_key = pc->key;
        }
    }
    return rc;
}

static int pred_tensors(ifp_gguf_writer_t *w, void *ctx) {
    const pred_ctx_t *pc = ctx;
    const ifp_config_t *c = &pc->p->backbone;
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)pc->p->hidden,
             S = (uint64_t)pc->p->target_layers * (uint64_t)pc->p->target_ffn;
    uint64_t n1[1], n2[2];
    int rc = ifp_gguf_writer_add_tensor(w, "output_norm.weight", IFP_GGML_F32, 1, (n1[0] = D, n1), pc->norm);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc1.weight", IFP_GGML_F32, 2, (n2[0] = D, n2[1] = H, n2), pc->w1);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc1.bias", IFP_GGML_F32, 1, (n1[0] = H, n1), pc->b1);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc2.weight", IFP_GGML_F32, 2, (n2[0] = H, n2[1] = S, n2), pc->w2);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc2.bias", IFP_GGML_F32, 1, (n1[0] = S, n1), pc->b2);
    return rc;
}

int ifp_synth_predictor_write(const ifp_synth_predictor_t *p, const char *path, ifp_err_t *err) {
    const ifp_config_t *c = &p->backbone;
    int rc = ifp_config_validate(c, err);
    if (rc) return ifp_err_prefix(err, "predictor backbone");
    if (p->hidden < 1 || p->target_layers < 1 || p->target_ffn < 1 || p->keep < 1 || p->keep > p->target_ffn ||
        p->max_prompt < 1 || p->max_prompt > c->ctx)
        return ifp_errf(err, IFP_ERANGE, "predictor: bad head size, target, keep or max_prompt");
    ifp_model_params_t mp = ifp_model_default_params();
    mp.load_head = 0; /* the feature norm is written below; the LM head is never used */
    ifp_model_t *bb = NULL;
    if ((rc = ifp_model_synth(c, p->seed, &mp, &bb, err))) return rc;
    size_t D = (size_t)c->dim, H = (size_t)p->hidden, S = (size_t)p->target_layers * (size_t)p->target_ffn;
    float *norm = malloc(D * sizeof *norm), *w1 = malloc(H * D * sizeof *w1), *b1 = malloc(H * sizeof *b1);
    float *w2 = malloc(S * H * sizeof *w2), *b2 = malloc(S * sizeof *b2);
    if (!norm || !w1 || !b1 || !w2 || !b2) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory for the predictor head (%zu scores x %zu)", S, H);
        goto done;
    }
    uint64_t s = p->seed ^ 0x4EADull;
    for (size_t i = 0; i < D; i++) norm[i] = 1.0f;
    fill_uniform(w1, H * D, 1.0f / sqrtf((float)D), &s);
    fill_uniform(b1, H, 0.1f, &s);
    fill_uniform(w2, S * H, 1.0f / sqrtf((float)H), &s);
    fill_uniform(b2, S, 0.1f, &s);
    pred_ctx_t pc = {.p = p, .norm = norm, .w1 = w1, .b1 = b1, .w2 = w2, .b2 = b2};
    ifp_model_write_params_t wp = ifp_model_write_default_params();
    wp.name = "ifp-synth-predictor";
    wp.headless = 1;
    wp.add_keys = pred_keys;
    wp.add_tensors = pred_tensors;
    wp.keys_ctx = &pc;
    rc = ifp_model_write_gguf(bb, path, &wp, err);
    if (rc == IFP_EINVAL && pc.bad_key)
        rc = ifp_errf(err, rc, "%s: cannot copy tokenizer key %s from %s", path, pc.bad_key, ifp_gguf_path(p->tokenizer));
done:
    ifp_model_free(&bb);
    free(norm), free(w1), free(b1), free(w2), free(b2);
    return rc;
}

/* ---- a predictor for an existing model -------------------------------------------------------- */

int ifp_synth_parse_size(const char *s, uint64_t *out, ifp_err_t *err) {
    const char *what = "a parameter count such as 302m, 30m, 1.2b, 500k or 2000000";
    /* digits [. digits] [suffix]: checked here, so strtod sees no sign, hex, exponent or inf */
    size_t i = 0, digits = 0;
    for (; s && isdigit((unsigned char)s[i]); i++) digits++;
    if (s && s[i] == '.')
        for (i++; isdigit((unsigned char)s[i]); i++) digits++;
    if (!s || !digits) return ifp_errf(err, IFP_EINVAL, "'%s' is not a size (%s)", s ? s : "", what);
    double mult = 1;
    int c = tolower((unsigned char)s[i]);
    if (c == 'k') mult = 1e3, i++;
    else if (c == 'm') mult = 1e6, i++;
    else if (c == 'b' || c == 'g') mult = 1e9, i++;
    if (s[i]) return ifp_errf(err, IFP_EINVAL, "'%s' is not a size (%s)", s, what);
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE || !isfinite(v)) return ifp_errf(err, IFP_EINVAL, "'%s' is not a size (%s)", s, what);
    v *= mult;
    if (!(v >= 1 && v <= IFP_SYNTH_MAX_SIZE))
        return ifp_errf(err, IFP_ERANGE, "size '%s' is out of range (1 .. %.0fb parameters)", s,
                        IFP_SYNTH_MAX_SIZE / 1e9);
    *out = (uint64_t)llround(v);
    return IFP_OK;
}

#define FIT_MAX_DIM 8192      /* 128 heads of 64 */
#define FIT_MAX_LAYERS 256
#define FIT_MAX_ERROR 0.15    /* |count / size - 1| */
#define FIT_PAPER_ASPECT 64.0 /* d_model per layer of the paper's backbone: 1024 / 16 */
#define FIT_ASPECT_WEIGHT 0.02

int ifp_synth_backbone(const char *size, int vocab, int ctx, ifp_config_t *cfg, ifp_err_t *err) {
    if (!size || !strcasecmp(size, IFP_SYNTH_PAPER_BACKBONE)) {
        ifp_config_t c = backbone_shape(1024, 16, vocab, ctx);
        int rc = ifp_config_validate(&c, err);
        if (!rc) *cfg = c;
        return rc;
    }
    uint64_t want;
    int rc = ifp_synth_parse_size(size, &want, err);
    if (rc) return rc;
    /* every d_model (multiples of 64) with the layer count(s) in 1..256
     * nearest the size; the best by |ln(count / size)| + 0.02 |ln((d / layers) / 64)| */
    double T = (double)want, best = INFINITY;
    for (int d = 64; d <= FIT_MAX_DIM; d += 64) {
        ifp_config_t c = backbone_shape(d, 1, vocab, ctx);
        double per = (double)ifp_synth_layer_params(&c, c.d_ffn), fixed = (double)vocab * d + d;
        double exact = (T - fixed) / per;
        if (exact > FIT_MAX_LAYERS + 1) exact = FIT_MAX_LAYERS + 1; /* int-safe; clamped below */
        for (int k = 0; k < 2; k++) {
            int n = k ? (int)ceil(exact) : (int)floor(exact);
            n = n < 1 ? 1 : n > FIT_MAX_LAYERS ? FIT_MAX_LAYERS : n;
            double count = n * per + fixed;
            if (fabs(count / T - 1) > FIT_MAX_ERROR) continue;
            double score = fabs(log(count / T)) + FIT_ASPECT_WEIGHT * fabs(log((double)d / n / FIT_PAPER_ASPECT));
            if (score < best) best = score, c.n_layers = n, *cfg = c;
        }
    }
    if (best < INFINITY) return ifp_config_validate(cfg, err);
    ifp_config_t lo = backbone_shape(64, 1, vocab, ctx), hi = backbone_shape(FIT_MAX_DIM, FIT_MAX_LAYERS, vocab, ctx);
    uint64_t n_lo = ifp_synth_backbone_params(&lo), n_hi = ifp_synth_backbone_params(&hi);
    if (want < n_lo)
        return ifp_errf(err, IFP_ERANGE,
                        "size '%s' is too small: with a %d-token vocabulary the smallest backbone (d_model 64, 1 layer) "
                        "holds %llu parameters", size, vocab, (unsigned long long)n_lo);
    return ifp_errf(err, IFP_ERANGE, "no backbone (d_model 64..%d, 1..%d layers) is within %.0f%% of %s parameters%s",
                    FIT_MAX_DIM, FIT_MAX_LAYERS, FIT_MAX_ERROR * 100, size, want > n_hi ? ": too large" : "");
}

int ifp_synth_keep_default(int d_ffn) {
    int64_t k = ((int64_t)d_ffn * IFP_SYNTH_KEEP + 24576 / 2) / 24576; /* the paper's 9B -> 3B: 6656 of 24576 */
    return k < 1 ? 1 : (int)k;
}

int ifp_synth_predictor_prompt(int model_ctx) { return model_ctx < 512 ? model_ctx : 512; }

int ifp_synth_check_target(const ifp_gguf_t *g, ifp_config_t *model, ifp_err_t *err) {
    const char *path = ifp_gguf_path(g);
    int rc = ifp_config_from_gguf(g, model, err);
    if (rc) return ifp_err_prefix(err, "%s: not a llama model", path);
    if (ifp_gguf_find(g, "ifp.predictor.target_block_count"))
        return ifp_errf(err, IFP_EINVAL, "%s is a sparsity predictor, not a model to prune", path);
    if (!ifp_gguf_find(g, TOK_PREFIX "tokens"))
        return ifp_errf(err, IFP_ENOTFOUND,
                        "%s has no tokenizer (no " TOK_PREFIX "tokens): a predictor reads its model's token ids, so it "
                        "carries the model's tokenizer", path);
    ifp_tokenizer_t *tok = NULL;
    if ((rc = ifp_tokenizer_from_gguf(g, &tok, err))) return ifp_err_prefix(err, "%s", path);
    int n = ifp_tokenizer_n_vocab(tok);
    ifp_tokenizer_destroy(&tok);
    if (n != model->vocab)
        return ifp_errf(err, IFP_EFORMAT, "%s: the tokenizer has %d tokens, the vocabulary %d", path, n, model->vocab);
    return IFP_OK;
}

int ifp_synth_predictor_for(const ifp_config_t *model, const ifp_config_t *backbone, int keep, uint64_t seed,
                            ifp_synth_predictor_t *p, ifp_err_t *err) {
    int max_prompt = ifp_synth_predictor_prompt(model->ctx);
    if (keep == 0) keep = ifp_synth_keep_default(model->d_ffn);
    if (keep < 1 || keep > model->d_ffn)
        return ifp_errf(err, IFP_ERANGE, "keep %d is out of range [1, %d] (the model's d_ffn)", keep, model->d_ffn);
    if (backbone->vocab != model->vocab || backbone->ctx < max_prompt)
        return ifp_errf(err, IFP_EINVAL, "the backbone's vocabulary (%d) and context (%d) must be the model's (%d) "
                        "and at least %d", backbone->vocab, backbone->ctx, model->vocab, max_prompt);
    ifp_synth_predictor_t d = {.backbone = *backbone, .hidden = 128, .target_layers = model->n_layers,
                               .target_ffn = model->d_ffn, .keep = keep, .max_prompt = max_prompt, .seed = seed};
    *p = d;
    return IFP_OK;
}
