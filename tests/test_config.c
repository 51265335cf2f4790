/* test_config — the cluster config (config/config.h) and its checkers.
 *
 *   - every INI rule, with the exact line each error names: syntax, unknown
 *     sections and keys, bad values, empty and duplicate sections, group
 *     and client names ("a" next to "a.out"), keys that must agree;
 *   - [security] (curve, keys), [client NAME] (a Z85 key or a key file,
 *     max_inflight) and [group NAME] mpi_if: defaults, values, lines;
 *   - multi-node: [router] host and backend_connect (a wildcard backend
 *     needs it), [deploy] (agent, mpirun, mpirun_args), [group NAME] hosts
 *     (one, or one per stage: ifp_group_host) and hostfile (not with hosts):
 *     defaults, values, lines, the rules and their messages;
 *   - the configs in use accepted: deploy/local.ini and the ones
 *     router_testlib.h, cluster_testlib.h and shard_testlib.h write;
 *   - deploy/lib.sh's awk reader lists the same groups on every accepted
 *     file (never a client), refuses the section-level mistakes and bad
 *     placements (hosts) at the same line, and reads [security], [deploy],
 *     [router] host and a group's keys as the C parser does (ifp_ini_get,
 *     ifp_ini_group_get);
 *   - `ifp-router --check-config` (the real binary): exit 0 and a summary
 *     on deploy/local.ini, exit 1 and a FILE:LINE message on broken files
 *     (the INI, then the model files), no socket bound; deploy/local.sh
 *     start refuses such a file before launching anything;
 *   - docs/OPERATIONS.md's table and docs/CONFIG.md list every key of the
 *     option table with its default (CONFIG.md with its accepted values as
 *     ifp_config_key_info words them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

#define ROUTER_BIN IFP_BINARY_DIR "/router/ifp-router"
#define MIX IFP_SOURCE_DIR "/models/ifp-mix/"
#define STORIES IFP_SOURCE_DIR "/models/stories260K.gguf"

#define M "[model]\nmodel = m.gguf\n"           /* lines 1-2 */
#define G "[group g0]\nstages = 1\n"            /* 2 lines */
#define CL "[model]\nmodel = m.gguf\nclusters = c.gguf\n"
#define N63 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-" /* the longest group name */
/* CURVE public keys in Z85 (the ZeroMQ guide's example pair's public halves) */
#define KEY_A "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define KEY_B "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

/* A deployment across hosts: every multi-node key (lines 1-22). */
#define MULTI                                                                                                   \
    "[router]\nhost = rt1.example\nbackend = tcp://*:5556\nbackend_connect = tcp://rt1.example:5556\n"            \
    "[deploy]\nagent = deploy/netns-agent.sh\nmpirun = /usr/bin/mpirun\n"                                        \
    "mpirun_args = --mca btl tcp,self --mca btl_tcp_if_include eth1\n" M                                        \
    "[group g0]\nstages = 3\nhosts = node1,node2,node1\n"                                                        \
    "[group g1]\nstages = 2\nhosts = fe80::1\n"                                                                  \
    "[group g2]\nstages = 4\nhostfile = g2.hosts\n"                                                              \
    "[group g3]\nhosts = ns_a\nstages = 1\n"

static char g_dir[64];
static ifp_config_file_t g_cfg; /* large: off the stack */

static const char *write_file(const char *name, const char *text) {
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* "NAME STAGES\n" per group, as deploy/lib.sh's ifp_ini_groups prints them. */
static void c_listing(const ifp_config_file_t *c, char *out, size_t len) {
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < c->n_groups && at < len; i++)
        at += (size_t)snprintf(out + at, len - at, "%s %d\n", c->groups[i].name, c->groups[i].stages);
}

/* ifp_ini_groups FILE through bash: its status, stdout and stderr. */
static tu_run_t awk_listing(const char *path) {
    char script[512];
    snprintf(script, sizeof script, "source '%s/deploy/lib.sh' && ifp_ini_groups \"$0\"", IFP_SOURCE_DIR);
    const char *argv[] = {"/bin/bash", "-c", script, path, NULL};
    return tu_run(argv);
}

/* ------------------------------------------------------------ accepted */

typedef struct {
    const char *what, *text, *groups; /* groups: "NAME STAGES\n"... */
} good_t;

static const good_t GOOD[] = {
    {"local.ini as written",
     "; The local cluster on loopback.\n; Paths are relative to this file.\n\n[router]\nfrontend = tcp://127.0.0.1:5555\n"
     "backend = tcp://127.0.0.1:5556\nheartbeat_ms = 250\nliveness = 4\nmin_coverage = 1.0\nbalance_abs = 256\n"
     "balance_rel = 1.5\nqueue_max = 256\nmax_tokens = 128\npolicy = affinity\n\n[model]\n"
     "model = ../models/ifp-mix/ifp-mix.gguf\npredictor = ../models/ifp-mix/ifp-mix-predictor.gguf\n"
     "clusters = ../models/ifp-mix/clusters-k4.gguf\n\n[group g0]\nstages = 2\ncluster = 0\nslots = 8\n\n"
     "[group g1]\nstages = 2\ncluster = 3\nslots = 8\n\n[group g2]\nstages = 2\ncluster = dense\nslots = 8\n",
     "g0 2\ng1 2\ng2 2\n"},
    {"router_testlib.h", /* rl_start, with router_extra */
     "[router]\nfrontend = ipc:///tmp/ifp-test-router-x/fe\nbackend = ipc:///tmp/ifp-test-router-x/be\n"
     "heartbeat_ms = 50\nliveness = 3\nqueue_max = 1\nmax_tokens_limit = 200\n[model]\nmodel = /m/ifp-mix.gguf\n"
     "predictor = /m/ifp-mix-predictor.gguf\nclusters = /m/c.gguf\n[group gA]\ncluster = 0\nslots = 1\nstages = 2\n"
     "[group gB]\ncluster = 1\nslots = 2\nstages = 1\n[group gD]\ncluster = dense\nslots = 2\nstages = 1\n",
     "gA 2\ngB 1\ngD 1\n"},
    {"cluster_testlib.h", /* ct_cluster_new with test_cluster_e2e's groups; later keys win */
     "[router]\nfrontend = ipc:///tmp/ifp-ct-x/fe\nbackend = ipc:///tmp/ifp-ct-x/be\nheartbeat_ms = 100\nliveness = 4\n"
     "max_tokens = 32\nbalance_abs = 1\nbalance_rel = 1.0\nmax_tokens = 48\n\n[model]\nmodel = /m/a.gguf\n"
     "predictor = /m/p.gguf\nclusters = /m/c.gguf\n\n[group c0]\nstages = 3\nlayers = 2,1,1\ncluster = 0\nslots = 8\n\n"
     "[group d1]\nstages = 3\nlayers = 2,1,1\ncluster = dense\nslots = 8\n\n[group c3]\nstages = 1\ncluster = 3\n"
     "slots = 8\n\n[group d]\nstages = 1\ncluster = dense\nslots = 16\n\n",
     "c0 3\nd1 3\nc3 1\nd 1\n"},
    {"shard_testlib.h", /* rig_start */
     "[router]\nbackend = ipc:///tmp/ifp-shard-test-x/backend\nheartbeat_ms = 50\n[model]\nmodel = /m/a.gguf\n"
     "clusters = /m/c.gguf\n[group g0]\nstages = 2\ncluster = dense\nslots = 8\nmax_batch = 48\nlayers = 3,1\n",
     "g0 2\n"},
    {"syntax variety", /* BOM, CRLF, indentation, `key: value`, comments, whitespace in headers */
     "\xEF\xBB\xBF# a comment\r\n[ router ]  ; the router\r\n  liveness: 5\r\npolicy = dense-only ; inline\r\n"
     "[model]\n\tmodel = m.gguf\n[ group   g-1_A ]\n   stages = 2  \n\t  slots=3 ;4\n  ; the last group:\n"
     "[group\tZ9]\ncluster = -1\nstages = 16\nstages = 4\n",
     "g-1_A 2\nZ9 4\n"},
    {"a 63-character name", M "[group " N63 "]\nslots = 2\n", N63 " 1\n"},
    {"security and clients", /* clients are not groups, whatever their names */
     "[security]\ncurve = on\nkeys = /etc/ifp/keys\n" M "[client g0]\nkey = " KEY_A "\nmax_inflight = 4\n"
     "[group g0]\nstages = 2\nmpi_if = ib0,eth1\n[client " N63 "]\nkey = clients/b.pub\n[group g1]\nmpi_if: 10.1.0.0/16\n",
     "g0 2\ng1 1\n"},
    {"multi-node", MULTI, "g0 3\ng1 2\ng2 4\ng3 1\n"},
    {"16 hosts for 16 stages", M "[deploy]\nmpirun_args: -x A=1\n[group g0]\nstages = 16\n"
     "hosts = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p\n[group g1]\nhosts = a,b\nstages = 2\nhosts = 10.0.0.1\n",
     "g0 16\ng1 2\n"},
};

