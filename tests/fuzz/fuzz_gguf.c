/* fuzz_gguf — the GGUF reader (core/gguf.h) and what a model or tokenizer
 * load reads from it.
 *
 * The input is a GGUF file.  It is opened twice, with ifp_gguf_open_buffer
 * (exact-size buffer: ASan sees any read past the end) and with
 * ifp_gguf_open on an in-memory file (the path API the loaders use); both
 * must agree.  On success: every key/value and tensor is walked, every typed
 * getter is called on every key and their answers checked against each
 * other, tensors are converted to f32, then ifp_config_from_gguf,
 * ifp_tokenizer_from_gguf (+ encode/decode with what it built) and
 * ifp_model_from_gguf run on it, and the file is written back with the
 * GGUF writer and read again: same keys, values and tensor bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gguf.h"
#include "model.h"
#include "tokenizer.h"

/* Bounds on the work one input may cause (the file is at most -max_len). */
#define MAX_TENSOR_BYTES (8u << 20) /* sum over tensors: model load converts them */

static char *cstr(ifp_gguf_str_t s) {
    if (memchr(s.ptr, '\0', s.len)) return NULL; /* not addressable by a C string */
    char *c = malloc(s.len + 1);
    FUZZ_CHECK(c != NULL, "out of memory");
    memcpy(c, s.ptr, s.len);
    c[s.len] = '\0';
    return c;
}

static int is_int(ifp_gguf_vtype_t t) {
    return t <= IFP_GGUF_INT32 || t == IFP_GGUF_UINT64 || t == IFP_GGUF_INT64;
}

/* Every getter on one key; their answers must be consistent with the kv. */
static void getters(const ifp_gguf_t *g, const ifp_gguf_kv_t *kv, const char *key) {
    ifp_err_t err = {0};
    FUZZ_CHECK(ifp_gguf_find(g, key) == kv, "find('%s') is not the kv it was read as", key);
    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f = 0;
    int b = 0, rc;
    char *s = NULL;
    const ifp_gguf_kv_t *arr = NULL;
    int rc32 = ifp_gguf_get_u32(g, key, &u32, &err);
    if (rc32) ifp_fuzz_check_err(rc32, &err);
    int rc64 = ifp_gguf_get_i64(g, key, &i64, &err);
    if (rc64) ifp_fuzz_check_err(rc64, &err);
    FUZZ_CHECK((rc64 == 0) == is_int(kv->type) || (is_int(kv->type) && kv->type == IFP_GGUF_UINT64),
               "get_i64 on a %s: %d", ifp_gguf_vtype_name(kv->type), rc64);
    if (!rc32) {
        FUZZ_CHECK(is_int(kv->type), "get_u32 accepted a %s", ifp_gguf_vtype_name(kv->type));
        FUZZ_CHECK(!rc64 && i64 == (int64_t)u32, "get_u32 %u but get_i64 %lld (rc %d)", u32, (long long)i64, rc64);
    }
    if ((rc = ifp_gguf_get_f32(g, key, &f, &err))) ifp_fuzz_check_err(rc, &err);
    else FUZZ_CHECK(is_int(kv->type) || kv->type == IFP_GGUF_FLOAT32 || kv->type == IFP_GGUF_FLOAT64,
                    "get_f32 accepted a %s", ifp_gguf_vtype_name(kv->type));
    if ((rc = ifp_gguf_get_bool(g, key, &b, &err))) ifp_fuzz_check_err(rc, &err);
    else FUZZ_CHECK(kv->type == IFP_GGUF_BOOL && (b == 0 || b == 1), "get_bool: %d from a %s", b,
                    ifp_gguf_vtype_name(kv->type));
    if ((rc = ifp_gguf_get_str(g, key, &s, &err))) {
        ifp_fuzz_check_err(rc, &err);
    } else {
        FUZZ_CHECK(kv->type == IFP_GGUF_STRING, "get_str accepted a %s", ifp_gguf_vtype_name(kv->type));
        FUZZ_CHECK(s[kv->v.str.len] == '\0' && (kv->v.str.len == 0 || memcmp(s, kv->v.str.ptr, kv->v.str.len) == 0),
                   "get_str copy differs from the value");
        free(s);
    }
    if (kv->type == IFP_GGUF_ARRAY) {
        if ((rc = ifp_gguf_get_arr(g, key, kv->arr_type, kv->arr_n, &arr, &err))) FUZZ_CHECK(0, "get_arr: %s", err.msg);
        FUZZ_CHECK(arr == kv, "get_arr returned another kv");
        int other = kv->arr_type == IFP_GGUF_UINT8 ? IFP_GGUF_INT8 : IFP_GGUF_UINT8;
        rc = ifp_gguf_get_arr(g, key, (ifp_gguf_vtype_t)other, 0, &arr, &err);
        FUZZ_CHECK(rc == IFP_EFORMAT, "get_arr accepted the wrong element type (%d)", rc);
    } else {
        rc = ifp_gguf_get_arr(g, key, IFP_GGUF_INT32, 0, &arr, &err);
        FUZZ_CHECK(rc == IFP_EFORMAT, "get_arr accepted a scalar (%d)", rc);
    }
}

