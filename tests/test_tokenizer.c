/* test_tokenizer.c — SentencePiece-BPE tokenizer against real data.
 *
 * - golden.jsonl: encode(prompt, bos) == prompt_ids (sentencepiece's output);
 * - calib.jsonl: decode(encode(x, bos)) == x for every prompt and every
 *   prompt+response;
 * - edge cases with ids produced by sentencepiece 0.1.97 on
 *   ifp-mix-tokenizer.model (spaces, newlines, digits, byte fallback);
 * - stories260K: "Once upon a time" as llama2.c's run.c encodes it;
 * - small hand-made vocabularies: merge order, leftmost ties, missing byte
 *   pieces -> unk, piece()/decode() contracts, argument validation;
 * - GGUF loading errors (non-"llama" model, missing tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "gguf.h"
#include "tokenizer.h"

#define IFP_MIX_GGUF IFP_SOURCE_DIR "/models/ifp-mix/ifp-mix.gguf"
#define STORIES_GGUF IFP_SOURCE_DIR "/models/stories260K.gguf"
#define GOLDEN_JSONL IFP_SOURCE_DIR "/models/ifp-mix/golden.jsonl"
#define CALIB_JSONL IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl"
#define MAX_IDS (1 << 16)

static int32_t g_ids[MAX_IDS];
static char g_text[1 << 18];

static ifp_tokenizer_t *load_gguf(const char *path) {
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    if (ifp_gguf_open(path, &g, &err) != IFP_OK) fail_msg("open %s: %s", path, err.msg);
    ifp_tokenizer_t *t = NULL;
    if (ifp_tokenizer_from_gguf(g, &t, &err) != IFP_OK) fail_msg("tokenizer %s: %s", path, err.msg);
    ifp_gguf_close(&g); /* the tokenizer copies what it needs */
    return t;
}

static int setup_mix(void **state) {
    *state = load_gguf(IFP_MIX_GGUF);
    return 0;
}

static int teardown_tok(void **state) {
    ifp_tokenizer_t *t = *state;
    ifp_tokenizer_destroy(&t);
    assert_null(t);
    ifp_tokenizer_destroy(&t); /* NULL is fine */
    return 0;
}

/* Reads a whole text file (NUL-terminated, caller frees). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Calls fn(json object) for every line of a JSON-lines file; returns lines. */
static int for_each_jsonl(const char *path, void (*fn)(cJSON *obj, void *ctx), void *ctx) {
    char *buf = slurp(path);
    int n = 0;
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        else *nl = '\0';
        if (*line == '\0') continue;
        cJSON *obj = cJSON_Parse(line);
        if (!obj) fail_msg("%s: bad JSON on line %d", path, n + 1);
        fn(obj, ctx);
        cJSON_Delete(obj);
        n++;
    }
    free(buf);
    return n;
}

/* encode(text, bos) must equal want[0..n). */
static void expect_ids(ifp_tokenizer_t *t, const char *text, const int32_t *want, int n) {
    int got = ifp_tokenizer_encode(t, text, 1, g_ids, MAX_IDS);
    if (got != n) fail_msg("encode(\"%s\"): %d ids, want %d", text, got, n);
    for (int i = 0; i < n; i++)
        if (g_ids[i] != want[i]) fail_msg("encode(\"%s\"): id[%d] = %d, want %d", text, i, g_ids[i], want[i]);
}

/* decode(encode(text, bos)) must equal text. */
static void expect_roundtrip(ifp_tokenizer_t *t, const char *text) {
    int n = ifp_tokenizer_encode(t, text, 1, g_ids, MAX_IDS);
    assert_true(n >= 1 && n <= MAX_IDS);
    assert_int_equal(g_ids[0], ifp_tokenizer_bos(t));
    size_t len = ifp_tokenizer_decode(t, g_ids, n, g_text, sizeof g_text);
    assert_true(len < sizeof g_text);
    if (len != strlen(text) || memcmp(g_text, text, len) != 0)
        fail_msg("round trip differs:\n  in : \"%s\"\n  out: \"%s\"", text, g_text);
}

/* ---- ifp-mix: golden prompts and calibration round trips ---- */

struct golden_ctx {
    ifp_tokenizer_t *t;
    int match;
};

