/* frontend.c — the router's side of its clients: ClientMessages in (size,
 * framing, decoding, text and field checks, admission) and everything that
 * goes back (TokenEvent, Progress, Reply, Error, Pong).  Requests are
 * flight.c's business once admitted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* ---------------------------------------------------------------- sending */

/* Where a message came from and its answers go: a ZeroMQ client of the
 * frontend, or the HTTP gateway's bridge (router/http.h) on behalf of an
 * HTTP client. */
typedef struct {
    void *sock;          /* R->front or R->hsock */
    const void *ident;   /* the ROUTER routing id */
    size_t len;
    int delim;           /* REQ framing: an empty delimiter frame */
    int client;          /* client key index (router/zap.h), -1: none */
    int via_http;
    const char *key_name; /* for logs ("" = none) */
} peer_t;

static void *client_sock(const rt_router_t *R, const rt_req_t *r) { return r->via_http ? R->hsock : R->front; }

/* Returns 0, or -1 with errno (EHOSTUNREACH: the client is gone). */
static int send_server(rt_router_t *R, const peer_t *p, Ifp__ServerMessage *m) {
    if (rt_send(p->sock, p->ident, p->len, p->delim, &m->base) == 0) return 0;
    int e = errno;
    if (e == EHOSTUNREACH) R->st.client_gone++;
    else R->st.send_failed++;
    rt_log(R, RT_LOG_SEND, "cannot send to a client: %s", e == EHOSTUNREACH ? "it is gone" : zmq_strerror(e));
    errno = e;
    return -1;
}

static void send_error(rt_router_t *R, const peer_t *p, const char *id, int code, const char *msg,
                       uint32_t retry_after_ms) {
    Ifp__Error e = IFP__ERROR__INIT;
    e.id = (char *)(id ? id : "");
    e.code = (Ifp__ErrorCode)code;
    e.message = (char *)(msg ? msg : "");
    e.retry_after_ms = retry_after_ms;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    send_server(R, p, &m);
}

static peer_t req_peer(const rt_router_t *R, const rt_req_t *r) {
    return (peer_t){client_sock(R, r), r->ident, (size_t)r->ident_len, r->delim, r->client - 1, r->via_http,
                    r->key_name};
}

void rt_client_error(rt_router_t *R, const rt_req_t *r, int code, const char *msg, uint32_t retry_after_ms) {
    peer_t p = req_peer(R, r);
    send_error(R, &p, r->id, code, msg, retry_after_ms);
}

int rt_client_stream(rt_router_t *R, rt_req_t *r) {
    if (!r->stream) return 0;
    while (r->n_streamed < r->n_tokens) {
        int i = r->n_streamed;
        const char *text;
        size_t n = rt_req_stream_text(r, &text);
        Ifp__TokenEvent ev = IFP__TOKEN_EVENT__INIT;
        ev.id = r->id;
        ev.index = (uint32_t)i;
        ev.token = r->tokens[i];
        ev.text.data = (uint8_t *)text;
        ev.text.len = n;
        ev.logprob = r->logprobs[i];
        Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
        m.msg_case = IFP__SERVER_MESSAGE__MSG_TOKEN;
        m.token = &ev;
        if (rt_send(client_sock(R, r), r->ident, (size_t)r->ident_len, r->delim, &m.base) != 0) {
            if (errno == EHOSTUNREACH) {
                R->st.client_gone++;
                return -1;
            }
            R->st.stream_deferred++; /* a full client queue: sent again by the keep-alive sweep */
            return 0;
        }
        rt_req_stream_advance(r, n);
        r->n_streamed++;
        r->t_last_sent = ifp_now_ms();
    }
    return 0;
}

int rt_client_progress(rt_router_t *R, rt_req_t *r) {
    Ifp__Progress p = IFP__PROGRESS__INIT;
    p.id = r->id;
    p.tokens = (uint32_t)r->n_tokens;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PROGRESS;
    m.progress = &p;
    if (rt_send(client_sock(R, r), r->ident, (size_t)r->ident_len, r->delim, &m.base) == 0) {
        r->t_last_sent = ifp_now_ms();
        return 0;
    }
    if (errno == EHOSTUNREACH) {
        R->st.client_gone++;
        return -1;
    }
    return 0; /* a full queue: the client is there, just slow */
}

