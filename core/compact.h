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

/* Builds a model whose held layers have only the kept FFN channels.
 * kept[l] (absolute layer id) is a strictly increasing list of n_kept[l]
 * channel indices of src's layer l; kept == NULL or kept[l] == NULL keeps the
 * layer whole (its FFN pointers are shared, not copied).  The result borrows
 * every non-FFN weight from src: src must outlive it.  Free with
 * ifp_model_free. */
int ifp_compact_model(const ifp_model_t *src, const int32_t *const *kept, const int *n_kept, ifp_model_t **out,
                      ifp_err_t *err);

/* Gathers one layer's FFN into caller buffers: gate/up [n × dim] and
 * down [dim × n] (indices already validated). */
void ifp_compact_gather(const ifp_layer_t *src, int dim, const int32_t *kept, int n, float *gate, float *up,
                        float *down);

/* Checks that kept[0..n) is strictly increasing inside [0, d_ffn), n >= 1. */
int ifp_kept_validate(const int32_t *kept, int n, int d_ffn, int layer, ifp_err_t *err);

/* m[0..d_ffn) = 1 for kept channels, 0 elsewhere. */
void ifp_mask_from_kept(float *m, int d_ffn, const int32_t *kept, int n);

#endif
