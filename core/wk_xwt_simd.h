/* wk_xwt_simd.h — the decode kernels of y (+)= x · Wᵀ (n <= IFP_WK_SMALL_N),
 * written once with GCC vector extensions and instantiated per ISA path:
 * wk_xwt_generic.c (16-byte vectors, portable C), wk_xwt_avx2.c (32 bytes,
 * AVX2 + FMA + F16C) and wk_xwt_avx512.c (64 bytes, AVX-512 F + BW).  Core
 * internal: wk_xwt.c dispatches to them.
 *
 * The first part declares the entry points of every instantiation; the
 * template follows and is compiled only where WK_VL is defined:
 *   WK_VL          floats per vector
 *   WK_R1, WK_R2   W rows per tile at n = 1 and n = 2
 *   WK_RN, WK_MB   at n > 2: W rows per tile, x rows per register tile
 *   WK_FMA(a,b,c)  a · b + c on vf (one rounding where the ISA has FMA)
 *   WK_F16(h)      vh (WK_VL f16 bit patterns) -> vf, exact
 *   WK_F16S(u)     one f16 (uint16_t) -> float, exact
 *   WK_I8(p)       WK_VL int8 at p (any alignment) -> vi (int32 lanes)
 *   WK_Q8W_T, WK_Q8W, WK_Q8DOT, WK_Q8S1, WK_Q8SN, WK_Q8G  Q8_0 (wk_xwt_q8.h)
 *   WK_BF16(h), WK_REG(v)  optional (see below)
 *   WK_ENTRY(f)    f##_<isa>: the names of the entry points
 *
 * How the decode kernel works.  W is far larger than the caches and each of
 * its bytes is used n times, so W is read once from memory, R rows at a time
 * (a tile), for all n rows of x.  The tile's rows come from R segments of W
 * (the rows cut into R runs of L = ⌈rows / R⌉; tile i takes row i of each):
 * W is read as R long streams, each running on through its segment, which
 * the hardware prefetchers follow at full speed — R adjacent rows would be R
 * short streams, one row each, and a new stream costs (measured on Zen 3: a
 * BF16 row of 4 KiB read in 8-row tiles streamed at ~70% of a plain read,
 * as 8 segments at ~100%).  The dot products of a tile are kept as
 * WK_VL-lane partial sums acc[m][r] (x row m, W row r); a register tile of
 * MB x rows × R W rows runs along the columns: per step, one widened vector
 * of each W row and one vector of each x row feed MB·R independent FMAs.
 * BF16 steps are 2·WK_VL columns, widened as a pair of vectors (the even
 * columns, the odd ones: two operations) against x packed in that order.
 * When n > MB, the columns go in chunks (the chunk of x, copied so its n
 * rows are adjacent, and of the tile stay in L1) and each chunk is run once
 * per block of MB x rows, widening W again from L1 (or, for F16 where the
 * ISA widens it slowly, once into an f32 buffer).  Rows are prefetched a
 * fixed distance ahead where the hardware prefetchers do not keep up.
 * Columns past the last whole step are zero-padded vectors.  Q8_0 has a
 * kernel of its own (integer block sums: wk_xwt_q8.h).
 *
 * Each lane of acc[m][r] gets the products x[m][k] · w[r][k] of its columns
 * in ascending k, whatever R, MB, the chunking or the route (widening is
 * exact), and is summed over lanes in a fixed order: an output depends only
 * on its W row and its x row — not on where the row sits in W, nor on n or
 * the other rows of x.  A tile past the last row repeats a row (its sums are
 * not stored). */
#ifndef IFP_WK_XWT_SIMD_H
#define IFP_WK_XWT_SIMD_H

#include "wkern_int.h"

#define IFP_WK_SMALL_N 16 /* decode batches: at most this many rows of x */

/* y (+)= x · Wᵀ for 1 <= n <= IFP_WK_SMALL_N (contract of ifp_wmat_xwt);
 * work: n × cols floats of scratch. */
void ifp_wk_xwt_small_generic(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                              int accumulate, float *work);
/* out[i × cols + k] = W[r0 + i][k] as f32, i < nr (exact, as ifp_dequantize_row). */
void ifp_wk_widen_rows_generic(const ifp_wmat_t *w, int r0, int nr, float *out);
#if defined(__x86_64__)
void ifp_wk_xwt_small_avx2(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate,
                           float *work);
