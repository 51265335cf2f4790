#include "cluster.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"

#define CLUSTERS_ARCH "ifp-clusters"
#define MAX_CLUSTERS 65536
#define MAX_INPUTS 46340 /* n*n distances must fit an int index */
#define MAX_SLOTS (1ull << 28) /* clusters x layers x d_ffn: each ifp_mask_t reserves d_ffn per layer */

/* ---------------------------------------------------------------- table memory */

/* freq[l] points into one block of n_layers * d_ffn counts, like mask kept[]. */
static int cluster_init(ifp_cluster_t *c, int n_layers, int d_ffn) {
    c->uni = ifp_mask_new(n_layers, d_ffn);
    c->medoid = ifp_mask_new(n_layers, d_ffn);
    c->freq = calloc((size_t)n_layers, sizeof *c->freq);
    int32_t *block = calloc((size_t)n_layers * d_ffn, sizeof *block);
    if (!c->uni || !c->medoid || !c->freq || !block) {
        free(block);
        return IFP_ENOMEM;
    }
    for (int l = 0; l < n_layers; l++) c->freq[l] = block + (size_t)l * d_ffn;
    return IFP_OK;
}

void ifp_cluster_table_destroy(ifp_cluster_table_t **tp) {
    if (!tp || !*tp) return;
    ifp_cluster_table_t *t = *tp;
    for (int i = 0; t->c && i < t->n_clusters; i++) {
        ifp_mask_destroy(&t->c[i].uni);
        ifp_mask_destroy(&t->c[i].medoid);
        if (t->c[i].freq) free(t->c[i].freq[0]);
        free(t->c[i].freq);
    }
    free(t->c);
    free(t);
    *tp = NULL;
}

static ifp_cluster_table_t *table_new(int n_clusters, int n_layers, int d_ffn, int keep) {
    ifp_cluster_table_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_layers = n_layers, t->d_ffn = d_ffn, t->keep = keep;
    if (!(t->c = calloc((size_t)n_clusters, sizeof *t->c))) {
        free(t);
        return NULL;
    }
    t->n_clusters = n_clusters;
    for (int i = 0; i < n_clusters; i++)
        if (cluster_init(&t->c[i], n_layers, d_ffn)) {
            ifp_cluster_table_destroy(&t);
            return NULL;
        }
    return t;
}

/* ---------------------------------------------------------------- table checks */

/* The invariants of a table, checked before saving and after loading:
 * every member mask keeps `keep` channels per layer, so a union layer holds
 * >= keep channels and its frequencies (each in 1..members) sum to at most
 * members*keep — exactly that when the union is untrimmed, and then the
 * medoid (a member) lies inside it. */