static void walk_kv(const ifp_gguf_t *g, const ifp_gguf_kv_t *kv) {
    ifp_fuzz_touch(kv->key.ptr, kv->key.len);
    FUZZ_CHECK((unsigned)kv->type < IFP_GGUF_NTYPES, "kv type %d", (int)kv->type);
    FUZZ_CHECK(ifp_gguf_vtype_name(kv->type) != NULL, "no name for type %d", (int)kv->type);
    if (kv->type == IFP_GGUF_STRING) ifp_fuzz_touch(kv->v.str.ptr, kv->v.str.len);
    if (kv->type == IFP_GGUF_ARRAY) {
        FUZZ_CHECK((unsigned)kv->arr_type < IFP_GGUF_NTYPES && kv->arr_type != IFP_GGUF_ARRAY, "array of type %d",
                   (int)kv->arr_type);
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            if (kv->arr_type == IFP_GGUF_STRING) {
                ifp_fuzz_touch(kv->arr_str[i].ptr, kv->arr_str[i].len);
            } else {
                double v = ifp_gguf_arr_num(kv, i);
                FUZZ_CHECK(kv->arr_type == IFP_GGUF_FLOAT32 || kv->arr_type == IFP_GGUF_FLOAT64 || !isnan(v),
                           "element %llu of an integer array is NaN", (unsigned long long)i);
            }
        }
        FUZZ_CHECK(isnan(ifp_gguf_arr_num(kv, kv->arr_n)), "element past the end is not NaN");
    }
    char *key = cstr(kv->key);
    if (key) getters(g, kv, key);
    free(key);
}

