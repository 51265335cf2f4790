/* wk_xwt_generic.c — the decode kernels of wk_xwt_simd.h on 16-byte GCC
 * vectors and no ISA extension: every CPU (SSE2 on x86-64, NEON on arm64),
 * f32 multiply-adds, f16 widened by integer operations. */
#include <stdint.h>
#include <string.h>

#include "wkern_int.h"

/* f16 -> f32 exactly, by integer operations only (normals by an exponent
 * rebias as a float multiply, subnormals by a magic-number subtraction; inf
 * and nan stay inf and nan). */
static inline float f16_scalar(uint16_t h) {
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w, u;
    float f;
    if (two_w < (1u << 27)) {
        u = (two_w >> 17) | (126u << 23);
        memcpy(&f, &u, sizeof f);
        f -= 0.5f;
    } else {
        u = (two_w >> 4) + (0xE0u << 23);
        memcpy(&f, &u, sizeof f);
        f *= 0x1p-112f;
    }
    memcpy(&u, &f, sizeof u);
    u |= sign;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Tiles for 16 xmm registers, as wk_xwt_avx2.c (without FMA a product takes
 * a register of its own: fewer rows at n = 2).  Widening F16 costs more than
 * a store and a load here: into the buffer from n = 2 on. */
#define WK_VL 4
#define WK_R1 8
#define WK_R2 4
#define WK_RN 3
#define WK_MB 4
#define WK_BUF_N_F16 2
#define WK_FMA(a, b, c) ((a) * (b) + (c))
#define WK_F16(h) f16_vec(h)
#define WK_F16S(u) f16_scalar(u)
#define WK_I8(p) i8x4(p)
#define WK_Q8W_T wk_q8w_t
#define WK_Q8W(p) q8w(p)
#define WK_Q8DOT(w, x) q8dot((w), (x))
#define WK_ENTRY(f) f##_generic

typedef uint16_t wk_vh4 __attribute__((vector_size(8)));
typedef uint32_t wk_vu4 __attribute__((vector_size(16)));
typedef int32_t wk_vi4 __attribute__((vector_size(16)));
typedef float wk_vf4 __attribute__((vector_size(16)));

/* f16_scalar on 4 lanes. */
static inline wk_vf4 f16_vec(wk_vh4 h) {
    wk_vu4 w = __builtin_convertvector(h, wk_vu4) << 16, sign = w & 0x80000000u, two_w = w + w;
    wk_vf4 denorm = (wk_vf4)((two_w >> 17) | (126u << 23)) - 0.5f;
    wk_vf4 norm = (wk_vf4)((two_w >> 4) + (0xE0u << 23)) * 0x1p-112f;
    wk_vu4 small = (wk_vu4)(two_w < (1u << 27));
    return (wk_vf4)(sign | ((wk_vu4)denorm & small) | ((wk_vu4)norm & ~small));
}

typedef int8_t wk_vb16 __attribute__((vector_size(16)));
typedef int16_t wk_vs8 __attribute__((vector_size(16)));

/* 4 int8 -> 4 int32: each byte to the top of its lane by two interleaves,
 * then an arithmetic shift (SSE2: punpcklbw, punpcklwd, psrad). */
static inline wk_vi4 i8x4(const void *p) {
    uint32_t u;
    memcpy(&u, p, sizeof u);
    wk_vb16 b = (wk_vb16)(wk_vu4){u, 0, 0, 0};
    b = __builtin_shufflevector(b, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    wk_vs8 s = (wk_vs8)b;
    s = __builtin_shufflevector(s, s, 0, 8, 1, 9, 2, 10, 3, 11);
    return (wk_vi4)s >> 24;
}

/* Q8_0 (wk_xwt_q8.h): a block's 32 int8 as int16; lane j of a dot product
 * sums the exact int32 products of elements 8j..8j+7. */
typedef struct {
    int16_t v[32];
} wk_q8w_t;
static inline wk_q8w_t q8w(const void *q) {
    int8_t b[32];
    wk_q8w_t w;
    memcpy(b, q, sizeof b);
    for (int i = 0; i < 32; i++) w.v[i] = b[i];
    return w;
}
static inline wk_vi4 q8dot(wk_q8w_t w, const int16_t *x) {
    wk_vi4 s;
    for (int j = 0; j < 4; j++) {
        int32_t t = 0;
        for (int i = 0; i < 8; i++) t += (int32_t)w.v[8 * j + i] * x[8 * j + i];
        s[j] = t;
    }
    return s;
}

#include "wk_xwt_simd.h"
