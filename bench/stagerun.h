/* stagerun.h — one pipeline stage under test, shared by bench_stage and
 * bench_predictor.
 *
 * A stage is a synthetic model holding layers [0, N) of a paper shape
 * (core/synth.h) without embedding or head — a middle stage of the pipeline,
 * run as ifp-shard runs one: hidden rows in, ifp_forward_layers, hidden rows
 * out, each row with its own FFN mask (or none).  Every run feeds the same
 * random hidden rows (the activations a previous stage would send).
 *
 * Slots: 0 is the prefill slot (one sequence of P rows, reset before every
 * run); 1..n_dec are decode slots, each holding `prefix` cached positions.
 * A decode run of S steps at batch B feeds one row to each of slots 1..B at
 * positions prefix, prefix+1, ..; every run restarts at `prefix` (a batch may
 * rewrite a slot's position, see ifp_batch_validate), so all runs attend over
 * the same lengths.
 *
 * The prefixes are filled once, untimed, with a thin copy of the model (one
 * FFN channel per layer: attention runs in full, the FFN costs nothing) —
 * decode cost depends on the cached lengths, not on the cached values.  Any
 * model with the same config and layer range whose FFN fits the state (the
 * dense model's compactions) can then take over the state with its caches
 * (sr_use). */
#ifndef IFP_BENCH_STAGERUN_H
#define IFP_BENCH_STAGERUN_H

#include <stdint.h>

#include "err.h"
#include "forward.h"
#include "model.h"

typedef struct sr_stage sr_stage_t;

/* A synthetic stage of `layers` layers of `shape` (whole model: 56 layers),
 * context ctx, weights from seed, every matrix in f32.  Owned by the caller
 * (ifp_model_free). */
int sr_synth(const char *shape, int layers, int ctx, uint64_t seed, ifp_model_t **out, ifp_err_t *err);
/* The same with every matrix held in wtype (IFP_WTYPE_ASIS = f32, or an
 * ifp_ggml_type_t: ifp_model_params_t.wtype); norms stay f32.  The same seed
 * gives the same values before rounding in every type. */
int sr_synth_typed(const char *shape, int layers, int ctx, uint64_t seed, int wtype, ifp_model_t **out,
                   ifp_err_t *err);

/* The state for model m (borrowed; the largest FFN any later model has):
 * prefill_len rows of prompt (0: no prefill), n_dec decode slots of `prefix`
 * cached positions, decode runs of up to max_steps steps.  Fills the
 * prefixes (untimed) before returning. */
int sr_new(const ifp_model_t *m, int prefill_len, int prefix, int n_dec, int max_steps, sr_stage_t **out,
           ifp_err_t *err);
void sr_free(sr_stage_t **s);

/* Runs later calls on m (same config and layers; FFN no wider than the
 * first model's), keeping the caches.  Clears the row masks. */
int sr_use(sr_stage_t *s, const ifp_model_t *m, ifp_err_t *err);
/* Row mask of every row of slot (borrowed until changed; NULL = dense). */
void sr_set_mask(sr_stage_t *s, int slot, const ifp_ffn_mask_t *mask);

/* One prefill run (slot 0, P rows); *secs = time of the forward call. */
int sr_prefill(sr_stage_t *s, double *secs, ifp_err_t *err);
/* One decode run of `steps` steps at batch B (1 <= B <= n_dec); *secs =
 * its wall time. */
int sr_decode(sr_stage_t *s, int B, int steps, double *secs, ifp_err_t *err);

/* Median prefill time over `runs` runs after `warmup` untimed runs;
 * progress to stderr under `label`. */
int sr_measure_prefill(sr_stage_t *s, const char *label, int warmup, int runs, double *median_s, ifp_err_t *err);
/* Median time per decode step over `runs` runs of `steps` steps at batch B,
 * after a warm-up run of warm_steps steps (0: none). */
int sr_measure_decode(sr_stage_t *s, const char *label, int B, int steps, int warm_steps, int runs,
                      double *median_step_s, ifp_err_t *err);

/* Bytes of weights one forward row reads: every matrix of every held layer
 * (rows x row_bytes in its own type, at the layer's own FFN width) and the
 * two f32 norms — exactly what a decode step streams.  A compacted model
 * counts the attention it borrows from its source; the embedding and head
 * are not counted (a stage holds neither). */
double sr_weight_bytes(const ifp_model_t *m);

#endif
