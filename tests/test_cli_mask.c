/* test_cli_mask — `ifp run` mask modes end to end: per-input masks against
 * the golden kept channels and masked greedy tokens, task / static / dense /
 * file modes, --mask-out round trips, and bad mask options refused. */
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
#define MODEL MODEL_PATH("ifp-mix/ifp-mix.gguf")
#define PRED MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf")
#define CALIB IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl"
#define GAP_SMALL 1e-3

/* Runs argv, expects success and a JSON object on stdout. */
static cJSON *run_json(const char *const *argv) {
    tu_run_t r = tu_run(argv);
    if (r.status != 0) fprintf(stderr, "ifp failed (%d): %s\n", r.status, r.err);
    assert_int_equal(r.status, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    tu_run_free(&r);
    return j;
}

static int json_equal(const cJSON *a, const cJSON *b) {
    char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
    int eq = x && y && strcmp(x, y) == 0;
    free(x), free(y);
    return eq;
}

/* Layer l of got vs want (sorted int arrays): 0 identical, 1 exactly one
 * channel swapped (one out, one in), -1 otherwise. */
static int compare_layer(const cJSON *got, const cJSON *want) {
    int ng, nw;
    int *g = tu_ints(got, &ng), *w = tu_ints(want, &nw);
    int diff = 0, i = 0, j = 0, res;
    if (ng != nw) {
        res = -1;
    } else {
        while (i < ng || j < nw) {
            if (j >= nw || (i < ng && g[i] < w[j])) diff++, i++;
            else if (i >= ng || w[j] < g[i]) diff++, j++;
            else i++, j++;
        }
        res = diff == 0 ? 0 : diff == 2 ? 1 : -1;
    }
    free(g), free(w);
    return res;
}

static void golden_input_masks(void **unused) {
    (void)unused;
    int n_rows, identical = 0, swapped = 0;
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n_rows);
    assert_true(n_rows > 0);
    for (int i = 0; i < n_rows; i++) {
        const char *prompt = cJSON_GetObjectItem(rows[i], "prompt")->valuestring;
        const char *argv[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "input",
                              "--prompt", prompt, "-n", "32", "--temp", "0", "--json", NULL};
        cJSON *j = run_json(argv);
        assert_string_equal(cJSON_GetObjectItem(j, "mask_mode")->valuestring, "input");
        const cJSON *mask = cJSON_GetObjectItem(j, "mask"), *want = cJSON_GetObjectItem(rows[i], "kept_channels");
        const cJSON *gaps = cJSON_GetObjectItem(rows[i], "topk_boundary_gap_per_layer");
        assert_int_equal(cJSON_GetArraySize(mask), cJSON_GetArraySize(want));
        int swaps = 0;
        for (int l = 0; l < cJSON_GetArraySize(want); l++) {
            int c = compare_layer(cJSON_GetArrayItem(mask, l), cJSON_GetArrayItem(want, l));
            assert_true(c == 0 || (c == 1 && cJSON_GetArrayItem(gaps, l)->valuedouble < GAP_SMALL));
            swaps += c;
        }
        identical += swaps == 0;
        swapped += swaps > 0;
        if (swaps == 0) {
            const cJSON *masked = cJSON_GetObjectItem(rows[i], "masked");
            const cJSON *wl = cJSON_GetObjectItem(masked, "last_logits_first16");
            const cJSON *gl = cJSON_GetObjectItem(j, "logits_last_prompt");
            for (int k = 0; k < 16; k++)
                assert_true(fabs(cJSON_GetArrayItem(gl, k)->valuedouble - cJSON_GetArrayItem(wl, k)->valuedouble) <
                            1e-4);
            /* golden greedy ids end with EOS when one was produced; ifp
             * reports it as finish_reason "eos" */
            const cJSON *wg = cJSON_GetObjectItem(masked, "greedy_ids"), *gg = cJSON_GetObjectItem(j, "tokens");
            int nw = cJSON_GetArraySize(wg);
            int w_eos = nw > 0 && cJSON_GetArrayItem(wg, nw - 1)->valueint == 2;
            assert_int_equal(cJSON_GetArraySize(gg), nw - w_eos);
            for (int k = 0; k < nw - w_eos; k++)
                assert_int_equal(cJSON_GetArrayItem(gg, k)->valueint, cJSON_GetArrayItem(wg, k)->valueint);
            assert_string_equal(cJSON_GetObjectItem(j, "finish_reason")->valuestring, w_eos ? "eos" : "length");
            assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring,
                                cJSON_GetObjectItem(masked, "greedy_text")->valuestring);
        }
        cJSON_Delete(j);
    }
    fprintf(stderr, "  ifp run --mask input: %d/%d masks identical to golden, %d with a boundary swap\n", identical,
            n_rows, swapped);
    tu_free_jsonl(rows, n_rows);
}

