/* test_shard_work — the shard's plain request struct and its edges, no MPI:
 *
 *   - a stage's sub-masks decoded straight from the mask bits, for the layers
 *     it holds, equal the full unpack (ifp_wire_mask_unpack) followed by
 *     ifp_mask_submask (over a union) or ifp_mask_from_kept (dense weights);
 *   - the SETUP payload round trip, and its length checks;
 *   - sh_stage_setup_slot with an sh_work_t on a real stage slice (ifp-mix,
 *     stage 1 of 2, cluster 0 and dense), and the errors of a bad mask;
 *   - the router link converts a RouterToGroup once into sh_router_msg_t and
 *     builds Heartbeat / TokenBatch from plain structs (a ROUTER on ipc://);
 *     it follows its connection through a socket monitor (up on the
 *     handshake, down when the router goes) and marks busy refusals;
 *   - the IFP_SHARD_FAULT parser. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "compact.h"
#include "config.h"
#include "mask.h"
#include "routerlink.h"
#include "shard.h"
#include "stage.h"
#include "testutil.h"
#include "wire.h"
#include "work.h"

/* A random mask of n_layers × d_ffn keeping about `keep` of each layer (at
 * least one channel). */
static ifp_mask_t *random_mask(int n_layers, int d_ffn, double keep, unsigned *seed) {
    ifp_mask_t *m = ifp_mask_new(n_layers, d_ffn);
    int32_t *k = malloc(sizeof(int32_t) * (size_t)d_ffn);
    for (int l = 0; l < n_layers; l++) {
        int n = 0;
        for (int c = 0; c < d_ffn; c++)
            if (rand_r(seed) < keep * RAND_MAX) k[n++] = c;
        if (n == 0) k[n++] = rand_r(seed) % d_ffn;
        assert_int_equal(ifp_mask_set_layer(m, l, k, n, NULL), 0);
    }
    free(k);
    return m;
}

/* ---------------------------------------------------------------- mask bits */

static void submask_from_bits_equals_full_unpack(void **unused) {
    (void)unused;
    unsigned seed = 7;
    const int L = 6, dims[3] = {37, 64, 768};
    for (int d = 0; d < 3; d++) {
        int F = dims[d];
        for (int trial = 0; trial < 20; trial++) {
            ifp_mask_t *m = random_mask(L, F, trial % 2 ? 0.3 : 0.05, &seed);
            ifp_mask_t *other = random_mask(L, F, 0.4, &seed), *u = ifp_mask_new(L, F);
            assert_int_equal(ifp_mask_union(u, m, other), 0);
            if (trial % 3 == 0) { /* a union that does not cover m */
                ifp_mask_destroy(&u);
                u = ifp_mask_clone(other);
            }
            size_t len = sh_mask_bytes(L, F);
            uint8_t *bits = calloc(len, 1);
            ifp_wire_mask_pack(m, bits);
            char why[128];
            assert_int_equal(sh_mask_check(bits, len, L, F, 0, L, why, sizeof why), 0);
            /* the reference: every layer unpacked, then the sub-mask */
            ifp_mask_t *full = NULL;
            assert_int_equal(ifp_wire_mask_unpack(bits, len, L, F, &full, NULL), 0);
            float *ref = calloc((size_t)L * F, sizeof *ref), *got = calloc((size_t)F, sizeof *got);
            float *rows[16];
            for (int l = 0; l < L; l++) rows[l] = ref + (size_t)l * F;
            ifp_mask_submask(full, u, rows);
            /* a stage holding layers [2, 5): only those, straight from the bits */
            for (int l = 2; l < 5; l++) {
                int ones = sh_submask_from_bits(sh_mask_layer(bits, l, F), F, u->kept[l], u->n_kept[l], got);
                assert_memory_equal(got, rows[l], sizeof(float) * (size_t)u->n_kept[l]);
                assert_int_equal(ones, ifp_kept_intersection(m->kept[l], m->n_kept[l], u->kept[l], u->n_kept[l]));
                /* dense weights: over all channels */
                ifp_mask_from_kept(rows[l], F, full->kept[l], full->n_kept[l]);
                ones = sh_submask_from_bits(sh_mask_layer(bits, l, F), F, NULL, 0, got);
                assert_memory_equal(got, rows[l], sizeof(float) * (size_t)F);
                assert_int_equal(ones, m->n_kept[l]);
            }
            free(ref);
            free(got);
            free(bits);
            ifp_mask_destroy(&full);
            ifp_mask_destroy(&m);
            ifp_mask_destroy(&other);
            ifp_mask_destroy(&u);
        }
    }
}

