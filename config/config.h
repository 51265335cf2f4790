/* config.h — the cluster configuration: one INI file read by ifp-router,
 * every ifp-shard rank and the deploy/ scripts (deploy/lib.sh's awk reader
 * follows the same rules).  Table-driven: one row per key in
 * config_table.c (section, key, kind, default, range); every value is
 * validated and every error reads `FILE:LINE: [section] key: what is wrong`.
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
 *   host = localhost                   ; where the launchers run the router (localhost = this machine)
 *   backend_connect = tcp://rt1:5556   ; what groups connect to, when backend binds a wildcard
 *                                      ; (default: backend as written)
 *
 *   [router r1]                        ; optional: several routers at once (active-active);
 *   frontend = tcp://127.0.0.1:5555    ; each needs its own frontend and backend (required here);
 *   backend = tcp://127.0.0.1:5556     ; [router] then holds only the shared settings above
 *   backend_connect = tcp://rt1:5556   ; (default: backend as written)
 *   host = rt1                         ; (default: [router] host)
 *   http_listen = 127.0.0.1:8080       ; its HTTP API (default: [http] listen)
 *   [router r2]
 *   frontend = tcp://127.0.0.1:5565
 *   backend = tcp://127.0.0.1:5566
 *   http_listen = 127.0.0.1:8081
 *
 *   [model]
 *   model = ../models/ifp-mix/ifp-mix.gguf          ; relative to this file
 *   predictor = ../models/ifp-mix/ifp-mix-predictor.gguf
 *   clusters = ../models/ifp-mix/clusters-k4.gguf   ; optional
 *   weight_type = as-stored            ; as-stored | f32 | f16 | bf16 | q8_0: matrices converted once at load
 *   predictor_weight_type = as-stored  ; the same for the predictor
 *
 *   [security]                         ; optional: every key has a default
 *   curve = on                         ; on | off: CURVE on every ZeroMQ link
 *   keys = keys                        ; the key folder, relative to this file; need not
 *                                      ; exist yet (default: chosen at run time, security/keys.h)
 *
 *   [deploy]                           ; optional: the launchers of deploy/ (every key has a default)
 *   agent = ssh                        ; starts a process on another host: AGENT HOST COMMAND...
 *                                      ; (deploy/netns-agent.sh for network namespaces)
 *   mpirun = mpirun                    ; the mpirun program
 *   mpirun_args = --mca btl tcp,self   ; extra mpirun options (default: none)
 *
 *   [group g0]                         ; one section per shard group
 *   stages = 2                         ; MPI ranks (pipeline stages)
 *   layers = 2,2                       ; layers per stage (default: even split)
 *   cluster = 0                        ; cluster id of the clusters file, or dense
 *   slots = 8                          ; concurrent sequences
 *   ctx = 0                            ; KV positions per slot (0 = model context)
 *   max_batch = 64                     ; rows per micro-batch (prefill chunk)
 *   batch_timeout_ms = 30000           ; a micro-batch not back by then: the group aborts (MPI_Abort)
 *   mpi_if = lo                        ; interfaces or CIDR subnets MPI may use (lo | ib0,eth1 | 10.1.0.0/16)
 *   hosts = node1,node2                ; one host for every stage, or one per stage (default localhost) ...
 *   ; hostfile = g0.hosts              ; ... or an MPI hostfile, relative to this file (not both)
 *
 *   [client alice]                     ; one section per admitted client (optional)
 *   key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  ; its CURVE public key (40 Z85 characters) ...
 *   ; key = clients/alice.pub          ; ... or a file holding it, relative to this file
 *   max_inflight = 0                   ; its requests at once (0 = no limit)
 *
 * Rules (a file that breaks one is refused as a whole, never half-loaded):
 *   - sections are [router], [router NAME], [model], [security], [deploy], [http],
 *     [group NAME] and [client NAME]; each appears at most once (a second one is an
 *     error naming both lines); none is empty; [model] (with model =) and at
 *     least one [group NAME] are required; [client NAME] requires key =;
 *   - NAME is 1..63 letters, digits, '-' or '_' (for groups and clients): a
 *     group's is the ZeroMQ identity of its stage 0, and "NAME.out" that of
 *     its last stage;
 *   - a client's key is a key when it is exactly 40 characters of the Z85
 *     alphabet (0-9 a-z A-Z . - : + = ^ ! / * ? & < > ( ) [ ] { } @ % $ #),
 *     else a path (write a 40-character path as ./PATH);
 *   - paths ([model], [security] keys, a client's key file, a group's
 *     hostfile) are not checked here beyond their length (none is opened);
 *     [model]'s files are router/confcheck.h's, a hostfile must exist when
 *     its group is launched;
 *   - a host ([router] host, each of a group's hosts) is 1..255 of
 *     A-Z a-z 0-9 . _ : - not starting with '-' (an agent or mpirun would
 *     take it for an option): a host name, an IP address (IPv6 without
 *     brackets) or a network namespace name; localhost and 127.0.0.1 are
 *     this machine (ifp_config_host_is_local);
 *   - a group's hosts are one host (every stage there) or exactly `stages`
 *     hosts (stage i on host i; a host may repeat), comma-separated without
 *     spaces; hosts and hostfile together are an error;
 *   - a backend that binds a wildcard address (tcp://ADDR:PORT with ADDR
 *     one of `*`, 0.0.0.0, [::]) needs backend_connect, which must not be a
 *     wildcard itself;
 *   - [deploy] values are 1..1023 printable ASCII characters, kept as
 *     written (commands are not resolved against this file's folder);
 *   - `key = value` (or `key: value`) lines; blank lines and lines starting
 *     with ';' or '#' are comments, " ;" starts a comment inside a line;
 *     indentation is ignored (no continuation lines); a key given twice in
 *     one section keeps its last value; a line is at most 198 characters
 *     (inih's line buffer).
 *   - [router NAME] sections list the routers of an active-active
 *     deployment (every group connects to every router's backend); with
 *     them, [router] must not set frontend, backend or backend_connect; two
 *     routers on one host never share a frontend, backend or HTTP address.
 *     Without them the one router is [router] itself (its name is "").
 * Model-dependent checks (files exist and match, cluster ids, layer splits)
 * are router/confcheck.h's. */
