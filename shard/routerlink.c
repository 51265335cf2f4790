#include "routerlink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "wire.h"
#include "clock.h"

/* ---------------------------------------------------------------- socket */

int sh_routerlink_open(sh_routerlink_t *l, const char *endpoint, const char *identity, ifp_err_t *err) {
    memset(l, 0, sizeof *l);
    l->opened_ms = ifp_now_ms();
    l->rl_drop.every_ms = 10000;
    int one = 1, hwm = 100000;
    if (!(l->zctx = zmq_ctx_new())) return ifp_errf(err, IFP_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
    zmq_ctx_set(l->zctx, ZMQ_BLOCKY, 0);
    if (!(l->sock = zmq_socket(l->zctx, ZMQ_DEALER))) {
        int e = errno;
        sh_routerlink_close(l, 0);
        return ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(e));
    }
    zmq_setsockopt(l->sock, ZMQ_ROUTING_ID, identity, strlen(identity));
    zmq_setsockopt(l->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(l->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(l->sock, endpoint)) {
        int e = errno;
        sh_routerlink_close(l, 0);
        return ifp_errf(err, IFP_EINVAL, "cannot connect to the router backend %s: %s", endpoint, zmq_strerror(e));
    }
    return IFP_OK;
}

void sh_routerlink_close(sh_routerlink_t *l, int linger_ms) {
    if (l->sock) {
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(l->sock);
    }
    if (l->zctx) zmq_ctx_term(l->zctx);
    free(l->buf);
    l->sock = l->zctx = NULL;
    l->buf = NULL;
    l->cap = 0;
}

int sh_routerlink_send(sh_routerlink_t *l, const ProtobufCMessage *m) {
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > l->cap) {
        size_t cap = len < 4096 ? 4096 : len * 2;
        uint8_t *b = realloc(l->buf, cap);
        if (!b) {
            l->send_drops++;
            sh_log_limited(&l->rl_drop, "out of memory packing a message for the router: dropped");
            return -1;
        }
        l->buf = b;
        l->cap = cap;
    }
    protobuf_c_message_pack(m, l->buf);
    for (;;) {
        if (zmq_send(l->sock, l->buf, len, ZMQ_DONTWAIT) >= 0) return l->sent++, 0;
        if (errno != EINTR) break;
    }
    l->send_drops++;
    if (!l->sent && ifp_now_ms() - l->opened_ms < 5000) return -1;
    sh_log_limited(&l->rl_drop, "message to the router dropped (%s); %lu dropped so far",
                   errno == EAGAIN ? "router not connected or not reading" : zmq_strerror(errno), l->send_drops);
    return -1;
}

int sh_routerlink_work_error(sh_routerlink_t *l, uint64_t rid, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Ifp__WorkError we = IFP__WORK_ERROR__INIT;
    we.rid = rid;
    we.message = msg;
    Ifp__GroupToRouter out = IFP__GROUP_TO_ROUTER__INIT;
    out.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    out.error = &we;
    sh_vlog("work error for rid %llu: %s", (unsigned long long)rid, msg);
    return sh_routerlink_send(l, &out.base);
}

Ifp__RouterToGroup *sh_routerlink_recv(sh_routerlink_t *l, int *waiting) {
    ifp_frames_t f;
    *waiting = 0;
    for (;;) {
        if (ifp_wire_recv(l->sock, &f, ZMQ_DONTWAIT) >= 0) break;
        if (errno != EINTR) return NULL;
    }
    *waiting = 1;
    Ifp__RouterToGroup *m = NULL;
    const char *why = NULL;
    if (f.n != 1 || f.truncated) why = "expected exactly one frame";
    else if (!(m = ifp_wire_router_msg(ifp_frame_data(&f, 0), ifp_frame_size(&f, 0))))
        why = "not a RouterToGroup protobuf (or an empty / unknown message type)";
    if (why) {
        l->malformed++;
        sh_log_limited(&l->rl_malformed, "malformed message from the router (%d frame%s, %zu bytes): %s; %lu so far",
                       f.n, f.n == 1 ? "" : "s", f.n ? ifp_frame_size(&f, f.n - 1) : (size_t)0, why, l->malformed);
    }
    ifp_frames_close(&f);
    return m;
}
