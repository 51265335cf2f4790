/* wk_xwt_avx512.c — the decode kernels of wk_xwt_simd.h on 64-byte vectors
 * (AVX-512 F + BW, with FMA and F16C; chosen at run time, x86-64 only). */
#include "wkern_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

/* 16 int8 -> 16 int32 (vpmovsxbd). */
static inline __m512i i8x16(const void *p) {
    __m128i v;
    memcpy(&v, p, sizeof v);
    return _mm512_cvtepi8_epi32(v);
}

/* Q8_0 (wk_xwt_q8.h): a block's 32 int8 widened to 32 int16 (vpmovsxbw),
 * one int16 multiply-add against x (vpmaddwd): 16 exact int32 sums. */
typedef __m512i wk_q8w_t;
static inline __m512i q8w(const void *q) {
    __m256i a;
    memcpy(&a, q, sizeof a);
    return _mm512_cvtepi8_epi16(a);
}
static inline __m512i q8dot(__m512i w, const int16_t *x) {
    __m512i a;
    memcpy(&a, x, sizeof a);
    return _mm512_madd_epi16(w, a);
}

/* Tiles for 32 zmm registers (not measured: no AVX-512 machine at hand):
 * n = 1, 8 rows; n = 2, 8 rows (16 sums + 2 x + 1 W); n > 2, 4 rows × 4 x
 * rows (16 sums + 4 W + 1 x). */
#define WK_VL 16
#ifndef WK_R1
#define WK_R1 8
#endif
#ifndef WK_R2
#define WK_R2 8
#endif
#ifndef WK_RN
#define WK_RN 4
#endif
#ifndef WK_MB
#define WK_MB 4
#endif
#define WK_REG(v) __asm__("" : "+v"(v))
#define WK_FMA(a, b, c) ((vf)_mm512_fmadd_ps((a), (b), (c)))
#define WK_F16(h) ((vf)_mm512_cvtph_ps((__m256i)(h)))
#define WK_F16S(u) _cvtsh_ss(u)
#define WK_BF16(h) ((vf)_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)(h)), 16))
#define WK_I8(p) ((vi)i8x16(p))
#define WK_Q8W_T wk_q8w_t
#define WK_Q8W(p) q8w(p)
#define WK_Q8DOT(w, x) ((vi)q8dot((w), (x)))
/* Q8_0 tiles: n = 1: 4 rows × 2 sums; n > 1: 4 rows × 2 x rows × 2 sums (16 sums + 1 W vector) */
#ifndef WK_Q8SN
#define WK_Q8SN 4 /* 32 registers: 4 rows at every n */
#endif
#define WK_ENTRY(f) f##_avx512

#include "wk_xwt_simd.h"
#endif
