/* test_gguf.c — GGUF reader/writer: f16/bf16 conversions, writer -> reader
 * round trips, the shipped model files, a corpus of malformed files (each
 * rejected with its code and message), every truncation of a small file, and
 * seeded random corruptions (load or fail cleanly, never crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "testutil.h"

static char g_dir[64]; /* temp dir for written files */

/* ---------------------------------------------------------------- helpers */

/* Byte builder for hand-assembled files. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb_t;

static void bb_put(bb_t *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void bb_le(bb_t *b, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) bb_put(b, &(uint8_t){(uint8_t)(v >> (8 * i))}, 1);
}
static void bb_u32(bb_t *b, uint32_t v) { bb_le(b, v, 4); }
static void bb_u64(bb_t *b, uint64_t v) { bb_le(b, v, 8); }
static void bb_str(bb_t *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_pad(bb_t *b, size_t align) {
    while (b->len % align) bb_le(b, 0, 1);
}
static void hdr(bb_t *b, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, 3);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void kv_u32(bb_t *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, IFP_GGUF_UINT32);
    bb_u32(b, v);
}
/* Tensor info with ne given innermost first. */
static void tinfo(bb_t *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, off);
}
/* Pads to 32 and appends n zero bytes of data. */
static void data(bb_t *b, size_t n) {
    bb_pad(b, 32);
    for (size_t i = 0; i < n; i++) bb_le(b, 0, 1);
}

/* Opens an exact-size heap copy (so ASan sees any overread); on success
 * *copy must be freed after ifp_gguf_close. */
static int open_copy(const void *buf, size_t len, ifp_gguf_t **g, ifp_err_t *err, void **copy) {
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    if (len) memcpy(*copy, buf, len);
    *g = (ifp_gguf_t *)1; /* must be reset to NULL on failure */
    int rc = ifp_gguf_open_buffer(*copy, len, "test.gguf", g, err);
    if (rc) {
        assert_null(*g);
        free(*copy);
        *copy = NULL;
    }
    return rc;
}
static void close_copy(ifp_gguf_t **g, void **copy) {
    ifp_gguf_close(g);
    free(*copy);
    *copy = NULL;
}

/* Touches everything a loaded file exposes. */
static void exercise(const ifp_gguf_t *g) {
    for (uint64_t i = 0; i < ifp_gguf_n_kv(g); i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(g, i);
        if (kv->type == IFP_GGUF_ARRAY && kv->arr_type == IFP_GGUF_STRING)
            for (uint64_t j = 0; j < kv->arr_n; j++)
                for (uint64_t c = 0; c < kv->arr_str[j].len; c++) (void)*(volatile const char *)&kv->arr_str[j].ptr[c];
        else if (kv->type == IFP_GGUF_ARRAY)
            for (uint64_t j = 0; j < kv->arr_n; j++) (void)ifp_gguf_arr_num(kv, j);
        else if (kv->type == IFP_GGUF_STRING)
            for (uint64_t c = 0; c < kv->v.str.len; c++) (void)*(volatile const char *)&kv->v.str.ptr[c];
    }
    float tmp[256];
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        for (uint64_t k = 0; k < t->n_elements; k += 256) {
            uint64_t n = t->n_elements - k < 256 ? t->n_elements - k : 256;
            assert_int_equal(ifp_gguf_tensor_read_f32(t, k, n, tmp, NULL), IFP_OK);
        }
    }
}

static char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%.200s", g_dir, name);
    return buf;
}

/* ---------------------------------------------------------------- conversions */

static float f16_ref(uint16_t h) { /* by the definition */
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float s = (h & 0x8000) ? -1.0f : 1.0f;
    if (e == 0) return s * ldexpf((float)m, -24);
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * ldexpf(1.0f + (float)m / 1024.0f, e - 15);
}

static void test_f16_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ifp_f16_to_f32((uint16_t)h), r = f16_ref((uint16_t)h);
        if (isnan(r)) {
            assert_true(isnan(f));
        } else {
            assert_true(f == r);
            assert_int_equal(signbit(f) != 0, (h & 0x8000) != 0);
        }
        assert_int_equal(ifp_f32_to_f16(f), h); /* exact round trip, nan payloads included */
    }
}

