/* jsonw.h — a growable text buffer and JSON string escaping.
 *
 * Generated text can hold partial or invalid UTF-8 (byte tokens); JSON
 * strings must be valid UTF-8, so invalid sequences are written as U+FFFD. */
#ifndef IFP_JSONW_H
#define IFP_JSONW_H

#include <stddef.h>

typedef struct {
    char *p;    /* NUL-terminated */
    size_t len;
    size_t cap;
    int oom;    /* set once an allocation failed; later appends are dropped */
} ifp_buf_t;

void ifp_buf_free(ifp_buf_t *b);
void ifp_buf_reset(ifp_buf_t *b);
void ifp_buf_append(ifp_buf_t *b, const char *s, size_t n);
void ifp_buf_printf(ifp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends "s[0..n)" as a quoted JSON string. */
void ifp_buf_json_str(ifp_buf_t *b, const char *s, size_t n);
/* Appends a float as a JSON number (non-finite -> null). */
void ifp_buf_json_float(ifp_buf_t *b, double v);

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if invalid or
 * incomplete. */
size_t ifp_utf8_seq_len(const unsigned char *s, size_t n);

#endif
