/* gen_seeds — writes the seed corpora of the fuzz targets from real data with
 * the project's own encoders (GGUF writer, mask/cluster savers, protobuf-c
 * packing, the tokenizer), small enough to commit.
 *
 *   usage: gen_seeds CORPUS_DIR       (tests/fuzz/run.sh --gen-seeds runs it)
 *
 * Writes CORPUS_DIR/<target>/<name> for every target; inputs are read from
 * the source tree (models/, deploy/, tests/data/). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster.h"
#include "fuzz.h"
#include "gguf.h"
#include "mask.h"
#include "tokenizer.h"

static const char *out_dir;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "gen_seeds: %s: %s\n", what, detail);
    exit(1);
}

static const char *seed_path(const char *target, const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    return path;
}

static void put(const char *target, const char *name, const void *data, size_t len) {
    const char *path = seed_path(target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) die(path, strerror(errno));
}

static char *slurp(const char *rel, size_t *len) {
    const char *path = ifp_fuzz_source_path(rel);
    FILE *f = fopen(path, "rb");
    if (!f) die(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) die(path, "read failed");
    fclose(f);
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

static void check(int rc, const ifp_err_t *err) {
    if (rc) die("error", err->msg);
}

/* ---------------------------------------------------------------- GGUF */

/* The metadata of a real model file, without its tensors. */
static void gguf_header(const char *rel, const char *name) {
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    check(ifp_gguf_open(ifp_fuzz_source_path(rel), &g, &err), &err);
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    for (uint64_t i = 0; i < ifp_gguf_n_kv(g); i++)
        if (ifp_gguf_writer_copy_kv(w, ifp_gguf_kv_at(g, i))) die(rel, "copy_kv failed");
    check(ifp_gguf_writer_write(w, seed_path("fuzz_gguf", name), &err), &err);
    ifp_gguf_writer_destroy(&w);
    ifp_gguf_close(&g);
}

/* ---------------------------------------------------------------- masks */

static ifp_cluster_table_t *real_table;

static void masks(void) {
    ifp_err_t err = {0};
    check(ifp_cluster_table_load(ifp_fuzz_source_path("models/ifp-mix/clusters-k4.gguf"), &real_table, &err), &err);
    /* the real table, and one with its first cluster only */
    check(ifp_cluster_table_save(real_table, seed_path("fuzz_mask_file", "clusters-k4.gguf"), &err), &err);
    ifp_cluster_table_t one = *real_table;
    one.n_clusters = 1;
    check(ifp_cluster_table_save(&one, seed_path("fuzz_mask_file", "clusters-k1.gguf"), &err), &err);
    /* a real predicted mask: the medoid of cluster 0 */
    check(ifp_mask_save(real_table->c[0].medoid, seed_path("fuzz_mask_file", "medoid0.mask.gguf"), &err), &err);
    /* tiny masks, and a table clustered from them by the real k-medoids */
    enum { N = 6, L = 2, F = 16, K = 4 };
    ifp_mask_t *m[N];
    for (int i = 0; i < N; i++) {
        m[i] = ifp_mask_new(L, F);
        for (int l = 0; l < L; l++) {
            int32_t kept[K];
            for (int j = 0; j < K; j++) kept[j] = (int32_t)(j * 3 + (i < N / 2 ? 0 : 1) + (l && i % 2));
            check(ifp_mask_set_layer(m[i], l, kept, K, &err), &err);
        }
    }
    check(ifp_mask_save(m[0], seed_path("fuzz_mask_file", "tiny.mask.gguf"), &err), &err);
    ifp_kmedoids_params_t p = ifp_kmedoids_default_params();
    p.k = 2;
    ifp_cluster_table_t *t = NULL;
    check(ifp_cluster_masks((const ifp_mask_t *const *)m, N, &p, &t, NULL, &err), &err);
    check(ifp_cluster_table_save(t, seed_path("fuzz_mask_file", "tiny-clusters.gguf"), &err), &err);
    ifp_cluster_table_destroy(&t);
    for (int i = 0; i < N; i++) ifp_mask_destroy(&m[i]);
}

/* ---------------------------------------------------------------- tokenizer */