static void test_f16_rounding(void **state) {
    (void)state;
    assert_int_equal(ifp_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(ifp_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(ifp_f32_to_f16(65520.0f), 0x7c00); /* tie goes to even = inf */
    assert_int_equal(ifp_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(ifp_f32_to_f16(INFINITY), 0x7c00);
    assert_true((ifp_f32_to_f16(NAN) & 0x7fff) > 0x7c00);
    assert_int_equal(ifp_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);        /* tie -> even 0 */
    assert_int_equal(ifp_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    assert_int_equal(ifp_f32_to_f16(ldexpf(3.0f, -25)), 0x0002);        /* 1.5 ulp tie -> even 2 */
    assert_int_equal(ifp_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie -> even */
    assert_int_equal(ifp_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02);
    assert_int_equal(ifp_f32_to_f16(ldexpf(1023.5f, -24)), 0x0400); /* subnormal rounds up to min normal */
    assert_int_equal(ifp_f32_to_f16(-0.0f), 0x8000);
#ifdef __FLT16_MAX__
    uint32_t x = 12345;
    for (int i = 0; i < 200000; i++) { /* against the compiler's conversion */
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        float f;
        memcpy(&f, &x, sizeof f);
        if (isnan(f)) continue;
        _Float16 h = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &h, sizeof hb);
        assert_int_equal(ifp_f32_to_f16(f), hb);
        float small = ldexpf(f, -(int)(x % 40)); /* push many into the subnormal range */
        if (fabsf(small) < 70000.0f) {
            h = (_Float16)small;
            memcpy(&hb, &h, sizeof hb);
            assert_int_equal(ifp_f32_to_f16(small), hb);
        }
    }
#endif
}

static void test_bf16(void **state) {
    (void)state;
    assert_true(ifp_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(ifp_bf16_to_f32(0xc000) == -2.0f);
    assert_int_equal(ifp_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(ifp_f32_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3f80); /* tie -> even */
    assert_int_equal(ifp_f32_to_bf16(1.0f + ldexpf(3.0f, -8)), 0x3f82);
    assert_int_equal(ifp_f32_to_bf16(INFINITY), 0x7f80);
    assert_true(isnan(ifp_bf16_to_f32(ifp_f32_to_bf16(NAN))));
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ifp_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) assert_int_equal(ifp_f32_to_bf16(f), h);
    }
}

/* ---------------------------------------------------------------- round trip */

static void test_roundtrip(void **state) {
    (void)state;
    static const uint32_t aligns[] = {32, 64, 1, 4096};
    for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++) {
        ifp_gguf_writer_t *w = ifp_gguf_writer_new();
        assert_non_null(w);
        if (aligns[ai] != 32) ifp_gguf_writer_set_alignment(w, aligns[ai]);
        assert_int_equal(ifp_gguf_writer_set_u32(w, "a.u32", 4000000000u), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_i32(w, "a.i32", -7), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_u64(w, "a.u64", UINT64_MAX), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_f32(w, "a.f32", 1e-5f), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_bool(w, "a.bool", 1), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_str(w, "a.str", "héllo"), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_str(w, "a.empty", ""), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_u32(w, "a.replaced", 1), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_u32(w, "a.replaced", 2), IFP_OK);
        const char *strs[] = {"<unk>", "", "▁the", "a\nb"};
        assert_int_equal(ifp_gguf_writer_set_arr_str(w, "a.strs", strs, 4), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr_str(w, "a.nostrs", strs, 0), IFP_OK);
        const int8_t i8[] = {-128, 0, 127};
        const uint16_t u16[] = {0, 65535};
        const int32_t i32[] = {-1, 2, INT32_MIN};
        const float f32[] = {0.5f, -3.25f};
        const double f64[] = {1e300, -0.125};
        const int64_t i64[] = {INT64_MIN, 5};
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.i8", IFP_GGUF_INT8, i8, 3), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.u16", IFP_GGUF_UINT16, u16, 2), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.i32", IFP_GGUF_INT32, i32, 3), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.f32", IFP_GGUF_FLOAT32, f32, 2), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.f64", IFP_GGUF_FLOAT64, f64, 2), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.i64", IFP_GGUF_INT64, i64, 2), IFP_OK);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.bad", IFP_GGUF_STRING, strs, 1), IFP_EINVAL);
        assert_int_equal(ifp_gguf_writer_set_arr(w, "n.bad", IFP_GGUF_BOOL, i8, 1), IFP_EINVAL);

        float a[6] = {1, -2, 3.5f, 0, -0.0f, 1e30f};
        const float hv[5] = {1.0f, -2.5f, 65504.0f, ldexpf(1.0f, -24), INFINITY};
        uint16_t h[5], bf[8];
        for (int i = 0; i < 5; i++) h[i] = ifp_f32_to_f16(hv[i]);
        for (int i = 0; i < 8; i++) bf[i] = ifp_f32_to_bf16((float)i - 3.0f);
        float d4[6] = {6, 5, 4, 3, 2, 1};
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.f32", IFP_GGML_F32, 2, (uint64_t[]){3, 2}, a), IFP_OK);
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.f16", IFP_GGML_F16, 1, (uint64_t[]){5}, h), IFP_OK);
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.bf16", IFP_GGML_BF16, 3, (uint64_t[]){2, 2, 2}, bf),
                         IFP_OK);
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.4d", IFP_GGML_F32, 4, (uint64_t[]){1, 2, 1, 3}, d4),
                         IFP_OK);
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.f32", IFP_GGML_F32, 1, (uint64_t[]){1}, a), IFP_EINVAL);
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.q", (ifp_ggml_type_t)2, 1, (uint64_t[]){1}, a),
                         IFP_EINVAL);
        assert_int_equal(ifp_gguf_writer_add_tensor(w, "t.0", IFP_GGML_F32, 1, (uint64_t[]){0}, a), IFP_ERANGE);
        ifp_err_t err = {0};
        char *path = tmp_path("rt.gguf");
        assert_int_equal(ifp_gguf_writer_write(w, path, &err), IFP_OK);
        ifp_gguf_writer_destroy(&w);
        assert_null(w);
        ifp_gguf_writer_destroy(&w); /* NULL is fine */
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        assert_int_not_equal(access(tmp, F_OK), 0); /* renamed away */

        ifp_gguf_t *g = NULL;
        assert_int_equal(ifp_gguf_open(path, &g, &err), IFP_OK);
        assert_string_equal(ifp_gguf_path(g), path);
        assert_int_equal(ifp_gguf_version(g), 3);
        assert_int_equal(ifp_gguf_alignment(g), aligns[ai]);
        assert_int_equal(ifp_gguf_n_kv(g), 17); /* 16 set + general.alignment */
        assert_int_equal(ifp_gguf_n_tensors(g), 4);
        uint32_t u32;
        int64_t i64v;
        float fv;
        int bv;
        char *s;
        assert_int_equal(ifp_gguf_get_u32(g, "a.u32", &u32, &err), IFP_OK);
        assert_int_equal(u32, 4000000000u);
        assert_int_equal(ifp_gguf_get_u32(g, "a.replaced", &u32, &err), IFP_OK);
        assert_int_equal(u32, 2);
        assert_int_equal(ifp_gguf_get_i64(g, "a.i32", &i64v, &err), IFP_OK);
        assert_int_equal(i64v, -7);
        assert_int_equal(ifp_gguf_find(g, "a.u64")->v.u64, UINT64_MAX);
        assert_int_equal(ifp_gguf_get_f32(g, "a.f32", &fv, &err), IFP_OK);
        assert_true(fv == 1e-5f);
        assert_int_equal(ifp_gguf_get_f32(g, "a.i32", &fv, &err), IFP_OK);
        assert_true(fv == -7.0f);
        assert_int_equal(ifp_gguf_get_bool(g, "a.bool", &bv, &err), IFP_OK);
        assert_int_equal(bv, 1);
        assert_int_equal(ifp_gguf_get_str(g, "a.str", &s, &err), IFP_OK);
        assert_string_equal(s, "héllo");
        free(s);
        assert_int_equal(ifp_gguf_get_str(g, "a.empty", &s, &err), IFP_OK);
        assert_string_equal(s, "");
        free(s);
        const ifp_gguf_kv_t *kv;
        assert_int_equal(ifp_gguf_get_arr(g, "a.strs", IFP_GGUF_STRING, 4, &kv, &err), IFP_OK);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(kv->arr_str[i].len, strlen(strs[i]));
            assert_memory_equal(kv->arr_str[i].ptr, strs[i], strlen(strs[i]));
        }
        assert_int_equal(ifp_gguf_get_arr(g, "a.nostrs", IFP_GGUF_STRING, 0, &kv, &err), IFP_OK);
        assert_int_equal(kv->arr_n, 0);
        assert_int_equal(ifp_gguf_get_arr(g, "n.i8", IFP_GGUF_INT8, 3, &kv, &err), IFP_OK);
        for (int i = 0; i < 3; i++) assert_true(ifp_gguf_arr_num(kv, (uint64_t)i) == i8[i]);
        assert_true(isnan(ifp_gguf_arr_num(kv, 3)));
        kv = ifp_gguf_find(g, "n.u16");
        assert_true(ifp_gguf_arr_num(kv, 1) == 65535.0);
        kv = ifp_gguf_find(g, "n.i32");
        assert_true(ifp_gguf_arr_num(kv, 2) == (double)INT32_MIN);
        kv = ifp_gguf_find(g, "n.f32");
        assert_true(ifp_gguf_arr_num(kv, 1) == -3.25);
        kv = ifp_gguf_find(g, "n.f64");
        assert_true(ifp_gguf_arr_num(kv, 0) == 1e300);
        kv = ifp_gguf_find(g, "n.i64");
        assert_true(ifp_gguf_arr_num(kv, 0) == (double)INT64_MIN);
        assert_int_equal(ifp_gguf_get_arr(g, "n.i8", IFP_GGUF_UINT8, 0, &kv, &err), IFP_EFORMAT);
        assert_non_null(strstr(err.msg, "array of int8, expected array of uint8"));
        assert_int_equal(ifp_gguf_get_arr(g, "n.i8", IFP_GGUF_INT8, 4, &kv, &err), IFP_EFORMAT);
        assert_non_null(strstr(err.msg, "3 elements, expected 4"));
        assert_int_equal(ifp_gguf_get_arr(g, "a.u32", IFP_GGUF_INT8, 0, &kv, &err), IFP_EFORMAT);

        const ifp_gguf_tensor_t *t;
        float out[8];
        assert_int_equal(ifp_gguf_require_tensor(g, "t.f32", 2, (uint64_t[]){3, 2}, &t, &err), IFP_OK);
        assert_int_equal(t->n_elements, 6);
        assert_int_equal(t->n_bytes, 24);
        assert_int_equal(t->ne[2], 1);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, 0, 6, out, &err), IFP_OK);
        assert_memory_equal(out, a, sizeof a);
        assert_int_equal(ifp_gguf_require_tensor(g, "t.f16", 1, (uint64_t[]){5}, &t, &err), IFP_OK);
        assert_int_equal(t->type, IFP_GGML_F16);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, 0, 5, out, &err), IFP_OK);
        assert_memory_equal(out, hv, sizeof hv);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, 3, 2, out, &err), IFP_OK);
        assert_true(out[0] == hv[3] && out[1] == hv[4]);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, 3, 3, out, &err), IFP_ERANGE);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, UINT64_MAX, 2, out, &err), IFP_ERANGE);
        assert_int_equal(ifp_gguf_require_tensor(g, "t.bf16", 3, (uint64_t[]){2, 2, 2}, &t, &err), IFP_OK);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, 0, 8, out, &err), IFP_OK);
        for (int i = 0; i < 8; i++) assert_true(out[i] == (float)i - 3.0f);
        assert_int_equal(ifp_gguf_require_tensor(g, "t.4d", 4, (uint64_t[]){1, 2, 1, 3}, &t, &err), IFP_OK);
        assert_int_equal(ifp_gguf_tensor_read_f32(t, 0, 6, out, &err), IFP_OK);
        assert_memory_equal(out, d4, sizeof d4);
        for (uint64_t i = 0; i < 4; i++) { /* data aligned in the (page-aligned) mapping */
            t = ifp_gguf_tensor_at(g, i);
            assert_int_equal(t->offset % aligns[ai], 0);
            assert_int_equal((uintptr_t)t->data % aligns[ai], 0);
        }
        assert_null(ifp_gguf_tensor_at(g, 4));
        assert_null(ifp_gguf_kv_at(g, 17));
        exercise(g);
        ifp_gguf_close(&g);
        assert_null(g);
        ifp_gguf_close(&g);
        ifp_gguf_close(NULL);
    }
}