static int table_check(const ifp_cluster_table_t *t, const char *path, ifp_err_t *err) {
    if (t->n_clusters < 1 || t->n_clusters > MAX_CLUSTERS)
        return ifp_errf(err, IFP_EFORMAT, "%s: %d clusters, need 1..%d", path, t->n_clusters, MAX_CLUSTERS);
    if (t->keep < 1 || t->keep > t->d_ffn)
        return ifp_errf(err, IFP_EFORMAT, "%s: keep %d outside 1..%d", path, t->keep, t->d_ffn);
    for (int c = 0; c < t->n_clusters; c++) {
        const ifp_cluster_t *cl = &t->c[c];
        int64_t members = cl->members;
        if (cl->members < 0) return ifp_errf(err, IFP_EFORMAT, "%s: cluster %d: %d members", path, c, cl->members);
        for (int k = 0; k < 2; k++) {
            const ifp_mask_t *m = k ? cl->medoid : cl->uni;
            if (m->n_layers != t->n_layers || m->d_ffn != t->d_ffn)
                return ifp_errf(err, IFP_EINVAL, "%s: cluster %d: %s shape %dx%d, table %dx%d", path, c,
                                k ? "medoid" : "union", m->n_layers, m->d_ffn, t->n_layers, t->d_ffn);
            if (ifp_mask_validate(m, err))
                return ifp_err_prefix(err, "%s: cluster %d %s", path, c, k ? "medoid" : "union");
        }
        for (int l = 0; l < t->n_layers; l++) {
            int nu = cl->uni->n_kept[l], nm = cl->medoid->n_kept[l];
            if (members == 0) {
                if (nu || nm)
                    return ifp_errf(err, IFP_EFORMAT, "%s: cluster %d has no members but a non-empty layer %d", path,
                                    c, l);
                continue;
            }
            if (nm != t->keep)
                return ifp_errf(err, IFP_EFORMAT, "%s: cluster %d layer %d: medoid keeps %d channels, keep is %d",
                                path, c, l, nm, t->keep);
            if (nu < t->keep)
                return ifp_errf(err, IFP_EFORMAT, "%s: cluster %d layer %d: union has %d channels, fewer than keep %d",
                                path, c, l, nu, t->keep);
            int64_t sum = 0;
            for (int j = 0; j < nu; j++) {
                if (cl->freq[l][j] < 1 || cl->freq[l][j] > members)
                    return ifp_errf(err, IFP_EFORMAT, "%s: cluster %d layer %d: channel %d kept by %d members, need 1..%d",
                                    path, c, l, cl->uni->kept[l][j], cl->freq[l][j], cl->members);
                sum += cl->freq[l][j];
            }
            if (sum > members * t->keep)
                return ifp_errf(err, IFP_EFORMAT,
                                "%s: cluster %d layer %d: frequencies sum to %lld, more than %d members x keep %d", path,
                                c, l, (long long)sum, cl->members, t->keep);
            if (sum == members * t->keep &&
                ifp_kept_intersection(cl->medoid->kept[l], nm, cl->uni->kept[l], nu) != nm)
                return ifp_errf(err, IFP_EFORMAT, "%s: cluster %d layer %d: medoid not inside the (untrimmed) union",
                                path, c, l);
        }
    }
    return IFP_OK;
}

/* ---------------------------------------------------------------- GGUF files */

int ifp_cluster_table_save(const ifp_cluster_table_t *t, const char *path, ifp_err_t *err) {
    int rc = table_check(t, path, err);
    if (rc) return ifp_err_prefix(err, "refusing to save an invalid cluster table");
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    if (!w) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
    rc = ifp_gguf_writer_set_str(w, "general.architecture", CLUSTERS_ARCH);
    rc = rc ? rc : ifp_gguf_writer_set_u32(w, "ifp.mask.block_count", (uint32_t)t->n_layers);
    rc = rc ? rc : ifp_gguf_writer_set_u32(w, "ifp.mask.feed_forward_length", (uint32_t)t->d_ffn);
    rc = rc ? rc : ifp_gguf_writer_set_u32(w, "ifp.clusters.count", (uint32_t)t->n_clusters);
    rc = rc ? rc : ifp_gguf_writer_set_u32(w, "ifp.clusters.keep", (uint32_t)t->keep);
    char key[96];
    for (int c = 0; c < t->n_clusters && !rc; c++) {
        const ifp_cluster_t *cl = &t->c[c];
        snprintf(key, sizeof key, "ifp.cluster.%d.members", c);
        rc = ifp_gguf_writer_set_u32(w, key, (uint32_t)cl->members);
        for (int l = 0; l < t->n_layers && !rc; l++) {
            snprintf(key, sizeof key, "ifp.cluster.%d.union.%d", c, l);
            rc = ifp_gguf_writer_set_arr(w, key, IFP_GGUF_INT32, cl->uni->kept[l], (uint64_t)cl->uni->n_kept[l]);
            snprintf(key, sizeof key, "ifp.cluster.%d.medoid.%d", c, l);
            rc = rc ? rc
                    : ifp_gguf_writer_set_arr(w, key, IFP_GGUF_INT32, cl->medoid->kept[l],
                                              (uint64_t)cl->medoid->n_kept[l]);
            snprintf(key, sizeof key, "ifp.cluster.%d.freq.%d", c, l);
            rc = rc ? rc : ifp_gguf_writer_set_arr(w, key, IFP_GGUF_INT32, cl->freq[l], (uint64_t)cl->uni->n_kept[l]);
        }
    }
    if (rc) rc = ifp_errf(err, rc, "%s: out of memory building the cluster table", path);
    else rc = ifp_gguf_writer_write(w, path, err);
    ifp_gguf_writer_destroy(&w);
    return rc;
}

