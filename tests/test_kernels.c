/* test_kernels — the BLAS seam against the naive reference, every shape path. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "kernels.h"

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static void check_gemm(int ta, int tb, int M, int N, int K) {
    unsigned seed = (unsigned)(M * 131 + N * 17 + K + ta * 7 + tb * 3);
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C1 = malloc(nc * 4), *C2 = malloc(nc * 4);
    for (size_t i = 0; i < na; i++) A[i] = frand(&seed);
    for (size_t i = 0; i < nb; i++) B[i] = frand(&seed);
    for (size_t i = 0; i < nc; i++) C1[i] = C2[i] = frand(&seed);
    for (int beta = 0; beta <= 1; beta++) {
        ifp_kernel_set(IFP_KERNEL_NAIVE);
        ifp_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, (float)beta, C1, ldc);
        ifp_kernel_set(IFP_KERNEL_BLAS);
        ifp_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, (float)beta, C2, ldc);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) assert_float_equal(C1[(size_t)i * ldc + j], C2[(size_t)i * ldc + j], 1e-4 * K);
    }
    free(A), free(B), free(C1), free(C2);
}

static void gemm_all_paths(void **unused) {
    (void)unused;
    int shapes[][3] = {{1, 1, 1}, {1, 37, 19}, {23, 1, 11}, {7, 9, 13}, {64, 48, 80}, {1, 300, 128}, {5, 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++) check_gemm(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2]);
}

static void linear_is_xwt(void **unused) {
    (void)unused;
    float x[2 * 3] = {1, 2, 3, 4, 5, 6}, w[2 * 3] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, y[4];
    ifp_linear(y, x, w, 2, 3, 2);
    assert_float_equal(y[0], -2, 1e-6);
    assert_float_equal(y[1], 3, 1e-6);
    assert_float_equal(y[2], -2, 1e-6);
    assert_float_equal(y[3], 7.5, 1e-6);
}

/* ifp_linear on 1..6 rows (the thin-batch kernel takes 2..4) against the
 * reference, with odd output counts and inputs that are / are not multiples
 * of 16. */
static void linear_thin_batches(void **unused) {
    (void)unused;
    unsigned seed = 5;
    int shapes[][2] = {{64, 37}, {128, 300}, {48, 1}, {40, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int in = shapes[s][0], out = shapes[s][1];
        float *w = malloc(sizeof(float) * in * out), *x = malloc(sizeof(float) * 6 * in);
        float *y1 = malloc(sizeof(float) * 6 * out), *y2 = malloc(sizeof(float) * 6 * out);
        for (int i = 0; i < in * out; i++) w[i] = frand(&seed);
        for (int i = 0; i < 6 * in; i++) x[i] = frand(&seed);
        for (int n = 1; n <= 6; n++) {
            ifp_kernel_set(IFP_KERNEL_NAIVE);
            ifp_linear(y1, x, w, n, in, out);
            ifp_kernel_set(IFP_KERNEL_BLAS);
            ifp_linear(y2, x, w, n, in, out);
            for (int i = 0; i < n * out; i++) assert_float_equal(y1[i], y2[i], 1e-4);
        }
        free(w), free(x), free(y1), free(y2);
    }
}

static void norms_and_softmax(void **unused) {
    (void)unused;
    float x[4] = {1, -2, 3, -4}, w[4] = {1, 1, 2, 0.5f}, o[4];
    ifp_rmsnorm(o, x, w, 4, 0.0f);
    float r = sqrtf((1 + 4 + 9 + 16) / 4.0f);
    for (int i = 0; i < 4; i++) assert_float_equal(o[i], x[i] / r * w[i], 1e-6);
    float s[3] = {1000, 1000, 999};
    ifp_softmax(s, 3);
    assert_float_equal(s[0] + s[1] + s[2], 1.0, 1e-6);
    assert_float_equal(s[0], s[1], 1e-7);
    assert_true(s[2] < s[0]);
    assert_float_equal(ifp_silu(0), 0, 1e-7);
    assert_float_equal(ifp_silu(2), 2 / (1 + expf(-2)), 1e-6);
}

static void blas_info(void **unused) {
    (void)unused;
    assert_non_null(ifp_blas_corename());
    int prev = ifp_blas_threads(1);
    assert_true(prev >= 1);
    ifp_blas_threads(prev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_all_paths),
        cmocka_unit_test(linear_is_xwt),
        cmocka_unit_test(linear_thin_batches),
        cmocka_unit_test(norms_and_softmax),
        cmocka_unit_test(blas_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
