#include "kernels.h"

#include <cblas.h>
#include <math.h>

static ifp_kernel_t g_kernel = IFP_KERNEL_BLAS;

void ifp_kernel_set(ifp_kernel_t k) { g_kernel = k; }
ifp_kernel_t ifp_kernel_get(void) { return g_kernel; }

/* The reference: textbook triple loop, double accumulation. */
static void sgemm_naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)a * (double)b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    }
}

void ifp_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (g_kernel == IFP_KERNEL_NAIVE) {
        sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M == 1) {
        /* c[1×N] = a[1×K] · op(B):  op(B)^T · a  with op(B)^T stored as B (tb) or B^T */
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? N : K, tb ? K : N, alpha, B, ldb, A,
                    ta ? lda : 1, beta, C, 1);
        return;
    }
    if (N == 1) {
        /* c[M×1] = op(A) · b  where b is column 0 of op(B) */
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? K : M, ta ? M : K, alpha, A, lda, B,
                    tb ? 1 : ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

void ifp_linear(float *y, const float *x, const float *w, int n, int in, int out) {
    ifp_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

void ifp_rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) o[i] = w[i] * (ss * x[i]);
}

void ifp_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* openblas_* are OpenBLAS extensions declared in its cblas.h. */
int ifp_blas_threads(int n) {
    int prev = openblas_get_num_threads();
    if (n > 0) openblas_set_num_threads(n);
    return prev;
}

const char *ifp_blas_corename(void) {
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}
