#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ini_reader.h"

#define CFG_MAX_FILE (1 << 20) /* bytes: a config is small; anything bigger is the wrong file */

typedef enum { S_ROUTER, S_MODEL, S_GROUP, S_NONE } sect_t;
static const char *const SECT_NAME[] = {"router", "model", "group"};

typedef enum {
    K_INT,      /* min..max */
    K_DOUBLE,   /* min..max, finite */
    K_ENDPOINT, /* a ZeroMQ endpoint */
    K_CHOICE,   /* one of choices */
    K_PATH,     /* a file; relative to the config file's folder */
    K_CLUSTER,  /* "dense" (or -1), or 0..max */
    K_LAYERS,   /* comma-separated positive counts (group only) */
} kind_t;

/* One row per option: section, key, kind, where it goes (offset into
 * ifp_config_file_t for [router]/[model], ifp_group_cfg_t for [group]),
 * bounds or choices, and the default as it would be written in the file
 * (applied by the same parser; "" = none). */
typedef struct {
    sect_t sect;
    const char *key;
    kind_t kind;
    size_t off, size;
    double min, max;
    const char *choices; /* K_CHOICE: "a|b|c" */
    const char *def;
} opt_t;

#define FIELD(T, f) offsetof(T, f), sizeof(((T *)0)->f)
#define R(key, kind, field, lo, hi, def) {S_ROUTER, key, kind, FIELD(ifp_config_file_t, field), lo, hi, NULL, def}
#define M(key, field) {S_MODEL, key, K_PATH, FIELD(ifp_config_file_t, field), 0, 0, NULL, ""}
#define G(key, kind, field, lo, hi, def) {S_GROUP, key, kind, FIELD(ifp_group_cfg_t, field), lo, hi, NULL, def}

static const opt_t OPTS[] = {
    R("frontend", K_ENDPOINT, frontend, 0, 0, "tcp://127.0.0.1:5555"),
    R("backend", K_ENDPOINT, backend, 0, 0, "tcp://127.0.0.1:5556"),
    R("heartbeat_ms", K_INT, heartbeat_ms, 10, 60000, "250"),
    R("liveness", K_INT, liveness, 1, 100, "4"),
    R("min_coverage", K_DOUBLE, min_coverage, 0, 1, "1.0"),
    R("balance_abs", K_INT, balance_abs, 0, INT_MAX, "256"),
    R("balance_rel", K_DOUBLE, balance_rel, 1, 1e6, "1.5"),
    R("queue_max", K_INT, queue_max, 0, 1000000, "256"),
    R("max_tokens", K_INT, max_tokens, 1, 1 << 20, "128"),
    R("max_tokens_limit", K_INT, max_tokens_limit, 1, 1 << 20, "4096"),
    {S_ROUTER, "policy", K_CHOICE, FIELD(ifp_config_file_t, policy), 0, 0,
     "affinity|round-robin|least-loaded|dense-only", "affinity"},
    R("predictor_threads", K_INT, predictor_threads, 0, 256, "0"),
    M("model", model),
    M("predictor", predictor),
    M("clusters", clusters),
    G("stages", K_INT, stages, 1, IFP_CFG_MAX_STAGES, "1"),
    G("layers", K_LAYERS, layers, 1, 100000, ""),
    G("cluster", K_CLUSTER, cluster, 0, 1000000, "dense"),
    G("slots", K_INT, slots, 1, 4096, "8"),
    G("ctx", K_INT, ctx, 0, 1 << 20, "0"),
    G("max_batch", K_INT, max_batch, 1, 65536, "64"),
    G("batch_timeout_ms", K_INT, batch_timeout_ms, 100, 3600000, "30000"),
};
#define N_OPTS ((int)(sizeof OPTS / sizeof *OPTS))
_Static_assert(sizeof OPTS / sizeof *OPTS <= IFP_CFG_KEYS, "raise IFP_CFG_KEYS");

/* ---------------------------------------------------------------- values */

