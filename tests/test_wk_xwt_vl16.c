/* test_wk_xwt_vl16 — the decode template of y (+)= x · Wᵀ (core/wk_xwt_simd.h
 * and wk_xwt_q8.h) instantiated here at 16 lanes with portable GCC vectors
 * and scalar stand-ins for the ISA macros: the logic of the AVX-512 path
 * (16-lane steps, 32-column BF16 pairs, one Q8_0 block per multiply-add,
 * its tile sizes) checked on every machine, including the many without
 * AVX-512 (the AVX-512 file itself differs only in the macros' intrinsics).
 * Against the reference for every type, n 1..16, odd shapes; nothing
 * written outside the outputs; each row of x gives the same bits alone as
 * in a batch. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "wkern_int.h"

#pragma GCC diagnostic ignored "-Wpsabi" /* 64-byte vectors without AVX-512: the ABI note */

#define WK_VL 16
#define WK_R1 8
#define WK_R2 8
#define WK_RN 4
#define WK_MB 4
#define WK_FMA(a, b, c) ((a) * (b) + (c))
typedef uint16_t t_vh16 __attribute__((vector_size(32)));
typedef float t_vf16 __attribute__((vector_size(64)));
typedef int32_t t_vi16 __attribute__((vector_size(64)));
static inline t_vf16 f16v(t_vh16 h) {
    t_vf16 r;
    for (int i = 0; i < 16; i++) r[i] = ifp_f16_to_f32(h[i]);
    return r;
}
static inline t_vi16 i8v(const void *p) {
    int8_t b[16];
    t_vi16 r;
    memcpy(b, p, sizeof b);
    for (int i = 0; i < 16; i++) r[i] = b[i];
    return r;
}
typedef struct {
    int16_t v[32];
} t_q8w;
static inline t_q8w q8w(const void *q) {
    int8_t b[32];
    t_q8w w;
    memcpy(b, q, sizeof b);
    for (int i = 0; i < 32; i++) w.v[i] = b[i];
    return w;
}
/* lane j = w[2j]·x[2j] + w[2j+1]·x[2j+1], as vpmaddwd */
static inline t_vi16 q8dot(t_q8w w, const int16_t *x) {
    t_vi16 s;
    for (int j = 0; j < 16; j++) s[j] = (int32_t)w.v[2 * j] * x[2 * j] + (int32_t)w.v[2 * j + 1] * x[2 * j + 1];
    return s;
}
#define WK_F16(h) f16v(h)
#define WK_F16S(u) ifp_f16_to_f32(u)
#define WK_I8(p) i8v(p)
#define WK_Q8W_T t_q8w
#define WK_Q8W(p) q8w(p)
#define WK_Q8DOT(w, x) q8dot((w), (x))
#define WK_Q8S1 4 /* as wk_xwt_avx512.c */
#define WK_Q8SN 4
#define WK_Q8G 2
#define WK_ENTRY(f) f##_vl16
void ifp_wk_xwt_small_vl16(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate,
                           float *work);
