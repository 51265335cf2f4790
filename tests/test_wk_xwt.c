/* test_wk_xwt — the fast y (+)= x · Wᵀ kernels (decode n <= 16, prefill
 * above) against the reference, for every weight type and every ISA path
 * this CPU has; and the properties the decode path promises: an output does
 * not depend on where its W row sits (row gathers are bit-identical) nor on
 * the other rows of x. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "wmat.h"

static const ifp_ggml_type_t k_types[] = {IFP_GGML_F32, IFP_GGML_F16, IFP_GGML_BF16, IFP_GGML_Q8_0};
static const int k_ns[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 33};
#define N_MAX 33

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* A rows × cols matrix of type t from values of varied magnitude (malloc'd data). */
static ifp_wmat_t make_w(ifp_ggml_type_t t, int rows, int cols, unsigned *seed) {
    size_t rb = ifp_wtype_row_bytes(t, cols);
    char *data = malloc(rows * rb + 1);
    float *v = malloc(sizeof(float) * cols);
    assert_non_null(data);
    for (int r = 0; r < rows; r++) {
        float scale = (r % 3 == 0) ? 1.0f : (r % 3 == 1) ? 0.01f : 40.0f;
        for (int k = 0; k < cols; k++) v[k] = frand(seed) * scale;
        ifp_quantize_row(t, v, cols, data + r * rb);
    }
    free(v);
    return ifp_wmat(data, t, rows, cols);
}

/* Sets the path; 0 if it is not available here (the IFP_ISA cap). */
static int use_isa(ifp_isa_t isa) {
    ifp_isa_set(isa);
    return ifp_isa_get() == isa;
}

/* ifp_wmat_xwt against the reference for one shape, every n, both modes,
 * strided x and y.  Tolerance: the f32 rounding of a sum of cols products
 * in chains of at most cols/4 + 8 additions, relative to Σ|x·w| + |y|; and
 * for Q8_0 decode (n <= 16), x's rounding to int16 per block of 32: at most
 * max|x|/65534 per element, times Σ|w| of the block (wk_xwt_q8.h). */
static void check_shape(ifp_ggml_type_t t, int rows, int cols) {
    unsigned seed = (unsigned)(rows * 7919 + cols * 31 + (int)t);
    ifp_wmat_t w = make_w(t, rows, cols, &seed);
    int ldx = cols + 3, ldy = rows + 5;
    float *x = malloc(sizeof(float) * N_MAX * ldx), *y0 = malloc(sizeof(float) * N_MAX * ldy);
    float *y1 = malloc(sizeof(float) * N_MAX * ldy), *y2 = malloc(sizeof(float) * N_MAX * ldy);
    float *row = malloc(sizeof(float) * cols);
    for (int i = 0; i < N_MAX * ldx; i++) x[i] = frand(&seed) * (i % 5 == 0 ? 8.0f : 1.0f);
    for (int i = 0; i < N_MAX * ldy; i++) y0[i] = frand(&seed);
    for (size_t in = 0; in < sizeof k_ns / sizeof *k_ns; in++) {
        int n = k_ns[in];
        for (int acc = 0; acc <= 1; acc++) {
            memcpy(y1, y0, sizeof(float) * N_MAX * ldy);
            memcpy(y2, y0, sizeof(float) * N_MAX * ldy);
            ifp_wmat_xwt_ref(y1, ldy, x, ldx, &w, n, acc);
            ifp_wmat_xwt(y2, ldy, x, ldx, &w, n, acc);
            for (int o = 0; o < rows; o++) {
                ifp_dequantize_row(t, ifp_wmat_row(&w, o), cols, row);
                for (int m = 0; m < n; m++) {
                    double mag = acc ? fabs(y0[m * ldy + o]) : 0.0, xr = 0.0;
                    for (int k = 0; k < cols; k++) mag += fabs((double)x[m * ldx + k] * row[k]);
                    if (t == IFP_GGML_Q8_0 && n <= 16) /* decode: x rounded to int16 per block */
                        for (int b = 0; b < cols; b += 32) {
                            double amax = 0.0, wsum = 0.0;
                            for (int k = b; k < b + 32; k++) {
                                amax = fmax(amax, fabs((double)x[m * ldx + k]));
                                wsum += fabs((double)row[k]);
                            }
                            xr += amax / 65534.0 * wsum;
                        }
                    double tol = (cols / 4.0 + 8.0) * 0x1p-23 * mag + xr * (1.0 + 0x1p-20) + 1e-30;
                    float a = y1[m * ldy + o], b = y2[m * ldy + o];
                    if (!(fabs((double)a - b) <= tol))
                        fail_msg("%s %s rows=%d cols=%d n=%d acc=%d: y[%d][%d] ref %.9g fast %.9g (tol %.3g)",
                                 ifp_ggml_type_name(t), ifp_isa_name(ifp_isa_get()), rows, cols, n, acc, m, o, a,
                                 b, tol);
                }
            }
            /* nothing outside the n × rows block is written */
            for (int m = 0; m < N_MAX; m++)
                for (int o = 0; o < ldy; o++)
                    if (m >= n || o >= rows) assert_memory_equal(&y2[m * ldy + o], &y0[m * ldy + o], sizeof(float));
        }
    }
    free(x), free(y0), free(y1), free(y2), free(row), free((void *)w.data);
}