static void range_text(const opt_t *o, char *buf, size_t len) {
    switch (o->kind) {
    case K_INT: snprintf(buf, len, "an integer in %.0f..%.0f", o->min, o->max); return;
    case K_DOUBLE: snprintf(buf, len, "a number in %g..%g", o->min, o->max); return;
    case K_ENDPOINT: snprintf(buf, len, "a ZeroMQ endpoint TRANSPORT://ADDRESS (tcp://HOST:PORT, ipc://PATH)"); return;
    case K_CHOICE: {
        size_t at = 0;
        const char *s = o->choices;
        while (*s && at + 1 < len) {
            const char *bar = strchr(s, '|');
            size_t n = bar ? (size_t)(bar - s) : strlen(s);
            const char *sep = at == 0 ? "" : bar ? ", " : " or ";
            int w = snprintf(buf + at, len - at, "%s%.*s", sep, (int)n, s);
            if (w < 0) break;
            at += (size_t)w < len - at ? (size_t)w : len - at - 1;
            s += n + (bar != NULL);
        }
        return;
    }
    case K_PATH: snprintf(buf, len, "a file (a relative path starts from the config file's folder)"); return;
    case K_CLUSTER: snprintf(buf, len, "dense, or a cluster index 0..(clusters-1) of [model] clusters"); return;
    case K_LAYERS:
        snprintf(buf, len, "one layer count per stage, comma-separated (e.g. 2,1,1), summing to the model's layers");
        return;
    }
}

static int parse_long(const char *val, double lo, double hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (end == val || *end || errno || v < (long)lo || v > (long)hi) return -1;
    *out = v;
    return 0;
}

static int parse_layers(const opt_t *o, ifp_group_cfg_t *g, const char *val, char *why, size_t len) {
    g->n_layers_given = 0;
    const char *s = val;
    for (;;) {
        char *end;
        while (*s == ' ' || *s == '\t') s++;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < (long)o->min || v > (long)o->max || *s == '+' || *s == '-') {
            snprintf(why, len, "\"%.40s\": expected one positive layer count per stage, comma-separated (e.g. 2,1,1)",
                     val);
            return -1;
        }
        if (g->n_layers_given == IFP_CFG_MAX_STAGES) {
            snprintf(why, len, "more than %d stages", IFP_CFG_MAX_STAGES);
            return -1;
        }
        g->layers[g->n_layers_given++] = (int)v;
        s = end;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) return 0;
        if (*s++ != ',') {
            snprintf(why, len, "\"%.40s\": unexpected '%c'; separate the counts with commas", val, s[-1]);
            return -1;
        }
    }
}

/* val -> the field of base (a config file or a group) that row o names.
 * Returns 0, or -1 with why = what is wrong (without the key). */
static int parse_value(const opt_t *o, void *base, const char *val, const char *base_dir, char *why, size_t len) {
    void *dst = (char *)base + o->off;
    char range[160];
    range_text(o, range, sizeof range);
    if (!*val) {
        snprintf(why, len, "empty value; expected %s", range);
        return -1;
    }
    switch (o->kind) {
    case K_INT: {
        long v;
        if (parse_long(val, o->min, o->max, &v)) break;
        *(int *)dst = (int)v;
        return 0;
    }
    case K_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(val, &end);
        if (end == val || *end || errno || !isfinite(v) || v < o->min || v > o->max) break;
        *(double *)dst = v;
        return 0;
    }
    case K_ENDPOINT: {
        const char *s = val;
        while (islower((unsigned char)*s)) s++;
        if (s == val || strncmp(s, "://", 3) || !s[3]) break;
        if (strlen(val) >= o->size) {
            snprintf(why, len, "longer than %zu characters", o->size - 1);
            return -1;
        }
        snprintf(dst, o->size, "%s", val);
        return 0;
    }
    case K_CHOICE: {
        size_t n = strlen(val);
        for (const char *s = o->choices; *s;) {
            const char *bar = strchr(s, '|');
            size_t m = bar ? (size_t)(bar - s) : strlen(s);
            if (m == n && strncmp(s, val, n) == 0) {
                snprintf(dst, o->size, "%s", val);
                return 0;
            }
            s += m + (bar != NULL);
        }
        break;
    }
    case K_PATH: {
        int n = val[0] != '/' && base_dir && *base_dir ? snprintf(dst, o->size, "%s/%s", base_dir, val)
                                                       : snprintf(dst, o->size, "%s", val);
        if (n < 0 || (size_t)n >= o->size) {
            *(char *)dst = '\0';
            snprintf(why, len, "the path is longer than %zu characters", o->size - 1);
            return -1;
        }
        return 0;
    }
    case K_CLUSTER: {
        long v;
        if (strcmp(val, "dense") == 0 || strcmp(val, "-1") == 0) {
            *(int *)dst = IFP_CLUSTER_DENSE;
            return 0;
        }
        if (parse_long(val, o->min, o->max, &v)) break;
        *(int *)dst = (int)v;
        return 0;
    }
    case K_LAYERS:
        return parse_layers(o, base, val, why, len);
    }
    snprintf(why, len, "\"%.60s\": expected %s", val, range);
    return -1;
}

