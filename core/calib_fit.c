/* calib_fit.c — fitting the predictor head: fixed fc1 (principal directions +
 * random SiLU units), fc2 by cross-validated ridge regression, optional Adam
 * fine-tuning (see calib.h for the method). */
#define _GNU_SOURCE /* qsort_r */
#include "calib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define FIT_SHIFT 12.0f /* linear units sit at silu(12 + z) ~ 12 + z */

static const float lambda_grid[] = {1e-3f, 1e-2f, 3e-2f, 0.1f, 0.3f, 1.0f, 3.0f, 10.0f, 30.0f, 100.0f, 1000.0f};
#define N_GRID ((int)(sizeof lambda_grid / sizeof *lambda_grid))

/* ---- head ---- */

ifp_head_t *ifp_head_new(int feat_dim, int hidden, int out_dim) {
    if (feat_dim < 1 || hidden < 1 || out_dim < 1) return NULL;
    ifp_head_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->feat_dim = feat_dim, h->hidden = hidden, h->out_dim = out_dim;
    h->w1 = calloc((size_t)hidden * feat_dim, sizeof *h->w1);
    h->b1 = calloc((size_t)hidden, sizeof *h->b1);
    h->w2 = calloc((size_t)out_dim * hidden, sizeof *h->w2);
    h->b2 = calloc((size_t)out_dim, sizeof *h->b2);
    if (!h->w1 || !h->b1 || !h->w2 || !h->b2) ifp_head_destroy(&h);
    return h;
}

void ifp_head_destroy(ifp_head_t **ph) {
    if (!ph || !*ph) return;
    ifp_head_t *h = *ph;
    free(h->w1), free(h->b1), free(h->w2), free(h->b2);
    free(h);
    *ph = NULL;
}

/* act = silu(x W1^T + b1) */
static void hidden_units(const ifp_head_t *h, const float *x, int n, float *act) {
    ifp_linear(act, x, h->w1, n, h->feat_dim, h->hidden);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < h->hidden; j++) {
            float *a = act + (size_t)r * h->hidden + j;
            *a = ifp_silu(*a + h->b1[j]);
        }
}

void ifp_head_apply(const ifp_head_t *h, const float *x, int n, float *act, float *y) {
    hidden_units(h, x, n, act);
    ifp_linear(y, act, h->w2, n, h->hidden, h->out_dim);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < h->out_dim; j++) y[(size_t)r * h->out_dim + j] += h->b2[j];
}

/* ---- linear algebra ---- */

/* L L^T = G + lambda I (L lower triangular, row-major h × h). */
static int chol_factor(const double *G, int h, double lambda, double *L) {
    for (int i = 0; i < h; i++)
        for (int j = 0; j <= i; j++) {
            double s = G[(size_t)i * h + j] + (i == j ? lambda : 0.0);
            for (int k = 0; k < j; k++) s -= L[(size_t)i * h + k] * L[(size_t)j * h + k];
            if (i == j) {
                if (!(s > 0.0)) return IFP_ERANGE;
                L[(size_t)i * h + i] = sqrt(s);
            } else {
                L[(size_t)i * h + j] = s / L[(size_t)j * h + j];
            }
        }
    return IFP_OK;
}

/* In place on the columns cols[0..nc) of W [h × m] (NULL: all m): W = (L L^T)^-1 W,
 * by forward substitution (L Y = W) then back substitution (L^T W = Y). */
static void chol_solve(const double *L, int h, double *W, int m, const int *cols, int nc) {
    if (!cols) nc = m;
    for (int i = 0; i < h; i++) {
        double *wi = W + (size_t)i * m, d = L[(size_t)i * h + i];
        for (int k = 0; k < i; k++) {
            double l = L[(size_t)i * h + k];
            const double *wk = W + (size_t)k * m;
            for (int c = 0; c < nc; c++) wi[cols ? cols[c] : c] -= l * wk[cols ? cols[c] : c];
        }
        for (int c = 0; c < nc; c++) wi[cols ? cols[c] : c] /= d;
    }
    for (int i = h - 1; i >= 0; i--) {
        double *wi = W + (size_t)i * m, d = L[(size_t)i * h + i];
        for (int k = i + 1; k < h; k++) {
            double l = L[(size_t)k * h + i];
            const double *wk = W + (size_t)k * m;
            for (int c = 0; c < nc; c++) wi[cols ? cols[c] : c] -= l * wk[cols ? cols[c] : c];
        }
        for (int c = 0; c < nc; c++) wi[cols ? cols[c] : c] /= d;
    }
}

