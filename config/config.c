/* config.c — the cluster config read from a file: sections (opened,
 * closed, counted), keys handed to the option table (config_table.c) with
 * the line each came from, the rules of the whole file, and the queries of
 * config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config_table.h"
#include "ini_reader.h"

#define CFG_MAX_FILE (1 << 20) /* bytes: a config is small; anything bigger is the wrong file */

/* ---------------------------------------------------------------- defaults */

void ifp_config_defaults(ifp_config_file_t *c) {
    memset(c, 0, sizeof *c);
    ifp_cfg_apply_defaults(IFP_CFG_S_ROUTER, c);
    ifp_cfg_apply_defaults(IFP_CFG_S_MODEL, c);
    ifp_cfg_apply_defaults(IFP_CFG_S_SECURITY, c);
    ifp_cfg_apply_defaults(IFP_CFG_S_DEPLOY, c);
    ifp_cfg_apply_defaults(IFP_CFG_S_HTTP, c);
}

/* ---------------------------------------------------------------- sections */

typedef struct {
    ifp_config_file_t *c;
    const char *file, *base_dir;
    ifp_err_t *err;
    ifp_cfg_sect_t sect;         /* the current section, IFP_CFG_S_NONE before the first */
    ifp_group_cfg_t *g;          /* its group ([group NAME]) */
    ifp_client_cfg_t *cl;        /* its client ([client NAME]) */
    ifp_router_cfg_t *r;         /* its router ([router NAME]) */
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

/* A group's placement, once its keys are final: hosts or hostfile (not
 * both), and one host or one per stage. */
static int check_placement(const parse_t *p, const ifp_group_cfg_t *g) {
    int hl = ifp_group_line(g, "hosts"), fl = ifp_group_line(g, "hostfile");
    if (hl && fl)
        return failf(p, hl > fl ? hl : fl, "%s %s: %s is set too (line %d); give one of them: hosts = HOST[,HOST...] "
                     "or hostfile = PATH", p->hdr, hl > fl ? "hosts" : "hostfile", hl > fl ? "hostfile" : "hosts",
                     hl > fl ? fl : hl);
    if (g->n_hosts != 1 && g->n_hosts != g->stages)
        return failf(p, hl, "%s hosts: %d hosts for %d stage%s: give one host, or one per stage", p->hdr, g->n_hosts,
                     g->stages, g->stages == 1 ? "" : "s");
    return IFP_OK;
}

/* The section being left must have had a key: an empty one is a mistake
 * (a half-written group, a header pasted twice), never silently dropped;
 * a client must have its key, a group a placement that fits its stages. */
static int close_section(parse_t *p) {
    if (p->sect == IFP_CFG_S_NONE) return IFP_OK;
    if (p->n_keys > 0) {
        if (p->sect == IFP_CFG_S_CLIENT && !ifp_client_line(p->cl, "key"))
            return failf(p, p->sect_line, "%s key: required (the client's CURVE public key: 40 characters of Z85, "
                                          "or a file holding one)", p->hdr);
        if (p->sect == IFP_CFG_S_GROUP) return check_placement(p, p->g);
        if (p->sect == IFP_CFG_S_ROUTERS && (!p->r->frontend[0] || !p->r->backend[0]))
            return failf(p, p->sect_line, "%s %s: required (each router of several binds its own frontend and "
                         "backend)", p->hdr, p->r->frontend[0] ? "backend" : "frontend");
        return IFP_OK;
    }
    switch (p->sect) {
    case IFP_CFG_S_ROUTER:
    case IFP_CFG_S_SECURITY:
    case IFP_CFG_S_DEPLOY:
    case IFP_CFG_S_HTTP:
        return failf(p, p->sect_line, "%s: empty section; set a key in it or remove it (every %s key has a default)",
                     p->hdr, p->hdr);
    case IFP_CFG_S_MODEL: return failf(p, p->sect_line, "[model]: empty section; it needs `model = PATH.gguf`");
    case IFP_CFG_S_ROUTERS:
        return failf(p, p->sect_line, "%s: empty section; a router needs `frontend =` and `backend =`", p->hdr);
    case IFP_CFG_S_CLIENT:
        return failf(p, p->sect_line, "%s: empty section; a client needs `key = ` its CURVE public key (40 characters "
                                      "of Z85) or a file holding one", p->hdr);
    default:
        return failf(p, p->sect_line,
                     "%s: empty section; a group needs at least one key (the minimal group is `stages = 1`)", p->hdr);
    }
}

/* "group NAME" / "client NAME": NAME (leading space skipped) when name is a
 * header of that word, else NULL.  strncmp_ is strncmp or strncasecmp. */
static const char *named(const char *name, const char *word, int (*strncmp_)(const char *, const char *, size_t)) {
    size_t n = strlen(word);
    if (strncmp_(name, word, n) || (name[n] && !isspace((unsigned char)name[n]))) return NULL;
    name += n;
    while (isspace((unsigned char)*name)) name++;
    return name;
}

/* Group and client names: 1..63 of [A-Za-z0-9_-].  A group name is a ZeroMQ
 * identity: stage 0 connects as NAME, the last stage as NAME.out; so no
 * '.', and nothing a shell or a log would mangle.  Client names follow the
 * same rule (they name key files and log lines). */
static int check_name(const parse_t *p, const char *word, const char *name, int line) {
    size_t n = strlen(name);
    int group = strcmp(word, "group") == 0; /* (a router's name is a log and --name word: the client rule) */
    if (n == 0) return failf(p, line, "[%s]: a %s needs a name: [%s NAME]", word, word, word);
    if (n >= IFP_CFG_NAME)
        return failf(p, line, "[%s %.40s...]: the name has %zu characters; at most %d", word, name, n,
                     IFP_CFG_NAME - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (isalnum(ch) || ch == '-' || ch == '_') continue;
        if (ch == '.' && group)
            return failf(p, line,
                         "[group %s]: '.' is not allowed in a group name: \"G.out\" is the ZeroMQ identity of "
                         "group G's last stage; use letters, digits, '-' and '_'",
                         name);
        return failf(p, line, "[%s %s]: '%c' is not allowed in a %s name%s; use 1..%d letters, digits, '-' and '_'",
                     word, name, isprint(ch) ? ch : '?', word, group ? " (a ZeroMQ identity)" : "", IFP_CFG_NAME - 1);
    }
    return IFP_OK;
}

static int open_group(parse_t *p, const char *name, int line) {
    ifp_config_file_t *c = p->c;
    int rc = check_name(p, "group", name, line);
    if (rc) return rc;
    const ifp_group_cfg_t *first = ifp_config_group(c, name);
    if (first)
        return failf(p, line, "[group %s]: duplicate section (first at line %d); give each group one section", name,
                     first->line);
    if (c->n_groups == IFP_CFG_MAX_GROUPS)
        return failf(p, line, "[group %s]: more than %d groups", name, IFP_CFG_MAX_GROUPS);
    ifp_group_cfg_t *g = &c->groups[c->n_groups++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    ifp_cfg_apply_defaults(IFP_CFG_S_GROUP, g);
    g->line = line;
    p->g = g;
    p->sect = IFP_CFG_S_GROUP;
    return IFP_OK;
}

static int open_client(parse_t *p, const char *name, int line) {
    ifp_config_file_t *c = p->c;
    int rc = check_name(p, "client", name, line);
    if (rc) return rc;
    const ifp_client_cfg_t *first = ifp_config_client(c, name);
    if (first)
        return failf(p, line, "[client %s]: duplicate section (first at line %d); give each client one section", name,
                     first->line);
    if (c->n_clients == IFP_CFG_MAX_CLIENTS)
        return failf(p, line, "[client %s]: more than %d clients", name, IFP_CFG_MAX_CLIENTS);
    ifp_client_cfg_t *cl = &c->clients[c->n_clients++];
    memset(cl, 0, sizeof *cl);
    snprintf(cl->name, sizeof cl->name, "%s", name);
    ifp_cfg_apply_defaults(IFP_CFG_S_CLIENT, cl);
    cl->line = line;
    p->cl = cl;
    p->sect = IFP_CFG_S_CLIENT;
    return IFP_OK;
}

static int open_router(parse_t *p, const char *name, int line) {
    ifp_config_file_t *c = p->c;
    int rc = check_name(p, "router", name, line);
    if (rc) return rc;
    for (int i = 0; i < c->n_routers; i++)
        if (strcmp(c->routers[i].name, name) == 0)
            return failf(p, line, "[router %s]: duplicate section (first at line %d); give each router one section",
                         name, c->routers[i].line);
    if (c->n_routers == IFP_CFG_MAX_ROUTERS)
        return failf(p, line, "[router %s]: more than %d routers", name, IFP_CFG_MAX_ROUTERS);
    ifp_router_cfg_t *r = &c->routers[c->n_routers++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    ifp_cfg_apply_defaults(IFP_CFG_S_ROUTERS, r);
    r->line = line;
    p->r = r;
    p->sect = IFP_CFG_S_ROUTERS;
    return IFP_OK;
}

/* The header line of a section that appears at most once, or NULL. */
static int *single_line(ifp_config_file_t *c, ifp_cfg_sect_t sect) {
    switch (sect) {
    case IFP_CFG_S_ROUTER: return &c->router_line;
    case IFP_CFG_S_MODEL: return &c->model_line;
    case IFP_CFG_S_SECURITY: return &c->security_line;
    case IFP_CFG_S_DEPLOY: return &c->deploy_line;
    case IFP_CFG_S_HTTP: return &c->http_line;
    default: return NULL;
    }
}

/* [router], [model], [security] and [deploy]: at most once each. */
static int open_single(parse_t *p, ifp_cfg_sect_t sect, int line) {
    ifp_config_file_t *c = p->c;
    int *at = single_line(c, sect);
    if (*at)
        return failf(p, line, "[%s]: duplicate section (first at line %d); merge the two", ifp_cfg_sect_name(sect),
                     *at);
    *at = line;
    p->sect = sect;
    return IFP_OK;
}

static int on_section(void *user, const char *name, int line) {
    parse_t *p = user;
    int rc = close_section(p);
    if (rc) return rc;
    p->g = NULL;
    p->cl = NULL;
    p->r = NULL;
    const char *n;
    if (strcmp(name, "router") == 0) rc = open_single(p, IFP_CFG_S_ROUTER, line);
    else if (strcmp(name, "model") == 0) rc = open_single(p, IFP_CFG_S_MODEL, line);
    else if (strcmp(name, "security") == 0) rc = open_single(p, IFP_CFG_S_SECURITY, line);
    else if (strcmp(name, "deploy") == 0) rc = open_single(p, IFP_CFG_S_DEPLOY, line);
    else if (strcmp(name, "http") == 0) rc = open_single(p, IFP_CFG_S_HTTP, line);
    else if ((n = named(name, "group", strncmp))) rc = open_group(p, n, line);
    else if ((n = named(name, "client", strncmp))) rc = open_client(p, n, line);
    else if ((n = named(name, "router", strncmp))) rc = open_router(p, n, line);
    else {
        int lower = strcasecmp(name, "router") == 0 || strcasecmp(name, "model") == 0 ||
                    strcasecmp(name, "security") == 0 || strcasecmp(name, "deploy") == 0 || strcasecmp(name, "http") == 0 ||
                    named(name, "group", strncasecmp) || named(name, "client", strncasecmp) ||
                    named(name, "router", strncasecmp);
        return failf(p, line, "[%.60s]: unknown section; expected [router], [router NAME], [model], [security], "
                              "[deploy], [http], [group NAME] or [client NAME]%s", name, lower ? " (lower-case)" : "");
    }
    if (rc) return rc;
    p->sect_line = line;
    p->n_keys = 0;
    const char *sub = p->g ? p->g->name : p->cl ? p->cl->name : p->r ? p->r->name : "";
    snprintf(p->hdr, sizeof p->hdr, "[%s%s%s]", ifp_cfg_sect_name(p->sect), *sub ? " " : "", sub);
    return IFP_OK;
}

static int on_key(void *user, const char *key, const char *val, int line) {
    parse_t *p = user;
    if (p->sect == IFP_CFG_S_NONE)
        return failf(p, line, "%.60s: a key before the first section header; put it under [router], [model], "
                              "[security], [deploy], [http], [group NAME] or [client NAME]", key);
    int row;
    const ifp_cfg_opt_t *o = ifp_cfg_find_opt(p->sect, key, &row);
    if (!o) {
        const ifp_cfg_opt_t *other = ifp_cfg_find_opt(IFP_CFG_S_NONE, key, NULL);
        char plural[64]; /* [group] host: a group's key is hosts */
        snprintf(plural, sizeof plural, "%.60ss", key);
        const ifp_cfg_opt_t *near = ifp_cfg_find_opt(p->sect, plural, NULL);
        if (other)
            return failf(p, line, "%s %s: unknown key here; it belongs in [%s%s]%s%s%s", p->hdr, key,
                         ifp_cfg_sect_name(other->sect),
                         other->sect == IFP_CFG_S_GROUP || other->sect == IFP_CFG_S_CLIENT ||
                                 other->sect == IFP_CFG_S_ROUTERS ? " NAME" : "",
                         near ? " (this section's is " : "", near ? near->key : "", near ? ")" : "");
        char keys[256];
        size_t at = 0;
        for (int i = 0; i < IFP_CFG_N_OPTS && at < sizeof keys; i++)
            if (IFP_CFG_OPTS[i].sect == p->sect)
                at += (size_t)snprintf(keys + at, sizeof keys - at, "%s%s", at ? ", " : "", IFP_CFG_OPTS[i].key);
        return failf(p, line, "%s %.60s: unknown key; the keys of [%s] are %s", p->hdr, key,
                     ifp_cfg_sect_name(p->sect), keys);
    }
    char why[384];
    void *base = p->g ? (void *)p->g : p->cl ? (void *)p->cl : p->r ? (void *)p->r : (void *)p->c;
    int *lines = p->g ? p->g->lines : p->cl ? p->cl->lines : p->r ? p->r->lines : p->c->lines;
    if (ifp_cfg_parse_value(o, base, val, p->base_dir, why, sizeof why))
        return failf(p, line, "%s %s: %s", p->hdr, key, why);
    lines[row] = line;
    p->n_keys++;
    return IFP_OK;
}

/* ---------------------------------------------------------------- whole file */

/* A tcp:// endpoint whose address is a wildcard (every interface): what a
 * router binds, never what a group can connect to. */
static int binds_wildcard(const char *ep) {
    if (strncmp(ep, "tcp://", 6)) return 0;
    const char *addr = ep + 6, *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    static const char *const any[] = {"*", "0.0.0.0", "[::]"};
    for (size_t i = 0; i < sizeof any / sizeof *any; i++)
        if (strlen(any[i]) == n && strncmp(addr, any[i], n) == 0) return 1;
    return 0;
}

static const char *line_or_default(int line, char *buf, size_t len) {
    if (line > 0) snprintf(buf, len, "line %d", line);
    else snprintf(buf, len, "the default");
    return buf;
}

/* The routers: [router] itself when no [router NAME] is given, else those;
 * each binds two different endpoints groups can reach, and two routers on
 * one host share no address. */
static int finish_routers(parse_t *p) {
    ifp_config_file_t *c = p->c;
    char where[32];
    c->router_index = -1;
    if (c->n_routers == 0) {
        ifp_router_cfg_t *r = &c->routers[c->n_routers++];
        memset(r, 0, sizeof *r);
        snprintf(r->frontend, sizeof r->frontend, "%s", c->frontend);
        snprintf(r->backend, sizeof r->backend, "%s", c->backend);
        snprintf(r->backend_connect, sizeof r->backend_connect, "%s", c->backend_connect);
        snprintf(r->host, sizeof r->host, "%s", c->host);
        snprintf(r->http_listen, sizeof r->http_listen, "%s", c->http_listen);
        r->line = c->router_line;
        static const char *const keys[] = {"frontend", "backend", "backend_connect", "host"};
        for (int k = 0; k < 4; k++) {
            int row;
            if (ifp_cfg_find_opt(IFP_CFG_S_ROUTERS, keys[k], &row)) r->lines[row] = ifp_config_line(c, "router", keys[k]);
        }
    } else {
        static const char *const keys[] = {"frontend", "backend", "backend_connect"};
        for (int k = 0; k < 3; k++)
            if (ifp_config_line(c, "router", keys[k]))
                return failf(p, ifp_config_line(c, "router", keys[k]), "[router] %s: the routers are [router NAME] "
                             "sections (first at line %d): set %s in each of them", keys[k], c->routers[0].line, keys[k]);
    }
    for (int i = 0; i < c->n_routers; i++) {
        ifp_router_cfg_t *r = &c->routers[i];
        char hdr[IFP_CFG_NAME + 16];
        snprintf(hdr, sizeof hdr, "[router%s%s]", r->name[0] ? " " : "", r->name);
        if (!r->host[0]) snprintf(r->host, sizeof r->host, "%s", c->host);
        if (!r->http_listen[0]) snprintf(r->http_listen, sizeof r->http_listen, "%s", c->http_listen);
        int fl = ifp_router_line(r, "frontend"), bl = ifp_router_line(r, "backend");
        if (strcmp(r->frontend, r->backend) == 0)
            return failf(p, bl >= fl ? bl : fl, "%s %s: the same endpoint as %s (%s); the router binds both", hdr,
                         bl >= fl ? "backend" : "frontend", bl >= fl ? "frontend" : "backend",
                         line_or_default(bl >= fl ? fl : bl, where, sizeof where));
        if (r->backend_connect[0] && binds_wildcard(r->backend_connect))
            return failf(p, ifp_router_line(r, "backend_connect"), "%s backend_connect: %s is a wildcard address "
                         "(every interface); groups connect to it: give the router host's name or address", hdr,
                         r->backend_connect);
        if (!r->backend_connect[0] && binds_wildcard(r->backend))
            return failf(p, bl, "%s backend: %s binds every interface; groups need a routable address to connect "
                         "to: set backend_connect = tcp://ROUTER_HOST:PORT", hdr, r->backend);
        for (int j = 0; j < i; j++) {
            const ifp_router_cfg_t *o = &c->routers[j];
            if (strcmp(o->host, r->host)) continue;
            const char *a[3] = {r->frontend, r->backend, r->http_listen}, *b[3] = {o->frontend, o->backend, o->http_listen};
            static const char *const what[3] = {"frontend", "backend", "http_listen"};
            for (int x = 0; x < 3; x++)
                for (int y = 0; y < 3; y++)
                    if (strcmp(a[x], b[y]) == 0 && strcmp(a[x], "off"))
                        return failf(p, ifp_router_line(r, what[x]) ? ifp_router_line(r, what[x]) : r->line,
                                     "%s %s: %s is [router %s]'s %s too, on the same host %s; give each router its "
                                     "own addresses", hdr, what[x], a[x], o->name, what[y], r->host);
        }
    }
    return IFP_OK;
}

/* What no single line shows: the last section's completeness, required
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
    if ((rc = finish_routers(p))) return rc;
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
    parse_t p = {.c = c, .file = file, .base_dir = base_dir, .err = err, .sect = IFP_CFG_S_NONE};
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

const ifp_client_cfg_t *ifp_config_client(const ifp_config_file_t *c, const char *name) {
    for (int i = 0; i < c->n_clients; i++)
        if (strcmp(c->clients[i].name, name) == 0) return &c->clients[i];
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

const char *ifp_config_backend_connect(const ifp_config_file_t *c) {
    return c->backend_connect[0] ? c->backend_connect : c->backend;
}

int ifp_group_host(const ifp_group_cfg_t *g, int stage, char *out, size_t len) {
    if (len) *out = '\0';
    if (stage < 0 || stage >= g->stages) return IFP_ERANGE;
    if (g->hostfile[0]) return IFP_ENOTFOUND;
    if (g->n_hosts != 1 && g->n_hosts != g->stages) return IFP_EINVAL;
    const char *s = g->hosts;
    for (int i = g->n_hosts == 1 ? 0 : stage; i > 0; i--) {
        s = strchr(s, ',');
        if (!s) return IFP_EINVAL;
        s++;
    }
    size_t n = strcspn(s, ",");
    if (n >= len) return IFP_ERANGE;
    memcpy(out, s, n);
    out[n] = '\0';
    return IFP_OK;
}

int ifp_config_host_is_local(const char *host) {
    return strcmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0;
}

int ifp_config_line(const ifp_config_file_t *c, const char *section, const char *key) {
    ifp_cfg_sect_t sect;
    const int *hdr;
    if (strcmp(section, "router") == 0) sect = IFP_CFG_S_ROUTER, hdr = &c->router_line;
    else if (strcmp(section, "model") == 0) sect = IFP_CFG_S_MODEL, hdr = &c->model_line;
    else if (strcmp(section, "security") == 0) sect = IFP_CFG_S_SECURITY, hdr = &c->security_line;
    else if (strcmp(section, "deploy") == 0) sect = IFP_CFG_S_DEPLOY, hdr = &c->deploy_line;
    else if (strcmp(section, "http") == 0) sect = IFP_CFG_S_HTTP, hdr = &c->http_line;
    else return 0;
    if (!key) return *hdr;
    int row;
    return ifp_cfg_find_opt(sect, key, &row) ? c->lines[row] : 0;
}

int ifp_group_line(const ifp_group_cfg_t *g, const char *key) {
    if (!key) return g->line;
    int row;
    return ifp_cfg_find_opt(IFP_CFG_S_GROUP, key, &row) ? g->lines[row] : 0;
}

int ifp_client_line(const ifp_client_cfg_t *cl, const char *key) {
    if (!key) return cl->line;
    int row;
    return ifp_cfg_find_opt(IFP_CFG_S_CLIENT, key, &row) ? cl->lines[row] : 0;
}

const char *ifp_config_file_name(const ifp_config_file_t *c) { return c->path[0] ? c->path : "config"; }