/* Reads INT32 array `key` (at most cap elements) into buf. */
static int read_list(const ifp_gguf_t *g, const char *path, const char *key, int cap, int32_t *buf, int *n,
                     ifp_err_t *err) {
    const ifp_gguf_kv_t *kv;
    *n = 0; /* defined on every path (ifp_errf's return value is not visible to the optimizer) */
    int rc = ifp_gguf_get_arr(g, key, IFP_GGUF_INT32, 0, &kv, err);
    if (rc) return rc;
    if (kv->arr_n > (uint64_t)cap)
        return ifp_errf(err, IFP_EFORMAT, "%s: %s has %llu elements, more than feed_forward_length %d", path, key,
                        (unsigned long long)kv->arr_n, cap);
    for (uint64_t j = 0; j < kv->arr_n; j++) buf[j] = (int32_t)ifp_gguf_arr_num(kv, j);
    *n = (int)kv->arr_n;
    return IFP_OK;
}

/* Reads a channel list into layer l of m (validated as a kept list). */
static int read_layer(const ifp_gguf_t *g, const char *path, const char *key, ifp_mask_t *m, int l, int32_t *buf,
                      ifp_err_t *err) {
    int n, rc = read_list(g, path, key, m->d_ffn, buf, &n, err);
    if (rc) return rc;
    if (ifp_mask_set_layer(m, l, buf, n, err)) {
        ifp_err_prefix(err, "%s: %s", path, key);
        return err ? (err->code = IFP_EFORMAT) : IFP_EFORMAT;
    }
    return IFP_OK;
}

static int read_u32(const ifp_gguf_t *g, const char *key, uint32_t lo, uint32_t hi, uint32_t *out, ifp_err_t *err) {
    int rc = ifp_gguf_get_u32(g, key, out, err);
    if (rc) return rc;
    if (*out < lo || *out > hi)
        return ifp_errf(err, IFP_EFORMAT, "%s: %s = %u, need %u..%u", ifp_gguf_path(g), key, *out, lo, hi);
    return IFP_OK;
}

