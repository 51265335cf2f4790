/* test_config — the cluster config (config/config.h) and its checkers.
 *
 *   - every INI rule, with the exact line each error names: syntax, unknown
 *     sections and keys, bad values, empty and duplicate sections, group
 *     names ("a" next to "a.out"), keys that must agree;
 *   - the configs in use accepted: deploy/local.ini and the ones
 *     router_testlib.h, cluster_testlib.h and shard_testlib.h write;
 *   - deploy/lib.sh's awk reader lists the same groups on every accepted
 *     file, and refuses the section-level mistakes at the same line;
 *   - `ifp-router --check-config` (the real binary): exit 0 and a summary
 *     on deploy/local.ini, exit 1 and a FILE:LINE message on broken files
 *     (the INI, then the model files), no socket bound; deploy/local.sh
 *     start refuses such a file before launching anything;
 *   - docs/OPERATIONS.md lists every key of the option table with its
 *     default. */
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
    assert_int_equal(ifp_config_line(&g_cfg, "router", NULL), 7);
    assert_int_equal(ifp_config_line(&g_cfg, "router", "policy"), 17);
    assert_int_equal(ifp_config_line(&g_cfg, "router", "predictor_threads"), 0); /* default */
    assert_int_equal(ifp_config_line(&g_cfg, "model", "clusters"), 22);
    const ifp_group_cfg_t *g1 = ifp_config_group(&g_cfg, "g1");
    assert_non_null(g1);
    assert_int_equal(ifp_group_line(g1, NULL), 29);
    assert_int_equal(ifp_group_line(g1, "cluster"), 31);
    assert_int_equal(ifp_group_line(g1, "max_batch"), 0);
    assert_int_equal(g1->cluster, 3);
    assert_int_equal(g_cfg.n_lines, 37);
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
    {M "[server]\nport = 1\n", "config:3: [server]: unknown section; expected [router], [model] or [group NAME]", NULL, 1},
    {"[Router]\nliveness = 1\n", "config:1: [Router]: unknown section", "(lower-case)", 1},
    {"x = 1\n" M G, "config:1: x: a key before the first section header", NULL, 1},
    {M "[router]\n[group g0]\nstages = 1\n", "config:3: [router]: empty section", NULL, 1},
    {"[router]\nliveness = 3\n" G, "config:4: [model]: missing at the end of the file", NULL, 1},
    {"[model]\npredictor = p.gguf\n" G, "config:1: [model] model: missing", NULL, 1},
    {"; just a model\n" M, "config:3: [group NAME]: none at the end of the file", NULL, 1},
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
    assert_int_equal(n, 22);
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

static void check_config_accepts_local_ini(void **u) {
    (void)u;
    if (access(ROUTER_BIN, X_OK)) fail_msg("not built: %s", ROUTER_BIN);
    tu_run_t r = check_config(IFP_SOURCE_DIR "/deploy/local.ini");
    if (r.status) fail_msg("exit %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "/deploy/local.ini: ok: 3 groups (1 dense), 6 stages; model ifp-mix.gguf (4 layers"));
    assert_non_null(strstr(r.out, "4 clusters"));
    assert_ptr_equal(strchr(r.out, '\n'), r.out + strlen(r.out) - 1); /* one line */
    tu_run_free(&r);
    /* nothing is bound: the ipc endpoints of a good file never appear */
    const char *path = model_config("model = " MIX "ifp-mix.gguf\npredictor = " MIX "ifp-mix-predictor.gguf",
                                    "[group d]\nstages = 4\n");
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
        cmocka_unit_test(docs_list_every_key),
        cmocka_unit_test(check_config_accepts_local_ini),
        cmocka_unit_test(check_config_refuses_with_the_line),
        cmocka_unit_test(local_sh_refuses_to_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