static void accepts_the_configs_in_use(void **u) {
    (void)u;
    char c_list[1024];
    for (size_t i = 0; i < sizeof GOOD / sizeof *GOOD; i++) {
        ifp_err_t err = {0};
        int rc = ifp_config_parse(GOOD[i].text, NULL, &g_cfg, &err);
        if (rc) fail_msg("%s: %s", GOOD[i].what, err.msg);
        c_listing(&g_cfg, c_list, sizeof c_list);
        assert_string_equal(c_list, GOOD[i].groups);
        tu_run_t r = awk_listing(write_file("good.ini", GOOD[i].text));
        if (r.status != 0) fail_msg("%s: lib.sh refuses it: %s", GOOD[i].what, r.err);
        assert_string_equal(r.out, GOOD[i].groups);
        tu_run_free(&r);
    }
    /* the syntax variety reads as meant */
    assert_int_equal(ifp_config_parse(GOOD[4].text, NULL, &g_cfg, NULL), 0);
    assert_int_equal(g_cfg.liveness, 5);
    assert_string_equal(g_cfg.policy, "dense-only");
    assert_int_equal(g_cfg.groups[0].slots, 3); /* " ;4" is a comment */
    assert_int_equal(g_cfg.groups[1].cluster, IFP_CLUSTER_DENSE);
}

static void local_ini_loads_with_lines(void **u) {
    (void)u;
    ifp_err_t err = {0};
    const char *path = IFP_SOURCE_DIR "/deploy/local.ini";
    int rc = ifp_config_load(path, &g_cfg, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_string_equal(ifp_config_file_name(&g_cfg), path);
    assert_string_equal(g_cfg.model, IFP_SOURCE_DIR "/deploy/../models/ifp-mix/ifp-mix.gguf");
    assert_int_equal(g_cfg.n_groups, 3);
    /* where things are, as the file is today */
    assert_int_equal(ifp_config_line(&g_cfg, "router", NULL), 10);
    assert_int_equal(ifp_config_line(&g_cfg, "router", "policy"), 18);
    assert_int_equal(ifp_config_line(&g_cfg, "router", "predictor_threads"), 0); /* default */
    assert_int_equal(ifp_config_line(&g_cfg, "model", "clusters"), 35);
    const ifp_group_cfg_t *g1 = ifp_config_group(&g_cfg, "g1");
    assert_non_null(g1);
    assert_int_equal(ifp_group_line(g1, NULL), 42);
    assert_int_equal(ifp_group_line(g1, "cluster"), 44);
    assert_int_equal(ifp_group_line(g1, "max_batch"), 0);
    assert_int_equal(g1->cluster, 3);
    assert_int_equal(g_cfg.n_lines, 50);
    /* two routers, active-active */
    assert_int_equal(g_cfg.n_routers, 2);
    assert_string_equal(g_cfg.routers[1].name, "r2");
    assert_string_equal(g_cfg.routers[1].frontend, "tcp://127.0.0.1:5565");
    assert_int_equal(ifp_router_line(&g_cfg.routers[1], "http_listen"), 30);
    /* defaults come from the option table */
    assert_int_equal(g1->max_batch, 64);
    assert_int_equal(g1->batch_timeout_ms, 30000);
    assert_int_equal(g_cfg.max_tokens_limit, 4096);
    assert_int_equal(g_cfg.predictor_threads, 0);
    /* and lib.sh agrees */
    tu_run_t r = awk_listing(path);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "g0 2\ng1 2\ng2 2\n");
    tu_run_free(&r);
}

/* ------------------------------------------------------------ refused */

typedef struct {
    const char *text;
    const char *msg;  /* the message starts with this ("config:LINE: ...") */
    const char *also; /* and contains this (or NULL) */
    int awk;          /* deploy/lib.sh refuses it too, at the same line */
} bad_t;

