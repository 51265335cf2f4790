/* test_oai — the OpenAI API's JSON (router/oai.h): every request field
 * accepted and refused, the chat templates, the responses and SSE chunks
 * read back with cJSON field by field, and a corpus of malformed bodies
 * (bad JSON, wrong types, huge numbers, deep nesting, invalid UTF-8, NUL,
 * 10 MB) that must each give a 400 with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "oai.h"
#include "testutil.h"

static const oai_limits_t LIM = {.model_id = "ifp-mix",
                                 .max_tokens_limit = 4096,
                                 .max_prompt_bytes = 4000,
                                 .max_prompt_tokens = 255,
                                 .vocab = 2048,
                                 .chat_template = OAI_TEMPLATE_INSTRUCT};

#define CMPL "\"model\":\"ifp-mix\",\"prompt\":\"x\""
#define CHAT "\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

/* The error as the gateway writes it must be valid JSON of the OpenAI shape. */
static void check_error_body(const oai_error_t *e) {
    ifp_buf_t b = {0};
    oai_write_error(&b, e);
    cJSON *j = cJSON_Parse(b.p);
    assert_non_null(j);
    cJSON *err = cJSON_GetObjectItem(j, "error");
    assert_true(cJSON_IsObject(err));
    ifp_buf_t m = {0}; /* the message as JSON writes it (invalid UTF-8 as U+FFFD) */
    ifp_buf_json_str(&m, e->message, strlen(e->message));
    cJSON *mj = cJSON_Parse(m.p);
    assert_string_equal(cJSON_GetObjectItem(err, "message")->valuestring, mj->valuestring);
    cJSON_Delete(mj);
    ifp_buf_free(&m);
    assert_string_equal(cJSON_GetObjectItem(err, "type")->valuestring, e->type);
    cJSON *param = cJSON_GetObjectItem(err, "param"), *code = cJSON_GetObjectItem(err, "code");
    if (e->param[0])
        assert_string_equal(param->valuestring, e->param);
    else
        assert_true(cJSON_IsNull(param));
    if (e->code[0])
        assert_string_equal(code->valuestring, e->code);
    else
        assert_true(cJSON_IsNull(code));
    cJSON_Delete(j);
    ifp_buf_free(&b);
}

static int parse_n(oai_kind_t kind, const char *body, size_t len, const oai_limits_t *lim, oai_request_t *q,
                   oai_error_t *e) {
    int rc = oai_parse(kind, body, len, lim, q, e);
    if (rc == 0) {
        assert_null(q->req.id);
        assert_non_null(q->req.prompt);
        assert_non_null(q->mask_name);
    } else {
        assert_int_equal(rc, -1);
        assert_true(e->status == 400 || e->status == 404);
        assert_true(strlen(e->message) > 0);
        check_error_body(e);
    }
    return rc;
}

/* Parses a body that must pass (or fails the test, printing the error). */
static void ok(oai_kind_t kind, const char *body, oai_request_t *q) {
    oai_error_t e;
    if (parse_n(kind, body, strlen(body), &LIM, q, &e)) fail_msg("refused %s: %s", body, e.message);
}

/* A body that must fail with status, param and a message containing substr. */
static void refused_n(oai_kind_t kind, const char *body, size_t len, int status, const char *param,
                      const char *substr) {
    oai_request_t q;
    oai_error_t e;
    if (parse_n(kind, body, len, &LIM, &q, &e) == 0) fail_msg("accepted %.200s", body);
    if (e.status != status || strcmp(e.param, param) != 0 || !strstr(e.message, substr))
        fail_msg("%.200s: got %d param '%s' message '%s'; want %d '%s' '%s'", body, e.status, e.param, e.message,
                 status, param, substr);
    assert_string_equal(e.type, "invalid_request_error");
}
static void refused(oai_kind_t kind, const char *body, const char *param, const char *substr) {
    refused_n(kind, body, strlen(body), 400, param, substr);
}
static void refused_status(oai_kind_t kind, const char *body, int status, const char *param, const char *substr) {
    refused_n(kind, body, strlen(body), status, param, substr);
}

/* "{" base "," frag "}" */
static char *with(oai_kind_t kind, const char *frag) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "{%s%s%s}", kind == OAI_CHAT ? CHAT : CMPL, *frag ? "," : "", frag);
    return buf;
}

/* ---------------------------------------------------------------- fields */

static void minimal_defaults(void **unused) {
    (void)unused;
    oai_request_t q;
    ok(OAI_COMPLETIONS, "{\"model\":\"ifp-mix\",\"prompt\":\"Hello\"}", &q);
    assert_string_equal(q.req.prompt, "Hello");
    assert_int_equal(q.req.n_prompt_tokens, 0);
    assert_int_equal(q.req.max_tokens, 0); /* the router's default */
    assert_true(q.req.temperature == 1.0f && q.req.top_p == 1.0f && q.req.top_k == 0);
    assert_int_equal(q.has_seed, 0);
    assert_int_equal(q.req.seed, 0);
    assert_int_equal(q.req.n_stop, 0);
    assert_int_equal(q.stream, 0);
    assert_int_equal(q.logprobs, 0);
    assert_int_equal(q.req.mask_mode, IFP__MASK_MODE__MASK_INPUT);
    assert_string_equal(q.mask_name, "input");
    assert_string_equal(q.user, "");
    oai_request_free(&q);
    oai_request_free(&q); /* twice is harmless */
}

static void every_field_accepted(void **unused) {
    (void)unused;
    oai_request_t q;
    ok(OAI_COMPLETIONS,
       "{\"model\":\"ifp-mix\",\"prompt\":[\"Question: 2+2?\\nAnswer:\"],\"max_tokens\":4096,\"temperature\":0.5,"
       "\"top_p\":0.9,\"top_k\":40,\"seed\":9007199254740993,\"stop\":[\"\\n\",\"Q:\"],\"stream\":true,"
       "\"stream_options\":{\"include_usage\":true},\"n\":1,\"best_of\":1,\"echo\":false,\"suffix\":\"\","
       "\"logprobs\":1,\"presence_penalty\":0,\"frequency_penalty\":0.0,\"logit_bias\":{},\"user\":\"alice\","
       "\"ignore_eos\":true,\"ifp_deadline_ms\":2500,\"ifp_mask\":{\"task\":\"Solve this grade-school math problem.\"},"
       "\"unknown\":{\"deep\":[1,[2,{\"x\":null}]]},\"tools\":[]}",
       &q);
    assert_string_equal(q.req.prompt, "Question: 2+2?\nAnswer:");
    assert_int_equal(q.req.max_tokens, 4096);
    assert_true(q.req.temperature == 0.5f && fabsf(q.req.top_p - 0.9f) < 1e-7f && q.req.top_k == 40);
    assert_int_equal(q.has_seed, 1);
    assert_true(q.req.seed == 9007199254740992ull || q.req.seed == 9007199254740994ull); /* a double's */
    assert_int_equal(q.req.n_stop, 2);
    assert_string_equal(q.req.stop[0], "\n");
    assert_string_equal(q.req.stop[1], "Q:");
    assert_true(q.stream && q.req.stream && q.include_usage);
    assert_true(q.logprobs && q.req.logprobs);
    assert_string_equal(q.user, "alice");
    assert_true(q.req.ignore_eos);
    assert_int_equal(q.req.deadline_ms, 2500);
    assert_int_equal(q.req.mask_mode, IFP__MASK_MODE__MASK_TASK);
    assert_string_equal(q.req.task, "Solve this grade-school math problem.");
    assert_string_equal(q.mask_name, "task");
    oai_request_free(&q);

    ok(OAI_CHAT, with(OAI_CHAT, "\"max_completion_tokens\":7,\"max_tokens\":9,\"logprobs\":true,\"top_logprobs\":0,"
                                "\"seed\":9223372036854775807,\"ifp_mask\":\"dense\",\"stop\":\"END\""), &q);
    assert_int_equal(q.req.max_tokens, 7);
    assert_true(q.logprobs && q.req.logprobs);
    assert_true(q.req.seed == (uint64_t)INT64_MAX);
    assert_int_equal(q.req.mask_mode, IFP__MASK_MODE__MASK_DENSE);
    assert_string_equal(q.mask_name, "dense");
    assert_int_equal(q.req.n_stop, 1);
    assert_string_equal(q.req.stop[0], "END");
    oai_request_free(&q);

    /* null is absent; seed 0 is a seed */
    ok(OAI_COMPLETIONS, with(OAI_COMPLETIONS, "\"max_tokens\":null,\"stop\":null,\"temperature\":null,\"seed\":0,"
                                              "\"suffix\":null,\"logit_bias\":null,\"ifp_mask\":\"input\""), &q);
    assert_int_equal(q.req.max_tokens, 0);
    assert_true(q.req.temperature == 1.0f);
    assert_int_equal(q.has_seed, 1);
    assert_int_equal(q.req.seed, 0);
    oai_request_free(&q);
}

