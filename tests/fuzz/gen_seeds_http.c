/* gen_seeds_http.c — seed inputs of fuzz_http_body: request bodies of
 * /v1/completions and /v1/chat/completions after fuzz_http_body's config
 * byte (bit 0 chat, bit 1 plain template, bit 2 tiny limits).  Each good
 * seed is checked to parse and each bad one to be refused, with the limits
 * fuzz_http_body uses, so the seeds reach past the checks they aim at. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "oai.h"

typedef void (*put_fn)(const char *target, const char *name, const void *data, size_t len);

enum { CMPL = 0, CHAT = 1, PLAIN = 2, TINY = 4 };

static const struct {
    const char *name;
    int cfg, good;
    const char *body;
} SEEDS[] = {
    {"cmpl-min.json", CMPL, 1, "{\"model\":\"ifp-mix\",\"prompt\":\"Question: What is 2+2?\\nAnswer:\"}"},
    {"cmpl-all.json", CMPL, 1,
     "{\"model\":\"ifp-mix\",\"prompt\":[\"Once upon a time\"],\"max_tokens\":16,\"temperature\":0.7,\"top_p\":0.9,"
     "\"top_k\":40,\"seed\":42,\"stop\":[\"\\n\",\"The end\"],\"stream\":true,\"stream_options\":{\"include_usage\":"
     "true},\"n\":1,\"best_of\":1,\"echo\":false,\"suffix\":null,\"logprobs\":1,\"presence_penalty\":0,"
     "\"frequency_penalty\":0,\"logit_bias\":{},\"user\":\"u1\",\"ignore_eos\":true,\"ifp_mask\":\"dense\"}"},
    {"cmpl-ids.json", CMPL, 1,
     "{\"model\":\"ifp-mix\",\"prompt\":[[1,450,1234]],\"ifp_mask\":{\"task\":\"Tell a story.\"}}"},
    {"cmpl-tiny.json", CMPL | TINY, 1, "{\"model\":\"ifp-mix\",\"prompt\":[1,2,3,4],\"max_tokens\":16}"},
    {"chat-min.json", CHAT, 1,
     "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"Name a color.\"}]}"},
    {"chat-turns.json", CHAT, 1,
     "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"system\",\"content\":\"Translate to French.\"},"
     "{\"role\":\"user\",\"content\":\"cat\"},{\"role\":\"assistant\",\"content\":\"chat\"},"
     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"dog\"},"
     "{\"type\":\"text\",\"text\":\"\\u00e9\\ud83d\\ude00\"}]}],"
     "\"max_completion_tokens\":8,\"logprobs\":true,\"top_logprobs\":0,\"stream\":true}"},
    {"chat-plain.json", CHAT | PLAIN, 1,
     "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"seed\":9223372036854775807}"},
    {"bad-model.json", CMPL, 0, "{\"model\":\"gpt-4\",\"prompt\":\"x\"}"},
    {"bad-types.json", CHAT, 0,
     "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e400}"},
    {"bad-nul.json", CMPL, 0, "{\"model\":\"ifp-mix\",\"prompt\":\"a\\u0000b\"}"},
    {"bad-utf8.json", CMPL, 0, "{\"model\":\"ifp-mix\",\"prompt\":\"a\xed\xa0\x80\"}"},
    {"bad-surrogate.json", CHAT, 0,
     "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}"},
    {"bad-json.json", CHAT, 0, "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],}"},
    {"bad-last.json", CHAT | TINY, 0,
     "{\"model\":\"ifp-mix\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
     "{\"role\":\"assistant\",\"content\":\"y\"}]}"},
    {"bad-long.json", CMPL | TINY, 0,
     "{\"model\":\"ifp-mix\",\"prompt\":\"0123456789012345678901234567890123456789012345678901234567890\"}"},
};

static const oai_limits_t REAL = {.model_id = "ifp-mix", .max_tokens_limit = 4096, .max_prompt_bytes = 4096,
                                  .max_prompt_tokens = 255, .vocab = 2048};
static const oai_limits_t TINY_LIM = {.model_id = "ifp-mix", .max_tokens_limit = 16, .max_prompt_bytes = 48,
                                      .max_prompt_tokens = 4, .vocab = 300};

void gen_seeds_http(put_fn put) {
    char buf[2048];
    for (size_t i = 0; i < sizeof SEEDS / sizeof *SEEDS; i++) {
        size_t n = strlen(SEEDS[i].body);
        if (n + 1 > sizeof buf) abort();
        oai_limits_t lim = SEEDS[i].cfg & TINY ? TINY_LIM : REAL;
        lim.chat_template = SEEDS[i].cfg & PLAIN ? OAI_TEMPLATE_PLAIN : OAI_TEMPLATE_INSTRUCT;
        oai_request_t q;
        oai_error_t e;
        int rc = oai_parse(SEEDS[i].cfg & CHAT ? OAI_CHAT : OAI_COMPLETIONS, SEEDS[i].body, n, &lim, &q, &e);
        if ((rc == 0) != SEEDS[i].good) {
            fprintf(stderr, "gen_seeds: fuzz_http_body/%s: %s\n", SEEDS[i].name, rc ? e.message : "accepted");
            exit(1);
        }
        if (rc == 0) oai_request_free(&q);
        buf[0] = (char)SEEDS[i].cfg;
        memcpy(buf + 1, SEEDS[i].body, n);
        put("fuzz_http_body", SEEDS[i].name, buf, n + 1);
    }
}