static const bad_t BAD[] = {
    /* the four defects */
    {M "[group g0]\n\n[group g1]\nstages = 1\n", "config:3: [group g0]: empty section; a group needs at least one key",
     "the minimal group is `stages = 1`", 1},
    {"[router]\nliveness = 3\n" M "[router]\nqueue_max = 3\n" G, "config:5: [router]: duplicate section (first at line 1)",
     NULL, 1},
    {M "[group a]\nstages = 2\n[group a.out]\nstages = 1\n", "config:5: [group a.out]: '.' is not allowed in a group name",
     "\"G.out\" is the ZeroMQ identity of group G's last stage", 1},
    {M "[group g0]\nstages 1\n", "config:4: syntax error: expected `key = value`", NULL, 1},
    /* sections */
    {M G "[group g1]\n; nothing yet\n", "config:5: [group g1]: empty section", NULL, 1},
    {"[router]\n" M G, "config:1: [router]: empty section", NULL, 1},
    {"[model]\n; todo\n" G, "config:1: [model]: empty section; it needs `model = PATH.gguf`", NULL, 1},
    {M "[model]\npredictor = p.gguf\n" G, "config:3: [model]: duplicate section (first at line 1)", NULL, 1},
    {M G "[group g0]\nslots = 2\n", "config:5: [group g0]: duplicate section (first at line 3)", NULL, 1},
    {M "[group g 0]\nstages = 1\n", "config:3: [group g 0]: ' ' is not allowed in a group name", NULL, 1},
    {M "[group g/0]\nstages = 1\n", "config:3: [group g/0]: '/' is not allowed in a group name", NULL, 1},
    {M "[group " N63 "_]\nstages = 1\n", "config:3: [group abcdefghij", "the name has 64 characters; at most 63", 1},
    {M "[group]\nstages = 1\n", "config:3: [group]: a group needs a name: [group NAME]", NULL, 1},
    {M "[server]\nport = 1\n", "config:3: [server]: unknown section; expected [router], [router NAME], [model], "
     "[security], [deploy], [http], [group NAME] or [client NAME]", NULL, 1},
    {"[Router]\nliveness = 1\n", "config:1: [Router]: unknown section", "(lower-case)", 1},
    {"x = 1\n" M G, "config:1: x: a key before the first section header", NULL, 1},
    {M "[router]\n[group g0]\nstages = 1\n", "config:3: [router]: empty section", NULL, 1},
    {"[router]\nliveness = 3\n" G, "config:4: [model]: missing at the end of the file", NULL, 1},
    {"[model]\npredictor = p.gguf\n" G, "config:1: [model] model: missing", NULL, 1},
    {"; just a model\n" M, "config:3: [group NAME]: none at the end of the file", NULL, 1},
    /* [security] */
    {"[security]\n" M G, "config:1: [security]: empty section; set a key in it or remove it (every [security] key has "
     "a default)", NULL, 1},
    {"[security]\ncurve = on\n" M G "[security]\nkeys = k\n", "config:7: [security]: duplicate section (first at "
     "line 1)", NULL, 1},
    {"[Security]\ncurve = on\n" M G, "config:1: [Security]: unknown section", "(lower-case)", 1},
    /* [client NAME] */
    {M G "[client c]\n\n[client d]\nkey = d.pub\n", "config:5: [client c]: empty section; a client needs `key = `",
     NULL, 1},
    {M G "[client c]\n; nothing\n", "config:5: [client c]: empty section", NULL, 1},
    {M G "[client c]\nmax_inflight = 2\n[group g1]\nstages = 1\n", "config:5: [client c] key: required", NULL, 1},
    {M G "[client c]\nmax_inflight = 2\n", "config:5: [client c] key: required (the client's CURVE public key: 40 "
     "characters of Z85, or a file holding one)", NULL, 1},
    {M G "[client c]\nkey = " KEY_A "\n[client d]\nkey = d.pub\n[client c]\nkey = " KEY_B "\n",
     "config:9: [client c]: duplicate section (first at line 5); give each client one section", NULL, 1},
    {M G "[client]\nkey = " KEY_A "\n", "config:5: [client]: a client needs a name: [client NAME]", NULL, 1},
    {M G "[client a.b]\nkey = " KEY_A "\n", "config:5: [client a.b]: '.' is not allowed in a client name", NULL, 1},
    {M G "[client a b]\nkey = " KEY_A "\n", "config:5: [client a b]: ' ' is not allowed in a client name", NULL, 1},
    {M G "[client " N63 "x]\nkey = " KEY_A "\n", "config:5: [client abcdefghij",
     "the name has 64 characters; at most 63", 1},
    {M G "[CLIENT a]\nkey = " KEY_A "\n", "config:5: [CLIENT a]: unknown section", "(lower-case)", 1},
    {M G "[clients]\nkey = " KEY_A "\n", "config:5: [clients]: unknown section", NULL, 1},
    /* [deploy] */
    {"[deploy]\n" M G, "config:1: [deploy]: empty section; set a key in it or remove it (every [deploy] key has a "
     "default)", NULL, 1},
    {"[deploy]\nagent = ssh\n" M G "[deploy]\nmpirun = mpirun\n", "config:7: [deploy]: duplicate section (first at "
     "line 1); merge the two", NULL, 1},
    {"[Deploy]\nagent = ssh\n" M G, "config:1: [Deploy]: unknown section", "(lower-case)", 1},
    {M G "[deploy]\n; later\n", "config:5: [deploy]: empty section", NULL, 1},
    /* multi-node placement: a group's hosts (checked when its section closes) */
    {M "[group g0]\nstages = 2\nhosts = a,b,c\n", "config:5: [group g0] hosts: 3 hosts for 2 stages: give one host, "
     "or one per stage", NULL, 1},
    {M "[group g0]\nhosts = a,b\nstages = 3\n[group g1]\nstages = 1\n", "config:4: [group g0] hosts: 2 hosts for 3 "
     "stages: give one host, or one per stage", NULL, 1},
    {M "[group g0]\nhosts = a,b\n", "config:4: [group g0] hosts: 2 hosts for 1 stage: give one host, or one per stage",
     NULL, 1},
    {M "[group g0]\nstages = 2\nhosts = a,b\nstages = 4\n", "config:5: [group g0] hosts: 2 hosts for 4 stages", NULL,
     1},
    {M "[group g0]\nstages = 2\nhosts = a,b,c\nhosts = a,b\n[group g1]\nstages = 3\nhosts = a,b\n",
     "config:9: [group g1] hosts: 2 hosts for 3 stages", NULL, 1},
    {M "[group g0]\nhosts = a\nhostfile = h.txt\n", "config:5: [group g0] hostfile: hosts is set too (line 4); give "
     "one of them: hosts = HOST[,HOST...] or hostfile = PATH", NULL, 1},
    {M "[group g0]\nhostfile = h.txt\nstages = 2\nhosts = a,b\n[group g1]\nstages = 1\n", "config:6: [group g0] "
     "hosts: hostfile is set too (line 4); give one of them", NULL, 1},
    {M "[group g0]\nhosts = a,,b\n", "config:4: [group g0] hosts: \"a,,b\": an empty item; expected one host (every "
     "stage there) or one per stage, comma-separated without spaces; each 1..255 of A-Z a-z 0-9 . _ : - (not starting "
     "with -)", NULL, 1},
    {M "[group g0]\nhosts = ,a\n", "config:4: [group g0] hosts: \",a\": an empty item", NULL, 1},
    {M "[group g0]\nhosts = a,\n", "config:4: [group g0] hosts: \"a,\": an empty item", NULL, 1},
    {M "[group g0]\nstages = 2\nhosts = a, b\n", "config:5: [group g0] hosts: \"a, b\": ' ' is not allowed", NULL, 1},
    {M "[group g0]\nstages = 2\nhosts = a;b\n", "config:5: [group g0] hosts: \"a;b\": ';' is not allowed", NULL, 1},
    {M "[group g0]\nstages = 2\nhosts = a,-b\n", "config:5: [group g0] hosts: \"a,-b\": a host cannot start with "
     "'-' (it would be read as an option)", NULL, 1},
    {M "[group g0]\nhosts = root@a\n", "config:4: [group g0] hosts: \"root@a\": '@' is not allowed", NULL, 1},
    {M "[group g0]\nstages = 16\nhosts = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n", "config:5: [group g0] hosts: more "
     "than 16 hosts; a group has at most 16 stages", NULL, 1},
    {M "[group g0]\nhosts =\n", "config:4: [group g0] hosts: empty value; expected one host", NULL, 1},
    /* [router] host */
    {"[router]\nhost = rt 1\n" M G, "config:2: [router] host: \"rt 1\": ' ' is not allowed; expected a host name, an IP "
     "address or a network namespace name: 1..255 of A-Z a-z 0-9 . _ : - (not starting with -)", NULL, 1},
    {"[router]\nhost = -oProxyCommand=x\n" M G, "config:2: [router] host: \"-oProxyCommand=x\": a host cannot start "
     "with '-'", NULL, 1},
    {"[router]\nhost =\n" M G, "config:2: [router] host: empty value; expected a host name", NULL, 1},
    {"[router]\nhost = a,b\n" M G, "config:2: [router] host: \"a,b\": ',' is not allowed", NULL, 1},
    {"[router]\nhost = [::1]\n" M G, "config:2: [router] host: \"[::1]\": '[' is not allowed", NULL, 1},
    {"[router]\nhost = me@rt1\n" M G, "config:2: [router] host: \"me@rt1\": '@' is not allowed", NULL, 1},
    /* syntax */
    {M "[group g0\nstages = 1\n", "config:3: syntax error: a section header needs a closing ']'", NULL, 1},
    {M "[group g0 ; ]\nstages = 1\n", "config:3: syntax error: a section header needs a closing ']'", NULL, 1},
    {M "[group g0] stages = 1\n", "config:3: syntax error: only a ';' comment may follow a section header's ']'", NULL, 1},
    {M "[group g0]\nstages ; = 1\n", "config:4: syntax error", NULL, 1},
    /* keys */
    {M "[group g0]\nstagez = 1\n", "config:4: [group g0] stagez: unknown key; the keys of [group] are stages, layers",
     NULL, 0},
    {M G "heartbeat_ms = 100\n", "config:5: [group g0] heartbeat_ms: unknown key here; it belongs in [router]", NULL, 0},
    {"[router]\nslots = 3\n" M G, "config:2: [router] slots: unknown key here; it belongs in [group NAME]", NULL, 0},
    {"[model]\nmodel = m.gguf\nfrontend = tcp://x:1\n" G, "config:3: [model] frontend: unknown key here", NULL, 0},
    {"[security]\ncurv = on\n" M G, "config:2: [security] curv: unknown key; the keys of [security] are curve, keys",
     NULL, 0},
    {M G "curve = off\n", "config:5: [group g0] curve: unknown key here; it belongs in [security]", NULL, 0},
    {"[router]\nkey = " KEY_A "\n" M G, "config:2: [router] key: unknown key here; it belongs in [client NAME]", NULL,
     0},
    {M G "[client c]\nkey = c.pub\nslots = 2\n", "config:7: [client c] slots: unknown key here; it belongs in "
     "[group NAME]", NULL, 0},
    {M G "[client c]\nkeys = c.pub\n", "config:6: [client c] keys: unknown key here; it belongs in [security]", NULL,
     0},
    {M G "[client c]\nkey = c.pub\nlimit = 2\n", "config:7: [client c] limit: unknown key; the keys of [client] are "
     "key, max_inflight", NULL, 0},
    {M "[group g0]\nmpi: lo\n", "config:4: [group g0] mpi: unknown key; the keys of [group] are stages, layers, "
     "cluster, slots, ctx, max_batch, batch_timeout_ms, mpi_if, hosts, hostfile", NULL, 0},
    {"[router]\nhost_name = a\n" M G, "config:2: [router] host_name: unknown key; the keys of [router] are frontend, "
     "backend, heartbeat_ms, liveness, min_coverage, balance_abs, balance_rel, queue_max, max_tokens, max_tokens_limit, "
     "policy, predictor_threads, host, backend_connect", NULL, 0},
    {M G "[deploy]\nssh = 1\n", "config:6: [deploy] ssh: unknown key; the keys of [deploy] are agent, mpirun, "
     "mpirun_args", NULL, 0},
    {"[router]\nmpirun = mpirun\n" M G, "config:2: [router] mpirun: unknown key here; it belongs in [deploy]", NULL, 0},
    {M G "[deploy]\nhost = a\n", "config:6: [deploy] host: unknown key here; it belongs in [router]", NULL, 0},
    {M "[group g0]\nhost = a\n", "config:4: [group g0] host: unknown key here; it belongs in [router] (this section's "
     "is hosts)", NULL, 0},
    {"[router]\nhosts = a\n" M G, "config:2: [router] hosts: unknown key here; it belongs in [group NAME]", NULL, 0},
    {"[router]\nhostfile = h\n" M G, "config:2: [router] hostfile: unknown key here; it belongs in [group NAME]", NULL,
     0},
    /* values */
    {M "[group g0]\nstages = 0\n", "config:4: [group g0] stages: \"0\": expected an integer in 1..16", NULL, 1},
    {M "[group g0]\nstages = 2x\n", "config:4: [group g0] stages: \"2x\": expected an integer in 1..16", NULL, 1},
    {M "[group g0]\nstages = 17\n", "config:4: [group g0] stages: \"17\"", NULL, 1},
    {M "[group g0]\nslots = 0\n", "config:4: [group g0] slots: \"0\": expected an integer in 1..4096", NULL, 0},
    {M "[group g0]\nbatch_timeout_ms = 50\n", "config:4: [group g0] batch_timeout_ms: \"50\": expected an integer in "
     "100..3600000", NULL, 0},
    {M "[group g0]\nctx =\n", "config:4: [group g0] ctx: empty value; expected an integer in 0..1048576", NULL, 0},
    {"[router]\nheartbeat_ms = 5\n" M G, "config:2: [router] heartbeat_ms: \"5\": expected an integer in 10..60000",
     NULL, 0},
    {"[router]\nmin_coverage = 1.5\n" M G, "config:2: [router] min_coverage: \"1.5\": expected a number in 0..1", NULL,
     0},
    {"[router]\nbalance_rel = nan\n" M G, "config:2: [router] balance_rel: \"nan\": expected a number in 1..1e+06",
     NULL, 0},
    {"[router]\npolicy = fastest\n" M G,
     "config:2: [router] policy: \"fastest\": expected affinity, round-robin, least-loaded or dense-only", NULL, 0},
    {"[router]\nfrontend = localhost:5555\n" M G, "config:2: [router] frontend: \"localhost:5555\": expected a ZeroMQ "
     "endpoint", NULL, 0},
    {"[model]\nmodel =\n" G, "config:2: [model] model: empty value", NULL, 0},
    {CL "[group g0]\ncluster = x\n", "config:5: [group g0] cluster: \"x\": expected dense, or a cluster index", NULL, 0},
    {M "[group g0]\nstages = 3\nlayers = 2,,1\n", "config:5: [group g0] layers: \"2,,1\": expected one positive layer "
     "count per stage", NULL, 0},
    {M "[group g0]\nstages = 2\nlayers = 2;2\n", "config:5: [group g0] layers: \"2;2\": unexpected ';'", NULL, 0},
    {M "[group g0]\nlayers = 0\n", "config:4: [group g0] layers: \"0\"", NULL, 0},
    {"[security]\ncurve = yes\n" M G, "config:2: [security] curve: \"yes\": expected on or off", NULL, 0},
    {"[security]\ncurve = On\n" M G, "config:2: [security] curve: \"On\": expected on or off", NULL, 0},
    {"[security]\ncurve = 1\n" M G, "config:2: [security] curve: \"1\": expected on or off", NULL, 0},
    {"[security]\ncurve =\n" M G, "config:2: [security] curve: empty value; expected on or off", NULL, 0},
    {"[security]\nkeys =\n" M G, "config:2: [security] keys: empty value; expected a folder", NULL, 0},
    {M G "[client c]\nkey =\n", "config:6: [client c] key: empty value; expected a CURVE public key (40 characters "
     "of Z85), or a file holding one", NULL, 0},
    {M G "[client c]\nkey = c.pub\nmax_inflight = -1\n", "config:7: [client c] max_inflight: \"-1\": expected an "
     "integer in 0..1000000", NULL, 0},
    {M G "[client c]\nkey = c.pub\nmax_inflight = 1000001\n", "config:7: [client c] max_inflight: \"1000001\"", NULL,
     0},
    {M G "[client c]\nmax_inflight = 1x\nkey = c.pub\n", "config:6: [client c] max_inflight: \"1x\"", NULL, 0},
    {M "[group g0]\nmpi_if = eth0, eth1\n", "config:4: [group g0] mpi_if: \"eth0, eth1\": ' ' is not allowed; "
     "expected network interfaces or CIDR subnets, comma-separated without spaces", "1..255 of A-Z a-z 0-9 _ . : / -",
     0},
    {M "[group g0]\nmpi_if = eth0,,eth1\n", "config:4: [group g0] mpi_if: \"eth0,,eth1\": an empty item; expected "
     "network interfaces", NULL, 0},
    {M "[group g0]\nmpi_if = ,eth1\n", "config:4: [group g0] mpi_if: \",eth1\": an empty item", NULL, 0},
    {M "[group g0]\nmpi_if = eth1,\n", "config:4: [group g0] mpi_if: \"eth1,\": an empty item", NULL, 0},
    {M "[group g0]\nmpi_if = ,\n", "config:4: [group g0] mpi_if: \",\": an empty item", NULL, 0},
    {M "[group g0]\nmpi_if = eth*\n", "config:4: [group g0] mpi_if: \"eth*\": '*' is not allowed", NULL, 0},
    {M "[group g0]\nmpi_if = eth0;eth1\n", "config:4: [group g0] mpi_if: \"eth0;eth1\": ';' is not allowed", NULL,
     0},
    {M "[group g0]\nmpi_if = \"lo\"\n", "config:4: [group g0] mpi_if: \"\"lo\"\": '\"' is not allowed", NULL, 0},
    {M "[group g0]\nmpi_if =\n", "config:4: [group g0] mpi_if: empty value; expected network interfaces", NULL, 0},
    {"[router]\nbackend_connect =\n" M G, "config:2: [router] backend_connect: empty value; expected a ZeroMQ endpoint",
     NULL, 0},
    {"[router]\nbackend_connect = rt1:5556\n" M G, "config:2: [router] backend_connect: \"rt1:5556\": expected a ZeroMQ "
     "endpoint", NULL, 0},
    {"[deploy]\nagent =\n" M G, "config:2: [deploy] agent: empty value; expected 1..1023 printable ASCII characters",
     NULL, 0},
    {"[deploy]\nmpirun_args =\n" M G, "config:2: [deploy] mpirun_args: empty value", NULL, 0},
    {"[deploy]\nmpirun =\n" M G, "config:2: [deploy] mpirun: empty value", NULL, 0},
    {"[deploy]\nagent = ssh\t-p 22\n" M G, "config:2: [deploy] agent: \"ssh\t-p 22\": byte 0x09 at 4 is not printable "
     "ASCII; expected 1..1023 printable ASCII characters", NULL, 0},
    {"[deploy]\nmpirun = /opt/\xc3\xa9/mpirun\n" M G, "config:2: [deploy] mpirun: \"/opt/\xc3\xa9/mpirun\": byte 0xc3 at "
     "6 is not printable ASCII", NULL, 0},
    {M "[group g0]\nhostfile =\n", "config:4: [group g0] hostfile: empty value; expected a file", NULL, 0},
    /* keys that must agree */
    {M "[group g0]\nstages = 2\nlayers = 1,2,3\n", "config:5: [group g0] layers: 3 counts for stages = 2 (line 4)",
     NULL, 0},
    {M "[group g0]\nlayers = 1,3\n", "config:4: [group g0] layers: 2 counts for stages = 1 (the default)", NULL, 0},
    {M "[group g0]\ncluster = 0\n", "config:4: [group g0] cluster: 0 needs a cluster table: [model] clusters", NULL, 0},
    {"[router]\nmax_tokens = 5000\n" M G, "config:2: [router] max_tokens: 5000 exceeds max_tokens_limit = 4096 (the "
     "default)", NULL, 0},
    {"[router]\nmax_tokens_limit = 64\n" M G, "config:2: [router] max_tokens_limit: 64 is below max_tokens = 128 (the "
     "default)", NULL, 0},
    {"[router]\nfrontend = ipc:///tmp/x\nbackend = ipc:///tmp/x\n" M G,
     "config:3: [router] backend: the same endpoint as frontend (line 2); the router binds both", NULL, 0},
    {"[router]\nbackend = tcp://*:5556\n" M G, "config:2: [router] backend: tcp://*:5556 binds every interface; groups "
     "need a routable address to connect to: set backend_connect = tcp://ROUTER_HOST:PORT", NULL, 0},
    {"[router]\nfrontend = tcp://*:5555\nbackend = tcp://0.0.0.0:5556\n" M G, "config:3: [router] backend: "
     "tcp://0.0.0.0:5556 binds every interface; groups need a routable address", NULL, 0},
    {"[router]\nbackend = tcp://[::]:5556\nheartbeat_ms = 100\n" M G, "config:2: [router] backend: tcp://[::]:5556 "
     "binds every interface", NULL, 0},
    {"[router]\nbackend = tcp://*:5556\nbackend_connect = tcp://*:5556\n" M G, "config:3: [router] backend_connect: "
     "tcp://*:5556 is a wildcard address (every interface); groups connect to it: give the router host's name or "
     "address", NULL, 0},
    {"[router]\nbackend_connect = tcp://0.0.0.0:5556\n" M G, "config:2: [router] backend_connect: tcp://0.0.0.0:5556 is "
     "a wildcard address", NULL, 0},
};

