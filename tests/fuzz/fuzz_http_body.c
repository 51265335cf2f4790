/* fuzz_http_body — an HTTP request body as the gateway (router/http.c) hands
 * it to router/oai.h, and the answers written for it.
 *
 * Input: byte 0 picks the endpoint and limits — bit 0: chat (else
 * completions), bit 1: the plain chat template (else instruct), bit 2: tiny
 * limits (so the length checks are reached) — and the rest is the body.
 *
 * Refused: status 400 or 404 (500 only for a failed allocation), a
 * non-empty message that starts with "param: " when a param is named, and
 * the error body is valid JSON.  Accepted: what the request promises the
 * router (limits, UTF-8 without NUL; the packed Request passes
 * ifp_wire_check_text, as rt_on_client checks it), then a response, stream
 * chunks and the final chunk for a fake Reply whose text and token pieces
 * are bytes of the input: every SSE event is one line of valid JSON, and
 * text that is valid UTF-8 reads back unchanged. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "oai.h"

static const oai_limits_t REAL = {.model_id = "ifp-mix",
                                  .max_tokens_limit = 4096,
                                  .max_prompt_bytes = 4096,
                                  .max_prompt_tokens = 255,
                                  .vocab = 2048};
static const oai_limits_t TINY = {.model_id = "ifp-mix",
                                  .max_tokens_limit = 16,
                                  .max_prompt_bytes = 48,
                                  .max_prompt_tokens = 4,
                                  .vocab = 300};

static void check_text(const char *what, const char *s, size_t max) {
    size_t n = ifp_fuzz_touch_str(s);
    FUZZ_CHECK(n <= max, "%s: %zu bytes > %zu", what, n, max);
    FUZZ_CHECK(ifp_fuzz_valid_utf8(s, n), "%s: invalid UTF-8", what);
}

/* Each "data: X\n\n" event of b is one line; X is "[DONE]" (last, when
 * done) or valid JSON.  Returns the number of events. */
static int check_sse(const ifp_buf_t *b, int done) {
    FUZZ_CHECK(!b->oom, "out of memory");
    const char *s = b->p, *end = b->p + b->len;
    int n = 0, saw_done = 0;
    while (s < end) {
        FUZZ_CHECK(!saw_done, "an event after [DONE]");
        FUZZ_CHECK(end - s > 6 && memcmp(s, "data: ", 6) == 0, "event %d does not start with 'data: '", n);
        s += 6;
        const char *e = strstr(s, "\n\n");
        FUZZ_CHECK(e != NULL, "event %d not ended by a blank line", n);
        FUZZ_CHECK(memchr(s, '\n', (size_t)(e - s)) == NULL, "event %d spans lines", n);
        if (e - s == 6 && memcmp(s, "[DONE]", 6) == 0) {
            saw_done = 1;
        } else {
            cJSON *j = cJSON_ParseWithLength(s, (size_t)(e - s));
            FUZZ_CHECK(j != NULL, "event %d is not JSON: %.*s", n, (int)(e - s), s);
            cJSON_Delete(j);
        }
        s = e + 2;
        n++;
    }
    FUZZ_CHECK(saw_done == done, "[DONE] %s", done ? "missing" : "unexpected");
    return n;
}

static void check_refusal(const oai_error_t *e) {
    FUZZ_CHECK(e->status == 400 || e->status == 404 || e->status == 500, "status %d", e->status);
    size_t n = strnlen(e->message, sizeof e->message);
    FUZZ_CHECK(n > 0 && n < sizeof e->message, "no message");
    FUZZ_CHECK(strnlen(e->param, sizeof e->param) < sizeof e->param, "param not terminated");
    if (e->param[0]) {
        size_t pl = strlen(e->param);
        FUZZ_CHECK(strncmp(e->message, e->param, pl) == 0 && e->message[pl] == ':',
                   "message '%s' does not start with its param '%s'", e->message, e->param);
    }
    if (e->status == 404) FUZZ_CHECK(strcmp(e->code, "model_not_found") == 0, "404 code '%s'", e->code);
    ifp_buf_t b = {0};
    oai_write_error(&b, e);
    cJSON *j = cJSON_Parse(b.p);
    FUZZ_CHECK(j != NULL, "error body is not JSON: %s", b.p);
    cJSON_Delete(j);
    ifp_buf_reset(&b);
    oai_write_stream_error(&b, e);
    check_sse(&b, 1);
    ifp_buf_free(&b);
}

