/* test_cluster.c — k-medoids over masks: the distance matrix against
 * ifp_mask_jaccard_distance, hand-made distance matrices with known answers,
 * planted clusters recovered, determinism, budget trimming against brute
 * force, and `ifp cluster` end to end on the ifp-mix model, predictor and
 * calibration set (k = 4: domains separate as in the model card). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "mask.h"
#include "testutil.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"

static uint64_t g_rng = 0x9e3779b9;
static uint32_t rnd(uint32_t n) {
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545f4914f6cdd1dull) >> 33) % n;
}

/* A random K-subset of [0, D) per layer. */
static ifp_mask_t *random_k_mask(int L, int D, int K) {
    ifp_mask_t *m = ifp_mask_new(L, D);
    unsigned char *in = calloc((size_t)D, 1);
    for (int l = 0; l < L; l++) {
        memset(in, 0, (size_t)D);
        for (int c = 0; c < K;) {
            int j = (int)rnd((uint32_t)D);
            if (!in[j]) in[j] = 1, c++;
        }
        int n = 0;
        for (int j = 0; j < D; j++)
            if (in[j]) m->kept[l][n++] = j;
        m->n_kept[l] = n;
    }
    free(in);
    return m;
}

/* proto with s channels per layer swapped for channels it lacks (still K). */
static ifp_mask_t *noisy(const ifp_mask_t *proto, int s) {
    ifp_mask_t *m = ifp_mask_clone(proto);
    int D = m->d_ffn;
    unsigned char *in = malloc((size_t)D);
    for (int l = 0; l < m->n_layers; l++) {
        memset(in, 0, (size_t)D);
        for (int i = 0; i < m->n_kept[l]; i++) in[m->kept[l][i]] = 1;
        for (int t = 0; t < s; t++) {
            int out, add;
            do out = (int)rnd((uint32_t)D); while (!in[out]);
            do add = (int)rnd((uint32_t)D); while (in[add]);
            in[out] = 0, in[add] = 1;
        }
        int n = 0;
        for (int j = 0; j < D; j++)
            if (in[j]) m->kept[l][n++] = j;
    }
    free(in);
    return m;
}

static void free_masks(ifp_mask_t **m, int n) {
    for (int i = 0; i < n; i++) ifp_mask_destroy(&m[i]);
    free(m);
}

static void assert_tables_equal(const ifp_cluster_table_t *a, const ifp_cluster_table_t *b) {
    assert_int_equal(a->n_clusters, b->n_clusters);
    assert_int_equal(a->keep, b->keep);
    for (int c = 0; c < a->n_clusters; c++) {
        assert_int_equal(a->c[c].members, b->c[c].members);
        assert_true(ifp_mask_equal(a->c[c].uni, b->c[c].uni));
        assert_true(ifp_mask_equal(a->c[c].medoid, b->c[c].medoid));
        for (int l = 0; l < a->n_layers; l++)
            assert_memory_equal(a->c[c].freq[l], b->c[c].freq[l], (size_t)a->c[c].uni->n_kept[l] * sizeof(int32_t));
    }
}

/* Checks every cluster's union and frequencies against the members by brute
 * force: channels by (count desc, index asc), the first min(|U|, budget). */
static void check_table_brute(const ifp_mask_t *const *masks, int n, const int *assign, const ifp_cluster_table_t *t,
                              int budget) {
    int D = t->d_ffn;
    int *cnt = malloc((size_t)D * sizeof *cnt);
    for (int c = 0; c < t->n_clusters; c++) {
        int members = 0;
        for (int i = 0; i < n; i++) members += assign[i] == c;
        assert_int_equal(t->c[c].members, members);
        int is_member = 0; /* the medoid is one of the members */
        for (int i = 0; i < n; i++) is_member |= assign[i] == c && ifp_mask_equal(masks[i], t->c[c].medoid);
        assert_true(is_member);
        for (int l = 0; l < t->n_layers; l++) {
            memset(cnt, 0, (size_t)D * sizeof *cnt);
            for (int i = 0; i < n; i++)
                if (assign[i] == c)
                    for (int j = 0; j < masks[i]->n_kept[l]; j++) cnt[masks[i]->kept[l][j]]++;
            int nu = 0;
            for (int j = 0; j < D; j++) nu += cnt[j] > 0;
            int want = budget && nu > budget ? budget : nu;
            assert_int_equal(t->c[c].uni->n_kept[l], want);
            for (int u = 0; u < want; u++) {
                int j = t->c[c].uni->kept[l][u];
                assert_int_equal(t->c[c].freq[l][u], cnt[j]);
                int better = 0; /* channels that outrank j */
                for (int x = 0; x < D; x++) better += cnt[x] > cnt[j] || (cnt[x] == cnt[j] && cnt[x] && x < j);
                assert_true(cnt[j] > 0 && better < want);
            }
        }
    }
    free(cnt);
}

