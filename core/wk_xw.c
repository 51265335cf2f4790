/* wk_xw.c — fast kernels for y (+)= x · W (a row of W is an input: the FFN
 * down projection stored channel-major).
 *
 * Decode batches (n <= IFP_WK_XW_SMALL_N) are bound by reading W: our own
 * kernels read it once for all n rows, skip the inputs whose x is 0 in
 * every row, and accumulate every output over its inputs in ascending
 * order, one f32 FMA each: fma(x, w, acc), for Q8_0 fma(x · d, q, acc) with
 * x · d rounded once per block (wk_xw_simd.h, one source instantiated per
 * ISA path; the portable path below does the same with fmaf).  Prefill (larger
 * n) is bound by arithmetic: F32 goes to ifp_sgemm as stored; the other
 * types are widened a panel of rows at a time into a per-thread f32 scratch
 * and the panels' products are summed by ifp_sgemm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wk_xw_simd.h"

int ifp_wk_xw_active(const float *x, int ldx, int n, int rows, int *idx) {
    int na = 0;
    if (n == 1) {
        for (int i = 0; i < rows; i++)
            if (x[i] != 0.0f) idx[na++] = i;
        return na;
    }
    for (int i = 0; i < rows; i++)
        for (int r = 0; r < n; r++)
            if (x[(size_t)r * ldx + i] != 0.0f) {
                idx[na++] = i;
                break;
            }
    return na;
}

/* ---- the portable path ---- */

void ifp_wk_xw_small_generic(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                             int accumulate, const int *idx, int na, float *S) {
    const int cols = w->cols;
    int lds = accumulate ? cols : ldy;
    if (!accumulate) S = y;
    float *row = ifp_wk_scratch(IFP_WK_XW_ROW, (size_t)cols * sizeof *row);
    for (int r = 0; r < n; r++) memset(S + (size_t)r * lds, 0, (size_t)cols * sizeof *S);
    for (int a = 0; a < na; a++) { /* inputs in ascending order, one fma each */
        int i = idx[a];
        if (w->type == IFP_GGML_Q8_0) { /* per block: fma(x · d, q, s), x · d rounded once */
            const ifp_block_q8_0_t *blk = ifp_wmat_row(w, i);
            for (int b = 0; b < cols / IFP_Q8_0_BLOCK; b++) {
                float d = ifp_f16_to_f32(blk[b].d);
                for (int r = 0; r < n; r++) {
                    float xd = x[(size_t)r * ldx + i] * d, *s = S + (size_t)r * lds + b * IFP_Q8_0_BLOCK;
                    for (int o = 0; o < IFP_Q8_0_BLOCK; o++) s[o] = fmaf(xd, (float)blk[b].qs[o], s[o]);
                }
            }
            continue;
        }
        ifp_dequantize_row(w->type, ifp_wmat_row(w, i), cols, row);
        for (int r = 0; r < n; r++) {
            float xv = x[(size_t)r * ldx + i], *s = S + (size_t)r * lds;
            for (int o = 0; o < cols; o++) s[o] = fmaf(xv, row[o], s[o]);
        }
    }
    if (accumulate)
        for (int r = 0; r < n; r++)
            for (int o = 0; o < cols; o++) y[(size_t)r * ldy + o] += S[(size_t)r * cols + o];
}

void ifp_wk_xw_widen_generic(const ifp_wmat_t *w, int r0, int nr, float *out) {
    for (int i = 0; i < nr; i++) ifp_dequantize_row(w->type, ifp_wmat_row(w, r0 + i), w->cols, out + (size_t)i * w->cols);
}

/* ---- prefill ---- */

/* Rows of W widened per ifp_sgemm call (PANEL × cols f32 of scratch; 128
 * to 512 measure alike): F16, BF16 and Q8_0 prefill then run as fast as F32
 * (~70-80 GFLOP/s on one Zen 3 core at n = 128, 6656 × 2048). */
#define PANEL 256

typedef void (*widen_fn)(const ifp_wmat_t *w, int r0, int nr, float *out);

static void xw_prefill(widen_fn widen, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                       int accumulate) {
    const float beta = accumulate ? 1.0f : 0.0f;
    if (w->type == IFP_GGML_F32) {
        ifp_sgemm(0, 0, n, w->cols, w->rows, 1.0f, x, ldx, w->data, w->cols, beta, y, ldy);
        return;
    }
    float *p = ifp_wk_scratch(IFP_WK_XW_PANEL, (size_t)PANEL * w->cols * sizeof *p);
    for (int i0 = 0; i0 < w->rows; i0 += PANEL) {
        int nb = w->rows - i0 < PANEL ? w->rows - i0 : PANEL;
        widen(w, i0, nb, p);
        ifp_sgemm(0, 0, n, w->cols, nb, 1.0f, x + i0, ldx, p, w->cols, i0 ? 1.0f : beta, y, ldy);
    }
}

/* ---- dispatch ---- */

typedef void (*small_fn)(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate,
                         const int *idx, int na, float *S);

void ifp_wk_xw(ifp_isa_t isa, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
               int accumulate) {
    if (n <= 0 || w->cols <= 0) return;
    small_fn small = ifp_wk_xw_small_generic;
    widen_fn widen = ifp_wk_xw_widen_generic;
#if defined(__x86_64__)
    if (isa == IFP_ISA_AVX512) small = ifp_wk_xw_small_avx512, widen = ifp_wk_xw_widen_avx512;
    if (isa == IFP_ISA_AVX2) small = ifp_wk_xw_small_avx2, widen = ifp_wk_xw_widen_avx2;
#else
    (void)isa;
#endif
    if (n > IFP_WK_XW_SMALL_N && w->rows > 0) {
        xw_prefill(widen, y, ldy, x, ldx, w, n, accumulate);
        return;
    }
    int *idx = ifp_wk_scratch(IFP_WK_XW_IDX, (size_t)(w->rows > 0 ? w->rows : 1) * sizeof *idx);
    int na = w->rows > 0 ? ifp_wk_xw_active(x, ldx, n, w->rows, idx) : 0;
    if (!na) { /* every sum is empty: acc = 0 */
        for (int r = 0; r < n; r++)
            for (int o = 0; o < w->cols; o++) y[(size_t)r * ldy + o] = accumulate ? y[(size_t)r * ldy + o] + 0.0f : 0.0f;
        return;
    }
    float *S = accumulate ? ifp_wk_scratch(IFP_WK_XW_PART, (size_t)n * w->cols * sizeof *S) : NULL;
    small(y, ldy, x, ldx, w, n, accumulate, idx, na, S);
}
