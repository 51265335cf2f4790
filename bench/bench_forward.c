/* bench_forward.c — forward-pass throughput: prefill and decode tokens/s.
 *
 * For each model and each OpenBLAS thread count (--threads, default 1,2):
 *   prefill  one sequence of P tokens in one ifp_forward call, logits for the
 *            last row only; the slot is reset before every run; one warm-up
 *            run, then the median of R runs.
 *   decode   B slots (B = 1, 4, 16), each holding a 64-token prefix; S steps
 *            (64 at B = 1, else 32) of one row per slot, each row fed the
 *            argmax of its own previous logits (greedy); tokens/s = B*S / run
 *            time; a short warm-up run (BF_WARMUP_STEPS), then the median of R.
 * Decode runs restart at position 64: a batch may rewrite a slot's position
 * (everything after it is dropped, see ifp_batch_validate), so every run
 * attends over the same positions without prefilling again.  The prefixes are
 * computed once per model, untimed.  --quick shortens all of this (usage()).
 *
 * Models: a GGUF (--model, default the embedded ifp-mix), a synthetic model
 * with random weights at the paper's 3B-active stage shape, and that model
 * with every FFN compacted (ifp_compact_model) to a random half of its
 * channels — a check that compaction speeds the FFN up, not a paper shape.
 * The compacted model takes over the dense one's state and prefixes
 * (ifp_state_set_model keeps the KV caches).
 *
 * Output: progress on stderr; on stdout the BLAS core, the model shapes, a
 * table, the weight-read bandwidth of batch-1 decode, and one headline line of
 * key=value pairs (keys suffixed _tN are at N threads; unsuffixed ratios are
 * at the first listed thread count, decode_gbps is the best synth value).
 * CSV (model,threads,phase,batch,tokens_per_s,median_ms_per_call,runs) goes
 * to --csv, written to PATH.tmp and renamed when complete.  For prefill rows
 * batch is 1 (one sequence of P rows).  Never sets OPENBLAS_CORETYPE. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "compact.h"
#include "forward.h"
#include "kernels.h"
#include "model.h"
#include "sampler.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif

#define BF_DEFAULT_MODEL IFP_SOURCE_DIR "/models/ifp-mix/ifp-mix.gguf"
#define BF_DEFAULT_CSV IFP_SOURCE_DIR "/bench/results/forward.csv"

enum {
    BF_PREFIX = 64,        /* tokens cached per slot before decoding (quick: 16) */
    BF_WARMUP_STEPS = 8,   /* steps of the decode warm-up run (quick: 1) */
    BF_MAX_THREADS = 8,    /* entries in --threads */
    BF_MAX_ROWS = 128,     /* result rows */
    BF_MAX_DEC = 3,        /* decode batch sizes per model */
    BF_GGUF_PREFILL = 200, /* P for the GGUF model */
    BF_SYNTH_PREFILL = 512, /* P for the synthetic model */
    BF_SYNTH_LAYERS = 4
};

typedef struct {
    const char *model_path, *csv_path;
    int runs, steps_b1, steps_bn; /* runs per measurement; decode steps at batch 1 / batch > 1 */
    int steps_max;                /* the larger of the two */
    int prefix, warmup_steps;     /* decode prefix length; decode warm-up steps */
    int prefill_warmup;           /* 1: one warm-up prefill run (quick: 0) */
    int threads[BF_MAX_THREADS], n_threads;
} bf_opts_t;

/* One model under test with its run state and batch buffers. */
typedef struct {
    char name[48];       /* CSV model column */
    char key[24];        /* headline key prefix */
    const ifp_model_t *m;
    ifp_state_t *st;
    int prefill_len;     /* P; 0 = no prefill measurement */
    int batches[BF_MAX_DEC], n_batches;
    int n_dec;           /* decode slots are 1..n_dec; slot 0 is the prefill slot */
    int prefix;          /* positions cached in each decode slot */
    int32_t *tok, *pos, *slot; /* [max_batch] */
    uint8_t *want;       /* [max_batch] */
    int32_t *first;      /* [n_dec + 1]: argmax after each slot's prefix */
} bf_case_t;

