#include "wmat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wkern_int.h"

int ifp_wtype_ok(ifp_ggml_type_t t) {
    return t == IFP_GGML_F32 || t == IFP_GGML_F16 || t == IFP_GGML_BF16 || t == IFP_GGML_Q8_0;
}

size_t ifp_wtype_row_bytes(ifp_ggml_type_t t, int cols) {
    if (cols <= 0) return 0;
    switch (t) {
    case IFP_GGML_F32: return (size_t)cols * 4;
    case IFP_GGML_F16:
    case IFP_GGML_BF16: return (size_t)cols * 2;
    case IFP_GGML_Q8_0:
        return cols % IFP_Q8_0_BLOCK ? 0 : (size_t)(cols / IFP_Q8_0_BLOCK) * sizeof(ifp_block_q8_0_t);
    default: return 0;
    }
}

int ifp_wtype_parse(const char *s, ifp_ggml_type_t *out, ifp_err_t *err) {
    static const struct {
        const char *name;
        ifp_ggml_type_t t;
    } tab[] = {{"f32", IFP_GGML_F32}, {"f16", IFP_GGML_F16}, {"bf16", IFP_GGML_BF16}, {"q8_0", IFP_GGML_Q8_0}};
    for (size_t i = 0; s && i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(s, tab[i].name)) {
            *out = tab[i].t;
            return IFP_OK;
        }
    return ifp_errf(err, IFP_EINVAL, "weight type \"%s\": expected f32, f16, bf16 or q8_0", s ? s : "");
}

ifp_wmat_t ifp_wmat(const void *data, ifp_ggml_type_t t, int rows, int cols) {
    ifp_wmat_t w = {.data = data, .type = t, .rows = rows, .cols = cols, .row_bytes = ifp_wtype_row_bytes(t, cols)};
    return w;
}

/* ---- row conversions ---- */

