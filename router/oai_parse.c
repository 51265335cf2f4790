/* oai_parse.c — request bodies of the OpenAI API checked and turned into an
 * ifp.Request (router/oai.h); the chat templates are in oai_chat.c.
 *
 * A body goes through three steps, none of them recursive in this file:
 *   1. scan_body: a NUL-terminated copy for cJSON and the lexical checks
 *      cJSON does not make: raw control characters (JSON wants them
 *      escaped; cJSON would take a raw NUL as whitespace), nesting deeper
 *      than OAI_MAX_DEPTH (cJSON's parser and cJSON_Delete recurse once per
 *      level), and every "\u0000" escape in a string replaced by OAI_NUL_MARK
 *      bytes — cJSON would decode it into a NUL that silently cuts the
 *      string short; marked, it fails the UTF-8 check of the field it is in
 *      and the message names that field; and numbers outside RFC 8259's
 *      grammar ("016", "16.", "-.5": cJSON hands any run of number
 *      characters to strtod);
 *   2. cJSON_ParseWithLengthOpts on the copy, then nothing but whitespace
 *      may follow the value;
 *   3. the fields, one function per group, each failure a 400 naming the
 *      field.  JSON null is taken as absent for every optional field. */
#include "oai.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"   /* RT_TASK_MAX */
#include "oai_int.h"
#include "request.h" /* RT_MAX_STOP, RT_STOP_MAX */
#include "utf8.h"

#define SHOW_MAX 40 /* string values up to this many bytes are quoted in messages */

/* ---------------------------------------------------------------- errors */

void oai_error_set(oai_error_t *e, int status, const char *type, const char *param, const char *code,
                   const char *fmt, ...) {
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type ? type : "");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

int oai_bad(oai_parse_t *p, const char *param, const char *fmt, ...) {
    char msg[OAI_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (*param)
        oai_error_set(p->err, 400, "invalid_request_error", param, "", "%s: %s", param, msg);
    else
        oai_error_set(p->err, 400, "invalid_request_error", "", "", "%s", msg);
    return -1;
}

int oai_oom(oai_parse_t *p) {
    oai_error_set(p->err, 500, "server_error", "", "", "out of memory reading the request");
    return -1;
}

const char *oai_show(const cJSON *j, char *buf, size_t cap) {
    if (!j) return "nothing";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsTrue(j)) return "true";
    if (cJSON_IsFalse(j)) return "false";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsNumber(j)) {
        if (!isfinite(j->valuedouble)) return "a number too large to represent";
        snprintf(buf, cap, "%.15g", j->valuedouble); /* the shortest that reads back */
        if (strtod(buf, NULL) != j->valuedouble) snprintf(buf, cap, "%.17g", j->valuedouble);
        return buf;
    }
    if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring), at;
        if (n <= SHOW_MAX && ifp_utf8_check_text((const uint8_t *)j->valuestring, n, &at) == 0)
            snprintf(buf, cap, "\"%s\"", j->valuestring);
        else
            snprintf(buf, cap, "a string of %zu bytes", n);
        return buf;
    }
    return "an unknown value";
}

int oai_check_text(oai_parse_t *p, const char *param, const char *s, size_t n) {
    size_t at;
    if (ifp_utf8_check_text((const uint8_t *)s, n, &at) == 0) return 0;
    if (p->marked && (unsigned char)s[at] == OAI_NUL_MARK)
        return oai_bad(p, param, "contains a NUL character (\\u0000) at byte %zu", at);
    return oai_bad(p, param, "invalid UTF-8 at byte %zu", at);
}

int oai_no_duplicates(oai_parse_t *p, const cJSON *obj, const char *const *names, int n, const char *prefix) {
    int count[OAI_MAX_NAMES] = {0};
    if (n > OAI_MAX_NAMES) n = OAI_MAX_NAMES;
    for (const cJSON *j = obj->child; j; j = j->next)
        for (int k = 0; j->string && k < n; k++)
            if (strcmp(j->string, names[k]) == 0 && ++count[k] > 1) {
                char param[64];
                snprintf(param, sizeof param, "%s%s", prefix, names[k]);
                return oai_bad(p, param, "given more than once");
            }
    return 0;
}

/* ---------------------------------------------------------------- typed fields */

/* The member name of obj, or NULL when absent or null. */
static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(j) ? NULL : j;
}

