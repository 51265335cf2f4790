#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>

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

/* ---- small batches against a weight matrix: C = alpha · X · W^T + beta · C, M <= 16 ----
 * The decode path: a few rows (one per sequence) times a large row-major
 * weight matrix W [N × K].  OpenBLAS packs W for every such call and reaches
 * ~1/3 of its large-GEMM speed at M = 4..16.  This kernel reads W once, four
 * rows at a time, in K chunks of SMALL_KC floats (the chunk of W and of X's
 * rows stay in L1), with 4 × 4 register tiles of dot-product accumulators
 * kept across the chunks and summed once per output.  x86-64 with AVX-512F
 * only (checked at run time); single-threaded, so used only when OpenBLAS
 * runs one thread. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SMALL_M 16
#define SMALL_KC 256
#define SMALL_TARGET __attribute__((target("avx512f")))
#define SMALL_FMA4(a, x)                                                                   \
    (a##0 = _mm512_fmadd_ps(x, w0, a##0), a##1 = _mm512_fmadd_ps(x, w1, a##1),           \
     a##2 = _mm512_fmadd_ps(x, w2, a##2), a##3 = _mm512_fmadd_ps(x, w3, a##3))

/* acc[4m + r] += X[m][k0..k1) · w[r][k0..k1) for a full 4 × 4 tile (k1 - k0 a multiple of 16). */
SMALL_TARGET static void small_tile44(__m512 *acc, const float *x, int ldx, const float *const *w, int k0, int k1) {
    const float *x0 = x, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    const float *r0 = w[0], *r1 = w[1], *r2 = w[2], *r3 = w[3];
    __m512 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
    __m512 c0 = acc[8], c1 = acc[9], c2 = acc[10], c3 = acc[11], d0 = acc[12], d1 = acc[13], d2 = acc[14], d3 = acc[15];
    for (int k = k0; k < k1; k += 16) {
        __m512 w0 = _mm512_loadu_ps(r0 + k), w1 = _mm512_loadu_ps(r1 + k), w2 = _mm512_loadu_ps(r2 + k),
               w3 = _mm512_loadu_ps(r3 + k), xv;
        xv = _mm512_loadu_ps(x0 + k), SMALL_FMA4(a, xv);
        xv = _mm512_loadu_ps(x1 + k), SMALL_FMA4(b, xv);
        xv = _mm512_loadu_ps(x2 + k), SMALL_FMA4(c, xv);
        xv = _mm512_loadu_ps(x3 + k), SMALL_FMA4(d, xv);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = b0, acc[5] = b1, acc[6] = b2, acc[7] = b3;
    acc[8] = c0, acc[9] = c1, acc[10] = c2, acc[11] = c3, acc[12] = d0, acc[13] = d1, acc[14] = d2, acc[15] = d3;
}

/* The same for mb (1..4) rows and any k range (masked loads past k1). */
SMALL_TARGET static void small_tile_any(__m512 *acc, int mb, const float *x, int ldx, const float *const *w, int k0,
                                        int k1) {
    for (int k = k0; k < k1; k += 16) {
        __mmask16 mk = k1 - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1);
        __m512 w0 = _mm512_maskz_loadu_ps(mk, w[0] + k), w1 = _mm512_maskz_loadu_ps(mk, w[1] + k),
               w2 = _mm512_maskz_loadu_ps(mk, w[2] + k), w3 = _mm512_maskz_loadu_ps(mk, w[3] + k);
        for (int m = 0; m < mb; m++) {
            __m512 xv = _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k);
            acc[4 * m] = _mm512_fmadd_ps(xv, w0, acc[4 * m]);
            acc[4 * m + 1] = _mm512_fmadd_ps(xv, w1, acc[4 * m + 1]);
            acc[4 * m + 2] = _mm512_fmadd_ps(xv, w2, acc[4 * m + 2]);
            acc[4 * m + 3] = _mm512_fmadd_ps(xv, w3, acc[4 * m + 3]);
        }
    }
}

SMALL_TARGET static void sgemm_small_xwt(int M, int N, int K, float alpha, const float *X, int ldx, const float *W,
                                         int ldw, float beta, float *C, int ldc) {
    __m512 acc[SMALL_M * 4]; /* [m][r]: 16-lane partial sums of output (m, n0 + r) */
    int Kf = K & ~15;        /* the part without a tail */
    for (int n0 = 0; n0 < N; n0 += 4) {
        int nb = N - n0 < 4 ? N - n0 : 4;
        const float *w[4]; /* rows past N repeat the last row; their sums are not stored */
        for (int r = 0; r < 4; r++) w[r] = W + (size_t)(n0 + (r < nb ? r : nb - 1)) * ldw;
        for (int i = 0; i < 4 * M; i++) acc[i] = _mm512_setzero_ps();
        for (int k0 = 0; k0 < Kf; k0 += SMALL_KC) {
            int k1 = Kf - k0 < SMALL_KC ? Kf : k0 + SMALL_KC, m0 = 0;
            for (; m0 + 4 <= M; m0 += 4) small_tile44(acc + 4 * m0, X + (size_t)m0 * ldx, ldx, w, k0, k1);
            if (m0 < M) small_tile_any(acc + 4 * m0, M - m0, X + (size_t)m0 * ldx, ldx, w, k0, k1);
        }
        if (Kf < K) small_tile_any(acc, M, X, ldx, w, Kf, K);
        for (int m = 0; m < M; m++)
            for (int r = 0; r < nb; r++) {
                float v = alpha * _mm512_reduce_add_ps(acc[4 * m + r]), *c = &C[(size_t)m * ldc + n0 + r];
                *c = beta == 0.0f ? v : v + beta * *c;
            }
    }
}

/* 1 if the call is a small batch times a weight matrix this kernel serves. */
static int small_xwt_ok(int ta, int tb, int M) {
    static int avx512 = -1;
    if (ta || !tb || M < 2 || M > SMALL_M) return 0;
    if (avx512 < 0) {
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f") != 0;
    }
    return avx512 && openblas_get_num_threads() == 1;
}
#else
static int small_xwt_ok(int ta, int tb, int M) {
    (void)ta, (void)tb, (void)M;
    return 0;
}
static void sgemm_small_xwt(int M, int N, int K, float alpha, const float *X, int ldx, const float *W, int ldw,
                            float beta, float *C, int ldc) {
    (void)M, (void)N, (void)K, (void)alpha, (void)X, (void)ldx, (void)W, (void)ldw, (void)beta, (void)C, (void)ldc;
}
#endif

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
    if (small_xwt_ok(ta, tb, M) && K > 0) { /* a few rows times a weight matrix (decode batches) */
        sgemm_small_xwt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