/* ---------------------------------------------------------------- defaults */

static void apply_defaults(sect_t sect, void *base) {
    char why[256];
    for (int i = 0; i < N_OPTS; i++) {
        if (OPTS[i].sect != sect || !*OPTS[i].def) continue;
        int rc = parse_value(&OPTS[i], base, OPTS[i].def, NULL, why, sizeof why);
        assert(rc == 0 && "a default of the option table does not parse");
        (void)rc;
    }
}

void ifp_config_defaults(ifp_config_file_t *c) {
    memset(c, 0, sizeof *c);
    apply_defaults(S_ROUTER, c);
    apply_defaults(S_MODEL, c);
}

static void group_defaults(ifp_group_cfg_t *g, const char *name) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    apply_defaults(S_GROUP, g);
}

/* ---------------------------------------------------------------- sections */

typedef struct {
    ifp_config_file_t *c;
    const char *file, *base_dir;
    ifp_err_t *err;
    sect_t sect;              /* the current section, S_NONE before the first */
    ifp_group_cfg_t *g;       /* its group */
    char hdr[IFP_CFG_NAME + 16]; /* "[group NAME]", for messages */
    int sect_line, n_keys;
} parse_t;

__attribute__((format(printf, 3, 4))) static int failf(const parse_t *p, int line, const char *fmt, ...) {
    char msg[IFP_ERR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) return ifp_errf(p->err, IFP_EFORMAT, "%s:%d: %.*s", p->file, line, IFP_ERR_MSG_LEN - 64, msg);
    return ifp_errf(p->err, IFP_EFORMAT, "%s: %.*s", p->file, IFP_ERR_MSG_LEN - 64, msg);
}

/* The section being left must have had a key: an empty one is a mistake
 * (a half-written group, a header pasted twice), never silently dropped. */
static int close_section(parse_t *p) {
    if (p->sect == S_NONE || p->n_keys > 0) return IFP_OK;
    switch (p->sect) {
    case S_ROUTER:
        return failf(p, p->sect_line, "[router]: empty section; set a key in it or remove it (every [router] key has "
                                      "a default)");
    case S_MODEL: return failf(p, p->sect_line, "[model]: empty section; it needs `model = PATH.gguf`");
    default:
        return failf(p, p->sect_line,
                     "%s: empty section; a group needs at least one key (the minimal group is `stages = 1`)", p->hdr);
    }
}

/* A group name is a ZeroMQ identity: stage 0 connects as NAME, the last
 * stage as NAME.out; so no '.', and nothing a shell or a log would mangle. */
