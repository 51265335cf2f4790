#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "wmat.h"

struct ifp_state {
    const ifp_model_t *m;
    ifp_state_params_t p;
    int q_dim, kv_dim, max_ffn;
    /* activations, [max_batch × width] */
    float *x;      /* residual stream (dim) */
    float *xb;     /* normed input of a sublayer (dim) */
    float *q;      /* queries, then attention output (q_dim) */
    float *k, *v;  /* new keys / values (kv_dim) */
    float *att;    /* attention output (q_dim) */
    float *hb;     /* gate (max_ffn) */
    float *hb2;    /* up (max_ffn) */
    float *scores; /* attention scores, [max_batch × ctx] */
    float *logits; /* [max_batch × vocab] */
    float *normed; /* [max_batch × dim] */
    /* KV cache: per held layer, per slot: [ctx × kv_dim] */
    float *kcache, *vcache;
    int *slot_len;     /* [n_slots] cached positions */
    int *batch_len;    /* [n_slots] scratch for validation */
    int *batch_last;   /* [n_slots] scratch: last position seen in the batch */
    float *rope_cos, *rope_sin; /* [ctx × rope_dim/2] */
};

ifp_state_params_t ifp_state_default_params(void) {
    ifp_state_params_t p = {.n_slots = 1, .max_batch = 512, .ctx = 0, .max_ffn = 0};
    return p;
}

static int model_max_ffn(const ifp_model_t *m) {
    int mx = 0;
    for (int l = m->layer_begin; l < m->layer_end; l++)
        if (m->layers[l].d_ffn > mx) mx = m->layers[l].d_ffn;
    return mx;
}

int ifp_state_new(const ifp_model_t *m, const ifp_state_params_t *pp, ifp_state_t **out, ifp_err_t *err) {
    ifp_state_params_t p = pp ? *pp : ifp_state_default_params();
    const ifp_config_t *c = &m->cfg;
    if (p.ctx <= 0) p.ctx = c->ctx;
    if (p.ctx > c->ctx) return ifp_errf(err, IFP_ERANGE, "context %d exceeds the model's %d", p.ctx, c->ctx);
    if (p.n_slots <= 0 || p.n_slots > 65536) return ifp_errf(err, IFP_ERANGE, "slot count %d out of range", p.n_slots);
    if (p.max_batch <= 0 || p.max_batch > 65536)
        return ifp_errf(err, IFP_ERANGE, "max batch %d out of range", p.max_batch);
    ifp_state_t *s = calloc(1, sizeof *s);
    if (!s) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    s->m = m;
    s->p = p;
    s->q_dim = c->n_heads * c->head_dim;
    s->kv_dim = c->n_kv_heads * c->head_dim;
    s->max_ffn = p.max_ffn > 0 ? p.max_ffn : model_max_ffn(m);
    if (s->max_ffn > c->d_ffn) s->max_ffn = c->d_ffn;
    size_t B = (size_t)p.max_batch, held = (size_t)(m->layer_end - m->layer_begin);
    size_t kv_elems = held * (size_t)p.n_slots * (size_t)p.ctx * (size_t)s->kv_dim;
    int ok = (s->x = calloc(B * c->dim, sizeof(float))) && (s->xb = calloc(B * c->dim, sizeof(float))) &&
             (s->q = calloc(B * s->q_dim, sizeof(float))) && (s->k = calloc(B * s->kv_dim, sizeof(float))) &&
             (s->v = calloc(B * s->kv_dim, sizeof(float))) && (s->att = calloc(B * s->q_dim, sizeof(float))) &&
             (s->hb = calloc(B * (size_t)(s->max_ffn ? s->max_ffn : 1), sizeof(float))) &&
             (s->hb2 = calloc(B * (size_t)(s->max_ffn ? s->max_ffn : 1), sizeof(float))) &&
             (s->scores = calloc(B * (size_t)p.ctx, sizeof(float))) &&
             (s->normed = calloc(B * c->dim, sizeof(float))) &&
             (s->slot_len = calloc((size_t)p.n_slots, sizeof(int))) &&
             (s->batch_len = calloc((size_t)p.n_slots, sizeof(int))) &&
             (s->batch_last = calloc((size_t)p.n_slots, sizeof(int))) &&
             (s->rope_cos = calloc((size_t)p.ctx * (c->rope_dim / 2), sizeof(float))) &&
             (s->rope_sin = calloc((size_t)p.ctx * (c->rope_dim / 2), sizeof(float)));
    if (ok && m->output.data) ok = (s->logits = calloc(B * (size_t)c->vocab, sizeof(float))) != NULL;
    if (ok && kv_elems) ok = (s->kcache = calloc(kv_elems, sizeof(float))) && (s->vcache = calloc(kv_elems, sizeof(float)));
    if (!ok) {
        ifp_state_free(&s);
        return ifp_errf(err, IFP_ENOMEM, "out of memory for the run state (%zu KV floats)", 2 * kv_elems);
    }
    /* RoPE on interleaved pairs (2i, 2i+1): angle = pos * theta^(-2i/rope_dim) */
    int half = c->rope_dim / 2;
    for (int pos = 0; pos < p.ctx; pos++)
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->rope_dim);
            float val = (float)pos * freq;
            s->rope_cos[(size_t)pos * half + i] = cosf(val);
            s->rope_sin[(size_t)pos * half + i] = sinf(val);
        }
    *out = s;
    return IFP_OK;
}

