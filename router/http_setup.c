/* http_setup.c — the HTTP gateway's life (router/http.h): its settings
 * checked ([http] listen, the loopback rule, TLS, API keys; also for
 * --check-config), the daemon started with the callbacks of router/http.c
 * and its thread, the API keys reloaded, everything stopped. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "config_table.h"
#include "http_int.h"
#include "log.h"
#include "router.h"

static int read_keys(rt_http_t *H, ifp_err_t *err) {
    ifp_apikey_t *keys = NULL;
    int n = 0;
    int rc = ifp_apikeys_read(H->keys_path, &keys, &n, err);
    if (rc == IFP_ENOTFOUND)
        return ifp_errf(err, rc, "[http] api_keys: %s does not exist: make it with `ifp keygen --config CONFIG`, or "
                                 "set [http] auth = off",
                        H->keys_path);
    if (rc) return ifp_err_prefix(err, "[http] api_keys");
    pthread_mutex_lock(&H->keys_mu);
    ifp_apikeys_free(&H->keys, H->n_keys);
    H->keys = keys;
    H->n_keys = n;
    pthread_mutex_unlock(&H->keys_mu);
    return IFP_OK;
}

int rt_http_reload_keys(rt_http_t *H, ifp_err_t *err) {
    if (!H->auth) return IFP_OK;
    int rc = read_keys(H, err);
    if (!rc) ifp_logf("ifp-router", "HTTP API keys reloaded from %s: %d keys", H->keys_path, H->n_keys);
    return rc;
}

static char *read_pem(const char *path, const char *what, ifp_err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ifp_errf(err, IFP_EIO, "[http] %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *p = calloc(1, 1 << 20);
    size_t n = p ? fread(p, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!p || n == 0 || n >= (1 << 20) - 1) {
        free(p);
        ifp_errf(err, IFP_EINVAL, "[http] %s %s: empty, unreadable or larger than 1 MB", what, path);
        return NULL;
    }
    return p;
}

static int is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int rt_http_auth(const ifp_config_file_t *cfg) {
    return strcmp(cfg->http_auth, "on") == 0 || (strcmp(cfg->http_auth, "auto") == 0 && cfg->curve);
}

/* [http] listen as a socket address, the TLS pair, the loopback rule. */
static int settings(const ifp_config_file_t *cfg, struct sockaddr_storage *ss, char *addr, size_t addr_len, int *port,
                    int *v6, int *tls, ifp_err_t *err) {
    if (ifp_cfg_parse_listen(cfg->http_listen, addr, addr_len, port))
        return ifp_errf(err, IFP_EINVAL, "[http] listen: \"%s\" is not ADDRESS:PORT", cfg->http_listen);
    memset(ss, 0, sizeof *ss);
    *v6 = strchr(addr, ':') != NULL;
    if (*v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)*port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)*port);
        inet_pton(AF_INET, addr, &s4->sin_addr);
    }
    *tls = cfg->http_tls_cert[0] || cfg->http_tls_key[0];
    if (*tls && !(cfg->http_tls_cert[0] && cfg->http_tls_key[0]))
        return ifp_errf(err, IFP_EINVAL, "[http] tls_cert and tls_key: HTTPS needs both");
    if (!*tls && !is_loopback((struct sockaddr *)ss) && !cfg->http_allow_plain)
        return ifp_errf(err, IFP_EINVAL,
                        "[http] listen %s: a non-loopback address needs HTTPS (tls_cert and tls_key), or "
                        "allow_plain = on to serve plain HTTP there anyway",
                        cfg->http_listen);
    if (*tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return ifp_errf(err, IFP_EUNSUPPORTED, "[http] tls_cert: this libmicrohttpd was built without TLS");
    return IFP_OK;
}

static void keys_path(const ifp_config_file_t *cfg, const char *keys_dir, char *out, size_t len) {
    if (cfg->http_api_keys[0]) snprintf(out, len, "%s", cfg->http_api_keys);
    else ifp_apikeys_path(keys_dir, out, len);
}

int rt_http_check(const ifp_config_file_t *cfg, const char *keys_dir, int *n_keys, ifp_err_t *err) {
    *n_keys = -1;
    if (strcmp(cfg->http_listen, "off") == 0) return IFP_OK;
    struct sockaddr_storage ss;
    char addr[64], path[IFP_CFG_PATH + 16];
    int port, v6, tls;
    int rc = settings(cfg, &ss, addr, sizeof addr, &port, &v6, &tls, err);
    if (rc) return rc;
    if (tls) {
        char *pem = read_pem(cfg->http_tls_cert, "tls_cert", err);
        if (!pem) return err ? err->code : IFP_EIO;
        free(pem);
        if (!(pem = read_pem(cfg->http_tls_key, "tls_key", err))) return err ? err->code : IFP_EIO;
        memset(pem, 0, strlen(pem));
        free(pem);
    }
    if (!rt_http_auth(cfg)) return IFP_OK;
    keys_path(cfg, keys_dir, path, sizeof path);
    ifp_apikey_t *keys = NULL;
    int n = 0;
    rc = ifp_apikeys_read(path, &keys, &n, err);
    if (rc == IFP_ENOTFOUND)
        return ifp_errf(err, rc, "[http] api_keys: %s does not exist: make it with `ifp keygen --config %s`, or set "
                                 "[http] auth = off",
                        path, ifp_config_file_name(cfg));
    if (rc) return ifp_err_prefix(err, "[http] api_keys");
    ifp_apikeys_free(&keys, n);
    *n_keys = n;
    return IFP_OK;
}

