/* oai_write.c — the OpenAI API's response bodies, Server-Sent Events chunks,
 * errors and model lists (router/oai.h).  Every string goes through
 * ifp_buf_json_str, so the output is valid JSON whatever bytes the model
 * produced (invalid UTF-8 becomes U+FFFD). */
#include <inttypes.h>
#include <string.h>

#include "oai.h"

/* ---------------------------------------------------------------- pieces */

/* A NUL-terminated string as a JSON string (NULL as ""). */
static void jstr(ifp_buf_t *b, const char *s) { ifp_buf_json_str(b, s ? s : "", s ? strlen(s) : 0); }
static void put(ifp_buf_t *b, const char *s) { ifp_buf_append(b, s, strlen(s)); }

const char *oai_finish_reason(int finish) {
    switch (finish) {
    case IFP__FINISH_REASON__FINISH_EOS:
    case IFP__FINISH_REASON__FINISH_STOP: return "stop";
    case IFP__FINISH_REASON__FINISH_LENGTH: return "length";
    default: return NULL;
    }
}

/* {"id": ..., "object": ..., "created": ..., "model": ...,  (left open) */
static void head(ifp_buf_t *b, const oai_meta_t *m, const char *object) {
    put(b, "{\"id\":");
    jstr(b, m->id);
    ifp_buf_printf(b, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":", object, m->created);
    jstr(b, m->model);
}

static void finish_reason(ifp_buf_t *b, int finish) {
    const char *f = oai_finish_reason(finish);
    put(b, ",\"finish_reason\":");
    if (f)
        jstr(b, f);
    else
        put(b, "null");
}

/* ,"usage":{...},"ifp":{...} */
static void usage_and_ifp(ifp_buf_t *b, const oai_request_t *q, const Ifp__Reply *rep) {
    uint64_t pt = rep->usage ? rep->usage->prompt_tokens : rep->n_prompt_tokens;
    uint64_t ct = rep->usage ? rep->usage->completion_tokens : rep->n_tokens;
    ifp_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%" PRIu64 ",\"completion_tokens\":%" PRIu64
                      ",\"total_tokens\":%" PRIu64 "}",
                   pt, ct, pt + ct);
    put(b, ",\"ifp\":{\"group\":");
    jstr(b, rep->group);
    ifp_buf_printf(b, ",\"cluster\":%d,\"dense\":%s,\"coverage\":", (int)rep->cluster,
                   rep->cluster < 0 ? "true" : "false");
    ifp_buf_json_float(b, rep->coverage);
    put(b, ",\"mask\":");
    jstr(b, q->mask_name);
    put(b, ",\"predictor_ms\":");
    if (rep->timings)
        ifp_buf_json_float(b, rep->timings->predictor_ms);
    else
        put(b, "null");
    put(b, ",\"replays\":[");
    for (size_t i = 0; i < rep->n_replays; i++) ifp_buf_printf(b, "%s%u", i ? "," : "", (unsigned)rep->replays[i]);
    put(b, "]}");
}

/* One entry of a chat logprobs.content list. */
static void chat_logprob(ifp_buf_t *b, const char *tok, size_t n, float lp) {
    put(b, "{\"token\":");
    ifp_buf_json_str(b, tok ? tok : "", tok ? n : 0);
    put(b, ",\"logprob\":");
    ifp_buf_json_float(b, lp);
    put(b, ",\"bytes\":[");
    for (size_t i = 0; tok && i < n; i++) ifp_buf_printf(b, "%s%u", i ? "," : "", (unsigned char)tok[i]);
    put(b, "],\"top_logprobs\":[]}");
}

/* ---------------------------------------------------------------- whole responses */

void oai_write_response(ifp_buf_t *b, const oai_request_t *q, const oai_meta_t *m, const Ifp__Reply *rep,
                        const float *logprobs, const char *const *pieces) {
    const int chat = q->kind == OAI_CHAT;
    const char *text = (const char *)rep->text.data;
    size_t text_len = text ? rep->text.len : 0;
    head(b, m, chat ? "chat.completion" : "text_completion");
    put(b, ",\"choices\":[{\"index\":0,");
    if (chat) {
        put(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        ifp_buf_json_str(b, text, text_len);
        put(b, "},");
    } else {
        put(b, "\"text\":");
        ifp_buf_json_str(b, text, text_len);
        put(b, ",");
    }
    put(b, "\"logprobs\":");
    size_t n = rep->n_tokens;
    if (logprobs == rep->logprobs && rep->n_logprobs < n) n = rep->n_logprobs; /* the Reply's own: its length */
    if (!q->logprobs || !logprobs) {
        put(b, "null");
    } else if (chat) {
        put(b, "{\"content\":[");
        for (size_t i = 0; i < n; i++) {
            const char *tok = pieces ? pieces[i] : NULL;
            if (i) put(b, ",");
            chat_logprob(b, tok, tok ? strlen(tok) : 0, logprobs[i]);
        }
        put(b, "]}");
    } else {
        put(b, "{\"tokens\":[");
        for (size_t i = 0; i < n; i++) {
            if (i) put(b, ",");
            jstr(b, pieces ? pieces[i] : NULL);
        }
        put(b, "],\"token_logprobs\":[");
        for (size_t i = 0; i < n; i++) {
            if (i) put(b, ",");
            ifp_buf_json_float(b, logprobs[i]);
        }
        put(b, "],\"top_logprobs\":null,\"text_offset\":[");
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            ifp_buf_printf(b, "%s%zu", i ? "," : "", off);
            off += pieces && pieces[i] ? strlen(pieces[i]) : 0;
        }
        put(b, "]}");
    }
    finish_reason(b, rep->finish);
    put(b, "}]");
    usage_and_ifp(b, q, rep);
    put(b, "}");
}