static void prompt_forms(void **unused) {
    (void)unused;
    oai_request_t q;
    ok(OAI_COMPLETIONS, "{\"model\":\"ifp-mix\",\"prompt\":\"\"}", &q); /* BOS alone */
    assert_string_equal(q.req.prompt, "");
    oai_request_free(&q);
    ok(OAI_COMPLETIONS, "{\"model\":\"ifp-mix\",\"prompt\":[1, 50, 2047]}", &q);
    assert_int_equal(q.req.n_prompt_tokens, 3);
    assert_int_equal(q.req.prompt_tokens[0], 1);
    assert_int_equal(q.req.prompt_tokens[2], 2047);
    oai_request_free(&q);
    ok(OAI_COMPLETIONS, "{\"model\":\"ifp-mix\",\"prompt\":[[7, 8.0]]}", &q);
    assert_int_equal(q.req.n_prompt_tokens, 2);
    assert_int_equal(q.req.prompt_tokens[1], 8);
    oai_request_free(&q);
    ok(OAI_COMPLETIONS, "{\"model\":\"ifp-mix\",\"prompt\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \\\\u0000\"}", &q);
    assert_string_equal(q.req.prompt, "caf\xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80 \\u0000");
    oai_request_free(&q);

    const char *bad[][2] = {
        {"{\"model\":\"ifp-mix\"}", "missing"},
        {"{\"model\":\"ifp-mix\",\"prompt\":null}", "missing"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[]}", "empty list"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[\"a\",\"b\"]}", "a list of 2 prompts"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[[1],[2]]}", "a list of 2 prompts"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[[]]}", "prompt[0] is an empty list"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[1,\"a\"]}", "prompt[1] must be a token id"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[-1]}", "from 0 to 2047, got -1"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[2048]}", "got 2048"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[1.5]}", "got 1.5"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[1e400]}", "too large"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[[1,null]]}", "prompt[0][1] must be a token id"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[{}]}", "got an object"},
        {"{\"model\":\"ifp-mix\",\"prompt\":{\"text\":\"x\"}}", "must be a string"},
        {"{\"model\":\"ifp-mix\",\"prompt\":5}", "got 5"},
        {"{\"model\":\"ifp-mix\",\"prompt\":true}", "got true"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"a\xff\"}", "invalid UTF-8 at byte 1"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"\xc0\xaf\"}", "invalid UTF-8 at byte 0"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"\xed\xa0\x80\"}", "invalid UTF-8"}, /* an encoded surrogate */
        {"{\"model\":\"ifp-mix\",\"prompt\":\"\xe2\x82\"}", "invalid UTF-8"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"ab\\u0000cd\"}", "NUL character (\\u0000) at byte 2"},
        {"{\"model\":\"ifp-mix\",\"prompt\":[\"\\u0000\"]}", "NUL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) refused(OAI_COMPLETIONS, bad[i][0], "prompt", bad[i][1]);

    /* the limits: max_prompt_tokens ids, max_prompt_bytes bytes */
    char *b = malloc(20000);
    strcpy(b, "{\"model\":\"ifp-mix\",\"prompt\":[");
    for (int i = 0; i < 255; i++) strcat(b, i ? ",5" : "5");
    strcat(b, "]}");
    ok(OAI_COMPLETIONS, b, &q);
    assert_int_equal(q.req.n_prompt_tokens, 255);
    oai_request_free(&q);
    strcpy(b + strlen(b) - 2, ",5]}");
    refused(OAI_COMPLETIONS, b, "prompt", "256 token ids, at most 255");
    snprintf(b, 20000, "{\"model\":\"ifp-mix\",\"prompt\":\"%4000d\"}", 1);
    ok(OAI_COMPLETIONS, b, &q);
    oai_request_free(&q);
    snprintf(b, 20000, "{\"model\":\"ifp-mix\",\"prompt\":\"%4001d\"}", 1);
    refused(OAI_COMPLETIONS, b, "prompt", "4001 bytes, longer than the 4000");
    free(b);
}

static void model_checked(void **unused) {
    (void)unused;
    refused(OAI_COMPLETIONS, "{\"prompt\":\"x\"}", "model", "missing");
    refused(OAI_CHAT, "{\"model\":null,\"messages\":[]}", "model", "missing");
    refused(OAI_COMPLETIONS, "{\"model\":5,\"prompt\":\"x\"}", "model", "must be a string, got 5");
    refused(OAI_COMPLETIONS, "{\"model\":\"\\u0000\",\"prompt\":\"x\"}", "model", "NUL");
    refused_status(OAI_COMPLETIONS, "{\"model\":\"gpt-4\",\"prompt\":\"x\"}", 404, "model",
                   "model: \"gpt-4\" does not exist; this server serves \"ifp-mix\"");
    refused_status(OAI_CHAT, "{\"model\":\"IFP-MIX\",\"messages\":5}", 404, "model", "serves \"ifp-mix\"");
    refused_status(OAI_CHAT, "{\"model\":\"\",\"messages\":5}", 404, "model", "\"\" does not exist");
    oai_request_t q;
    oai_error_t e;
    assert_int_equal(oai_parse(OAI_COMPLETIONS, "{\"model\":\"x\",\"prompt\":\"p\"}", 26, &LIM, &q, &e), -1);
    assert_string_equal(e.code, "model_not_found");
    assert_int_equal(e.status, 404);
}

/* One row: the fragment added to a good body, the field it names, words of the message. */
typedef struct {
    oai_kind_t kind;
    const char *frag, *param, *substr;
} bad_field_t;

