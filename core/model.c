#include "model.h"

#include "compact.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ifp_model_params_t ifp_model_default_params(void) {
    ifp_model_params_t p = {
        .layer_begin = 0, .layer_end = -1, .load_embd = 1, .load_head = 1, .load_ffn = 1, .wtype = IFP_WTYPE_ASIS};
    return p;
}

/* Upper bounds that keep every size product far from int/size_t overflow. */
#define MAX_DIM (1 << 16)
#define MAX_LAYERS 1024
#define MAX_FFN (1 << 20)
#define MAX_VOCAB (1 << 22)
#define MAX_CTX (1 << 20)

int ifp_config_validate(const ifp_config_t *c, ifp_err_t *err) {
    if (c->dim <= 0 || c->dim > MAX_DIM) return ifp_errf(err, IFP_ERANGE, "embedding length %d out of range", c->dim);
    if (c->n_layers <= 0 || c->n_layers > MAX_LAYERS)
        return ifp_errf(err, IFP_ERANGE, "block count %d out of range", c->n_layers);
    if (c->n_heads <= 0 || c->n_heads > c->dim)
        return ifp_errf(err, IFP_ERANGE, "head count %d out of range", c->n_heads);
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return ifp_errf(err, IFP_ERANGE, "kv head count %d must divide head count %d", c->n_kv_heads, c->n_heads);
    if (c->head_dim <= 0 || c->head_dim % 2 != 0 || (long)c->head_dim * c->n_heads > MAX_DIM)
        return ifp_errf(err, IFP_ERANGE, "head dim %d must be even and positive", c->head_dim);
    if (c->rope_dim <= 0 || c->rope_dim > c->head_dim || c->rope_dim % 2 != 0)
        return ifp_errf(err, IFP_ERANGE, "rope dimension %d must be even and at most head dim %d", c->rope_dim,
                        c->head_dim);
    if (c->d_ffn <= 0 || c->d_ffn > MAX_FFN)
        return ifp_errf(err, IFP_ERANGE, "feed-forward length %d out of range", c->d_ffn);
    if (c->vocab <= 0 || c->vocab > MAX_VOCAB) return ifp_errf(err, IFP_ERANGE, "vocab size %d out of range", c->vocab);
    if (c->ctx <= 0 || c->ctx > MAX_CTX) return ifp_errf(err, IFP_ERANGE, "context length %d out of range", c->ctx);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return ifp_errf(err, IFP_ERANGE, "rms epsilon %g out of range", (double)c->norm_eps);
    if (!(c->rope_theta > 1.0f && isfinite(c->rope_theta)))
        return ifp_errf(err, IFP_ERANGE, "rope freq base %g out of range", (double)c->rope_theta);
    return IFP_OK;
}

static int get_int(const ifp_gguf_t *g, const char *key, int dflt, int *out, ifp_err_t *err) {
    uint32_t v;
    if (!ifp_gguf_find(g, key)) {
        if (dflt < 0) return ifp_errf(err, IFP_ENOTFOUND, "missing required key %s", key);
        *out = dflt;
        return IFP_OK;
    }
    int rc = ifp_gguf_get_u32(g, key, &v, err);
    if (rc) return rc;
    if (v > (uint32_t)INT32_MAX) return ifp_errf(err, IFP_ERANGE, "key %s = %u too large", key, v);
    *out = (int)v;
    return IFP_OK;
}

static int get_float(const ifp_gguf_t *g, const char *key, float dflt, float *out, ifp_err_t *err) {
    if (!ifp_gguf_find(g, key)) {
        *out = dflt;
        return IFP_OK;
    }
    return ifp_gguf_get_f32(g, key, out, err);
}