static void mask_check_layer_range(void **unused) {
    (void)unused;
    uint8_t bits[3 * 2] = {0x01, 0x00, 0x00, 0x00, 0x80, 0x00}; /* 3 layers × 12 channels; layer 1 empty */
    char why[128];
    assert_int_equal(sh_mask_check(bits, 6, 3, 12, 0, 3, why, sizeof why), -1);
    assert_string_equal(why, "mask layer 1 keeps no channel");
    assert_int_equal(sh_mask_check(bits, 6, 3, 12, 2, 3, why, sizeof why), 0); /* a stage holding layer 2 only */
    bits[5] = 0x10;                                                             /* channel 12 of layer 2 */
    assert_int_equal(sh_mask_check(bits, 6, 3, 12, 2, 3, why, sizeof why), -1);
    assert_string_equal(why, "mask layer 2 has bits set past channel 11");
    assert_int_equal(sh_mask_check(bits, 5, 3, 12, 2, 3, why, sizeof why), -1);
    assert_string_equal(why, "mask has 5 bytes, expected 6 (3 layers x 12 channels)");
}

/* ---------------------------------------------------------------- SETUP */

static void setup_round_trip(void **unused) {
    (void)unused;
    sh_work_t *w = sh_work_new(3, 5);
    w->rid = 0x123456789abcULL;
    w->max_new = 17;
    w->first_index = 4;
    w->sp = (ifp_sampler_params_t){.temperature = 0.7f, .top_k = 40, .top_p = 0.9f, .seed = 99};
    w->eos = 2;
    w->debug = 1;
    w->link = 3; /* the router it came from: the last stage answers there */
    memcpy(w->mask, "\x01\x02\x03\x04\x05", 5);
    uint8_t buf[256];
    size_t len = sh_setup_pack(w, buf + 3); /* any alignment */
    assert_int_equal(len, sh_setup_bytes(5));
    sh_work_t got;
    assert_int_equal(sh_setup_unpack(buf + 3, len, &got), 0);
    assert_int_equal(got.rid, w->rid);
    assert_int_equal(got.max_new, 17);
    assert_int_equal(got.first_index, 4);
    assert_true(got.sp.temperature == 0.7f && got.sp.top_p == 0.9f);
    assert_int_equal(got.sp.top_k, 40);
    assert_int_equal(got.sp.seed, 99);
    assert_int_equal(got.eos, 2);
    assert_int_equal(got.debug, 1);
    assert_int_equal(got.link, 3);
    assert_int_equal(got.n_prompt, 0); /* not carried */
    assert_int_equal(got.mask_len, 5);
    assert_ptr_equal(got.mask, buf + 3 + sizeof(sh_setup_wire_t)); /* borrowed */
    assert_memory_equal(got.mask, w->mask, 5);
    assert_int_equal(sh_setup_unpack(buf + 3, len - 1, &got), -1);
    assert_int_equal(sh_setup_unpack(buf + 3, 4, &got), -1);
    w->mask_len = 0; /* dense */
    len = sh_setup_pack(w, buf);
    assert_int_equal(sh_setup_unpack(buf, len, &got), 0);
    assert_null(got.mask);
    sh_work_destroy(&w);
}

/* ---------------------------------------------------------------- stage setup */