typedef struct {
    char model[48], key[24];
    int threads, batch, runs;
    const char *phase;
    double tok_s, ms_call;
    double weight_bytes; /* per decode step of one row (decode rows only) */
} bf_row_t;

typedef struct {
    bf_row_t r[BF_MAX_ROWS];
    int n;
    bl_csv_t csv; /* rows are appended as they are measured */
} bf_results_t;

/* ---- small helpers ---------------------------------------------------------------------------- */

/* n prompt tokens for stream `seed`, avoiding ids 0..2 (unk/bos/eos) when the vocab allows. */
static void fill_prompt(int32_t *tok, int n, int vocab, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    int lo = vocab > 3 ? 3 : 0;
    for (int i = 0; i < n; i++) tok[i] = lo + (int32_t)(bl_rand(&s) % (uint64_t)(vocab - lo));
}

/* Bytes of weights one decode row reads: every held layer, the head, one embedding row. */
static double weight_bytes(const ifp_model_t *m) {
    const ifp_config_t *c = &m->cfg;
    double d = c->dim, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim, n = 0;
    for (int l = m->layer_begin; l < m->layer_end; l++)
        n += 2 * d + q * d + 2 * kv * d + d * q + 3.0 * m->layers[l].d_ffn * d;
    n += d + (double)c->vocab * d + d;
    return n * sizeof(float);
}

static void print_shape(const char *name, const ifp_model_t *m) {
    const ifp_config_t *c = &m->cfg;
    printf("model %-16s dim %d, layers %d, heads %d/%d (q/kv), head_dim %d, d_ffn %d", name, c->dim, c->n_layers,
           c->n_heads, c->n_kv_heads, c->head_dim, c->d_ffn);
    if (m->layer_end > m->layer_begin && m->layers[m->layer_begin].d_ffn != c->d_ffn)
        printf(" (held %d)", m->layers[m->layer_begin].d_ffn);
    printf(", vocab %d, ctx %d; %.1f MB weights read per decode row\n", c->vocab, c->ctx, weight_bytes(m) / 1e6);
}

/* ---- one model under test ---------------------------------------------------------------------- */

static void case_free(bf_case_t *c) {
    ifp_state_free(&c->st);
    free(c->tok); free(c->pos); free(c->slot); free(c->want); free(c->first);
    memset(c, 0, sizeof *c);
}

/* Fills the batch buffers with one sequence of n prompt tokens (stream seed)
 * for slot at positions 0..n-1, logits wanted for the last row only. */
static ifp_batch_t seq_batch(bf_case_t *c, int slot, int n, uint64_t seed) {
    fill_prompt(c->tok, n, c->m->cfg.vocab, seed);
    for (int i = 0; i < n; i++) {
        c->pos[i] = i;
        c->slot[i] = slot;
        c->want[i] = i == n - 1;
    }
    ifp_batch_t b = {.n = n, .token = c->tok, .pos = c->pos, .slot = c->slot, .want_logits = c->want};
    return b;
}

/* Allocates the state and buffers and fills every decode slot with its prefix
 * (untimed).  max_steps: the longest decode run. */