static void tokenizer_seeds(void) {
    /* prompts of the golden set: one per domain */
    size_t len;
    char *golden = slurp("models/ifp-mix/golden.jsonl", &len);
    char seen[8][32] = {{0}};
    int n_seen = 0;
    for (char *line = strtok(golden, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *dom = cJSON_GetObjectItem(j, "domain"), *prompt = cJSON_GetObjectItem(j, "prompt");
        int dup = 0;
        for (int i = 0; cJSON_IsString(dom) && i < n_seen; i++) dup |= strcmp(seen[i], dom->valuestring) == 0;
        if (cJSON_IsString(dom) && cJSON_IsString(prompt) && !dup && n_seen < 8) {
            snprintf(seen[n_seen++], sizeof seen[0], "%s", dom->valuestring);
            char name[64];
            snprintf(name, sizeof name, "golden-%s.txt", dom->valuestring);
            put("fuzz_tokenizer", name, prompt->valuestring, strlen(prompt->valuestring));
        }
        cJSON_Delete(j);
    }
    free(golden);
    char *story = slurp("tests/data/stories260K_t0_n64_once_upon_a_time.txt", &len);
    put("fuzz_tokenizer", "story.txt", story, len < 400 ? len : 400);
    static const struct {
        const char *name, *text;
    } texts[] = {
        {"spaces.txt", "  two leading,   three inside and trailing  "},
        {"controls.txt", "tab\there\nnew line\r\n<s> </s> <unk> <0x41>"},
        {"unicode.txt", "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82 \xe2\x96\x81" "marker"},
        {"invalid-utf8.txt", "ok \xff\xfe bad \xc3( \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 end"},
        {"code.txt", "def f(x):\n    return x * 2  # doubled\n"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        put("fuzz_tokenizer", texts[i].name, texts[i].text, strlen(texts[i].text));
    /* real token ids (the input is also read as int32 ids) */
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_tokenizer_t *tok = NULL;
    check(ifp_gguf_open(ifp_fuzz_source_path("models/ifp-mix/ifp-mix.gguf"), &g, &err), &err);
    check(ifp_tokenizer_from_gguf(g, &tok, &err), &err);
    int32_t ids[128];
    int n = ifp_tokenizer_encode(tok, "Once upon a time, there was a little robot.", 1, ids, 128);
    uint8_t le[4 * 128];
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) le[4 * i + b] = (uint8_t)((uint32_t)ids[i] >> (8 * b));
    put("fuzz_tokenizer", "ids-story.bin", le, 4 * (size_t)n);
    ifp_tokenizer_destroy(&tok);
    ifp_gguf_close(&g);
    free(story);
}

/* ---------------------------------------------------------------- config */

static void config_seeds(void) {
    size_t len;
    char *ini = slurp("deploy/local.ini", &len);
    put("fuzz_config", "local.ini", ini, len);
    /* the same with CRLF line ends */
    char *crlf = malloc(2 * len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (ini[i] == '\n') crlf[k++] = '\r';
        crlf[k++] = ini[i];
    }
    put("fuzz_config", "local-crlf.ini", crlf, k);
    free(crlf);
    free(ini);
    static const struct {
        const char *name, *text;
    } variants[] = {
        {"minimal.ini", "[model]\nmodel = m.gguf\n"},
        {"every-key.ini",
         "[router]\nfrontend = ipc:///tmp/front\nbackend = tcp://*:7000\nheartbeat_ms = 100\nliveness = 3\n"
         "min_coverage = 0.95\nbalance_abs = 64\nbalance_rel = 2.5\nqueue_max = 0\nmax_tokens = 16\n"
         "max_tokens_limit = 64\npolicy = least-loaded\npredictor_threads = 2\nhost = rt1\n"
         "backend_connect = tcp://rt1:7000\n"
         "[model]\nmodel = /abs/model.gguf\npredictor = p.gguf\nclusters = ../c.gguf\n"
         "[deploy]\nagent = ssh -o BatchMode=yes\nmpirun = /usr/bin/mpirun\nmpirun_args = --mca btl tcp,self\n"
         "[group a]\nstages = 3\nlayers = 1, 2,1\ncluster = 2\nslots = 4\nctx = 128\nmax_batch = 8\n"
         "batch_timeout_ms = 1000\nhosts = n1,n2,n1\n[group b]\ncluster = dense\nhostfile = b.hosts\n"
         "[group a]\nslots = 5\n"},
        {"comments.ini", "; comment\n# other comment\n[router] ; trailing\npolicy = dense-only ; why\n"
                         "[model]\nmodel = x.gguf\n\n  [group   spaced]  \n  stages = 2  \n"},
        {"bad-value.ini", "[router]\nheartbeat_ms = 5ms\n[model]\nmodel = m.gguf\n"},
        {"bad-layers.ini", "[model]\nmodel = m.gguf\nclusters = c.gguf\n[group g]\nstages = 2\nlayers = 3,\n"},
        {"unknown.ini", "[routr]\nx = 1\n"},
        {"no-section.ini", "model = m.gguf\n"},
        {"security-clients.ini",
         "; security and clients\n"
         "[security]\n"
         "curve = off\n"
         "keys = ../keys\n"
         "[router]\n"
         "policy = least-loaded\n"
         "[model]\n"
         "model = m.gguf\n"
         "[client alice]\n"
         "key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
         "max_inflight = 16\n"
         "[group g0]\n"
         "stages = 2\n"
         "mpi_if = ib0,eth1\n"
         "[client bob]\n"
         "key = clients/bob.pub\n"
         "[group g1]\n"
         "mpi_if: 10.1.0.0/16\n"
         "[client g1]\n"
         "key = keys/clients/abcdefghijklmnopqrstuvw.pub\n"
         "key = ./keys/clients/abcdefghijklmnopqrstuvw.pub\n"
         ""},
        {"multi-node.ini",
         "; one deployment across hosts\n"
         "[router]\n"
         "host = rt1.example\n"
         "backend = tcp://0.0.0.0:5556\n"
         "backend_connect = tcp://rt1.example:5556\n"
         "[deploy]\n"
         "agent = deploy/netns-agent.sh\n"
         "[model]\n"
         "model = m.gguf\n"
         "[group g0]\n"
         "stages = 4\n"
         "hosts = node1,node2,fe80::1,ns_a\n"
         "[group g1]\n"
         "stages = 2\n"
         "hosts = 10.0.0.7\n"
         "[group g2]\n"
         "hostfile = g2.hosts\n"
         ""},
        {"bad-multi-node.ini",
         "[router]\n"
         "backend = tcp://*:5556\n"
         "host = -oProxyCommand=x\n"
         "[deploy]\n"
         "mpirun_args =\n"
         "[deploy]\n"
         "agent = ssh\n"
         "[model]\n"
         "model = m.gguf\n"
         "[group g0]\n"
         "stages = 2\n"
         "hosts = a,b,c\n"
         "hostfile = h\n"
         "[group g1]\n"
         "hosts = a,,b\n"
         ""},
        {"bad-client.ini",
         "[model]\n"
         "model = m.gguf\n"
         "[group g0]\n"
         "mpi_if = eth0, eth1\n"
         "[client a]\n"
         "max_inflight = 2\n"
         "[client a]\n"
         "key = Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\n"
         "[security]\n"
         "curve = yes\n"
         ""},
    };
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        put("fuzz_config", variants[i].name, variants[i].text, strlen(variants[i].text));
}

/* key files: a public file with two keys (rotation), a secret key file */
static void keyfile_seeds(void) {
    static const char pub2[] = "# two keys: the old and the new (rotation)\n"
                               "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
                               "  Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID  \n";
    static const char sec[] = "# ifp CURVE secret key (Z85) of a test: keep it private (mode 0600)\n"
                              "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs\n";
    put("fuzz_keyfile", "two-public.pub", pub2, sizeof pub2 - 1);
    put("fuzz_keyfile", "secret.key", sec, sizeof sec - 1);
}

/* API keys files (security/apikeys.h): as ifp keygen writes one, and an
 * edited one (tabs, CRLF, rotation, no final newline, the longest name and
 * key). */
static void apikeys_seeds(void) {
    static const char made[] =
        "# ifp HTTP API keys: one `NAME KEY` per line; a request sends `Authorization: Bearer KEY`.\n"
        "client ifp-EXAMPLEexample0123456789EXAMPLEexample01\n"
        "alice ifp-SEEDseedSEED0123456789SEEDseedSEED012345\n";
    char edited[1024];
    int n = snprintf(edited, sizeof edited,
                     "# rotation: two keys of bob\r\n\n  bob\tifp-0123456789012345678901234567890123456789 \r\n"
                     "bob x~!@#$%%^&*()_+{}|:<>?\n%.63s %.256s",
                     "n.a_m-e9nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
                     "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
                     "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
                     "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    put("fuzz_apikeys", "made.txt", made, sizeof made - 1);
    put("fuzz_apikeys", "edited.txt", edited, (size_t)n);
}

/* ---------------------------------------------------------------- wire */

static void put_pb(const char *target, const char *name, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    put(target, name, buf, n);
    free(buf);
}

/* A ClientMessage framed as from a DEALER ([identity][body]) or a REQ
 * ([identity][""][body]). */
static void put_client(const char *name, const Ifp__ClientMessage *m, int req) {
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *body = malloc(n ? n : 1), out[8192];
    protobuf_c_message_pack(&m->base, body);
    static const uint8_t ident[5] = {0, 0x6b, 0x8b, 0x45, 0x67}; /* as ZeroMQ makes them */
    const void *p[3] = {ident, "", body};
    size_t len[3] = {sizeof ident, 0, n};
    if (!req) p[1] = body, len[1] = n;
    size_t k = ifp_fuzz_join_frames(p, len, req ? 3 : 2, out, sizeof out);
    if (!k) die(name, "frames too large");
    put("fuzz_wire_client", name, out, k);
    free(body);
}

static void client_seeds(void) {
    Ifp__Request q = IFP__REQUEST__INIT;
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &q;
    q.id = "req-1";
    q.prompt = "Question: What is 12 + 30?\nAnswer:";
    q.max_tokens = 32;
    q.temperature = 0.8f;
    q.top_p = 0.95f;
    q.top_k = 40;
    q.seed = 1234;
    q.stream = 1;
    put_client("request-input.bin", &m, 0);
    char *stop[2] = {"\n\n", "Question:"};
    q.id = "req-2";
    q.mask_mode = IFP__MASK_MODE__MASK_DENSE;
    q.n_stop = 2;
    q.stop = stop;
    q.temperature = 0;
    q.stream = 0;
    q.deadline_ms = 5000;
    put_client("request-dense-stop-req.bin", &m, 1);
    int32_t toks[] = {1, 327, 1994, 1098, 317, 2041};
    q.id = "req-3";
    q.prompt = "";
    q.n_prompt_tokens = sizeof toks / sizeof *toks;
    q.prompt_tokens = toks;
    q.n_stop = 0;
    q.mask_mode = IFP__MASK_MODE__MASK_TASK;
    q.task = "Solve the arithmetic word problem step by step.";
    q.debug = 1;
    put_client("request-task-tokens.bin", &m, 0);
    Ifp__Cancel c = IFP__CANCEL__INIT;
    c.id = "req-1";
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_CANCEL;
    m.cancel = &c;
    put_client("cancel.bin", &m, 0);
    Ifp__Ping ping = IFP__PING__INIT;
    ping.id = "ping-7";
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_PING;
    m.ping = &ping;
    put_client("ping-req.bin", &m, 1);
}

static void group_seeds(void) {
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    Ifp__Heartbeat h = IFP__HEARTBEAT__INIT;
    uint64_t running[] = {17, 18, 21};
    Ifp__Finished f0 = IFP__FINISHED__INIT, f1 = IFP__FINISHED__INIT, *fin[] = {&f0, &f1};
    f0.rid = 12, f0.tokens = 64, f1.rid = 15, f1.tokens = 3;
    h.group = "g0", h.cluster = 0, h.stages = 2, h.slots = 8, h.free_slots = 5, h.queued_tokens = 300;
    h.kv_free = 1500, h.incarnation = 0x1234abcd, h.n_running = 3, h.running = running;
    h.router_epoch = 0x5eed, h.work_seen = 21, h.n_finished = 2, h.finished = fin;
    h.tokens_generated = 4096, h.requests_done = 40;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &h;
    put_pb("fuzz_wire_group", "heartbeat.bin", &m.base);
    Ifp__GroupToken t0 = IFP__GROUP_TOKEN__INIT, t1 = IFP__GROUP_TOKEN__INIT, t2 = IFP__GROUP_TOKEN__INIT;
    Ifp__Debug dbg = IFP__DEBUG__INIT;
    float logits[4] = {1.5f, -2.0f, 0.25f, 7.0f};
    dbg.n_logits_last_prompt = 4, dbg.logits_last_prompt = logits, dbg.argmax_last_prompt = 3;
    t0.rid = 17, t0.index = 0, t0.token = 450, t0.logprob = -0.5f, t0.debug = &dbg;
    t1.rid = 18, t1.index = 9, t1.token = 2, t1.logprob = -0.01f, t1.finish = IFP__FINISH_REASON__FINISH_EOS;
    t2.rid = 21, t2.index = 31, t2.token = 1200, t2.logprob = -3.0f, t2.finish = IFP__FINISH_REASON__FINISH_LENGTH;
    Ifp__GroupToken *toks[] = {&t0, &t1, &t2};
    Ifp__TokenBatch b = IFP__TOKEN_BATCH__INIT;
    b.group = "g0", b.n_tokens = 3, b.tokens = toks;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
    m.tokens = &b;
    put_pb("fuzz_wire_group", "tokens.bin", &m.base);
    Ifp__WorkError e = IFP__WORK_ERROR__INIT;
    e.rid = 19, e.message = "mask has 10 bytes, expected 384 (4 layers x 768 channels)";
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    m.error = &e;
    put_pb("fuzz_wire_group", "work-error.bin", &m.base);
}

/* A RouterToGroup for fuzz_wire_router (the body) and fuzz_shard_link (one
 * frame in the frame-split encoding: a 0 byte, then the body). */
static void put_router(const char *name, const ProtobufCMessage *m) {
    put_pb("fuzz_wire_router", name, m);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    buf[0] = 0;
    protobuf_c_message_pack(m, buf + 1);
    put("fuzz_shard_link", name, buf, n + 1);
    free(buf);
}

static void router_seeds(void) {
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    Ifp__Work w = IFP__WORK__INIT;
    int32_t prompt[] = {1, 9038, 2501, 263, 931};
    for (int i = 0; i < 5; i++) prompt[i] %= 2048;
    w.rid = 17, w.n_prompt = 5, w.prompt = prompt, w.max_new = 64, w.temperature = 0.8f, w.top_p = 0.95f;
    w.top_k = 40, w.seed = 99, w.eos = 2, w.router_epoch = 0x5eed, w.seq = 4;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
    m.work = &w;
    put_router("work-dense.bin", &m.base);
    /* with the real mask of cluster 0's medoid, packed as the router packs it */
    const ifp_mask_t *mk = real_table->c[0].medoid;
    size_t n = ifp_wire_mask_bytes(mk->n_layers, mk->d_ffn);
    uint8_t *packed = malloc(n);
    ifp_wire_mask_pack(mk, packed);
    w.mask.data = packed, w.mask.len = n, w.first_index = 3, w.debug = 1, w.seq = 5, w.seed = 0;
    put_router("work-mask.bin", &m.base);
    free(packed);
    Ifp__CancelWork c = IFP__CANCEL_WORK__INIT;
    c.rid = 17;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CANCEL;
    m.cancel = &c;
    put_router("cancel.bin", &m.base);
    Ifp__Control ctl = IFP__CONTROL__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    m.control = &ctl;
    ctl.kind = IFP__CONTROL__KIND__LOAD_CLUSTER, ctl.cluster = 3;
    put_router("control-load.bin", &m.base);
    ctl.kind = IFP__CONTROL__KIND__SHUTDOWN, ctl.cluster = 0;
    put_router("control-shutdown.bin", &m.base);
}

static void server_seeds(void) {
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    Ifp__TokenEvent ev = IFP__TOKEN_EVENT__INIT;
    ev.id = "req-1", ev.index = 4, ev.token = 1150, ev.text.data = (uint8_t *)" robot", ev.text.len = 6;
    ev.logprob = -1.25f;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_TOKEN;
    m.token = &ev;
    put_pb("fuzz_wire_server", "token.bin", &m.base);
    Ifp__Reply r = IFP__REPLY__INIT;
    Ifp__Usage u = IFP__USAGE__INIT;
    Ifp__Timings tm = IFP__TIMINGS__INIT;
    Ifp__Debug dbg = IFP__DEBUG__INIT;
    int32_t prompt[] = {1, 327, 1994}, toks[] = {450, 1150, 29889};
    uint32_t replays[] = {2};
    float logits[3] = {0.5f, 3.0f, -1.0f};
    u.prompt_tokens = 3, u.completion_tokens = 3;
    tm.queue_ms = 0.4, tm.predictor_ms = 2.5, tm.ttft_ms = 12.0, tm.total_ms = 40.5;
    dbg.n_logits_last_prompt = 3, dbg.logits_last_prompt = logits, dbg.argmax_last_prompt = 1;
    r.id = "req-1", r.n_prompt_tokens = 3, r.prompt_tokens = prompt, r.n_tokens = 3, r.tokens = toks;
    r.text.data = (uint8_t *)" the robot.", r.text.len = 11, r.finish = IFP__FINISH_REASON__FINISH_STOP;
    r.usage = &u, r.timings = &tm, r.group = "g1", r.cluster = 3, r.coverage = 0.97, r.n_replays = 1;
    r.replays = replays, r.debug = &dbg;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_REPLY;
    m.reply = &r;
    put_pb("fuzz_wire_server", "reply.bin", &m.base);
    Ifp__Error e = IFP__ERROR__INIT;
    e.id = "req-9", e.code = IFP__ERROR_CODE__ERR_OVERLOADED, e.message = "queue full (256 waiting)";
    e.retry_after_ms = 250;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    put_pb("fuzz_wire_server", "error.bin", &m.base);
    Ifp__GroupStatus g0 = IFP__GROUP_STATUS__INIT, g1 = IFP__GROUP_STATUS__INIT, *gs[] = {&g0, &g1};
    g0.name = "g0", g0.alive = 1, g0.seen = 1, g0.cluster = 0, g0.slots = 8, g0.free_slots = 6, g0.running = 2;
    g0.incarnation = 77, g0.tokens_generated = 9000, g0.heartbeat_age_ms = 120.5;
    g1.name = "g2", g1.cluster = -1, g1.slots = 8, g1.heartbeat_age_ms = -1, g1.deaths = 1;
    Ifp__Counter c0 = IFP__COUNTER__INIT, c1 = IFP__COUNTER__INIT, *cs[] = {&c0, &c1};
    c0.name = "requests", c0.value = 120, c1.name = "replays", c1.value = 2;
    Ifp__Pong p = IFP__PONG__INIT;
    p.id = "ping-7", p.inflight = 3, p.queued = 1, p.predicting = 0, p.n_groups = 2, p.groups = gs;
    p.n_counters = 2, p.counters = cs;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PONG;
    m.pong = &p;
    put_pb("fuzz_wire_server", "pong.bin", &m.base);
    Ifp__Progress pr = IFP__PROGRESS__INIT;
    pr.id = "req-2", pr.tokens = 17;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PROGRESS;
    m.progress = &pr;
    put_pb("fuzz_wire_server", "progress.bin", &m.base);
}

/* A ServerMessage as fuzz_client's ROUTERs send it: the frame-split
 * encoding of [body], or ["", body] with the delimiter frame. */
static void put_to_client(const char *name, const Ifp__ServerMessage *m, int delim) {
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *body = malloc(n ? n : 1), out[8192];
    protobuf_c_message_pack(&m->base, body);
    const void *p[2] = {"", body};
    size_t len[2] = {0, n};
    size_t k = ifp_fuzz_join_frames(p + !delim, len + !delim, delim ? 2 : 1, out, sizeof out);
    if (!k) die(name, "frames too large");
    put("fuzz_client", name, out, k);
    free(body);
}

/* fuzz_client: messages about its requests in flight, "req-1" (streaming)
 * and "req-2" (not). */
static void client_lib_seeds(void) {
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    Ifp__TokenEvent ev = IFP__TOKEN_EVENT__INIT;
    ev.id = "req-1", ev.index = 0, ev.token = 450, ev.text.data = (uint8_t *)" the", ev.text.len = 4;
    ev.logprob = -0.75f;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_TOKEN;
    m.token = &ev;
    put_to_client("token-req1-0.bin", &m, 0);
    put_to_client("token-req1-0-delim.bin", &m, 1);
    Ifp__Progress pr = IFP__PROGRESS__INIT;
    pr.id = "req-2", pr.tokens = 3;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PROGRESS;
    m.progress = &pr;
    put_to_client("progress-req2.bin", &m, 0);
    Ifp__Reply r = IFP__REPLY__INIT;
    Ifp__Usage u = IFP__USAGE__INIT;
    Ifp__Timings tm = IFP__TIMINGS__INIT;
    int32_t prompt[] = {1, 9038, 2501, 263, 931}, toks[] = {450, 1150, 29889};
    u.prompt_tokens = 5, u.completion_tokens = 3;
    tm.queue_ms = 0.2, tm.predictor_ms = 1.5, tm.ttft_ms = 9.0, tm.total_ms = 30.0;
    r.id = "req-2", r.n_prompt_tokens = 5, r.prompt_tokens = prompt, r.n_tokens = 3, r.tokens = toks;
    r.text.data = (uint8_t *)" the robot.", r.text.len = 11, r.finish = IFP__FINISH_REASON__FINISH_EOS;
    r.usage = &u, r.timings = &tm, r.group = "g0", r.cluster = 0, r.coverage = 0.98;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_REPLY;
    m.reply = &r;
    put_to_client("reply-req2.bin", &m, 0);
    Ifp__Error e = IFP__ERROR__INIT;
    e.id = "req-1", e.code = IFP__ERROR_CODE__ERR_OVERLOADED, e.message = "queue full (256 waiting)";
    e.retry_after_ms = 250;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    put_to_client("error-overloaded-req1.bin", &m, 0);
    e.id = "req-2", e.code = IFP__ERROR_CODE__ERR_INTERNAL, e.message = "the router is shutting down";
    e.retry_after_ms = 0;
    put_to_client("error-shutdown-req2.bin", &m, 0);
    e.code = IFP__ERROR_CODE__ERR_DEADLINE, e.message = "deadline of 5000 ms passed";
    put_to_client("error-deadline-req2.bin", &m, 0);
    e.id = "req-9", e.code = IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST, e.message = "no request 'req-9'";
    put_to_client("error-unknown.bin", &m, 0);
    Ifp__GroupStatus g0 = IFP__GROUP_STATUS__INIT, *gs[] = {&g0};
    g0.name = "g0", g0.alive = 1, g0.seen = 1, g0.slots = 8, g0.free_slots = 7, g0.running = 1;
    Ifp__Counter c0 = IFP__COUNTER__INIT, *cs[] = {&c0};
    c0.name = "requests", c0.value = 2;
    Ifp__Pong p = IFP__PONG__INIT;
    p.id = "ping-7", p.inflight = 2, p.n_groups = 1, p.groups = gs, p.n_counters = 1, p.counters = cs;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PONG;
    m.pong = &p;
    put_to_client("pong.bin", &m, 0);
}

void gen_seeds_router(void (*put)(const char *, const char *, const void *, size_t)); /* gen_seeds_router.c */
void gen_seeds_http(void (*put)(const char *, const char *, const void *, size_t));   /* gen_seeds_http.c */
void gen_seeds_gguf(void (*put)(const char *, const char *, const void *, size_t));   /* gen_seeds_gguf.c */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) die(out_dir, strerror(errno));
    gguf_header("models/ifp-mix/ifp-mix.gguf", "ifp-mix-header.gguf");
    gguf_header("models/stories260K.gguf", "stories260K-header.gguf");
    masks();
    tokenizer_seeds();
    config_seeds();
    keyfile_seeds();
    apikeys_seeds();
    client_seeds();
    group_seeds();
    router_seeds();
    server_seeds();
    client_lib_seeds();
    gen_seeds_router(put);
    gen_seeds_http(put);
    gen_seeds_gguf(put);
    ifp_cluster_table_destroy(&real_table);
    return 0;
}