int ifp_cluster_table_load(const char *path, ifp_cluster_table_t **out, ifp_err_t *err) {
    *out = NULL;
    ifp_gguf_t *g = NULL;
    ifp_cluster_table_t *t = NULL;
    char *arch = NULL, key[96];
    int32_t *buf = NULL;
    int rc = ifp_gguf_open(path, &g, err);
    if (rc) return rc;
    if ((rc = ifp_gguf_get_str(g, "general.architecture", &arch, err))) goto done;
    if (strcmp(arch, CLUSTERS_ARCH) != 0) {
        rc = ifp_errf(err, IFP_EFORMAT, "%s: general.architecture is '%s', expected '" CLUSTERS_ARCH "'%s", path, arch,
                      strcmp(arch, "ifp-mask") == 0 ? " (this is a mask file, not a cluster table)" : "");
        goto done;
    }
    uint32_t nl, df, count, keep, members;
    if ((rc = read_u32(g, "ifp.mask.block_count", 1, 4096, &nl, err)) ||
        (rc = read_u32(g, "ifp.mask.feed_forward_length", 1, 1u << 22, &df, err)) ||
        (rc = read_u32(g, "ifp.clusters.count", 1, MAX_CLUSTERS, &count, err)) ||
        (rc = read_u32(g, "ifp.clusters.keep", 1, df, &keep, err)))
        goto done;
    snprintf(key, sizeof key, "ifp.cluster.%u.members", count);
    if (ifp_gguf_find(g, key)) {
        rc = ifp_errf(err, IFP_EFORMAT, "%s: has key %s but ifp.clusters.count is %u", path, key, count);
        goto done;
    }
    for (uint32_t c = 0; c < count; c++) { /* before allocating: the file must hold every cluster */
        snprintf(key, sizeof key, "ifp.cluster.%u.members", c);
        if (!ifp_gguf_find(g, key)) {
            rc = ifp_errf(err, IFP_ENOTFOUND, "%s: missing required key %s (ifp.clusters.count is %u)", path, key, count);
            goto done;
        }
    }
    if ((uint64_t)count * nl * df > MAX_SLOTS) {
        rc = ifp_errf(err, IFP_EFORMAT, "%s: %u clusters x %u layers x %u channels is too large", path, count, nl, df);
        goto done;
    }
    t = table_new((int)count, (int)nl, (int)df, (int)keep);
    buf = malloc((size_t)df * sizeof *buf);
    if (!t || !buf) {
        rc = ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int c = 0; c < (int)count; c++) {
        ifp_cluster_t *cl = &t->c[c];
        snprintf(key, sizeof key, "ifp.cluster.%d.members", c);
        if ((rc = read_u32(g, key, 0, INT32_MAX, &members, err))) goto done;
        cl->members = (int)members;
        snprintf(key, sizeof key, "ifp.cluster.%d.union.%u", c, nl);
        if (ifp_gguf_find(g, key)) {
            rc = ifp_errf(err, IFP_EFORMAT, "%s: has key %s but ifp.mask.block_count is %u", path, key, nl);
            goto done;
        }
        for (int l = 0; l < (int)nl; l++) {
            snprintf(key, sizeof key, "ifp.cluster.%d.union.%d", c, l);
            if ((rc = read_layer(g, path, key, cl->uni, l, buf, err))) goto done;
            snprintf(key, sizeof key, "ifp.cluster.%d.medoid.%d", c, l);
            if ((rc = read_layer(g, path, key, cl->medoid, l, buf, err))) goto done;
            snprintf(key, sizeof key, "ifp.cluster.%d.freq.%d", c, l);
            int n;
            if ((rc = read_list(g, path, key, (int)df, cl->freq[l], &n, err))) goto done;
            if (n != cl->uni->n_kept[l]) {
                rc = ifp_errf(err, IFP_EFORMAT, "%s: %s has %d elements, the union layer has %d channels", path, key,
                              n, cl->uni->n_kept[l]);
                goto done;
            }
        }
    }
    if ((rc = table_check(t, path, err))) goto done;
    *out = t;
    t = NULL;
done:
    free(buf);
    free(arch);
    ifp_cluster_table_destroy(&t);
    ifp_gguf_close(&g);
    return rc;
}

int ifp_cluster_nearest(const ifp_cluster_table_t *t, const ifp_mask_t *m) {
    if (!t || !m || m->n_layers != t->n_layers || m->d_ffn != t->d_ffn) return -1;
    int best = -1;
    double bd = INFINITY;
    for (int c = 0; c < t->n_clusters; c++) {
        double d = ifp_mask_jaccard_distance(m, t->c[c].medoid);
        if (d < bd) bd = d, best = c;
    }
    return best;
}

/* ---------------------------------------------------------------- distances */

ifp_kmedoids_params_t ifp_kmedoids_default_params(void) {
    return (ifp_kmedoids_params_t){.k = 1, .seed = 0, .budget = 0, .max_iter = 100, .restarts = 8, .progress = 0};
}

