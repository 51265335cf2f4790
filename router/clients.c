/* clients.c — the frontend: client Requests (validate, tokenize, mask,
 * place), Cancels, and everything the router sends back (TokenEvent,
 * Reply, Error). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "clock.h"

/* ---------------------------------------------------------------- sending */

static void send_server(rt_router_t *R, const void *ident, size_t len, int delim, Ifp__ServerMessage *m) {
    if (rt_send(R, R->front, ident, len, delim, &m->base) == 0) return;
    if (errno == EHOSTUNREACH) R->st.client_gone++;
    else R->st.send_failed++;
    rt_log(R, RT_LOG_SEND, "cannot send to a client: %s", zmq_strerror(errno));
}

static void send_error(rt_router_t *R, const void *ident, size_t len, int delim, const char *id, int code,
                       const char *msg, uint32_t retry_after_ms) {
    Ifp__Error e = IFP__ERROR__INIT;
    e.id = (char *)(id ? id : "");
    e.code = (Ifp__ErrorCode)code;
    e.message = (char *)(msg ? msg : "");
    e.retry_after_ms = retry_after_ms;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    send_server(R, ident, len, delim, &m);
}

int rt_stream_token(rt_router_t *R, rt_req_t *r, uint32_t index, int32_t token, float logprob) {
    if (!r->stream) return 0;
    const char *text;
    size_t n = rt_req_stream_text(r, &text);
    Ifp__TokenEvent ev = IFP__TOKEN_EVENT__INIT;
    ev.id = r->id;
    ev.index = index;
    ev.token = token;
    ev.text.data = (uint8_t *)text;
    ev.text.len = n;
    ev.logprob = logprob;
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_TOKEN;
    m.token = &ev;
    if (rt_send(R, R->front, r->ident, (size_t)r->ident_len, r->delim, &m.base) == 0) return 0;
    if (errno == EHOSTUNREACH) {
        R->st.client_gone++;
        return -1;
    }
    R->st.send_failed++; /* a full client queue: the Reply still carries everything */
    rt_log(R, RT_LOG_SEND, "cannot stream to a client: %s", zmq_strerror(errno));
    return 0;
}

static double ms_since(double t0, double t1) { return t0 > 0 && t1 >= t0 ? t1 - t0 : 0; }

void rt_finish(rt_router_t *R, rt_req_t **rp, int finish, int code, const char *msg, int cancel_group) {
    rt_req_t *r = *rp;
    double now = ifp_now_ms();
    if (r->state == RT_REQ_RUNNING) {
        if (cancel_group) rt_send_cancel(R, r->group, r->rid);
        rt_unassign(R, r, finish != RT_FIN_ERROR && finish != RT_FIN_CANCELLED);
    }
    rt_reqtable_dequeue(R->reqs, r);
    r->state = RT_REQ_DONE;
    r->finish = finish;
    if (code != IFP__ERROR_CODE__ERR_NONE) {
        send_error(R, r->ident, (size_t)r->ident_len, r->delim, r->id, code, msg, 0);
        if (code == IFP__ERROR_CODE__ERR_INTERNAL) R->st.internal_errors++;
    }
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
    rep.finish = (Ifp__FinishReason)finish;
    rep.usage = &usage;
    rep.timings = &tm;
    rep.group = g ? g->name : "";
    rep.cluster = g ? g->cluster : IFP_CLUSTER_DENSE;
    rep.coverage = r->coverage;
    rep.n_replays = (size_t)r->n_replays;
    rep.replays = r->replays;
    Ifp__Debug dbg = IFP__DEBUG__INIT;
    if (r->debug && r->n_head) {
        dbg.n_logits_last_prompt = (size_t)r->n_head;
        dbg.logits_last_prompt = r->head;
        dbg.argmax_last_prompt = r->argmax;
        rep.debug = &dbg;
    }
    Ifp__ServerMessage m = IFP__SERVER_MESSAGE__INIT;
    m.msg_case = IFP__SERVER_MESSAGE__MSG_REPLY;
    m.reply = &rep;
    send_server(R, r->ident, (size_t)r->ident_len, r->delim, &m);
    R->st.replies++;
    if (finish != RT_FIN_CANCELLED && finish != RT_FIN_ERROR)
        R->svc_ms = R->svc_ms > 0 ? 0.9 * R->svc_ms + 0.1 * tm.total_ms : tm.total_ms;
    if (R->opt.verbose)
        rt_log(R, RT_LOG_TRACE, "rid %llu (%s) finished %d after %d tokens on %s, %.1f ms, %d replays",
               (unsigned long long)r->rid, r->id, finish, r->n_tokens, g ? g->name : "-", tm.total_ms, r->n_replays);
    rt_reqtable_remove(R->reqs, rp);
    R->pump = 1;
}

