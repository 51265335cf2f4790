/* calib.c — importance and feature passes, and writing the predictor GGUF
 * (see calib.h for the method). */
#include "calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "kernels.h"
#include "mask.h"

struct ifp_calib {
    const ifp_model_t *m;
    ifp_state_t *st;          /* 1 slot, ctx = model ctx */
    int max_batch;
    int32_t *pos, *slot;      /* [max_batch] */
    float *zeros;             /* (d_ffn) the "no FFN" mask row */
    const float **zero_layer; /* [n_layers] -> zeros */
    ifp_ffn_mask_t zero_mask;
    const ifp_ffn_mask_t **row_mask; /* [max_batch] -> &zero_mask */
    float *down_norm;         /* [n_layers × d_ffn] ||Wdown[:, i]|| */
    float *xb;                /* [max_batch × dim] FFN input */
    float *gate, *up;         /* [max_batch × d_ffn] */
    double *acc;              /* [n_layers × d_ffn] sum_t a_t^2 */
};

int ifp_calib_new(const ifp_model_t *m, int max_batch, ifp_calib_t **out, ifp_err_t *err) {
    const ifp_config_t *c = &m->cfg;
    if (m->layer_begin != 0 || m->layer_end != c->n_layers || !m->tok_embd.data || !m->out_norm)
        return ifp_errf(err, IFP_EINVAL, "calibration needs the whole model (embedding, every layer, final norm)");
    for (int l = 0; l < c->n_layers; l++)
        if (m->layers[l].d_ffn != c->d_ffn)
            return ifp_errf(err, IFP_EINVAL, "calibration needs the full FFN (layer %d holds %d of %d channels)", l,
                            m->layers[l].d_ffn, c->d_ffn);
    if (max_batch <= 0) max_batch = 256;
    if (max_batch > c->ctx) max_batch = c->ctx;
    ifp_calib_t *k = calloc(1, sizeof *k);
    if (!k) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    k->m = m;
    k->max_batch = max_batch;
    ifp_state_params_t sp = {.n_slots = 1, .max_batch = max_batch, .ctx = c->ctx};
    int rc = ifp_state_new(m, &sp, &k->st, err);
    if (rc) {
        free(k);
        return rc;
    }
    size_t B = (size_t)max_batch, L = (size_t)c->n_layers, F = (size_t)c->d_ffn;
    k->pos = malloc(B * sizeof *k->pos);
    k->slot = calloc(B, sizeof *k->slot);
    k->zeros = calloc(F, sizeof *k->zeros);
    k->zero_layer = malloc(L * sizeof *k->zero_layer);
    k->row_mask = malloc(B * sizeof *k->row_mask);
    k->down_norm = malloc(L * F * sizeof *k->down_norm);
    k->xb = malloc(B * (size_t)c->dim * sizeof *k->xb);
    k->gate = malloc(B * F * sizeof *k->gate);
    k->up = malloc(B * F * sizeof *k->up);
    k->acc = malloc(L * F * sizeof *k->acc);
    if (!k->pos || !k->slot || !k->zeros || !k->zero_layer || !k->row_mask || !k->down_norm || !k->xb || !k->gate ||
        !k->up || !k->acc) {
        ifp_calib_destroy(&k);
        return ifp_errf(err, IFP_ENOMEM, "out of memory for calibration scratch");
    }
    for (size_t l = 0; l < L; l++) k->zero_layer[l] = k->zeros;
    k->zero_mask.layer = k->zero_layer;
    for (size_t i = 0; i < B; i++) k->row_mask[i] = &k->zero_mask;
    /* ||Wdown[:, i]||: channel i is row i of the channel-major down (xb as scratch) */
    for (size_t l = 0; l < L; l++) {
        const ifp_wmat_t *wd = &m->layers[l].w_down;
        for (size_t i = 0; i < F; i++) {
            ifp_dequantize_row(wd->type, ifp_wmat_row(wd, (int)i), c->dim, k->xb);
            double s = 0.0;
            for (int r = 0; r < c->dim; r++) s += (double)k->xb[r] * k->xb[r];
            k->down_norm[l * F + i] = (float)sqrt(s);
        }
    }
    *out = k;
    return IFP_OK;
}

void ifp_calib_destroy(ifp_calib_t **pk) {
    if (!pk || !*pk) return;
    ifp_calib_t *k = *pk;
    ifp_state_free(&k->st);
    free(k->pos), free(k->slot), free(k->zeros), free(k->zero_layer), free(k->row_mask);
    free(k->down_norm), free(k->xb), free(k->gate), free(k->up), free(k->acc);
    free(k);
    *pk = NULL;
}

