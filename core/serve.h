/* serve.h — the one serving path: a slice of a model, its FFN compacted to
 * a union of channels, per-slot 0/1 sub-masks over that union, the KV state,
 * and a forward pass over rows of any slots (DESIGN.md §2).
 *
 *   mask ──▶ union U (ifp_serve_set_union: compaction, in the weight type)
 *        ──▶ each slot's sub-mask over U (ifp_serve_slot_bits / _mask / _dense)
 *        ──▶ ifp_serve_forward(rows) ──▶ logits ──▶ ifp_serve_sample
 *
 * `ifp run` drives it with one slot over the whole model (U = its request's
 * mask, or its cluster's union); every shard stage drives it with a layer
 * slice and many slots (U = its group's cluster union, or all channels).  So
 * the weight types, the residency and the compaction reach both at once.
 *
 * A lean object (params.lean) holds no full FFN: it gathers each union it
 * serves straight from the mapped file, and holds only that. */
#ifndef IFP_SERVE_H
#define IFP_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "forward.h"
#include "gguf.h"
#include "mask.h"
#include "model.h"
#include "sampler.h"

typedef struct {
    int layer_begin, layer_end; /* held layers (default 0, -1 = all) */
    int load_embd, load_head;   /* default 1, 1 */
    int wtype;                  /* IFP_WTYPE_ASIS (default) or the weight type to hold */
    int lean;                   /* 1: no full FFN resident (see above); default 0 */
    int slots;                  /* sequences with their own KV cache (default 1) */
    int max_rows;               /* rows per forward call (default 256) */
    int ctx;                    /* positions per slot (default 0 = the model's) */
    void (*tick)(void *arg);    /* called between held layers of a forward (NULL: nothing) */
    void *tick_arg;
} ifp_serve_params_t;

ifp_serve_params_t ifp_serve_default_params(void);

typedef struct ifp_serve ifp_serve_t;

/* Loads the slice from *g (taken on success: *g = NULL) with all channels
 * (or, lean, none until ifp_serve_set_union) and allocates the state, sized
 * for the full FFN width so any union fits later. */
int ifp_serve_new(ifp_gguf_t **g, const ifp_serve_params_t *p, ifp_serve_t **out, ifp_err_t *err);
void ifp_serve_destroy(ifp_serve_t **s);

/* Compacts the held layers to union u (every layer of the model; NULL = all
 * channels).  Borrowed: u must outlive its use.  Every slot must be set up
 * again (their masks were over the old union). */
int ifp_serve_set_union(ifp_serve_t *s, const ifp_mask_t *u, ifp_err_t *err);
const ifp_mask_t *ifp_serve_union(const ifp_serve_t *s); /* NULL = all channels */

/* A new sequence in slot: its KV positions are forgotten, and its rows run
 *   _dense: with no row mask (every channel of the union);
 *   _bits:  under a packed mask (ifp_mask_bits_*: n_layers × ceil(d_ffn/8)
 *           bytes, LSB first), checked for the held layers (size, >= 1
 *           channel per layer, no bit past d_ffn) — channels U lacks are
 *           dropped (coverage < 1);
 *   _mask:  the same from an ifp_mask_t.
 * On error the slot refuses to run until set up again. */
int ifp_serve_slot_dense(ifp_serve_t *s, int slot, ifp_err_t *err);
int ifp_serve_slot_bits(ifp_serve_t *s, int slot, const uint8_t *bits, size_t len, ifp_err_t *err);
int ifp_serve_slot_mask(ifp_serve_t *s, int slot, const ifp_mask_t *m, ifp_err_t *err);
/* A masked slot's 0/1 multipliers over the union's channels of held layer l
 * (NULL for a dense or broken slot, or a layer not held). */
const float *ifp_serve_slot_submask(const ifp_serve_t *s, int slot, int l);
/* The slot refuses to run until set up again. */
void ifp_serve_slot_reset(ifp_serve_t *s, int slot);

typedef struct {
    int32_t token;  /* read by the embedding (the first slice) */
    int32_t pos;    /* position in its sequence */
    int32_t slot;
    uint8_t want;   /* 1: logits for this row (the last slice) */
} ifp_serve_row_t;

/* Runs rows[0..n) through the held layers (the embedding first when held;
 * otherwise the caller has put the incoming activations in
 * ifp_serve_hidden), then the head for the want rows when held.  Returns the
 * number of logits rows (0 without the head) or a negative code. */
int ifp_serve_forward(ifp_serve_t *s, const ifp_serve_row_t *rows, int n, ifp_err_t *err);

/* The token at position pos + 1 of a sequence whose row at pos gave logits
 * (the position is the sampler's counter: a replayed or resumed sequence
 * samples the same tokens). */
static inline int ifp_serve_sample(ifp_sampler_t *smp, const ifp_sampler_params_t *sp, const float *logits, int pos) {
    return ifp_sampler_sample(smp, sp, logits, (uint64_t)pos + 1);
}

const ifp_config_t *ifp_serve_config(const ifp_serve_t *s);
const ifp_model_t *ifp_serve_model(const ifp_serve_t *s); /* the slice as loaded (lean: without FFN) */
const ifp_model_t *ifp_serve_run_model(const ifp_serve_t *s); /* what the forward runs */
ifp_state_t *ifp_serve_state(ifp_serve_t *s);
float *ifp_serve_hidden(ifp_serve_t *s);
const float *ifp_serve_logits(const ifp_serve_t *s);
int ifp_serve_ctx(const ifp_serve_t *s);
/* Bytes of resident weights (slice + compacted FFN) and of the KV cache. */
size_t ifp_serve_weight_bytes(const ifp_serve_t *s);
size_t ifp_serve_kv_bytes(const ifp_serve_t *s);
/* "41.2 MiB resident (attention bf16, ffn bf16, ...) + compacted FFN 12.0 MiB; KV cache 8.0 MiB" */
void ifp_serve_describe_memory(const ifp_serve_t *s, char *buf, size_t len);

#endif