void ifp_state_free(ifp_state_t **sp) {
    if (!sp || !*sp) return;
    ifp_state_t *s = *sp;
    free(s->x); free(s->xb); free(s->q); free(s->k); free(s->v); free(s->att);
    free(s->hb); free(s->hb2); free(s->scores); free(s->logits); free(s->normed);
    free(s->kcache); free(s->vcache); free(s->slot_len); free(s->batch_len); free(s->batch_last);
    free(s->rope_cos); free(s->rope_sin);
    free(s);
    *sp = NULL;
}

int ifp_state_set_model(ifp_state_t *s, const ifp_model_t *m, ifp_err_t *err) {
    if (memcmp(&m->cfg, &s->m->cfg, sizeof m->cfg) != 0 || m->layer_begin != s->m->layer_begin ||
        m->layer_end != s->m->layer_end)
        return ifp_errf(err, IFP_EINVAL, "model does not match the state's config and layer range");
    if (model_max_ffn(m) > s->max_ffn)
        return ifp_errf(err, IFP_ERANGE, "model FFN width %d exceeds the state's %d", model_max_ffn(m), s->max_ffn);
    if (m->output.data && !s->logits) return ifp_errf(err, IFP_EINVAL, "state has no logits buffer");
    s->m = m;
    return IFP_OK;
}

void ifp_state_reset_slot(ifp_state_t *s, int slot) {
    if (slot >= 0 && slot < s->p.n_slots) s->slot_len[slot] = 0;
}

int ifp_state_slot_len(const ifp_state_t *s, int slot) {
    return (slot >= 0 && slot < s->p.n_slots) ? s->slot_len[slot] : 0;
}

float *ifp_state_hidden(ifp_state_t *s) { return s->x; }
const float *ifp_state_logits(const ifp_state_t *s) { return s->logits; }
const float *ifp_state_normed(const ifp_state_t *s) { return s->normed; }
const ifp_model_t *ifp_state_model(const ifp_state_t *s) { return s->m; }

