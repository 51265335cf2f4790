/* mask.h — FFN channel masks, set algebra on them, and cluster tables.
 *
 * A mask says, for each layer l of a model, which FFN channels are kept: a
 * strictly increasing list of channel indices in [0, d_ffn).  A predicted
 * mask keeps exactly K per layer; a cluster union keeps more.  Channel i of
 * layer l is row i of ffn_gate/ffn_up and column i of ffn_down.
 *
 * Serialization is GGUF (core/gguf.h): a mask file holds one mask; a cluster
 * table holds k clusters, each with its union mask, its medoid mask, its
 * member count and, per layer and union channel, how many members keep it.
 * Key layout (all integer arrays are INT32):
 *   general.architecture = "ifp-mask" | "ifp-clusters"
 *   ifp.mask.block_count, ifp.mask.feed_forward_length          (u32)
 *   mask file:      ifp.mask.layer.L                            (int32[])
 *   cluster table:  ifp.clusters.count (u32), ifp.clusters.keep (u32, K of member masks)
 *                   ifp.cluster.C.members (u32)
 *                   ifp.cluster.C.union.L, ifp.cluster.C.medoid.L,
 *                   ifp.cluster.C.freq.L (int32[|union L|]: members keeping each union channel) */
#ifndef IFP_MASK_H
#define IFP_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    int n_layers;
    int d_ffn;       /* channels per layer in the full model */
    int *n_kept;     /* [n_layers] */
    int32_t **kept;  /* [n_layers] sorted kept channels (into one owned block) */
} ifp_mask_t;

/* An empty mask (0 kept per layer) with room for cap channels per layer. */
ifp_mask_t *ifp_mask_new(int n_layers, int d_ffn);
ifp_mask_t *ifp_mask_dense(int n_layers, int d_ffn);
ifp_mask_t *ifp_mask_clone(const ifp_mask_t *m);
void ifp_mask_destroy(ifp_mask_t **m);

/* Sets layer l's kept list (copied; validated: strictly increasing, in range). */
int ifp_mask_set_layer(ifp_mask_t *m, int l, const int32_t *kept, int n, ifp_err_t *err);
/* Top-k channels of scores[d_ffn] into layer l: by score descending, ties
 * -> lower index, a NaN score ranking as -inf (after every other score, tied
 * with -inf), -0 tied with +0.  0 <= k <= d_ffn, else IFP_ERANGE.  O(d_ffn)
 * (a radix select), allocation-free, thread-safe for distinct masks. */
int ifp_mask_set_topk(ifp_mask_t *m, int l, const float *scores, int k);
/* The same result by a full sort, O(d_ffn log d_ffn): the reference the
 * selection is tested and benchmarked against. */
int ifp_mask_set_topk_ref(ifp_mask_t *m, int l, const float *scores, int k);
int ifp_mask_validate(const ifp_mask_t *m, ifp_err_t *err);

int ifp_mask_total(const ifp_mask_t *m);               /* sum of kept over layers */
int ifp_mask_equal(const ifp_mask_t *a, const ifp_mask_t *b);
/* |a ∩ b| of two strictly increasing channel lists. */
int ifp_kept_intersection(const int32_t *a, int na, const int32_t *b, int nb);
/* |a ∩ b| summed over layers. */
int64_t ifp_mask_intersection_size(const ifp_mask_t *a, const ifp_mask_t *b);
/* Jaccard distance over all layers' channels: 1 - |a∩b| / |a∪b| (0 if both empty). */
double ifp_mask_jaccard_distance(const ifp_mask_t *a, const ifp_mask_t *b);
/* Layer-l overlap |a_l ∩ b_l| / |a_l| (the paper's Figure-3 metric when |a_l| = K). */
double ifp_mask_layer_overlap(const ifp_mask_t *a, const ifp_mask_t *b, int l);
/* coverage of m by u: Σ_l |m_l ∩ u_l| / Σ_l |m_l|  (1 if m is empty). */
double ifp_mask_coverage(const ifp_mask_t *m, const ifp_mask_t *u);
/* out = a ∪ b / a ∩ b (out may be a fresh ifp_mask_new of the same shape). */
int ifp_mask_union(ifp_mask_t *out, const ifp_mask_t *a, const ifp_mask_t *b);
int ifp_mask_intersect(ifp_mask_t *out, const ifp_mask_t *a, const ifp_mask_t *b);

/* Bitsets: (d_ffn + 63) / 64 words per layer. */
void ifp_mask_layer_bits(const ifp_mask_t *m, int l, uint64_t *bits);

/* Sub-mask of m over a union u, for exact mixed-mask batching on weights
 * compacted to u: sub[l][j] = 1 if channel u.kept[l][j] is in m_l, else 0.
 * sub[l] must hold u.n_kept[l] floats.  Returns the number of channels of m
 * that u lacks (dropped: coverage < 1). */
int64_t ifp_mask_submask(const ifp_mask_t *m, const ifp_mask_t *u, float *const *sub);

/* Packed masks (the wire's Work.mask, proto/ifp.proto): n_layers ×
 * ceil(d_ffn/8) bytes, layer-major, bit j (LSB first) of layer l = channel j. */
static inline size_t ifp_mask_bits_layer_bytes(int d_ffn) { return (size_t)(d_ffn + 7) / 8; }
static inline size_t ifp_mask_bits_bytes(int n_layers, int d_ffn) {
    return (size_t)n_layers * ifp_mask_bits_layer_bytes(d_ffn);
}
static inline const uint8_t *ifp_mask_bits_layer(const uint8_t *bits, int l, int d_ffn) {
    return bits + (size_t)l * ifp_mask_bits_layer_bytes(d_ffn);
}
/* m packed into out (ifp_mask_bits_bytes). */
void ifp_mask_pack(const ifp_mask_t *m, uint8_t *out);
/* Checks a packed mask: len, and for layers [l0, l1) >= 1 channel and no bit
 * past d_ffn.  Returns 0, or -1 with a one-line reason in why. */
int ifp_mask_bits_check(const uint8_t *bits, size_t len, int n_layers, int d_ffn, int l0, int l1, char *why,
                        size_t wlen);
/* out[j] = 1 if channel kept[j] (or j, kept == NULL: n_kept = d_ffn) is set
 * in one packed layer, else 0.  Returns the number of ones. */
int ifp_submask_from_bits(const uint8_t *layer_bits, int d_ffn, const int32_t *kept, int n_kept, float *out);

/* GGUF mask files. */
int ifp_mask_save(const ifp_mask_t *m, const char *path, ifp_err_t *err);
int ifp_mask_load(const char *path, ifp_mask_t **out, ifp_err_t *err);

/* ---- cluster tables ---- */
typedef struct {
    ifp_mask_t *uni;    /* per-layer union of the members (maybe trimmed) */
    ifp_mask_t *medoid; /* the medoid member's mask */
    int members;
    int32_t **freq;     /* [n_layers][uni->n_kept[l]] members keeping each union channel */
} ifp_cluster_t;

typedef struct {
    int n_clusters;
    int n_layers, d_ffn, keep;
    ifp_cluster_t *c;
} ifp_cluster_table_t;

void ifp_cluster_table_destroy(ifp_cluster_table_t **t);
int ifp_cluster_table_save(const ifp_cluster_table_t *t, const char *path, ifp_err_t *err);
int ifp_cluster_table_load(const char *path, ifp_cluster_table_t **out, ifp_err_t *err);
/* Index of the cluster whose medoid is nearest to m (Jaccard), -1 if none. */
int ifp_cluster_nearest(const ifp_cluster_table_t *t, const ifp_mask_t *m);

#endif
