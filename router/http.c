/* http.c — the HTTP gateway (router/http.h): libmicrohttpd in external
 * epoll mode (started by router/http_setup.c), driven by the gateway's own thread, which polls the daemon's
 * epoll fd and the bridge socket together; requests in (routing, API keys,
 * body limits, JSON checks) and the answers router/http_relay.c prepared
 * out (whole bodies, or Server-Sent Events through a suspending reader). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "http_int.h"
#include "log.h"
#include "router.h"
#include "wire.h"

#define HT_LOG_PER_SEC 20
#define HT_SWEEP_MS 500      /* how often waiting connections are checked for a gone client */

const char *const HT_EP_PATH[EP_N] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/v1/models/{id}",
                                      "/metrics", "/health", "/ready", "other"};

void ht_log(rt_http_t *H, const char *fmt, ...) {
    double now = ifp_now_ms();
    if (now - H->log_window >= 1000) H->log_window = now, H->log_n = 0;
    if (H->log_n++ >= HT_LOG_PER_SEC) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ifp_logf("ifp-router", "http: %s", line);
}

void ht_mhd_logger(void *cls, const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    ht_log(cls, "libmicrohttpd: %s", line);
}

void ht_resume(hconn_t *c) {
    if (!c->suspended) return;
    c->suspended = 0;
    MHD_resume_connection(c->mc);
}

static void suspend(hconn_t *c) {
    if (c->suspended) return;
    c->suspended = 1;
    MHD_suspend_connection(c->mc);
}

