/* gguf_testlib.h — byte builders and temp-dir fixtures shared by the GGUF
 * tests (test_gguf.c, test_gguf_corpus.c). */
#ifndef IFP_GGUF_TESTLIB_H
#define IFP_GGUF_TESTLIB_H

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

static char g_dir[64] __attribute__((unused)); /* temp dir for written files */

/* ---------------------------------------------------------------- helpers */

/* Byte builder for hand-assembled files. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb_t;

static inline void bb_put(bb_t *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static inline void bb_le(bb_t *b, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) bb_put(b, &(uint8_t){(uint8_t)(v >> (8 * i))}, 1);
}
static inline void bb_u32(bb_t *b, uint32_t v) { bb_le(b, v, 4); }
static inline void bb_u64(bb_t *b, uint64_t v) { bb_le(b, v, 8); }
static inline void bb_str(bb_t *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static inline void bb_pad(bb_t *b, size_t align) {
    while (b->len % align) bb_le(b, 0, 1);
}
static inline void hdr(bb_t *b, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, 3);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static inline void kv_u32(bb_t *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, IFP_GGUF_UINT32);
    bb_u32(b, v);
}
/* Tensor info with ne given innermost first. */
static inline void tinfo(bb_t *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, off);
}
/* Pads to 32 and appends n zero bytes of data. */
static inline void data(bb_t *b, size_t n) {
    bb_pad(b, 32);
    for (size_t i = 0; i < n; i++) bb_le(b, 0, 1);
}

/* Opens an exact-size heap copy (so ASan sees any overread); on success
 * *copy must be freed after ifp_gguf_close. */
static inline int open_copy(const void *buf, size_t len, ifp_gguf_t **g, ifp_err_t *err, void **copy) {
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
static inline void close_copy(ifp_gguf_t **g, void **copy) {
    ifp_gguf_close(g);
    free(*copy);
    *copy = NULL;
}

/* Touches everything a loaded file exposes. */
static inline void exercise(const ifp_gguf_t *g) {
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

static inline char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%.200s", g_dir, name);
    return buf;
}

/* ---------------------------------------------------------------- conversions */


static inline int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp_gguf_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static inline int teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
        closedir(d);
    }
    return rmdir(g_dir);
}

static const uint64_t NE23[] __attribute__((unused)) = {2, 3};

/* A valid file: 2 kvs, one f32 [2, 3] tensor. */
static inline void valid(bb_t *b) {
    hdr(b, 1, 2);
    kv_u32(b, "general.alignment", 32);
    bb_str(b, "general.architecture");
    bb_u32(b, IFP_GGUF_STRING);
    bb_str(b, "llama");
    tinfo(b, "w", 2, NE23, IFP_GGML_F32, 0);
    data(b, 24);
}

#endif
