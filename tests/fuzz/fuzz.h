/* fuzz.h — helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * A target is one file fuzz_NAME.c defining LLVMFuzzerTestOneInput (and, if
 * it loads something once, LLVMFuzzerInitialize).  It feeds the input to the
 * real decoder, then walks everything decoded (so ASan sees a bad pointer or
 * length) and checks the decoder's contract; a broken contract calls
 * FUZZ_CHECK, which aborts with a message: libFuzzer reports it as a crash. */
#ifndef IFP_FUZZ_H
#define IFP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ifp.pb-c.h"
#include "wire.h"

/* The libFuzzer entry points (declared here so -Wmissing-prototypes style
 * warnings stay quiet and every target uses the same signatures). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with "file:line: check failed: expr" and a printf-formatted detail
 * when cond is false. */
#define FUZZ_CHECK(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) ifp_fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                \
    } while (0)
void ifp_fuzz_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Reads every byte of p[0..n) (so ASan checks the whole range) and folds it
 * into a sink the optimizer cannot drop. */
void ifp_fuzz_touch(const void *p, size_t n);
/* Reads a NUL-terminated string (ASan checks up to and including the NUL);
 * returns its length. */
size_t ifp_fuzz_touch_str(const char *s);

/* 1 if p[0..n) is strict UTF-8 (RFC 3629: no overlong forms, surrogates or
 * code points past U+10FFFF; NUL allowed).  A reference written from the
 * RFC by code-point arithmetic, independent of core/utf8.c. */
int ifp_fuzz_valid_utf8(const void *p, size_t n);

/* After a failed call: rc is a negative IFP_E* code, err->code == rc and
 * err->msg a non-empty NUL-terminated message. */
void ifp_fuzz_check_err(int rc, const ifp_err_t *err);

/* Path of an in-memory file holding data[0..size) ("/proc/self/fd/N" of a
 * memfd), for decoders that take a path.  slot 0..3: independent files, each
 * rewritten by the next call with the same slot.  Aborts if it cannot. */
const char *ifp_fuzz_memfile(int slot, const void *data, size_t size);
/* A path in a tmpfs folder (/dev/shm, else $TMPDIR or /tmp) unique to this
 * process, for writers that create a file and rename it into place (the
 * folder is removed at exit; name: roundtrip.gguf, mask.gguf,
 * clusters.gguf or api_keys, or add it to tmp_cleanup in fuzz_util.c). */
const char *ifp_fuzz_tmp_path(const char *name);

/* Absolute path of a file in the source tree (IFP_SOURCE_DIR/rel). */
const char *ifp_fuzz_source_path(const char *rel);

/* Walks every field of an unpacked protobuf-c message, recursively: each
 * string up to its NUL, each bytes field and repeated array over its
 * length, each set oneof member, the unknown fields.  Checks it with
 * protobuf_c_message_check. */
void ifp_fuzz_pb_walk(const ProtobufCMessage *m);
/* ifp_wire_check_text on the bytes m was decoded from, with its contract:
 * 0 and an empty why, or -1 and "<field path>: what"; when it passes, every
 * string field of m is valid UTF-8.  Returns its result. */
int ifp_fuzz_pb_check_text(const ProtobufCMessage *m, const void *data, size_t len);
/* Re-encodes m, decodes that with decode (the decoder that produced m) and
 * checks the second encoding equals the first: what a decoder accepts
 * survives a round trip unchanged.  (Skipped for a message holding an
 * unknown field numbered 0, which protobuf-c accepts but cannot re-read:
 * see fuzz_pb.c.) */
void ifp_fuzz_pb_roundtrip(const ProtobufCMessage *m, ProtobufCMessage *(*decode)(const void *, size_t));

/* ZeroMQ frames from a fuzz input: byte 0 (mod 8) is the number of frames
 * before the last; each of those is one length byte and that many bytes
 * (cut at the end of the input); the rest of the input is the last frame.
 * So [1][5]"ident"<body> is [identity][body] (a DEALER client) and
 * [2][5]"ident"[0]<body> is [identity][""][body] (a REQ client). */
#define IFP_FUZZ_MAX_SPLIT 8
typedef struct {
    int n;
    const uint8_t *p[IFP_FUZZ_MAX_SPLIT];
    size_t len[IFP_FUZZ_MAX_SPLIT];
} ifp_fuzz_split_t;
void ifp_fuzz_split_frames(const uint8_t *data, size_t size, ifp_fuzz_split_t *s);
/* Sends the frames of s as one multipart message over an inproc PAIR socket
 * pair and receives it with ifp_wire_recv, as a router or shard does
 * (frames past IFP_WIRE_MAX_FRAMES dropped, `truncated` set).  Returns the
 * number of frames received; close f with ifp_frames_close. */
int ifp_fuzz_recv_frames(const ifp_fuzz_split_t *s, ifp_frames_t *f);
/* Builds the bytes ifp_fuzz_split_frames reads back as these frames (for
 * seeds).  Returns the size written, or 0 if cap is too small. */
size_t ifp_fuzz_join_frames(const void *const *p, const size_t *len, int n, uint8_t *out, size_t cap);

#endif