static double ms_since(double t0, double t1) { return t0 > 0 && t1 >= t0 ? t1 - t0 : 0; }

void rt_client_reply(rt_router_t *R, const rt_req_t *r, double now) {
    rt_group_t *g = rt_balancer_group(R->bal, r->last_group);
    Ifp__Usage usage = IFP__USAGE__INIT;
    usage.prompt_tokens = (uint32_t)r->n_prompt;
    usage.completion_tokens = (uint32_t)r->n_tokens;
    Ifp__Timings tm = IFP__TIMINGS__INIT;
    tm.queue_ms = ms_since(r->t_arrival, r->t_dispatch);
    tm.predictor_ms = r->predictor_ms;
    tm.ttft_ms = ms_since(r->t_arrival, r->t_first);
    tm.total_ms = ms_since(r->t_arrival, now);
    Ifp__Reply rep = IFP__REPLY__INIT;
    rep.id = r->id;
    rep.n_prompt_tokens = (size_t)r->n_prompt;
    rep.prompt_tokens = r->prompt;
    rep.n_tokens = (size_t)r->n_tokens;
    rep.tokens = r->tokens;
    rep.text.data = (uint8_t *)r->text;
    rep.text.len = r->text_len;
    rep.finish = (Ifp__FinishReason)r->finish;
    rep.usage = &usage;
    rep.timings = &tm;
    rep.group = g ? g->name : "";
    rep.cluster = g ? g->cluster : IFP_CLUSTER_DENSE;
    rep.coverage = r->coverage;
    rep.n_replays = (size_t)r->n_replays;
    rep.replays = (uint32_t *)r->replays;
    Ifp__Debug dbg = IFP__DEBUG__INIT;
    if (r->debug && r->n_head) {
        dbg.n_logits_last_prompt = (size_t)r->n_head;
        dbg.logits_last_prompt = (float *)r->head;
        dbg.argmax_last_prompt = r->argmax;
        rep.debug = &dbg;
    }
    if (r->want_logprobs) {
        rep.n_logprobs = (size_t)r->n_tokens;
        rep.logprobs = r->logprobs;
    }
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_REPLY;
    m.reply = &rep;
    peer_t p = req_peer(R, r);
    send_server(R, &p, &m);
}

uint32_t rt_retry_after(const rt_router_t *R) {
    double ms = R->svc_ms > 0 ? R->svc_ms : 1000;
    return (uint32_t)(ms < 100 ? 100 : ms > 60000 ? 60000 : ms);
}

/* ---------------------------------------------------------------- status */

static void on_ping(rt_router_t *R, const peer_t *peer, const Ifp__Ping *p) {
    R->st.pings++;
    int n = rt_balancer_n_groups(R->bal);
    Ifp__GroupStatus gs[RT_MAX_GROUPS], *gp[RT_MAX_GROUPS];
    double now = ifp_now_ms();
    for (int i = 0; i < n; i++) {
        const rt_group_t *G = rt_balancer_group(R->bal, i);
        ifp__group_status__init(&gs[i]);
        gs[i].name = (char *)G->name;
        gs[i].alive = G->alive;
        gs[i].seen = G->seen;
        gs[i].cluster = G->cluster;
        gs[i].slots = (uint32_t)G->cfg_slots;
        gs[i].free_slots = (uint32_t)(G->alive ? rt_balancer_free_slots(R->bal, i) : 0);
        gs[i].running = (uint32_t)rt_reqtable_group_count(R->reqs, i);
        gs[i].group_running = (uint32_t)G->hb_running;
        gs[i].incarnation = G->incarnation;
        gs[i].tokens_generated = G->tokens_generated;
        gs[i].requests_done = G->requests_done;
        gs[i].heartbeat_age_ms = G->seen ? now - G->last_hb : -1;
        gs[i].deaths = G->n_deaths;
        gp[i] = &gs[i];
    }
    static const char *const names[] = {
#define RT_STAT_NAME(name) #name,
        RT_STATS(RT_STAT_NAME)
#undef RT_STAT_NAME
    };
    const uint64_t *values = (const uint64_t *)&R->st;
    enum { N_STATS = sizeof names / sizeof *names };
    Ifp__Counter cs[N_STATS], *cp[N_STATS];
    for (int i = 0; i < N_STATS; i++) {
        ifp__counter__init(&cs[i]);
        cs[i].name = (char *)names[i];
        cs[i].value = values[i];
        cp[i] = &cs[i];
    }
    Ifp__Pong pong = IFP__PONG__INIT;
    pong.id = p->id ? p->id : "";
    pong.inflight = (uint32_t)rt_reqtable_count(R->reqs);
    pong.queued = (uint32_t)rt_reqtable_count_state(R->reqs, RT_REQ_QUEUED);
    pong.predicting = (uint32_t)rt_reqtable_count_state(R->reqs, RT_REQ_PREDICTING);
    pong.n_groups = (size_t)n;
    pong.groups = gp;
    pong.n_counters = N_STATS;
    pong.counters = cp;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_PONG;
    m.pong = &pong;
    send_server(R, peer, &m);
}

