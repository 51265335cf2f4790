/* ifp synth — a model of the IFPruning paper's shapes with seeded random
 * weights, built in memory (a summary: shape, parameters, bytes) or written
 * as a tokenizer-free GGUF llama model that `ifp info` and ifp_model_load
 * read back; or (--predictor-for MODEL.gguf) a sparsity predictor for an
 * existing model, with a random backbone of the paper's or a given size and
 * the model's tokenizer, that `ifp run --predictor` uses.  Progress goes to
 * the terminal for big writes: a thread polls the size of the file being
 * written (the writers fill FILE.tmp, then rename it).  --type writes the
 * matrices as f16, bf16 or q8_0 (norms stay f32): the model is then built
 * in that type (each matrix rounded once from its f32 draw, as `ifp
 * quantize` of the f32 file would), so memory holds the written bytes only. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "gguf.h"
#include "model.h"
#include "model_write.h"
#include "synth.h"
#include "tools.h"
#include "wmat.h"

#define SYNTH_PROGRESS_MIN_BYTES (256ull << 20) /* smaller writes finish too fast to show */

typedef struct {
    const char *shape, *out, *type; /* --type as given (NULL: f32) */
    int layers, vocab, ctx, f16;    /* --f16 = --type f16 */
    int tokenizer;                  /* --tokenizer: a synthetic vocabulary in the file */
    ifp_ggml_type_t wtype;          /* the matrices' type (built and written) */
    uint64_t seed;
    const char *predictor_for, *backbone; /* --predictor-for mode */
    int keep;
} synth_args_t;

/* The output's directory must exist and be writable (checked before the work). */
static int check_output(const char *path) {
    char dir[4096];
    if (ifp_tool_dir_writable(path, dir, sizeof dir) == 0) return 0;
    fprintf(stderr, "ifp synth: -o: cannot write into directory '%s': %s\n", dir, strerror(errno));
    return -1;
}

/* ---- progress while writing ---- */

typedef struct {
    char tmp[4096];
    uint64_t total;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} progress_t;

static void *progress_main(void *arg) {
    progress_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->cv, &p->mu, &until);
        struct stat st;
        if (!p->stop && stat(p->tmp, &st) == 0) {
            double done = (double)st.st_size, pct = p->total ? 100.0 * done / (double)p->total : 0;
            fprintf(stderr, "\r  writing: %.0f / %.0f MB (%3.0f%%)", done / 1e6, (double)p->total / 1e6,
                    pct > 100 ? 100 : pct);
        }
    }
    pthread_mutex_unlock(&p->mu);
    fputs("\r\033[K", stderr);
    return NULL;
}

static progress_t g_progress = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_t g_progress_th;

/* Starts the progress line for writing total bytes to out (on a terminal,
 * for big files); returns 1 if it runs (stop it with progress_stop). */
static int progress_start(const char *out, uint64_t total) {
    progress_t *p = &g_progress;
    int show = isatty(STDERR_FILENO) && total >= SYNTH_PROGRESS_MIN_BYTES &&
               (size_t)snprintf(p->tmp, sizeof p->tmp, "%s.tmp", out) < sizeof p->tmp;
    p->total = total, p->stop = 0;
    return show && pthread_create(&g_progress_th, NULL, progress_main, p) == 0;
}

static void progress_stop(int shown) {
    if (!shown) return;
    pthread_mutex_lock(&g_progress.mu);
    g_progress.stop = 1;
    pthread_cond_signal(&g_progress.cv);
    pthread_mutex_unlock(&g_progress.mu);
    pthread_join(g_progress_th, NULL);
}

/* Tensor data bytes of m as held (its matrices are in a->wtype). */
static uint64_t data_bytes(const ifp_model_t *m) { return ifp_model_write_bytes(m, NULL); }

