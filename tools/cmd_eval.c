/* ifp eval — per-domain response-token perplexity of a JSONL data set under
 * one or more FFN mask modes (MODEL_CARD "Reproduction table").
 *
 * Modes (K = --keep, default the predictor's keep):
 *   dense   no mask;
 *   input   the predictor's top-K mask of [BOS] + prompt (first max_prompt_tokens);
 *   task    the predictor's mask of the domain's instruction line (--tasks JSON
 *           {"domain": "line"}, default tasks.json next to --data);
 *   static  top-K of the mean predictor score over the prompts of --calib
 *           (default: of every example of --data, scored or not);
 *   random  K channels per layer drawn uniformly, a fresh draw per example
 *           keyed by (--seed, example index);
 *   cluster the input mask -> nearest cluster medoid (--clusters) -> that
 *           cluster's union mask.
 * Everything is loaded once: the model, the tokenizer, the data (each example
 * tokenized as in core/ppl.h), the predictor and its prompt scores (shared by
 * the input, static and cluster modes).  Each mode then builds one mask per
 * scored example and runs core/ppl over all of them; a domain's cell is
 * exp(Σ nll / Σ tokens) over its examples, `all` is the token-weighted total. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "kernels.h"
#include "mask.h"
#include "model.h"
#include "ppl.h"
#include "predictor.h"
#include "tokenizer.h"
#include "tools.h"
#include "wmat.h"
#include "clock.h"

enum { M_DENSE, M_INPUT, M_TASK, M_STATIC, M_RANDOM, M_CLUSTER, M_COUNT };
static const char *const mode_names[M_COUNT] = {"dense", "input", "task", "static", "random", "cluster"};
/* modes that read the predictor */
static const int mode_needs_predictor[M_COUNT] = {0, 1, 1, 1, 0, 1};

typedef struct {
    const char *model, *predictor, *data, *modes, *clusters, *tasks, *calib, *csv, *wtype;
    int keep, threads;
    uint64_t seed;
} eval_args_t;

typedef struct {
    double nll;
    long tokens;
    int examples;
} cell_t;

typedef struct {
    eval_args_t a;
    int modes[M_COUNT], n_modes;
    ifp_model_t *m;
    ifp_tokenizer_t *tok;
    ifp_dataset_t *ds;
    ifp_predictor_t *pred;
    ifp_cluster_table_t *clusters;
    ifp_ppl_t *ppl;
    int keep; /* K for predicted and random masks */
    /* per example */
    int32_t **ids;
    int *len, *n_ctx;
    int *scored, n_scored;   /* indices of examples with >= 1 response token in the window */
    float *scores;           /* [n_ex × n_layers·d_ffn] predictor scores of the prompts, or NULL */
    ifp_mask_t **pred_mask;  /* [n_ex] per-input masks (scored examples), or NULL */
    ifp_mask_t **task_mask;  /* [n_domains] masks of the domains' instruction lines, or NULL */
    ifp_mask_t *static_mask; /* or NULL */
    cell_t *cells;           /* [n_modes × (n_domains + 1)] */
    double cluster_coverage; /* mean coverage of the predicted masks by their union */
    double *cluster_frac;    /* [n_layers] mean fraction of channels kept by the union */
    int *cluster_count;      /* [n_clusters × n_domains] examples assigned */
    int tty;
    const char *label; /* what the progress line is about */
} eval_t;

/* Prints "ifp eval: MESSAGE" on stderr; returns -1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ifp eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static void show_progress(const char *what, int done, int total) {
    fprintf(stderr, "\r%-8s %d/%d examples", what, done, total);
    if (done == total) fputs("\r\033[K", stderr);
}

/* core/ppl progress callback; ctx is the eval_t */
static void ppl_progress(void *ctx, int done, int total) {
    const eval_t *ev = ctx;
    show_progress(ev->label, done, total);
}