/* The line of a "config:LINE: ..." or "PATH:LINE: ..." message. */
static int line_of(const char *msg, const char *file) {
    const char *p = strstr(msg, file);
    return p ? atoi(p + strlen(file) + 1) : -1;
}

static void refuses_with_the_line(void **u) {
    (void)u;
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        ifp_err_t err = {0};
        int rc = ifp_config_parse(BAD[i].text, NULL, &g_cfg, &err);
        if (rc != IFP_EFORMAT) fail_msg("case %zu accepted (rc %d): %s", i, rc, BAD[i].text);
        if (strncmp(err.msg, BAD[i].msg, strlen(BAD[i].msg)) || (BAD[i].also && !strstr(err.msg, BAD[i].also)))
            fail_msg("case %zu:\n  got:      %s\n  expected: %s ... %s", i, err.msg, BAD[i].msg,
                     BAD[i].also ? BAD[i].also : "");
        assert_int_equal(g_cfg.n_groups, 0); /* nothing half-loaded */
        assert_int_equal(g_cfg.n_clients, 0);
        /* lib.sh: the section-level mistakes at the same line, never a listing */
        const char *path = write_file("bad.ini", BAD[i].text);
        tu_run_t r = awk_listing(path);
        if (BAD[i].awk) {
            if (r.status != 1 || r.out[0]) fail_msg("case %zu: lib.sh lists it (%d): %s", i, r.status, r.out);
            if (line_of(r.err, path) != line_of(err.msg, "config"))
                fail_msg("case %zu: lib.sh says %s, C says %s", i, r.err, err.msg);
        }
        tu_run_free(&r);
    }
}

