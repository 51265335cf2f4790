/* oai.h — the OpenAI HTTP API's JSON, in and out (no sockets, no HTTP):
 * request bodies of POST /v1/completions and /v1/chat/completions checked
 * and turned into an ifp.Request, and the response bodies, Server-Sent
 * Events chunks and errors written in the OpenAI schema.  router/http.c
 * (the HTTP gateway) is its one user; tests/test_oai.c and
 * tests/fuzz/fuzz_http_body.c drive it directly.
 *
 * Every string taken from a body must be valid UTF-8 without NUL bytes
 * (JSON "\u0000" included); a field of the wrong type, out of range, or not
 * supported is refused with HTTP 400 and a message that names the field
 * ("max_tokens: must be an integer from 1 to 4096, got 1e+30").  Fields the
 * API has and this server ignores harmlessly (presence_penalty = 0, ...) are
 * accepted; unknown fields are ignored, as the OpenAI API does. */
#ifndef RT_OAI_H
#define RT_OAI_H

#include <stddef.h>
#include <stdint.h>

#include "jsonw.h"
#include "wire.h"

typedef enum { OAI_COMPLETIONS = 0, OAI_CHAT = 1 } oai_kind_t;

/* Chat templates: how messages become the prompt text (docs/HTTP.md).
 *   OAI_TEMPLATE_INSTRUCT  ifp-mix's instruct format (models/ifp-mix/MODEL_CARD.md):
 *       earlier turns "Instruction: <user>\nResponse: <assistant>\n" ...,
 *       the last user turn "Instruction: <user>\nResponse:"; a system message
 *       becomes the first Instruction and the user's turn its "Input: ...\n"
 *   OAI_TEMPLATE_PLAIN     "<role>: <content>\n" per message, then "assistant:" */
typedef enum { OAI_TEMPLATE_INSTRUCT = 0, OAI_TEMPLATE_PLAIN = 1 } oai_template_t;

typedef struct {
    const char *model_id;   /* the one model this router serves ("ifp-mix": the model file's stem) */
    uint32_t max_tokens_limit; /* the largest max_tokens accepted ([router] max_tokens_limit) */
    size_t max_prompt_bytes;   /* the longest prompt text (after the chat template) */
    int max_prompt_tokens;     /* the most prompt token ids (a prompt given as ids): ctx - 1 */
    int vocab;                 /* token ids are 0..vocab-1 */
    oai_template_t chat_template;
} oai_limits_t;

#define OAI_ID_MAX 64
#define OAI_USER_MAX 256
#define OAI_MSG_MAX 512

/* A checked request.  req is ready to send (its strings and arrays point into
 * this struct's owned storage); the rest is what the response needs. */
typedef struct {
    oai_kind_t kind;
    Ifp__Request req;      /* id left NULL: the gateway sets it */
    int has_seed;          /* "seed" was given (else req.seed is 0 and the gateway picks one) */
    int stream;
    int include_usage;     /* stream_options.include_usage (usage is sent in the final chunk either way) */
    int logprobs;          /* completions: "logprobs": 0 or 1; chat: "logprobs": true */
    char user[OAI_USER_MAX + 1];
    const char *mask_name; /* "input", "dense" or "task" (for the ifp object) */
    /* owned storage behind req */
    char *prompt, *task;
    int32_t *prompt_ids;
    char *stop[4];
} oai_request_t;

/* An error: HTTP status, OpenAI error type, message, the offending field
 * (param, "" if none) and code ("" or e.g. "model_not_found"). */
typedef struct {
    int status;
    char type[48];
    char message[OAI_MSG_MAX];
    char param[64];
    char code[48];
} oai_error_t;

/* Parses and checks body[0..len) (not NUL-terminated) of kind; on success
 * fills *out (release with oai_request_free) and returns 0; else fills *err
 * (status 400, or 404 for an unknown model) and returns -1. */
int oai_parse(oai_kind_t kind, const char *body, size_t len, const oai_limits_t *lim, oai_request_t *out,
              oai_error_t *err);
void oai_request_free(oai_request_t *r);

/* Error bodies: {"error": {"message", "type", "param", "code"}} (param and code null when ""). */
void oai_error_set(oai_error_t *e, int status, const char *type, const char *param, const char *code,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void oai_write_error(ifp_buf_t *b, const oai_error_t *e);

/* What one answer's response needs besides the request. */
typedef struct {
    const char *id;        /* "cmpl-..." / "chatcmpl-..." */
    int64_t created;       /* unix seconds */
    const char *model;
    size_t text_offset;    /* streaming: bytes of text sent before this chunk (logprobs.text_offset of a
                            * completions chunk); 0 otherwise */
} oai_meta_t;

/* The "finish_reason" string of an ifp.FinishReason: "stop" (EOS, stop
 * string), "length", or NULL (none yet, cancelled, error). */
const char *oai_finish_reason(int finish);

/* The whole non-streaming response (object "text_completion" or
 * "chat.completion") from the router's Reply: choices[0] with the text (or
 * message), logprobs when asked (the sampled tokens' from logprobs[]:
 * n_tokens of them — fewer when logprobs is rep->logprobs and
 * rep->n_logprobs is smaller — with the token strings from pieces[] when
 * non-NULL),
 * finish_reason, usage, and the "ifp" object (group, cluster, coverage,
 * mask, predictor_ms, replays). */
void oai_write_response(ifp_buf_t *b, const oai_request_t *q, const oai_meta_t *m, const Ifp__Reply *rep,
                        const float *logprobs, const char *const *pieces);

/* One SSE event "data: {chunk}\n\n" with text[0..n) (complete UTF-8
 * sequences: the gateway holds back a partial one), the sampled token's
 * logprob when asked (token_text its string), finish_reason null.  A chat
 * stream's first chunk carries delta.role "assistant" (first != 0). */
void oai_write_chunk(ifp_buf_t *b, const oai_request_t *q, const oai_meta_t *m, const char *text, size_t n,
                     int first, int has_logprob, float logprob, const char *token_text, size_t token_len);
/* The final chunk: finish_reason, usage and the "ifp" object (text, if
 * any, is what was held back), then "data: [DONE]\n\n". */
void oai_write_final(ifp_buf_t *b, const oai_request_t *q, const oai_meta_t *m, const Ifp__Reply *rep,
                     const char *text, size_t n, int first);
/* An error in a stream that already started: "data: {"error": ...}\n\n"
 * then "data: [DONE]\n\n". */
void oai_write_stream_error(ifp_buf_t *b, const oai_error_t *e);

/* GET /v1/models and GET /v1/models/ID bodies. */
void oai_write_models(ifp_buf_t *b, const char *model_id, int64_t created);
void oai_write_model(ifp_buf_t *b, const char *model_id, int64_t created);

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * sequence (an invalid byte counts as complete: it is written as U+FFFD). */
size_t oai_utf8_complete(const char *s, size_t n);

#endif
