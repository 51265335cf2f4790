/* link.h — how the ifp commands that talk to routers (client, status)
 * connect: through the client library (client/client.h), to one router or
 * a comma-separated list of them, with CURVE and this machine's client key
 * when the deployment has one (security/keys.h), plain ZeroMQ when asked
 * (--plain) or when there is no key (docs/SECURITY.md). */
#ifndef IFP_TOOLS_LINK_H
#define IFP_TOOLS_LINK_H

#include "cli.h"
#include "client.h"

typedef struct {
    const char *key, *server_key, *keys; /* options as given (NULL: defaults) */
    int plain;
    char buf[4096];                      /* the --router list, split */
    const char *addr[IFP_CLIENT_MAX_ROUTERS];
    int n;
} tools_link_t;

/* The option rows of a command's table. */
#define TOOLS_LINK_OPTS(l)                                                                                          \
    {"key", 0, CLI_STR, &(l).key, 0, 0, "this client's secret key file (default KEYS/client.key, if it exists)", 0}, \
    {"server-key", 0, CLI_STR, &(l).server_key, 0, 0,                                                                \
     "the router's public key: Z85 text or a file (default KEYS/router.pub)", 0},                                    \
    {"keys", 0, CLI_STR, &(l).keys, 0, 0,                                                                            \
     "the keys folder KEYS (default $IFP_KEYS, else ${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys)", 0},                 \
    {"plain", 0, CLI_FLAG, &(l).plain, 0, 0, "no CURVE: for a router run with [security] curve = off", 0}

/* Splits --router's list into l->addr (errors printed as "ifp CMD: --router:
 * ..."): 0, or -1 (a usage error). */
int tools_link_routers(const char *cmd, tools_link_t *l, const char *list);
/* A client of l's routers with o and l's keys (errors printed as
 * "ifp CMD: ..."; NULL then). */
ifp_client_t *tools_link_open(const char *cmd, const tools_link_t *l, ifp_client_opts_t *o);

#endif