static const bad_field_t BAD_FIELDS[] = {
    {OAI_COMPLETIONS, "\"max_tokens\":0", "max_tokens", "from 1 to 4096, got 0"},
    {OAI_COMPLETIONS, "\"max_tokens\":4097", "max_tokens", "got 4097"},
    {OAI_COMPLETIONS, "\"max_tokens\":1.5", "max_tokens", "got 1.5"},
    {OAI_COMPLETIONS, "\"max_tokens\":-1", "max_tokens", "got -1"},
    {OAI_COMPLETIONS, "\"max_tokens\":1e30", "max_tokens", "must be an integer from 1 to 4096, got 1e+30"},
    {OAI_COMPLETIONS, "\"max_tokens\":1e400", "max_tokens", "too large"},
    {OAI_COMPLETIONS, "\"max_tokens\":-1e400", "max_tokens", "too large"},
    {OAI_COMPLETIONS, "\"max_tokens\":\"16\"", "max_tokens", "got \"16\""},
    {OAI_COMPLETIONS, "\"max_tokens\":true", "max_tokens", "got true"},
    {OAI_COMPLETIONS, "\"max_tokens\":[16]", "max_tokens", "got an array"},
    {OAI_CHAT, "\"max_completion_tokens\":0", "max_completion_tokens", "from 1 to 4096"},
    {OAI_CHAT, "\"max_tokens\":{}", "max_tokens", "got an object"},
    {OAI_CHAT, "\"max_tokens\":0,\"max_completion_tokens\":5", "max_tokens", "got 0"},
    {OAI_COMPLETIONS, "\"temperature\":-0.1", "temperature", "from 0 to 2, got -0.1"},
    {OAI_COMPLETIONS, "\"temperature\":2.5", "temperature", "got 2.5"},
    {OAI_COMPLETIONS, "\"temperature\":\"0\"", "temperature", "got \"0\""},
    {OAI_CHAT, "\"temperature\":1e999", "temperature", "too large"},
    {OAI_COMPLETIONS, "\"top_p\":0", "top_p", "greater than 0 and at most 1, got 0"},
    {OAI_COMPLETIONS, "\"top_p\":1.01", "top_p", "got 1.01"},
    {OAI_CHAT, "\"top_p\":false", "top_p", "got false"},
    {OAI_COMPLETIONS, "\"top_k\":-1", "top_k", "from 0 to 2147483647, got -1"},
    {OAI_COMPLETIONS, "\"top_k\":2.5", "top_k", "got 2.5"},
    {OAI_COMPLETIONS, "\"top_k\":3e9", "top_k", "got 3000000000"},
    {OAI_COMPLETIONS, "\"seed\":-1", "seed", "from 0 to 9223372036854775807, got -1"},
    {OAI_COMPLETIONS, "\"seed\":1e19", "seed", "got 1e+19"},
    {OAI_COMPLETIONS, "\"seed\":0.5", "seed", "got 0.5"},
    {OAI_CHAT, "\"seed\":\"42\"", "seed", "got \"42\""},
    {OAI_COMPLETIONS, "\"stop\":5", "stop", "a string or a list of strings, got 5"},
    {OAI_COMPLETIONS, "\"stop\":\"\"", "stop", "0 bytes; a stop string has 1 to 64"},
    {OAI_COMPLETIONS, "\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "stop", "5 stop strings, at most 4"},
    {OAI_COMPLETIONS, "\"stop\":[\"a\",\"\"]", "stop[1]", "0 bytes"},
    {OAI_COMPLETIONS, "\"stop\":[\"a\",7]", "stop[1]", "must be a string, got 7"},
    {OAI_COMPLETIONS, "\"stop\":[null]", "stop[0]", "got null"},
    {OAI_CHAT,
     "\"stop\":\"0123456789012345678901234567890123456789012345678901234567890123X\"", "stop", "65 bytes"},
    {OAI_CHAT, "\"stop\":[\"\\u0000\"]", "stop[0]", "NUL"},
    {OAI_CHAT, "\"stop\":[\"\xf8\x88\x80\x80\x80\"]", "stop[0]", "invalid UTF-8"},
    {OAI_COMPLETIONS, "\"stream\":1", "stream", "true or false, got 1"},
    {OAI_COMPLETIONS, "\"stream\":\"true\"", "stream", "got \"true\""},
    {OAI_COMPLETIONS, "\"stream_options\":{\"include_usage\":true}", "stream_options", "only allowed when stream"},
    {OAI_CHAT, "\"stream\":true,\"stream_options\":{\"include_usage\":1}", "stream_options.include_usage", "got 1"},
    {OAI_CHAT, "\"stream\":true,\"stream_options\":[]", "stream_options", "must be an object"},
    {OAI_COMPLETIONS, "\"n\":2", "n", "only 1 choice"},
    {OAI_CHAT, "\"n\":0", "n", "from 1 to"},
    {OAI_CHAT, "\"n\":\"1\"", "n", "got \"1\""},
    {OAI_COMPLETIONS, "\"best_of\":3", "best_of", "only 1"},
    {OAI_COMPLETIONS, "\"echo\":true", "echo", "only false"},
    {OAI_COMPLETIONS, "\"echo\":0", "echo", "true or false"},
    {OAI_COMPLETIONS, "\"suffix\":\"end\"", "suffix", "not supported"},
    {OAI_COMPLETIONS, "\"suffix\":5", "suffix", "got 5"},
    {OAI_COMPLETIONS, "\"logprobs\":5", "logprobs", "only the sampled token's log-probability"},
    {OAI_COMPLETIONS, "\"logprobs\":-1", "logprobs", "got -1"},
    {OAI_COMPLETIONS, "\"logprobs\":true", "logprobs", "must be an integer"},
    {OAI_CHAT, "\"logprobs\":1", "logprobs", "true or false, got 1"},
    {OAI_CHAT, "\"logprobs\":true,\"top_logprobs\":3", "top_logprobs", "only the sampled token's"},
    {OAI_CHAT, "\"top_logprobs\":-1", "top_logprobs", "got -1"},
    {OAI_COMPLETIONS, "\"presence_penalty\":0.5", "presence_penalty", "only 0 is supported, got 0.5"},
    {OAI_CHAT, "\"frequency_penalty\":-1", "frequency_penalty", "only 0"},
    {OAI_CHAT, "\"frequency_penalty\":\"0\"", "frequency_penalty", "must be a number"},
    {OAI_COMPLETIONS, "\"presence_penalty\":3", "presence_penalty", "from -2 to 2"},
    {OAI_COMPLETIONS, "\"logit_bias\":{\"50\":10}", "logit_bias", "not supported"},
    {OAI_CHAT, "\"logit_bias\":[]", "logit_bias", "got an array"},
    {OAI_COMPLETIONS, "\"user\":5", "user", "must be a string"},
    {OAI_CHAT, "\"user\":\"a\\u0000\"", "user", "NUL"},
    {OAI_COMPLETIONS, "\"ignore_eos\":\"yes\"", "ignore_eos", "true or false"},
    {OAI_COMPLETIONS, "\"ifp_deadline_ms\":-1", "ifp_deadline_ms", "from 0 to 86400000"},
    {OAI_CHAT, "\"ifp_deadline_ms\":1.5", "ifp_deadline_ms", "integer"},
    {OAI_COMPLETIONS, "\"ifp_mask\":\"sparse\"", "ifp_mask", "got \"sparse\""},
    {OAI_COMPLETIONS, "\"ifp_mask\":2", "ifp_mask", "\"input\", \"dense\" or {\"task\""},
    {OAI_COMPLETIONS, "\"ifp_mask\":{}", "ifp_mask.task", "missing"},
    {OAI_COMPLETIONS, "\"ifp_mask\":{\"task\":\"\"}", "ifp_mask.task", "empty"},
    {OAI_CHAT, "\"ifp_mask\":{\"task\":[\"x\"]}", "ifp_mask.task", "must be a string"},
    {OAI_CHAT, "\"ifp_mask\":{\"task\":\"x\\u0000\"}", "ifp_mask.task", "NUL character (\\u0000) at byte 1"},
    {OAI_CHAT, "\"ifp_mask\":{\"task\":\"\xc3\"}", "ifp_mask.task", "invalid UTF-8 at byte 0"},
    /* a field given twice: parsers differ on which one counts */
    {OAI_COMPLETIONS, "\"max_tokens\":5,\"max_tokens\":6", "max_tokens", "given more than once"},
    {OAI_COMPLETIONS, "\"model\":\"other\"", "model", "given more than once"},
    {OAI_CHAT, "\"stream\":true,\"stream_options\":{\"include_usage\":true,\"include_usage\":false}",
     "stream_options.include_usage", "given more than once"},
    {OAI_CHAT, "\"ifp_mask\":{\"task\":\"a\",\"task\":\"b\"}", "ifp_mask.task", "given more than once"},
};

static void fields_refused(void **unused) {
    (void)unused;
    for (size_t i = 0; i < sizeof BAD_FIELDS / sizeof *BAD_FIELDS; i++) {
        const bad_field_t *r = &BAD_FIELDS[i];
        refused(r->kind, with(r->kind, r->frag), r->param, r->substr);
    }
    /* user at most 256 bytes, ifp_mask.task at most 4096 */
    char frag[5000];
    snprintf(frag, sizeof frag, "\"user\":\"%256d\"", 1);
    oai_request_t q;
    ok(OAI_CHAT, with(OAI_CHAT, frag), &q);
    assert_int_equal(strlen(q.user), 256);
    oai_request_free(&q);
    snprintf(frag, sizeof frag, "\"user\":\"%257d\"", 1);
    refused(OAI_CHAT, with(OAI_CHAT, frag), "user", "257 bytes, at most 256");
    snprintf(frag, sizeof frag, "\"ifp_mask\":{\"task\":\"%4097d\"}", 1);
    refused(OAI_CHAT, with(OAI_CHAT, frag), "ifp_mask.task", "4097 bytes, at most 4096");
}

static void fields_accepted(void **unused) {
    (void)unused;
    const char *good[] = {"\"max_tokens\":1",       "\"max_tokens\":4096.0", "\"temperature\":0",
                          "\"temperature\":2",      "\"top_p\":1",          "\"top_p\":1e-9",
                          "\"top_k\":0",            "\"stop\":[]",          "\"stop\":\"\\n\"",
                          "\"stream\":false",       "\"n\":1",              "\"presence_penalty\":0",
                          "\"frequency_penalty\":-0.0", "\"logit_bias\":{}", "\"user\":\"\"",
                          "\"ignore_eos\":false",   "\"ifp_mask\":null",    "\"stream_options\":null"};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
            oai_request_t q;
            ok((oai_kind_t)k, with((oai_kind_t)k, good[i]), &q);
            oai_request_free(&q);
        }
    oai_request_t q;
    ok(OAI_COMPLETIONS, with(OAI_COMPLETIONS, "\"logprobs\":0,\"echo\":false,\"best_of\":1"), &q);
    assert_int_equal(q.logprobs, 0);
    assert_false(q.req.logprobs);
    oai_request_free(&q);
    /* chat-only and completions-only fields are unknown to the other kind: ignored */
    ok(OAI_CHAT, with(OAI_CHAT, "\"echo\":true,\"best_of\":5,\"suffix\":7"), &q);
    oai_request_free(&q);
    ok(OAI_COMPLETIONS, with(OAI_COMPLETIONS, "\"top_logprobs\":5,\"max_completion_tokens\":0"), &q);
    oai_request_free(&q);
}

