/* gguf.c — GGUF v3 reader: validate the whole header of a mapped file and
 * index its key/values and tensors.  Nothing is copied out of the mapping.
 *
 * Layout (all little-endian):
 *   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
 *   kv_count  x { str key, u32 type, value },
 *   tensor_count x { str name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to general.alignment, data section (offsets relative to its start).
 * where str = u64 len + bytes, and an array value = u32 elem type, u64 n, n values.
 *
 * Every read goes through rd_need(), which checks the bytes are there, so a
 * malformed file can only ever produce an error. */
#include "gguf.h"

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open-addressing name -> index table over an array of structs whose first
 * member is the ifp_gguf_str_t name.  slot holds index + 1; 0 is empty. */
typedef struct {
    size_t cap;    /* power of two */
    size_t *slot;
} gguf_index_t;

struct ifp_gguf {
    char *path;               /* path or buffer name, for messages */
    const uint8_t *buf;
    size_t len;
    int mapped;               /* buf is our mmap */
    uint32_t version;
    uint64_t alignment;
    size_t data_off;          /* aligned start of the data section */
    uint64_t n_kv;
    ifp_gguf_kv_t *kvs;
    gguf_index_t kv_index;
    uint64_t n_tensors;
    ifp_gguf_tensor_t *tensors;
    gguf_index_t tensor_index;
};

/* Bounded cursor over the file. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    ifp_err_t *err;
} rd_t;

/* Printable form of a name inside the file, capped for messages. */
#define STRF(s) (int)((s).len > 120 ? 120 : (s).len), (s).ptr

static const size_t vtype_size[IFP_GGUF_NTYPES] = {
    [IFP_GGUF_UINT8] = 1, [IFP_GGUF_INT8] = 1, [IFP_GGUF_UINT16] = 2, [IFP_GGUF_INT16] = 2,
    [IFP_GGUF_UINT32] = 4, [IFP_GGUF_INT32] = 4, [IFP_GGUF_FLOAT32] = 4, [IFP_GGUF_BOOL] = 1,
    [IFP_GGUF_UINT64] = 8, [IFP_GGUF_INT64] = 8, [IFP_GGUF_FLOAT64] = 8,
};

/* ---------------------------------------------------------------- index */

static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static const ifp_gguf_str_t *elem_name(const void *base, size_t stride, size_t i) {
    return (const ifp_gguf_str_t *)((const char *)base + i * stride);
}

static int index_init(gguf_index_t *ix, uint64_t n) {
    size_t cap = 8;
    while (cap < 2 * n) cap *= 2; /* n is bounded by the file size, no overflow */
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->cap = ix->slot ? cap : 0;
    return ix->slot ? IFP_OK : IFP_ENOMEM;
}

/* Returns the slot for name: either holding its index + 1, or empty. */
static size_t *index_probe(const gguf_index_t *ix, const void *base, size_t stride, const char *p, uint64_t n) {
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
        size_t *s = &ix->slot[i];
        if (*s == 0) return s;
        const ifp_gguf_str_t *k = elem_name(base, stride, *s - 1);
        if (k->len == n && memcmp(k->ptr, p, n) == 0) return s;
    }
}

static const void *index_find(const gguf_index_t *ix, const void *base, size_t stride, const char *name) {
    if (!ix->cap || !name) return NULL;
    size_t *s = index_probe(ix, base, stride, name, strlen(name));
    return *s ? elem_name(base, stride, *s - 1) : NULL;
}

/* ---------------------------------------------------------------- cursor */

static int rd_need(rd_t *r, uint64_t n, const char *what) {
    if (n > r->len - r->pos)
        return ifp_errf(r->err, IFP_EFORMAT, "truncated %s at offset %zu: need %llu bytes, %zu left", what, r->pos,
                        (unsigned long long)n, r->len - r->pos);
    return IFP_OK;
}

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int rd_uint(rd_t *r, size_t n, uint64_t *out, const char *what) {
    int rc = rd_need(r, n, what);
    if (rc) return rc;
    *out = load_le(r->buf + r->pos, n);
    r->pos += n;
    return IFP_OK;
}