/* Writes m to a->out, with a progress line on a terminal for big files. */
static int write_model(const synth_args_t *a, const ifp_model_t *m, ifp_err_t *err) {
    ifp_synth_write_params_t wp = ifp_synth_write_default_params();
    char name[64];
    snprintf(name, sizeof name, "ifp-synth-%s", a->shape);
    wp.name = name, wp.shape = a->shape, wp.seed = a->seed; /* m is held in the file's type */
    wp.tokenizer = a->tokenizer;
    int shown = progress_start(a->out, data_bytes(m));
    int rc = ifp_synth_write_gguf(m, a->out, &wp, err);
    progress_stop(shown);
    return rc;
}

/* ---- summary ---- */

static void print_summary(const synth_args_t *a, const ifp_model_t *m) {
    const ifp_config_t *c = &m->cfg;
    char b1[32], b2[32], b3[32], b4[32];
    uint64_t layer = ifp_synth_layer_params(c, c->d_ffn), at_k = ifp_synth_layer_params(c, IFP_SYNTH_KEEP);
    uint64_t vd = (uint64_t)c->vocab * c->dim, total = ifp_synth_model_params(m);
    printf("shape %s: d_model %d, %d q / %d kv heads of %d, d_ffn %d (K = %d), %d layer%s, vocab %d, ctx %d, seed %" PRIu64
           "\n",
           a->shape, c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ffn, IFP_SYNTH_KEEP, c->n_layers,
           c->n_layers == 1 ? "" : "s", c->vocab, c->ctx, a->seed);
    printf("parameters: %s = %d x %s per layer + embedding %s + head %s\n", ifp_tool_commas(total, b1, sizeof b1),
           c->n_layers, ifp_tool_commas(layer, b2, sizeof b2), ifp_tool_commas(vd, b3, sizeof b3), ifp_tool_commas(vd + c->dim, b4, sizeof b4));
    double full = (double)IFP_SYNTH_LAYERS * (double)layer + 2.0 * (double)vd + c->dim;
    double active = (double)IFP_SYNTH_LAYERS * (double)at_k + 2.0 * (double)vd + c->dim;
    printf("  a layer compacted to K: %s parameters (%.2fx fewer); at %d layers: %.2fB parameters, %.2fB active at K\n",
           ifp_tool_commas(at_k, b1, sizeof b1), (double)layer / (double)at_k, IFP_SYNTH_LAYERS, full / 1e9, active / 1e9);
    const char *tn = ifp_ggml_type_name(a->wtype);
    double held = (double)data_bytes(m) / 1e9, f32 = 4.0 * (double)total / 1e9;
    if (a->wtype == IFP_GGML_F32) printf("bytes: %.3f GB as f32 in memory", held);
    else printf("bytes: %.3f GB as %s (norms f32) in memory (%.3f GB as f32)", held, tn, f32);
    if (a->out) printf("; %.3f GB of %s tensor data in the file", held, a->wtype == IFP_GGML_F32 ? "f32" : tn);
    putchar('\n');
}

/* ---- --predictor-for: a predictor for an existing model ---- */

/* The flags of the other mode are refused by name. */
static int check_predictor_flags(const synth_args_t *a, const cli_opt_t *opts) {
    for (const cli_opt_t *o = opts; o->name; o++) {
        int model_only = !strcmp(o->name, "shape") || !strcmp(o->name, "layers") || !strcmp(o->name, "vocab") ||
                         !strcmp(o->name, "ctx") || !strcmp(o->name, "f16") || !strcmp(o->name, "type");
        int predictor_only = !strcmp(o->name, "backbone") || !strcmp(o->name, "keep");
        if (a->predictor_for && model_only && o->seen) {
            fprintf(stderr, "ifp synth: --%s does not apply with --predictor-for (%s)\n", o->name,
                    !strcmp(o->name, "shape") ? "two modes: give one"
                                              : "the predictor's vocabulary, context and target come from MODEL");
            return 2;
        }
        if (!a->predictor_for && predictor_only && o->seen) {
            fprintf(stderr, "ifp synth: --%s needs --predictor-for MODEL.gguf\n", o->name);
            return 2;
        }
    }
    if (a->predictor_for && !a->out) {
        fprintf(stderr, "ifp synth: --predictor-for needs -o P.gguf (where the predictor is written)\n");
        return 2;
    }
    return 0;
}

