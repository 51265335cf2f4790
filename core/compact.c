#include "compact.h"

#include <stdlib.h>
#include <string.h>

#include "wmat.h"

int ifp_kept_validate(const int32_t *kept, int n, int d_ffn, int layer, ifp_err_t *err) {
    if (n < 1 || n > d_ffn)
        return ifp_errf(err, IFP_ERANGE, "layer %d: %d kept channels, need 1..%d", layer, n, d_ffn);
    for (int j = 0; j < n; j++) {
        if (kept[j] < 0 || kept[j] >= d_ffn)
            return ifp_errf(err, IFP_ERANGE, "layer %d: channel %d out of range [0, %d)", layer, kept[j], d_ffn);
        if (j > 0 && kept[j] <= kept[j - 1])
            return ifp_errf(err, IFP_EINVAL, "layer %d: kept channels not strictly increasing (%d after %d)", layer,
                            kept[j], kept[j - 1]);
    }
    return IFP_OK;
}

size_t ifp_compact_bytes(ifp_ggml_type_t t, int dim, int n) { return 3 * (size_t)n * ifp_wtype_row_bytes(t, dim); }

/* One element of a llama-layout matrix [dim rows × d_ffn cols], widened. */
static inline float col_elem(const ifp_wmat_t *s, int o, int j) {
    const char *row = ifp_wmat_row(s, o);
    switch (s->type) {
    case IFP_GGML_F32: {
        float v;
        memcpy(&v, row + (size_t)j * 4, 4);
        return v;
    }
    case IFP_GGML_F16:
    case IFP_GGML_BF16: {
        uint16_t h;
        memcpy(&h, row + (size_t)j * 2, 2);
        return s->type == IFP_GGML_F16 ? ifp_f16_to_f32(h) : ifp_bf16_to_f32(h);
    }
    default: return ifp_wrow_get(s->type, row, j);
    }
}

#define GATHER_COLS 16 /* llama-layout channels read together (one pass over the rows per group) */

/* Rows kept[0..n) of s (channel = row) into dst rows of type t. */
static void gather_rows(const ifp_wmat_t *s, const int32_t *kept, int n, ifp_ggml_type_t t, char *dst, float *tmp) {
    size_t rb = ifp_wtype_row_bytes(t, s->cols);
    for (int j = 0; j < n; j++) {
        const void *row = ifp_wmat_row(s, kept[j]);
        if (s->type == t) {
            memcpy(dst + (size_t)j * rb, row, rb);
        } else {
            ifp_dequantize_row(s->type, row, s->cols, tmp);
            ifp_quantize_row(t, tmp, s->cols, dst + (size_t)j * rb);
        }
    }
}

/* Columns kept[0..n) of a llama-layout s [dim × d_ffn] into dst rows (channel-major) of type t. */
static void gather_cols(const ifp_wmat_t *s, const int32_t *kept, int n, ifp_ggml_type_t t, char *dst, float *tmp) {
    int dim = s->rows;
    size_t rb = ifp_wtype_row_bytes(t, dim);
    for (int j0 = 0; j0 < n; j0 += GATHER_COLS) {
        int nb = n - j0 < GATHER_COLS ? n - j0 : GATHER_COLS;
        for (int o = 0; o < dim; o++)
            for (int j = 0; j < nb; j++) tmp[(size_t)j * dim + o] = col_elem(s, o, kept[j0 + j]);
        for (int j = 0; j < nb; j++) ifp_quantize_row(t, tmp + (size_t)j * dim, dim, dst + (size_t)(j0 + j) * rb);
    }
}

void ifp_compact_gather(const ifp_ffn_src_t *src, int dim, const int32_t *kept, int n, ifp_ggml_type_t t,
                        void *gate, void *up, void *down) {
    float stack[GATHER_COLS * 256], *tmp = stack;
    if ((size_t)dim > sizeof stack / sizeof *stack / GATHER_COLS) {
        tmp = malloc((size_t)GATHER_COLS * dim * sizeof *tmp);
        if (!tmp) abort(); /* a few KiB per call: only at huge dims */
    }
    gather_rows(&src->gate, kept, n, t, gate, tmp);
    gather_rows(&src->up, kept, n, t, up, tmp);
    if (src->down_llama) gather_cols(&src->down, kept, n, t, down, tmp);
    else gather_rows(&src->down, kept, n, t, down, tmp);
    if (tmp != stack) free(tmp);
}

/* The layer's FFN as n channel rows at buf (ifp_compact_bytes). */
void ifp_compact_set_layer(ifp_layer_t *L, ifp_ggml_type_t t, int dim, int n, char *buf) {
    size_t sz = (size_t)n * ifp_wtype_row_bytes(t, dim);
    L->w_gate = ifp_wmat(buf, t, n, dim);
    L->w_up = ifp_wmat(buf + sz, t, n, dim);
    L->w_down = ifp_wmat(buf + 2 * sz, t, n, dim);
    L->d_ffn = n;
}

int ifp_compact_model(const ifp_model_t *src, const int32_t *const *kept, const int *n_kept, ifp_model_t **out,
                      ifp_err_t *err) {
    const ifp_config_t *c = &src->cfg;
    int rc;
    for (int l = src->layer_begin; l < src->layer_end; l++)
        if (kept && kept[l] && (rc = ifp_kept_validate(kept[l], n_kept[l], c->d_ffn, l, err))) return rc;
    ifp_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers)) ||
        !(m->ffn_src = calloc((size_t)c->n_layers, sizeof *m->ffn_src)) || !(m->arena = ifp_arena_new())) {
        ifp_model_free(&m);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    m->cfg = *c;
    m->layer_begin = src->layer_begin;
    m->layer_end = src->layer_end;
    m->tok_embd = src->tok_embd;
    m->out_norm = src->out_norm;
    m->output = src->output;
    m->ffn_type = src->ffn_type;
    int32_t *all = NULL;
    for (int l = src->layer_begin; l < src->layer_end; l++) {
        m->layers[l] = src->layers[l];
        m->ffn_src[l] = src->ffn_src[l];
        const int32_t *k = kept ? kept[l] : NULL;
        int n = k ? n_kept[l] : c->d_ffn;
        if (!k && src->layers[l].d_ffn == c->d_ffn) continue; /* whole and resident: shared */
        if (!k && !all && (all = malloc((size_t)c->d_ffn * sizeof *all)))
            for (int j = 0; j < c->d_ffn; j++) all[j] = j;
        if (!k) k = all;
        char *buf = k ? ifp_arena_alloc(m->arena, ifp_compact_bytes(m->ffn_type, c->dim, n)) : NULL;
        if (!buf) {
            free(all);
            ifp_model_free(&m);
            return ifp_errf(err, IFP_ENOMEM, "out of memory compacting layer %d", l);
        }
        size_t sz = (size_t)n * ifp_wtype_row_bytes(m->ffn_type, c->dim);
        ifp_compact_gather(&src->ffn_src[l], c->dim, k, n, m->ffn_type, buf, buf + sz, buf + 2 * sz);
        ifp_compact_set_layer(&m->layers[l], m->ffn_type, c->dim, n, buf);
    }
    free(all);
    *out = m;
    return IFP_OK;
}

void ifp_mask_from_kept(float *m, int d_ffn, const int32_t *kept, int n) {
    for (int j = 0; j < d_ffn; j++) m[j] = 0.0f;
    for (int j = 0; j < n; j++) m[kept[j]] = 1.0f;
}
