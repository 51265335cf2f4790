#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"

enum { ROW_DENSE = 0, ROW_MASKED = 1, ROW_BROKEN = 2 };

struct ifp_serve {
    ifp_serve_params_t p;
    int l0, l1;
    ifp_model_t *slice;       /* the held layers (lean: without FFN) */
    ifp_model_t *compact;     /* compacted to uni (NULL: the slice's full FFN) */
    const ifp_model_t *run;   /* compact or slice */
    const ifp_mask_t *uni;    /* NULL = all channels */
    ifp_state_t *st;
    /* per slot: one row mask; layer[l] points into sub for held layers */
    ifp_ffn_mask_t *slot_mask; /* [slots] */
    const float **slot_layer;  /* [slots × n_layers] */
    float *sub;                /* [slots × held × d_ffn] */
    uint8_t *slot_state;       /* [slots] ROW_* */
    /* the batch handed to the forward pass, [max_rows] */
    int32_t *tok, *pos, *slot;
    uint8_t *want;
    const ifp_ffn_mask_t **rmask;
};

ifp_serve_params_t ifp_serve_default_params(void) {
    ifp_serve_params_t p = {.layer_begin = 0, .layer_end = -1, .load_embd = 1, .load_head = 1,
                            .wtype = IFP_WTYPE_ASIS, .lean = 0, .slots = 1, .max_rows = 256, .ctx = 0};
    return p;
}

static int alloc_slots(ifp_serve_t *s) {
    const ifp_config_t *c = &s->slice->cfg;
    int L = c->n_layers, F = c->d_ffn, held = s->l1 - s->l0, S = s->p.slots, R = s->p.max_rows;
    s->slot_mask = calloc((size_t)S, sizeof *s->slot_mask);
    s->slot_layer = calloc((size_t)S * L, sizeof *s->slot_layer);
    s->sub = calloc((size_t)S * (held ? held : 1) * F, sizeof *s->sub);
    s->slot_state = malloc((size_t)S);
    s->tok = calloc((size_t)R, sizeof *s->tok);
    s->pos = calloc((size_t)R, sizeof *s->pos);
    s->slot = calloc((size_t)R, sizeof *s->slot);
    s->want = calloc((size_t)R, 1);
    s->rmask = calloc((size_t)R, sizeof *s->rmask);
    if (!s->slot_mask || !s->slot_layer || !s->sub || !s->slot_state || !s->tok || !s->pos || !s->slot || !s->want ||
        !s->rmask)
        return -1;
    memset(s->slot_state, ROW_BROKEN, (size_t)S); /* until set up */
    for (int k = 0; k < S; k++) {
        const float **layer = s->slot_layer + (size_t)k * L;
        for (int l = s->l0; l < s->l1; l++) layer[l] = s->sub + ((size_t)k * held + (l - s->l0)) * F;
        s->slot_mask[k].layer = layer;
    }
    return 0;
}

int ifp_serve_new(ifp_gguf_t **g, const ifp_serve_params_t *pp, ifp_serve_t **out, ifp_err_t *err) {
    ifp_serve_params_t p = pp ? *pp : ifp_serve_default_params();
    *out = NULL;
    if (p.slots < 1 || p.slots > 65536) return ifp_errf(err, IFP_ERANGE, "slot count %d out of range 1..65536", p.slots);
    if (p.max_rows < 1 || p.max_rows > 65536)
        return ifp_errf(err, IFP_ERANGE, "rows per call %d out of range 1..65536", p.max_rows);
    ifp_serve_t *s = calloc(1, sizeof *s);
    if (!s) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    s->p = p;
    ifp_model_params_t mp = ifp_model_default_params();
    mp.layer_begin = p.layer_begin, mp.layer_end = p.layer_end;
    mp.load_embd = p.load_embd, mp.load_head = p.load_head;
    mp.load_ffn = !p.lean;
    mp.wtype = p.wtype;
    int rc = ifp_model_from_gguf(g, &mp, &s->slice, err);
    if (rc) goto fail;
    s->l0 = s->slice->layer_begin;
    s->l1 = s->slice->layer_end;
    s->run = s->slice;
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = p.slots;
    sp.max_batch = p.max_rows;
    sp.ctx = p.ctx;
    sp.max_ffn = s->slice->cfg.d_ffn; /* any union fits */
    if ((rc = ifp_state_new(s->slice, &sp, &s->st, err))) goto fail;
    if (alloc_slots(s)) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory for %d slots", p.slots);
        goto fail;
    }
    if (p.lean && s->l1 > s->l0) { /* nothing to run until a union is set: keep the full width reachable */
        s->run = NULL;
    }
    *out = s;
    return IFP_OK;
