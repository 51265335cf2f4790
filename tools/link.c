#include "link.h"

#include <stdio.h>

int tools_link_routers(const char *cmd, tools_link_t *l, const char *list) {
    ifp_err_t err = {0};
    l->n = ifp_client_split_routers(list, l->buf, sizeof l->buf, l->addr, IFP_CLIENT_MAX_ROUTERS, &err);
    if (l->n > 0) return 0;
    fprintf(stderr, "ifp %s: --router: %s\n", cmd, err.msg);
    return -1;
}

ifp_client_t *tools_link_open(const char *cmd, const tools_link_t *l, ifp_client_opts_t *o) {
    ifp_err_t err = {0};
    o->keys = l->keys;
    o->key = l->key;
    o->server_key = l->server_key;
    o->plain = l->plain;
    ifp_client_t *cl = ifp_client_open(l->addr, l->n, o, &err);
    if (!cl) fprintf(stderr, "ifp %s: %s\n", cmd, err.msg);
    return cl;
}
