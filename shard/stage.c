#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"
#include "gguf.h"
#include "wmat.h"
#include "shlog.h"

int sh_stage_cluster_ok(const sh_stage_t *s, int cluster, ifp_err_t *err) {
    if (cluster == IFP_CLUSTER_DENSE) return IFP_OK;
    if (!s->table) return ifp_errf(err, IFP_EINVAL, "cluster %d: the config names no clusters file", cluster);
    if (cluster < 0 || cluster >= s->table->n_clusters)
        return ifp_errf(err, IFP_ERANGE, "cluster %d: the clusters file has clusters 0..%d", cluster,
                        s->table->n_clusters - 1);
    return IFP_OK;
}

int sh_stage_load_cluster(sh_stage_t *s, int cluster, ifp_err_t *err) {
    int rc = sh_stage_cluster_ok(s, cluster, err);
    if (rc || cluster == s->cluster) return rc;
    ifp_model_t *cm = NULL;
    const ifp_mask_t *u = NULL;
    if (cluster != IFP_CLUSTER_DENSE) {
        u = s->table->c[cluster].uni;
        if ((rc = ifp_compact_model(s->full, (const int32_t *const *)u->kept, u->n_kept, &cm, err)))
            return ifp_err_prefix(err, "compacting to cluster %d", cluster);
    } else if (s->l1 > s->l0 && s->full->layers[s->l0].d_ffn == 0) { /* a cluster group going dense: every channel */
        if ((rc = ifp_compact_model(s->full, NULL, NULL, &cm, err))) return ifp_err_prefix(err, "loading the full FFN");
    }
    if ((rc = ifp_state_set_model(s->st, cm ? cm : s->full, err))) {
        ifp_model_free(&cm);
        return rc;
    }
    ifp_model_free(&s->compact);
    s->compact = cm;
    s->run = cm ? cm : s->full;
    s->uni = u;
    s->cluster = cluster;
    memset(s->slot_masked, SH_ROW_BROKEN, (size_t)s->slots); /* masks over the old union are meaningless now */
    return IFP_OK;
}

static int alloc_buffers(sh_stage_t *s) {
    int L = s->cfg->n_layers, F = s->cfg->d_ffn, held = s->l1 - s->l0, R = s->max_rows;
    s->slot_mask = calloc((size_t)s->slots, sizeof *s->slot_mask);
    s->slot_layer = calloc((size_t)s->slots * L, sizeof *s->slot_layer);
    s->sub = calloc((size_t)s->slots * held * F, sizeof *s->sub);
    s->slot_masked = calloc((size_t)s->slots, 1);
    s->tok = calloc((size_t)R, sizeof *s->tok);
    s->pos = calloc((size_t)R, sizeof *s->pos);
    s->slot = calloc((size_t)R, sizeof *s->slot);
    s->want = calloc((size_t)R, 1);
    s->rmask = calloc((size_t)R, sizeof *s->rmask);
    if (!s->slot_mask || !s->slot_layer || !s->sub || !s->slot_masked || !s->tok || !s->pos ||
        !s->slot || !s->want || !s->rmask)
        return -1;
    memset(s->slot_masked, SH_ROW_BROKEN, (size_t)s->slots); /* until set up */
    for (int k = 0; k < s->slots; k++) {
        const float **layer = s->slot_layer + (size_t)k * L;
        for (int l = s->l0; l < s->l1; l++) layer[l] = s->sub + ((size_t)k * held + (l - s->l0)) * F;
        s->slot_mask[k].layer = layer;
    }
    return 0;
}

