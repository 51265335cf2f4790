/* wk_xw_simd.h — the decode kernel of y (+)= x · W (a row of W is an input,
 * n <= IFP_WK_XW_SMALL_N), written once with GCC vector extensions and
 * instantiated per ISA path: wk_xw_avx2.c (32-byte vectors, AVX2 + FMA +
 * F16C) and wk_xw_avx512.c (64 bytes, AVX-512 F + BW).  Core internal:
 * wk_xw.c dispatches to them and holds the portable path.
 *
 * The first part declares what the files of wk_xw share; the template
 * follows and is compiled only where WK_VL is defined:
 *   WK_VL          floats per vector
 *   WK_NV1, WK_NV2, WK_NV3  vectors per register tile for groups of 1 / 2 / 3-4
 *                  x rows (at most 8)
 *   WK_FMA(a,b,c)  a * b + c on vf with one rounding
 *   WK_SET1(s)     s in every lane (-0 kept)
 *   WK_F16(h)      vh (WK_VL f16 bits) -> vf, exact
 *   WK_F16S(u)     one f16 (uint16_t) -> float, exact
 *   WK_F16B(u)     one f16 (uint16_t) -> vf, in every lane
 *   WK_BF16(h)     vh (WK_VL bf16 bits) -> vf, exact
 *   WK_I8F(p)      WK_VL int8 at p (any alignment) -> vf, exact
 *   WK_ENTRY(f)    f##_<isa>: the names of the entry points
 *
 * How the decode kernel works.  W (rows = inputs, cols = outputs) is far
 * larger than the caches, so it is read once for all n rows of x.  The
 * inputs whose x is 0 in every row are dropped (ifp_wk_xw_active): a masked
 * FFN channel costs nothing.  The others are taken K at a time (a chunk, in
 * ascending order; K = chunk_inputs(), 8-32).  For one group of x rows (n
 * <= 4; Q8_0 and F32 at any n) register tiles of R = n rows × WK_NV vectors
 * run along the chunk's rows in their stored type, widening each vector in
 * registers; for more rows of F16 and BF16 a stretch of WK_TW outputs of
 * the chunk's rows is widened once into an L1 buffer and the groups of 4 x
 * rows run on it in turn.  A register tile takes the chunk's inputs in
 * order, one FMA per input and output; the sums are carried between chunks
 * in the partials S (n × cols f32: y itself when accumulate is 0).  Every
 * output thus sees acc = fma(x[i], w[i][o], acc) over its inputs in
 * ascending order from acc = 0 — for Q8_0, acc = fma(x[i] · d, q[i][o],
 * acc) with x[i] · d (the block's scale) rounded once, which saves a
 * multiply per weight — then y = acc or y += acc: the result depends
 * neither on the chunk size nor on the tiles, nor on inputs that are 0 in
 * every row, so a compacted model (a subset of rows) gives the bits of the
 * masked full model (and the portable path's bits).  While a chunk is
 * worked on, the next chunk's rows are prefetched in memory order, spread
 * over the steps (not for F32: it streams as fast without, and the requests
 * cost instructions).
 *
 * Measured on one Zen 3 core (AVX2, 6656 × 2048, n = 1): from L2, F32 runs
 * at ~45 GB/s, BF16 ~19, Q8_0 ~12 (the widening: int8 -> f32 costs two
 * operations per vector); from memory F32 and BF16 stream at 85-100% of a
 * plain read, Q8_0 at ~70% (K short streams per chunk: its rows are 2 KiB).
 * n = 16 runs at 30 (F32) to 50 GFLOP/s. */
#ifndef IFP_WK_XW_SIMD_H
#define IFP_WK_XW_SIMD_H

#include "wkern_int.h"

#define IFP_WK_XW_SMALL_N 16 /* decode batches: at most this many rows of x */


/* The inputs i < rows with x[r·ldx + i] != 0 for some r < n, ascending,
 * into idx; returns their count. */
int ifp_wk_xw_active(const float *x, int ldx, int n, int rows, int *idx);