static void refuses_long_lines_and_nul(void **u) {
    (void)u;
    char text[1024], pad[256];
    memset(pad, 'x', 197);
    pad[197] = '\0';
    snprintf(text, sizeof text, M G ";%s\n" ";%sy\n", pad, pad); /* 198 fits, 199 does not */
    ifp_err_t err = {0};
    assert_int_equal(ifp_config_parse(text, NULL, &g_cfg, &err), IFP_EFORMAT);
    assert_string_equal(err.msg, "config:6: line of 199 characters; the INI reader takes at most 198");
    const char *path = write_file("long.ini", text);
    tu_run_t r = awk_listing(path);
    assert_int_equal(r.status, 1);
    assert_int_equal(line_of(r.err, path), 6);
    tu_run_free(&r);
    /* indentation does not count; a NUL byte is refused */
    snprintf(text, sizeof text, M G "      ;%s\n", pad);
    assert_int_equal(ifp_config_parse(text, NULL, &g_cfg, &err), 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(M "[group g0]\nstages = 1\0\n", 1, sizeof(M "[group g0]\nstages = 1\0\n") - 1, f);
    fclose(f);
    assert_int_equal(ifp_config_load(path, &g_cfg, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, ":4: syntax error: NUL byte"));
    /* files that are not there or not files */
    assert_int_equal(ifp_config_load("/nonexistent/x.ini", &g_cfg, &err), IFP_EIO);
    assert_string_equal(err.msg, "/nonexistent/x.ini: cannot open: No such file or directory");
    assert_int_equal(ifp_config_load(g_dir, &g_cfg, &err), IFP_EIO);
}

/* ------------------------------------------------------------ queries */

static void split_and_paths(void **u) {
    (void)u;
    int b[IFP_CFG_MAX_STAGES], e[IFP_CFG_MAX_STAGES];
    ifp_err_t err = {0};
    assert_int_equal(ifp_config_parse(M "[group g0]\nstages = 3\n[group g1]\nstages = 2\nlayers = 3,1\n", "/base",
                                      &g_cfg, &err), 0);
    assert_string_equal(g_cfg.model, "/base/m.gguf");
    assert_int_equal(ifp_config_split(&g_cfg.groups[0], 4, b, e, &err), 0);
    assert_true(b[0] == 0 && e[0] == 2 && b[1] == 2 && e[1] == 3 && b[2] == 3 && e[2] == 4);
    assert_int_equal(ifp_config_split(&g_cfg.groups[1], 4, b, e, &err), 0);
    assert_true(e[0] == 3 && e[1] == 4);
    assert_int_equal(ifp_config_split(&g_cfg.groups[1], 5, b, e, &err), IFP_EFORMAT);
    assert_string_equal(err.msg, "[group g1] layers: the stages' layers sum to 4, the model has 5");
    assert_int_equal(ifp_config_split(&g_cfg.groups[0], 2, b, e, &err), IFP_ERANGE);
    assert_string_equal(err.msg, "[group g0] stages: 3 stages for a model of 2 layers");
    assert_int_equal(ifp_config_parse("[model]\nmodel = /abs/m.gguf\n" G, "/base", &g_cfg, &err), 0);
    assert_string_equal(g_cfg.model, "/abs/m.gguf");
}

/* ------------------------------------------------------------ [security], [client], mpi_if */

static void security_section(void **u) {
    (void)u;
    ifp_err_t err = {0};
    /* absent: CURVE on, the key folder left to run time */
    assert_int_equal(ifp_config_parse(M G, "/base", &g_cfg, &err), 0);
    assert_int_equal(g_cfg.curve, 1);
    assert_string_equal(g_cfg.keys, "");
    assert_int_equal(ifp_config_line(&g_cfg, "security", NULL), 0);
    assert_int_equal(ifp_config_line(&g_cfg, "security", "curve"), 0);
    /* set: a relative folder resolves against the base and need not exist */
    assert_int_equal(ifp_config_parse(M G "[security]\ncurve = off\nkeys = run/keys\n", "/base", &g_cfg, &err), 0);
    assert_int_equal(g_cfg.curve, 0);
    assert_string_equal(g_cfg.keys, "/base/run/keys");
    assert_int_equal(ifp_config_line(&g_cfg, "security", NULL), 5);
    assert_int_equal(ifp_config_line(&g_cfg, "security", "curve"), 6);
    assert_int_equal(ifp_config_line(&g_cfg, "security", "keys"), 7);
    assert_int_equal(ifp_config_line(&g_cfg, "security", "frontend"), 0); /* not a [security] key */
    assert_int_equal(ifp_config_line(&g_cfg, "router", "curve"), 0);
    /* absolute: as written; the last curve wins; only curve set: keys stays "" */
    assert_int_equal(ifp_config_parse("[security]\nkeys = /nonexistent/keys\ncurve = off\ncurve = on\n" M G, "/base",
                                      &g_cfg, &err), 0);
    assert_string_equal(g_cfg.keys, "/nonexistent/keys");
    assert_int_equal(g_cfg.curve, 1);
    assert_int_equal(ifp_config_line(&g_cfg, "security", "curve"), 4);
    assert_int_equal(ifp_config_parse("[security]\ncurve = off\n" M G, "/base", &g_cfg, &err), 0);
    assert_string_equal(g_cfg.keys, "");
    /* from a file: relative to its folder */
    const char *path = write_file("sec.ini", "[security]\nkeys = keys\n" M G);
    assert_int_equal(ifp_config_load(path, &g_cfg, &err), 0);
    char want[128];
    snprintf(want, sizeof want, "%s/keys", g_dir);
    assert_string_equal(g_cfg.keys, want);
    assert_int_not_equal(access(want, F_OK), 0); /* and it was not created either */
}

#define K39 "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf"   /* KEY_A without its last character */
#define K40_ "rq:rM>}U?@Lns47E1%kR_o@n%FcmmsL/@{H8]yf7" /* '_' is not Z85 */
#define P40 "keys/clients/abcdefghijklmnopqrstuvw.pub"  /* a path of 40 Z85 characters: a key */
_Static_assert(sizeof KEY_A == 41 && sizeof KEY_B == 41 && sizeof K39 == 40 && sizeof K40_ == 41 && sizeof P40 == 41,
               "key lengths");

static void client_sections(void **u) {
    (void)u;
    ifp_err_t err = {0};
    static const char text[] = M G
        "[client alice]\nkey = " KEY_A "\nmax_inflight = 16\n" /* 5-7 */
        "[client bob]\nkey = keys/bob.pub\n"                   /* 8-9 */
        "[client carol]\nkey = /etc/ifp/carol.pub\n"           /* 10-11 */
        "[client d]\nkey = " KEY_B "x\n"                       /* 12-13: 41 characters */
        "[client e]\nkey = " K39 "\n"                          /* 14-15: 39 */
        "[client f]\nkey = " K40_ "\n"                         /* 16-17: 40, one not Z85 */
        "[client g]\nkey = " P40 "\n"                          /* 18-19 */
        "[client h]\nkey = ./" P40 "\n"                        /* 20-21 */
        "[client i]\nkey = i.pub\nkey = " KEY_B "\n"           /* 22-24: the last wins */
        "[client g0]\nmax_inflight = 1000000\nkey = " KEY_B "\n"; /* 25-27: a group's name is free */
    int rc = ifp_config_parse(text, "/base", &g_cfg, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(g_cfg.n_clients, 10);
    assert_int_equal(g_cfg.n_groups, 1);
    static const struct {
        const char *name, *key;
        int is_file, max_inflight, line;
    } want[] = {
        {"alice", KEY_A, 0, 16, 5},
        {"bob", "/base/keys/bob.pub", 1, 0, 8},
        {"carol", "/etc/ifp/carol.pub", 1, 0, 10},
        {"d", "/base/" KEY_B "x", 1, 0, 12},
        {"e", "/base/" K39, 1, 0, 14},
        {"f", "/base/" K40_, 1, 0, 16},
        {"g", P40, 0, 0, 18},
        {"h", "/base/./" P40, 1, 0, 20},
        {"i", KEY_B, 0, 0, 22},
        {"g0", KEY_B, 0, 1000000, 25},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const ifp_client_cfg_t *cl = ifp_config_client(&g_cfg, want[i].name);
        if (!cl) fail_msg("no client %s", want[i].name);
        assert_ptr_equal(cl, &g_cfg.clients[i]); /* in file order */
        assert_string_equal(cl->key, want[i].key);
        if (cl->key_is_file != want[i].is_file) fail_msg("client %s: key_is_file %d", cl->name, cl->key_is_file);
        assert_int_equal(cl->max_inflight, want[i].max_inflight);
        assert_int_equal(ifp_client_line(cl, NULL), want[i].line);
        assert_int_equal(cl->line, want[i].line);
    }
    const ifp_client_cfg_t *alice = ifp_config_client(&g_cfg, "alice");
    assert_int_equal(ifp_client_line(alice, "key"), 6);
    assert_int_equal(ifp_client_line(alice, "max_inflight"), 7);
    assert_int_equal(ifp_client_line(alice, "stages"), 0); /* not a client key */
    assert_int_equal(ifp_client_line(ifp_config_client(&g_cfg, "bob"), "max_inflight"), 0); /* default */
    assert_int_equal(ifp_client_line(ifp_config_client(&g_cfg, "i"), "key"), 24);
    assert_null(ifp_config_client(&g_cfg, "zed"));
    assert_null(ifp_config_client(&g_cfg, "Alice"));
    assert_non_null(ifp_config_group(&g_cfg, "g0"));
    /* no base: paths as written; from a file: relative to its folder, never opened */
    assert_int_equal(ifp_config_parse(M G "[client b]\nkey = keys/b.pub\n", NULL, &g_cfg, &err), 0);
    assert_string_equal(g_cfg.clients[0].key, "keys/b.pub");
    assert_int_equal(g_cfg.clients[0].key_is_file, 1);
    const char *path = write_file("clients.ini", M G "[client b]\nkey = b.pub\n");
    assert_int_equal(ifp_config_load(path, &g_cfg, &err), 0);
    char want_key[128];
    snprintf(want_key, sizeof want_key, "%s/b.pub", g_dir);
    assert_string_equal(g_cfg.clients[0].key, want_key);
}

static void at_most_256_clients(void **u) {
    (void)u;
    enum { N = IFP_CFG_MAX_CLIENTS + 1 };
    char *text = malloc(N * 64 + 64);
    assert_non_null(text);
    size_t at = (size_t)sprintf(text, M G);
    for (int i = 0; i < N - 1; i++) at += (size_t)sprintf(text + at, "[client c%d]\nkey = c%d.pub\n", i, i);
    ifp_err_t err = {0};
    int rc = ifp_config_parse(text, NULL, &g_cfg, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(g_cfg.n_clients, IFP_CFG_MAX_CLIENTS);
    assert_string_equal(ifp_config_client(&g_cfg, "c255")->key, "c255.pub");
    sprintf(text + at, "[client c%d]\nkey = %s\n", N - 1, KEY_A);
    assert_int_equal(ifp_config_parse(text, NULL, &g_cfg, &err), IFP_EFORMAT);
    char want[96];
    snprintf(want, sizeof want, "config:%d: [client c256]: more than %d clients", 5 + 2 * (N - 1), IFP_CFG_MAX_CLIENTS);
    assert_string_equal(err.msg, want);
    assert_int_equal(g_cfg.n_clients, 0);
    free(text);
}

static void group_mpi_if(void **u) {
    (void)u;
    ifp_err_t err = {0};
    assert_int_equal(ifp_config_parse(M G, NULL, &g_cfg, &err), 0);
    assert_string_equal(g_cfg.groups[0].mpi_if, "lo"); /* the default */
    assert_int_equal(ifp_group_line(&g_cfg.groups[0], "mpi_if"), 0);
    static const char *const ok[] = {"lo", "eth1", "ib0,eth1", "10.1.0.0/16", "fe80::/64,lo", "enp0s31f6,br-1_a.100"};
    char text[512];
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        snprintf(text, sizeof text, M "[group g0]\nmpi_if = %s\n", ok[i]);
        int rc = ifp_config_parse(text, NULL, &g_cfg, &err);
        if (rc) fail_msg("%s: %s", ok[i], err.msg);
        assert_string_equal(g_cfg.groups[0].mpi_if, ok[i]);
        assert_int_equal(ifp_group_line(&g_cfg.groups[0], "mpi_if"), 4);
    }
    /* the longest a line holds (198 characters: "mpi_if=" + 191) */
    char v[192];
    for (int i = 0; i < 191; i++) v[i] = i % 5 == 4 ? ',' : 'a' + i % 5;
    v[191] = '\0';
    snprintf(text, sizeof text, M "[group g0]\nmpi_if=%s\n", v);
    int rc = ifp_config_parse(text, NULL, &g_cfg, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_string_equal(g_cfg.groups[0].mpi_if, v);
    /* each group its own */
    assert_int_equal(ifp_config_parse(M G "mpi_if = eth0\n[group g1]\nmpi_if = ib0\n[group g2]\nstages = 1\n", NULL,
                                      &g_cfg, &err), 0);
    assert_string_equal(ifp_config_group(&g_cfg, "g0")->mpi_if, "eth0");
    assert_string_equal(ifp_config_group(&g_cfg, "g1")->mpi_if, "ib0");
    assert_string_equal(ifp_config_group(&g_cfg, "g2")->mpi_if, "lo");
}

/* ------------------------------------------------------------ multi-node */

static void multi_node_defaults(void **u) {
    (void)u;
    ifp_err_t err = {0};
    char h[IFP_CFG_HOST];
    assert_int_equal(ifp_config_parse(M "[group g0]\nstages = 3\n", "/base", &g_cfg, &err), 0);
    /* [router]: this machine; groups connect to backend as written */
    assert_string_equal(g_cfg.host, "localhost");
    assert_string_equal(g_cfg.backend_connect, "");
    assert_ptr_equal(ifp_config_backend_connect(&g_cfg), g_cfg.backend);
    assert_string_equal(ifp_config_backend_connect(&g_cfg), "tcp://127.0.0.1:5556");
    assert_int_equal(ifp_config_line(&g_cfg, "router", "host"), 0);
    assert_int_equal(ifp_config_line(&g_cfg, "router", "backend_connect"), 0);
    /* [deploy] absent: ssh, mpirun, no extra options */
    assert_string_equal(g_cfg.agent, "ssh");
    assert_string_equal(g_cfg.mpirun, "mpirun");
    assert_string_equal(g_cfg.mpirun_args, "");
    assert_int_equal(g_cfg.deploy_line, 0);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", NULL), 0);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", "agent"), 0);
    /* a group: every stage on this machine, no hostfile */
    const ifp_group_cfg_t *g = &g_cfg.groups[0];
    assert_string_equal(g->hosts, "localhost");
    assert_int_equal(g->n_hosts, 1);
    assert_string_equal(g->hostfile, "");
    assert_int_equal(ifp_group_line(g, "hosts"), 0);
    assert_int_equal(ifp_group_line(g, "hostfile"), 0);
    for (int s = 0; s < 3; s++) {
        assert_int_equal(ifp_group_host(g, s, h, sizeof h), IFP_OK);
        assert_string_equal(h, "localhost");
        assert_true(ifp_config_host_is_local(h));
    }
    assert_int_equal(ifp_group_host(g, 3, h, sizeof h), IFP_ERANGE);
    assert_string_equal(h, "");
    assert_int_equal(ifp_group_host(g, -1, h, sizeof h), IFP_ERANGE);
    /* what "this machine" is */
    assert_true(ifp_config_host_is_local("localhost"));
    assert_true(ifp_config_host_is_local("127.0.0.1"));
    assert_false(ifp_config_host_is_local("127.0.0.2"));
    assert_false(ifp_config_host_is_local("rt1"));
    assert_false(ifp_config_host_is_local(""));
}

static void multi_node_keys(void **u) {
    (void)u;
    ifp_err_t err = {0};
    char h[IFP_CFG_HOST];
    int rc = ifp_config_parse(MULTI, "/base", &g_cfg, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_string_equal(g_cfg.host, "rt1.example");
    assert_false(ifp_config_host_is_local(g_cfg.host));
    assert_string_equal(g_cfg.backend, "tcp://*:5556");
    assert_string_equal(g_cfg.backend_connect, "tcp://rt1.example:5556");
    assert_ptr_equal(ifp_config_backend_connect(&g_cfg), g_cfg.backend_connect);
    assert_string_equal(g_cfg.agent, "deploy/netns-agent.sh"); /* commands as written, not resolved */
    assert_string_equal(g_cfg.mpirun, "/usr/bin/mpirun");
    assert_string_equal(g_cfg.mpirun_args, "--mca btl tcp,self --mca btl_tcp_if_include eth1");
    /* lines */
    assert_int_equal(ifp_config_line(&g_cfg, "router", "host"), 2);
    assert_int_equal(ifp_config_line(&g_cfg, "router", "backend_connect"), 4);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", NULL), 5);
    assert_int_equal(g_cfg.deploy_line, 5);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", "agent"), 6);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", "mpirun"), 7);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", "mpirun_args"), 8);
    assert_int_equal(ifp_config_line(&g_cfg, "deploy", "host"), 0);  /* not a [deploy] key */
    assert_int_equal(ifp_config_line(&g_cfg, "router", "agent"), 0); /* nor a [router] one */
    /* g0: one host per stage, a host repeated */
    const ifp_group_cfg_t *g0 = ifp_config_group(&g_cfg, "g0");
    assert_string_equal(g0->hosts, "node1,node2,node1");
    assert_int_equal(g0->n_hosts, 3);
    assert_int_equal(ifp_group_line(g0, "hosts"), 13);
    static const char *const want0[] = {"node1", "node2", "node1"};
    for (int s = 0; s < 3; s++) {
        assert_int_equal(ifp_group_host(g0, s, h, sizeof h), IFP_OK);
        assert_string_equal(h, want0[s]);
    }
    assert_int_equal(ifp_group_host(g0, 3, h, sizeof h), IFP_ERANGE);
    assert_int_equal(ifp_group_host(g0, 1, h, 5), IFP_ERANGE); /* "node2" needs 6 */
    assert_string_equal(h, "");
    assert_int_equal(ifp_group_host(g0, 1, h, 6), IFP_OK);
    assert_string_equal(h, "node2");
    /* g1: one host (an IPv6 address) for both stages */
    const ifp_group_cfg_t *g1 = ifp_config_group(&g_cfg, "g1");
    assert_int_equal(g1->n_hosts, 1);
    for (int s = 0; s < 2; s++) {
        assert_int_equal(ifp_group_host(g1, s, h, sizeof h), IFP_OK);
        assert_string_equal(h, "fe80::1");
    }
    /* g2: a hostfile, resolved, never opened; mpirun places its stages */
    const ifp_group_cfg_t *g2 = ifp_config_group(&g_cfg, "g2");
    assert_string_equal(g2->hostfile, "/base/g2.hosts");
    assert_int_equal(ifp_group_line(g2, "hostfile"), 19);
    assert_int_equal(ifp_group_line(g2, "hosts"), 0);
    strcpy(h, "x");
    assert_int_equal(ifp_group_host(g2, 0, h, sizeof h), IFP_ENOTFOUND);
    assert_string_equal(h, "");
    assert_int_equal(ifp_group_host(g2, 4, h, sizeof h), IFP_ERANGE);
    /* g3: a network namespace's name; hosts before stages */
    const ifp_group_cfg_t *g3 = ifp_config_group(&g_cfg, "g3");
    assert_int_equal(ifp_group_host(g3, 0, h, sizeof h), IFP_OK);
    assert_string_equal(h, "ns_a");
    /* the last hosts wins; the count is checked against the final stages */
    assert_int_equal(ifp_config_parse(M "[group g0]\nhosts = a,b,c\nhosts = x,y\nstages = 3\nstages = 2\n", NULL,
                                      &g_cfg, &err), 0);
    assert_int_equal(g_cfg.groups[0].n_hosts, 2);
    assert_int_equal(ifp_group_host(&g_cfg.groups[0], 1, h, sizeof h), IFP_OK);
    assert_string_equal(h, "y");
    /* a group not from the parser whose hosts do not fit its stages */
    ifp_group_cfg_t bad = g_cfg.groups[0];
    bad.stages = 3;
    assert_int_equal(ifp_group_host(&bad, 0, h, sizeof h), IFP_EINVAL);
    /* hosts of every shape the kind accepts */
    static const char *const hosts_ok[] = {"localhost", "127.0.0.1", "10.0.0.7", "fe80::1:2", "node-1.rack_2.example",
                                           "ns0", "A.B-c_d:0"};
    char text[512];
    for (size_t i = 0; i < sizeof hosts_ok / sizeof *hosts_ok; i++) {
        snprintf(text, sizeof text, "[router]\nhost = %s\n" M "[group g0]\nhosts = %s\n", hosts_ok[i], hosts_ok[i]);
        rc = ifp_config_parse(text, NULL, &g_cfg, &err);
        if (rc) fail_msg("%s: %s", hosts_ok[i], err.msg);
        assert_string_equal(g_cfg.host, hosts_ok[i]);
        assert_string_equal(g_cfg.groups[0].hosts, hosts_ok[i]);
    }
    /* a backend_connect with a backend that is not a wildcard (NAT, a proxy): both kept */
    assert_int_equal(ifp_config_parse("[router]\nbackend = tcp://10.0.0.1:5556\nbackend_connect = tcp://gw:6556\n" M
                                      "[group g0]\nstages = 1\n", NULL, &g_cfg, &err), 0);
    assert_string_equal(ifp_config_backend_connect(&g_cfg), "tcp://gw:6556");
    assert_string_equal(g_cfg.backend, "tcp://10.0.0.1:5556");
    /* from a file: the hostfile is relative to its folder and need not exist yet */
    const char *path = write_file("multi.ini", MULTI);
    assert_int_equal(ifp_config_load(path, &g_cfg, &err), 0);
    char want[128];
    snprintf(want, sizeof want, "%s/g2.hosts", g_dir);
    assert_string_equal(ifp_config_group(&g_cfg, "g2")->hostfile, want);
    assert_int_not_equal(access(want, F_OK), 0);
}

