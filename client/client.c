/* client.c — a client of ifp-router(s): open/close, submitting and
 * cancelling requests, and the poll loop that reads the routers and turns
 * what they send into the caller's events (client.h).  Where requests go
 * is failover.c's; one router's socket is conn.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "clock.h"
#include "wire.h"

#define CL_SHUTDOWN_TEXT "the router is shutting down" /* router/router.c's ERR_INTERNAL message */

ifp_client_opts_t ifp_client_default_opts(void) {
    return (ifp_client_opts_t){
        .silence_ms = 3000,
        .max_failovers = 16,
        .overload_retries = 2,
        .ping_ms = 1000,
        .heartbeat_ms = 1000,
        .heartbeat_timeout_ms = 5000,
        .hwm = -1,
        .immediate = 1,
    };
}

const char *ifp_client_why_str(ifp_client_why_t why) {
    switch (why) {
    case IFP_CLIENT_GONE: return "went away";
    case IFP_CLIENT_SILENT: return "went silent";
    case IFP_CLIENT_GAP: return "skipped tokens";
    case IFP_CLIENT_SHUTDOWN: return "is shutting down";
    case IFP_CLIENT_OVERLOADED: return "is overloaded";
    case IFP_CLIENT_TIMEOUT: return "timed out";
    case IFP_CLIENT_TOO_MANY: return "moved too often";
    case IFP_CLIENT_CANCELLED: return "cancelled";
    default: return "";
    }
}

int ifp_client_split_routers(const char *list, char *buf, size_t cap, const char **out, int max, ifp_err_t *err) {
    if (!list || strlen(list) >= cap) return ifp_errf(err, IFP_EINVAL, "the router list is empty or too long");
    memcpy(buf, list, strlen(list) + 1);
    int n = 0;
    for (char *p = buf, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = '\0';
        while (*p == ' ' || *p == '\t') p++;
        char *e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (!*p) return ifp_errf(err, IFP_EINVAL, "an empty address in the router list '%s'", list);
        if (!strstr(p, "://"))
            return ifp_errf(err, IFP_EINVAL, "expected a ZeroMQ address like tcp://HOST:PORT or ipc://PATH, got '%s'", p);
        if (strlen(p) >= IFP_CLIENT_ADDR_MAX)
            return ifp_errf(err, IFP_EINVAL, "a router address has at most %d bytes", IFP_CLIENT_ADDR_MAX - 1);
        if (n == max) return ifp_errf(err, IFP_ERANGE, "at most %d routers", max);
        out[n++] = p;
    }
    return n;
}

/* ---------------------------------------------------------------- open, close */