/* ---------------------------------------------------------------- distances */

static void test_distance_matrix(void **state) {
    (void)state;
    int n = 40, L = 3, D = 130;
    ifp_mask_t **m = malloc((size_t)n * sizeof *m);
    for (int i = 0; i < n; i++) {
        m[i] = ifp_mask_new(L, D);
        for (int l = 0; l < L; l++) {
            int dens = i == 0 ? 0 : (int)rnd(101), c = 0;
            for (int j = 0; j < D; j++)
                if ((int)rnd(100) < dens) m[i]->kept[l][c++] = j;
            m[i]->n_kept[l] = c;
        }
    }
    double *dist = malloc((size_t)n * n * sizeof *dist);
    assert_int_equal(ifp_mask_distance_matrix((const ifp_mask_t *const *)m, n, dist, 0, NULL), IFP_OK);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) assert_true(dist[i * n + j] == ifp_mask_jaccard_distance(m[i], m[j]));
    ifp_err_t err = {0};
    ifp_mask_t *odd = ifp_mask_new(L, D + 1), *keep_m[2] = {m[1], odd};
    assert_int_equal(ifp_mask_distance_matrix((const ifp_mask_t *const *)keep_m, 2, dist, 0, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "mask 1 has shape 3x131"));
    int k;
    assert_int_equal(ifp_masks_common_keep((const ifp_mask_t *const *)m, n, &k, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "same K"));
    ifp_mask_destroy(&odd);
    free(dist);
    free_masks(m, n);
}

/* ---------------------------------------------------------------- k-medoids */

static double *line_dist(const double *x, int n) {
    double *d = malloc((size_t)n * n * sizeof *d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) d[i * n + j] = (x[i] > x[j] ? x[i] - x[j] : x[j] - x[i]) / 100.0;
    return d;
}

static void test_kmedoids_known(void **state) {
    (void)state;
    const double x[] = {30, 0, 11, 1, 2, 10, 12};
    int n = 7, medoid[7], assign[7];
    double *d = line_dist(x, n), cost;
    ifp_kmedoids_params_t p = ifp_kmedoids_default_params();
    ifp_err_t err = {0};
    for (uint64_t seed = 0; seed < 20; seed++) {
        p.k = 3, p.seed = seed;
        assert_int_equal(ifp_kmedoids(d, n, &p, medoid, assign, &cost, &err), IFP_OK);
        /* clusters numbered by lowest member: {30} {0,1,2} {10,11,12} */
        const int want_assign[] = {0, 1, 2, 1, 1, 2, 2}, want_medoid[] = {0, 3, 2};
        assert_memory_equal(assign, want_assign, sizeof want_assign);
        assert_memory_equal(medoid, want_medoid, sizeof want_medoid);
        assert_true(cost > 0.04 - 1e-12 && cost < 0.04 + 1e-12);
    }
    p.k = 1; /* the 1-medoid: least row sum (x = 10) */
    assert_int_equal(ifp_kmedoids(d, n, &p, medoid, assign, &cost, &err), IFP_OK);
    assert_int_equal(medoid[0], 5);
    p.k = 7;
    assert_int_equal(ifp_kmedoids(d, n, &p, medoid, assign, &cost, &err), IFP_OK);
    assert_true(cost == 0.0);
    for (int i = 0; i < n; i++) assert_int_equal(assign[i], i), assert_int_equal(medoid[i], i);
    p.k = 8;
    assert_int_equal(ifp_kmedoids(d, n, &p, medoid, assign, &cost, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "k = 8, need 1..7"));
    p.k = 0;
    assert_int_equal(ifp_kmedoids(d, n, &p, medoid, assign, &cost, &err), IFP_EINVAL);
    p.k = 2, p.max_iter = 0;
    assert_int_equal(ifp_kmedoids(d, n, &p, medoid, assign, &cost, &err), IFP_EINVAL);
    free(d);

    /* duplicates: 3 inputs, 2 distinct masks */
    const double y[] = {5, 0, 5};
    d = line_dist(y, 3);
    p = ifp_kmedoids_default_params();
    p.k = 3;
    assert_int_equal(ifp_kmedoids(d, 3, &p, medoid, assign, &cost, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "only 2 distinct masks"));
    p.k = 2;
    assert_int_equal(ifp_kmedoids(d, 3, &p, medoid, assign, &cost, &err), IFP_OK);
    assert_int_equal(assign[0], 0), assert_int_equal(assign[1], 1), assert_int_equal(assign[2], 0);
    assert_true(cost == 0.0);
    free(d);
}

