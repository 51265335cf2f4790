/* test_eval — core/ppl (response-token NLL) and `ifp eval`.
 *
 * - ifp_ppl_score equals -log softmax computed by hand from ifp_forward
 *   logits, for masked and dense examples packed several per call;
 * - ifp_ppl_tokenize builds [BOS] + encode(prompt + response) + [EOS];
 * - `ifp eval` reproduces the MODEL_CARD "Reproduction table" on calib.jsonl
 *   (0.5% per cell, counts exactly) and its static mask equals the kept
 *   channels in calib_table.json;
 * - bad flags and inputs are refused with clear errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compact.h"
#include "dataset.h"
#include "forward.h"
#include "mask.h"
#include "model.h"
#include "ppl.h"
#include "predictor.h"
#include "testutil.h"
#include "tokenizer.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"
#define MIX_MODEL MODEL_PATH("ifp-mix/ifp-mix.gguf")
#define MIX_PRED MODEL_PATH("ifp-mix/ifp-mix-predictor.gguf")
#define CALIB IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl"

/* A K-of-d_ffn mask per layer: channels j with (j * 5 + l + salt) % 3 == 0. */
static ifp_mask_t *pattern_mask(const ifp_config_t *c, int salt) {
    ifp_mask_t *m = ifp_mask_new(c->n_layers, c->d_ffn);
    int32_t *kept = malloc(sizeof *kept * c->d_ffn);
    for (int l = 0; l < c->n_layers; l++) {
        int n = 0;
        for (int j = 0; j < c->d_ffn; j++)
            if ((j * 5 + l + salt) % 3 == 0) kept[n++] = j;
        assert_int_equal(ifp_mask_set_layer(m, l, kept, n, NULL), 0);
    }
    free(kept);
    return m;
}

/* The reference: the example alone in a fresh state, every row's logits from
 * ifp_forward, -log softmax of each target in double. */
static double nll_by_hand(const ifp_model_t *m, const ifp_ppl_item_t *it, int *n_tok) {
    const ifp_config_t *c = &m->cfg;
    *n_tok = 0;
    if (it->n - it->n_ctx <= 0) return 0.0;
    ifp_state_params_t sp = ifp_state_default_params();
    sp.max_batch = c->ctx;
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(m, &sp, &st, NULL), 0);
    float *fm = malloc(sizeof(float) * c->n_layers * c->d_ffn);
    const float **layers = malloc(sizeof *layers * c->n_layers);
    for (int l = 0; l < c->n_layers; l++) {
        layers[l] = NULL;
        if (!it->mask) continue;
        ifp_mask_from_kept(fm + l * c->d_ffn, c->d_ffn, it->mask->kept[l], it->mask->n_kept[l]);
        layers[l] = fm + l * c->d_ffn;
    }
    ifp_ffn_mask_t mk = {.layer = layers};
    int rows = it->n - 1;
    int32_t *pos = malloc(sizeof *pos * rows), *slot = calloc((size_t)rows, sizeof *slot);
    const ifp_ffn_mask_t **rm = malloc(sizeof *rm * rows);
    for (int r = 0; r < rows; r++) pos[r] = r, rm[r] = it->mask ? &mk : NULL;
    ifp_batch_t b = {.n = rows, .token = it->ids, .pos = pos, .slot = slot, .mask = rm};
    assert_int_equal(ifp_forward(st, &b, NULL), rows);
    double nll = 0.0;
    for (int t = it->n_ctx; t < it->n; t++) {
        const float *lg = ifp_state_logits(st) + (size_t)(t - 1) * c->vocab;
        double mx = -INFINITY, sum = 0.0;
        for (int v = 0; v < c->vocab; v++) mx = fmax(mx, lg[v]);
        for (int v = 0; v < c->vocab; v++) sum += exp(lg[v] - mx);
        nll += mx + log(sum) - lg[it->ids[t]];
        (*n_tok)++;
    }
    free(fm), free(layers), free(pos), free(slot), free(rm);
    ifp_state_free(&st);
    return nll;
}