/* Stage `rank` of a 2-stage group of ifp-mix on cluster (or "dense"). */
static sh_stage_t *load_stage(const char *cluster, int rank, ifp_config_file_t *cf) {
    char text[1024];
    snprintf(text, sizeof text,
             "[router]\nbackend = ipc:///tmp/none\n[model]\nmodel = %s\nclusters = %s\n[group g0]\nstages = 2\n"
             "cluster = %s\nslots = 2\nmax_batch = 8\nctx = 64\n",
             MODEL_PATH("ifp-mix/ifp-mix.gguf"), MODEL_PATH("ifp-mix/clusters-k4.gguf"), cluster);
    ifp_err_t err = {0};
    if (ifp_config_parse(text, "/", cf, &err)) fail_msg("%s", err.msg);
    sh_stage_t *s = NULL;
    if (sh_stage_new(cf, ifp_config_group(cf, "g0"), rank, &s, &err)) fail_msg("%s", err.msg);
    return s;
}

static void stage_setup_from_plain_work(void **unused) {
    (void)unused;
    ifp_config_file_t *cf = calloc(1, sizeof *cf);
    const char *clusters[2] = {"0", "dense"};
    for (int c = 0; c < 2; c++) {
        sh_stage_t *s = load_stage(clusters[c], 1, cf);
        int L = s->cfg->n_layers, F = s->cfg->d_ffn;
        assert_true(s->l0 > 0 && s->l1 == L);
        unsigned seed = 11;
        ifp_mask_t *m = random_mask(L, F, 0.3, &seed);
        sh_work_t *w = sh_work_new(0, sh_mask_bytes(L, F));
        w->rid = 5;
        w->max_new = 4;
        ifp_wire_mask_pack(m, w->mask);
        ifp_err_t err = {0};
        assert_int_equal(sh_stage_setup_slot(s, 1, w, &err), 0);
        assert_int_equal(s->slot_masked[1], SH_ROW_MASKED);
        /* equal to the sub-mask of the full unpack, held layers only */
        float *want = calloc((size_t)L * F, sizeof *want), *rows[64];
        for (int l = 0; l < L; l++) rows[l] = want + (size_t)l * F;
        if (s->uni) ifp_mask_submask(m, s->uni, rows);
        else
            for (int l = 0; l < L; l++) ifp_mask_from_kept(rows[l], F, m->kept[l], m->n_kept[l]);
        for (int l = s->l0; l < s->l1; l++) {
            int n = s->uni ? s->uni->n_kept[l] : F;
            assert_memory_equal(ifp_serve_slot_submask(s->serve, 1, l), rows[l], sizeof(float) * (size_t)n);
        }
        /* a layer this stage does not hold may be anything: not decoded */
        memset(w->mask, 0, sh_mask_layer_bytes(F)); /* (stage 0 refuses it: sh_work_check) */
        assert_int_equal(sh_stage_setup_slot(s, 0, w, &err), 0);
        /* a held layer keeping nothing, or a mask of the wrong size: the slot is broken */
        memset(w->mask + (size_t)s->l0 * sh_mask_layer_bytes(F), 0, sh_mask_layer_bytes(F));
        assert_int_equal(sh_stage_setup_slot(s, 0, w, &err), IFP_EFORMAT);
        assert_non_null(strstr(err.msg, "keeps no channel"));
        assert_int_equal(s->slot_masked[0], SH_ROW_BROKEN);
        w->mask_len--;
        assert_int_equal(sh_stage_setup_slot(s, 0, w, &err), IFP_EFORMAT);
        assert_non_null(strstr(err.msg, "bytes, expected"));
        w->mask_len = 0; /* a dense request: no row mask */
        assert_int_equal(sh_stage_setup_slot(s, 0, w, &err), 0);
        assert_int_equal(s->slot_masked[0], SH_ROW_DENSE);
        assert_int_equal(sh_stage_setup_slot(s, 2, w, &err), IFP_ERANGE);
        free(want);
        sh_work_destroy(&w);
        ifp_mask_destroy(&m);
        sh_stage_destroy(&s);
        assert_null(s);
    }
    free(cf);
}

/* ---------------------------------------------------------------- router link */

typedef struct {
    char dir[64], endpoint[128];
    void *zctx, *sock;
    void *link_ctx; /* the group's context */
    sh_routerlink_t link;
} link_rig_t;