typedef struct {
    ifp_mask_t **masks;
    int *label, n;
} planted_t;

/* k prototypes (random K-subsets: pairwise Jaccard distance ~0.86) with
 * members of unequal sizes, each a prototype with a few channels swapped;
 * inputs shuffled. */
static planted_t planted(int k, int L, int D, int K) {
    planted_t p = {0};
    ifp_mask_t **proto = malloc((size_t)k * sizeof *proto);
    for (int g = 0; g < k; g++) proto[g] = random_k_mask(L, D, K), p.n += 8 + 7 * g;
    p.masks = malloc((size_t)p.n * sizeof *p.masks);
    p.label = malloc((size_t)p.n * sizeof *p.label);
    for (int g = 0, i = 0; g < k; g++)
        for (int r = 0; r < 8 + 7 * g; r++, i++) p.masks[i] = noisy(proto[g], (int)rnd(6)), p.label[i] = g;
    for (int i = p.n - 1; i > 0; i--) {
        int j = (int)rnd((uint32_t)i + 1);
        ifp_mask_t *tm = p.masks[i];
        int tl = p.label[i];
        p.masks[i] = p.masks[j], p.label[i] = p.label[j];
        p.masks[j] = tm, p.label[j] = tl;
    }
    for (int g = 0; g < k; g++) ifp_mask_destroy(&proto[g]);
    free(proto);
    return p;
}

static void test_planted(void **state) {
    (void)state;
    const int k = 4, L = 3, D = 256, K = 64;
    planted_t pl = planted(k, L, D, K);
    const ifp_mask_t *const *cm = (const ifp_mask_t *const *)pl.masks;
    int *assign = malloc((size_t)pl.n * sizeof *assign), *assign2 = malloc((size_t)pl.n * sizeof *assign2);
    ifp_err_t err = {0};
    ifp_cluster_table_t *first = NULL;
    for (uint64_t seed = 0; seed < 6; seed++) {
        ifp_kmedoids_params_t p = ifp_kmedoids_default_params();
        p.k = k, p.seed = seed * 7919;
        ifp_cluster_table_t *t = NULL, *t2 = NULL;
        assert_int_equal(ifp_cluster_masks(cm, pl.n, &p, &t, assign, &err), IFP_OK);
        /* a bijection planted group <-> cluster */
        int map[4] = {-1, -1, -1, -1};
        for (int i = 0; i < pl.n; i++) {
            if (map[pl.label[i]] < 0) map[pl.label[i]] = assign[i];
            assert_int_equal(assign[i], map[pl.label[i]]);
        }
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++) assert_int_not_equal(map[a], map[b]);
        assert_int_equal(t->keep, K);
        check_table_brute(cm, pl.n, assign, t, 0);
        for (int i = 0; i < pl.n; i++) {
            assert_true(ifp_mask_coverage(pl.masks[i], t->c[assign[i]].uni) == 1.0);
            assert_int_equal(ifp_cluster_nearest(t, pl.masks[i]), assign[i]);
        }
        /* the same seed gives the same table; other seeds the same partition
         * (clusters are numbered by their lowest member, not by seeding) */
        assert_int_equal(ifp_cluster_masks(cm, pl.n, &p, &t2, assign2, &err), IFP_OK);
        assert_tables_equal(t, t2);
        assert_memory_equal(assign, assign2, (size_t)pl.n * sizeof *assign);
        if (!first) first = t, t = NULL;
        else assert_tables_equal(first, t);
        ifp_cluster_table_destroy(&t), ifp_cluster_table_destroy(&t2);
    }
    ifp_cluster_table_destroy(&first);
    free(assign), free(assign2);
    free_masks(pl.masks, pl.n);
    free(pl.label);
}