/* ---------------------------------------------------------------- chat */

static char *rendered(oai_template_t t, const char *messages) {
    static char prompt[8192];
    char body[8192];
    snprintf(body, sizeof body, "{\"model\":\"ifp-mix\",\"messages\":%s}", messages);
    oai_limits_t lim = LIM;
    lim.chat_template = t;
    oai_request_t q;
    oai_error_t e;
    if (oai_parse(OAI_CHAT, body, strlen(body), &lim, &q, &e)) fail_msg("%s: %s", messages, e.message);
    snprintf(prompt, sizeof prompt, "%s", q.req.prompt);
    oai_request_free(&q);
    return prompt;
}

static void chat_templates(void **unused) {
    (void)unused;
    const oai_template_t I = OAI_TEMPLATE_INSTRUCT, P = OAI_TEMPLATE_PLAIN;
    assert_string_equal(rendered(I, "[{\"role\":\"user\",\"content\":\"Name a color.\"}]"),
                        "Instruction: Name a color.\nResponse:");
    assert_string_equal(rendered(I, "[{\"role\":\"system\",\"content\":\"Translate to French.\"},"
                                    "{\"role\":\"user\",\"content\":\"cat\"}]"),
                        "Instruction: Translate to French.\nInput: cat\nResponse:");
    assert_string_equal(rendered(I, "[{\"role\":\"user\",\"content\":\"Hi\"},"
                                    "{\"role\":\"assistant\",\"content\":\"Hello.\"},"
                                    "{\"role\":\"user\",\"content\":\"Bye\"}]"),
                        "Instruction: Hi\nResponse: Hello.\nInstruction: Bye\nResponse:");
    /* two system messages join; the system text goes with the next user turn only */
    assert_string_equal(rendered(I, "[{\"role\":\"system\",\"content\":\"A\"},"
                                    "{\"role\":\"system\",\"content\":\"B\"},"
                                    "{\"role\":\"user\",\"content\":\"u1\"},"
                                    "{\"role\":\"assistant\",\"content\":\"a1\"},"
                                    "{\"role\":\"user\",\"content\":\"u2\"}]"),
                        "Instruction: A\nB\nInput: u1\nResponse: a1\nInstruction: u2\nResponse:");
    /* text parts join with "\n"; extra keys (name) are ignored */
    assert_string_equal(rendered(I, "[{\"role\":\"user\",\"name\":\"bob\","
                                    "\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                                    "{\"type\":\"text\",\"text\":\"b\"}]}]"),
                        "Instruction: a\nb\nResponse:");
    assert_string_equal(rendered(P, "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                    "{\"role\":\"user\",\"content\":\"Hi\"},"
                                    "{\"role\":\"assistant\",\"content\":\"Hello.\"},"
                                    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Bye\"}]}]"),
                        "system: Be brief.\nuser: Hi\nassistant: Hello.\nuser: Bye\nassistant:");
    assert_string_equal(rendered(P, "[{\"role\":\"user\",\"content\":\"\"}]"), "user: \nassistant:");
}

static void chat_refused(void **unused) {
    (void)unused;
    const char *bad[][3] = {
        {"{\"model\":\"ifp-mix\"}", "messages", "missing"},
        {"{\"model\":\"ifp-mix\",\"messages\":null}", "messages", "missing"},
        {"{\"model\":\"ifp-mix\",\"messages\":[]}", "messages", "empty list"},
        {"{\"model\":\"ifp-mix\",\"messages\":\"hi\"}", "messages", "must be a list of messages, got \"hi\""},
        {"{\"model\":\"ifp-mix\",\"messages\":[5]}", "messages[0]", "must be an object"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "got nothing"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].role",
         "\"system\", \"user\" or \"assistant\", got \"tool\""},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":1,\"content\":\"x\"}]}", "messages[0].role", "got 1"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "missing"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content",
         "missing"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content",
         "got 5"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":[5]}]}", "messages[0].content[0]",
         "must be an object"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
         "messages[0].content[0].type", "only \"text\" parts are supported, got \"image_url\""},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}",
         "messages[0].content[0].text", "must be a string"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"assistant\",\"content\":\"y\"}]}",
         "messages", "the last message must be the user's, got one from \"assistant\""},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "messages",
         "must be the user's"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"user\",\"content\":\"a\\u0000\"}]}",
         "messages[1].content", "NUL character"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"x\"}]}",
         "messages[0].role", "given more than once"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"a\",\"text\":\"b\"}]}]}",
         "messages[0].content[0].text", "given more than once"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\","
         "\"content\":[{\"type\":\"text\",\"text\":\"\xff\"}]}]}",
         "messages[0].content[0].text", "invalid UTF-8"},
        {"{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"system\",\"content\":\"\xc3(\"},"
         "{\"role\":\"user\",\"content\":\"x\"}]}",
         "messages[0].content", "invalid UTF-8 at byte 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) refused(OAI_CHAT, bad[i][0], bad[i][1], bad[i][2]);

    /* max_prompt_bytes counts the rendered prompt: 3986 + 13 + "\nResponse:" (10) > 4000 */
    char *b = malloc(10000);
    snprintf(b, 10000, "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"%3986d\"}]}", 1);
    refused(OAI_CHAT, b, "messages", "4009 bytes after the chat template, longer than the 4000");
    snprintf(b, 10000, "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"%3977d\"}]}", 1);
    oai_request_t q;
    ok(OAI_CHAT, b, &q);
    assert_int_equal(strlen(q.req.prompt), 4000);
    oai_request_free(&q);
    free(b);
}