/* ---------------------------------------------------------------- core/ppl */

static void ppl_matches_forward(void **unused) {
    (void)unused;
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_load(MIX_MODEL, NULL, &m, NULL), 0);
    const ifp_config_t *c = &m->cfg;
    ifp_mask_t *ma = pattern_mask(c, 0), *mb = pattern_mask(c, 1), *mc = pattern_mask(c, 2);
    enum { N = 8 };
    static const int len[N] = {40, 7, 200, 256, 12, 90, 3, 130};
    static const int ctx[N] = {30, 2, 150, 1, 12, 89, 1, 200}; /* item 4 and 7 score nothing */
    const ifp_mask_t *masks[N] = {ma, NULL, mb, mc, ma, mb, NULL, mc};
    ifp_ppl_item_t items[N];
    int32_t *ids[N];
    uint64_t rs = 7;
    for (int i = 0; i < N; i++) {
        ids[i] = malloc(sizeof(int32_t) * len[i]);
        for (int t = 0; t < len[i]; t++) {
            rs = rs * 6364136223846793005ull + 1442695040888963407ull;
            ids[i][t] = t == 0 ? 1 : (int32_t)((rs >> 33) % (uint64_t)c->vocab);
        }
        items[i] = (ifp_ppl_item_t){.ids = ids[i], .n = len[i], .n_ctx = ctx[i], .mask = masks[i]};
    }
    /* several packings: few slots / rows per call (many calls), compaction on and off */
    static const struct { int slots, batch, compact; } cfg[] = {{16, 1024, 1}, {3, 256, 1}, {2, 300, 0}, {1, 256, 1}};
    ifp_ppl_result_t res[N];
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
        ifp_ppl_params_t p = ifp_ppl_default_params();
        p.n_slots = cfg[k].slots, p.max_batch = cfg[k].batch, p.compact = cfg[k].compact;
        ifp_ppl_t *e = NULL;
        assert_int_equal(ifp_ppl_new(m, &p, &e, NULL), 0);
        assert_int_equal(ifp_ppl_score(e, items, N, res, NULL), 0);
        for (int i = 0; i < N; i++) {
            int n_tok;
            double ref = nll_by_hand(m, &items[i], &n_tok);
            assert_int_equal(res[i].n_tokens, n_tok);
            assert_int_equal(n_tok, len[i] > ctx[i] ? len[i] - ctx[i] : 0);
            assert_true(fabs(res[i].nll - ref) <= 1e-5 * (1.0 + fabs(ref)));
        }
        ifp_ppl_destroy(&e);
    }
    /* masked differs from dense: the masks are really applied */
    ifp_ppl_item_t dense = items[0];
    dense.mask = NULL;
    ifp_ppl_t *e = NULL;
    assert_int_equal(ifp_ppl_new(m, NULL, &e, NULL), 0);
    ifp_ppl_result_t rd;
    assert_int_equal(ifp_ppl_score(e, &dense, 1, &rd, NULL), 0);
    assert_true(fabs(rd.nll - res[0].nll) > 1e-3);
    ifp_ppl_destroy(&e);
    for (int i = 0; i < N; i++) free(ids[i]);
    ifp_mask_destroy(&ma), ifp_mask_destroy(&mb), ifp_mask_destroy(&mc);
    ifp_model_free(&m);
}

static void ppl_token_nll(void **unused) {
    (void)unused;
    float lg[3] = {1.0f, 2.0f, 3.0f};
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
    assert_true(fabs(ifp_ppl_token_nll(lg, 3, 0) - (lse - 1.0)) < 1e-6);
    assert_true(fabs(ifp_ppl_token_nll(lg, 3, 2) - (lse - 3.0)) < 1e-6);
    float big[2] = {1000.0f, 1000.0f}; /* no overflow */
    assert_true(fabs(ifp_ppl_token_nll(big, 2, 1) - log(2.0)) < 1e-6);
}

