/* stage.h — one pipeline stage of a shard group: its slice of the model, the
 * FFN compaction to the group's cluster union, its KV cache (ifp_state) and,
 * per sequence slot, the sub-mask of the request it holds.
 *
 * Weights: the stage loads layers [l0, l1) of the model (the embedding on
 * stage 0, the final norm and output matrix on the last stage), resident and
 * in the type the file stores or [model] weight_type asks for.  A cluster
 * group loads no FFN: it gathers its union U straight from the mapped file
 * (ifp_compact_model on the lean model) and holds only that; each request
 * then runs on the compacted weights with its own 0/1 sub-mask over U (exact
 * mixed-mask batching, DESIGN.md §2).  A dense group holds the full FFN and
 * a masked request's sub-mask is its mask over all channels.  A dense
 * request (no mask) runs with no row mask: all of U (or all channels).
 *
 * The run state is sized for the full FFN width so the stage can re-compact
 * to any other cluster later (sh_stage_load_cluster, from the file again)
 * without reallocating. */
#ifndef SH_STAGE_H
#define SH_STAGE_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "forward.h"
#include "mask.h"
#include "model.h"
#include "pipe.h"
#include "serve.h"
#include "work.h"

/* How a slot's rows run: no row mask, its sub-mask, or not at all (its
 * setup failed here: micro-batches holding it fail, ending its request with
 * a WorkError instead of a wrong answer). */
enum { SH_ROW_DENSE = 0, SH_ROW_MASKED = 1, SH_ROW_BROKEN = 2 };

typedef struct {
    int rank, n_stages;
    int l0, l1;               /* held layers [l0, l1) */
    int first, last;          /* rank == 0, rank == n_stages - 1 */
    int slots, max_rows, ctx; /* max_rows: rows per micro-batch (prefill budget + one decode row per slot) */
    int cluster;              /* IFP_CLUSTER_DENSE or the cluster the weights are compacted to */
    const ifp_config_t *cfg;  /* model hyper-parameters */

    ifp_serve_t *serve;       /* the slice, its union, the slots' sub-masks, the KV state (core/serve.h) */
    ifp_state_t *st;          /* = ifp_serve_state(serve) */
    ifp_cluster_table_t *table; /* NULL if the config names no clusters file */
    const ifp_mask_t *uni;    /* the union of `cluster` (NULL for dense) */
    uint8_t *slot_masked;     /* [slots] SH_ROW_DENSE / SH_ROW_MASKED / SH_ROW_BROKEN */

    /* called between the held layers of a forward pass (NULL: nothing) */
    void (*tick)(void *arg);
    void *tick_arg;

    ifp_serve_row_t *rows;    /* [max_rows] the micro-batch handed to the serve object */
} sh_stage_t;

/* Loads this rank's slice of the model for group g of config c (and the
 * cluster table if c names one), compacts to the group's cluster and
 * allocates the run state.  Errors name the file and the problem. */
int sh_stage_new(const ifp_config_file_t *c, const ifp_group_cfg_t *g, int rank, sh_stage_t **out, ifp_err_t *err);
void sh_stage_destroy(sh_stage_t **s);

/* "stage 1/2, layers [2,4), cluster 0 (|U| 412 398 of 768), 8 slots, ..." */
void sh_stage_describe(const sh_stage_t *s, char *buf, size_t len);

/* Bytes of resident weights (the slice + the compacted FFN) and of the KV cache. */
size_t sh_stage_weight_bytes(const sh_stage_t *s);
size_t sh_stage_kv_bytes(const sh_stage_t *s);

/* Request w now occupies slot: forgets the slot's KV positions and sets its
 * sub-mask for the held layers straight from the bits of w->mask (only
 * those layers are decoded, and checked: the size, >= 1 channel, no bit past
 * d_ffn).  On error the slot is SH_ROW_BROKEN until its next setup. */
int sh_stage_setup_slot(sh_stage_t *s, int slot, const sh_work_t *w, ifp_err_t *err);

/* Runs rows[0..n) through the held layers: the embedding first on stage 0;
 * other stages must have copied the incoming activations into
 * ifp_state_hidden(s->st) first.  On the last stage, then the head for the
 * rows with want = 1; returns the number of logits rows (0 elsewhere) or a
 * negative code. */
int sh_stage_forward(sh_stage_t *s, const sh_row_t *rows, int n, ifp_err_t *err);

/* Re-compacts the held layers to cluster c (IFP_CLUSTER_DENSE = full
 * weights).  Only while no slot is in use (KV caches stay valid, but masks
 * set up for the old union would not be). */
int sh_stage_load_cluster(sh_stage_t *s, int cluster, ifp_err_t *err);

/* Checks a cluster id against the table (or dense). */
int sh_stage_cluster_ok(const sh_stage_t *s, int cluster, ifp_err_t *err);

#endif
