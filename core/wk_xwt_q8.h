/* wk_xwt_q8.h — the Q8_0 decode kernel of y (+)= x · Wᵀ (n <= 16), part of
 * the wk_xwt_simd.h template (included by it where WK_VL is defined; needs
 * the ISA file's WK_Q8W_T, WK_Q8W, WK_Q8DOT and WK_Q8G).
 *
 * A Q8_0 block is 32 int8 q and an f16 scale d; a dot product is Σ_b d_b ·
 * Σ_i q_i x_i.  The inner sums are integer: x is rounded once per call, per
 * block of 32, to int16 (xq = round(x / dx), dx = max|x| / 32767, so each x
 * moves by at most 2^-16 of its block's largest), and Σ q·xq is exact in
 * int32 (|Σ| <= 32 · 127 · 32767 < 2^31), two int16 multiply-adds per
 * vector on AVX2 / AVX-512 (vpmaddwd).  Each block then adds
 * float(Σ) · (d · dx) to one of two f32 sums, block b to sum b mod 2 in
 * ascending b, and the sums are added in a fixed order at the row's end: an
 * output depends only on its W row and its x row (not on n, nor on where
 * the row sits), as the other types' decode outputs.
 *
 * W is read as a few long streams (WK_Q8S1 rows at a time at n = 1, WK_Q8SN
 * above, each from its own segment of the rows), with a software prefetch
 * WK_PF_Q8 bytes ahead into L2 (measured on Zen 3: the hardware prefetchers
 * alone fall behind a Q8_0 stream), for WK_Q8G rows of x at a time (the
 * tile's blocks are read again from L1 for the next rows of x). */
#ifndef IFP_WK_XWT_Q8_H
#define IFP_WK_XWT_Q8_H

#include <float.h>
#include <math.h>

/* Tiles (an ISA file may override): n = 1, 4 rows × 2 sums; n > 1, 2 rows
 * × 2 x rows × 2 sums (8 sums + the W vectors in 16 registers). */
#ifndef WK_Q8S1
#define WK_Q8S1 4
#endif
#ifndef WK_Q8SN
#define WK_Q8SN 2
#endif
#ifndef WK_Q8G
#define WK_Q8G 2
#endif
#ifndef WK_PF_Q8
#define WK_PF_Q8 2048
#endif
#ifndef WK_PF_Q8_LOC
#define WK_PF_Q8_LOC 2 /* prefetcht1: into L2 */
#endif
#ifndef Q8_SUMS
#define Q8_SUMS 2  /* f32 sums per output (block b to sum b mod Q8_SUMS) */
#endif
#define Q8_S_MAX 8 /* W rows (streams) per tile: 1, 2, 4 or 8 */
#define Q8_G_MAX 2 /* x rows per tile: 1 or 2 */
_Static_assert((WK_Q8S1 == 1 || WK_Q8S1 == 2 || WK_Q8S1 == 4 || WK_Q8S1 == 8) &&
                   (WK_Q8SN == 1 || WK_Q8SN == 2 || WK_Q8SN == 4 || WK_Q8SN == 8) &&
                   WK_Q8G >= 1 && WK_Q8G <= Q8_G_MAX,
               "WK_Q8S1, WK_Q8SN: 1, 2, 4 or 8; WK_Q8G: 1 or 2");

/* xq[m][.] and dx[m][.] of n rows of x (cols a multiple of QB): per block,
 * dx = max|x| / 32767 and xq = round(x / dx); a block of zeros has dx = 0,
 * one holding an inf or a nan has dx = nan (its outputs become nan, as the
 * reference's). */
static void q8_pack_x(const float *x, int ldx, int n, int cols, int16_t *xq, float *dx) {
    const int nb = cols / QB;
    for (int m = 0; m < n; m++)
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)m * ldx + (size_t)b * QB;
            int16_t *q = xq + ((size_t)m * nb + b) * QB;
            float amax = 0.0f;
            int bad = 0;
            for (int i = 0; i < QB; i++) {
                float a = fabsf(xb[i]);
                bad |= !(a <= FLT_MAX);
                amax = a > amax ? a : amax;
            }
            if (bad || amax == 0.0f) {
                memset(q, 0, QB * sizeof *q);
                dx[(size_t)m * nb + b] = bad ? NAN : 0.0f;
                continue;
            }
            /* a block of tiny values is scaled up by 2^60 first (exact), or
             * 32767 / amax would overflow */
            const float pre = amax < 0x1p-60f ? 0x1p60f : 1.0f, am = amax * pre;
            const float inv = 32767.0f / am; /* |x · inv| <= 32767 (1 + 2^-22): rounds to <= 32767 */
            for (int i = 0; i < QB; i++) q[i] = (int16_t)lrintf(xb[i] * pre * inv);
            dx[(size_t)m * nb + b] = am / 32767.0f / pre;
        }
}

/* out[s·G + g] = the dot products of the W rows row[s] (nb blocks each),
 * s < S, with x rows m0 + g, g < G; pf: prefetch each row's stream. */
