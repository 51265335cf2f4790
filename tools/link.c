#include "link.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"

void *tools_link_connect(const char *cmd, tools_link_t *l, void *zctx, const char *endpoint) {
    ifp_err_t err = {0};
    if (ifp_curve_client_load(l->keys, l->key, l->server_key, l->plain, &l->curve, &err)) {
        fprintf(stderr, "ifp %s: %s\n", cmd, err.msg);
        return NULL;
    }
    void *s = ifp_client_connect(zctx, endpoint, &l->curve, &l->hs, &err);
    if (!s) fprintf(stderr, "ifp %s: --router %s\n", cmd, err.msg);
    return s;
}

int tools_link_wait(const char *cmd, tools_link_t *l, int timeout_ms) {
    double end = ifp_now_ms() + timeout_ms;
    for (;;) {
        double left = end - ifp_now_ms();
        int st = ifp_handshake_poll(&l->hs, &l->curve, left > 100 ? 100 : left < 0 ? 0 : (int)left);
        if (st > 0) return 0;
        if (st < 0) {
            fprintf(stderr, "ifp %s: %s\n", cmd, l->hs.why);
            return -1;
        }
        if (ifp_now_ms() >= end) return 1;
    }
}

void tools_link_close(tools_link_t *l) {
    ifp_handshake_close(&l->hs);
    memset(&l->curve, 0, sizeof l->curve);
}