/* ---------------------------------------------------------------- requests */

static void bad_request(rt_router_t *R, const peer_t *p, const char *id, const char *msg) {
    R->st.bad_requests++;
    send_error(R, p, id, IFP__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
}

/* Requests may wait for the predictor or for a slot; beyond queue_max of
 * them (plus the slots free right now), new ones are refused. */
int rt_admission_full(const rt_router_t *R) {
    int waiting = rt_reqtable_count_state(R->reqs, RT_REQ_PREDICTING) + rt_reqtable_count_state(R->reqs, RT_REQ_QUEUED);
    return waiting >= R->cfg.queue_max + rt_balancer_total_free(R->bal);
}

static void on_request(rt_router_t *R, const peer_t *p, const Ifp__Request *q) {
    const void *ident = p->ident;
    size_t ilen = p->len;
    int client = p->client;
    double t0 = ifp_now_ms();
    char msg[IFP_ERR_MSG_LEN];
    const char *id = q->id ? q->id : "";
    R->st.requests++;
    if (rt_admit_check(q, &R->lim, msg, sizeof msg)) {
        bad_request(R, p, id, msg);
        return;
    }
    if (rt_reqtable_find_client(R->reqs, ident, (int)ilen, id)) {
        snprintf(msg, sizeof msg, "id: \"%.200s\" is already in flight on this connection", id);
        bad_request(R, p, id, msg);
        return;
    }
    if (rt_admission_full(R)) {
        R->st.overloaded++;
        snprintf(msg, sizeof msg, "overloaded: %d requests wait for the predictor or a group slot (queue_max %d)",
                 rt_reqtable_count_state(R->reqs, RT_REQ_PREDICTING) + rt_reqtable_count_state(R->reqs, RT_REQ_QUEUED),
                 R->cfg.queue_max);
        send_error(R, p, id, IFP__ERROR_CODE__ERR_OVERLOADED, msg, rt_retry_after(R));
        return;
    }
    const rt_client_t *cl = client >= 0 ? rt_zap_client(R->zap, client) : NULL;
    if (cl && cl->max_inflight && rt_reqtable_client_count(R->reqs, client) >= cl->max_inflight) {
        R->st.overloaded++;
        R->st.client_limited++;
        snprintf(msg, sizeof msg, "overloaded: client %s has %d requests in flight (its max_inflight)", cl->name,
                 cl->max_inflight);
        send_error(R, p, id, IFP__ERROR_CODE__ERR_OVERLOADED, msg, rt_retry_after(R));
        return;
    }
    rt_req_t *r = rt_reqtable_add(R->reqs, ident, (int)ilen, id);
    rt_job_t *job = NULL;
    if (r && client >= 0 && rt_reqtable_set_client(R->reqs, r, client)) goto oom;
    int given = q->n_prompt_tokens > 0, mode = (int)q->mask_mode;
    rt_taskmask_t tm;
    int cached = mode == IFP__MASK_MODE__MASK_TASK && rt_taskcache_get(R->tasks, q->task, &tm);
    int need_mask = mode == IFP__MASK_MODE__MASK_INPUT || (mode == IFP__MASK_MODE__MASK_TASK && !cached);
    if (!r) goto oom;
    r->delim = p->delim;
    r->via_http = p->via_http;
    snprintf(r->key_name, sizeof r->key_name, "%s", p->key_name ? p->key_name : "");
    r->t_arrival = t0;
    r->temperature = q->temperature;
    r->top_p = q->top_p;
    r->top_k = q->top_k >= (uint32_t)R->lim.vocab ? 0 : q->top_k; /* >= vocab: off */
    r->seed = q->seed;
    r->stream = q->stream;
    r->debug = q->debug;
    r->ignore_eos = q->ignore_eos;
    r->want_logprobs = q->logprobs;
    r->max_tokens_req = q->max_tokens;
    r->deadline = q->deadline_ms ? t0 + q->deadline_ms : 0;
    if (r->deadline && (!R->next_flight || r->deadline < R->next_flight)) R->next_flight = r->deadline;
    for (size_t i = 0; i < q->n_stop; i++) rt_req_add_stop(r, q->stop[i], strlen(q->stop[i]));
    if (q->n_resume_tokens) {
        if (!(r->resume = malloc(q->n_resume_tokens * sizeof *r->resume))) goto oom;
        memcpy(r->resume, q->resume_tokens, q->n_resume_tokens * sizeof *r->resume);
        r->n_resume = (int)q->n_resume_tokens;
    }
    if (cached) {
        r->mask_bits = malloc(R->mask_bytes);
        r->cov = calloc((size_t)(R->n_clusters ? R->n_clusters : 1), sizeof *r->cov);
        if (!r->mask_bits || !r->cov) goto oom;
        memcpy(r->mask_bits, tm.bits, R->mask_bytes);
        if (R->n_clusters) memcpy(r->cov, tm.cov, (size_t)R->n_clusters * sizeof *r->cov);
        r->mask_cluster = tm.nearest;
        rt_balancer_note_demand(R->bal, tm.nearest);
    }
    if (given) { /* ids as given (< ctx: checked) */
        int max_new;
        if (rt_admit_fit(&R->lim, (int)q->n_prompt_tokens, q->max_tokens, &max_new, msg, sizeof msg)) {
            rt_reqtable_remove(R->reqs, &r);
            bad_request(R, p, id, msg);
            return;
        }
        if (rt_req_set_prompt(r, q->prompt_tokens, (int)q->n_prompt_tokens, max_new)) goto oom;
    }
    if (!given || need_mask) {
        if (!(job = rt_job_new(R->model.ctx + 1))) goto oom;
        job->mode = mode;
        job->need_mask = need_mask;
        if (given) {
            memcpy(job->ids, q->prompt_tokens, q->n_prompt_tokens * sizeof *job->ids);
            job->n_ids = (int)q->n_prompt_tokens;
        } else if (!(job->text = strdup(q->prompt ? q->prompt : ""))) {
            goto oom;
        }
        if (mode == IFP__MASK_MODE__MASK_TASK && need_mask && !(job->task = strdup(q->task))) goto oom;
    }
    rt_flight_admit(R, r, job);
    return;
oom:
    rt_job_free(job);
    if (r) rt_reqtable_remove(R->reqs, &r);
    R->st.internal_errors++;
    send_error(R, p, id, IFP__ERROR_CODE__ERR_INTERNAL, "out of memory", 0);
}

static void on_cancel(rt_router_t *R, const peer_t *p, const Ifp__Cancel *c) {
    const char *id = c->id ? c->id : "";
    rt_req_t *r = rt_reqtable_find_client(R->reqs, p->ident, (int)p->len, id);
    if (!r) {
        char msg[320];
        R->st.unknown_cancels++;
        snprintf(msg, sizeof msg, "cancel: no request \"%.256s\" in flight on this connection", id);
        send_error(R, p, id, IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST, msg, 0);
        return;
    }
    R->st.cancelled++;
    rt_flight_finish(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE, NULL, 1);
}

/* ---------------------------------------------------------------- frames */

/* Counts, logs and answers (ERR_MALFORMED) a message that is not a
 * ClientMessage. */
static void malformed(rt_router_t *R, const peer_t *p, const char *why) {
    R->st.client_malformed++;
    rt_log(R, RT_LOG_CLIENT, "malformed client message (%s)", why);
    if (p->len > 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "malformed message: %s", why);
        send_error(R, p, "", IFP__ERROR_CODE__ERR_MALFORMED, msg, 0);
    }
}