static int same_shape(const ifp_mask_t *const *masks, int n, ifp_err_t *err) {
    if (n < 1 || n > MAX_INPUTS) return ifp_errf(err, IFP_EINVAL, "%d masks, need 1..%d", n, MAX_INPUTS);
    for (int i = 1; i < n; i++)
        if (masks[i]->n_layers != masks[0]->n_layers || masks[i]->d_ffn != masks[0]->d_ffn)
            return ifp_errf(err, IFP_EINVAL, "mask %d has shape %dx%d, mask 0 has %dx%d", i, masks[i]->n_layers,
                            masks[i]->d_ffn, masks[0]->n_layers, masks[0]->d_ffn);
    return IFP_OK;
}

int ifp_masks_common_keep(const ifp_mask_t *const *masks, int n, int *keep, ifp_err_t *err) {
    int rc = same_shape(masks, n, err);
    if (rc) return rc;
    int k = masks[0]->n_kept[0];
    for (int i = 0; i < n; i++)
        for (int l = 0; l < masks[i]->n_layers; l++)
            if (masks[i]->n_kept[l] != k || k < 1)
                return ifp_errf(err, IFP_EINVAL, "mask %d keeps %d channels in layer %d, mask 0 keeps %d in layer 0: "
                                "clustering needs the same K >= 1 everywhere", i, masks[i]->n_kept[l], l, k);
    *keep = k;
    return IFP_OK;
}

static int show_progress(int progress) { return progress && isatty(STDERR_FILENO); }

int ifp_mask_distance_matrix(const ifp_mask_t *const *masks, int n, double *dist, int progress, ifp_err_t *err) {
    int rc = same_shape(masks, n, err);
    if (rc) return rc;
    int n_layers = masks[0]->n_layers, wl = (masks[0]->d_ffn + 63) / 64;
    size_t W = (size_t)wl * n_layers;
    uint64_t *bits = malloc((size_t)n * W * sizeof *bits);
    int64_t *total = malloc((size_t)n * sizeof *total);
    if (!bits || !total) {
        free(bits), free(total);
        return ifp_errf(err, IFP_ENOMEM, "out of memory for %d mask bitsets", n);
    }
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < n_layers; l++) ifp_mask_layer_bits(masks[i], l, bits + i * W + (size_t)l * wl);
        total[i] = ifp_mask_total(masks[i]);
    }
    int show = show_progress(progress);
    for (int i = 0; i < n; i++) {
        const uint64_t *a = bits + i * W;
        dist[(size_t)i * n + i] = 0.0;
        for (int j = i + 1; j < n; j++) {
            const uint64_t *b = bits + j * W;
            int64_t inter = 0;
            for (size_t w = 0; w < W; w++) inter += __builtin_popcountll(a[w] & b[w]);
            int64_t uni = total[i] + total[j] - inter;
            /* the same expression as ifp_mask_jaccard_distance: equal bits */
            double d = uni == 0 ? 0.0 : 1.0 - (double)inter / (double)uni;
            dist[(size_t)i * n + j] = dist[(size_t)j * n + i] = d;
        }
        if (show && (i % 8 == 0 || i == n - 1)) fprintf(stderr, "\rdistance matrix: row %d/%d", i + 1, n);
    }
    if (show) fputc('\n', stderr);
    free(bits), free(total);
    return IFP_OK;
}

/* ---------------------------------------------------------------- k-medoids */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; } /* [0, 1) */

#define D(i, j) dist[(size_t)(i) * n + (j)]

/* k-medoids++: needs >= k distinct inputs, so some D(x) > 0 at every draw. */
static void seed_medoids(const double *dist, int n, int k, uint64_t *rng, int *medoid, double *dmin) {
    medoid[0] = (int)(rng_unit(rng) * n);
    for (int i = 0; i < n; i++) dmin[i] = D(medoid[0], i);
    for (int c = 1; c < k; c++) {
        double total = 0.0, acc = 0.0;
        for (int i = 0; i < n; i++) total += dmin[i] * dmin[i];
        double r = rng_unit(rng) * total;
        int pick = -1, last = -1;
        for (int i = 0; i < n && pick < 0; i++) {
            if (dmin[i] <= 0.0) continue;
            last = i;
            acc += dmin[i] * dmin[i];
            if (acc > r) pick = i;
        }
        medoid[c] = pick >= 0 ? pick : last; /* last: r rounded up to the total */
        for (int i = 0; i < n; i++)
            if (D(medoid[c], i) < dmin[i]) dmin[i] = D(medoid[c], i);
    }
}

