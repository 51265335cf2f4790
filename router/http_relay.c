/* http_relay.c — what comes back over the bridge (router/http.h) turned
 * into HTTP answers: a request's token events into SSE chunks, its Reply
 * into the response body, its Error into the OpenAI error with the right
 * status; metrics and health answers.  Also the map of waiting
 * connections (by bridge tag) and the sweep that finds clients gone while
 * their connection waits suspended (libmicrohttpd does not watch those). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zmq.h>

#include "http_int.h"
#include "wire.h"

#define HT_DRAIN 4096 /* bridge messages handled per wake-up */

/* ---------------------------------------------------------------- map */

void ht_map_put(rt_http_t *H, hconn_t *c) {
    hconn_t **b = &H->map[c->tag & (HT_MAP - 1)];
    c->hnext = *b;
    *b = c;
    c->in_map = 1;
}

hconn_t *ht_map_get(rt_http_t *H, uint64_t tag) {
    for (hconn_t *c = H->map[tag & (HT_MAP - 1)]; c; c = c->hnext)
        if (c->tag == tag) return c;
    return NULL;
}

void ht_map_del(rt_http_t *H, hconn_t *c) {
    if (!c->in_map) return;
    for (hconn_t **p = &H->map[c->tag & (HT_MAP - 1)]; *p; p = &(*p)->hnext)
        if (*p == c) {
            *p = c->hnext;
            break;
        }
    c->in_map = 0;
    c->hnext = NULL;
}

int ht_code_index(int status) {
    static const int codes[] = {
#define HT_CODE_VAL(c) c,
        HT_CODES(HT_CODE_VAL)
#undef HT_CODE_VAL
    };
    for (int i = 0; i < HT_C_N; i++)
        if (codes[i] == status) return i;
    return -1;
}

