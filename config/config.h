/* config.h — the cluster configuration: one INI file read by the router and
 * by every shard group (inih; table-driven, every value validated).
 *
 *   [router]
 *   frontend = tcp://127.0.0.1:5555    ; clients (ZeroMQ ROUTER)
 *   backend = tcp://127.0.0.1:5556     ; shard groups (ZeroMQ ROUTER)
 *   heartbeat_ms = 250                 ; group heartbeat period
 *   liveness = 4                       ; missed beats before a group is dead
 *   min_coverage = 1.0                 ; eligible group: coverage >= this
 *   balance_abs = 256                  ; imbalance test, tokens: max-min > abs ...
 *   balance_rel = 1.5                  ; ... and max > rel * min
 *   queue_max = 256                    ; requests waiting for a slot; beyond: "overloaded"
 *   max_tokens = 128                   ; default new tokens per request
 *   max_tokens_limit = 4096
 *   policy = affinity                  ; affinity | round-robin | least-loaded | dense-only
 *   predictor_threads = 0              ; predictor workers (0 = the cores left after the loop, at least 1)
 *
 *   [model]
 *   model = ../models/ifp-mix/ifp-mix.gguf          ; relative to this file
 *   predictor = ../models/ifp-mix/ifp-mix-predictor.gguf
 *   clusters = ../models/ifp-mix/clusters-k4.gguf   ; optional
 *
 *   [group g0]                         ; one section per shard group
 *   stages = 2                         ; MPI ranks (pipeline stages)
 *   layers = 2,2                       ; layers per stage (default: even split)
 *   cluster = 0                        ; cluster id of the clusters file, or dense
 *   slots = 8                          ; concurrent sequences
 *   ctx = 0                            ; KV positions per slot (0 = model context)
 *   max_batch = 64                     ; rows per micro-batch (prefill chunk)
 *   batch_timeout_ms = 30000           ; a micro-batch not back by then: the group aborts (MPI_Abort)
 */
#ifndef IFP_CONFIG_H
#define IFP_CONFIG_H

#include "err.h"

#define IFP_CFG_MAX_GROUPS 64
#define IFP_CFG_MAX_STAGES 16
#define IFP_CFG_PATH 1024
#define IFP_CFG_NAME 64
#define IFP_CLUSTER_DENSE (-1)

typedef struct {
    char name[IFP_CFG_NAME];          /* group id (ZeroMQ identity of stage 0) */
    int stages;
    int layers[IFP_CFG_MAX_STAGES];   /* layers per stage; 0s = even split (resolved by ifp_config_split) */
    int n_layers_given;
    int cluster;                      /* IFP_CLUSTER_DENSE or a cluster index */
    int slots;
    int ctx;
    int max_batch;
    int batch_timeout_ms;
} ifp_group_cfg_t;

typedef struct {
    char path[IFP_CFG_PATH]; /* the file read */
    /* [router] */
    char frontend[IFP_CFG_PATH], backend[IFP_CFG_PATH];
    int heartbeat_ms, liveness;
    double min_coverage, balance_rel;
    int balance_abs, queue_max, max_tokens, max_tokens_limit;
    char policy[32];
    int predictor_threads;            /* 0 = auto */
    /* [model] — absolute or relative to the config file's folder (resolved) */
    char model[IFP_CFG_PATH], predictor[IFP_CFG_PATH], clusters[IFP_CFG_PATH];
    /* [group NAME] */
    int n_groups;
    ifp_group_cfg_t groups[IFP_CFG_MAX_GROUPS];
} ifp_config_file_t;

/* Defaults for everything (no groups). */
void ifp_config_defaults(ifp_config_file_t *c);
/* Reads and validates path.  Errors name the file, line, key and problem. */
int ifp_config_load(const char *path, ifp_config_file_t *c, ifp_err_t *err);
/* The same from a string (tests); relative paths resolve against base_dir. */
int ifp_config_parse(const char *text, const char *base_dir, ifp_config_file_t *c, ifp_err_t *err);
/* The group named name, or NULL. */
const ifp_group_cfg_t *ifp_config_group(const ifp_config_file_t *c, const char *name);
/* Layer ranges of a group for a model of n_layers: begin[s], end[s] for each
 * stage; checks an explicit split sums to n_layers. */
int ifp_config_split(const ifp_group_cfg_t *g, int n_layers, int *begin, int *end, ifp_err_t *err);

#endif