/* "dense,input" -> ev->modes; rejects unknown and repeated names. */
static int parse_modes(eval_t *ev, const char *list) {
    const char *s = list;
    while (*s) {
        size_t n = strcspn(s, ",");
        int found = -1;
        for (int k = 0; k < M_COUNT; k++)
            if (strlen(mode_names[k]) == n && !strncmp(s, mode_names[k], n)) found = k;
        if (found < 0)
            return fail("--mode: unknown mode '%.*s' (dense, input, task, static, random, cluster)", (int)n, s);
        for (int k = 0; k < ev->n_modes; k++)
            if (ev->modes[k] == found) return fail("--mode: '%s' is listed twice", mode_names[found]);
        ev->modes[ev->n_modes++] = found;
        s += n;
        if (*s == ',' && *++s == '\0') return fail("--mode: empty name after ',' in '%s'", list);
    }
    if (!ev->n_modes) return fail("--mode: no mode given");
    return 0;
}

static int opt_seen(const cli_opt_t *opts, const char *name) {
    for (const cli_opt_t *o = opts; o->name; o++)
        if (!strcmp(o->name, name)) return o->seen;
    return 0;
}

static int has_mode(const eval_t *ev, int mode) {
    for (int k = 0; k < ev->n_modes; k++)
        if (ev->modes[k] == mode) return 1;
    return 0;
}

/* Flags that only some modes read must come with one of them. */
static int check_flags(eval_t *ev, const cli_opt_t *opts) {
    const eval_args_t *a = &ev->a;
    if (!a->data) return fail("--data FILE.jsonl is required");
    for (int k = 0; k < ev->n_modes; k++)
        if (mode_needs_predictor[ev->modes[k]] && !a->predictor)
            return fail("mode '%s' needs --predictor P.gguf", mode_names[ev->modes[k]]);
    if (has_mode(ev, M_CLUSTER) && !a->clusters) return fail("mode 'cluster' needs --clusters C.gguf");
    static const struct {
        const char *opt;
        int mode;
    } only[] = {{"clusters", M_CLUSTER}, {"tasks", M_TASK}, {"calib", M_STATIC}, {"seed", M_RANDOM}};
    for (size_t i = 0; i < sizeof only / sizeof *only; i++)
        if (opt_seen(opts, only[i].opt) && !has_mode(ev, only[i].mode))
            return fail("--%s is only read by mode '%s'", only[i].opt, mode_names[only[i].mode]);
    int keep_seen = opt_seen(opts, "keep"), masked = 0;
    for (int k = 0; k < ev->n_modes; k++) masked |= ev->modes[k] != M_DENSE;
    if (keep_seen && !masked) return fail("--keep has no effect in mode dense");
    if (has_mode(ev, M_RANDOM) && !keep_seen && !a->predictor)
        return fail("mode 'random' needs --keep K (or a --predictor to take K from)");
    return 0;
}

/* Tokenizes every example; lists those with response tokens in the window. */
static int tokenize_data(eval_t *ev) {
    int n = ev->ds->n, ctx = ev->m->cfg.ctx;
    ev->ids = calloc((size_t)n, sizeof *ev->ids);
    ev->len = calloc((size_t)n, sizeof *ev->len);
    ev->n_ctx = calloc((size_t)n, sizeof *ev->n_ctx);
    ev->scored = calloc((size_t)n, sizeof *ev->scored);
    if (!ev->ids || !ev->len || !ev->n_ctx || !ev->scored) return fail("out of memory");
    for (int i = 0; i < n; i++) {
        const ifp_example_t *e = &ev->ds->ex[i];
        ifp_err_t err = {0};
        if (ifp_ppl_tokenize(ev->tok, e->prompt, e->response, ctx, &ev->ids[i], &ev->len[i], &ev->n_ctx[i], &err))
            return fail("%s: example %d: %s", ev->a.data, i + 1, err.msg);
        if (ev->len[i] > ev->n_ctx[i]) ev->scored[ev->n_scored++] = i;
    }
    if (!ev->n_scored) return fail("%s: no example has a response token inside the %d-token window", ev->a.data, ctx);
    return 0;
}

/* Predictor scores of the prompts: of every example when the static mask
 * comes from the data file, else of the scored ones; per-input masks too. */
