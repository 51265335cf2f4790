/* fuzz_mask_file — mask files and cluster tables (core/mask.h loaders).
 *
 * The input is written to an in-memory file and loaded with both
 * ifp_mask_load and ifp_cluster_table_load (general.architecture decides
 * which one accepts it).  A loaded mask must validate, survive save + load
 * unchanged and pack for the wire; a loaded cluster table must hold the
 * invariants its header states, find each cluster's medoid nearest to a
 * cluster at distance 0, and survive save + load unchanged. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mask.h"

static void walk_mask(const ifp_mask_t *m) {
    ifp_err_t err = {0};
    FUZZ_CHECK(m->n_layers >= 1 && m->d_ffn >= 1, "shape %dx%d", m->n_layers, m->d_ffn);
    FUZZ_CHECK(ifp_mask_validate(m, &err) == 0, "loaded mask is invalid: %s", err.msg);
    int64_t total = 0;
    for (int l = 0; l < m->n_layers; l++) {
        FUZZ_CHECK(m->n_kept[l] >= 0 && m->n_kept[l] <= m->d_ffn, "layer %d keeps %d of %d", l, m->n_kept[l],
                   m->d_ffn);
        ifp_fuzz_touch(m->kept[l], (size_t)m->n_kept[l] * sizeof *m->kept[l]);
        total += m->n_kept[l];
    }
    FUZZ_CHECK(ifp_mask_total(m) == total, "ifp_mask_total %d, layers sum to %lld", ifp_mask_total(m),
               (long long)total);
}

static void mask(const char *path) {
    ifp_err_t err = {0};
    ifp_mask_t *m = NULL, *again = NULL;
    int rc = ifp_mask_load(path, &m, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(m == NULL, "failed load left *out set");
        return;
    }
    walk_mask(m);
    const char *tmp = ifp_fuzz_tmp_path("mask.gguf");
    FUZZ_CHECK(ifp_mask_save(m, tmp, &err) == 0, "saving a loaded mask: %s", err.msg);
    FUZZ_CHECK(ifp_mask_load(tmp, &again, &err) == 0, "loading a saved mask: %s", err.msg);
    FUZZ_CHECK(ifp_mask_equal(m, again), "save + load changed the mask");
    ifp_mask_destroy(&again);
    /* the shard receives masks packed: every layer must keep something for that */
    size_t n = ifp_wire_mask_bytes(m->n_layers, m->d_ffn);
    int empty = 0;
    for (int l = 0; l < m->n_layers; l++) empty |= m->n_kept[l] == 0;
    if (n <= (1u << 20)) {
        uint8_t *buf = malloc(n);
        FUZZ_CHECK(buf != NULL, "out of memory");
        ifp_wire_mask_pack(m, buf);
        rc = ifp_wire_mask_unpack(buf, n, m->n_layers, m->d_ffn, &again, &err);
        FUZZ_CHECK(empty ? rc != 0 : rc == 0 && ifp_mask_equal(m, again), "pack + unpack: %d (%s)", rc, err.msg);
        ifp_mask_destroy(&again);
        free(buf);
    }
    ifp_mask_destroy(&m);
}

static void same_table(const ifp_cluster_table_t *a, const ifp_cluster_table_t *b) {
    FUZZ_CHECK(a->n_clusters == b->n_clusters && a->n_layers == b->n_layers && a->d_ffn == b->d_ffn &&
                   a->keep == b->keep,
               "save + load changed the table's header");
    for (int c = 0; c < a->n_clusters; c++) {
        const ifp_cluster_t *x = &a->c[c], *y = &b->c[c];
        FUZZ_CHECK(x->members == y->members && ifp_mask_equal(x->uni, y->uni) && ifp_mask_equal(x->medoid, y->medoid),
                   "save + load changed cluster %d", c);
        for (int l = 0; l < a->n_layers; l++)
            FUZZ_CHECK(memcmp(x->freq[l], y->freq[l], (size_t)x->uni->n_kept[l] * sizeof *x->freq[l]) == 0,
                       "save + load changed cluster %d's frequencies", c);
    }
}

static void table(const char *path) {
    ifp_err_t err = {0};
    ifp_cluster_table_t *t = NULL, *again = NULL;
    int rc = ifp_cluster_table_load(path, &t, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(t == NULL, "failed load left *out set");
        return;
    }
    FUZZ_CHECK(t->n_clusters >= 1 && t->keep >= 1 && t->keep <= t->d_ffn, "table header %d clusters, keep %d",
               t->n_clusters, t->keep);
    for (int c = 0; c < t->n_clusters; c++) {
        const ifp_cluster_t *cl = &t->c[c];
        FUZZ_CHECK(cl->members >= 0, "cluster %d: %d members", c, cl->members);
        walk_mask(cl->uni);
        walk_mask(cl->medoid);
        for (int l = 0; l < t->n_layers; l++) {
            ifp_fuzz_touch(cl->freq[l], (size_t)cl->uni->n_kept[l] * sizeof *cl->freq[l]);
            for (int j = 0; j < cl->uni->n_kept[l]; j++)
                FUZZ_CHECK(cl->freq[l][j] >= 1 && cl->freq[l][j] <= cl->members, "cluster %d layer %d: freq %d", c,
                           l, cl->freq[l][j]);
        }
        if (c < 8) { /* nearest: a cluster whose medoid is this one's (distance 0) */
            int k = ifp_cluster_nearest(t, cl->medoid);
            FUZZ_CHECK(k >= 0 && k < t->n_clusters, "nearest = %d", k);
            FUZZ_CHECK(ifp_mask_jaccard_distance(t->c[k].medoid, cl->medoid) == 0,
                       "nearest to medoid %d is cluster %d at a distance > 0", c, k);
        }
    }
    const char *tmp = ifp_fuzz_tmp_path("clusters.gguf");
    FUZZ_CHECK(ifp_cluster_table_save(t, tmp, &err) == 0, "saving a loaded table: %s", err.msg);
    FUZZ_CHECK(ifp_cluster_table_load(tmp, &again, &err) == 0, "loading a saved table: %s", err.msg);
    same_table(t, again);
    ifp_cluster_table_destroy(&again);
    ifp_cluster_table_destroy(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = ifp_fuzz_memfile(0, data, size);
    mask(path);
    table(path);
    return 0;
}
