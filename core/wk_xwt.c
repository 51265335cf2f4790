/* wk_xwt.c — fast kernels for y (+)= x · Wᵀ (a row of W is an output).
 *
 * Decode batches (n <= IFP_WK_SMALL_N) are bound by reading W: our own
 * kernels read it once for all n rows, widening it to f32 in registers
 * (wk_xwt_simd.h, one source instantiated per ISA path).  Prefill (larger
 * n) is bound by arithmetic: F32 goes to ifp_sgemm as stored; the other
 * types are widened a panel of rows at a time into a per-thread f32 scratch
 * and each panel goes to ifp_sgemm. */
#include <stdlib.h>

#include "wk_xwt_simd.h"

/* At least n floats of this thread's scratch (wkern_int.h). */
static float *scratch_get(size_t n) { return ifp_wk_scratch(IFP_WK_XWT_WORK, n * sizeof(float)); }

/* ---- prefill ---- */

/* Rows of W widened per ifp_sgemm call: the panel (XWT_PANEL × cols f32)
 * is reused by all n rows of x from cache (64..512 measured the same on 6656
 * × 2048 and 2048 × 6656 at n = 128, and BF16 / Q8_0 as fast as F32). */
#ifndef XWT_PANEL
#define XWT_PANEL 128
#endif

typedef void (*xwt_small_fn)(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate,
                             float *work);
typedef void (*widen_rows_fn)(const ifp_wmat_t *w, int r0, int nr, float *out);

static void xwt_prefill(widen_rows_fn widen, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                        int accumulate) {
    const float beta = accumulate ? 1.0f : 0.0f;
    if (w->type == IFP_GGML_F32) {
        ifp_sgemm(0, 1, n, w->rows, w->cols, 1.0f, x, ldx, w->data, w->cols, beta, y, ldy);
        return;
    }
    float *p = scratch_get((size_t)XWT_PANEL * w->cols);
    for (int o0 = 0; o0 < w->rows; o0 += XWT_PANEL) {
        int nb = w->rows - o0 < XWT_PANEL ? w->rows - o0 : XWT_PANEL;
        widen(w, o0, nb, p);
        ifp_sgemm(0, 1, n, nb, w->cols, 1.0f, x, ldx, p, w->cols, beta, y + o0, ldy);
    }
}

/* ---- dispatch ---- */

void ifp_wk_xwt(ifp_isa_t isa, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                int accumulate) {
    xwt_small_fn small = ifp_wk_xwt_small_generic;
    widen_rows_fn widen = ifp_wk_widen_rows_generic;
#if defined(__x86_64__)
    if (isa == IFP_ISA_AVX512) small = ifp_wk_xwt_small_avx512, widen = ifp_wk_widen_rows_avx512;
    if (isa == IFP_ISA_AVX2) small = ifp_wk_xwt_small_avx2, widen = ifp_wk_widen_rows_avx2;
#else
    (void)isa;
#endif
    if (n <= 0 || w->rows <= 0) return;
    if (n <= IFP_WK_SMALL_N) small(y, ldy, x, ldx, w, n, accumulate, scratch_get((size_t)n * w->cols));
    else xwt_prefill(widen, y, ldy, x, ldx, w, n, accumulate);
}