static uint64_t walk_tensors(const ifp_gguf_t *g) {
    uint64_t total = 0;
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        ifp_fuzz_touch(t->name.ptr, t->name.len);
        FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= IFP_GGUF_MAX_DIMS, "tensor %llu: %u dims", (unsigned long long)i,
                   t->n_dims);
        uint64_t n = 1;
        for (uint32_t d = 0; d < IFP_GGUF_MAX_DIMS; d++) {
            FUZZ_CHECK(t->ne[d] >= 1 && (d < t->n_dims || t->ne[d] == 1), "tensor %llu: ne[%u] = %llu",
                       (unsigned long long)i, d, (unsigned long long)t->ne[d]);
            n *= t->ne[d];
        }
        FUZZ_CHECK(n == t->n_elements, "tensor %llu: %llu elements, dims say %llu", (unsigned long long)i,
                   (unsigned long long)t->n_elements, (unsigned long long)n);
        FUZZ_CHECK(t->offset % ifp_gguf_alignment(g) == 0, "tensor offset not aligned");
        if (total + t->n_bytes <= MAX_TENSOR_BYTES) /* tensors may overlap: bound the work */
            ifp_fuzz_touch(t->data, t->n_bytes);   /* inside the buffer: ASan checks */
        char *name = cstr(t->name);
        if (name) FUZZ_CHECK(ifp_gguf_find_tensor(g, name) == t, "find_tensor('%s') is another tensor", name);
        free(name);
        total += t->n_bytes;
        /* the first and last few elements as f32 */
        float buf[8];
        ifp_err_t err = {0};
        uint64_t k = t->n_elements < 8 ? t->n_elements : 8;
        FUZZ_CHECK(ifp_gguf_tensor_read_f32(t, 0, k, buf, &err) == 0, "read_f32: %s", err.msg);
        FUZZ_CHECK(ifp_gguf_tensor_read_f32(t, t->n_elements - k, k, buf, &err) == 0, "read_f32: %s", err.msg);
        int rc = ifp_gguf_tensor_read_f32(t, t->n_elements, 1, buf, &err);
        FUZZ_CHECK(rc == IFP_ERANGE, "read_f32 past the end returned %d", rc);
    }
    return total;
}

/* Both opened the same bytes: same structure. */
static void same_file(const ifp_gguf_t *a, const ifp_gguf_t *b) {
    FUZZ_CHECK(ifp_gguf_n_kv(a) == ifp_gguf_n_kv(b) && ifp_gguf_n_tensors(a) == ifp_gguf_n_tensors(b) &&
                   ifp_gguf_alignment(a) == ifp_gguf_alignment(b) && ifp_gguf_version(a) == ifp_gguf_version(b),
               "buffer and path readers disagree");
}

static void tokenizer(const ifp_gguf_t *g) {
    ifp_tokenizer_t *t = NULL;
    ifp_err_t err = {0};
    int rc = ifp_tokenizer_from_gguf(g, &t, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(t == NULL, "failed tokenizer load left *out set");
        return;
    }
    int n_vocab = ifp_tokenizer_n_vocab(t);
    FUZZ_CHECK(n_vocab >= 1, "vocab %d", n_vocab);
    int32_t ids[256];
    static const char *const texts[] = {"", "Hello world", " a  b\tc\n", "caf\xc3\xa9 \xe2\x96\x81 \xff\xfe"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int n = ifp_tokenizer_encode(t, texts[i], 1, ids, 256);
        FUZZ_CHECK(n >= 0 && n <= 256, "encode returned %d", n);
        for (int j = 0; j < n; j++) FUZZ_CHECK(ids[j] >= 0 && ids[j] < n_vocab, "encode produced id %d", ids[j]);
        char out[1024];
        size_t len = ifp_tokenizer_decode(t, ids, n, out, sizeof out);
        /* NUL-terminated at the reported length; a byte token <0x00> may put a NUL inside (text is bytes) */
        size_t end = len < sizeof out ? len : sizeof out - 1;
        FUZZ_CHECK(out[end] == '\0' && strlen(out) <= end, "decode length %zu, strlen %zu", len, strlen(out));
    }
    for (int id = -1; id <= n_vocab && id < 64; id++) {
        size_t len = 0;
        const char *p = ifp_tokenizer_piece(t, id - 1, id, &len);
        ifp_fuzz_touch(p, len);
        const char *raw = ifp_tokenizer_raw_piece(t, id);
        if (raw) ifp_fuzz_touch_str(raw);
    }
    ifp_tokenizer_destroy(&t);
}

static void model(const uint8_t *data, size_t size) {
    ifp_gguf_t *g = NULL;
    ifp_model_t *m = NULL;
    ifp_err_t err = {0};
    FUZZ_CHECK(ifp_gguf_open_buffer(data, size, "model", &g, &err) == 0, "reopen: %s", err.msg);
    int rc = ifp_model_from_gguf(&g, NULL, &m, &err); /* takes g on success */
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        ifp_gguf_close(&g);
        return;
    }
    FUZZ_CHECK(g == NULL, "model load did not take the gguf");
    const ifp_config_t *c = &m->cfg;
    size_t d = (size_t)c->dim;
