#include "stagerun.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "compact.h"
#include "synth.h"

struct sr_stage {
    const ifp_model_t *m;
    ifp_state_t *st;
    int dim, rows;            /* rows: max_batch of the state */
    int prefill_len, prefix, n_dec, max_steps;
    float *h0;                /* [rows × dim] hidden rows fed to every run */
    int32_t *pos, *slot;      /* [rows] */
    const ifp_ffn_mask_t **rmask;     /* [rows] per row */
    const ifp_ffn_mask_t **slot_mask; /* [1 + n_dec] per slot */
};

int sr_synth(const char *shape, int layers, int ctx, uint64_t seed, ifp_model_t **out, ifp_err_t *err) {
    return sr_synth_typed(shape, layers, ctx, seed, IFP_WTYPE_ASIS, out, err);
}

int sr_synth_typed(const char *shape, int layers, int ctx, uint64_t seed, int wtype, ifp_model_t **out,
                   ifp_err_t *err) {
    ifp_config_t cfg;
    int rc = ifp_synth_config(shape, 0, 0, ctx, &cfg, err);
    if (rc) return rc;
    if (layers < 1 || layers > cfg.n_layers)
        return ifp_errf(err, IFP_ERANGE, "a stage holds 1..%d layers, not %d", cfg.n_layers, layers);
    ifp_model_params_t mp = ifp_model_default_params();
    mp.layer_begin = 0, mp.layer_end = layers, mp.load_embd = 0, mp.load_head = 0;
    mp.wtype = wtype;
    return ifp_model_synth(&cfg, seed, &mp, out, err);
}

static double mat_bytes(const ifp_wmat_t *w) { return w->data ? (double)w->rows * (double)w->row_bytes : 0; }

double sr_weight_bytes(const ifp_model_t *m) {
    double n = 0;
    for (int l = m->layer_begin; l < m->layer_end; l++) {
        const ifp_layer_t *L = &m->layers[l];
        n += mat_bytes(&L->wq) + mat_bytes(&L->wk) + mat_bytes(&L->wv) + mat_bytes(&L->wo);
        n += mat_bytes(&L->w_gate) + mat_bytes(&L->w_up) + mat_bytes(&L->w_down);
        n += 2.0 * m->cfg.dim * sizeof(float); /* attn_norm, ffn_norm */
    }
    return n;
}

/* Runs rows [0, n) from the hidden rows h0 (already filled in pos/slot). */
static int run_rows(sr_stage_t *s, int n, ifp_err_t *err) {
    memcpy(ifp_state_hidden(s->st), s->h0, (size_t)n * s->dim * sizeof(float));
    for (int i = 0; i < n; i++) s->rmask[i] = s->slot_mask[s->slot[i]];
    ifp_batch_t b = {.n = n, .pos = s->pos, .slot = s->slot, .mask = s->rmask};
    return ifp_forward_layers(s->st, &b, s->m->layer_begin, s->m->layer_end, err);
}

/* Every decode slot gets `prefix` positions, computed by a thin copy of the
 * model (one FFN channel per layer): as many slots per call as fit. */