static const char *msg_id(const Ifp__ClientMessage *m) {
    const char *id = m->msg_case == IFP__CLIENT_MESSAGE__MSG_REQUEST ? m->request->id
                     : m->msg_case == IFP__CLIENT_MESSAGE__MSG_CANCEL ? m->cancel->id
                                                                      : m->ping->id;
    return id ? id : "";
}

/* One ClientMessage body from peer p: size, decoding, text checks, the
 * key's standing (revoked: its key was removed by a reload), dispatch. */
static void on_body(rt_router_t *R, const peer_t *p, const void *data, size_t len, int revoked) {
    char msg[IFP_ERR_MSG_LEN];
    if (len > R->front_max_valid) {
        R->st.oversize++;
        snprintf(msg, sizeof msg,
                 "message of %zu bytes: the largest valid request for this model is %zu bytes (prompt text up to "
                 "%zu bytes or %d prompt tokens)",
                 len, R->front_max_valid, R->lim.max_prompt_bytes, R->lim.ctx - 1);
        rt_log(R, RT_LOG_CLIENT, "refused a client message: %s", msg);
        R->st.bad_requests++;
        send_error(R, p, "", IFP__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
        return;
    }
    Ifp__ClientMessage *m = ifp_wire_client_msg(data, len);
    if (!m) {
        malformed(R, p, "the body is not an ifp.ClientMessage with request, cancel or ping set");
        return;
    }
    char why[256];
    if (ifp_wire_check_text(&ifp__client_message__descriptor, data, len, why, sizeof why)) {
        /* the id is echoed only when it is itself valid text */
        const char *id = strstr(why, ".id:") ? "" : msg_id(m);
        R->st.bad_text++;
        rt_log(R, RT_LOG_CLIENT, "refused a client message: %s", why);
        snprintf(msg, sizeof msg, "%s (text fields must be valid UTF-8 without NUL bytes)", why);
        bad_request(R, p, id, msg);
        ifp__client_message__free_unpacked(m, NULL);
        return;
    }
    if (revoked) {
        R->st.auth_refused++;
        rt_log(R, RT_LOG_CLIENT, "refused a client message: its connection's key is no longer admitted");
        send_error(R, p, msg_id(m), IFP__ERROR_CODE__ERR_UNAUTHORIZED,
                   "this connection's key is no longer admitted by the router", 0);
        ifp__client_message__free_unpacked(m, NULL);
        return;
    }
    switch (m->msg_case) {
    case IFP__CLIENT_MESSAGE__MSG_REQUEST:
        on_request(R, p, m->request);
        break;
    case IFP__CLIENT_MESSAGE__MSG_CANCEL:
        on_cancel(R, p, m->cancel);
        break;
    default:
        on_ping(R, p, m->ping);
    }
    ifp__client_message__free_unpacked(m, NULL);
}

void rt_on_client(rt_router_t *R, ifp_frames_t *f) {
    /* [identity][body] from a DEALER, or [identity][""][body] from a REQ */
    int delim = f->n == 3 && ifp_frame_size(f, 1) == 0;
    peer_t p = {R->front, f->n >= 1 ? ifp_frame_data(f, 0) : "", f->n >= 1 ? ifp_frame_size(f, 0) : 0,
                f->n >= 3 && ifp_frame_size(f, 1) == 0, -1, 0, ""};
    if (f->truncated || (f->n != 2 && !delim)) {
        malformed(R, &p, "expected [ClientMessage] (or an empty delimiter frame and then it) as one message part");
        return;
    }
    int body = delim ? 2 : 1;
    /* admitted at the handshake; its key may have been removed since (a reload) */
    int revoked = R->curve && rt_zap_who(R->zap, zmq_msg_gets(&f->part[body], "User-Id"), &p.client) != RT_PEER_CLIENT;
    if (R->curve && !revoked) {
        const rt_client_t *cl = rt_zap_client(R->zap, p.client);
        p.key_name = cl ? cl->name : "";
    }
    on_body(R, &p, ifp_frame_data(f, body), ifp_frame_size(f, body), revoked);
}

void rt_on_http_client(rt_router_t *R, const void *ident, size_t ilen, const char *key_name, const void *data,
                       size_t len) {
    peer_t p = {R->hsock, ident, ilen, 0, -1, 1, key_name};
    /* the gateway checked the API key; a name that is also a [client] gets its limits */
    if (R->zap && key_name[0]) p.client = rt_zap_client_index(R->zap, key_name);
    on_body(R, &p, data, len, 0);
}
