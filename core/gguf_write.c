/* gguf_write.c — GGUF v3 writer, plus the type helpers shared with the
 * reader: type names, f16/bf16 conversions and ifp_gguf_tensor_read_f32.
 *
 * Each key/value is encoded to its final bytes when set (so the writer owns a
 * copy); tensors keep only a borrowed data pointer.  ifp_gguf_writer_write()
 * lays out the file as gguf.c reads it: header, kvs, tensor infos, padding to
 * the alignment, then every tensor's data padded to the alignment. */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF tensor data is written raw: little-endian hosts only");

/* ---------------------------------------------------------------- type helpers */

const char *ifp_gguf_vtype_name(ifp_gguf_vtype_t t) {
    static const char *const names[IFP_GGUF_NTYPES] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64",
    };
    return (unsigned)t < IFP_GGUF_NTYPES ? names[t] : "?";
}

const char *ifp_ggml_type_name(ifp_ggml_type_t t) {
    static const char *const names[] = {
        [0] = "f32",     [1] = "f16",      [2] = "q4_0",     [3] = "q4_1",    [6] = "q5_0",    [7] = "q5_1",
        [8] = "q8_0",    [9] = "q8_1",     [10] = "q2_K",    [11] = "q3_K",   [12] = "q4_K",   [13] = "q5_K",
        [14] = "q6_K",   [15] = "q8_K",    [16] = "iq2_xxs", [17] = "iq2_xs", [18] = "iq3_xxs", [19] = "iq1_s",
        [20] = "iq4_nl", [21] = "iq3_s",   [22] = "iq2_s",   [23] = "iq4_xs", [24] = "i8",     [25] = "i16",
        [26] = "i32",    [27] = "i64",     [28] = "f64",     [29] = "iq1_m",  [30] = "bf16",   [34] = "tq1_0",
        [35] = "tq2_0",
    };
    unsigned i = (unsigned)t;
    return i < sizeof names / sizeof names[0] && names[i] ? names[i] : "?";
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float ifp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan (payload kept) */
    if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0) return bits_f32(sign);
    /* subnormal: man * 2^-24; normalise so the leading 1 is at bit 10 */
    int e = 113;
    while (!(man & 0x400)) {
        man <<= 1;
        e--;
    }
    return bits_f32(sign | ((uint32_t)e << 23) | ((man & 0x3ff) << 13));
}

/* Rounds v >> shift to nearest, ties to even. */
static uint32_t shift_rne(uint32_t v, unsigned shift) {
    uint32_t r = v >> shift, rem = v & ((1u << shift) - 1), half = 1u << (shift - 1);
    return r + (rem > half || (rem == half && (r & 1)));
}

uint16_t ifp_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) { /* nan: keep the top payload bits, stay a nan */
        uint32_t man = (x >> 13) & 0x3ff;
        return (uint16_t)(sign | 0x7c00 | (man ? man : 0x200));
    }
    if (x >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds to inf */
    if (x >= 0x38800000u)                       /* normal: rebias 127 -> 15; a carry may bump the exponent */
        return (uint16_t)(sign | shift_rne(x - 0x38000000u, 13));
    if (x <= 0x33000000u) return sign;          /* <= 2^-25 rounds to zero */
    uint32_t e = x >> 23, man = (x & 0x7fffff) | 0x800000;
    return (uint16_t)(sign | shift_rne(man, 126 - e)); /* subnormal, in units of 2^-24 */
}

float ifp_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t ifp_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* Lives here with the conversions it uses; the reader only places tensors. */
int ifp_gguf_tensor_read_f32(const ifp_gguf_tensor_t *t, uint64_t first, uint64_t n, float *dst, ifp_err_t *err) {
    if (first > t->n_elements || n > t->n_elements - first)
        return ifp_errf(err, IFP_ERANGE, "tensor %.*s: elements [%llu, +%llu) out of range (%llu elements)",
                        (int)(t->name.len > 120 ? 120 : t->name.len), t->name.ptr, (unsigned long long)first, (unsigned long long)n,
                        (unsigned long long)t->n_elements);
    const uint8_t *p = t->data;
    switch (t->type) {
    case IFP_GGML_F32:
        if (n) memcpy(dst, p + first * 4, (size_t)n * 4);
        return IFP_OK;
    case IFP_GGML_F16:
    case IFP_GGML_BF16:
        p += first * 2;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            dst[i] = t->type == IFP_GGML_F16 ? ifp_f16_to_f32(h) : ifp_bf16_to_f32(h);
        }
        return IFP_OK;
    case IFP_GGML_Q8_0: /* 34-byte blocks of 32: f16 scale, 32 int8 */
        for (uint64_t i = 0; i < n; i++) {
            uint64_t e = first + i;
            const uint8_t *b = p + (e / 32) * 34;
            float d = ifp_f16_to_f32((uint16_t)(b[0] | (b[1] << 8)));
            dst[i] = d * (float)(int8_t)b[2 + e % 32];
        }
        return IFP_OK;
    }
    return ifp_errf(err, IFP_EUNSUPPORTED, "tensor %.*s: unsupported type %u", (int)(t->name.len > 120 ? 120 : t->name.len), t->name.ptr, (unsigned)t->type);
}