/* Each getter returns 1 and sets *out when the field is there, 0 when it is
 * absent (out untouched), -1 with the error set when it is bad. */

/* An integer from lo to hi (doubles hold integers exactly up to 2^53: a
 * larger one is taken as the double JSON gave; 2^63 becomes 2^63-1). */
static int get_int(oai_parse_t *p, const cJSON *obj, const char *name, int64_t lo, int64_t hi, int64_t *out) {
    const cJSON *j = field(obj, name);
    if (!j) return 0;
    char v[64];
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return oai_bad(p, name, "must be an integer from %lld to %lld, got %s", (long long)lo, (long long)hi,
                       oai_show(j, v, sizeof v));
    *out = d >= 0x1p63 ? INT64_MAX : (int64_t)d;
    return 1;
}

/* A number in [lo, hi], or (lo, hi] when lo_open. */
static int get_num(oai_parse_t *p, const cJSON *obj, const char *name, double lo, int lo_open, double hi,
                   double *out) {
    const cJSON *j = field(obj, name);
    if (!j) return 0;
    char v[64];
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!isfinite(d) || d < lo || (lo_open && d == lo) || d > hi)
        return oai_bad(p, name, "must be a number %s %g %s %g, got %s", lo_open ? "greater than" : "from", lo,
                       lo_open ? "and at most" : "to", hi, oai_show(j, v, sizeof v));
    *out = d;
    return 1;
}

static int get_bool(oai_parse_t *p, const cJSON *obj, const char *name, int *out) {
    const cJSON *j = field(obj, name);
    if (!j) return 0;
    char v[64];
    if (!cJSON_IsBool(j)) return oai_bad(p, name, "must be true or false, got %s", oai_show(j, v, sizeof v));
    *out = cJSON_IsTrue(j);
    return 1;
}

/* A string of valid UTF-8 without NUL, at most max bytes: *out borrows it.
 * param names it in errors (name, or e.g. "ifp_mask.task"). */
static int get_str(oai_parse_t *p, const cJSON *obj, const char *name, const char *param, size_t max,
                   const char **out) {
    const cJSON *j = field(obj, name);
    if (!j) return 0;
    char v[64];
    if (!cJSON_IsString(j)) return oai_bad(p, param, "must be a string, got %s", oai_show(j, v, sizeof v));
    size_t n = strlen(j->valuestring);
    if (n > max) return oai_bad(p, param, "%zu bytes, at most %zu", n, max);
    if (oai_check_text(p, param, j->valuestring, n)) return -1;
    *out = j->valuestring;
    return 1;
}

/* ---------------------------------------------------------------- the body */

/* Length of the number token at s[0..n) when it follows RFC 8259's grammar
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and ends there (cJSON hands
 * any run of number characters to strtod: "016" and "16." would pass); 0
 * if it does not. */
static size_t json_number(const char *s, size_t n) {
    size_t i = 0;
#define DIGITS(min)                                                                                                    \
    do {                                                                                                               \
        size_t k = 0;                                                                                                  \
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, k++;                                                          \
        if (k < (min)) return 0;                                                                                       \
    } while (0)
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else DIGITS(1);
    if (i < n && s[i] == '.') {
        i++;
        DIGITS(1);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        DIGITS(1);
    }
#undef DIGITS
    if (i < n && (strchr("0123456789.eE+-", s[i]) != NULL)) return 0; /* "016", "1.2.3", "1e5e5" */
    return i;
}

/* Copies body[0..len) NUL-terminated and makes the lexical checks described
 * at the top.  Returns the copy (the caller frees it), or NULL with the
 * error set. */
