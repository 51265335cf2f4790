/* sim.h — a discrete-event simulator of an ifp datacenter deployment.
 *
 * Model (docs/BENCHMARKS.md, "bench/sim", states what is and is not in it):
 *   - G shard groups of P pipeline stages, in cells of at most 64 groups;
 *     each cell is one router running the real socket-free balancer
 *     (router/balancer.h: policies, imbalance test, dense fallback) with the
 *     router's FIFO queue (queue_max, "overloaded" beyond).  A front tier
 *     spreads arrivals uniformly over the cells.
 *   - A group holds one cluster's union (or dense).  Its stage 0 runs the
 *     shard's scheduler (shard/sched.h): decode rows first (at most
 *     ceil(decoding / P) per micro-batch), then prefill chunks up to
 *     max_prefill rows, at most P micro-batches in flight; every stage takes
 *     t(rows, width) x layers/P per micro-batch, in order (a linear pipeline).
 *   - Requests: Poisson arrivals over a domain mix with hot-spot shifts; each
 *     one draws a calibration example: its real predicted mask, prompt and
 *     answer lengths.
 *   - Optional: a hot-cluster rebalancer per cell (drain a group of a cold
 *     cluster, pay compact_ms, reload it with the hot cluster's union) and a
 *     failure injection (groups die; their requests replay elsewhere).
 * Deterministic: the same inputs and seed give the same result. */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdint.h>

#include "balancer.h"
#include "err.h"
#include "mask.h"

/* ---- event queue: a binary min-heap on (time, insertion order) ---- */
typedef struct {
    double t;     /* ms of simulated time */
    uint64_t seq; /* insertion order: ties pop first-in first-out */
    int kind, a, b;
} sim_event_t;

typedef struct {
    sim_event_t *ev;
    int n, cap;
    uint64_t next_seq;
} sim_heap_t;

int sim_heap_push(sim_heap_t *h, double t, int kind, int a, int b); /* 0 or IFP_ENOMEM */
int sim_heap_pop(sim_heap_t *h, sim_event_t *out);                   /* 1 popped, 0 empty */
void sim_heap_free(sim_heap_t *h);

/* ---- per-layer step time of a micro-batch at the paper shape ---- */
#define SIM_MAX_PTS 16
typedef struct {
    double width;                /* FFN channels the stage holds */
    int n;                       /* points, rows ascending */
    double rows[SIM_MAX_PTS];    /* rows in the micro-batch */
    double ms[SIM_MAX_PTS];      /* ms per layer */
} sim_curve_t;

typedef struct {
    int n_width;
    sim_curve_t c[SIM_MAX_PTS]; /* width ascending */
    int d_ffn, keep;            /* the simulated shape's full FFN width and K */
    double compact_ms_layer;    /* measured compaction time per layer, 0 if unknown */
    char source[200];           /* where the figures came from */
} sim_steptab_t;

/* Per-layer ms: linear in width between measured widths, piecewise linear
 * in rows (both extrapolated linearly, never below 1% of the nearest point). */
double sim_step_ms(const sim_steptab_t *t, double width, double rows);
/* The built-in roofline table for a paper shape "6b" | "9b" | "12b"
 * (d_model 2048, 16/2 heads of 128, K 6656, f32 weights, gbps of DRAM
 * bandwidth and gflops of compute).  -1 if the shape is unknown. */
int sim_steptab_roofline(sim_steptab_t *t, const char *shape, double gbps, double gflops);
/* Reads a bench_stage CSV (columns found by name, see steptab.c): every row
 * with an FFN width gives a point, whatever its shape (all paper shapes share
 * d_model and heads, so a layer's cost depends on its FFN width only); shape
 * sets d_ffn and K.  IFP_ENOTFOUND if the file is missing, IFP_EFORMAT
 * with a message if it lacks the columns or the shape's rows. */
int sim_steptab_load(sim_steptab_t *t, const char *path, const char *shape, ifp_err_t *err);
/* Sets d_ffn and K of "6b" | "9b" | "12b"; -1 if unknown. */
int sim_shape_dims(const char *shape, int *d_ffn, int *keep);

/* ---- the request pool: what an arrival can draw ---- */
typedef struct {
    int n;
    const ifp_mask_t *const *mask; /* [n] predicted masks (borrowed) */
    const int *prompt_tokens;      /* [n] */
    const int *answer_tokens;      /* [n], >= 1 */
    const int *domain;             /* [n] in [0, n_domains) */
    const int *nearest;            /* [n] nearest cluster (demand), -1 none */
    int n_domains;
    const ifp_cluster_table_t *table; /* the unions groups hold (borrowed) */
} sim_pool_t;

typedef struct {
    /* deployment */
    int groups, stages, slots, max_prefill, cell_size, layers;
    double dense_frac;      /* share of each cell's groups that are dense (at least 1) */
    /* workload */
    double rate;            /* arrivals per second (whole deployment) */
    double duration_s;      /* arrival window */
    int max_requests;       /* cap on arrivals (memory); 0 = 4,000,000 */
    int fixed_arrivals;     /* 1: every 1/rate exactly (tests) */
    double shift_s;         /* hot-spot phase length; 0 = the base mix throughout, < 0 = duration / 4 */
    double hot_factor;      /* weight multiplier of the hot domain */
    double len_scale;       /* prompt and answer lengths x this */
    /* router */
    rt_policy_t policy;     /* dense-only also provisions every group dense */
    double min_coverage, balance_rel;
    int64_t balance_abs;
    int queue_max;
    double net_ms;          /* router <-> group, one way */
    double hop_ms;          /* stage -> stage, plus rows x 8 KiB at link_gbps */
    double link_gbps;
    double router_ms;       /* tokenize + predictor + pick, per request */
    /* rebalancer */
    int rebalance;
    double rebalance_ms;    /* period */
    double rebalance_ratio; /* hot per-slot demand > ratio x cold -> move a group */
    double compact_ms;      /* reload time once drained */
    /* failures */
    int fail_groups;
    double fail_at_s;
    uint64_t seed;
} sim_params_t;

sim_params_t sim_default_params(void);

#define SIM_NPCT 3 /* p50, p95, p99 */
typedef struct {
    long arrivals, completed, rejected, failed, unfinished;
    long tokens_window;        /* generated within [0, duration] */
    double window_s, tps, rps; /* tokens_window / window; completions in the window / window */
    double ttft[SIM_NPCT], tpot[SIM_NPCT], e2e[SIM_NPCT]; /* ms */
    double exact_share;        /* completed with coverage 1 (dense included) */
    double compact_share;      /* ... on a compacted group */
    double dense_share, mean_coverage, approx_share;
    double mean_width;         /* FFN channels per generated token's group */
    long recompactions, replays, spills;
    double sim_end_s;          /* simulated time at the end */
    long events;
} sim_result_t;

/* Runs one scenario.  pool->table must hold every cluster a group may load.
 * Returns IFP_OK or a negative code with a message in err. */
int sim_run(const sim_params_t *p, const sim_pool_t *pool, const sim_steptab_t *st, sim_result_t *out, ifp_err_t *err);

/* Width at the paper shape of a union whose layers keep `mean_kept` of
 * d_ffn_src channels with K = keep_src: K maps to st->keep, d_ffn_src to
 * st->d_ffn, linearly in between. */
double sim_scale_width(const sim_steptab_t *st, double mean_kept, int keep_src, int d_ffn_src);

#endif