static void print_predictor(const synth_args_t *a, const ifp_synth_predictor_t *p, const ifp_config_t *mc) {
    const ifp_config_t *b = &p->backbone;
    const char *size = a->backbone ? a->backbone : IFP_SYNTH_PAPER_BACKBONE;
    int paper = !strcasecmp(size, IFP_SYNTH_PAPER_BACKBONE);
    char b1[32], b2[32], b3[32], b4[32];
    uint64_t bb = ifp_synth_backbone_params(b), all = ifp_synth_predictor_params(p), want = 0;
    ifp_synth_parse_size(size, &want, NULL);
    printf("predictor for %s: %d layers x d_ffn %d, vocabulary %d (its tokenizer), keep %d per layer, reads %d prompt "
           "tokens, seed %" PRIu64 "\n", a->predictor_for, mc->n_layers, mc->d_ffn, mc->vocab, p->keep,
           p->max_prompt, p->seed);
    printf("backbone %s%s: d_model %d, %d layer%s, %d head%s of %d (no GQA), d_ffn %d, ctx %d\n", size,
           paper ? " (the paper's)" : "", b->dim, b->n_layers, b->n_layers == 1 ? "" : "s", b->n_heads,
           b->n_heads == 1 ? "" : "s", b->head_dim, b->d_ffn, b->ctx);
    printf("parameters: backbone %s = %d x %s per layer + embedding %s + norm %d (%+.1f%% of %s", ifp_tool_commas(bb, b1, sizeof b1),
           b->n_layers, ifp_tool_commas(ifp_synth_layer_params(b, b->d_ffn), b2, sizeof b2),
           ifp_tool_commas((uint64_t)b->vocab * b->dim, b3, sizeof b3), b->dim, 100.0 * ((double)bb / (double)want - 1), size);
    if (paper && b->vocab != IFP_SYNTH_VOCAB)
        printf("; the paper's 302M counts the embedding of %d tokens", IFP_SYNTH_VOCAB);
    printf(")\n  head %s (fc1 %d -> %d, fc2 %d -> %d x %d); total %s\n", ifp_tool_commas(all - bb, b1, sizeof b1), b->dim,
           p->hidden, p->hidden, p->target_layers, p->target_ffn, ifp_tool_commas(all, b4, sizeof b4));
}

static int synth_predictor(const synth_args_t *a) {
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_config_t mc, bc;
    ifp_synth_predictor_t p;
    if (ifp_gguf_open(a->predictor_for, &g, &err) || ifp_synth_check_target(g, &mc, &err)) {
        fprintf(stderr, "ifp synth: --predictor-for: %s\n", err.msg);
        ifp_gguf_close(&g);
        return 1;
    }
    int rc = 2;
    if (a->keep > mc.d_ffn) {
        fprintf(stderr, "ifp synth: --keep: %d is out of range [1, %d] (d_ffn of %s)\n", a->keep, mc.d_ffn,
                a->predictor_for);
        goto done;
    }
    if (ifp_synth_backbone(a->backbone, mc.vocab, ifp_synth_predictor_prompt(mc.ctx), &bc, &err)) {
        fprintf(stderr, "ifp synth: --backbone: %s\n", err.msg);
        goto done;
    }
    if (ifp_synth_predictor_for(&mc, &bc, a->keep, a->seed, &p, &err)) {
        fprintf(stderr, "ifp synth: %s\n", err.msg);
        goto done;
    }
    p.tokenizer = g;
    rc = 1;
    if (check_output(a->out)) goto done;
    uint64_t bytes = 4 * ifp_synth_predictor_params(&p), avail = ifp_tool_mem_available(); /* all F32 */
    if (avail && (double)bytes > 0.9 * (double)avail) {
        fprintf(stderr, "ifp synth: --backbone: the predictor needs %.1f GB in memory, %.1f GB are available\n",
                (double)bytes / 1e9, (double)avail / 1e9);
        goto done;
    }
    print_predictor(a, &p, &mc);
    fflush(stdout);
    double t0 = ifp_now_s();
    if (isatty(STDERR_FILENO) && bytes >= SYNTH_PROGRESS_MIN_BYTES) /* until the writer creates FILE.tmp */
        fprintf(stderr, "  generating %.2f GB of weights...", (double)bytes / 1e9);
    int shown = progress_start(a->out, bytes);
    int wrc = ifp_synth_predictor_write(&p, a->out, &err);
    progress_stop(shown); /* clears the line */
    if (wrc) {
        fprintf(stderr, "ifp synth: %s\n", err.msg);
        goto done;
    }
    struct stat st;
    printf("wrote %s: %.3f GB (F32) in %.2f s\n", a->out, stat(a->out, &st) == 0 ? (double)st.st_size / 1e9 : 0.0,
           ifp_now_s() - t0);
    rc = 0;
done:
    ifp_gguf_close(&g);
    return rc;
}

