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
 *   WK_BF16(h), WK_REG(v)  optional (see below)
 *   WK_ENTRY(f)    f##_<isa>: the names of the entry points
 *
 * How the decode kernel works.  W is far larger than the caches and each of
 * its bytes is used n times, so W is read once from memory: R rows at a time
 * (a tile; rows are contiguous), for all n rows of x.  The dot products of a
 * tile are kept as WK_VL-lane partial sums acc[m][r] (x row m, W row r); a
 * register tile of MB x rows × R W rows runs along the columns: per step,
 * one widened vector of each W row and one vector of each x row feed MB·R
 * independent FMAs.  When n > MB, the columns go in chunks (the chunk of x,
 * copied so its n rows are adjacent, and of the tile stay in L1) and each
 * chunk is run once per block of MB x rows, widening W again from L1 or,
 * for Q8_0 at larger n, once into an f32 buffer.  W rows are prefetched a
 * fixed distance ahead where the hardware prefetchers do not keep up.
 * Columns past the last whole vector are one zero-padded vector.
 *
 * Each lane of acc[m][r] gets the products x[m][k] · w[r][k] of its columns
 * in ascending k, whatever R, MB, the chunking or the route (widening is
 * exact), and is summed over lanes in a fixed order: an output depends only
 * on its W row and its x row — not on where the row sits in W, nor on n or
 * the other rows of x.  A tile past the last row repeats the last row (its
 * sums are not stored). */
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
 * hardware prefetchers keep up with F32 and F16 rows (and software
 * prefetches slow them down), not with the slower-consumed Q8_0 rows; at
 * larger n, with fewer rows per tile and more work per byte, they help all. */
#ifndef WK_PF_F32
#define WK_PF_F32 0
#endif
#ifndef WK_PF_F16
#define WK_PF_F16 0
#endif
#ifndef WK_PF_BF16
#define WK_PF_BF16 1024
#endif
#ifndef WK_PF_Q8
#define WK_PF_Q8 2048
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

/* Where a tile's rows are fetched ahead.  Rows are contiguous: row r of a
 * whole tile of R rows is at row0 + r·rb; while offset o of the rows is
 * read, offset o + dist is requested, and past a row's end the same offset
 * of row r of the next tile (when it is whole: row0 + (R + r)·rb). */
typedef struct {
    const char *row0; /* NULL: no prefetch (off, or a partial tile) */
    size_t rb, dist;  /* dist <= rb */
    int next;         /* the next tile is whole */
} pf_t;

/* The lines at offset o + dist of rows [r0, r1) of a tile of R rows, once
 * per line: the caller reads sb <= 64 bytes of each row per step. */
WK_INLINE void prefetch(const pf_t *p, int R, size_t o, size_t sb, int r0, int r1) {
    if (!p || !p->row0) return;
    o += p->dist;
    const char *a = p->row0 + o;
    if (((uintptr_t)a & 63) >= sb) return; /* this line was requested by an earlier step */
    if (o >= p->rb) {
        if (!p->next) return;
        a += (size_t)(R - 1) * p->rb; /* row r of the next tile, offset o - rb */
    }
    WK_UNROLL for (int r = r0; r < r1; r++) __builtin_prefetch(a + r * p->rb, 0, 3);
}

/* ---- the register tile ---- */

/* acc[m·R + r] += x[m][k] · w[r][k] for m < MB, r < R, k in [0, kn) (kn a
 * multiple of WK_VL; of QB for Q8_0).  x rows are ldx floats apart; w[r]
 * points at column 0 of the chunk in W's stored type, byte o0 of the rows
 * (for the prefetch pf, may be NULL).  Per step of WK_VL columns, either
 * the R widened W vectors stay in registers while the x vectors stream by
 * (R <= MB), or the MB x vectors stay while the W vectors stream by: fewer
 * live registers.  Either way each a[m][r] gets one FMA per step, in
 * ascending k. */