int ifp_config_from_gguf(const ifp_gguf_t *g, ifp_config_t *c, ifp_err_t *err) {
    char *arch = NULL;
    int rc = ifp_gguf_get_str(g, "general.architecture", &arch, err);
    if (rc) return rc;
    if (strcmp(arch, "llama") != 0) {
        rc = ifp_errf(err, IFP_EUNSUPPORTED, "general.architecture is \"%s\", only \"llama\" is supported", arch);
        free(arch);
        return rc;
    }
    free(arch);
    memset(c, 0, sizeof *c);
    if ((rc = get_int(g, "llama.embedding_length", -1, &c->dim, err)) ||
        (rc = get_int(g, "llama.block_count", -1, &c->n_layers, err)) ||
        (rc = get_int(g, "llama.feed_forward_length", -1, &c->d_ffn, err)) ||
        (rc = get_int(g, "llama.attention.head_count", -1, &c->n_heads, err)) ||
        (rc = get_int(g, "llama.attention.head_count_kv", c->n_heads, &c->n_kv_heads, err)) ||
        (rc = get_int(g, "llama.context_length", 2048, &c->ctx, err)) ||
        (rc = get_float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps, err)) ||
        (rc = get_float(g, "llama.rope.freq_base", 10000.0f, &c->rope_theta, err)))
        return rc;
    if (c->n_heads <= 0 || c->dim % c->n_heads != 0)
        return ifp_errf(err, IFP_ERANGE, "head count %d does not divide embedding length %d", c->n_heads, c->dim);
    c->head_dim = c->dim / c->n_heads;
    if ((rc = get_int(g, "llama.rope.dimension_count", c->head_dim, &c->rope_dim, err))) return rc;
    /* vocab: explicit key, else the token list, else the embedding tensor */
    const ifp_gguf_kv_t *toks = ifp_gguf_find(g, "tokenizer.ggml.tokens");
    const ifp_gguf_tensor_t *emb = ifp_gguf_find_tensor(g, "token_embd.weight");
    if (ifp_gguf_find(g, "llama.vocab_size")) {
        if ((rc = get_int(g, "llama.vocab_size", -1, &c->vocab, err))) return rc;
    } else if (toks && toks->type == IFP_GGUF_ARRAY && toks->arr_n <= MAX_VOCAB) {
        c->vocab = (int)toks->arr_n;
    } else if (emb && emb->n_dims == 2 && emb->ne[1] <= MAX_VOCAB) {
        c->vocab = (int)emb->ne[1];
    } else {
        return ifp_errf(err, IFP_ENOTFOUND, "cannot tell the vocab size (no llama.vocab_size, tokens or token_embd)");
    }
    return ifp_config_validate(c, err);
}

/* A 1-D f32 tensor (a norm) of n elements, resident. */
static int load_vec(ifp_model_t *m, const char *name, uint64_t n, const float **out, ifp_err_t *err) {
    uint64_t ne[2] = {n, 1};
    const ifp_gguf_tensor_t *t;
    int rc = ifp_gguf_require_tensor(m->gguf, name, 1, ne, &t, err);
    if (rc) return rc;
    float *buf = ifp_arena_alloc(m->arena, n * sizeof(float));
    if (!buf) return ifp_errf(err, IFP_ENOMEM, "tensor %s: out of memory", name);
    if ((rc = ifp_gguf_tensor_read_f32(t, 0, n, buf, err))) return rc;
    *out = buf;
    return IFP_OK;
}

/* The file's tensor `name` (ne = [cols, rows]) as a view into the mapping. */
static int map_mat(ifp_model_t *m, const char *name, uint64_t cols, uint64_t rows, ifp_wmat_t *out, ifp_err_t *err) {
    uint64_t ne[2] = {cols, rows};
    const ifp_gguf_tensor_t *t;
    int rc = ifp_gguf_require_tensor(m->gguf, name, 2, ne, &t, err);
    if (rc) return rc;
    if (!ifp_wtype_ok(t->type))
        return ifp_errf(err, IFP_EUNSUPPORTED, "tensor %s: type %s is not a weight type (f32, f16, bf16, q8_0)", name,
                        ifp_ggml_type_name(t->type));
    *out = ifp_wmat(t->data, t->type, (int)rows, (int)cols);
    return IFP_OK;
}