/* Every scalar type, hand-assembled (the writer only emits some). */
static void test_all_value_types(void **state) {
    (void)state;
    bb_t b = {0};
    hdr(&b, 0, 13); /* 12 scalars + a bool array */
    static const char *keys[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "", "u64", "i64", "f64"};
    for (uint32_t t = 0; t < IFP_GGUF_NTYPES; t++) {
        if (t == IFP_GGUF_ARRAY) continue;
        bb_str(&b, keys[t]);
        bb_u32(&b, t);
        switch (t) {
        case IFP_GGUF_UINT8: bb_le(&b, 200, 1); break;
        case IFP_GGUF_INT8: bb_le(&b, 0x80, 1); break;            /* -128 */
        case IFP_GGUF_UINT16: bb_le(&b, 65535, 2); break;
        case IFP_GGUF_INT16: bb_le(&b, 0xfffe, 2); break;         /* -2 */
        case IFP_GGUF_UINT32: bb_u32(&b, 7); break;
        case IFP_GGUF_INT32: bb_u32(&b, 0xffffffffu); break;      /* -1 */
        case IFP_GGUF_FLOAT32: bb_u32(&b, 0x3fc00000u); break;    /* 1.5 */
        case IFP_GGUF_BOOL: bb_le(&b, 1, 1); break;
        case IFP_GGUF_STRING: bb_str(&b, "xyz"); break;
        case IFP_GGUF_UINT64: bb_u64(&b, 1ull << 40); break;
        case IFP_GGUF_INT64: bb_u64(&b, (uint64_t)-5); break;
        case IFP_GGUF_FLOAT64: bb_u64(&b, 0xc004000000000000ull); break; /* -2.5 */
        }
    }
    bb_str(&b, "bools"); /* a bool array */
    bb_u32(&b, IFP_GGUF_ARRAY);
    bb_u32(&b, IFP_GGUF_BOOL);
    bb_u64(&b, 3);
    bb_put(&b, (uint8_t[]){1, 0, 1}, 3);
    ifp_gguf_t *g = NULL;
    ifp_err_t err = {0};
    void *copy;
    char *str;
    assert_int_equal(open_copy(b.p, b.len, &g, &err, &copy), IFP_OK);
    uint32_t u;
    int64_t i;
    float f;
    int bo;
    assert_int_equal(ifp_gguf_get_u32(g, "u8", &u, &err), IFP_OK), assert_int_equal(u, 200);
    assert_int_equal(ifp_gguf_get_i64(g, "i8", &i, &err), IFP_OK), assert_int_equal(i, -128);
    assert_int_equal(ifp_gguf_get_u32(g, "u16", &u, &err), IFP_OK), assert_int_equal(u, 65535);
    assert_int_equal(ifp_gguf_get_i64(g, "i16", &i, &err), IFP_OK), assert_int_equal(i, -2);
    assert_int_equal(ifp_gguf_get_u32(g, "u32", &u, &err), IFP_OK), assert_int_equal(u, 7);
    assert_int_equal(ifp_gguf_get_i64(g, "i32", &i, &err), IFP_OK), assert_int_equal(i, -1);
    assert_int_equal(ifp_gguf_get_f32(g, "f32", &f, &err), IFP_OK), assert_true(f == 1.5f);
    assert_int_equal(ifp_gguf_get_bool(g, "bool", &bo, &err), IFP_OK), assert_int_equal(bo, 1);
    assert_int_equal(ifp_gguf_get_i64(g, "u64", &i, &err), IFP_OK), assert_int_equal(i, 1ll << 40);
    assert_int_equal(ifp_gguf_get_i64(g, "i64", &i, &err), IFP_OK), assert_int_equal(i, -5);
    assert_int_equal(ifp_gguf_get_f32(g, "f64", &f, &err), IFP_OK), assert_true(f == -2.5f);
    assert_int_equal(ifp_gguf_find(g, "str")->v.str.len, 3);
    const ifp_gguf_kv_t *kv;
    assert_int_equal(ifp_gguf_get_arr(g, "bools", IFP_GGUF_BOOL, 3, &kv, &err), IFP_OK);
    assert_true(ifp_gguf_arr_num(kv, 0) == 1.0 && ifp_gguf_arr_num(kv, 1) == 0.0);
    /* getter errors */
    assert_int_equal(ifp_gguf_get_u32(g, "str", &u, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "key str has type string, expected an integer"));
    assert_int_equal(ifp_gguf_get_u32(g, "i8", &u, &err), IFP_ERANGE);
    assert_int_equal(ifp_gguf_get_u32(g, "u64", &u, &err), IFP_ERANGE);
    assert_non_null(strstr(err.msg, "does not fit"));
    assert_int_equal(ifp_gguf_get_u32(g, "bool", &u, &err), IFP_EFORMAT);
    assert_int_equal(ifp_gguf_get_bool(g, "u8", &bo, &err), IFP_EFORMAT);
    assert_int_equal(ifp_gguf_get_f32(g, "str", &f, &err), IFP_EFORMAT);
    assert_int_equal(ifp_gguf_get_str(g, "u8", &str, &err), IFP_EFORMAT);
    assert_int_equal(ifp_gguf_get_u32(g, "nope", &u, &err), IFP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "missing required key nope"));
    assert_int_equal(ifp_gguf_get_str(g, "nope", &str, &err), IFP_ENOTFOUND);
    assert_int_equal(ifp_gguf_get_arr(g, "nope", IFP_GGUF_BOOL, 0, &kv, &err), IFP_ENOTFOUND);
    assert_int_equal(ifp_gguf_alignment(g), 32);
    assert_null(ifp_gguf_find(g, "u3"));
    assert_null(ifp_gguf_find(g, "u32x"));
    assert_null(ifp_gguf_find_tensor(g, "x"));
    close_copy(&g, &copy);
    free(b.p);
}