void ifp_wk_widen_rows_avx2(const ifp_wmat_t *w, int r0, int nr, float *out);
void ifp_wk_xwt_small_avx512(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                             int accumulate, float *work);
void ifp_wk_widen_rows_avx512(const ifp_wmat_t *w, int r0, int nr, float *out);
#endif

#endif /* IFP_WK_XWT_SIMD_H */

/* ======================================================================== */
#ifdef WK_VL

#include <stdint.h>
#include <string.h>

#define WK_R_MAX 8  /* the largest WK_R1 / WK_R2 / WK_RN */
#define WK_MB_MAX 4 /* the largest WK_MB */
/* A K chunk of x (n rows) and of the tile (R rows, as f32) fits in this
 * many floats (24 KiB: most of a 32 KiB L1). */
#define WK_L1_FLOATS 6144
/* Bytes ahead of the reads at which each W row is prefetched (0: none), at
 * n <= 2 per type and at larger n for all.  Measured: at n <= 2 the
 * hardware prefetchers keep up with F32, F16 and BF16 rows (and software
 * prefetches slow them down); at larger n, with fewer rows per tile and more
 * work per byte, they help all.  (Q8_0: WK_PF_Q8 in wk_xwt_q8.h.) */
#ifndef WK_PF_F32
#define WK_PF_F32 0
#endif
#ifndef WK_PF_F16
#define WK_PF_F16 0
#endif
#ifndef WK_PF_BF16
#define WK_PF_BF16 0
#endif
#ifndef WK_PF_N
#define WK_PF_N 2048
#endif
/* Keeps a loaded vector in a register (a W or x vector used by several FMAs:
 * without it GCC may fold each use into a load of its own). */
#ifndef WK_REG
#define WK_REG(v) ((void)0)
#endif
#define WK_INLINE static inline __attribute__((always_inline))
#define WK_UNROLL _Pragma("GCC unroll 16")

typedef float vf __attribute__((vector_size(WK_VL * 4)));
typedef uint16_t vh __attribute__((vector_size(WK_VL * 2)));
typedef uint32_t vu __attribute__((vector_size(WK_VL * 4)));
typedef int32_t vi __attribute__((vector_size(WK_VL * 4)));

enum { T_F32, T_F16, T_BF16, T_Q8 };
#define QB IFP_Q8_0_BLOCK
#define QBYTES ((int)sizeof(ifp_block_q8_0_t))
#define QSTEPS (QB / WK_VL) /* vectors per Q8_0 block */

/* ---- loads: unaligned, by memcpy (W rows, x rows and Q8_0 blocks have any alignment) ---- */