/* The type a matrix of cols columns stored as `have` is held in. */
static int held_type(const ifp_model_t *m, int wtype, ifp_ggml_type_t have, const char *name, int cols,
                     ifp_ggml_type_t *t, ifp_err_t *err) {
    (void)m;
    *t = wtype == IFP_WTYPE_ASIS ? have : (ifp_ggml_type_t)wtype;
    if (!ifp_wtype_row_bytes(*t, cols))
        return ifp_errf(err, IFP_EUNSUPPORTED, "tensor %s: %d columns cannot be held as %s (q8_0 needs a multiple of 32)",
                        name, cols, ifp_ggml_type_name(*t));
    return IFP_OK;
}

/* A resident copy of matrix v in type t (converted row by row if it differs). */
static int resident_mat(ifp_model_t *m, const ifp_wmat_t *v, ifp_ggml_type_t t, const char *name, ifp_wmat_t *out,
                        ifp_err_t *err) {
    size_t rb = ifp_wtype_row_bytes(t, v->cols);
    char *buf = ifp_arena_alloc(m->arena, rb * (size_t)v->rows);
    float *tmp = t == v->type ? NULL : malloc((size_t)v->cols * sizeof *tmp);
    if (!buf || (t != v->type && !tmp)) {
        free(tmp);
        return ifp_errf(err, IFP_ENOMEM, "tensor %s: out of memory for %zu bytes", name, rb * (size_t)v->rows);
    }
    if (t == v->type) {
        memcpy(buf, v->data, rb * (size_t)v->rows);
    } else {
        for (int r = 0; r < v->rows; r++) {
            ifp_dequantize_row(v->type, ifp_wmat_row(v, r), v->cols, tmp);
            ifp_quantize_row(t, tmp, v->cols, buf + (size_t)r * rb);
        }
    }
    free(tmp);
    *out = ifp_wmat(buf, t, v->rows, v->cols);
    return IFP_OK;
}

static int load_mat(ifp_model_t *m, int wtype, const char *name, uint64_t cols, uint64_t rows, ifp_wmat_t *out,
                    ifp_err_t *err) {
    ifp_wmat_t v;
    ifp_ggml_type_t t;
    int rc = map_mat(m, name, cols, rows, &v, err);
    if (!rc) rc = held_type(m, wtype, v.type, name, v.cols, &t, err);
    if (!rc) rc = resident_mat(m, &v, t, name, out, err);
    return rc;
}

/* Layer l's FFN source in the file: gate, up and the down projection, either
 * channel-major (ffn_down_t, ne = [dim, d_ffn]) or llama's (ffn_down). */
static int map_ffn(ifp_model_t *m, int l, ifp_ffn_src_t *src, ifp_err_t *err) {
    const ifp_config_t *c = &m->cfg;
    char name[96];
    int rc;
    snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
    if ((rc = map_mat(m, name, (uint64_t)c->dim, (uint64_t)c->d_ffn, &src->gate, err))) return rc;
    snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
    if ((rc = map_mat(m, name, (uint64_t)c->dim, (uint64_t)c->d_ffn, &src->up, err))) return rc;
    snprintf(name, sizeof name, "blk.%d.ffn_down_t.weight", l);
    src->down_llama = ifp_gguf_find_tensor(m->gguf, name) == NULL;
    if (src->down_llama) {
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        return map_mat(m, name, (uint64_t)c->d_ffn, (uint64_t)c->dim, &src->down, err);
    }
    return map_mat(m, name, (uint64_t)c->dim, (uint64_t)c->d_ffn, &src->down, err);
}

size_t ifp_model_resident_bytes(const ifp_model_t *m) { return m ? ifp_arena_bytes(m->arena) : 0; }

void ifp_model_describe_memory(const ifp_model_t *m, char *buf, size_t len) {
    char where[96];
    ifp_arena_describe(m->arena, where, sizeof where);
    const ifp_layer_t *L = m->layer_end > m->layer_begin ? &m->layers[m->layer_begin] : NULL;
    const char *at = L && L->wq.data ? ifp_ggml_type_name(L->wq.type) : m->output.data ? ifp_ggml_type_name(m->output.type) : "-";
    snprintf(buf, len, "%.1f MiB resident (attention %s, ffn %s, norms f32; %s)",
             (double)ifp_model_resident_bytes(m) / (1024.0 * 1024.0), at, ifp_ggml_type_name(m->ffn_type), where);
}

