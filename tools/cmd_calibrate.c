/* ifp calibrate — fit a sparsity predictor for a model that was never trained
 * with one (core/calib.h has the method).
 *
 *   1. importance pass: per calibration example, per layer and FFN channel,
 *      mean (|silu(gate x) * (up x)| * ||down column||)^2 over the example's
 *      [BOS] + prompt + response (+ EOS) under the model;
 *   2. feature pass: the backbone's final-norm state at the last prompt token;
 *   3. fit the head on importance / layer mean (fixed fc1, ridge fc2 with
 *      per-output cross-validated lambdas, optional Adam epochs);
 *   4. layer gating on calibration perplexity (out-of-fold predictions);
 *   5. write backbone + head as a predictor GGUF, reload it with
 *      ifp_predictor_load and check its scores against the fitted head;
 *   6. with --holdout: response perplexity on held-out examples under dense,
 *      static (top-K of the mean calibration importance), per-input
 *      (the new predictor), random and oracle masks, as a table on stdout. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calib.h"
#include "cli.h"
#include "dataset.h"
#include "kernels.h"
#include "mask.h"
#include "model.h"
#include "ppl.h"
#include "predictor.h"
#include "tokenizer.h"
#include "tools.h"
#include "clock.h"

typedef struct {
    const char *model, *backbone, *calib, *holdout, *out;
    int keep, hidden, epochs, folds, limit, gate_n, threads;
    float lambda, lr;
    uint64_t seed;
} cal_args_t;

/* One data set, tokenized for the model (ppl convention) and the backbone. */
typedef struct {
    ifp_dataset_t *ds;
    int n;                /* examples used (--limit applies to the calibration set) */
    int32_t **ids;        /* [n] model sequence: [BOS] + prompt + response + EOS, <= ctx */
    int *len, *n_ctx;     /* [n] */
    int32_t **pids;       /* [n] backbone input: [BOS] + prompt, <= max_prompt */
    int *plen;            /* [n] */
    float *imp;           /* [n × S] importance */
    float *X;             /* [n × D] features */
} cal_set_t;

typedef struct {
    cal_args_t a;
    ifp_model_t *m, *bb_owned;
    const ifp_model_t *bb; /* = m when the backbone is the model file */
    ifp_tokenizer_t *tok, *bb_tok_owned, *bb_tok;
    cal_set_t cal, held;
    int S, D, max_prompt, tty;
    double *scale;         /* [n_layers] mean calibration importance: T = imp / scale */
    float *mean_t;         /* [S] mean calibration target: the static scores */
    ifp_head_t *head;
    float lambda;
    int *gate;             /* [n_layers] */
    ifp_predictor_t *pred;
} cal_t;

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ifp calibrate: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static void progress(const cal_t *c, const char *what, int done, int total) {
    if (!c->tty) return;
    fprintf(stderr, "\r%s: %d/%d examples", what, done, total);
    if (done == total) fputs("\r\033[K", stderr);
}

static void ppl_progress(void *ctx, int done, int total) { progress(ctx, "perplexity", done, total); }
static void fit_log(void *ud, const char *line) {
    (void)ud;
    fprintf(stderr, "  %s\n", line);
}

static void set_free(cal_set_t *s) {
    for (int i = 0; s->ids && i < s->n; i++) free(s->ids[i]);
    for (int i = 0; s->pids && i < s->n; i++) free(s->pids[i]);
    free(s->ids), free(s->len), free(s->n_ctx), free(s->pids), free(s->plen), free(s->imp), free(s->X);
    ifp_dataset_destroy(&s->ds);
}

