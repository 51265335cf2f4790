/* calib.h — calibrating a sparsity predictor for a model trained without one.
 *
 * `ifp calibrate` builds an IFPruning predictor (core/predictor.h) for any
 * Llama model from a few hundred prompt/response examples:
 *
 * 1. Importance (targets; calib.c).  For one example, ids = [BOS] + prompt +
 *    response (+ EOS) as core/ppl.h builds it; the model runs over the rows
 *    it reads when scoring.  In layer l, with x_t the FFN input (after
 *    ffn_norm) and a_t = silu(Wgate x_t) * (Wup x_t) the channel activations,
 *        imp[l][i] = mean_t (|a_t[i]| * ||Wdown[:, i]||)^2
 *    the mean squared norm of channel i's contribution to the residual stream:
 *    the error that dropping it adds there (the diagonal of the FFN output's
 *    reconstruction error).  The squared form was chosen by measurement: on
 *    stories260K at keep 50% the static mask from it has held-out response
 *    perplexity 41.9, the one from mean |a| * ||Wdown[:, i]|| 54.4 (dense 5.6).
 *    How: ifp_forward_layers runs one layer at a time with a per-row FFN
 *    mask of zeros for that layer, so the hidden rows it leaves hold
 *    x + attention(x); the FFN is recomputed here from those rows (same
 *    kernels), the activations are accumulated, and x += Wdown a is written
 *    back into the state's hidden rows before the next layer: the dense
 *    forward pass, observed, with forward.c unchanged.
 *
 * 2. Features.  f = output_norm(backbone(ids[:max_prompt]))[last] with ids =
 *    [BOS] + prompt: exactly what ifp_predictor_scores computes.
 *
 * 3. Head fitting (calib_fit.c).  Targets T = imp / (layer mean importance),
 *    one row per example (a linear scale, so that the ridge intercept — the
 *    fully shrunk prediction — is the static mask's ranking; log-importance
 *    would shrink to the geometric mean, a worse mask).  The head is
 *    fc2(silu(fc1 f + b1)) + b2 with
 *      - fc1 fixed, not trained: after standardising each feature,
 *        `n_linear` units project onto the top principal directions of the
 *        calibration features, shifted by +12 so that silu is the identity to
 *        within 0.1% there (a reduced-rank linear map); the other
 *        hidden - n_linear units are random SiLU features (Gaussian weights,
 *        uniform bias, seeded) for what is not linear;
 *      - fc2 by ridge regression on those hidden units: centred normal
 *        equations (A'A + lambda * mean(diag A'A) * I) W = A'T, solved with
 *        a Cholesky factorisation in double (no LAPACK); the intercept is not
 *        penalised.  lambda < 0: each output gets the grid lambda with the
 *        least k-fold cross-validated squared error (one factorisation per
 *        distinct lambda);
 *      - optionally `epochs` of Adam on the per-output standardised squared
 *        error, fine-tuning fc1 and fc2 from the closed form (off by default:
 *        on stories260K, 10 epochs at 1e-4 moved held-out perplexity from
 *        38.73 to 38.78; at 1e-3 they destroy the closed form).
 *
 * 4. Layer gating (calib.c).  With out-of-fold head predictions for the
 *    calibration examples, each layer keeps its per-input scores only if,
 *    with every other layer on the static mask, that lowers the calibration
 *    examples' response perplexity (if all such layers together do worse than
 *    the best one alone, only that one).  Other layers get the static scores
 *    (fc2 rows zero, bias = mean target), so their mask is the static mask.
 *
 * 5. Output: the backbone GGUF's key/values and tensors, copied, plus
 *    ifp.head.fc1/fc2 and ifp.predictor.* keys (ifp_calib_save): a file
 *    ifp_predictor_load accepts. */
#ifndef IFP_CALIB_H
#define IFP_CALIB_H

#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "model.h"
#include "ppl.h"

/* ---- importance and features (calib.c) ---- */

/* A model bound to a one-slot run state and the scratch for the passes
 * above.  Sequences longer than max_batch run in chunks. */
typedef struct ifp_calib ifp_calib_t;

/* m is borrowed and must outlive c; it must hold every layer (uncompacted),
 * the embedding and the final norm.  max_batch <= 0: 256. */
int ifp_calib_new(const ifp_model_t *m, int max_batch, ifp_calib_t **out, ifp_err_t *err);
void ifp_calib_destroy(ifp_calib_t **c);

/* imp[n_layers * d_ffn] (layer-major) for ids[0..n), 1 <= n <= model ctx. */
int ifp_calib_importance(ifp_calib_t *c, const int32_t *ids, int n, float *imp, ifp_err_t *err);
/* feat[dim] = output_norm(hidden of ids[n-1]) after the full dense model. */
int ifp_calib_feature(ifp_calib_t *c, const int32_t *ids, int n, float *feat, ifp_err_t *err);

/* ---- the head (calib_fit.c) ---- */

