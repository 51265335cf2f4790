/* oai_int.h — what router/oai_parse.c and router/oai_chat.c share; not API
 * (router/oai.h is). */
#ifndef RT_OAI_INT_H
#define RT_OAI_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "oai.h"

/* A "\u0000" escape in a body is replaced by 6 of these bytes before cJSON
 * reads it (0xC0 is never part of valid UTF-8): the field's UTF-8 check then
 * finds it and the error names the field. */
#define OAI_NUL_MARK 0xC0
/* The deepest nesting of arrays and objects a body may have (cJSON's own
 * limit is 1000; its parser and cJSON_Delete recurse once per level). */
#define OAI_MAX_DEPTH 128

typedef struct {
    const oai_limits_t *lim;
    oai_error_t *err;
    int marked;        /* the body had "\u0000" escapes (now OAI_NUL_MARK bytes) */
    int open_str;      /* the body ends inside a string ... */
    size_t open_depth; /* ... or with this many brackets open */
} oai_parse_t;

/* Sets a 400 invalid_request_error "param: message" (no prefix when param
 * is "") and returns -1. */
int oai_bad(oai_parse_t *p, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets a 500 for a failed allocation and returns -1. */
int oai_oom(oai_parse_t *p);
/* A short description of a JSON value for messages: the number, the string
 * quoted when short and printable, else its kind ("an array"); may use buf. */
const char *oai_show(const cJSON *j, char *buf, size_t cap);
/* 0 if s[0..n) is valid UTF-8 without NUL; else the error (naming param)
 * and -1. */
int oai_check_text(oai_parse_t *p, const char *param, const char *s, size_t n);

/* -1 with the error (param prefix + name) if one of names[0..n) is a key of
 * the object obj more than once: JSON leaves duplicates undefined and
 * parsers differ on which one counts, so a proxy in front could have seen
 * another value.  n <= OAI_MAX_NAMES. */
#define OAI_MAX_NAMES 32
int oai_no_duplicates(oai_parse_t *p, const cJSON *obj, const char *const *names, int n, const char *prefix);

/* Checks messages (NULL when absent) and renders them with
 * p->lim->chat_template into q->prompt / q->req.prompt; or -1 with the
 * error. */
int oai_render_chat(oai_parse_t *p, const cJSON *messages, oai_request_t *q);

#endif