/* ---------------------------------------------------------------- budgets */

static void test_budget_small(void **state) {
    (void)state;
    const int32_t rows[4][4] = {{0, 1, 2, 3}, {0, 1, 2, 4}, {0, 1, 5, 6}, {0, 7, 8, 9}};
    ifp_mask_t *m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = ifp_mask_new(1, 16);
        assert_int_equal(ifp_mask_set_layer(m[i], 0, rows[i], 4, NULL), IFP_OK);
    }
    const ifp_mask_t *const *cm = (const ifp_mask_t *const *)m;
    int assign[4] = {0, 0, 0, 0}, medoid[1] = {1};
    ifp_err_t err = {0};
    ifp_cluster_table_t *t = NULL;
    assert_int_equal(ifp_cluster_table_build(cm, 4, 1, medoid, assign, 5, &t, &err), IFP_OK);
    const int32_t want[] = {0, 1, 2, 3, 4}, want_f[] = {4, 3, 2, 1, 1}; /* ties among 1s -> lower index */
    assert_int_equal(t->c[0].uni->n_kept[0], 5);
    assert_memory_equal(t->c[0].uni->kept[0], want, sizeof want);
    assert_memory_equal(t->c[0].freq[0], want_f, sizeof want_f);
    assert_true(ifp_mask_equal(t->c[0].medoid, m[1]));
    char path[] = "/tmp/ifp_test_cluster_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    ifp_cluster_table_t *back = NULL;
    assert_int_equal(ifp_cluster_table_save(t, path, &err), IFP_OK);
    assert_int_equal(ifp_cluster_table_load(path, &back, &err), IFP_OK);
    assert_tables_equal(t, back);
    ifp_cluster_table_destroy(&t), ifp_cluster_table_destroy(&back);
    assert_int_equal(ifp_cluster_table_build(cm, 4, 1, medoid, assign, 4, &t, &err), IFP_OK);
    assert_memory_equal(t->c[0].uni->kept[0], want, 4 * sizeof *want);
    ifp_cluster_table_destroy(&t);
    assert_int_equal(ifp_cluster_table_build(cm, 4, 1, medoid, assign, 12, &t, &err), IFP_OK);
    assert_int_equal(t->c[0].uni->n_kept[0], 10); /* budget above the union: untrimmed */
    ifp_cluster_table_destroy(&t);
    assert_int_equal(ifp_cluster_table_build(cm, 4, 1, medoid, assign, 3, &t, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "budget 3 per layer is outside 4..16"));
    assert_int_equal(ifp_cluster_table_build(cm, 4, 1, medoid, assign, 17, &t, &err), IFP_EINVAL);
    int bad_assign[4] = {0, 1, 0, 0};
    assert_int_equal(ifp_cluster_table_build(cm, 4, 1, medoid, bad_assign, 0, &t, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "input 1 assigned to cluster 1"));
    int two_medoids[2] = {0, 0}, two_assign[4] = {0, 0, 0, 0};
    assert_int_equal(ifp_cluster_table_build(cm, 4, 2, two_medoids, two_assign, 0, &t, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "cluster 1: medoid 0 is not one of its members"));
    ifp_kmedoids_params_t p = ifp_kmedoids_default_params();
    p.k = 2, p.budget = 2;
    assert_int_equal(ifp_cluster_masks(cm, 4, &p, &t, NULL, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "K = 4"));
    assert_null(t);
    unlink(path);
    for (int i = 0; i < 4; i++) ifp_mask_destroy(&m[i]);
}