/* ---------------------------------------------------------------- malformed corpus */

static const uint64_t NE23[] = {2, 3};

/* A valid file: 2 kvs, one f32 [2, 3] tensor. */
static void valid(bb_t *b) {
    hdr(b, 1, 2);
    kv_u32(b, "general.alignment", 32);
    bb_str(b, "general.architecture");
    bb_u32(b, IFP_GGUF_STRING);
    bb_str(b, "llama");
    tinfo(b, "w", 2, NE23, IFP_GGML_F32, 0);
    data(b, 24);
}
/* Header for one kv named "k" of value type t (value follows). */
static void one_kv(bb_t *b, uint32_t t) {
    hdr(b, 0, 1);
    bb_str(b, "k");
    bb_u32(b, t);
}
/* Header for one array kv "k" of elem type et and count n (elements follow). */
static void one_arr(bb_t *b, uint32_t et, uint64_t n) {
    one_kv(b, IFP_GGUF_ARRAY);
    bb_u32(b, et);
    bb_u64(b, n);
}
/* One tensor info "w" (with default alignment) and 64 bytes of data. */
static void one_tensor(bb_t *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    hdr(b, 1, 0);
    tinfo(b, "w", n_dims, ne, type, off);
    data(b, 64);
}

static void c_valid(bb_t *b) { valid(b); }
static void c_bad_magic(bb_t *b) { valid(b), b->p[0] = 'X'; }
static void c_version2(bb_t *b) { valid(b), b->p[4] = 2; }
static void c_version_be(bb_t *b) { valid(b), memcpy(b->p + 4, "\0\0\0\3", 4); }
static void c_empty(bb_t *b) { (void)b; }
static void c_short_magic(bb_t *b) { bb_put(b, "GGU", 3); }
static void c_short_counts(bb_t *b) { bb_put(b, "GGUF\3\0\0\0\0\0\0\0", 12); }
static void c_kv_count_huge(bb_t *b) { hdr(b, 0, 1ull << 63), data(b, 64); }
static void c_tensor_count_huge(bb_t *b) { hdr(b, UINT64_MAX, 0), data(b, 64); }
static void c_key_len_max(bb_t *b) { hdr(b, 0, 1), bb_u64(b, UINT64_MAX), bb_put(b, "abcdefgh", 8); }
static void c_key_truncated(bb_t *b) { hdr(b, 0, 1), bb_u64(b, 20), bb_put(b, "abcdefghij", 10); }
static void c_kv_missing(bb_t *b) { hdr(b, 0, 2), kv_u32(b, "a", 1), bb_u64(b, 5), bb_put(b, "ab", 2); }
static void c_vtype_unknown(bb_t *b) { one_kv(b, 13), bb_u32(b, 0); }
static void c_vtype_huge(bb_t *b) { one_kv(b, 0xffffffffu), bb_u32(b, 0); }
static void c_value_truncated(bb_t *b) { one_kv(b, IFP_GGUF_UINT64), bb_put(b, "\1\2\3", 3); }
static void c_strval_truncated(bb_t *b) { one_kv(b, IFP_GGUF_STRING), bb_u64(b, 100), bb_put(b, "hello", 5); }
static void c_bool_2(bb_t *b) { one_kv(b, IFP_GGUF_BOOL), bb_le(b, 2, 1); }
static void c_bool_arr(bb_t *b) { one_arr(b, IFP_GGUF_BOOL, 3), bb_put(b, "\1\7\0", 3); }
static void c_arr_header_truncated(bb_t *b) { one_kv(b, IFP_GGUF_ARRAY), bb_put(b, "\4\0", 2); }
static void c_arr_count_truncated(bb_t *b) { one_kv(b, IFP_GGUF_ARRAY), bb_u32(b, 4), bb_put(b, "\4\0", 2); }
static void c_arr_overflow(bb_t *b) { one_arr(b, IFP_GGUF_UINT32, 1ull << 62), bb_u64(b, 0); }
static void c_arr_u64_overflow(bb_t *b) { one_arr(b, IFP_GGUF_UINT64, (1ull << 61) + 1), bb_u64(b, 0); }
static void c_arr_short(bb_t *b) { one_arr(b, IFP_GGUF_FLOAT32, 4), bb_u32(b, 0), bb_u32(b, 0); }
static void c_arr_str_count_max(bb_t *b) { one_arr(b, IFP_GGUF_STRING, UINT64_MAX), bb_str(b, "a"); }
static void c_arr_str_truncated(bb_t *b) {
    one_arr(b, IFP_GGUF_STRING, 3), bb_str(b, "one"), bb_str(b, "two"), bb_u64(b, 9), bb_put(b, "thr", 3);
}
static void c_arr_str_len_max(bb_t *b) { one_arr(b, IFP_GGUF_STRING, 2), bb_str(b, "one"), bb_u64(b, UINT64_MAX); }
static void c_arr_nested(bb_t *b) { one_arr(b, IFP_GGUF_ARRAY, 1), bb_u32(b, IFP_GGUF_UINT8), bb_u64(b, 0); }
static void c_arr_elem_unknown(bb_t *b) { one_arr(b, 13, 1), bb_u64(b, 0); }
static void c_dup_key(bb_t *b) { hdr(b, 0, 3), kv_u32(b, "k", 1), kv_u32(b, "j", 1), kv_u32(b, "k", 2); }
static void c_dup_tensor(bb_t *b) {
    hdr(b, 2, 0), tinfo(b, "w", 1, NE23, 0, 0), tinfo(b, "w", 1, NE23, 0, 32), data(b, 64);
}
static void c_ndims_0(bb_t *b) { one_tensor(b, 0, NE23, 0, 0); }
static void c_ndims_5(bb_t *b) { one_tensor(b, 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0); }
static void c_ne_zero(bb_t *b) { one_tensor(b, 2, (uint64_t[]){2, 0}, 0, 0); }
static void c_nelem_overflow(bb_t *b) { one_tensor(b, 3, (uint64_t[]){1ull << 32, 1ull << 31, 2}, 0, 0); }
static void c_nbytes_overflow(bb_t *b) { one_tensor(b, 2, (uint64_t[]){1ull << 31, 1ull << 31}, 0, 0); }
static void c_type_q4(bb_t *b) { one_tensor(b, 2, NE23, 2, 0); }
static void c_type_unknown(bb_t *b) { one_tensor(b, 2, NE23, 1000, 0); }
static void c_tinfo_truncated(bb_t *b) { hdr(b, 1, 0), bb_str(b, "w"), bb_u32(b, 4), bb_u64(b, 2), bb_u64(b, 2), bb_u64(b, 2), bb_u32(b, 0); }
static void c_tname_truncated(bb_t *b) { hdr(b, 1, 0), bb_u64(b, 500), bb_put(b, "weights", 7), data(b, 40); }
static void c_toffset_truncated(bb_t *b) { hdr(b, 1, 0), tinfo(b, "weight", 1, NE23, 0, 0), b->len -= 5; }
static void c_misaligned(bb_t *b) { one_tensor(b, 2, NE23, 0, 4); }
static void c_outside(bb_t *b) { one_tensor(b, 2, NE23, 0, 1u << 20); }
static void c_outside_wrap(bb_t *b) { one_tensor(b, 2, NE23, 0, UINT64_MAX - 31); }
static void c_outside_big(bb_t *b) { one_tensor(b, 2, (uint64_t[]){1ull << 40, 1ull << 10}, 0, 0); }
static void c_data_truncated(bb_t *b) { valid(b), b->len--; }
static void c_no_data_section(bb_t *b) { /* header ends unaligned, file ends with it */
    hdr(b, 1, 0), tinfo(b, "w", 2, NE23, 0, 0);
    assert_int_not_equal(b->len % 32, 0);
}
static void c_align_not_pow2(bb_t *b) { hdr(b, 0, 1), kv_u32(b, "general.alignment", 48); }
static void c_align_zero(bb_t *b) { hdr(b, 0, 1), kv_u32(b, "general.alignment", 0); }
static void c_align_type(bb_t *b) {
    hdr(b, 0, 1), bb_str(b, "general.alignment"), bb_u32(b, IFP_GGUF_UINT64), bb_u64(b, 32);
}
static void c_align_64_off_32(bb_t *b) {
    hdr(b, 1, 1), kv_u32(b, "general.alignment", 64), tinfo(b, "w", 2, NE23, 0, 32);
    bb_pad(b, 64), data(b, 128);
}