/* y (+)= x · W for 1 <= n <= IFP_WK_XW_SMALL_N over the na inputs idx
 * (na >= 1).  S: n × cols partials (stride cols) when accumulate is 1,
 * unused otherwise. */
void ifp_wk_xw_small_generic(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                             int accumulate, const int *idx, int na, float *S);
/* out[i × cols + o] = W[r0 + i][o] as f32, i < nr (exact, as ifp_dequantize_row). */
void ifp_wk_xw_widen_generic(const ifp_wmat_t *w, int r0, int nr, float *out);
#if defined(__x86_64__)
void ifp_wk_xw_small_avx2(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate,
                          const int *idx, int na, float *S);
void ifp_wk_xw_widen_avx2(const ifp_wmat_t *w, int r0, int nr, float *out);
void ifp_wk_xw_small_avx512(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                            int accumulate, const int *idx, int na, float *S);
void ifp_wk_xw_widen_avx512(const ifp_wmat_t *w, int r0, int nr, float *out);
#endif

#endif /* IFP_WK_XW_SIMD_H */

/* ======================================================================== */
#ifdef WK_VL

#include <stdint.h>
#include <string.h>

/* Tuning (the defaults measured on Zen 3; -D overrides for experiments). */
#ifndef WK_TW
#define WK_TW 128 /* outputs per stretch when n > 4 (whole Q8_0 blocks and register tiles) */
#endif
#define WK_KMAX 32 /* inputs per chunk, at most (chunk_inputs) */
#ifndef WK_PF
#define WK_PF 1 /* prefetch the next chunk (0: no; never for F32) */
#endif
#ifndef WK_PF_STEP
#define WK_PF_STEP 64 /* a cache line */
#endif
#ifndef WK_PF_LOC
#define WK_PF_LOC 3
#endif
#define WK_INLINE static inline __attribute__((always_inline))
#define WK_UNROLL _Pragma("GCC unroll 16") /* whole, at -O2 too: the tiles live in registers */

typedef float vf __attribute__((vector_size(WK_VL * 4)));
typedef uint16_t vh __attribute__((vector_size(WK_VL * 2)));

#define QB IFP_Q8_0_BLOCK
#define QBYTES ((int)sizeof(ifp_block_q8_0_t))

/* ---- loads and stores: unaligned, by memcpy (Q8_0 blocks are 2-byte aligned) ---- */

