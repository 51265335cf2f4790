#include "curve.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

int ifp_curve_server(void *sock, const ifp_keypair_t *kp, const char *zap_domain, ifp_err_t *err) {
    int one = 1;
    if (!zmq_has("curve")) return ifp_errf(err, IFP_EUNSUPPORTED, "this libzmq was built without CURVE");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->sec, 40) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)))
        return ifp_errf(err, IFP_EIO, "CURVE server options: %s", zmq_strerror(errno));
    return IFP_OK;
}

int ifp_curve_client(void *sock, const ifp_curve_t *c, ifp_err_t *err) {
    if (!c || !c->on) return IFP_OK;
    if (!zmq_has("curve")) return ifp_errf(err, IFP_EUNSUPPORTED, "this libzmq was built without CURVE");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server_pub, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->me.pub, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->me.sec, 40))
        return ifp_errf(err, IFP_EIO, "CURVE client options: %s", zmq_strerror(errno));
    return IFP_OK;
}

/* A Z85 key as given, or the first key of the file it names. */
static int server_key_of(const char *arg, char out[IFP_Z85_KEY], ifp_err_t *err) {
    /* a file that exists is a file, even when its path is 40 Z85 characters
     * ("/tmp/ifp-http.AbC123/run/keys/router.pub" can be: '/', '.', '-'
     * are Z85 too) */
    struct stat st;
    if (ifp_key_is_z85(arg) && stat(arg, &st) != 0) {
        memcpy(out, arg, IFP_Z85_KEY);
        return IFP_OK;
    }
    char keys[4][IFP_Z85_KEY];
    int n = 0, rc = ifp_key_read_public(arg, keys, 4, &n, err);
    if (rc) return rc;
    memcpy(out, keys[0], IFP_Z85_KEY);
    return IFP_OK;
}

int ifp_curve_client_load(const char *keys_dir, const char *key_file, const char *server_key, int plain,
                          ifp_curve_t *c, ifp_err_t *err) {
    memset(c, 0, sizeof *c);
    if (plain) return IFP_OK;
    char dir[IFP_KEYS_PATH], base[IFP_KEYS_PATH], pub[IFP_KEYS_PATH + 8];
    ifp_keys_dir(keys_dir, dir, sizeof dir);
    if (key_file)
        snprintf(c->key_path, sizeof c->key_path, "%s", key_file);
    else if (ifp_key_base(dir, "local", NULL, base, sizeof base) ||
             (size_t)snprintf(c->key_path, sizeof c->key_path, "%s.key", base) >= sizeof c->key_path)
        return ifp_errf(err, IFP_EINVAL, "%s: path too long", dir);
    struct stat st;
    if (!key_file && !server_key && stat(c->key_path, &st) != 0) return IFP_OK; /* plain: no key here */
    int rc = ifp_key_read_secret(c->key_path, &c->me, err);
    if (rc) return rc;
    if (!server_key) {
        if (ifp_key_base(dir, "router", NULL, base, sizeof base)) return ifp_errf(err, IFP_EINVAL, "path too long");
        snprintf(pub, sizeof pub, "%s.pub", base);
        server_key = pub;
    }
    if ((rc = server_key_of(server_key, c->server_pub, err))) return ifp_err_prefix(err, "the router's public key");
    c->on = 1;
    return IFP_OK;
}

int ifp_handshake_watch(void *zctx, void *sock, ifp_handshake_t *h, ifp_err_t *err) {
    static unsigned serial;
    char ep[64];
    memset(h, 0, sizeof *h);
    snprintf(ep, sizeof ep, "inproc://ifp-handshake-%p-%u", sock, __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(sock, ep, events) != 0)
        return ifp_errf(err, IFP_EIO, "zmq_socket_monitor: %s", zmq_strerror(errno));
    if (!(h->mon = zmq_socket(zctx, ZMQ_PAIR)) || zmq_connect(h->mon, ep) != 0) {
        if (h->mon) zmq_close(h->mon);
        h->mon = NULL;
        return ifp_errf(err, IFP_EIO, "socket monitor: %s", zmq_strerror(errno));
    }
    return IFP_OK;
}

static void explain(ifp_handshake_t *h, const ifp_curve_t *c, uint16_t ev, uint32_t value) {
    const char *key = c && c->on ? c->key_path : "";
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        if (value == 400)
            snprintf(h->why, sizeof h->why,
                     "the router refused this client's key (%.400s): it is not among the keys it admits "
                     "(KEYS/clients/NAME.pub or a [client NAME] section)",
                     key);
        else
            snprintf(h->why, sizeof h->why, "the router refused the connection (status %u)", (unsigned)value);
    } else if (!(c && c->on)) {
        /* a plain client: the router either says "mechanism mismatch" or,
         * as often (a race in the greeting), just closes the connection */
        snprintf(h->why, sizeof h->why,
                 "the router requires CURVE and this client has no key%s%.400s (give --key FILE and "
                 "--server-key FILE, or set IFP_KEYS to the deployment's keys folder)%s",
                 c && *c->key_path ? ": none at " : "", c ? c->key_path : "",
                 ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                     ? ""
                     : " [the router closed the connection during the handshake]");
    } else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        snprintf(h->why, sizeof h->why,
                 "the router does not use CURVE ([security] curve = off there): connect with --plain");
    } else {
        snprintf(h->why, sizeof h->why,
                 "the CURVE handshake with the router failed (event 0x%x, %u): is --server-key the router's "
                 "public key (KEYS/router.pub)? (a router without CURVE closes the connection too: then --plain)",
                 (unsigned)ev, (unsigned)value);
    }
}

int ifp_handshake_poll(ifp_handshake_t *h, const ifp_curve_t *c, int timeout_ms) {
    if (!h->mon || h->state) return h->state;
    zmq_pollitem_t it = {h->mon, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) return 0;
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, h->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t id = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&id, zmq_msg_data(&ev), 2);
            memcpy(&value, (const char *)zmq_msg_data(&ev) + 2, 4);
        }
        int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) {
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, h->mon, 0);
            zmq_msg_close(&addr);
        }
        if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            h->state = 1;
        } else if (id) {
            h->state = -1;
            explain(h, c, id, value);
            break;
        }
    }
    return h->state;
}

void ifp_handshake_close(ifp_handshake_t *h) {
    if (h->mon) zmq_close(h->mon);
    h->mon = NULL;
}

void *ifp_client_connect(void *zctx, const char *endpoint, const ifp_curve_t *c, ifp_handshake_t *h, ifp_err_t *err) {
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0;
    if (h) memset(h, 0, sizeof *h);
    if (!s) {
        ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (ifp_curve_client(s, c, err) || (h && ifp_handshake_watch(zctx, s, h, err))) {
        zmq_close(s);
        return NULL;
    }
    if (zmq_connect(s, endpoint) != 0) {
        ifp_errf(err, IFP_EINVAL, "%s: %s", endpoint, zmq_strerror(errno));
        if (h) ifp_handshake_close(h);
        zmq_close(s);
        return NULL;
    }
    return s;
}