static int case_setup(bf_case_t *c, const ifp_model_t *m, int prefix, int max_steps, ifp_err_t *err) {
    c->m = m;
    c->prefix = prefix;
    c->n_dec = 0;
    for (int i = 0; i < c->n_batches; i++)
        if (c->batches[i] > c->n_dec) c->n_dec = c->batches[i];
    int need = prefix + max_steps > c->prefill_len ? prefix + max_steps : c->prefill_len;
    if (need > m->cfg.ctx)
        return ifp_errf(err, IFP_ERANGE, "%s: needs %d positions, the model's context is %d", c->name, need,
                        m->cfg.ctx);
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = 1 + c->n_dec;
    sp.ctx = need;
    sp.max_batch = c->prefill_len;
    if (sp.max_batch < prefix) sp.max_batch = prefix;
    if (sp.max_batch < c->n_dec) sp.max_batch = c->n_dec;
    int rc = ifp_state_new(m, &sp, &c->st, err);
    if (rc) return rc;
    size_t B = (size_t)sp.max_batch;
    c->tok = calloc(B, sizeof *c->tok);
    c->pos = calloc(B, sizeof *c->pos);
    c->slot = calloc(B, sizeof *c->slot);
    c->want = calloc(B, sizeof *c->want);
    c->first = calloc((size_t)c->n_dec + 1, sizeof *c->first);
    if (!c->tok || !c->pos || !c->slot || !c->want || !c->first) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int s = 1; s <= c->n_dec; s++) {
        ifp_batch_t b = seq_batch(c, s, prefix, 1000 + (uint64_t)s);
        ifp_state_reset_slot(c->st, s);
        if ((rc = ifp_forward(c->st, &b, err)) < 0) return rc;
        c->first[s] = ifp_argmax(ifp_state_logits(c->st), m->cfg.vocab);
    }
    return IFP_OK;
}

/* One prefill run on slot 0; *secs = time of the ifp_forward call. */
static int prefill_run(bf_case_t *c, double *secs, ifp_err_t *err) {
    ifp_batch_t b = seq_batch(c, 0, c->prefill_len, 7);
    ifp_state_reset_slot(c->st, 0);
    double t0 = bl_now();
    int rc = ifp_forward(c->st, &b, err);
    *secs = bl_now() - t0;
    return rc < 0 ? rc : IFP_OK;
}

/* One decode run: S steps of one row for each of slots 1..B, from position c->prefix. */
static int decode_run(bf_case_t *c, int B, int S, double *secs, ifp_err_t *err) {
    int vocab = c->m->cfg.vocab;
    for (int i = 0; i < B; i++) {
        c->tok[i] = c->first[1 + i];
        c->slot[i] = 1 + i;
    }
    ifp_batch_t b = {.n = B, .token = c->tok, .pos = c->pos, .slot = c->slot, .want_logits = NULL};
    double t0 = bl_now();
    for (int step = 0; step < S; step++) {
        for (int i = 0; i < B; i++) c->pos[i] = c->prefix + step;
        int rc = ifp_forward(c->st, &b, err);
        if (rc < 0) return rc;
        const float *lg = ifp_state_logits(c->st);
        for (int i = 0; i < B; i++) c->tok[i] = ifp_argmax(lg + (size_t)i * vocab, vocab);
    }
    *secs = bl_now() - t0;
    return IFP_OK;
}

/* ---- results --------------------------------------------------------------------------------- */

static const bf_row_t *find_row(const bf_results_t *res, const char *key, const char *phase, int batch,
                                int threads) {
    for (int i = 0; i < res->n; i++) {
        const bf_row_t *r = &res->r[i];
        if (!strcmp(r->key, key) && !strcmp(r->phase, phase) && r->batch == batch && r->threads == threads)
            return r;
    }
    return NULL;
}

static void add_row(bf_results_t *res, const bf_row_t *row) {
    if (res->n >= BF_MAX_ROWS) return; /* cannot happen: at most BF_MAX_THREADS * 12 rows */
    res->r[res->n++] = *row;
    bl_csv_row(&res->csv, "%s,%d,%s,%d,%.3f,%.4f,%d", row->model, row->threads, row->phase, row->batch, row->tok_s,
            row->ms_call, row->runs);
}