int ht_bridge_send(rt_http_t *H, const void *const *frames, const size_t *lens, int n) {
    for (int i = 0; i < n; i++)
        if (zmq_send(H->sock, frames[i], lens[i], (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) return -1;
    return 0;
}

static int send_client_msg(rt_http_t *H, const char *key_name, const Ifp__ClientMessage *m) {
    size_t len = ifp__client_message__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return -1;
    ifp__client_message__pack(m, buf);
    const void *fr[3] = {"Q", key_name, buf};
    size_t ln[3] = {1, strlen(key_name), len};
    int rc = ht_bridge_send(H, fr, ln, 3);
    free(buf);
    return rc;
}

void ht_cancel(hconn_t *c) {
    const void *fr[2] = {"X", c->rid};
    size_t ln[2] = {1, strlen(c->rid)};
    ht_bridge_send(c->H, fr, ln, 2);
}

void ht_set_error(hconn_t *c, int status, const char *type, const char *param, const char *code, const char *fmt,
                  ...) {
    oai_error_t e = {.status = status};
    snprintf(e.type, sizeof e.type, "%s", type);
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    snprintf(e.code, sizeof e.code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    ifp_buf_reset(&c->out);
    oai_write_error(&c->out, &e);
    c->status = status;
    c->ctype = "application/json";
    c->state = HC_ANSWER;
}

/* ---------------------------------------------------------------- answers */

static enum MHD_Result queue(hconn_t *c, struct MHD_Response *r, int status) {
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", c->ctype ? c->ctype : "application/json");
    if (c->retry_after_s) {
        char s[16];
        snprintf(s, sizeof s, "%u", c->retry_after_s);
        MHD_add_response_header(r, "Retry-After", s);
    }
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 405)
        MHD_add_response_header(r, "Allow", c->ep == EP_COMPLETIONS || c->ep == EP_CHAT ? "POST" : "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c->mc, (unsigned)status, r);
    MHD_destroy_response(r);
    int k = ht_code_index(status);
    if (k >= 0) c->H->counts[c->ep][k]++;
    return ok;
}

static enum MHD_Result queue_answer(hconn_t *c) {
    if (c->out.oom) ht_set_error(c, 500, "server_error", NULL, NULL, "out of memory");
    return queue(c, MHD_create_response_from_buffer(c->out.len, c->out.p ? c->out.p : (char *)"",
                                                    MHD_RESPMEM_MUST_COPY),
                 c->status);
}

/* The SSE body: events as http_relay.c appends them; when none is ready
 * the connection sleeps until the next one (ht_resume). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    hconn_t *c = cls;
    if (c->state == HC_GONE) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (c->out_pos < c->out.len) {
        size_t n = c->out.len - c->out_pos < max ? c->out.len - c->out_pos : max;
        memcpy(buf, c->out.p + c->out_pos, n);
        c->out_pos += n;
        if (c->out_pos == c->out.len) {
            ifp_buf_reset(&c->out);
            c->out_pos = 0;
        }
        return (ssize_t)n;
    }
    if (c->stream_done) return MHD_CONTENT_READER_END_OF_STREAM;
    suspend(c);
    return 0;
}

static enum MHD_Result queue_stream(hconn_t *c) {
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, c, NULL);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    c->ctype = "text/event-stream";
    c->H->n_streams++;
    return queue(c, r, 200);
}

/* ---------------------------------------------------------------- requests */

static int route(const char *url, const char *model_id) {
    if (!strcmp(url, "/v1/completions")) return EP_COMPLETIONS;
    if (!strcmp(url, "/v1/chat/completions")) return EP_CHAT;
    if (!strcmp(url, "/v1/models")) return EP_MODELS;
    if (!strncmp(url, "/v1/models/", 11)) return EP_MODEL;
    if (!strcmp(url, "/metrics")) return EP_METRICS;
    if (!strcmp(url, "/health")) return EP_HEALTH;
    if (!strcmp(url, "/ready")) return EP_READY;
    (void)model_id;
    return EP_OTHER;
}

/* Authorization: Bearer KEY -> c->key_name; 0, or -1 with c's answer set. */
static int authorize(hconn_t *c) {
    rt_http_t *H = c->H;
    if (!H->auth) return 0;
    const char *h = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        ht_set_error(c, 401, "invalid_request_error", NULL, "invalid_api_key",
                     "missing API key: send the header `Authorization: Bearer KEY` (keys are in %s)", H->keys_path);
        return -1;
    }
    const char *key = h + 7;
    while (*key == ' ') key++;
    pthread_mutex_lock(&H->keys_mu);
    int i = ifp_apikeys_find(H->keys, H->n_keys, key, strlen(key));
    if (i >= 0) snprintf(c->key_name, sizeof c->key_name, "%s", H->keys[i].name);
    pthread_mutex_unlock(&H->keys_mu);
    if (i < 0) {
        ht_set_error(c, 401, "invalid_request_error", NULL, "invalid_api_key", "unknown API key");
        return -1;
    }
    return 0;
}


/* Hands c to the loop: a ClientMessage (completions, chat) or an ask
 * (metrics, health); c waits suspended for the answer. */
static enum MHD_Result to_loop(hconn_t *c) {
    rt_http_t *H = c->H;
    c->tag = ++H->next_tag;
    char tag[32];
    int tl = snprintf(tag, sizeof tag, "%llu", (unsigned long long)c->tag);
    int rc;
    if (c->ep == EP_COMPLETIONS || c->ep == EP_CHAT) {
        /* the request's id at the router (and in its log) is the response's id */
        snprintf(c->rid, sizeof c->rid, "%s-%016llx%llx", c->ep == EP_CHAT ? "chatcmpl" : "cmpl",
                 (unsigned long long)H->rid_salt, (unsigned long long)c->tag);
        c->q.req.id = c->rid;
        c->q.req.stream = c->q.stream;
        c->q.req.logprobs = c->q.logprobs;
        if (!c->q.has_seed) c->q.req.seed = rt_random64() >> 1; /* OpenAI: no seed, a different draw each time */
        Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
        m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
        m.request = &c->q.req;
        rc = send_client_msg(H, c->key_name, &m);
        c->q.req.id = NULL;
        c->created = (int64_t)time(NULL);
        c->first_chunk = 1;
        c->prev_token = -1;
    } else {
        const void *fr[2] = {c->ep == EP_METRICS ? "M" : "H", tag};
        size_t ln[2] = {1, (size_t)tl};
        rc = ht_bridge_send(H, fr, ln, 2);
    }
    if (rc) {
        ht_set_error(c, 503, "server_error", NULL, NULL, "the router's loop does not take requests now: %s",
                     zmq_strerror(errno));
        c->retry_after_s = 1;
        return queue_answer(c);
    }
    ht_map_put(H, c);
    c->state = HC_WAIT;
    suspend(c);
    return MHD_YES;
}

static enum MHD_Result on_body_done(hconn_t *c) {
    rt_http_t *H = c->H;
    if (c->too_large) {
        ht_set_error(c, 413, "invalid_request_error", NULL, NULL,
                     "request body larger than %zu bytes ([http] max_body)", H->max_body);
        return queue_answer(c);
    }
    oai_error_t e;
    if (oai_parse(c->ep == EP_CHAT ? OAI_CHAT : OAI_COMPLETIONS, c->body.p ? c->body.p : "", c->body.len, &H->lim,
                  &c->q, &e)) {
        ifp_buf_reset(&c->out);
        oai_write_error(&c->out, &e);
        c->status = e.status;
        c->ctype = "application/json";
        ht_log(H, "refused: %d %s key=%s: %s", e.status, HT_EP_PATH[c->ep], c->key_name[0] ? c->key_name : "-",
               e.message);
        return queue_answer(c);
    }
    c->parsed = 1;
    ifp_buf_free(&c->body);
    return to_loop(c);
}

/* The first call for a request: route, method, key, size. */
static enum MHD_Result on_head(hconn_t *c, const char *url, const char *method) {
    rt_http_t *H = c->H;
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int wants_post = c->ep == EP_COMPLETIONS || c->ep == EP_CHAT;
    /* an answer queued on this first call closes the connection afterwards
     * (libmicrohttpd has not read the request to its end): right for a POST
     * whose body is refused unread, wasteful for a GET, answered next call */
#define ANSWER() (post ? queue_answer(c) : MHD_YES)
    char printable[96];
    size_t n = 0;
    for (; url[n] && n < sizeof printable - 1; n++) printable[n] = url[n] > 32 && url[n] < 127 ? url[n] : '?';
    printable[n] = '\0';
    if (c->ep == EP_OTHER) {
        ht_set_error(c, 404, "invalid_request_error", NULL, "not_found", "no such endpoint: %s %s", method,
                     printable);
        return ANSWER();
    }
    if (wants_post ? !post : !get) {
        ht_set_error(c, 405, "invalid_request_error", NULL, "method_not_allowed", "%s takes %s, not %s", printable,
                     wants_post ? "POST" : "GET", method);
        return ANSWER();
    }
    int needs_key = c->ep != EP_HEALTH && c->ep != EP_READY && (c->ep != EP_METRICS || H->metrics_auth);
    if (needs_key && authorize(c)) {
        ht_log(H, "refused: 401 %s: %s", HT_EP_PATH[c->ep], strstr(c->out.p, "unknown") ? "unknown API key"
                                                                                       : "no API key");
        return ANSWER();
    }
    if (c->ep == EP_MODELS || c->ep == EP_MODEL) {
        ifp_buf_reset(&c->out);
        if (c->ep == EP_MODEL && strcmp(url + 11, H->model_id) != 0) {
            ht_set_error(c, 404, "invalid_request_error", "model", "model_not_found",
                         "the model `%s` does not exist; this server serves `%s`", printable + 11, H->model_id);
            return ANSWER();
        }
        if (c->ep == EP_MODELS) oai_write_models(&c->out, H->model_id, 0);
        else oai_write_model(&c->out, H->model_id, 0);
        c->status = 200;
        c->ctype = "application/json";
        c->state = HC_ANSWER;
        return ANSWER();
    }
#undef ANSWER
    const char *cl = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || *end || v > H->max_body) {
            ht_set_error(c, 413, "invalid_request_error", NULL, NULL,
                         "request body of %s bytes: larger than %zu bytes ([http] max_body)", cl, H->max_body);
            return queue_answer(c);
        }
    }
    c->state = HC_NEW;
    return MHD_YES;
}