#define TOUCH_MAT(w) ifp_fuzz_touch((w).data, (size_t)(w).rows * (w).row_bytes)
    TOUCH_MAT(m->tok_embd);
    ifp_fuzz_touch(m->out_norm, d * sizeof(float));
    TOUCH_MAT(m->output);
    for (int l = m->layer_begin; l < m->layer_end; l++) {
        const ifp_layer_t *L = &m->layers[l];
        ifp_fuzz_touch(L->attn_norm, d * sizeof(float));
        TOUCH_MAT(L->wq), TOUCH_MAT(L->wk), TOUCH_MAT(L->wv), TOUCH_MAT(L->wo);
        ifp_fuzz_touch(L->ffn_norm, d * sizeof(float));
        TOUCH_MAT(L->w_gate), TOUCH_MAT(L->w_up), TOUCH_MAT(L->w_down);
    }
#undef TOUCH_MAT
    ifp_model_free(&m);
}

static void same_array(const ifp_gguf_kv_t *a, const ifp_gguf_kv_t *b) {
    FUZZ_CHECK(a->arr_type == b->arr_type && a->arr_n == b->arr_n, "array changed type or length");
    for (uint64_t j = 0; j < a->arr_n; j++) {
        if (a->arr_type == IFP_GGUF_STRING) {
            FUZZ_CHECK(a->arr_str[j].len == b->arr_str[j].len &&
                           memcmp(a->arr_str[j].ptr, b->arr_str[j].ptr, a->arr_str[j].len) == 0,
                       "array string %llu changed", (unsigned long long)j);
        } else {
            double x = ifp_gguf_arr_num(a, j), y = ifp_gguf_arr_num(b, j);
            FUZZ_CHECK(x == y || (isnan(x) && isnan(y)), "array element %llu changed", (unsigned long long)j);
        }
    }
}