typedef struct {
    const char *name;
    void (*build)(bb_t *);
    int code;
    const char *substr;
} bad_case_t;

static const bad_case_t CASES[] = {
    {"valid", c_valid, IFP_OK, NULL},
    {"bad_magic", c_bad_magic, IFP_EFORMAT, "bad magic 58 47 55 46"},
    {"version2", c_version2, IFP_EUNSUPPORTED, "unsupported GGUF version 2 (need 3)"},
    {"version_big_endian", c_version_be, IFP_EUNSUPPORTED, "big-endian"},
    {"empty", c_empty, IFP_EFORMAT, "truncated magic"},
    {"short_magic", c_short_magic, IFP_EFORMAT, "truncated magic"},
    {"short_counts", c_short_counts, IFP_EFORMAT, "truncated tensor_count"},
    {"kv_count_huge", c_kv_count_huge, IFP_EFORMAT, "kv_count 9223372036854775808 overflows"},
    {"tensor_count_huge", c_tensor_count_huge, IFP_EFORMAT, "tensor_count 18446744073709551615 overflows"},
    {"key_len_max", c_key_len_max, IFP_EFORMAT, "kv 0: truncated key at offset 32: string length 18446744073709551615"},
    {"key_truncated", c_key_truncated, IFP_EFORMAT, "truncated key"},
    {"kv_missing", c_kv_missing, IFP_EFORMAT, "kv 1: truncated key"},
    {"vtype_unknown", c_vtype_unknown, IFP_EFORMAT, "key 'k': unknown value type 13"},
    {"vtype_huge", c_vtype_huge, IFP_EFORMAT, "unknown value type 4294967295"},
    {"value_truncated", c_value_truncated, IFP_EFORMAT, "key 'k': truncated value"},
    {"string_value_truncated", c_strval_truncated, IFP_EFORMAT, "truncated string value"},
    {"bool_2", c_bool_2, IFP_EFORMAT, "bool value 2 is not 0 or 1"},
    {"bool_array_7", c_bool_arr, IFP_EFORMAT, "bool array element 1 is 7"},
    {"array_header_truncated", c_arr_header_truncated, IFP_EFORMAT, "truncated array element type"},
    {"array_count_truncated", c_arr_count_truncated, IFP_EFORMAT, "truncated array count"},
    {"array_u32_overflow", c_arr_overflow, IFP_EFORMAT, "array count 4611686018427387904 of uint32 overflows"},
    {"array_u64_overflow", c_arr_u64_overflow, IFP_EFORMAT, "of uint64 overflows"},
    {"array_short", c_arr_short, IFP_EFORMAT, "array count 4 of float32 overflows the 8 bytes left"},
    {"array_str_count_max", c_arr_str_count_max, IFP_EFORMAT, "of string overflows"},
    {"array_str_truncated", c_arr_str_truncated, IFP_EFORMAT, "element 2: truncated array string"},
    {"array_str_len_max", c_arr_str_len_max, IFP_EFORMAT, "element 1: truncated array string"},
    {"array_nested", c_arr_nested, IFP_EUNSUPPORTED, "nested arrays are not supported"},
    {"array_elem_unknown", c_arr_elem_unknown, IFP_EFORMAT, "unknown array element type 13"},
    {"duplicate_key", c_dup_key, IFP_EFORMAT, "duplicate key 'k'"},
    {"duplicate_tensor", c_dup_tensor, IFP_EFORMAT, "duplicate tensor name 'w'"},
    {"n_dims_0", c_ndims_0, IFP_EFORMAT, "tensor w: n_dims 0 out of range 1..4"},
    {"n_dims_5", c_ndims_5, IFP_EFORMAT, "n_dims 5 out of range"},
    {"ne_zero", c_ne_zero, IFP_EFORMAT, "tensor w: dimension 1 is 0"},
    {"n_elements_overflow", c_nelem_overflow, IFP_ERANGE, "element count overflows"},
    {"n_bytes_overflow", c_nbytes_overflow, IFP_ERANGE, "byte size of 4611686018427387904 elements overflows"},
    {"tensor_type_q4_0", c_type_q4, IFP_EUNSUPPORTED, "tensor w: unsupported type 2 (q4_0"},
    {"tensor_type_unknown", c_type_unknown, IFP_EUNSUPPORTED, "unsupported type 1000 (?"},
    {"tensor_info_truncated", c_tinfo_truncated, IFP_EFORMAT, "truncated dimension"},
    {"tensor_name_truncated", c_tname_truncated, IFP_EFORMAT, "tensor info 0: truncated tensor name"},
    {"tensor_offset_truncated", c_toffset_truncated, IFP_EFORMAT, "truncated tensor offset"},
    {"tensor_misaligned", c_misaligned, IFP_EFORMAT, "offset 4 is not a multiple of the alignment 32"},
    {"tensor_outside", c_outside, IFP_EFORMAT, "lies outside the file"},
    {"tensor_outside_wrap", c_outside_wrap, IFP_EFORMAT, "lies outside the file"},
    {"tensor_outside_big", c_outside_big, IFP_EFORMAT, "lies outside the file"},
    {"data_truncated", c_data_truncated, IFP_EFORMAT, "tensor w: data [0, +24) lies outside the file"},
    {"no_data_section", c_no_data_section, IFP_EFORMAT, "truncated: data section"},
    {"alignment_48", c_align_not_pow2, IFP_EFORMAT, "general.alignment 48 is not a nonzero power of two"},
    {"alignment_0", c_align_zero, IFP_EFORMAT, "general.alignment 0 is not"},
    {"alignment_u64", c_align_type, IFP_EFORMAT, "general.alignment has type uint64, expected uint32"},
    {"alignment_64_offset_32", c_align_64_off_32, IFP_EFORMAT, "offset 32 is not a multiple of the alignment 64"},
};