static int check_group_name(const parse_t *p, const char *name, int line) {
    size_t n = strlen(name);
    if (n == 0) return failf(p, line, "[group]: a group needs a name: [group NAME]");
    if (n >= IFP_CFG_NAME)
        return failf(p, line, "[group %.40s...]: the name has %zu characters; at most %d", name, n, IFP_CFG_NAME - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (isalnum(ch) || ch == '-' || ch == '_') continue;
        if (ch == '.')
            return failf(p, line,
                         "[group %s]: '.' is not allowed in a group name: \"G.out\" is the ZeroMQ identity of "
                         "group G's last stage; use letters, digits, '-' and '_'",
                         name);
        return failf(p, line, "[group %s]: '%c' is not allowed in a group name (a ZeroMQ identity); use 1..%d letters, "
                              "digits, '-' and '_'", name, isprint(ch) ? ch : '?', IFP_CFG_NAME - 1);
    }
    return IFP_OK;
}

static int open_group(parse_t *p, const char *name, int line) {
    ifp_config_file_t *c = p->c;
    int rc = check_group_name(p, name, line);
    if (rc) return rc;
    for (int i = 0; i < c->n_groups; i++)
        if (strcmp(c->groups[i].name, name) == 0)
            return failf(p, line, "[group %s]: duplicate section (first at line %d); give each group one section",
                         name, c->groups[i].line);
    if (c->n_groups == IFP_CFG_MAX_GROUPS)
        return failf(p, line, "[group %s]: more than %d groups", name, IFP_CFG_MAX_GROUPS);
    p->g = &c->groups[c->n_groups++];
    group_defaults(p->g, name);
    p->g->line = line;
    p->sect = S_GROUP;
    return IFP_OK;
}

static int on_section(void *user, const char *name, int line) {
    parse_t *p = user;
    ifp_config_file_t *c = p->c;
    int rc = close_section(p);
    if (rc) return rc;
    p->g = NULL;
    if (strcmp(name, "router") == 0 || strcmp(name, "model") == 0) {
        int *at = name[0] == 'r' ? &c->router_line : &c->model_line;
        if (*at) return failf(p, line, "[%s]: duplicate section (first at line %d); merge the two", name, *at);
        *at = line;
        p->sect = name[0] == 'r' ? S_ROUTER : S_MODEL;
    } else if (strncmp(name, "group", 5) == 0 && (name[5] == '\0' || isspace((unsigned char)name[5]))) {
        const char *g = name + 5;
        while (isspace((unsigned char)*g)) g++;
        if ((rc = open_group(p, g, line))) return rc;
    } else {
        int lower = strcasecmp(name, "router") == 0 || strcasecmp(name, "model") == 0 ||
                    (strncasecmp(name, "group", 5) == 0 && (name[5] == '\0' || isspace((unsigned char)name[5])));
        return failf(p, line, "[%.60s]: unknown section; expected [router], [model] or [group NAME]%s", name,
                     lower ? " (lower-case)" : "");
    }
    p->sect_line = line;
    p->n_keys = 0;
    snprintf(p->hdr, sizeof p->hdr, "[%s%s%s]", SECT_NAME[p->sect], p->g ? " " : "", p->g ? p->g->name : "");
    return IFP_OK;
}

static const opt_t *find_opt(sect_t sect, const char *key, int *row) {
    for (int i = 0; i < N_OPTS; i++)
        if ((sect == S_NONE || OPTS[i].sect == sect) && strcmp(OPTS[i].key, key) == 0) {
            if (row) *row = i;
            return &OPTS[i];
        }
    return NULL;
}

