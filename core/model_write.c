#include "model_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ifp_model_write_params_t ifp_model_write_default_params(void) {
    ifp_model_write_params_t p = {.wtype = IFP_WTYPE_ASIS, .down_llama = 0, .meta = NULL, .name = NULL};
    return p;
}

/* The tensors being written: names are copied by the writer, data borrowed
 * until the write, so converted copies are owned here. */
typedef struct {
    ifp_gguf_writer_t *w;
    const ifp_model_write_params_t *p;
    void **owned;
    int n_owned, cap_owned;
} wr_t;

static void *own(wr_t *wr, size_t bytes) {
    if (wr->n_owned == wr->cap_owned) {
        int cap = wr->cap_owned ? 2 * wr->cap_owned : 64;
        void **o = realloc(wr->owned, (size_t)cap * sizeof *o);
        if (!o) return NULL;
        wr->owned = o, wr->cap_owned = cap;
    }
    void *b = malloc(bytes ? bytes : 1);
    if (b) wr->owned[wr->n_owned++] = b;
    return b;
}

static ifp_ggml_type_t out_type(const wr_t *wr, ifp_ggml_type_t held) {
    return wr->p->wtype == IFP_WTYPE_ASIS ? held : (ifp_ggml_type_t)wr->p->wtype;
}

static int put_vec(wr_t *wr, const char *name, const float *v, uint64_t n) {
    uint64_t ne[1] = {n};
    return ifp_gguf_writer_add_tensor(wr->w, name, IFP_GGML_F32, 1, ne, v);
}

/* Matrix w (rows × cols, GGUF ne = [cols, rows]) in the output type. */
static int put_mat(wr_t *wr, const char *name, const ifp_wmat_t *w) {
    ifp_ggml_type_t t = out_type(wr, w->type);
    size_t rb = ifp_wtype_row_bytes(t, w->cols);
    uint64_t ne[2] = {(uint64_t)w->cols, (uint64_t)w->rows};
    if (!rb) return IFP_EUNSUPPORTED;
    if (t == w->type) return ifp_gguf_writer_add_tensor(wr->w, name, t, 2, ne, w->data);
    char *b = own(wr, rb * (size_t)w->rows);
    float *tmp = malloc((size_t)w->cols * sizeof *tmp);
    if (!b || !tmp) {
        free(tmp);
        return IFP_ENOMEM;
    }
    for (int r = 0; r < w->rows; r++) {
        ifp_dequantize_row(w->type, ifp_wmat_row(w, r), w->cols, tmp);
        ifp_quantize_row(t, tmp, w->cols, b + (size_t)r * rb);
    }
    free(tmp);
    return ifp_gguf_writer_add_tensor(wr->w, name, t, 2, ne, b);
}

/* The channel-major down (d_ffn × dim) in llama's layout: dim rows of d_ffn. */
static int put_down_llama(wr_t *wr, const char *name, const ifp_wmat_t *w) {
    ifp_ggml_type_t t = out_type(wr, w->type);
    int F = w->rows, D = w->cols;
    size_t rb = ifp_wtype_row_bytes(t, F);
    uint64_t ne[2] = {(uint64_t)F, (uint64_t)D};
    if (!rb) return IFP_EUNSUPPORTED;
    char *b = own(wr, rb * (size_t)D);
    float *full = malloc((size_t)F * D * sizeof *full), *row = malloc((size_t)D * sizeof *row);
    int rc = b && full && row ? IFP_OK : IFP_ENOMEM;
    if (!rc) {
        for (int j = 0; j < F; j++) { /* full[o][j] = channel j's element o */
            ifp_dequantize_row(w->type, ifp_wmat_row(w, j), D, row);
            for (int o = 0; o < D; o++) full[(size_t)o * F + j] = row[o];
        }
        for (int o = 0; o < D; o++) ifp_quantize_row(t, full + (size_t)o * F, F, b + (size_t)o * rb);
        rc = ifp_gguf_writer_add_tensor(wr->w, name, t, 2, ne, b);
    }
    free(full);
    free(row);
    return rc;
}

static int down_llama(const wr_t *wr, const ifp_model_t *m) {
    return out_type(wr, m->ffn_type) != IFP_GGML_Q8_0 || wr->p->down_llama;
}

uint64_t ifp_model_write_bytes(const ifp_model_t *m, const ifp_model_write_params_t *pp) {
    ifp_model_write_params_t p = pp ? *pp : ifp_model_write_default_params();
    wr_t wr = {.p = &p};
    const ifp_config_t *c = &m->cfg;
    uint64_t n = 0;
#define MAT(w) n += (uint64_t)(w).rows * ifp_wtype_row_bytes(out_type(&wr, (w).type), (w).cols)
    MAT(m->tok_embd);
    if (!p.headless && m->output.data != m->tok_embd.data) MAT(m->output);
    n += 4 * (uint64_t)c->dim;
    for (int l = m->layer_begin; l < m->layer_end; l++) {
        const ifp_layer_t *L = &m->layers[l];
        MAT(L->wq), MAT(L->wk), MAT(L->wv), MAT(L->wo), MAT(L->w_gate), MAT(L->w_up), MAT(L->w_down);
        n += 8 * (uint64_t)c->dim;
    }
#undef MAT
    return n;
}