WK_INLINE vf ld(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
WK_INLINE void st(float *p, vf v) {
    memcpy(p, &v, sizeof v);
}
WK_INLINE uint16_t ld16(const char *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return h;
}

/* Elements [c, c + WK_VL) of a stretch of a row of type T in f32 (exact).
 * p: the stretch's first byte (a block boundary for Q8_0); d: the scale
 * of the block of c (Q8_0 only, from scale()). */
WK_INLINE vf wvec(ifp_ggml_type_t T, const char *p, int c, vf d) {
    vh h;
    switch (T) {
    case IFP_GGML_F32: return ld((const float *)(const void *)p + c);
    case IFP_GGML_F16: memcpy(&h, p + (size_t)c * 2, sizeof h); return WK_F16(h);
    case IFP_GGML_BF16: memcpy(&h, p + (size_t)c * 2, sizeof h); return WK_BF16(h);
    default: /* Q8_0: d · q, exact (11-bit × 8-bit) */
        return d * WK_I8F(p + (size_t)((unsigned)c / QB) * QBYTES + 2 + (unsigned)c % QB);
    }
}
/* The scale of the Q8_0 block of column c, in every lane. */
WK_INLINE vf scale(const char *p, int c) {
    return WK_F16B(ld16(p + (size_t)((unsigned)c / QB) * QBYTES));
}
/* One element (the columns past the last whole vector; not Q8_0). */
WK_INLINE float wone(ifp_ggml_type_t T, const char *p, int c) {
    if (T == IFP_GGML_F32) {
        float f;
        memcpy(&f, p + (size_t)c * 4, sizeof f);
        return f;
    }
    uint16_t h = ld16(p + (size_t)c * 2);
    if (T == IFP_GGML_F16) return WK_F16S(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Byte offset of column col in a row (col a multiple of QB for Q8_0). */
WK_INLINE size_t col_offset(ifp_ggml_type_t t, int col) {
    return t == IFP_GGML_F32 ? (size_t)col * 4 : t == IFP_GGML_Q8_0 ? (size_t)((unsigned)col / QB) * QBYTES : (size_t)col * 2;
}

/* out[c] = the stretch p of type T, c < tw, as f32 (tw a multiple of QB for Q8_0). */
WK_INLINE void widen(ifp_ggml_type_t T, const char *p, int tw, float *out) {
    int c = 0;
    vf d = {0};
    if (T == IFP_GGML_Q8_0)
        for (; c < tw; c += QB) {
            d = scale(p, c);
            WK_UNROLL for (int v = 0; v < QB; v += WK_VL) st(out + c + v, wvec(T, p, c + v, d));
        }
    for (; c + WK_VL <= tw; c += WK_VL) st(out + c, wvec(T, p, c, d));
    for (; c < tw; c++) out[c] = wone(T, p, c);
}

/* ---- the register tiles ---- */

enum { FIRST = 1, ADDY = 2 }; /* start from 0 / the last chunk of accumulate = 1: y += acc */

/* Outputs [j, j + NV·WK_VL) of a stretch of the chunk's rows (w[k], type
 * T) for x rows [0, R) of a group: acc[r][v] = fma(xs[k·n + r], w[k][...],
 * acc) for the chunk's inputs k < kc in order.  s, yy: the group's first
 * partial and output at column j (rows lds / ldy apart).  For Q8_0, j and
 * NV·WK_VL are multiples of QB or NV·WK_VL divides QB. */
WK_INLINE void tile(ifp_ggml_type_t T, const int R, const int NV, const char *const *w, int kc, int j,
                    const float *xs, int n, float *s, int lds, float *yy, int ldy, int mode) {
    vf acc[4][8];
    const size_t jb = (size_t)((unsigned)j / QB) * QBYTES, ji = (unsigned)j % QB; /* Q8_0: j's block, index in it */
    WK_UNROLL for (int r = 0; r < R; r++)
        WK_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = (mode & FIRST) ? (vf){0} : ld(s + (size_t)r * lds + v * WK_VL);
    for (int k = 0; k < kc; k++) {
        const char *p = w[k];
        vf xb[4], d = {0};
        if (T == IFP_GGML_Q8_0) /* per block: xb[r] = x · d (rounded once), then fma(xb, q, acc) */
            WK_UNROLL for (int v = 0; v < NV; v++) { /* R·NV + R + 2 registers */
                const size_t bo = jb + (size_t)(v * WK_VL / QB) * QBYTES; /* block of column j + v·WK_VL */
                if ((v * WK_VL) % QB == 0) {
                    d = WK_F16B(ld16(p + bo));
                    WK_UNROLL for (int r = 0; r < R; r++) xb[r] = WK_SET1(xs[k * n + r]) * d;
                }
                vf wv = WK_I8F(p + bo + 2 + ji + (v * WK_VL) % QB);
                WK_UNROLL for (int r = 0; r < R; r++) acc[r][v] = WK_FMA(xb[r], wv, acc[r][v]);
            }
        else {
            WK_UNROLL for (int r = 0; r < R; r++) xb[r] = WK_SET1(xs[k * n + r]);
            WK_UNROLL for (int v = 0; v < NV; v++) { /* one widened vector at a time: R·NV + R + 2 registers */
                vf wv = wvec(T, p, j + v * WK_VL, d);
                WK_UNROLL for (int r = 0; r < R; r++) acc[r][v] = WK_FMA(xb[r], wv, acc[r][v]);
            }
        }
    }
    WK_UNROLL for (int r = 0; r < R; r++)
        WK_UNROLL for (int v = 0; v < NV; v++) {
            if (mode & ADDY) {
                float *q = yy + (size_t)r * ldy + v * WK_VL;
                st(q, ld(q) + acc[r][v]);
            } else
                st(s + (size_t)r * lds + v * WK_VL, acc[r][v]);
        }
}

/* The same for the single output j (the columns past the last whole vector). */
WK_INLINE void column(ifp_ggml_type_t T, const int R, const char *const *w, int kc, int j, const float *xs, int n,
                      float *s, int lds, float *yy, int ldy, int mode) {
    WK_UNROLL for (int r = 0; r < R; r++) {
        float acc = (mode & FIRST) ? 0.0f : s[(size_t)r * lds];
        for (int k = 0; k < kc; k++) acc = __builtin_fmaf(xs[k * n + r], wone(T, w[k], j), acc);
        if (mode & ADDY)
            yy[(size_t)r * ldy] += acc;
        else
            s[(size_t)r * lds] = acc;
    }
}

/* ---- prefetch ----
 * The next chunk's rows are requested while this chunk is worked on, in
 * memory order (row by row: the hardware sees one ascending stream), an
 * even share per step of the work; the rows are a chunk ahead of the reads. */

typedef struct {
    const char *lin;         /* the next chunk's rows when they are consecutive (else NULL) */
    const char *const *next; /* the next chunk's rows */
    size_t rb;               /* row bytes */
    size_t q, q1;            /* position in the next chunk's bytes (linear), end of this stretch's share */
    size_t off;              /* q's offset in row k */
    int k;
} pf_t;

/* Request the next chunk's bytes up to q (at most the stretch's share). */
WK_INLINE void pf_to(pf_t *p, size_t q) {
    if (q > p->q1) q = p->q1;
    if (p->lin) { /* one range */
        for (; p->q < q; p->q += WK_PF_STEP) __builtin_prefetch(p->lin + p->q, 0, WK_PF_LOC);
        return;
    }
    while (p->q < q) {
        size_t m = q - p->q < p->rb - p->off ? q - p->q : p->rb - p->off; /* within row k */
        const char *a = p->next[p->k] + p->off;
        size_t b = 0;
        for (; b < m; b += WK_PF_STEP) __builtin_prefetch(a + b, 0, WK_PF_LOC);
        p->q += b, p->off += b;
        if (p->off >= p->rb) p->off -= p->rb, p->k++;
    }
}

/* ---- a stretch of the chunk ---- */

/* Outputs [0, tw) (a stretch of the chunk's rows w[k], type T) for a group
 * of R x rows; pf: spread the stretch's share of prefetches over its steps
 * (NULL: none). */
WK_INLINE void group(ifp_ggml_type_t T, const int R, const int NV, const char *const *w, int kc, int tw,
                     const float *xs, int n, float *s, int lds, float *yy, int ldy, int mode, pf_t *pf) {
    pf_t p = pf ? *pf : (pf_t){0}; /* a local copy lives in registers */
    const int steps = tw / (NV * WK_VL);
    size_t per = (p.q1 - p.q) / (size_t)(steps + 1) + 1;
    for (int i = 0; i < steps; i++) { /* j = i·NV·WK_VL: its Q8_0 block is then known */
        if (pf) pf_to(&p, p.q + per);
        tile(T, R, NV, w, kc, i * NV * WK_VL, xs, n, s + i * NV * WK_VL, lds, yy + i * NV * WK_VL, ldy, mode);
    }
    int j = steps * NV * WK_VL;
    if (pf) {
        pf_to(&p, p.q1);
        *pf = p;
    }
    for (; j + WK_VL <= tw; j += WK_VL) tile(T, R, 1, w, kc, j, xs, n, s + j, lds, yy + j, ldy, mode);
    for (; j < tw; j++) column(T, R, w, kc, j, xs, n, s + j, lds, yy + j, ldy, mode);
}

/* One function per type and group size: its loop keeps its values in
 * registers (inlined all together they spill). */
typedef void (*group_fn)(const char *const *w, int kc, int tw, const float *xs, int n, float *s, int lds, float *yy,
                         int ldy, int mode, pf_t *pf);
#define WK_GROUP_FN(NAME, T, R, NV)                                                                                  \
    static __attribute__((noinline)) void NAME(const char *const *w, int kc, int tw, const float *xs, int n,         \
                                               float *s, int lds, float *yy, int ldy, int mode, pf_t *pf) {        \
        group(T, R, NV, w, kc, tw, xs, n, s, lds, yy, ldy, mode, pf);                                               \
    }
#define WK_GROUP_FNS(TN, T)                                                                                          \
    WK_GROUP_FN(group_##TN##_1, T, 1, WK_NV1)                                                                        \
    WK_GROUP_FN(group_##TN##_2, T, 2, WK_NV2)                                                                        \
    WK_GROUP_FN(group_##TN##_3, T, 3, WK_NV3)                                                                        \
    WK_GROUP_FN(group_##TN##_4, T, 4, WK_NV3)
WK_GROUP_FNS(f32, IFP_GGML_F32)
WK_GROUP_FNS(f16, IFP_GGML_F16)
WK_GROUP_FNS(bf16, IFP_GGML_BF16)
WK_GROUP_FNS(q8, IFP_GGML_Q8_0)
static const group_fn group_tab[4][4] = {
    {group_f32_1, group_f32_2, group_f32_3, group_f32_4},
    {group_f16_1, group_f16_2, group_f16_3, group_f16_4},
    {group_bf16_1, group_bf16_2, group_bf16_3, group_bf16_4},
    {group_q8_1, group_q8_2, group_q8_3, group_q8_4},
};

/* tw outputs from column 0 of the stretch for all n x rows, one group of
 * (up to) 4 x rows after the other; ti: the type's row of group_tab. */
static void stretch(int ti, const char *const *w, int kc, int tw, const float *xs, int n, float *S, int lds,
                    float *y, int ldy, int mode, pf_t *pf) {
    const group_fn *g = group_tab[ti];
    for (int r0 = 0; r0 < n; r0 += 4, pf = NULL) {
        int R = n - r0 < 4 ? n - r0 : 4;
        g[R - 1](w, kc, tw, xs + r0, n, S + (size_t)r0 * lds, lds, y + (size_t)r0 * ldy, ldy, mode, pf);
    }
}

/* One chunk (kc inputs, rows at rp; xs[k·n + r] their x) for all n rows
 * and outputs.  One group of x rows (n <= 4) reads W in its type, across
 * the whole rows; more groups take WK_TW outputs at a time, widened once
 * into buf (F32: read in place) and kept in L1 for all the groups.  next:
 * the kn rows of the next chunk, prefetched meanwhile. */
static void chunk(const ifp_wmat_t *w, const char *const *rp, int kc, const char *const *next, int kn,
                  const float *xs, int n, float *S, int lds, float *y, int ldy, int mode) {
    float buf[WK_KMAX * WK_TW] __attribute__((aligned(64)));
    const char *wp[WK_KMAX];
    const ifp_ggml_type_t t = w->type;
    const int cols = w->cols, direct = n <= 4 || t == IFP_GGML_F32 || t == IFP_GGML_Q8_0;
    const int tws = n <= 4 ? cols : WK_TW, nst = (cols + tws - 1) / tws; /* stretch width, stretches */
    const size_t ntot = (size_t)kn * w->row_bytes;
    /* F32 (little work per byte) streams as fast without: the requests only cost */
    pf_t pf = {.lin = kn ? next[0] : NULL, .next = next, .rb = w->row_bytes};
    pf_t *pfp = WK_PF && kn && t != IFP_GGML_F32 ? &pf : NULL;
    for (int k = 1; k < kn; k++)
        if (next[k] != next[0] + (size_t)k * w->row_bytes) pf.lin = NULL;
    const int ti = !direct || t == IFP_GGML_F32 ? 0 : t == IFP_GGML_F16 ? 1 : t == IFP_GGML_BF16 ? 2 : 3;
    for (int col = 0, si = 1; col < cols; col += tws, si++) {
        int tw = cols - col < tws ? cols - col : tws;
        size_t o = col_offset(t, col);
        pf.q1 = ntot * (size_t)si / (size_t)nst; /* this stretch's share */
        for (int k = 0; k < kc; k++) {
            if (direct)
                wp[k] = rp[k] + o;
            else {
                if (pfp) pf_to(pfp, pf.q + (pf.q1 - pf.q) / (size_t)(kc - k));
                float *b = buf + k * WK_TW;
                switch (t) { /* the type fixed in each loop */
                case IFP_GGML_F16: widen(IFP_GGML_F16, rp[k] + o, tw, b); break;
                case IFP_GGML_BF16: widen(IFP_GGML_BF16, rp[k] + o, tw, b); break;
                default: widen(IFP_GGML_Q8_0, rp[k] + o, tw, b); break;
                }
                wp[k] = (const char *)b;
            }
        }
        stretch(ti, wp, kc, tw, xs, n, S + col, lds, y + col, ldy, mode, pfp);
    }
}

/* Inputs per chunk (measured on 6656 × 2048 and 24576 × 2048): few for
 * one or two x rows, the rows' streams are then read best; more for more
 * rows, each x value loaded is then used by more FMAs between the loads
 * and stores of the partials.  F32: few, it is bound by reading W. */
static int chunk_inputs(ifp_ggml_type_t t, int n) {
#ifdef WK_K
    (void)t, (void)n;
    return WK_K;
#else
    if (t == IFP_GGML_F32) return 8;
    if (t == IFP_GGML_Q8_0) return n <= 2 ? 8 : 32;
    return n <= 4 ? 8 : 32;
#endif
}

void WK_ENTRY(ifp_wk_xw_small)(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                               int accumulate, const int *idx, int na, float *S) {
    float xs[WK_KMAX * IFP_WK_XW_SMALL_N];
    const char *rows[2][WK_KMAX];
    const int K = chunk_inputs(w->type, n), lds = accumulate ? w->cols : ldy;
    if (!accumulate) S = y;
    for (int c0 = 0, cur = 0; c0 < na; c0 += K, cur ^= 1) {
        int kc = na - c0 < K ? na - c0 : K, c1 = c0 + kc;
        int kn = na - c1 < K ? na - c1 : K;
        if (c0 == 0)
            for (int k = 0; k < kc; k++) rows[cur][k] = ifp_wmat_row(w, idx[k]);
        for (int k = 0; k < kn; k++) rows[cur ^ 1][k] = ifp_wmat_row(w, idx[c1 + k]);
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < n; r++) xs[k * n + r] = x[(size_t)r * ldx + idx[c0 + k]];
        int mode = (c0 == 0 ? FIRST : 0) | (c1 == na && accumulate ? ADDY : 0);
        chunk(w, rows[cur], kc, rows[cur ^ 1], kn, xs, n, S, lds, y, ldy, mode);
    }
}

void WK_ENTRY(ifp_wk_xw_widen)(const ifp_wmat_t *w, int r0, int nr, float *out) {
#define WK_WIDEN_ROWS(T)                                                                                             \
    for (int i = 0; i < nr; i++) widen(T, ifp_wmat_row(w, r0 + i), w->cols, out + (size_t)i * w->cols)
    switch (w->type) {
    case IFP_GGML_F32: WK_WIDEN_ROWS(IFP_GGML_F32); break;
    case IFP_GGML_F16: WK_WIDEN_ROWS(IFP_GGML_F16); break;
    case IFP_GGML_BF16: WK_WIDEN_ROWS(IFP_GGML_BF16); break;
    default: WK_WIDEN_ROWS(IFP_GGML_Q8_0); break;
    }
#undef WK_WIDEN_ROWS
}

#endif /* WK_VL */