static int rd_u32(rd_t *r, uint32_t *out, const char *what) {
    uint64_t v = 0;
    int rc = rd_uint(r, 4, &v, what);
    *out = (uint32_t)v;
    return rc;
}

static int rd_str(rd_t *r, ifp_gguf_str_t *s, const char *what) {
    uint64_t n;
    int rc = rd_uint(r, 8, &n, what);
    if (rc) return rc;
    if (n > r->len - r->pos)
        return ifp_errf(r->err, IFP_EFORMAT, "truncated %s at offset %zu: string length %llu exceeds the %zu bytes left",
                        what, r->pos, (unsigned long long)n, r->len - r->pos);
    s->ptr = (const char *)r->buf + r->pos;
    s->len = n;
    r->pos += n;
    return IFP_OK;
}

/* ---------------------------------------------------------------- values */

/* Reads one scalar of type t (not ARRAY) into kv->v. */
static int rd_scalar(rd_t *r, ifp_gguf_vtype_t t, ifp_gguf_kv_t *kv) {
    if (t == IFP_GGUF_STRING) return rd_str(r, &kv->v.str, "string value");
    uint64_t u;
    int rc = rd_uint(r, vtype_size[t], &u, "value");
    if (rc) return rc;
    switch (t) {
    case IFP_GGUF_INT8: kv->v.i64 = (int8_t)u; break;
    case IFP_GGUF_INT16: kv->v.i64 = (int16_t)u; break;
    case IFP_GGUF_INT32: kv->v.i64 = (int32_t)u; break;
    case IFP_GGUF_INT64: kv->v.i64 = (int64_t)u; break;
    case IFP_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, sizeof f);
        kv->v.f64 = f;
        break;
    }
    case IFP_GGUF_FLOAT64: memcpy(&kv->v.f64, &u, sizeof u); break;
    case IFP_GGUF_BOOL:
        if (u > 1) return ifp_errf(r->err, IFP_EFORMAT, "bool value %llu is not 0 or 1", (unsigned long long)u);
        kv->v.u64 = u;
        break;
    default: kv->v.u64 = u; break; /* unsigned types */
    }
    return IFP_OK;
}