/* Warm-up + R timed runs of one phase; records the median. */
static int measure(bf_case_t *c, const bf_opts_t *o, int threads, const char *phase, int batch, bf_results_t *res,
                   ifp_err_t *err) {
    int prefill = !strcmp(phase, "prefill");
    int steps = prefill ? 1 : batch == 1 ? o->steps_b1 : o->steps_bn;
    int rows = prefill ? c->prefill_len : batch;
    double t[1000], dt;
    int rc;
    fprintf(stderr, "[%s t=%d] %s %s %d: ", c->name, threads, phase, prefill ? "P" : "batch",
            prefill ? c->prefill_len : batch);
    int warm = prefill ? o->prefill_warmup : 1;
    if (prefill) rc = warm ? prefill_run(c, &dt, err) : IFP_OK;
    else rc = decode_run(c, batch, steps < o->warmup_steps ? steps : o->warmup_steps, &dt, err);
    fprintf(stderr, "%s, runs:", warm ? "warmed up" : "no warm-up");
    for (int r = 0; r < o->runs && !rc; r++) {
        rc = prefill ? prefill_run(c, &t[r], err) : decode_run(c, batch, steps, &t[r], err);
        if (!rc) fprintf(stderr, " %.0fms", t[r] * 1e3);
    }
    if (rc) {
        fputc('\n', stderr);
        return ifp_err_prefix(err, "%s, %d threads, %s batch %d", c->name, threads, phase, batch);
    }
    double med = bl_median(t, o->runs);
    fprintf(stderr, " -> %.1f tok/s\n", (double)rows * steps / med);
    bf_row_t row = {.threads = threads, .batch = batch, .runs = o->runs, .phase = prefill ? "prefill" : "decode"};
    snprintf(row.model, sizeof row.model, "%s", c->name);
    snprintf(row.key, sizeof row.key, "%s", c->key);
    row.tok_s = (double)rows * steps / med;
    row.ms_call = med / steps * 1e3;
    row.weight_bytes = prefill ? 0 : weight_bytes(c->m);
    add_row(res, &row);
    return IFP_OK;
}

/* Every phase of one model at every thread count. */
static int bench_case(bf_case_t *c, const bf_opts_t *o, bf_results_t *res, ifp_err_t *err) {
    for (int ti = 0; ti < o->n_threads; ti++) {
        ifp_blas_threads(o->threads[ti]);
        int got = ifp_blas_threads(0); /* 0 reads back without changing */
        if (got != o->threads[ti])
            fprintf(stderr, "warning: asked OpenBLAS for %d threads, it runs %d\n", o->threads[ti], got);
        int rc;
        if (c->prefill_len && (rc = measure(c, o, got, "prefill", 1, res, err))) return rc;
        for (int i = 0; i < c->n_batches; i++)
            if ((rc = measure(c, o, got, "decode", c->batches[i], res, err))) return rc;
    }
    return IFP_OK;
}

/* ---- options --------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_forward [--quick] [--runs N] [--threads LIST] [--model FILE.gguf] [--csv PATH]\n"
            "  --quick          a smoke run in under a minute: 1 run, no prefill warm-up, decode\n"
            "                   8 steps at batch 1 and 4 at batch 4/16, 16-token decode prefixes\n"
            "  --runs N         timed runs per measurement, 1..1000 (default 5; quick 1)\n"
            "  --threads LIST   OpenBLAS thread counts, comma-separated, 1..256 each (default 1,2)\n"
            "  --model FILE     GGUF model (default %s)\n"
            "  --csv PATH       CSV output (default %s)\n",
            BF_DEFAULT_MODEL, BF_DEFAULT_CSV);
}

static int parse_threads(const char *s, bf_opts_t *o) {
    o->n_threads = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *save = NULL;
    if (!*buf || buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,")) return -1;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v;
        if (o->n_threads == BF_MAX_THREADS || bl_parse_int(tok, 1, 256, &v)) return -1;
        for (int i = 0; i < o->n_threads; i++)
            if (o->threads[i] == v) return -1;
        o->threads[o->n_threads++] = v;
    }
    return o->n_threads ? 0 : -1;
}

/* 0 ok, 1 help printed, 2 usage error (message printed). */
static int parse_args(int argc, char **argv, bf_opts_t *o) {
    int runs = -1, quick = 0;
    o->model_path = BF_DEFAULT_MODEL;
    o->csv_path = BF_DEFAULT_CSV;
    o->n_threads = 2;
    o->threads[0] = 1;
    o->threads[1] = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--quick")) {
            quick = 1;
            continue;
        }
        int takes = !strcmp(a, "--runs") || !strcmp(a, "--threads") || !strcmp(a, "--model") || !strcmp(a, "--csv");
        if (!takes) {
            fprintf(stderr, "bench_forward: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc || !argv[i + 1][0] || !strncmp(argv[i + 1], "--", 2)) {
            fprintf(stderr, "bench_forward: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--runs") && bl_parse_int(v, 1, 1000, &runs)) {
            fprintf(stderr, "bench_forward: --runs: expected an integer in 1..1000, got '%s'\n", v);
            return 2;
        }
        if (!strcmp(a, "--threads") && parse_threads(v, o)) {
            fprintf(stderr, "bench_forward: --threads: expected up to %d distinct integers in 1..256, "
                            "comma-separated (e.g. 1,2), got '%s'\n", BF_MAX_THREADS, v);
            return 2;
        }
        if (!strcmp(a, "--model")) o->model_path = v;
        if (!strcmp(a, "--csv")) o->csv_path = v;
    }
    o->runs = runs > 0 ? runs : quick ? 1 : 5;
    o->steps_b1 = quick ? 8 : 64;
    o->steps_bn = quick ? 4 : 32;
    o->prefix = quick ? 16 : BF_PREFIX;
    o->warmup_steps = quick ? 1 : BF_WARMUP_STEPS;
    o->prefill_warmup = !quick;
    o->steps_max = o->steps_b1 > o->steps_bn ? o->steps_b1 : o->steps_bn;
    return 0;
}

