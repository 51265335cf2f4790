/* ifp cluster — k-medoids over the predicted masks of a calibration set.
 *
 * Every prompt is tokenized with the model's tokenizer (BOS + prompt), the
 * predictor gives its mask, k-medoids (Jaccard distance, core/cluster.h)
 * groups the masks, and the cluster table (each cluster's per-layer union,
 * maybe trimmed to --budget, its medoid, member counts and frequencies) is
 * written as GGUF.  A summary goes to stdout, progress to the terminal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cluster.h"
#include "dataset.h"
#include "kernels.h"
#include "model.h"
#include "predictor.h"
#include "tokenizer.h"
#include "tools.h"

typedef struct {
    const char *model, *predictor, *calib, *out;
    int k, budget, keep, restarts, threads;
    uint64_t seed;
} cluster_args_t;

/* A readable input file, else a message naming the flag. */
static int check_input(const char *flag, const char *path) {
    if (access(path, R_OK) == 0) return 0;
    fprintf(stderr, "ifp cluster: --%s: cannot read '%s': %s\n", flag, path, strerror(errno));
    return -1;
}

/* The output's directory must exist and be writable (checked before the work). */
static int check_output(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (n >= sizeof dir) n = sizeof dir - 1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    if (slash && n == 0) strcpy(dir, "/");
    if (access(dir, W_OK) == 0) return 0;
    fprintf(stderr, "ifp cluster: -o: cannot write into directory '%s': %s\n", dir, strerror(errno));
    return -1;
}

/* ids = BOS + prompt, grown as needed.  Returns the count or -1. */
static int encode(ifp_tokenizer_t *tok, const char *text, int32_t **ids, int *cap) {
    for (;;) {
        int n = ifp_tokenizer_encode(tok, text, 1, *ids, *cap);
        if (n < 0 || n <= *cap) return n < 0 ? -1 : n;
        int32_t *grown = realloc(*ids, (size_t)n * sizeof **ids);
        if (!grown) return -1;
        *ids = grown, *cap = n;
    }
}

static void print_summary(const cluster_args_t *a, const ifp_dataset_t *ds, const ifp_mask_t *const *masks,
                          const ifp_cluster_table_t *t, const int *medoid, const int *assign, const double *dist,
                          double cost) {
    int n = ds->n, L = t->n_layers;
    char budget[32] = "none";
    if (a->budget) snprintf(budget, sizeof budget, "%d", a->budget);
    printf("ifp cluster: %d prompts, k = %d, keep %d of %d channels per layer, budget %s, seed %llu\n", n,
           t->n_clusters, t->keep, t->d_ffn, budget, (unsigned long long)a->seed);
    printf("total Jaccard distance to medoids %.4f (mean %.4f)\n", cost, cost / n);
    printf("\n%-7s %7s", "cluster", "members");
    for (int d = 0; d < ds->n_domains; d++) printf(" %*s", (int)strlen(ds->domains[d]) > 5 ? (int)strlen(ds->domains[d]) : 5,
                                                   *ds->domains[d] ? ds->domains[d] : "(none)");
    printf("  %-*s %8s %9s %7s\n", 5 * L + 2, "union per layer", "coverage", "mean dist", "medoid");
    double sum_cov = 0.0;
    for (int c = 0; c < t->n_clusters; c++) {
        printf("%-7d %7d", c, t->c[c].members);
        for (int d = 0; d < ds->n_domains; d++) {
            int cnt = 0;
            for (int i = 0; i < n; i++) cnt += assign[i] == c && strcmp(ds->ex[i].domain, ds->domains[d]) == 0;
            printf(" %*d", (int)strlen(ds->domains[d]) > 5 ? (int)strlen(ds->domains[d]) : 5, cnt);
        }
        printf("  ");
        for (int l = 0; l < L; l++) printf("%5d", t->c[c].uni->n_kept[l]);
        double cov = 0.0, md = 0.0;
        for (int i = 0; i < n; i++)
            if (assign[i] == c) {
                cov += ifp_mask_coverage(masks[i], t->c[c].uni);
                md += dist[(size_t)i * n + medoid[c]];
            }
        sum_cov += cov;
        int m = t->c[c].members;
        printf("   %8.4f %9.4f %7d\n", cov / m, md / m, medoid[c]);
    }
    printf("\nmean member coverage by its cluster's union: %.4f; mean union size per layer:", sum_cov / n);
    for (int l = 0; l < L; l++) {
        double s = 0.0;
        for (int c = 0; c < t->n_clusters; c++) s += t->c[c].uni->n_kept[l];
        printf(" %.1f", s / t->n_clusters);
    }
    printf(" (of %d)\nwrote %s\n", t->d_ffn, a->out);
}