#ifndef IFP_CONFIG_H
#define IFP_CONFIG_H

#include <stddef.h>

#include "err.h"

#define IFP_CFG_MAX_GROUPS 64
#define IFP_CFG_MAX_STAGES 16
#define IFP_CFG_PATH 1024
#define IFP_CFG_MAX_CLIENTS 256
#define IFP_CFG_NAME 64               /* group and client names: 1..IFP_CFG_NAME-1 characters */
#define IFP_CFG_MPI_IF 256            /* [group] mpi_if: 1..IFP_CFG_MPI_IF-1 characters */
#define IFP_CFG_HOST 256              /* a host: 1..IFP_CFG_HOST-1 characters */
#define IFP_CFG_HOSTS 1024            /* [group] hosts as written: 1..IFP_CFG_HOSTS-1 characters */
#define IFP_CFG_KEYS 64               /* >= the rows of the option table */
#define IFP_CFG_MAX_ROUTERS 16
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
    char mpi_if[IFP_CFG_MPI_IF];      /* interfaces or CIDR subnets, comma-separated ("lo", "ib0,eth1") */
    char hosts[IFP_CFG_HOSTS];        /* the stages' hosts as written ("localhost", "a,b"): ifp_group_host */
    int n_hosts;                      /* hosts in it: 1 (every stage there) or stages (stage i on host i) */
    char hostfile[IFP_CFG_PATH];      /* an MPI hostfile, resolved; "" = none (then hosts places the stages) */
    int line;                         /* of the [group NAME] header */
    int lines[IFP_CFG_KEYS];          /* per option row: the line that set it, 0 = default (ifp_group_line) */
} ifp_group_cfg_t;

typedef struct {
    char name[IFP_CFG_NAME];          /* the client's name (what the router admits its key as) */
    char key[IFP_CFG_PATH];           /* 40 Z85 characters as written, or a resolved path (key_is_file) */
    int key_is_file;                  /* 1: key is a file holding the key (not checked to exist) */
    int max_inflight;                 /* its requests at once; 0 = no limit */
    int line;                         /* of the [client NAME] header */
    int lines[IFP_CFG_KEYS];          /* per option row: the line that set it, 0 = default (ifp_client_line) */
} ifp_client_cfg_t;