static int check_ids(const ifp_calib_t *k, const int32_t *ids, int n, ifp_err_t *err) {
    if (!ids || n < 1) return ifp_errf(err, IFP_EINVAL, "empty token sequence");
    if (n > k->m->cfg.ctx)
        return ifp_errf(err, IFP_ERANGE, "sequence of %d tokens exceeds the model context %d", n, k->m->cfg.ctx);
    return IFP_OK;
}

/* The FFN of layer l on the n hidden rows that hold x + attention(x):
 * accumulates a^2 into acc and adds Wdown a to the rows (the dense result). */
static void observed_ffn(ifp_calib_t *k, int l, int n) {
    const ifp_config_t *c = &k->m->cfg;
    const ifp_layer_t *w = &k->m->layers[l];
    int d = c->dim, F = c->d_ffn;
    float *x = ifp_state_hidden(k->st);
    for (int r = 0; r < n; r++) ifp_rmsnorm(k->xb + (size_t)r * d, x + (size_t)r * d, w->ffn_norm, d, c->norm_eps);
    ifp_wmat_xwt(k->gate, F, k->xb, d, &w->w_gate, n, 0);
    ifp_wmat_xwt(k->up, F, k->xb, d, &w->w_up, n, 0);
    double *acc = k->acc + (size_t)l * F;
    for (int r = 0; r < n; r++) {
        float *a = k->gate + (size_t)r * F;
        const float *u = k->up + (size_t)r * F;
        for (int i = 0; i < F; i++) {
            a[i] = ifp_silu(a[i]) * u[i]; /* a = silu(gate x) * (up x) */
            acc[i] += (double)a[i] * a[i];
        }
    }
    /* x += a · Wdown^T, as forward.c does */
    ifp_wmat_xw(x, d, k->gate, F, &w->w_down, n, 1);
}

int ifp_calib_importance(ifp_calib_t *k, const int32_t *ids, int n, float *imp, ifp_err_t *err) {
    int rc = check_ids(k, ids, n, err);
    if (rc) return rc;
    const ifp_config_t *c = &k->m->cfg;
    size_t LF = (size_t)c->n_layers * c->d_ffn;
    memset(k->acc, 0, LF * sizeof *k->acc);
    ifp_state_reset_slot(k->st, 0);
    for (int i0 = 0; i0 < n; i0 += k->max_batch) {
        int rows = n - i0 < k->max_batch ? n - i0 : k->max_batch;
        for (int r = 0; r < rows; r++) k->pos[r] = i0 + r;
        ifp_batch_t b = {.n = rows, .token = ids + i0, .pos = k->pos, .slot = k->slot, .mask = k->row_mask};
        if ((rc = ifp_forward_embed(k->st, &b, err))) return rc;
        for (int l = 0; l < c->n_layers; l++) {
            /* attention (+ a zeroed FFN): the rows become x + attn(x); the
             * KV cache of layer l gets these positions */
            if ((rc = ifp_forward_layers(k->st, &b, l, l + 1, err))) return rc;
            observed_ffn(k, l, rows);
        }
    }
    /* mean_t (|a_t[i]| ||Wdown[:, i]||)^2 */
    for (size_t j = 0; j < LF; j++) imp[j] = (float)(k->acc[j] / n) * k->down_norm[j] * k->down_norm[j];
    return IFP_OK;
}

int ifp_calib_feature(ifp_calib_t *k, const int32_t *ids, int n, float *feat, ifp_err_t *err) {
    int rc = check_ids(k, ids, n, err);
    if (rc) return rc;
    const ifp_config_t *c = &k->m->cfg;
    ifp_state_reset_slot(k->st, 0);
    int rows = 0;
    for (int i0 = 0; i0 < n; i0 += rows) {
        rows = n - i0 < k->max_batch ? n - i0 : k->max_batch;
        for (int r = 0; r < rows; r++) k->pos[r] = i0 + r;
        ifp_batch_t b = {.n = rows, .token = ids + i0, .pos = k->pos, .slot = k->slot};
        if ((rc = ifp_forward_embed(k->st, &b, err)) || (rc = ifp_forward_layers(k->st, &b, 0, c->n_layers, err)))
            return rc;
    }
    ifp_rmsnorm(feat, ifp_state_hidden(k->st) + (size_t)(rows - 1) * c->dim, k->m->out_norm, c->dim, c->norm_eps);
    return IFP_OK;
}

/* ---- output ---- */