static int on_key(void *user, const char *key, const char *val, int line) {
    parse_t *p = user;
    if (p->sect == S_NONE)
        return failf(p, line, "%.60s: a key before the first section header; put it under [router], [model] or "
                              "[group NAME]", key);
    int row;
    const opt_t *o = find_opt(p->sect, key, &row);
    if (!o) {
        const opt_t *other = find_opt(S_NONE, key, NULL);
        if (other)
            return failf(p, line, "%s %s: unknown key here; it belongs in [%s%s]", p->hdr, key, SECT_NAME[other->sect],
                         other->sect == S_GROUP ? " NAME" : "");
        char keys[256];
        size_t at = 0;
        for (int i = 0; i < N_OPTS && at < sizeof keys; i++)
            if (OPTS[i].sect == p->sect)
                at += (size_t)snprintf(keys + at, sizeof keys - at, "%s%s", at ? ", " : "", OPTS[i].key);
        return failf(p, line, "%s %.60s: unknown key; the keys of [%s] are %s", p->hdr, key, SECT_NAME[p->sect], keys);
    }
    char why[256];
    void *base = p->sect == S_GROUP ? (void *)p->g : (void *)p->c;
    if (parse_value(o, base, val, p->base_dir, why, sizeof why)) return failf(p, line, "%s %s: %s", p->hdr, key, why);
    (p->sect == S_GROUP ? p->g->lines : p->c->lines)[row] = line;
    p->n_keys++;
    return IFP_OK;
}

/* ---------------------------------------------------------------- whole file */

static const char *line_or_default(int line, char *buf, size_t len) {
    if (line > 0) snprintf(buf, len, "line %d", line);
    else snprintf(buf, len, "the default");
    return buf;
}

/* What no single line shows: the last section's emptiness, required
 * sections and keys, and keys that must agree with each other. */
static int finish(parse_t *p, int n_lines) {
    ifp_config_file_t *c = p->c;
    char where[32];
    int rc = close_section(p);
    if (rc) return rc;
    c->n_lines = n_lines;
    int mt = ifp_config_line(c, "router", "max_tokens"), mtl = ifp_config_line(c, "router", "max_tokens_limit");
    if (c->max_tokens > c->max_tokens_limit) {
        if (mt >= mtl)
            return failf(p, mt, "[router] max_tokens: %d exceeds max_tokens_limit = %d (%s)", c->max_tokens,
                         c->max_tokens_limit, line_or_default(mtl, where, sizeof where));
        return failf(p, mtl, "[router] max_tokens_limit: %d is below max_tokens = %d (%s)", c->max_tokens_limit,
                     c->max_tokens, line_or_default(mt, where, sizeof where));
    }
    if (strcmp(c->frontend, c->backend) == 0) {
        int fl = ifp_config_line(c, "router", "frontend"), bl = ifp_config_line(c, "router", "backend");
        return failf(p, bl >= fl ? bl : fl, "[router] %s: the same endpoint as %s (%s); the router binds both",
                     bl >= fl ? "backend" : "frontend", bl >= fl ? "frontend" : "backend",
                     line_or_default(bl >= fl ? fl : bl, where, sizeof where));
    }
    if (!c->model_line)
        return failf(p, n_lines, "[model]: missing at the end of the file; add a [model] section with "
                                 "`model = PATH.gguf`");
    if (!c->model[0]) return failf(p, c->model_line, "[model] model: missing; [model] needs `model = PATH.gguf`");
    if (c->n_groups == 0)
        return failf(p, n_lines, "[group NAME]: none at the end of the file; a cluster needs at least one group, "
                                 "e.g. `[group g0]` with `stages = 1`");
    for (int i = 0; i < c->n_groups; i++) {
        const ifp_group_cfg_t *g = &c->groups[i];
        if (g->n_layers_given && g->n_layers_given != g->stages)
            return failf(p, ifp_group_line(g, "layers"), "[group %s] layers: %d counts for stages = %d (%s); give one "
                         "per stage", g->name, g->n_layers_given, g->stages,
                         line_or_default(ifp_group_line(g, "stages"), where, sizeof where));
        if (g->cluster != IFP_CLUSTER_DENSE && !c->clusters[0])
            return failf(p, ifp_group_line(g, "cluster"), "[group %s] cluster: %d needs a cluster table: [model] "
                         "clusters = PATH.gguf (or use cluster = dense)", g->name, g->cluster);
    }
    return IFP_OK;
}