/* ---------------------------------------------------------------- malformed bodies */

static void malformed_json(void **unused) {
    (void)unused;
    const char *bad[][2] = {
        {"", "empty"},
        {" \n\t ", "empty"},
        {"{", "invalid JSON at byte 0, near '{'; the body ends with 1 unclosed array(s) or object(s)"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"x", "the body ends inside a string"},
        {"{\"a\":[[1,2]", "ends with 2 unclosed"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"x\"} x", "byte 33: more data after the JSON value"},
        {"{\"model\":\"ifp-mix\",\"prompt\":\"x\"}{}", "more data"},
        {"{'model':'ifp-mix'}", "invalid JSON at byte 2, near 'model'"},
        {"{\"model\":\"ifp-mix\",}", "invalid JSON at byte"},
        {"{\"model\" \"ifp-mix\"}", "invalid JSON at byte"},
        {"{\"max_tokens\":01e}", "invalid JSON"},
        {"{\"max_tokens\":016}", "016 is not a JSON number"},
        {"{\"max_tokens\":16.}", "16. is not a JSON number"},
        {"{\"a\":-.5}", "not a JSON number"},
        {"{\"a\":1.5e}", "not a JSON number"},
        {"{\"a\":NaN}", "invalid JSON"},
        {"{\"a\":Infinity}", "invalid JSON"},
        {"{\"a\":-}", "invalid JSON"},
        {"{\"a\":tru}", "invalid JSON"},
        {"{\"a\":\"\\x\"}", "invalid JSON"},
        {"{\"a\":\"\\u12\"}", "invalid JSON"},
        {"{\"a\":\"\\ud800\"}", "invalid JSON"},      /* lone high surrogate */
        {"{\"a\":\"\\ud800\\u0041\"}", "invalid JSON"}, /* high surrogate + non-surrogate */
        {"{\"a\":\"\\udc00\"}", "invalid JSON"},      /* lone low surrogate */
        {"{\"prompt\":\"a\tb\"}", "a raw control character (0x09) in a string"},
        {"{\"prompt\":\"a\nb\"}", "raw control character (0x0a)"},
        {"{\x01}", "a control character (0x01)"},
        {"[1,2]", "must be a JSON object, got an array"},
        {"\"model\"", "must be a JSON object, got \"model\""},
        {"42", "got 42"},
        {"null", "got null"},
        {"true", "got true"},
        {"\xef\xbb\xbf[]", "got an array"}, /* a BOM is skipped, as cJSON does */
        {"\xff{}", "invalid JSON at byte 0"},
    };
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) refused((oai_kind_t)k, bad[i][0], "", bad[i][1]);
    /* valid numbers of every form pass the number scan (the model check is next) */
    refused(OAI_COMPLETIONS, "{\"a\":[0,-0,0.5,-1.25e+3,1E-2, 7 ,[8]]}", "model", "missing");
    /* raw NUL bytes: in a string, outside, at the end */
    static const char nul_in[] = "{\"model\":\"ifp-mix\",\"prompt\":\"a\0b\"}";
    static const char nul_out[] = "{\"model\":\"ifp-mix\",\0\"prompt\":\"x\"}";
    static const char nul_end[] = "{\"model\":\"ifp-mix\",\"prompt\":\"x\"}\0";
    refused_n(OAI_COMPLETIONS, nul_in, sizeof nul_in - 1, 400, "", "at byte 30: a raw control character (0x00)");
    refused_n(OAI_COMPLETIONS, nul_out, sizeof nul_out - 1, 400, "", "at byte 19: a control character (0x00)");
    refused_n(OAI_COMPLETIONS, nul_end, sizeof nul_end - 1, 400, "", "at byte 32: a control character (0x00)");
    /* no body at all */
    refused_n(OAI_CHAT, NULL, 0, 400, "", "empty");
    /* a body that is not NUL-terminated is read to len only */
    oai_request_t q;
    oai_error_t e;
    char unterminated[] = {'{', '}', 'X'};
    assert_int_equal(oai_parse(OAI_COMPLETIONS, unterminated, 2, &LIM, &q, &e), -1);
    assert_string_equal(e.param, "model");
}

/* An array/object nesting `depth` deep as the value of an unknown field. */
static char *nested(int depth, const char *open, const char *close) {
    size_t lo = strlen(open), lc = strlen(close);
    char *b = malloc(64 + (size_t)depth * (lo + lc));
    char *p = b + sprintf(b, "{" CMPL ",\"x\":");
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s", open);
    p += sprintf(p, "0");
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s", close);
    strcpy(p, "}");
    return b;
}

static void deep_nesting(void **unused) {
    (void)unused;
    oai_request_t q;
    /* 127 levels under the top object: accepted (an unknown field) */
    char *b = nested(127, "[", "]");
    ok(OAI_COMPLETIONS, b, &q);
    oai_request_free(&q);
    free(b);
    b = nested(127, "{\"a\":", "}");
    ok(OAI_COMPLETIONS, b, &q);
    oai_request_free(&q);
    free(b);
    int depths[] = {128, 1000, 1001, 5000, 100000};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
        b = nested(depths[i], "[", "]");
        refused(OAI_COMPLETIONS, b, "", "nested deeper than 128 levels");
        free(b);
        b = nested(depths[i], "{\"a\":", "}");
        refused(OAI_CHAT, b, "", "nested deeper than 128 levels");
        free(b);
    }
    /* unbalanced: 5000 opening brackets only; brackets inside strings do not count */
    b = malloc(6000);
    memset(b, '[', 5000);
    b[5000] = '\0';
    refused(OAI_COMPLETIONS, b, "", "nested deeper");
    free(b);
    b = malloc(6000);
    char *p = b + sprintf(b, "{" CMPL ",\"x\":\"");
    memset(p, '[', 5000);
    strcpy(p + 5000, "\"}");
    ok(OAI_COMPLETIONS, b, &q);
    oai_request_free(&q);
    free(b);
}