typedef struct {
    int feat_dim, hidden, out_dim;
    float *w1; /* (hidden, feat_dim)  GGUF ifp.head.fc1.weight ne = [feat_dim, hidden] */
    float *b1; /* (hidden) */
    float *w2; /* (out_dim, hidden)   GGUF ifp.head.fc2.weight ne = [hidden, out_dim] */
    float *b2; /* (out_dim) */
} ifp_head_t;

ifp_head_t *ifp_head_new(int feat_dim, int hidden, int out_dim); /* zeros; NULL on bad sizes / no memory */
void ifp_head_destroy(ifp_head_t **h);
/* y[n × out_dim] = fc2(silu(fc1 x + b1)) + b2 for x[n × feat_dim]; act is
 * scratch of n × hidden floats. */
void ifp_head_apply(const ifp_head_t *h, const float *x, int n, float *act, float *y);

typedef void (*ifp_fit_log_fn)(void *ud, const char *line);

typedef struct {
    int hidden;     /* fc1 width (default 128) */
    int n_linear;   /* principal-direction units among them (< 0: min(feat_dim, hidden / 2), the default) */
    float lambda;   /* ridge strength relative to mean(diag A'A); < 0: per output by CV (default -1) */
    int folds;      /* cross-validation folds (default 5) */
    int epochs;     /* Adam epochs after the closed form (default 0) */
    float lr;       /* Adam step (default 1e-4) */
    int batch;      /* Adam minibatch (default 32) */
    uint64_t seed;  /* random units, folds, minibatch order (default 1) */
    int n_layers, d_ffn, keep; /* the target layout, for the captured-importance score (keep <= 0: -MSE instead) */
    ifp_fit_log_fn log;        /* progress lines (NULL: silent) */
    void *log_ud;
} ifp_fit_params_t;

ifp_fit_params_t ifp_fit_default_params(void);

/* Fits a head mapping X[n × feat_dim] to T[n × out_dim] (row-major) as
 * described above.  n >= 2; with cross-validation or oof, 2 <= folds <= n.
 * On success *out is a new head (the caller destroys it), *lambda_used (if
 * non-NULL) the median ridge strength over outputs, and oof (if non-NULL,
 * [n × out_dim]) each row's prediction by the ridge head fitted on the
 * other folds (Adam epochs are not applied to it). */
int ifp_head_fit(const float *X, int n, int feat_dim, const float *T, int out_dim, const ifp_fit_params_t *p,
                 ifp_head_t **out, float *lambda_used, float *oof, ifp_err_t *err);

/* Mean, over rows and layers, of the importance T that the top-keep of pred
 * keeps, as a fraction of what the top-keep of T itself keeps (1 = the best
 * mask).  pred and T are [n × n_layers*d_ffn], T >= 0; pred_stride 0 scores
 * one row for every example (a static mask).  NaN if n < 1 or no memory. */
double ifp_fit_captured(const float *pred, int pred_stride, const float *T, int n, int n_layers, int d_ffn, int keep);

/* Solves (G + lambda I) W = R for W [h × m] by Cholesky (G [h × h] symmetric,
 * row-major).  IFP_ERANGE if G + lambda I is not positive definite. */
int ifp_ridge_solve(const double *G, int h, double lambda, const double *R, int m, double *W);

/* ---- layer gating (calib.c) ---- */

/* items[0..n): calibration sequences (their mask fields are ignored);
 * scores [n × n_layers*d_ffn]: out-of-fold head predictions; static_scores
 * [n_layers*d_ffn].  Fills gate[n_layers] (1 = keep per-input scores) and
 * ppl[n_layers + 2]: [0] static everywhere, [1 + l] per-input in layer l
 * only, [n_layers + 1] the gated predictor. */
int ifp_calib_gate(const ifp_model_t *m, const ifp_ppl_item_t *items, int n, const float *scores,
                   const float *static_scores, int keep, int *gate, double *ppl, ifp_err_t *err);
/* Layers with gate[l] == 0 get the static scores: fc2 rows 0, bias static_scores. */
void ifp_head_gate(ifp_head_t *h, const int *gate, const float *static_scores, int n_layers, int d_ffn);

/* ---- output (calib.c) ---- */

typedef struct {
    int n_layers, d_ffn;    /* target model */
    int keep;               /* default K */
    int max_prompt;         /* predictor input limit (<= backbone ctx) */
    float lambda;           /* provenance: median ridge strength */
    int n_examples;         /* provenance: calibration examples */
    const int *gate;        /* provenance: [n_layers] layer gates, or NULL */
    const char *model_name; /* provenance: the target model (may be NULL) */
} ifp_calib_meta_t;

/* Writes path = every key/value and tensor of backbone (except ifp.head.* /
 * ifp.predictor.* / ifp.calibrate.* ones it may already hold) + the head +
 * ifp.predictor.* keys (+ ifp.calibrate.* provenance).  The backbone's dim
 * must equal h->feat_dim. */
int ifp_calib_save(const ifp_gguf_t *backbone, const ifp_head_t *h, const ifp_calib_meta_t *meta, const char *path,
                   ifp_err_t *err);

#endif