static int is_ours(const char *p, uint64_t len) {
    static const char *const prefixes[] = {"ifp.head.", "ifp.predictor.", "ifp.calibrate."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t k = strlen(prefixes[i]);
        if (len >= k && memcmp(p, prefixes[i], k) == 0) return 1;
    }
    return 0;
}

int ifp_calib_save(const ifp_gguf_t *g, const ifp_head_t *h, const ifp_calib_meta_t *meta, const char *path,
                   ifp_err_t *err) {
    ifp_config_t bc;
    int rc = ifp_config_from_gguf(g, &bc, err);
    if (rc) return ifp_err_prefix(err, "backbone");
    if (bc.dim != h->feat_dim)
        return ifp_errf(err, IFP_EINVAL, "backbone dim %d differs from the head's feature size %d", bc.dim,
                        h->feat_dim);
    if ((int64_t)meta->n_layers * meta->d_ffn != h->out_dim || meta->keep < 1 || meta->keep > meta->d_ffn ||
        meta->max_prompt < 1 || meta->max_prompt > bc.ctx)
        return ifp_errf(err, IFP_EINVAL, "inconsistent predictor layout (%d x %d, keep %d, max prompt %d)",
                        meta->n_layers, meta->d_ffn, meta->keep, meta->max_prompt);
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    if (!w) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    rc = IFP_OK;
    for (uint64_t i = 0; !rc && i < ifp_gguf_n_kv(g); i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(g, i);
        if (!is_ours(kv->key.ptr, kv->key.len)) rc = ifp_gguf_writer_copy_kv(w, kv);
    }
    for (uint64_t i = 0; !rc && i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        if (is_ours(t->name.ptr, t->name.len)) continue;
        char name[256];
        if (t->name.len >= sizeof name || memchr(t->name.ptr, '\0', t->name.len)) {
            rc = IFP_EINVAL; /* the reader accepts names the writer cannot take */
            break;
        }
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        rc = ifp_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    uint64_t ne1[2] = {(uint64_t)h->feat_dim, (uint64_t)h->hidden};
    uint64_t nb1[1] = {(uint64_t)h->hidden};
    uint64_t ne2[2] = {(uint64_t)h->hidden, (uint64_t)h->out_dim};
    uint64_t nb2[1] = {(uint64_t)h->out_dim};
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc1.weight", IFP_GGML_F32, 2, ne1, h->w1);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc1.bias", IFP_GGML_F32, 1, nb1, h->b1);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc2.weight", IFP_GGML_F32, 2, ne2, h->w2);
    if (!rc) rc = ifp_gguf_writer_add_tensor(w, "ifp.head.fc2.bias", IFP_GGML_F32, 1, nb2, h->b2);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.target_block_count", (uint32_t)meta->n_layers);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.target_feed_forward_length", (uint32_t)meta->d_ffn);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.keep", (uint32_t)meta->keep);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.max_prompt_tokens", (uint32_t)meta->max_prompt);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.predictor.head_hidden", (uint32_t)h->hidden);
    if (!rc) rc = ifp_gguf_writer_set_str(w, "ifp.predictor.feature", "last_token_final_norm");
    if (!rc) rc = ifp_gguf_writer_set_str(w, "ifp.predictor.head_activation", "silu");
    if (!rc) rc = ifp_gguf_writer_set_str(w, "ifp.calibrate.importance", "mean_sq_act_x_sq_down_col_norm");
    if (!rc) rc = ifp_gguf_writer_set_str(w, "ifp.calibrate.target", "importance_over_layer_mean");
    if (!rc) rc = ifp_gguf_writer_set_f32(w, "ifp.calibrate.lambda", meta->lambda);
    if (!rc) rc = ifp_gguf_writer_set_u32(w, "ifp.calibrate.examples", (uint32_t)meta->n_examples);
    if (!rc && meta->model_name) rc = ifp_gguf_writer_set_str(w, "ifp.calibrate.model", meta->model_name);
    if (!rc && meta->gate) {
        int32_t g[4096];
        for (int l = 0; l < meta->n_layers && l < 4096; l++) g[l] = meta->gate[l] != 0;
        rc = ifp_gguf_writer_set_arr(w, "ifp.calibrate.layer_gate", IFP_GGUF_INT32, g,
                                     (uint64_t)(meta->n_layers < 4096 ? meta->n_layers : 4096));
    }
    if (rc) rc = ifp_errf(err, rc, "%s: cannot copy the backbone or add the head: %s", path, ifp_strerror(rc));
    if (!rc) rc = ifp_gguf_writer_write(w, path, err);
    ifp_gguf_writer_destroy(&w);
    return rc;
}