/* ---- report ---------------------------------------------------------------------------------- */

static void print_table(const bf_results_t *res) {
    printf("\n%-26s %7s %-8s %5s %12s %12s %5s\n", "model", "threads", "phase", "batch", "tokens/s", "ms/call",
           "runs");
    for (int i = 0; i < res->n; i++) {
        const bf_row_t *r = &res->r[i];
        printf("%-26s %7d %-8s %5d %12.1f %12.3f %5d\n", r->model, r->threads, r->phase, r->batch, r->tok_s,
               r->ms_call, r->runs);
    }
    printf("\nweight-read bandwidth at decode batch 1 (weight bytes per token / time per token):\n");
    for (int i = 0; i < res->n; i++) {
        const bf_row_t *r = &res->r[i];
        if (strcmp(r->phase, "decode") || r->batch != 1) continue;
        printf("  %-26s t=%d  %8.1f MB/token  %7.2f GB/s%s\n", r->model, r->threads, r->weight_bytes / 1e6,
               r->weight_bytes / (r->ms_call * 1e-3) / 1e9,
               !strcmp(r->key, "synth") ? "" : r->weight_bytes < 64e6 ? "  (fits in cache)" : "");
    }
}

/* " KEY_PHASE[_bB]_tT=tokens/s" if that row exists. */
static void kv_tok(const bf_results_t *res, const char *key, const char *phase, int batch, int t) {
    const bf_row_t *r = find_row(res, key, phase, batch, t);
    if (r && batch > 1) printf(" %s_%s_b%d_t%d=%.1f", key, phase, batch, t, r->tok_s);
    else if (r) printf(" %s_%s%s_t%d=%.1f", key, phase, strcmp(phase, "decode") ? "" : "_b1", t, r->tok_s);
}

/* " NAME[SUFFIX]=a/b" for two decode rows at t threads, if both exist. */
static void kv_ratio(const bf_results_t *res, const char *name, const char *suffix, const char *ka, int ba,
                     const char *kb, int bb, int t) {
    const bf_row_t *a = find_row(res, ka, "decode", ba, t), *b = find_row(res, kb, "decode", bb, t);
    if (a && b) printf(" %s%s=%.2f", name, suffix, a->tok_s / b->tok_s);
}