/* A bridge tag "123" -> 123; 0 if not one. */
static uint64_t parse_tag(const char *s, size_t n) {
    if (!n || n > 19) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* A request id "cmpl-SSSSSSSSSSSSSSSSTTT" (16 hex digits of this run's
 * salt, then the tag in hex) -> the tag; 0 if not one of ours. */
static uint64_t id_tag(const rt_http_t *H, const char *id) {
    const char *dash = strrchr(id, '-');
    char salt[17];
    snprintf(salt, sizeof salt, "%016llx", (unsigned long long)H->rid_salt);
    if (!dash || strncmp(dash + 1, salt, 16) != 0) return 0;
    const char *t = dash + 17;
    uint64_t v = 0;
    int n = 0;
    for (; *t && n < 16; t++, n++) {
        int d = *t >= '0' && *t <= '9' ? *t - '0' : *t >= 'a' && *t <= 'f' ? *t - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v * 16 + (uint64_t)d;
    }
    return n && !*t ? v : 0;
}

/* ---------------------------------------------------------------- requests */

static oai_meta_t meta(const hconn_t *c) { return (oai_meta_t){c->rid, c->created, c->H->model_id, c->text_sent}; }

/* The stream's headers go out with its first event. */
static void stream_start(hconn_t *c) {
    if (c->stream_started) return;
    c->stream_started = 1;
    c->state = HC_STREAM;
    c->status = 200;
}

static void on_token(hconn_t *c, const Ifp__TokenEvent *ev) {
    if (!c->q.stream || c->stream_done) return;
    /* the piece may end inside a UTF-8 sequence: that part waits for the next token */
    char *joined = malloc(c->carry_len + ev->text.len + 1);
    if (!joined) return;
    memcpy(joined, c->carry, c->carry_len);
    if (ev->text.len) memcpy(joined + c->carry_len, ev->text.data, ev->text.len);
    size_t n = c->carry_len + ev->text.len, ok = oai_utf8_complete(joined, n);
    if (n - ok > sizeof c->carry) ok = n; /* never more than a sequence's start is held */
    c->carry_len = n - ok;
    memcpy(c->carry, joined + ok, c->carry_len);
    size_t tl = 0;
    const char *tt = c->q.logprobs && c->H->tok ? ifp_tokenizer_piece(c->H->tok, c->prev_token, ev->token, &tl) : "";
    c->prev_token = ev->token;
    if (ok || c->q.logprobs || c->first_chunk) {
        stream_start(c);
        oai_meta_t m = meta(c);
        oai_write_chunk(&c->out, &c->q, &m, joined, ok, c->first_chunk, c->q.logprobs, ev->logprob, tt ? tt : "", tl);
        c->text_sent += ok;
        c->first_chunk = 0;
        ht_resume(c);
    }
    free(joined);
}

static void on_reply(hconn_t *c, const Ifp__Reply *rep) {
    rt_http_t *H = c->H;
    oai_meta_t m = meta(c);
    ht_map_del(H, c);
    if (c->q.stream) {
        stream_start(c);
        oai_write_final(&c->out, &c->q, &m, rep, c->carry, c->carry_len, c->first_chunk);
        c->carry_len = 0;
        c->stream_done = 1;
    } else {
        const char **pieces = NULL;
        if (c->q.logprobs && H->tok && rep->n_tokens && (pieces = calloc(rep->n_tokens, sizeof *pieces))) {
            int prev = -1;
            for (size_t i = 0; i < rep->n_tokens; i++) {
                size_t len;
                pieces[i] = ifp_tokenizer_piece(H->tok, prev, rep->tokens[i], &len);
                prev = rep->tokens[i];
            }
        }
        ifp_buf_reset(&c->out);
        oai_write_response(&c->out, &c->q, &m, rep, rep->n_logprobs == rep->n_tokens ? rep->logprobs : NULL,
                           pieces);
        free(pieces);
        c->status = 200;
        c->ctype = "application/json";
        c->state = HC_ANSWER;
    }
    ht_resume(c);
}

static void on_error(hconn_t *c, const Ifp__Error *e) {
    rt_http_t *H = c->H;
    int status = 500;
    const char *type = "server_error", *code = NULL;
    uint32_t retry = 0;
    switch (e->code) {
    case IFP__ERROR_CODE__ERR_BAD_REQUEST: status = 400, type = "invalid_request_error"; break;
    case IFP__ERROR_CODE__ERR_OVERLOADED:
        /* a client over its own max_inflight is rate-limited; a full queue is the server's overload */
        if (e->message && !strncmp(e->message, "overloaded: client ", 19)) status = 429, type = "rate_limit_error";
        else status = 503, type = "server_overloaded";
        retry = (e->retry_after_ms + 999) / 1000;
        if (!retry) retry = 1;
        break;
    case IFP__ERROR_CODE__ERR_DEADLINE: status = 504, type = "timeout", code = "deadline_exceeded"; break;
    case IFP__ERROR_CODE__ERR_UNAUTHORIZED: status = 401, type = "invalid_request_error", code = "invalid_api_key"; break;
    case IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST: return; /* a cancel that crossed the answer */
    default: break;
    }
    ht_map_del(H, c);
    oai_error_t oe = {.status = status};
    snprintf(oe.type, sizeof oe.type, "%s", type);
    snprintf(oe.code, sizeof oe.code, "%s", code ? code : "");
    snprintf(oe.message, sizeof oe.message, "%s", e->message ? e->message : "");
    if (c->stream_started) {
        oai_write_stream_error(&c->out, &oe);
        c->stream_done = 1;
    } else {
        ifp_buf_reset(&c->out);
        oai_write_error(&c->out, &oe);
        c->status = status;
        c->ctype = "application/json";
        c->retry_after_s = retry;
        c->state = HC_ANSWER;
    }
    ht_resume(c);
}

static void on_server_msg(rt_http_t *H, const void *data, size_t len) {
    Ifp__ServerMessage *m = ifp__server_message__unpack(NULL, len, data);
    if (!m) {
        ht_log(H, "bridge: a message that is not an ifp.ServerMessage (%zu bytes) dropped", len);
        return;
    }
    const char *id = m->msg_case == IFP__SERVER_MESSAGE__MSG_TOKEN      ? m->token->id
                     : m->msg_case == IFP__SERVER_MESSAGE__MSG_REPLY    ? m->reply->id
                     : m->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR    ? m->error->id
                     : m->msg_case == IFP__SERVER_MESSAGE__MSG_PROGRESS ? m->progress->id
                                                                        : NULL;
    hconn_t *c = id ? ht_map_get(H, id_tag(H, id)) : NULL;
    if (c && c->parsed && c->state != HC_GONE) {
        switch (m->msg_case) {
        case IFP__SERVER_MESSAGE__MSG_TOKEN: on_token(c, m->token); break;
        case IFP__SERVER_MESSAGE__MSG_REPLY: on_reply(c, m->reply); break;
        case IFP__SERVER_MESSAGE__MSG_ERROR: on_error(c, m->error); break;
        default: break; /* Progress: ht_sweep watches the client */
        }
    }
    ifp__server_message__free_unpacked(m, NULL);
}

/* ---------------------------------------------------------------- asks */

static void on_metrics(hconn_t *c, const char *text, size_t len) {
    ifp_buf_reset(&c->out);
    ifp_buf_append(&c->out, text, len);
    ht_write_metrics(c->H, &c->out);
    c->status = 200;
    c->ctype = "text/plain; version=0.0.4; charset=utf-8";
    c->state = HC_ANSWER;
}

static void on_health(hconn_t *c, const char *text, size_t len) {
    char s[32];
    snprintf(s, sizeof s, "%.*s", (int)(len < sizeof s - 1 ? len : sizeof s - 1), text);
    int live = 0, ready = 0;
    if (sscanf(s, "%d %d", &live, &ready) != 2) live = ready = 0;
    int ok = c->ep == EP_HEALTH ? live > 0 : ready;
    ifp_buf_reset(&c->out);
    ifp_buf_printf(&c->out, "{\"status\":\"%s\",\"live_groups\":%d,\"ready\":%s}\n",
                   ok ? "ok" : (c->ep == EP_HEALTH ? "unavailable" : "not ready"), live, ready ? "true" : "false");
    c->status = ok ? 200 : 503;
    c->ctype = "application/json";
    c->state = HC_ANSWER;
}

/* ---------------------------------------------------------------- bridge */

void ht_on_bridge(rt_http_t *H) {
    for (int i = 0; i < HT_DRAIN; i++) {
        ifp_frames_t f;
        if (ifp_wire_recv(H->sock, &f, ZMQ_DONTWAIT) < 0) return;
        if (f.n == 1 && !f.truncated) {
            on_server_msg(H, ifp_frame_data(&f, 0), ifp_frame_size(&f, 0));
        } else if (f.n == 3 && !f.truncated && ifp_frame_size(&f, 0) == 1) {
            char kind = *(const char *)ifp_frame_data(&f, 0);
            hconn_t *c = ht_map_get(H, parse_tag(ifp_frame_data(&f, 1), ifp_frame_size(&f, 1)));
            if (c && !c->parsed && c->state == HC_WAIT) {
                ht_map_del(H, c);
                if (kind == 'M') on_metrics(c, ifp_frame_data(&f, 2), ifp_frame_size(&f, 2));
                else on_health(c, ifp_frame_data(&f, 2), ifp_frame_size(&f, 2));
                ht_resume(c);
            }
        } else {
            ht_log(H, "bridge: a message of %d frames dropped", f.n);
        }
        ifp_frames_close(&f);
    }
}

/* A waiting connection's client closed its end: recv peeks 0 bytes (EOF)
 * or fails.  Bytes waiting (a pipelined request, TLS records) count as
 * alive. */
static int client_gone(hconn_t *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void ht_sweep(rt_http_t *H) {
    for (int b = 0; b < HT_MAP; b++)
        for (hconn_t *c = H->map[b], *nx; c; c = nx) {
            nx = c->hnext;
            if (!c->suspended || !client_gone(c)) continue;
            if (c->parsed) ht_cancel(c);
            ht_log(H, "client of %s went away while its request %s waited: cancelled", HT_EP_PATH[c->ep],
                   c->parsed ? c->rid : "(an ask)");
            ht_map_del(H, c);
            c->state = HC_GONE;
            ht_resume(c);
        }
}

void ht_write_metrics(rt_http_t *H, ifp_buf_t *b) {
    static const int codes[] = {
#define HT_CODE_VAL(c) c,
        HT_CODES(HT_CODE_VAL)
#undef HT_CODE_VAL
    };
    ifp_buf_printf(b, "# HELP ifp_http_requests_total HTTP requests answered by the gateway, by endpoint and status.\n"
                      "# TYPE ifp_http_requests_total counter\n");
    for (int e = 0; e < EP_N; e++)
        for (int k = 0; k < HT_C_N; k++)
            if (H->counts[e][k] || (e <= EP_CHAT && codes[k] == 200))
                ifp_buf_printf(b, "ifp_http_requests_total{path=\"%s\",code=\"%d\"} %llu\n", HT_EP_PATH[e], codes[k],
                               (unsigned long long)H->counts[e][k]);
    ifp_buf_printf(b,
                   "# HELP ifp_http_requests_in_progress HTTP requests received and not yet answered to the end.\n"
                   "# TYPE ifp_http_requests_in_progress gauge\nifp_http_requests_in_progress %d\n"
                   "# HELP ifp_http_streams Server-Sent Events streams open now.\n# TYPE ifp_http_streams gauge\n"
                   "ifp_http_streams %d\n",
                   H->n_open, H->n_streams);
}
