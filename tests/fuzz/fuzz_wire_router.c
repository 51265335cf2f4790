/* fuzz_wire_router — RouterToGroup as a shard group reads it (its router link):
 * ifp_wire_router_msg on the one frame, every field walked,
 * ifp_wire_check_text, the message re-encoded; for a Work, its packed FFN
 * mask unpacked with ifp_wire_mask_unpack for the embedded model's shape
 * (models/ifp-mix, as the shard does) and for a shape taken from the Work
 * itself (so that any mask length can be valid), and a mask that unpacks
 * packs back to the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gguf.h"
#include "model.h"

static int model_layers, model_ffn;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_config_t c;
    if (ifp_gguf_open(ifp_fuzz_source_path("models/ifp-mix/ifp-mix.gguf"), &g, &err) ||
        ifp_config_from_gguf(g, &c, &err)) {
        fprintf(stderr, "fuzz_wire_router: %s\n", err.msg);
        return 1;
    }
    ifp_gguf_close(&g);
    model_layers = c.n_layers;
    model_ffn = c.d_ffn;
    return 0;
}

static ProtobufCMessage *decode(const void *p, size_t n) {
    Ifp__RouterToGroup *m = ifp_wire_router_msg(p, n);
    return m ? &m->base : NULL;
}

static void unpack(const ProtobufCBinaryData *b, int n_layers, int d_ffn) {
    ifp_err_t err = {0};
    ifp_mask_t *m = (ifp_mask_t *)1; /* must be overwritten */
    int rc = ifp_wire_mask_unpack(b->data, b->len, n_layers, d_ffn, &m, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(m == NULL, "failed unpack left *out set");
        return;
    }
    if (b->len == 0) {
        FUZZ_CHECK(m == NULL, "an empty mask (dense) unpacked to a mask");
        return;
    }
    FUZZ_CHECK(m && m->n_layers == n_layers && m->d_ffn == d_ffn, "unpacked mask has the wrong shape");
    FUZZ_CHECK(ifp_mask_validate(m, &err) == 0, "unpacked mask is invalid: %s", err.msg);
    for (int l = 0; l < n_layers; l++) {
        FUZZ_CHECK(m->n_kept[l] >= 1 && m->n_kept[l] <= d_ffn, "layer %d keeps %d", l, m->n_kept[l]);
        ifp_fuzz_touch(m->kept[l], (size_t)m->n_kept[l] * sizeof *m->kept[l]);
    }
    size_t n = ifp_wire_mask_bytes(n_layers, d_ffn);
    FUZZ_CHECK(n == b->len, "accepted %zu bytes for a %zu-byte mask", b->len, n);
    uint8_t *again = malloc(n);
    FUZZ_CHECK(again != NULL, "out of memory");
    ifp_wire_mask_pack(m, again);
    FUZZ_CHECK(memcmp(again, b->data, n) == 0, "mask pack(unpack(bytes)) != bytes");
    free(again);
    ifp_mask_destroy(&m);
}

static void work(const Ifp__Work *w) {
    ifp_fuzz_touch(w->prompt, w->n_prompt * sizeof *w->prompt);
    unpack(&w->mask, model_layers, model_ffn);
    /* a shape that fits the bytes: n_layers from the seed, d_ffn from the length */
    int n_layers = 1 + (int)(w->seed % 8);
    size_t per = w->mask.len / (size_t)n_layers;
    if (per >= 1 && per <= 4096) {
        int d_ffn = (int)per * 8 - (int)(w->top_k % 8);
        unpack(&w->mask, n_layers, d_ffn);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Ifp__RouterToGroup *m = ifp_wire_router_msg(data, size);
    if (!m) return 0;
    ifp_fuzz_pb_walk(&m->base);
    ifp_fuzz_pb_check_text(&m->base, data, size);
    ifp_fuzz_pb_roundtrip(&m->base, decode);
    switch (m->msg_case) {
    case IFP__ROUTER_TO_GROUP__MSG_WORK: work(m->work); break;
    case IFP__ROUTER_TO_GROUP__MSG_CANCEL: ifp_fuzz_touch(&m->cancel->rid, sizeof m->cancel->rid); break;
    case IFP__ROUTER_TO_GROUP__MSG_CONTROL: ifp_fuzz_touch(&m->control->cluster, sizeof m->control->cluster); break;
    default: FUZZ_CHECK(0, "ifp_wire_router_msg returned a message with case %d", (int)m->msg_case);
    }
    ifp__router_to_group__free_unpacked(m, NULL);
    return 0;
}