static void quantize_q8_0(const float *x, int n, ifp_block_q8_0_t *b) {
    for (int i0 = 0; i0 < n; i0 += IFP_Q8_0_BLOCK, b++) {
        float amax = 0.0f;
        for (int i = 0; i < IFP_Q8_0_BLOCK; i++) amax = fmaxf(amax, fabsf(x[i0 + i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b->d = ifp_f32_to_f16(d);
        for (int i = 0; i < IFP_Q8_0_BLOCK; i++) {
            float v = roundf(x[i0 + i] * id); /* nan / inf weights (a damaged file) give 0 / +-127 */
            b->qs[i] = (int8_t)(v != v ? 0.0f : v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
        }
    }
}

void ifp_quantize_row(ifp_ggml_type_t t, const float *x, int n, void *out) {
    switch (t) {
    case IFP_GGML_F32: memcpy(out, x, (size_t)n * sizeof(float)); break;
    case IFP_GGML_F16: {
        uint16_t *o = out;
        for (int i = 0; i < n; i++) o[i] = ifp_f32_to_f16(x[i]);
        break;
    }
    case IFP_GGML_BF16: {
        uint16_t *o = out;
        for (int i = 0; i < n; i++) o[i] = ifp_f32_to_bf16(x[i]);
        break;
    }
    case IFP_GGML_Q8_0: quantize_q8_0(x, n, out); break;
    default: break;
    }
}

void ifp_dequantize_row(ifp_ggml_type_t t, const void *in, int n, float *out) {
    switch (t) {
    case IFP_GGML_F32: memcpy(out, in, (size_t)n * sizeof(float)); break;
    case IFP_GGML_F16: {
        const uint16_t *h = in;
        for (int i = 0; i < n; i++) out[i] = ifp_f16_to_f32(h[i]);
        break;
    }
    case IFP_GGML_BF16: {
        const uint16_t *h = in;
        for (int i = 0; i < n; i++) out[i] = ifp_bf16_to_f32(h[i]);
        break;
    }
    case IFP_GGML_Q8_0: {
        const ifp_block_q8_0_t *b = in;
        for (int i0 = 0; i0 < n; i0 += IFP_Q8_0_BLOCK, b++) {
            float d = ifp_f16_to_f32(b->d);
            for (int i = 0; i < IFP_Q8_0_BLOCK; i++) out[i0 + i] = d * (float)b->qs[i];
        }
        break;
    }
    default: break;
    }
}

float ifp_wrow_get(ifp_ggml_type_t t, const void *row, int i) {
    switch (t) {
    case IFP_GGML_F32: {
        float v;
        memcpy(&v, (const char *)row + (size_t)i * 4, 4);
        return v;
    }
    case IFP_GGML_F16:
    case IFP_GGML_BF16: {
        uint16_t h;
        memcpy(&h, (const char *)row + (size_t)i * 2, 2);
        return t == IFP_GGML_F16 ? ifp_f16_to_f32(h) : ifp_bf16_to_f32(h);
    }
    case IFP_GGML_Q8_0: {
        const ifp_block_q8_0_t *b = (const ifp_block_q8_0_t *)row + i / IFP_Q8_0_BLOCK;
        return ifp_f16_to_f32(b->d) * (float)b->qs[i % IFP_Q8_0_BLOCK];
    }
    default: return 0.0f;
    }
}

/* ---- the reference kernels ---- */

void ifp_wmat_xwt_ref(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate) {
    float *row = malloc((size_t)w->cols * sizeof *row);
    if (!row) abort(); /* test/reference path only */
    for (int o = 0; o < w->rows; o++) {
        ifp_dequantize_row(w->type, ifp_wmat_row(w, o), w->cols, row);
        for (int r = 0; r < n; r++) {
            const float *xr = x + (size_t)r * ldx;
            double acc = 0.0;
            for (int i = 0; i < w->cols; i++) acc += (double)xr[i] * (double)row[i];
            float *yo = y + (size_t)r * ldy + o;
            *yo = accumulate ? (float)(acc + (double)*yo) : (float)acc;
        }
    }
    free(row);
}

void ifp_wmat_xw_ref(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate) {
    double *acc = calloc((size_t)n * w->cols, sizeof *acc);
    float *row = malloc((size_t)w->cols * sizeof *row);
    if (!acc || !row) abort(); /* test/reference path only */
    for (int i = 0; i < w->rows; i++) { /* inputs in ascending order */
        ifp_dequantize_row(w->type, ifp_wmat_row(w, i), w->cols, row);
        for (int r = 0; r < n; r++) {
            double xv = (double)x[(size_t)r * ldx + i], *a = acc + (size_t)r * w->cols;
            for (int o = 0; o < w->cols; o++) a[o] += xv * (double)row[o];
        }
    }
    for (int r = 0; r < n; r++)
        for (int o = 0; o < w->cols; o++) {
            float *yo = y + (size_t)r * ldy + o;
            double a = acc[(size_t)r * w->cols + o];
            *yo = accumulate ? (float)(a + (double)*yo) : (float)a;
        }
    free(acc);
    free(row);
}

/* ---- dispatch ---- */

static ifp_isa_t g_isa = IFP_ISA_AUTO; /* resolved on first use */

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
/* F16C: CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports lacks it). */
static int cpu_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}
#endif

ifp_isa_t ifp_isa_best(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int f16c = cpu_f16c();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma") &&
        f16c)
        return IFP_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return IFP_ISA_AVX2;
#endif
    return IFP_ISA_GENERIC;
}

static ifp_isa_t env_cap(void) {
    const char *e = getenv("IFP_ISA");
    if (!e || !*e) return IFP_ISA_AVX512;
    if (!strcmp(e, "generic")) return IFP_ISA_GENERIC;
    if (!strcmp(e, "avx2")) return IFP_ISA_AVX2;
    return IFP_ISA_AVX512;
}

void ifp_isa_set(ifp_isa_t isa) {
    ifp_isa_t best = ifp_isa_best(), cap = env_cap();
    if (isa == IFP_ISA_AUTO || isa > best) isa = best;
    if (isa > cap) isa = cap;
    g_isa = isa;
}

ifp_isa_t ifp_isa_get(void) {
    if (g_isa == IFP_ISA_AUTO) ifp_isa_set(IFP_ISA_AUTO);
    return g_isa;
}

const char *ifp_isa_name(ifp_isa_t isa) {
    switch (isa) {
    case IFP_ISA_GENERIC: return "generic";
    case IFP_ISA_AVX2: return "avx2";
    case IFP_ISA_AVX512: return "avx512";
    default: return "auto";
    }
}

void ifp_wmat_xwt(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate) {
    if (n <= 0 || w->rows <= 0) return;
    if (ifp_kernel_get() == IFP_KERNEL_NAIVE) {
        ifp_wmat_xwt_ref(y, ldy, x, ldx, w, n, accumulate);
        return;
    }
    ifp_wk_xwt(ifp_isa_get(), y, ldy, x, ldx, w, n, accumulate);
}

void ifp_wmat_xw(float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n, int accumulate) {
    if (n <= 0 || w->cols <= 0) return;
    if (ifp_kernel_get() == IFP_KERNEL_NAIVE) {
        ifp_wmat_xw_ref(y, ldy, x, ldx, w, n, accumulate);
        return;
    }
    ifp_wk_xw(ifp_isa_get(), y, ldy, x, ldx, w, n, accumulate);
}