static void check_golden(cJSON *obj, void *vctx) {
    struct golden_ctx *c = vctx;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(obj, "prompt_ids");
    assert_true(cJSON_IsString(prompt) && cJSON_IsArray(want));
    int n = ifp_tokenizer_encode(c->t, prompt->valuestring, 1, g_ids, MAX_IDS);
    int ok = n == cJSON_GetArraySize(want);
    for (int i = 0; ok && i < n; i++) ok = g_ids[i] == cJSON_GetArrayItem(want, i)->valueint;
    if (!ok) {
        print_error("golden mismatch for prompt: %s\n", prompt->valuestring);
        return;
    }
    c->match++;
}

static void test_golden_prompt_ids(void **state) {
    struct golden_ctx c = {*state, 0};
    int lines = for_each_jsonl(GOLDEN_JSONL, check_golden, &c);
    print_message("golden: %d/%d prompts match prompt_ids\n", c.match, lines);
    assert_true(lines >= 12);
    assert_int_equal(c.match, lines);
}

struct calib_ctx {
    ifp_tokenizer_t *t;
    int n;
    char *joined;
    size_t joined_cap;
};

static void check_calib(cJSON *obj, void *vctx) {
    struct calib_ctx *c = vctx;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(obj, "response");
    assert_true(cJSON_IsString(prompt) && cJSON_IsString(resp));
    expect_roundtrip(c->t, prompt->valuestring);
    c->n++;
    size_t lp = strlen(prompt->valuestring), lr = strlen(resp->valuestring);
    if (lp + lr + 1 > c->joined_cap) {
        c->joined_cap = 2 * (lp + lr + 1);
        c->joined = realloc(c->joined, c->joined_cap);
        assert_non_null(c->joined);
    }
    memcpy(c->joined, prompt->valuestring, lp);
    memcpy(c->joined + lp, resp->valuestring, lr + 1);
    expect_roundtrip(c->t, c->joined);
    c->n++;
}

static void test_calib_roundtrip(void **state) {
    struct calib_ctx c = {*state, 0, NULL, 0};
    int lines = for_each_jsonl(CALIB_JSONL, check_calib, &c);
    free(c.joined);
    print_message("calib: %d/%d texts round-trip (%d prompts, each alone and + response)\n", c.n, 2 * lines, lines);
    assert_true(lines >= 400);
    assert_int_equal(c.n, 2 * lines);
}

/* ---- ifp-mix: edge cases (expected ids from sentencepiece) ---- */

#define EXPECT(t, text, ...)                                                          \
    do {                                                                              \
        static const int32_t want_[] = {__VA_ARGS__};                                 \
        expect_ids(t, text, want_, (int)(sizeof want_ / sizeof want_[0]));            \
        expect_roundtrip(t, text);                                                    \
    } while (0)

static void test_mix_edge_cases(void **state) {
    ifp_tokenizer_t *t = *state;
    assert_int_equal(ifp_tokenizer_n_vocab(t), 2048);
    assert_int_equal(ifp_tokenizer_bos(t), 1);
    assert_int_equal(ifp_tokenizer_eos(t), 2);
    assert_int_equal(ifp_tokenizer_add_bos(t), 1);

    /* empty: BOS only, or nothing at all */
    EXPECT(t, "", 1);
    assert_int_equal(ifp_tokenizer_encode(t, "", 0, g_ids, MAX_IDS), 0);
    /* only spaces / runs of spaces: whitespace-only pieces */
    EXPECT(t, " ", 1, 298);
    EXPECT(t, "   ", 1, 369);
    EXPECT(t, "a  b", 1, 261, 1961, 274);
    EXPECT(t, "x     y", 1, 444, 369, 368);
    /* newline is not a piece: byte token <0x0A> = 13 */
    EXPECT(t, "\n", 1, 1961, 13);
    EXPECT(t, "a\nb", 1, 261, 13, 1986);
    /* split_digits: every digit alone */
    EXPECT(t, "12345", 1, 1961, 1981, 1983, 1993, 1992, 1989);
    EXPECT(t, "Hello world", 1, 413, 339, 1966, 1727);
    /* non-ASCII: one piece in vocab ('), the rest byte fallback */
    EXPECT(t, "it\xE2\x80\x99s", 1, 387, 2041, 1965);
    EXPECT(t, "caf\xC3\xA9", 1, 272, 1710, 198, 172);
    EXPECT(t, "\xF0\x9F\x98\x80", 1, 1961, 243, 162, 155, 131);      /* emoji */
    EXPECT(t, "\xE4\xB8\xAD\xE6\x96\x87", 1, 1961, 231, 187, 176, 233, 153, 138); /* CJK */
    /* invalid UTF-8: byte by byte (0xFF -> <0xFF> = 258) */
    EXPECT(t, "\xFF", 1, 1961, 258);
    expect_roundtrip(t, "a\xFF" "b\xC3 \xE2\x82 \xF0\x9F\x98 \xC0\xAF \xED\xA0\x80 end\x80");
    /* a literal U+2581 is a space to sentencepiece, and decodes as one */
    int n = ifp_tokenizer_encode(t, "\xE2\x96\x81", 1, g_ids, MAX_IDS);
    assert_int_equal(n, 2);
    assert_int_equal(g_ids[1], 298);
    /* without BOS the dummy-prefix space is kept by decode */
    n = ifp_tokenizer_encode(t, "Hello world", 0, g_ids, MAX_IDS);
    assert_int_equal(n, 4);
    assert_int_equal(ifp_tokenizer_decode(t, g_ids, n, g_text, sizeof g_text), 12);
    assert_string_equal(g_text, " Hello world");
}