static void print_headline(const bf_results_t *res, const bf_opts_t *o, const char *gkey, const int *tused) {
    double best_gbps = 0;
    printf("\nheadline:");
    for (int i = 0; i < o->n_threads; i++) {
        int t = tused[i];
        char sfx[16];
        snprintf(sfx, sizeof sfx, "_t%d", t);
        kv_tok(res, gkey, "prefill", 1, t);
        kv_tok(res, gkey, "decode", 1, t);
        kv_tok(res, "synth", "prefill", 1, t);
        kv_tok(res, "synth", "decode", 1, t);
        kv_tok(res, "synth", "decode", 16, t);
        kv_ratio(res, "synth_decode_b16_vs_b1", sfx, "synth", 16, "synth", 1, t);
        kv_ratio(res, "compact_speedup_b1", sfx, "synth_ffn50", 1, "synth", 1, t);
        kv_ratio(res, "compact_speedup_b16", sfx, "synth_ffn50", 16, "synth", 16, t);
        const bf_row_t *r = find_row(res, "synth", "decode", 1, t);
        if (!r) continue;
        double g = r->weight_bytes / (r->ms_call * 1e-3) / 1e9;
        printf(" decode_gbps%s=%.2f", sfx, g);
        if (g > best_gbps) best_gbps = g;
    }
    kv_ratio(res, "synth_decode_b16_vs_b1", "", "synth", 16, "synth", 1, tused[0]);
    printf(" decode_gbps=%.2f\n", best_gbps);
}

/* ---- main ------------------------------------------------------------------------------------ */

/* kept[l][0..K): a random strictly increasing set of K of F channels per layer. */
static void random_kept(int32_t *const *kept, int n_layers, int F, int K) {
    uint64_t s = 0xC0FFEEull;
    for (int l = 0; l < n_layers; l++) bl_random_kept(kept[l], F, K, &s);
}

/* (a) the GGUF model; gkey (24 bytes) receives its headline key: the file name's letters and
 * digits, lower-case ("ifp-mix.gguf" -> "ifpmix"). */
static int run_gguf(const bf_opts_t *o, char *gkey, bf_results_t *res, ifp_err_t *err) {
    ifp_model_t *m = NULL;
    bf_case_t c = {.batches = {1, 4, 16}, .n_batches = 3};
    fprintf(stderr, "loading %s\n", o->model_path);
    int rc = ifp_model_load(o->model_path, NULL, &m, err);
    if (rc) return rc;
    const char *base = strrchr(o->model_path, '/');
    base = base ? base + 1 : o->model_path;
    snprintf(c.name, sizeof c.name, "%.*s", (int)strcspn(base, "."), base);
    size_t k = 0;
    for (const char *p = c.name; *p && k + 1 < sizeof c.key; p++)
        if (isalnum((unsigned char)*p)) c.key[k++] = (char)tolower((unsigned char)*p);
    snprintf(gkey, sizeof c.key, "%s", k ? c.key : "gguf");
    snprintf(c.key, sizeof c.key, "%s", gkey);
    print_shape(c.name, m);
    fflush(stdout);
    c.prefill_len = m->cfg.ctx < BF_GGUF_PREFILL ? m->cfg.ctx : BF_GGUF_PREFILL;
    if (!(rc = case_setup(&c, m, o->prefix, o->steps_max, err))) rc = bench_case(&c, o, res, err);
    case_free(&c);
    ifp_model_free(&m);
    return rc;
}