/* ---- layer gating ---- */

/* Response perplexity of items[0..n) when layer l (all layers: l < 0 and
 * on[] given) takes its mask from the example's scores and the others from
 * the static scores. */
static int gated_ppl(ifp_ppl_t *e, const ifp_config_t *c, const ifp_ppl_item_t *items, int n, const float *scores,
                     const float *static_scores, int keep, const int *on, ifp_mask_t **masks, ifp_ppl_item_t *it,
                     ifp_ppl_result_t *res, double *out, ifp_err_t *err) {
    size_t S = (size_t)c->n_layers * c->d_ffn;
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < c->n_layers; l++) {
            const float *src = on[l] ? scores + i * S : static_scores;
            ifp_mask_set_topk(masks[i], l, src + (size_t)l * c->d_ffn, keep);
        }
        it[i] = items[i];
        it[i].mask = masks[i];
    }
    int rc = ifp_ppl_score(e, it, n, res, err);
    if (rc) return rc;
    double nll = 0.0;
    long tok = 0;
    for (int i = 0; i < n; i++) nll += res[i].nll, tok += res[i].n_tokens;
    *out = tok ? exp(nll / (double)tok) : NAN;
    return IFP_OK;
}

int ifp_calib_gate(const ifp_model_t *m, const ifp_ppl_item_t *items, int n, const float *scores,
                   const float *static_scores, int keep, int *gate, double *ppl, ifp_err_t *err) {
    const ifp_config_t *c = &m->cfg;
    int L = c->n_layers, rc;
    if (n < 1 || keep < 1 || keep > c->d_ffn) return ifp_errf(err, IFP_EINVAL, "gating: %d examples, keep %d", n, keep);
    ifp_ppl_t *e = NULL;
    if ((rc = ifp_ppl_new(m, NULL, &e, err))) return rc;
    ifp_mask_t **masks = calloc((size_t)n, sizeof *masks);
    ifp_ppl_item_t *it = malloc((size_t)n * sizeof *it);
    ifp_ppl_result_t *res = malloc((size_t)n * sizeof *res);
    int *on = calloc((size_t)L, sizeof *on);
    rc = masks && it && res && on ? IFP_OK : IFP_ENOMEM;
    for (int i = 0; !rc && i < n; i++)
        if (!(masks[i] = ifp_mask_new(L, c->d_ffn))) rc = IFP_ENOMEM;
    if (rc) ifp_errf(err, rc, "out of memory for gating");
    /* ppl[0]: static everywhere; ppl[1 + l]: per-input in layer l only */
    if (!rc) rc = gated_ppl(e, c, items, n, scores, static_scores, keep, on, masks, it, res, &ppl[0], err);
    int n_on = 0, best = -1;
    for (int l = 0; !rc && l < L; l++) {
        on[l] = 1;
        rc = gated_ppl(e, c, items, n, scores, static_scores, keep, on, masks, it, res, &ppl[1 + l], err);
        on[l] = 0;
        gate[l] = ppl[1 + l] < ppl[0];
        n_on += gate[l];
        if (gate[l] && (best < 0 || ppl[1 + l] < ppl[1 + best])) best = l;
    }
    /* ppl[L + 1]: every helpful layer together; if that is worse than the
     * best one alone, keep only that one */
    ppl[L + 1] = n_on ? NAN : ppl[0];
    if (!rc && n_on > 1) {
        rc = gated_ppl(e, c, items, n, scores, static_scores, keep, gate, masks, it, res, &ppl[L + 1], err);
        if (!rc && ppl[L + 1] > ppl[1 + best]) {
            for (int l = 0; l < L; l++) gate[l] = l == best;
            ppl[L + 1] = ppl[1 + best];
        }
    } else if (!rc && n_on == 1) {
        ppl[L + 1] = ppl[1 + best];
    }
    for (int i = 0; masks && i < n; i++) ifp_mask_destroy(&masks[i]);
    free(masks), free(it), free(res), free(on);
    ifp_ppl_destroy(&e);
    return rc;
}

void ifp_head_gate(ifp_head_t *h, const int *gate, const float *static_scores, int n_layers, int d_ffn) {
    for (int l = 0; l < n_layers; l++) {
        if (gate[l]) continue;
        for (int j = l * d_ffn; j < (l + 1) * d_ffn; j++) {
            memset(h->w2 + (size_t)j * h->hidden, 0, (size_t)h->hidden * sizeof *h->w2);
            h->b2[j] = static_scores[j];
        }
    }
}