static void test_mix_small_cap(void **state) {
    ifp_tokenizer_t *t = *state;
    const char *text = "Question: How many eggs does Janet sell?\nAnswer:";
    int full = ifp_tokenizer_encode(t, text, 1, g_ids, MAX_IDS);
    assert_true(full > 8);
    int32_t small[4] = {-7, -7, -7, -7};
    assert_int_equal(ifp_tokenizer_encode(t, text, 1, small, 3), full);
    assert_memory_equal(small, g_ids, 3 * sizeof(int32_t));
    assert_int_equal(small[3], -7); /* nothing written past cap */
    assert_int_equal(ifp_tokenizer_encode(t, text, 1, NULL, 0), full);
    assert_int_equal(ifp_tokenizer_encode(t, NULL, 1, g_ids, MAX_IDS), IFP_EINVAL);
    assert_int_equal(ifp_tokenizer_encode(t, text, 1, NULL, 5), IFP_EINVAL);

    /* decode truncates to cap-1 and still returns the full length */
    size_t len = ifp_tokenizer_decode(t, g_ids, full, g_text, sizeof g_text);
    assert_int_equal(len, strlen(text));
    char tiny[6];
    assert_int_equal(ifp_tokenizer_decode(t, g_ids, full, tiny, sizeof tiny), len);
    assert_string_equal(tiny, "Quest");
    assert_int_equal(ifp_tokenizer_decode(t, g_ids, full, NULL, 0), len);
}

static void test_mix_pieces(void **state) {
    ifp_tokenizer_t *t = *state;
    size_t len;
    assert_string_equal(ifp_tokenizer_raw_piece(t, 1), "<s>");
    assert_string_equal(ifp_tokenizer_raw_piece(t, 13), "<0x0A>");
    assert_string_equal(ifp_tokenizer_raw_piece(t, 1727), "\xE2\x96\x81world");
    assert_null(ifp_tokenizer_raw_piece(t, -1));
    assert_null(ifp_tokenizer_raw_piece(t, 2048));
    /* control / unknown -> "" */
    for (int id = 0; id < 3; id++) {
        ifp_tokenizer_piece(t, -1, id, &len);
        assert_int_equal(len, 0);
    }
    /* byte token -> raw byte, including NUL */
    const char *p = ifp_tokenizer_piece(t, -1, 13, &len);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], '\n');
    p = ifp_tokenizer_piece(t, -1, 3, &len);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 0);
    /* '▁' -> ' ', dropped right after BOS only */
    p = ifp_tokenizer_piece(t, -1, 1727, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, " world", 6);
    p = ifp_tokenizer_piece(t, 1, 1727, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "world", 5);
    p = ifp_tokenizer_piece(t, 500, 1727, &len);
    assert_int_equal(len, 6);
    /* out of range -> "" */
    p = ifp_tokenizer_piece(t, -1, 99999, &len);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
}