fail:
    ifp_serve_destroy(&s);
    return rc;
}

void ifp_serve_destroy(ifp_serve_t **sp) {
    if (!sp || !*sp) return;
    ifp_serve_t *s = *sp;
    ifp_state_free(&s->st);
    ifp_model_free(&s->compact);
    ifp_model_free(&s->slice);
    free(s->slot_mask), free(s->slot_layer), free(s->sub), free(s->slot_state);
    free(s->tok), free(s->pos), free(s->slot), free(s->want), free(s->rmask);
    free(s);
    *sp = NULL;
}

int ifp_serve_set_union(ifp_serve_t *s, const ifp_mask_t *u, ifp_err_t *err) {
    const ifp_config_t *c = &s->slice->cfg;
    if (u && (u->n_layers != c->n_layers || u->d_ffn != c->d_ffn))
        return ifp_errf(err, IFP_EINVAL, "union of %d layers x %d channels for a model of %d x %d", u->n_layers,
                        u->d_ffn, c->n_layers, c->d_ffn);
    ifp_model_t *cm = NULL;
    int full_held = s->l1 == s->l0 || s->slice->layers[s->l0].d_ffn == c->d_ffn;
    int rc;
    if (u || !full_held) { /* a union, or every channel for a lean slice */
        if ((rc = ifp_compact_model(s->slice, u ? (const int32_t *const *)u->kept : NULL, u ? u->n_kept : NULL, &cm,
                                    err)))
            return rc;
    }
    if ((rc = ifp_state_set_model(s->st, cm ? cm : s->slice, err))) {
        ifp_model_free(&cm);
        return rc;
    }
    ifp_model_free(&s->compact);
    s->compact = cm;
    s->run = cm ? cm : s->slice;
    s->uni = u;
    memset(s->slot_state, ROW_BROKEN, (size_t)s->p.slots); /* masks over the old union are meaningless now */
    return IFP_OK;
}

const ifp_mask_t *ifp_serve_union(const ifp_serve_t *s) { return s->uni; }

static int slot_ok(const ifp_serve_t *s, int slot, ifp_err_t *err) {
    if (slot < 0 || slot >= s->p.slots)
        return ifp_errf(err, IFP_ERANGE, "slot %d out of range [0, %d)", slot, s->p.slots);
    return IFP_OK;
}

void ifp_serve_slot_reset(ifp_serve_t *s, int slot) {
    if (slot >= 0 && slot < s->p.slots) s->slot_state[slot] = ROW_BROKEN;
}

const float *ifp_serve_slot_submask(const ifp_serve_t *s, int slot, int l) {
    if (slot < 0 || slot >= s->p.slots || l < s->l0 || l >= s->l1 || s->slot_state[slot] != ROW_MASKED) return NULL;
    return s->slot_mask[slot].layer[l];
}

int ifp_serve_slot_dense(ifp_serve_t *s, int slot, ifp_err_t *err) {
    int rc = slot_ok(s, slot, err);
    if (rc) return rc;
    ifp_state_reset_slot(s->st, slot);
    s->slot_state[slot] = ROW_DENSE;
    return IFP_OK;
}

int ifp_serve_slot_bits(ifp_serve_t *s, int slot, const uint8_t *bits, size_t len, ifp_err_t *err) {
    int rc = slot_ok(s, slot, err);
    if (rc) return rc;
    const ifp_config_t *c = &s->slice->cfg;
    int F = c->d_ffn;
    ifp_state_reset_slot(s->st, slot);
    s->slot_state[slot] = ROW_BROKEN;
    char why[160];
    if (ifp_mask_bits_check(bits, len, c->n_layers, F, s->l0, s->l1, why, sizeof why))
        return ifp_errf(err, IFP_EFORMAT, "%s", why);
    /* the held layers only: bits -> 0/1 over the union (channels outside it
     * are dropped: coverage < 1) or over all channels */
    for (int l = s->l0; l < s->l1; l++) {
        float *sub = (float *)s->slot_mask[slot].layer[l];
        const uint8_t *b = ifp_mask_bits_layer(bits, l, F);
        if (s->uni) ifp_submask_from_bits(b, F, s->uni->kept[l], s->uni->n_kept[l], sub);
        else ifp_submask_from_bits(b, F, NULL, 0, sub);
    }
    s->slot_state[slot] = ROW_MASKED;
    return IFP_OK;
}

