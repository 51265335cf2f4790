/* oai_chat.c — the messages of a chat completion checked and rendered into
 * prompt text by the chat template (router/oai.h; docs/HTTP.md, "Chat
 * templates").
 *
 *   OAI_TEMPLATE_INSTRUCT (ifp-mix's instruct format, its MODEL_CARD.md):
 *     user        "Instruction: <text>\n"
 *     user after system messages
 *                 "Instruction: <system>\nInput: <text>\n"  (several system
 *                 messages before it are joined by "\n")
 *     assistant   "Response: <text>\n"
 *     then        "Response:"
 *   OAI_TEMPLATE_PLAIN:
 *     any         "<role>: <text>\n"
 *     then        "assistant:"
 *
 * A message's text is its content string, or its text parts joined by "\n".
 * The last message must be the user's. */
#include <stdio.h>
#include <string.h>

#include "oai_int.h"

enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, N_ROLES };
static const char *const ROLE_NAME[N_ROLES] = {"system", "user", "assistant"};

/* Appends the text of content (messages[i].content) to b. */
static int append_content(oai_parse_t *p, const cJSON *content, int i, ifp_buf_t *b) {
    char param[64], v[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (!content || cJSON_IsNull(content)) return oai_bad(p, param, "missing (a string or a list of text parts)");
    if (cJSON_IsString(content)) {
        size_t n = strlen(content->valuestring);
        if (oai_check_text(p, param, content->valuestring, n)) return -1;
        ifp_buf_append(b, content->valuestring, n);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return oai_bad(p, param, "must be a string or a list of text parts, got %s", oai_show(content, v, sizeof v));
    int k = 0;
    for (const cJSON *part = content->child; part; part = part->next, k++) {
        snprintf(param, sizeof param, "messages[%d].content[%d]", i, k);
        if (!cJSON_IsObject(part))
            return oai_bad(p, param, "must be an object {\"type\": \"text\", \"text\": ...}, got %s",
                           oai_show(part, v, sizeof v));
        static const char *const keys[] = {"type", "text"};
        snprintf(param, sizeof param, "messages[%d].content[%d].", i, k);
        if (oai_no_duplicates(p, part, keys, 2, param)) return -1;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        snprintf(param, sizeof param, "messages[%d].content[%d].type", i, k);
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return oai_bad(p, param, "only \"text\" parts are supported, got %s", oai_show(type, v, sizeof v));
        snprintf(param, sizeof param, "messages[%d].content[%d].text", i, k);
        if (!cJSON_IsString(text)) return oai_bad(p, param, "must be a string, got %s", oai_show(text, v, sizeof v));
        size_t n = strlen(text->valuestring);
        if (oai_check_text(p, param, text->valuestring, n)) return -1;
        if (k) ifp_buf_append(b, "\n", 1);
        ifp_buf_append(b, text->valuestring, n);
    }
    return 0;
}

static void put(ifp_buf_t *b, const char *s) { ifp_buf_append(b, s, strlen(s)); }

/* messages[i]'s role, or -1 with the error. */
static int role_of(oai_parse_t *p, const cJSON *m, int i) {
    char param[64], v[64];
    snprintf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(m))
        return oai_bad(p, param, "must be an object {\"role\": ..., \"content\": ...}, got %s",
                       oai_show(m, v, sizeof v));
    static const char *const keys[] = {"role", "content"};
    snprintf(param, sizeof param, "messages[%d].", i);
    if (oai_no_duplicates(p, m, keys, 2, param)) return -1;
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (cJSON_IsString(role))
        for (int r = 0; r < N_ROLES; r++)
            if (strcmp(role->valuestring, ROLE_NAME[r]) == 0) return r;
    return oai_bad(p, param, "must be \"system\", \"user\" or \"assistant\", got %s", oai_show(role, v, sizeof v));
}

int oai_render_chat(oai_parse_t *p, const cJSON *messages, oai_request_t *q) {
    char v[64];
    if (!messages) return oai_bad(p, "messages", "missing (a list of {\"role\", \"content\"} messages)");
    if (!cJSON_IsArray(messages))
        return oai_bad(p, "messages", "must be a list of messages, got %s", oai_show(messages, v, sizeof v));
    if (!messages->child) return oai_bad(p, "messages", "an empty list (the last message must be the user's)");
    const int instruct = p->lim->chat_template == OAI_TEMPLATE_INSTRUCT;
    const size_t max = p->lim->max_prompt_bytes;
    ifp_buf_t out = {0}, sys = {0};
    int i = 0, role = -1, have_sys = 0, cut = 0, rc = -1;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        if ((role = role_of(p, m, i)) < 0) goto done;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!instruct) {
            put(&out, ROLE_NAME[role]);
            put(&out, ": ");
            if (append_content(p, content, i, &out)) goto done;
            put(&out, "\n");
        } else if (role == ROLE_SYSTEM) {
            if (have_sys) put(&sys, "\n");
            have_sys = 1;
            if (append_content(p, content, i, &sys)) goto done;
        } else if (role == ROLE_USER) {
            put(&out, "Instruction: ");
            if (have_sys) {
                ifp_buf_append(&out, sys.p, sys.len);
                put(&out, "\nInput: ");
                ifp_buf_reset(&sys);
                have_sys = 0;
            }
            if (append_content(p, content, i, &out)) goto done;
            put(&out, "\n");
        } else {
            put(&out, "Response: ");
            if (append_content(p, content, i, &out)) goto done;
            put(&out, "\n");
        }
        if (out.len + sys.len > max) { /* the rest is not read */
            cut = 1;
            break;
        }
    }
    if (out.oom || sys.oom) {
        oai_oom(p);
        goto done;
    }
    put(&out, instruct ? "Response:" : "assistant:");
    if (out.len + sys.len > max) {
        oai_bad(p, "messages", "the prompt is %s%zu bytes after the chat template, longer than the %zu bytes the "
                "model's context can hold", cut ? "over " : "", out.len + sys.len, max);
        goto done;
    }
    if (role != ROLE_USER) {
        oai_bad(p, "messages", "the last message must be the user's, got one from \"%s\"", ROLE_NAME[role]);
        goto done;
    }
    if (out.oom) {
        oai_oom(p);
        goto done;
    }
    q->prompt = out.p; /* owned now */
    out.p = NULL;
    q->req.prompt = q->prompt;
    rc = 0;
done:
    ifp_buf_free(&out);
    ifp_buf_free(&sys);
    return rc;
}