/* Where corpus files go, for pointing `ifp info` at them. */
#define CORPUS_DIR IFP_BINARY_DIR "/tests/gguf_corpus"

static void test_malformed_corpus(void **state) {
    (void)state;
    mkdir(CORPUS_DIR, 0755);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const bad_case_t *c = &CASES[i];
        bb_t b = {0};
        c->build(&b);
        char path[512];
        snprintf(path, sizeof path, CORPUS_DIR "/%s.gguf", c->name);
        FILE *f = fopen(path, "wb");
        if (f) {
            if (b.len) fwrite(b.p, 1, b.len, f);
            fclose(f);
        }
        ifp_gguf_t *g;
        void *copy;
        ifp_err_t err = {0};
        int rc = open_copy(b.p, b.len, &g, &err, &copy);
        if (rc != c->code || (c->substr && (!strstr(err.msg, c->substr) || strncmp(err.msg, "test.gguf: ", 11))))
            fail_msg("case %s: got %d (%s), want %d with \"%s\"", c->name, rc, err.msg, c->code, c->substr);
        if (!rc) {
            exercise(g);
            close_copy(&g, &copy);
        } else {
            assert_int_equal(err.code, rc);
            /* the same bytes through the file path give the same answer */
            ifp_err_t ferr = {0};
            assert_int_equal(ifp_gguf_open(path, &g, &ferr), rc);
            assert_null(g);
            assert_non_null(strstr(ferr.msg, c->substr));
        }
        free(b.p);
    }
}