static void ppl_bad_items(void **unused) {
    (void)unused;
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_load(MIX_MODEL, NULL, &m, NULL), 0);
    ifp_ppl_t *e = NULL;
    assert_int_equal(ifp_ppl_new(m, NULL, &e, NULL), 0);
    int32_t ids[300] = {1};
    ifp_ppl_result_t res;
    ifp_err_t err = {0};
    ifp_ppl_item_t long_item = {.ids = ids, .n = 257, .n_ctx = 1};
    assert_int_equal(ifp_ppl_score(e, &long_item, 1, &res, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "length 257"));
    ifp_ppl_item_t no_ctx = {.ids = ids, .n = 4, .n_ctx = 0};
    assert_int_equal(ifp_ppl_score(e, &no_ctx, 1, &res, &err), IFP_EINVAL);
    ids[2] = 2048;
    ifp_ppl_item_t bad_tok = {.ids = ids, .n = 4, .n_ctx = 1};
    assert_int_equal(ifp_ppl_score(e, &bad_tok, 1, &res, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "token 2048"));
    ids[2] = 5;
    ifp_mask_t *wrong = ifp_mask_dense(3, 768);
    ifp_ppl_item_t bad_mask = {.ids = ids, .n = 4, .n_ctx = 1, .mask = wrong};
    assert_int_equal(ifp_ppl_score(e, &bad_mask, 1, &res, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "mask shape"));
    ifp_mask_destroy(&wrong);
    ifp_ppl_destroy(&e);
    /* a compacted model is refused */
    int32_t keep[4] = {0, 1, 2, 3};
    const int32_t *kept[4] = {keep, keep, keep, keep};
    int n_kept[4] = {4, 4, 4, 4};
    ifp_model_t *small = NULL;
    assert_int_equal(ifp_compact_model(m, kept, n_kept, &small, NULL), 0);
    assert_int_equal(ifp_ppl_new(small, NULL, &e, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "uncompacted"));
    ifp_model_free(&small);
    ifp_model_free(&m);
}

static void ppl_tokenize(void **unused) {
    (void)unused;
    ifp_model_t *m = NULL;
    ifp_tokenizer_t *tok = NULL;
    assert_int_equal(ifp_model_load(MIX_MODEL, NULL, &m, NULL), 0);
    assert_int_equal(ifp_tokenizer_from_gguf(m->gguf, &tok, NULL), 0);
    const char *prompt = "Question: who wrote hamlet?\nAnswer:", *resp = " William Shakespeare";
    int32_t p[64], j[64];
    int np = ifp_tokenizer_encode(tok, prompt, 1, p, 64);
    int nj = ifp_tokenizer_encode(tok, "Question: who wrote hamlet?\nAnswer: William Shakespeare", 1, j, 64);
    int32_t *ids = NULL;
    int n, n_ctx;
    assert_int_equal(ifp_ppl_tokenize(tok, prompt, resp, 256, &ids, &n, &n_ctx, NULL), 0);
    assert_int_equal(n_ctx, np); /* [BOS] + encode(prompt) */
    assert_int_equal(n, nj + 1); /* [BOS] + encode(prompt + response) + [EOS] */
    assert_memory_equal(ids, j, sizeof(int32_t) * nj);
    assert_int_equal(ids[n - 1], 2);
    free(ids);
    /* truncated to the window */
    assert_int_equal(ifp_ppl_tokenize(tok, prompt, resp, np + 1, &ids, &n, &n_ctx, NULL), 0);
    assert_int_equal(n, np + 1);
    assert_int_equal(n_ctx, np);
    free(ids);
    assert_int_equal(ifp_ppl_tokenize(tok, prompt, resp, 4, &ids, &n, &n_ctx, NULL), 0);
    assert_int_equal(n, 4);
    assert_true(n_ctx >= n); /* nothing to score */
    free(ids);
    /* no response: nothing to score */
    assert_int_equal(ifp_ppl_tokenize(tok, prompt, "", 256, &ids, &n, &n_ctx, NULL), 0);
    assert_int_equal(n, np);
    assert_int_equal(n_ctx, n);
    free(ids);
    assert_int_equal(ifp_ppl_tokenize(tok, prompt, NULL, 256, &ids, &n, &n_ctx, NULL), 0);
    assert_int_equal(n_ctx, n);
    free(ids);
    ifp_tokenizer_destroy(&tok);
    ifp_model_free(&m);
}

