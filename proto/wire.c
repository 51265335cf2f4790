#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

int ifp_wire_recv(void *sock, ifp_frames_t *f, int flags) {
    f->n = 0;
    f->truncated = 0;
    for (;;) {
        zmq_msg_t tmp, *m = f->n < IFP_WIRE_MAX_FRAMES ? &f->part[f->n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, f->n == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(m);
            ifp_frames_close(f);
            errno = e;
            return -1;
        }
        int more = zmq_msg_more(m);
        if (m == &tmp) {
            zmq_msg_close(m);
            f->truncated = 1;
        } else {
            f->n++;
        }
        if (!more) break;
    }
    return f->n;
}

void ifp_frames_close(ifp_frames_t *f) {
    for (int i = 0; i < f->n; i++) zmq_msg_close(&f->part[i]);
    f->n = 0;
}

int ifp_wire_send(void *sock, const void *const *env, const size_t *env_len, int n_env, const ProtobufCMessage *m) {
    return ifp_wire_send_flags(sock, env, env_len, n_env, m, 0);
}

int ifp_wire_send_flags(void *sock, const void *const *env, const size_t *env_len, int n_env,
                        const ProtobufCMessage *m, int flags) {
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t stackbuf[4096];
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    protobuf_c_message_pack(m, buf);
    int rc = 0;
    for (int i = 0; i < n_env && rc >= 0; i++) rc = zmq_send(sock, env[i], env_len[i], ZMQ_SNDMORE | flags);
    if (rc >= 0) rc = zmq_send(sock, buf, len, flags);
    int e = errno;
    if (buf != stackbuf) free(buf);
    errno = e;
    return rc < 0 ? -1 : 0;
}

#define DECODER(fn, T, prefix, CASE_NOT_SET)                                         \
    T *fn(const void *data, size_t len) {                                            \
        if (len > IFP_WIRE_MAX_BODY) return NULL;                                    \
        T *m = prefix##__unpack(NULL, len, data);                                    \
        if (m && m->msg_case == CASE_NOT_SET) {                                      \
            prefix##__free_unpacked(m, NULL);                                        \
            return NULL;                                                             \
        }                                                                            \
        return m;                                                                    \
    }

DECODER(ifp_wire_client_msg, Ifp__ClientMessage, ifp__client_message, IFP__CLIENT_MESSAGE__MSG__NOT_SET)
DECODER(ifp_wire_server_msg, Ifp__ServerMessage, ifp__server_message, IFP__SERVER_MESSAGE__MSG__NOT_SET)
DECODER(ifp_wire_router_msg, Ifp__RouterToGroup, ifp__router_to_group, IFP__ROUTER_TO_GROUP__MSG__NOT_SET)
DECODER(ifp_wire_group_msg, Ifp__GroupToRouter, ifp__group_to_router, IFP__GROUP_TO_ROUTER__MSG__NOT_SET)

const char *ifp_wire_server_msg_id(const Ifp__ServerMessage *m) {
    const char *id = NULL;
    switch (m->msg_case) {
    case IFP__SERVER_MESSAGE__MSG_TOKEN: id = m->token->id; break;
    case IFP__SERVER_MESSAGE__MSG_REPLY: id = m->reply->id; break;
    case IFP__SERVER_MESSAGE__MSG_ERROR: id = m->error->id; break;
    case IFP__SERVER_MESSAGE__MSG_PONG: id = m->pong->id; break;
    case IFP__SERVER_MESSAGE__MSG_PROGRESS: id = m->progress->id; break;
    default: break;
    }
    return id ? id : "";
}

/* The packed form is core's (mask.h: the serving core reads it too). */
size_t ifp_wire_mask_bytes(int n_layers, int d_ffn) { return ifp_mask_bits_bytes(n_layers, d_ffn); }

void ifp_wire_mask_pack(const ifp_mask_t *m, uint8_t *buf) { ifp_mask_pack(m, buf); }

