/* workload.h — the ifp-mix calibration prompts as a benchmark workload.
 *
 * Shared by bench_load (real cluster) and bench_sim (simulated datacenter):
 * every example of a JSON-lines prompt set (data/ifp-mix/calib.jsonl) is
 * tokenized with the model's tokenizer ([BOS] + prompt, as the router does),
 * its response is tokenized for an answer length, and the predictor gives
 * its FFN mask (the router's MASK_INPUT mask: [BOS] + prompt, truncated to
 * the predictor's max_prompt_tokens).  With a cluster table, each mask's
 * nearest cluster (ifp_cluster_nearest: Jaccard to the medoids — what the
 * router counts as the request's demand) is recorded too.
 *
 * Lifetime: wl_load returns an owned workload; wl_destroy(&w) frees it and
 * everything it points to (masks, table, names). */
#ifndef WL_WORKLOAD_H
#define WL_WORKLOAD_H

#include <stdint.h>

#include "err.h"
#include "mask.h"

typedef struct {
    int domain;          /* index into wl_workload_t.domains */
    int prompt_tokens;   /* [BOS] + prompt */
    int answer_tokens;   /* tokens of the response, 0 if the example has none */
    int nearest;         /* nearest cluster of the table, -1 without one */
    ifp_mask_t *mask;    /* owned */
    const char *prompt;  /* owned by the workload */
} wl_example_t;

typedef struct {
    int n;
    wl_example_t *ex;
    int n_domains;
    char **domains;
    int n_layers, d_ffn, keep;   /* mask shape: the model's FFN and the predictor's K */
    int ctx;                     /* model context */
    ifp_cluster_table_t *table;  /* owned; NULL if none was given or built */
} wl_workload_t;

/* Loads the prompts and computes every mask (a second or two for ifp-mix).
 * clusters may be NULL (no table: nearest = -1).  Errors name the file. */
int wl_load(const char *model, const char *predictor, const char *calib, const char *clusters, wl_workload_t **out,
            ifp_err_t *err);
/* Replaces the table by k-medoids over the workload's masks (core/cluster.h,
 * k clusters, seed, unions trimmed to budget channels per layer when
 * budget > 0) and recomputes every example's nearest cluster. */
int wl_cluster(wl_workload_t *w, int k, uint64_t seed, int budget, ifp_err_t *err);
void wl_destroy(wl_workload_t **w);

/* splitmix64: the benchmarks' one seeded generator (state advanced). */
uint64_t wl_rand(uint64_t *state);
/* Uniform in [0, 1) with 53 random bits. */
double wl_uniform(uint64_t *state);
/* Exponential with the given mean (> 0). */
double wl_exp(uint64_t *state, double mean);

#endif