/* Nearest medoid for every input (ties -> lower cluster index). */
static void assign_all(const double *dist, int n, int k, const int *medoid, int *assign) {
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < k; c++)
            if (D(medoid[c], i) < D(medoid[best], i)) best = c;
        assign[i] = best;
    }
}

/* Re-seeds each empty cluster with the input farthest from its medoid. */
static void fix_empty(const double *dist, int n, int k, int *medoid, int *assign, int *count) {
    for (int round = 0; round < k; round++) {
        memset(count, 0, (size_t)k * sizeof *count);
        for (int i = 0; i < n; i++) count[assign[i]]++;
        int empty = -1;
        for (int c = 0; c < k && empty < 0; c++)
            if (!count[c]) empty = c;
        if (empty < 0) return;
        int far = -1;
        double fd = 0.0;
        for (int i = 0; i < n; i++)
            if (D(medoid[assign[i]], i) > fd) fd = D(medoid[assign[i]], i), far = i;
        if (far < 0) return; /* every input sits on a medoid: nothing to split */
        medoid[empty] = far;
        assign_all(dist, n, k, medoid, assign);
    }
}

/* Moves each medoid to the member with the least summed distance to the
 * cluster, only when strictly better.  Returns whether any medoid moved. */
static int update_medoids(const double *dist, int n, int k, int *medoid, const int *assign, int *members) {
    int changed = 0;
    for (int c = 0; c < k; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (assign[i] == c) members[m++] = i;
        double best = 0.0;
        for (int j = 0; j < m; j++) best += D(medoid[c], members[j]);
        int bi = medoid[c];
        for (int a = 0; a < m; a++) {
            double s = 0.0;
            for (int j = 0; j < m && s < best; j++) s += D(members[a], members[j]);
            if (s < best) best = s, bi = members[a];
        }
        if (bi != medoid[c]) medoid[c] = bi, changed = 1;
    }
    return changed;
}

static double total_cost(const double *dist, int n, const int *medoid, const int *assign) {
    double cost = 0.0;
    for (int i = 0; i < n; i++) cost += D(medoid[assign[i]], i);
    return cost;
}