static int link_setup(void **state) {
    link_rig_t *r = calloc(1, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/ifp-shard-link-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->endpoint, sizeof r->endpoint, "ipc://%s/backend", r->dir);
    r->zctx = zmq_ctx_new();
    r->sock = zmq_socket(r->zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(r->sock, r->endpoint), 0);
    r->link_ctx = zmq_ctx_new();
    assert_int_equal(sh_routerlink_open(&r->link, r->link_ctx, r->endpoint, "g7", 4, 1, NULL, NULL), 0);
    *state = r;
    return 0;
}

static int link_teardown(void **state) {
    link_rig_t *r = *state;
    sh_routerlink_close(&r->link, 0);
    zmq_ctx_term(r->link_ctx);
    zmq_close(r->sock);
    zmq_ctx_term(r->zctx);
    char path[160];
    snprintf(path, sizeof path, "%s/backend", r->dir);
    unlink(path);
    rmdir(r->dir);
    free(r);
    return 0;
}

/* The next message the group sent, decoded (waits up to 5 s). */
static Ifp__GroupToRouter *link_take(link_rig_t *r) {
    zmq_pollitem_t it = {.socket = r->sock, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 5000), 1);
    ifp_frames_t f;
    assert_int_equal(ifp_wire_recv(r->sock, &f, 0), 2);
    assert_memory_equal(ifp_frame_data(&f, 0), "g7", 2);
    Ifp__GroupToRouter *m = ifp_wire_group_msg(ifp_frame_data(&f, 1), ifp_frame_size(&f, 1));
    ifp_frames_close(&f);
    assert_non_null(m);
    return m;
}

/* Pumps the link until a message (or a malformed one) arrives. */
static int link_next(link_rig_t *r, sh_router_msg_t *m) {
    for (int i = 0; i < 500; i++) {
        int got = sh_routerlink_recv(&r->link, m);
        if (got) return got;
        zmq_pollitem_t it = {.socket = r->link.sock, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, 10);
    }
    fail_msg("nothing arrived");
    return 0;
}

