/* wk_xwt.c — fast kernels for y (+)= x · Wᵀ (a row of W is an output). */
#include <stdlib.h>

#include "wkern_int.h"

void ifp_wk_xwt(ifp_isa_t isa, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                int accumulate) {
    (void)isa;
    if (w->type == IFP_GGML_F32) {
        ifp_sgemm(0, 1, n, w->rows, w->cols, 1.0f, x, ldx, w->data, w->cols, accumulate ? 1.0f : 0.0f, y, ldy);
        return;
    }
    enum { PANEL = 64 };
    float *p = malloc((size_t)PANEL * w->cols * sizeof *p);
    if (!p) abort();
    for (int o0 = 0; o0 < w->rows; o0 += PANEL) {
        int nb = w->rows - o0 < PANEL ? w->rows - o0 : PANEL;
        for (int r = 0; r < nb; r++) ifp_dequantize_row(w->type, ifp_wmat_row(w, o0 + r), w->cols, p + (size_t)r * w->cols);
        ifp_sgemm(0, 1, n, nb, w->cols, 1.0f, x, ldx, p, w->cols, accumulate ? 1.0f : 0.0f, y + o0, ldy);
    }
    free(p);
}