void ifp_model_embed_row(const ifp_model_t *m, int t, float *out) {
    ifp_dequantize_row(m->tok_embd.type, ifp_wmat_row(&m->tok_embd, t), m->tok_embd.cols, out);
}

static int resolve_range(const ifp_config_t *c, const ifp_model_params_t *p, int *b, int *e, ifp_err_t *err) {
    *b = p->layer_begin;
    *e = p->layer_end < 0 ? c->n_layers : p->layer_end;
    if (*b < 0 || *b > *e || *e > c->n_layers)
        return ifp_errf(err, IFP_ERANGE, "layer range [%d, %d) is not inside [0, %d)", p->layer_begin,
                        p->layer_end, c->n_layers);
    return IFP_OK;
}

static ifp_model_t *model_alloc(const ifp_config_t *c) {
    ifp_model_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *c;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->ffn_src = calloc((size_t)c->n_layers, sizeof *m->ffn_src);
    m->arena = ifp_arena_new();
    if (!m->layers || !m->ffn_src || !m->arena) ifp_model_free(&m);
    return m;
}

int ifp_model_from_gguf(ifp_gguf_t **gp, const ifp_model_params_t *p, ifp_model_t **out, ifp_err_t *err) {
    ifp_model_params_t dp = ifp_model_default_params();
    if (!p) p = &dp;
    ifp_config_t c;
    int rc = ifp_config_from_gguf(*gp, &c, err);
    if (rc) return rc;
    int lb, le;
    if ((rc = resolve_range(&c, p, &lb, &le, err))) return rc;
    ifp_model_t *m = model_alloc(&c);
    if (!m) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    m->gguf = *gp;
    *gp = NULL;
    m->layer_begin = lb;
    m->layer_end = le;
    if (p->wtype != IFP_WTYPE_ASIS && !ifp_wtype_ok((ifp_ggml_type_t)p->wtype)) {
        rc = ifp_errf(err, IFP_EINVAL, "weight type %d: expected f32, f16, bf16 or q8_0", p->wtype);
        goto fail;
    }
    uint64_t d = (uint64_t)c.dim, q = (uint64_t)c.n_heads * c.head_dim, kv = (uint64_t)c.n_kv_heads * c.head_dim,
             v = (uint64_t)c.vocab;
    int tied = !ifp_gguf_find_tensor(m->gguf, "output.weight");
    if (p->load_embd && (rc = load_mat(m, p->wtype, "token_embd.weight", d, v, &m->tok_embd, err))) goto fail;
    if (p->load_head) {
        if ((rc = load_vec(m, "output_norm.weight", d, &m->out_norm, err))) goto fail;
        if (tied && p->load_embd) m->output = m->tok_embd; /* tied classifier: one copy */
        else rc = load_mat(m, p->wtype, tied ? "token_embd.weight" : "output.weight", d, v, &m->output, err);
        if (rc) goto fail;
    }
    for (int l = lb; l < le; l++) {
        ifp_layer_t *L = &m->layers[l];
        char name[96];
#define LOADM(field, suffix, a, b)                                                    \
    do {                                                                              \
        snprintf(name, sizeof name, "blk.%d." suffix ".weight", l);                   \
        if ((rc = load_mat(m, p->wtype, name, a, b, &L->field, err))) goto fail;      \
    } while (0)
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        if ((rc = load_vec(m, name, d, &L->attn_norm, err))) goto fail;
        LOADM(wq, "attn_q", d, q);
        LOADM(wk, "attn_k", d, kv);
        LOADM(wv, "attn_v", d, kv);
        LOADM(wo, "attn_output", q, d);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        if ((rc = load_vec(m, name, d, &L->ffn_norm, err))) goto fail;
#undef LOADM
        if ((rc = map_ffn(m, l, &m->ffn_src[l], err))) goto fail;
        if (l == lb) {
            snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
            if ((rc = held_type(m, p->wtype, m->ffn_src[l].gate.type, name, c.dim, &m->ffn_type, err))) goto fail;
        }
    }
    /* the full FFN, resident, through the same gather compaction uses: a
     * compacted model is then byte for byte the kept rows of this one */
    if (p->load_ffn) {
        int32_t *all = malloc((size_t)c.d_ffn * sizeof *all);
        if (!all) {
            rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
            goto fail;
        }
        for (int j = 0; j < c.d_ffn; j++) all[j] = j;
        for (int l = lb; l < le && !rc; l++) {
            char *buf = ifp_arena_alloc(m->arena, ifp_compact_bytes(m->ffn_type, c.dim, c.d_ffn));
            if (!buf) {
                rc = ifp_errf(err, IFP_ENOMEM, "layer %d: out of memory for the FFN", l);
                break;
            }
            size_t sz = (size_t)c.d_ffn * ifp_wtype_row_bytes(m->ffn_type, c.dim);
            ifp_compact_gather(&m->ffn_src[l], c.dim, all, c.d_ffn, m->ffn_type, buf, buf + sz, buf + 2 * sz);
            ifp_compact_set_layer(&m->layers[l], m->ffn_type, c.dim, c.d_ffn, buf);
            /* later compactions gather from the resident copy */
            m->ffn_src[l] = (ifp_ffn_src_t){.gate = m->layers[l].w_gate, .up = m->layers[l].w_up,
                                            .down = m->layers[l].w_down, .down_llama = 0};
        }
        free(all);
        if (rc) goto fail;
    }
    ifp_arena_seal(m->arena);
    *out = m;
    return IFP_OK;
fail:
    ifp_model_free(&m);
    return rc;
}

