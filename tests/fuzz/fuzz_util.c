/* fuzz_util.c — checks, in-memory files and ZeroMQ frames for the fuzz
 * targets (see fuzz.h). */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- checks */

void ifp_fuzz_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
    fprintf(stderr, "\n%s:%d: check failed: %s\n  ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static volatile uint64_t sink;

void ifp_fuzz_touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31 + b[i];
    sink += h;
}

size_t ifp_fuzz_touch_str(const char *s) {
    size_t n = strlen(s);
    ifp_fuzz_touch(s, n + 1);
    return n;
}

void ifp_fuzz_check_err(int rc, const ifp_err_t *err) {
    FUZZ_CHECK(rc < 0, "a failure returned %d, not a negative IFP_E* code", rc);
    FUZZ_CHECK(err->code == rc, "err->code %d but the call returned %d", err->code, rc);
    size_t n = strnlen(err->msg, sizeof err->msg);
    FUZZ_CHECK(n > 0 && n < sizeof err->msg, "error message empty or not NUL-terminated (%zu bytes)", n);
    FUZZ_CHECK(strcmp(ifp_strerror(rc), "") != 0, "no name for code %d", rc);
}

int ifp_fuzz_valid_utf8(const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        if (!len || len > n - i) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[i + k] & 0x3F);
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

/* ---------------------------------------------------------------- files */

#define MEMFILES 4

const char *ifp_fuzz_memfile(int slot, const void *data, size_t size) {
    static int fd[MEMFILES] = {-1, -1, -1, -1};
    static char path[MEMFILES][64];
    FUZZ_CHECK(slot >= 0 && slot < MEMFILES, "memfile slot %d", slot);
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("ifp-fuzz", MFD_CLOEXEC);
        FUZZ_CHECK(fd[slot] >= 0, "memfd_create: %s", strerror(errno));
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    FUZZ_CHECK(ftruncate(fd[slot], 0) == 0, "ftruncate: %s", strerror(errno));
    const uint8_t *p = data;
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(fd[slot], p + off, size - off, (off_t)off);
        FUZZ_CHECK(w > 0, "pwrite: %s", strerror(errno));
        off += (size_t)w;
    }
    return path[slot];
}

static char tmp_dir[256];

/* Removes the folder of ifp_fuzz_tmp_path and what the writers left in it. */
static void tmp_cleanup(void) {
    static const char *const names[] = {"roundtrip.gguf", "mask.gguf", "clusters.gguf", "api_keys"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.tmp", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

const char *ifp_fuzz_tmp_path(const char *name) {
    char *dir = tmp_dir;
    static char path[512];
    if (!dir[0]) {
        struct stat st;
        const char *base = getenv("TMPDIR");
        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
        if (!base || !*base) base = "/tmp";
        snprintf(dir, sizeof tmp_dir, "%s/ifp-fuzz-%d", base, (int)getpid());
        FUZZ_CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
        atexit(tmp_cleanup);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

const char *ifp_fuzz_source_path(const char *rel) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", IFP_SOURCE_DIR, rel);
    return path;
}

/* ---------------------------------------------------------------- frames */

void ifp_fuzz_split_frames(const uint8_t *data, size_t size, ifp_fuzz_split_t *s) {
    s->n = 0;
    size_t pos = 0;
    int before = size ? data[pos++] % IFP_FUZZ_MAX_SPLIT : 0;
    for (int i = 0; i < before && s->n < IFP_FUZZ_MAX_SPLIT - 1; i++) {
        size_t len = pos < size ? data[pos++] : 0;
        if (len > size - pos) len = size - pos;
        s->p[s->n] = data + pos;
        s->len[s->n++] = len;
        pos += len;
    }
    s->p[s->n] = data + pos;
    s->len[s->n++] = size - pos;
}

size_t ifp_fuzz_join_frames(const void *const *p, const size_t *len, int n, uint8_t *out, size_t cap) {
    if (n < 1 || n > IFP_FUZZ_MAX_SPLIT || cap < 1) return 0;
    size_t k = 0;
    out[k++] = (uint8_t)(n - 1);
    for (int i = 0; i < n; i++) {
        if (i < n - 1) {
            if (len[i] > 255 || k + 1 > cap) return 0;
            out[k++] = (uint8_t)len[i];
        }
        if (len[i] > cap - k) return 0;
        if (len[i]) memcpy(out + k, p[i], len[i]);
        k += len[i];
    }
    return k;
}

int ifp_fuzz_recv_frames(const ifp_fuzz_split_t *s, ifp_frames_t *f) {
    /* one socket pair for the process: reachable, so not a leak */
    static void *ctx, *tx, *rx;
    if (!ctx) {
        ctx = zmq_ctx_new();
        FUZZ_CHECK(ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        zmq_ctx_set(ctx, ZMQ_IO_THREADS, 0); /* inproc only */
        rx = zmq_socket(ctx, ZMQ_PAIR);
        tx = zmq_socket(ctx, ZMQ_PAIR);
        FUZZ_CHECK(rx && tx, "zmq_socket: %s", zmq_strerror(zmq_errno()));
        int hwm = 0; /* no limit: one message at a time anyway */
        zmq_setsockopt(tx, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(rx, ZMQ_RCVHWM, &hwm, sizeof hwm);
        FUZZ_CHECK(zmq_bind(rx, "inproc://ifp-fuzz") == 0, "zmq_bind: %s", zmq_strerror(zmq_errno()));
        FUZZ_CHECK(zmq_connect(tx, "inproc://ifp-fuzz") == 0, "zmq_connect: %s", zmq_strerror(zmq_errno()));
    }
    for (int i = 0; i < s->n; i++) {
        int rc = zmq_send(tx, s->p[i], s->len[i], i < s->n - 1 ? ZMQ_SNDMORE : 0);
        FUZZ_CHECK(rc >= 0, "zmq_send: %s", zmq_strerror(zmq_errno()));
    }
    int n = ifp_wire_recv(rx, f, 0);
    FUZZ_CHECK(n >= 1, "ifp_wire_recv: %d (%s)", n, zmq_strerror(zmq_errno()));
    int want = s->n < IFP_WIRE_MAX_FRAMES ? s->n : IFP_WIRE_MAX_FRAMES;
    FUZZ_CHECK(n == want && f->n == n && f->truncated == (s->n > IFP_WIRE_MAX_FRAMES),
               "sent %d frames, received %d (f->n %d, truncated %d)", s->n, n, f->n, f->truncated);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(ifp_frame_size(f, i) == s->len[i], "frame %d: %zu bytes, sent %zu", i, ifp_frame_size(f, i),
                   s->len[i]);
        FUZZ_CHECK(s->len[i] == 0 || memcmp(ifp_frame_data(f, i), s->p[i], s->len[i]) == 0,
                   "frame %d: bytes differ from those sent", i);
    }
    return n;
}