int sh_stage_new(const ifp_config_file_t *c, const ifp_group_cfg_t *g, int rank, sh_stage_t **out, ifp_err_t *err) {
    *out = NULL;
    sh_stage_t *s = calloc(1, sizeof *s);
    if (!s) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    s->rank = rank;
    s->n_stages = g->stages;
    s->first = rank == 0;
    s->last = rank == g->stages - 1;
    s->slots = g->slots;
    s->max_rows = g->max_batch + g->slots;
    s->cluster = IFP_CLUSTER_DENSE;
    int rc;
    /* the layer split needs n_layers: read the header, then this slice */
    ifp_gguf_t *gg = NULL;
    ifp_config_t mc;
    if ((rc = ifp_gguf_open(c->model, &gg, err))) goto fail; /* the message names the file */
    if ((rc = ifp_config_from_gguf(gg, &mc, err))) {
        ifp_gguf_close(&gg);
        ifp_err_prefix(err, "%s", c->model);
        goto fail;
    }
    int begin[IFP_CFG_MAX_STAGES], end[IFP_CFG_MAX_STAGES];
    if ((rc = ifp_config_split(g, mc.n_layers, begin, end, err))) {
        ifp_gguf_close(&gg);
        goto fail;
    }
    s->l0 = begin[rank];
    s->l1 = end[rank];
    ifp_model_params_t mp = ifp_model_default_params();
    mp.layer_begin = s->l0, mp.layer_end = s->l1, mp.load_embd = s->first, mp.load_head = s->last;
    /* a cluster group holds only its compacted union, gathered from the file
     * (it re-compacts from there too); a dense group holds the full FFN */
    mp.load_ffn = g->cluster == IFP_CLUSTER_DENSE;
    if (strcmp(c->weight_type, "as-stored") != 0) {
        ifp_ggml_type_t wt;
        if ((rc = ifp_wtype_parse(c->weight_type, &wt, err))) {
            ifp_gguf_close(&gg);
            goto fail;
        }
        mp.wtype = (int)wt;
    }
    rc = ifp_model_from_gguf(&gg, &mp, &s->full, err);
    ifp_gguf_close(&gg); /* NULL already when the model took it */
    if (rc) {
        ifp_err_prefix(err, "%s", c->model);
        goto fail;
    }
    s->cfg = &s->full->cfg;
    s->run = s->full;
    s->ctx = g->ctx > 0 ? g->ctx : s->cfg->ctx;
    if (c->clusters[0]) {
        rc = ifp_cluster_table_load(c->clusters, &s->table, err);
        if (!rc && (s->table->n_layers != s->cfg->n_layers || s->table->d_ffn != s->cfg->d_ffn))
            rc = ifp_errf(err, IFP_EFORMAT, "%s: clusters for %d layers x %d channels, the model has %d x %d",
                          c->clusters, s->table->n_layers, s->table->d_ffn, s->cfg->n_layers, s->cfg->d_ffn);
        if (rc) {
            if (g->cluster != IFP_CLUSTER_DENSE) goto fail;
            sh_log("warning: %s; this dense group will refuse LOAD_CLUSTER", err ? err->msg : c->clusters);
            ifp_cluster_table_destroy(&s->table); /* a dense group works without it */
            rc = IFP_OK;
        }
    }
    /* the state is sized on the full model: any union fits its scratch */
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = s->slots;
    sp.max_batch = s->max_rows;
    sp.ctx = s->ctx;
    sp.max_ffn = s->cfg->d_ffn;
    if ((rc = ifp_state_new(s->full, &sp, &s->st, err))) goto fail;
    if (alloc_buffers(s)) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory for %d slots", s->slots);
        goto fail;
    }
    if ((rc = sh_stage_load_cluster(s, g->cluster, err))) goto fail;
    *out = s;
    return IFP_OK;
fail:
    sh_stage_destroy(&s);
    return rc;
}

void sh_stage_destroy(sh_stage_t **sp) {
    if (!sp || !*sp) return;
    sh_stage_t *s = *sp;
    ifp_state_free(&s->st);
    ifp_model_free(&s->compact);
    ifp_model_free(&s->full);
    ifp_cluster_table_destroy(&s->table);
    free(s->slot_mask);
    free(s->slot_layer);
    free(s->sub);
    free(s->slot_masked);
    free(s->tok);
    free(s->pos);
    free(s->slot);
    free(s->want);
    free(s->rmask);
    free(s);
    *sp = NULL;
}