/* ---------------------------------------------------------------- writer state */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} bytes_t;

typedef struct {
    char *key;
    bytes_t enc; /* key string + type + value, as written */
} wkv_t;

typedef struct {
    char *name;
    ifp_ggml_type_t type;
    uint32_t n_dims;
    uint64_t ne[IFP_GGUF_MAX_DIMS];
    uint64_t n_bytes;
    uint64_t offset;
    const void *data;
} wtensor_t;

struct ifp_gguf_writer {
    wkv_t *kvs;
    size_t n_kv, cap_kv;
    wtensor_t *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t alignment;
};

static void put(bytes_t *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_le(bytes_t *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    put(b, tmp, n);
}

static void put_str(bytes_t *b, const char *s) {
    size_t n = strlen(s);
    put_le(b, n, 8);
    put(b, s, n);
}

ifp_gguf_writer_t *ifp_gguf_writer_new(void) {
    ifp_gguf_writer_t *w = calloc(1, sizeof *w);
    if (w) w->alignment = IFP_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void ifp_gguf_writer_destroy(ifp_gguf_writer_t **pw) {
    if (!pw || !*pw) return;
    ifp_gguf_writer_t *w = *pw;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].enc.p);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
    *pw = NULL;
}

/* Starts encoding key with value type t. */
static bytes_t kv_begin(const char *key, ifp_gguf_vtype_t t) {
    bytes_t b = {0};
    put_str(&b, key);
    put_le(&b, (uint32_t)t, 4);
    return b;
}

/* Stores the encoded kv, replacing an earlier value of the same key. */
static int kv_commit(ifp_gguf_writer_t *w, const char *key, bytes_t *b) {
    if (b->oom) goto oom;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].enc.p);
            w->kvs[i].enc = *b;
            return IFP_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv_t *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) goto oom;
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) goto oom;
    w->kvs[w->n_kv++] = (wkv_t){.key = k, .enc = *b};
    return IFP_OK;
oom:
    free(b->p);
    return IFP_ENOMEM;
}

static int set_scalar(ifp_gguf_writer_t *w, const char *key, ifp_gguf_vtype_t t, uint64_t v, size_t n) {
    bytes_t b = kv_begin(key, t);
    put_le(&b, v, n);
    return kv_commit(w, key, &b);
}

int ifp_gguf_writer_set_u32(ifp_gguf_writer_t *w, const char *key, uint32_t v) {
    if (strcmp(key, "general.alignment") == 0) w->alignment = v;
    return set_scalar(w, key, IFP_GGUF_UINT32, v, 4);
}

int ifp_gguf_writer_set_i32(ifp_gguf_writer_t *w, const char *key, int32_t v) {
    return set_scalar(w, key, IFP_GGUF_INT32, (uint32_t)v, 4);
}

int ifp_gguf_writer_set_u64(ifp_gguf_writer_t *w, const char *key, uint64_t v) {
    return set_scalar(w, key, IFP_GGUF_UINT64, v, 8);
}

int ifp_gguf_writer_set_f32(ifp_gguf_writer_t *w, const char *key, float v) {
    return set_scalar(w, key, IFP_GGUF_FLOAT32, f32_bits(v), 4);
}

int ifp_gguf_writer_set_bool(ifp_gguf_writer_t *w, const char *key, int v) {
    return set_scalar(w, key, IFP_GGUF_BOOL, v != 0, 1);
}

