/* config_routers.c — the routers of a deployment (config.h): the one this
 * process runs, and the queries on the list that config.c's parser built
 * from [router NAME] sections (or from [router] itself). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_table.h"

const char *ifp_router_backend_connect(const ifp_router_cfg_t *r) {
    return r->backend_connect[0] ? r->backend_connect : r->backend;
}

int ifp_config_use_router(ifp_config_file_t *c, const char *name, ifp_err_t *err) {
    int at = -1;
    if (!name || !*name) {
        if (c->n_routers == 1) at = 0;
    } else {
        for (int i = 0; i < c->n_routers; i++)
            if (strcmp(c->routers[i].name, name) == 0) at = i;
    }
    if (at < 0) {
        char names[512];
        size_t n = 0;
        names[0] = '\0';
        for (int i = 0; i < c->n_routers && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  c->routers[i].name[0] ? c->routers[i].name : "(unnamed)");
        if (!name || !*name)
            return ifp_errf(err, IFP_ENOTFOUND, "%s has %d routers (%s): name the one to run", ifp_config_file_name(c),
                            c->n_routers, names);
        return ifp_errf(err, IFP_ENOTFOUND, "%s has no [router %.64s]; its routers are %s", ifp_config_file_name(c),
                        name, names);
    }
    const ifp_router_cfg_t *r = &c->routers[at];
    snprintf(c->frontend, sizeof c->frontend, "%s", r->frontend);
    snprintf(c->backend, sizeof c->backend, "%s", r->backend);
    snprintf(c->backend_connect, sizeof c->backend_connect, "%s", r->backend_connect);
    snprintf(c->host, sizeof c->host, "%s", r->host);
    snprintf(c->http_listen, sizeof c->http_listen, "%s", r->http_listen);
    c->router_index = at;
    return IFP_OK;
}

int ifp_router_line(const ifp_router_cfg_t *r, const char *key) {
    if (!key) return r->line;
    int row;
    return ifp_cfg_find_opt(IFP_CFG_S_ROUTERS, key, &row) ? r->lines[row] : 0;
}