/* task:T masks the predictor's reading of T: the same mask as `input` on the
 * prompt T; --keep overrides K. */
static void task_mode(void **unused) {
    (void)unused;
    const char *task = "Solve this grade-school math problem.";
    char spec[128];
    snprintf(spec, sizeof spec, "task:%s", task);
    const char *a1[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", spec, "--prompt",
                        "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:",
                        "-n", "8", "--temp", "0", "--json", NULL};
    const char *a2[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--prompt", task,
                        "-n", "1", "--temp", "0", "--json", NULL};
    const char *a3[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", spec, "--keep", "100",
                        "-n", "4", "--temp", "0", "--json", NULL};
    cJSON *j1 = run_json(a1), *j2 = run_json(a2), *j3 = run_json(a3);
    assert_string_equal(cJSON_GetObjectItem(j1, "mask_mode")->valuestring, "task");
    assert_string_equal(cJSON_GetObjectItem(j2, "mask_mode")->valuestring, "input");
    assert_true(json_equal(cJSON_GetObjectItem(j1, "mask"), cJSON_GetObjectItem(j2, "mask")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j1, "tokens")), 8);
    const cJSON *m3 = cJSON_GetObjectItem(j3, "mask");
    assert_int_equal(cJSON_GetArraySize(m3), 4);
    for (int l = 0; l < 4; l++) assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(m3, l)), 100);
    cJSON_Delete(j1), cJSON_Delete(j2), cJSON_Delete(j3);
}

/* --mask dense with a predictor == no predictor at all. */
static void dense_equals_no_predictor(void **unused) {
    (void)unused;
    const char *prompt = "Once upon a time, there was a little dog named";
    const char *a1[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "dense", "--prompt", prompt,
                        "-n", "32", "--temp", "0", "--json", NULL};
    const char *a2[] = {IFP_BIN, "run", "--model", MODEL, "--prompt", prompt, "-n", "32", "--temp", "0", "--json",
                        NULL};
    cJSON *j1 = run_json(a1), *j2 = run_json(a2);
    assert_string_equal(cJSON_GetObjectItem(j1, "mask_mode")->valuestring, "dense");
    assert_string_equal(cJSON_GetObjectItem(j2, "mask_mode")->valuestring, "dense");
    assert_null(cJSON_GetObjectItem(j1, "mask"));
    assert_null(cJSON_GetObjectItem(j2, "mask"));
    assert_true(json_equal(cJSON_GetObjectItem(j1, "tokens"), cJSON_GetObjectItem(j2, "tokens")));
    assert_true(
        json_equal(cJSON_GetObjectItem(j1, "logits_last_prompt"), cJSON_GetObjectItem(j2, "logits_last_prompt")));
    cJSON_Delete(j1), cJSON_Delete(j2);
}

/* --clusters serves each mask from its nearest cluster's union (as a shard
 * group does, with a sub-mask per row): a math and a story calibration prompt
 * (members of the clusters, so coverage 1) land in different clusters and give
 * the tokens of their own mask;
 * --json reports "cluster" and "coverage"; no mask -> a clear error. */