static void test_budget_random(void **state) {
    (void)state;
    for (int trial = 0; trial < 12; trial++) {
        int L = 1 + (int)rnd(3), D = 24 + (int)rnd(100), K = 2 + (int)rnd(10), n = 6 + (int)rnd(40);
        ifp_mask_t **m = malloc((size_t)n * sizeof *m);
        for (int i = 0; i < n; i++) m[i] = random_k_mask(L, D, K);
        const ifp_mask_t *const *cm = (const ifp_mask_t *const *)m;
        ifp_kmedoids_params_t p = ifp_kmedoids_default_params();
        p.k = 1 + (int)rnd(4), p.seed = trial, p.budget = K + (int)rnd((uint32_t)(3 * K));
        if (p.budget > D) p.budget = D;
        int *assign = malloc((size_t)n * sizeof *assign);
        ifp_cluster_table_t *t = NULL;
        ifp_err_t err = {0};
        assert_int_equal(ifp_cluster_masks(cm, n, &p, &t, assign, &err), IFP_OK);
        check_table_brute(cm, n, assign, t, p.budget);
        /* members' kept channels inside the union = the union's frequencies */
        for (int c = 0; c < t->n_clusters; c++) {
            int64_t inside = 0, freq = 0;
            for (int i = 0; i < n; i++)
                if (assign[i] == c) inside += ifp_mask_intersection_size(m[i], t->c[c].uni);
            for (int l = 0; l < L; l++)
                for (int u = 0; u < t->c[c].uni->n_kept[l]; u++) freq += t->c[c].freq[l][u];
            assert_int_equal(inside, freq);
        }
        ifp_cluster_table_destroy(&t);
        free(assign);
        free_masks(m, n);
    }
}

#define N_DOM 5
static const char *const g_domains[N_DOM] = {"math", "code", "story", "qa", "instruct"};