int ifp_batch_validate(const ifp_state_t *s, const ifp_batch_t *b, int need_tokens, ifp_err_t *err) {
    if (!b || b->n <= 0) return ifp_errf(err, IFP_EINVAL, "empty batch");
    if (b->n > s->p.max_batch)
        return ifp_errf(err, IFP_EINVAL, "batch of %d rows exceeds max_batch %d", b->n, s->p.max_batch);
    if (!b->pos || !b->slot || (need_tokens && !b->token))
        return ifp_errf(err, IFP_EINVAL, "batch lacks %s", !b->pos ? "positions" : !b->slot ? "slots" : "tokens");
    memcpy(s->batch_len, s->slot_len, (size_t)s->p.n_slots * sizeof(int));
    for (int i = 0; i < s->p.n_slots; i++) s->batch_last[i] = -1;
    for (int i = 0; i < b->n; i++) {
        int sl = b->slot[i], pos = b->pos[i];
        if (sl < 0 || sl >= s->p.n_slots)
            return ifp_errf(err, IFP_EINVAL, "row %d: slot %d out of range [0, %d)", i, sl, s->p.n_slots);
        if (pos < 0 || pos >= s->p.ctx)
            return ifp_errf(err, IFP_EINVAL, "row %d: position %d out of range [0, %d)", i, pos, s->p.ctx);
        if (pos > s->batch_len[sl])
            return ifp_errf(err, IFP_EINVAL, "row %d: position %d leaves a gap (slot %d holds %d positions)", i, pos,
                            sl, s->batch_len[sl]);
        if (pos <= s->batch_last[sl])
            return ifp_errf(err, IFP_EINVAL, "row %d: position %d of slot %d does not follow position %d in this batch",
                            i, pos, sl, s->batch_last[sl]);
        s->batch_last[sl] = pos;
        s->batch_len[sl] = pos + 1; /* a position may be rewritten: everything after it is dropped */
        if (need_tokens && (b->token[i] < 0 || b->token[i] >= s->m->cfg.vocab))
            return ifp_errf(err, IFP_EINVAL, "row %d: token %d out of range [0, %d)", i, b->token[i],
                            s->m->cfg.vocab);
    }
    return IFP_OK;
}

int ifp_forward_embed(ifp_state_t *s, const ifp_batch_t *b, ifp_err_t *err) {
    const ifp_model_t *m = s->m;
    if (!m->tok_embd.data) return ifp_errf(err, IFP_EINVAL, "this model slice holds no embedding");
    int rc = ifp_batch_validate(s, b, 1, err);
    if (rc) return rc;
    int d = m->cfg.dim;
    for (int i = 0; i < b->n; i++)
        ifp_model_embed_row(m, b->token[i], s->x + (size_t)i * d);
    return IFP_OK;
}

static void rope(const ifp_state_t *s, float *vec, int n_heads, int pos) {
    const ifp_config_t *c = &s->m->cfg;
    int half = c->rope_dim / 2;
    const float *cs = s->rope_cos + (size_t)pos * half, *sn = s->rope_sin + (size_t)pos * half;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * c->head_dim;
        for (int i = 0; i < half; i++) {
            float v0 = v[2 * i], v1 = v[2 * i + 1];
            v[2 * i] = v0 * cs[i] - v1 * sn[i];
            v[2 * i + 1] = v0 * sn[i] + v1 * cs[i];
        }
    }
}

static float *kv_at(const ifp_state_t *s, float *cache, int layer, int slot) {
    size_t per = (size_t)s->p.ctx * s->kv_dim;
    return cache + ((size_t)(layer - s->m->layer_begin) * s->p.n_slots + slot) * per;
}

/* Causal attention for rows [r0, r0+L) which are positions p0.. p0+L-1 of one
 * slot, whose K/V are already in the cache.  Writes s->att rows. */
