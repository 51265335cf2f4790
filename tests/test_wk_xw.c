/* test_wk_xw — the fast kernels of y (+)= x · W (core/wk_xw*.c) against the
 * reference, on every weight type and every ISA path this CPU has; and the
 * exactness rule of decode batches (n <= 16): the product with a subset of
 * W's rows is bit-identical to the product with the full W and x zero on
 * the other inputs (a compacted model = the masked full model). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wkern_int.h"

static const ifp_ggml_type_t TYPES[] = {IFP_GGML_F32, IFP_GGML_F16, IFP_GGML_BF16, IFP_GGML_Q8_0};
static const int NS[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 33};
#define NN (int)(sizeof NS / sizeof *NS)
#define MAXN 33

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* rows × cols of type t from uniform [-1, 1) values (malloc'd). */
static void *make_w(ifp_ggml_type_t t, int rows, int cols, unsigned *seed) {
    size_t rb = ifp_wtype_row_bytes(t, cols);
    char *w = malloc(rows * rb + 1);
    float *row = malloc(sizeof *row * cols);
    assert_non_null(w);
    assert_non_null(row);
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < cols; o++) row[o] = frand(seed);
        ifp_quantize_row(t, row, cols, w + r * rb);
    }
    free(row);
    return w;
}

/* MAXN rows of x (stride ldx): some inputs 0 in every row (skipped), some
 * 0 in a few rows only. */
static float *make_x(int rows, int ldx, unsigned *seed) {
    float *x = malloc(sizeof *x * MAXN * ldx);
    assert_non_null(x);
    for (int i = 0; i < MAXN * ldx; i++) x[i] = frand(seed);
    for (int i = 0; i < rows; i++) {
        int kind = (int)((frand(seed) + 1.0f) * 4.0f); /* 0..7 */
        for (int r = 0; r < MAXN; r++)
            if (kind == 0 || (kind == 1 && r % 3 == 1)) x[r * ldx + i] = kind == 1 && r % 2 ? -0.0f : 0.0f;
    }
    return x;
}

/* The paths this CPU has. */
static int n_isas(void) {
    return (int)ifp_isa_best();
}

/* y and the padding around it: ldy = cols + 5, 3 sentinels past each row. */
static void check_shape(ifp_ggml_type_t t, int rows, int cols, unsigned *seed) {
    int ldx = rows + 3, ldy = cols + 5;
    void *wd = make_w(t, rows, cols, seed);
    ifp_wmat_t w = ifp_wmat(wd, t, rows, cols);
    float *x = make_x(rows, ldx, seed);
    size_t ny = (size_t)MAXN * ldy;
    float *y0 = malloc(sizeof *y0 * ny), *yr = malloc(sizeof *yr * ny), *yf = malloc(sizeof *yf * ny),
          *yg = malloc(sizeof *yg * ny);
    for (size_t i = 0; i < ny; i++) y0[i] = frand(seed);
    double tol = 4e-6 * (rows + 2);
    for (int ni = 0; ni < NN; ni++) {
        int n = NS[ni];
        for (int acc = 0; acc <= 1; acc++) {
            memcpy(yr, y0, sizeof *yr * ny);
            ifp_wmat_xw_ref(yr, ldy, x, ldx, &w, n, acc);
            for (int isa = IFP_ISA_GENERIC; isa <= n_isas(); isa++) {
                memcpy(yf, y0, sizeof *yf * ny);
                ifp_wk_xw((ifp_isa_t)isa, yf, ldy, x, ldx, &w, n, acc);
                for (int r = 0; r < n; r++)
                    for (int o = 0; o < ldy; o++) {
                        size_t k = (size_t)r * ldy + o;
                        if (o >= cols) { /* padding untouched */
                            assert_memory_equal(&yf[k], &y0[k], sizeof *yf);
                            continue;
                        }
                        if (fabs((double)yf[k] - yr[k]) > tol)
                            fail_msg("type %d isa %d rows %d cols %d n %d acc %d: y[%d][%d] = %g, reference %g", (int)t,
                                     isa, rows, cols, n, acc, r, o, (double)yf[k], (double)yr[k]);
                    }
                for (size_t k = (size_t)n * ldy; k < ny; k++) assert_memory_equal(&yf[k], &y0[k], sizeof *yf);
                /* decode batches: every path does the same f32 FMAs in the same order */
                if (n <= 16 && isa == IFP_ISA_GENERIC) memcpy(yg, yf, sizeof *yg * ny);
                if (n <= 16 && isa != IFP_ISA_GENERIC) assert_memory_equal(yf, yg, sizeof *yf * ny);
            }
        }
    }
    free(wd), free(x), free(y0), free(yr), free(yf), free(yg);
}

static void xw_matches_reference(void **unused) {
    (void)unused;
    static const int rows_list[] = {1, 7, 37, 300};
    static const int cols_f[] = {1, 3, 8, 13, 40, 72, 136, 1000};
    static const int cols_q[] = {32, 64, 96, 160, 1024};
    unsigned seed = 11;
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        ifp_ggml_type_t t = TYPES[ti];
        const int *cl = t == IFP_GGML_Q8_0 ? cols_q : cols_f;
        size_t nc = t == IFP_GGML_Q8_0 ? sizeof cols_q / sizeof *cols_q : sizeof cols_f / sizeof *cols_f;
        for (size_t ri = 0; ri < sizeof rows_list / sizeof *rows_list; ri++)
            for (size_t ci = 0; ci < nc; ci++) check_shape(t, rows_list[ri], cl[ci], &seed);
    }
}

