/* compact.h — FFN compaction: gather a kept set of channels into dense,
 * smaller weights.
 *
 * Channel i of layer l is row i of ffn_gate and ffn_up and column i of
 * ffn_down.  The compacted model computes exactly the masked full-size FFN
 * down(silu(gate x) * up x * m) for the mask m of the kept set, at the cost of
 * the kept channels only. */
#ifndef IFP_COMPACT_H
#define IFP_COMPACT_H

#include <stdint.h>

#include "err.h"
#include "model.h"

/* Builds a model whose held layers have only the kept FFN channels,
 * gathered from src's FFN source (src->ffn_src: its resident weights, or its
 * file) in src->ffn_type, into resident memory of its own.  kept[l]
 * (absolute layer id) is a strictly increasing list of n_kept[l] channel
 * indices; kept == NULL or kept[l] == NULL keeps the layer whole (its FFN is
 * shared when src holds it resident, else gathered in full).  The result
 * borrows every non-FFN weight from src: src must outlive it.  Free with
 * ifp_model_free. */
int ifp_compact_model(const ifp_model_t *src, const int32_t *const *kept, const int *n_kept, ifp_model_t **out,
                      ifp_err_t *err);

/* Bytes of n channels of one layer's FFN (gate, up and down) in type t. */
size_t ifp_compact_bytes(ifp_ggml_type_t t, int dim, int n);

/* Gathers channels kept[0..n) of one layer from src into rows of type t:
 * gate, up and down (channel-major) each [n × dim], row_bytes apart.  A row
 * of the source's type is copied; otherwise it is widened to f32 and
 * converted (a channel of a llama-layout down is read down its column).
 * Indices must be valid; t must allow dim columns. */
void ifp_compact_gather(const ifp_ffn_src_t *src, int dim, const int32_t *kept, int n, ifp_ggml_type_t t,
                        void *gate, void *up, void *down);

/* Points L's FFN at n channel rows of type t laid out at buf as
 * ifp_compact_gather writes them (gate | up | down), and sets d_ffn = n. */
void ifp_compact_set_layer(ifp_layer_t *L, ifp_ggml_type_t t, int dim, int n, char *buf);

/* Checks that kept[0..n) is strictly increasing inside [0, d_ffn), n >= 1. */
int ifp_kept_validate(const int32_t *kept, int n, int d_ffn, int layer, ifp_err_t *err);

/* m[0..d_ffn) = 1 for kept channels, 0 elsewhere. */
void ifp_mask_from_kept(float *m, int d_ffn, const int32_t *kept, int n);

#endif
