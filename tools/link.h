/* link.h — how the ifp commands that talk to a router (client, status)
 * connect: CURVE with this machine's client key when the deployment has
 * one (security/keys.h), plain ZeroMQ when asked (--plain) or when there is
 * no key; the handshake is watched so that a refused client says why at
 * once (docs/SECURITY.md). */
#ifndef IFP_TOOLS_LINK_H
#define IFP_TOOLS_LINK_H

#include "cli.h"
#include "curve.h"

typedef struct {
    const char *key, *server_key, *keys; /* options as given (NULL: defaults) */
    int plain;
    ifp_curve_t curve;
    ifp_handshake_t hs;
} tools_link_t;

/* The option rows of a command's table. */
#define TOOLS_LINK_OPTS(l)                                                                                          \
    {"key", 0, CLI_STR, &(l).key, 0, 0, "this client's secret key file (default KEYS/client.key, if it exists)", 0}, \
    {"server-key", 0, CLI_STR, &(l).server_key, 0, 0,                                                                \
     "the router's public key: Z85 text or a file (default KEYS/router.pub)", 0},                                    \
    {"keys", 0, CLI_STR, &(l).keys, 0, 0,                                                                            \
     "the keys folder KEYS (default $IFP_KEYS, else ${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys)", 0},                 \
    {"plain", 0, CLI_FLAG, &(l).plain, 0, 0, "no CURVE: for a router run with [security] curve = off", 0}

/* Loads the keys and connects a DEALER to endpoint (errors printed as
 * "ifp CMD: ..."; NULL then). */
void *tools_link_connect(const char *cmd, tools_link_t *l, void *zctx, const char *endpoint);
/* Waits up to timeout_ms for the handshake: 0 done, -1 refused (the reason
 * printed), 1 no handshake yet (nothing printed: no router there?). */
int tools_link_wait(const char *cmd, tools_link_t *l, int timeout_ms);
void tools_link_close(tools_link_t *l);

#endif
