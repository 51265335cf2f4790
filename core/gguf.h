/* gguf.h — GGUF v3 reader (over mmap) and writer.
 *
 * Reader: ifp_gguf_open() maps the file, validates the whole header (every
 * metadata value, every tensor info, alignment, that every tensor's data lies
 * inside the file) and indexes it.  Nothing is copied: strings and tensor data
 * point into the mapping and stay valid until ifp_gguf_close().  Every
 * malformed file is rejected with IFP_EFORMAT / IFP_ERANGE / IFP_EUNSUPPORTED
 * and a message naming what is wrong; no input can make it crash.
 *
 * Writer: collect key/values and tensors, then write one file.  Tensor data is
 * borrowed (must stay valid until ifp_gguf_writer_write returns). */
#ifndef IFP_GGUF_H
#define IFP_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define IFP_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define IFP_GGUF_VERSION 3
#define IFP_GGUF_DEFAULT_ALIGNMENT 32
#define IFP_GGUF_MAX_DIMS 4

/* Metadata value types (GGUF spec numbering). */
typedef enum {
    IFP_GGUF_UINT8 = 0,
    IFP_GGUF_INT8 = 1,
    IFP_GGUF_UINT16 = 2,
    IFP_GGUF_INT16 = 3,
    IFP_GGUF_UINT32 = 4,
    IFP_GGUF_INT32 = 5,
    IFP_GGUF_FLOAT32 = 6,
    IFP_GGUF_BOOL = 7,
    IFP_GGUF_STRING = 8,
    IFP_GGUF_ARRAY = 9,
    IFP_GGUF_UINT64 = 10,
    IFP_GGUF_INT64 = 11,
    IFP_GGUF_FLOAT64 = 12,
    IFP_GGUF_NTYPES
} ifp_gguf_vtype_t;

/* Tensor element types this project loads (ggml numbering). */
typedef enum {
    IFP_GGML_F32 = 0,
    IFP_GGML_F16 = 1,
    IFP_GGML_Q8_0 = 8,
    IFP_GGML_BF16 = 30,
} ifp_ggml_type_t;

/* A length-delimited string inside the mapping (NOT NUL-terminated). */
typedef struct {
    const char *ptr;
    uint64_t len;
} ifp_gguf_str_t;

typedef struct {
    ifp_gguf_str_t key;
    ifp_gguf_vtype_t type;        /* for arrays: IFP_GGUF_ARRAY */
    ifp_gguf_vtype_t arr_type;    /* element type when type == ARRAY */
    uint64_t arr_n;               /* element count when type == ARRAY */
    const void *arr_data;         /* numeric arrays: raw little-endian elements (maybe unaligned) */
    const ifp_gguf_str_t *arr_str;/* string arrays: arr_n strings (index owned by the reader) */
    union {                       /* scalars */
        uint64_t u64;             /* UINT8/16/32/64, BOOL */
        int64_t i64;              /* INT8/16/32/64 */
        double f64;               /* FLOAT32/64 */
        ifp_gguf_str_t str;       /* STRING */
    } v;
} ifp_gguf_kv_t;

typedef struct {
    ifp_gguf_str_t name;
    uint32_t n_dims;
    uint64_t ne[IFP_GGUF_MAX_DIMS]; /* innermost first; unused dims = 1 */
    ifp_ggml_type_t type;
    uint64_t offset;                /* relative to the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;               /* into the mapping */
} ifp_gguf_tensor_t;

typedef struct ifp_gguf ifp_gguf_t;

/* Opens and validates path.  On success *out owns the mapping. */
int ifp_gguf_open(const char *path, ifp_gguf_t **out, ifp_err_t *err);
/* Same, over a caller buffer (kept borrowed; used by tests and fuzzing). */
int ifp_gguf_open_buffer(const void *buf, size_t len, const char *name, ifp_gguf_t **out, ifp_err_t *err);
void ifp_gguf_close(ifp_gguf_t **g);

const char *ifp_gguf_path(const ifp_gguf_t *g);
uint32_t ifp_gguf_version(const ifp_gguf_t *g);
uint64_t ifp_gguf_alignment(const ifp_gguf_t *g);
uint64_t ifp_gguf_n_kv(const ifp_gguf_t *g);
const ifp_gguf_kv_t *ifp_gguf_kv_at(const ifp_gguf_t *g, uint64_t i);
uint64_t ifp_gguf_n_tensors(const ifp_gguf_t *g);
const ifp_gguf_tensor_t *ifp_gguf_tensor_at(const ifp_gguf_t *g, uint64_t i);

/* Lookups return NULL when absent. */
const ifp_gguf_kv_t *ifp_gguf_find(const ifp_gguf_t *g, const char *key);
const ifp_gguf_tensor_t *ifp_gguf_find_tensor(const ifp_gguf_t *g, const char *name);