static int parse_text(const char *text, size_t len, const char *file, const char *base_dir, ifp_config_file_t *c,
                      ifp_err_t *err) {
    parse_t p = {.c = c, .file = file, .base_dir = base_dir, .err = err, .sect = S_NONE};
    static const ifp_ini_handlers_t handlers = {.section = on_section, .key = on_key};
    int n_lines = 0;
    int rc = ifp_ini_read(file, text, len, &handlers, &p, &n_lines, err);
    if (!rc) rc = finish(&p, n_lines);
    if (rc) { /* nothing half-loaded stays behind */
        char path[sizeof c->path];
        memcpy(path, c->path, sizeof path);
        ifp_config_defaults(c);
        memcpy(c->path, path, sizeof path);
    }
    return rc;
}

int ifp_config_parse(const char *text, const char *base_dir, ifp_config_file_t *c, ifp_err_t *err) {
    ifp_config_defaults(c);
    return parse_text(text, strlen(text), "config", base_dir, c, err);
}

static int read_file(const char *path, char **out, size_t *len, ifp_err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ifp_errf(err, IFP_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ifp_errf(err, IFP_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > CFG_MAX_FILE) {
        fclose(f);
        return ifp_errf(err, IFP_EFORMAT, "%s: %lld bytes; a config is at most %d (the wrong file?)", path,
                        (long long)st.st_size, CFG_MAX_FILE);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return ifp_errf(err, IFP_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return IFP_OK;
}

int ifp_config_load(const char *path, ifp_config_file_t *c, ifp_err_t *err) {
    ifp_config_defaults(c);
    if (strlen(path) >= sizeof c->path) return ifp_errf(err, IFP_EINVAL, "config path longer than %zu characters",
                                                        sizeof c->path - 1);
    snprintf(c->path, sizeof c->path, "%s", path);
    char dir[IFP_CFG_PATH];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc) return rc;
    rc = parse_text(text, len, path, dir, c, err);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- queries */

const ifp_group_cfg_t *ifp_config_group(const ifp_config_file_t *c, const char *name) {
    for (int i = 0; i < c->n_groups; i++)
        if (strcmp(c->groups[i].name, name) == 0) return &c->groups[i];
    return NULL;
}

int ifp_config_split(const ifp_group_cfg_t *g, int n_layers, int *begin, int *end, ifp_err_t *err) {
    if (g->stages > n_layers)
        return ifp_errf(err, IFP_ERANGE, "[group %s] stages: %d stages for a model of %d layers", g->name, g->stages,
                        n_layers);
    int at = 0;
    for (int s = 0; s < g->stages; s++) {
        int n = g->n_layers_given ? g->layers[s] : n_layers / g->stages + (s < n_layers % g->stages);
        begin[s] = at;
        end[s] = at + n;
        at += n;
    }
    if (at != n_layers)
        return ifp_errf(err, IFP_EFORMAT, "[group %s] layers: the stages' layers sum to %d, the model has %d", g->name,
                        at, n_layers);
    return IFP_OK;
}

int ifp_config_line(const ifp_config_file_t *c, const char *section, const char *key) {
    int router = strcmp(section, "router") == 0, model = strcmp(section, "model") == 0;
    if (!router && !model) return 0;
    if (!key) return router ? c->router_line : c->model_line;
    int row;
    return find_opt(router ? S_ROUTER : S_MODEL, key, &row) ? c->lines[row] : 0;
}

int ifp_group_line(const ifp_group_cfg_t *g, const char *key) {
    if (!key) return g->line;
    int row;
    return find_opt(S_GROUP, key, &row) ? g->lines[row] : 0;
}

const char *ifp_config_file_name(const ifp_config_file_t *c) { return c->path[0] ? c->path : "config"; }

int ifp_config_key_info(int i, ifp_config_key_t *out) {
    if (i < 0 || i >= N_OPTS) return IFP_ENOTFOUND;
    out->section = SECT_NAME[OPTS[i].sect];
    out->key = OPTS[i].key;
    out->def = OPTS[i].def;
    range_text(&OPTS[i], out->range, sizeof out->range);
    return IFP_OK;
}