int ifp_gguf_writer_set_str(ifp_gguf_writer_t *w, const char *key, const char *v) {
    bytes_t b = kv_begin(key, IFP_GGUF_STRING);
    put_str(&b, v);
    return kv_commit(w, key, &b);
}

int ifp_gguf_writer_set_arr_str(ifp_gguf_writer_t *w, const char *key, const char *const *v, uint64_t n) {
    bytes_t b = kv_begin(key, IFP_GGUF_ARRAY);
    put_le(&b, IFP_GGUF_STRING, 4);
    put_le(&b, n, 8);
    for (uint64_t i = 0; i < n; i++) put_str(&b, v[i]);
    return kv_commit(w, key, &b);
}

int ifp_gguf_writer_set_arr(ifp_gguf_writer_t *w, const char *key, ifp_gguf_vtype_t elem, const void *v, uint64_t n) {
    static const size_t size[IFP_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 0, 0, 0, 8, 8, 8}; /* no bool/str/arr */
    if ((unsigned)elem >= IFP_GGUF_NTYPES || !size[elem]) return IFP_EINVAL;
    if (n > SIZE_MAX / size[elem]) return IFP_ENOMEM;
    bytes_t b = kv_begin(key, IFP_GGUF_ARRAY);
    put_le(&b, (uint32_t)elem, 4);
    put_le(&b, n, 8);
    put(&b, v, (size_t)n * size[elem]);
    return kv_commit(w, key, &b);
}

int ifp_gguf_writer_copy_kv(ifp_gguf_writer_t *w, const ifp_gguf_kv_t *kv) {
    static const size_t size[IFP_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}; /* bool: 1 byte */
    if (!kv || (unsigned)kv->type >= IFP_GGUF_NTYPES || memchr(kv->key.ptr, '\0', kv->key.len)) return IFP_EINVAL;
    char *key = malloc(kv->key.len + 1);
    if (!key) return IFP_ENOMEM;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = '\0';
    bytes_t b = kv_begin(key, kv->type);
    int rc = IFP_OK;
    if (kv->type == IFP_GGUF_STRING) {
        put_le(&b, kv->v.str.len, 8);
        put(&b, kv->v.str.ptr, (size_t)kv->v.str.len);
    } else if (kv->type == IFP_GGUF_FLOAT32) {
        put_le(&b, f32_bits((float)kv->v.f64), 4);
    } else if (kv->type == IFP_GGUF_FLOAT64) {
        uint64_t u;
        memcpy(&u, &kv->v.f64, sizeof u);
        put_le(&b, u, 8);
    } else if (kv->type != IFP_GGUF_ARRAY) { /* integers and bool: the low bytes of u64 / i64 */
        put_le(&b, kv->v.u64, size[kv->type]);
    } else if ((unsigned)kv->arr_type >= IFP_GGUF_NTYPES || kv->arr_type == IFP_GGUF_ARRAY) {
        rc = IFP_EINVAL;
    } else {
        put_le(&b, (uint32_t)kv->arr_type, 4);
        put_le(&b, kv->arr_n, 8);
        if (kv->arr_type == IFP_GGUF_STRING)
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                put_le(&b, kv->arr_str[i].len, 8);
                put(&b, kv->arr_str[i].ptr, (size_t)kv->arr_str[i].len);
            }
        else if (kv->arr_n > SIZE_MAX / size[kv->arr_type])
            rc = IFP_ENOMEM;
        else
            put(&b, kv->arr_data, (size_t)kv->arr_n * size[kv->arr_type]);
    }
    if (!rc) rc = kv_commit(w, key, &b); /* frees b on failure */
    else free(b.p);
    if (!rc && strcmp(key, "general.alignment") == 0 && kv->type == IFP_GGUF_UINT32) w->alignment = (uint32_t)kv->v.u64;
    free(key);
    return rc;
}

