/* curve.h — CURVE on a ZeroMQ socket, and watching a client's handshake.
 *
 * The router's two ROUTER sockets are CURVE servers (ifp_curve_server) and
 * run every connection past its ZAP handler (router/zap.c) under a domain
 * that says which keys may use it; shard ranks, `ifp client` and the
 * benchmarks are CURVE clients that know the router's public key.  With
 * `[security] curve = off` none of this is set: plain ZeroMQ. */
#ifndef IFP_CURVE_H
#define IFP_CURVE_H

#include "keys.h"

#define IFP_ZAP_FRONTEND "ifp-frontend" /* clients */
#define IFP_ZAP_BACKEND "ifp-backend"   /* shard groups */

/* A client end's settings. */
typedef struct {
    int on;                       /* 0: plain ZeroMQ */
    char server_pub[IFP_Z85_KEY]; /* the router's public key */
    ifp_keypair_t me;
    char key_path[IFP_KEYS_PATH]; /* where me came from (messages) */
} ifp_curve_t;

/* Makes sock a CURVE server with kp under ZAP domain (before bind). */
int ifp_curve_server(void *sock, const ifp_keypair_t *kp, const char *zap_domain, ifp_err_t *err);
/* Makes sock a CURVE client per c (before connect); nothing when !c->on. */
int ifp_curve_client(void *sock, const ifp_curve_t *c, ifp_err_t *err);

/* A client's settings from its options.  plain: no CURVE.  Else key_file
 * (a secret key file; NULL = KEYS/client.key) and server_key (a Z85 key
 * or a file of one; NULL = KEYS/router.pub), KEYS = ifp_keys_dir(keys_dir).
 * When neither file was named and KEYS/client.key does not exist, the
 * client is plain (c->on = 0) and c->key_path says where it looked. */
int ifp_curve_client_load(const char *keys_dir, const char *key_file, const char *server_key, int plain,
                          ifp_curve_t *c, ifp_err_t *err);

/* The handshake of a connecting socket, watched through a socket monitor
 * (set up before zmq_connect), so that a refused client says why at once
 * instead of waiting for its timeout. */
typedef struct {
    void *mon;
    int state; /* 0 pending, 1 succeeded, -1 failed */
    char why[640];
} ifp_handshake_t;

int ifp_handshake_watch(void *zctx, void *sock, ifp_handshake_t *h, ifp_err_t *err);
/* Reads the monitor's events, waiting up to timeout_ms for the first:
 * 1 once a handshake succeeded, -1 if one failed (h->why says why, for a
 * user: wrong key, unknown key, plain vs CURVE), 0 not yet. */
int ifp_handshake_poll(ifp_handshake_t *h, const ifp_curve_t *c, int timeout_ms);
void ifp_handshake_close(ifp_handshake_t *h);

/* A DEALER of zctx connected to endpoint as a client per c (linger 0),
 * its handshake watched through h when h is not NULL; NULL on error. */
void *ifp_client_connect(void *zctx, const char *endpoint, const ifp_curve_t *c, ifp_handshake_t *h, ifp_err_t *err);

#endif