static void clusters_union(void **unused) {
    (void)unused;
    const char *clusters = MODEL_PATH("ifp-mix/clusters-k4.gguf");
    int n_rows;
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &n_rows);
    const char *prompts[2] = {cJSON_GetObjectItem(rows[0], "prompt")->valuestring,  /* math */
                              cJSON_GetObjectItem(rows[5], "prompt")->valuestring}; /* story */
    int cl[2];
    for (int i = 0; i < 2; i++) {
        const char *a1[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--clusters", clusters, "--prompt",
                            prompts[i], "-n", "24", "--temp", "0", "--json", NULL};
        const char *a2[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--prompt", prompts[i],
                            "-n", "24", "--temp", "0", "--json", NULL};
        cJSON *j1 = run_json(a1), *j2 = run_json(a2);
        cl[i] = cJSON_GetObjectItem(j1, "cluster")->valueint;
        double cov = cJSON_GetObjectItem(j1, "coverage")->valuedouble;
        assert_true(cov > 0.999);
        assert_null(cJSON_GetObjectItem(j2, "coverage"));
        assert_true(json_equal(cJSON_GetObjectItem(j1, "mask"), cJSON_GetObjectItem(j2, "mask")));
        assert_true(json_equal(cJSON_GetObjectItem(j1, "tokens"), cJSON_GetObjectItem(j2, "tokens")));
        cJSON_Delete(j1), cJSON_Delete(j2);
    }
    assert_int_not_equal(cl[0], cl[1]);
    tu_free_jsonl(rows, n_rows);
    const char *bad[] = {IFP_BIN, "run", "--model", MODEL, "--clusters", clusters, "-n", "4", NULL};
    tu_run_t r = tu_run(bad);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "--clusters needs a mask"));
    tu_run_free(&r);
}

/* --mask-out then --mask file: (no predictor needed) gives the same mask and
 * tokens; non-JSON mode prints the mask summary on stderr. */
static void file_round_trip(void **unused) {
    (void)unused;
    char dir[] = "/tmp/ifp_test_cli_mask_XXXXXX", path[96], spec[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    snprintf(spec, sizeof spec, "file:%s", path);
    const char *prompt = "Task: Write a function to reverse a list.\nCode:\n";
    const char *a1[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--prompt", prompt, "--mask-out",
                        path, "-n", "24", "--temp", "0", "--json", NULL};
    const char *a2[] = {IFP_BIN, "run", "--model", MODEL, "--mask", spec, "--prompt", prompt, "-n", "24", "--temp",
                        "0", "--json", NULL};
    const char *a3[] = {IFP_BIN, "run", "--model", MODEL, "--mask", spec, "--prompt", prompt, "-n", "4", "--temp",
                        "0", NULL};
    cJSON *j1 = run_json(a1), *j2 = run_json(a2);
    assert_string_equal(cJSON_GetObjectItem(j2, "mask_mode")->valuestring, "file");
    assert_true(json_equal(cJSON_GetObjectItem(j1, "mask"), cJSON_GetObjectItem(j2, "mask")));
    assert_true(json_equal(cJSON_GetObjectItem(j1, "tokens"), cJSON_GetObjectItem(j2, "tokens")));
    assert_true(
        json_equal(cJSON_GetObjectItem(j1, "logits_last_prompt"), cJSON_GetObjectItem(j2, "logits_last_prompt")));
    tu_run_t r = tu_run(a3);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "[mask file: kept 256 256 256 256 of 768 channels per layer]"));
    assert_true(strncmp(r.out, prompt, strlen(prompt)) == 0);
    tu_run_free(&r);
    cJSON_Delete(j1), cJSON_Delete(j2);
    unlink(path);
    rmdir(dir);
}

/* --mask static over calib.jsonl is the MODEL_CARD's static mask. */
static void static_mode(void **unused) {
    (void)unused;
    const char *argv[] = {IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "static", "--calib", CALIB,
                          "--prompt", "Question: What is the capital of France?\nAnswer:", "-n", "4", "--temp", "0",
                          "--json", NULL};
    cJSON *j = run_json(argv);
    assert_string_equal(cJSON_GetObjectItem(j, "mask_mode")->valuestring, "static");
    char *text = tu_read_file(MODEL_PATH("ifp-mix/calib_table.json"), NULL);
    cJSON *tab = cJSON_Parse(text);
    const cJSON *want = cJSON_GetObjectItem(tab, "static_mask_kept_channels"), *got = cJSON_GetObjectItem(j, "mask");
    assert_int_equal(cJSON_GetArraySize(got), cJSON_GetArraySize(want));
    for (int l = 0; l < cJSON_GetArraySize(want); l++)
        assert_true(compare_layer(cJSON_GetArrayItem(got, l), cJSON_GetArrayItem(want, l)) >= 0);
    cJSON_Delete(tab), cJSON_Delete(j);
    free(text);
}

