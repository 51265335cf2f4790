#include "zap.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "curve.h"
#include "keys.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01" /* fixed by RFC 27 */
#define ZAP_KEYS_PER_FILE 8                   /* keys under one name: rotation needs two */
#define ZAP_MAX_CLIENTS 4096

typedef struct {
    char key[IFP_Z85_KEY];
    int kind, index;
} zap_entry_t;

struct rt_zap {
    void *sock;
    zap_entry_t *e;
    int n, cap;
    rt_client_t *clients;
    int n_clients, cap_clients;
    int group_keys, client_keys;
    unsigned long long refused;
};

int rt_zap_new(void *zctx, rt_zap_t **out, ifp_err_t *err) {
    *out = NULL;
    rt_zap_t *z = calloc(1, sizeof *z);
    if (!z) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    int linger = 0;
    if (!(z->sock = zmq_socket(zctx, ZMQ_REP)) || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(z->sock, ZAP_ENDPOINT)) {
        ifp_errf(err, IFP_EIO, "ZAP handler: cannot bind %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        rt_zap_destroy(&z);
        return IFP_EIO;
    }
    *out = z;
    return IFP_OK;
}

void rt_zap_destroy(rt_zap_t **zp) {
    if (!zp || !*zp) return;
    rt_zap_t *z = *zp;
    if (z->sock) zmq_close(z->sock);
    free(z->e);
    free(z->clients);
    free(z);
    *zp = NULL;
}

void *rt_zap_socket(rt_zap_t *z) { return z->sock; }

/* ---------------------------------------------------------------- table */

typedef struct {
    zap_entry_t *e;
    int n, cap;
    const char **owner; /* per entry: who it belongs to, for the duplicate message */
} table_t;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const zap_entry_t *)a)->key, ((const zap_entry_t *)b)->key);
}

static int add_keys(table_t *t, const char *path, const char *literal, int kind, int index, ifp_err_t *err) {
    char keys[ZAP_KEYS_PER_FILE][IFP_Z85_KEY];
    int n = 1;
    if (literal) memcpy(keys[0], literal, IFP_Z85_KEY);
    else if (ifp_key_read_public(path, keys, ZAP_KEYS_PER_FILE, &n, err)) return err ? err->code : IFP_EFORMAT;
    for (int i = 0; i < n; i++) {
        if (t->n == t->cap) {
            int cap = t->cap ? 2 * t->cap : 64;
            zap_entry_t *e = realloc(t->e, (size_t)cap * sizeof *e);
            if (!e) return ifp_errf(err, IFP_ENOMEM, "out of memory");
            t->e = e;
            t->cap = cap;
        }
        zap_entry_t *e = &t->e[t->n++];
        memcpy(e->key, keys[i], IFP_Z85_KEY);
        e->kind = kind;
        e->index = index;
    }
    return IFP_OK;
}

static int client_slot(rt_client_t **cl, int *n, int *cap, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*cl)[i].name, name)) return i;
    if (*n == ZAP_MAX_CLIENTS) return -1;
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        rt_client_t *p = realloc(*cl, (size_t)c * sizeof *p);
        if (!p) return -1;
        *cl = p;
        *cap = c;
    }
    memset(&(*cl)[*n], 0, sizeof **cl);
    snprintf((*cl)[*n].name, sizeof (*cl)[*n].name, "%s", name);
    return (*n)++;
}

static int valid_name(const char *s, size_t n) {
    if (n == 0 || n >= IFP_CFG_NAME) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* Every KEYS/clients/NAME.pub. */
static int load_client_dir(table_t *t, const char *dir, rt_client_t **cl, int *n, int *cap, ifp_err_t *err) {
    char path[IFP_KEYS_PATH];
    snprintf(path, sizeof path, "%s/clients", dir);
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? IFP_OK : ifp_errf(err, IFP_EIO, "%s: %s", path, strerror(errno));
    int rc = IFP_OK;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".pub")) continue;
        if (!valid_name(de->d_name, len - 4)) {
            rc = ifp_errf(err, IFP_EINVAL,
                          "%s/%s: a client name (the file's name before .pub) is 1..%d letters, digits, '-' or '_'",
                          path, de->d_name, IFP_CFG_NAME - 1);
            break;
        }
        char name[IFP_CFG_NAME], file[IFP_KEYS_PATH + 300];
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), de->d_name);
        snprintf(file, sizeof file, "%s/%s", path, de->d_name);
        int c = client_slot(cl, n, cap, name);
        if (c < 0) rc = ifp_errf(err, IFP_ENOMEM, "too many clients (at most %d)", ZAP_MAX_CLIENTS);
        else {
            (*cl)[c].admitted = 1;
            rc = add_keys(t, file, NULL, RT_PEER_CLIENT, c, err);
        }
    }
    closedir(d);
    return rc;
}