/* ---------------------------------------------------------------- requests */

/* The mask of r's mode (NULL for dense), from the predictor.  Returns 0 or
 * an IFP_E* code with err set. */
static int build_mask(rt_router_t *R, rt_req_t *r, const Ifp__Request *q, ifp_err_t *err) {
    if (q->mask_mode == IFP__MASK_MODE__MASK_DENSE) return IFP_OK;
    if (q->mask_mode == IFP__MASK_MODE__MASK_TASK) {
        const ifp_mask_t *hit = rt_taskcache_get(R->tasks, q->task);
        if (!hit) {
            ifp_mask_t *m = NULL;
            int rc = ifp_predictor_mask_text(R->pred, R->tok, q->task, 0, &m, err);
            if (rc) return rc;
            if (rt_taskcache_put(R->tasks, q->task, &m)) return ifp_errf(err, IFP_ENOMEM, "out of memory");
            hit = rt_taskcache_get(R->tasks, q->task);
        }
        if (!(r->mask = ifp_mask_clone(hit))) return ifp_errf(err, IFP_ENOMEM, "out of memory");
        return IFP_OK;
    }
    /* MASK_INPUT: [BOS] + prompt (the predictor truncates to its max prompt) */
    int bos = ifp_tokenizer_bos(R->tok);
    if (bos >= 0 && r->prompt[0] != bos) {
        int n = r->n_prompt < R->ids_cap - 1 ? r->n_prompt : R->ids_cap - 1;
        R->ids[0] = bos;
        memcpy(R->ids + 1, r->prompt, (size_t)n * sizeof *R->ids);
        return ifp_predictor_mask(R->pred, R->ids, n + 1, 0, &r->mask, err);
    }
    return ifp_predictor_mask(R->pred, r->prompt, r->n_prompt, 0, &r->mask, err);
}

/* Milliseconds a rejected client should wait: about one request's service
 * time. */
static uint32_t retry_after(const rt_router_t *R) {
    double ms = R->svc_ms > 0 ? R->svc_ms : 1000;
    return (uint32_t)(ms < 100 ? 100 : ms > 60000 ? 60000 : ms);
}

