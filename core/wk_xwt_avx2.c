/* wk_xwt_avx2.c — the decode kernels of wk_xwt_simd.h on 32-byte vectors
 * (AVX2 + FMA + F16C; chosen at run time, x86-64 only). */
#include "wkern_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

/* 8 int8 -> 8 int32 (vpmovsxbd). */
static inline __m256i i8x8(const void *p) {
    long long u;
    memcpy(&u, p, sizeof u);
    return _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(u));
}

/* Q8_0 (wk_xwt_q8.h): a block's 32 int8 widened to two vectors of 16
 * int16 (vpmovsxbw), then two int16 multiply-adds against x (vpmaddwd):
 * 8 exact int32 sums. */
typedef struct {
    __m256i lo, hi;
} wk_q8w_t;
static inline wk_q8w_t q8w(const void *q) {
    __m128i a, b;
    memcpy(&a, q, sizeof a);
    memcpy(&b, (const char *)q + 16, sizeof b);
    return (wk_q8w_t){_mm256_cvtepi8_epi16(a), _mm256_cvtepi8_epi16(b)};
}
static inline __m256i q8dot(wk_q8w_t w, const int16_t *x) {
    __m256i a, b;
    memcpy(&a, x, sizeof a);
    memcpy(&b, x + 16, sizeof b);
    return _mm256_add_epi32(_mm256_madd_epi16(w.lo, a), _mm256_madd_epi16(w.hi, b));
}

/* Tiles for 16 ymm registers (measured on Zen 3): n = 1, 8 rows (8 sums, 8
 * rows in flight); n = 2, 6 rows (12 sums + 2 x + 1 W); n > 2, 3 rows × 4 x
 * rows (12 sums + 3 W + 1 x).  BF16 in pairs: the same tiles. */
#define WK_VL 8
#ifndef WK_R1
#define WK_R1 8
#endif
#ifndef WK_R2
#define WK_R2 6
#endif
#ifndef WK_RN
#define WK_RN 3
#endif
#ifndef WK_MB
#define WK_MB 4
#endif
#define WK_REG(v) __asm__("" : "+x"(v))
#define WK_FMA(a, b, c) ((vf)_mm256_fmadd_ps((a), (b), (c)))
#define WK_F16(h) ((vf)_mm256_cvtph_ps((__m128i)(h)))
#define WK_F16S(u) _cvtsh_ss(u)
#define WK_BF16(h) ((vf)_mm256_slli_epi32(_mm256_cvtepu16_epi32((__m128i)(h)), 16))
#define WK_I8(p) ((vi)i8x8(p))
#define WK_Q8W_T wk_q8w_t
#define WK_Q8W(p) q8w(p)
#define WK_Q8DOT(w, x) ((vi)q8dot((w), (x)))
#define WK_ENTRY(f) f##_avx2

#include "wk_xwt_simd.h"
#endif
