#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

size_t ifp_wire_mask_bytes(int n_layers, int d_ffn) { return (size_t)n_layers * (size_t)((d_ffn + 7) / 8); }

void ifp_wire_mask_pack(const ifp_mask_t *m, uint8_t *buf) {
    size_t per = (size_t)(m->d_ffn + 7) / 8;
    memset(buf, 0, per * (size_t)m->n_layers);
    for (int l = 0; l < m->n_layers; l++)
        for (int j = 0; j < m->n_kept[l]; j++) {
            int c = m->kept[l][j];
            buf[(size_t)l * per + (size_t)(c >> 3)] |= (uint8_t)(1u << (c & 7));
        }
}

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