int rt_zap_load(rt_zap_t *z, const ifp_config_file_t *cfg, const char *dir, ifp_err_t *err) {
    table_t t = {0};
    /* clients keep their indexes: start from a copy of the current list, none admitted */
    int n_cl = z->n_clients, cap_cl = z->n_clients ? z->n_clients : 0;
    rt_client_t *cl = NULL;
    if (n_cl) {
        if (!(cl = malloc((size_t)n_cl * sizeof *cl))) return ifp_errf(err, IFP_ENOMEM, "out of memory");
        memcpy(cl, z->clients, (size_t)n_cl * sizeof *cl);
        for (int i = 0; i < n_cl; i++) cl[i].admitted = 0, cl[i].max_inflight = 0;
    }
    int rc = IFP_OK, gk = 0;
    char base[IFP_KEYS_PATH], file[IFP_KEYS_PATH + 8];
    for (int g = 0; !rc && g < cfg->n_groups; g++) {
        ifp_key_base(dir, "group", cfg->groups[g].name, base, sizeof base);
        snprintf(file, sizeof file, "%s.pub", base);
        if ((rc = add_keys(&t, file, NULL, RT_PEER_GROUP, g, err)))
            ifp_err_prefix(err, "[group %s]: its public key (make the deployment's keys with `ifp keygen --config "
                                "CONFIG`)",
                           cfg->groups[g].name);
    }
    gk = t.n;
    if (!rc) rc = load_client_dir(&t, dir, &cl, &n_cl, &cap_cl, err);
    for (int i = 0; !rc && i < cfg->n_clients; i++) {
        const ifp_client_cfg_t *c = &cfg->clients[i];
        int k = client_slot(&cl, &n_cl, &cap_cl, c->name);
        if (k < 0) {
            rc = ifp_errf(err, IFP_ENOMEM, "too many clients (at most %d)", ZAP_MAX_CLIENTS);
            break;
        }
        cl[k].admitted = 1;
        cl[k].max_inflight = c->max_inflight;
        if ((rc = add_keys(&t, c->key_is_file ? c->key : NULL, c->key_is_file ? NULL : c->key, RT_PEER_CLIENT, k,
                           err)))
            ifp_err_prefix(err, "[client %s] key", c->name);
    }
    if (!rc && t.n) {
        qsort(t.e, (size_t)t.n, sizeof *t.e, cmp_entry);
        for (int i = 1; i < t.n; i++) {
            if (strcmp(t.e[i - 1].key, t.e[i].key)) continue;
            const zap_entry_t *a = &t.e[i - 1], *b = &t.e[i];
            if (a->kind == b->kind && a->index == b->index) continue; /* listed twice under one name */
            rc = ifp_errf(err, IFP_EINVAL, "the key %.40s is listed as %s %s and as %s %s: a key has one owner",
                          a->key, a->kind == RT_PEER_GROUP ? "group" : "client",
                          a->kind == RT_PEER_GROUP ? cfg->groups[a->index].name : cl[a->index].name,
                          b->kind == RT_PEER_GROUP ? "group" : "client",
                          b->kind == RT_PEER_GROUP ? cfg->groups[b->index].name : cl[b->index].name);
            break;
        }
    }
    if (rc) {
        free(t.e);
        free(cl);
        return rc;
    }
    free(z->e);
    free(z->clients);
    z->e = t.e;
    z->n = t.n;
    z->cap = t.cap;
    z->clients = cl;
    z->n_clients = n_cl;
    z->cap_clients = cap_cl;
    z->group_keys = gk;
    z->client_keys = t.n - gk;
    return IFP_OK;
}

int rt_zap_check(const ifp_config_file_t *cfg, const char *dir, int *group_keys, int *client_keys, ifp_err_t *err) {
    rt_zap_t z;
    memset(&z, 0, sizeof z);
    int rc = rt_zap_load(&z, cfg, dir, err);
    *group_keys = z.group_keys;
    *client_keys = z.client_keys;
    free(z.e);
    free(z.clients);
    return rc;
}