static void bad_mask_options(void **unused) {
    (void)unused;
    char dir[] = "/tmp/ifp_test_cli_mask_XXXXXX", path[96], spec[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/stories.gguf", dir);
    snprintf(spec, sizeof spec, "file:%s", path);
    /* a (dense) mask for stories260K, to be refused by ifp-mix */
    const char *mk[] = {IFP_BIN, "run", "--model", MODEL_PATH("stories260K.gguf"), "--mask-out", path, "-n", "1",
                        "--json", NULL};
    tu_run_t r0 = tu_run(mk);
    assert_int_equal(r0.status, 0);
    tu_run_free(&r0);
    struct {
        const char *argv[14];
        int status;
        const char *msg;
    } cases[] = {
        {{IFP_BIN, "run", "--model", MODEL_PATH("stories260K.gguf"), "--predictor", PRED, NULL}, 1,
         "predictor targets 4 layers x 768 channels; model has 5 layers x 172 channels"},
        {{IFP_BIN, "run", "--model", MODEL_PATH("stories260K.gguf"), "--predictor", PRED, "--mask", "dense", NULL}, 1,
         "predictor targets 4 layers x 768 channels"},
        {{IFP_BIN, "run", "--model", MODEL, "--mask", "task:Write a story.", NULL}, 2,
         "--mask task needs a predictor: add --predictor P.gguf"},
        {{IFP_BIN, "run", "--model", MODEL, "--mask", "input", NULL}, 2, "--mask input needs a predictor"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "bogus", NULL}, 2,
         "--mask: unknown mask 'bogus'"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "task", NULL}, 2, "unknown mask 'task'"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "task:", NULL}, 2,
         "needs the task instruction"},
        {{IFP_BIN, "run", "--model", MODEL, "--mask", "file:", NULL}, 2, "needs a mask file path"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--mask", "static", NULL}, 2,
         "--mask static needs --calib"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--calib", CALIB, NULL}, 2,
         "--calib is only used with --mask static"},
        {{IFP_BIN, "run", "--model", MODEL, "--keep", "100", NULL}, 2, "--keep applies to predicted masks"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", PRED, "--keep", "769", NULL}, 1,
         "keep 769 exceeds the target's 768 channels"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", "/nonexistent/p.gguf", NULL}, 1, "/nonexistent/p.gguf"},
        {{IFP_BIN, "run", "--model", MODEL, "--predictor", MODEL, NULL}, 1,
         "not a predictor: missing required key ifp.predictor.target_block_count"},
        {{IFP_BIN, "run", "--model", MODEL, "--mask", "file:/nonexistent/m.gguf", NULL}, 1, "/nonexistent/m.gguf"},
        {{IFP_BIN, "run", "--model", MODEL, "--mask", spec, NULL}, 1,
         "mask is for 5 layers x 172 channels; model has 4 layers x 768"},
        {{IFP_BIN, "run", "--model", MODEL, "--mask", "file:" MODEL, NULL}, 1, "ifp-mask"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tu_run_t r = tu_run(cases[i].argv);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg))
            fprintf(stderr, "case %zu: status %d stderr: %s\n", i, r.status, r.err);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.err, cases[i].msg));
        tu_run_free(&r);
    }
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_input_masks),
        cmocka_unit_test(task_mode),
        cmocka_unit_test(dense_equals_no_predictor),
        cmocka_unit_test(file_round_trip),
        cmocka_unit_test(static_mode),
        cmocka_unit_test(clusters_union),
        cmocka_unit_test(bad_mask_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