int ifp_cmd_synth(int argc, char **argv) {
    synth_args_t a = {.shape = NULL, .out = NULL, .layers = IFP_SYNTH_LAYERS, .vocab = IFP_SYNTH_VOCAB,
                      .ctx = IFP_SYNTH_CTX, .f16 = 0, .seed = 1};
    cli_opt_t opts[] = {
        {"shape", 0, CLI_STR, &a.shape, 0, 0, "3b | 6b | 9b | 12b: d_ffn 6656 / 16384 / 24576 / 32768 (a model)", 0},
        {"predictor-for", 0, CLI_STR, &a.predictor_for, 0, 0,
         "MODEL.gguf: write a predictor for this llama model (its tokenizer, its layers x d_ffn), with -o", 0},
        {"backbone", 0, CLI_STR, &a.backbone, 0, 0,
         "302m (default: the paper's, d 1024 x 16 layers) | SIZE like 30m, 1.2b: a backbone within 15%", 0},
        {"keep", 0, CLI_INT, &a.keep, 1, 1 << 22, "channels kept per layer (default d_ffn x 6656/24576, rounded)", 0},
        {"layers", 0, CLI_INT, &a.layers, 1, 1024, "layers of the model (default 56, the paper's)", 0},
        {"seed", 0, CLI_U64, &a.seed, 0, 1.8e19, "weight seed (default 1)", 0},
        {"out", 'o', CLI_STR, &a.out, 0, 0, "write FILE.gguf (default: build in memory, print the summary)", 0},
        {"vocab", 0, CLI_INT, &a.vocab, 1, 1 << 22, "vocabulary size (default 32000; no tokenizer is written)", 0},
        {"ctx", 0, CLI_INT, &a.ctx, 1, 1 << 20, "context length (default 2048)", 0},
        {"type", 0, CLI_STR, &a.type, 0, 0, "f32 | f16 | bf16 | q8_0: the written matrices' type (default f32; norms "
                                             "stay f32); needs -o", 0},
        {"f16", 0, CLI_FLAG, &a.f16, 0, 0, "the same as --type f16", 0},
        {"tokenizer", 0, CLI_FLAG, &a.tokenizer, 0, 0,
         "write a synthetic byte-fallback vocabulary of --vocab tokens (for other engines; needs -o, vocab >= 259)", 0},
        {0},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("synth", argc, argv, 2, opts, pos, 0, &n_pos,
                       "--shape 3b|6b|9b|12b [--layers N] [--seed S] [-o FILE.gguf [--type f32|f16|bf16|q8_0]] [--vocab V] "
                       "[--ctx C]\n"
                       "       ifp synth --predictor-for MODEL.gguf -o P.gguf [--backbone 302m|SIZE] [--keep K] "
                       "[--seed S]");
    if (rc) return rc > 0 ? 0 : 2;
    if (a.out && !*a.out) {
        fprintf(stderr, "ifp synth: -o: empty file name\n");
        return 2;
    }
    if ((rc = check_predictor_flags(&a, opts))) return rc;
    if (a.predictor_for) return synth_predictor(&a);
    if (!a.shape) {
        fprintf(stderr, "ifp synth: --shape is required (3b, 6b, 9b or 12b), or --predictor-for MODEL.gguf\n");
        return 2;
    }
    ifp_err_t err = {0};
    a.wtype = a.f16 ? IFP_GGML_F16 : IFP_GGML_F32;
    if (a.type && ifp_wtype_parse(a.type, &a.wtype, &err)) {
        fprintf(stderr, "ifp synth: --type: %s\n", err.msg);
        return 2;
    }
    if (a.f16 && a.wtype != IFP_GGML_F16) {
        fprintf(stderr, "ifp synth: --f16 is --type f16: it contradicts --type %s\n", a.type);
        return 2;
    }
    if (a.tokenizer && (!a.out || a.vocab < 259)) {
        fprintf(stderr, "ifp synth: --tokenizer needs -o FILE.gguf and --vocab of at least 259 (3 special + 256 bytes)\n");
        return 2;
    }
    if ((a.f16 || a.type) && !a.out) {
        fprintf(stderr, "ifp synth: --%s applies to the written file: give -o FILE.gguf\n", a.type ? "type" : "f16");
        return 2;
    }
    ifp_config_t cfg;
    if (ifp_synth_config(a.shape, a.layers, a.vocab, a.ctx, &cfg, &err)) {
        fprintf(stderr, "ifp synth: --shape: %s\n", err.msg);
        return 2;
    }
    a.shape = ifp_synth_shape_find(a.shape)->name; /* canonical spelling */
    if (a.out && check_output(a.out)) return 1;
    /* the weights in their type (rows of dim and of heads x head dim: q8_0 holds 34 bytes per 32) */
    double params = (double)cfg.n_layers * (double)ifp_synth_layer_params(&cfg, cfg.d_ffn) +
                    2.0 * (double)cfg.vocab * cfg.dim;
    double need = params * (double)ifp_wtype_row_bytes(a.wtype, 32) / 32.0;
    uint64_t avail = ifp_tool_mem_available();
    if (avail && need > 0.9 * (double)avail) {
        fprintf(stderr, "ifp synth: %d layers of shape %s need %.1f GB in memory, %.1f GB are available: use fewer "
                        "--layers\n", cfg.n_layers, a.shape, need / 1e9, (double)avail / 1e9);
        return 1;
    }
    int tty = isatty(STDERR_FILENO);
    if (tty) fprintf(stderr, "  generating %.2f GB of weights...", need / 1e9);
    double t0 = ifp_now_s();
    ifp_model_t *m = NULL;
    ifp_model_params_t mp = ifp_model_default_params();
    mp.wtype = (int)a.wtype;
    rc = ifp_model_synth(&cfg, a.seed, &mp, &m, &err);
    if (tty) fputs("\r\033[K", stderr);
    if (rc) {
        fprintf(stderr, "ifp synth: %s\n", err.msg);
        return 1;
    }
    double t_build = ifp_now_s() - t0;
    print_summary(&a, m);
    printf("built in %.2f s\n", t_build);
    fflush(stdout);
    if (a.out) {
        t0 = ifp_now_s();
        rc = write_model(&a, m, &err);
        if (rc) {
            fprintf(stderr, "ifp synth: %s\n", err.msg); /* the writer removed its FILE.tmp */
        } else {
            struct stat st;
            double bytes = stat(a.out, &st) == 0 ? (double)st.st_size : 0;
            printf("wrote %s: %.3f GB (%s) in %.2f s\n", a.out, bytes / 1e9, ifp_ggml_type_name(a.wtype), ifp_now_s() - t0);
        }
    }
    ifp_model_free(&m);
    return rc ? 1 : 0;
}
