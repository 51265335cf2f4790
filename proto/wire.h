/* wire.h — ZeroMQ framing for ifp messages: envelope frames + one protobuf
 * frame (see ifp.proto), and the packed form of FFN masks in Work.mask. */
#ifndef IFP_WIRE_H
#define IFP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "err.h"
#include "ifp.pb-c.h"
#include "mask.h"

#define IFP_WIRE_MAX_FRAMES 4        /* envelope frames + body we accept */
#define IFP_WIRE_MAX_BODY (64u << 20) /* largest protobuf frame we decode */

/* One received multipart message.  If it had more than IFP_WIRE_MAX_FRAMES
 * parts, the rest were read and dropped and `truncated` is set. */
typedef struct {
    int n;
    int truncated;
    zmq_msg_t part[IFP_WIRE_MAX_FRAMES];
} ifp_frames_t;

/* Receives all parts of one message (flags: 0 or ZMQ_DONTWAIT).  Returns the
 * number of parts, or -1 with errno (EAGAIN when nothing is waiting). */
int ifp_wire_recv(void *sock, ifp_frames_t *f, int flags);
void ifp_frames_close(ifp_frames_t *f);
static inline const void *ifp_frame_data(ifp_frames_t *f, int i) { return zmq_msg_data(&f->part[i]); }
static inline size_t ifp_frame_size(ifp_frames_t *f, int i) { return zmq_msg_size(&f->part[i]); }

/* Sends n_env envelope frames (e.g. a ROUTER identity; may be 0) followed by
 * the packed message as the last frame.  Returns 0 or -1 with errno. */
int ifp_wire_send(void *sock, const void *const *env, const size_t *env_len, int n_env, const ProtobufCMessage *m);
/* The same with extra zmq_send flags on every frame (e.g. ZMQ_DONTWAIT: on a
 * ROUTER_MANDATORY socket the first frame fails with EHOSTUNREACH/EAGAIN when
 * the peer is gone or full; once it is accepted the rest is too). */
int ifp_wire_send_flags(void *sock, const void *const *env, const size_t *env_len, int n_env,
                        const ProtobufCMessage *m, int flags);

/* Decoders: NULL if the bytes do not decode or the oneof is empty.  Free with
 * the matching ifp__*__free_unpacked(msg, NULL). */
Ifp__ClientMessage *ifp_wire_client_msg(const void *data, size_t len);
Ifp__ServerMessage *ifp_wire_server_msg(const void *data, size_t len);
Ifp__RouterToGroup *ifp_wire_router_msg(const void *data, size_t len);
Ifp__GroupToRouter *ifp_wire_group_msg(const void *data, size_t len);
/* The request id a ServerMessage is about, whatever its kind ("" if none). */
const char *ifp_wire_server_msg_id(const Ifp__ServerMessage *m);

/* Checks every `string` field of an encoded message of type d, nested
 * messages included: each must be valid UTF-8 (core/utf8.h) without a NUL
 * byte (protobuf-c hands strings over NUL-terminated, so a NUL would cut
 * one short silently).  Walks the wire bytes with the descriptors; unknown
 * fields are skipped.  Returns 0, or -1 with why = "<field path>: what"
 * (e.g. "request.id: invalid UTF-8 at byte 3").  Bytes that are not a
 * well-formed encoding also fail (call it after the decoder accepted them). */
int ifp_wire_check_text(const ProtobufCMessageDescriptor *d, const void *data, size_t len, char *why, size_t cap);

/* Work.mask: n_layers * ceil(d_ffn/8) bytes, layer-major, LSB-first. */
size_t ifp_wire_mask_bytes(int n_layers, int d_ffn);
void ifp_wire_mask_pack(const ifp_mask_t *m, uint8_t *buf);
/* Validates the length; *out = a new mask (NULL data/len 0 = dense). */
int ifp_wire_mask_unpack(const uint8_t *buf, size_t len, int n_layers, int d_ffn, ifp_mask_t **out, ifp_err_t *err);

#endif
