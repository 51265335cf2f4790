/* sim_int.h — the simulator's state, shared by sim.c (arrivals, routers,
 * rebalancer, failures, results) and group.c (a shard group's pipeline).
 * Not API: only those files include it. */
#ifndef SIM_INT_H
#define SIM_INT_H

#include <stdint.h>

#include "sim.h"

enum { EV_ARRIVAL, EV_WORK, EV_WAKE, EV_MBDONE, EV_DEMAND, EV_REBALANCE, EV_COMPACTED, EV_FAIL };
enum { RQ_QUEUED, RQ_SENT, RQ_RUNNING, RQ_DONE, RQ_REJECTED, RQ_FAILED };

typedef struct {
    double t_arr, t_first, t_last, t_done; /* ms; token times as the router sees them */
    int pool, prompt, max_new, gen;        /* pool example, lengths, tokens generated so far */
    int cell, group, cluster;              /* serving group (global index) and its cluster, -1 none / dense */
    int qprev, qnext;                      /* router queue links */
    int replays;
    float cov;
    uint8_t state;
    int64_t charged;                       /* load still charged to the group */
    uint64_t avoid;                        /* cell-local groups never to try again */
} sim_req_t;

typedef struct {
    int req;          /* -1: free */
    int fed, n_prompt, have_token, inflight;
    uint64_t order;   /* admission order (prefill oldest first) */
} sim_slot_t;

typedef struct {
    int n;            /* slots with rows in this micro-batch */
    int *slot;        /* [slots] */
    int *rows;        /* [slots] prompt rows it fed (0: a decode row) */
    uint8_t *want;    /* [slots] the batch samples a token for it */
} sim_flight_t;

typedef struct {
    int cell, local;        /* its router and index there */
    int cluster;            /* IFP_CLUSTER_DENSE or a cluster */
    double width;           /* FFN channels at the paper shape */
    int epoch;              /* bumped on death: stale events are dropped */
    int dead, compacting, wake_pending, running;
    int target;             /* rebalancer: the cluster it reloads as */
    double *free_at;        /* [P] when each stage is free */
    sim_slot_t *slot;       /* [S] */
    sim_flight_t *flight;   /* ring [P] */
    int f_head, f_len, rr;
    uint64_t next_order;
    uint8_t *mark;          /* [S] scratch */
} sim_group_t;

typedef struct {
    rt_balancer_t *b;
    int g0, n;              /* global index of its first group, count */
    int q_head, q_tail, q_len;
    uint64_t *cover;        /* [pool n] groups that could serve each pool mask */
    uint64_t all;
    int rebal;              /* local group being re-compacted, -1 none */
    int need_pump;
} sim_cell_t;

typedef struct {
    const sim_params_t *p;
    const sim_pool_t *pool;
    const sim_steptab_t *st;
    sim_heap_t h;
    double now, window_ms, layers_per_stage;
    sim_req_t *r;
    int n_req, cap_req, in_system, arrivals_done;
    sim_group_t *g;
    int ng;
    sim_cell_t *c;
    int nc;
    double *cov;            /* [pool n x n_clusters] coverage of each pool mask by each union */
    double *cwidth;         /* [n_clusters] paper-shape width of each union */
    int n_clusters;
    uint64_t rng;
    int *dom_n, **dom_ex;   /* [n_domains] pool examples of each domain */
    int *wait_stamp, stamp; /* per pool mask: WAIT seen in this pump */
    sim_result_t *res;
    long completed_window;
    double width_tokens;    /* sum over generated tokens of the group's width */
    int err;                /* first allocation failure */
} sim_t;

/* group.c */
int sim_group_init(sim_t *s, sim_group_t *g);
void sim_group_free(sim_group_t *g, int P);
/* Work for request ri reaches group gi: take a slot, start if stage 0 is free. */
void sim_group_work(sim_t *s, int gi, int ri);
/* Stage 0 free again (EV_WAKE) / the oldest micro-batch is out (EV_MBDONE). */
void sim_group_wake(sim_t *s, int gi);
void sim_group_mbdone(sim_t *s, int gi);
/* Clears every slot and flight of a dead group; returns the requests it held
 * through reqs (up to slots). */
int sim_group_kill(sim_t *s, int gi, int *reqs);

/* sim.c, called by group.c */
void sim_token(sim_t *s, int ri, double t_router);   /* one token of ri reached the router */
void sim_finished(sim_t *s, int ri);                  /* ri's last token: free its router slot */
void sim_charge(sim_t *s, int ri, int64_t delta);     /* ri's group owes delta fewer tokens */
int sim_push(sim_t *s, double t, int kind, int a, int b);

#endif
