/* ifp synth — a model of the IFPruning paper's shapes with seeded random
 * weights, built in memory (a summary: shape, parameters, bytes) or written
 * as a tokenizer-free GGUF llama model that `ifp info` and ifp_model_load
 * read back.  Progress goes to the terminal for big writes: a thread polls
 * the size of the file being written (the writer fills FILE.tmp, then
 * renames it). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "synth.h"
#include "tools.h"

#define SYNTH_PROGRESS_MIN_BYTES (256ull << 20) /* smaller writes finish too fast to show */

typedef struct {
    const char *shape, *out;
    int layers, vocab, ctx, f16;
    uint64_t seed;
} synth_args_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "1,234,567" into buf. */
static const char *commas(uint64_t v, char *buf, size_t len) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

/* MemAvailable from /proc/meminfo in bytes, 0 if unknown. */
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* The output's directory must exist and be writable (checked before the work). */
static int check_output(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (n >= sizeof dir) n = sizeof dir - 1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    if (slash && n == 0) strcpy(dir, "/");
    if (access(dir, W_OK) == 0) return 0;
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

/* Writes m to a->out, with a progress line on a terminal for big files. */
static int write_model(const synth_args_t *a, const ifp_model_t *m, ifp_err_t *err) {
    ifp_synth_write_params_t wp = ifp_synth_write_default_params();
    char name[64];
    snprintf(name, sizeof name, "ifp-synth-%s", a->shape);
    wp.f16 = a->f16, wp.name = name, wp.shape = a->shape, wp.seed = a->seed;
    uint64_t total = ifp_synth_gguf_data_bytes(m, a->f16);
    static progress_t p = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    int show = isatty(STDERR_FILENO) && total >= SYNTH_PROGRESS_MIN_BYTES &&
               (size_t)snprintf(p.tmp, sizeof p.tmp, "%s.tmp", a->out) < sizeof p.tmp;
    p.total = total, p.stop = 0;
    if (show && pthread_create(&th, NULL, progress_main, &p) != 0) show = 0;
    int rc = ifp_synth_write_gguf(m, a->out, &wp, err);
    if (show) {
        pthread_mutex_lock(&p.mu);
        p.stop = 1;
        pthread_cond_signal(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(th, NULL);
    }
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
    printf("parameters: %s = %d x %s per layer + embedding %s + head %s\n", commas(total, b1, sizeof b1),
           c->n_layers, commas(layer, b2, sizeof b2), commas(vd, b3, sizeof b3), commas(vd + c->dim, b4, sizeof b4));
    double full = (double)IFP_SYNTH_LAYERS * (double)layer + 2.0 * (double)vd + c->dim;
    double active = (double)IFP_SYNTH_LAYERS * (double)at_k + 2.0 * (double)vd + c->dim;
    printf("  a layer compacted to K: %s parameters (%.2fx fewer); at %d layers: %.2fB parameters, %.2fB active at K\n",
           commas(at_k, b1, sizeof b1), (double)layer / (double)at_k, IFP_SYNTH_LAYERS, full / 1e9, active / 1e9);
    printf("bytes: %.3f GB as f32 in memory", (double)ifp_synth_gguf_data_bytes(m, 0) / 1e9);
    if (a->out) printf("; %.3f GB of %s tensor data in the file", (double)ifp_synth_gguf_data_bytes(m, a->f16) / 1e9,
                       a->f16 ? "F16 (norms F32)" : "F32");
    putchar('\n');
}

int ifp_cmd_synth(int argc, char **argv) {
    synth_args_t a = {.shape = NULL, .out = NULL, .layers = IFP_SYNTH_LAYERS, .vocab = IFP_SYNTH_VOCAB,
                      .ctx = IFP_SYNTH_CTX, .f16 = 0, .seed = 1};
    cli_opt_t opts[] = {
        {"shape", 0, CLI_STR, &a.shape, 0, 0, "3b | 6b | 9b | 12b: d_ffn 6656 / 16384 / 24576 / 32768 (required)", 0},
        {"layers", 0, CLI_INT, &a.layers, 1, 1024, "layers of the model (default 56, the paper's)", 0},
        {"seed", 0, CLI_U64, &a.seed, 0, 1.8e19, "weight seed (default 1)", 0},
        {"out", 'o', CLI_STR, &a.out, 0, 0, "write FILE.gguf (default: build in memory, print the summary)", 0},
        {"vocab", 0, CLI_INT, &a.vocab, 1, 1 << 22, "vocabulary size (default 32000; no tokenizer is written)", 0},
        {"ctx", 0, CLI_INT, &a.ctx, 1, 1 << 20, "context length (default 2048)", 0},
        {"f16", 0, CLI_FLAG, &a.f16, 0, 0, "write matrices as F16 (norms stay F32); needs -o", 0},
        {0},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("synth", argc, argv, 2, opts, pos, 0, &n_pos,
                       "--shape 3b|6b|9b|12b [--layers N] [--seed S] [-o FILE.gguf] [--vocab V] [--ctx C] [--f16]");
    if (rc) return rc > 0 ? 0 : 2;
    if (!a.shape) {
        fprintf(stderr, "ifp synth: --shape is required (3b, 6b, 9b or 12b)\n");
        return 2;
    }
    if (a.f16 && !a.out) {
        fprintf(stderr, "ifp synth: --f16 applies to the written file: give -o FILE.gguf\n");
        return 2;
    }
    if (a.out && !*a.out) {
        fprintf(stderr, "ifp synth: -o: empty file name\n");
        return 2;
    }
    ifp_err_t err = {0};
    ifp_config_t cfg;
    if (ifp_synth_config(a.shape, a.layers, a.vocab, a.ctx, &cfg, &err)) {
        fprintf(stderr, "ifp synth: --shape: %s\n", err.msg);
        return 2;
    }
    a.shape = ifp_synth_shape_find(a.shape)->name; /* canonical spelling */
    if (a.out && check_output(a.out)) return 1;
    /* f32 weights, plus the F16 copies while writing */
    double need = 4.0 * ((double)cfg.n_layers * (double)ifp_synth_layer_params(&cfg, cfg.d_ffn) +
                         2.0 * (double)cfg.vocab * cfg.dim);
    if (a.f16) need *= 1.5;
    uint64_t avail = mem_available();
    if (avail && need > 0.9 * (double)avail) {
        fprintf(stderr, "ifp synth: %d layers of shape %s need %.1f GB in memory, %.1f GB are available: use fewer "
                        "--layers\n", cfg.n_layers, a.shape, need / 1e9, (double)avail / 1e9);
        return 1;
    }
    int tty = isatty(STDERR_FILENO);
    if (tty) fprintf(stderr, "  generating %.2f GB of weights...", need / (a.f16 ? 1.5 : 1.0) / 1e9);
    double t0 = now_s();
    ifp_model_t *m = NULL;
    rc = ifp_model_synth(&cfg, a.seed, NULL, &m, &err);
    if (tty) fputs("\r\033[K", stderr);
    if (rc) {
        fprintf(stderr, "ifp synth: %s\n", err.msg);
        return 1;
    }
    double t_build = now_s() - t0;
    print_summary(&a, m);
    printf("built in %.2f s\n", t_build);
    fflush(stdout);
    if (a.out) {
        t0 = now_s();
        rc = write_model(&a, m, &err);
        if (rc) {
            fprintf(stderr, "ifp synth: %s\n", err.msg); /* the writer removed its FILE.tmp */
        } else {
            struct stat st;
            double bytes = stat(a.out, &st) == 0 ? (double)st.st_size : 0;
            printf("wrote %s: %.3f GB (%s) in %.2f s\n", a.out, bytes / 1e9, a.f16 ? "F16" : "F32", now_s() - t0);
        }
    }
    ifp_model_free(&m);
    return rc ? 1 : 0;
}
