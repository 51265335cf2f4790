#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ifp_model_params_t ifp_model_default_params(void) {
    ifp_model_params_t p = {.layer_begin = 0, .layer_end = -1, .load_embd = 1, .load_head = 1};
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

int ifp_model_own(ifp_model_t *m, void *buf) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 32;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) return IFP_ENOMEM;
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = buf;
    return IFP_OK;
}

/* Returns f32 data for tensor `name` of shape ne (innermost first): the
 * mapping itself for aligned F32, else a converted copy owned by m. */
static int load_tensor(ifp_model_t *m, const char *name, uint32_t n_dims, uint64_t ne0, uint64_t ne1,
                       const float **out, ifp_err_t *err) {
    uint64_t ne[2] = {ne0, ne1};
    const ifp_gguf_tensor_t *t;
    int rc = ifp_gguf_require_tensor(m->gguf, name, n_dims, ne, &t, err);
    if (rc) return rc;
    if (t->type == IFP_GGML_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = t->data;
        return IFP_OK;
    }
    float *buf = malloc(t->n_elements * sizeof(float));
    if (!buf || ifp_model_own(m, buf)) {
        free(buf);
        return ifp_errf(err, IFP_ENOMEM, "tensor %s: out of memory converting %llu elements", name,
                        (unsigned long long)t->n_elements);
    }
    if ((rc = ifp_gguf_tensor_read_f32(t, 0, t->n_elements, buf, err))) return rc;
    *out = buf;
    return IFP_OK;
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
    if (!m->layers) {
        free(m);
        return NULL;
    }
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
    uint64_t d = (uint64_t)c.dim, q = (uint64_t)c.n_heads * c.head_dim, kv = (uint64_t)c.n_kv_heads * c.head_dim,
             f = (uint64_t)c.d_ffn, v = (uint64_t)c.vocab;
    if (p->load_embd && (rc = load_tensor(m, "token_embd.weight", 2, d, v, &m->tok_embd, err))) goto fail;
    if (p->load_head) {
        if ((rc = load_tensor(m, "output_norm.weight", 1, d, 1, &m->out_norm, err))) goto fail;
        if (ifp_gguf_find_tensor(m->gguf, "output.weight"))
            rc = load_tensor(m, "output.weight", 2, d, v, &m->output, err);
        else /* tied classifier */
            rc = load_tensor(m, "token_embd.weight", 2, d, v, &m->output, err);
        if (rc) goto fail;
    }
    for (int l = lb; l < le; l++) {
        ifp_layer_t *L = &m->layers[l];
        char name[96];
#define LOAD(field, suffix, nd, a, b)                                                \
    do {                                                                             \
        snprintf(name, sizeof name, "blk.%d." suffix ".weight", l);                  \
        if ((rc = load_tensor(m, name, nd, a, b, &L->field, err))) goto fail;        \
    } while (0)
        LOAD(attn_norm, "attn_norm", 1, d, 1);
        LOAD(wq, "attn_q", 2, d, q);
        LOAD(wk, "attn_k", 2, d, kv);
        LOAD(wv, "attn_v", 2, d, kv);
        LOAD(wo, "attn_output", 2, q, d);
        LOAD(ffn_norm, "ffn_norm", 1, d, 1);
        LOAD(w_gate, "ffn_gate", 2, d, f);
        LOAD(w_up, "ffn_up", 2, d, f);
        LOAD(w_down, "ffn_down", 2, f, d);
#undef LOAD
        L->d_ffn = c.d_ffn;
    }
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

static float *synth_buf(ifp_model_t *m, uint64_t *rng, size_t n, float scale, int ones) {
    float *b = malloc(n * sizeof *b);
    if (!b || ifp_model_own(m, b)) {
        free(b);
        return NULL;
    }
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
    return b;
}

int ifp_model_synth(const ifp_config_t *c, uint64_t seed, const ifp_model_params_t *p, ifp_model_t **out,
                    ifp_err_t *err) {
    ifp_model_params_t dp = ifp_model_default_params();
    if (!p) p = &dp;
    int rc = ifp_config_validate(c, err);
    if (rc) return rc;
    int lb, le;
    if ((rc = resolve_range(c, p, &lb, &le, err))) return rc;
    ifp_model_t *m = model_alloc(c);
    if (!m) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    m->layer_begin = lb;
    m->layer_end = le;
    size_t d = (size_t)c->dim, q = (size_t)c->n_heads * c->head_dim, kv = (size_t)c->n_kv_heads * c->head_dim,
           f = (size_t)c->d_ffn, v = (size_t)c->vocab;
    float sd = 1.0f / sqrtf((float)d), sf = 1.0f / sqrtf((float)f), sq = 1.0f / sqrtf((float)q);
    uint64_t rng = seed;
    int ok = 1;
    if (p->load_embd) ok &= (m->tok_embd = synth_buf(m, &rng, v * d, 1.0f, 0)) != NULL;
    for (int l = 0; l < c->n_layers && ok; l++) {
        /* every layer gets its own stream so a stage's weights do not depend
         * on which layers it holds */
        uint64_t lr = seed ^ (0xA5A5A5A5ull * (uint64_t)(l + 1));
        if (l < lb || l >= le) continue;
        ifp_layer_t *L = &m->layers[l];
        ok &= (L->attn_norm = synth_buf(m, &lr, d, 0, 1)) != NULL;
        ok &= (L->wq = synth_buf(m, &lr, q * d, sd, 0)) != NULL;
        ok &= (L->wk = synth_buf(m, &lr, kv * d, sd, 0)) != NULL;
        ok &= (L->wv = synth_buf(m, &lr, kv * d, sd, 0)) != NULL;
        ok &= (L->wo = synth_buf(m, &lr, d * q, sq, 0)) != NULL;
        ok &= (L->ffn_norm = synth_buf(m, &lr, d, 0, 1)) != NULL;
        ok &= (L->w_gate = synth_buf(m, &lr, f * d, sd, 0)) != NULL;
        ok &= (L->w_up = synth_buf(m, &lr, f * d, sd, 0)) != NULL;
        ok &= (L->w_down = synth_buf(m, &lr, d * f, sf, 0)) != NULL;
        L->d_ffn = c->d_ffn;
    }
    if (ok && p->load_head) {
        uint64_t hr = seed ^ 0x5EEDull;
        ok &= (m->out_norm = synth_buf(m, &hr, d, 0, 1)) != NULL;
        ok &= (m->output = synth_buf(m, &hr, v * d, sd, 0)) != NULL;
    }
    if (!ok) {
        ifp_model_free(&m);
        return ifp_errf(err, IFP_ENOMEM, "out of memory generating synthetic weights");
    }
    *out = m;
    return IFP_OK;
}

void ifp_model_free(ifp_model_t **mp) {
    if (!mp || !*mp) return;
    ifp_model_t *m = *mp;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    ifp_gguf_close(&m->gguf);
    free(m);
    *mp = NULL;
}