/* Writes g back with the writer and reads it again. */
static void roundtrip(const ifp_gguf_t *g) {
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    FUZZ_CHECK(w != NULL, "out of memory");
    char *names[64];
    uint64_t nt = ifp_gguf_n_tensors(g);
    if (nt > 64) goto out_w;
    for (uint64_t i = 0; i < ifp_gguf_n_kv(g); i++) {
        int rc = ifp_gguf_writer_copy_kv(w, ifp_gguf_kv_at(g, i));
        if (rc == IFP_EINVAL) goto out_w; /* a key with a NUL byte */
        FUZZ_CHECK(rc == 0, "copy_kv: %d", rc);
    }
    uint64_t added = 0;
    for (; added < nt; added++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, added);
        if (!(names[added] = cstr(t->name))) break;
        int rc = ifp_gguf_writer_add_tensor(w, names[added], t->type, t->n_dims, t->ne, t->data);
        if (rc) { /* names equal up to a NUL byte */
            free(names[added]);
            break;
        }
    }
    if (added == nt) {
        ifp_err_t err = {0};
        const char *path = ifp_fuzz_tmp_path("roundtrip.gguf");
        FUZZ_CHECK(ifp_gguf_writer_write(w, path, &err) == 0, "write: %s", err.msg);
        ifp_gguf_t *h = NULL;
        FUZZ_CHECK(ifp_gguf_open(path, &h, &err) == 0, "reading back what the writer wrote: %s", err.msg);
        FUZZ_CHECK(ifp_gguf_alignment(h) == ifp_gguf_alignment(g), "alignment changed");
        FUZZ_CHECK(ifp_gguf_n_tensors(h) == nt, "tensor count changed");
        uint64_t extra = ifp_gguf_find(g, "general.alignment") ? 0 : 1; /* the writer always adds it */
        FUZZ_CHECK(ifp_gguf_n_kv(h) == ifp_gguf_n_kv(g) + extra, "kv count changed");
        for (uint64_t i = 0; i < ifp_gguf_n_kv(g); i++) {
            const ifp_gguf_kv_t *a = ifp_gguf_kv_at(g, i), *b = ifp_gguf_kv_at(h, i);
            FUZZ_CHECK(a->key.len == b->key.len && memcmp(a->key.ptr, b->key.ptr, a->key.len) == 0 &&
                           a->type == b->type,
                       "kv %llu changed key or type", (unsigned long long)i);
            if (a->type == IFP_GGUF_STRING)
                FUZZ_CHECK(a->v.str.len == b->v.str.len && memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len) == 0,
                           "kv %llu: string changed", (unsigned long long)i);
            else if (a->type == IFP_GGUF_FLOAT32 || a->type == IFP_GGUF_FLOAT64)
                FUZZ_CHECK(a->v.f64 == b->v.f64 || (isnan(a->v.f64) && isnan(b->v.f64)), "kv %llu: float changed",
                           (unsigned long long)i);
            else if (a->type != IFP_GGUF_ARRAY)
                FUZZ_CHECK(a->v.u64 == b->v.u64, "kv %llu: value changed", (unsigned long long)i);
            else
                same_array(a, b);
        }
        for (uint64_t i = 0; i < nt; i++) {
            const ifp_gguf_tensor_t *a = ifp_gguf_tensor_at(g, i), *b = ifp_gguf_tensor_at(h, i);
            FUZZ_CHECK(a->type == b->type && a->n_dims == b->n_dims && a->n_bytes == b->n_bytes &&
                           memcmp(a->ne, b->ne, sizeof a->ne) == 0 && memcmp(a->data, b->data, a->n_bytes) == 0,
                       "tensor %llu changed", (unsigned long long)i);
        }
        ifp_gguf_close(&h);
    }
    for (uint64_t i = 0; i < added; i++) free(names[i]);
out_w:
    ifp_gguf_writer_destroy(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifp_err_t err = {0}, err2 = {0};
    ifp_gguf_t *g = NULL, *g2 = NULL;
    int rc = ifp_gguf_open_buffer(data, size, "fuzz", &g, &err);
    int rc2 = ifp_gguf_open(ifp_fuzz_memfile(0, data, size), &g2, &err2);
    FUZZ_CHECK(rc == rc2, "open_buffer says %d (%s), open says %d (%s)", rc, err.msg, rc2, err2.msg);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        ifp_fuzz_check_err(rc2, &err2);
        FUZZ_CHECK(!g && !g2, "a failed open left *out set");
        return 0;
    }
    same_file(g, g2);
    ifp_gguf_close(&g2);
    FUZZ_CHECK(ifp_gguf_version(g) == IFP_GGUF_VERSION, "version %u", ifp_gguf_version(g));
    uint64_t a = ifp_gguf_alignment(g);
    FUZZ_CHECK(a && !(a & (a - 1)), "alignment %llu", (unsigned long long)a);
    for (uint64_t i = 0; i < ifp_gguf_n_kv(g); i++) walk_kv(g, ifp_gguf_kv_at(g, i));
    FUZZ_CHECK(!ifp_gguf_kv_at(g, ifp_gguf_n_kv(g)) && !ifp_gguf_tensor_at(g, ifp_gguf_n_tensors(g)),
               "index past the end is not NULL");
    uint64_t tensor_bytes = walk_tensors(g);

    ifp_config_t c;
    if ((rc = ifp_config_from_gguf(g, &c, &err))) ifp_fuzz_check_err(rc, &err);
    else FUZZ_CHECK(ifp_config_validate(&c, &err) == 0, "config_from_gguf returned an invalid config: %s", err.msg);
    tokenizer(g);
    if (tensor_bytes <= MAX_TENSOR_BYTES) {
        model(data, size);
        roundtrip(g);
    }
    ifp_gguf_close(&g);
    return 0;
}