static void test_mix_20kb(void **state) {
    ifp_tokenizer_t *t = *state;
    /* ~20 KB of real text: calibration prompts + responses back to back */
    char *src = slurp(CALIB_JSONL);
    size_t n = 20 * 1024;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memcpy(text, src, n);
    text[n] = '\0';
    free(src);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int count = ifp_tokenizer_encode(t, text, 1, g_ids, MAX_IDS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("20 KB: %d ids in %.2f ms\n", count, 1e3 * sec);
    assert_true(count > 2000 && count < MAX_IDS);
    assert_true(sec < 0.5);
    expect_roundtrip(t, text);
    /* and 20 KB of one repeated character (long merge chains) */
    memset(text, ' ', n);
    count = ifp_tokenizer_encode(t, text, 1, g_ids, MAX_IDS);
    assert_true(count > 1 && count < 2000);
    expect_roundtrip(t, text);
    free(text);
}

/* ---- stories260K (llama2.c tok512) ---- */

static void test_stories260k(void **state) {
    (void)state;
    ifp_tokenizer_t *t = load_gguf(STORIES_GGUF);
    assert_int_equal(ifp_tokenizer_n_vocab(t), 512);
    /* llama2.c run.c: [1, " Once", " upon", " a", " time"] */
    static const int32_t want[] = {1, 403, 407, 261, 378};
    expect_ids(t, "Once upon a time", want, 5);
    assert_string_equal(ifp_tokenizer_raw_piece(t, 403), "\xE2\x96\x81Once");
    assert_string_equal(ifp_tokenizer_raw_piece(t, 378), "\xE2\x96\x81time");
    assert_int_equal(ifp_tokenizer_decode(t, want, 5, g_text, sizeof g_text), 16);
    assert_string_equal(g_text, "Once upon a time");
    expect_roundtrip(t, "Lily and Ben went to the park.\nThey saw a big dog! caf\xC3\xA9 \xF0\x9F\x98\x80");
    ifp_tokenizer_destroy(&t);
}

/* ---- hand-made vocabularies ---- */

#define SP "\xE2\x96\x81"

static void test_array_merges(void **state) {
    (void)state;
    /* "aa" beats "▁a": leftmost of the two equal "aa" pairs is taken;
     * "bc" (-1) beats "ab" (-5). */
    const char *pieces[] = {"<unk>", "<s>", "</s>", SP, "a", "b", "c", "aa", SP "a", "ab", "bc", "<0x41>", "<0xC3>"};
    const float scores[] = {0, 0, 0, -10, -11, -12, -13, -1, -2, -5, -1, 0, 0};
    const int32_t types[] = {IFP_TOK_UNKNOWN, IFP_TOK_CONTROL, IFP_TOK_CONTROL, 1, 1, 1, 1, 1, 1, 1, 1,
                             IFP_TOK_BYTE, IFP_TOK_BYTE};
    ifp_tokenizer_t *t = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_tokenizer_new(13, pieces, scores, types, 1, 2, 0, &t, &err), IFP_OK);
    int32_t ids[16];
    assert_int_equal(ifp_tokenizer_encode(t, "aaa", 1, ids, 16), 4);
    assert_int_equal(ids[1], 3); /* ▁ */
    assert_int_equal(ids[2], 7); /* aa (left pair) */
    assert_int_equal(ids[3], 4); /* a */
    /* bc (-1) first, then ▁a (-2); ab (-5) would have blocked both */
    assert_int_equal(ifp_tokenizer_encode(t, "abc", 0, ids, 16), 2);
    assert_int_equal(ids[0], 8);
    assert_int_equal(ids[1], 10);
    /* 'A' has a byte piece, 'é' = C3 A9: <0xC3> exists, <0xA9> does not -> unk */
    assert_int_equal(ifp_tokenizer_encode(t, "A\xC3\xA9", 0, ids, 16), 4);
    assert_int_equal(ids[1], 11);
    assert_int_equal(ids[2], 12);
    assert_int_equal(ids[3], 0);
    /* the BOS text is never produced by merging, nor decoded */
    assert_int_equal(ifp_tokenizer_decode(t, (const int32_t[]){1, 8, 2}, 3, g_text, sizeof g_text), 1);
    assert_string_equal(g_text, "a");
    ifp_tokenizer_destroy(&t);

    /* types NULL: "<0xXX>" are bytes, the rest normal */
    assert_int_equal(ifp_tokenizer_new(13, pieces, scores, NULL, 1, 2, 0, &t, &err), IFP_OK);
    assert_int_equal(ifp_tokenizer_encode(t, "A", 0, ids, 16), 2);
    assert_int_equal(ids[1], 11);
    size_t len;
    const char *p = ifp_tokenizer_piece(t, -1, 11, &len);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 'A');
    ifp_tokenizer_destroy(&t);
}