int ifp_ridge_solve(const double *G, int h, double lambda, const double *R, int m, double *W) {
    double *L = malloc((size_t)h * h * sizeof *L);
    if (!L) return IFP_ENOMEM;
    int rc = chol_factor(G, h, lambda, L);
    if (!rc) {
        memcpy(W, R, (size_t)h * m * sizeof *W);
        chol_solve(L, h, W, m, NULL, 0);
    }
    free(L);
    return rc;
}

/* ---- scoring ---- */

/* qsort_r order: descending key, ties -> lower index (as ifp_mask_set_topk) */
static int by_key_desc(const void *a, const void *b, void *key) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = ((const float *)key)[i], y = ((const float *)key)[j];
    if (x != y) return x > y ? -1 : 1;
    return i - j;
}

/* Sum of t[i] over the top-keep indices of key[0..F). */
static double kept_mass(const float *key, const float *t, int F, int keep, int *idx) {
    for (int i = 0; i < F; i++) idx[i] = i;
    qsort_r(idx, (size_t)F, sizeof *idx, by_key_desc, (void *)key);
    double s = 0.0;
    for (int i = 0; i < keep; i++) s += t[idx[i]];
    return s;
}

double ifp_fit_captured(const float *pred, int pred_stride, const float *T, int n, int n_layers, int d_ffn, int keep) {
    int *idx = malloc((size_t)d_ffn * sizeof *idx);
    if (!idx || n < 1) {
        free(idx);
        return NAN;
    }
    size_t S = (size_t)n_layers * d_ffn;
    double sum = 0.0;
    for (int r = 0; r < n; r++)
        for (int l = 0; l < n_layers; l++) {
            const float *t = T + r * S + (size_t)l * d_ffn, *p = pred + (size_t)r * pred_stride + (size_t)l * d_ffn;
            double best = kept_mass(t, t, d_ffn, keep, idx);
            sum += best > 0.0 ? kept_mass(p, t, d_ffn, keep, idx) / best : 1.0;
        }
    free(idx);
    return sum / ((double)n * n_layers);
}

/* ---- fitting ---- */

ifp_fit_params_t ifp_fit_default_params(void) {
    ifp_fit_params_t p = {.hidden = 128, .n_linear = -1, .lambda = -1.0f, .folds = 5, .epochs = 0, .lr = 1e-4f,
                          .batch = 32, .seed = 1};
    return p;
}

static void logf_(const ifp_fit_params_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const ifp_fit_params_t *p, const char *fmt, ...) {
    if (!p->log) return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_ud, line);
}

