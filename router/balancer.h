/* balancer.h — the router's view of its shard groups and the mask-affinity
 * choice of a group for a request (DESIGN.md §3).  No sockets: the router
 * feeds it heartbeats, dispatches and completions; tests drive it directly.
 *
 * A group holds the FFN union U of one cluster (or all channels: dense).
 * For a request mask m (NULL = dense mode, every channel):
 *   coverage_g = Σ_l |m_l ∩ U_gl| / Σ_l |m_l|        cost_g = Σ_l |U_gl|
 *   load_g     = tokens in flight on g: prompt tokens not yet prefilled +
 *                decode budget left, as counted by the router, plus what the
 *                group's last heartbeat reported beyond that count.
 * rt_balancer_pick, policy "affinity":
 *   candidates = alive, not draining, not avoided, with a free slot;
 *   eligible   = candidates with coverage >= min_coverage;
 *   if max - min load over eligible > balance_abs AND max > balance_rel * min
 *        -> the least-loaded eligible group (a spill);
 *   else -> the best: highest coverage, then lowest cost, then lowest load.
 * A dense group has coverage 1, so it is eligible whenever it has a slot and
 * wins when nothing cheaper covers the mask (the dense fallback); with
 * min_coverage < 1 a partly covering group can win (flagged approximate).
 * No eligible candidate -> RT_PICK_WAIT (queue) if some configured group
 * could take the request once it has a slot / comes back, else
 * RT_PICK_NEVER.  Other policies (benchmarks) choose among the same
 * eligible set: round-robin, least-loaded, dense-only (dense groups only).
 *
 * Free slots are the router's own accounting (rt_balancer_take -1,
 * rt_balancer_release +1) less any busy slots a heartbeat reports beyond it
 * (work the router no longer counts, e.g. cancelled but still draining).
 * The configured slots are an upper bound no heartbeat can raise.
 *
 * Coverage: rt_balancer_pick computes it by merging the sorted channel
 * lists (tests, the simulator); the router computes it once per request and
 * cluster from bitsets off its event loop and calls rt_balancer_pick_cov.
 *
 * Liveness (Paranoid Pirate): any message from a group that is alive
 * (rt_balancer_seen, rt_balancer_heartbeat) proves it alive at that time; a
 * group silent for more than liveness_ms is dead (rt_balancer_expire).  The
 * caller reads every waiting group message before it asks. */
#ifndef RT_BALANCER_H
#define RT_BALANCER_H

#include <stdint.h>

#include "config.h"
#include "mask.h"

#define RT_MAX_GROUPS IFP_CFG_MAX_GROUPS /* avoid sets are 64-bit masks */

typedef enum { RT_POLICY_AFFINITY, RT_POLICY_ROUND_ROBIN, RT_POLICY_LEAST_LOADED, RT_POLICY_DENSE_ONLY } rt_policy_t;

typedef struct {
    double min_coverage;  /* default 1.0 */
    int64_t balance_abs;  /* tokens, default 256 */
    double balance_rel;   /* default 1.5 */
    rt_policy_t policy;   /* default affinity */
    double liveness_ms;   /* silence after which a group is dead (liveness x heartbeat_ms), default 1000 */
    double demand_alpha;  /* EWMA weight of the newest demand tick, default 0.2 */
} rt_balancer_params_t;

rt_balancer_params_t rt_balancer_default_params(void);
/* "affinity" | "round-robin" | "least-loaded" | "dense-only"; -1 if unknown. */
int rt_policy_parse(const char *s, rt_policy_t *out);
const char *rt_policy_name(rt_policy_t p);

typedef struct {
    char name[IFP_CFG_NAME];
    unsigned char ident[256]; /* routing id of its stage 0's connection (the latest that heartbeated) */
    int ident_len;            /* 0: none yet */
    int cluster;          /* IFP_CLUSTER_DENSE or a cluster index */
    ifp_mask_t *uni;      /* owned; NULL = dense (all channels) */
    int64_t cost;         /* Σ_l |U_l| */
    int slots;            /* total sequence slots (heartbeats, never above cfg_slots) */
    int cfg_slots;        /* configured */
    int running;          /* requests the router has running here */
    int hb_busy;          /* busy slots the last heartbeat reported beyond `running` */
    int64_t load;         /* router-counted tokens in flight */
    int64_t hb_extra;     /* queued tokens the last heartbeat reported beyond `load` */
    int alive;            /* heartbeating within liveness_ms */
    int seen;             /* has heartbeated at least once */
    int draining;
    int stages;
    double last_hb;       /* ms (ifp_now_ms clock): the last heartbeat */
    double last_seen;     /* the last message of any kind while alive */
    uint64_t incarnation;
    uint64_t send_seq;    /* Work messages sent in this router run (Work.seq of the last) */
    int hb_running;       /* rids the last heartbeat listed */
    uint64_t tokens_generated, requests_done; /* the group's own counters (last heartbeat) */
    uint64_t n_dispatched, n_finished, n_deaths;
} rt_group_t;

typedef struct rt_balancer rt_balancer_t;

/* n_layers x d_ffn: the model's FFN shape (for dense-mode coverage);
 * n_clusters: size of the cluster table (0 if none) for demand tracking. */
