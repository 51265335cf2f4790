#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_DOUBLE, K_STR, K_PATH } kind_t;

/* One row per option: section ("router", "model" or "group"), key, kind,
 * offset into the router/model struct or the group struct, bounds. */
typedef struct {
    const char *section, *key;
    kind_t kind;
    size_t off, size;
    double min, max;
} opt_t;

#define R(key, kind, field, lo, hi) {"router", key, kind, offsetof(ifp_config_file_t, field), sizeof(((ifp_config_file_t *)0)->field), lo, hi}
#define M(key, field) {"model", key, K_PATH, offsetof(ifp_config_file_t, field), sizeof(((ifp_config_file_t *)0)->field), 0, 0}
#define G(key, field, lo, hi) {"group", key, K_INT, offsetof(ifp_group_cfg_t, field), sizeof(int), lo, hi}

static const opt_t OPTS[] = {
    R("frontend", K_STR, frontend, 0, 0),
    R("backend", K_STR, backend, 0, 0),
    R("heartbeat_ms", K_INT, heartbeat_ms, 10, 60000),
    R("liveness", K_INT, liveness, 1, 100),
    R("min_coverage", K_DOUBLE, min_coverage, 0, 1),
    R("balance_abs", K_INT, balance_abs, 0, INT_MAX),
    R("balance_rel", K_DOUBLE, balance_rel, 1, 1e6),
    R("queue_max", K_INT, queue_max, 0, 1000000),
    R("max_tokens", K_INT, max_tokens, 1, 1 << 20),
    R("max_tokens_limit", K_INT, max_tokens_limit, 1, 1 << 20),
    R("policy", K_STR, policy, 0, 0),
    R("predictor_threads", K_INT, predictor_threads, 0, 256),
    M("model", model),
    M("predictor", predictor),
    M("clusters", clusters),
    G("stages", stages, 1, IFP_CFG_MAX_STAGES),
    G("slots", slots, 1, 4096),
    G("ctx", ctx, 0, 1 << 20),
    G("max_batch", max_batch, 1, 65536),
    G("batch_timeout_ms", batch_timeout_ms, 100, 3600000),
};

void ifp_config_defaults(ifp_config_file_t *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->frontend, sizeof c->frontend, "tcp://127.0.0.1:5555");
    snprintf(c->backend, sizeof c->backend, "tcp://127.0.0.1:5556");
    c->heartbeat_ms = 250;
    c->liveness = 4;
    c->min_coverage = 1.0;
    c->balance_abs = 256;
    c->balance_rel = 1.5;
    c->queue_max = 256;
    c->max_tokens = 128;
    c->max_tokens_limit = 4096;
    snprintf(c->policy, sizeof c->policy, "affinity");
}

static void group_defaults(ifp_group_cfg_t *g, const char *name) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->stages = 1;
    g->cluster = IFP_CLUSTER_DENSE;
    g->slots = 8;
    g->max_batch = 64;
    g->batch_timeout_ms = 30000;
}

typedef struct {
    ifp_config_file_t *c;
    const char *base_dir;
    ifp_err_t *err;
    int rc;
    const char *file;
} parse_ctx_t;

static int fail(parse_ctx_t *p, int line, const char *fmt, const char *a, const char *b, const char *why) {
    char msg[IFP_ERR_MSG_LEN];
    snprintf(msg, sizeof msg, fmt, a, b, why);
    (void)line;
    p->rc = ifp_errf(p->err, IFP_EFORMAT, "%s: %s", p->file, msg);
    return 0; /* stop parsing */
}