/* Parses the summary table: per cluster, members and per-domain counts. */
static int parse_summary(const char *out, int counts[][N_DOM], int *members, int max_k) {
    const char *h = strstr(out, "\ncluster members");
    assert_non_null(h);
    char header[512];
    sscanf(h + 1, "%511[^\n]", header);
    int col[N_DOM] = {0}, n_col = 0;
    char *save, *tok = strtok_r(header, " ", &save);
    for (int i = 0; tok && strcmp(tok, "union"); i++, tok = strtok_r(NULL, " ", &save))
        for (int d = 0; d < N_DOM; d++)
            if (!strcmp(tok, g_domains[d])) col[d] = i - 2, n_col++;
    assert_int_equal(n_col, N_DOM);
    const char *line = strchr(h + 1, '\n') + 1;
    int k = 0;
    for (; k < max_k && *line >= '0' && *line <= '9'; k++) {
        int v[2 + N_DOM];
        assert_int_equal(sscanf(line, "%d %d %d %d %d %d %d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]), 7);
        assert_int_equal(v[0], k);
        members[k] = v[1];
        for (int d = 0; d < N_DOM; d++) counts[k][d] = v[2 + col[d]];
        line = strchr(line, '\n') + 1;
    }
    return k;
}

static void test_cli_ifp_mix(void **state) {
    (void)state;
    char dir[] = "/tmp/ifp_test_cluster_cli_XXXXXX", out[128], out_b[128];
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/k4.gguf", dir);
    snprintf(out_b, sizeof out_b, "%s/k4b.gguf", dir);
    const char *model = MODEL_PATH("ifp-mix/ifp-mix.gguf"), *pred = MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf");
    const char *calib = IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl";
    const char *argv[] = {IFP_BIN, "cluster", "--model", model, "--predictor", pred, "--calib", calib,
                          "--k", "4", "--seed", "0", "-o", out, NULL};
    tu_run_t r = tu_run(argv);
    if (r.status) fprintf(stderr, "stderr: %s\n", r.err);
    assert_int_equal(r.status, 0);
    printf("%s", r.out);
    int counts[8][N_DOM], members[8];
    assert_int_equal(parse_summary(r.out, counts, members, 8), 4);
    /* the model card's k = 4 clusters: story | math + qa | code | instruct.
     * Each group must sit (almost) whole in one cluster of its own. */
    const int groups[4][2] = {{2, -1}, {0, 3}, {1, -1}, {4, -1}}; /* domain indices */
    const int totals[N_DOM] = {100, 64, 100, 100, 81};
    int used[4] = {0};
    for (int g = 0; g < 4; g++) {
        int best = -1, best_n = -1;
        for (int c = 0; c < 4; c++) {
            int in = counts[c][groups[g][0]] + (groups[g][1] >= 0 ? counts[c][groups[g][1]] : 0);
            if (in > best_n) best_n = in, best = c;
        }
        int total = totals[groups[g][0]] + (groups[g][1] >= 0 ? totals[groups[g][1]] : 0);
        assert_true(best_n >= total * 9 / 10);       /* >= 90% of the group in its cluster */
        assert_true(best_n >= members[best] * 9 / 10); /* and >= 90% of the cluster is the group */
        assert_false(used[best]);
        used[best] = 1;
    }
    assert_non_null(strstr(r.out, "mean member coverage by its cluster's union: 1.0000"));
    free(r.out), free(r.err);

    ifp_cluster_table_t *t = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_cluster_table_load(out, &t, &err), IFP_OK);
    assert_int_equal(t->n_clusters, 4);
    assert_int_equal(t->n_layers, 4);
    assert_int_equal(t->d_ffn, 768);
    assert_int_equal(t->keep, 256);
    int sum = 0;
    for (int c = 0; c < 4; c++) {
        sum += t->c[c].members;
        assert_int_equal(t->c[c].members, members[c]);
        for (int l = 0; l < 4; l++) assert_in_range(t->c[c].uni->n_kept[l], 256, 400);
    }
    assert_int_equal(sum, 445);
    ifp_cluster_table_destroy(&t);

    /* with a budget every union layer has at most B channels */
    const char *argv_b[] = {IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "4",
                            "--budget", "280", "-o", out_b, NULL};
    r = tu_run(argv_b);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "budget 280"));
    assert_int_equal(ifp_cluster_table_load(out_b, &t, &err), IFP_OK);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 4; l++) assert_in_range(t->c[c].uni->n_kept[l], 256, 280);
    ifp_cluster_table_destroy(&t);
    free(r.out), free(r.err);

    struct {
        const char *argv[16];
        int status;
        const char *msg;
    } bad[] = {
        {{IFP_BIN, "cluster", "--calib", calib, "--k", "4", "-o", out, NULL}, 2, "--predictor is required"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "-o", out, NULL}, 2, "--k is required"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "4", NULL}, 2, "-o is required"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "0", "-o", out, NULL}, 2, "out of range"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "x", "-o", out, NULL}, 2, "integer"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "446", "-o", out, NULL}, 2,
         "446 clusters need at least as many prompts"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "4", "--budget", "100", "-o", out, NULL},
         2, "--budget: 100 is out of range [256, 768]"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "4", "--keep", "769", "-o", out, NULL},
         2, "--keep: 769 is out of range [1, 768]"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", "/nonexistent.jsonl", "--k", "4", "-o", out, NULL}, 2,
         "--calib: cannot read '/nonexistent.jsonl'"},
        {{IFP_BIN, "cluster", "--predictor", "/no/pred.gguf", "--calib", calib, "--k", "4", "-o", out, NULL}, 2,
         "--predictor: cannot read"},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", calib, "--k", "4", "-o", "/nonexistent/dir/x.gguf",
          NULL}, 2, "-o: cannot write into directory '/nonexistent/dir'"},
        {{IFP_BIN, "cluster", "--model", MODEL_PATH("stories260K.gguf"), "--predictor", pred, "--calib", calib, "--k",
          "4", "-o", out, NULL}, 1, "172"},
        {{IFP_BIN, "cluster", "--predictor", model, "--calib", calib, "--k", "4", "-o", out, NULL}, 1,
         "ifp cluster: "},
        {{IFP_BIN, "cluster", "--predictor", pred, "--calib", model, "--k", "4", "-o", out, NULL}, 1,
         "ifp cluster: "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = tu_run(bad[i].argv);
        if (r.status != bad[i].status || !strstr(r.err, bad[i].msg))
            fprintf(stderr, "case %zu: status %d stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, bad[i].status);
        assert_non_null(strstr(r.err, bad[i].msg));
        assert_null(strstr(r.err, "Sanitizer"));
        free(r.out), free(r.err);
    }
    unlink(out), unlink(out_b), rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance_matrix),
        cmocka_unit_test(test_kmedoids_known),
        cmocka_unit_test(test_planted),
        cmocka_unit_test(test_budget_small),
        cmocka_unit_test(test_budget_random),
        cmocka_unit_test(test_cli_ifp_mix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
