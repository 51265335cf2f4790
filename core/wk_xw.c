/* wk_xw.c — fast kernels for y (+)= x · W (a row of W is an input). */
#include <stdlib.h>

#include "wkern_int.h"

void ifp_wk_xw(ifp_isa_t isa, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
               int accumulate) {
    (void)isa;
    if (w->type == IFP_GGML_F32) {
        ifp_sgemm(0, 0, n, w->cols, w->rows, 1.0f, x, ldx, w->data, w->cols, accumulate ? 1.0f : 0.0f, y, ldy);
        return;
    }
    float *p = malloc((size_t)w->rows * w->cols * sizeof *p);
    if (!p) abort();
    for (int r = 0; r < w->rows; r++) ifp_dequantize_row(w->type, ifp_wmat_row(w, r), w->cols, p + (size_t)r * w->cols);
    ifp_sgemm(0, 0, n, w->cols, w->rows, 1.0f, x, ldx, p, w->cols, accumulate ? 1.0f : 0.0f, y, ldy);
    free(p);
}
