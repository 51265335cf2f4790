/* test_cli — the `ifp` command end to end: stories260K against llama2.c's
 * reference output, ifp-mix against the PyTorch golden vectors through
 * `ifp run --json`, and bad input rejected with clear errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"

static void stories_reference(void **unused) {
    (void)unused;
    struct {
        const char *prompt, *n, *ref;
    } cases[] = {
        {"", "200", IFP_SOURCE_DIR "/tests/data/stories260K_t0_n200_noprompt.txt"},
        {"Once upon a time", "64", IFP_SOURCE_DIR "/tests/data/stories260K_t0_n64_once_upon_a_time.txt"},
    };
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {IFP_BIN, "run", "--model", MODEL_PATH("stories260K.gguf"), "--prompt", cases[i].prompt,
                              "-n", cases[i].n, "--temp", "0", NULL};
        tu_run_t r = tu_run(argv);
        assert_int_equal(r.status, 0);
        size_t ref_len = 0;
        char *ref = tu_read_file(cases[i].ref, &ref_len);
        assert_non_null(ref);
        /* run.c's -n counts prompt positions too, so its text (less the
         * newline run.c prints at the end) is a prefix of ours */
        if (ref_len && ref[ref_len - 1] == '\n') ref[--ref_len] = '\0';
        if (strncmp(r.out, ref, ref_len) != 0) fprintf(stderr, "got:\n%s\nwant prefix:\n%s\n", r.out, ref);
        assert_true(strncmp(r.out, ref, ref_len) == 0);
        free(ref);
        tu_run_free(&r);
    }
}

static void ifp_mix_golden_json(void **unused) {
    (void)unused;
    int n_rows;
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n_rows);
    assert_int_equal(n_rows, 12);
    for (int i = 0; i < n_rows; i++) {
        const char *prompt = cJSON_GetObjectItem(rows[i], "prompt")->valuestring;
        const char *argv[] = {IFP_BIN, "run", "--model", MODEL_PATH("ifp-mix/ifp-mix.gguf"), "--prompt", prompt,
                              "-n", "32", "--temp", "0", "--json", NULL};
        tu_run_t r = tu_run(argv);
        assert_int_equal(r.status, 0);
        cJSON *j = cJSON_Parse(r.out);
        assert_non_null(j);
        const cJSON *want_ids = cJSON_GetObjectItem(rows[i], "prompt_ids"), *got_ids = cJSON_GetObjectItem(j, "prompt_tokens");
        assert_int_equal(cJSON_GetArraySize(got_ids), cJSON_GetArraySize(want_ids));
        for (int k = 0; k < cJSON_GetArraySize(want_ids); k++)
            assert_int_equal(cJSON_GetArrayItem(got_ids, k)->valueint, cJSON_GetArrayItem(want_ids, k)->valueint);
        const cJSON *dense = cJSON_GetObjectItem(rows[i], "dense");
        const cJSON *wl = cJSON_GetObjectItem(dense, "last_logits_first16"), *gl = cJSON_GetObjectItem(j, "logits_last_prompt");
        assert_int_equal(cJSON_GetArraySize(gl), 16);
        for (int k = 0; k < 16; k++)
            assert_true(fabs(cJSON_GetArrayItem(gl, k)->valuedouble - cJSON_GetArrayItem(wl, k)->valuedouble) < 1e-4);
        assert_int_equal(cJSON_GetObjectItem(j, "argmax_last_prompt")->valueint,
                         cJSON_GetObjectItem(dense, "last_argmax")->valueint);
        /* greedy ids: golden includes a final EOS if one was produced; ifp
         * reports it as finish_reason "eos" instead of a token */
        const cJSON *wg = cJSON_GetObjectItem(dense, "greedy_ids"), *gg = cJSON_GetObjectItem(j, "tokens");
        int nw = cJSON_GetArraySize(wg);
        int w_eos = nw > 0 && cJSON_GetArrayItem(wg, nw - 1)->valueint == 2;
        assert_int_equal(cJSON_GetArraySize(gg), nw - w_eos);
        for (int k = 0; k < nw - w_eos; k++)
            assert_int_equal(cJSON_GetArrayItem(gg, k)->valueint, cJSON_GetArrayItem(wg, k)->valueint);
        assert_string_equal(cJSON_GetObjectItem(j, "finish_reason")->valuestring, w_eos ? "eos" : "length");
        assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring,
                            cJSON_GetObjectItem(dense, "greedy_text")->valuestring);
        assert_true(cJSON_GetObjectItem(j, "tokens_per_s")->valuedouble > 0);
        cJSON_Delete(j);
        tu_run_free(&r);
    }
    tu_free_jsonl(rows, n_rows);
}