/* deploy/lib.sh reads the multi-node keys as the C parser does: [router]
 * host and backend_connect, [deploy], each group's hosts and hostfile. */
static void lib_sh_reads_the_multi_node_keys(void **u) {
    (void)u;
    char script[768];
    snprintf(script, sizeof script,
             "source '%s/deploy/lib.sh' && ifp_ini_get \"$0\" router host localhost && "
             "ifp_ini_get \"$0\" router backend_connect - && ifp_ini_get \"$0\" deploy agent ssh && "
             "ifp_ini_get \"$0\" deploy mpirun mpirun && ifp_ini_get \"$0\" deploy mpirun_args - && "
             "groups=$(ifp_ini_groups \"$0\") && while read -r g n; do "
             "ifp_ini_group_get \"$0\" \"$g\" hosts localhost && ifp_ini_group_get \"$0\" \"$g\" hostfile -; "
             "done <<<\"$groups\"",
             IFP_SOURCE_DIR);
    static const char *const texts[] = {
        MULTI,
        M G,                                                                          /* the defaults */
        "[deploy]\nagent = ssh -o BatchMode=yes ; a comment\nagent: ssh -l ifp\n" M /* the last one wins */
        "[group a]\nstages = 2\nhosts = x,y\nhosts = z\n[group b]\nhostfile = /etc/ifp/b.hosts\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        ifp_err_t err = {0};
        int rc = ifp_config_parse(texts[i], NULL, &g_cfg, &err); /* paths as written */
        if (rc) fail_msg("case %zu: %s", i, err.msg);
        char want[2048];
        size_t at = (size_t)snprintf(want, sizeof want, "%s\n%s\n%s\n%s\n%s\n", g_cfg.host,
                                     g_cfg.backend_connect[0] ? g_cfg.backend_connect : "-", g_cfg.agent,
                                     g_cfg.mpirun, g_cfg.mpirun_args[0] ? g_cfg.mpirun_args : "-");
        for (int k = 0; k < g_cfg.n_groups; k++)
            at += (size_t)snprintf(want + at, sizeof want - at, "%s\n%s\n", g_cfg.groups[k].hosts,
                                   g_cfg.groups[k].hostfile[0] ? g_cfg.groups[k].hostfile : "-");
        const char *path = write_file("multi-sh.ini", texts[i]);
        const char *argv[] = {"/bin/bash", "-c", script, path, NULL};
        tu_run_t r = tu_run(argv);
        if (r.status != 0) fail_msg("case %zu: exit %d: %s", i, r.status, r.err);
        assert_string_equal(r.out, want);
        tu_run_free(&r);
    }
}

