/* kernels.h — the one compute seam.  Every matrix product in ifp goes
 * through ifp_sgemm(); it dispatches to OpenBLAS (default) or to a naive
 * reference kernel kept for tests.  Small vector helpers live here too. */
#ifndef IFP_KERNELS_H
#define IFP_KERNELS_H

#include <stddef.h>

typedef enum {
    IFP_KERNEL_BLAS = 0,  /* OpenBLAS cblas_sgemm / cblas_sgemv */
    IFP_KERNEL_NAIVE = 1, /* plain loops, double accumulation: the reference */
} ifp_kernel_t;

/* Process-wide kernel choice (default BLAS).  Not thread-safe to change
 * while forward passes run. */
void ifp_kernel_set(ifp_kernel_t k);
ifp_kernel_t ifp_kernel_get(void);

/* Row-major C[M×N] = alpha * op(A)[M×K] * op(B)[K×N] + beta * C.
 * trans_a / trans_b: 0 = as stored, 1 = transposed (A stored K×M, B stored N×K).
 * lda/ldb/ldc are the stored row strides.  M == 1 or N == 1 use GEMV. */
void ifp_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* y[n×out] = x[n×in] · W[out×in]^T — a linear layer over a batch of n rows. */
void ifp_linear(float *y, const float *x, const float *w, int n, int in, int out);

/* o = x * rsqrt(mean(x^2) + eps) * w  (o may alias x) */
void ifp_rmsnorm(float *o, const float *x, const float *w, int n, float eps);
/* in-place softmax over x[n] */
void ifp_softmax(float *x, int n);
static inline float ifp_silu(float x) {
    return x / (1.0f + __builtin_expf(-x));
}

/* OpenBLAS threads (no-op for other BLAS); returns the previous value or -1. */
int ifp_blas_threads(int n);
/* openblas_get_corename() or "unknown". */
const char *ifp_blas_corename(void);

#endif
