/* conn.c — one router of a client: its DEALER (CURVE, heartbeats, queues),
 * the socket monitor that tells when the connection comes up, closes or is
 * refused, and sending. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client_int.h"
#include "wire.h"

/* The monitor's events: the handshake's verdict (for every mechanism, NULL
 * included) and the connection closing. */
#define CL_MON_EVENTS                                                                                        \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |        \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static unsigned serial_next(void) {
    static unsigned serial;
    return __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
}

static int setopt_int(void *s, int opt, int v) { return zmq_setsockopt(s, opt, &v, sizeof v); }

int cl_conn_open(ifp_client_t *cl, cl_router_t *r, const char *addr, ifp_err_t *err) {
    const ifp_client_opts_t *o = &cl->o;
    memset(r, 0, sizeof *r);
    snprintf(r->addr, sizeof r->addr, "%s", addr);
    if (!(r->sock = zmq_socket(cl->zctx, ZMQ_DEALER))) return ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(errno));
    int bad = setopt_int(r->sock, ZMQ_LINGER, o->linger_ms) || setopt_int(r->sock, ZMQ_IMMEDIATE, o->immediate ? 1 : 0);
    if (!bad && o->hwm >= 0)
        bad = setopt_int(r->sock, ZMQ_SNDHWM, o->hwm) || setopt_int(r->sock, ZMQ_RCVHWM, o->hwm);
    if (!bad && o->heartbeat_ms > 0)
        bad = setopt_int(r->sock, ZMQ_HEARTBEAT_IVL, o->heartbeat_ms) ||
              setopt_int(r->sock, ZMQ_HEARTBEAT_TIMEOUT, o->heartbeat_timeout_ms);
    if (!bad && o->routing_id) bad = zmq_setsockopt(r->sock, ZMQ_ROUTING_ID, o->routing_id, strlen(o->routing_id));
    if (bad) return ifp_errf(err, IFP_EIO, "%s: socket options: %s", addr, zmq_strerror(errno));
    int rc = ifp_curve_client(r->sock, &cl->curve, err);
    if (rc) return rc;
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://ifp-client-mon-%p-%u", (void *)r, serial_next());
    if (zmq_socket_monitor(r->sock, ep, CL_MON_EVENTS) != 0)
        return ifp_errf(err, IFP_EIO, "zmq_socket_monitor: %s", zmq_strerror(errno));
    if (!(r->mon = zmq_socket(cl->zctx, ZMQ_PAIR)) || setopt_int(r->mon, ZMQ_LINGER, 0) || zmq_connect(r->mon, ep) != 0)
        return ifp_errf(err, IFP_EIO, "socket monitor: %s", zmq_strerror(errno));
    if (zmq_connect(r->sock, addr) != 0) return ifp_errf(err, IFP_EINVAL, "%s: %s", addr, zmq_strerror(errno));
    return IFP_OK;
}

void cl_conn_close(cl_router_t *r) {
    if (r->sock) {
        zmq_socket_monitor(r->sock, NULL, 0);
        zmq_close(r->sock);
    }
    if (r->mon) zmq_close(r->mon);
    r->sock = r->mon = NULL;
}

/* Words a refused handshake for a user.  security/curve.c holds those words
 * and reads them off a monitor socket (ifp_handshake_poll): it is handed
 * this one event through an inproc pair, so that the reasons stay in one
 * place. */
static void explain(ifp_client_t *cl, cl_router_t *r, uint16_t ev, uint32_t value) {
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://ifp-client-why-%p-%u", (void *)r, serial_next());
    void *a = zmq_socket(cl->zctx, ZMQ_PAIR), *b = zmq_socket(cl->zctx, ZMQ_PAIR);
    ifp_handshake_t h;
    memset(&h, 0, sizeof h);
    if (a && b && !setopt_int(a, ZMQ_LINGER, 0) && !setopt_int(b, ZMQ_LINGER, 0) && !zmq_bind(a, ep) &&
        !zmq_connect(b, ep)) {
        uint8_t frame[6];
        memcpy(frame, &ev, 2);
        memcpy(frame + 2, &value, 4);
        if (zmq_send(a, frame, sizeof frame, 0) == (int)sizeof frame) {
            h.mon = b;
            ifp_handshake_poll(&h, &cl->curve, 1000);
            h.mon = NULL;
        }
    }
    if (h.state < 0)
        snprintf(r->why, sizeof r->why, "%s", h.why);
    else
        snprintf(r->why, sizeof r->why, "the handshake with the router failed (event 0x%x, %u)", (unsigned)ev,
                 (unsigned)value);
    if (a) zmq_close(a);
    if (b) zmq_close(b);
}

int cl_conn_monitor(ifp_client_t *cl, cl_router_t *r) {
    int seen = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, r->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        uint16_t ev = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&m) >= 6) {
            memcpy(&ev, zmq_msg_data(&m), 2);
            memcpy(&value, (const char *)zmq_msg_data(&m) + 2, 4);
        }
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, r->mon, ZMQ_DONTWAIT) < 0) more = 0;
            else more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        /* DOWN stays once seen (the requests of that connection are lost
         * even if a new one is up already); UP and REFUSED say how the
         * last handshake went */
        if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            seen = (seen & ~CL_MON_REFUSED) | CL_MON_UP;
        } else if (ev == ZMQ_EVENT_DISCONNECTED) {
            seen = (seen & ~CL_MON_UP) | CL_MON_DOWN;
        } else if (ev) {
            if (!r->refused && !(seen & CL_MON_REFUSED)) explain(cl, r, ev, value); /* (its retries fail alike) */
            seen = (seen & ~CL_MON_UP) | CL_MON_REFUSED;
        }
    }
    return seen;
}

int cl_conn_send(ifp_client_t *cl, cl_router_t *r, const ProtobufCMessage *m, int flags) {
    (void)cl;
    return ifp_wire_send_flags(r->sock, NULL, NULL, 0, m, flags);
}

int cl_conn_send_cancel(ifp_client_t *cl, cl_router_t *r, const char *id) {
    Ifp__Cancel c = IFP__CANCEL__INIT;
    c.id = (char *)id;
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_CANCEL;
    m.cancel = &c;
    return cl_conn_send(cl, r, &m.base, ZMQ_DONTWAIT);
}

int cl_conn_send_ping(ifp_client_t *cl, cl_router_t *r, const char *id) {
    Ifp__Ping p = IFP__PING__INIT;
    p.id = (char *)id;
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_PING;
    m.ping = &p;
    return cl_conn_send(cl, r, &m.base, ZMQ_DONTWAIT);
}
