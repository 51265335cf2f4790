/* wk_xw_avx2.c — the decode kernel of wk_xw_simd.h on 32-byte vectors
 * (AVX2 + FMA + F16C; chosen at run time, x86-64 only). */
#include "wkern_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

/* 8 int8 at p -> 8 floats (vpmovsxbd, vcvtdq2ps). */
static inline __m256 i8x8(const void *p) {
    long long u;
    memcpy(&u, p, sizeof u);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(u)));
}

#define WK_VL 8
#define WK_NV1 4 /* 1 x row: 4 accumulators (8: no faster) */
#define WK_NV2 4 /* 2 x rows: 8 */
#define WK_NV3 2 /* 3-4 x rows: 6-8 (16 registers) */
#define WK_FMA(a, b, c) ((vf)_mm256_fmadd_ps((a), (b), (c)))
#define WK_SET1(s) ((vf)_mm256_set1_ps(s))
#define WK_F16(h) ((vf)_mm256_cvtph_ps((__m128i)(h)))
#define WK_F16S(u) _cvtsh_ss(u)
#define WK_BF16(h) ((vf)_mm256_slli_epi32(_mm256_cvtepu16_epi32((__m128i)(h)), 16))
#define WK_F16B(u) ((vf)_mm256_cvtph_ps(_mm_set1_epi16((short)(u))))
#define WK_I8F(p) ((vf)i8x8(p))
#define WK_ENTRY(f) f##_avx2

#include "wk_xw_simd.h"
#endif