static char *scan_body(oai_parse_t *p, const char *body, size_t len) {
    char *c = malloc(len + 1);
    if (!c) {
        oai_oom(p);
        return NULL;
    }
    if (len) memcpy(c, body, len);
    c[len] = '\0';
    int in_str = 0;
    size_t depth = 0;
    char prev = 0; /* the last character outside strings that is not whitespace */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)c[i];
        char before = prev;
        if (!in_str && ch != '"' && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') prev = (char)ch;
        if (in_str) {
            if (ch == '"') {
                in_str = 0;
            } else if (ch < 0x20) {
                oai_bad(p, "", "invalid JSON at byte %zu: a raw control character (0x%02x) in a string; escape it", i,
                        ch);
                goto fail;
            } else if (ch == '\\' && i + 1 < len) {
                if (c[i + 1] == 'u' && i + 5 < len && memcmp(c + i + 2, "0000", 4) == 0) {
                    memset(c + i, OAI_NUL_MARK, 6);
                    p->marked = 1;
                    i += 5;
                } else {
                    i++; /* the escaped character (cJSON checks it) */
                }
            }
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > OAI_MAX_DEPTH) {
                oai_bad(p, "", "invalid JSON at byte %zu: nested deeper than %d levels", i, OAI_MAX_DEPTH);
                goto fail;
            }
        } else if (ch == ']' || ch == '}') {
            if (depth) depth--;
        } else if ((ch == '-' || (ch >= '0' && ch <= '9')) && (!before || strchr(":[,", before))) {
            /* a number where a value starts (elsewhere cJSON's own message is better) */
            size_t k = json_number(c + i, len - i);
            if (!k) {
                size_t e = i;
                while (e < len && e - i < 24 && strchr("0123456789.eE+-", c[e])) e++;
                oai_bad(p, "", "invalid JSON at byte %zu: %.*s is not a JSON number (RFC 8259: no leading zeros, "
                               "digits on both sides of the point)", i, (int)(e - i), c + i);
                goto fail;
            }
            i += k - 1;
        } else if (ch < 0x20 && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            oai_bad(p, "", "invalid JSON at byte %zu: a control character (0x%02x)", i, ch);
            goto fail;
        }
    }
    p->open_str = in_str;
    p->open_depth = depth;
    return c;
fail:
    free(c);
    return NULL;
}

static int is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* The error of a body cJSON refused at byte at (of len): where, what is
 * there (printable ASCII; anything else as '.'), and whether the body ends
 * inside a string or with open brackets (cJSON reports an early end at the
 * last byte). */