static void matches_reference(void **unused) {
    (void)unused;
    static const int rows_of[] = {1, 5, 37};
    static const int cols_any[] = {1, 3, 8, 19, 40, 72, 77, 136, 1000, 1003};
    static const int cols_q8[] = {32, 64, 160, 1024};
    ifp_kernel_set(IFP_KERNEL_BLAS);
    for (int isa = IFP_ISA_GENERIC; isa <= (int)ifp_isa_best(); isa++) {
        if (!use_isa((ifp_isa_t)isa)) continue;
        for (size_t it = 0; it < sizeof k_types / sizeof *k_types; it++) {
            ifp_ggml_type_t t = k_types[it];
            const int *cols = t == IFP_GGML_Q8_0 ? cols_q8 : cols_any;
            size_t nc = t == IFP_GGML_Q8_0 ? sizeof cols_q8 / sizeof *cols_q8 : sizeof cols_any / sizeof *cols_any;
            for (size_t ir = 0; ir < sizeof rows_of / sizeof *rows_of; ir++)
                for (size_t ic = 0; ic < nc; ic++) check_shape(t, rows_of[ir], cols[ic]);
        }
    }
    ifp_isa_set(IFP_ISA_AUTO);
}

/* Gathering rows of W (in any order, with repeats) gives bit-identical
 * outputs on the decode path; and each row of x gives the same bits alone
 * as in a batch. */
static void decode_outputs_are_position_free(void **unused) {
    (void)unused;
    static const int idx[] = {36, 0, 5, 17, 3, 36, 22, 1, 2, 30, 31};
    enum { ROWS = 37, NI = sizeof idx / sizeof *idx };
    ifp_kernel_set(IFP_KERNEL_BLAS);
    for (int isa = IFP_ISA_GENERIC; isa <= (int)ifp_isa_best(); isa++) {
        if (!use_isa((ifp_isa_t)isa)) continue;
        for (size_t it = 0; it < sizeof k_types / sizeof *k_types; it++) {
            ifp_ggml_type_t t = k_types[it];
            int cols = t == IFP_GGML_Q8_0 ? 544 : 531;
            unsigned seed = 99 + (unsigned)it;
            ifp_wmat_t w = make_w(t, ROWS, cols, &seed);
            char *g = malloc(NI * w.row_bytes);
            for (int j = 0; j < NI; j++) memcpy(g + j * w.row_bytes, ifp_wmat_row(&w, idx[j]), w.row_bytes);
            ifp_wmat_t w2 = ifp_wmat(g, t, NI, cols);
            float *x = malloc(sizeof(float) * 16 * cols), *y = malloc(sizeof(float) * 16 * ROWS);
            float *y2 = malloc(sizeof(float) * 16 * NI), *y1 = malloc(sizeof(float) * ROWS);
            for (int i = 0; i < 16 * cols; i++) x[i] = frand(&seed);
            for (int n = 1; n <= 16; n++)
                for (int acc = 0; acc <= 1; acc++) {
                    for (int i = 0; i < 16 * ROWS; i++) y[i] = 0.25f * (float)(i % ROWS);
                    for (int m = 0; m < 16; m++)
                        for (int j = 0; j < NI; j++) y2[m * NI + j] = 0.25f * (float)idx[j];
                    ifp_wmat_xwt(y, ROWS, x, cols, &w, n, acc);
                    ifp_wmat_xwt(y2, NI, x, cols, &w2, n, acc);
                    for (int m = 0; m < n; m++) {
                        for (int j = 0; j < NI; j++)
                            assert_memory_equal(&y2[m * NI + j], &y[m * ROWS + idx[j]], sizeof(float));
                        for (int o = 0; o < ROWS; o++) y1[o] = 0.25f * (float)o;
                        ifp_wmat_xwt(y1, ROWS, x + m * cols, cols, &w, 1, acc);
                        assert_memory_equal(y1, &y[m * ROWS], sizeof(float) * ROWS);
                    }
                }
            free(x), free(y), free(y1), free(y2), free(g), free((void *)w.data);
        }
    }
    ifp_isa_set(IFP_ISA_AUTO);
}

/* Every finite f16 and bf16 value widens exactly (f16 subnormals
 * included), on the decode path (x = rows of the identity, n = 16) and in
 * the prefill panels (n = 32). */