static int set_value(parse_ctx_t *p, const opt_t *o, void *base, const char *val, int line, const char *section) {
    char *end;
    void *dst = (char *)base + o->off;
    switch (o->kind) {
    case K_INT: {
        errno = 0;
        long v = strtol(val, &end, 10);
        if (end == val || *end || errno || v < (long)o->min || v > (long)o->max) {
            char why[96];
            snprintf(why, sizeof why, "expected an integer in [%.0f, %.0f]", o->min, o->max);
            return fail(p, line, "[%s] %s: %s", section, o->key, why);
        }
        *(int *)dst = (int)v;
        return 1;
    }
    case K_DOUBLE: {
        errno = 0;
        double v = strtod(val, &end);
        if (end == val || *end || errno || !isfinite(v) || v < o->min || v > o->max) {
            char why[96];
            snprintf(why, sizeof why, "expected a number in [%g, %g]", o->min, o->max);
            return fail(p, line, "[%s] %s: %s", section, o->key, why);
        }
        *(double *)dst = v;
        return 1;
    }
    case K_STR:
    case K_PATH: {
        if (!*val) return fail(p, line, "[%s] %s: %s", section, o->key, "empty value");
        int n;
        if (o->kind == K_PATH && val[0] != '/' && p->base_dir && *p->base_dir)
            n = snprintf(dst, o->size, "%s/%s", p->base_dir, val);
        else
            n = snprintf(dst, o->size, "%s", val);
        if (n < 0 || (size_t)n >= o->size) return fail(p, line, "[%s] %s: %s", section, o->key, "value too long");
        return 1;
    }
    }
    return 0;
}

static int parse_layers(parse_ctx_t *p, ifp_group_cfg_t *g, const char *val, int line) {
    g->n_layers_given = 0;
    const char *s = val;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 1 || v > 100000 || g->n_layers_given >= IFP_CFG_MAX_STAGES)
            return fail(p, line, "[group %s] %s: %s", g->name, "layers",
                        "expected a comma-separated list of positive layer counts, one per stage");
        g->layers[g->n_layers_given++] = (int)v;
        s = end;
        while (*s == ' ') s++;
        if (*s == ',') s++;
        else if (*s) return fail(p, line, "[group %s] %s: %s", g->name, "layers", "unexpected character");
    }
    return 1;
}

static int on_kv(void *user, const char *section, const char *key, const char *val) {
    parse_ctx_t *p = user;
    int line = 0; /* Debian's inih reports no line to the handler */
    ifp_config_file_t *c = p->c;
    if (p->rc) return 0;
    ifp_group_cfg_t *g = NULL;
    const char *kind = section;
    if (strncmp(section, "group ", 6) == 0) {
        const char *name = section + 6;
        while (*name == ' ') name++;
        if (!*name || strlen(name) >= IFP_CFG_NAME)
            return fail(p, line, "[%s] %s%s", section, "", "group name empty or too long");
        for (int i = 0; i < c->n_groups; i++)
            if (strcmp(c->groups[i].name, name) == 0) g = &c->groups[i];
        if (!g) {
            if (c->n_groups >= IFP_CFG_MAX_GROUPS) return fail(p, line, "[%s] %s%s", section, "", "too many groups");
            g = &c->groups[c->n_groups++];
            group_defaults(g, name);
        }
        kind = "group";
        if (strcmp(key, "cluster") == 0) {
            char *end;
            long v;
            if (strcmp(val, "dense") == 0 || strcmp(val, "-1") == 0) {
                g->cluster = IFP_CLUSTER_DENSE;
                return 1;
            }
            errno = 0;
            v = strtol(val, &end, 10);
            if (end == val || *end || errno || v < 0 || v > 1000000)
                return fail(p, line, "[%s] %s: %s", section, key, "expected a cluster index or \"dense\"");
            g->cluster = (int)v;
            return 1;
        }
        if (strcmp(key, "layers") == 0) return parse_layers(p, g, val, line);
    } else if (strcmp(section, "router") && strcmp(section, "model")) {
        return fail(p, line, "unknown section [%s]%s%s", section, "", "");
    }
    for (size_t i = 0; i < sizeof OPTS / sizeof *OPTS; i++)
        if (strcmp(OPTS[i].section, kind) == 0 && strcmp(OPTS[i].key, key) == 0)
            return set_value(p, &OPTS[i], g ? (void *)g : (void *)c, val, line, section);
    return fail(p, line, "[%s] unknown key \"%s\"%s", section, key, "");
}

