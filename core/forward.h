/* forward.h — the batched Llama forward pass.
 *
 * One call runs a batch of rows; each row is one token of some sequence
 * (KV-cache slot) at some position, so a batch can mix prefills (many rows of
 * one slot) and decodes (one row per slot).  Math per layer, for each row:
 *   x += Wo · attn(rope(Wq·rmsnorm(x)), rope(Wk·…), Wv·…)     (GQA, causal)
 *   x += Wdown · (silu(Wgate·rmsnorm(x)) * (Wup·rmsnorm(x)) * mask_row)
 * then logits = Woutput · rmsnorm(x) for the rows that want them.
 *
 * All buffers (activations, KV cache for every slot, RoPE tables, attention
 * scratch) are allocated by ifp_state_new; the forward functions never
 * allocate.  The split embed / layers / head lets a pipeline stage run only
 * its own slice, exchanging the hidden rows (ifp_state_hidden). */
#ifndef IFP_FORWARD_H
#define IFP_FORWARD_H

#include <stdint.h>

#include "err.h"
#include "model.h"

/* A per-row FFN channel mask: layer[l] (absolute layer id) points to d_ffn
 * multipliers (0 or 1) for the layer's channels as the model holds them (for
 * a compacted model: its compacted channels); a NULL layer[l] keeps all. */
typedef struct {
    const float *const *layer;
} ifp_ffn_mask_t;

typedef struct {
    int n;                              /* rows */
    const int32_t *token;               /* [n] token ids (read by the embedding) */
    const int32_t *pos;                 /* [n] position of the row in its sequence */
    const int32_t *slot;                /* [n] KV-cache slot of the row's sequence */
    const ifp_ffn_mask_t *const *mask;  /* [n] or NULL; mask[i] NULL = dense row */
    const uint8_t *want_logits;         /* [n] or NULL = every row */
} ifp_batch_t;

typedef struct {
    int n_slots;   /* sequences with their own KV cache (default 1) */
    int max_batch; /* max rows per call (default 512) */
    int ctx;       /* positions per slot (default/max: model ctx) */
    int max_ffn;   /* FFN width the scratch fits (default 0: the model's widest held layer) */
} ifp_state_params_t;

ifp_state_params_t ifp_state_default_params(void);

typedef struct ifp_state ifp_state_t;

/* Binds to model m (borrowed: must outlive the state) and allocates
 * everything for its held layers. */
int ifp_state_new(const ifp_model_t *m, const ifp_state_params_t *p, ifp_state_t **out, ifp_err_t *err);
void ifp_state_free(ifp_state_t **st);

/* Rebinds to another model with the same config and layer range whose FFN
 * widths fit the scratch (e.g. a re-compacted model).  KV caches are kept. */
int ifp_state_set_model(ifp_state_t *st, const ifp_model_t *m, ifp_err_t *err);

/* Forgets a slot's cached positions (its length becomes 0). */
void ifp_state_reset_slot(ifp_state_t *st, int slot);
/* Number of positions cached for slot (the next position to feed). */
int ifp_state_slot_len(const ifp_state_t *st, int slot);

/* Checks a batch against the state: sizes, token/slot/pos ranges, and that
 * each row's position is at most its slot's cached length (counting earlier
 * rows of the same batch).  Returns IFP_EINVAL with a message on error. */
int ifp_batch_validate(const ifp_state_t *st, const ifp_batch_t *b, int need_tokens, ifp_err_t *err);

/* The whole model: embed + all layers + head.  Returns the number of logits
 * rows (>= 0) or a negative code.  Logits rows are in batch order of the rows
 * that want them: ifp_state_logits(st) + r * vocab. */
int ifp_forward(ifp_state_t *st, const ifp_batch_t *b, ifp_err_t *err);

/* Pieces, for pipeline stages.  ifp_forward_embed fills the hidden rows from
 * tokens; ifp_forward_layers runs held layers [l0, l1) on the hidden rows
 * (b validated inside); ifp_forward_head applies the final norm and output
 * matrix, returning the logits row count. */
int ifp_forward_embed(ifp_state_t *st, const ifp_batch_t *b, ifp_err_t *err);
int ifp_forward_layers(ifp_state_t *st, const ifp_batch_t *b, int l0, int l1, ifp_err_t *err);
int ifp_forward_head(ifp_state_t *st, const ifp_batch_t *b, ifp_err_t *err);

float *ifp_state_hidden(ifp_state_t *st);          /* [max_batch × dim] residual stream */
const float *ifp_state_logits(const ifp_state_t *st); /* [rows × vocab] after ifp_forward_head */
const float *ifp_state_normed(const ifp_state_t *st); /* [rows × dim] final-norm rows after head */
const ifp_model_t *ifp_state_model(const ifp_state_t *st);

#endif