/* splitmix64: seeded and portable */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static double rng_gauss(uint64_t *s) {
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2.0 * log(u > 0.0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

/* An orthonormal basis Q [P × D] (rows) of the top-P principal subspace of
 * the covariance C [D × D]: 60 steps of subspace iteration with Gram-Schmidt
 * (O(60 P D^2)); *top = the largest Rayleigh quotient q' C q over the rows.
 * P == D: the identity. */
static void principal(const double *C, int D, int P, uint64_t *rng, double *Q, double *top) {
    memset(Q, 0, (size_t)P * D * sizeof *Q);
    if (P == D) {
        for (int k = 0; k < D; k++) Q[(size_t)k * D + k] = 1.0;
    } else {
        double *Z = malloc((size_t)P * D * sizeof *Z);
        for (size_t i = 0; i < (size_t)P * D; i++) Q[i] = rng_gauss(rng);
        for (int it = 0; it <= 60 && Z; it++) {
            for (int k = 0; k < P && it > 0; k++) /* Z = C Q (row k: C q_k) */
                for (int i = 0; i < D; i++) {
                    double s = 0.0;
                    for (int j = 0; j < D; j++) s += C[(size_t)i * D + j] * Q[(size_t)k * D + j];
                    Z[(size_t)k * D + i] = s;
                }
            if (it > 0) memcpy(Q, Z, (size_t)P * D * sizeof *Q);
            for (int k = 0; k < P; k++) { /* modified Gram-Schmidt */
                double *q = Q + (size_t)k * D;
                for (int j = 0; j < k; j++) {
                    const double *o = Q + (size_t)j * D;
                    double d = 0.0;
                    for (int i = 0; i < D; i++) d += q[i] * o[i];
                    for (int i = 0; i < D; i++) q[i] -= d * o[i];
                }
                double nr = 0.0;
                for (int i = 0; i < D; i++) nr += q[i] * q[i];
                nr = sqrt(nr);
                for (int i = 0; i < D; i++) q[i] = nr > 1e-300 ? q[i] / nr : (i == k ? 1.0 : 0.0);
            }
        }
        free(Z);
    }
    *top = 0.0;
    for (int k = 0; k < P; k++) {
        double s = 0.0;
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) s += Q[(size_t)k * D + i] * C[(size_t)i * D + j] * Q[(size_t)k * D + j];
        if (s > *top) *top = s;
    }
}

/* fc1: standardise x; n_linear principal units at +FIT_SHIFT; random units. */
static int build_fc1(ifp_head_t *h, const float *X, int n, int n_linear, uint64_t *rng) {
    int D = h->feat_dim, H = h->hidden;
    double *mu = calloc((size_t)D, sizeof *mu), *sd = calloc((size_t)D, sizeof *sd);
    double *C = calloc((size_t)D * D, sizeof *C), *Q = malloc((size_t)(n_linear ? n_linear : 1) * D * sizeof *Q);
    double *w = malloc((size_t)D * sizeof *w);
    int rc = (mu && sd && C && Q && w) ? IFP_OK : IFP_ENOMEM;
    for (int r = 0; !rc && r < n; r++)
        for (int j = 0; j < D; j++) mu[j] += X[(size_t)r * D + j] / (double)n;
    for (int r = 0; !rc && r < n; r++)
        for (int j = 0; j < D; j++) {
            double d = X[(size_t)r * D + j] - mu[j];
            sd[j] += d * d / (double)n;
        }
    double sd_max = 0.0;
    for (int j = 0; !rc && j < D; j++) sd_max = fmax(sd_max, sqrt(sd[j]));
    for (int j = 0; !rc && j < D; j++) sd[j] = sqrt(sd[j]) > 1e-6 * sd_max && sd[j] > 0 ? sqrt(sd[j]) : 1.0;
    /* covariance of the standardised features */
    for (int r = 0; !rc && r < n; r++)
        for (int i = 0; i < D; i++) {
            double zi = (X[(size_t)r * D + i] - mu[i]) / sd[i];
            for (int j = 0; j < D; j++) C[(size_t)i * D + j] += zi * (X[(size_t)r * D + j] - mu[j]) / sd[j] / n;
        }
    double top = 1.0;
    if (!rc && n_linear) principal(C, D, n_linear, rng, Q, &top);
    double scale = top > 1e-12 ? 1.0 / sqrt(top) : 1.0; /* the top direction gets unit variance */
    for (int k = 0; !rc && k < H; k++) {
        float b;
        if (k < n_linear) {
            for (int j = 0; j < D; j++) w[j] = Q[(size_t)k * D + j] * scale;
            b = FIT_SHIFT;
        } else {
            for (int j = 0; j < D; j++) w[j] = rng_gauss(rng) / sqrt((double)D);
            b = (float)(4.0 * rng_unit(rng) - 2.0);
        }
        /* unit = w . (x - mu) / sd + b  ->  fc1 row w / sd, bias b - sum w mu / sd */
        double off = 0.0;
        for (int j = 0; j < D; j++) {
            h->w1[(size_t)k * D + j] = (float)(w[j] / sd[j]);
            off += w[j] * mu[j] / sd[j];
        }
        h->b1[k] = (float)(b - off);
    }
    free(mu), free(sd), free(C), free(Q), free(w);
    return rc;
}

typedef struct {
    int n, H, M;
    const float *A; /* [n × H] hidden units */
    const float *T; /* [n × M] targets */
    float *Ac, *Tc; /* centred training rows */
    double *G, *W, *L;
    float *gf, *rf;
    int *cols;      /* [M] scratch */
} ridge_t;

/* Fits fc2 (w2, b2 of h) on the rows rows[0..m); column j uses the relative
 * ridge strength lam[j]: one Cholesky factor per distinct value. */
static int ridge_fit(ridge_t *rg, const int *rows, int m, const float *lam, ifp_head_t *h) {
    int H = rg->H, M = rg->M, rc = IFP_OK;
    double *abar = calloc((size_t)H, sizeof *abar), *tbar = calloc((size_t)M, sizeof *tbar);
    if (!abar || !tbar) {
        free(abar), free(tbar);
        return IFP_ENOMEM;
    }
    for (int r = 0; r < m; r++) {
        for (int j = 0; j < H; j++) abar[j] += rg->A[(size_t)rows[r] * H + j] / (double)m;
        for (int j = 0; j < M; j++) tbar[j] += rg->T[(size_t)rows[r] * M + j] / (double)m;
    }
    for (int r = 0; r < m; r++) {
        for (int j = 0; j < H; j++) rg->Ac[(size_t)r * H + j] = (float)(rg->A[(size_t)rows[r] * H + j] - abar[j]);
        for (int j = 0; j < M; j++) rg->Tc[(size_t)r * M + j] = (float)(rg->T[(size_t)rows[r] * M + j] - tbar[j]);
    }
    /* G = Ac^T Ac, R = Ac^T Tc (OpenBLAS, float), then solved in double */
    ifp_sgemm(1, 0, H, H, m, 1.0f, rg->Ac, H, rg->Ac, H, 0.0f, rg->gf, H);
    ifp_sgemm(1, 0, H, M, m, 1.0f, rg->Ac, H, rg->Tc, M, 0.0f, rg->rf, M);
    double diag = 0.0;
    for (int j = 0; j < H; j++) diag += rg->gf[(size_t)j * H + j] / H;
    if (!(diag > 0.0)) diag = 1.0;
    for (size_t i = 0; i < (size_t)H * H; i++) rg->G[i] = rg->gf[i];
    for (size_t i = 0; i < (size_t)H * M; i++) rg->W[i] = rg->rf[i];
    float done[N_GRID + 1]; /* lam holds grid values or one fixed value */
    int n_done = 0;
    for (int j0 = 0; !rc && j0 < M; j0++) {
        int seen = 0, nc = 0;
        for (int v = 0; v < n_done && !seen; v++) seen = done[v] == lam[j0];
        if (seen) continue;
        if (n_done == N_GRID + 1) { /* not reached: the callers use grid values or one value */
            rc = IFP_EINVAL;
            break;
        }
        done[n_done++] = lam[j0];
        for (int j = j0; j < M; j++)
            if (lam[j] == lam[j0]) rg->cols[nc++] = j;
        rc = chol_factor(rg->G, H, (double)lam[j0] * diag, rg->L);
        if (!rc) chol_solve(rg->L, H, rg->W, M, nc == M ? NULL : rg->cols, nc);
    }
    for (int j = 0; !rc && j < M; j++) { /* w2 = W^T; b2 = tbar - w2 abar */
        double b = tbar[j];
        for (int k = 0; k < H; k++) {
            h->w2[(size_t)j * H + k] = (float)rg->W[(size_t)k * M + j];
            b -= rg->W[(size_t)k * M + j] * abar[k];
        }
        h->b2[j] = (float)b;
    }
    free(abar), free(tbar);
    return rc;
}

/* Predicts rows[0..m) into P [m × M] with the current fc2 (A given). */
static void ridge_predict(const ridge_t *rg, const ifp_head_t *h, const int *rows, int m, float *Arows, float *P) {
    for (int r = 0; r < m; r++) memcpy(Arows + (size_t)r * rg->H, rg->A + (size_t)rows[r] * rg->H, rg->H * sizeof(float));
    ifp_linear(P, Arows, h->w2, m, rg->H, rg->M);
    for (int r = 0; r < m; r++)
        for (int j = 0; j < rg->M; j++) P[(size_t)r * rg->M + j] += h->b2[j];
}

/* Score of predictions P for rows: captured importance, or -MSE without a layout. */
static double score(const ifp_fit_params_t *p, const ridge_t *rg, const float *P, int pstride, const int *rows, int m,
                    float *Trows, double *mse) {
    double se = 0.0;
    for (int r = 0; r < m; r++) {
        memcpy(Trows + (size_t)r * rg->M, rg->T + (size_t)rows[r] * rg->M, rg->M * sizeof(float));
        for (int j = 0; j < rg->M; j++) {
            double d = P[(size_t)r * pstride + j] - Trows[(size_t)r * rg->M + j];
            se += d * d;
        }
    }
    *mse = se / ((double)m * rg->M);
    if (p->keep <= 0) return -*mse;
    return ifp_fit_captured(P, pstride, Trows, m, p->n_layers, p->d_ffn, p->keep);
}

/* ---- Adam fine-tuning ---- */

/* epochs of minibatch Adam on mean((y - t)^2 / var_j) over fc1 and fc2. */
static int fit_adam(ifp_head_t *h, const float *X, const float *T, int n, const ifp_fit_params_t *p, uint64_t *rng) {
    int D = h->feat_dim, H = h->hidden, M = h->out_dim, B = p->batch > 0 && p->batch < n ? p->batch : n;
    float *par[4] = {h->w1, h->b1, h->w2, h->b2};
    size_t len[4] = {(size_t)H * D, (size_t)H, (size_t)M * H, (size_t)M}, total = len[0] + len[1] + len[2] + len[3];
    float *blk = calloc(3 * total, sizeof *blk); /* grads, first and second moments */
    float *iv = malloc((size_t)M * sizeof *iv), *Xb = malloc((size_t)B * D * sizeof *Xb);
    float *Z = malloc((size_t)B * H * sizeof *Z), *A = malloc((size_t)B * H * sizeof *A);
    float *E = malloc((size_t)B * M * sizeof *E), *dZ = malloc((size_t)B * H * sizeof *dZ);
    int *perm = malloc((size_t)n * sizeof *perm);
    if (!blk || !iv || !Xb || !Z || !A || !E || !dZ || !perm) {
        free(blk), free(iv), free(Xb), free(Z), free(A), free(E), free(dZ), free(perm);
        return IFP_ENOMEM;
    }
    float *g[4], *m1[4], *m2[4];
    size_t off = 0;
    for (int k = 0; k < 4; off += len[k], k++)
        g[k] = blk + off, m1[k] = blk + total + off, m2[k] = blk + 2 * total + off;
    for (int j = 0; j < M; j++) { /* per-output variance: every channel weighs the same */
        double s = 0.0, s2 = 0.0;
        for (int r = 0; r < n; r++) s += T[(size_t)r * M + j], s2 += (double)T[(size_t)r * M + j] * T[(size_t)r * M + j];
        double var = s2 / n - (s / n) * (s / n);
        iv[j] = (float)(1.0 / (var > 1e-6 ? var : 1e-6));
    }
    for (int i = 0; i < n; i++) perm[i] = i;
    const float b1 = 0.9f, b2 = 0.999f;
    int step = 0;
    for (int ep = 1; ep <= p->epochs; ep++) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next(rng) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        double loss = 0.0;
        for (int i0 = 0; i0 + B <= n; i0 += B) { /* a ragged last batch is skipped this epoch */
            for (int r = 0; r < B; r++) memcpy(Xb + (size_t)r * D, X + (size_t)perm[i0 + r] * D, D * sizeof(float));
            ifp_linear(Z, Xb, h->w1, B, D, H);
            for (int r = 0; r < B; r++)
                for (int j = 0; j < H; j++) {
                    Z[(size_t)r * H + j] += h->b1[j];
                    A[(size_t)r * H + j] = ifp_silu(Z[(size_t)r * H + j]);
                }
            ifp_linear(E, A, h->w2, B, H, M);
            float c = 2.0f / ((float)B * M);
            for (int r = 0; r < B; r++) /* E = dLoss/dy = 2 (y - t) / var / (B M) */
                for (int j = 0; j < M; j++) {
                    float d = E[(size_t)r * M + j] + h->b2[j] - T[(size_t)perm[i0 + r] * M + j];
                    loss += (double)d * d * iv[j] / ((double)B * M);
                    E[(size_t)r * M + j] = c * d * iv[j];
                }
            ifp_sgemm(1, 0, M, H, B, 1.0f, E, M, A, H, 0.0f, g[2], H); /* dW2 = E^T A */
            ifp_sgemm(0, 0, B, H, M, 1.0f, E, M, h->w2, H, 0.0f, dZ, H); /* dA = E W2 */
            memset(g[1], 0, len[1] * sizeof(float));
            memset(g[3], 0, len[3] * sizeof(float));
            for (int r = 0; r < B; r++) {
                for (int j = 0; j < M; j++) g[3][j] += E[(size_t)r * M + j];
                for (int j = 0; j < H; j++) { /* silu'(z) = s (1 + z (1 - s)) */
                    float z = Z[(size_t)r * H + j], sg = 1.0f / (1.0f + expf(-z));
                    dZ[(size_t)r * H + j] *= sg * (1.0f + z * (1.0f - sg));
                    g[1][j] += dZ[(size_t)r * H + j];
                }
            }
            ifp_sgemm(1, 0, H, D, B, 1.0f, dZ, H, Xb, D, 0.0f, g[0], D); /* dW1 = dZ^T X */
            step++;
            float c1 = 1.0f - powf(b1, (float)step), c2 = 1.0f - powf(b2, (float)step);
            for (int k = 0; k < 4; k++)
                for (size_t i = 0; i < len[k]; i++) {
                    m1[k][i] = b1 * m1[k][i] + (1.0f - b1) * g[k][i];
                    m2[k][i] = b2 * m2[k][i] + (1.0f - b2) * g[k][i] * g[k][i];
                    par[k][i] -= p->lr * (m1[k][i] / c1) / (sqrtf(m2[k][i] / c2) + 1e-8f);
                }
        }
        logf_(p, "adam epoch %d/%d: loss %.4f (mse / variance, per output)", ep, p->epochs, loss / (n / B));
    }
    free(blk), free(iv), free(Xb), free(Z), free(A), free(E), free(dZ), free(perm);
    return IFP_OK;
}