static void link_converts_once(void **state) {
    link_rig_t *r = *state;
    /* the group speaks first, so the ROUTER learns its identity */
    sh_finished_t fin[2] = {{.rid = 41, .tokens = 9}, {.rid = 42, .tokens = 130}};
    uint64_t running[3] = {1, 2, 3};
    sh_heartbeat_t hb = {.group = "g7", .cluster = 2, .stages = 3, .slots = 8, .free_slots = 5, .queued_tokens = 77,
                         .kv_free = 1000, .incarnation = 0xabc, .running = running, .n_running = 3,
                         .router_epoch = 0xfeed, .work_seen = 12, .finished = fin, .n_finished = 2,
                         .tokens_generated = 4321, .requests_done = 17};
    for (int i = 0; i < 500 && sh_routerlink_heartbeat(&r->link, &hb); i++) usleep(10000); /* until connected */
    Ifp__GroupToRouter *g = link_take(r);
    assert_int_equal(g->msg_case, IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT);
    const Ifp__Heartbeat *h = g->heartbeat;
    assert_string_equal(h->group, "g7");
    assert_int_equal(h->cluster, 2);
    assert_int_equal(h->free_slots, 5);
    assert_int_equal(h->n_running, 3);
    assert_int_equal(h->running[2], 3);
    assert_int_equal(h->router_epoch, 0xfeed);
    assert_int_equal(h->work_seen, 12);
    assert_int_equal(h->n_finished, 2);
    assert_int_equal(h->finished[1]->rid, 42);
    assert_int_equal(h->finished[1]->tokens, 130);
    assert_int_equal(h->tokens_generated, 4321);
    assert_int_equal(h->requests_done, 17);
    ifp__group_to_router__free_unpacked(g, NULL);

    /* Work -> sh_work_t, every field */
    int32_t prompt[3] = {1, 50, 7};
    uint8_t mask[4] = {1, 2, 3, 4};
    Ifp__Work w = IFP__WORK__INIT;
    w.rid = 77;
    w.n_prompt = 3;
    w.prompt = prompt;
    w.max_new = 9;
    w.first_index = 3;
    w.temperature = 0.5f;
    w.top_p = 0.8f;
    w.top_k = 4000000000u; /* beyond int: clamped */
    w.seed = 1234;
    w.mask.data = mask;
    w.mask.len = 4;
    w.eos = 2;
    w.router_epoch = 0xbeef;
    w.seq = 31;
    w.debug = 1;
    Ifp__RouterToGroup rg = IFP__ROUTER_TO_GROUP__INIT;
    rg.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
    rg.work = &w;
    const void *env[1] = {"g7"};
    size_t env_len[1] = {2};
    assert_int_equal(ifp_wire_send(r->sock, env, env_len, 1, &rg.base), 0);
    sh_router_msg_t m;
    assert_int_equal(link_next(r, &m), 1);
    assert_int_equal(m.kind, SH_ROUTER_WORK);
    assert_int_equal(m.router_epoch, 0xbeef);
    assert_int_equal(m.seq, 31);
    const sh_work_t *x = m.work;
    assert_int_equal(x->rid, 77);
    assert_int_equal(x->n_prompt, 3);
    assert_memory_equal(x->prompt, prompt, sizeof prompt);
    assert_int_equal(x->max_new, 9);
    assert_int_equal(x->first_index, 3);
    assert_true(x->sp.temperature == 0.5f && x->sp.top_p == 0.8f);
    assert_int_equal(x->sp.top_k, 2147483647);
    assert_int_equal(x->sp.seed, 1234);
    assert_int_equal(x->eos, 2);
    assert_int_equal(x->debug, 1);
    assert_int_equal(x->mask_len, 4);
    assert_memory_equal(x->mask, mask, 4);
    sh_router_msg_clear(&m);
    assert_null(m.work);

    /* Cancel, Control, and garbage */
    Ifp__CancelWork cw = IFP__CANCEL_WORK__INIT;
    cw.rid = 88;
    rg.msg_case = IFP__ROUTER_TO_GROUP__MSG_CANCEL;
    rg.cancel = &cw;
    assert_int_equal(ifp_wire_send(r->sock, env, env_len, 1, &rg.base), 0);
    assert_int_equal(link_next(r, &m), 1);
    assert_int_equal(m.kind, SH_ROUTER_CANCEL);
    assert_int_equal(m.rid, 88);
    Ifp__Control c = IFP__CONTROL__INIT;
    c.kind = IFP__CONTROL__KIND__LOAD_CLUSTER;
    c.cluster = 3;
    rg.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    rg.control = &c;
    assert_int_equal(ifp_wire_send(r->sock, env, env_len, 1, &rg.base), 0);
    assert_int_equal(link_next(r, &m), 1);
    assert_int_equal(m.kind, SH_ROUTER_CONTROL);
    assert_int_equal(m.control, SH_CONTROL_LOAD_CLUSTER);
    assert_int_equal(m.cluster, 3);
    zmq_send(r->sock, "g7", 2, ZMQ_SNDMORE);
    zmq_send(r->sock, "\xff\xff", 2, 0);
    assert_int_equal(link_next(r, &m), -1);
    assert_int_equal(r->link.malformed, 1);

    /* TokenBatch from sh_token_t, Debug only where asked */
    float head[3] = {0.5f, -1, 2};
    sh_token_t t[2] = {{.rid = 77, .index = 0, .token = 5, .logprob = -0.25f, .n_head = 3, .head = head, .argmax = 2},
                       {.rid = 78, .index = 6, .token = 2, .logprob = -1, .finish = SH_FINISH_EOS}};
    assert_int_equal(sh_routerlink_tokens(&r->link, "g7", t, 2), 0);
    g = link_take(r);
    assert_int_equal(g->msg_case, IFP__GROUP_TO_ROUTER__MSG_TOKENS);
    assert_int_equal(g->tokens->n_tokens, 2);
    const Ifp__GroupToken *a = g->tokens->tokens[0], *b = g->tokens->tokens[1];
    assert_int_equal(a->rid, 77);
    assert_int_equal(a->finish, IFP__FINISH_REASON__FINISH_NONE);
    assert_non_null(a->debug);
    assert_int_equal(a->debug->n_logits_last_prompt, 3);
    assert_true(a->debug->logits_last_prompt[2] == 2.0f);
    assert_int_equal(a->debug->argmax_last_prompt, 2);
    assert_int_equal(b->index, 6);
    assert_int_equal(b->finish, IFP__FINISH_REASON__FINISH_EOS);
    assert_null(b->debug);
    ifp__group_to_router__free_unpacked(g, NULL);
}