static void attend_run(ifp_state_t *s, int layer, int slot, int r0, int L, int p0) {
    const ifp_config_t *c = &s->m->cfg;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, T = p0 + L;
    const float *K = kv_at(s, s->kcache, layer, slot), *V = kv_at(s, s->vcache, layer, slot);
    float scale = 1.0f / sqrtf((float)hd);
    float *S = s->scores;
    if (L == 1) {
        /* decode: the query heads sharing a kv head form one [group × hd] matrix */
        for (int kh = 0; kh < c->n_kv_heads; kh++) {
            const float *Q = s->q + (size_t)r0 * s->q_dim + (size_t)kh * group * hd;
            ifp_sgemm(0, 1, group, T, hd, scale, Q, hd, K + (size_t)kh * hd, s->kv_dim, 0.0f, S, T);
            for (int g = 0; g < group; g++) ifp_softmax(S + (size_t)g * T, T);
            float *O = s->att + (size_t)r0 * s->q_dim + (size_t)kh * group * hd;
            ifp_sgemm(0, 0, group, hd, T, 1.0f, S, T, V + (size_t)kh * hd, s->kv_dim, 0.0f, O, hd);
        }
        return;
    }
    for (int h = 0; h < c->n_heads; h++) {
        int kh = h / group;
        const float *Q = s->q + (size_t)r0 * s->q_dim + (size_t)h * hd;
        ifp_sgemm(0, 1, L, T, hd, scale, Q, s->q_dim, K + (size_t)kh * hd, s->kv_dim, 0.0f, S, T);
        for (int r = 0; r < L; r++) {
            int valid = p0 + r + 1; /* row r sees positions [0, p0 + r] */
            float *row = S + (size_t)r * T;
            ifp_softmax(row, valid);
            for (int t = valid; t < T; t++) row[t] = 0.0f;
        }
        float *O = s->att + (size_t)r0 * s->q_dim + (size_t)h * hd;
        ifp_sgemm(0, 0, L, hd, T, 1.0f, S, T, V + (size_t)kh * hd, s->kv_dim, 0.0f, O, s->q_dim);
    }
}

static void attention(ifp_state_t *s, const ifp_batch_t *b, int layer) {
    const ifp_config_t *c = &s->m->cfg;
    const ifp_layer_t *w = &s->m->layers[layer];
    int n = b->n, d = c->dim;
    for (int i = 0; i < n; i++) ifp_rmsnorm(s->xb + (size_t)i * d, s->x + (size_t)i * d, w->attn_norm, d, c->norm_eps);
    ifp_wmat_xwt(s->q, s->q_dim, s->xb, d, &w->wq, n, 0);
    ifp_wmat_xwt(s->k, s->kv_dim, s->xb, d, &w->wk, n, 0);
    ifp_wmat_xwt(s->v, s->kv_dim, s->xb, d, &w->wv, n, 0);
    for (int i = 0; i < n; i++) {
        rope(s, s->q + (size_t)i * s->q_dim, c->n_heads, b->pos[i]);
        rope(s, s->k + (size_t)i * s->kv_dim, c->n_kv_heads, b->pos[i]);
        size_t off = (size_t)b->pos[i] * s->kv_dim;
        memcpy(kv_at(s, s->kcache, layer, b->slot[i]) + off, s->k + (size_t)i * s->kv_dim, s->kv_dim * sizeof(float));
        memcpy(kv_at(s, s->vcache, layer, b->slot[i]) + off, s->v + (size_t)i * s->kv_dim, s->kv_dim * sizeof(float));
    }
    /* runs of consecutive rows of one slot at consecutive positions share one
     * GEMM per head (prefill); single rows are decodes */
    for (int r0 = 0; r0 < n;) {
        int L = 1;
        while (r0 + L < n && b->slot[r0 + L] == b->slot[r0] && b->pos[r0 + L] == b->pos[r0] + L) L++;
        attend_run(s, layer, b->slot[r0], r0, L, b->pos[r0]);
        r0 += L;
    }
    /* x += Wo · att  (accumulate straight into the residual stream) */
    ifp_wmat_xwt(s->x, d, s->att, s->q_dim, &w->wo, n, 1);
}

