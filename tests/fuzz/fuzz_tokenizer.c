/* fuzz_tokenizer — the tokenizer's input (core/tokenizer.h) with the
 * embedded model's tokenizer (models/ifp-mix/ifp-mix.gguf).
 *
 * Each input is used twice:
 *   - as text (up to its first NUL byte; valid UTF-8 or not): encoded with
 *     and without BOS; every id in range; the count the same whatever the
 *     buffer size; and for valid UTF-8, decode(encode(s)) == s (with U+2581
 *     read as the space it stands for);
 *   - as little-endian int32 token ids (any value, in range or not):
 *     decoded piece by piece and in one call, into a full buffer and into a
 *     short one (a NUL-terminated prefix, the same full length);
 * and the bytes go through core/utf8.h's validator (what the router checks
 * client text with), compared with an independent reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gguf.h"
#include "tokenizer.h"
#include "utf8.h"

static ifp_tokenizer_t *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    if (ifp_gguf_open(ifp_fuzz_source_path("models/ifp-mix/ifp-mix.gguf"), &g, &err) ||
        ifp_tokenizer_from_gguf(g, &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        return 1;
    }
    ifp_gguf_close(&g);
    return 0;
}

/* s with every U+2581 ('▁', the piece marker for a space) turned into ' '. */
static size_t spaces(const char *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            out[k++] = ' ';
            i += 3;
        } else {
            out[k++] = s[i++];
        }
    }
    out[k] = '\0';
    return k;
}

static void encode(const char *text, size_t len) {
    int n_vocab = ifp_tokenizer_n_vocab(tok);
    /* a few ids per byte at most: every byte can become one byte token, plus BOS and the dummy prefix */
    int cap = (int)(4 * len + 8);
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    FUZZ_CHECK(ids != NULL, "out of memory");
    for (int bos = 0; bos < 2; bos++) {
        int n = ifp_tokenizer_encode(tok, text, bos, ids, cap);
        FUZZ_CHECK(n >= 0 && n <= cap, "encode returned %d for %zu bytes", n, len);
        FUZZ_CHECK(len > 0 || n == (bos && ifp_tokenizer_bos(tok) >= 0), "empty text gave %d ids", n);
        for (int i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < n_vocab, "id %d out of range", ids[i]);
        /* the count does not depend on the buffer: with none, or a short one */
        int32_t few[2];
        FUZZ_CHECK(ifp_tokenizer_encode(tok, text, bos, NULL, 0) == n, "count without a buffer differs");
        FUZZ_CHECK(ifp_tokenizer_encode(tok, text, bos, few, 2) == n, "count with a short buffer differs");
        FUZZ_CHECK(n < 1 || few[0] == ids[0], "a short buffer got other ids");
        if (!bos || !ifp_fuzz_valid_utf8(text, len)) continue;
        /* decode(encode(s)) == s: BOS drops the dummy-prefix space */
        char *want = malloc(len + 1), *got = malloc(len + 2);
        FUZZ_CHECK(want && got, "out of memory");
        size_t wlen = spaces(text, len, want);
        size_t glen = ifp_tokenizer_decode(tok, ids, n, got, len + 2);
        FUZZ_CHECK(glen == wlen && memcmp(got, want, wlen) == 0, "decode(encode(s)) != s: %zu bytes '%.*s' -> %zu bytes '%.*s'",
                   wlen, (int)(wlen < 200 ? wlen : 200), want, glen, (int)(glen < 200 ? glen : 200), got);
        free(want);
        free(got);
    }
    free(ids);
}

static void decode(const uint8_t *data, size_t size) {
    int n = (int)(size / 4);
    if (!n) return;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    FUZZ_CHECK(ids != NULL, "out of memory");
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)((uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 | (uint32_t)data[4 * i + 2] << 16 |
                           (uint32_t)data[4 * i + 3] << 24);
    /* piece by piece, as the router streams text */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t len = 1234;
        const char *p = ifp_tokenizer_piece(tok, i ? ids[i - 1] : -1, ids[i], &len);
        FUZZ_CHECK(p != NULL, "piece(%d) is NULL", ids[i]);
        ifp_fuzz_touch(p, len);
        total += len;
        const char *raw = ifp_tokenizer_raw_piece(tok, ids[i]);
        FUZZ_CHECK((raw != NULL) == (ids[i] >= 0 && ids[i] < ifp_tokenizer_n_vocab(tok)), "raw_piece(%d)", ids[i]);
        if (raw) ifp_fuzz_touch_str(raw);
    }
    /* in one call: the same length; a short buffer holds a prefix */
    char *full = malloc(total + 1), small[7];
    FUZZ_CHECK(full != NULL, "out of memory");
    FUZZ_CHECK(ifp_tokenizer_decode(tok, ids, n, full, total + 1) == total, "decode length != sum of pieces");
    size_t cap = (size_t)(data[0] % 8);
    FUZZ_CHECK(ifp_tokenizer_decode(tok, ids, n, small, cap) == total, "decode length depends on the buffer");
    if (cap > 0) {
        size_t k = total < cap - 1 ? total : cap - 1;
        FUZZ_CHECK(small[k] == '\0' && memcmp(small, full, k) == 0, "a short buffer is not a prefix");
    }
    free(full);
    free(ids);
}

static void utf8(const uint8_t *data, size_t size) {
    size_t v = ifp_utf8_valid_prefix(data, size);
    FUZZ_CHECK(v <= size && ifp_fuzz_valid_utf8(data, v), "valid prefix %zu of %zu is not valid", v, size);
    for (size_t len = 1; v < size && len <= 4 && len <= size - v; len++)
        FUZZ_CHECK(!ifp_fuzz_valid_utf8(data + v, len), "valid prefix %zu stops before a valid character", v);
    size_t at = 0;
    const uint8_t *nul = memchr(data, 0, v);
    int rc = ifp_utf8_check_text(data, size, &at);
    if (v == size && !nul) FUZZ_CHECK(rc == 0, "check_text refused valid text");
    else FUZZ_CHECK(rc == -1 && at == (nul ? (size_t)(nul - data) : v), "check_text: %d at %zu (prefix %zu)", rc, at, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    utf8(data, size);
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    encode(text, strlen(text));
    free(text);
    decode(data, size);
    return 0;
}