/* One router of the deployment: a [router NAME] section, or [router] itself
 * when there is none. */
typedef struct {
    char name[IFP_CFG_NAME];          /* "" = the one unnamed router ([router]) */
    char frontend[IFP_CFG_PATH], backend[IFP_CFG_PATH];
    char backend_connect[IFP_CFG_PATH]; /* "" = backend (ifp_router_backend_connect) */
    char host[IFP_CFG_HOST];
    char http_listen[IFP_CFG_HOST + 16]; /* "off" or ADDRESS:PORT */
    int line;                         /* of its header */
    int lines[IFP_CFG_KEYS];          /* per option row: the line that set it, 0 = default */
} ifp_router_cfg_t;

typedef struct {
    char path[IFP_CFG_PATH]; /* the file read ("" for ifp_config_parse) */
    /* [router] */
    char frontend[IFP_CFG_PATH], backend[IFP_CFG_PATH];
    int heartbeat_ms, liveness;
    double min_coverage, balance_rel;
    int balance_abs, queue_max, max_tokens, max_tokens_limit;
    char policy[32];
    int predictor_threads;            /* 0 = auto */
    char host[IFP_CFG_HOST];          /* where the launchers run the router ("localhost" = this machine) */
    char backend_connect[IFP_CFG_PATH]; /* what groups connect to; "" = backend (ifp_config_backend_connect) */
    /* [model] — absolute or relative to the config file's folder (resolved) */
    char model[IFP_CFG_PATH], predictor[IFP_CFG_PATH], clusters[IFP_CFG_PATH];
    char weight_type[16], predictor_weight_type[16]; /* as-stored | f32 | f16 | bf16 | q8_0 */
    /* [security] */
    int curve;                        /* 1: CURVE on every ZeroMQ link, 0: plain */
    char keys[IFP_CFG_PATH];          /* key folder, resolved; "" = chosen at run time; need not exist */
    /* [deploy] — for the launchers of deploy/, as written */
    char agent[IFP_CFG_PATH];         /* run as AGENT HOST COMMAND... on another host ("ssh") */
    char mpirun[IFP_CFG_PATH];        /* the mpirun program ("mpirun") */
    char mpirun_args[IFP_CFG_PATH];   /* extra mpirun options; "" = none */
    /* [http] — the OpenAI-compatible HTTP API of ifp-router (router/http.h) */
    char http_listen[IFP_CFG_HOST + 16]; /* "off" or ADDRESS:PORT */
    char http_auth[8];                /* auto | on | off (auto: as curve) */
    char http_api_keys[IFP_CFG_PATH]; /* API keys file, resolved; "" = KEYS/api_keys */
    int http_max_body;                /* bytes; 0 = derived from the model's limits */
    int http_max_connections;
    char http_tls_cert[IFP_CFG_PATH], http_tls_key[IFP_CFG_PATH]; /* PEM; "" = plain HTTP */
    int http_allow_plain;             /* plain HTTP on a non-loopback address */
    char http_chat_template[16];      /* instruct | plain */
    char http_model_id[IFP_CFG_NAME]; /* "" = the model file's stem */
    int http_metrics_auth;            /* GET /metrics needs an API key too */
    /* [group NAME] */
    int n_groups;
    ifp_group_cfg_t groups[IFP_CFG_MAX_GROUPS];
    /* the routers: [router NAME] sections, or one made of [router] (and [http] listen).
     * router_index: the one this process is (ifp_config_use_router), -1 before */
    int n_routers, router_index;
    ifp_router_cfg_t routers[IFP_CFG_MAX_ROUTERS];
    /* [client NAME] */
    int n_clients;
    ifp_client_cfg_t clients[IFP_CFG_MAX_CLIENTS];
    /* where things are in the file (ifp_config_line) */
    int router_line, model_line, security_line, deploy_line, http_line; /* section headers, 0 = absent */
    int lines[IFP_CFG_KEYS];          /* per option row: the line that set it, 0 = default */
    int n_lines;                      /* lines in the file */
} ifp_config_file_t;