enum MHD_Result ht_on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **ptr) {
    (void)version;
    rt_http_t *H = cls;
    hconn_t *c = *ptr;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        c->H = H;
        c->mc = mc;
        c->ep = route(url, H->model_id);
        c->t0 = ifp_now_ms();
        *ptr = c;
        H->n_open++;
        return on_head(c, url, method);
    }
    switch (c->state) {
    case HC_NEW:
        if (*upload_size) {
            if (!c->too_large && c->body.len + *upload_size <= H->max_body) ifp_buf_append(&c->body, upload, *upload_size);
            else c->too_large = 1;
            if (c->body.oom) c->too_large = 1;
            *upload_size = 0;
            return MHD_YES;
        }
        return c->ep == EP_COMPLETIONS || c->ep == EP_CHAT ? on_body_done(c) : to_loop(c);
    case HC_ANSWER:
        if (*upload_size) { /* a body nobody reads (an answer already decided): dropped, answered at its end */
            *upload_size = 0;
            return MHD_YES;
        }
        return queue_answer(c);
    case HC_STREAM: return queue_stream(c);
    case HC_WAIT: suspend(c); return MHD_YES; /* resumed before its answer: wait again */
    default: return MHD_NO;                    /* HC_GONE */
    }
}

void ht_on_completed(void *cls, struct MHD_Connection *mc, void **ptr, enum MHD_RequestTerminationCode toe) {
    (void)mc;
    rt_http_t *H = cls;
    hconn_t *c = *ptr;
    if (!c) return;
    if (c->in_map) { /* closed before its answer: the request is cancelled */
        if (c->parsed) ht_cancel(c);
        ht_map_del(H, c);
    }
    if (c->ctype && !strcmp(c->ctype, "text/event-stream")) H->n_streams--;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && c->parsed && !c->stream_done && c->status != 200)
        ht_log(H, "client of %s went away before its answer (request %s cancelled)", HT_EP_PATH[c->ep], c->rid);
    if (c->parsed) oai_request_free(&c->q);
    ifp_buf_free(&c->body);
    ifp_buf_free(&c->out);
    free(c);
    *ptr = NULL;
    H->n_open--;
}