static int fill_prefixes(sr_stage_t *s, ifp_err_t *err) {
    if (!s->prefix || !s->n_dec) return IFP_OK;
    const ifp_model_t *m = s->m;
    int L = m->cfg.n_layers, rc;
    int32_t zero = 0;
    const int32_t **kept = calloc((size_t)L, sizeof *kept);
    int *n_kept = calloc((size_t)L, sizeof *n_kept);
    ifp_model_t *thin = NULL;
    if (!kept || !n_kept) {
        free(kept), free(n_kept);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    for (int l = m->layer_begin; l < m->layer_end; l++) kept[l] = &zero, n_kept[l] = 1;
    rc = ifp_compact_model(m, (const int32_t *const *)kept, n_kept, &thin, err);
    if (!rc) rc = ifp_state_set_model(s->st, thin, err);
    int per_call = s->rows / s->prefix;
    for (int k = 1; k <= s->n_dec && !rc; k += per_call) {
        int n = 0;
        for (int j = k; j < k + per_call && j <= s->n_dec; j++) {
            ifp_state_reset_slot(s->st, j);
            for (int p = 0; p < s->prefix; p++, n++) s->pos[n] = p, s->slot[n] = j;
        }
        rc = run_rows(s, n, err);
    }
    int rc2 = ifp_state_set_model(s->st, m, err);
    ifp_model_free(&thin);
    free(kept), free(n_kept);
    return rc ? rc : rc2;
}

int sr_new(const ifp_model_t *m, int prefill_len, int prefix, int n_dec, int max_steps, sr_stage_t **out,
           ifp_err_t *err) {
    *out = NULL;
    int ctx = prefix + max_steps > prefill_len ? prefix + max_steps : prefill_len;
    if (ctx > m->cfg.ctx)
        return ifp_errf(err, IFP_ERANGE, "the runs need %d positions, the model's context is %d", ctx, m->cfg.ctx);
    if (prefix < 1 || n_dec < 0 || max_steps < 1 || prefill_len < 0)
        return ifp_errf(err, IFP_EINVAL, "bad stage run sizes");
    sr_stage_t *s = calloc(1, sizeof *s);
    if (!s) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    s->m = m;
    s->dim = m->cfg.dim;
    s->prefill_len = prefill_len, s->prefix = prefix, s->n_dec = n_dec, s->max_steps = max_steps;
    s->rows = prefill_len > prefix ? prefill_len : prefix;
    if (s->rows < n_dec) s->rows = n_dec;
    ifp_state_params_t sp = {.n_slots = 1 + n_dec, .max_batch = s->rows, .ctx = ctx};
    int rc = ifp_state_new(m, &sp, &s->st, err);
    if (rc) {
        sr_free(&s);
        return rc;
    }
    s->h0 = malloc((size_t)s->rows * s->dim * sizeof *s->h0);
    s->pos = calloc((size_t)s->rows, sizeof *s->pos);
    s->slot = calloc((size_t)s->rows, sizeof *s->slot);
    s->rmask = calloc((size_t)s->rows, sizeof *s->rmask);
    s->slot_mask = calloc((size_t)n_dec + 1, sizeof *s->slot_mask);
    if (!s->h0 || !s->pos || !s->slot || !s->rmask || !s->slot_mask) {
        sr_free(&s);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    uint64_t r = 0x5EED5;
    for (size_t i = 0; i < (size_t)s->rows * s->dim; i++) s->h0[i] = (float)(2 * bl_unit(&r) - 1);
    if ((rc = fill_prefixes(s, err))) {
        sr_free(&s);
        return ifp_err_prefix(err, "filling the decode prefixes");
    }
    *out = s;
    return IFP_OK;
}

void sr_free(sr_stage_t **sp) {
    if (!sp || !*sp) return;
    sr_stage_t *s = *sp;
    ifp_state_free(&s->st);
    free(s->h0), free(s->pos), free(s->slot), free(s->rmask), free(s->slot_mask);
    free(s);
    *sp = NULL;
}

int sr_use(sr_stage_t *s, const ifp_model_t *m, ifp_err_t *err) {
    int rc = ifp_state_set_model(s->st, m, err);
    if (rc) return rc;
    s->m = m;
    memset(s->slot_mask, 0, (size_t)(s->n_dec + 1) * sizeof *s->slot_mask);
    return IFP_OK;
}

void sr_set_mask(sr_stage_t *s, int slot, const ifp_ffn_mask_t *mask) {
    if (slot >= 0 && slot <= s->n_dec) s->slot_mask[slot] = mask;
}

int sr_prefill(sr_stage_t *s, double *secs, ifp_err_t *err) {
    if (!s->prefill_len) return ifp_errf(err, IFP_EINVAL, "this stage run has no prefill");
    for (int i = 0; i < s->prefill_len; i++) s->pos[i] = i, s->slot[i] = 0;
    ifp_state_reset_slot(s->st, 0);
    memcpy(ifp_state_hidden(s->st), s->h0, (size_t)s->prefill_len * s->dim * sizeof(float));
    for (int i = 0; i < s->prefill_len; i++) s->rmask[i] = s->slot_mask[0];
    ifp_batch_t b = {.n = s->prefill_len, .pos = s->pos, .slot = s->slot, .mask = s->rmask};
    double t0 = bl_now();
    int rc = ifp_forward_layers(s->st, &b, s->m->layer_begin, s->m->layer_end, err);
    *secs = bl_now() - t0;
    return rc;
}

int sr_decode(sr_stage_t *s, int B, int steps, double *secs, ifp_err_t *err) {
    if (B < 1 || B > s->n_dec || steps < 1 || steps > s->max_steps)
        return ifp_errf(err, IFP_ERANGE, "decode batch %d x %d steps: the state has %d slots, %d steps", B, steps,
                        s->n_dec, s->max_steps);
    double t0 = bl_now();
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < B; i++) s->pos[i] = s->prefix + step, s->slot[i] = 1 + i;
        int rc = run_rows(s, B, err); /* the upstream stage's rows: the same every step */
        if (rc) return rc;
    }
    *secs = bl_now() - t0;
    return IFP_OK;
}

int sr_measure_prefill(sr_stage_t *s, const char *label, int warmup, int runs, double *median_s, ifp_err_t *err) {
    double t[64], dt;
    int rc = IFP_OK;
    if (runs > 64) runs = 64;
    fprintf(stderr, "  %-22s prefill P=%d: %s", label, s->prefill_len, warmup ? "warm-up, runs:" : "runs:");
    for (int w = 0; w < warmup && !rc; w++) rc = sr_prefill(s, &dt, err);
    for (int r = 0; r < runs && !rc; r++)
        if (!(rc = sr_prefill(s, &t[r], err))) fprintf(stderr, " %.0fms", t[r] * 1e3);
    if (rc) {
        fputc('\n', stderr);
        return rc;
    }
    *median_s = bl_median(t, runs);
    fprintf(stderr, " -> %.1f tok/s\n", s->prefill_len / *median_s);
    return IFP_OK;
}

int sr_measure_decode(sr_stage_t *s, const char *label, int B, int steps, int warm_steps, int runs,
                      double *median_step_s, ifp_err_t *err) {
    double t[64], dt;
    int rc = IFP_OK;
    if (runs > 64) runs = 64;
    fprintf(stderr, "  %-22s decode B=%-2d %d steps: %s", label, B, steps, warm_steps ? "warm-up, runs:" : "runs:");
    if (warm_steps) rc = sr_decode(s, B, warm_steps < steps ? warm_steps : steps, &dt, err);
    for (int r = 0; r < runs && !rc; r++)
        if (!(rc = sr_decode(s, B, steps, &t[r], err))) fprintf(stderr, " %.0fms", t[r] * 1e3);
    if (rc) {
        fputc('\n', stderr);
        return rc;
    }
    *median_step_s = bl_median(t, runs) / steps;
    fprintf(stderr, " -> %.1f tok/s\n", B / *median_step_s);
    return IFP_OK;
}
