/* utf8.h — strict UTF-8 validation (RFC 3629): no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF.  For text that
 * crosses a process boundary: ids, prompts and names must be valid UTF-8
 * before they are echoed in a protobuf `string` or a JSON string. */
#ifndef IFP_UTF8_H
#define IFP_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the longest valid prefix of s[0..n): n when all of it is valid
 * UTF-8 (a NUL byte is valid UTF-8; callers that forbid it check for it). */
size_t ifp_utf8_valid_prefix(const uint8_t *s, size_t n);

/* 0 if s[0..n) is valid UTF-8 without a NUL byte; else -1 and *at = the
 * offset of the first offending byte. */
int ifp_utf8_check_text(const uint8_t *s, size_t n, size_t *at);

#endif
