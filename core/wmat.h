/* wmat.h — a weight matrix kept in its stored type, and the two products
 * every linear layer of the forward pass is made of.
 *
 * Types (ggml numbering, ifp_ggml_type_t): F32, F16, BF16 and Q8_0.  A Q8_0
 * row is cols/32 blocks of { f16 scale d; int8 q[32] } (34 bytes, GGUF's
 * layout); element i of a block is d * q[i], computed in float (exact: an
 * 11-bit by 8-bit product).  F16/BF16 elements widen to f32 exactly.
 *
 * Products (activations are f32, weights are widened to f32 exactly, and
 * every multiply-add is in f32 — or in double in the reference):
 *   xwt: y[n × rows] (+)= x[n × cols] · Wᵀ   a row of W is an output
 *        (attention, gate, up, the head)
 *   xw:  y[n × cols] (+)= x[n × rows] · W    a row of W is an input
 *        (ffn_down stored channel-major: row j = channel j, so compaction
 *        gathers whole rows of every FFN matrix, in any type)
 *
 * Kernels: ifp_kernel_get() == IFP_KERNEL_NAIVE runs the reference (double
 * accumulation, inputs in ascending order); otherwise the fastest path of
 * the CPU (ifp_isa_get()).  The xw fast path accumulates every output in
 * ascending input order, one f32 multiply-add per input (inputs whose x is
 * 0 in every row may be skipped): a compacted model and the masked full
 * model then give bit-identical results for decode batches (n <= 16). */
#ifndef IFP_WMAT_H
#define IFP_WMAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"

#define IFP_Q8_0_BLOCK 32

typedef struct {
    uint16_t d;                    /* f16 scale */
    int8_t qs[IFP_Q8_0_BLOCK];
} ifp_block_q8_0_t;                /* 34 bytes, as in GGUF */

typedef struct {
    const void *data;      /* rows × row_bytes; row r at (const char *)data + r * row_bytes */
    ifp_ggml_type_t type;  /* F32, F16, BF16 or Q8_0 */
    int rows, cols;
    size_t row_bytes;      /* ifp_wtype_row_bytes(type, cols) */
} ifp_wmat_t;

/* 1 for the four weight types above. */
int ifp_wtype_ok(ifp_ggml_type_t t);
/* Bytes of one row of cols elements; 0 if the type is not a weight type or
 * cols is not allowed (Q8_0 needs a multiple of 32). */
size_t ifp_wtype_row_bytes(ifp_ggml_type_t t, int cols);
/* "f32" | "f16" | "bf16" | "q8_0" -> type; IFP_EINVAL with a message naming s. */
int ifp_wtype_parse(const char *s, ifp_ggml_type_t *out, ifp_err_t *err);

/* A view of rows × cols of type t at data (row_bytes computed). */
ifp_wmat_t ifp_wmat(const void *data, ifp_ggml_type_t t, int rows, int cols);
static inline const void *ifp_wmat_row(const ifp_wmat_t *w, int r) {
    return (const char *)w->data + (size_t)r * w->row_bytes;
}

/* Row conversions.  quantize: n f32 -> type (F16/BF16 round to nearest
 * even; Q8_0: d = max|x| / 127 rounded to f16, q = round(x / d) as ggml
 * does); dequantize: type -> f32, exact. */
void ifp_quantize_row(ifp_ggml_type_t t, const float *x, int n, void *out);
void ifp_dequantize_row(ifp_ggml_type_t t, const void *in, int n, float *out);
/* One element of a row (slow; for gathers along columns and for tests). */
float ifp_wrow_get(ifp_ggml_type_t t, const void *row, int i);

/* The products (see above).  ldx / ldy are row strides in floats;
 * accumulate = 0 writes y, 1 adds to it. */
void ifp_wmat_xwt(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate);
void ifp_wmat_xw(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate);

/* The reference kernels (what IFP_KERNEL_NAIVE runs): for every output,
 * sum in double over the inputs in ascending order of (double)x * (double)w,
 * w dequantized as above; then y = (float)sum, or (float)(sum + y). */
void ifp_wmat_xwt_ref(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate);
void ifp_wmat_xw_ref(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate);

/* Instruction-set paths of the fast kernels.  AUTO picks the best the CPU
 * has (checked at run time); the environment variable IFP_ISA (generic,
 * avx2, avx512) caps the choice for benchmarks and tests. */
typedef enum {
    IFP_ISA_AUTO = 0,
    IFP_ISA_GENERIC = 1, /* portable C, f32 accumulation */
    IFP_ISA_AVX2 = 2,    /* AVX2 + FMA + F16C */
    IFP_ISA_AVX512 = 3,  /* AVX-512 F + BW */
} ifp_isa_t;

/* The best path this CPU supports (ignores IFP_ISA). */
ifp_isa_t ifp_isa_best(void);
/* The path in use: set (AUTO = best, capped by IFP_ISA); a request above
 * what the CPU has is lowered to the best available. */
void ifp_isa_set(ifp_isa_t isa);
ifp_isa_t ifp_isa_get(void);
const char *ifp_isa_name(ifp_isa_t isa);

#endif
