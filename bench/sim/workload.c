/* workload.c — calibration prompts, their token counts and predicted masks
 * (see workload.h). */
#include "workload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "dataset.h"
#include "gguf.h"
#include "model.h"
#include "predictor.h"
#include "tokenizer.h"

uint64_t wl_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double wl_uniform(uint64_t *s) { return (double)(wl_rand(s) >> 11) * (1.0 / 9007199254740992.0); }

double wl_exp(uint64_t *s, double mean) { return -mean * log1p(-wl_uniform(s)); }

/* Token count of text (with BOS when bos), growing *ids as needed; -1 on error. */
static int count_tokens(ifp_tokenizer_t *tok, const char *text, int bos, int32_t **ids, int *cap) {
    for (;;) {
        int n = ifp_tokenizer_encode(tok, text, bos, *ids, *cap);
        if (n < 0 || n <= *cap) return n < 0 ? -1 : n;
        int32_t *grown = realloc(*ids, (size_t)n * sizeof **ids);
        if (!grown) return -1;
        *ids = grown, *cap = n;
    }
}

static void set_nearest(wl_workload_t *w) {
    for (int i = 0; i < w->n; i++) w->ex[i].nearest = w->table ? ifp_cluster_nearest(w->table, w->ex[i].mask) : -1;
}

int wl_load(const char *model, const char *predictor, const char *calib, const char *clusters, wl_workload_t **out,
            ifp_err_t *err) {
    *out = NULL;
    ifp_dataset_t *ds = NULL;
    ifp_gguf_t *g = NULL;
    ifp_tokenizer_t *tok = NULL;
    ifp_predictor_t *pred = NULL;
    int32_t *ids = NULL;
    int cap = 256, rc;
    ifp_config_t cfg;
    wl_workload_t *w = calloc(1, sizeof *w);
    if (!w) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    if ((rc = ifp_dataset_load(calib, &ds, err)) || (rc = ifp_gguf_open(model, &g, err)) ||
        (rc = ifp_config_from_gguf(g, &cfg, err)) || (rc = ifp_tokenizer_from_gguf(g, &tok, err)) ||
        (rc = ifp_predictor_load(predictor, &pred, err)) || (rc = ifp_predictor_check_target(pred, &cfg, err)))
        goto fail;
    ifp_gguf_close(&g);
    if (clusters && (rc = ifp_cluster_table_load(clusters, &w->table, err))) goto fail;
    w->n_layers = cfg.n_layers, w->d_ffn = cfg.d_ffn, w->ctx = cfg.ctx;
    w->keep = ifp_predictor_keep(pred);
    if (w->table && (w->table->n_layers != w->n_layers || w->table->d_ffn != w->d_ffn)) {
        rc = ifp_errf(err, IFP_EINVAL, "%s: cluster table shape %dx%d does not match the model's %dx%d", clusters,
                      w->table->n_layers, w->table->d_ffn, w->n_layers, w->d_ffn);
        goto fail;
    }
    w->n_domains = ds->n_domains;
    w->domains = calloc((size_t)ds->n_domains + 1, sizeof *w->domains);
    w->ex = calloc((size_t)ds->n + 1, sizeof *w->ex);
    ids = malloc((size_t)cap * sizeof *ids);
    if (!w->domains || !w->ex || !ids) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    for (int d = 0; d < ds->n_domains; d++)
        if (!(w->domains[d] = strdup(ds->domains[d]))) {
            rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
            goto fail;
        }
    for (int i = 0; i < ds->n; i++) {
        w->n = i + 1; /* wl_destroy frees what example i got on failure */
        const ifp_example_t *e = &ds->ex[i];
        wl_example_t *x = &w->ex[i];
        x->domain = ifp_dataset_domain_index(ds, e->domain);
        x->prompt_tokens = count_tokens(tok, e->prompt, 1, &ids, &cap);
        x->answer_tokens = e->response ? count_tokens(tok, e->response, 0, &ids, &cap) : 0;
        x->prompt = strdup(e->prompt);
        if (x->prompt_tokens < 0 || x->answer_tokens < 0 || !x->prompt) {
            rc = ifp_errf(err, IFP_ENOMEM, "%s: line %d: cannot tokenize", calib, i + 1);
            goto fail;
        }
        if ((rc = ifp_predictor_mask_text(pred, tok, e->prompt, 0, &x->mask, err))) {
            ifp_err_prefix(err, "%s: line %d", calib, i + 1);
            goto fail;
        }
    }
    set_nearest(w);
    free(ids);
    ifp_predictor_destroy(&pred);
    ifp_tokenizer_destroy(&tok);
    ifp_dataset_destroy(&ds);
    *out = w;
    return IFP_OK;
fail:
    free(ids);
    ifp_predictor_destroy(&pred);
    ifp_tokenizer_destroy(&tok);
    ifp_gguf_close(&g);
    ifp_dataset_destroy(&ds);
    wl_destroy(&w);
    return rc ? rc : IFP_EINVAL;
}

int wl_cluster(wl_workload_t *w, int k, uint64_t seed, int budget, ifp_err_t *err) {
    const ifp_mask_t **masks = malloc((size_t)w->n * sizeof *masks);
    if (!masks) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int i = 0; i < w->n; i++) masks[i] = w->ex[i].mask;
    ifp_kmedoids_params_t p = ifp_kmedoids_default_params();
    p.k = k;
    p.seed = seed;
    p.budget = budget;
    ifp_cluster_table_t *t = NULL;
    int rc = ifp_cluster_masks(masks, w->n, &p, &t, NULL, err);
    free(masks);
    if (rc) return rc;
    ifp_cluster_table_destroy(&w->table);
    w->table = t;
    set_nearest(w);
    return IFP_OK;
}

void wl_destroy(wl_workload_t **wp) {
    if (!wp || !*wp) return;
    wl_workload_t *w = *wp;
    for (int i = 0; i < w->n; i++) {
        ifp_mask_destroy(&w->ex[i].mask);
        free((char *)w->ex[i].prompt);
    }
    free(w->ex);
    for (int d = 0; d < w->n_domains; d++) free(w->domains[d]);
    free(w->domains);
    ifp_cluster_table_destroy(&w->table);
    free(w);
    *wp = NULL;
}
