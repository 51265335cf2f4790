/* fuzz_router — the real router's handlers on messages from outside.
 *
 * One ifp-router object (router/router.h) is built at start with the
 * embedded model, its predictor and cluster table, two groups (g0: cluster
 * 0, two stages; g1: dense), its sockets bound to inproc:// endpoints of a
 * context this target shares, where DEALERs play the client and the groups'
 * stages (what the router sends them is read and dropped).  Each input is a sequence of messages, each handed
 * to the handler the event loop would call — rt_on_client for a client,
 * rt_on_group for a group's stage 0 ("g0", "g1"), its last stage ("g0.out")
 * or a stranger ("zz") — with the predictor jobs they start run to the end
 * and the queue pumped in between, so requests go through admission, the
 * predictor, placement, tokens, heartbeats (lost and orphaned work), errors
 * and replays.  At the end every request is aborted and the router's
 * invariants are checked: nothing left in the table, no slot or load still
 * charged to a group.
 *
 * Input: byte 0 (mod 8) + 1 messages; each is a header byte (low 2 bits:
 * the sender — client, g0, g0.out or g1, then bit 2: a client's empty
 * delimiter frame, bit 3: the stranger "zz" instead), a length byte pair
 * (little endian, cut at the input's end) and the body.  The first requests
 * of a run get rids 1000, 1001, ... and the router's epoch is 77, so seeds
 * can name them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "fuzz.h"
#include "rt.h"

static rt_router_t *R;
static void *zctx, *peers[4]; /* client-1, g0, g0.out, g1 */
static const char *const PEER_IDS[4] = {"client-1", "g0", "g0.out", "g1"};

/* Drops whatever the router sent the peers. */
static void drain_peers(void) {
    for (int i = 0; i < 4; i++) {
        char buf[256];
        while (zmq_recv(peers[i], buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {}
    }
}

static void heartbeat(const char *ident, int cluster, int stages) {
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = (char *)ident;
    hb.cluster = cluster;
    hb.stages = (uint32_t)stages;
    hb.slots = hb.free_slots = 8;
    hb.incarnation = 5;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    uint8_t buf[256];
    size_t n = ifp__group_to_router__pack(&m, buf);
    ifp_frames_t f = {0};
    zmq_msg_init_size(&f.part[0], strlen(ident));
    memcpy(zmq_msg_data(&f.part[0]), ident, strlen(ident));
    zmq_msg_init_size(&f.part[1], n);
    memcpy(zmq_msg_data(&f.part[1]), buf, n);
    f.n = 2;
    rt_on_group(R, &f);
    ifp_frames_close(&f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = ifp_fuzz_tmp_path("router.ini");
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    char model[1024], pred[1024], clusters[1024]; /* ifp_fuzz_source_path reuses one buffer */
    snprintf(model, sizeof model, "%s", ifp_fuzz_source_path("models/ifp-mix/ifp-mix.gguf"));
    snprintf(pred, sizeof pred, "%s", ifp_fuzz_source_path("models/ifp-mix/ifp-mix-predictor.gguf"));
    snprintf(clusters, sizeof clusters, "%s", ifp_fuzz_source_path("models/ifp-mix/clusters-k4.gguf"));
    fprintf(f,
            "[security]\ncurve = off\n[router]\nfrontend = inproc://fuzz-fe\nbackend = inproc://fuzz-be\nheartbeat_ms = 60000\nliveness = 100\n"
            "predictor_threads = 1\nqueue_max = 8\n"
            "[model]\nmodel = %s\npredictor = %s\nclusters = %s\n"
            "[group g0]\nstages = 2\ncluster = 0\nslots = 4\n[group g1]\ncluster = dense\nslots = 4\n",
            model, pred, clusters);
    fclose(f);
    static ifp_config_file_t cfg;
    ifp_err_t err = {0};
    rt_router_opts_t o = rt_router_default_opts();
    o.first_rid = 1000;
    o.epoch = 77;
    o.zctx = zctx = zmq_ctx_new();
    if (ifp_config_load(path, &cfg, &err) || rt_router_new(&cfg, &o, &R, &err)) {
        fprintf(stderr, "fuzz_router: %s\n", err.msg);
        return 1;
    }
    unlink(path);
    for (int i = 0; i < 4; i++) {
        peers[i] = zmq_socket(zctx, ZMQ_DEALER);
        int linger = 0;
        zmq_setsockopt(peers[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(peers[i], ZMQ_ROUTING_ID, PEER_IDS[i], strlen(PEER_IDS[i]));
        zmq_connect(peers[i], i ? "inproc://fuzz-be" : "inproc://fuzz-fe");
    }
    heartbeat("g0", 0, 2);
    heartbeat("g1", -1, 1);
    drain_peers();
    return 0;
}

/* Runs the predictor jobs in flight to the end, then pumps the queue. */
static void settle(void) {
    while (rt_predict_waiting(R->pred) + rt_predict_running(R->pred) > 0) {
        zmq_pollitem_t it = {rt_predict_socket(R->pred), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 1000);
        for (rt_job_t *j; (j = rt_predict_collect(R->pred));) rt_flight_job_done(R, j);
    }
    rt_flight_pump(R);
}

static void frame(ifp_frames_t *f, const void *p, size_t n) {
    zmq_msg_init_size(&f->part[f->n], n);
    if (n) memcpy(zmq_msg_data(&f->part[f->n]), p, n);
    f->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_CHECK(R != NULL, "%s", "the router was not built (see the first lines of the output)");
    if (size < 1) return 0;
    int n_msgs = data[0] % 8 + 1;
    size_t at = 1;
    for (int k = 0; k < n_msgs && at < size; k++) {
        uint8_t h = data[at++];
        size_t len = 0;
        if (at < size) len = data[at++];
        if (at < size) len |= (size_t)data[at++] << 8;
        if (len > size - at) len = size - at;
        ifp_frames_t f = {0};
        int who = h & 3;
        const char *ident = h & 8 ? "zz" : PEER_IDS[who];
        frame(&f, ident, strlen(ident));
        if (who == 0 && (h & 4)) frame(&f, "", 0);
        frame(&f, data + at, len);
        at += len;
        if (who == 0 && !(h & 8)) rt_on_client(R, &f);
        else rt_on_group(R, &f);
        ifp_frames_close(&f);
        settle();
        double now = ifp_now_ms();
        rt_flight_timers(R, now);
        drain_peers();
    }
    /* end of the run: every request answered, nothing left charged */
    rt_flight_abort_all(R, "end of the fuzz input");
    settle();
    FUZZ_CHECK(rt_reqtable_count(R->reqs) == 0, "%d requests left", rt_reqtable_count(R->reqs));
    for (int g = 0; g < rt_balancer_n_groups(R->bal); g++) {
        const rt_group_t *G = rt_balancer_group(R->bal, g);
        FUZZ_CHECK(G->running == 0 && G->load == 0, "group %s: %d running, load %lld after the end", G->name,
                   G->running, (long long)G->load);
        FUZZ_CHECK(rt_reqtable_group_count(R->reqs, g) == 0, "group %s still lists requests", G->name);
    }
    /* the groups are up again for the next input (a hostile heartbeat may
     * have changed them) */
    heartbeat("g0", 0, 2);
    heartbeat("g1", -1, 1);
    drain_peers();
    return 0;
}
