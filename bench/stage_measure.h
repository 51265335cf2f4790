/* stage_measure.h — interleaved rounds of stage measurements: the method
 * behind bench_stage's figures and ratios.
 *
 * An entry is one model under test on a stage runner (bench/stagerun.h;
 * several entries may share a runner — same config — and take it over in
 * turn with sr_use, keeping its caches).  Every figure of a set of entries
 * is taken in rounds:
 *   warm-up (untimed): per runner one prefill and one decode step at every
 *     batch (first touch of its buffers); per entry one step at batch 1;
 *   steps per decode figure: ceil(run_params / the entry's parameters),
 *     clamped to [1, max steps] — fixed by the shape alone, so the same
 *     model in any weight type, an A/A pair, and a compacted stage and the
 *     dense stage of its shape all take the same steps, in every round;
 *   round r: prefill of every entry, then decode at batch 1, then 4, then
 *     16; at each the entries' runs are interleaved — A B C, C B A, A B C ...
 *     one run each (prefill: plan->prefill_runs runs; decode: single steps
 *     fed at position `prefix`; an entry with fewer runs takes them spread
 *     over those passes) — every run timed on its own; an entry's figure for
 *     the round is its fastest run (other work only slows runs down).  So
 *     compared entries are measured milliseconds apart, see the same bursts
 *     of other work, and neither always goes first.
 * Times are kept per global round (a counter over the whole run), so two
 * entries measured in the same rounds — also across sets, e.g. a reference
 * measured with every set — pair up: a ratio is the median over the rounds
 * both took part in of the per-round ratio.  Figures are medians over an
 * entry's rounds. */
#ifndef IFP_BENCH_STAGE_MEASURE_H
#define IFP_BENCH_STAGE_MEASURE_H

#include "err.h"
#include "forward.h"
#include "model.h"
#include "stagerun.h"

enum {
    SM_N_BATCH = 3,      /* decode batches: 1, 4, 16 */
    SM_N_KIND = 4,       /* kind 0 = prefill, 1 + i = decode at sm_batches[i] */
    SM_MAX_ROUNDS = 64,  /* global rounds over a run */
    SM_MAX_DEC = 16,     /* the largest batch = decode slots of a runner */
    SM_MAX_STEPS = 64,   /* decode steps of a figure */
    SM_MAX_ENTRIES = 64  /* entries in one sm_run */
};
extern const int sm_batches[SM_N_BATCH];

/* What a set of rounds measures. */
typedef struct {
    int rounds;                 /* >= 1 */
    int prompt;                 /* prefill rows (0: no prefill) */
    int prefill_runs;           /* prefill runs per round, 1..SM_MAX_STEPS */
    int max_steps[SM_N_BATCH];  /* decode steps per measurement, at most (<= SM_MAX_STEPS) */
    double run_params;          /* weights a decode measurement reads, in parameters (>= 1 step) */
} sm_plan_t;

typedef struct {
    /* set by the caller */
    char name[32];              /* "ifp-9b-3b" */
    char key[24];               /* "ifp9b3b": headline keys, lookups */
    const char *type;           /* "f32", "bf16", ... */
    const char *kind;           /* dense | ifp | union | aa */
    const char *base;           /* base shape */
    const ifp_model_t *m;       /* borrowed */
    sr_stage_t *s;              /* borrowed, may be shared */
    const ifp_ffn_mask_t *slot_mask; /* [1 + SM_MAX_DEC] row masks per slot, or NULL */
    double params;              /* parameters a decode step reads (any type) */
    /* measured */
    int steps[SM_N_BATCH];      /* set by sm_run */
    double t[SM_N_KIND][SM_MAX_ROUNDS]; /* seconds: prefill per prompt, decode the fastest step; NAN = none */
    int n_rounds;               /* rounds this entry took part in */
} sm_entry_t;

/* Clears an entry's results (every time NAN). */
void sm_entry_reset(sm_entry_t *e);

/* Warm-up and plan->rounds rounds over e[0..n), starting at global round
 * *round (advanced).  Progress on stderr.  IFP_ERANGE if the run would pass
 * SM_MAX_ROUNDS. */
int sm_run(sm_entry_t *const *e, int n, const sm_plan_t *plan, int *round, ifp_err_t *err);

/* Tokens/s of one measurement: kind 0 prompt / t, else batch / t. */
double sm_tok_s(int kind, int prompt, double t);
/* Median tokens/s of an entry over its rounds (NAN if none). */
double sm_median_tok_s(const sm_entry_t *e, int kind, int prompt);
/* Median over the rounds both measured of tok/s(a, ka) / tok/s(b, kb);
 * NAN if they share none.  *pairs (optional) = the number of such rounds. */
double sm_ratio(const sm_entry_t *a, int ka, const sm_entry_t *b, int kb, int prompt, int *pairs);
/* Appends the per-round ratios of sm_ratio to v (at most cap in all);
 * returns the new count.  For medians over several pairs of entries. */
int sm_ratios(const sm_entry_t *a, int ka, const sm_entry_t *b, int kb, int prompt, double *v, int n, int cap);

#endif