/* Getter-level failures: missing key/tensor, wrong shape. */
static void test_require(void **state) {
    (void)state;
    bb_t b = {0};
    valid(&b);
    ifp_gguf_t *g;
    void *copy;
    ifp_err_t err = {0};
    assert_int_equal(open_copy(b.p, b.len, &g, &err, &copy), IFP_OK);
    const ifp_gguf_tensor_t *t = NULL;
    uint32_t u;
    assert_int_equal(ifp_gguf_get_u32(g, "llama.block_count", &u, &err), IFP_ENOTFOUND);
    assert_string_equal(err.msg, "test.gguf: missing required key llama.block_count");
    assert_int_equal(ifp_gguf_get_u32(g, "general.architecture", &u, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "key general.architecture has type string, expected an integer"));
    assert_int_equal(ifp_gguf_require_tensor(g, "output.weight", 2, NE23, &t, &err), IFP_ENOTFOUND);
    assert_string_equal(err.msg, "test.gguf: missing required tensor output.weight");
    assert_int_equal(ifp_gguf_require_tensor(g, "w", 2, (uint64_t[]){3, 2}, &t, &err), IFP_EFORMAT);
    assert_string_equal(err.msg, "test.gguf: tensor w has shape [2, 3], expected [3, 2]");
    assert_int_equal(ifp_gguf_require_tensor(g, "w", 1, (uint64_t[]){6}, &t, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "has shape [2, 3], expected [6]"));
    assert_int_equal(ifp_gguf_require_tensor(g, "w", 2, NE23, &t, &err), IFP_OK);
    assert_non_null(t);
    close_copy(&g, &copy);
    free(b.p);
}

