/* test_gguf_corpus — malformed GGUF files: a corpus of hand-built broken files,
 * every truncation of a valid file and random corruptions, each rejected with
 * its specific error (or loaded cleanly), never a crash. */
#include "gguf_testlib.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_corpus),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