int ifp_cmd_cluster(int argc, char **argv) {
    cluster_args_t a = {.k = 0, .restarts = 8, .threads = 1};
    cli_opt_t opts[] = {
        {"model", 'm', CLI_STR, &a.model, 0, 0, "model GGUF: tokenizer and target shape (default: the embedded ifp-mix)", 0},
        {"predictor", 0, CLI_STR, &a.predictor, 0, 0, "predictor GGUF (required)", 0},
        {"calib", 0, CLI_STR, &a.calib, 0, 0, "calibration prompts, JSON lines with \"prompt\" (required)", 0},
        {"k", 'k', CLI_INT, &a.k, 1, 1 << 20, "number of clusters, 1..prompts (required)", 0},
        {"seed", 's', CLI_U64, &a.seed, 0, 9.0e18, "k-medoids seed (default 0)", 0},
        {"budget", 0, CLI_INT, &a.budget, 0, 1 << 22, "trim unions to at most B channels per layer, K..d_ffn (default 0 = no)", 0},
        {"keep", 0, CLI_INT, &a.keep, 0, 1 << 22, "channels kept per layer by each mask (default: the predictor's)", 0},
        {"restarts", 0, CLI_INT, &a.restarts, 1, 1000, "k-medoids seedings, the cheapest wins (default 8)", 0},
        {"threads", 't', CLI_INT, &a.threads, 1, 256, "OpenBLAS threads (default 1)", 0},
        {"out", 'o', CLI_STR, &a.out, 0, 0, "output cluster table GGUF (required)", 0},
        {0},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("cluster", argc, argv, 2, opts, pos, 0, &n_pos,
                       "--predictor P.gguf --calib FILE.jsonl --k N -o OUT.gguf [--model M.gguf] [options]");
    if (rc) return rc > 0 ? 0 : 2;
    const char *missing = !a.predictor ? "--predictor" : !a.calib ? "--calib" : !opts[3].seen ? "--k" : !a.out ? "-o" : NULL;
    if (missing) {
        fprintf(stderr, "ifp cluster: %s is required (see ifp cluster --help)\n", missing);
        return 2;
    }
    if (!a.model) a.model = ifp_default_model();
    if (check_input("model", a.model) || check_input("predictor", a.predictor) || check_input("calib", a.calib) ||
        check_output(a.out))
        return 2;
    ifp_blas_threads(a.threads);

    ifp_err_t err = {0};
    ifp_dataset_t *ds = NULL;
    ifp_gguf_t *g = NULL;
    ifp_tokenizer_t *tok = NULL;
    ifp_predictor_t *pred = NULL;
    ifp_mask_t **masks = NULL;
    ifp_cluster_table_t *table = NULL;
    int32_t *ids = NULL;
    int *assign = NULL, *medoid = NULL, cap = 256, status = 1, n = 0;
    double *dist = NULL, cost = 0.0;
    ifp_config_t cfg;
    if (ifp_dataset_load(a.calib, &ds, &err) || ifp_gguf_open(a.model, &g, &err) ||
        ifp_config_from_gguf(g, &cfg, &err) || ifp_tokenizer_from_gguf(g, &tok, &err) ||
        ifp_predictor_load(a.predictor, &pred, &err) || ifp_predictor_check_target(pred, &cfg, &err)) {
        fprintf(stderr, "ifp cluster: %s\n", err.msg);
        goto done;
    }
    ifp_gguf_close(&g);
    n = ds->n;
    int keep = opts[6].seen ? a.keep : ifp_predictor_keep(pred);
    if (n < 1 || a.k > n) {
        fprintf(stderr, "ifp cluster: --k: %d clusters need at least as many prompts; %s has %d\n", a.k, a.calib, n);
        status = 2;
        goto done;
    }
    if (keep < 1 || keep > cfg.d_ffn) {
        fprintf(stderr, "ifp cluster: --keep: %d is out of range [1, %d] (the model's d_ffn)\n", keep, cfg.d_ffn);
        status = 2;
        goto done;
    }
    if (a.budget && (a.budget < keep || a.budget > cfg.d_ffn)) {
        fprintf(stderr, "ifp cluster: --budget: %d is out of range [%d, %d]: a union holds at least the K = %d "
                "channels of each member mask, at most d_ffn\n", a.budget, keep, cfg.d_ffn, keep);
        status = 2;
        goto done;
    }
    masks = calloc((size_t)n, sizeof *masks);
    ids = malloc((size_t)cap * sizeof *ids);
    assign = malloc((size_t)n * sizeof *assign);
    medoid = malloc((size_t)a.k * sizeof *medoid);
    dist = malloc((size_t)n * n * sizeof *dist);
    if (!masks || !ids || !assign || !medoid || !dist) goto oom;
    int tty = isatty(STDERR_FILENO);
    for (int i = 0; i < n; i++) {
        int n_ids = encode(tok, ds->ex[i].prompt, &ids, &cap);
        if (n_ids < 1) {
            fprintf(stderr, "ifp cluster: %s: prompt %d: cannot tokenize\n", a.calib, i + 1);
            goto done;
        }
        if (ifp_predictor_mask(pred, ids, n_ids, keep, &masks[i], &err)) {
            fprintf(stderr, "ifp cluster: %s: prompt %d: %s\n", a.calib, i + 1, err.msg);
            goto done;
        }
        if (tty && (i % 8 == 0 || i == n - 1)) fprintf(stderr, "\rpredicting masks: %d/%d", i + 1, n);
    }
    if (tty) fputc('\n', stderr);
    const ifp_mask_t *const *cm = (const ifp_mask_t *const *)masks;
    ifp_kmedoids_params_t kp = ifp_kmedoids_default_params();
    kp.k = a.k, kp.seed = a.seed, kp.budget = a.budget, kp.restarts = a.restarts, kp.progress = 1;
    if (ifp_mask_distance_matrix(cm, n, dist, 1, &err) || ifp_kmedoids(dist, n, &kp, medoid, assign, &cost, &err) ||
        ifp_cluster_table_build(cm, n, a.k, medoid, assign, a.budget, &table, &err) ||
        ifp_cluster_table_save(table, a.out, &err)) {
        fprintf(stderr, "ifp cluster: %s\n", err.msg);
        goto done;
    }
    print_summary(&a, ds, cm, table, medoid, assign, dist, cost);
    status = 0;
    goto done;
oom:
    fprintf(stderr, "ifp cluster: out of memory\n");
done:
    for (int i = 0; masks && i < n; i++) ifp_mask_destroy(&masks[i]);
    free(masks), free(ids), free(assign), free(medoid), free(dist);
    ifp_cluster_table_destroy(&table);
    ifp_predictor_destroy(&pred);
    ifp_tokenizer_destroy(&tok);
    ifp_gguf_close(&g);
    ifp_dataset_destroy(&ds);
    return status;
}
