/* ifp quantize — a llama GGUF rewritten with every matrix in one weight type
 * (f32, f16, bf16 or q8_0; norms stay f32), every metadata key kept (the
 * tokenizer, general.name; general.file_type is set for the new type).
 *
 * The input is loaded as stored (ifp_model_load, default parameters) and
 * written by ifp_model_write_gguf, so each matrix is converted once from the
 * type it is stored in.  The down projection of a q8_0 file is written
 * channel-major (blk.N.ffn_down_t: Q8_0 blocks run along d_model, so a
 * compacted model gathers a channel's row without re-quantizing: exact);
 * --llama-layout writes llama.cpp's ffn_down instead (blocks along d_ffn,
 * which must be a multiple of 32; ifp re-quantizes it along d_model at
 * load).  f32, f16 and bf16 files always hold llama's ffn_down (exact either
 * way).  Progress on a terminal; one summary line at the end. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "model.h"
#include "model_write.h"
#include "tools.h"
#include "wmat.h"

/* OUT must not be IN (the same file under any name), and its directory must
 * be writable; checked before the work.  Prints the problem, returns -1. */
static int check_output(const char *in, const char *out) {
    struct stat si, so;
    if (!strcmp(in, out) ||
        (stat(in, &si) == 0 && stat(out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)) {
        fprintf(stderr, "ifp quantize: %s is the input file: write the output to another path\n", out);
        return -1;
    }
    char dir[4096];
    if (ifp_tool_dir_writable(out, dir, sizeof dir) != 0) {
        fprintf(stderr, "ifp quantize: %s: cannot write into directory '%s': %s\n", out, dir, strerror(errno));
        return -1;
    }
    if (stat(out, &so) == 0 && S_ISDIR(so.st_mode)) {
        fprintf(stderr, "ifp quantize: %s is a directory: give the output file's name\n", out);
        return -1;
    }
    return 0;
}

/* ---- progress on a terminal ---- */

typedef struct {
    int n_layers, calls, last_pct;
} progress_t;

/* ifp_model_write_gguf reports after each layer (converted in memory), then
 * once when the file is written. */
static void progress(void *ctx, uint64_t done, uint64_t total) {
    progress_t *p = ctx;
    if (++p->calls > p->n_layers) {
        fputs("\r\033[K", stderr);
        return;
    }
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 0;
    if (p->calls == p->n_layers)
        fprintf(stderr, "\r\033[K  writing %.1f MB...", (double)total / 1e6);
    else if (pct != p->last_pct)
        fprintf(stderr, "\r\033[K  converting: layer %d of %d (%d%%)", p->calls, p->n_layers, pct);
    p->last_pct = pct;
}

int ifp_cmd_quantize(int argc, char **argv) {
    const char *type = NULL;
    int llama = 0;
    cli_opt_t opts[] = {
        {"type", 't', CLI_STR, &type, 0, 0, "f32 | f16 | bf16 | q8_0: the type of every matrix (norms stay f32)", 0},
        {"llama-layout", 0, CLI_FLAG, &llama, 0, 0,
         "q8_0: ffn_down as llama.cpp lays it out (blocks along d_ffn) instead of channel-major ffn_down_t", 0},
        {0},
    };
    const char *pos[2];
    int n_pos;
    int rc = cli_parse("quantize", argc, argv, 2, opts, pos, 2, &n_pos,
                       "IN.gguf OUT.gguf --type f32|f16|bf16|q8_0 [--llama-layout]");
    if (rc) return rc > 0 ? 0 : 2;
    if (n_pos != 2) {
        fprintf(stderr, "ifp quantize: expected IN.gguf and OUT.gguf (usage: ifp quantize IN.gguf OUT.gguf --type "
                        "f32|f16|bf16|q8_0)\n");
        return 2;
    }
    if (!type) {
        fprintf(stderr, "ifp quantize: --type is required (f32, f16, bf16 or q8_0)\n");
        return 2;
    }
    ifp_err_t err = {0};
    ifp_ggml_type_t t;
    if (ifp_wtype_parse(type, &t, &err)) {
        fprintf(stderr, "ifp quantize: --type: %s\n", err.msg);
        return 2;
    }
    const char *in = pos[0], *out = pos[1];
    if (!*out) {
        fprintf(stderr, "ifp quantize: empty output file name\n");
        return 2;
    }
    if (check_output(in, out)) return 1;

    double t0 = ifp_now_s();
    int tty = isatty(STDERR_FILENO);
    if (tty) fprintf(stderr, "  loading %s...", in);
    ifp_model_t *m = NULL;
    rc = ifp_model_load(in, NULL, &m, &err);
    if (tty) fputs("\r\033[K", stderr);
    if (rc) {
        fprintf(stderr, "ifp quantize: %s\n", err.msg); /* names the file (and the tensor, the type) */
        return 1;
    }
    const ifp_config_t *c = &m->cfg;
    rc = 1;
    if (t == IFP_GGML_Q8_0 && c->dim % IFP_Q8_0_BLOCK) {
        fprintf(stderr, "ifp quantize: %s: q8_0 needs d_model a multiple of 32 (it is %d)\n", in, c->dim);
        goto done;
    }
    if (t == IFP_GGML_Q8_0 && llama && c->d_ffn % IFP_Q8_0_BLOCK) {
        fprintf(stderr, "ifp quantize: %s: --llama-layout: d_ffn %d is not a multiple of 32 (llama's q8_0 ffn_down "
                        "has its blocks along d_ffn); leave out --llama-layout for ifp's channel-major ffn_down_t\n",
                in, c->d_ffn);
        goto done;
    }
    ifp_model_write_params_t wp = ifp_model_write_default_params();
    progress_t pr = {.n_layers = c->n_layers, .last_pct = -1};
    wp.wtype = (int)t, wp.down_llama = llama, wp.meta = m->gguf; /* every key; general.name kept */
    if (tty) wp.progress = progress, wp.progress_ctx = &pr;
    uint64_t out_bytes = ifp_model_write_bytes(m, &wp), avail = ifp_tool_mem_available();
    /* the converted copies are held until the file is written, next to the loaded model */
    if (avail && (double)out_bytes > 0.9 * (double)avail) {
        fprintf(stderr, "ifp quantize: the %s copy needs %.1f GB in memory, %.1f GB are available\n", type,
                (double)out_bytes / 1e9, (double)avail / 1e9);
        goto done;
    }
    if (ifp_model_write_gguf(m, out, &wp, &err)) {
        if (tty) fputs("\r\033[K", stderr);
        fprintf(stderr, "ifp quantize: %s\n", err.msg); /* the writer removed its OUT.tmp */
        goto done;
    }
    struct stat si, so;
    uint64_t bi = stat(in, &si) == 0 ? (uint64_t)si.st_size : 0, bo = stat(out, &so) == 0 ? (uint64_t)so.st_size : 0;
    char b1[32], b2[32];
    printf("%s -> %s: %s -> %s bytes (%.3fx), %s matrices (norms f32), ffn_down %s, %.2f s\n", in, out,
           ifp_tool_commas(bi, b1, sizeof b1), ifp_tool_commas(bo, b2, sizeof b2), bi ? (double)bo / (double)bi : 0.0, type,
           t == IFP_GGML_Q8_0 && !llama ? "channel-major (ffn_down_t)" : "llama layout (ffn_down)", ifp_now_s() - t0);
    rc = 0;
done:
    ifp_model_free(&m);
    return rc;
}