/* Renumbers clusters by their lowest member index (empty ones last). */
static void canonical_order(int n, int k, int *medoid, int *assign, int *scratch) {
    int *first = scratch, *order = scratch + k, *rank = scratch + 2 * k, *old = scratch + 3 * k;
    for (int c = 0; c < k; c++) first[c] = n, order[c] = c, old[c] = medoid[c];
    for (int i = n - 1; i >= 0; i--) first[assign[i]] = i;
    for (int a = 1; a < k; a++) /* insertion sort: k is small */
        for (int b = a; b > 0 && first[order[b]] < first[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    for (int c = 0; c < k; c++) rank[order[c]] = c, medoid[c] = old[order[c]];
    for (int i = 0; i < n; i++) assign[i] = rank[assign[i]];
}

int ifp_kmedoids(const double *dist, int n, const ifp_kmedoids_params_t *p, int *medoid, int *assign, double *cost,
                 ifp_err_t *err) {
    int k = p->k;
    if (n < 1 || n > MAX_INPUTS) return ifp_errf(err, IFP_EINVAL, "%d inputs, need 1..%d", n, MAX_INPUTS);
    if (k < 1 || k > n) return ifp_errf(err, IFP_EINVAL, "k = %d, need 1..%d (the number of inputs)", k, n);
    if (p->max_iter < 1 || p->restarts < 1)
        return ifp_errf(err, IFP_EINVAL, "max_iter %d and restarts %d must be >= 1", p->max_iter, p->restarts);
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = D(i, j) == 0.0;
        distinct += !dup;
    }
    if (k > distinct)
        return ifp_errf(err, IFP_EINVAL, "k = %d but the %d inputs hold only %d distinct masks", k, n, distinct);
    int *med = malloc((size_t)k * sizeof *med), *asg = malloc((size_t)n * sizeof *asg);
    int *scratch = malloc((size_t)(n > 4 * k ? n : 4 * k) * sizeof *scratch);
    double *dmin = malloc((size_t)n * sizeof *dmin), best = INFINITY;
    if (!med || !asg || !scratch || !dmin) {
        free(med), free(asg), free(scratch), free(dmin);
        return ifp_errf(err, IFP_ENOMEM, "out of memory for k-medoids on %d inputs", n);
    }
    int show = show_progress(p->progress);
    for (int r = 0; r < p->restarts; r++) {
        uint64_t rng = p->seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(r + 1));
        seed_medoids(dist, n, k, &rng, med, dmin);
        assign_all(dist, n, k, med, asg);
        fix_empty(dist, n, k, med, asg, scratch);
        int it = 0;
        while (it < p->max_iter && update_medoids(dist, n, k, med, asg, scratch)) {
            assign_all(dist, n, k, med, asg);
            fix_empty(dist, n, k, med, asg, scratch);
            it++;
        }
        double c = total_cost(dist, n, med, asg);
        if (show) fprintf(stderr, "\rk-medoids: restart %d/%d: cost %.4f after %d rounds   ", r + 1, p->restarts, c, it);
        if (c < best) {
            best = c;
            memcpy(medoid, med, (size_t)k * sizeof *med);
            memcpy(assign, asg, (size_t)n * sizeof *asg);
        }
    }
    if (show) fputc('\n', stderr);
    canonical_order(n, k, medoid, assign, scratch);
    if (cost) *cost = best;
    free(med), free(asg), free(scratch), free(dmin);
    return IFP_OK;
}
#undef D

/* ---------------------------------------------------------------- table build */

static int cmp_i64_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Union of cluster c's members in layer l, trimmed to budget (0 = off) by
 * (member count desc, channel asc); cnt, key, flag are d_ffn scratch. */
static void build_layer(const ifp_mask_t *const *masks, int n, const int *assign, int c, int l, int budget,
                        ifp_cluster_t *cl, int32_t *cnt, int64_t *key, unsigned char *flag) {
    int d = masks[0]->d_ffn, nu = 0;
    memset(cnt, 0, (size_t)d * sizeof *cnt);
    for (int i = 0; i < n; i++)
        if (assign[i] == c)
            for (int j = 0; j < masks[i]->n_kept[l]; j++) cnt[masks[i]->kept[l][j]]++;
    for (int j = 0; j < d; j++) flag[j] = cnt[j] > 0, nu += flag[j];
    if (budget > 0 && nu > budget) {
        int m = 0;
        for (int j = 0; j < d; j++)
            if (cnt[j]) key[m++] = (int64_t)cnt[j] * d + (d - 1 - j); /* bigger = more frequent, then lower j */
        qsort(key, (size_t)m, sizeof *key, cmp_i64_desc);
        memset(flag, 0, (size_t)d);
        for (int r = 0; r < budget; r++) flag[d - 1 - key[r] % d] = 1;
    }
    int u = 0;
    for (int j = 0; j < d; j++)
        if (flag[j]) cl->uni->kept[l][u] = j, cl->freq[l][u] = cnt[j], u++;
    cl->uni->n_kept[l] = u;
}