static const zap_entry_t *find(const rt_zap_t *z, const char *key) {
    if (!key || !z->n) return NULL;
    zap_entry_t probe;
    if (!ifp_key_is_z85(key)) return NULL;
    memcpy(probe.key, key, IFP_Z85_KEY);
    return bsearch(&probe, z->e, (size_t)z->n, sizeof *z->e, cmp_entry);
}

int rt_zap_who(const rt_zap_t *z, const char *user_id, int *index) {
    const zap_entry_t *e = find(z, user_id);
    *index = e ? e->index : -1;
    if (e && e->kind == RT_PEER_CLIENT && !z->clients[e->index].admitted) return RT_PEER_UNKNOWN;
    return e ? e->kind : RT_PEER_UNKNOWN;
}

const rt_client_t *rt_zap_client(const rt_zap_t *z, int i) {
    return i >= 0 && i < z->n_clients ? &z->clients[i] : NULL;
}

int rt_zap_n_clients(const rt_zap_t *z) { return z->n_clients; }

int rt_zap_client_index(const rt_zap_t *z, const char *name) {
    for (int i = 0; i < z->n_clients; i++)
        if (z->clients[i].admitted && strcmp(z->clients[i].name, name) == 0) return i;
    return -1;
}

void rt_zap_counts(const rt_zap_t *z, int *group_keys, int *client_keys, unsigned long long *refused) {
    *group_keys = z->group_keys;
    *client_keys = z->client_keys;
    *refused = z->refused;
}

/* ---------------------------------------------------------------- ZAP */

#define ZAP_FRAMES 8

static int frame_is(zmq_msg_t *m, const char *s) {
    return zmq_msg_size(m) == strlen(s) && memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

static void reply(void *sock, zmq_msg_t *request_id, const char *code, const char *text, const char *user) {
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, request_id ? zmq_msg_data(request_id) : "", request_id ? zmq_msg_size(request_id) : 0,
             ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

/* One request: [version][request id][domain][address][identity][mechanism][credentials...] */
static void serve_one(rt_zap_t *z, rt_zap_log_fn log, void *ctx) {
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp, *m = n < ZAP_FRAMES ? &f[n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, z->sock, n ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
            return;
        }
        more = zmq_msg_more(m);
        if (m == &tmp) zmq_msg_close(m);
        else n++;
    }
    char line[400], addr[64] = "?";
    if (n >= 4) snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]), (const char *)zmq_msg_data(&f[3]));
    if (n < 6 || !frame_is(&f[0], "1.0")) {
        reply(z->sock, n >= 2 ? &f[1] : NULL, "500", "malformed ZAP request", "");
        z->refused++;
        if (log) log(ctx, "ZAP: a malformed request from libzmq (refused)");
    } else {
        int want = frame_is(&f[2], IFP_ZAP_FRONTEND) ? RT_PEER_CLIENT : frame_is(&f[2], IFP_ZAP_BACKEND) ? RT_PEER_GROUP : 0;
        const char *where = want == RT_PEER_CLIENT ? "frontend" : "backend";
        char key[IFP_Z85_KEY] = "";
        if (n == 7 && frame_is(&f[5], "CURVE") && zmq_msg_size(&f[6]) == 32)
            zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
        int idx, kind = key[0] ? rt_zap_who(z, key, &idx) : RT_PEER_UNKNOWN;
        if (!want || !key[0]) {
            reply(z->sock, &f[1], "400", "CURVE is required", "");
            snprintf(line, sizeof line, "refused a connection from %s: not a CURVE handshake on a known domain", addr);
        } else if (kind != want) {
            reply(z->sock, &f[1], "400", "unknown key", "");
            snprintf(line, sizeof line, "refused a %s connection from %s: key %.40s is not %s", where, addr, key,
                     kind == RT_PEER_UNKNOWN ? "admitted"
                     : want == RT_PEER_GROUP ? "a group's (it is a client's)"
                                             : "a client's (it is a group's)");
        } else {
            reply(z->sock, &f[1], "200", "OK", key);
            line[0] = '\0';
        }
        if (line[0]) {
            z->refused++;
            if (log) log(ctx, line);
        }
    }
    for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
}

void rt_zap_serve(rt_zap_t *z, rt_zap_log_fn log, void *ctx) {
    for (int i = 0; i < 64; i++) {
        zmq_pollitem_t it = {z->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 0) <= 0) return;
        serve_one(z, log, ctx);
    }
}