/* Defaults for everything (no groups, no clients), from the option table.
 * The struct is large (~500 KB: keep it static or on the heap). */
void ifp_config_defaults(ifp_config_file_t *c);
/* Reads and validates path (relative paths resolve against its folder).
 * IFP_EIO if it cannot be read, IFP_EFORMAT for anything wrong in it (the
 * message reads `FILE:LINE: [section] key: what is wrong`; *c then holds the
 * defaults and no group or client). */
int ifp_config_load(const char *path, ifp_config_file_t *c, ifp_err_t *err);
/* The same from a string (tests; messages name the file "config");
 * relative paths resolve against base_dir (NULL: left as written). */
int ifp_config_parse(const char *text, const char *base_dir, ifp_config_file_t *c, ifp_err_t *err);
/* The group named name, or NULL. */
const ifp_group_cfg_t *ifp_config_group(const ifp_config_file_t *c, const char *name);
/* The client named name, or NULL. */
const ifp_client_cfg_t *ifp_config_client(const ifp_config_file_t *c, const char *name);
/* The endpoint groups connect to: [router] backend_connect when set, else
 * backend as written.  Borrowed from c. */
const char *ifp_config_backend_connect(const ifp_config_file_t *c);
/* What groups connect to for router r: its backend_connect, else backend. */
const char *ifp_router_backend_connect(const ifp_router_cfg_t *r);
/* Makes c's [router] frontend, backend, backend_connect, host and [http]
 * listen those of the router named name (NULL or "": the only router; an
 * error naming the routers when there are several), for the code that runs
 * one router (ifp-router --name, ifp status).  Sets c->router_index.
 * IFP_ENOTFOUND for an unknown name or an ambiguous NULL. */
int ifp_config_use_router(ifp_config_file_t *c, const char *name, ifp_err_t *err);
/* The host of stage (0..stages-1) of group g, from its hosts, into
 * out[len]: IFP_OK; IFP_ENOTFOUND when g places its stages with a hostfile
 * (mpirun reads it; out gets ""); IFP_ERANGE for a stage out of range or an
 * out too small (out gets "" when len > 0); IFP_EINVAL when g's hosts do
 * not fit its stages (a group not from the parser). */
int ifp_group_host(const ifp_group_cfg_t *g, int stage, char *out, size_t len);
/* 1 when host means this machine ("localhost" or "127.0.0.1"), else 0. */
int ifp_config_host_is_local(const char *host);
/* Layer ranges of a group for a model of n_layers: begin[s], end[s] for each
 * stage; checks an explicit split sums to n_layers.  Messages read
 * "[group NAME] stages|layers: ...". */
int ifp_config_split(const ifp_group_cfg_t *g, int n_layers, int *begin, int *end, ifp_err_t *err);

/* Where a setting is in the file: the line of the last `key =` in section
 * ("router", "model", "security" or "deploy"), or of the section header when key is
 * NULL; 0 when the key was not given (its default applies) or the section
 * is absent. */
int ifp_config_line(const ifp_config_file_t *c, const char *section, const char *key);
/* The same for a key of group g (key NULL: its [group NAME] header). */
int ifp_group_line(const ifp_group_cfg_t *g, const char *key);
/* The same for a key of router r (key NULL: its header). */
int ifp_router_line(const ifp_router_cfg_t *r, const char *key);
/* The same for a key of client cl (key NULL: its [client NAME] header). */
int ifp_client_line(const ifp_client_cfg_t *cl, const char *key);
/* "FILE" of the messages: c->path, or "config" for a parsed string. */
const char *ifp_config_file_name(const ifp_config_file_t *c);

/* One row of the option table, for documentation and tests. */
typedef struct {
    const char *section; /* "router", "model", "security", "deploy", "group" or "client" */
    const char *key;
    const char *def;     /* the default as it would be written in the file; "" = none */
    char range[160];     /* the values accepted, in words */
} ifp_config_key_t;

/* Row i (from 0) of the option table: IFP_OK, or IFP_ENOTFOUND past the end. */
int ifp_config_key_info(int i, ifp_config_key_t *out);

#endif