int ifp_cluster_table_build(const ifp_mask_t *const *masks, int n, int k, const int *medoid, const int *assign,
                            int budget, ifp_cluster_table_t **out, ifp_err_t *err) {
    *out = NULL;
    int keep, rc = ifp_masks_common_keep(masks, n, &keep, err);
    if (rc) return rc;
    int L = masks[0]->n_layers, d = masks[0]->d_ffn;
    if (k < 1 || k > n || k > MAX_CLUSTERS) return ifp_errf(err, IFP_EINVAL, "k = %d, need 1..%d", k, n);
    if (budget != 0 && (budget < keep || budget > d))
        return ifp_errf(err, IFP_EINVAL, "budget %d per layer is outside %d..%d (the masks keep K = %d channels; "
                        "a union cannot hold fewer)", budget, keep, d, keep);
    for (int i = 0; i < n; i++)
        if (assign[i] < 0 || assign[i] >= k)
            return ifp_errf(err, IFP_EINVAL, "input %d assigned to cluster %d, need 0..%d", i, assign[i], k - 1);
    for (int c = 0; c < k; c++)
        if (medoid[c] < 0 || medoid[c] >= n || assign[medoid[c]] != c)
            return ifp_errf(err, IFP_EINVAL, "cluster %d: medoid %d is not one of its members", c, medoid[c]);
    ifp_cluster_table_t *t = table_new(k, L, d, keep);
    int32_t *cnt = malloc((size_t)d * sizeof *cnt);
    int64_t *key = malloc((size_t)d * sizeof *key);
    unsigned char *flag = malloc((size_t)d);
    if (!t || !cnt || !key || !flag) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory building a %d-cluster table", k);
        goto done;
    }
    for (int i = 0; i < n; i++) t->c[assign[i]].members++;
    for (int c = 0; c < k; c++) {
        ifp_cluster_t *cl = &t->c[c];
        for (int l = 0; l < L; l++) {
            ifp_mask_set_layer(cl->medoid, l, masks[medoid[c]]->kept[l], masks[medoid[c]]->n_kept[l], NULL);
            build_layer(masks, n, assign, c, l, budget, cl, cnt, key, flag);
        }
    }
    if ((rc = table_check(t, "cluster table", err))) goto done; /* invariants: cannot fail */
    *out = t;
    t = NULL;
done:
    free(cnt), free(key), free(flag);
    ifp_cluster_table_destroy(&t);
    return rc;
}

int ifp_cluster_masks(const ifp_mask_t *const *masks, int n, const ifp_kmedoids_params_t *p,
                      ifp_cluster_table_t **out, int *assign, ifp_err_t *err) {
    *out = NULL;
    int keep, rc = ifp_masks_common_keep(masks, n, &keep, err);
    if (rc) return rc;
    if (p->budget != 0 && (p->budget < keep || p->budget > masks[0]->d_ffn))
        return ifp_errf(err, IFP_EINVAL, "budget %d per layer is outside %d..%d (the masks keep K = %d channels)",
                        p->budget, keep, masks[0]->d_ffn, keep);
    if (p->k < 1 || p->k > n) return ifp_errf(err, IFP_EINVAL, "k = %d, need 1..%d (the number of masks)", p->k, n);
    double *dist = malloc((size_t)n * n * sizeof *dist);
    int *medoid = malloc((size_t)p->k * sizeof *medoid), *asg = malloc((size_t)n * sizeof *asg);
    if (!dist || !medoid || !asg) rc = ifp_errf(err, IFP_ENOMEM, "out of memory for %d masks", n);
    if (!rc) rc = ifp_mask_distance_matrix(masks, n, dist, p->progress, err);
    if (!rc) rc = ifp_kmedoids(dist, n, p, medoid, asg, NULL, err);
    if (!rc) rc = ifp_cluster_table_build(masks, n, p->k, medoid, asg, p->budget, out, err);
    if (!rc && assign) memcpy(assign, asg, (size_t)n * sizeof *asg);
    free(dist), free(medoid), free(asg);
    return rc;
}