static void every_half_widens_exactly(void **unused) {
    (void)unused;
    enum { COLS = 32, ROWS = 65536 / COLS };
    uint16_t *h = malloc(sizeof(uint16_t) * 65536);
    float *x = calloc(COLS * COLS, sizeof(float)), *y = malloc(sizeof(float) * COLS * ROWS);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int i = 0; i < COLS; i++) x[i * COLS + i] = 1.0f;
    ifp_kernel_set(IFP_KERNEL_BLAS);
    for (int isa = IFP_ISA_GENERIC; isa <= (int)ifp_isa_best(); isa++) {
        if (!use_isa((ifp_isa_t)isa)) continue;
        for (int bf = 0; bf <= 1; bf++) {
            ifp_ggml_type_t t = bf ? IFP_GGML_BF16 : IFP_GGML_F16;
            /* a finite value in every row (inf · 0 would be nan): rows of non-finite values are zeroed */
            ifp_wmat_t w = ifp_wmat(h, t, ROWS, COLS);
            for (int n = 16; n <= 32; n += 16) {
                ifp_wmat_xwt(y, ROWS, x, COLS, &w, n, 0);
                for (int o = 0; o < ROWS; o++) {
                    int finite = 1;
                    for (int k = 0; k < COLS; k++) finite &= isfinite(ifp_wrow_get(t, ifp_wmat_row(&w, o), k));
                    if (!finite) continue;
                    for (int m = 0; m < n; m++) {
                        float want = ifp_wrow_get(t, ifp_wmat_row(&w, o), m), got = y[m * ROWS + o];
                        if (!(want == got))
                            fail_msg("%s %s n=%d: 0x%04x widens to %.9g, want %.9g", ifp_ggml_type_name(t),
                                     ifp_isa_name((ifp_isa_t)isa), n, h[o * COLS + m], got, want);
                    }
                }
            }
        }
    }
    ifp_isa_set(IFP_ISA_AUTO);
    free(h), free(x), free(y);
}

/* Q8_0 decode rounds x to int16 per block of 32: a block of zeros, a block
 * whose largest value is tiny, huge or subnormal, and one holding an inf or a nan
 * (its outputs are nan, never a finite guess). */
static void q8_decode_x_blocks(void **unused) {
    (void)unused;
    enum { COLS = 128, ROWS = 9 };
    unsigned seed = 5;
    ifp_wmat_t w = make_w(IFP_GGML_Q8_0, ROWS, COLS, &seed);
    float x[4][COLS], y[4][ROWS], yr[4][ROWS];
    for (int m = 0; m < 4; m++)
        for (int k = 0; k < COLS; k++) x[m][k] = frand(&seed);
    for (int k = 0; k < 32; k++) x[0][k] = 0.0f;         /* row 0: a block of zeros */
    for (int k = 32; k < 64; k++) x[1][k] *= 1e-30f;     /* row 1: tiny and huge blocks */
    for (int k = 64; k < 96; k++) x[1][k] *= 1e30f;
    for (int k = 96; k < 128; k++) x[1][k] *= 1e-40f; /* subnormal */
    ifp_kernel_set(IFP_KERNEL_BLAS);
    for (int isa = IFP_ISA_GENERIC; isa <= (int)ifp_isa_best(); isa++) {
        if (!use_isa((ifp_isa_t)isa)) continue;
        x[2][70] = 1.0f, x[3][3] = 2.0f;
        ifp_wmat_xwt_ref(&yr[0][0], ROWS, &x[0][0], COLS, &w, 2, 0);
        ifp_wmat_xwt(&y[0][0], ROWS, &x[0][0], COLS, &w, 2, 0);
        for (int m = 0; m < 2; m++)
            for (int o = 0; o < ROWS; o++) {
                float row[COLS];
                double tol = 1e-300;
                ifp_dequantize_row(IFP_GGML_Q8_0, ifp_wmat_row(&w, o), COLS, row);
                for (int b = 0; b < COLS; b += 32) { /* as check_shape's */
                    double amax = 0.0, wsum = 0.0, mag = 0.0;
                    for (int k = b; k < b + 32; k++) {
                        amax = fmax(amax, fabs((double)x[m][k]));
                        wsum += fabs((double)row[k]);
                        mag += fabs((double)x[m][k] * row[k]);
                    }
                    tol += amax / 65534.0 * wsum * (1.0 + 0x1p-20) + (COLS / 4.0 + 8.0) * 0x1p-23 * mag;
                }
                if (!(fabs((double)y[m][o] - yr[m][o]) <= tol))
                    fail_msg("%s m=%d o=%d: %.9g, reference %.9g", ifp_isa_name((ifp_isa_t)isa), m, o, y[m][o],
                             yr[m][o]);
            }
        x[2][70] = INFINITY, x[3][3] = NAN;
        ifp_wmat_xwt(&y[0][0], ROWS, &x[0][0], COLS, &w, 4, 0);
        for (int o = 0; o < ROWS; o++) {
            assert_true(isnan(y[2][o]));
            assert_true(isnan(y[3][o]));
            assert_true(isfinite(y[0][o]) && isfinite(y[1][o]));
        }
    }
    ifp_isa_set(IFP_ISA_AUTO);
    free((void *)w.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_reference),
        cmocka_unit_test(decode_outputs_are_position_free),
        cmocka_unit_test(every_half_widens_exactly),
        cmocka_unit_test(q8_decode_x_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