int ifp_wire_mask_unpack(const uint8_t *buf, size_t len, int n_layers, int d_ffn, ifp_mask_t **out, ifp_err_t *err) {
    *out = NULL;
    if (len == 0) return IFP_OK; /* dense */
    size_t want = ifp_wire_mask_bytes(n_layers, d_ffn), per = (size_t)(d_ffn + 7) / 8;
    if (len != want)
        return ifp_errf(err, IFP_EFORMAT, "mask has %zu bytes, expected %zu (%d layers x %d channels)", len, want,
                        n_layers, d_ffn);
    ifp_mask_t *m = ifp_mask_new(n_layers, d_ffn);
    if (!m) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int l = 0; l < n_layers; l++) {
        const uint8_t *b = buf + (size_t)l * per;
        int n = 0;
        for (int c = 0; c < d_ffn; c++)
            if (b[c >> 3] >> (c & 7) & 1) m->kept[l][n++] = c;
        /* bits past d_ffn in the last byte must be zero */
        if (d_ffn % 8 && (b[per - 1] >> (d_ffn % 8))) {
            ifp_mask_destroy(&m);
            return ifp_errf(err, IFP_EFORMAT, "mask layer %d has bits set past channel %d", l, d_ffn - 1);
        }
        if (n == 0) {
            ifp_mask_destroy(&m);
            return ifp_errf(err, IFP_EFORMAT, "mask layer %d keeps no channel", l);
        }
        m->n_kept[l] = n;
    }
    *out = m;
    return IFP_OK;
}

/* ---------------------------------------------------------------- text */

#define TEXT_MAX_DEPTH 8

static int read_varint(const uint8_t *p, size_t len, size_t *at, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*at >= len) return -1;
        uint8_t b = p[(*at)++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int check_text(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, const char *path,
                      int depth, char *why, size_t cap) {
    size_t at = 0;
    while (at < len) {
        uint64_t key, n;
        if (read_varint(p, len, &at, &key)) return snprintf(why, cap, "%s: truncated field key", path), -1;
        uint32_t num = (uint32_t)(key >> 3);
        int wt = (int)(key & 7);
        const ProtobufCFieldDescriptor *f = key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, num) : NULL;
        switch (wt) {
        case 0:
            if (read_varint(p, len, &at, &n)) return snprintf(why, cap, "%s: truncated varint", path), -1;
            break;
        case 1:
            if (len - at < 8) return snprintf(why, cap, "%s: truncated fixed64", path), -1;
            at += 8;
            break;
        case 5:
            if (len - at < 4) return snprintf(why, cap, "%s: truncated fixed32", path), -1;
            at += 4;
            break;
        case 2: {
            if (read_varint(p, len, &at, &n) || n > len - at)
                return snprintf(why, cap, "%s: truncated length-delimited field", path), -1;
            const uint8_t *v = p + at;
            at += (size_t)n;
            if (!f) break;
            char sub[160];
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", f->name);
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                size_t bad;
                if (ifp_utf8_check_text(v, (size_t)n, &bad))
                    return snprintf(why, cap, "%s: %s at byte %zu", sub,
                                    v[bad] == 0 ? "NUL byte" : "invalid UTF-8", bad),
                           -1;
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth >= TEXT_MAX_DEPTH) return snprintf(why, cap, "%s: nested too deeply", sub), -1;
                if (check_text(f->descriptor, v, (size_t)n, sub, depth + 1, why, cap)) return -1;
            }
            break;
        }
        default:
            return snprintf(why, cap, "%s: unsupported wire type %d", path, wt), -1;
        }
    }
    return 0;
}

int ifp_wire_check_text(const ProtobufCMessageDescriptor *d, const void *data, size_t len, char *why, size_t cap) {
    if (cap) why[0] = '\0';
    return check_text(d, data, len, "", 0, why, cap);
}