ifp_client_t *ifp_client_open(const char *const *routers, int n, const ifp_client_opts_t *o, ifp_err_t *err) {
    if (n < 1 || n > IFP_CLIENT_MAX_ROUTERS || !routers) {
        ifp_errf(err, IFP_EINVAL, "1 to %d routers, not %d", IFP_CLIENT_MAX_ROUTERS, n);
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!routers[k] || !strstr(routers[k], "://") || strlen(routers[k]) >= IFP_CLIENT_ADDR_MAX) {
            ifp_errf(err, IFP_EINVAL, "expected a ZeroMQ address like tcp://HOST:PORT or ipc://PATH, got '%.300s'",
                     routers[k] ? routers[k] : "(null)");
            return NULL;
        }
    ifp_client_t *cl = calloc(1, sizeof *cl);
    if (!cl) {
        ifp_errf(err, IFP_ENOMEM, "out of memory");
        return NULL;
    }
    cl->o = o ? *o : ifp_client_default_opts();
    if (cl->o.silence_ms < 0) cl->o.silence_ms = 0;
    if (cl->o.max_failovers < 0) cl->o.max_failovers = 0;
    if (cl->o.overload_retries < 0) cl->o.overload_retries = 0;
    if (cl->o.heartbeat_timeout_ms < cl->o.heartbeat_ms) cl->o.heartbeat_timeout_ms = 5 * cl->o.heartbeat_ms;
    if (cl->o.linger_ms < 0) cl->o.linger_ms = 0;
    int rc = ifp_curve_client_load(cl->o.keys, cl->o.key, cl->o.server_key, cl->o.plain, &cl->curve, err);
    if (!rc && !(cl->zctx = cl->o.zctx)) {
        cl->own_ctx = 1;
        if (!(cl->zctx = zmq_ctx_new())) rc = ifp_errf(err, IFP_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
    }
    for (int k = 0; k < n && !rc; k++, cl->n++) rc = cl_conn_open(cl, &cl->r[k], routers[k], err);
    if (rc) {
        ifp_client_close(&cl);
        return NULL;
    }
    cl->next_sweep = ifp_now_ms();
    /* the strings of o were for here only */
    cl->o.keys = cl->o.key = cl->o.server_key = cl->o.routing_id = NULL;
    return cl;
}

void ifp_client_close(ifp_client_t **pcl) {
    if (!pcl || !*pcl) return;
    ifp_client_t *cl = *pcl;
    for (int k = 0; k < IFP_CLIENT_MAX_ROUTERS; k++) cl_conn_close(&cl->r[k]);
    cl_queue_free(&cl->q);
    cl_reqs_free(&cl->reqs);
    cl_ghosts_free(cl);
    if (cl->own_ctx && cl->zctx) zmq_ctx_term(cl->zctx);
    memset(&cl->curve, 0, sizeof cl->curve); /* the secret key */
    free(cl);
    *pcl = NULL;
}

/* ---------------------------------------------------------------- requests */

int ifp_client_submit(ifp_client_t *cl, const Ifp__Request *q, void *user, ifp_err_t *err) {
    if (q && q->id && cl_reqs_find(&cl->reqs, q->id))
        return ifp_errf(err, IFP_EINVAL, "request '%.256s' is in flight already", q->id);
    cl_req_t *r;
    int rc = cl_req_new(q, user, &r, err);
    if (rc) return rc;
    if (cl_reqs_add(&cl->reqs, r)) {
        cl_req_destroy(&r);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    double now = ifp_now_ms();
    r->t_submit = r->t_event = now;
    r->state = CL_PENDING;
    cl->n_pending++;
    cl->st.submitted++;
    cl_dispatch(cl, r, now);
    return IFP_OK;
}

int ifp_client_cancel(ifp_client_t *cl, const char *id) {
    cl_req_t *r = cl_reqs_find(&cl->reqs, id);
    if (!r) return IFP_ENOTFOUND;
    r->cancelled = 1;
    if (r->state == CL_SENT)
        cl_conn_send_cancel(cl, &cl->r[r->router], id); /* if the router is gone, the move ends it */
    else
        cl_fail(cl, r, IFP_CLIENT_CANCELLED, "");
    return IFP_OK;
}

int ifp_client_abandon(ifp_client_t *cl, const char *id) {
    cl_req_t *r = cl_reqs_find(&cl->reqs, id);
    if (!r) return IFP_ENOTFOUND;
    if (r->state == CL_SENT) cl_cancel_at(cl, r->router, id);
    if (r->state == CL_PENDING) cl->n_pending--;
    cl_reqs_remove(&cl->reqs, r);
    r->state = CL_DONE;
    cl_queue_t *q = &cl->q;
    for (size_t i = 0; i < q->n; i++) { /* its queued events go too */
        cl_event_t *e = &q->e[(q->head + i) % q->cap];
        if (e->req != r) continue;
        if (e->msg) ifp__server_message__free_unpacked(e->msg, NULL);
        e->msg = NULL, e->req = NULL, e->kind = IFP_CLIENT_NONE;
    }
    r->hnext = q->dead; /* freed once the caller's event is (it may be one of r's) */
    q->dead = r;
    return IFP_OK;
}

int ifp_client_inflight(const ifp_client_t *cl) { return (int)cl->reqs.n; }

/* ---------------------------------------------------------------- what routers send */

static void on_error(ifp_client_t *cl, int k, cl_req_t *r, Ifp__ServerMessage *m, double now) {
    const Ifp__Error *e = m->error;
    if (e->code == IFP__ERROR_CODE__ERR_OVERLOADED && r->overloads < cl->o.overload_retries && !r->cancelled &&
        cl_can_move(cl, r)) {
        char d[160];
        snprintf(d, sizeof d, "retry after %u ms", e->retry_after_ms);
        ifp__server_message__free_unpacked(m, NULL);
        cl_move(cl, r, IFP_CLIENT_OVERLOADED, d, now);
        return;
    }
    if (e->code == IFP__ERROR_CODE__ERR_INTERNAL && e->message &&
        !strncmp(e->message, CL_SHUTDOWN_TEXT, strlen(CL_SHUTDOWN_TEXT)) && !r->cancelled && cl_can_move(cl, r)) {
        /* not the request's failure: the router's (its Reply that follows is stale) */
        ifp__server_message__free_unpacked(m, NULL);
        cl_move(cl, r, IFP_CLIENT_SHUTDOWN, "", now);
        return;
    }
    r->wait_reply = e->code == IFP__ERROR_CODE__ERR_DEADLINE || e->code == IFP__ERROR_CODE__ERR_INTERNAL;
    cl_emit(cl, IFP_CLIENT_ERROR, r, k, m);
}

/* One decoded message from router k (taken). */
static void on_message(ifp_client_t *cl, int k, Ifp__ServerMessage *m, double now) {
    if (cl->r[k].silent) cl_router_up(cl, k, now); /* it answers: it is back */
    if (m->msg_case == IFP__SERVER_MESSAGE__MSG_PONG) {
        if (m->pong->id && !strncmp(m->pong->id, CL_PING_PREFIX, strlen(CL_PING_PREFIX)))
            ifp__server_message__free_unpacked(m, NULL); /* our own: it served its purpose above */
        else
            cl_emit(cl, IFP_CLIENT_PONG, NULL, k, m);
        return;
    }
    const char *id = ifp_wire_server_msg_id(m);
    cl_req_t *r = cl_reqs_find(&cl->reqs, id);
    if ((!r && cl_ghost_is(cl, k, id)) || (r && (r->state != CL_SENT || r->router != k))) {
        cl->st.stale++; /* from a router the request left (or the client cancelled it there) */
        ifp__server_message__free_unpacked(m, NULL);
        return;
    }
    if (!r) {
        cl_emit(cl, IFP_CLIENT_OTHER, NULL, k, m);
        return;
    }
    r->heard = 1;
    r->t_heard = now;
    switch (m->msg_case) {
    case IFP__SERVER_MESSAGE__MSG_TOKEN: {
        uint32_t index = m->token->index;
        if (index < r->n_toks) {
            cl->st.duplicates++;
            break;
        }
        if (index > r->n_toks) {
            char d[160];
            snprintf(d, sizeof d, "token %u came where %u was due", index, r->n_toks);
            cl->st.gaps++;
            ifp__server_message__free_unpacked(m, NULL);
            cl_move(cl, r, IFP_CLIENT_GAP, d, now);
            return;
        }
        if (cl_req_push_token(r, m->token->token)) {
            ifp__server_message__free_unpacked(m, NULL);
            cl_fail(cl, r, IFP_CLIENT_CANCELLED, "out of memory");
            return;
        }
        cl_emit(cl, IFP_CLIENT_TOKEN, r, k, m);
        return;
    }
    case IFP__SERVER_MESSAGE__MSG_REPLY: cl_emit(cl, IFP_CLIENT_REPLY, r, k, m); return;
    case IFP__SERVER_MESSAGE__MSG_ERROR: on_error(cl, k, r, m, now); return;
    default: break; /* Progress: it is alive */
    }
    ifp__server_message__free_unpacked(m, NULL);
}

/* Reads what router k sent (at most CL_DRAIN_MAX messages). */
static void drain(ifp_client_t *cl, int k, double now) {
    for (int i = 0; i < CL_DRAIN_MAX; i++) {
        ifp_frames_t f;
        if (ifp_wire_recv(cl->r[k].sock, &f, ZMQ_DONTWAIT) < 0) return;
        /* [ServerMessage], or ["", ServerMessage] for a client that framed with a delimiter */
        int ok = !f.truncated && (f.n == 1 || (f.n == 2 && ifp_frame_size(&f, 0) == 0));
        Ifp__ServerMessage *m = ok ? ifp_wire_server_msg(ifp_frame_data(&f, f.n - 1), ifp_frame_size(&f, f.n - 1)) : NULL;
        ifp_frames_close(&f);
        if (m) on_message(cl, k, m, now);
        else cl->st.malformed++;
    }
}

/* One pass: monitors, then every waiting message (tokens a router sent
 * before it went away count), then what the monitors said, then the
 * timers when due. */
static void pump(ifp_client_t *cl) {
    double now = ifp_now_ms();
    int seen[IFP_CLIENT_MAX_ROUTERS];
    for (int k = 0; k < cl->n; k++) seen[k] = cl_conn_monitor(cl, &cl->r[k]);
    for (int k = 0; k < cl->n; k++) drain(cl, k, now);
    now = ifp_now_ms();
    for (int k = 0; k < cl->n; k++) {
        cl_router_t *R = &cl->r[k];
        if (seen[k] & CL_MON_REFUSED) {
            if (!R->refused) cl_emit_why(cl, IFP_CLIENT_REFUSED, NULL, k, -1, IFP_CLIENT_WHY_NONE, "");
            R->refused = 1;
        }
        if (seen[k] & (CL_MON_DOWN | CL_MON_REFUSED)) cl_router_down(cl, k, IFP_CLIENT_GONE, now);
        if (seen[k] & CL_MON_UP) cl_router_up(cl, k, now);
    }
    if (now >= cl->next_sweep) cl->next_sweep = cl_sweep(cl, now);
}

int ifp_client_pollitems(const ifp_client_t *cl, zmq_pollitem_t *items, int cap) {
    int n = 0;
    for (int k = 0; k < cl->n && n + 2 <= cap; k++) {
        items[n++] = (zmq_pollitem_t){cl->r[k].sock, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){cl->r[k].mon, 0, ZMQ_POLLIN, 0};
    }
    return n;
}

/* The timers have work: requests in flight, or a silent router to ping. */
static int timers_busy(const ifp_client_t *cl) {
    if (cl->reqs.n) return 1;
    for (int k = 0; k < cl->n; k++)
        if (cl->r[k].silent || cl->r[k].user_ping[0]) return 1;
    return 0;
}

int ifp_client_poll(ifp_client_t *cl, int timeout_ms, ifp_client_event_t *ev) {
    double end = ifp_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    zmq_pollitem_t items[2 * IFP_CLIENT_MAX_ROUTERS];
    int n_items = ifp_client_pollitems(cl, items, 2 * IFP_CLIENT_MAX_ROUTERS);
    for (;;) {
        if (cl_queue_pop(cl, ev)) return 1;
        pump(cl);
        if (cl_queue_pop(cl, ev)) return 1;
        double now = ifp_now_ms(), wake = end;
        if (now >= end) return 0;
        if (timers_busy(cl) && cl->next_sweep < wake) wake = cl->next_sweep;
        long wait = wake > now ? (long)(wake - now) + 1 : 0;
        if (zmq_poll(items, n_items, wait) < 0) {
            if (errno == EINTR) return 0;
            return IFP_EIO;
        }
    }
}

/* ---------------------------------------------------------------- routers */

int ifp_client_n_routers(const ifp_client_t *cl) { return cl->n; }

const char *ifp_client_router_addr(const ifp_client_t *cl, int k) {
    return k >= 0 && k < cl->n ? cl->r[k].addr : "";
}

int ifp_client_router_up(const ifp_client_t *cl, int k) { return k >= 0 && k < cl->n && cl_conn_up(&cl->r[k]); }

int ifp_client_all_refused(const ifp_client_t *cl) {
    for (int k = 0; k < cl->n; k++)
        if (!cl->r[k].refused) return 0;
    return 1;
}

int ifp_client_curve_on(const ifp_client_t *cl) { return cl->curve.on; }

int ifp_client_ping(ifp_client_t *cl, int k, const char *id) {
    if (k < 0 || k >= cl->n || !id || !*id || strlen(id) > IFP_CLIENT_ID_MAX) return IFP_EINVAL;
    cl_router_t *R = &cl->r[k];
    if ((R->connected || !cl->o.immediate) && !cl_conn_send_ping(cl, R, id)) return IFP_OK;
    snprintf(R->user_ping, sizeof R->user_ping, "%s", id); /* sent once it is connected */
    return IFP_OK;
}

int ifp_client_send(ifp_client_t *cl, int k, const Ifp__ClientMessage *m) {
    if (k < 0 || k >= cl->n || !m) return IFP_EINVAL;
    return cl_conn_send(cl, &cl->r[k], &m->base, 0) ? IFP_EIO : IFP_OK;
}

void *ifp_client_socket(ifp_client_t *cl, int k) { return k >= 0 && k < cl->n ? cl->r[k].sock : NULL; }

void ifp_client_stats(const ifp_client_t *cl, ifp_client_stats_t *st) { *st = cl->st; }
