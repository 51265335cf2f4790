/* test_gguf.c — GGUF reader/writer: f16/bf16 conversions, writer -> reader
 * round trips, typed getters and required keys/tensors, open errors, and the
 * shipped model files.  Malformed files: test_gguf_corpus.c. */
#include "gguf_testlib.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_all_value_types),
        cmocka_unit_test(test_require),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_real_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