/* (b) the synthetic 3B-active stage shape, then its FFN compacted to a random half. */
static int run_synth(const bf_opts_t *o, bf_results_t *res, ifp_err_t *err) {
    ifp_config_t cfg = {.dim = 2048, .n_layers = BF_SYNTH_LAYERS, .n_heads = 16, .n_kv_heads = 2, .head_dim = 128,
                        .d_ffn = 6656, .vocab = 32000, .ctx = 1024, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                        .rope_dim = 128};
    ifp_model_t *sm = NULL, *cm = NULL;
    bf_case_t sc = {.name = "synth-3b-stage", .key = "synth", .batches = {1, 4, 16}, .n_batches = 3,
                    .prefill_len = BF_SYNTH_PREFILL};
    int32_t *kept[BF_SYNTH_LAYERS], *kbuf = NULL;
    int n_kept[BF_SYNTH_LAYERS], K = cfg.d_ffn / 2;
    fprintf(stderr, "building the synthetic model (about 1.3 GB)\n");
    double t0 = bl_now();
    int rc = ifp_model_synth(&cfg, 42, NULL, &sm, err);
    if (rc) return rc;
    fprintf(stderr, "  built in %.1f s\n", bl_now() - t0);
    print_shape(sc.name, sm);
    fflush(stdout);
    if (!(rc = case_setup(&sc, sm, o->prefix, o->steps_max, err))) rc = bench_case(&sc, o, res, err);
    if (!rc && !(kbuf = malloc((size_t)BF_SYNTH_LAYERS * K * sizeof *kbuf)))
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
    if (!rc) {
        for (int l = 0; l < BF_SYNTH_LAYERS; l++) kept[l] = kbuf + (size_t)l * K, n_kept[l] = K;
        random_kept(kept, BF_SYNTH_LAYERS, cfg.d_ffn, K);
        rc = ifp_compact_model(sm, (const int32_t *const *)kept, n_kept, &cm, err);
    }
    /* the compacted model takes over the dense one's state: same config, the
     * KV caches (decode prefixes) are kept, and attention cost depends only on
     * their lengths */
    if (!rc) rc = ifp_state_set_model(sc.st, cm, err);
    if (!rc) {
        snprintf(sc.name, sizeof sc.name, "synth-3b-stage-ffn%d", K);
        snprintf(sc.key, sizeof sc.key, "synth_ffn50");
        print_shape(sc.name, cm);
        fflush(stdout);
        sc.m = cm;
        sc.prefill_len = 0;
        sc.n_batches = 2;
        sc.batches[1] = 16;
        rc = bench_case(&sc, o, res, err);
    }
    case_free(&sc);
    ifp_model_free(&cm); /* borrows from sm: free it first */
    ifp_model_free(&sm);
    free(kbuf);
    return rc;
}

int main(int argc, char **argv) {
    bf_opts_t o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : 2;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < o.n_threads; i++)
        if (o.threads[i] > ncpu) fprintf(stderr, "warning: %d threads on %ld online CPUs\n", o.threads[i], ncpu);

    static bf_results_t res;
    if (bl_csv_open(&res.csv, o.csv_path, "model,threads,phase,batch,tokens_per_s,median_ms_per_call,runs")) return 1;
    bl_print_machine(stdout);
    printf("runs %d; warm-up: %s prefill run, a %d-step decode run; decode steps %d at batch 1, %d at batch 4/16; "
           "prefix %d tokens\n",
           o.runs, o.prefill_warmup ? "1" : "no", o.warmup_steps, o.steps_b1, o.steps_bn, o.prefix);
    fflush(stdout);

    int max_t = 1, tused[BF_MAX_THREADS];
    for (int i = 0; i < o.n_threads; i++) { /* what OpenBLAS actually runs, for the headline lookups */
        if (o.threads[i] > max_t) max_t = o.threads[i];
        ifp_blas_threads(o.threads[i]);
        tused[i] = ifp_blas_threads(0);
    }
    ifp_blas_threads(max_t); /* setup work (prefixes) at the most threads */
    char gkey[24] = "gguf";
    ifp_err_t err = {0};
    double t0 = bl_now();
    int rc = run_gguf(&o, gkey, &res, &err);
    if (!rc) rc = run_synth(&o, &res, &err);
    if (rc) {
        bl_csv_close(&res.csv, 0);
        fprintf(stderr, "bench_forward: %s\n", err.msg[0] ? err.msg : ifp_strerror(rc));
        return 1;
    }
    print_table(&res);
    int wrc = bl_csv_close(&res.csv, 1);
    double la[3] = {0};
    getloadavg(la, 3);
    printf("csv: %s (%d rows); total %.0f s; load average at the end %.2f (other work on this machine skews "
           "the figures)\n",
           o.csv_path, res.n, bl_now() - t0, la[0]);
    print_headline(&res, &o, gkey, tused); /* the last line */
    return wrc ? 1 : 0;
}
