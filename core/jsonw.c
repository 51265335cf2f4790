#include "jsonw.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ifp_buf_free(ifp_buf_t *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void ifp_buf_reset(ifp_buf_t *b) {
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

static int reserve(ifp_buf_t *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void ifp_buf_append(ifp_buf_t *b, const char *s, size_t n) {
    if (reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n); /* s may be NULL when n is 0 (an empty protobuf bytes field) */
    b->len += n;
    b->p[b->len] = '\0';
}

void ifp_buf_printf(ifp_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t ifp_utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

void ifp_buf_json_str(ifp_buf_t *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    ifp_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            ifp_buf_append(b, e, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': ifp_buf_append(b, "\\n", 2); break;
            case '\r': ifp_buf_append(b, "\\r", 2); break;
            case '\t': ifp_buf_append(b, "\\t", 2); break;
            default: ifp_buf_printf(b, "\\u%04x", c);
            }
            i++;
        } else {
            size_t len = ifp_utf8_seq_len(u + i, n - i);
            if (len == 0) {
                ifp_buf_append(b, "\\ufffd", 6);
                i++;
            } else {
                ifp_buf_append(b, s + i, len);
                i += len;
            }
        }
    }
    ifp_buf_append(b, "\"", 1);
}

void ifp_buf_json_float(ifp_buf_t *b, double v) {
    if (!isfinite(v))
        ifp_buf_append(b, "null", 4);
    else
        ifp_buf_printf(b, "%.9g", v);
}
