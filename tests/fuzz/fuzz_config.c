/* fuzz_config — the cluster config (config.h): ifp_config_parse on the input
 * as INI text, then every field of the result checked against the
 * contract (strings NUL-terminated in their buffers, values inside the
 * bounds the table allows, group names unique and found by
 * ifp_config_group, layer splits that cover the model), and the same bytes
 * read from a file with ifp_config_load must give the same answer. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define BASE_DIR "/proc/self/fd"

static void check_str(const char *s, size_t cap, const char *what) {
    size_t n = strnlen(s, cap);
    FUZZ_CHECK(n < cap, "%s is not NUL-terminated", what);
    ifp_fuzz_touch(s, n);
}

static void check_config(const ifp_config_file_t *c) {
    check_str(c->frontend, sizeof c->frontend, "frontend");
    check_str(c->backend, sizeof c->backend, "backend");
    check_str(c->policy, sizeof c->policy, "policy");
    check_str(c->model, sizeof c->model, "model");
    check_str(c->predictor, sizeof c->predictor, "predictor");
    check_str(c->clusters, sizeof c->clusters, "clusters");
    check_str(c->keys, sizeof c->keys, "keys");
    check_str(c->host, sizeof c->host, "host");
    check_str(c->backend_connect, sizeof c->backend_connect, "backend_connect");
    check_str(c->agent, sizeof c->agent, "agent");
    check_str(c->mpirun, sizeof c->mpirun, "mpirun");
    check_str(c->mpirun_args, sizeof c->mpirun_args, "mpirun_args");
    FUZZ_CHECK(c->curve == 0 || c->curve == 1, "curve %d", c->curve);
    FUZZ_CHECK(c->host[0] && c->agent[0] && c->mpirun[0], "empty host, agent or mpirun accepted");
    FUZZ_CHECK(strncmp(ifp_config_backend_connect(c), "tcp://*", 7) != 0, "groups would connect to a wildcard");
    FUZZ_CHECK(c->n_clients >= 0 && c->n_clients <= IFP_CFG_MAX_CLIENTS, "%d clients", c->n_clients);
    for (int i = 0; i < c->n_clients; i++) {
        const ifp_client_cfg_t *cl = &c->clients[i];
        check_str(cl->name, sizeof cl->name, "client name");
        check_str(cl->key, sizeof cl->key, "client key");
        FUZZ_CHECK(cl->key[0], "client %s without a key", cl->name);
        FUZZ_CHECK(ifp_config_client(c, cl->name) == cl, "client '%s' is not found by name (or twice)", cl->name);
        FUZZ_CHECK(cl->max_inflight >= 0, "client %s: max_inflight %d", cl->name, cl->max_inflight);
    }
    FUZZ_CHECK(c->model[0], "accepted without [model] model");
    FUZZ_CHECK(c->max_tokens >= 1 && c->max_tokens <= c->max_tokens_limit, "max_tokens %d, limit %d", c->max_tokens,
               c->max_tokens_limit);
    FUZZ_CHECK(c->heartbeat_ms >= 10 && c->liveness >= 1 && c->queue_max >= 0, "router values out of range");
    FUZZ_CHECK(c->min_coverage >= 0 && c->min_coverage <= 1 && c->balance_rel >= 1, "router values out of range");
    FUZZ_CHECK(c->n_groups >= 1 && c->n_groups <= IFP_CFG_MAX_GROUPS, "%d groups", c->n_groups);
    FUZZ_CHECK(strcmp(c->frontend, c->backend) != 0, "frontend and backend are both %s", c->frontend);
    for (int i = 0; i < c->n_groups; i++) {
        const ifp_group_cfg_t *g = &c->groups[i];
        check_str(g->name, sizeof g->name, "group name");
        FUZZ_CHECK(g->name[0] && strspn(g->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
                       strlen(g->name),
                   "group name '%s' is not 1..63 letters, digits, '-' or '_'", g->name);
        FUZZ_CHECK(ifp_config_group(c, g->name) == g, "group '%s' is not found by name (or twice)", g->name);
        FUZZ_CHECK(g->stages >= 1 && g->stages <= IFP_CFG_MAX_STAGES, "group %s: %d stages", g->name, g->stages);
        FUZZ_CHECK(g->n_layers_given == 0 || g->n_layers_given == g->stages, "group %s: %d layers for %d stages",
                   g->name, g->n_layers_given, g->stages);
        FUZZ_CHECK(g->cluster == IFP_CLUSTER_DENSE || (g->cluster >= 0 && c->clusters[0]), "group %s: cluster %d",
                   g->name, g->cluster);
        FUZZ_CHECK(g->slots >= 1 && g->max_batch >= 1 && g->ctx >= 0, "group %s: values out of range", g->name);
        check_str(g->mpi_if, sizeof g->mpi_if, "mpi_if");
        check_str(g->hosts, sizeof g->hosts, "hosts");
        check_str(g->hostfile, sizeof g->hostfile, "hostfile");
        FUZZ_CHECK(g->mpi_if[0] && !strchr(g->mpi_if, ' '), "group %s: mpi_if '%s'", g->name, g->mpi_if);
        if (!g->hostfile[0]) {
            FUZZ_CHECK(g->n_hosts == 1 || g->n_hosts == g->stages, "group %s: %d hosts for %d stages", g->name,
                       g->n_hosts, g->stages);
            for (int st = 0; st < g->stages; st++) {
                char h[256];
                FUZZ_CHECK(ifp_group_host(g, st, h, sizeof h) == IFP_OK && h[0] && h[0] != '-',
                           "group %s: stage %d has no host", g->name, st);
            }
        }
        /* the split for a few model depths: contiguous, covering [0, n) */
        static const int depths[] = {1, 4, 7, 32};
        for (size_t k = 0; k < sizeof depths / sizeof *depths; k++) {
            int begin[IFP_CFG_MAX_STAGES], end[IFP_CFG_MAX_STAGES];
            ifp_err_t err = {0};
            int rc = ifp_config_split(g, depths[k], begin, end, &err);
            if (rc) {
                ifp_fuzz_check_err(rc, &err);
                continue;
            }
            for (int s = 0; s < g->stages; s++) {
                FUZZ_CHECK(begin[s] == (s ? end[s - 1] : 0) && end[s] >= begin[s], "group %s: stage %d is [%d, %d)",
                           g->name, s, begin[s], end[s]);
            }
            FUZZ_CHECK(end[g->stages - 1] == depths[k], "group %s: split ends at %d of %d", g->name,
                       end[g->stages - 1], depths[k]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    ifp_config_file_t *c = malloc(sizeof *c), *c2 = malloc(sizeof *c2);
    FUZZ_CHECK(c && c2, "out of memory");
    ifp_err_t err = {0}, err2 = {0};
    int rc = ifp_config_parse(text, BASE_DIR, c, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(rc == IFP_EFORMAT && strncmp(err.msg, "config:", 7) == 0, "parse error %d '%s' is not \"config:LINE: ...\"",
                   rc, err.msg);
        FUZZ_CHECK(c->n_groups == 0, "a refused config left %d groups behind", c->n_groups);
    } else {
        check_config(c);
    }
    /* the file reader: same text (up to a NUL, where the string stops) */
    if (!memchr(data, '\0', size)) {
        const char *path = ifp_fuzz_memfile(0, data, size);
        int rc2 = ifp_config_load(path, c2, &err2);
        if (rc2) ifp_fuzz_check_err(rc2, &err2);
        else check_config(c2);
        FUZZ_CHECK((rc == 0) == (rc2 == 0), "parse says %d (%s), load says %d (%s)", rc, err.msg, rc2, err2.msg);
        if (!rc) {
            memcpy(c2->path, c->path, sizeof c->path);
            FUZZ_CHECK(memcmp(c, c2, sizeof *c) == 0, "parse and load read the same text differently");
        }
    }
    free(c);
    free(c2);
    free(text);
    return 0;
}