/* 10 MB bodies of valid JSON: each refused for its length with a message. */
static void huge_bodies(void **unused) {
    (void)unused;
    const size_t MB10 = 10u << 20;
    oai_limits_t lim = LIM;
    lim.max_prompt_bytes = 3000;
    char *b = malloc(MB10 + 256);
    /* a 10 MB prompt */
    char *p = b + sprintf(b, "{\"model\":\"ifp-mix\",\"prompt\":\"");
    memset(p, 'a', MB10);
    strcpy(p + MB10, "\",\"max_tokens\":8}");
    oai_request_t q;
    oai_error_t e;
    assert_int_equal(oai_parse(OAI_COMPLETIONS, b, strlen(b), &lim, &q, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "prompt");
    assert_non_null(strstr(e.message, "10485760 bytes, longer than the 3000 bytes"));
    /* 10 MB of one chat message, and of many small ones */
    p = b + sprintf(b, "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(p, 'a', MB10);
    strcpy(p + MB10, "\"}]}");
    assert_int_equal(oai_parse(OAI_CHAT, b, strlen(b), &lim, &q, &e), -1);
    assert_string_equal(e.param, "messages");
    assert_non_null(strstr(e.message, "longer than the 3000 bytes"));
    p = b + sprintf(b, "{\"model\":\"ifp-mix\",\"messages\":[");
    const char *m = "{\"role\":\"user\",\"content\":\"hello\"},";
    size_t ml = strlen(m);
    while ((size_t)(p - b) + ml < MB10) p += sprintf(p, "%s", m);
    strcpy(p - 1, "]}");
    assert_int_equal(oai_parse(OAI_CHAT, b, strlen(b), &lim, &q, &e), -1);
    assert_string_equal(e.param, "messages");
    assert_non_null(strstr(e.message, "over 30"));
    /* 10 MB of token ids */
    p = b + sprintf(b, "{\"model\":\"ifp-mix\",\"prompt\":[");
    while ((size_t)(p - b) < MB10) p += sprintf(p, "1,");
    strcpy(p - 1, "]}");
    assert_int_equal(oai_parse(OAI_COMPLETIONS, b, strlen(b), &lim, &q, &e), -1);
    assert_string_equal(e.param, "prompt");
    assert_non_null(strstr(e.message, "at most 255"));
    /* a 10 MB unknown field is ignored */
    p = b + sprintf(b, "{\"model\":\"ifp-mix\",\"prompt\":\"x\",\"pad\":\"");
    memset(p, ' ', MB10);
    strcpy(p + MB10, "\"}");
    assert_int_equal(oai_parse(OAI_COMPLETIONS, b, strlen(b), &lim, &q, &e), 0);
    oai_request_free(&q);
    free(b);
}

/* ---------------------------------------------------------------- responses */

/* A fake Reply: 3 tokens, text "Hi there", group g1 of cluster 2. */
typedef struct {
    Ifp__Reply rep;
    Ifp__Usage usage;
    Ifp__Timings timings;
    int32_t tokens[3];
    uint32_t replays[2];
} fake_t;

static void fake_reply(fake_t *f, int finish) {
    ifp__reply__init(&f->rep);
    ifp__usage__init(&f->usage);
    ifp__timings__init(&f->timings);
    f->tokens[0] = 10, f->tokens[1] = 11, f->tokens[2] = 12;
    f->replays[0] = 1, f->replays[1] = 2;
    f->rep.id = "r1";
    f->rep.n_tokens = 3;
    f->rep.tokens = f->tokens;
    f->rep.text.data = (uint8_t *)"Hi there\xe2\x82";
    f->rep.text.len = 10; /* ends in a partial sequence: written as U+FFFD */
    f->rep.finish = finish;
    f->usage.prompt_tokens = 5;
    f->usage.completion_tokens = 3;
    f->rep.usage = &f->usage;
    f->timings.predictor_ms = 1.25;
    f->rep.timings = &f->timings;
    f->rep.group = "g1";
    f->rep.cluster = 2;
    f->rep.coverage = 0.75;
    f->rep.n_replays = 2;
    f->rep.replays = f->replays;
}

static const oai_meta_t META = {.id = "cmpl-abc", .created = 1700000000, .model = "ifp-mix"};

static const char *sget(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsString(j));
    return j->valuestring;
}
static double nget(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(j));
    return j->valuedouble;
}
static const cJSON *oget(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(j);
    return j;
}

static void check_head(const cJSON *j, const char *object) {
    assert_string_equal(sget(j, "id"), "cmpl-abc");
    assert_string_equal(sget(j, "object"), object);
    assert_true(nget(j, "created") == 1700000000);
    assert_string_equal(sget(j, "model"), "ifp-mix");
}

static void check_usage_ifp(const cJSON *j, const char *mask, int cluster) {
    const cJSON *u = oget(j, "usage");
    assert_true(nget(u, "prompt_tokens") == 5 && nget(u, "completion_tokens") == 3 && nget(u, "total_tokens") == 8);
    const cJSON *i = oget(j, "ifp");
    assert_string_equal(sget(i, "group"), "g1");
    assert_true(nget(i, "cluster") == cluster);
    assert_true(cJSON_IsBool(oget(i, "dense")) && cJSON_IsTrue(oget(i, "dense")) == (cluster < 0));
    assert_true(nget(i, "coverage") == 0.75);
    assert_string_equal(sget(i, "mask"), mask);
    assert_true(nget(i, "predictor_ms") == 1.25);
    const cJSON *r = oget(i, "replays");
    assert_int_equal(cJSON_GetArraySize(r), 2);
    assert_true(cJSON_GetArrayItem(r, 1)->valuedouble == 2);
}

static void request_of(oai_kind_t kind, const char *frag, oai_request_t *q) { ok(kind, with(kind, frag), q); }

static void completion_response(void **unused) {
    (void)unused;
    oai_request_t q;
    fake_t f;
    ifp_buf_t b = {0};
    request_of(OAI_COMPLETIONS, "\"logprobs\":1,\"ifp_mask\":{\"task\":\"t\"}", &q);
    fake_reply(&f, IFP__FINISH_REASON__FINISH_LENGTH);
    const float lp[3] = {-0.5f, -1.0f, -INFINITY};
    const char *pieces[3] = {"Hi", " there", "\xe2\x82"};
    oai_write_response(&b, &q, &META, &f.rep, lp, pieces);
    cJSON *j = cJSON_Parse(b.p);
    assert_non_null(j);
    check_head(j, "text_completion");
    const cJSON *ch = oget(j, "choices");
    assert_int_equal(cJSON_GetArraySize(ch), 1);
    const cJSON *c0 = cJSON_GetArrayItem(ch, 0);
    assert_string_equal(sget(c0, "text"), "Hi there\xef\xbf\xbd\xef\xbf\xbd");
    assert_true(nget(c0, "index") == 0);
    assert_string_equal(sget(c0, "finish_reason"), "length");
    const cJSON *l = oget(c0, "logprobs");
    assert_string_equal(cJSON_GetArrayItem(oget(l, "tokens"), 1)->valuestring, " there");
    assert_true(cJSON_GetArrayItem(oget(l, "token_logprobs"), 0)->valuedouble == -0.5);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(oget(l, "token_logprobs"), 2))); /* -inf */
    assert_true(cJSON_IsNull(oget(l, "top_logprobs")));
    assert_true(cJSON_GetArrayItem(oget(l, "text_offset"), 2)->valuedouble == 8);
    check_usage_ifp(j, "task", 2);
    cJSON_Delete(j);
    oai_request_free(&q);

    /* no logprobs asked, dense group, no timings, EOS */
    request_of(OAI_COMPLETIONS, "", &q);
    fake_reply(&f, IFP__FINISH_REASON__FINISH_EOS);
    f.rep.cluster = -1;
    f.rep.timings = NULL;
    f.rep.usage = NULL; /* counted from the reply's arrays */
    ifp_buf_reset(&b);
    oai_write_response(&b, &q, &META, &f.rep, lp, pieces);
    j = cJSON_Parse(b.p);
    assert_non_null(j);
    c0 = cJSON_GetArrayItem(oget(j, "choices"), 0);
    assert_true(cJSON_IsNull(oget(c0, "logprobs")));
    assert_string_equal(sget(c0, "finish_reason"), "stop");
    const cJSON *i = oget(j, "ifp");
    assert_true(cJSON_IsTrue(oget(i, "dense")) && nget(i, "cluster") == -1);
    assert_true(cJSON_IsNull(oget(i, "predictor_ms")));
    assert_true(nget(oget(j, "usage"), "prompt_tokens") == 0 && nget(oget(j, "usage"), "total_tokens") == 3);
    cJSON_Delete(j);
    oai_request_free(&q);
    ifp_buf_free(&b);
}