static int finish(ifp_config_file_t *c, const char *file, ifp_err_t *err) {
    static const char *const policies[] = {"affinity", "round-robin", "least-loaded", "dense-only"};
    int ok = 0;
    for (size_t i = 0; i < sizeof policies / sizeof *policies; i++) ok |= strcmp(c->policy, policies[i]) == 0;
    if (!ok)
        return ifp_errf(err, IFP_EFORMAT, "%s: [router] policy \"%s\": expected affinity, round-robin, least-loaded or dense-only",
                        file, c->policy);
    if (c->max_tokens > c->max_tokens_limit)
        return ifp_errf(err, IFP_EFORMAT, "%s: [router] max_tokens %d exceeds max_tokens_limit %d", file, c->max_tokens,
                        c->max_tokens_limit);
    if (!c->model[0]) return ifp_errf(err, IFP_EFORMAT, "%s: [model] model is required", file);
    for (int i = 0; i < c->n_groups; i++) {
        const ifp_group_cfg_t *g = &c->groups[i];
        if (g->n_layers_given && g->n_layers_given != g->stages)
            return ifp_errf(err, IFP_EFORMAT, "%s: [group %s] layers lists %d stages but stages = %d", file, g->name,
                            g->n_layers_given, g->stages);
        if (g->cluster != IFP_CLUSTER_DENSE && !c->clusters[0])
            return ifp_errf(err, IFP_EFORMAT, "%s: [group %s] cluster %d needs [model] clusters", file, g->name,
                            g->cluster);
    }
    return IFP_OK;
}

int ifp_config_parse(const char *text, const char *base_dir, ifp_config_file_t *c, ifp_err_t *err) {
    ifp_config_defaults(c);
    parse_ctx_t p = {.c = c, .base_dir = base_dir, .err = err, .rc = 0, .file = "config"};
    int r = ini_parse_string(text, on_kv, &p);
    if (p.rc) return p.rc;
    if (r) return ifp_errf(err, IFP_EFORMAT, "config:%d: syntax error", r);
    return finish(c, "config", err);
}

int ifp_config_load(const char *path, ifp_config_file_t *c, ifp_err_t *err) {
    char dir[IFP_CFG_PATH];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    ifp_config_defaults(c);
    snprintf(c->path, sizeof c->path, "%s", path);
    parse_ctx_t p = {.c = c, .base_dir = dir, .err = err, .rc = 0, .file = path};
    int r = ini_parse(path, on_kv, &p);
    if (p.rc) return p.rc;
    if (r == -1) return ifp_errf(err, IFP_EIO, "%s: cannot open", path);
    if (r) return ifp_errf(err, IFP_EFORMAT, "%s:%d: syntax error", path, r);
    return finish(c, path, err);
}

const ifp_group_cfg_t *ifp_config_group(const ifp_config_file_t *c, const char *name) {
    for (int i = 0; i < c->n_groups; i++)
        if (strcmp(c->groups[i].name, name) == 0) return &c->groups[i];
    return NULL;
}

int ifp_config_split(const ifp_group_cfg_t *g, int n_layers, int *begin, int *end, ifp_err_t *err) {
    if (g->stages > n_layers)
        return ifp_errf(err, IFP_ERANGE, "group %s: %d stages for a model of %d layers", g->name, g->stages, n_layers);
    int at = 0;
    for (int s = 0; s < g->stages; s++) {
        int n = g->n_layers_given ? g->layers[s] : n_layers / g->stages + (s < n_layers % g->stages);
        begin[s] = at;
        end[s] = at + n;
        at += n;
    }
    if (at != n_layers)
        return ifp_errf(err, IFP_EFORMAT, "group %s: layers per stage sum to %d, the model has %d", g->name, at,
                        n_layers);
    return IFP_OK;
}