static void ffn(ifp_state_t *s, const ifp_batch_t *b, int layer) {
    const ifp_config_t *c = &s->m->cfg;
    const ifp_layer_t *w = &s->m->layers[layer];
    int n = b->n, d = c->dim, F = w->d_ffn;
    for (int i = 0; i < n; i++) ifp_rmsnorm(s->xb + (size_t)i * d, s->x + (size_t)i * d, w->ffn_norm, d, c->norm_eps);
    ifp_wmat_xwt(s->hb, F, s->xb, d, &w->w_gate, n, 0);
    ifp_wmat_xwt(s->hb2, F, s->xb, d, &w->w_up, n, 0);
    for (int i = 0; i < n; i++) {
        float *g = s->hb + (size_t)i * F;
        const float *u = s->hb2 + (size_t)i * F;
        const float *mk = (b->mask && b->mask[i] && b->mask[i]->layer) ? b->mask[i]->layer[layer] : NULL;
        if (mk)
            for (int j = 0; j < F; j++) g[j] = ifp_silu(g[j]) * u[j] * mk[j];
        else
            for (int j = 0; j < F; j++) g[j] = ifp_silu(g[j]) * u[j];
    }
    /* x += Wdown · h  (Wdown held channel-major: x += h · Wdownᵀ-as-stored) */
    ifp_wmat_xw(s->x, d, s->hb, F, &w->w_down, n, 1);
}

int ifp_forward_layers(ifp_state_t *s, const ifp_batch_t *b, int l0, int l1, ifp_err_t *err) {
    const ifp_model_t *m = s->m;
    if (l0 < m->layer_begin || l1 > m->layer_end || l0 > l1)
        return ifp_errf(err, IFP_ERANGE, "layers [%d, %d) are not held (held: [%d, %d))", l0, l1, m->layer_begin,
                        m->layer_end);
    int rc = ifp_batch_validate(s, b, 0, err);
    if (rc) return rc;
    for (int l = l0; l < l1; l++)
        if (m->layers[l].d_ffn <= 0 || m->layers[l].d_ffn > s->max_ffn)
            return ifp_errf(err, IFP_EINVAL, "layer %d: FFN of %d channels (the state holds up to %d; 0 = not loaded)", l,
                            m->layers[l].d_ffn, s->max_ffn);
    for (int l = l0; l < l1; l++) {
        attention(s, b, l);
        ffn(s, b, l);
    }
    /* the slots now hold every position written by this batch */
    if (l1 == m->layer_end)
        for (int i = 0; i < b->n; i++) s->slot_len[b->slot[i]] = b->pos[i] + 1;
    return IFP_OK;
}

int ifp_forward_head(ifp_state_t *s, const ifp_batch_t *b, ifp_err_t *err) {
    const ifp_model_t *m = s->m;
    const ifp_config_t *c = &m->cfg;
    if (!m->output.data || !m->out_norm) return ifp_errf(err, IFP_EINVAL, "this model slice holds no output head");
    if (!b || b->n <= 0 || b->n > s->p.max_batch) return ifp_errf(err, IFP_EINVAL, "bad batch size");
    int rows = 0, d = c->dim;
    for (int i = 0; i < b->n; i++) {
        if (b->want_logits && !b->want_logits[i]) continue;
        ifp_rmsnorm(s->normed + (size_t)rows * d, s->x + (size_t)i * d, m->out_norm, d, c->norm_eps);
        rows++;
    }
    if (rows) ifp_wmat_xwt(s->logits, c->vocab, s->normed, d, &m->output, rows, 0);
    return rows;
}

int ifp_forward(ifp_state_t *s, const ifp_batch_t *b, ifp_err_t *err) {
    int rc = ifp_forward_embed(s, b, err);
    if (rc) return rc;
    if ((rc = ifp_forward_layers(s, b, s->m->layer_begin, s->m->layer_end, err))) return rc;
    return ifp_forward_head(s, b, err);
}