/* Typed getters.  Missing key -> IFP_ENOTFOUND ("missing required key K");
 * wrong type or value not representable -> IFP_EFORMAT / IFP_ERANGE.
 * Integer getters accept any integer type whose value fits. */
int ifp_gguf_get_u32(const ifp_gguf_t *g, const char *key, uint32_t *out, ifp_err_t *err);
int ifp_gguf_get_i64(const ifp_gguf_t *g, const char *key, int64_t *out, ifp_err_t *err);
int ifp_gguf_get_f32(const ifp_gguf_t *g, const char *key, float *out, ifp_err_t *err); /* f32/f64/int */
int ifp_gguf_get_bool(const ifp_gguf_t *g, const char *key, int *out, ifp_err_t *err);
/* *out is a NUL-terminated copy in malloc'd memory; caller frees. */
int ifp_gguf_get_str(const ifp_gguf_t *g, const char *key, char **out, ifp_err_t *err);
/* Array getter: checks element type (and n when expect_n != 0). */
int ifp_gguf_get_arr(const ifp_gguf_t *g, const char *key, ifp_gguf_vtype_t elem, uint64_t expect_n,
                     const ifp_gguf_kv_t **out, ifp_err_t *err);
/* Element i of a numeric array, converted (unaligned-safe). */
double ifp_gguf_arr_num(const ifp_gguf_kv_t *kv, uint64_t i);

/* Finds tensor `name` and checks its shape: n_dims and ne[0..n_dims) must
 * equal those given (ne given innermost first).  Missing -> IFP_ENOTFOUND,
 * wrong shape -> IFP_EFORMAT with both shapes in the message. */
int ifp_gguf_require_tensor(const ifp_gguf_t *g, const char *name, uint32_t n_dims, const uint64_t *ne,
                            const ifp_gguf_tensor_t **out, ifp_err_t *err);

/* Converts a tensor's elements [first, first+n) to f32 into dst. */
int ifp_gguf_tensor_read_f32(const ifp_gguf_tensor_t *t, uint64_t first, uint64_t n, float *dst, ifp_err_t *err);

/* Type helpers. */
const char *ifp_gguf_vtype_name(ifp_gguf_vtype_t t);
const char *ifp_ggml_type_name(ifp_ggml_type_t t); /* "?" for unknown */
float ifp_f16_to_f32(uint16_t h);
uint16_t ifp_f32_to_f16(float f);
float ifp_bf16_to_f32(uint16_t h);
uint16_t ifp_f32_to_bf16(float f);

/* ---- writer ---- */
typedef struct ifp_gguf_writer ifp_gguf_writer_t;

ifp_gguf_writer_t *ifp_gguf_writer_new(void);
void ifp_gguf_writer_destroy(ifp_gguf_writer_t **w);
/* Setters copy key and value.  Return IFP_OK or IFP_ENOMEM. */
int ifp_gguf_writer_set_u32(ifp_gguf_writer_t *w, const char *key, uint32_t v);
int ifp_gguf_writer_set_i32(ifp_gguf_writer_t *w, const char *key, int32_t v);
int ifp_gguf_writer_set_u64(ifp_gguf_writer_t *w, const char *key, uint64_t v);
int ifp_gguf_writer_set_f32(ifp_gguf_writer_t *w, const char *key, float v);
int ifp_gguf_writer_set_bool(ifp_gguf_writer_t *w, const char *key, int v);
int ifp_gguf_writer_set_str(ifp_gguf_writer_t *w, const char *key, const char *v);
int ifp_gguf_writer_set_arr_str(ifp_gguf_writer_t *w, const char *key, const char *const *v, uint64_t n);
/* Numeric array of elem type (UINT8..FLOAT64 except BOOL/STRING/ARRAY), raw
 * little-endian elements copied. */
int ifp_gguf_writer_set_arr(ifp_gguf_writer_t *w, const char *key, ifp_gguf_vtype_t elem, const void *v, uint64_t n);
/* Copies a key/value as the reader holds it (any type, arrays included; the
 * value is re-encoded, so kv may come from a reader closed afterwards).
 * IFP_EINVAL for a key with a NUL byte or a nested array. */
int ifp_gguf_writer_copy_kv(ifp_gguf_writer_t *w, const ifp_gguf_kv_t *kv);
/* Adds a tensor; data (n_bytes of the given type) is borrowed until write. */
int ifp_gguf_writer_add_tensor(ifp_gguf_writer_t *w, const char *name, ifp_ggml_type_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data);
void ifp_gguf_writer_set_alignment(ifp_gguf_writer_t *w, uint32_t alignment);
int ifp_gguf_writer_write(ifp_gguf_writer_t *w, const char *path, ifp_err_t *err);

#endif