/* ---------------------------------------------------------------- ifp eval */

/* models/ifp-mix/MODEL_CARD.md, "Reproduction table (calibration split)"
 * (PyTorch float32, same values in models/ifp-mix/calib_table.json). */
static const char *const card_domains[6] = {"math", "code", "story", "qa", "instruct", "all"};
static const struct {
    const char *mode;
    double ppl[6];
} card[4] = {
    {"dense", {10.050, 15.774, 42.850, 89.426, 101.793, 22.512}},
    {"input", {10.363, 15.327, 43.129, 92.954, 107.407, 22.916}},
    {"task", {14.665, 27.558, 43.121, 103.457, 117.941, 28.243}},
    {"static", {11.710, 18.081, 45.592, 94.645, 109.011, 25.081}},
};
static const int card_examples[6] = {100, 56, 100, 100, 40, 396};
static const int card_tokens[6] = {12057, 2316, 10859, 818, 1610, 27660};

static void eval_reproduces_card(void **unused) {
    (void)unused;
    char csv[] = "/tmp/ifp_test_eval_XXXXXX";
    int fd = mkstemp(csv);
    assert_true(fd >= 0);
    close(fd);
    const char *argv[] = {IFP_BIN,  "eval",   "--model", MIX_MODEL, "--predictor",
                          MIX_PRED, "--data", CALIB,     "--mode",  "dense,input,task,static",
                          "--csv",  csv,      NULL};
    tu_run_t r = tu_run(argv);
    if (r.status != 0) fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "examples scored"));
    char *text = tu_read_file(csv, NULL);
    unlink(csv);
    assert_non_null(text);
    int seen[4][6] = {{0}}, lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (lines++ == 0) {
            assert_string_equal(line, "mode,domain,ppl,examples,tokens");
            continue;
        }
        char mode[32], dom[32];
        double ppl;
        int ex, tokens;
        assert_int_equal(sscanf(line, "%31[^,],%31[^,],%lf,%d,%d", mode, dom, &ppl, &ex, &tokens), 5);
        int mi = -1, di = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(card[i].mode, mode)) mi = i;
        for (int i = 0; i < 6; i++)
            if (!strcmp(card_domains[i], dom)) di = i;
        assert_true(mi >= 0 && di >= 0);
        double dev = fabs(ppl / card[mi].ppl[di] - 1.0);
        if (dev > 0.005)
            fprintf(stderr, "%s/%s: %.4f vs card %.3f (%.2f%%)\n", mode, dom, ppl, card[mi].ppl[di], 100 * dev);
        assert_true(dev <= 0.005);
        assert_int_equal(ex, card_examples[di]);
        assert_int_equal(tokens, card_tokens[di]);
        seen[mi][di]++;
    }
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 6; d++) assert_int_equal(seen[i][d], 1);
    free(text);
    tu_run_free(&r);
}

