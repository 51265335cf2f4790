/* bridge.c — the loop's side of the HTTP gateway (router/http.h): the
 * messages its thread sends over the inproc bridge socket (requests on
 * behalf of HTTP clients, metrics and health asks), and starting it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "metrics.h"
#include "rt.h"

int rt_live_groups(const rt_router_t *R) {
    int n = 0;
    for (int i = 0; i < rt_balancer_n_groups(R->bal); i++) n += rt_balancer_group(R->bal, i)->alive != 0;
    return n;
}

int rt_ready(const rt_router_t *R) { return rt_live_groups(R) > 0 && !rt_admission_full(R); }

/* [ident][kind][tag][text] back to the gateway. */
static void answer(rt_router_t *R, const void *ident, size_t ilen, const char *kind, const void *tag, size_t tag_len,
                   const char *text, size_t len) {
    if (zmq_send(R->hsock, ident, ilen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(R->hsock, kind, strlen(kind), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(R->hsock, tag, tag_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(R->hsock, text, len, ZMQ_DONTWAIT) < 0) {
        R->st.send_failed++;
        rt_log(R, RT_LOG_SEND, "cannot answer the HTTP gateway: %s", zmq_strerror(errno));
    }
}

static int frame_is(ifp_frames_t *f, int i, const char *s) {
    return ifp_frame_size(f, i) == strlen(s) && memcmp(ifp_frame_data(f, i), s, strlen(s)) == 0;
}

void rt_on_bridge(rt_router_t *R, ifp_frames_t *f) {
    /* the gateway is this process's own thread: a malformed message is a bug
     * there, logged and dropped */
    if (f->truncated || f->n < 3) {
        rt_log(R, RT_LOG_CLIENT, "HTTP bridge: a message of %d frames dropped", f->n);
        return;
    }
    const void *ident = ifp_frame_data(f, 0);
    size_t ilen = ifp_frame_size(f, 0);
    if (frame_is(f, 1, "Q") && f->n == 4) {
        char name[IFP_CFG_NAME];
        size_t n = ifp_frame_size(f, 2) < sizeof name - 1 ? ifp_frame_size(f, 2) : sizeof name - 1;
        memcpy(name, ifp_frame_data(f, 2), n);
        name[n] = '\0';
        rt_on_http_client(R, ident, ilen, name, ifp_frame_data(f, 3), ifp_frame_size(f, 3));
    } else if (frame_is(f, 1, "X") && f->n == 3) {
        /* the HTTP client went away: its request ends as client_gone */
        char id[RT_ID_MAX + 1];
        size_t n = ifp_frame_size(f, 2) < sizeof id - 1 ? ifp_frame_size(f, 2) : sizeof id - 1;
        memcpy(id, ifp_frame_data(f, 2), n);
        id[n] = '\0';
        rt_req_t *r = rt_reqtable_find_client(R->reqs, ident, (int)ilen, id);
        if (r) {
            R->st.client_gone++;
            rt_flight_finish_as(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE, NULL, 1, RT_MSTATUS_CLIENT_GONE);
        }
    } else if (frame_is(f, 1, "M") && f->n == 3) {
        ifp_buf_t b = {0};
        rt_metrics_render(R, &b);
        if (b.oom) rt_log(R, RT_LOG_EVENT, "metrics: out of memory");
        answer(R, ident, ilen, "M", ifp_frame_data(f, 2), ifp_frame_size(f, 2), b.oom ? "" : b.p,
               b.oom ? 0 : b.len);
        ifp_buf_free(&b);
    } else if (frame_is(f, 1, "H") && f->n == 3) {
        char text[32];
        int n = snprintf(text, sizeof text, "%d %d", rt_live_groups(R), rt_ready(R));
        answer(R, ident, ilen, "H", ifp_frame_data(f, 2), ifp_frame_size(f, 2), text, (size_t)n);
    } else {
        rt_log(R, RT_LOG_CLIENT, "HTTP bridge: an unknown message (%d frames) dropped", f->n);
    }
}

/* The model's id: [http] model_id, or the model file's stem
 * ("../models/ifp-mix/ifp-mix.gguf" -> "ifp-mix"). */
static void model_id(const rt_router_t *R, char *out, size_t cap) {
    if (R->cfg.http_model_id[0]) {
        snprintf(out, cap, "%s", R->cfg.http_model_id);
        return;
    }
    const char *base = strrchr(R->cfg.model, '/');
    base = base ? base + 1 : R->cfg.model;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0) n -= 5;
    snprintf(out, cap, "%.*s", (int)n, base);
}

int rt_router_start_http(rt_router_t *R, ifp_err_t *err) {
    if (strcmp(R->cfg.http_listen, "off") == 0) return IFP_OK;
    static char id[IFP_CFG_NAME]; /* the gateway keeps the pointer; one router per process */
    model_id(R, id, sizeof id);
    int auth = rt_http_auth(&R->cfg);
    rt_http_params_t p = {
        .cfg = &R->cfg,
        .zctx = R->zctx,
        .bridge = R->hsock_ep,
        .tok = R->tok,
        .lim = {.model_id = id,
                .max_tokens_limit = (uint32_t)R->cfg.max_tokens_limit,
                .max_prompt_bytes = R->lim.max_prompt_bytes,
                .max_prompt_tokens = R->lim.ctx - 1,
                .vocab = R->lim.vocab,
                .chat_template = strcmp(R->cfg.http_chat_template, "plain") == 0 ? OAI_TEMPLATE_PLAIN
                                                                                  : OAI_TEMPLATE_INSTRUCT},
        .keys_dir = R->keys_dir,
        .auth = auth,
    };
    if (!auth)
        ifp_logf("ifp-router", "WARNING: [http] auth = %s: the HTTP API takes requests without an API key",
                 R->cfg.http_auth);
    int rc = rt_http_new(&p, &R->http, err);
    if (rc) return rc;
    ifp_logf("ifp-router", "HTTP API on %s://%s (model \"%s\"%s)", R->cfg.http_tls_cert[0] ? "https" : "http",
             rt_http_address(R->http), id, auth ? ", API keys required" : "");
    return IFP_OK;
}
