#include "routerlink.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "ifp.pb-c.h"
#include "wire.h"

#define SH_RECONNECT_MS 20
#define SH_RECONNECT_MAX_MS 1000

/* Preallocated protobuf structs of one TokenBatch. */
struct sh_routerlink_scratch {
    Ifp__GroupToken *gt;   /* [max_tokens] */
    Ifp__GroupToken **gtp; /* [max_tokens] */
    Ifp__Debug *dbg;       /* [max_tokens] */
};

/* Watches l->sock's connection through a socket monitor (a PAIR on
 * inproc, set up before zmq_connect): handshakes and disconnections. */
static int watch_open(sh_routerlink_t *l, void *zctx, ifp_err_t *err) {
    static unsigned serial;
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://sh-routerlink-%d-%u", (int)getpid(),
             __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor(l->sock, ep, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0)
        return ifp_errf(err, IFP_EIO, "zmq_socket_monitor: %s", zmq_strerror(errno));
    if (!(l->mon = zmq_socket(zctx, ZMQ_PAIR)) || zmq_connect(l->mon, ep) != 0)
        return ifp_errf(err, IFP_EIO, "socket monitor: %s", zmq_strerror(errno));
    return IFP_OK;
}

int sh_routerlink_open(sh_routerlink_t *l, void *zctx, const char *endpoint, const char *identity, int max_tokens,
                       int watch, const ifp_curve_t *curve, ifp_err_t *err) {
    memset(l, 0, sizeof *l);
    l->opened_ms = l->since_ms = ifp_now_ms();
    l->rl_drop.every_ms = 10000;
    l->rl_state.every_ms = 10000;
    l->max_tokens = max_tokens;
    snprintf(l->endpoint, sizeof l->endpoint, "%s", endpoint);
    sh_routerlink_scratch_t *s = l->scr = calloc(1, sizeof *l->scr);
    size_t n = (size_t)max_tokens;
    if (!s || !(s->gt = calloc(n, sizeof *s->gt)) || !(s->gtp = calloc(n, sizeof *s->gtp)) ||
        !(s->dbg = calloc(n, sizeof *s->dbg))) {
        sh_routerlink_close(l, 0);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    int one = 1, hwm = 100000;
    if (!(l->sock = zmq_socket(zctx, ZMQ_DEALER))) {
        int e = errno;
        sh_routerlink_close(l, 0);
        return ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(e));
    }
    /* reconnect quickly to a restarted router (20 ms, backing off to 1 s
     * while it stays away) */
    int ivl = SH_RECONNECT_MS, ivl_max = SH_RECONNECT_MAX_MS;
    zmq_setsockopt(l->sock, ZMQ_ROUTING_ID, identity, strlen(identity));
    zmq_setsockopt(l->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(l->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(l->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(l->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    /* ZeroMQ heartbeats: a router that vanished without closing the
     * connection (its host gone) is noticed, and the link reconnects */
    int hb_ivl = 2000, hb_timeout = 10000;
    zmq_setsockopt(l->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
    zmq_setsockopt(l->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout);
    int rc = ifp_curve_client(l->sock, curve, err);
    if (!rc && watch) rc = watch_open(l, zctx, err);
    if (rc) {
        sh_routerlink_close(l, 0);
        return err ? err->code : IFP_EIO;
    }
    if (zmq_connect(l->sock, endpoint)) {
        int e = errno;
        sh_routerlink_close(l, 0);
        return ifp_errf(err, IFP_EINVAL, "cannot connect to the router backend %s: %s", endpoint, zmq_strerror(e));
    }
    return IFP_OK;
}

void sh_routerlink_close(sh_routerlink_t *l, int linger_ms) {
    if (l->mon) {
        zmq_socket_monitor(l->sock, NULL, 0);
        int zero = 0;
        zmq_setsockopt(l->mon, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(l->mon);
    }
    if (l->sock) {
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(l->sock);
    }
    if (l->scr) {
        free(l->scr->gt);
        free(l->scr->gtp);
        free(l->scr->dbg);
        free(l->scr);
    }
    free(l->buf);
    l->sock = l->mon = NULL;
    l->scr = NULL;
    l->buf = NULL;
    l->cap = 0;
}

int sh_routerlink_watch(sh_routerlink_t *l, double now_ms) {
    int changes = 0;
    while (l->mon) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, l->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            if (errno == EINTR) continue;
            break;
        }
        uint16_t id = 0;
        if (zmq_msg_size(&ev) >= 6) memcpy(&id, zmq_msg_data(&ev), 2);
        int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        while (more) { /* the endpoint frame */
            zmq_msg_t addr;
            zmq_msg_init(&addr);
            if (zmq_msg_recv(&addr, l->mon, 0) < 0) more = 0;
            else more = zmq_msg_more(&addr);
            zmq_msg_close(&addr);
        }
        int up = id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? 1 : id == ZMQ_EVENT_DISCONNECTED ? 0 : l->up;
        if (up == l->up) continue;
        l->up = up;
        l->since_ms = now_ms;
        l->ups += up;
        changes++;
        if (up) {
            if (l->ups > 1) sh_log_limited(&l->rl_state, "connected to the router at %s again", l->endpoint);
        } else {
            sh_log_limited(&l->rl_state, "lost the connection to the router at %s; reconnecting", l->endpoint);
        }
    }
    return changes;
}

/* ---------------------------------------------------------------- sending */

static int send_msg(sh_routerlink_t *l, const ProtobufCMessage *m) {
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
    sh_log_limited(&l->rl_drop, "message to the router at %s dropped (%s); %lu dropped so far", l->endpoint,
                   errno == EAGAIN ? "router not connected or not reading" : zmq_strerror(errno), l->send_drops);
    return -1;
}

int sh_routerlink_work_error(sh_routerlink_t *l, uint64_t rid, int busy, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Ifp__WorkError we = IFP__WORK_ERROR__INIT;
    we.rid = rid;
    we.message = msg;
    we.busy = busy != 0;
    Ifp__GroupToRouter out = IFP__GROUP_TO_ROUTER__INIT;
    out.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    out.error = &we;
    sh_vlog("work error for rid %llu to the router at %s: %s", (unsigned long long)rid, l->endpoint, msg);
    return send_msg(l, &out.base);
}

int sh_routerlink_heartbeat(sh_routerlink_t *l, const sh_heartbeat_t *h) {
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = (char *)h->group;
    hb.cluster = h->cluster;
    hb.stages = (uint32_t)h->stages;
    hb.slots = (uint32_t)h->slots;
    hb.free_slots = (uint32_t)h->free_slots;
    hb.queued_tokens = h->queued_tokens;
    hb.kv_free = h->kv_free;
    hb.incarnation = h->incarnation;
    hb.draining = h->draining != 0;
    hb.n_running = (size_t)h->n_running;
    hb.running = (uint64_t *)h->running;
    hb.router_epoch = h->router_epoch;
    hb.work_seen = h->work_seen;
    hb.tokens_generated = h->tokens_generated;
    hb.requests_done = h->requests_done;
    /* the finished list is bounded by the configuration (4 × slots); a
     * heartbeat is not a hot path */
    int nf = h->n_finished > 0 ? h->n_finished : 0;
    Ifp__Finished *fin = nf ? malloc(sizeof *fin * (size_t)nf) : NULL;
    Ifp__Finished **finp = nf ? malloc(sizeof *finp * (size_t)nf) : NULL;
    if (!fin || !finp) nf = 0; /* out of memory: the list is left out this time */
    for (int i = 0; i < nf; i++) {
        ifp__finished__init(&fin[i]);
        fin[i].rid = h->finished[i].rid;
        fin[i].tokens = h->finished[i].tokens;
        finp[i] = &fin[i];
    }
    hb.n_finished = (size_t)nf;
    hb.finished = finp;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    int rc = send_msg(l, &m.base);
    free(fin);
    free(finp);
    return rc;
}

int sh_routerlink_tokens(sh_routerlink_t *l, const char *group, const sh_token_t *t, int n) {
    if (n <= 0) return 0;
    if (n > l->max_tokens) n = l->max_tokens; /* cannot happen: the sampler has max_rows rows */
    sh_routerlink_scratch_t *s = l->scr;
    for (int i = 0; i < n; i++) {
        Ifp__GroupToken *g = &s->gt[i];
        ifp__group_token__init(g);
        g->rid = t[i].rid;
        g->index = t[i].index;
        g->token = t[i].token;
        g->logprob = t[i].logprob;
        g->finish = t[i].finish == SH_FINISH_EOS      ? IFP__FINISH_REASON__FINISH_EOS
                    : t[i].finish == SH_FINISH_LENGTH ? IFP__FINISH_REASON__FINISH_LENGTH
                                                      : IFP__FINISH_REASON__FINISH_NONE;
        if (t[i].n_head > 0) {
            Ifp__Debug *d = &s->dbg[i];
            ifp__debug__init(d);
            d->n_logits_last_prompt = (size_t)t[i].n_head;
            d->logits_last_prompt = (float *)t[i].head;
            d->argmax_last_prompt = t[i].argmax;
            g->debug = d;
        }
        s->gtp[i] = g;
    }
    Ifp__TokenBatch tb = IFP__TOKEN_BATCH__INIT;
    tb.group = (char *)group;
    tb.n_tokens = (size_t)n;
    tb.tokens = s->gtp;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
    m.tokens = &tb;
    return send_msg(l, &m.base);
}

/* ---------------------------------------------------------------- receiving */

void sh_router_msg_clear(sh_router_msg_t *m) {
    sh_work_destroy(&m->work);
    memset(m, 0, sizeof *m);
}

/* The one conversion of a Work into the shard's own struct (unchecked). */
static sh_work_t *work_from_proto(const Ifp__Work *p) {
    if (p->n_prompt > INT_MAX / 8) return NULL; /* cannot decode from a bounded frame */
    sh_work_t *w = sh_work_new((int)p->n_prompt, p->mask.len);
    if (!w) return NULL;
    w->rid = p->rid;
    if (p->n_prompt) memcpy(w->prompt, p->prompt, sizeof(int32_t) * p->n_prompt);
    w->max_new = p->max_new;
    w->first_index = p->first_index;
    w->sp.temperature = p->temperature;
    w->sp.top_p = p->top_p;
    w->sp.top_k = p->top_k > INT_MAX ? INT_MAX : (int)p->top_k;
    w->sp.seed = p->seed;
    w->eos = p->eos;
    w->debug = p->debug;
    if (p->mask.len) memcpy(w->mask, p->mask.data, p->mask.len);
    return w;
}

static int convert(const Ifp__RouterToGroup *p, sh_router_msg_t *m, const char **why) {
    switch (p->msg_case) {
    case IFP__ROUTER_TO_GROUP__MSG_WORK:
        m->kind = SH_ROUTER_WORK;
        m->router_epoch = p->work->router_epoch;
        m->seq = p->work->seq;
        if (!(m->work = work_from_proto(p->work))) return *why = "out of memory for a Work", -1;
        return 0;
    case IFP__ROUTER_TO_GROUP__MSG_CANCEL:
        m->kind = SH_ROUTER_CANCEL;
        m->rid = p->cancel->rid;
        return 0;
    case IFP__ROUTER_TO_GROUP__MSG_CONTROL:
        m->kind = SH_ROUTER_CONTROL;
        m->control_raw = (int)p->control->kind;
        m->control = p->control->kind == IFP__CONTROL__KIND__SHUTDOWN       ? SH_CONTROL_SHUTDOWN
                     : p->control->kind == IFP__CONTROL__KIND__LOAD_CLUSTER ? SH_CONTROL_LOAD_CLUSTER
                     : p->control->kind == IFP__CONTROL__KIND__DRAIN        ? SH_CONTROL_DRAIN
                                                                             : SH_CONTROL_UNKNOWN;
        m->cluster = p->control->cluster;
        return 0;
    default:
        return *why = "an empty or unknown message type", -1;
    }
}

int sh_routerlink_recv(sh_routerlink_t *l, sh_router_msg_t *m) {
    ifp_frames_t f;
    memset(m, 0, sizeof *m);
    for (;;) {
        if (ifp_wire_recv(l->sock, &f, ZMQ_DONTWAIT) >= 0) break;
        if (errno != EINTR) return 0;
    }
    Ifp__RouterToGroup *p = NULL;
    const char *why = NULL;
    if (f.n != 1 || f.truncated) why = "expected exactly one frame";
    else if (!(p = ifp_wire_router_msg(ifp_frame_data(&f, 0), ifp_frame_size(&f, 0))))
        why = "not a RouterToGroup protobuf (or an empty / unknown message type)";
    else if (convert(p, m, &why))
        sh_router_msg_clear(m);
    if (why) {
        l->malformed++;
        sh_log_limited(&l->rl_malformed, "malformed message from the router (%d frame%s, %zu bytes): %s; %lu so far",
                       f.n, f.n == 1 ? "" : "s", f.n ? ifp_frame_size(&f, f.n - 1) : (size_t)0, why, l->malformed);
    }
    if (p) ifp__router_to_group__free_unpacked(p, NULL);
    ifp_frames_close(&f);
    return why ? -1 : 1;
}