static int predict_prompts(eval_t *ev) {
    int want_all = has_mode(ev, M_STATIC) && !ev->a.calib;
    int want_masks = has_mode(ev, M_INPUT) || has_mode(ev, M_CLUSTER);
    if (!want_all && !want_masks) return 0;
    int n = ev->ds->n, mp = ifp_predictor_max_prompt(ev->pred);
    size_t S = (size_t)ifp_predictor_n_layers(ev->pred) * (size_t)ifp_predictor_d_ffn(ev->pred);
    int32_t *buf = malloc((size_t)mp * sizeof *buf);
    ev->scores = malloc((size_t)n * S * sizeof *ev->scores);
    ev->pred_mask = calloc((size_t)n, sizeof *ev->pred_mask);
    char *is_scored = calloc((size_t)n, 1);
    int rc = (!buf || !ev->scores || !ev->pred_mask || !is_scored) ? fail("out of memory") : 0;
    for (int s = 0; !rc && s < ev->n_scored; s++) is_scored[ev->scored[s]] = 1;
    for (int i = 0; !rc && i < n; i++) {
        if (!want_all && !is_scored[i]) continue;
        ifp_err_t err = {0};
        int got = ifp_tokenizer_encode(ev->tok, ev->ds->ex[i].prompt, 1, buf, mp);
        if (got <= 0) {
            rc = fail("example %d: cannot tokenize the prompt for the predictor", i + 1);
        } else if (ifp_predictor_scores(ev->pred, buf, got < mp ? got : mp, ev->scores + (size_t)i * S, &err) ||
                   (want_masks && is_scored[i] &&
                    ifp_predictor_mask_from_scores(ev->pred, ev->scores + (size_t)i * S, ev->keep, &ev->pred_mask[i],
                                                   &err))) {
            rc = fail("example %d: %s", i + 1, err.msg);
        }
        if (ev->tty && (i % 16 == 15 || i + 1 == n)) show_progress("predict", i + 1, n);
    }
    free(buf);
    free(is_scored);
    return rc;
}

/* Masks of the domains' instruction lines, from a JSON object
 * {"domain": "instruction", ...}; every domain of the data needs one. */