void sh_stage_describe(const sh_stage_t *s, char *buf, size_t len) {
    size_t at = 0;
#define PUT(...)                                                          \
    do {                                                                  \
        int k_ = snprintf(buf + at, at < len ? len - at : 0, __VA_ARGS__); \
        if (k_ > 0) at += (size_t)k_;                                      \
    } while (0)
    PUT("stage %d/%d, layers [%d,%d)", s->rank, s->n_stages, s->l0, s->l1);
    if (s->cluster == IFP_CLUSTER_DENSE) {
        PUT(", dense (%d channels)", s->cfg->d_ffn);
    } else {
        PUT(", cluster %d (|U|", s->cluster);
        for (int l = s->l0; l < s->l1; l++) PUT(" %d", s->uni->n_kept[l]);
        PUT(" of %d)", s->cfg->d_ffn);
    }
    PUT(", %d slots, micro-batch %d rows, ctx %d%s%s", s->slots, s->max_rows, s->ctx, s->first ? ", embed" : "",
        s->last ? ", head" : "");
    char mem[192];
    ifp_model_describe_memory(s->full, mem, sizeof mem);
    PUT("; weights %s", mem);
    if (s->compact) PUT(" + compacted FFN %.1f MiB", (double)ifp_model_resident_bytes(s->compact) / (1024.0 * 1024.0));
    PUT("; KV cache %.1f MiB", (double)sh_stage_kv_bytes(s) / (1024.0 * 1024.0));
#undef PUT
}

size_t sh_stage_kv_bytes(const sh_stage_t *s) {
    int kv = s->cfg->n_kv_heads * s->cfg->head_dim;
    return 2 * sizeof(float) * (size_t)(s->l1 - s->l0) * (size_t)s->slots * (size_t)s->ctx * (size_t)kv;
}

size_t sh_stage_weight_bytes(const sh_stage_t *s) {
    return ifp_model_resident_bytes(s->full) + (s->compact ? ifp_model_resident_bytes(s->compact) : 0);
}

int sh_stage_setup_slot(sh_stage_t *s, int slot, const sh_work_t *w, ifp_err_t *err) {
    if (slot < 0 || slot >= s->slots) return ifp_errf(err, IFP_ERANGE, "slot %d out of range", slot);
    ifp_state_reset_slot(s->st, slot);
    s->slot_masked[slot] = SH_ROW_BROKEN;
    if (w->mask_len == 0) {
        s->slot_masked[slot] = SH_ROW_DENSE; /* dense request: no row mask */
        return IFP_OK;
    }
    int F = s->cfg->d_ffn;
    char why[160];
    if (sh_mask_check(w->mask, w->mask_len, s->cfg->n_layers, F, s->l0, s->l1, why, sizeof why))
        return ifp_errf(err, IFP_EFORMAT, "%s", why);
    /* the held layers only, bits -> 0/1 over the union (channels outside U
     * are dropped: coverage < 1) or over all channels (dense weights) */
    for (int l = s->l0; l < s->l1; l++) {
        float *sub = (float *)s->slot_mask[slot].layer[l];
        const uint8_t *bits = sh_mask_layer(w->mask, l, F);
        if (s->uni) sh_submask_from_bits(bits, F, s->uni->kept[l], s->uni->n_kept[l], sub);
        else sh_submask_from_bits(bits, F, NULL, 0, sub);
    }
    s->slot_masked[slot] = SH_ROW_MASKED;
    return IFP_OK;
}

int sh_stage_forward(sh_stage_t *s, const sh_row_t *rows, int n, ifp_err_t *err) {
    if (n <= 0 || n > s->max_rows) return ifp_errf(err, IFP_EINVAL, "micro-batch of %d rows (max %d)", n, s->max_rows);
    for (int i = 0; i < n; i++) {
        int k = rows[i].slot;
        if (k < 0 || k >= s->slots) return ifp_errf(err, IFP_EINVAL, "row %d: slot %d out of range", i, k);
        if (s->slot_masked[k] == SH_ROW_BROKEN)
            return ifp_errf(err, IFP_EINVAL, "row %d: slot %d was not set up on this stage", i, k);
        s->tok[i] = rows[i].token;
        s->pos[i] = rows[i].pos;
        s->slot[i] = k;
        s->want[i] = rows[i].want != 0;
        s->rmask[i] = s->slot_masked[k] == SH_ROW_MASKED ? &s->slot_mask[k] : NULL;
    }
    ifp_batch_t b = {.n = n, .token = s->tok, .pos = s->pos, .slot = s->slot, .mask = s->rmask, .want_logits = s->want};
    int rc;
    if (s->first && (rc = ifp_forward_embed(s->st, &b, err))) return rc;
    for (int l = s->l0; l < s->l1; l++) { /* one layer at a time, ticking in between */
        if ((rc = ifp_forward_layers(s->st, &b, l, l + 1, err))) return rc;
        if (s->tick) s->tick(s->tick_arg);
    }
    return s->last ? ifp_forward_head(s->st, &b, err) : 0;
}
