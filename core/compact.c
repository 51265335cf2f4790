#include "compact.h"

#include <stdlib.h>
#include <string.h>

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

void ifp_compact_gather(const ifp_layer_t *src, int dim, const int32_t *kept, int n, float *gate, float *up,
                        float *down) {
    size_t row = (size_t)dim * sizeof(float);
    for (int j = 0; j < n; j++) {
        memcpy(gate + (size_t)j * dim, src->w_gate + (size_t)kept[j] * dim, row);
        memcpy(up + (size_t)j * dim, src->w_up + (size_t)kept[j] * dim, row);
    }
    int F = src->d_ffn;
    for (int r = 0; r < dim; r++) {
        const float *s = src->w_down + (size_t)r * F;
        float *d = down + (size_t)r * n;
        for (int j = 0; j < n; j++) d[j] = s[kept[j]];
    }
}

int ifp_compact_model(const ifp_model_t *src, const int32_t *const *kept, const int *n_kept, ifp_model_t **out,
                      ifp_err_t *err) {
    const ifp_config_t *c = &src->cfg;
    int rc;
    for (int l = src->layer_begin; l < src->layer_end; l++)
        if (kept && kept[l] && (rc = ifp_kept_validate(kept[l], n_kept[l], src->layers[l].d_ffn, l, err)))
            return rc;
    ifp_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers))) {
        free(m);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    m->cfg = *c;
    m->layer_begin = src->layer_begin;
    m->layer_end = src->layer_end;
    m->tok_embd = src->tok_embd;
    m->out_norm = src->out_norm;
    m->output = src->output;
    for (int l = src->layer_begin; l < src->layer_end; l++) {
        m->layers[l] = src->layers[l];
        if (!kept || !kept[l]) continue;
        int n = n_kept[l];
        size_t sz = (size_t)n * c->dim;
        float *buf = malloc(3 * sz * sizeof(float)); /* gate | up | down */
        if (!buf || ifp_model_own(m, buf)) {
            free(buf);
            ifp_model_free(&m);
            return ifp_errf(err, IFP_ENOMEM, "out of memory compacting layer %d", l);
        }
        ifp_compact_gather(&src->layers[l], c->dim, kept[l], n, buf, buf + sz, buf + 2 * sz);
        m->layers[l].w_gate = buf;
        m->layers[l].w_up = buf + sz;
        m->layers[l].w_down = buf + 2 * sz;
        m->layers[l].d_ffn = n;
    }
    *out = m;
    return IFP_OK;
}

void ifp_mask_from_kept(float *m, int d_ffn, const int32_t *kept, int n) {
    for (int j = 0; j < d_ffn; j++) m[j] = 0.0f;
    for (int j = 0; j < n; j++) m[kept[j]] = 1.0f;
}