static void on_request(rt_router_t *R, const void *ident, size_t ilen, int delim, const Ifp__Request *q) {
    double t0 = ifp_now_ms();
    char msg[IFP_ERR_MSG_LEN];
    const char *id = q->id ? q->id : "";
    R->st.requests++;
    if (rt_admit_check(q, &R->lim, msg, sizeof msg)) goto bad;
    if (rt_reqtable_find_client(R->reqs, ident, (int)ilen, id)) {
        snprintf(msg, sizeof msg, "id: \"%.200s\" is already in flight on this connection", id);
        goto bad;
    }
    int n;
    if (q->n_prompt_tokens) {
        n = (int)q->n_prompt_tokens; /* < ctx: checked */
        memcpy(R->ids, q->prompt_tokens, (size_t)n * sizeof *R->ids);
    } else {
        n = ifp_tokenizer_encode(R->tok, q->prompt ? q->prompt : "", ifp_tokenizer_add_bos(R->tok), R->ids,
                                 R->ids_cap);
        if (n < 0) {
            snprintf(msg, sizeof msg, "prompt: cannot tokenize (%s)", ifp_strerror(n));
            goto bad;
        }
        if (n > R->ids_cap) {
            snprintf(msg, sizeof msg, "prompt: %d tokens, the model context is %d", n, R->lim.ctx);
            goto bad;
        }
    }
    int max_new;
    if (rt_admit_fit(&R->lim, n, q->max_tokens, &max_new, msg, sizeof msg)) goto bad;

    rt_req_t *r = rt_reqtable_add(R->reqs, ident, (int)ilen, id);
    if (!r || rt_req_set_prompt(r, R->ids, n, max_new)) {
        if (r) rt_reqtable_remove(R->reqs, &r);
        R->st.internal_errors++;
        send_error(R, ident, ilen, delim, id, IFP__ERROR_CODE__ERR_INTERNAL, "out of memory", 0);
        return;
    }
    r->delim = delim;
    r->t_arrival = t0;
    r->temperature = q->temperature;
    r->top_p = q->top_p;
    r->top_k = q->top_k >= (uint32_t)R->lim.vocab ? 0 : q->top_k; /* >= vocab: off */
    r->seed = q->seed;
    r->stream = q->stream;
    r->debug = q->debug;
    r->deadline = q->deadline_ms ? t0 + q->deadline_ms : 0;
    for (size_t i = 0; i < q->n_stop; i++) rt_req_add_stop(r, q->stop[i], strlen(q->stop[i]));
    ifp_err_t err = {0};
    if (build_mask(R, r, q, &err)) {
        rt_log(R, RT_LOG_CLIENT, "predictor failed for request \"%s\": %s", id, err.msg);
        snprintf(msg, sizeof msg, "predictor failed: %.400s", err.msg);
        rt_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
        return;
    }
    if (r->mask && R->clusters) {
        r->mask_cluster = ifp_cluster_nearest(R->clusters, r->mask);
        rt_balancer_note_demand(R->bal, r->mask_cluster);
    }
    r->predictor_ms = ifp_now_ms() - t0;

    int rc = rt_place(R, r);
    if (rc == RT_PICK_OK) return;
    if (rc == RT_PICK_WAIT) {
        if (rt_reqtable_queue_len(R->reqs) < R->cfg.queue_max) {
            rt_reqtable_enqueue(R->reqs, r, 0);
            return;
        }
        R->st.overloaded++;
        snprintf(msg, sizeof msg, "overloaded: no group has a free slot for this request and %d requests are queued",
                 rt_reqtable_queue_len(R->reqs));
        send_error(R, ident, ilen, delim, id, IFP__ERROR_CODE__ERR_OVERLOADED, msg, retry_after(R));
        rt_reqtable_remove(R->reqs, &r);
        return;
    }
    rt_pick_t p;
    rt_balancer_pick(R->bal, r->mask, 0, &p);
    snprintf(msg, sizeof msg,
             "no configured group can serve this request's mask: best coverage %.3f < min_coverage %.3f",
             p.best_possible, R->cfg.min_coverage);
    rt_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
    return;
bad:
    R->st.bad_requests++;
    send_error(R, ident, ilen, delim, id, IFP__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
}

static void on_cancel(rt_router_t *R, const void *ident, size_t ilen, int delim, const Ifp__Cancel *c) {
    const char *id = c->id ? c->id : "";
    rt_req_t *r = rt_reqtable_find_client(R->reqs, ident, (int)ilen, id);
    if (!r) {
        char msg[320];
        R->st.unknown_cancels++;
        snprintf(msg, sizeof msg, "cancel: no request \"%.256s\" in flight on this connection", id);
        send_error(R, ident, ilen, delim, id, IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST, msg, 0);
        return;
    }
    R->st.cancelled++;
    rt_finish(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE, NULL, 1);
}

/* ---------------------------------------------------------------- frames */

/* Counts, logs and answers (ERR_MALFORMED, framed like the message: with
 * the empty delimiter if it had one) a message that is not a ClientMessage. */
static void malformed(rt_router_t *R, ifp_frames_t *f, const char *why) {
    R->st.client_malformed++;
    rt_log(R, RT_LOG_CLIENT, "malformed client message (%s)", why);
    if (f->n >= 1 && ifp_frame_size(f, 0) > 0) {
        char msg[160];
        int delim = f->n >= 3 && ifp_frame_size(f, 1) == 0;
        snprintf(msg, sizeof msg, "malformed message: %s", why);
        send_error(R, ifp_frame_data(f, 0), ifp_frame_size(f, 0), delim, "", IFP__ERROR_CODE__ERR_MALFORMED, msg, 0);
    }
}

void rt_on_client(rt_router_t *R, ifp_frames_t *f) {
    /* [identity][body] from a DEALER, or [identity][""][body] from a REQ */
    int delim = f->n == 3 && ifp_frame_size(f, 1) == 0;
    if (f->truncated || (f->n != 2 && !delim)) {
        malformed(R, f, "expected [ClientMessage] (or an empty delimiter frame and then it) as one message part");
        return;
    }
    int body = delim ? 2 : 1;
    Ifp__ClientMessage *m = ifp_wire_client_msg(ifp_frame_data(f, body), ifp_frame_size(f, body));
    if (!m) {
        malformed(R, f, "the body is not an ifp.ClientMessage with request or cancel set");
        return;
    }
    const void *ident = ifp_frame_data(f, 0);
    size_t ilen = ifp_frame_size(f, 0);
    if (m->msg_case == IFP__CLIENT_MESSAGE__MSG_REQUEST) on_request(R, ident, ilen, delim, m->request);
    else on_cancel(R, ident, ilen, delim, m->cancel);
    ifp__client_message__free_unpacked(m, NULL);
}
