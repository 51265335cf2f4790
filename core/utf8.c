#include "utf8.h"

size_t ifp_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;      /* no overlong 3-byte forms */
            else if (c == 0xed) hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;      /* no overlong 4-byte forms */
            else if (c == 0xf4) hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            return i; /* a continuation byte, 0xc0/0xc1 or 0xf5..0xff */
        }
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return i;
        i += len;
    }
    return n;
}

int ifp_utf8_check_text(const uint8_t *s, size_t n, size_t *at) {
    size_t v = ifp_utf8_valid_prefix(s, n);
    for (size_t i = 0; i < v; i++)
        if (s[i] == 0) {
            if (at) *at = i;
            return -1;
        }
    if (v < n) {
        if (at) *at = v;
        return -1;
    }
    return 0;
}