static void test_open_errors(void **state) {
    (void)state;
    ifp_gguf_t *g;
    ifp_err_t err = {0};
    assert_int_equal(ifp_gguf_open("/nonexistent/x.gguf", &g, &err), IFP_EIO);
    assert_null(g);
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf: cannot open"));
    assert_int_equal(ifp_gguf_open(g_dir, &g, &err), IFP_EIO);
    char *empty = tmp_path("empty.gguf");
    FILE *f = fopen(empty, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ifp_gguf_open(empty, &g, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(ifp_gguf_open_buffer(NULL, 0, NULL, &g, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "<buffer>: truncated magic"));
    assert_int_equal(ifp_gguf_open(empty, &g, NULL), IFP_EFORMAT); /* NULL err is fine */

    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    assert_int_equal(ifp_gguf_writer_write(w, "/nonexistent/dir/x.gguf", &err), IFP_EIO);
    assert_non_null(strstr(err.msg, "cannot create"));
    ifp_gguf_writer_set_alignment(w, 24);
    assert_int_equal(ifp_gguf_writer_write(w, tmp_path("bad.gguf"), &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "alignment 24"));
    ifp_gguf_writer_set_alignment(w, 8); /* an empty file (no tensors) is valid */
    assert_int_equal(ifp_gguf_writer_write(w, tmp_path("kv_only.gguf"), &err), IFP_OK);
    ifp_gguf_writer_destroy(&w);
    assert_int_equal(ifp_gguf_open(tmp_path("kv_only.gguf"), &g, &err), IFP_OK);
    assert_int_equal(ifp_gguf_alignment(g), 8);
    assert_int_equal(ifp_gguf_n_tensors(g), 0);
    ifp_gguf_close(&g);
}

/* ---------------------------------------------------------------- truncation + fuzz */

/* A small writer-made file with arrays and all three tensor types. */
static uint8_t *small_file(size_t *len) {
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    const char *toks[] = {"<s>", "</s>", "hi"};
    const float sc[] = {0.0f, -1.0f, 2.0f};
    const uint64_t big[] = {1, 1ull << 50};
    ifp_gguf_writer_set_str(w, "general.architecture", "llama");
    ifp_gguf_writer_set_u32(w, "llama.block_count", 2);
    ifp_gguf_writer_set_f32(w, "eps", 1e-6f);
    ifp_gguf_writer_set_bool(w, "flag", 0);
    ifp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    ifp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IFP_GGUF_FLOAT32, sc, 3);
    ifp_gguf_writer_set_arr(w, "big", IFP_GGUF_UINT64, big, 2);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[3] = {0x3c00, 0x8001, 0x7c00}, bf[4] = {0x3f80, 0x4000, 0xff80, 0x0001};
    ifp_gguf_writer_add_tensor(w, "a", IFP_GGML_F32, 2, NE23, a);
    ifp_gguf_writer_add_tensor(w, "h", IFP_GGML_F16, 1, (uint64_t[]){3}, h);
    ifp_gguf_writer_add_tensor(w, "bf", IFP_GGML_BF16, 2, (uint64_t[]){2, 2}, bf);
    ifp_err_t err = {0};
    char *path = tmp_path("small.gguf");
    assert_int_equal(ifp_gguf_writer_write(w, path, &err), IFP_OK);
    ifp_gguf_writer_destroy(&w);
    uint8_t *buf = (uint8_t *)tu_read_file(path, len);
    assert_non_null(buf);
    return buf;
}

static void test_truncations(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = small_file(&len);
    ifp_gguf_t *g;
    void *copy;
    ifp_err_t err = {0};
    assert_int_equal(open_copy(buf, len, &g, &err, &copy), IFP_OK);
    size_t need = 0; /* end of the last tensor's data: shorter prefixes must fail */
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        size_t end = (size_t)((const uint8_t *)t->data - (const uint8_t *)copy + t->n_bytes);
        if (end > need) need = end;
    }
    close_copy(&g, &copy);
    assert_true(need > 100 && need <= len);
    for (size_t n = 0; n <= len; n++) {
        err = (ifp_err_t){0};
        int rc = open_copy(buf, n, &g, &err, &copy);
        if (n < need) {
            if (rc != IFP_EFORMAT || (!strstr(err.msg, "truncated") && !strstr(err.msg, "outside")))
                fail_msg("prefix %zu: rc %d (%s)", n, rc, err.msg);
        } else {
            assert_int_equal(rc, IFP_OK);
            exercise(g);
            close_copy(&g, &copy);
        }
    }
    free(buf);
}

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void test_random_corruption(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = small_file(&len);
    uint8_t *mut = malloc(len);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int loaded = 0, rejected = 0;
    for (int it = 0; it < 6000; it++) {
        memcpy(mut, buf, len);
        int n_flips = it < 4000 ? 1 : 1 + (int)(rng(&seed) % 6);
        for (int k = 0; k < n_flips; k++) {
            size_t at = (size_t)(rng(&seed) % len);
            uint8_t v = (uint8_t)rng(&seed);
            if (k == 0 && v == mut[at]) v ^= 0xff;
            mut[at] = v;
        }
        size_t n = it % 5 == 4 ? (size_t)(rng(&seed) % len) : len; /* some also truncated */
        ifp_gguf_t *g;
        void *copy;
        ifp_err_t err = {0};
        int rc = open_copy(mut, n, &g, &err, &copy);
        if (rc == IFP_OK) {
            exercise(g);
            close_copy(&g, &copy);
            loaded++;
        } else {
            assert_true(rc == IFP_EFORMAT || rc == IFP_ERANGE || rc == IFP_EUNSUPPORTED);
            assert_int_equal(err.code, rc);
            assert_true(strlen(err.msg) > strlen("test.gguf: "));
            rejected++;
        }
    }
    print_message("random corruption: %d loaded, %d rejected\n", loaded, rejected);
    assert_true(loaded > 100 && rejected > 100);
    free(mut);
    free(buf);
}

/* ---------------------------------------------------------------- shipped models */

static void test_real_files(void **state) {
    (void)state;
    ifp_gguf_t *g;
    ifp_err_t err = {0};
    uint32_t u;
    char *s;
    const ifp_gguf_kv_t *kv;
    const ifp_gguf_tensor_t *t;

    assert_int_equal(ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &g, &err), IFP_OK);
    assert_int_equal(ifp_gguf_n_tensors(g), 39);
    assert_int_equal(ifp_gguf_get_str(g, "general.architecture", &s, &err), IFP_OK);
    assert_string_equal(s, "llama");
    free(s);
    assert_int_equal(ifp_gguf_get_u32(g, "llama.block_count", &u, &err), IFP_OK);
    assert_int_equal(u, 4);
    assert_int_equal(ifp_gguf_get_u32(g, "llama.embedding_length", &u, &err), IFP_OK);
    assert_int_equal(u, 128);
    assert_int_equal(ifp_gguf_get_arr(g, "tokenizer.ggml.tokens", IFP_GGUF_STRING, 2048, &kv, &err), IFP_OK);
    assert_int_equal(ifp_gguf_require_tensor(g, "token_embd.weight", 2, (uint64_t[]){128, 2048}, &t, &err), IFP_OK);
    assert_int_equal(ifp_gguf_require_tensor(g, "token_embd.weight", 2, (uint64_t[]){2048, 128}, &t, &err),
                     IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "has shape [128, 2048], expected [2048, 128]"));
    exercise(g);
    ifp_gguf_close(&g);

    assert_int_equal(ifp_gguf_open(MODEL_PATH("stories260K.gguf"), &g, &err), IFP_OK);
    assert_int_equal(ifp_gguf_n_tensors(g), 48);
    assert_int_equal(ifp_gguf_get_arr(g, "tokenizer.ggml.tokens", IFP_GGUF_STRING, 0, &kv, &err), IFP_OK);
    assert_int_equal(ifp_gguf_get_u32(g, "llama.vocab_size", &u, &err), IFP_OK);
    assert_int_equal(kv->arr_n, u);
    exercise(g);
    ifp_gguf_close(&g);

    assert_int_equal(ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), &g, &err), IFP_OK);
    assert_int_equal(ifp_gguf_n_tensors(g), 34);
    assert_int_equal(ifp_gguf_require_tensor(g, "ifp.head.fc2.weight", 2, (uint64_t[]){128, 3072}, &t, &err),
                     IFP_OK);
    assert_int_equal(t->n_elements, 128 * 3072);
    exercise(g);
    ifp_gguf_close(&g);
}

/* ---------------------------------------------------------------- main */

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp_gguf_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
        closedir(d);
    }
    return rmdir(g_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_exhaustive),  cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_bf16),            cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_all_value_types), cmocka_unit_test(test_malformed_corpus),
        cmocka_unit_test(test_require),         cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_truncations),     cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_real_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