/* What an accepted request promises the gateway and the router. */
static void check_request(const oai_request_t *q, const oai_limits_t *lim) {
    const Ifp__Request *r = &q->req;
    FUZZ_CHECK(r->id == NULL, "id set");
    if (r->n_prompt_tokens) {
        FUZZ_CHECK(r->n_prompt_tokens <= (size_t)lim->max_prompt_tokens, "%zu prompt ids", r->n_prompt_tokens);
        for (size_t i = 0; i < r->n_prompt_tokens; i++)
            FUZZ_CHECK(r->prompt_tokens[i] >= 0 && r->prompt_tokens[i] < lim->vocab, "id %d", r->prompt_tokens[i]);
    } else {
        check_text("prompt", r->prompt, lim->max_prompt_bytes);
    }
    FUZZ_CHECK(q->kind == OAI_COMPLETIONS || r->n_prompt_tokens == 0, "chat with token ids");
    FUZZ_CHECK(r->max_tokens <= lim->max_tokens_limit, "max_tokens %u", r->max_tokens);
    FUZZ_CHECK(r->temperature >= 0 && r->temperature <= 2, "temperature %g", (double)r->temperature);
    FUZZ_CHECK(r->top_p > 0 && r->top_p <= 1, "top_p %g", (double)r->top_p);
    FUZZ_CHECK(q->has_seed || r->seed == 0, "seed without has_seed");
    FUZZ_CHECK(r->seed <= (uint64_t)INT64_MAX, "seed %llu", (unsigned long long)r->seed);
    FUZZ_CHECK(r->n_stop <= 4, "%zu stops", r->n_stop);
    for (size_t i = 0; i < r->n_stop; i++) {
        check_text("stop", r->stop[i], 64);
        FUZZ_CHECK(r->stop[i][0], "empty stop");
    }
    check_text("user", q->user, OAI_USER_MAX);
    FUZZ_CHECK(r->stream == q->stream && r->logprobs == (q->logprobs != 0), "flags differ");
    FUZZ_CHECK(!q->include_usage || q->stream, "include_usage without stream");
    switch (r->mask_mode) {
    case IFP__MASK_MODE__MASK_INPUT: FUZZ_CHECK(strcmp(q->mask_name, "input") == 0, "mask_name"); break;
    case IFP__MASK_MODE__MASK_DENSE: FUZZ_CHECK(strcmp(q->mask_name, "dense") == 0, "mask_name"); break;
    case IFP__MASK_MODE__MASK_TASK:
        FUZZ_CHECK(strcmp(q->mask_name, "task") == 0, "mask_name");
        check_text("task", r->task, 4096);
        FUZZ_CHECK(r->task[0], "empty task");
        break;
    default: FUZZ_CHECK(0, "mask_mode %d", (int)r->mask_mode);
    }
    /* what the router's frontend checks of every Request it decodes */
    Ifp__Request copy = *r;
    copy.id = "fuzz-1";
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &copy;
    size_t len = protobuf_c_message_get_packed_size(&m.base);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL, "malloc");
    protobuf_c_message_pack(&m.base, buf);
    char why[256];
    FUZZ_CHECK(ifp_wire_check_text(&ifp__client_message__descriptor, buf, len, why, sizeof why) == 0,
               "packed request refused: %s", why);
    free(buf);
}