static int put_model(wr_t *wr, const ifp_model_t *m, uint64_t total) {
    const ifp_config_t *c = &m->cfg;
    uint64_t done = 0;
    int rc = put_mat(wr, "token_embd.weight", &m->tok_embd);
    for (int l = m->layer_begin; l < m->layer_end && !rc; l++) {
        const ifp_layer_t *L = &m->layers[l];
        char name[64];
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix ".weight", l), name)
        rc = put_vec(wr, NAME("attn_norm"), L->attn_norm, (uint64_t)c->dim);
        if (!rc) rc = put_mat(wr, NAME("attn_q"), &L->wq);
        if (!rc) rc = put_mat(wr, NAME("attn_k"), &L->wk);
        if (!rc) rc = put_mat(wr, NAME("attn_v"), &L->wv);
        if (!rc) rc = put_mat(wr, NAME("attn_output"), &L->wo);
        if (!rc) rc = put_vec(wr, NAME("ffn_norm"), L->ffn_norm, (uint64_t)c->dim);
        if (!rc) rc = put_mat(wr, NAME("ffn_gate"), &L->w_gate);
        if (!rc) rc = put_mat(wr, NAME("ffn_up"), &L->w_up);
        if (!rc) rc = down_llama(wr, m) ? put_down_llama(wr, NAME("ffn_down"), &L->w_down)
                                        : put_mat(wr, NAME("ffn_down_t"), &L->w_down);
#undef NAME
        done += total / (uint64_t)(m->layer_end - m->layer_begin + 1);
        if (wr->p->progress) wr->p->progress(wr->p->progress_ctx, done, total);
    }
    if (!rc && !wr->p->headless) rc = put_vec(wr, "output_norm.weight", m->out_norm, (uint64_t)c->dim);
    if (!rc && !wr->p->headless && m->output.data != m->tok_embd.data) rc = put_mat(wr, "output.weight", &m->output);
    if (!rc && wr->p->add_tensors) rc = wr->p->add_tensors(wr->w, wr->p->keys_ctx);
    return rc;
}

/* ggml's general.file_type for a model of mostly type t. */
static uint32_t file_type(ifp_ggml_type_t t) {
    switch (t) {
    case IFP_GGML_F16: return 1;
    case IFP_GGML_Q8_0: return 7;
    case IFP_GGML_BF16: return 32;
    default: return 0;
    }
}

int ifp_model_write_gguf(const ifp_model_t *m, const char *path, const ifp_model_write_params_t *pp, ifp_err_t *err) {
    ifp_model_write_params_t p = pp ? *pp : ifp_model_write_default_params();
    const ifp_config_t *c = &m->cfg;
    if (m->layer_begin != 0 || m->layer_end != c->n_layers || !m->tok_embd.data ||
        (!p.headless && (!m->out_norm || !m->output.data)))
        return ifp_errf(err, IFP_EINVAL, "%s: only a whole model (every layer, embedding and head) is written as GGUF",
                        path);
    for (int l = 0; l < c->n_layers; l++)
        if (m->layers[l].d_ffn != c->d_ffn)
            return ifp_errf(err, IFP_EINVAL, "%s: layer %d is compacted (%d of %d FFN channels): not a whole model", path, l,
                            m->layers[l].d_ffn, c->d_ffn);
    if (p.wtype != IFP_WTYPE_ASIS && !ifp_wtype_ok((ifp_ggml_type_t)p.wtype))
        return ifp_errf(err, IFP_EINVAL, "%s: weight type %d: expected f32, f16, bf16 or q8_0", path, p.wtype);
    wr_t wr = {.w = ifp_gguf_writer_new(), .p = &p};
    if (!wr.w) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    ifp_ggml_type_t ft = out_type(&wr, m->ffn_type);
    if (ft == IFP_GGML_Q8_0 && (c->dim % 32 || (p.down_llama && c->d_ffn % 32))) {
        ifp_gguf_writer_destroy(&wr.w);
        return ifp_errf(err, IFP_EUNSUPPORTED, "%s: q8_0 needs rows of a multiple of 32 (embedding length %d%s%d)", path,
                        c->dim, p.down_llama ? ", feed-forward length " : "", p.down_llama ? c->d_ffn : 0);
    }
    int rc = IFP_OK;
    for (uint64_t i = 0; p.meta && i < ifp_gguf_n_kv(p.meta) && !rc; i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(p.meta, i);
        if (kv->key.len == 17 && !memcmp(kv->key.ptr, "general.file_type", 17)) continue;
        if (kv->key.len == 17 && !memcmp(kv->key.ptr, "general.alignment", 17)) continue;
        rc = ifp_gguf_writer_copy_kv(wr.w, kv);
    }
    if (!rc && !p.meta) rc = ifp_gguf_writer_set_str(wr.w, "general.architecture", "llama");
    if (!rc && p.add_keys) rc = p.add_keys(wr.w, p.keys_ctx);
    if (!rc && (p.name || !p.meta)) rc = ifp_gguf_writer_set_str(wr.w, "general.name", p.name ? p.name : "ifp");
    if (!rc) rc = ifp_gguf_writer_set_u32(wr.w, "general.file_type", file_type(ft));
    uint64_t total = ifp_model_write_bytes(m, &p);
    if (!rc) rc = put_model(&wr, m, total);
    if (rc) {
        for (int i = 0; i < wr.n_owned; i++) free(wr.owned[i]);
        free(wr.owned);
        ifp_gguf_writer_destroy(&wr.w);
        return ifp_errf(err, rc, "%s: %s preparing the tensors", path,
                        rc == IFP_ENOMEM ? "out of memory" : "unsupported shape or type");
    }
    rc = ifp_gguf_writer_write(wr.w, path, err);
    if (p.progress) p.progress(p.progress_ctx, total, total);
    for (int i = 0; i < wr.n_owned; i++) free(wr.owned[i]);
    free(wr.owned);
    ifp_gguf_writer_destroy(&wr.w);
    return rc;
}