/* Loads path and tokenizes its first `limit` examples (limit <= 0: all). */
static int set_load(cal_t *c, cal_set_t *s, const char *path, int limit) {
    ifp_err_t err = {0};
    if (ifp_dataset_load(path, &s->ds, &err)) return fail("%s", err.msg);
    s->n = limit > 0 && limit < s->ds->n ? limit : s->ds->n;
    size_t n = (size_t)s->n;
    s->ids = calloc(n, sizeof *s->ids), s->pids = calloc(n, sizeof *s->pids);
    s->len = malloc(n * sizeof *s->len), s->n_ctx = malloc(n * sizeof *s->n_ctx), s->plen = malloc(n * sizeof *s->plen);
    s->imp = malloc(n * c->S * sizeof *s->imp), s->X = malloc(n * c->D * sizeof *s->X);
    if (!s->ids || !s->pids || !s->len || !s->n_ctx || !s->plen || !s->imp || !s->X) return fail("out of memory");
    for (int i = 0; i < s->n; i++) {
        const ifp_example_t *e = &s->ds->ex[i];
        if (ifp_ppl_tokenize(c->tok, e->prompt, e->response, c->m->cfg.ctx, &s->ids[i], &s->len[i], &s->n_ctx[i], &err))
            return fail("%s: example %d: %s", path, i + 1, err.msg);
        if (!(s->pids[i] = malloc((size_t)c->max_prompt * sizeof *s->pids[i]))) return fail("out of memory");
        int k = ifp_tokenizer_encode(c->bb_tok, e->prompt, 1, s->pids[i], c->max_prompt);
        if (k < 1) return fail("%s: example %d: cannot tokenize the prompt for the backbone", path, i + 1);
        s->plen[i] = k < c->max_prompt ? k : c->max_prompt;
    }
    return 0;
}

/* Importance of every example of s, then its features (timed). */
static int passes(cal_t *c, cal_set_t *s, const char *name) {
    ifp_err_t err = {0};
    ifp_calib_t *km = NULL, *kb = NULL;
    int rc = 0;
    double t0 = ifp_now_s();
    long rows = 0;
    if (ifp_calib_new(c->m, 0, &km, &err) || ifp_calib_new(c->bb, 0, &kb, &err)) {
        rc = fail("%s", err.msg);
        goto done;
    }
    for (int i = 0; i < s->n && !rc; i++) {
        /* the rows the model reads when the example is scored: the last
         * token is only a target, unless nothing is scored */
        int n = s->len[i] > s->n_ctx[i] ? s->len[i] - 1 : s->len[i];
        if (ifp_calib_importance(km, s->ids[i], n, s->imp + (size_t)i * c->S, &err))
            rc = fail("%s example %d: importance: %s", name, i + 1, err.msg);
        rows += n;
        progress(c, "importance", i + 1, s->n);
    }
    double t1 = ifp_now_s();
    for (int i = 0; i < s->n && !rc; i++) {
        if (ifp_calib_feature(kb, s->pids[i], s->plen[i], s->X + (size_t)i * c->D, &err))
            rc = fail("%s example %d: feature: %s", name, i + 1, err.msg);
        progress(c, "features", i + 1, s->n);
    }
    if (!rc)
        fprintf(stderr, "%s: importance pass %d examples, %ld positions in %.2f s; feature pass %.2f s\n", name, s->n,
                rows, t1 - t0, ifp_now_s() - t1);
done:
    ifp_calib_destroy(&km);
    ifp_calib_destroy(&kb);
    return rc;
}

/* T = imp / scale_l: importance relative to the layer's mean calibration importance. */
static float *targets(const cal_t *c, const cal_set_t *s) {
    float *T = malloc((size_t)s->n * c->S * sizeof *T);
    int F = c->m->cfg.d_ffn;
    for (int i = 0; T && i < s->n; i++)
        for (int j = 0; j < c->S; j++) T[(size_t)i * c->S + j] = s->imp[(size_t)i * c->S + j] / (float)c->scale[j / F];
    return T;
}