void ifp_wk_widen_rows_vl16(const ifp_wmat_t *w, int r0, int nr, float *out);
#include "wk_xwt_simd.h"

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* One shape: every n, accumulate on, tolerance as test_wk_xwt's. */
static void check_shape(ifp_ggml_type_t t, int rows, int cols, unsigned *seed) {
    size_t rb = ifp_wtype_row_bytes(t, cols);
    char *d = malloc(rows * rb + 1);
    float *v = malloc(sizeof(float) * cols), *row = malloc(sizeof(float) * cols);
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++) v[k] = frand(seed) * (r % 3 == 0 ? 1.0f : r % 3 == 1 ? 0.01f : 40.0f);
        ifp_quantize_row(t, v, cols, d + r * rb);
    }
    ifp_wmat_t w = ifp_wmat(d, t, rows, cols);
    int ldx = cols + 3, ldy = rows + 5;
    float *x = malloc(sizeof(float) * 16 * ldx), *yr = malloc(sizeof(float) * 16 * ldy);
    float *yf = malloc(sizeof(float) * 16 * ldy), *y1 = malloc(sizeof(float) * ldy);
    float *work = malloc(sizeof(float) * 16 * cols + 64);
    for (int i = 0; i < 16 * ldx; i++) x[i] = frand(seed) * (i % 5 == 0 ? 8.0f : 1.0f);
    for (int n = 1; n <= 16; n++) {
        for (int i = 0; i < 16 * ldy; i++) yr[i] = yf[i] = 0.5f;
        ifp_wmat_xwt_ref(yr, ldy, x, ldx, &w, n, 1);
        ifp_wk_xwt_small_vl16(yf, ldy, x, ldx, &w, n, 1, work);
        for (int o = 0; o < rows; o++) {
            ifp_dequantize_row(t, ifp_wmat_row(&w, o), cols, row);
            for (int m = 0; m < n; m++) {
                double mag = 0.5, xr = 0.0;
                for (int k = 0; k < cols; k++) mag += fabs((double)x[m * ldx + k] * row[k]);
                if (t == IFP_GGML_Q8_0)
                    for (int b = 0; b < cols; b += 32) {
                        double amax = 0.0, wsum = 0.0;
                        for (int k = b; k < b + 32; k++) {
                            amax = fmax(amax, fabs((double)x[m * ldx + k]));
                            wsum += fabs((double)row[k]);
                        }
                        xr += amax / 65534.0 * wsum;
                    }
                double tol = (cols / 4.0 + 8.0) * 0x1p-23 * mag + xr * (1.0 + 0x1p-20) + 1e-30;
                if (!(fabs((double)yr[m * ldy + o] - yf[m * ldy + o]) <= tol))
                    fail_msg("%s rows=%d cols=%d n=%d: y[%d][%d] ref %.9g vl16 %.9g (tol %.3g)", ifp_ggml_type_name(t),
                             rows, cols, n, m, o, yr[m * ldy + o], yf[m * ldy + o], tol);
            }
        }
        for (int m = 0; m < 16; m++)
            for (int o = 0; o < ldy; o++)
                if (m >= n || o >= rows) assert_true(yf[m * ldy + o] == 0.5f);
        for (int m = 0; m < n; m++) { /* a row alone: the same bits */
            for (int o = 0; o < ldy; o++) y1[o] = 0.5f;
            ifp_wk_xwt_small_vl16(y1, ldy, x + m * ldx, ldx, &w, 1, 1, work);
            assert_memory_equal(y1, yf + m * ldy, sizeof(float) * rows);
        }
    }
    free(d), free(v), free(row), free(x), free(yr), free(yf), free(y1), free(work);
}

static void template_at_16_lanes(void **unused) {
    (void)unused;
    static const ifp_ggml_type_t types[] = {IFP_GGML_F32, IFP_GGML_F16, IFP_GGML_BF16, IFP_GGML_Q8_0};
    static const int rows_of[] = {1, 5, 37};
    static const int cols_any[] = {1, 3, 16, 19, 31, 32, 33, 40, 72, 77, 136, 1000, 1003};
    static const int cols_q8[] = {32, 64, 160, 1024};
    unsigned seed = 7;
    for (size_t it = 0; it < sizeof types / sizeof *types; it++) {
        const int *cols = types[it] == IFP_GGML_Q8_0 ? cols_q8 : cols_any;
        size_t nc = types[it] == IFP_GGML_Q8_0 ? sizeof cols_q8 / sizeof *cols_q8 : sizeof cols_any / sizeof *cols_any;
        for (size_t ir = 0; ir < sizeof rows_of / sizeof *rows_of; ir++)
            for (size_t ic = 0; ic < nc; ic++) check_shape(types[it], rows_of[ir], cols[ic], &seed);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(template_at_16_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
