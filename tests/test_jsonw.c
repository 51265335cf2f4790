/* test_jsonw — JSON string escaping keeps output valid whatever the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jsonw.h"
#include "testutil.h"

static void escapes(void **unused) {
    (void)unused;
    ifp_buf_t b = {0};
    const char s[] = "a\"b\\c\n\t\x01 é \xff end";
    ifp_buf_json_str(&b, s, sizeof s - 1);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001 é \\ufffd end\"");
    cJSON *j = cJSON_Parse(b.p);
    assert_non_null(j);
    cJSON_Delete(j);
    ifp_buf_reset(&b);
    /* truncated multi-byte sequences, surrogates and overlongs */
    const char bad[] = "\xe2\x96 \xed\xa0\x80 \xc0\xaf \xf0\x9f\x98\x80";
    ifp_buf_json_str(&b, bad, sizeof bad - 1);
    assert_string_equal(b.p, "\"\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd \xf0\x9f\x98\x80\"");
    ifp_buf_reset(&b);
    ifp_buf_json_float(&b, 1.5);
    ifp_buf_append(&b, ",", 1);
    ifp_buf_json_float(&b, 1.0 / 0.0);
    assert_string_equal(b.p, "1.5,null");
    ifp_buf_free(&b);
}

static void utf8_lengths(void **unused) {
    (void)unused;
    assert_int_equal(ifp_utf8_seq_len((const unsigned char *)"a", 1), 1);
    assert_int_equal(ifp_utf8_seq_len((const unsigned char *)"\xc3\xa9", 2), 2);
    assert_int_equal(ifp_utf8_seq_len((const unsigned char *)"\xc3", 1), 0);
    assert_int_equal(ifp_utf8_seq_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    assert_int_equal(ifp_utf8_seq_len((const unsigned char *)"\xe0\x80\x80", 3), 0);     /* overlong */
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(escapes), cmocka_unit_test(utf8_lengths)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