/* Rows of fold f (validation) and the others (training) under perm. */
static void split_fold(const int *perm, int n, int folds, int f, int *tr, int *ntr, int *va, int *nva) {
    *ntr = *nva = 0;
    for (int i = 0; i < n; i++) {
        if (i % folds == f) va[(*nva)++] = perm[i];
        else tr[(*ntr)++] = perm[i];
    }
}

int ifp_head_fit(const float *X, int n, int D, const float *T, int M, const ifp_fit_params_t *pp, ifp_head_t **out,
                 float *lambda_used, float *oof, ifp_err_t *err) {
    ifp_fit_params_t p = pp ? *pp : ifp_fit_default_params();
    int cv = p.lambda < 0.0f;
    if (n < 2 || D < 1 || M < 1 || p.hidden < 1 || ((cv || oof) && (p.folds < 2 || p.folds > n)))
        return ifp_errf(err, IFP_EINVAL, "cannot fit a head: %d examples, %d features, %d outputs, %d folds", n, D, M,
                        p.folds);
    if (p.keep > 0 && ((int64_t)p.n_layers * p.d_ffn != M || p.keep > p.d_ffn))
        return ifp_errf(err, IFP_EINVAL, "target layout %d x %d (keep %d) does not match %d outputs", p.n_layers,
                        p.d_ffn, p.keep, M);
    int H = p.hidden, NL = p.n_linear < 0 ? (D < H / 2 ? D : H / 2) : p.n_linear;
    if (NL > D) NL = D;
    if (NL > H) NL = H;
    uint64_t rng = p.seed;
    ifp_head_t *h = ifp_head_new(D, H, M);
    ridge_t rg = {.n = n, .H = H, .M = M, .T = T};
    float *A = malloc((size_t)n * H * sizeof *A), *P = malloc((size_t)n * M * sizeof *P);
    float *Tr = malloc((size_t)n * M * sizeof *Tr), *Ar = malloc((size_t)n * H * sizeof *Ar);
    float *mean = malloc((size_t)M * sizeof *mean), *lam = malloc((size_t)M * sizeof *lam);
    double *colse = calloc((size_t)N_GRID * M, sizeof *colse); /* CV squared error per lambda and column */
    int *perm = malloc((size_t)n * sizeof *perm), *tr = malloc((size_t)n * sizeof *tr), *va = malloc((size_t)n * sizeof *va);
    rg.Ac = malloc((size_t)n * H * sizeof *rg.Ac), rg.Tc = malloc((size_t)n * M * sizeof *rg.Tc);
    rg.G = malloc((size_t)H * H * sizeof *rg.G), rg.L = malloc((size_t)H * H * sizeof *rg.L);
    rg.W = malloc((size_t)H * M * sizeof *rg.W), rg.gf = malloc((size_t)H * H * sizeof *rg.gf);
    rg.rf = malloc((size_t)H * M * sizeof *rg.rf), rg.cols = malloc((size_t)M * sizeof *rg.cols);
    int rc = (h && A && P && Tr && Ar && mean && lam && colse && perm && tr && va && rg.Ac && rg.Tc && rg.G && rg.L &&
              rg.W && rg.gf && rg.rf && rg.cols) ? IFP_OK : IFP_ENOMEM;
    if (!rc) rc = build_fc1(h, X, n, NL, &rng);
    if (!rc) {
        hidden_units(h, X, n, A);
        rg.A = A;
        for (int i = 0; i < n; i++) perm[i] = i;
        for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(rng_next(&rng) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        logf_(&p, "head: %d features -> %d hidden (%d principal, %d random SiLU) -> %d outputs, %d examples", D, H, NL,
              H - NL, M, n);
    }
    for (int j = 0; j < M && lam; j++) lam[j] = p.lambda;

    double mse;
    if (!rc && cv) {
        /* k-fold CV: each grid lambda for every column, then per column the
         * lambda with the least validation squared error */
        double cv_score[N_GRID] = {0}, cv_mse[N_GRID] = {0}, static_score = 0.0, static_mse = 0.0;
        int ntr, nva;
        for (int f = 0; !rc && f < p.folds; f++) {
            split_fold(perm, n, p.folds, f, tr, &ntr, va, &nva);
            for (int j = 0; j < M; j++) { /* the static baseline: the mean training target */
                double s = 0.0;
                for (int r = 0; r < ntr; r++) s += T[(size_t)tr[r] * M + j];
                mean[j] = (float)(s / ntr);
            }
            static_score += score(&p, &rg, mean, 0, va, nva, Tr, &mse) * nva / n;
            static_mse += mse * nva / n;
            for (int g = 0; !rc && g < N_GRID; g++) {
                for (int j = 0; j < M; j++) lam[j] = lambda_grid[g];
                if ((rc = ridge_fit(&rg, tr, ntr, lam, h))) break;
                ridge_predict(&rg, h, va, nva, Ar, P);
                cv_score[g] += score(&p, &rg, P, M, va, nva, Tr, &mse) * nva / n;
                cv_mse[g] += mse * nva / n;
                for (int r = 0; r < nva; r++)
                    for (int j = 0; j < M; j++) {
                        double d = P[(size_t)r * M + j] - Tr[(size_t)r * M + j];
                        colse[(size_t)g * M + j] += d * d;
                    }
            }
        }
        int hist[N_GRID] = {0};
        for (int j = 0; !rc && j < M; j++) {
            int best = 0;
            for (int g = 1; g < N_GRID; g++)
                if (colse[(size_t)g * M + j] < colse[(size_t)best * M + j]) best = g;
            lam[j] = lambda_grid[best];
            hist[best]++;
        }
        for (int g = 0; !rc && g < N_GRID; g++)
            logf_(&p, "cv lambda %-7g %s %.4f  mse %.4f  (best for %d outputs)", lambda_grid[g],
                  p.keep > 0 ? "captured" : "-mse", cv_score[g], cv_mse[g], hist[g]);
        if (!rc) logf_(&p, "cv: static mask %s %.4f, mse %.4f", p.keep > 0 ? "captured" : "-mse", static_score, static_mse);
    }
    if (!rc && (cv || oof)) { /* out-of-fold predictions with the final lambdas */
        double sel_score = 0.0, sel_mse = 0.0;
        int ntr, nva;
        for (int f = 0; !rc && f < p.folds; f++) {
            split_fold(perm, n, p.folds, f, tr, &ntr, va, &nva);
            if ((rc = ridge_fit(&rg, tr, ntr, lam, h))) break;
            ridge_predict(&rg, h, va, nva, Ar, P);
            sel_score += score(&p, &rg, P, M, va, nva, Tr, &mse) * nva / n;
            sel_mse += mse * nva / n;
            for (int r = 0; oof && r < nva; r++) memcpy(oof + (size_t)va[r] * M, P + (size_t)r * M, M * sizeof(float));
        }
        if (!rc)
            logf_(&p, "cv: %s lambda: %s %.4f, mse %.4f%s", cv ? "per-output" : "fixed", p.keep > 0 ? "captured" : "-mse",
                  sel_score, sel_mse, cv ? " (lambdas chosen on these folds: slightly optimistic)" : "");
    }
    if (!rc) rc = ridge_fit(&rg, perm, n, lam, h); /* every example */
    if (!rc) {
        ridge_predict(&rg, h, perm, n, Ar, P);
        double s = score(&p, &rg, P, M, perm, n, Tr, &mse);
        logf_(&p, "ridge fit on all %d examples: train mse %.4f, %s %.4f", n, mse, p.keep > 0 ? "captured" : "-mse", s);
    }
    if (!rc && p.epochs > 0) rc = fit_adam(h, X, T, n, &p, &rng);
    if (rc == IFP_ENOMEM) ifp_errf(err, rc, "out of memory fitting the head");
    else if (rc == IFP_ERANGE) ifp_errf(err, rc, "the ridge system is not positive definite (use a larger lambda)");
    if (!rc && lambda_used) { /* the median over outputs */
        for (int j = 0; j < M; j++) rg.cols[j] = j;
        qsort_r(rg.cols, (size_t)M, sizeof *rg.cols, by_key_desc, lam);
        *lambda_used = lam[rg.cols[M / 2]];
    }
    free(A), free(P), free(Tr), free(Ar), free(mean), free(lam), free(colse), free(perm), free(tr), free(va);
    free(rg.Ac), free(rg.Tc), free(rg.G), free(rg.L), free(rg.W), free(rg.gf), free(rg.rf), free(rg.cols);
    if (rc) {
        ifp_head_destroy(&h);
        return rc;
    }
    *out = h;
    return IFP_OK;
}