/* ---------------------------------------------------------------- streaming */

/* A chat stream's first event: delta {"role": "assistant", "content": ""}. */
static void role_event(ifp_buf_t *b, const oai_meta_t *m) {
    put(b, "data: ");
    head(b, m, "chat.completion.chunk");
    put(b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
           "\"finish_reason\":null}]}\n\n");
}

void oai_write_chunk(ifp_buf_t *b, const oai_request_t *q, const oai_meta_t *m, const char *text, size_t n,
                     int first, int has_logprob, float logprob, const char *token_text, size_t token_len) {
    const int chat = q->kind == OAI_CHAT;
    if (!text) n = 0;
    if (chat && first) {
        role_event(b, m);
        if (n == 0 && !(has_logprob && q->logprobs)) return;
    }
    put(b, "data: ");
    head(b, m, chat ? "chat.completion.chunk" : "text_completion");
    if (chat) {
        put(b, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        ifp_buf_json_str(b, text, n);
        put(b, "},\"logprobs\":");
    } else {
        put(b, ",\"choices\":[{\"text\":");
        ifp_buf_json_str(b, text, n);
        put(b, ",\"index\":0,\"logprobs\":");
    }
    if (!has_logprob || !q->logprobs) {
        put(b, "null");
    } else if (chat) {
        put(b, "{\"content\":[");
        chat_logprob(b, token_text, token_len, logprob);
        put(b, "]}");
    } else {
        put(b, "{\"tokens\":[");
        ifp_buf_json_str(b, token_text ? token_text : "", token_text ? token_len : 0);
        put(b, "],\"token_logprobs\":[");
        ifp_buf_json_float(b, logprob);
        ifp_buf_printf(b, "],\"top_logprobs\":null,\"text_offset\":[%zu]}", m->text_offset);
    }
    put(b, ",\"finish_reason\":null}]}\n\n");
}

void oai_write_final(ifp_buf_t *b, const oai_request_t *q, const oai_meta_t *m, const Ifp__Reply *rep,
                     const char *text, size_t n, int first) {
    const int chat = q->kind == OAI_CHAT;
    if (!text) n = 0;
    if (chat && first) role_event(b, m);
    put(b, "data: ");
    head(b, m, chat ? "chat.completion.chunk" : "text_completion");
    if (chat) {
        put(b, ",\"choices\":[{\"index\":0,\"delta\":{");
        if (n) {
            put(b, "\"content\":");
            ifp_buf_json_str(b, text, n);
        }
        put(b, "},\"logprobs\":null");
    } else {
        put(b, ",\"choices\":[{\"text\":");
        ifp_buf_json_str(b, text, n);
        put(b, ",\"index\":0,\"logprobs\":null");
    }
    finish_reason(b, rep->finish);
    put(b, "}]");
    usage_and_ifp(b, q, rep);
    put(b, "}\n\ndata: [DONE]\n\n");
}

/* ---------------------------------------------------------------- errors, models */

void oai_write_error(ifp_buf_t *b, const oai_error_t *e) {
    put(b, "{\"error\":{\"message\":");
    ifp_buf_json_str(b, e->message, strnlen(e->message, sizeof e->message));
    put(b, ",\"type\":");
    ifp_buf_json_str(b, e->type, strnlen(e->type, sizeof e->type));
    put(b, ",\"param\":");
    if (e->param[0])
        ifp_buf_json_str(b, e->param, strnlen(e->param, sizeof e->param));
    else
        put(b, "null");
    put(b, ",\"code\":");
    if (e->code[0])
        ifp_buf_json_str(b, e->code, strnlen(e->code, sizeof e->code));
    else
        put(b, "null");
    put(b, "}}");
}

void oai_write_stream_error(ifp_buf_t *b, const oai_error_t *e) {
    put(b, "data: ");
    oai_write_error(b, e);
    put(b, "\n\ndata: [DONE]\n\n");
}

void oai_write_model(ifp_buf_t *b, const char *model_id, int64_t created) {
    put(b, "{\"id\":");
    jstr(b, model_id);
    ifp_buf_printf(b, ",\"object\":\"model\",\"created\":%" PRId64 ",\"owned_by\":\"ifp\"}", created);
}

void oai_write_models(ifp_buf_t *b, const char *model_id, int64_t created) {
    put(b, "{\"object\":\"list\",\"data\":[");
    oai_write_model(b, model_id, created);
    put(b, "]}");
}

/* ---------------------------------------------------------------- UTF-8 */

/* 1 if s[0..k) (k < the length its lead byte announces) can still grow into
 * a valid sequence. */
static int could_complete(const unsigned char *s, size_t k) {
    unsigned c = s[0];
    for (size_t i = 1; i < k; i++) {
        unsigned lo = 0x80, hi = 0xBF;
        if (i == 1) { /* RFC 3629's limits on the second byte */
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        }
        if (s[i] < lo || s[i] > hi) return 0;
    }
    return 1;
}

size_t oai_utf8_complete(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    /* the last lead byte within 3 bytes of the end */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned c = u[n - back];
        if ((c & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
        size_t want = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (want > back && could_complete(u + n - back, back)) return n - back;
        return n;
    }
    return n;
}