WK_INLINE void tile(int T, int R, int MB, vf *acc, const float *x, size_t ldx, const void *const *w, int kn,
                    const pf_t *pf, size_t o0) {
    vf a[WK_MB_MAX][WK_R_MAX];
    WK_UNROLL for (int m = 0; m < MB; m++) WK_UNROLL for (int r = 0; r < R; r++) a[m][r] = acc[m * R + r];
    if (T == T_Q8) {
        for (int b = 0; b < kn / QB; b++) {
            prefetch(pf, R, o0 + (size_t)b * QBYTES, QBYTES, 0, R);
            const float *xb = x + b * QB;
            if (MB == 1) { /* row by row: the block of x in registers, one scale at a time */
                vf xv[QSTEPS];
                WK_UNROLL for (int j = 0; j < QSTEPS; j++) xv[j] = ld_f32(xb + j * WK_VL);
                WK_UNROLL for (int r = 0; r < R; r++) {
                    const char *blk = (const char *)w[r] + (size_t)b * QBYTES;
                    vf d = q8_scale(blk);
WK_UNROLL for (int j = 0; j < QSTEPS; j++)
                        a[0][r] = WK_FMA(xv[j], ld_q8(blk + 2 + j * WK_VL, d), a[0][r]);
                }
                continue;
            }
            const char *blk[WK_R_MAX];
            vf d[WK_R_MAX];
            WK_UNROLL for (int r = 0; r < R; r++) {
                blk[r] = (const char *)w[r] + (size_t)b * QBYTES;
                d[r] = q8_scale(blk[r]);
            }
            WK_UNROLL for (int j = 0; j < QSTEPS; j++) {
                if (R > MB) {
                    vf xv[WK_MB_MAX];
                    WK_UNROLL for (int m = 0; m < MB; m++) {
                        xv[m] = ld_f32(xb + m * ldx + j * WK_VL);
                        WK_REG(xv[m]);
                    }
                    WK_UNROLL for (int r = 0; r < R; r++) {
                        vf wv = ld_q8(blk[r] + 2 + j * WK_VL, d[r]);
                        WK_UNROLL for (int m = 0; m < MB; m++) a[m][r] = WK_FMA(xv[m], wv, a[m][r]);
                    }
                } else {
                    vf wv[WK_R_MAX];
                    WK_UNROLL for (int r = 0; r < R; r++) wv[r] = ld_q8(blk[r] + 2 + j * WK_VL, d[r]);
                    WK_UNROLL for (int m = 0; m < MB; m++) {
                        vf xv = ld_f32(xb + m * ldx + j * WK_VL);
                        WK_REG(xv);
                        WK_UNROLL for (int r = 0; r < R; r++) a[m][r] = WK_FMA(xv, wv[r], a[m][r]);
                    }
                }
            }
        }
    } else {
        for (int k = 0; k < kn; k += WK_VL) {
            prefetch(pf, R, o0 + w_offset(T, k), w_offset(T, WK_VL), 0, R);
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
    static void name(vf *acc, const float *x, size_t ldx, const void *const *w, int kn, int n, const pf_t *pf, \
                     size_t o0) {                                                                           \
        int m0 = 0;                                                                                         \
        for (; m0 + (MB) <= n; m0 += (MB), pf = NULL)                                                       \
            tile(T, R, MB, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, pf, o0);                               \
        switch (n - m0) {                                                                                   \
        case 1: tile(T, R, 1, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, pf, o0); break;                     \
        case 2: tile(T, R, 2, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, pf, o0); break;                     \
        case 3: tile(T, R, 3, acc + m0 * (R), x + m0 * ldx, ldx, w, kn, pf, o0); break;                     \
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
WK_TILES(tiles1_q8, T_Q8, WK_R1, 1)
WK_TILES(tiles2_f32, T_F32, WK_R2, 2)
WK_TILES(tiles2_f16, T_F16, WK_R2, 2)
WK_TILES(tiles2_bf16, T_BF16, WK_R2, 2)
WK_TILES(tiles2_q8, T_Q8, WK_R2, 2)
WK_TILES(tiles_f32, T_F32, WK_RN, WK_MB)
WK_TILES(tiles_f16, T_F16, WK_RN, WK_MB)
WK_TILES(tiles_bf16, T_BF16, WK_RN, WK_MB)
WK_TILES(tiles_q8, T_Q8, WK_RN, WK_MB)

typedef void (*tiles_fn)(vf *acc, const float *x, size_t ldx, const void *const *w, int kn, int n, const pf_t *pf,
                         size_t o0);

/* ---- widening to f32 ---- */

/* out[0..kn) = columns [k0, k0 + kn) of row (kn a multiple of WK_VL; of QB
 * for Q8_0); prefetching row r of pf's tile of R rows (pf may be NULL). */
WK_INLINE void widen(int T, const void *row, int k0, int kn, float *out, const pf_t *pf, int R, int r) {
    const size_t o0 = w_offset(T, k0);
    const char *p = (const char *)row + o0;
    if (T == T_Q8) {
        for (int b = 0; b < kn / QB; b++, p += QBYTES) {
            prefetch(pf, R, o0 + (size_t)b * QBYTES, QBYTES, r, r + 1);
            vf d = q8_scale(p);
            WK_UNROLL for (int j = 0; j < QSTEPS; j++) {
                vf v = ld_q8(p + 2 + j * WK_VL, d);
                memcpy(out + b * QB + j * WK_VL, &v, sizeof v);
            }
        }
        return;
    }
    for (int k = 0; k < kn; k += WK_VL) {
        prefetch(pf, R, o0 + w_offset(T, k), w_offset(T, WK_VL), r, r + 1);
        vf v = ld_w(T, p, k);
        memcpy(out + k, &v, sizeof v);
    }
}

#define WK_WIDEN(name, T)                                                                                    \
    static void name(const void *row, int k0, int kn, float *out, const pf_t *pf, int R, int r) {            \
        widen(T, row, k0, kn, out, pf, R, r);                                                                \
    }
WK_WIDEN(widen_f16, T_F16)
WK_WIDEN(widen_bf16, T_BF16)
WK_WIDEN(widen_q8, T_Q8)

typedef void (*widen_fn)(const void *row, int k0, int kn, float *out, const pf_t *pf, int R, int r);

/* ---- the decode kernel ---- */

/* The smallest n for which W (per type: F16, BF16, Q8_0) is widened into a
 * buffer once per chunk rather than in registers once per block of x rows
 * (measured; F32 needs no widening). */
#ifndef WK_BUF_N_F16
#define WK_BUF_N_F16 17
#endif
#ifndef WK_BUF_N_BF16
#define WK_BUF_N_BF16 17
#endif
#ifndef WK_BUF_N_Q8
#define WK_BUF_N_Q8 5
#endif

static int wtype(ifp_ggml_type_t t) {
    return t == IFP_GGML_F16 ? T_F16 : t == IFP_GGML_BF16 ? T_BF16 : t == IFP_GGML_Q8_0 ? T_Q8 : T_F32;
}

/* The column tail [kf, cols) of a tile of R rows as one zero-padded vector. */
static void tail(int T, int R, vf *acc, const float *x, size_t ldx, const void *const *w, int kf, int cols, int n) {
    for (int r = 0; r < R; r++) {
        float t[WK_VL] = {0};
        for (int k = kf; k < cols; k++) t[k - kf] = get_w(T, w[r], k);
        vf wv = ld_f32(t);
        for (int m = 0; m < n; m++) {
            float u[WK_VL] = {0};
            memcpy(u, x + m * ldx + kf, (size_t)(cols - kf) * sizeof *u);
            acc[m * R + r] = WK_FMA(ld_f32(u), wv, acc[m * R + r]);
        }
    }
}

void WK_ENTRY(ifp_wk_xwt_small)(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                                int accumulate, float *work) {
    static const tiles_fn one[] = {tiles1_f32, tiles1_f16, tiles1_bf16, tiles1_q8};
    static const tiles_fn two[] = {tiles2_f32, tiles2_f16, tiles2_bf16, tiles2_q8};
    static const tiles_fn many[] = {tiles_f32, tiles_f16, tiles_bf16, tiles_q8};
    static const widen_fn widen_of[] = {NULL, widen_f16, widen_bf16, widen_q8};
    static const int buf_n[] = {IFP_WK_SMALL_N + 1, WK_BUF_N_F16, WK_BUF_N_BF16, WK_BUF_N_Q8};
    const int T = wtype(w->type), cols = w->cols;
    const int kf = T == T_Q8 ? cols : cols - cols % WK_VL; /* whole vectors */
    const int buffered = n >= buf_n[T];
    const int R = n == 1 ? WK_R1 : n == 2 ? WK_R2 : WK_RN;
    const tiles_fn tiles = buffered ? (n == 2 ? tiles2_f32 : tiles_f32) : n == 1 ? one[T] : n == 2 ? two[T] : many[T];
    /* x is read once per block of WK_MB rows: in K chunks that stay in L1 with
     * the tile's chunk, packed (the n rows of a chunk adjacent) */
    const int chunked = buffered || n > WK_MB;
    const int kc = chunked ? (WK_L1_FLOATS / (n + R)) & ~(QB - 1) : (kf > 0 ? kf : 1);
    if (chunked)
        for (int k0 = 0; k0 < kf; k0 += kc) {
            const int kn = kf - k0 < kc ? kf - k0 : kc;
            for (int m = 0; m < n; m++)
                memcpy(work + (size_t)n * k0 + (size_t)m * kn, x + (size_t)m * ldx + k0, (size_t)kn * sizeof *work);
        }
    vf acc[IFP_WK_SMALL_N * WK_R_MAX];
    float buf[WK_L1_FLOATS] __attribute__((aligned(64)));
    static const size_t pf_dist[] = {WK_PF_F32, WK_PF_F16, WK_PF_BF16, WK_PF_Q8};
    const size_t dist = n <= 2 ? pf_dist[T] : WK_PF_N;
    pf_t pf = {.rb = w->row_bytes, .dist = dist < w->row_bytes ? dist : w->row_bytes};
    for (int o0 = 0; o0 < w->rows; o0 += R) {
        const int nb = w->rows - o0 < R ? w->rows - o0 : R;
        const void *row[WK_R_MAX], *wp[WK_R_MAX];
        for (int r = 0; r < R; r++) row[r] = ifp_wmat_row(w, o0 + (r < nb ? r : nb - 1));
        pf.row0 = nb == R && pf.dist ? row[0] : NULL;
        pf.next = o0 + 2 * R <= w->rows;
        for (int i = 0; i < n * R; i++) acc[i] = (vf){0};
        for (int k0 = 0; k0 < kf; k0 += kc) {
            const int kn = kf - k0 < kc ? kf - k0 : kc;
            const float *xc = chunked ? work + (size_t)n * k0 : x + k0;
            const size_t ldc = chunked ? (size_t)kn : (size_t)ldx;
            if (buffered) {
                for (int r = 0; r < R; r++) {
                    if (r < nb) widen_of[T](row[r], k0, kn, buf + r * kc, &pf, R, r);
                    wp[r] = buf + (r < nb ? r : nb - 1) * kc;
                }
                tiles(acc, xc, ldc, wp, kn, n, NULL, 0);
            } else {
                for (int r = 0; r < R; r++) wp[r] = (const char *)row[r] + w_offset(T, k0);
                tiles(acc, xc, ldc, wp, kn, n, &pf, w_offset(T, k0));
            }
        }
        if (kf < cols) tail(T, R, acc, x, (size_t)ldx, row, kf, cols, n);
        for (int m = 0; m < n; m++)
            for (int r = 0; r < nb; r++) {
                float s = hsum(acc[m * R + r]), *yo = y + (size_t)m * ldy + o0 + r;
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
        case T_F16: widen_f16(row, 0, kf, o, NULL, 1, 0); break;
        case T_BF16: widen_bf16(row, 0, kf, o, NULL, 1, 0); break;
        default: widen_q8(row, 0, kf, o, NULL, 1, 0); break;
        }
        for (int k = kf; k < cols; k++) o[k] = get_w(T, row, k);
    }
}

#endif /* WK_VL */