/* Layer gating on the first gate_n calibration examples (core/calib.h, 4). */
static int gate_layers(cal_t *c, const float *oof) {
    const ifp_config_t *mc = &c->m->cfg;
    int n = c->a.gate_n < c->cal.n ? c->a.gate_n : c->cal.n, L = mc->n_layers;
    ifp_ppl_item_t *items = malloc((size_t)n * sizeof *items);
    double *ppl = malloc((size_t)(L + 2) * sizeof *ppl);
    if (!items || !ppl) {
        free(items), free(ppl);
        return fail("out of memory");
    }
    for (int i = 0; i < n; i++)
        items[i] = (ifp_ppl_item_t){.ids = c->cal.ids[i], .n = c->cal.len[i], .n_ctx = c->cal.n_ctx[i]};
    ifp_err_t err = {0};
    double t0 = ifp_now_s();
    if (c->tty) fprintf(stderr, "layer gating: up to %d perplexity passes over %d examples...", L + 2, n);
    int rc = ifp_calib_gate(c->m, items, n, oof, c->mean_t, c->a.keep, c->gate, ppl, &err);
    if (c->tty) fputs("\r\033[K", stderr);
    if (rc) {
        free(items), free(ppl);
        return fail("layer gating: %s", err.msg);
    }
    fprintf(stderr, "layer gating on %d calibration examples (out-of-fold predictions), response perplexity:\n"
                    "  static everywhere %.3f\n", n, ppl[0]);
    for (int l = 0; l < L; l++)
        fprintf(stderr, "  per-input in layer %d only %.3f -> %s\n", l, ppl[1 + l], c->gate[l] ? "per-input" : "static");
    fprintf(stderr, "  gated predictor %.3f (%.2f s)\n", ppl[L + 1], ifp_now_s() - t0);
    free(items), free(ppl);
    return 0;
}

static int fit_and_save(cal_t *c) {
    const ifp_config_t *mc = &c->m->cfg;
    int F = mc->d_ffn, L = mc->n_layers, n = c->cal.n;
    c->scale = malloc((size_t)L * sizeof *c->scale);
    c->mean_t = calloc((size_t)c->S, sizeof *c->mean_t);
    c->gate = malloc((size_t)L * sizeof *c->gate);
    if (!c->scale || !c->mean_t || !c->gate) return fail("out of memory");
    for (int l = 0; l < L; l++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < F; j++) s += c->cal.imp[(size_t)i * c->S + (size_t)l * F + j];
        c->scale[l] = s / ((double)n * F) > 0 ? s / ((double)n * F) : 1.0;
        c->gate[l] = 1;
    }
    float *T = targets(c, &c->cal), *oof = malloc((size_t)n * c->S * sizeof *oof);
    if (!T || !oof) {
        free(T), free(oof);
        return fail("out of memory");
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c->S; j++) c->mean_t[j] += T[(size_t)i * c->S + j] / (float)n;
    ifp_fit_params_t fp = ifp_fit_default_params();
    fp.hidden = c->a.hidden, fp.lambda = c->a.lambda, fp.folds = c->a.folds, fp.epochs = c->a.epochs;
    fp.lr = c->a.lr, fp.seed = c->a.seed, fp.n_layers = L, fp.d_ffn = F, fp.keep = c->a.keep;
    fp.log = fit_log;
    if (fp.folds > n) fp.folds = n;
    ifp_err_t err = {0};
    double t0 = ifp_now_s();
    fprintf(stderr, "fitting the head:\n");
    int rc = ifp_head_fit(c->cal.X, n, c->D, T, c->S, &fp, &c->head, &c->lambda, oof, &err);
    free(T);
    if (rc) {
        free(oof);
        return fail("%s", err.msg);
    }
    fprintf(stderr, "fitted in %.2f s\n", ifp_now_s() - t0);
    rc = c->a.gate_n > 0 ? gate_layers(c, oof) : 0;
    free(oof);
    if (rc) return rc;
    ifp_head_gate(c->head, c->gate, c->mean_t, L, F);
    const char *name = strrchr(c->a.model, '/');
    ifp_calib_meta_t meta = {.n_layers = L, .d_ffn = F, .keep = c->a.keep, .max_prompt = c->max_prompt,
                             .lambda = c->lambda, .n_examples = c->cal.n, .gate = c->gate,
                             .model_name = name ? name + 1 : c->a.model};
    if (ifp_calib_save(c->bb->gguf, c->head, &meta, c->a.out, &err)) return fail("%s", err.msg);
    /* the file must load as a predictor for this model and score as fitted */
    if (ifp_predictor_load(c->a.out, &c->pred, &err) || ifp_predictor_check_target(c->pred, mc, &err))
        return fail("%s: written, but it does not load as a predictor: %s", c->a.out, err.msg);
    float *got = malloc((size_t)c->S * sizeof *got), *want = malloc((size_t)c->S * sizeof *want);
    float *act = malloc((size_t)c->head->hidden * sizeof *act);
    double worst = 0.0, mag = 0.0;
    int n_check = c->cal.n < 8 ? c->cal.n : 8;
    for (int i = 0; got && want && act && i < n_check && !rc; i++) {
        rc = ifp_predictor_scores(c->pred, c->cal.pids[i], c->cal.plen[i], got, &err);
        ifp_head_apply(c->head, c->cal.X + (size_t)i * c->D, 1, act, want);
        for (int j = 0; !rc && j < c->S; j++) {
            worst = fmax(worst, fabs((double)got[j] - want[j]));
            mag = fmax(mag, fabs((double)want[j]));
        }
    }
    free(got), free(want), free(act);
    if (rc) return fail("%s: scoring with the written predictor: %s", c->a.out, err.msg);
    if (worst > 1e-3 * (1.0 + mag)) return fail("%s: reloaded scores differ from the fit by %g", c->a.out, worst);
    fprintf(stderr, "wrote %s (%d hidden, median lambda %g); reloaded with ifp_predictor_load: scores match to %.1e\n",
            c->a.out, c->head->hidden, c->lambda, worst);
    return 0;
}