/* deploy/lib.sh reads [security] and a group's keys, and [client] sections
 * do not disturb it. */
static void lib_sh_reads_the_new_keys(void **u) {
    (void)u;
    char script[512];
    snprintf(script, sizeof script,
             "source '%s/deploy/lib.sh' && ifp_ini_get \"$0\" security curve on && ifp_ini_get \"$0\" security keys - && "
             "ifp_ini_group_get \"$0\" g0 mpi_if lo && ifp_ini_group_get \"$0\" g1 mpi_if lo && "
             "ifp_ini_get \"$0\" 'client g1' key - && ifp_ini_get \"$0\" router liveness 4",
             IFP_SOURCE_DIR);
    static const struct {
        const char *text, *out;
    } cases[] = {
        {M "[group g0]\nmpi_if = ib0,eth1\n[client g1]\nkey = " KEY_A "\n[security]\ncurve = off\nkeys = run/keys\n"
           "[group   g1]\nstages = 1\n[router]\nliveness = 7\n",
         "off\nrun/keys\nib0,eth1\nlo\n" KEY_A "\n7\n"},
        {M G, "on\n-\nlo\nlo\n-\n4\n"}, /* the defaults the caller gives */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = write_file("sh.ini", cases[i].text);
        const char *argv[] = {"/bin/bash", "-c", script, path, NULL};
        tu_run_t r = tu_run(argv);
        if (r.status != 0) fail_msg("case %zu: exit %d: %s", i, r.status, r.err);
        assert_string_equal(r.out, cases[i].out);
        tu_run_free(&r);
    }
}

/* Every key of the option table is in the docs' table with its default. */
static void docs_list_every_key(void **u) {
    (void)u;
    char *doc = tu_read_file(IFP_SOURCE_DIR "/docs/OPERATIONS.md", NULL);
    assert_non_null(doc);
    ifp_config_key_t k;
    int n = 0;
    for (int i = 0; ifp_config_key_info(i, &k) == 0; i++, n++) {
        char cell[64];
        snprintf(cell, sizeof cell, "| `%s` |", k.key);
        const char *row = strstr(doc, cell);
        if (!row) fail_msg("docs/OPERATIONS.md has no row for [%s] %s", k.section, k.key);
        const char *eol = strchr(row, '\n');
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(eol ? eol - row : (long)strlen(row)), row);
        if (*k.def && !strstr(line, k.def))
            fail_msg("docs: [%s] %s: the default %s is not in\n%s", k.section, k.key, k.def, line);
        assert_true(strlen(k.range) > 0);
    }
    assert_int_equal(n, 52);
    free(doc);
}

/* docs/CONFIG.md, the reference page: a "## `[SECTION]`" part per section
 * (`[group NAME]`, `[client NAME]`), in it a "### `KEY`" entry per key
 * whose text gives the default ("Default: `DEF`", or "Default: none" when
 * the table has none) and the accepted values in ifp_config_key_info's
 * words. */
static void config_md_lists_every_key(void **u) {
    (void)u;
    char *doc = tu_read_file(IFP_SOURCE_DIR "/docs/CONFIG.md", NULL);
    assert_non_null(doc);
    ifp_config_key_t k;
    for (int i = 0; ifp_config_key_info(i, &k) == 0; i++) {
        char head[64];
        int named = strcmp(k.section, "group") == 0 || strcmp(k.section, "client") == 0;
        snprintf(head, sizeof head, "\n## `[%s%s]`", k.section, named ? " NAME" : "");
        const char *sect = strstr(doc, head);
        if (!sect) fail_msg("docs/CONFIG.md has no part %s", head + 1);
        const char *sect_end = strstr(sect + 1, "\n## ");
        snprintf(head, sizeof head, "\n### `%s`\n", k.key);
        const char *entry = strstr(sect, head);
        if (!entry || (sect_end && entry > sect_end)) {
            fail_msg("docs/CONFIG.md: no entry for [%s] %s", k.section, k.key);
            return; /* (fail_msg does not return; GCC's -O2 -fsanitize build cannot tell) */
        }
        const char *end = strstr(entry + 1, "\n#");
        size_t n = end ? (size_t)(end - entry) : strlen(entry);
        char *text = strndup(entry, n);
        char want[128];
        if (*k.def) snprintf(want, sizeof want, "Default: `%s`", k.def);
        else snprintf(want, sizeof want, "Default: none");
        if (!strstr(text, want)) fail_msg("docs/CONFIG.md: [%s] %s: no \"%s\" in\n%s", k.section, k.key, want, text);
        /* the range words may be wrapped: compare with whitespace runs as one space */
        char flat[4096];
        size_t f = 0;
        for (size_t j = 0; j < n && f + 1 < sizeof flat; j++) {
            int sp = text[j] == ' ' || text[j] == '\n';
            if (sp && f && flat[f - 1] == ' ') continue;
            flat[f++] = sp ? ' ' : text[j];
        }
        flat[f] = '\0';
        if (!strstr(flat, k.range))
            fail_msg("docs/CONFIG.md: [%s] %s: the accepted values \"%s\" are not in\n%s", k.section, k.key, k.range,
                     text);
        free(text);
        assert_true(strlen(k.range) < sizeof k.range - 1); /* not cut */
    }
    free(doc);
}