WK_INLINE void q8_tile(int S, int G, const char *const *row, int nb, const int16_t *xq, const float *dx, int m0,
                       float *out, int pf) {
    vf a[Q8_S_MAX][Q8_G_MAX][Q8_SUMS];
    WK_UNROLL for (int s = 0; s < S; s++) WK_UNROLL for (int g = 0; g < G; g++)
        WK_UNROLL for (int j = 0; j < Q8_SUMS; j++) a[s][g][j] = (vf){0};
    const int16_t *xg = xq + (size_t)m0 * nb * QB;
    const float *dg = dx + (size_t)m0 * nb;
    for (int b = 0; b < nb; b += Q8_SUMS) {
        const int nj = nb - b < Q8_SUMS ? nb - b : Q8_SUMS;
        WK_UNROLL for (int s = 0; s < S; s++) {
            if (pf) {
                const uintptr_t p = (uintptr_t)row[s] + (size_t)b * QBYTES + WK_PF_Q8;
                __builtin_prefetch((const void *)p, 0, WK_PF_Q8_LOC);
                __builtin_prefetch((const void *)(p + 64), 0, WK_PF_Q8_LOC);
            }
            WK_UNROLL for (int j = 0; j < Q8_SUMS; j++) {
                if (j >= nj) break;
                const char *blk = row[s] + (size_t)(b + j) * QBYTES;
                WK_Q8W_T wq = WK_Q8W(blk + 2);
                uint16_t h;
                memcpy(&h, blk, sizeof h);
                const float d = WK_F16S(h);
                WK_UNROLL for (int g = 0; g < G; g++) {
                    vi si = WK_Q8DOT(wq, xg + ((size_t)g * nb + b + j) * QB);
                    vf sc = (vf){0} + d * dg[(size_t)g * nb + b + j];
                    a[s][g][j] = WK_FMA(__builtin_convertvector(si, vf), sc, a[s][g][j]);
                }
            }
        }
    }
    WK_UNROLL for (int s = 0; s < S; s++) WK_UNROLL for (int g = 0; g < G; g++) {
        vf t = a[s][g][0];
        WK_UNROLL for (int j = 1; j < Q8_SUMS; j++) t += a[s][g][j];
        out[s * G + g] = hsum(t);
    }
}

#define WK_Q8TILE(name, S, G)                                                                                 \
    static void name(const char *const *row, int nb, const int16_t *xq, const float *dx, int m0, float *out,  \
                     int pf) {                                                                                \
        q8_tile(S, G, row, nb, xq, dx, m0, out, pf);                                                          \
    }
WK_Q8TILE(q8_tile_1x1, 1, 1)
WK_Q8TILE(q8_tile_1x2, 1, 2)
WK_Q8TILE(q8_tile_2x1, 2, 1)
WK_Q8TILE(q8_tile_2x2, 2, 2)
WK_Q8TILE(q8_tile_4x1, 4, 1)
WK_Q8TILE(q8_tile_4x2, 4, 2)
WK_Q8TILE(q8_tile_8x1, 8, 1)
WK_Q8TILE(q8_tile_8x2, 8, 2)
typedef void (*q8_tile_fn)(const char *const *, int, const int16_t *, const float *, int, float *, int);

/* The tile of S rows × G x rows. */
static q8_tile_fn q8_tile_of(int S, int G) {
    static const q8_tile_fn t[4][2] = {{q8_tile_1x1, q8_tile_1x2}, {q8_tile_2x1, q8_tile_2x2},
                                       {q8_tile_4x1, q8_tile_4x2}, {q8_tile_8x1, q8_tile_8x2}};
    return t[S == 1 ? 0 : S == 2 ? 1 : S == 4 ? 2 : 3][G - 1];
}

/* y (+)= x · Wᵀ for Q8_0 W, 1 <= n <= IFP_WK_SMALL_N; work: n × cols floats.
 * W is read as S streams: its rows cut into S segments of L, tile i taking
 * row i of each (as the other types' kernel). */
static void xwt_q8(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate,
                   float *work) {
    const int cols = w->cols, nb = cols / QB;
    const int S = n == 1 ? WK_Q8S1 : WK_Q8SN, G = n == 1 ? 1 : WK_Q8G;
    int16_t *xq = (int16_t *)work;            /* n × cols int16 */
    float *dx = work + (size_t)n * cols / 2; /* n × nb */
    q8_pack_x(x, ldx, n, cols, xq, dx);
    const int L = (w->rows + S - 1) / S;
    for (int i = 0; i < L; i++) {
        int ro[Q8_S_MAX];
        const char *row[Q8_S_MAX];
        for (int s = 0; s < S; s++) {
            ro[s] = s * L + i < w->rows ? s * L + i : -1;
            row[s] = ifp_wmat_row(w, ro[s] >= 0 ? ro[s] : i);
        }
        for (int m0 = 0; m0 < n; m0 += G) {
            const int g = n - m0 < G ? n - m0 : G;
            float out[Q8_S_MAX * Q8_G_MAX];
            q8_tile_of(S, g)(row, nb, xq, dx, m0, out, WK_PF_Q8 > 0 && m0 == 0);
            for (int s = 0; s < S; s++) {
                if (ro[s] < 0) continue;
                for (int k = 0; k < g; k++) {
                    float *yo = y + (size_t)(m0 + k) * ldy + ro[s];
                    *yo = accumulate ? *yo + out[s * g + k] : out[s * g + k];
                }
            }
        }
    }
}

#endif /* IFP_WK_XWT_Q8_H */