/* The answers for a fake Reply built from the input bytes. */
static void check_answers(const oai_request_t *q, const uint8_t *data, size_t size) {
    size_t tn = size < 200 ? size : 200;
    const char *text = (const char *)data;
    enum { NT = 6 };
    char piece_buf[NT][8];
    const char *pieces[NT];
    float lp[NT];
    for (int i = 0; i < NT; i++) {
        size_t off = (size_t)i * 3, k = 0;
        for (; k < 7 && off + k < size; k++) piece_buf[i][k] = (char)(data[off + k] ? data[off + k] : 'x');
        piece_buf[i][k] = '\0';
        pieces[i] = piece_buf[i];
        lp[i] = i == 4 ? -INFINITY : i == 5 ? NAN : -(float)i * 0.5f;
    }
    int32_t tokens[NT] = {0};
    uint32_t replays[2] = {3, 5};
    Ifp__Usage usage = IFP__USAGE__INIT;
    usage.prompt_tokens = 7, usage.completion_tokens = NT;
    Ifp__Timings timings = IFP__TIMINGS__INIT;
    timings.predictor_ms = size ? data[0] / 3.0 : 0;
    Ifp__Reply rep = IFP__REPLY__INIT;
    rep.n_tokens = NT, rep.tokens = tokens;
    rep.text.data = (uint8_t *)text, rep.text.len = tn;
    rep.finish = size ? data[size - 1] % 7 : 0;
    rep.usage = &usage;
    rep.timings = size & 1 ? &timings : NULL;
    rep.group = "g0";
    rep.cluster = size & 2 ? -1 : 3;
    rep.coverage = 0.5;
    rep.n_replays = size & 4 ? 2 : 0;
    rep.replays = replays;
    oai_meta_t m = {.id = q->kind == OAI_CHAT ? "chatcmpl-1" : "cmpl-1", .created = 1, .model = "ifp-mix"};

    ifp_buf_t b = {0};
    oai_write_response(&b, q, &m, &rep, lp, size & 8 ? pieces : NULL);
    FUZZ_CHECK(!b.oom, "out of memory");
    cJSON *j = cJSON_Parse(b.p);
    FUZZ_CHECK(j != NULL, "response is not JSON: %s", b.p);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const cJSON *t = q->kind == OAI_CHAT ? cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content")
                                         : cJSON_GetObjectItem(c0, "text");
    FUZZ_CHECK(cJSON_IsString(t), "no text in the response");
    if (ifp_fuzz_valid_utf8(text, tn) && !memchr(text, 0, tn))
        FUZZ_CHECK(strlen(t->valuestring) == tn && memcmp(t->valuestring, text, tn) == 0, "text changed");
    cJSON_Delete(j);

    /* a stream: held-back partial UTF-8 as the gateway does it */
    size_t half = oai_utf8_complete(text, tn / 2);
    FUZZ_CHECK(half <= tn / 2 && half + 3 >= tn / 2, "utf8_complete %zu of %zu", half, tn / 2);
    ifp_buf_reset(&b);
    oai_write_chunk(&b, q, &m, text, half, 1, 1, lp[0], pieces[0], strlen(pieces[0]));
    check_sse(&b, 0);
    ifp_buf_reset(&b);
    m.text_offset = half;
    oai_write_chunk(&b, q, &m, text + half, tn - half, 0, size & 16, lp[4], text, tn);
    check_sse(&b, 0);
    ifp_buf_reset(&b);
    oai_write_final(&b, q, &m, &rep, text, tn, size & 32);
    check_sse(&b, 1);
    ifp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    oai_kind_t kind = data[0] & 1 ? OAI_CHAT : OAI_COMPLETIONS;
    oai_limits_t lim = data[0] & 4 ? TINY : REAL;
    lim.chat_template = data[0] & 2 ? OAI_TEMPLATE_PLAIN : OAI_TEMPLATE_INSTRUCT;
    /* a copy of exactly the body's size: ASan sees a read past its end */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    memcpy(body, data + 1, len);
    oai_request_t q;
    oai_error_t e;
    int rc = oai_parse(kind, body, len, &lim, &q, &e);
    if (rc == 0) {
        FUZZ_CHECK(q.kind == kind, "kind");
        check_request(&q, &lim);
        check_answers(&q, data + 1, len);
        oai_request_free(&q);
    } else {
        FUZZ_CHECK(rc == -1, "oai_parse returned %d", rc);
        check_refusal(&e);
    }
    free(body);
    return 0;
}
