/* config_table.c — the option table and the values of each kind (see
 * config_table.h).  Adding a key: one row below, a field in config.h, a row
 * in docs/OPERATIONS.md's table and an entry in docs/CONFIG.md. */
#include "config_table.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

static const char *const SECT_NAME[] = {"router", "model", "security", "deploy", "group", "client", "http", "router"};

/* ZeroMQ's Z85 alphabet (RFC 32/Z85): a CURVE key is 40 of these. */
static const char Z85_ALPHABET[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
#define Z85_KEY_LEN 40

#define FIELD(T, f) offsetof(T, f), sizeof(((T *)0)->f)
#define R(key, kind, field, lo, hi, def) \
    {IFP_CFG_S_ROUTER, key, IFP_CFG_K_##kind, FIELD(ifp_config_file_t, field), lo, hi, NULL, def}
#define M(key, field) {IFP_CFG_S_MODEL, key, IFP_CFG_K_PATH, FIELD(ifp_config_file_t, field), 0, 0, NULL, ""}
#define S(key, kind, field, def) \
    {IFP_CFG_S_SECURITY, key, IFP_CFG_K_##kind, FIELD(ifp_config_file_t, field), 0, 0, NULL, def}
#define D(key, field, def) \
    {IFP_CFG_S_DEPLOY, key, IFP_CFG_K_STRING, FIELD(ifp_config_file_t, field), 0, 0, NULL, def}
#define H(key, kind, field, lo, hi, choices, def) \
    {IFP_CFG_S_HTTP, key, IFP_CFG_K_##kind, FIELD(ifp_config_file_t, field), lo, hi, choices, def}
#define G(key, kind, field, lo, hi, def) \
    {IFP_CFG_S_GROUP, key, IFP_CFG_K_##kind, FIELD(ifp_group_cfg_t, field), lo, hi, NULL, def}
#define RN(key, kind, field, def) \
    {IFP_CFG_S_ROUTERS, key, IFP_CFG_K_##kind, FIELD(ifp_router_cfg_t, field), 0, 0, NULL, def}
#define C(key, kind, field, lo, hi, def) \
    {IFP_CFG_S_CLIENT, key, IFP_CFG_K_##kind, FIELD(ifp_client_cfg_t, field), lo, hi, NULL, def}

const ifp_cfg_opt_t IFP_CFG_OPTS[] = {
    R("frontend", ENDPOINT, frontend, 0, 0, "tcp://127.0.0.1:5555"),
    R("backend", ENDPOINT, backend, 0, 0, "tcp://127.0.0.1:5556"),
    R("heartbeat_ms", INT, heartbeat_ms, 10, 60000, "250"),
    R("liveness", INT, liveness, 1, 100, "4"),
    R("min_coverage", DOUBLE, min_coverage, 0, 1, "1.0"),
    R("balance_abs", INT, balance_abs, 0, INT_MAX, "256"),
    R("balance_rel", DOUBLE, balance_rel, 1, 1e6, "1.5"),
    R("queue_max", INT, queue_max, 0, 1000000, "256"),
    R("max_tokens", INT, max_tokens, 1, 1 << 20, "128"),
    R("max_tokens_limit", INT, max_tokens_limit, 1, 1 << 20, "4096"),
    {IFP_CFG_S_ROUTER, "policy", IFP_CFG_K_CHOICE, FIELD(ifp_config_file_t, policy), 0, 0,
     "affinity|round-robin|least-loaded|dense-only", "affinity"},
    R("predictor_threads", INT, predictor_threads, 0, 256, "0"),
    R("host", HOST, host, 0, 0, "localhost"),
    R("backend_connect", ENDPOINT, backend_connect, 0, 0, ""), /* "" = backend as written */
    M("model", model),
    M("predictor", predictor),
    M("clusters", clusters),
    {IFP_CFG_S_MODEL, "weight_type", IFP_CFG_K_CHOICE, FIELD(ifp_config_file_t, weight_type), 0, 0,
     "as-stored|f32|f16|bf16|q8_0", "as-stored"}, /* the served model's matrices, converted once at load */
    {IFP_CFG_S_MODEL, "predictor_weight_type", IFP_CFG_K_CHOICE, FIELD(ifp_config_file_t, predictor_weight_type), 0, 0,
     "as-stored|f32|f16|bf16|q8_0", "as-stored"},
    S("curve", ONOFF, curve, "on"),
    S("keys", DIR, keys, ""), /* "" = chosen at run time (security/keys.h) */
    D("agent", agent, "ssh"),
    D("mpirun", mpirun, "mpirun"),
    D("mpirun_args", mpirun_args, ""), /* "" = none */
    G("stages", INT, stages, 1, IFP_CFG_MAX_STAGES, "1"),
    G("layers", LAYERS, layers, 1, 100000, ""),
    G("cluster", CLUSTER, cluster, 0, 1000000, "dense"),
    G("slots", INT, slots, 1, 4096, "8"),
    G("ctx", INT, ctx, 0, 1 << 20, "0"),
    G("max_batch", INT, max_batch, 1, 65536, "64"),
    G("batch_timeout_ms", INT, batch_timeout_ms, 100, 3600000, "30000"),
    G("mpi_if", IFLIST, mpi_if, 0, 0, "lo"),
    G("hosts", HOSTLIST, hosts, 1, IFP_CFG_MAX_STAGES, "localhost"), /* min..max: how many */
    G("hostfile", PATH, hostfile, 0, 0, ""),                         /* "" = none; not with hosts */
    C("key", KEY, key, 0, 0, ""), /* required: checked when the section closes */
    C("max_inflight", INT, max_inflight, 0, 1000000, "0"),
    H("listen", LISTEN, http_listen, 0, 0, NULL, "127.0.0.1:8080"),
    H("auth", CHOICE, http_auth, 0, 0, "auto|on|off", "auto"), /* auto = on exactly when [security] curve is */
    H("api_keys", PATH, http_api_keys, 0, 0, NULL, ""),         /* "" = KEYS/api_keys */
    H("max_body", INT, http_max_body, 0, 1 << 30, NULL, "0"),  /* 0 = derived from the model's limits */
    H("max_connections", INT, http_max_connections, 1, 100000, NULL, "1024"),
    H("tls_cert", PATH, http_tls_cert, 0, 0, NULL, ""),
    H("tls_key", PATH, http_tls_key, 0, 0, NULL, ""),
    H("allow_plain", ONOFF, http_allow_plain, 0, 0, NULL, "off"), /* plain HTTP on a non-loopback address */
    H("chat_template", CHOICE, http_chat_template, 0, 0, "instruct|plain", "instruct"),
    H("model_id", STRING, http_model_id, 0, 0, NULL, ""),        /* "" = the model file's stem */
    H("metrics_auth", ONOFF, http_metrics_auth, 0, 0, NULL, "off"),
    /* [router NAME]: one of several routers (config.h); "" = required, or inherited from [router] / [http] */
    RN("frontend", ENDPOINT, frontend, ""),
    RN("backend", ENDPOINT, backend, ""),
    RN("backend_connect", ENDPOINT, backend_connect, ""),
    RN("host", HOST, host, ""),
    RN("http_listen", LISTEN, http_listen, ""),
};
const int IFP_CFG_N_OPTS = (int)(sizeof IFP_CFG_OPTS / sizeof *IFP_CFG_OPTS);
_Static_assert(sizeof IFP_CFG_OPTS / sizeof *IFP_CFG_OPTS <= IFP_CFG_KEYS, "raise IFP_CFG_KEYS");

const char *ifp_cfg_sect_name(ifp_cfg_sect_t s) {
    assert(s >= 0 && s < IFP_CFG_S_NONE);
    return SECT_NAME[s];
}

const ifp_cfg_opt_t *ifp_cfg_find_opt(ifp_cfg_sect_t sect, const char *key, int *row) {
    for (int i = 0; i < IFP_CFG_N_OPTS; i++)
        if ((sect == IFP_CFG_S_NONE || IFP_CFG_OPTS[i].sect == sect) && strcmp(IFP_CFG_OPTS[i].key, key) == 0) {
            if (row) *row = i;
            return &IFP_CFG_OPTS[i];
        }
    return NULL;
}

/* ---------------------------------------------------------------- words */

void ifp_cfg_range_text(const ifp_cfg_opt_t *o, char *buf, size_t len) {
    switch (o->kind) {
    case IFP_CFG_K_INT: snprintf(buf, len, "an integer in %.0f..%.0f", o->min, o->max); return;
    case IFP_CFG_K_DOUBLE: snprintf(buf, len, "a number in %g..%g", o->min, o->max); return;
    case IFP_CFG_K_ENDPOINT:
        snprintf(buf, len, "a ZeroMQ endpoint TRANSPORT://ADDRESS (tcp://HOST:PORT, ipc://PATH)");
        return;
    case IFP_CFG_K_CHOICE: {
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
    case IFP_CFG_K_ONOFF: snprintf(buf, len, "on or off"); return;
    case IFP_CFG_K_PATH: snprintf(buf, len, "a file (a relative path starts from the config file's folder)"); return;
    case IFP_CFG_K_DIR:
        snprintf(buf, len, "a folder (a relative path starts from the config file's folder); it need not exist yet");
        return;
    case IFP_CFG_K_CLUSTER: snprintf(buf, len, "dense, or a cluster index 0..(clusters-1) of [model] clusters"); return;
    case IFP_CFG_K_LAYERS:
        snprintf(buf, len, "one layer count per stage, comma-separated (e.g. 2,1,1), summing to the model's layers");
        return;
    case IFP_CFG_K_IFLIST:
        snprintf(buf, len, "network interfaces or CIDR subnets, comma-separated without spaces (e.g. lo or ib0,eth1 or "
                           "10.1.0.0/16): 1..%zu of A-Z a-z 0-9 _ . : / -", o->size - 1);
        return;
    case IFP_CFG_K_KEY:
        snprintf(buf, len, "a CURVE public key (40 characters of Z85), or a file holding one (a relative path starts "
                           "from the config file's folder)");
        return;
    case IFP_CFG_K_HOST:
        snprintf(buf, len, "a host name, an IP address or a network namespace name: 1..%d of A-Z a-z 0-9 . _ : - "
                           "(not starting with -)", IFP_CFG_HOST - 1);
        return;
    case IFP_CFG_K_HOSTLIST:
        snprintf(buf, len, "one host (every stage there) or one per stage, comma-separated without spaces; each 1..%d "
                           "of A-Z a-z 0-9 . _ : - (not starting with -)", IFP_CFG_HOST - 1);
        return;
    case IFP_CFG_K_STRING: snprintf(buf, len, "1..%zu printable ASCII characters", o->size - 1); return;
    case IFP_CFG_K_LISTEN:
        snprintf(buf, len, "off, or ADDRESS:PORT (an IPv4 address, [an IPv6 address] or localhost; port 0..65535)");
        return;
    }
}

/* ---------------------------------------------------------------- values */


static int parse_long(const char *val, double lo, double hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (end == val || *end || errno || v < (long)lo || v > (long)hi) return -1;
    *out = v;
    return 0;
}

int ifp_cfg_parse_listen(const char *val, char *addr, size_t addr_len, int *port) {
    const char *colon = strrchr(val, ':');
    if (!colon || colon == val || !colon[1]) return -1;
    long p;
    if (parse_long(colon + 1, 0, 65535, &p)) return -1;
    char host[64];
    size_t n = (size_t)(colon - val);
    if (n >= sizeof host) return -1;
    memcpy(host, val, n);
    host[n] = '\0';
    unsigned char bin[16];
    if (host[0] == '[') { /* [IPv6] */
        if (n < 3 || host[n - 1] != ']') return -1;
        host[n - 1] = '\0';
        memmove(host, host + 1, n - 1);
        if (inet_pton(AF_INET6, host, bin) != 1) return -1;
    } else if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    } else if (inet_pton(AF_INET, host, bin) != 1) {
        return -1;
    }
    if (addr) snprintf(addr, addr_len, "%s", host);
    if (port) *port = (int)p;
    return 0;
}

static int parse_layers(const ifp_cfg_opt_t *o, ifp_group_cfg_t *g, const char *val, char *why, size_t len) {
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

/* The words of o's range into range, and val's length into *n; -1 (why
 * says so) when val does not fit o's field. */
static int fits(const ifp_cfg_opt_t *o, const char *val, char *range, size_t rlen, size_t *n, char *why, size_t len) {
    ifp_cfg_range_text(o, range, rlen);
    *n = strlen(val);
    if (*n < o->size) return 0;
    snprintf(why, len, "%zu characters; expected %s", *n, range);
    return -1;
}

/* Interfaces or subnets for MPI's TCP transport (OpenMPI's btl_tcp_if_include
 * takes the same list): items of [A-Za-z0-9_.:/-], comma-separated. */
static int parse_iflist(const ifp_cfg_opt_t *o, char *dst, const char *val, char *why, size_t len) {
    char range[160];
    size_t n;
    if (fits(o, val, range, sizeof range, &n, why, len)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)val[i];
        if (ch == ',' && (i == 0 || i == n - 1 || val[i + 1] == ',')) {
            snprintf(why, len, "\"%.60s\": an empty item; expected %s", val, range);
            return -1;
        }
        if (ch != ',' && !isalnum(ch) && !strchr("_.:/-", ch)) {
            snprintf(why, len, "\"%.60s\": %s%c%s is not allowed; expected %s", val, isprint(ch) ? "'" : "",
                     isprint(ch) ? ch : '?', isprint(ch) ? "'" : " (a control character)", range);
            return -1;
        }
    }
    snprintf(dst, o->size, "%s", val);
    return 0;
}

/* One host, val[0..n): a host name, an IP address (IPv6 without brackets)
 * or a network namespace name; what the launchers hand to an agent (ssh
 * HOST), to mpirun (--host) and to `ip netns exec`.  Not starting with '-':
 * those would read it as an option.  Returns 0, or -1 with why. */
static int check_host(const char *val, size_t n, const char *whole, const char *range, char *why, size_t len) {
    if (n == 0) {
        snprintf(why, len, "\"%.60s\": an empty item; expected %s", whole, range);
        return -1;
    }
    if (n >= IFP_CFG_HOST) {
        snprintf(why, len, "a host of %zu characters; expected %s", n, range);
        return -1;
    }
    if (val[0] == '-') {
        snprintf(why, len, "\"%.60s\": a host cannot start with '-' (it would be read as an option)", whole);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)val[i];
        if (isalnum(ch) || strchr("._:-", ch)) continue;
        snprintf(why, len, "\"%.60s\": %s%c%s is not allowed; expected %s", whole, isprint(ch) ? "'" : "",
                 isprint(ch) ? ch : '?', isprint(ch) ? "'" : " (a control character)", range);
        return -1;
    }
    return 0;
}

/* hosts: HOST[,HOST...], o->min..o->max of them; n_hosts gets the count. */
static int parse_hostlist(const ifp_cfg_opt_t *o, ifp_group_cfg_t *g, const char *val, char *why, size_t len) {
    char range[160];
    size_t n;
    if (fits(o, val, range, sizeof range, &n, why, len)) return -1;
    int count = 0;
    for (const char *s = val;;) {
        const char *comma = strchr(s, ',');
        size_t m = comma ? (size_t)(comma - s) : strlen(s);
        if (check_host(s, m, val, range, why, len)) return -1;
        if (++count > (int)o->max) {
            snprintf(why, len, "more than %.0f hosts; a group has at most %.0f stages", o->max, o->max);
            return -1;
        }
        if (!comma) break;
        s = comma + 1;
    }
    snprintf((char *)g + o->off, o->size, "%s", val);
    g->n_hosts = count;
    return 0;
}

/* Printable ASCII (a command and its options), at most size-1 characters. */
static int parse_string(const ifp_cfg_opt_t *o, char *dst, const char *val, char *why, size_t len) {
    char range[160];
    size_t n;
    if (fits(o, val, range, sizeof range, &n, why, len)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)val[i];
        if (ch >= 0x20 && ch < 0x7f) continue;
        snprintf(why, len, "\"%.60s\": byte 0x%02x at %zu is not printable ASCII; expected %s", val, ch, i + 1, range);
        return -1;
    }
    snprintf(dst, o->size, "%s", val);
    return 0;
}

static int is_z85_key(const char *s) {
    return strlen(s) == Z85_KEY_LEN && strspn(s, Z85_ALPHABET) == Z85_KEY_LEN;
}

/* A path (config folder + val unless val is absolute) into dst[size]. */
static int put_path(char *dst, size_t size, const char *val, const char *base_dir, char *why, size_t len) {
    int n = val[0] != '/' && base_dir && *base_dir ? snprintf(dst, size, "%s/%s", base_dir, val)
                                                   : snprintf(dst, size, "%s", val);
    if (n < 0 || (size_t)n >= size) {
        *dst = '\0';
        snprintf(why, len, "the path is longer than %zu characters", size - 1);
        return -1;
    }
    return 0;
}

int ifp_cfg_parse_value(const ifp_cfg_opt_t *o, void *base, const char *val, const char *base_dir, char *why,
                        size_t len) {
    void *dst = (char *)base + o->off;
    char range[160];
    ifp_cfg_range_text(o, range, sizeof range);
    if (!*val) {
        snprintf(why, len, "empty value; expected %s", range);
        return -1;
    }
    switch (o->kind) {
    case IFP_CFG_K_INT: {
        long v;
        if (parse_long(val, o->min, o->max, &v)) break;
        *(int *)dst = (int)v;
        return 0;
    }
    case IFP_CFG_K_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(val, &end);
        if (end == val || *end || errno || !isfinite(v) || v < o->min || v > o->max) break;
        *(double *)dst = v;
        return 0;
    }
    case IFP_CFG_K_ENDPOINT: {
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
    case IFP_CFG_K_CHOICE: {
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
    case IFP_CFG_K_ONOFF:
        if (strcmp(val, "on") && strcmp(val, "off")) break;
        *(int *)dst = strcmp(val, "on") == 0;
        return 0;
    case IFP_CFG_K_PATH:
    case IFP_CFG_K_DIR: /* whether it exists is the run time's business (router/confcheck.h for files) */
        return put_path(dst, o->size, val, base_dir, why, len);
    case IFP_CFG_K_CLUSTER: {
        long v;
        if (strcmp(val, "dense") == 0 || strcmp(val, "-1") == 0) {
            *(int *)dst = IFP_CLUSTER_DENSE;
            return 0;
        }
        if (parse_long(val, o->min, o->max, &v)) break;
        *(int *)dst = (int)v;
        return 0;
    }
    case IFP_CFG_K_LAYERS:
        assert(o->sect == IFP_CFG_S_GROUP);
        return parse_layers(o, base, val, why, len);
    case IFP_CFG_K_IFLIST: return parse_iflist(o, dst, val, why, len);
    case IFP_CFG_K_KEY: {
        /* the shape decides: 40 Z85 characters are a key, anything else a file */
        assert(o->sect == IFP_CFG_S_CLIENT);
        ifp_client_cfg_t *cl = base;
        cl->key_is_file = !is_z85_key(val);
        if (!cl->key_is_file) {
            snprintf(dst, o->size, "%s", val);
            return 0;
        }
        return put_path(dst, o->size, val, base_dir, why, len);
    }
    case IFP_CFG_K_HOST: {
        char range[160];
        ifp_cfg_range_text(o, range, sizeof range);
        if (check_host(val, strlen(val), val, range, why, len)) return -1;
        snprintf(dst, o->size, "%s", val);
        return 0;
    }
    case IFP_CFG_K_HOSTLIST:
        assert(o->sect == IFP_CFG_S_GROUP);
        return parse_hostlist(o, base, val, why, len);
    case IFP_CFG_K_STRING: return parse_string(o, dst, val, why, len);
    case IFP_CFG_K_LISTEN:
        if (strcmp(val, "off") && ifp_cfg_parse_listen(val, NULL, 0, NULL)) break;
        snprintf(dst, o->size, "%s", val);
        return 0;
    }
    snprintf(why, len, "\"%.60s\": expected %s", val, range);
    return -1;
}

void ifp_cfg_apply_defaults(ifp_cfg_sect_t sect, void *base) {
    char why[256];
    for (int i = 0; i < IFP_CFG_N_OPTS; i++) {
        if (IFP_CFG_OPTS[i].sect != sect || !*IFP_CFG_OPTS[i].def) continue;
        int rc = ifp_cfg_parse_value(&IFP_CFG_OPTS[i], base, IFP_CFG_OPTS[i].def, NULL, why, sizeof why);
        assert(rc == 0 && "a default of the option table does not parse");
        (void)rc;
    }
}

int ifp_config_key_info(int i, ifp_config_key_t *out) {
    if (i < 0 || i >= IFP_CFG_N_OPTS) return IFP_ENOTFOUND;
    out->section = IFP_CFG_OPTS[i].sect == IFP_CFG_S_ROUTERS ? "router NAME" : SECT_NAME[IFP_CFG_OPTS[i].sect];
    out->key = IFP_CFG_OPTS[i].key;
    out->def = IFP_CFG_OPTS[i].def;
    ifp_cfg_range_text(&IFP_CFG_OPTS[i], out->range, sizeof out->range);
    return IFP_OK;
}
