/* work.h — one request as the shard group runs it, free of the wire format.
 *
 * The router link (routerlink.h) decodes a RouterToGroup once and hands
 * stage 0 an sh_work_t; stage 0 notes which router link it came from
 * (link: a group serves every router of the deployment), the scheduler
 * takes it, stage 0 sets its slot up and sends a SETUP (sh_setup_pack: a
 * fixed header and the mask bits, no protobuf, no prompt) down the MPI pipe;
 * each later stage unpacks that into an sh_work_t that borrows the message's
 * bytes.  The link travels in the SETUP, so the last stage sends the
 * request's tokens (and its work errors) to the router that sent it.
 *
 * The mask stays as the bits it came in (Work.mask, proto/ifp.proto):
 * n_layers × ceil(d_ffn/8) bytes, layer-major, bit j (LSB first) of layer l
 * = channel j.  A stage decodes only the layers it holds, straight from the
 * bits into its 0/1 sub-masks (sh_submask_from_bits) — no full mask of every
 * layer per request. */
#ifndef SH_WORK_H
#define SH_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "sampler.h"

typedef struct {
    uint64_t rid;            /* router-wide request id */
    int32_t *prompt;         /* [n_prompt] ids to prefill (stage 0 only: a SETUP does not carry it) */
    int n_prompt;
    uint32_t max_new;        /* tokens to generate (>= 1) */
    uint32_t first_index;    /* index of the first new token (tokens streamed before a replay) */
    ifp_sampler_params_t sp; /* temperature, top_k, top_p, seed */
    int32_t eos;             /* end-of-sequence id, -1 = none */
    int debug;               /* GroupToken.debug (last-prompt logits) with the first token */
    uint8_t *mask;           /* NULL (mask_len 0) = dense; else the bits above */
    size_t mask_len;
    int link;                /* the router link it came from: index into the config's routers, 0..n_routers-1 */
} sh_work_t;

/* A request the group finished: tokens = first_index + tokens generated (the
 * index after its last token). */
typedef struct {
    uint64_t rid;
    uint32_t tokens;
} sh_finished_t;

/* One allocation holding the struct, prompt[n_prompt] and mask[mask_len]
 * (zeroed; mask NULL when mask_len is 0).  NULL on OOM. */
sh_work_t *sh_work_new(int n_prompt, size_t mask_len);
/* Accepts NULL; only for works from sh_work_new. */
void sh_work_destroy(sh_work_t **w);

/* Validates w for a model of config c and a context of ctx positions:
 * non-empty prompt shorter than ctx, token ids in the vocabulary, max_new >=
 * 1, eos in range, finite sampling parameters, and a mask of the right size
 * whose every layer keeps >= 1 channel with no bit past d_ffn.  Returns 0,
 * or -1 with a one-line reason in why. */
int sh_work_check(const sh_work_t *w, const ifp_config_t *c, int ctx, char *why, size_t len);

/* ---- mask bits ---- */
static inline size_t sh_mask_layer_bytes(int d_ffn) { return (size_t)(d_ffn + 7) / 8; }
static inline size_t sh_mask_bytes(int n_layers, int d_ffn) { return (size_t)n_layers * sh_mask_layer_bytes(d_ffn); }
/* Layer l's bytes of a mask. */
static inline const uint8_t *sh_mask_layer(const uint8_t *mask, int l, int d_ffn) {
    return mask + (size_t)l * sh_mask_layer_bytes(d_ffn);
}
/* Checks layers [l0, l1) of len mask bytes for n_layers × d_ffn: the size,
 * >= 1 channel kept per layer, no bit past d_ffn.  0, or -1 with why. */
int sh_mask_check(const uint8_t *mask, size_t len, int n_layers, int d_ffn, int l0, int l1, char *why, size_t wlen);
/* One layer's 0/1 sub-mask straight from its bits: over the union's kept
 * channels (out[j] = bit kept[j], j < n_kept), or over all d_ffn channels
 * when kept is NULL (out[c] = bit c).  Returns the number of ones. */
int sh_submask_from_bits(const uint8_t *layer_bits, int d_ffn, const int32_t *kept, int n_kept, float *out);

/* ---- SETUP payload (pipe.h): sh_setup_wire_t + mask[mask_len] ---- */
typedef struct {
    uint64_t rid, seed;
    uint32_t max_new, first_index;
    float temperature, top_p;
    int32_t top_k, eos, debug;
    uint32_t mask_len;
    int32_t link; /* sh_work_t.link */
} sh_setup_wire_t;

static inline size_t sh_setup_bytes(size_t mask_len) { return sizeof(sh_setup_wire_t) + mask_len; }
/* Writes w's SETUP payload (sh_setup_bytes(w->mask_len) bytes) to buf. */
size_t sh_setup_pack(const sh_work_t *w, void *buf);
/* Reads a SETUP payload of len bytes into *w, whose mask then points into
 * buf (valid while buf is) and whose prompt is empty.  0, or -1 if len does
 * not match the header. */
int sh_setup_unpack(void *buf, size_t len, sh_work_t *w);

#endif
