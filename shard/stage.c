#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "shlog.h"
#include "wmat.h"

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
    const ifp_mask_t *u = cluster == IFP_CLUSTER_DENSE ? NULL : s->table->c[cluster].uni;
    if ((rc = ifp_serve_set_union(s->serve, u, err)))
        return cluster == IFP_CLUSTER_DENSE ? ifp_err_prefix(err, "loading the full FFN")
                                            : ifp_err_prefix(err, "compacting to cluster %d", cluster);
    s->uni = u;
    s->cluster = cluster;
    memset(s->slot_masked, SH_ROW_BROKEN, (size_t)s->slots); /* masks over the old union are meaningless now */
    return IFP_OK;
}

static void stage_tick(void *arg) {
    sh_stage_t *s = arg;
    if (s->tick) s->tick(s->tick_arg);
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
    ifp_serve_params_t sp = ifp_serve_default_params();
    sp.layer_begin = s->l0, sp.layer_end = s->l1, sp.load_embd = s->first, sp.load_head = s->last;
    /* a cluster group holds only its compacted union, gathered from the file
     * (it re-compacts from there too); a dense group holds the full FFN */
    sp.lean = g->cluster != IFP_CLUSTER_DENSE;
    sp.slots = s->slots;
    sp.max_rows = s->max_rows;
    sp.ctx = g->ctx;
    sp.tick = stage_tick;
    sp.tick_arg = s;
    if (strcmp(c->weight_type, "as-stored") != 0) {
        ifp_ggml_type_t wt;
        if ((rc = ifp_wtype_parse(c->weight_type, &wt, err))) {
            ifp_gguf_close(&gg);
            goto fail;
        }
        sp.wtype = (int)wt;
    }
    rc = ifp_serve_new(&gg, &sp, &s->serve, err);
    ifp_gguf_close(&gg); /* NULL already when the serve object took it */
    if (rc) {
        ifp_err_prefix(err, "%s", c->model);
        goto fail;
    }
    s->cfg = ifp_serve_config(s->serve);
    s->st = ifp_serve_state(s->serve);
    s->ctx = ifp_serve_ctx(s->serve);
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
    s->slot_masked = malloc((size_t)s->slots);
    s->rows = calloc((size_t)s->max_rows, sizeof *s->rows);
    if (!s->slot_masked || !s->rows) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory for %d slots", s->slots);
        goto fail;
    }
    memset(s->slot_masked, SH_ROW_BROKEN, (size_t)s->slots); /* until set up */
    if (g->cluster != IFP_CLUSTER_DENSE) s->cluster = -2; /* nothing loaded yet: load_cluster compacts */
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
    ifp_serve_destroy(&s->serve);
    ifp_cluster_table_destroy(&s->table);
    free(s->slot_masked);
    free(s->rows);
    free(s);
    *sp = NULL;
}

size_t sh_stage_weight_bytes(const sh_stage_t *s) { return ifp_serve_weight_bytes(s->serve); }
size_t sh_stage_kv_bytes(const sh_stage_t *s) { return ifp_serve_kv_bytes(s->serve); }

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
    char mem[320];
    ifp_serve_describe_memory(s->serve, mem, sizeof mem);
    PUT("; %s", mem);
#undef PUT
}

int sh_stage_setup_slot(sh_stage_t *s, int slot, const sh_work_t *w, ifp_err_t *err) {
    if (slot < 0 || slot >= s->slots) return ifp_errf(err, IFP_ERANGE, "slot %d out of range", slot);
    s->slot_masked[slot] = SH_ROW_BROKEN;
    int rc = w->mask_len == 0 ? ifp_serve_slot_dense(s->serve, slot, err) /* dense request: no row mask */
                              : ifp_serve_slot_bits(s->serve, slot, w->mask, w->mask_len, err);
    if (!rc) s->slot_masked[slot] = w->mask_len == 0 ? SH_ROW_DENSE : SH_ROW_MASKED;
    return rc;
}

int sh_stage_forward(sh_stage_t *s, const sh_row_t *rows, int n, ifp_err_t *err) {
    if (n <= 0 || n > s->max_rows) return ifp_errf(err, IFP_EINVAL, "micro-batch of %d rows (max %d)", n, s->max_rows);
    for (int i = 0; i < n; i++) {
        int k = rows[i].slot;
        if (k < 0 || k >= s->slots) return ifp_errf(err, IFP_EINVAL, "row %d: slot %d out of range", i, k);
        if (s->slot_masked[k] == SH_ROW_BROKEN)
            return ifp_errf(err, IFP_EINVAL, "row %d: slot %d was not set up on this stage", i, k);
        s->rows[i] = (ifp_serve_row_t){.token = rows[i].token, .pos = rows[i].pos, .slot = k, .want = rows[i].want != 0};
    }
    return ifp_serve_forward(s->serve, s->rows, n, err);
}