static int json_error(oai_parse_t *p, const char *c, size_t len, size_t at) {
    size_t i = 0;
    while (i < len && is_ws(c[i])) i++;
    if (i == len) return oai_bad(p, "", "the body is empty: expected a JSON object");
    char near[24], tail[80] = "";
    size_t n = 0;
    for (; n < 20 && at + n < len; n++) {
        unsigned char ch = (unsigned char)c[at + n];
        near[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
    }
    near[n] = '\0';
    if (p->open_str)
        snprintf(tail, sizeof tail, "; the body ends inside a string");
    else if (p->open_depth)
        snprintf(tail, sizeof tail, "; the body ends with %zu unclosed array(s) or object(s)", p->open_depth);
    return oai_bad(p, "", "invalid JSON at byte %zu, near '%s'%s", at, near, tail);
}

/* ---------------------------------------------------------------- fields */

/* prompt given as token ids: arr (named what) of integers in [0, vocab). */
static int prompt_ids(oai_parse_t *p, const cJSON *arr, const char *what, oai_request_t *q) {
    const oai_limits_t *lim = p->lim;
    size_t n = 0;
    for (const cJSON *j = arr->child; j; j = j->next) n++;
    if (n == 0) return oai_bad(p, "prompt", "%s is an empty list of token ids", what);
    if (n > (size_t)(lim->max_prompt_tokens > 0 ? lim->max_prompt_tokens : 0))
        return oai_bad(p, "prompt", "%s holds %zu token ids, at most %d (the model's context less one)", what, n,
                       lim->max_prompt_tokens);
    if (!(q->prompt_ids = malloc(n * sizeof *q->prompt_ids))) return oai_oom(p);
    size_t i = 0;
    for (const cJSON *j = arr->child; j; j = j->next, i++) {
        double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
        if (!isfinite(d) || d != floor(d) || d < 0 || d >= lim->vocab) {
            char v[64];
            return oai_bad(p, "prompt", "%s[%zu] must be a token id, an integer from 0 to %d, got %s", what, i,
                           lim->vocab - 1, oai_show(j, v, sizeof v));
        }
        q->prompt_ids[i] = (int32_t)d;
    }
    q->req.prompt_tokens = q->prompt_ids;
    q->req.n_prompt_tokens = n;
    return 0;
}

/* Completions: prompt is a string, a list of one string, a list of token
 * ids or a list of one list of token ids. */
static int parse_prompt(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    const cJSON *j = field(root, "prompt");
    char v[64];
    if (!j) return oai_bad(p, "prompt", "missing (a string, or a list of token ids)");
    if (cJSON_IsArray(j)) {
        const cJSON *first = j->child;
        if (!first) return oai_bad(p, "prompt", "an empty list (give a string or token ids)");
        if (cJSON_IsString(first) || cJSON_IsArray(first)) {
            if (first->next)
                return oai_bad(p, "prompt", "a list of %d prompts: one prompt per request is supported",
                               cJSON_GetArraySize(j));
            if (cJSON_IsArray(first)) return prompt_ids(p, first, "prompt[0]", q);
            j = first;
        } else {
            return prompt_ids(p, j, "prompt", q);
        }
    }
    if (!cJSON_IsString(j))
        return oai_bad(p, "prompt", "must be a string, a list of one string, or a list of token ids, got %s",
                       oai_show(j, v, sizeof v));
    size_t n = strlen(j->valuestring);
    if (n > p->lim->max_prompt_bytes)
        return oai_bad(p, "prompt", "%zu bytes, longer than the %zu bytes the model's context can hold", n,
                       p->lim->max_prompt_bytes);
    if (oai_check_text(p, "prompt", j->valuestring, n)) return -1;
    if (!(q->prompt = strdup(j->valuestring))) return oai_oom(p);
    q->req.prompt = q->prompt;
    return 0;
}

/* max_tokens (chat: max_completion_tokens wins when both are given),
 * temperature, top_p, top_k, seed. */
static int parse_sampling(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    int64_t i = 0, mct = 0;
    int rc = 0;
    if (get_int(p, root, "max_tokens", 1, p->lim->max_tokens_limit, &i) < 0) return -1;
    if (q->kind == OAI_CHAT && (rc = get_int(p, root, "max_completion_tokens", 1, p->lim->max_tokens_limit, &mct)) < 0)
        return -1;
    q->req.max_tokens = (uint32_t)(rc ? mct : i); /* 0 = the router's default */
    /* OpenAI's defaults: temperature 1, top_p 1 (off) */
    double t = 1, top_p = 1;
    if (get_num(p, root, "temperature", 0, 0, 2, &t) < 0 || get_num(p, root, "top_p", 0, 1, 1, &top_p) < 0)
        return -1;
    q->req.temperature = (float)t;
    q->req.top_p = (float)top_p;
    i = 0;
    if (get_int(p, root, "top_k", 0, INT32_MAX, &i) < 0) return -1;
    q->req.top_k = (uint32_t)i;
    i = 0;
    if ((rc = get_int(p, root, "seed", 0, INT64_MAX, &i)) < 0) return -1;
    q->has_seed = rc;
    q->req.seed = (uint64_t)i;
    return 0;
}

/* stop: a string, or a list of at most RT_MAX_STOP strings; each 1..RT_STOP_MAX bytes. */
static int parse_stop(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    const cJSON *j = field(root, "stop");
    char v[64], param[32];
    if (!j) return 0;
    if (!cJSON_IsString(j) && !cJSON_IsArray(j))
        return oai_bad(p, "stop", "must be a string or a list of strings, got %s", oai_show(j, v, sizeof v));
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 1;
    if (n > RT_MAX_STOP) return oai_bad(p, "stop", "%d stop strings, at most %d", n, RT_MAX_STOP);
    const cJSON *s = cJSON_IsArray(j) ? j->child : j;
    for (int k = 0; k < n; k++, s = s->next) {
        if (cJSON_IsArray(j))
            snprintf(param, sizeof param, "stop[%d]", k);
        else
            snprintf(param, sizeof param, "stop");
        if (!cJSON_IsString(s)) return oai_bad(p, param, "must be a string, got %s", oai_show(s, v, sizeof v));
        size_t len = strlen(s->valuestring);
        if (len < 1 || len > RT_STOP_MAX)
            return oai_bad(p, param, "%zu bytes; a stop string has 1 to %d", len, RT_STOP_MAX);
        if (oai_check_text(p, param, s->valuestring, len)) return -1;
        if (!(q->stop[k] = strdup(s->valuestring))) return oai_oom(p);
        q->req.n_stop = (size_t)k + 1;
    }
    q->req.stop = q->req.n_stop ? q->stop : NULL;
    return 0;
}

/* stream, stream_options (only with stream). */
static int parse_stream(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    char v[64];
    if (get_bool(p, root, "stream", &q->stream) < 0) return -1;
    q->req.stream = q->stream;
    const cJSON *o = field(root, "stream_options");
    if (!o) return 0;
    if (!cJSON_IsObject(o))
        return oai_bad(p, "stream_options", "must be an object, got %s", oai_show(o, v, sizeof v));
    if (!q->stream) return oai_bad(p, "stream_options", "only allowed when stream is true");
    static const char *const opts[] = {"include_usage"};
    if (oai_no_duplicates(p, o, opts, 1, "stream_options.")) return -1;
    const cJSON *u = field(o, "include_usage");
    if (u && !cJSON_IsBool(u))
        return oai_bad(p, "stream_options.include_usage", "must be true or false, got %s", oai_show(u, v, sizeof v));
    q->include_usage = cJSON_IsTrue(u);
    return 0;
}

/* The API's fields this server takes only at their neutral value: n,
 * best_of, echo, suffix, presence/frequency_penalty, logit_bias; and
 * logprobs (the sampled token's only). */
static int parse_fixed(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    char v[64];
    int64_t i = 1;
    double d = 0;
    int b = 0;
    const cJSON *j;
    if (get_int(p, root, "n", 1, INT32_MAX, &i) < 0) return -1;
    if (i != 1) return oai_bad(p, "n", "only 1 choice per request is supported, got %lld", (long long)i);
    if (q->kind == OAI_COMPLETIONS) {
        if (get_int(p, root, "best_of", 1, INT32_MAX, &i) < 0) return -1;
        if (i != 1) return oai_bad(p, "best_of", "only 1 is supported, got %lld", (long long)i);
        if (get_bool(p, root, "echo", &b) < 0) return -1;
        if (b) return oai_bad(p, "echo", "only false is supported (the prompt is not echoed)");
        if ((j = field(root, "suffix")) && (!cJSON_IsString(j) || j->valuestring[0]))
            return oai_bad(p, "suffix", "not supported (only null or \"\"), got %s", oai_show(j, v, sizeof v));
        i = 0;
        if (get_int(p, root, "logprobs", 0, INT32_MAX, &i) < 0) return -1;
        if (i > 1)
            return oai_bad(p, "logprobs",
                           "only the sampled token's log-probability is available: use 0 or 1, got %lld",
                           (long long)i);
        q->logprobs = (int)i;
    } else {
        if (get_bool(p, root, "logprobs", &q->logprobs) < 0) return -1;
        i = 0;
        if (get_int(p, root, "top_logprobs", 0, INT32_MAX, &i) < 0) return -1;
        if (i != 0)
            return oai_bad(p, "top_logprobs",
                           "only the sampled token's log-probability is available: use 0, got %lld", (long long)i);
    }
    q->req.logprobs = q->logprobs != 0;
    const char *pen[] = {"presence_penalty", "frequency_penalty"};
    for (int k = 0; k < 2; k++) {
        if (get_num(p, root, pen[k], -2, 0, 2, &d) < 0) return -1;
        if (d != 0) return oai_bad(p, pen[k], "only 0 is supported, got %g", d);
    }
    if ((j = field(root, "logit_bias")) && (!cJSON_IsObject(j) || j->child))
        return oai_bad(p, "logit_bias", "not supported (only {} or null), got %s", oai_show(j, v, sizeof v));
    return 0;
}

/* user, ignore_eos, ifp_deadline_ms, ifp_mask. */
static int parse_ifp(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    const char *s = NULL;
    char v[64];
    int rc = get_str(p, root, "user", "user", OAI_USER_MAX, &s);
    if (rc < 0) return -1;
    if (rc) snprintf(q->user, sizeof q->user, "%s", s);
    int b = 0;
    if (get_bool(p, root, "ignore_eos", &b) < 0) return -1;
    q->req.ignore_eos = b;
    int64_t ms = 0;
    if (get_int(p, root, "ifp_deadline_ms", 0, 86400000, &ms) < 0) return -1;
    q->req.deadline_ms = (uint32_t)ms; /* 0 = none; past it: 504 */
    const cJSON *m = field(root, "ifp_mask");
    q->req.mask_mode = IFP__MASK_MODE__MASK_INPUT;
    q->mask_name = "input";
    if (!m) return 0;
    if (cJSON_IsString(m) && strcmp(m->valuestring, "input") == 0) return 0;
    if (cJSON_IsString(m) && strcmp(m->valuestring, "dense") == 0) {
        q->req.mask_mode = IFP__MASK_MODE__MASK_DENSE;
        q->mask_name = "dense";
        return 0;
    }
    if (!cJSON_IsObject(m))
        return oai_bad(p, "ifp_mask", "must be \"input\", \"dense\" or {\"task\": \"instruction\"}, got %s",
                       oai_show(m, v, sizeof v));
    static const char *const task[] = {"task"};
    if (oai_no_duplicates(p, m, task, 1, "ifp_mask.")) return -1;
    if ((rc = get_str(p, m, "task", "ifp_mask.task", RT_TASK_MAX, &s)) < 0) return -1;
    if (rc == 0) return oai_bad(p, "ifp_mask.task", "missing (the task instruction text)");
    if (!*s) return oai_bad(p, "ifp_mask.task", "empty (the task instruction text)");
    if (!(q->task = strdup(s))) return oai_oom(p);
    q->req.task = q->task;
    q->req.mask_mode = IFP__MASK_MODE__MASK_TASK;
    q->mask_name = "task";
    return 0;
}

/* Every top-level field read above. */
static const char *const FIELDS[] = {"model", "prompt", "messages", "max_tokens", "max_completion_tokens",
                                     "temperature", "top_p", "top_k", "seed", "stop", "stream", "stream_options",
                                     "n", "best_of", "echo", "suffix", "logprobs", "top_logprobs", "logit_bias",
                                     "presence_penalty", "frequency_penalty", "user", "ignore_eos", "ifp_deadline_ms",
                                     "ifp_mask"};

static int parse_fields(oai_parse_t *p, const cJSON *root, oai_request_t *q) {
    if (oai_no_duplicates(p, root, FIELDS, (int)(sizeof FIELDS / sizeof *FIELDS), "")) return -1;
    const char *model = NULL;
    int rc = get_str(p, root, "model", "model", 256, &model);
    if (rc < 0) return -1;
    if (rc == 0) return oai_bad(p, "model", "missing (this server serves \"%s\")", p->lim->model_id);
    if (strcmp(model, p->lim->model_id) != 0) {
        char v[64];
        oai_error_set(p->err, 404, "invalid_request_error", "model", "model_not_found",
                      "model: %s does not exist; this server serves \"%s\"",
                      oai_show(cJSON_GetObjectItemCaseSensitive(root, "model"), v, sizeof v), p->lim->model_id);
        return -1;
    }
    if (q->kind == OAI_CHAT) {
        if (oai_render_chat(p, field(root, "messages"), q)) return -1;
    } else if (parse_prompt(p, root, q)) {
        return -1;
    }
    if (parse_sampling(p, root, q) || parse_stop(p, root, q) || parse_stream(p, root, q) ||
        parse_fixed(p, root, q) || parse_ifp(p, root, q))
        return -1;
    return 0;
}

int oai_parse(oai_kind_t kind, const char *body, size_t len, const oai_limits_t *lim, oai_request_t *out,
              oai_error_t *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    ifp__request__init(&out->req);
    out->req.id = NULL;
    out->kind = kind;
    out->mask_name = "input";
    oai_parse_t p = {.lim = lim, .err = err};
    if (kind != OAI_COMPLETIONS && kind != OAI_CHAT) return oai_bad(&p, "", "unknown endpoint kind %d", (int)kind);
    if (!body && len) return oai_bad(&p, "", "no body");
    char *c = scan_body(&p, body, len);
    if (!c) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(c, len, &end, 0);
    int rc = -1;
    size_t at = end && end >= c && end <= c + len ? (size_t)(end - c) : len;
    if (!root) {
        json_error(&p, c, len, at);
    } else {
        while (at < len && is_ws(c[at])) at++;
        char v[64];
        if (at < len)
            oai_bad(&p, "", "invalid JSON at byte %zu: more data after the JSON value", at);
        else if (!cJSON_IsObject(root))
            oai_bad(&p, "", "the body must be a JSON object, got %s", oai_show(root, v, sizeof v));
        else
            rc = parse_fields(&p, root, out);
    }
    cJSON_Delete(root);
    free(c);
    if (rc) oai_request_free(out);
    return rc;
}

void oai_request_free(oai_request_t *r) {
    if (!r) return;
    free(r->prompt);
    free(r->task);
    free(r->prompt_ids);
    for (int i = 0; i < 4; i++) free(r->stop[i]);
    oai_kind_t kind = r->kind;
    memset(r, 0, sizeof *r);
    ifp__request__init(&r->req);
    r->req.id = NULL;
    r->kind = kind;
    r->mask_name = "input";
}