/* xw(x restricted to S, W's rows S) == xw(x zero outside S, W), bit for bit,
 * on every path for n <= 16 (and on the reference). */
static void check_subset(ifp_ggml_type_t t, int rows, int cols, unsigned *seed) {
    int ldx = rows + 1, ldy = cols + 2;
    void *wd = make_w(t, rows, cols, seed);
    ifp_wmat_t w = ifp_wmat(wd, t, rows, cols);
    float *x = make_x(rows, ldx, seed);
    int *keep = malloc(sizeof *keep * rows), ns = 0;
    for (int i = 0; i < rows; i++) {
        keep[i] = frand(seed) < 0.0f;
        ns += keep[i];
    }
    if (!ns) keep[rows / 2] = 1, ns = 1;
    size_t rb = w.row_bytes;
    char *w2d = malloc(ns * rb);
    float *x2 = malloc(sizeof *x2 * MAXN * ns), *xm = malloc(sizeof *xm * MAXN * ldx);
    for (int i = 0, j = 0; i < rows; i++) {
        if (keep[i]) memcpy(w2d + j * rb, (const char *)wd + i * rb, rb);
        for (int r = 0; r < MAXN; r++) {
            xm[r * ldx + i] = keep[i] ? x[r * ldx + i] : 0.0f;
            if (keep[i]) x2[r * ns + j] = x[r * ldx + i];
        }
        j += keep[i];
    }
    ifp_wmat_t w2 = ifp_wmat(w2d, t, ns, cols);
    size_t ny = (size_t)16 * ldy;
    float *y0 = malloc(sizeof *y0 * ny), *ya = malloc(sizeof *ya * ny), *yb = malloc(sizeof *yb * ny);
    for (size_t i = 0; i < ny; i++) y0[i] = frand(seed);
    for (int n = 1; n <= 16; n++)
        for (int acc = 0; acc <= 1; acc++)
            for (int isa = 0; isa <= n_isas(); isa++) { /* 0: the reference */
                memcpy(ya, y0, sizeof *ya * ny);
                memcpy(yb, y0, sizeof *yb * ny);
                if (isa == 0) {
                    ifp_wmat_xw_ref(ya, ldy, x2, ns, &w2, n, acc);
                    ifp_wmat_xw_ref(yb, ldy, xm, ldx, &w, n, acc);
                } else {
                    ifp_wk_xw((ifp_isa_t)isa, ya, ldy, x2, ns, &w2, n, acc);
                    ifp_wk_xw((ifp_isa_t)isa, yb, ldy, xm, ldx, &w, n, acc);
                }
                if (memcmp(ya, yb, sizeof *ya * ny))
                    fail_msg("type %d isa %d rows %d (kept %d) cols %d n %d acc %d: compacted != masked", (int)t, isa,
                             rows, ns, cols, n, acc);
            }
    free(wd), free(x), free(keep), free(w2d), free(x2), free(xm), free(y0), free(ya), free(yb);
}

static void xw_subset_is_bit_exact(void **unused) {
    (void)unused;
    static const int shapes[][2] = {{37, 40}, {300, 136}, {1000, 96}, {129, 1000}, {64, 2048}};
    unsigned seed = 23;
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int cols = shapes[s][1];
            if (TYPES[ti] == IFP_GGML_Q8_0 && cols % 32) cols = (cols / 32 + 1) * 32;
            check_subset(TYPES[ti], shapes[s][0], cols, &seed);
        }
}

/* The public entry picks the path of ifp_isa_set; x all zero gives y = 0
 * (accumulate 0) or leaves y (1); a W without rows likewise. */
static void xw_public_entry_and_edges(void **unused) {
    (void)unused;
    unsigned seed = 5;
    int rows = 50, cols = 64;
    void *wd = make_w(IFP_GGML_Q8_0, rows, cols, &seed);
    ifp_wmat_t w = ifp_wmat(wd, IFP_GGML_Q8_0, rows, cols), w0 = ifp_wmat(wd, IFP_GGML_Q8_0, 0, cols);
    float x[4 * 50], y[4 * 64], yr[4 * 64];
    for (int isa = IFP_ISA_GENERIC; isa <= n_isas(); isa++) {
        ifp_isa_set((ifp_isa_t)isa);
        assert_true(ifp_isa_get() <= (ifp_isa_t)isa);
        for (int i = 0; i < 4 * rows; i++) x[i] = frand(&seed);
        ifp_wmat_xw(y, cols, x, rows, &w, 4, 0);
        ifp_wmat_xw_ref(yr, cols, x, rows, &w, 4, 0);
        for (int i = 0; i < 4 * cols; i++) assert_float_equal(y[i], yr[i], 1e-4);
        memset(x, 0, sizeof x);
        for (int acc = 0; acc <= 1; acc++)
            for (int n = 1; n <= 4; n += 3) {
                for (int i = 0; i < 4 * cols; i++) y[i] = 1.5f;
                ifp_wmat_xw(y, cols, x, rows, &w, n, acc);
                for (int i = 0; i < 4 * cols; i++) assert_true(y[i] == (i < n * cols && !acc ? 0.0f : 1.5f));
                for (int i = 0; i < 4 * cols; i++) y[i] = 1.5f;
                ifp_wk_xw((ifp_isa_t)isa, y, cols, x, rows, &w0, n, acc);
                for (int i = 0; i < 4 * cols; i++) assert_true(y[i] == (i < n * cols && !acc ? 0.0f : 1.5f));
            }
    }
    ifp_isa_set(IFP_ISA_AUTO);
    free(wd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xw_matches_reference),
        cmocka_unit_test(xw_subset_is_bit_exact),
        cmocka_unit_test(xw_public_entry_and_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