int rt_http_new(const rt_http_params_t *p, rt_http_t **out, ifp_err_t *err) {
    *out = NULL;
    const ifp_config_file_t *cfg = p->cfg;
    char addr[64];
    int port, v6, tls;
    struct sockaddr_storage ss;
    int src = settings(cfg, &ss, addr, sizeof addr, &port, &v6, &tls, err);
    if (src) return src;
    rt_http_t *H = calloc(1, sizeof *H);
    if (!H) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    pthread_mutex_init(&H->keys_mu, NULL);
    H->wake_fd = -1;
    H->tok = p->tok;
    H->lim = p->lim;
    snprintf(H->model_id, sizeof H->model_id, "%s", p->lim.model_id);
    H->lim.model_id = H->model_id;
    H->auth = p->auth;
    H->metrics_auth = cfg->http_metrics_auth;
    H->tls = tls;
    H->max_body = cfg->http_max_body > 0 ? (size_t)cfg->http_max_body : p->lim.max_prompt_bytes * 6 + 65536;
    H->rid_salt = rt_random64();
    snprintf(H->bridge, sizeof H->bridge, "%s", p->bridge);
    keys_path(cfg, p->keys_dir, H->keys_path, sizeof H->keys_path);
    char *cert = NULL, *key = NULL;
    int rc = IFP_OK;
    if (H->auth && (rc = read_keys(H, err))) goto fail;
    if (tls && (!(cert = read_pem(cfg->http_tls_cert, "tls_cert", err)) || !(key = read_pem(cfg->http_tls_key, "tls_key", err)))) {
        rc = err ? err->code : IFP_EIO;
        goto fail;
    }
    H->zctx = p->zctx;
    int hwm = 100000, linger = 0;
    if (!(H->sock = zmq_socket(H->zctx, ZMQ_DEALER)) || zmq_setsockopt(H->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(H->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) || zmq_setsockopt(H->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_connect(H->sock, H->bridge)) {
        rc = ifp_errf(err, IFP_EIO, "HTTP bridge %s: %s", H->bridge, zmq_strerror(errno));
        goto fail;
    }
    if ((H->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = ifp_errf(err, IFP_EIO, "eventfd: %s", strerror(errno));
        goto fail;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0) |
                     (tls ? MHD_USE_TLS : 0);
    H->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, ht_on_request, H, MHD_OPTION_EXTERNAL_LOGGER, ht_mhd_logger, H,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)cfg->http_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)HT_IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, ht_on_completed, H,
                            tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
                            MHD_OPTION_END);
    if (!H->d) {
        rc = ifp_errf(err, IFP_EIO, "[http] listen %s: cannot listen there (address in use, or not this host's?)",
                      cfg->http_listen);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(H->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(H->address, sizeof H->address, v6 ? "[%s]:%u" : "%s:%u", addr, di ? (unsigned)di->port : (unsigned)port);
    if (pthread_create(&H->th, NULL, ht_run, H) != 0) {
        rc = ifp_errf(err, IFP_EIO, "cannot start the HTTP thread");
        goto fail;
    }
    H->thread_started = 1;
    free(cert);
    free(key);
    *out = H;
    return IFP_OK;
fail:
    free(cert);
    free(key);
    rt_http_destroy(&H);
    return rc ? rc : IFP_EIO;
}

const char *rt_http_address(const rt_http_t *H) { return H->address; }

void rt_http_destroy(rt_http_t **hp) {
    if (!hp || !*hp) return;
    rt_http_t *H = *hp;
    if (H->thread_started) {
        H->stop = 1;
        uint64_t one = 1;
        if (write(H->wake_fd, &one, sizeof one) < 0) { /* the poll times out soon anyway */
        }
        pthread_join(H->th, NULL);
    }
    if (H->d) MHD_stop_daemon(H->d);
    if (H->sock) zmq_close(H->sock);
    if (H->wake_fd >= 0) close(H->wake_fd);
    ifp_apikeys_free(&H->keys, H->n_keys);
    pthread_mutex_destroy(&H->keys_mu);
    free(H);
    *hp = NULL;
}