/* ------------------------------------------------------------ --check-config */

static tu_run_t check_config(const char *path) {
    const char *argv[] = {ROUTER_BIN, "--check-config", path, NULL};
    return tu_run(argv);
}

/* A config of the real models: [router] endpoints in g_dir, then model_keys
 * and groups. */
static const char *model_config(const char *model_keys, const char *groups) {
    static char text[2048];
    snprintf(text, sizeof text, "[router]\nfrontend = ipc://%s/fe\nbackend = ipc://%s/be\n[model]\n%s\n%s", g_dir, g_dir,
             model_keys, groups);
    return write_file("check.ini", text);
}

/* ifp keygen --config path, into IFP_KEYS (the test's keys folder). */
static void keygen(const char *path) {
    const char *argv[] = {IFP_BINARY_DIR "/tools/ifp", "keygen", "--config", path, NULL};
    tu_run_t r = tu_run(argv);
    if (r.status) fail_msg("ifp keygen --config %s: exit %d: %s", path, r.status, r.err);
    tu_run_free(&r);
}

static void check_config_accepts_local_ini(void **u) {
    (void)u;
    if (access(ROUTER_BIN, X_OK)) fail_msg("not built: %s", ROUTER_BIN);
    char keys[600];
    snprintf(keys, sizeof keys, "%s/keys", g_dir);
    setenv("IFP_KEYS", keys, 1);
    /* CURVE is on by default: without the keys, the file is refused */
    tu_run_t r = check_config(IFP_SOURCE_DIR "/deploy/local.ini");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "router.key"));
    assert_non_null(strstr(r.err, "ifp keygen --config"));
    tu_run_free(&r);
    keygen(IFP_SOURCE_DIR "/deploy/local.ini");
    r = check_config(IFP_SOURCE_DIR "/deploy/local.ini");
    if (r.status) fail_msg("exit %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "/deploy/local.ini: ok: 3 groups (1 dense), 6 stages; model ifp-mix.gguf (4 layers"));
    assert_non_null(strstr(r.out, "4 clusters"));
    assert_non_null(strstr(r.out, "CURVE on (3 group keys, 1 client keys)"));
    assert_ptr_equal(strchr(r.out, '\n'), r.out + strlen(r.out) - 1); /* one line */
    tu_run_free(&r);
    /* nothing is bound: the ipc endpoints of a good file never appear */
    const char *path = model_config("model = " MIX "ifp-mix.gguf\npredictor = " MIX "ifp-mix-predictor.gguf",
                                    "[group d]\nstages = 4\n");
    r = check_config(path); /* group d has no key yet */
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "[group d]: its public key"));
    tu_run_free(&r);
    keygen(path);
    r = check_config(path);
    if (r.status) fail_msg("exit %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "1 group (1 dense), 4 stages"));
    tu_run_free(&r);
    char fe[128];
    snprintf(fe, sizeof fe, "%s/fe", g_dir);
    assert_int_not_equal(access(fe, F_OK), 0);
}

typedef struct {
    const char *model_keys, *groups;
    int line;          /* of check.ini */
    const char *what;  /* after "check.ini:LINE: " */
} bad_model_t;

static const bad_model_t BAD_MODEL[] = {
    {"model = " MIX "ifp-mix.gguf\nclusters = " MIX "clusters-k4.gguf", "[group c9]\ncluster = 9\n", 8,
     "[group c9] cluster: 9 is not in [model] clusters (4 clusters: 0..3)"},
    {"model = " MIX "ifp-mix.gguf", "[group g0]\nstages = 5\n", 7, "[group g0] stages: 5 stages for a model of 4 layers"},
    {"model = " MIX "ifp-mix.gguf", "[group g0]\nstages = 2\nlayers = 3,2\n", 8,
     "[group g0] layers: the stages' layers sum to 5, the model has 4"},
    {"model = " MIX "ifp-mix.gguf", "[group g0]\nctx = 100000\n", 7,
     "[group g0] ctx: 100000 exceeds the model's context of 256 positions"},
    {"model = " STORIES "\npredictor = " MIX "ifp-mix-predictor.gguf", "[group g0]\nstages = 1\n", 6,
     "[model] predictor " MIX "ifp-mix-predictor.gguf: predictor targets 4 layers x 768 channels"},
    {"model = " STORIES "\nclusters = " MIX "clusters-k4.gguf", "[group g0]\nstages = 1\n", 6,
     "[model] clusters " MIX "clusters-k4.gguf: masks of 4 layers x 768 channels, [model] model has 5 x 172"},
    {"model = " MIX "ifp-mix.gguf\npredictor = " STORIES, "[group g0]\nstages = 1\n", 6,
     "[model] predictor: " STORIES ": not a predictor"},
    {"model = " MIX "missing.gguf", "[group g0]\nstages = 1\n", 5, "[model] model: " MIX "missing.gguf: cannot open"},
    {"model = " MIX "clusters-k4.gguf", "[group g0]\nstages = 1\n", 5, "[model] model " MIX "clusters-k4.gguf: "},
    {"model = " MIX "ifp-mix.gguf", "[group g0]\n\n", 6, "[group g0]: empty section"},
};

static void check_config_refuses_with_the_line(void **u) {
    (void)u;
    for (size_t i = 0; i < sizeof BAD_MODEL / sizeof *BAD_MODEL; i++) {
        const char *path = model_config(BAD_MODEL[i].model_keys, BAD_MODEL[i].groups);
        tu_run_t r = check_config(path);
        char want[1024];
        snprintf(want, sizeof want, "ifp-router: %s:%d: %s", path, BAD_MODEL[i].line, BAD_MODEL[i].what);
        if (r.status != 1 || strncmp(r.err, want, strlen(want)))
            fail_msg("case %zu: exit %d\n  got:      %s  expected: %s", i, r.status, r.err, want);
        assert_string_equal(r.out, "");
        tu_run_free(&r);
    }
    tu_run_t r = check_config("/nonexistent.ini");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "ifp-router: /nonexistent.ini: cannot open: No such file or directory\n");
    tu_run_free(&r);
}

/* deploy/local.sh start: a file the checker refuses launches nothing. */
static void local_sh_refuses_to_start(void **u) {
    (void)u;
    static const char *const groups[] = {
        "[group g0]\nstages = 1\ncluster = 7\n",  /* a cluster id the table lacks: only the model check sees it */
        "[group g0]\nstages = 1\nslots = 0\n",    /* a bad value: only the C parser sees it */
    };
    char run[128], env_build[160], env_run[160];
    snprintf(run, sizeof run, "%s/run", g_dir);
    snprintf(env_build, sizeof env_build, "IFP_BUILD_DIR=%s", IFP_BINARY_DIR);
    snprintf(env_run, sizeof env_run, "IFP_RUN_DIR=%s", run);
    for (size_t i = 0; i < 2; i++) {
        const char *path = model_config("model = " MIX "ifp-mix.gguf\nclusters = " MIX "clusters-k4.gguf", groups[i]);
        const char *argv[] = {"/usr/bin/env", env_build, env_run, "IFP_MPIRUN=/bin/false", "IFP_START_TIMEOUT=1",
                              "/bin/bash", IFP_SOURCE_DIR "/deploy/local.sh", "start", path, NULL};
        tu_run_t r = tu_run(argv);
        if (r.status != 1 || !strstr(r.err, "refusing to start") || !strstr(r.err, path))
            fail_msg("case %zu: exit %d\nstdout: %s\nstderr: %s", i, r.status, r.out, r.err);
        assert_non_null(strstr(r.err, i == 0 ? ":9: [group g0] cluster: 7 is not in [model] clusters"
                                             : ":9: [group g0] slots: \"0\""));
        tu_run_free(&r);
        char pid[160];
        snprintf(pid, sizeof pid, "%s/router.pid", run);
        assert_int_not_equal(access(pid, F_OK), 0); /* nothing was launched */
    }
}

static int setup(void **u) {
    (void)u;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp-test-config-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **u) {
    (void)u;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_the_configs_in_use),
        cmocka_unit_test(local_ini_loads_with_lines),
        cmocka_unit_test(refuses_with_the_line),
        cmocka_unit_test(refuses_long_lines_and_nul),
        cmocka_unit_test(split_and_paths),
        cmocka_unit_test(security_section),
        cmocka_unit_test(client_sections),
        cmocka_unit_test(at_most_256_clients),
        cmocka_unit_test(group_mpi_if),
        cmocka_unit_test(multi_node_defaults),
        cmocka_unit_test(multi_node_keys),
        cmocka_unit_test(lib_sh_reads_the_new_keys),
        cmocka_unit_test(lib_sh_reads_the_multi_node_keys),
        cmocka_unit_test(docs_list_every_key),
        cmocka_unit_test(config_md_lists_every_key),
        cmocka_unit_test(check_config_accepts_local_ini),
        cmocka_unit_test(check_config_refuses_with_the_line),
        cmocka_unit_test(local_sh_refuses_to_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
