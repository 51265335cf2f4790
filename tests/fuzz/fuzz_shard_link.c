/* fuzz_shard_link — a message from the router as a shard group reads it.
 *
 * The shard's own link (shard/routerlink.c) is a DEALER "g0" connected to a
 * ROUTER this target binds (ipc:// in a tmpfs folder); each input is sent
 * to it as the frames of one message (fuzz.h's frame split: the frames
 * after the identity) and read back with sh_routerlink_recv, which decodes
 * the RouterToGroup and converts it to plain structs.  Then, for a Work,
 * what stage 0 and the later stages do with it (shard/work.c): the full
 * check against the embedded model (sh_work_check), the mask checks and
 * sub-masks of each stage's layer range straight from the bits
 * (sh_mask_check, sh_submask_from_bits, against a cluster union's channels),
 * and the SETUP message of the MPI pipe (pack, unpack, same Work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fuzz.h"
#include "gguf.h"
#include "mask.h"
#include "model.h"
#include "routerlink.h"
#include "work.h"

static void *zctx, *router;
static sh_routerlink_t link_;
static ifp_config_t cfg;
static ifp_cluster_table_t *table;
static float *sub;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    if (ifp_gguf_open(ifp_fuzz_source_path("models/ifp-mix/ifp-mix.gguf"), &g, &err) ||
        ifp_config_from_gguf(g, &cfg, &err) ||
        ifp_cluster_table_load(ifp_fuzz_source_path("models/ifp-mix/clusters-k4.gguf"), &table, &err)) {
        fprintf(stderr, "fuzz_shard_link: %s\n", err.msg);
        return 1;
    }
    ifp_gguf_close(&g);
    sub = malloc((size_t)cfg.d_ffn * sizeof *sub);
    char endpoint[600];
    snprintf(endpoint, sizeof endpoint, "ipc://%s", ifp_fuzz_tmp_path("be"));
    zctx = zmq_ctx_new();
    router = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(router, endpoint) || sh_routerlink_open(&link_, zctx, endpoint, "g0", 16, 0, NULL, &err)) {
        fprintf(stderr, "fuzz_shard_link: cannot set up %s: %s\n", endpoint, err.msg[0] ? err.msg : zmq_strerror(errno));
        return 1;
    }
    /* the router learns "g0" once the DEALER has connected: until then sends fail */
    for (int i = 0; i < 500; i++) {
        if (zmq_send(router, "g0", 2, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
            zmq_send(router, "", 0, 0); /* one empty frame: a malformed message the link drops */
            sh_router_msg_t m = {0};
            zmq_pollitem_t it = {link_.sock, 0, ZMQ_POLLIN, 0};
            zmq_poll(&it, 1, 1000);
            while (sh_routerlink_recv(&link_, &m) != 0) sh_router_msg_clear(&m);
            return 0;
        }
        zmq_poll(NULL, 0, 10);
    }
    fprintf(stderr, "fuzz_shard_link: the link did not connect\n");
    return 1;
}

/* What the stages do with a Work that passed sh_work_check. */
static void use_work(const sh_work_t *w) {
    char why[256];
    for (int split = 0; split < 2; split++) { /* stage layer ranges [0,2) [2,4), or [0,4) */
        int l0 = split ? 2 : 0, l1 = split ? cfg.n_layers : 2;
        if (!w->mask_len) continue;
        FUZZ_CHECK(sh_mask_check(w->mask, w->mask_len, cfg.n_layers, cfg.d_ffn, l0, l1, why, sizeof why) == 0,
                   "a checked Work's mask fails for layers [%d,%d): %s", l0, l1, why);
        for (int l = l0; l < l1; l++) {
            const ifp_mask_t *u = table->c[l % table->n_clusters].uni;
            sh_submask_from_bits(sh_mask_layer(w->mask, l, cfg.d_ffn), cfg.d_ffn, u->kept[l], u->n_kept[l], sub);
            for (int j = 0; j < u->n_kept[l]; j++) FUZZ_CHECK(sub[j] == 0.0f || sub[j] == 1.0f, "sub-mask %g", sub[j]);
        }
    }
    /* the SETUP message down the pipe: unpacked, the same Work */
    size_t n = sh_setup_bytes(w->mask_len);
    uint8_t *buf = malloc(n);
    size_t len = sh_setup_pack(w, buf);
    sh_work_t *back = sh_work_new(w->n_prompt, w->mask_len);
    FUZZ_CHECK(back && sh_setup_unpack(buf, len, back) == 0, "%s", "a packed SETUP does not unpack");
    FUZZ_CHECK(back->rid == w->rid && back->max_new == w->max_new && back->first_index == w->first_index &&
                   back->mask_len == w->mask_len && (!w->mask_len || !memcmp(back->mask, w->mask, w->mask_len)),
               "%s", "SETUP round trip changed the Work");
    sh_work_destroy(&back);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_CHECK(router != NULL, "%s", "not set up (see the first lines of the output)");
    ifp_fuzz_split_t s;
    ifp_fuzz_split_frames(data, size, &s);
    if (zmq_send(router, "g0", 2, ZMQ_SNDMORE) < 0) return 0;
    for (int i = 0; i < s.n; i++) zmq_send(router, s.p[i], s.len[i], i + 1 < s.n ? ZMQ_SNDMORE : 0);
    zmq_pollitem_t it = {link_.sock, 0, ZMQ_POLLIN, 0};
    zmq_poll(&it, 1, 1000);
    for (;;) {
        sh_router_msg_t m = {0};
        int rc = sh_routerlink_recv(&link_, &m);
        if (rc == 0) break;
        if (rc < 0) continue; /* malformed: counted */
        FUZZ_CHECK(m.kind == SH_ROUTER_WORK || m.kind == SH_ROUTER_CANCEL || m.kind == SH_ROUTER_CONTROL,
                   "kind %d", m.kind);
        if (m.kind == SH_ROUTER_WORK) {
            FUZZ_CHECK(m.work != NULL, "%s", "a Work without its struct");
            char why[256];
            ifp_fuzz_touch(m.work->prompt, (size_t)m.work->n_prompt * sizeof *m.work->prompt);
            ifp_fuzz_touch(m.work->mask, m.work->mask_len);
            if (sh_work_check(m.work, &cfg, cfg.ctx, why, sizeof why) == 0) use_work(m.work);
            else FUZZ_CHECK(why[0] != '\0', "%s", "a refused Work without a reason");
        }
        sh_router_msg_clear(&m);
    }
    return 0;
}