int ifp_model_load(const char *path, const ifp_model_params_t *p, ifp_model_t **out, ifp_err_t *err) {
    ifp_gguf_t *g = NULL;
    int rc = ifp_gguf_open(path, &g, err);
    if (rc) return rc;
    rc = ifp_model_from_gguf(&g, p, out, err);
    if (rc) ifp_err_prefix(err, "%s", path);
    ifp_gguf_close(&g);
    return rc;
}

/* splitmix64: a seeded stream of 64-bit values for synthetic weights. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* n uniform values in [-1, 1) * scale from rng (or ones), f32. */
static void synth_fill(float *b, uint64_t *rng, size_t n, float scale, int ones) {
    for (size_t i = 0; i < n; i++) {
        if (ones) {
            b[i] = 1.0f;
        } else {
            uint64_t r = splitmix64(rng);
            /* two 24-bit uniforms per draw: [-1, 1) * scale */
            b[i] = ((float)(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
            if (++i < n) b[i] = ((float)((r >> 8) & 0xFFFFFF) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
        }
    }
}

static const float *synth_vec(ifp_model_t *m, size_t n) {
    float *b = ifp_arena_alloc(m->arena, n * sizeof *b);
    if (b) synth_fill(b, NULL, n, 0.0f, 1);
    return b;
}

/* rows × cols drawn from rng, held in type t (tmp: rows × cols floats).
 * transpose: the draws fill a [cols × rows] matrix that is held transposed
 * (the channel-major down projection; tmp2 the same size). */
static int synth_mat(ifp_model_t *m, uint64_t *rng, int rows, int cols, float scale, ifp_ggml_type_t t, float *tmp,
                     float *tmp2, ifp_wmat_t *out) {
    size_t n = (size_t)rows * cols;
    synth_fill(tmp, rng, n, scale, 0);
    if (tmp2) { /* tmp is [cols][rows]: tmp2[r][c] = tmp[c][r] */
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++) tmp2[(size_t)r * cols + c] = tmp[(size_t)c * rows + r];
        tmp = tmp2;
    }
    ifp_wmat_t v = ifp_wmat(tmp, IFP_GGML_F32, rows, cols);
    return resident_mat(m, &v, t, "synthetic", out, NULL);
}

int ifp_model_synth(const ifp_config_t *c, uint64_t seed, const ifp_model_params_t *p, ifp_model_t **out,
                    ifp_err_t *err) {
    ifp_model_params_t dp = ifp_model_default_params();
    if (!p) p = &dp;
    int rc = ifp_config_validate(c, err);
    if (rc) return rc;
    int lb, le;
    if ((rc = resolve_range(c, p, &lb, &le, err))) return rc;
    ifp_ggml_type_t t = p->wtype == IFP_WTYPE_ASIS ? IFP_GGML_F32 : (ifp_ggml_type_t)p->wtype;
    if (!ifp_wtype_ok(t)) return ifp_errf(err, IFP_EINVAL, "weight type %d: expected f32, f16, bf16 or q8_0", p->wtype);
    int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    if (t == IFP_GGML_Q8_0 && (c->dim % 32 || q % 32))
        return ifp_errf(err, IFP_EUNSUPPORTED, "q8_0 needs the embedding length (%d) and heads x head dim (%d) to be multiples of 32",
                        c->dim, q);
    ifp_model_t *m = model_alloc(c);
    if (!m) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    m->layer_begin = lb;
    m->layer_end = le;
    m->ffn_type = t;
    size_t d = (size_t)c->dim, f = (size_t)c->d_ffn, v = (size_t)c->vocab;
    size_t big = v * d > f * d ? v * d : f * d;
    float sd = 1.0f / sqrtf((float)d), sf = 1.0f / sqrtf((float)f), sq = 1.0f / sqrtf((float)q);
    float *tmp = malloc(big * sizeof *tmp), *tmp2 = malloc(f * d * sizeof *tmp2);
    uint64_t rng = seed;
    int ok = tmp && tmp2;
    if (ok && p->load_embd) ok = !synth_mat(m, &rng, (int)v, (int)d, 1.0f, t, tmp, NULL, &m->tok_embd);
    for (int l = 0; l < c->n_layers && ok; l++) {
        /* every layer gets its own stream so a stage's weights do not depend
         * on which layers it holds */
        uint64_t lr = seed ^ (0xA5A5A5A5ull * (uint64_t)(l + 1));
        if (l < lb || l >= le) continue;
        ifp_layer_t *L = &m->layers[l];
        ok &= (L->attn_norm = synth_vec(m, d)) != NULL;
        ok = ok && !synth_mat(m, &lr, q, (int)d, sd, t, tmp, NULL, &L->wq);
        ok = ok && !synth_mat(m, &lr, kv, (int)d, sd, t, tmp, NULL, &L->wk);
        ok = ok && !synth_mat(m, &lr, kv, (int)d, sd, t, tmp, NULL, &L->wv);
        ok = ok && !synth_mat(m, &lr, (int)d, q, sq, t, tmp, NULL, &L->wo);
        ok = ok && (L->ffn_norm = synth_vec(m, d)) != NULL;
        ok = ok && !synth_mat(m, &lr, (int)f, (int)d, sd, t, tmp, NULL, &L->w_gate);
        ok = ok && !synth_mat(m, &lr, (int)f, (int)d, sd, t, tmp, NULL, &L->w_up);
        ok = ok && !synth_mat(m, &lr, (int)f, (int)d, sf, t, tmp, tmp2, &L->w_down); /* drawn as llama's [dim][d_ffn] */
        L->d_ffn = c->d_ffn;
        m->ffn_src[l] = (ifp_ffn_src_t){.gate = L->w_gate, .up = L->w_up, .down = L->w_down, .down_llama = 0};
    }
    if (ok && p->load_head) {
        uint64_t hr = seed ^ 0x5EEDull;
        ok &= (m->out_norm = synth_vec(m, d)) != NULL;
        ok = ok && !synth_mat(m, &hr, (int)v, (int)d, sd, t, tmp, NULL, &m->output);
    }
    free(tmp);
    free(tmp2);
    if (!ok) {
        ifp_model_free(&m);
        return ifp_errf(err, IFP_ENOMEM, "out of memory generating synthetic weights");
    }
    ifp_arena_seal(m->arena);
    *out = m;
    return IFP_OK;
}

void ifp_model_free(ifp_model_t **mp) {
    if (!mp || !*mp) return;
    ifp_model_t *m = *mp;
    ifp_arena_destroy(&m->arena);
    free(m->layers);
    free(m->ffn_src);
    ifp_gguf_close(&m->gguf);
    free(m);
    *mp = NULL;
}
