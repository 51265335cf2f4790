/* intake.h — stage 0 of a shard group, private to shard/: its state,
 * shared by its two halves.
 *
 *   intake.c   the loop, the pipeline: admission of held requests into
 *              slots, the scheduler, micro-batches out and tokens back, the
 *              deadlines, re-compaction, (P = 1) sampling;
 *   routers.c  the routers' side: messages from every router link, the
 *              taking or refusing of Work (busy), cancels, controls, each
 *              link's heartbeat, routers that go away.
 *
 * Both run on stage 0's one thread; nothing here is locked. */
#ifndef SH_INTAKE_H
#define SH_INTAKE_H

#include <limits.h>
#include <stdint.h>
#include <zmq.h>

#include "sched.h"
#include "shard.h"

#define SH_HB_RETRY_MS 10.0         /* first retry of a heartbeat that found no router */
#define SH_NO_CLUSTER INT_MIN       /* pending_cluster: no re-compaction asked */

/* Stage 0's state of one router link. */
typedef struct {
    uint64_t router_epoch, work_seen; /* of the last Work received on it */
    double next_hb, hb_retry;         /* when its next heartbeat is due; the retry delay after a dropped one */
    unsigned long works, busy, dropped; /* Work received, refused as busy; requests cancelled as its router left */
} sh_intake_link_t;

typedef struct {
    sh_group_t *G;
    sh_stage_t *st;
    sh_sched_t *sched;
    int P;
    int draining, shutting, pending_cluster;
    double shutting_since;
    uint64_t incarnation;
    sh_intake_link_t *lk;             /* [G->n_links] */
    zmq_pollitem_t *items;            /* [2 × n_links]: the links' sockets, then their monitors */
    double gone_ms;                   /* liveness × heartbeat_ms: a link down longer loses its requests */
    uint64_t *rids;                   /* [slots] heartbeat scratch */
    sh_finished_t *fin;               /* [SH_SCHED_FINISHED_PER_SLOT × slots] heartbeat scratch */
    unsigned long admitted, batches, works, busy;
    int held_max;                     /* the most requests held at once (<= slots) */
    /* in-flight micro-batches (by seq % P): when each left and its rows; and
     * over the completed ones, round trips vs compute in all stages */
    double *sent_at;
    int *sent_rows;
    double grace_ms; /* added to deadlines while the later stages re-compact */
    double rt_ms, busy_ms;
    unsigned long n_rt;
} sh_intake_t;

/* ---- routers.c ---- */
/* Reads every link's messages (bounded per link).  Returns how many. */
int sh_routers_read(sh_intake_t *f);
/* Follows the links' connections (f->items' monitor events from the last
 * poll); cancels the requests of a link down for longer than f->gone_ms.
 * Returns the number of requests cancelled. */
int sh_routers_check(sh_intake_t *f, double now);
/* Sends each link's heartbeat that is due (retrying a dropped one soon). */
void sh_routers_heartbeat_if_due(sh_intake_t *f, double now);
/* Sends every link's heartbeat now (timers unchanged). */
void sh_routers_heartbeat_all(sh_intake_t *f);
/* When the earliest heartbeat is due. */
double sh_routers_next_heartbeat(const sh_intake_t *f);

/* ---- intake.c ---- */
/* Token ids back from the last stage (nothing for P = 1).  Returns the
 * number of messages. */
int sh_intake_drain_results(sh_intake_t *f);

#endif