static void test_array_errors(void **state) {
    (void)state;
    const char *pieces[] = {"<unk>", "<s>", "</s>", "<0xZZ>"};
    const float scores[] = {0, 0, 0, 0};
    const int32_t types[] = {IFP_TOK_UNKNOWN, IFP_TOK_CONTROL, IFP_TOK_CONTROL, IFP_TOK_BYTE};
    ifp_tokenizer_t *t = NULL;
    ifp_err_t err = {0};
    assert_int_equal(ifp_tokenizer_new(0, pieces, scores, NULL, 1, 2, 0, &t, &err), IFP_ERANGE);
    assert_int_equal(ifp_tokenizer_new(3, pieces, scores, NULL, 1, 2, 5, &t, &err), IFP_ERANGE);
    assert_non_null(strstr(err.msg, "unk=5"));
    assert_int_equal(ifp_tokenizer_new(3, NULL, scores, NULL, 1, 2, 0, &t, &err), IFP_EINVAL);
    assert_int_equal(ifp_tokenizer_new(4, pieces, scores, types, 1, 2, 0, &t, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "token 3"));
    assert_null(t);
}

/* ---- GGUF loading errors ---- */

static void write_vocab_gguf(const char *path, const char *model, int with_tokens) {
    const char *pieces[] = {"<unk>", "<s>", "</s>", SP "a"};
    const float scores[] = {0, 0, 0, -1};
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(ifp_gguf_writer_set_str(w, "tokenizer.ggml.model", model), IFP_OK);
    if (with_tokens) assert_int_equal(ifp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, 4), IFP_OK);
    assert_int_equal(ifp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IFP_GGUF_FLOAT32, scores, 4), IFP_OK);
    assert_int_equal(ifp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0), IFP_OK);
    ifp_err_t err = {0};
    if (ifp_gguf_writer_write(w, path, &err) != IFP_OK) fail_msg("write %s: %s", path, err.msg);
    ifp_gguf_writer_destroy(&w);
}

static int from_gguf_file(const char *path, ifp_tokenizer_t **t, ifp_err_t *err) {
    ifp_gguf_t *g = NULL;
    if (ifp_gguf_open(path, &g, err) != IFP_OK) fail_msg("open %s: %s", path, err->msg);
    int rc = ifp_tokenizer_from_gguf(g, t, err);
    ifp_gguf_close(&g);
    return rc;
}

static void test_gguf_errors(void **state) {
    (void)state;
    const char *path = IFP_BINARY_DIR "/test_tokenizer_vocab.gguf";
    ifp_tokenizer_t *t = NULL;
    ifp_err_t err = {0};

    write_vocab_gguf(path, "gpt2", 1);
    assert_int_equal(from_gguf_file(path, &t, &err), IFP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "gpt2"));
    assert_null(t);

    write_vocab_gguf(path, "llama", 0);
    assert_int_equal(from_gguf_file(path, &t, &err), IFP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "tokenizer.ggml.tokens"));
    assert_null(t);

    /* minimal valid file: defaults bos 1 / eos 2 / unk 0, add_bos as written */
    write_vocab_gguf(path, "llama", 1);
    assert_int_equal(from_gguf_file(path, &t, &err), IFP_OK);
    assert_int_equal(ifp_tokenizer_bos(t), 1);
    assert_int_equal(ifp_tokenizer_add_bos(t), 0);
    int32_t ids[4];
    assert_int_equal(ifp_tokenizer_encode(t, "a", 0, ids, 4), 1);
    assert_int_equal(ids[0], 3);
    ifp_tokenizer_destroy(&t);
    remove(path);
    assert_int_equal(ifp_tokenizer_from_gguf(NULL, &t, &err), IFP_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_golden_prompt_ids, setup_mix, teardown_tok),
        cmocka_unit_test_setup_teardown(test_calib_roundtrip, setup_mix, teardown_tok),
        cmocka_unit_test_setup_teardown(test_mix_edge_cases, setup_mix, teardown_tok),
        cmocka_unit_test_setup_teardown(test_mix_small_cap, setup_mix, teardown_tok),
        cmocka_unit_test_setup_teardown(test_mix_pieces, setup_mix, teardown_tok),
        cmocka_unit_test_setup_teardown(test_mix_20kb, setup_mix, teardown_tok),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_array_merges),
        cmocka_unit_test(test_array_errors),
        cmocka_unit_test(test_gguf_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