WK_INLINE vf ld_f32(const void *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
WK_INLINE vf ld_f16(const void *p) {
    vh h;
    memcpy(&h, p, sizeof h);
    return WK_F16(h);
}
WK_INLINE vf ld_bf16(const void *p) {
    vh h;
    memcpy(&h, p, sizeof h);
#ifdef WK_BF16 /* the ISA's widening (GCC 12 splits the generic one in halves) */
    return WK_BF16(h);
#else
    return (vf)(__builtin_convertvector(h, vu) << 16);
#endif
}
/* BF16 in pairs: 2·WK_VL columns are one vector of WK_VL 32-bit lanes, lane
 * j holding columns 2j (low half) and 2j + 1 (high half).  Shifted left by
 * 16 the lanes are the even columns, with the low half cleared the odd ones:
 * both exact, two operations per 2·WK_VL weights.  x is packed to match
 * (pack_bf16: per BP columns, the even ones, then the odd ones). */
#define BP (2 * WK_VL)
WK_INLINE void ld_bf16_pair(const uint16_t *p, vf *even, vf *odd) {
    vu v;
    memcpy(&v, p, sizeof v);
    *even = (vf)(v << 16);
    *odd = (vf)(v & 0xFFFF0000u);
}
/* out[0..kn) = x[0..kn) in pair order (kn a multiple of BP). */
static void pack_bf16(const float *x, int kn, float *out) {
    for (int k = 0; k < kn; k += BP)
        for (int j = 0; j < WK_VL; j++) {
            out[k + j] = x[k + 2 * j];
            out[k + WK_VL + j] = x[k + 2 * j + 1];
        }
}
/* q[0..WK_VL) · d: the products are exact (11-bit × 8-bit). */
WK_INLINE vf ld_q8(const void *q, vf d) {
    return __builtin_convertvector(WK_I8(q), vf) * d;
}
WK_INLINE vf q8_scale(const void *block) {
    uint16_t h;
    memcpy(&h, block, sizeof h);
    return WK_F16S(h) - (vf){0}; /* a broadcast (x - 0 is x, -0 included) */
}
/* Vector k (of WK_VL columns, k counted in columns) of a row of type T (not Q8_0). */
WK_INLINE vf ld_w(int T, const void *row, int k) {
    if (T == T_F32) return ld_f32((const float *)row + k);
    if (T == T_F16) return ld_f16((const uint16_t *)row + k);
    return ld_bf16((const uint16_t *)row + k);
}
/* One element (the column tail). */
WK_INLINE float get_w(int T, const void *row, int k) {
    if (T == T_F32) {
        float v;
        memcpy(&v, (const float *)row + k, sizeof v);
        return v;
    }
    uint16_t h;
    memcpy(&h, (const uint16_t *)row + k, sizeof h);
    if (T == T_F16) return WK_F16S(h);
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}
/* The row's byte offset of column k (k a multiple of QB for Q8_0). */
WK_INLINE size_t w_offset(int T, int k) {
    return T == T_F32 ? (size_t)k * 4 : T == T_Q8 ? (size_t)(k / QB) * QBYTES : (size_t)k * 2;
}

/* The sum of the lanes, in a fixed order. */
WK_INLINE float hsum(vf v) {
    float t[WK_VL];
    memcpy(t, &v, sizeof t);
    for (int h = WK_VL / 2; h >= 1; h /= 2)
        for (int i = 0; i < h; i++) t[i] += t[i + h];
    return t[0];
}

/* ---- prefetch ---- */

/* W is read as streams (see the decode kernel: a row, then the next row of
 * its segment, which follows it in memory).  While byte o of rows [r0, r1)
 * is read (w[r] pointing at the chunk's column 0), byte o + dist of each
 * stream is requested, once per line: the caller reads sb <= 64 bytes of
 * each row per step.  dist 0: none.  (A request past W's end is harmless:
 * a prefetch never faults.) */
WK_INLINE void prefetch(size_t dist, const void *const *w, int r0, int r1, size_t o, size_t sb) {
    if (!dist) return;
    WK_UNROLL for (int r = r0; r < r1; r++) {
        uintptr_t a = (uintptr_t)w[r] + o + dist;
        if ((a & 63) < sb) __builtin_prefetch((const void *)a, 0, 3);
    }
}

/* ---- the register tile ---- */

/* acc[m·R + r] += x[m][k] · w[r][k] for m < MB, r < R, k in [0, kn) (kn a
 * multiple of WK_VL; of QB for Q8_0).  x rows are ldx floats apart; w[r]
 * points at column 0 of the chunk in W's stored type (prefetched dist
 * bytes ahead, 0: not).  Per step of WK_VL columns, either
 * the R widened W vectors stay in registers while the x vectors stream by
 * (R <= MB), or the MB x vectors stay while the W vectors stream by: fewer
 * live registers.  Either way each a[m][r] gets one FMA per step, in
 * ascending k. */
WK_INLINE void tile(int T, int R, int MB, vf *acc, const float *x, size_t ldx, const void *const *w, int kn,
                    size_t dist) {
    vf a[WK_MB_MAX][WK_R_MAX];
    WK_UNROLL for (int m = 0; m < MB; m++) WK_UNROLL for (int r = 0; r < R; r++) a[m][r] = acc[m * R + r];
    if (T == T_BF16) { /* pairs: per step, the even columns, then the odd ones */
        for (int k = 0; k < kn; k += BP) {
            prefetch(dist, w, 0, R, (size_t)k * 2, BP * 2);
            if (R > MB) {
                vf xe[WK_MB_MAX], xo[WK_MB_MAX];
                WK_UNROLL for (int m = 0; m < MB; m++) {
                    xe[m] = ld_f32(x + m * ldx + k);
                    xo[m] = ld_f32(x + m * ldx + k + WK_VL);
                }
                WK_UNROLL for (int r = 0; r < R; r++) {
                    vf we, wo;
                    ld_bf16_pair((const uint16_t *)w[r] + k, &we, &wo);
                    WK_UNROLL for (int m = 0; m < MB; m++) {
                        a[m][r] = WK_FMA(xe[m], we, a[m][r]);
                        a[m][r] = WK_FMA(xo[m], wo, a[m][r]);
                    }
                }
            } else {
                vf we[WK_R_MAX], wo[WK_R_MAX];
                WK_UNROLL for (int r = 0; r < R; r++) ld_bf16_pair((const uint16_t *)w[r] + k, &we[r], &wo[r]);
                WK_UNROLL for (int m = 0; m < MB; m++) {
                    vf xe = ld_f32(x + m * ldx + k), xo = ld_f32(x + m * ldx + k + WK_VL);
                    WK_UNROLL for (int r = 0; r < R; r++) {
                        a[m][r] = WK_FMA(xe, we[r], a[m][r]);
                        a[m][r] = WK_FMA(xo, wo[r], a[m][r]);
                    }
                }
            }
        }
    } else {
        for (int k = 0; k < kn; k += WK_VL) {
            prefetch(dist, w, 0, R, w_offset(T, k), w_offset(T, WK_VL));
            if (R > MB) {
                vf xv[WK_MB_MAX];
                WK_UNROLL for (int m = 0; m < MB; m++) {
                    xv[m] = ld_f32(x + m * ldx + k);
                    if (MB > 1) WK_REG(xv[m]);
                }
                WK_UNROLL for (int r = 0; r < R; r++) {
                    vf wv = ld_w(T, w[r], k);
                    if (MB > 1) WK_REG(wv);
                    WK_UNROLL for (int m = 0; m < MB; m++) a[m][r] = WK_FMA(xv[m], wv, a[m][r]);
                }
            } else {
                vf wv[WK_R_MAX];
                WK_UNROLL for (int r = 0; r < R; r++) {
                    wv[r] = ld_w(T, w[r], k);
                    if (MB > 1) WK_REG(wv[r]);
                }
                WK_UNROLL for (int m = 0; m < MB; m++) {
                    vf xv = ld_f32(x + m * ldx + k);
                    if (R > 1) WK_REG(xv);
                    WK_UNROLL for (int r = 0; r < R; r++) a[m][r] = WK_FMA(xv, wv[r], a[m][r]);
                }
            }
        }
    }
    WK_UNROLL for (int m = 0; m < MB; m++) WK_UNROLL for (int r = 0; r < R; r++) acc[m * R + r] = a[m][r];
}

/* All n rows of x over one chunk: blocks of MB rows, then the rest (the
 * first block prefetches). */
#define WK_TILES(name, T, R, MB)                                                                            \
    static void name(vf *acc, const float *x, size_t ldx, const void *const *w, int kn, int n, size_t dist) {  \
        int m0 = 0;                                                                                         \
        for (; m0 + (MB) <= n; m0 += (MB), dist = 0)                                                        \
            tile(T, R, MB, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, dist);                                 \
        switch (n - m0) {                                                                                   \
        case 1: tile(T, R, 1, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, dist); break;                      \
        case 2: tile(T, R, 2, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, dist); break;                      \
        case 3: tile(T, R, 3, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, dist); break;                      \
        default: break;                                                                                     \
        }                                                                                                   \
    }
_Static_assert(WK_MB >= 1 && WK_MB <= WK_MB_MAX, "WK_MB: 1..4 (the remainder cases above)");
_Static_assert(WK_R1 >= 1 && WK_R1 <= WK_R_MAX && WK_R2 >= 1 && WK_R2 <= WK_R_MAX && WK_RN >= 1 &&
                   WK_RN <= WK_R_MAX,
               "WK_R1, WK_R2, WK_RN: 1..8");
/* n = 1: WK_R1 rows per tile; n = 2: WK_R2 rows (more rows in flight than
 * the WK_RN × WK_MB register tiles of larger n) */
WK_TILES(tiles1_f32, T_F32, WK_R1, 1)
WK_TILES(tiles1_f16, T_F16, WK_R1, 1)
WK_TILES(tiles1_bf16, T_BF16, WK_R1, 1)
WK_TILES(tiles2_f32, T_F32, WK_R2, 2)
WK_TILES(tiles2_f16, T_F16, WK_R2, 2)
WK_TILES(tiles2_bf16, T_BF16, WK_R2, 2)
WK_TILES(tiles_f32, T_F32, WK_RN, WK_MB)
WK_TILES(tiles_f16, T_F16, WK_RN, WK_MB)
WK_TILES(tiles_bf16, T_BF16, WK_RN, WK_MB)

typedef void (*tiles_fn)(vf *acc, const float *x, size_t ldx, const void *const *w, int kn, int n, size_t dist);

/* ---- widening to f32 ---- */

/* out[0..kn) = columns [k0, k0 + kn) of row (kn a multiple of WK_VL; of QB
 * for Q8_0), prefetching the row's stream dist bytes ahead (0: not). */
WK_INLINE void widen(int T, const void *row, int k0, int kn, float *out, size_t dist) {
    const char *p = (const char *)row + w_offset(T, k0);
    const void *const at[1] = {p};
    if (T == T_Q8) {
        for (int b = 0; b < kn / QB; b++) {
            prefetch(dist, at, 0, 1, (size_t)b * QBYTES, QBYTES);
            const char *blk = p + (size_t)b * QBYTES;
            vf d = q8_scale(blk);
            WK_UNROLL for (int j = 0; j < QSTEPS; j++) {
                vf v = ld_q8(blk + 2 + j * WK_VL, d);
                memcpy(out + b * QB + j * WK_VL, &v, sizeof v);
            }
        }
        return;
    }
    for (int k = 0; k < kn; k += WK_VL) {
        prefetch(dist, at, 0, 1, w_offset(T, k), w_offset(T, WK_VL));
        vf v = ld_w(T, p, k);
        memcpy(out + k, &v, sizeof v);
    }
}

#define WK_WIDEN(name, T)                                                                                    \
    static void name(const void *row, int k0, int kn, float *out, size_t dist) {                             \
        widen(T, row, k0, kn, out, dist);                                                                     \
    }
WK_WIDEN(widen_f16, T_F16)
WK_WIDEN(widen_bf16, T_BF16)
WK_WIDEN(widen_q8, T_Q8)

/* ---- the decode kernel ---- */

/* The smallest n for which F16 W is widened into a buffer once per chunk
 * rather than in registers once per block of x rows (measured; F32 needs no
 * widening, BF16 pairs cost two operations per vector, Q8_0 has its own
 * kernel: wk_xwt_q8.h). */
#ifndef WK_BUF_N_F16
#define WK_BUF_N_F16 17
#endif

static int wtype(ifp_ggml_type_t t) {
    return t == IFP_GGML_F16 ? T_F16 : t == IFP_GGML_BF16 ? T_BF16 : t == IFP_GGML_Q8_0 ? T_Q8 : T_F32;
}

/* The column tail [kf, cols) (fewer than a step: WK_VL columns, BP for
 * BF16) of a tile of R rows as zero-padded vectors, in natural order. */
static void tail(int T, int R, vf *acc, const float *x, size_t ldx, const void *const *w, int kf, int cols, int n) {
    for (int r = 0; r < R; r++)
        for (int k0 = kf; k0 < cols; k0 += WK_VL) {
            const int kn = cols - k0 < WK_VL ? cols - k0 : WK_VL;
            float t[WK_VL] = {0};
            for (int k = 0; k < kn; k++) t[k] = get_w(T, w[r], k0 + k);
            vf wv = ld_f32(t);
            for (int m = 0; m < n; m++) {
                float u[WK_VL] = {0};
                memcpy(u, x + m * ldx + k0, (size_t)kn * sizeof *u);
                acc[m * R + r] = WK_FMA(ld_f32(u), wv, acc[m * R + r]);
            }
        }
}

#include "wk_xwt_q8.h"

void WK_ENTRY(ifp_wk_xwt_small)(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                                int accumulate, float *work) {
    static const tiles_fn one[] = {tiles1_f32, tiles1_f16, tiles1_bf16};
    static const tiles_fn two[] = {tiles2_f32, tiles2_f16, tiles2_bf16};
    static const tiles_fn many[] = {tiles_f32, tiles_f16, tiles_bf16};
    const int T = wtype(w->type), cols = w->cols;
    if (T == T_Q8) {
        xwt_q8(y, ldy, x, ldx, w, n, accumulate, work);
        return;
    }
    const int step = T == T_BF16 ? BP : WK_VL;
    const int kf = cols - cols % step; /* whole steps */
    const int buffered = T == T_F16 && n >= WK_BUF_N_F16;
    const int R = n == 1 ? WK_R1 : n == 2 ? WK_R2 : WK_RN;
    const tiles_fn tiles = buffered ? (n == 2 ? tiles2_f32 : tiles_f32) : n == 1 ? one[T] : n == 2 ? two[T] : many[T];
    /* x is read once per block of WK_MB rows: in K chunks that stay in L1 with
     * the tile's chunk, packed (the n rows of a chunk adjacent); for BF16
     * always packed, in pair order */
    const int chunked = buffered || n > WK_MB;
    const int packed = chunked || T == T_BF16;
    const int kc = chunked ? (WK_L1_FLOATS / (n + R)) & ~(QB - 1) : (kf > 0 ? kf : 1);
    if (packed)
        for (int k0 = 0; k0 < kf; k0 += kc) {
            const int kn = kf - k0 < kc ? kf - k0 : kc;
            for (int m = 0; m < n; m++) {
                float *to = work + (size_t)n * k0 + (size_t)m * kn;
                const float *from = x + (size_t)m * ldx + k0;
                if (T == T_BF16) pack_bf16(from, kn, to);
                else memcpy(to, from, (size_t)kn * sizeof *work);
            }
        }
    vf acc[IFP_WK_SMALL_N * WK_R_MAX];
    float buf[WK_L1_FLOATS] __attribute__((aligned(64)));
    static const size_t pf_dist[] = {WK_PF_F32, WK_PF_F16, WK_PF_BF16};
    const size_t dist = n <= 2 ? pf_dist[T] : WK_PF_N;
    /* R streams: the rows are cut into R segments of L and tile i takes row
     * i of each (ro[r] = r·L + i; past the last row, a repeat of row i whose
     * sums are not stored) */
    const int L = (w->rows + R - 1) / R;
    for (int i = 0; i < L; i++) {
        int ro[WK_R_MAX];
        const void *row[WK_R_MAX], *wp[WK_R_MAX];
        for (int r = 0; r < R; r++) {
            ro[r] = r * L + i < w->rows ? r * L + i : -1;
            row[r] = ifp_wmat_row(w, ro[r] >= 0 ? ro[r] : i);
        }
        for (int j = 0; j < n * R; j++) acc[j] = (vf){0};
        for (int k0 = 0; k0 < kf; k0 += kc) {
            const int kn = kf - k0 < kc ? kf - k0 : kc;
            const float *xc = packed ? work + (size_t)n * k0 : x + k0;
            const size_t ldc = packed ? (size_t)kn : (size_t)ldx;
            if (buffered) {
                for (int r = 0; r < R; r++) {
                    widen_f16(row[r], k0, kn, buf + r * kc, dist);
                    wp[r] = buf + r * kc;
                }
                tiles(acc, xc, ldc, wp, kn, n, 0);
            } else {
                for (int r = 0; r < R; r++) wp[r] = (const char *)row[r] + w_offset(T, k0);
                tiles(acc, xc, ldc, wp, kn, n, dist);
            }
        }
        if (kf < cols) tail(T, R, acc, x, (size_t)ldx, row, kf, cols, n);
        for (int m = 0; m < n; m++)
            for (int r = 0; r < R; r++) {
                if (ro[r] < 0) continue;
                float s = hsum(acc[m * R + r]), *yo = y + (size_t)m * ldy + ro[r];
                *yo = accumulate ? *yo + s : s;
            }
    }
}

void WK_ENTRY(ifp_wk_widen_rows)(const ifp_wmat_t *w, int r0, int nr, float *out) {
    const int T = wtype(w->type), cols = w->cols;
    const int kf = T == T_Q8 ? cols : cols - cols % WK_VL;
    for (int i = 0; i < nr; i++) {
        const void *row = ifp_wmat_row(w, r0 + i);
        float *o = out + (size_t)i * cols;
        switch (T) {
        case T_F32: memcpy(o, row, (size_t)cols * sizeof *o); continue;
        case T_F16: widen_f16(row, 0, kf, o, 0); break;
        case T_BF16: widen_bf16(row, 0, kf, o, 0); break;
        default: widen_q8(row, 0, kf, o, 0); break;
        }
        for (int k = kf; k < cols; k++) o[k] = get_w(T, row, k);
    }
}

#endif /* WK_VL */
