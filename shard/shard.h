/* shard.h — ifp-shard: one MPI job per shard group (DESIGN.md §1).
 *
 *   mpirun -np P ifp-shard --config C --group G [--threads N] [--verbose]
 *
 * Rank r is pipeline stage r of group G and holds a contiguous layer range
 * (stage.h).  Stage 0 (intake.c) talks to the router (routerlink.h), admits
 * work (work.h) into slots, schedules micro-batches (sched.h), embeds and
 * runs its layers; the activations flow down the MPI pipe (pipe.h) through
 * stages 1..P-1 (relay.c); the last stage samples (sampling.h), sends token
 * events to the router and the token ids back to stage 0.
 *
 * Lifecycle: MPI_Init -> validate topology and config (every rank reaches the
 * same verdict, so all exit together) -> load this stage's slice (one
 * collective check that every rank loaded) -> loop -> a SHUTDOWN flows down
 * the pipe (from the router's Control SHUTDOWN or SIGTERM/SIGINT at stage 0)
 * -> MPI_Finalize. */
#ifndef SH_SHARD_H
#define SH_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "pipe.h"
#include "routerlink.h"
#include "sampling.h"
#include "stage.h"

typedef struct {
    const char *config;  /* --config */
    const char *group;   /* --group */
    int threads;         /* --threads (OpenBLAS threads per rank, default 1) */
    int verbose;         /* --verbose */
} sh_opts_t;

/* Runs this rank of the group (MPI is initialized by the caller, who also
 * finalizes).  Returns the process exit code: 0, 1 runtime error, 2 usage /
 * configuration error. */
int sh_run(const sh_opts_t *o, int rank, int size);

/* ---- shared by the stage loops ---- */
typedef struct {
    const sh_opts_t *opts;
    const ifp_config_file_t *cfg;
    const ifp_group_cfg_t *group;
    sh_stage_t *stage;
    sh_sampling_t *sampling;  /* last stage only */
    sh_routerlink_t link;     /* stage 0 and the last stage */
    sh_ring_t *ring;    /* sends: stage 0 and middles -> next rank; last -> rank 0 (NULL for P = 1) */
    uint8_t *rbuf;      /* one received message */
    size_t msg_cap;     /* bytes of the largest pipe message */
    sh_row_t *rows;     /* [max_rows] */
    sh_tok_t *toks;     /* [max_rows] */
} sh_group_t;

int sh_intake_loop(sh_group_t *g); /* stage 0 (also the last stage when P = 1): intake.c */
int sh_relay_loop(sh_group_t *g);  /* stages 1 .. P-1: relay.c */

/* ---- stop requests (SIGTERM / SIGINT) ---- */
void sh_signals_install(void);
int sh_stop_requested(void);

#endif