static int rd_array(rd_t *r, ifp_gguf_kv_t *kv) {
    uint32_t et;
    uint64_t n;
    int rc = rd_u32(r, &et, "array element type");
    if (!rc) rc = rd_uint(r, 8, &n, "array count");
    if (rc) return rc;
    if (et == IFP_GGUF_ARRAY) return ifp_errf(r->err, IFP_EUNSUPPORTED, "nested arrays are not supported");
    if (et >= IFP_GGUF_NTYPES) return ifp_errf(r->err, IFP_EFORMAT, "unknown array element type %u", et);
    kv->arr_type = (ifp_gguf_vtype_t)et;
    kv->arr_n = n;
    size_t left = r->len - r->pos;
    size_t esize = et == IFP_GGUF_STRING ? 8 : vtype_size[et]; /* a string takes at least its length */
    if (n > left / esize)
        return ifp_errf(r->err, IFP_EFORMAT, "array count %llu of %s overflows the %zu bytes left (truncated)",
                        (unsigned long long)n, ifp_gguf_vtype_name(kv->arr_type), left);
    if (et != IFP_GGUF_STRING) {
        kv->arr_data = r->buf + r->pos;
        if (et == IFP_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (r->buf[r->pos + i] > 1)
                    return ifp_errf(r->err, IFP_EFORMAT, "bool array element %llu is %u, not 0 or 1",
                                    (unsigned long long)i, r->buf[r->pos + i]);
        r->pos += n * esize;
        return IFP_OK;
    }
    ifp_gguf_str_t *s = calloc(n ? n : 1, sizeof *s);
    if (!s) return ifp_errf(r->err, IFP_ENOMEM, "out of memory for %llu strings", (unsigned long long)n);
    kv->arr_str = s;
    for (uint64_t i = 0; i < n; i++) {
        rc = rd_str(r, &s[i], "array string");
        if (rc) return ifp_err_prefix(r->err, "element %llu", (unsigned long long)i);
    }
    return IFP_OK;
}

static int rd_kv(rd_t *r, ifp_gguf_t *g, uint64_t i) {
    ifp_gguf_kv_t *kv = &g->kvs[i];
    int rc = rd_str(r, &kv->key, "key");
    if (rc) return ifp_err_prefix(r->err, "kv %llu", (unsigned long long)i);
    uint32_t t;
    rc = rd_u32(r, &t, "value type");
    if (!rc && t >= IFP_GGUF_NTYPES) rc = ifp_errf(r->err, IFP_EFORMAT, "unknown value type %u", t);
    if (!rc) {
        kv->type = (ifp_gguf_vtype_t)t;
        rc = t == IFP_GGUF_ARRAY ? rd_array(r, kv) : rd_scalar(r, kv->type, kv);
    }
    if (rc) return ifp_err_prefix(r->err, "key '%.*s'", STRF(kv->key));
    size_t *s = index_probe(&g->kv_index, g->kvs, sizeof *g->kvs, kv->key.ptr, kv->key.len);
    if (*s) return ifp_errf(r->err, IFP_EFORMAT, "duplicate key '%.*s'", STRF(kv->key));
    *s = (size_t)i + 1;
    return IFP_OK;
}

/* ---------------------------------------------------------------- tensors */

static size_t ggml_type_size(uint32_t t) {
    switch (t) {
    case IFP_GGML_F32: return 4;
    case IFP_GGML_F16:
    case IFP_GGML_BF16: return 2;
    case IFP_GGML_Q8_0: return 34; /* per block of 32 along ne[0] */
    default: return 0;
    }
}

static int rd_tensor_info(rd_t *r, ifp_gguf_t *g, uint64_t i) {
    ifp_gguf_tensor_t *t = &g->tensors[i];
    int rc = rd_str(r, &t->name, "tensor name");
    if (rc) return ifp_err_prefix(r->err, "tensor info %llu", (unsigned long long)i);
    rc = rd_u32(r, &t->n_dims, "n_dims");
    if (!rc && (t->n_dims < 1 || t->n_dims > IFP_GGUF_MAX_DIMS))
        rc = ifp_errf(r->err, IFP_EFORMAT, "n_dims %u out of range 1..%d", t->n_dims, IFP_GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < IFP_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; !rc && d < t->n_dims; d++) {
        rc = rd_uint(r, 8, &t->ne[d], "dimension");
        if (!rc && t->ne[d] == 0) rc = ifp_errf(r->err, IFP_EFORMAT, "dimension %u is 0", d);
    }
    uint32_t type = 0;
    if (!rc) rc = rd_u32(r, &type, "tensor type");
    if (!rc) rc = rd_uint(r, 8, &t->offset, "tensor offset");
    if (!rc && !ggml_type_size(type))
        rc = ifp_errf(r->err, IFP_EUNSUPPORTED, "unsupported type %u (%s; ifp reads f32, f16, bf16 and q8_0)", type,
                      ifp_ggml_type_name((ifp_ggml_type_t)type));
    t->type = (ifp_ggml_type_t)type;
    uint64_t n = 1;
    for (uint32_t d = 0; !rc && d < t->n_dims; d++) {
        if (t->ne[d] > UINT64_MAX / n)
            rc = ifp_errf(r->err, IFP_ERANGE, "element count overflows (dimension %u = %llu)", d,
                          (unsigned long long)t->ne[d]);
        n *= t->ne[d];
    }
    if (!rc && type == IFP_GGML_Q8_0 && t->ne[0] % 32 != 0)
        rc = ifp_errf(r->err, IFP_EFORMAT, "q8_0 tensor with %llu elements per row (need a multiple of 32)",
                      (unsigned long long)t->ne[0]);
    uint64_t units = type == IFP_GGML_Q8_0 ? n / 32 : n; /* elements, or q8_0 blocks */
    if (!rc && units > UINT64_MAX / ggml_type_size(type))
        rc = ifp_errf(r->err, IFP_ERANGE, "byte size of %llu elements overflows", (unsigned long long)n);
    if (rc) return ifp_err_prefix(r->err, "tensor %.*s", STRF(t->name));
    t->n_elements = n;
    t->n_bytes = units * ggml_type_size(type);
    size_t *s = index_probe(&g->tensor_index, g->tensors, sizeof *g->tensors, t->name.ptr, t->name.len);
    if (*s) return ifp_errf(r->err, IFP_EFORMAT, "duplicate tensor name '%.*s'", STRF(t->name));
    *s = (size_t)i + 1;
    return IFP_OK;
}

/* Finds general.alignment, lays out the data section and places tensors. */
static int place_tensors(rd_t *r, ifp_gguf_t *g) {
    g->alignment = IFP_GGUF_DEFAULT_ALIGNMENT;
    const ifp_gguf_kv_t *a = ifp_gguf_find(g, "general.alignment");
    if (a) {
        if (a->type != IFP_GGUF_UINT32)
            return ifp_errf(r->err, IFP_EFORMAT, "general.alignment has type %s, expected uint32",
                            ifp_gguf_vtype_name(a->type));
        if (a->v.u64 == 0 || (a->v.u64 & (a->v.u64 - 1)))
            return ifp_errf(r->err, IFP_EFORMAT, "general.alignment %llu is not a nonzero power of two",
                            (unsigned long long)a->v.u64);
        g->alignment = a->v.u64;
    }
    uint64_t pad = (g->alignment - r->pos % g->alignment) % g->alignment;
    if (pad > r->len - r->pos) {
        if (g->n_tensors)
            return ifp_errf(r->err, IFP_EFORMAT, "truncated: data section would start at %llu, past the end (%zu bytes)",
                            (unsigned long long)(r->pos + pad), r->len);
        pad = r->len - r->pos; /* no tensors: a missing data section is fine */
    }
    g->data_off = r->pos + (size_t)pad;
    uint64_t data_len = r->len - g->data_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        ifp_gguf_tensor_t *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return ifp_errf(r->err, IFP_EFORMAT, "tensor %.*s: offset %llu is not a multiple of the alignment %llu",
                            STRF(t->name), (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (t->offset > data_len || t->n_bytes > data_len - t->offset)
            return ifp_errf(r->err, IFP_EFORMAT,
                            "tensor %.*s: data [%llu, +%llu) lies outside the file (data section is %llu bytes; "
                            "truncated?)",
                            STRF(t->name), (unsigned long long)t->offset, (unsigned long long)t->n_bytes,
                            (unsigned long long)data_len);
        t->data = g->buf + g->data_off + t->offset;
    }
    return IFP_OK;
}

static int parse(ifp_gguf_t *g, ifp_err_t *err) {
    rd_t r = {.buf = g->buf, .len = g->len, .pos = 0, .err = err};
    uint32_t magic;
    int rc = rd_u32(&r, &magic, "magic");
    if (rc) return rc;
    if (magic != IFP_GGUF_MAGIC)
        return ifp_errf(err, IFP_EFORMAT, "not a GGUF file (bad magic %02x %02x %02x %02x)", g->buf[0], g->buf[1],
                        g->buf[2], g->buf[3]);
    rc = rd_u32(&r, &g->version, "version");
    if (rc) return rc;
    if (g->version != IFP_GGUF_VERSION)
        return ifp_errf(err, IFP_EUNSUPPORTED, "unsupported GGUF version %u (need %d%s)", g->version,
                        IFP_GGUF_VERSION, g->version == 0x03000000u ? "; big-endian file?" : "");
    rc = rd_uint(&r, 8, &g->n_tensors, "tensor_count");
    if (!rc) rc = rd_uint(&r, 8, &g->n_kv, "kv_count");
    if (rc) return rc;
    /* Bound the counts by what could possibly fit before allocating:
     * a kv takes >= 13 bytes, a tensor info >= 32. */
    size_t left = r.len - r.pos;
    if (g->n_kv > left / 13)
        return ifp_errf(err, IFP_EFORMAT, "kv_count %llu overflows the %zu bytes left (truncated)",
                        (unsigned long long)g->n_kv, left);
    if (g->n_tensors > left / 32)
        return ifp_errf(err, IFP_EFORMAT, "tensor_count %llu overflows the %zu bytes left (truncated)",
                        (unsigned long long)g->n_tensors, left);
    g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors || index_init(&g->kv_index, g->n_kv) || index_init(&g->tensor_index, g->n_tensors))
        return ifp_errf(err, IFP_ENOMEM, "out of memory indexing %llu kvs and %llu tensors",
                        (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if ((rc = rd_kv(&r, g, i))) return rc;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((rc = rd_tensor_info(&r, g, i))) return rc;
    return place_tensors(&r, g);
}

/* ---------------------------------------------------------------- open/close */

static int open_common(ifp_gguf_t *g, ifp_gguf_t **out, ifp_err_t *err) {
    int rc = parse(g, err);
    if (rc) {
        ifp_err_prefix(err, "%s", g->path);
        ifp_gguf_close(&g);
        return rc;
    }
    *out = g;
    return IFP_OK;
}

static ifp_gguf_t *gguf_alloc(const char *name) {
    ifp_gguf_t *g = calloc(1, sizeof *g);
    if (g && !(g->path = strdup(name))) {
        free(g);
        g = NULL;
    }
    return g;
}

int ifp_gguf_open_buffer(const void *buf, size_t len, const char *name, ifp_gguf_t **out, ifp_err_t *err) {
    *out = NULL;
    if (!name) name = "<buffer>";
    if (!buf && len) return ifp_errf(err, IFP_EINVAL, "%s: NULL buffer", name);
    ifp_gguf_t *g = gguf_alloc(name);
    if (!g) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", name);
    g->buf = buf;
    g->len = len;
    return open_common(g, out, err);
}

int ifp_gguf_open(const char *path, ifp_gguf_t **out, ifp_err_t *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ifp_errf(err, IFP_EIO, "%s: cannot open: %m", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ifp_errf(err, IFP_EIO, "%s: not a regular file", path);
    }
    void *p = NULL; /* an empty file is not mapped; parse() reports it truncated */
    if (st.st_size > 0) p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return ifp_errf(err, IFP_EIO, "%s: mmap failed: %m", path);
    ifp_gguf_t *g = gguf_alloc(path);
    if (!g) {
        if (p) munmap(p, (size_t)st.st_size);
        return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", path);
    }
    g->buf = p;
    g->len = (size_t)st.st_size;
    g->mapped = p != NULL;
    return open_common(g, out, err);
}

void ifp_gguf_close(ifp_gguf_t **pg) {
    if (!pg || !*pg) return;
    ifp_gguf_t *g = *pg;
    for (uint64_t i = 0; g->kvs && i < g->n_kv; i++) free((void *)g->kvs[i].arr_str);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index.slot);
    free(g->tensor_index.slot);
    if (g->mapped) munmap((void *)g->buf, g->len);
    free(g->path);
    free(g);
    *pg = NULL;
}

/* ---------------------------------------------------------------- accessors */

const char *ifp_gguf_path(const ifp_gguf_t *g) { return g->path; }
uint32_t ifp_gguf_version(const ifp_gguf_t *g) { return g->version; }
uint64_t ifp_gguf_alignment(const ifp_gguf_t *g) { return g->alignment; }
uint64_t ifp_gguf_n_kv(const ifp_gguf_t *g) { return g->n_kv; }
uint64_t ifp_gguf_n_tensors(const ifp_gguf_t *g) { return g->n_tensors; }

const ifp_gguf_kv_t *ifp_gguf_kv_at(const ifp_gguf_t *g, uint64_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }

const ifp_gguf_tensor_t *ifp_gguf_tensor_at(const ifp_gguf_t *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ifp_gguf_kv_t *ifp_gguf_find(const ifp_gguf_t *g, const char *key) {
    return index_find(&g->kv_index, g->kvs, sizeof *g->kvs, key);
}

const ifp_gguf_tensor_t *ifp_gguf_find_tensor(const ifp_gguf_t *g, const char *name) {
    return index_find(&g->tensor_index, g->tensors, sizeof *g->tensors, name);
}

/* ---------------------------------------------------------------- getters */

static const ifp_gguf_kv_t *need_key(const ifp_gguf_t *g, const char *key, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = ifp_gguf_find(g, key);
    if (!kv) ifp_errf(err, IFP_ENOTFOUND, "%s: missing required key %s", g->path, key);
    return kv;
}

static int is_int(ifp_gguf_vtype_t t) {
    return t <= IFP_GGUF_INT32 || t == IFP_GGUF_UINT64 || t == IFP_GGUF_INT64;
}

static int is_signed(ifp_gguf_vtype_t t) {
    return t == IFP_GGUF_INT8 || t == IFP_GGUF_INT16 || t == IFP_GGUF_INT32 || t == IFP_GGUF_INT64;
}

static int wrong_type(const ifp_gguf_t *g, const ifp_gguf_kv_t *kv, const char *key, const char *want,
                      ifp_err_t *err) {
    return ifp_errf(err, IFP_EFORMAT, "%s: key %s has type %s, expected %s", g->path, key,
                    ifp_gguf_vtype_name(kv->type), want);
}

int ifp_gguf_get_i64(const ifp_gguf_t *g, const char *key, int64_t *out, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = need_key(g, key, err);
    if (!kv) return IFP_ENOTFOUND;
    if (!is_int(kv->type)) return wrong_type(g, kv, key, "an integer", err);
    if (!is_signed(kv->type) && kv->v.u64 > INT64_MAX)
        return ifp_errf(err, IFP_ERANGE, "%s: key %s = %llu does not fit in int64", g->path, key,
                        (unsigned long long)kv->v.u64);
    *out = is_signed(kv->type) ? kv->v.i64 : (int64_t)kv->v.u64;
    return IFP_OK;
}

int ifp_gguf_get_u32(const ifp_gguf_t *g, const char *key, uint32_t *out, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = need_key(g, key, err);
    if (!kv) return IFP_ENOTFOUND;
    if (!is_int(kv->type)) return wrong_type(g, kv, key, "an integer", err);
    if (is_signed(kv->type) ? (kv->v.i64 < 0 || kv->v.i64 > UINT32_MAX) : kv->v.u64 > UINT32_MAX) {
        if (is_signed(kv->type))
            return ifp_errf(err, IFP_ERANGE, "%s: key %s = %lld does not fit in uint32", g->path, key,
                            (long long)kv->v.i64);
        return ifp_errf(err, IFP_ERANGE, "%s: key %s = %llu does not fit in uint32", g->path, key,
                        (unsigned long long)kv->v.u64);
    }
    *out = is_signed(kv->type) ? (uint32_t)kv->v.i64 : (uint32_t)kv->v.u64;
    return IFP_OK;
}

int ifp_gguf_get_f32(const ifp_gguf_t *g, const char *key, float *out, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = need_key(g, key, err);
    if (!kv) return IFP_ENOTFOUND;
    double v;
    if (kv->type == IFP_GGUF_FLOAT32 || kv->type == IFP_GGUF_FLOAT64)
        v = kv->v.f64;
    else if (is_int(kv->type))
        v = is_signed(kv->type) ? (double)kv->v.i64 : (double)kv->v.u64;
    else
        return wrong_type(g, kv, key, "a number", err);
    if (isfinite(v) && fabs(v) > 3.4028234663852886e38)
        return ifp_errf(err, IFP_ERANGE, "%s: key %s = %g does not fit in float", g->path, key, v);
    *out = (float)v;
    return IFP_OK;
}

int ifp_gguf_get_bool(const ifp_gguf_t *g, const char *key, int *out, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = need_key(g, key, err);
    if (!kv) return IFP_ENOTFOUND;
    if (kv->type != IFP_GGUF_BOOL) return wrong_type(g, kv, key, "bool", err);
    *out = (int)kv->v.u64;
    return IFP_OK;
}

int ifp_gguf_get_str(const ifp_gguf_t *g, const char *key, char **out, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = need_key(g, key, err);
    if (!kv) return IFP_ENOTFOUND;
    if (kv->type != IFP_GGUF_STRING) return wrong_type(g, kv, key, "string", err);
    char *s = malloc((size_t)kv->v.str.len + 1); /* len <= file size */
    if (!s) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory copying key %s", g->path, key);
    if (kv->v.str.len) memcpy(s, kv->v.str.ptr, (size_t)kv->v.str.len);
    s[kv->v.str.len] = '\0';
    *out = s;
    return IFP_OK;
}

int ifp_gguf_get_arr(const ifp_gguf_t *g, const char *key, ifp_gguf_vtype_t elem, uint64_t expect_n,
                     const ifp_gguf_kv_t **out, ifp_err_t *err) {
    const ifp_gguf_kv_t *kv = need_key(g, key, err);
    if (!kv) return IFP_ENOTFOUND;
    if (kv->type != IFP_GGUF_ARRAY || kv->arr_type != elem) {
        char want[48];
        snprintf(want, sizeof want, "array of %s", ifp_gguf_vtype_name(elem));
        if (kv->type != IFP_GGUF_ARRAY) return wrong_type(g, kv, key, want, err);
        return ifp_errf(err, IFP_EFORMAT, "%s: key %s has type array of %s, expected %s", g->path, key,
                        ifp_gguf_vtype_name(kv->arr_type), want);
    }
    if (expect_n && kv->arr_n != expect_n)
        return ifp_errf(err, IFP_EFORMAT, "%s: key %s has %llu elements, expected %llu", g->path, key,
                        (unsigned long long)kv->arr_n, (unsigned long long)expect_n);
    *out = kv;
    return IFP_OK;
}

double ifp_gguf_arr_num(const ifp_gguf_kv_t *kv, uint64_t i) {
    if (kv->type != IFP_GGUF_ARRAY || i >= kv->arr_n || kv->arr_type >= IFP_GGUF_NTYPES) return NAN;
    size_t es = vtype_size[kv->arr_type];
    if (!es) return NAN; /* strings */
    uint64_t u = load_le((const uint8_t *)kv->arr_data + i * es, es);
    switch (kv->arr_type) {
    case IFP_GGUF_INT8: return (int8_t)u;
    case IFP_GGUF_INT16: return (int16_t)u;
    case IFP_GGUF_INT32: return (int32_t)u;
    case IFP_GGUF_INT64: return (double)(int64_t)u;
    case IFP_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, sizeof f);
        return f;
    }
    case IFP_GGUF_FLOAT64: {
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    default: return (double)u;
    }
}

static void fmt_shape(char *buf, size_t cap, uint32_t n_dims, const uint64_t *ne) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < n_dims && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%llu", d ? ", " : "", (unsigned long long)ne[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

int ifp_gguf_require_tensor(const ifp_gguf_t *g, const char *name, uint32_t n_dims, const uint64_t *ne,
                            const ifp_gguf_tensor_t **out, ifp_err_t *err) {
    const ifp_gguf_tensor_t *t = ifp_gguf_find_tensor(g, name);
    if (!t) return ifp_errf(err, IFP_ENOTFOUND, "%s: missing required tensor %s", g->path, name);
    int same = t->n_dims == n_dims;
    for (uint32_t d = 0; same && d < n_dims; d++) same = t->ne[d] == ne[d];
    if (!same) {
        char have[128], want[128];
        fmt_shape(have, sizeof have, t->n_dims, t->ne);
        fmt_shape(want, sizeof want, n_dims > IFP_GGUF_MAX_DIMS ? IFP_GGUF_MAX_DIMS : n_dims, ne);
        return ifp_errf(err, IFP_EFORMAT, "%s: tensor %s has shape %s, expected %s", g->path, name, have, want);
    }
    if (out) *out = t;
    return IFP_OK;
}
