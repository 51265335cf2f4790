/* shard.h — ifp-shard: one MPI job per shard group (DESIGN.md §1).
 *
 *   mpirun -np P ifp-shard --config C --group G [--threads N] [--verbose]
 *
 * Rank r is pipeline stage r of group G and holds a contiguous layer range
 * (stage.h).  Stage 0 (intake.c, routers.c) talks to every router of the deployment
 * (one link each, routerlink.h), admits work (work.h) into slots, schedules
 * micro-batches (sched.h), embeds and runs its layers; the activations flow
 * down the MPI pipe (pipe.h) through stages 1..P-1 (relay.c); the last
 * stage samples (sampling.h), sends token events to the router each request
 * came from and the token ids back to stage 0.
 *
 * Lifecycle: MPI_Init -> validate topology and config (every rank reaches the
 * same verdict, so all exit together) -> load this stage's slice (one
 * collective check that every rank loaded) -> loop -> a SHUTDOWN flows down
 * the pipe (from the router's Control SHUTDOWN or SIGTERM/SIGINT at stage 0)
 * -> MPI_Finalize.
 *
 * Fail loudly, never hang: every micro-batch in flight has a deadline (sent
 * + [group] batch_timeout_ms).  Stage 0 checks the oldest one every loop
 * iteration; a micro-batch not back by then, a result that is bad or out of
 * order (the pipe keeps order: an earlier micro-batch was lost), a bad pipe
 * message or a send that cannot get out within batch_timeout_ms in any stage
 * -> one log line naming it and MPI_Abort (exit code SH_EXIT_ABORT): the
 * whole job dies, the supervisor restarts it, the router replays its work.
 * So a stuck group heartbeats as healthy for batch_timeout_ms at most. */
#ifndef SH_SHARD_H
#define SH_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "shlog.h"
#include "pipe.h"
#include "routerlink.h"
#include "sampling.h"
#include "stage.h"

/* Exit codes: 0 clean stop, 1 runtime error, 2 usage / configuration error,
 * SH_EXIT_ABORT the pipeline broke (MPI_Abort: mpirun exits non-zero). */
#define SH_EXIT_ABORT 3

typedef struct {
    const char *config;  /* --config */
    const char *group;   /* --group */
    int threads;         /* --threads (OpenBLAS threads per rank, default 1) */
    int verbose;         /* --verbose */
} sh_opts_t;

/* Runs this rank of the group (MPI is initialized by the caller, who also
 * finalizes).  Returns the process exit code (above). */
int sh_run(const sh_opts_t *o, int rank, int size);

/* ---- test hook: fault injection ----
 * Off unless the environment variable IFP_SHARD_FAULT is set (every rank
 * reads it; mpirun passes the environment to local ranks, `-x
 * IFP_SHARD_FAULT` to remote ones).  A comma-separated list of:
 *
 *   drop-batch=N   stage 1 (the only stage when P = 1) drops the N-th
 *                  micro-batch it receives (N >= 1; the micro-batch with seq
 *                  N-1), as a lost message would: the group must abort within
 *                  batch_timeout_ms, naming that micro-batch.
 *
 * A value that does not parse stops the group at start (exit 2). */
#define SH_FAULT_ENV "IFP_SHARD_FAULT"

typedef struct {
    unsigned long drop_batch; /* 0 = off */
} sh_fault_t;

/* Parses spec (NULL or "" = no fault).  0, or -1 with a reason in why. */
int sh_fault_parse(const char *spec, sh_fault_t *f, char *why, size_t len);

/* ---- shared by the stage loops ---- */
typedef struct {
    const sh_opts_t *opts;
    const ifp_config_file_t *cfg;
    const ifp_group_cfg_t *group;
    sh_fault_t fault;
    double batch_timeout_ms;  /* [group] batch_timeout_ms */
    sh_stage_t *stage;
    sh_sampling_t *sampling;  /* last stage only */
    /* stage 0 and the last stage: one link per router of the config, in
     * its order (links[i] to cfg->routers[i]); a request's sh_work_t.link
     * indexes them */
    void *zctx;
    sh_routerlink_t links[IFP_CFG_MAX_ROUTERS];
    int n_links;
    sh_ring_t *ring;    /* sends: stage 0 and middles -> next rank; last -> rank 0 (NULL for P = 1) */
    uint8_t *rbuf;      /* one received message */
    size_t msg_cap;     /* bytes of the largest pipe message */
    sh_row_t *rows;     /* [max_rows] */
    sh_tok_t *toks;     /* [max_rows] */
} sh_group_t;

int sh_intake_loop(sh_group_t *g); /* stage 0 (also the last stage when P = 1): intake.c */
int sh_relay_loop(sh_group_t *g);  /* stages 1 .. P-1: relay.c */

/* Logs one line and ends the whole job: MPI_Abort(MPI_COMM_WORLD,
 * SH_EXIT_ABORT).  For a broken pipeline only — never for bad input from the
 * router, which gets a WorkError. */
_Noreturn void sh_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A buffer of g's send ring, waiting for a pending send to complete up to
 * batch_timeout_ms; sh_abort if none does (the next rank is stuck). */
uint8_t *sh_ring_acquire_or_abort(sh_group_t *g, int *idx, const char *what);
/* MPI_Isend of len bytes of buffer idx; sh_abort if MPI refuses. */
void sh_ring_send_or_abort(sh_group_t *g, int idx, size_t len, const char *what);

/* ---- stop requests (SIGTERM / SIGINT) ---- */
void sh_signals_install(void);
int sh_stop_requested(void);

#endif