static void chat_response(void **unused) {
    (void)unused;
    oai_request_t q;
    fake_t f;
    ifp_buf_t b = {0};
    request_of(OAI_CHAT, "\"logprobs\":true", &q);
    fake_reply(&f, IFP__FINISH_REASON__FINISH_STOP);
    const float lp[3] = {-0.5f, -1.0f, -2.0f};
    const char *pieces[3] = {"Hi", " there", "\xe2\x82"};
    oai_meta_t m = META;
    m.id = "chatcmpl-abc";
    oai_write_response(&b, &q, &m, &f.rep, lp, pieces);
    cJSON *j = cJSON_Parse(b.p);
    assert_non_null(j);
    assert_string_equal(sget(j, "id"), "chatcmpl-abc");
    assert_string_equal(sget(j, "object"), "chat.completion");
    const cJSON *c0 = cJSON_GetArrayItem(oget(j, "choices"), 0);
    assert_true(nget(c0, "index") == 0);
    const cJSON *msg = oget(c0, "message");
    assert_string_equal(sget(msg, "role"), "assistant");
    assert_string_equal(sget(msg, "content"), "Hi there\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(sget(c0, "finish_reason"), "stop");
    const cJSON *content = oget(oget(c0, "logprobs"), "content");
    assert_int_equal(cJSON_GetArraySize(content), 3);
    const cJSON *t2 = cJSON_GetArrayItem(content, 2);
    assert_string_equal(sget(t2, "token"), "\xef\xbf\xbd\xef\xbf\xbd");
    assert_true(nget(t2, "logprob") == -2.0);
    const cJSON *bytes = oget(t2, "bytes"); /* the exact bytes of a partial sequence */
    assert_int_equal(cJSON_GetArraySize(bytes), 2);
    assert_true(cJSON_GetArrayItem(bytes, 0)->valuedouble == 0xe2 && cJSON_GetArrayItem(bytes, 1)->valuedouble == 0x82);
    assert_int_equal(cJSON_GetArraySize(oget(t2, "top_logprobs")), 0);
    check_usage_ifp(j, "input", 2);
    cJSON_Delete(j);
    /* the Reply's own logprobs: as many as it has */
    float own[2] = {-0.1f, -0.2f};
    f.rep.logprobs = own;
    f.rep.n_logprobs = 2;
    ifp_buf_reset(&b);
    oai_write_response(&b, &q, &m, &f.rep, f.rep.logprobs, pieces);
    j = cJSON_Parse(b.p);
    assert_non_null(j);
    c0 = cJSON_GetArrayItem(oget(j, "choices"), 0);
    assert_int_equal(cJSON_GetArraySize(oget(oget(c0, "logprobs"), "content")), 2);
    cJSON_Delete(j);
    /* cancelled: finish_reason null; pieces unknown: tokens "" */
    fake_reply(&f, IFP__FINISH_REASON__FINISH_CANCELLED);
    ifp_buf_reset(&b);
    oai_write_response(&b, &q, &m, &f.rep, lp, NULL);
    j = cJSON_Parse(b.p);
    assert_non_null(j);
    c0 = cJSON_GetArrayItem(oget(j, "choices"), 0);
    assert_true(cJSON_IsNull(oget(c0, "finish_reason")));
    assert_string_equal(sget(cJSON_GetArrayItem(oget(oget(c0, "logprobs"), "content"), 0), "token"), "");
    cJSON_Delete(j);
    oai_request_free(&q);
    ifp_buf_free(&b);
}

/* Splits an SSE stream into its events' JSON ("data: X\n\n" each); the
 * count; "[DONE]" as a NULL entry. */
static int sse_events(const char *s, cJSON **ev, int cap) {
    int n = 0;
    while (*s) {
        assert_true(strncmp(s, "data: ", 6) == 0);
        s += 6;
        const char *end = strstr(s, "\n\n");
        assert_non_null(end);
        assert_null(memchr(s, '\n', (size_t)(end - s))); /* one line */
        assert_true(n < cap);
        if ((size_t)(end - s) == 6 && strncmp(s, "[DONE]", 6) == 0) {
            ev[n++] = NULL;
        } else {
            ev[n] = cJSON_ParseWithLength(s, (size_t)(end - s));
            assert_non_null(ev[n]);
            n++;
        }
        s = end + 2;
    }
    return n;
}

static void completion_stream(void **unused) {
    (void)unused;
    oai_request_t q;
    fake_t f;
    ifp_buf_t b = {0};
    cJSON *ev[8];
    request_of(OAI_COMPLETIONS, "\"stream\":true,\"logprobs\":1", &q);
    oai_meta_t m = META;
    m.text_offset = 2;
    oai_write_chunk(&b, &q, &m, " there", 6, 0, 1, -0.25f, " there", 6);
    assert_int_equal(sse_events(b.p, ev, 8), 1);
    check_head(ev[0], "text_completion");
    const cJSON *c0 = cJSON_GetArrayItem(oget(ev[0], "choices"), 0);
    assert_string_equal(sget(c0, "text"), " there");
    assert_true(nget(c0, "index") == 0);
    assert_true(cJSON_IsNull(oget(c0, "finish_reason")));
    const cJSON *l = oget(c0, "logprobs");
    assert_string_equal(cJSON_GetArrayItem(oget(l, "tokens"), 0)->valuestring, " there");
    assert_true(cJSON_GetArrayItem(oget(l, "token_logprobs"), 0)->valuedouble == -0.25);
    assert_true(cJSON_GetArrayItem(oget(l, "text_offset"), 0)->valuedouble == 2);
    assert_null(cJSON_GetObjectItem(ev[0], "usage"));
    cJSON_Delete(ev[0]);
    /* no logprob with this chunk */
    ifp_buf_reset(&b);
    oai_write_chunk(&b, &q, &META, "x", 1, 1, 0, 0, NULL, 0);
    assert_int_equal(sse_events(b.p, ev, 8), 1);
    assert_true(cJSON_IsNull(oget(cJSON_GetArrayItem(oget(ev[0], "choices"), 0), "logprobs")));
    cJSON_Delete(ev[0]);
    /* the final chunk: held-back text, finish_reason, usage, ifp; then [DONE] */
    fake_reply(&f, IFP__FINISH_REASON__FINISH_LENGTH);
    ifp_buf_reset(&b);
    oai_write_final(&b, &q, &META, &f.rep, "!", 1, 0);
    assert_int_equal(sse_events(b.p, ev, 8), 2);
    assert_null(ev[1]);
    check_head(ev[0], "text_completion");
    c0 = cJSON_GetArrayItem(oget(ev[0], "choices"), 0);
    assert_string_equal(sget(c0, "text"), "!");
    assert_string_equal(sget(c0, "finish_reason"), "length");
    check_usage_ifp(ev[0], "input", 2);
    cJSON_Delete(ev[0]);
    assert_true(b.len > 14 && strcmp(b.p + b.len - 14, "data: [DONE]\n\n") == 0);
    oai_request_free(&q);
    ifp_buf_free(&b);
}

static void chat_stream(void **unused) {
    (void)unused;
    oai_request_t q;
    fake_t f;
    ifp_buf_t b = {0};
    cJSON *ev[8];
    request_of(OAI_CHAT, "\"stream\":true,\"logprobs\":true", &q);
    /* the first chunk: a role event, then the content */
    oai_write_chunk(&b, &q, &META, "Hi", 2, 1, 1, -0.5f, "Hi", 2);
    assert_int_equal(sse_events(b.p, ev, 8), 2);
    check_head(ev[0], "chat.completion.chunk");
    const cJSON *c0 = cJSON_GetArrayItem(oget(ev[0], "choices"), 0);
    assert_true(nget(c0, "index") == 0);
    assert_string_equal(sget(oget(c0, "delta"), "role"), "assistant");
    assert_string_equal(sget(oget(c0, "delta"), "content"), "");
    assert_true(cJSON_IsNull(oget(c0, "finish_reason")));
    c0 = cJSON_GetArrayItem(oget(ev[1], "choices"), 0);
    assert_null(cJSON_GetObjectItem(oget(c0, "delta"), "role"));
    assert_string_equal(sget(oget(c0, "delta"), "content"), "Hi");
    const cJSON *t0 = cJSON_GetArrayItem(oget(oget(c0, "logprobs"), "content"), 0);
    assert_string_equal(sget(t0, "token"), "Hi");
    assert_true(nget(t0, "logprob") == -0.5);
    assert_int_equal(cJSON_GetArraySize(oget(t0, "bytes")), 2);
    assert_true(cJSON_IsNull(oget(c0, "finish_reason")));
    cJSON_Delete(ev[0]);
    cJSON_Delete(ev[1]);
    /* a later chunk */
    ifp_buf_reset(&b);
    oai_write_chunk(&b, &q, &META, " you", 4, 0, 0, 0, NULL, 0);
    assert_int_equal(sse_events(b.p, ev, 8), 1);
    c0 = cJSON_GetArrayItem(oget(ev[0], "choices"), 0);
    assert_string_equal(sget(oget(c0, "delta"), "content"), " you");
    assert_true(cJSON_IsNull(oget(c0, "logprobs")));
    cJSON_Delete(ev[0]);
    /* a first chunk without text: the role event alone */
    ifp_buf_reset(&b);
    oai_write_chunk(&b, &q, &META, NULL, 0, 1, 0, 0, NULL, 0);
    assert_int_equal(sse_events(b.p, ev, 8), 1);
    assert_string_equal(sget(oget(cJSON_GetArrayItem(oget(ev[0], "choices"), 0), "delta"), "role"), "assistant");
    cJSON_Delete(ev[0]);
    /* the final chunk: empty delta, finish_reason, usage, ifp, [DONE] */
    fake_reply(&f, IFP__FINISH_REASON__FINISH_EOS);
    ifp_buf_reset(&b);
    oai_write_final(&b, &q, &META, &f.rep, NULL, 0, 0);
    assert_int_equal(sse_events(b.p, ev, 8), 2);
    assert_null(ev[1]);
    c0 = cJSON_GetArrayItem(oget(ev[0], "choices"), 0);
    assert_null(oget(c0, "delta")->child);
    assert_string_equal(sget(c0, "finish_reason"), "stop");
    check_usage_ifp(ev[0], "input", 2);
    cJSON_Delete(ev[0]);
    /* a stream that ends before any token: role event, final with the held-back text, [DONE] */
    ifp_buf_reset(&b);
    oai_write_final(&b, &q, &META, &f.rep, "ok", 2, 1);
    assert_int_equal(sse_events(b.p, ev, 8), 3);
    assert_string_equal(sget(oget(cJSON_GetArrayItem(oget(ev[0], "choices"), 0), "delta"), "role"), "assistant");
    assert_string_equal(sget(oget(cJSON_GetArrayItem(oget(ev[1], "choices"), 0), "delta"), "content"), "ok");
    assert_null(ev[2]);
    cJSON_Delete(ev[0]);
    cJSON_Delete(ev[1]);
    oai_request_free(&q);
    ifp_buf_free(&b);
}

static void errors_and_models(void **unused) {
    (void)unused;
    oai_error_t e;
    memset(&e, 0, sizeof e);
    oai_error_set(&e, 400, "invalid_request_error", "max_tokens", "", "max_tokens: must be %s, got \"\xff\"", "x");
    assert_int_equal(e.status, 400);
    check_error_body(&e);
    oai_error_set(&e, 503, "server_error", NULL, NULL, "overloaded");
    check_error_body(&e);
    ifp_buf_t b = {0};
    oai_write_stream_error(&b, &e);
    cJSON *ev[4];
    assert_int_equal(sse_events(b.p, ev, 4), 2);
    assert_string_equal(sget(oget(ev[0], "error"), "message"), "overloaded");
    assert_null(ev[1]);
    cJSON_Delete(ev[0]);

    ifp_buf_reset(&b);
    oai_write_models(&b, "ifp-mix", 1700000000);
    cJSON *j = cJSON_Parse(b.p);
    assert_non_null(j);
    assert_string_equal(sget(j, "object"), "list");
    const cJSON *d0 = cJSON_GetArrayItem(oget(j, "data"), 0);
    assert_string_equal(sget(d0, "id"), "ifp-mix");
    assert_string_equal(sget(d0, "object"), "model");
    assert_true(nget(d0, "created") == 1700000000);
    assert_string_equal(sget(d0, "owned_by"), "ifp");
    cJSON_Delete(j);
    ifp_buf_reset(&b);
    oai_write_model(&b, "ifp-mix", 5);
    j = cJSON_Parse(b.p);
    assert_string_equal(sget(j, "id"), "ifp-mix");
    cJSON_Delete(j);
    ifp_buf_free(&b);

    assert_string_equal(oai_finish_reason(IFP__FINISH_REASON__FINISH_EOS), "stop");
    assert_string_equal(oai_finish_reason(IFP__FINISH_REASON__FINISH_STOP), "stop");
    assert_string_equal(oai_finish_reason(IFP__FINISH_REASON__FINISH_LENGTH), "length");
    assert_null(oai_finish_reason(IFP__FINISH_REASON__FINISH_NONE));
    assert_null(oai_finish_reason(IFP__FINISH_REASON__FINISH_CANCELLED));
    assert_null(oai_finish_reason(IFP__FINISH_REASON__FINISH_ERROR));
    assert_null(oai_finish_reason(99));
}

static void utf8_complete(void **unused) {
    (void)unused;
    struct {
        const char *s;
        size_t n, want;
    } t[] = {
        {"", 0, 0},
        {"abc", 3, 3},
        {"a\xc3", 2, 1},             /* a 2-byte lead */
        {"a\xc3\xa9", 3, 3},
        {"\xe2\x82", 2, 0},          /* 2 of 3 */
        {"x\xe2\x82\xac", 4, 4},
        {"\xf0\x9f\x98", 3, 0},      /* 3 of 4 */
        {"\xf0\x9f\x98\x80", 4, 4},
        {"a\xff", 2, 2},             /* invalid: complete */
        {"a\x80", 2, 2},             /* a stray continuation */
        {"\xe0\x80", 2, 2},          /* overlong: can never complete */
        {"\xed\xa0", 2, 2},          /* a surrogate */
        {"\xf4\x90", 2, 2},          /* past U+10FFFF */
        {"\xc0", 1, 1},
        {"\xf0\x9f\x98\x80\xf0", 5, 4},
        {"\x80\x80\x80\x80", 4, 4},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (oai_utf8_complete(t[i].s, t[i].n) != t[i].want)
            fail_msg("case %zu: %zu, want %zu", i, oai_utf8_complete(t[i].s, t[i].n), t[i].want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_defaults),    cmocka_unit_test(every_field_accepted),
        cmocka_unit_test(prompt_forms),        cmocka_unit_test(model_checked),
        cmocka_unit_test(fields_refused),      cmocka_unit_test(fields_accepted),
        cmocka_unit_test(chat_templates),      cmocka_unit_test(chat_refused),
        cmocka_unit_test(malformed_json),      cmocka_unit_test(deep_nesting),
        cmocka_unit_test(huge_bodies),         cmocka_unit_test(completion_response),
        cmocka_unit_test(chat_response),       cmocka_unit_test(completion_stream),
        cmocka_unit_test(chat_stream),         cmocka_unit_test(errors_and_models),
        cmocka_unit_test(utf8_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