/* The static mask of calib.jsonl against calib_table.json's kept channels. */
static void static_mask_matches_table(void **unused) {
    (void)unused;
    ifp_model_t *m = NULL;
    ifp_tokenizer_t *tok = NULL;
    ifp_predictor_t *p = NULL;
    ifp_dataset_t *ds = NULL;
    assert_int_equal(ifp_model_load(MIX_MODEL, NULL, &m, NULL), 0);
    assert_int_equal(ifp_tokenizer_from_gguf(m->gguf, &tok, NULL), 0);
    assert_int_equal(ifp_predictor_load(MIX_PRED, &p, NULL), 0);
    assert_int_equal(ifp_dataset_load(CALIB, &ds, NULL), 0);
    ifp_mask_t *sm = NULL;
    assert_int_equal(ifp_predictor_static_mask(p, tok, ds, 0, NULL, &sm, NULL), 0);
    char *text = tu_read_file(MODEL_PATH("ifp-mix/calib_table.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    const cJSON *kc = cJSON_GetObjectItem(root, "static_mask_kept_channels");
    assert_int_equal(cJSON_GetArraySize(kc), m->cfg.n_layers);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        int n;
        int *want = tu_ints(cJSON_GetArrayItem(kc, l), &n);
        assert_int_equal(sm->n_kept[l], n);
        for (int j = 0; j < n; j++) assert_int_equal(sm->kept[l][j], want[j]);
        free(want);
    }
    cJSON_Delete(root);
    free(text);
    ifp_mask_destroy(&sm);
    ifp_dataset_destroy(&ds);
    ifp_predictor_destroy(&p);
    ifp_tokenizer_destroy(&tok);
    ifp_model_free(&m);
}

static void eval_flag_errors(void **unused) {
    (void)unused;
    char tasks[] = "/tmp/ifp_test_tasks_XXXXXX";
    int fd = mkstemp(tasks);
    assert_true(fd >= 0);
    const char *partial = "{\"math\": \"Solve it.\", \"code\": \"Code it.\"}";
    assert_int_equal(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
    close(fd);
    struct {
        const char *argv[16];
        const char *msg;
    } cases[] = {
        {{"eval", "--mode", "dense", NULL}, "--data FILE.jsonl is required"},
        {{"eval", "--data", CALIB, "--mode", "dense,bogus", NULL}, "unknown mode 'bogus'"},
        {{"eval", "--data", CALIB, "--mode", "dense,dense", NULL}, "'dense' is listed twice"},
        {{"eval", "--data", CALIB, "--mode", "dense,", NULL}, "empty name"},
        {{"eval", "--data", CALIB, "--mode", "input", NULL}, "mode 'input' needs --predictor"},
        {{"eval", "--data", CALIB, "--mode", "cluster", "--predictor", MIX_PRED, NULL}, "needs --clusters"},
        {{"eval", "--data", CALIB, "--mode", "dense", "--tasks", tasks, NULL}, "--tasks is only read by mode 'task'"},
        {{"eval", "--data", CALIB, "--mode", "dense", "--keep", "10", NULL}, "--keep has no effect"},
        {{"eval", "--data", CALIB, "--mode", "random", NULL}, "needs --keep K"},
        {{"eval", "--data", CALIB, "--mode", "random", "--keep", "0", NULL}, "out of range"},
        {{"eval", "--data", CALIB, "--mode", "random", "--keep", "769", NULL}, "exceeds the model's 768"},
        {{"eval", "--data", "/nonexistent.jsonl", NULL}, "cannot open"},
        {{"eval", "--data", CALIB, "--model", MODEL_PATH("stories260K.gguf"), "--predictor", MIX_PRED, "--mode",
          "input", NULL},
         "--predictor"},
        {{"eval", "--data", CALIB, "--mode", "task", "--predictor", MIX_PRED, "--tasks", tasks, NULL},
         "no instruction line for domain 'story'"},
        {{"eval", "--data", CALIB, "--mode", "cluster", "--predictor", MIX_PRED, "--clusters", "/nonexistent.gguf",
          NULL},
         "--clusters"},
        {{"eval", "--data", CALIB, "--bogus", NULL}, "unknown option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[20] = {IFP_BIN};
        for (int k = 0; cases[i].argv[k]; k++) argv[k + 1] = cases[i].argv[k];
        tu_run_t r = tu_run(argv);
        if (r.status == 0 || !strstr(r.err, cases[i].msg))
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", i, r.status, r.err);
        assert_true(r.status != 0);
        assert_non_null(strstr(r.err, cases[i].msg));
        tu_run_free(&r);
    }
    unlink(tasks);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ppl_token_nll),        cmocka_unit_test(ppl_tokenize),
        cmocka_unit_test(ppl_matches_forward),  cmocka_unit_test(ppl_bad_items),
        cmocka_unit_test(eval_flag_errors),     cmocka_unit_test(static_mask_matches_table),
        cmocka_unit_test(eval_reproduces_card),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
