#include "confcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gguf.h"
#include "keys.h"
#include "mask.h"
#include "model.h"
#include "predictor.h"
#include "tokenizer.h"
#include "http.h"
#include "zap.h"

/* What the model files said, for the group checks and the summary. */
typedef struct {
    ifp_config_t model;
    int vocab;
    int keep;       /* predictor's channels kept per layer, 0 = no predictor */
    int n_clusters; /* -1 = no cluster table */
    int group_keys, client_keys;
    int api_keys;   /* in the HTTP API keys file; -1 = HTTP off or no keys asked */
} facts_t;

/* rc with err's message prefixed by "FILE:LINE: " and the formatted what. */
__attribute__((format(printf, 5, 6))) static int at(const ifp_config_file_t *c, int line, int rc, ifp_err_t *err,
                                                    const char *fmt, ...) {
    char what[IFP_ERR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ifp_err_prefix(err, "%s:%d: %.200s", ifp_config_file_name(c), line, what);
    return rc;
}

static int check_model(const ifp_config_file_t *c, facts_t *f, ifp_err_t *err) {
    int line = ifp_config_line(c, "model", "model");
    ifp_gguf_t *g = NULL;
    ifp_tokenizer_t *tok = NULL;
    int rc = ifp_gguf_open(c->model, &g, err); /* the message names the file */
    if (rc) return at(c, line, rc, err, "[model] model");
    rc = ifp_config_from_gguf(g, &f->model, err);
    if (!rc) rc = ifp_tokenizer_from_gguf(g, &tok, err);
    if (!rc) f->vocab = ifp_tokenizer_n_vocab(tok);
    ifp_tokenizer_destroy(&tok);
    ifp_gguf_close(&g);
    if (rc) return at(c, line, rc, err, "[model] model %s", c->model);
    return IFP_OK;
}

static int check_predictor(const ifp_config_file_t *c, facts_t *f, ifp_err_t *err) {
    if (!c->predictor[0]) return IFP_OK;
    int line = ifp_config_line(c, "model", "predictor");
    ifp_predictor_t *p = NULL;
    int rc = ifp_predictor_load(c->predictor, &p, err);
    if (rc) return at(c, line, rc, err, "[model] predictor");
    rc = ifp_predictor_check_target(p, &f->model, err);
    f->keep = ifp_predictor_keep(p);
    ifp_predictor_destroy(&p);
    if (rc) return at(c, line, rc, err, "[model] predictor %s", c->predictor);
    return IFP_OK;
}

static int check_clusters(const ifp_config_file_t *c, facts_t *f, ifp_err_t *err) {
    f->n_clusters = -1;
    if (!c->clusters[0]) return IFP_OK;
    int line = ifp_config_line(c, "model", "clusters");
    ifp_cluster_table_t *t = NULL;
    int rc = ifp_cluster_table_load(c->clusters, &t, err);
    if (rc) return at(c, line, rc, err, "[model] clusters");
    int nl = t->n_layers, df = t->d_ffn;
    f->n_clusters = t->n_clusters;
    ifp_cluster_table_destroy(&t);
    if (nl != f->model.n_layers || df != f->model.d_ffn)
        return ifp_errf(err, IFP_EINVAL,
                        "%s:%d: [model] clusters %s: masks of %d layers x %d channels, [model] model has %d x %d",
                        ifp_config_file_name(c), line, c->clusters, nl, df, f->model.n_layers, f->model.d_ffn);
    return IFP_OK;
}

static int check_group(const ifp_config_file_t *c, const ifp_group_cfg_t *g, const facts_t *f, ifp_err_t *err) {
    const char *file = ifp_config_file_name(c);
    if (g->cluster != IFP_CLUSTER_DENSE && f->n_clusters < 0)
        return ifp_errf(err, IFP_EINVAL, "%s:%d: [group %s] cluster: %d needs [model] clusters", file,
                        ifp_group_line(g, "cluster"), g->name, g->cluster);
    if (g->cluster != IFP_CLUSTER_DENSE && g->cluster >= f->n_clusters)
        return ifp_errf(err, IFP_EINVAL, "%s:%d: [group %s] cluster: %d is not in [model] clusters (%d clusters: 0..%d)",
                        file, ifp_group_line(g, "cluster"), g->name, g->cluster, f->n_clusters, f->n_clusters - 1);
    int begin[IFP_CFG_MAX_STAGES], end[IFP_CFG_MAX_STAGES];
    int rc = ifp_config_split(g, f->model.n_layers, begin, end, err);
    if (rc) {
        int line = ifp_group_line(g, g->n_layers_given ? "layers" : "stages");
        ifp_err_prefix(err, "%s:%d", file, line ? line : ifp_group_line(g, NULL)); /* "[group G] key: ..." follows */
        return rc;
    }
    if (g->ctx > f->model.ctx)
        return ifp_errf(err, IFP_ERANGE, "%s:%d: [group %s] ctx: %d exceeds the model's context of %d positions", file,
                        ifp_group_line(g, "ctx"), g->name, g->ctx, f->model.ctx);
    return IFP_OK;
}

/* CURVE: the router's secret key and every key the router would admit. */
static int check_keys(const ifp_config_file_t *c, facts_t *f, ifp_err_t *err) {
    if (!c->curve) return IFP_OK;
    char dir[IFP_KEYS_PATH], base[IFP_KEYS_PATH], file[IFP_KEYS_PATH + 8];
    ifp_keys_dir(c->keys, dir, sizeof dir);
    ifp_key_base(dir, "router", NULL, base, sizeof base);
    snprintf(file, sizeof file, "%s.key", base);
    ifp_keypair_t kp;
    int rc = ifp_key_read_secret(file, &kp, err);
    memset(&kp, 0, sizeof kp);
    if (!rc) rc = rt_zap_check(c, dir, &f->group_keys, &f->client_keys, err);
    if (rc)
        return ifp_err_prefix(err, "[security] curve = on: the keys in %s (make them with `ifp keygen --config %s`)",
                              dir, ifp_config_file_name(c));
    return IFP_OK;
}

static void summarize(const ifp_config_file_t *c, const facts_t *f, char *out, size_t len) {
    if (!out || !len) return;
    int stages = 0, dense = 0;
    for (int i = 0; i < c->n_groups; i++) {
        stages += c->groups[i].stages;
        dense += c->groups[i].cluster == IFP_CLUSTER_DENSE;
    }
    const char *model = strrchr(c->model, '/');
    char pred[48] = "no predictor", clus[48] = "no clusters";
    if (f->keep) snprintf(pred, sizeof pred, "predictor keep %d", f->keep);
    if (f->n_clusters >= 0) snprintf(clus, sizeof clus, "%d clusters", f->n_clusters);
    char sec[80] = "CURVE OFF (plain ZeroMQ)";
    if (c->curve) snprintf(sec, sizeof sec, "CURVE on (%d group keys, %d client keys)", f->group_keys, f->client_keys);
    char http[400] = "HTTP off", keys[48] = "no API keys asked";
    if (f->api_keys >= 0) snprintf(keys, sizeof keys, "%d API key%s", f->api_keys, f->api_keys == 1 ? "" : "s");
    if (strcmp(c->http_listen, "off") != 0)
        snprintf(http, sizeof http, "HTTP%s on %s (%s)", c->http_tls_cert[0] ? "S" : "", c->http_listen, keys);
    snprintf(out, len,
             "%s: ok: %d group%s (%d dense), %d stage%s; model %s (%d layers x %d FFN channels, ctx %d), %s, %s; %s; %s",
             ifp_config_file_name(c), c->n_groups, c->n_groups == 1 ? "" : "s", dense, stages, stages == 1 ? "" : "s",
             model ? model + 1 : c->model, f->model.n_layers, f->model.d_ffn, f->model.ctx, pred, clus, sec, http);
}

int rt_config_check(const ifp_config_file_t *cfg, char *summary, size_t len, ifp_err_t *err) {
    facts_t f;
    memset(&f, 0, sizeof f);
    int rc = check_model(cfg, &f, err);
    if (!rc) rc = check_predictor(cfg, &f, err);
    if (!rc) rc = check_clusters(cfg, &f, err);
    for (int i = 0; !rc && i < cfg->n_groups; i++) rc = check_group(cfg, &cfg->groups[i], &f, err);
    if (!rc) rc = check_keys(cfg, &f, err);
    if (!rc) {
        char dir[IFP_KEYS_PATH];
        ifp_keys_dir(cfg->keys, dir, sizeof dir);
        rc = rt_http_check(cfg, dir, &f.api_keys, err);
    }
    if (rc) return rc;
    summarize(cfg, &f, summary, len);
    return IFP_OK;
}