/* Pumps the link's monitor until its state is up (or 5 s pass). */
static void link_wait_state(link_rig_t *r, int up) {
    for (int i = 0; i < 500 && r->link.up != up; i++) {
        zmq_pollitem_t it = {.socket = r->link.mon, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, 10);
        sh_routerlink_watch(&r->link, ifp_now_ms());
    }
    assert_int_equal(r->link.up, up);
}

/* A watched link follows its connection (handshake: up; the router gone:
 * down, since when), and a busy refusal carries WorkError.busy. */
static void link_watch_and_busy(void **state) {
    link_rig_t *r = *state;
    assert_non_null(r->link.mon);
    assert_int_equal(r->link.up, 0); /* not yet */
    link_wait_state(r, 1);
    assert_int_equal(r->link.ups, 1);
    double up_since = r->link.since_ms;
    for (int i = 0; i < 500 && sh_routerlink_work_error(&r->link, 5, 1, "group g7 is busy: %d of %d slots taken", 2, 2);
         i++)
        usleep(10000);
    Ifp__GroupToRouter *g = link_take(r);
    assert_int_equal(g->msg_case, IFP__GROUP_TO_ROUTER__MSG_ERROR);
    assert_int_equal(g->error->rid, 5);
    assert_true(g->error->busy);
    assert_string_equal(g->error->message, "group g7 is busy: 2 of 2 slots taken");
    ifp__group_to_router__free_unpacked(g, NULL);
    assert_int_equal(sh_routerlink_work_error(&r->link, 6, 0, "invalid work: %s", "x"), 0);
    g = link_take(r);
    assert_false(g->error->busy);
    ifp__group_to_router__free_unpacked(g, NULL);
    /* the router goes away: down, stamped when the event was read */
    zmq_close(r->sock);
    r->sock = zmq_socket(r->zctx, ZMQ_ROUTER); /* (for the teardown; not bound) */
    link_wait_state(r, 0);
    assert_true(r->link.since_ms > up_since);
    assert_int_equal(r->link.ups, 1);
}

/* ---------------------------------------------------------------- fault hook */

static void fault_hook_parse(void **unused) {
    (void)unused;
    sh_fault_t f;
    char why[160];
    assert_int_equal(sh_fault_parse(NULL, &f, why, sizeof why), 0);
    assert_int_equal(f.drop_batch, 0);
    assert_int_equal(sh_fault_parse("", &f, why, sizeof why), 0);
    assert_int_equal(sh_fault_parse("drop-batch=7", &f, why, sizeof why), 0);
    assert_int_equal(f.drop_batch, 7);
    const char *bad[] = {"drop-batch=0", "drop-batch=", "drop-batch=-3", "drop-batch=2x", "drop=3", "drop-batch=1,x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(sh_fault_parse(bad[i], &f, why, sizeof why), -1);
        assert_non_null(strstr(why, "IFP_SHARD_FAULT"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submask_from_bits_equals_full_unpack),
        cmocka_unit_test(mask_check_layer_range),
        cmocka_unit_test(setup_round_trip),
        cmocka_unit_test(stage_setup_from_plain_work),
        cmocka_unit_test_setup_teardown(link_converts_once, link_setup, link_teardown),
        cmocka_unit_test_setup_teardown(link_watch_and_busy, link_setup, link_teardown),
        cmocka_unit_test(fault_hook_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