static int task_masks(eval_t *ev) {
    ifp_mask_t **per_domain = ev->task_mask = calloc((size_t)ev->ds->n_domains, sizeof *ev->task_mask);
    if (!per_domain) return fail("out of memory");
    char path[4096];
    const char *file = ev->a.tasks;
    if (!file) { /* default: tasks.json next to the data file */
        const char *slash = strrchr(ev->a.data, '/');
        int dir = slash ? (int)(slash - ev->a.data) + 1 : 0;
        snprintf(path, sizeof path, "%.*stasks.json", dir, ev->a.data);
        if (access(path, R_OK) != 0) return fail("mode 'task' needs --tasks FILE.json (no %s)", path);
        file = path;
    }
    FILE *f = fopen(file, "rb");
    if (!f) return fail("--tasks: cannot open %s", file);
    char text[65536];
    size_t got = fread(text, 1, sizeof text - 1, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big) return fail("--tasks: %s is larger than 64 KiB", file);
    text[got] = '\0';
    cJSON *root = cJSON_Parse(text);
    int rc = 0;
    if (!cJSON_IsObject(root)) rc = fail("--tasks: %s is not a JSON object {\"domain\": \"instruction\", ...}", file);
    for (int d = 0; !rc && d < ev->ds->n_domains; d++) {
        const char *dom = ev->ds->domains[d];
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(root, dom);
        ifp_err_t err = {0};
        if (!cJSON_IsString(line) || !*line->valuestring) {
            rc = fail("--tasks: %s has no instruction line for domain '%s'", file, dom);
        } else if (ifp_predictor_mask_text(ev->pred, ev->tok, line->valuestring, ev->keep, &per_domain[d], &err)) {
            rc = fail("task line of '%s': %s", dom, err.msg);
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* The static mask: top-K of the mean predictor score over the prompts of
 * --calib, or of the data file (scores already computed). */
static int static_mask(eval_t *ev) {
    const ifp_config_t *c = &ev->m->cfg;
    ifp_err_t err = {0};
    if (ev->a.calib) {
        ifp_dataset_t *cal = NULL;
        int rc = ifp_dataset_load(ev->a.calib, &cal, &err);
        if (!rc) rc = ifp_predictor_static_mask(ev->pred, ev->tok, cal, ev->keep, NULL, &ev->static_mask, &err);
        ifp_dataset_destroy(&cal);
        return rc ? fail("--calib: %s", err.msg) : 0;
    }
    size_t S = (size_t)c->n_layers * (size_t)c->d_ffn;
    double *sum = calloc(S, sizeof *sum); /* in example order, as ifp_predictor_static_mask does */
    float *mean = malloc(S * sizeof *mean);
    int rc = (!sum || !mean) ? ifp_errf(&err, IFP_ENOMEM, "out of memory") : 0;
    for (int i = 0; !rc && i < ev->ds->n; i++)
        for (size_t j = 0; j < S; j++) sum[j] += ev->scores[(size_t)i * S + j];
    for (size_t j = 0; !rc && j < S; j++) mean[j] = (float)(sum[j] / ev->ds->n);
    if (!rc) rc = ifp_predictor_mask_from_scores(ev->pred, mean, ev->keep, &ev->static_mask, &err);
    free(sum), free(mean);
    return rc ? fail("static mask: %s", err.msg) : 0;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* K channels per layer drawn uniformly without replacement (partial
 * Fisher-Yates) from a stream keyed by (seed, example). */
static ifp_mask_t *random_mask(const ifp_config_t *c, int keep, uint64_t seed, int example, int32_t *perm) {
    ifp_mask_t *m = ifp_mask_new(c->n_layers, c->d_ffn);
    uint64_t st = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(example + 1));
    for (int l = 0; m && l < c->n_layers; l++) {
        for (int j = 0; j < c->d_ffn; j++) perm[j] = j;
        for (int j = 0; j < keep; j++) {
            int r = j + (int)(((unsigned __int128)splitmix64(&st) * (unsigned)(c->d_ffn - j)) >> 64);
            int32_t t = perm[j];
            perm[j] = perm[r], perm[r] = t;
        }
        qsort(perm, (size_t)keep, sizeof *perm, cmp_i32);
        if (ifp_mask_set_layer(m, l, perm, keep, NULL)) ifp_mask_destroy(&m);
    }
    return m;
}

/* Fills mask[i] for every scored example i (borrowed pointers); masks made
 * here are appended to owned[*n_owned]. */
static int build_masks(eval_t *ev, int mode, const ifp_mask_t **mask, ifp_mask_t **owned, int *n_owned) {
    const ifp_config_t *c = &ev->m->cfg;
    switch (mode) {
    case M_DENSE:
        return 0;
    case M_INPUT:
        for (int s = 0; s < ev->n_scored; s++) mask[ev->scored[s]] = ev->pred_mask[ev->scored[s]];
        return 0;
    case M_TASK:
        for (int s = 0; s < ev->n_scored; s++) {
            int i = ev->scored[s];
            mask[i] = ev->task_mask[ifp_dataset_domain_index(ev->ds, ev->ds->ex[i].domain)];
        }
        return 0;
    case M_STATIC:
        for (int s = 0; s < ev->n_scored; s++) mask[ev->scored[s]] = ev->static_mask;
        return 0;
    case M_RANDOM: {
        int32_t *perm = malloc((size_t)c->d_ffn * sizeof *perm);
        if (!perm) return fail("out of memory");
        for (int s = 0; s < ev->n_scored; s++) {
            ifp_mask_t *r = random_mask(c, ev->keep, ev->a.seed, ev->scored[s], perm);
            if (!r) break;
            owned[(*n_owned)++] = r;
            mask[ev->scored[s]] = r;
        }
        free(perm);
        return *n_owned < ev->n_scored ? fail("out of memory") : 0;
    }
    case M_CLUSTER: {
        const ifp_cluster_table_t *t = ev->clusters;
        int nd = ev->ds->n_domains;
        ev->cluster_coverage = 0.0;
        for (int s = 0; s < ev->n_scored; s++) {
            int i = ev->scored[s], k = ifp_cluster_nearest(t, ev->pred_mask[i]);
            if (k < 0) return fail("--clusters: the table has no cluster");
            const ifp_mask_t *u = t->c[k].uni;
            mask[i] = u;
            ev->cluster_coverage += ifp_mask_coverage(ev->pred_mask[i], u) / ev->n_scored;
            for (int l = 0; l < c->n_layers; l++) ev->cluster_frac[l] += (double)u->n_kept[l] / c->d_ffn / ev->n_scored;
            ev->cluster_count[k * nd + ifp_dataset_domain_index(ev->ds, ev->ds->ex[i].domain)]++;
        }
        return 0;
    }
    }
    return -1;
}

/* Runs one mode over the scored examples into its row of cells. */
static int run_mode(eval_t *ev, int row) {
    int mode = ev->modes[row], n = ev->ds->n, nd = ev->ds->n_domains;
    const ifp_mask_t **mask = calloc((size_t)n, sizeof *mask);
    ifp_mask_t **owned = calloc((size_t)n, sizeof *owned);
    ifp_ppl_item_t *items = calloc((size_t)ev->n_scored, sizeof *items);
    ifp_ppl_result_t *res = calloc((size_t)ev->n_scored, sizeof *res);
    int n_owned = 0, rc = (!mask || !owned || !items || !res) ? fail("out of memory") : 0;
    if (!rc) rc = build_masks(ev, mode, mask, owned, &n_owned);
    if (!rc) {
        for (int s = 0; s < ev->n_scored; s++) {
            int i = ev->scored[s];
            items[s] = (ifp_ppl_item_t){.ids = ev->ids[i], .n = ev->len[i], .n_ctx = ev->n_ctx[i], .mask = mask[i]};
        }
        ifp_err_t err = {0};
        double t0 = ifp_now_s();
        if (ifp_ppl_score(ev->ppl, items, ev->n_scored, res, &err)) {
            rc = fail("mode %s: %s", mode_names[mode], err.msg);
        } else if (ev->tty) {
            fprintf(stderr, "%s: %.1f s\n", mode_names[mode], ifp_now_s() - t0);
        }
    }
    cell_t *cells = ev->cells + (size_t)row * (nd + 1);
    for (int s = 0; !rc && s < ev->n_scored; s++) {
        int d = ifp_dataset_domain_index(ev->ds, ev->ds->ex[ev->scored[s]].domain);
        for (int k = 0; k < 2; k++) {
            cell_t *cl = &cells[k ? nd : d];
            cl->nll += res[s].nll;
            cl->tokens += res[s].n_tokens;
            cl->examples++;
        }
    }
    for (int k = 0; k < n_owned; k++) ifp_mask_destroy(&owned[k]);
    free(mask), free(owned), free(items), free(res);
    return rc;
}

static double cell_ppl(const cell_t *c) { return c->tokens ? exp(c->nll / (double)c->tokens) : NAN; }

static void print_table(const eval_t *ev) {
    int nd = ev->ds->n_domains;
    printf("response-token perplexity: %s (%d examples, %d with response tokens in the %d-token window)\n\n",
           ev->a.data, ev->ds->n, ev->n_scored, ev->m->cfg.ctx);
    printf("%-16s", "mode");
    for (int d = 0; d <= nd; d++)
        printf(" %10s", d < nd ? (*ev->ds->domains[d] ? ev->ds->domains[d] : "(none)") : "all");
    printf("\n");
    for (int r = 0; r < ev->n_modes; r++) {
        printf("%-16s", mode_names[ev->modes[r]]);
        for (int d = 0; d <= nd; d++) {
            const cell_t *c = &ev->cells[(size_t)r * (nd + 1) + d];
            if (c->tokens)
                printf(" %10.3f", cell_ppl(c));
            else
                printf(" %10s", "-");
        }
        printf("\n");
    }
    for (int k = 0; k < 2; k++) {
        printf("%-16s", k ? "response tokens" : "examples scored");
        for (int d = 0; d <= nd; d++) {
            const cell_t *c = &ev->cells[d];
            printf(" %10ld", k ? c->tokens : (long)c->examples);
        }
        printf("\n");
    }
    if (has_mode(ev, M_CLUSTER)) {
        const ifp_config_t *c = &ev->m->cfg;
        printf("\ncluster: mean coverage of the predicted masks %.4f; mean fraction of channels kept per layer:",
               ev->cluster_coverage);
        for (int l = 0; l < c->n_layers; l++) printf(" %.3f", ev->cluster_frac[l]);
        printf("\n%-16s", "cluster");
        for (int d = 0; d < nd; d++) printf(" %10s", ev->ds->domains[d]);
        printf("\n");
        for (int k = 0; k < ev->clusters->n_clusters; k++) {
            printf("%-16d", k);
            for (int d = 0; d < nd; d++) printf(" %10d", ev->cluster_count[k * nd + d]);
            printf("\n");
        }
    }
}

static int write_csv(const eval_t *ev) {
    FILE *f = fopen(ev->a.csv, "w");
    if (!f) return fail("--csv: cannot write %s", ev->a.csv);
    int nd = ev->ds->n_domains;
    fprintf(f, "mode,domain,ppl,examples,tokens\n");
    for (int r = 0; r < ev->n_modes; r++)
        for (int d = 0; d <= nd; d++) {
            const cell_t *c = &ev->cells[(size_t)r * (nd + 1) + d];
            fprintf(f, "%s,%s,%.6f,%d,%ld\n", mode_names[ev->modes[r]], d < nd ? ev->ds->domains[d] : "all",
                    cell_ppl(c), c->examples, c->tokens);
        }
    if (fclose(f) != 0) return fail("--csv: error writing %s", ev->a.csv);
    return 0;
}

/* Loads the model, data, predictor and clusters, with every check. */
static int load_all(eval_t *ev, const cli_opt_t *opts) {
    ifp_err_t err = {0};
    const eval_args_t *a = &ev->a;
    ifp_model_params_t mp = ifp_model_default_params();
    if (a->wtype) {
        ifp_ggml_type_t t;
        if (ifp_wtype_parse(a->wtype, &t, &err)) return fail("--type: %s", err.msg);
        mp.wtype = (int)t;
    }
    if (ifp_model_load(a->model, &mp, &ev->m, &err) || ifp_tokenizer_from_gguf(ev->m->gguf, &ev->tok, &err))
        return fail("%s", err.msg);
    const ifp_config_t *c = &ev->m->cfg;
    if (ifp_dataset_load(a->data, &ev->ds, &err)) return fail("--data: %s", err.msg);
    if (a->predictor) {
        if (ifp_predictor_load(a->predictor, &ev->pred, &err)) return fail("--predictor: %s", err.msg);
        if (ifp_predictor_check_target(ev->pred, c, &err)) return fail("--predictor: %s", err.msg);
    }
    int keep_seen = opt_seen(opts, "keep");
    ev->keep = keep_seen ? a->keep : ev->pred ? ifp_predictor_keep(ev->pred) : 0;
    if (keep_seen && a->keep > c->d_ffn)
        return fail("--keep %d exceeds the model's %d FFN channels per layer", a->keep, c->d_ffn);
    if (a->clusters) {
        if (ifp_cluster_table_load(a->clusters, &ev->clusters, &err)) return fail("--clusters: %s", err.msg);
        if (ev->clusters->n_layers != c->n_layers || ev->clusters->d_ffn != c->d_ffn)
            return fail("--clusters: %s holds %d×%d masks; the model has %d layers × %d channels", a->clusters,
                        ev->clusters->n_layers, ev->clusters->d_ffn, c->n_layers, c->d_ffn);
        ev->cluster_frac = calloc((size_t)c->n_layers, sizeof *ev->cluster_frac);
        ev->cluster_count = calloc((size_t)ev->clusters->n_clusters * ev->ds->n_domains, sizeof(int));
        if (!ev->cluster_frac || !ev->cluster_count) return fail("out of memory");
    }
    if (a->csv) { /* fail before the work, not after */
        FILE *f = fopen(a->csv, "a");
        if (!f) return fail("--csv: cannot write %s", a->csv);
        fclose(f);
    }
    ifp_ppl_params_t pp = ifp_ppl_default_params();
    if (ev->tty) {
        pp.progress = ppl_progress;
        pp.progress_ctx = ev;
    }
    if (ifp_ppl_new(ev->m, &pp, &ev->ppl, &err)) return fail("%s", err.msg);
    ev->cells = calloc((size_t)ev->n_modes * (ev->ds->n_domains + 1), sizeof *ev->cells);
    if (!ev->cells) return fail("out of memory");
    return 0;
}

static void free_all(eval_t *ev) {
    for (int i = 0; ev->ds && i < ev->ds->n; i++) {
        if (ev->ids) free(ev->ids[i]);
        if (ev->pred_mask) ifp_mask_destroy(&ev->pred_mask[i]);
    }
    for (int d = 0; ev->task_mask && d < ev->ds->n_domains; d++) ifp_mask_destroy(&ev->task_mask[d]);
    free(ev->task_mask);
    ifp_mask_destroy(&ev->static_mask);
    free(ev->ids), free(ev->len), free(ev->n_ctx), free(ev->scored), free(ev->scores), free(ev->pred_mask);
    free(ev->cells), free(ev->cluster_frac), free(ev->cluster_count);
    ifp_ppl_destroy(&ev->ppl);
    ifp_cluster_table_destroy(&ev->clusters);
    ifp_predictor_destroy(&ev->pred);
    ifp_dataset_destroy(&ev->ds);
    ifp_tokenizer_destroy(&ev->tok);
    ifp_model_free(&ev->m);
}

int ifp_cmd_eval(int argc, char **argv) {
    eval_t ev = {.a = {.modes = "dense", .threads = 1}};
    eval_args_t *a = &ev.a;
    cli_opt_t opts[] = {
        {"model", 'm', CLI_STR, &a->model, 0, 0, "model GGUF (default: the embedded ifp-mix)", 0},
        {"predictor", 0, CLI_STR, &a->predictor, 0, 0, "predictor GGUF (modes input, task, static, cluster)", 0},
        {"data", 'd', CLI_STR, &a->data, 0, 0, "JSONL with domain, prompt, response (required)", 0},
        {"mode", 0, CLI_STR, &a->modes, 0, 0, "comma list of dense,input,task,static,random,cluster (default dense)",
         0},
        {"clusters", 0, CLI_STR, &a->clusters, 0, 0, "cluster table (ifp cluster -o), for mode cluster", 0},
        {"tasks", 0, CLI_STR, &a->tasks, 0, 0,
         "JSON {domain: instruction} for mode task (default: DATA's dir/tasks.json)", 0},
        {"calib", 0, CLI_STR, &a->calib, 0, 0, "JSONL whose prompts make the static mask (default: --data)", 0},
        {"keep", 0, CLI_INT, &a->keep, 1, 1 << 20, "channels kept per layer (default: the predictor's)", 0},
        {"seed", 's', CLI_U64, &a->seed, 0, 9.0e18, "seed of mode random (a draw per example; default 0)", 0},
        {"csv", 0, CLI_STR, &a->csv, 0, 0, "write rows mode,domain,ppl,examples,tokens to this file", 0},
        {"threads", 't', CLI_INT, &a->threads, 1, 256, "OpenBLAS threads (default 1)", 0},
        {"type", 0, CLI_STR, &a->wtype, 0, 0, "hold the model's matrices as f32 | f16 | bf16 | q8_0 (default: as stored)",
         0},
        {0},
    };
    const char *pos_args[1];
    int n_pos;
    int rc = cli_parse("eval", argc, argv, 2, opts, pos_args, 0, &n_pos,
                       "--data FILE.jsonl [--model M] [--predictor P] [--mode dense,input,task,static,random,cluster]"
                       " [options]");
    if (rc) return rc > 0 ? 0 : 2;
    if (parse_modes(&ev, a->modes) || check_flags(&ev, opts)) return 2;
    if (!a->model) a->model = ifp_default_model();
    ifp_blas_threads(a->threads);
    ev.tty = isatty(STDERR_FILENO);
    int status = 1;
    if (load_all(&ev, opts) || tokenize_data(&ev) || (has_mode(&ev, M_TASK) && task_masks(&ev)) ||
        predict_prompts(&ev) || (has_mode(&ev, M_STATIC) && static_mask(&ev)))
        goto done;
    for (int r = 0; r < ev.n_modes; r++) {
        ev.label = mode_names[ev.modes[r]];
        if (ev.tty) show_progress(ev.label, 0, ev.n_scored);
        if (run_mode(&ev, r)) goto done;
    }
    print_table(&ev);
    if (a->csv && write_csv(&ev)) goto done;
    status = 0;
done:
    free_all(&ev);
    return status;
}