/* ---------------------------------------------------------------- thread */

void *ht_run(void *arg) {
    rt_http_t *H = arg;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(H->d, MHD_DAEMON_INFO_EPOLL_FD);
    int epfd = di ? di->epoll_fd : -1;
    while (!H->stop) {
        MHD_UNSIGNED_LONG_LONG to = 0;
        long timeout = HT_SWEEP_MS;
        if (MHD_get_timeout(H->d, &to) == MHD_YES && (long long)to < timeout) timeout = (long)to;
        zmq_pollitem_t it[3] = {{H->sock, 0, ZMQ_POLLIN, 0}, {NULL, epfd, ZMQ_POLLIN, 0}, {NULL, H->wake_fd, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 3, timeout) < 0 && errno != EINTR) {
            if (errno == ETERM) break;
            ht_log(H, "zmq_poll: %s", zmq_strerror(errno));
        }
        if (H->stop) break;
        ht_on_bridge(H);
        /* a resumed connection takes a pass to wake and another to write:
         * run the daemon again while it has work due now (a few times),
         * so headers and an event leave together */
        MHD_run(H->d);
        for (int k = 0; k < 4 && MHD_get_timeout(H->d, &to) == MHD_YES && to == 0; k++) MHD_run(H->d);
        double now = ifp_now_ms();
        if (now >= H->next_sweep) {
            ht_sweep(H);
            H->next_sweep = now + HT_SWEEP_MS;
        }
    }
    /* every waiting connection is closed before the daemon stops */
    for (int b = 0; b < HT_MAP; b++)
        for (hconn_t *c = H->map[b]; c; c = c->hnext) c->state = HC_GONE, ht_resume(c);
    for (int i = 0; i < 3; i++) MHD_run(H->d);
    return NULL;
}