rt_balancer_t *rt_balancer_new(const rt_balancer_params_t *p, int n_layers, int d_ffn, int n_clusters);
void rt_balancer_destroy(rt_balancer_t **b);

/* Adds a configured group (not alive until its first heartbeat).  uni is
 * copied (NULL = dense).  Returns its index or a negative IFP_E* code. */
int rt_balancer_add_group(rt_balancer_t *b, const char *name, int cluster, const ifp_mask_t *uni, int slots);
/* The group now holds cluster `cluster` with union uni (copied; NULL dense). */
int rt_balancer_set_cluster(rt_balancer_t *b, int g, int cluster, const ifp_mask_t *uni);
int rt_balancer_find(const rt_balancer_t *b, const char *name, size_t len); /* index or -1 */
int rt_balancer_n_groups(const rt_balancer_t *b);
rt_group_t *rt_balancer_group(rt_balancer_t *b, int g);
const rt_balancer_params_t *rt_balancer_params(const rt_balancer_t *b);

/* ---- liveness (Paranoid Pirate) ---- */
typedef struct {
    uint64_t incarnation;
    int slots, free_slots;
    int64_t queued_tokens;
    int draining, stages;
} rt_heartbeat_t;

enum {
    RT_HB_OK = 0,        /* an alive group beat again */
    RT_HB_FIRST = 1,     /* first contact: the group is now alive */
    RT_HB_REVIVED = 2,   /* a dead group is back with the same incarnation */
    RT_HB_RESTARTED = 3, /* a known group came back with a new incarnation: its old work is lost */
};
/* Refreshes group g at time now; returns one of RT_HB_*.  On RT_HB_RESTARTED
 * the caller must move the group's running requests elsewhere (they are not
 * touched here).  Counts are clamped to the configuration. */
int rt_balancer_heartbeat(rt_balancer_t *b, int g, double now, const rt_heartbeat_t *hb);
/* Another message (tokens, an error) from alive group g arrived at now. */
void rt_balancer_seen(rt_balancer_t *b, int g, double now);
/* Marks dead every alive group silent for more than liveness_ms; writes
 * their indices to dead[] (up to cap) and returns how many died. */
int rt_balancer_expire(rt_balancer_t *b, double now, int *dead, int cap);
/* Earliest time an alive group would expire (0 if none is alive). */
double rt_balancer_next_expiry(const rt_balancer_t *b);

/* ---- choice ---- */
enum { RT_PICK_OK = 0, RT_PICK_WAIT = 1, RT_PICK_NEVER = 2 };

typedef struct {
    int group;        /* chosen index (RT_PICK_OK), else -1 */
    double coverage;  /* of the chosen group */
    int approximate;  /* coverage < 1: channels of the mask are missing there */
    int spilled;      /* chosen by the imbalance test, not by affinity */
    double best_possible; /* best coverage any configured, non-avoided group offers */
} rt_pick_t;

/* Coverage of mask m (NULL = dense mode) by group g's union. */
double rt_balancer_coverage(const rt_balancer_t *b, int g, const ifp_mask_t *m);
/* Coverage of mask m by every group: cov[g] for g < n_groups. */
void rt_balancer_coverages(const rt_balancer_t *b, const ifp_mask_t *m, double *cov);
/* Chooses a group for a request with mask m (NULL = dense mode); groups whose
 * bit is set in avoid are never chosen.  Returns RT_PICK_*; fills *out. */
int rt_balancer_pick(rt_balancer_t *b, const ifp_mask_t *m, uint64_t avoid, rt_pick_t *out);
/* The same with the request's coverage by each group given (cov[g]; NULL =
 * dense mode). */
int rt_balancer_pick_cov(rt_balancer_t *b, const double *cov, uint64_t avoid, rt_pick_t *out);
int rt_balancer_free_slots(const rt_balancer_t *b, int g);
int rt_balancer_total_free(const rt_balancer_t *b); /* over alive groups */
/* Group g refused a Work for want of a slot (WorkError.busy: another router
 * holds the rest): no free slot here until its next heartbeat says so. */
void rt_balancer_note_full(rt_balancer_t *b, int g);
/* 1 if free capacity may have appeared since the last call (a slot freed, a
 * group came up or stopped draining): the caller tries its queue again. */
int rt_balancer_capacity_changed(rt_balancer_t *b);
/* Asks for that retry anyway (a request went back to the queue, a send to a
 * full group failed). */
void rt_balancer_capacity_poke(rt_balancer_t *b);

/* ---- accounting ---- */
void rt_balancer_take(rt_balancer_t *b, int g, int64_t load);    /* a request dispatched to g */
void rt_balancer_release(rt_balancer_t *b, int g, int64_t load, int finished); /* it left g */
void rt_balancer_add_load(rt_balancer_t *b, int g, int64_t delta);

/* ---- per-cluster demand (for a rebalancer) ---- */
void rt_balancer_note_demand(rt_balancer_t *b, int cluster);  /* one request nearest `cluster` */
void rt_balancer_demand_tick(rt_balancer_t *b);               /* fold the counts into the EWMA */
double rt_balancer_demand(const rt_balancer_t *b, int cluster);
int rt_balancer_n_clusters(const rt_balancer_t *b);

#endif