int ifp_serve_slot_mask(ifp_serve_t *s, int slot, const ifp_mask_t *m, ifp_err_t *err) {
    const ifp_config_t *c = &s->slice->cfg;
    if (m->n_layers != c->n_layers || m->d_ffn != c->d_ffn)
        return ifp_errf(err, IFP_EINVAL, "mask of %d layers x %d channels for a model of %d x %d", m->n_layers,
                        m->d_ffn, c->n_layers, c->d_ffn);
    size_t len = ifp_mask_bits_bytes(c->n_layers, c->d_ffn);
    uint8_t *bits = malloc(len);
    if (!bits) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    ifp_mask_pack(m, bits);
    int rc = ifp_serve_slot_bits(s, slot, bits, len, err);
    free(bits);
    return rc;
}

int ifp_serve_forward(ifp_serve_t *s, const ifp_serve_row_t *rows, int n, ifp_err_t *err) {
    if (n <= 0 || n > s->p.max_rows) return ifp_errf(err, IFP_EINVAL, "batch of %d rows (max %d)", n, s->p.max_rows);
    if (!s->run) return ifp_errf(err, IFP_EINVAL, "no FFN loaded yet: set a union first");
    for (int i = 0; i < n; i++) {
        int k = rows[i].slot;
        if (k < 0 || k >= s->p.slots) return ifp_errf(err, IFP_EINVAL, "row %d: slot %d out of range", i, k);
        if (s->slot_state[k] == ROW_BROKEN)
            return ifp_errf(err, IFP_EINVAL, "row %d: slot %d was not set up", i, k);
        s->tok[i] = rows[i].token;
        s->pos[i] = rows[i].pos;
        s->slot[i] = k;
        s->want[i] = rows[i].want != 0;
        s->rmask[i] = s->slot_state[k] == ROW_MASKED ? &s->slot_mask[k] : NULL;
    }
    ifp_batch_t b = {.n = n, .token = s->tok, .pos = s->pos, .slot = s->slot, .mask = s->rmask, .want_logits = s->want};
    int rc;
    if (s->p.load_embd && (rc = ifp_forward_embed(s->st, &b, err))) return rc;
    for (int l = s->l0; l < s->l1; l++) { /* one layer at a time, ticking in between */
        if ((rc = ifp_forward_layers(s->st, &b, l, l + 1, err))) return rc;
        if (s->p.tick) s->p.tick(s->p.tick_arg);
    }
    if (s->l1 == s->l0 && (rc = ifp_forward_layers(s->st, &b, s->l0, s->l1, err))) return rc; /* no layers: lengths */
    return s->p.load_head ? ifp_forward_head(s->st, &b, err) : 0;
}

const ifp_config_t *ifp_serve_config(const ifp_serve_t *s) { return &s->slice->cfg; }
const ifp_model_t *ifp_serve_model(const ifp_serve_t *s) { return s->slice; }
const ifp_model_t *ifp_serve_run_model(const ifp_serve_t *s) { return s->run; }
ifp_state_t *ifp_serve_state(ifp_serve_t *s) { return s->st; }
float *ifp_serve_hidden(ifp_serve_t *s) { return ifp_state_hidden(s->st); }
const float *ifp_serve_logits(const ifp_serve_t *s) { return ifp_state_logits(s->st); }
int ifp_serve_ctx(const ifp_serve_t *s) { return s->p.ctx > 0 ? s->p.ctx : s->slice->cfg.ctx; }

size_t ifp_serve_weight_bytes(const ifp_serve_t *s) {
    return ifp_model_resident_bytes(s->slice) + (s->compact ? ifp_model_resident_bytes(s->compact) : 0);
}

size_t ifp_serve_kv_bytes(const ifp_serve_t *s) {
    const ifp_config_t *c = &s->slice->cfg;
    size_t kv = (size_t)c->n_kv_heads * c->head_dim;
    return 2 * sizeof(float) * (size_t)(s->l1 - s->l0) * (size_t)s->p.slots * (size_t)ifp_serve_ctx(s) * kv;
}

void ifp_serve_describe_memory(const ifp_serve_t *s, char *buf, size_t len) {
    char mem[192];
    ifp_model_describe_memory(s->slice, mem, sizeof mem);
    int at = snprintf(buf, len, "weights %s", mem);
    if (s->compact && at >= 0 && (size_t)at < len)
        at += snprintf(buf + at, len - (size_t)at, " + compacted FFN %.1f MiB",
                       (double)ifp_model_resident_bytes(s->compact) / (1024.0 * 1024.0));
    if (at >= 0 && (size_t)at < len)
        snprintf(buf + at, len - (size_t)at, "; KV cache %.1f MiB", (double)ifp_serve_kv_bytes(s) / (1024.0 * 1024.0));
}