/* Same seed -> same sampled text; another seed -> (almost surely) other text. */
static void sampling_is_seeded(void **unused) {
    (void)unused;
    const char *a1[] = {IFP_BIN, "run", "--model", MODEL_PATH("stories260K.gguf"), "-n", "40", "--temp", "1.0",
                        "--top-p", "0.9", "--seed", "42", "--json", NULL};
    const char *a2[] = {IFP_BIN, "run", "--model", MODEL_PATH("stories260K.gguf"), "-n", "40", "--temp", "1.0",
                        "--top-p", "0.9", "--seed", "43", "--json", NULL};
    tu_run_t r1 = tu_run(a1), r2 = tu_run(a1), r3 = tu_run(a2);
    assert_int_equal(r1.status, 0);
    cJSON *j1 = cJSON_Parse(r1.out), *j2 = cJSON_Parse(r2.out), *j3 = cJSON_Parse(r3.out);
    char *t1 = cJSON_PrintUnformatted(cJSON_GetObjectItem(j1, "tokens"));
    char *t2 = cJSON_PrintUnformatted(cJSON_GetObjectItem(j2, "tokens"));
    char *t3 = cJSON_PrintUnformatted(cJSON_GetObjectItem(j3, "tokens"));
    assert_string_equal(t1, t2);
    assert_string_not_equal(t1, t3);
    free(t1), free(t2), free(t3);
    cJSON_Delete(j1), cJSON_Delete(j2), cJSON_Delete(j3);
    tu_run_free(&r1), tu_run_free(&r2), tu_run_free(&r3);
}

static void bad_input(void **unused) {
    (void)unused;
    struct {
        const char *argv[12];
        int status;
        const char *msg;
    } cases[] = {
        {{IFP_BIN, "run", "--model", "/nonexistent.gguf", NULL}, 1, "nonexistent"},
        {{IFP_BIN, "run", "--model", IFP_SOURCE_DIR "/models/ifp-mix/MODEL_CARD.md", NULL}, 1, "magic"},
        {{IFP_BIN, "run", "--temp", "abc", NULL}, 2, "--temp"},
        {{IFP_BIN, "run", "--temp", "-1", NULL}, 2, "out of range"},
        {{IFP_BIN, "run", "--top-p", "1.5", NULL}, 2, "--top-p"},
        {{IFP_BIN, "run", "-n", "12x", NULL}, 2, "integer"},
        {{IFP_BIN, "run", "-n", NULL}, 2, "needs a value"},
        {{IFP_BIN, "run", "--bogus", NULL}, 2, "unknown option"},
        {{IFP_BIN, "frobnicate", NULL}, 2, "unknown command"},
        {{IFP_BIN, "info", NULL}, 2, "expected one GGUF file"},
        {{IFP_BIN, "info", IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl", NULL}, 1, "magic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tu_run_t r = tu_run(cases[i].argv);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg))
            fprintf(stderr, "case %zu: status %d stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.err, cases[i].msg));
        tu_run_free(&r);
    }
}

static void info_prints_tables(void **unused) {
    (void)unused;
    const char *argv[] = {IFP_BIN, "info", MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf"), NULL};
    tu_run_t r = tu_run(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "ifp.head.fc2.weight"));
    assert_non_null(strstr(r.out, "[128, 3072]"));
    assert_non_null(strstr(r.out, "tokenizer.ggml.tokens"));
    assert_non_null(strstr(r.out, "llama config: dim 96, layers 3"));
    tu_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stories_reference),
        cmocka_unit_test(ifp_mix_golden_json),
        cmocka_unit_test(sampling_is_seeded),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(info_prints_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
