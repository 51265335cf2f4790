/* wk_xw_avx512.c — the decode kernel of wk_xw_simd.h on 64-byte vectors
 * (AVX-512 F + BW, with FMA and F16C; chosen at run time, x86-64 only). */
#include "wkern_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

/* 16 int8 at p -> 16 floats (vpmovsxbd, vcvtdq2ps). */
static inline __m512 i8x16(const void *p) {
    __m128i q;
    memcpy(&q, p, sizeof q);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
}

#define WK_VL 16
#define WK_NV1 4 /* 32 registers: 4-16 accumulators */
#define WK_NV2 4
#define WK_NV3 4
#define WK_FMA(a, b, c) ((vf)_mm512_fmadd_ps((a), (b), (c)))
#define WK_SET1(s) ((vf)_mm512_set1_ps(s))
#define WK_F16(h) ((vf)_mm512_cvtph_ps((__m256i)(h)))
#define WK_F16S(u) _cvtsh_ss(u)
#define WK_BF16(h) ((vf)_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)(h)), 16))
#define WK_F16B(u) ((vf)_mm512_cvtph_ps(_mm256_set1_epi16((short)(u))))
#define WK_I8F(p) ((vf)i8x16(p))
#define WK_ENTRY(f) f##_avx512

#include "wk_xw_simd.h"
#endif