int ifp_gguf_writer_add_tensor(ifp_gguf_writer_t *w, const char *name, ifp_ggml_type_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data) {
    /* bytes per element, or per 32-element block along ne[0] for Q8_0 */
    uint64_t esize = type == IFP_GGML_F32 ? 4 : (type == IFP_GGML_F16 || type == IFP_GGML_BF16) ? 2
                     : type == IFP_GGML_Q8_0 ? 34 : 0;
    if (!esize || n_dims < 1 || n_dims > IFP_GGUF_MAX_DIMS) return IFP_EINVAL;
    if (type == IFP_GGML_Q8_0 && ne[0] % 32 != 0) return IFP_EINVAL;
    wtensor_t t = {.type = type, .n_dims = n_dims, .data = data, .n_bytes = esize};
    for (uint32_t d = 0; d < IFP_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        uint64_t k = d == 0 && type == IFP_GGML_Q8_0 ? t.ne[0] / 32 : t.ne[d];
        if (t.ne[d] == 0 || k > UINT64_MAX / t.n_bytes) return IFP_ERANGE;
        t.n_bytes *= k;
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return IFP_EINVAL;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor_t *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return IFP_ENOMEM;
        w->tensors = p;
        w->cap_tensors = cap;
    }
    if (!(t.name = strdup(name))) return IFP_ENOMEM;
    w->tensors[w->n_tensors++] = t;
    return IFP_OK;
}

void ifp_gguf_writer_set_alignment(ifp_gguf_writer_t *w, uint32_t alignment) {
    /* an invalid value is reported by ifp_gguf_writer_write */
    ifp_gguf_writer_set_u32(w, "general.alignment", alignment);
}

/* ---------------------------------------------------------------- write */

/* Writes n bytes (zeros when src is NULL) and advances *pos. */
static int emit(FILE *f, const void *src, uint64_t n, uint64_t *pos) {
    static const uint8_t zeros[256];
    *pos += n;
    if (src) return fwrite(src, 1, (size_t)n, f) == n ? 0 : -1;
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) return -1;
        n -= k;
    }
    return 0;
}

static uint64_t pad_to(uint64_t pos, uint64_t align) { return (align - pos % align) % align; }

static int write_file(const ifp_gguf_writer_t *w, FILE *f) {
    uint64_t pos = 0;
    bytes_t h = {0};
    put_le(&h, IFP_GGUF_MAGIC, 4);
    put_le(&h, IFP_GGUF_VERSION, 4);
    put_le(&h, w->n_tensors, 8);
    put_le(&h, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) put(&h, w->kvs[i].enc.p, w->kvs[i].enc.len);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor_t *t = &w->tensors[i];
        put_str(&h, t->name);
        put_le(&h, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) put_le(&h, t->ne[d], 8);
        put_le(&h, (uint32_t)t->type, 4);
        put_le(&h, t->offset, 8);
    }
    if (h.oom) return IFP_ENOMEM;
    int bad = emit(f, h.p, h.len, &pos) || emit(f, NULL, pad_to(pos, w->alignment), &pos);
    free(h.p);
    for (size_t i = 0; !bad && i < w->n_tensors; i++) {
        const wtensor_t *t = &w->tensors[i];
        bad = emit(f, t->data, t->n_bytes, &pos) || emit(f, NULL, pad_to(pos, w->alignment), &pos);
    }
    return bad ? IFP_EIO : IFP_OK;
}

int ifp_gguf_writer_write(ifp_gguf_writer_t *w, const char *path, ifp_err_t *err) {
    uint32_t a = w->alignment;
    if (a == 0 || (a & (a - 1)))
        return ifp_errf(err, IFP_EINVAL, "%s: alignment %u is not a nonzero power of two", path, a);
    if (ifp_gguf_writer_set_u32(w, "general.alignment", a)) /* always written, so readers agree */
        return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
    /* lay out the data section */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor_t *t = &w->tensors[i];
        t->offset = off;
        if (t->n_bytes > UINT64_MAX - off - 2 * (uint64_t)a)
            return ifp_errf(err, IFP_ERANGE, "%s: data section overflows at tensor %s", path, t->name);
        off += t->n_bytes + pad_to(t->n_bytes, a);
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = ifp_errf(err, IFP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int rc = write_file(w, f);
    const char *what = rc == IFP_ENOMEM ? "out of memory" : "write failed";
    if (!rc && (fflush(f) != 0 || fsync(fileno(f)) != 0)) rc = IFP_EIO;
    int saved = errno;
    if (fclose(f) != 0 && !rc) {
        rc = IFP_EIO;
        saved = errno;
    }
    if (!rc && rename(tmp, path) != 0) {
        rc = IFP_EIO;
        saved = errno;
        what = "rename failed";
    }
    if (rc) {
        unlink(tmp);
        ifp_errf(err, rc, "%s: %s: %s", path, what, rc == IFP_EIO ? strerror(saved) : "");
    }
    free(tmp);
    return rc;
}
