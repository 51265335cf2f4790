/* cluster.h — deterministic k-medoids over FFN masks (Jaccard distance) and
 * the cluster table built from its result.
 *
 * The table type, its GGUF file format and ifp_cluster_nearest are declared
 * in mask.h (they are part of the mask contract the router reads); they are
 * implemented in cluster.c next to the algorithm that produces them.
 *
 * Algorithm (ifp_kmedoids): on a precomputed n×n distance matrix,
 *   1. k-medoids++ seeding: the first medoid uniform, each next one drawn
 *      with probability ∝ D(x)² (D = distance to the nearest chosen medoid),
 *      from a splitmix64 stream keyed by (seed, restart);
 *   2. alternate until no medoid changes (at most max_iter rounds):
 *      assign every input to its nearest medoid (ties -> lower cluster
 *      index); then move each cluster's medoid to the member with the least
 *      summed distance to the other members, only if strictly better (ties
 *      among better ones -> lower input index);
 *   3. keep the restart with the lowest total cost (ties -> earlier restart);
 *   4. renumber clusters by their lowest member index, so the numbering does
 *      not depend on the seeding order.
 * An empty cluster (impossible while medoids are distinct masks, handled
 * anyway) is re-seeded with the input farthest from its medoid.  Same
 * inputs and seed -> the same result, on any machine with IEEE doubles. */
#ifndef IFP_CLUSTER_H
#define IFP_CLUSTER_H

#include <stdint.h>

#include "err.h"
#include "mask.h"

typedef struct {
    int k;          /* clusters: 1..(number of distinct input masks) */
    uint64_t seed;  /* default 0 */
    int budget;     /* per-layer union budget: 0 = untrimmed (default), else K..d_ffn */
    int max_iter;   /* assign/update rounds per restart (default 100) */
    int restarts;   /* seedings tried, the cheapest wins (default 8) */
    int progress;   /* 1: progress on stderr when it is a terminal (default 0) */
} ifp_kmedoids_params_t;

ifp_kmedoids_params_t ifp_kmedoids_default_params(void);

/* Checks that masks[0..n) share one shape and keep the same number K of
 * channels in every layer; writes K.  IFP_EINVAL with a message otherwise. */
int ifp_masks_common_keep(const ifp_mask_t *const *masks, int n, int *keep, ifp_err_t *err);

/* dist[i*n + j] = ifp_mask_jaccard_distance(masks[i], masks[j]) (bit for
 * bit), computed on bitsets.  dist holds n*n doubles. */
int ifp_mask_distance_matrix(const ifp_mask_t *const *masks, int n, double *dist, int progress, ifp_err_t *err);

/* k-medoids on a symmetric distance matrix with a zero diagonal (dist[i*n+j]
 * is 0 only for identical inputs).  Writes medoid[k] (input index of each
 * cluster's medoid), assign[n] (cluster of each input) and *cost (summed
 * distance of every input to its medoid; may be NULL).  Fails with IFP_EINVAL
 * when k is out of 1..n or exceeds the number of distinct inputs. */
int ifp_kmedoids(const double *dist, int n, const ifp_kmedoids_params_t *p, int *medoid, int *assign, double *cost,
                 ifp_err_t *err);

/* Builds the table of an assignment: per cluster the medoid's mask, the
 * member count and the per-layer union with each channel's member count.
 * budget > 0 trims every union layer to at most budget channels, keeping the
 * most frequent among the members (ties -> lower channel index); budget must
 * then be in K..d_ffn (IFP_EINVAL otherwise).  Every cluster needs >= 1 member. */
int ifp_cluster_table_build(const ifp_mask_t *const *masks, int n, int k, const int *medoid, const int *assign,
                            int budget, ifp_cluster_table_t **out, ifp_err_t *err);

/* All of the above: masks -> table and assign[n] (may be NULL). */
int ifp_cluster_masks(const ifp_mask_t *const *masks, int n, const ifp_kmedoids_params_t *p,
                      ifp_cluster_table_t **out, int *assign, ifp_err_t *err);

#endif