/* ---- held-out comparison ---- */

enum { R_DENSE, R_STATIC, R_INPUT, R_RANDOM, R_ORACLE, R_COUNT };
static const char *const row_names[R_COUNT] = {"dense", "static", "per-input", "random", "oracle"};

static ifp_mask_t *topk_mask(const ifp_config_t *mc, const float *scores, int keep) {
    ifp_mask_t *mk = ifp_mask_new(mc->n_layers, mc->d_ffn);
    for (int l = 0; mk && l < mc->n_layers; l++) ifp_mask_set_topk(mk, l, scores + (size_t)l * mc->d_ffn, keep);
    return mk;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int holdout(cal_t *c) {
    const ifp_config_t *mc = &c->m->cfg;
    cal_set_t *h = &c->held;
    if (set_load(c, h, c->a.holdout, 0) || passes(c, h, "held-out")) return -1;
    int n = h->n, nd = h->ds->n_domains, keep = c->a.keep, S = c->S, rc = 0;
    ifp_err_t err = {0};
    ifp_mask_t **masks = calloc((size_t)R_COUNT * n, sizeof *masks);
    ifp_ppl_item_t *items = malloc((size_t)n * sizeof *items);
    ifp_ppl_result_t *res = malloc((size_t)n * sizeof *res);
    double *cell_nll = calloc((size_t)R_COUNT * (nd + 1), sizeof *cell_nll);
    long *cell_tok = calloc((size_t)R_COUNT * (nd + 1), sizeof *cell_tok);
    float *mean = calloc((size_t)S, sizeof *mean);
    float *pred_all = malloc((size_t)n * S * sizeof *pred_all), *T = targets(c, h);
    float *rnd = malloc((size_t)S * sizeof *rnd);
    ifp_mask_t *stat = NULL;
    ifp_ppl_t *ppl = NULL;
    if (!masks || !items || !res || !cell_nll || !cell_tok || !mean || !pred_all || !T || !rnd) {
        rc = fail("out of memory");
        goto done;
    }
    /* static: top-K of the mean calibration importance */
    for (int i = 0; i < c->cal.n; i++)
        for (int j = 0; j < S; j++) mean[j] += c->cal.imp[(size_t)i * S + j] / (float)c->cal.n;
    if (!(stat = topk_mask(mc, mean, keep))) {
        rc = fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n && !rc; i++) {
        ifp_mask_t **row = masks + (size_t)i * R_COUNT;
        row[R_DENSE] = NULL;
        row[R_STATIC] = stat;
        if (ifp_predictor_scores(c->pred, h->pids[i], h->plen[i], pred_all + (size_t)i * S, &err) ||
            ifp_predictor_mask_from_scores(c->pred, pred_all + (size_t)i * S, keep, &row[R_INPUT], &err)) {
            rc = fail("held-out example %d: predictor: %s", i + 1, err.msg);
            break;
        }
        uint64_t st = mix64(c->a.seed * 0x9e3779b97f4a7c15ull + (uint64_t)i + 1);
        for (int j = 0; j < S; j++) rnd[j] = (float)((st = mix64(st + 0x9e3779b97f4a7c15ull)) >> 40);
        row[R_RANDOM] = topk_mask(mc, rnd, keep);
        row[R_ORACLE] = topk_mask(mc, h->imp + (size_t)i * S, keep);
        if (!row[R_RANDOM] || !row[R_ORACLE]) rc = fail("out of memory");
    }
    ifp_ppl_params_t pp = ifp_ppl_default_params();
    pp.progress = ppl_progress, pp.progress_ctx = c;
    if (!rc && ifp_ppl_new(c->m, &pp, &ppl, &err)) rc = fail("%s", err.msg);
    double t0 = ifp_now_s();
    for (int r = 0; r < R_COUNT && !rc; r++) {
        for (int i = 0; i < n; i++)
            items[i] = (ifp_ppl_item_t){.ids = h->ids[i], .n = h->len[i], .n_ctx = h->n_ctx[i],
                                        .mask = masks[(size_t)i * R_COUNT + r]};
        if (ifp_ppl_score(ppl, items, n, res, &err)) {
            rc = fail("perplexity (%s): %s", row_names[r], err.msg);
            break;
        }
        for (int i = 0; i < n; i++) {
            int d = ifp_dataset_domain_index(h->ds, h->ds->ex[i].domain);
            for (int k = 0; k < 2; k++) { /* the domain's cell and "all" */
                size_t cell = (size_t)r * (nd + 1) + (k ? (size_t)nd : (size_t)d);
                cell_nll[cell] += res[i].nll;
                cell_tok[cell] += res[i].n_tokens;
            }
        }
    }
    if (rc) goto done;
    double t1 = ifp_now_s();
    printf("held-out response perplexity: %s, keep %d of %d FFN channels per layer, %d examples, %ld tokens\n\n",
           c->a.holdout, keep, mc->d_ffn, n, cell_tok[nd]);
    printf("| mask |");
    for (int d = 0; d < nd; d++) printf(" %s |", h->ds->domains[d]);
    printf(" all | vs dense |\n|---|");
    for (int d = 0; d <= nd + 1; d++) printf("---|");
    printf("\n");
    double dense_all = exp(cell_nll[nd] / (double)(cell_tok[nd] ? cell_tok[nd] : 1));
    for (int r = 0; r < R_COUNT; r++) {
        printf("| %s |", row_names[r]);
        double all = 0.0;
        for (int d = 0; d <= nd; d++) {
            size_t cell = (size_t)r * (nd + 1) + d;
            double ppl_v = cell_tok[cell] ? exp(cell_nll[cell] / (double)cell_tok[cell]) : NAN;
            printf(" %.3f |", ppl_v);
            if (d == nd) all = ppl_v;
        }
        printf(" %+.1f%% |\n", 100.0 * (all / dense_all - 1.0));
    }
    /* how much of each example's own top-K importance the masks keep */
    double cap_in = ifp_fit_captured(pred_all, S, T, n, mc->n_layers, mc->d_ffn, keep);
    double cap_st = ifp_fit_captured(c->mean_t, 0, T, n, mc->n_layers, mc->d_ffn, keep);
    double ov = 0.0;
    for (int i = 0; i < n; i++)
        for (int l = 0; l < mc->n_layers; l++)
            ov += ifp_mask_layer_overlap(masks[(size_t)i * R_COUNT + R_INPUT], stat, l) / ((double)n * mc->n_layers);
    printf("\nstatic = top-K of the mean calibration importance; per-input = the calibrated predictor on the prompt;\n"
           "random = K random channels per layer and example (seed %llu); oracle = top-K of the example's own\n"
           "importance (reads the response: a bound, not a mode).  Importance kept relative to the oracle:\n"
           "per-input %.4f, static %.4f.  Mean overlap of per-input masks with the static mask: %.3f.\n",
           (unsigned long long)c->a.seed, cap_in, cap_st, ov);
    fprintf(stderr, "held-out perplexity: %d masks x %d examples in %.2f s\n", R_COUNT, n, t1 - t0);
done:
    for (int i = 0; masks && i < n; i++)
        for (int r = R_INPUT; r < R_COUNT; r++) ifp_mask_destroy(&masks[(size_t)i * R_COUNT + r]);
    ifp_mask_destroy(&stat);
    ifp_ppl_destroy(&ppl);
    free(masks), free(items), free(res), free(cell_nll), free(cell_tok), free(mean), free(pred_all);
    free(T), free(rnd);
    return rc;
}

/* ---- command ---- */

static int load_models(cal_t *c) {
    ifp_err_t err = {0};
    if (ifp_model_load(c->a.model, NULL, &c->m, &err) || ifp_tokenizer_from_gguf(c->m->gguf, &c->tok, &err))
        return fail("%s", err.msg);
    c->bb = c->m, c->bb_tok = c->tok;
    if (c->a.backbone && strcmp(c->a.backbone, c->a.model) != 0) {
        if (ifp_model_load(c->a.backbone, NULL, &c->bb_owned, &err) ||
            ifp_tokenizer_from_gguf(c->bb_owned->gguf, &c->bb_tok_owned, &err))
            return fail("backbone: %s", err.msg);
        c->bb = c->bb_owned, c->bb_tok = c->bb_tok_owned;
    }
    const ifp_config_t *mc = &c->m->cfg, *bc = &c->bb->cfg;
    if (bc->vocab != mc->vocab)
        return fail("the backbone's vocabulary (%d) differs from the model's (%d): a predictor reads the model's "
                    "token ids",
                    bc->vocab, mc->vocab);
    if (c->a.keep > mc->d_ffn) return fail("--keep %d exceeds the model's %d FFN channels", c->a.keep, mc->d_ffn);
    c->S = mc->n_layers * mc->d_ffn;
    c->D = bc->dim;
    c->max_prompt = bc->ctx;
    return 0;
}

int ifp_cmd_calibrate(int argc, char **argv) {
    cal_t c = {.a = {.hidden = 128, .lambda = -1.0f, .folds = 5, .lr = 1e-4f, .seed = 1, .gate_n = 128, .threads = 1}};
    cal_args_t *a = &c.a;
    cli_opt_t opts[] = {
        {"model", 'm', CLI_STR, &a->model, 0, 0, "the model GGUF to prune (required)", 0},
        {"backbone", 'b', CLI_STR, &a->backbone, 0, 0, "predictor backbone GGUF, same vocabulary (default: the model)", 0},
        {"calib", 0, CLI_STR, &a->calib, 0, 0, "calibration JSONL (prompt, response, domain) (required)", 0},
        {"keep", 'k', CLI_INT, &a->keep, 1, 1 << 22, "K: FFN channels kept per layer (required)", 0},
        {"output", 'o', CLI_STR, &a->out, 0, 0, "predictor GGUF to write (required)", 0},
        {"hidden", 0, CLI_INT, &a->hidden, 1, 1 << 16, "head width: fc1 units (default 128)", 0},
        {"lambda", 0, CLI_FLOAT, &a->lambda, -1, 1e6, "ridge strength, relative; -1 = per output by CV (default)", 0},
        {"folds", 0, CLI_INT, &a->folds, 2, 1000, "cross-validation folds (default 5)", 0},
        {"epochs", 0, CLI_INT, &a->epochs, 0, 100000, "Adam epochs after the ridge fit (default 0)", 0},
        {"lr", 0, CLI_FLOAT, &a->lr, 1e-7, 1, "Adam step (default 1e-4)", 0},
        {"gate-examples", 0, CLI_INT, &a->gate_n, 0, 1 << 30,
         "calibration examples for layer gating; 0 = no gating (default 128)", 0},
        {"seed", 's', CLI_U64, &a->seed, 0, 9.0e18, "seed: random units, folds, Adam, random masks (default 1)", 0},
        {"limit", 0, CLI_INT, &a->limit, 0, 1 << 30, "use only the first N calibration examples (default all)", 0},
        {"holdout", 0, CLI_STR, &a->holdout, 0, 0, "held-out JSONL: print the perplexity comparison table", 0},
        {"threads", 't', CLI_INT, &a->threads, 1, 256, "OpenBLAS threads (default 1)", 0},
        {0},
    };
    const char *pos[1];
    int n_pos;
    int prc = cli_parse("calibrate", argc, argv, 2, opts, pos, 0, &n_pos,
                        "--model M.gguf [--backbone B.gguf] --calib FILE.jsonl --keep K -o P.gguf [options]\n\n"
                        "Fits a predictor head on the backbone's last-prompt-token feature to the model's per-example\n"
                        "FFN channel importance, mean (|silu(gate x)*(up x)| * ||down column||)^2 over prompt+response:\n"
                        "fixed fc1 (principal directions + random SiLU units), fc2 by ridge regression with per-output\n"
                        "lambdas chosen by k-fold cross-validation, optional Adam epochs; then each layer keeps its\n"
                        "per-input scores only where that lowers calibration perplexity (else the static mask).\n"
                        "See core/calib.h.");
    if (prc) return prc > 0 ? 0 : 2;
    const char *missing = !a->model ? "--model" : !a->calib ? "--calib" : !opts[3].seen ? "--keep" : !a->out ? "-o" : NULL;
    if (missing) {
        fail("%s is required (see ifp calibrate --help)", missing);
        return 2;
    }
    if (a->lambda < 0 && a->lambda != -1.0f) {
        fail("--lambda must be -1 (cross-validate) or >= 0");
        return 2;
    }
    ifp_blas_threads(a->threads);
    c.tty = isatty(STDERR_FILENO);
    double t0 = ifp_now_s();
    int rc = load_models(&c);
    if (!rc) rc = set_load(&c, &c.cal, a->calib, a->limit);
    if (!rc && c.cal.n < 2) rc = fail("%s: need at least 2 calibration examples", a->calib);
    if (!rc) rc = passes(&c, &c.cal, "calib");
    if (!rc) rc = fit_and_save(&c);
    if (!rc && a->holdout) rc = holdout(&c);
    if (!rc) fprintf(stderr, "ifp calibrate: done in %.2f s\n", ifp_now_s() - t0);
    ifp_predictor_destroy(&c.pred);
    ifp_head_destroy(&c.head);
    free(c.scale), free(c.mean_t), free(c.gate);
    set_free(&c.cal);
    set_free(&c.held);
    ifp_tokenizer_destroy(&c.bb_tok_owned);
    ifp_tokenizer_destroy(&c.tok);
    ifp_model_free(&c.bb_owned);
    ifp_model_free(&c.m);
    return rc ? 1 : 0;
}
