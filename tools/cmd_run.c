/* ifp run — generate text from a prompt with one model in this process,
 * optionally under an FFN channel mask (DESIGN.md §2).
 *
 * Mask modes (--mask): input (the predictor on the prompt; the default with
 * --predictor), task:TEXT (the predictor on an instruction), static (top-K of
 * the mean predictor score over --calib FILE.jsonl), file:PATH (a saved mask)
 * and dense (no mask; the default without --predictor).  A mask is applied at
 * every position, prompt and generated tokens alike, by compacting the model
 * to the kept channels once.  With --clusters C.gguf the mask is instead
 * served from the union of its nearest cluster, as a shard group does:
 * weights compacted to the union, every row multiplied by the mask's 0/1
 * sub-mask over it; channels of the mask the union lacks are dropped, and
 * --json reports "cluster" and "coverage".
 *
 * The generation runs on core/serve.h, the serving object every shard stage
 * drives (one slot, the whole model): mask -> union -> the slot's sub-mask ->
 * forward -> sampling.  With a mask the model is loaded lean: only the
 * compacted FFN is held, gathered from the file.  --type holds the matrices
 * in another weight type (converted once at load). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "dataset.h"
#include "gguf.h"
#include "jsonw.h"
#include "kernels.h"
#include "mask.h"
#include "model.h"
#include "predictor.h"
#include "sampler.h"
#include "serve.h"
#include "tokenizer.h"
#include "tools.h"
#include "wmat.h"

#define RUN_CHUNK 256 /* rows per prefill call */

typedef enum { MASK_DENSE, MASK_INPUT, MASK_TASK, MASK_STATIC, MASK_FILE } mask_mode_t;
static const char *const mask_mode_names[] = {"dense", "input", "task", "static", "file"};

typedef struct {
    const char *model, *prompt, *predictor, *mask, *calib, *mask_out, *clusters, *wtype;
    int n, top_k, json, threads, keep;
    float temp, top_p;
    uint64_t seed;
    /* from --mask */
    mask_mode_t mode;
    const char *mask_arg; /* task text or file path */
} run_args_t;

/* Parses --mask and checks it against --predictor / --calib / --keep.
 * Returns 0, or prints the problem and returns -1 (a usage error). */
static int parse_mask(run_args_t *a, int keep_seen) {
    const char *s = a->mask;
    a->mask_arg = NULL;
    if (!s) a->mode = a->predictor ? MASK_INPUT : MASK_DENSE;
    else if (!strcmp(s, "dense")) a->mode = MASK_DENSE;
    else if (!strcmp(s, "input")) a->mode = MASK_INPUT;
    else if (!strcmp(s, "static")) a->mode = MASK_STATIC;
    else if (!strncmp(s, "task:", 5)) a->mode = MASK_TASK, a->mask_arg = s + 5;
    else if (!strncmp(s, "file:", 5)) a->mode = MASK_FILE, a->mask_arg = s + 5;
    else {
        fprintf(stderr, "ifp run: --mask: unknown mask '%s' (expected input, task:TEXT, file:PATH, static or dense)\n",
                s);
        return -1;
    }
    if (a->mask_arg && !*a->mask_arg) {
        fprintf(stderr, "ifp run: --mask %s needs %s after the colon\n", s,
                a->mode == MASK_TASK ? "the task instruction" : "a mask file path");
        return -1;
    }
    int predicted = a->mode == MASK_INPUT || a->mode == MASK_TASK || a->mode == MASK_STATIC;
    if (predicted && !a->predictor) {
        fprintf(stderr, "ifp run: --mask %s needs a predictor: add --predictor P.gguf\n", mask_mode_names[a->mode]);
        return -1;
    }
    if (a->mode == MASK_STATIC && !a->calib) {
        fprintf(stderr, "ifp run: --mask static needs --calib FILE.jsonl (the prompts to average scores over)\n");
        return -1;
    }
    if (a->calib && a->mode != MASK_STATIC) {
        fprintf(stderr, "ifp run: --calib is only used with --mask static\n");
        return -1;
    }
    if (keep_seen && !predicted) {
        fprintf(stderr, "ifp run: --keep applies to predicted masks (input, task:TEXT, static), not --mask %s\n",
                mask_mode_names[a->mode]);
        return -1;
    }
    return 0;
}

/* Builds the mask of a->mode for the prompt ids (NULL for dense).  Returns 0
 * or prints the error and returns -1. */
static int build_mask(const run_args_t *a, const ifp_config_t *c, ifp_tokenizer_t *tok, const int32_t *ids, int n,
                      ifp_mask_t **out) {
    ifp_err_t err = {0};
    ifp_predictor_t *p = NULL;
    ifp_dataset_t *ds = NULL;
    int rc = IFP_OK, keep = a->keep;
    *out = NULL;
    if (a->predictor) {
        rc = ifp_predictor_load(a->predictor, &p, &err);
        if (!rc && (rc = ifp_predictor_check_target(p, c, &err))) ifp_err_prefix(&err, "%s", a->predictor);
    }
    if (!rc) switch (a->mode) {
        case MASK_DENSE:
            break;
        case MASK_INPUT:
            rc = ifp_predictor_mask(p, ids, n, keep, out, &err);
            break;
        case MASK_TASK:
            rc = ifp_predictor_mask_text(p, tok, a->mask_arg, keep, out, &err);
            break;
        case MASK_STATIC:
            rc = ifp_dataset_load(a->calib, &ds, &err);
            if (!rc) rc = ifp_predictor_static_mask(p, tok, ds, keep, NULL, out, &err);
            break;
        case MASK_FILE:
            rc = ifp_mask_load(a->mask_arg, out, &err);
            if (!rc && ((*out)->n_layers != c->n_layers || (*out)->d_ffn != c->d_ffn))
                rc = ifp_errf(&err, IFP_EINVAL, "%s: mask is for %d layers x %d channels; model has %d layers x %d",
                              a->mask_arg, (*out)->n_layers, (*out)->d_ffn, c->n_layers, c->d_ffn);
            break;
        }
    ifp_dataset_destroy(&ds);
    ifp_predictor_destroy(&p);
    if (rc) {
        ifp_mask_destroy(out);
        fprintf(stderr, "ifp run: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Feeds ids[from..to) into slot 0 in chunks; leaves the last row's logits in
 * the serve object.  Returns 0 or prints the error. */
static int feed(ifp_serve_t *sv, const int32_t *ids, int from, int to, int chunk, ifp_serve_row_t *rows) {
    for (int i = from; i < to; i += chunk) {
        int n = to - i < chunk ? to - i : chunk;
        for (int r = 0; r < n; r++)
            rows[r] = (ifp_serve_row_t){.token = ids[i + r], .pos = i + r, .slot = 0, .want = i + r == to - 1};
        ifp_err_t err = {0};
        if (ifp_serve_forward(sv, rows, n, &err) < 0) {
            fprintf(stderr, "ifp run: forward failed: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/* "mask_mode" and, for a mask, "mask": [[kept of layer 0], ...] */
static void json_mask(ifp_buf_t *out, const run_args_t *a, const ifp_mask_t *mask) {
    ifp_buf_printf(out, ",\"mask_mode\":\"%s\"", mask_mode_names[a->mode]);
    if (!mask) return;
    ifp_buf_printf(out, ",\"mask\":[");
    for (int l = 0; l < mask->n_layers; l++) {
        ifp_buf_printf(out, "%s[", l ? "," : "");
        for (int j = 0; j < mask->n_kept[l]; j++) ifp_buf_printf(out, "%s%d", j ? "," : "", mask->kept[l][j]);
        ifp_buf_append(out, "]", 1);
    }
    ifp_buf_append(out, "]", 1);
}

/* One line on stderr: the mode and the channels kept per layer. */
static void print_mask_summary(const run_args_t *a, const ifp_mask_t *mask, const ifp_config_t *c) {
    fprintf(stderr, "[mask %s: ", mask_mode_names[a->mode]);
    if (!mask) {
        fprintf(stderr, "all %d channels in %d layers]\n", c->d_ffn, c->n_layers);
        return;
    }
    fprintf(stderr, "kept");
    for (int l = 0; l < mask->n_layers; l++) fprintf(stderr, " %d", mask->n_kept[l]);
    fprintf(stderr, " of %d channels per layer]\n", c->d_ffn);
}

/* One run: what it reads, what it serves with, what it produced. */
typedef struct {
    run_args_t a;
    ifp_serve_params_t svp;
    ifp_gguf_t *g;           /* the model file until the serve object takes it */
    ifp_config_t cfg;
    ifp_tokenizer_t *tok;
    int32_t *ids;            /* prompt, then the new tokens */
    int n_prompt, n_new, n_gen;
    ifp_mask_t *mask;        /* NULL = dense */
    double mask_s;
    ifp_cluster_table_t *table;
    int cluster;
    double coverage;
    ifp_serve_t *sv;
    ifp_serve_row_t *rows;   /* [RUN_CHUNK] */
    ifp_buf_t text;          /* --json: the generated text */
    float first16[16];
    int argmax_prompt;
    const char *finish;
    double prefill_s, decode_s;
} run_t;

/* The model file, its tokenizer and the prompt's ids (room for the new
 * tokens after them).  Returns 0 or prints the problem. */
static int run_open(run_t *r) {
    ifp_err_t err = {0};
    if (ifp_gguf_open(r->a.model, &r->g, &err) || ifp_config_from_gguf(r->g, &r->cfg, &err) ||
        ifp_tokenizer_from_gguf(r->g, &r->tok, &err)) {
        if (r->g && !strstr(err.msg, r->a.model)) ifp_err_prefix(&err, "%s", r->a.model);
        fprintf(stderr, "ifp run: %s\n", err.msg);
        return -1;
    }
    const ifp_config_t *c = &r->cfg;
    int cap = 64, n;
    for (;;) {
        int32_t *grown = realloc(r->ids, (size_t)cap * sizeof *r->ids);
        if (!grown) return fprintf(stderr, "ifp run: out of memory\n"), -1;
        r->ids = grown;
        n = ifp_tokenizer_encode(r->tok, r->a.prompt, ifp_tokenizer_add_bos(r->tok), r->ids, cap);
        if (n < 0) return fprintf(stderr, "ifp run: cannot tokenize the prompt: %s\n", ifp_strerror(n)), -1;
        if (n <= cap) break;
        cap = n;
    }
    if (n == 0)
        return fprintf(stderr, "ifp run: the prompt is empty and the model adds no BOS: nothing to condition on\n"), -1;
    if (n >= c->ctx) return fprintf(stderr, "ifp run: the prompt has %d tokens; the model's context is %d\n", n, c->ctx), -1;
    r->n_prompt = n;
    r->n_new = r->a.n;
    if (n + r->n_new > c->ctx) {
        r->n_new = c->ctx - n;
        fprintf(stderr, "ifp run: note: -n %d exceeds the context (%d); generating %d tokens\n", r->a.n, c->ctx,
                r->n_new);
    }
    int32_t *grown = realloc(r->ids, (size_t)(n + r->n_new + 1) * sizeof *r->ids);
    if (!grown) return fprintf(stderr, "ifp run: out of memory\n"), -1;
    r->ids = grown;
    return 0;
}

/* The mask (once, from the prompt, a task, the calibration set or a file),
 * saved with --mask-out; with --clusters its nearest cluster.  Sets *uni to
 * the channels to compact to (NULL: all). */
static int run_mask(run_t *r, const ifp_mask_t **uni) {
    const ifp_config_t *c = &r->cfg;
    ifp_err_t err = {0};
    double t0 = ifp_now_s();
    if (build_mask(&r->a, c, r->tok, r->ids, r->n_prompt, &r->mask)) return -1;
    r->mask_s = ifp_now_s() - t0;
    if (r->a.mask_out) {
        ifp_mask_t *dense = r->mask ? NULL : ifp_mask_dense(c->n_layers, c->d_ffn);
        int rc = !r->mask && !dense ? IFP_ENOMEM : ifp_mask_save(r->mask ? r->mask : dense, r->a.mask_out, &err);
        ifp_mask_destroy(&dense);
        if (rc) return fprintf(stderr, "ifp run: --mask-out: %s\n", rc == IFP_ENOMEM ? "out of memory" : err.msg), -1;
    }
    *uni = r->mask;
    if (!r->a.clusters) return 0;
    if (!r->mask) return fprintf(stderr, "ifp run: --clusters needs a mask (a predictor, or --mask file:PATH)\n"), -1;
    if (ifp_cluster_table_load(r->a.clusters, &r->table, &err))
        return fprintf(stderr, "ifp run: --clusters: %s\n", err.msg), -1;
    if (r->table->n_layers != c->n_layers || r->table->d_ffn != c->d_ffn)
        return fprintf(stderr, "ifp run: --clusters: the table is for %d layers x %d channels; the model has %d x %d\n",
                       r->table->n_layers, r->table->d_ffn, c->n_layers, c->d_ffn),
               -1;
    r->cluster = ifp_cluster_nearest(r->table, r->mask);
    if (r->cluster < 0) return fprintf(stderr, "ifp run: --clusters: the table has no cluster\n"), -1;
    *uni = r->table->c[r->cluster].uni;
    r->coverage = ifp_mask_coverage(r->mask, *uni);
    return 0;
}

/* The serving object: the whole model, one slot; with a mask only the
 * compacted FFN is held (lean), then the slot's mask over the union (a
 * request's own mask as the union needs no row mask). */
static int run_serve(run_t *r, const ifp_mask_t *uni) {
    ifp_err_t err = {0};
    r->svp.lean = uni != NULL;
    r->svp.max_rows = RUN_CHUNK;
    if (ifp_serve_new(&r->g, &r->svp, &r->sv, &err))
        return fprintf(stderr, "ifp run: %s: %s\n", r->a.model, err.msg), -1;
    if (uni && ifp_serve_set_union(r->sv, uni, &err)) {
        if (r->table) fprintf(stderr, "ifp run: cannot compact to cluster %d: %s\n", r->cluster, err.msg);
        else fprintf(stderr, "ifp run: cannot apply the %s mask: %s\n", mask_mode_names[r->a.mode], err.msg);
        return -1;
    }
    if (r->table ? ifp_serve_slot_mask(r->sv, 0, r->mask, &err) : ifp_serve_slot_dense(r->sv, 0, &err))
        return fprintf(stderr, "ifp run: %s\n", err.msg), -1;
    if (!(r->rows = malloc(sizeof *r->rows * RUN_CHUNK))) return fprintf(stderr, "ifp run: out of memory\n"), -1;
    return 0;
}

/* Prefill, then sample and feed one token at a time (streamed to stdout
 * unless --json). */
static int run_generate(run_t *r) {
    const ifp_config_t *c = &r->cfg;
    ifp_sampler_t *smp = ifp_sampler_new(c->vocab);
    if (!smp) return fprintf(stderr, "ifp run: out of memory\n"), -1;
    ifp_sampler_params_t spar = {.temperature = r->a.temp, .top_k = r->a.top_k, .top_p = r->a.top_p, .seed = r->a.seed};
    int rc = -1, n = r->n_prompt;
    double t0 = ifp_now_s();
    if (feed(r->sv, r->ids, 0, n, RUN_CHUNK, r->rows)) goto out;
    double t1 = ifp_now_s();
    memcpy(r->first16, ifp_serve_logits(r->sv), sizeof(float) * (size_t)(c->vocab < 16 ? c->vocab : 16));
    r->argmax_prompt = ifp_argmax(ifp_serve_logits(r->sv), c->vocab);
    int eos = ifp_tokenizer_eos(r->tok);
    r->finish = "length";
    while (r->n_gen < r->n_new) {
        int p = n + r->n_gen; /* the new token's position; the logits are the row at p - 1's */
        int next = ifp_serve_sample(smp, &spar, ifp_serve_logits(r->sv), p - 1);
        if (next == eos) {
            r->finish = "eos";
            break;
        }
        r->ids[p] = next;
        r->n_gen++;
        size_t len;
        const char *piece = ifp_tokenizer_piece(r->tok, r->ids[p - 1], next, &len);
        if (r->a.json) {
            ifp_buf_append(&r->text, piece, len);
        } else {
            fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
        if (r->n_gen < r->n_new && feed(r->sv, r->ids, p, p + 1, RUN_CHUNK, r->rows)) goto out;
    }
    r->prefill_s = t1 - t0;
    r->decode_s = ifp_now_s() - t1;
    rc = 0;
out:
    ifp_sampler_destroy(&smp);
    return rc;
}

static int run_report(const run_t *r) {
    double tps = r->n_gen > 0 && r->decode_s > 0 ? r->n_gen / r->decode_s : 0.0;
    double pps = r->prefill_s > 0 ? r->n_prompt / r->prefill_s : 0.0;
    if (!r->a.json) {
        fputs("\n", stdout);
        fprintf(stderr, "[%d prompt tokens at %.1f tok/s, %d new tokens at %.1f tok/s, finish: %s, seed %llu]\n",
                r->n_prompt, pps, r->n_gen, tps, r->finish, (unsigned long long)r->a.seed);
        return 0;
    }
    ifp_buf_t out = {0};
    ifp_buf_printf(&out, "{\"prompt_tokens\":[");
    for (int i = 0; i < r->n_prompt; i++) ifp_buf_printf(&out, "%s%d", i ? "," : "", r->ids[i]);
    ifp_buf_printf(&out, "],\"tokens\":[");
    for (int i = 0; i < r->n_gen; i++) ifp_buf_printf(&out, "%s%d", i ? "," : "", r->ids[r->n_prompt + i]);
    ifp_buf_printf(&out, "],\"text\":");
    ifp_buf_json_str(&out, r->text.p ? r->text.p : "", r->text.len);
    ifp_buf_printf(&out, ",\"logits_last_prompt\":[");
    for (int i = 0; i < (r->cfg.vocab < 16 ? r->cfg.vocab : 16); i++) {
        if (i) ifp_buf_append(&out, ",", 1);
        ifp_buf_json_float(&out, r->first16[i]);
    }
    ifp_buf_printf(&out, "],\"argmax_last_prompt\":%d,\"tokens_per_s\":", r->argmax_prompt);
    ifp_buf_json_float(&out, tps);
    ifp_buf_printf(&out, ",\"prompt_tokens_per_s\":");
    ifp_buf_json_float(&out, pps);
    ifp_buf_printf(&out, ",\"mask_s\":");
    ifp_buf_json_float(&out, r->mask_s);
    json_mask(&out, &r->a, r->mask);
    if (r->table) {
        ifp_buf_printf(&out, ",\"cluster\":%d,\"coverage\":", r->cluster);
        ifp_buf_json_float(&out, r->coverage);
    }
    ifp_buf_printf(&out, ",\"finish_reason\":\"%s\",\"seed\":%llu}\n", r->finish, (unsigned long long)r->a.seed);
    int rc = out.oom ? (fprintf(stderr, "ifp run: out of memory\n"), -1) : (fputs(out.p, stdout), 0);
    ifp_buf_free(&out);
    return rc;
}

static void run_free(run_t *r) {
    ifp_buf_free(&r->text);
    free(r->ids), free(r->rows);
    ifp_tokenizer_destroy(&r->tok);
    ifp_serve_destroy(&r->sv);
    ifp_mask_destroy(&r->mask);
    ifp_cluster_table_destroy(&r->table);
    ifp_gguf_close(&r->g);
}

int ifp_cmd_run(int argc, char **argv) {
    run_t r = {.a = {.model = NULL, .prompt = "", .n = 128, .temp = 0.8f, .top_p = 0.95f, .top_k = 40, .threads = 1},
               .svp = ifp_serve_default_params(), .cluster = -1, .coverage = 1.0};
    run_args_t *a = &r.a;
    cli_opt_t opts[] = {
        {"model", 'm', CLI_STR, &a->model, 0, 0, "model GGUF (default: the embedded ifp-mix)", 0},
        {"prompt", 'p', CLI_STR, &a->prompt, 0, 0, "prompt text (default: empty = start from BOS)", 0},
        {"n", 'n', CLI_INT, &a->n, 0, 1 << 20, "number of new tokens (default 128; stops early at EOS)", 0},
        {"temp", 0, CLI_FLOAT, &a->temp, 0, 100, "temperature; 0 = greedy (default 0.8)", 0},
        {"top-p", 0, CLI_FLOAT, &a->top_p, 0, 1, "nucleus sampling mass, 1 = off (default 0.95)", 0},
        {"top-k", 0, CLI_INT, &a->top_k, 0, 1 << 24, "keep the k most likely tokens, 0 = off (default 40)", 0},
        {"seed", 's', CLI_U64, &a->seed, 0, 9.0e18, "sampling seed (default: from the clock)", 0},
        {"threads", 't', CLI_INT, &a->threads, 1, 256, "OpenBLAS threads (default 1)", 0},
        {"json", 0, CLI_FLAG, &a->json, 0, 0, "print one JSON object instead of streaming text", 0},
        {"predictor", 0, CLI_STR, &a->predictor, 0, 0, "sparsity predictor GGUF (must target this model)", 0},
        {"mask", 0, CLI_STR, &a->mask, 0, 0,
         "input | task:TEXT | static | file:PATH | dense (default: input with --predictor, else dense)", 0},
        {"calib", 0, CLI_STR, &a->calib, 0, 0, "prompts (JSONL) whose mean predictor score makes --mask static", 0},
        {"keep", 0, CLI_INT, &a->keep, 1, 1 << 22, "channels kept per layer (default: the predictor's keep)", 0},
        {"mask-out", 0, CLI_STR, &a->mask_out, 0, 0, "save the mask used to this file (for --mask file:PATH)", 0},
        {"clusters", 0, CLI_STR, &a->clusters, 0, 0, "serve the mask from its nearest cluster's union (cluster table GGUF)", 0},
        {"type", 0, CLI_STR, &a->wtype, 0, 0, "hold the matrices as f32 | f16 | bf16 | q8_0 (default: as stored)", 0},
        {0},
    };
    const char *pos_args[1];
    int n_pos;
    int rc = cli_parse("run", argc, argv, 2, opts, pos_args, 0, &n_pos,
                       "--model M.gguf [--prompt TEXT] [--predictor P.gguf [--mask MODE]] [options]");
    if (rc) return rc > 0 ? 0 : 2;
    if (parse_mask(a, opts[12].seen)) return 2;
    if (a->wtype) {
        ifp_ggml_type_t t;
        ifp_err_t err = {0};
        if (ifp_wtype_parse(a->wtype, &t, &err)) return fprintf(stderr, "ifp run: --type: %s\n", err.msg), 2;
        r.svp.wtype = (int)t;
    }
    if (!opts[6].seen) a->seed = (uint64_t)time(NULL);
    if (!a->model) a->model = ifp_default_model();
    ifp_blas_threads(a->threads);
    const ifp_mask_t *uni = NULL;
    int status = 1;
    if (run_open(&r) || run_mask(&r, &uni) || run_serve(&r, uni)) goto done;
    if (!a->json) {
        char mem[320];
        ifp_serve_describe_memory(r.sv, mem, sizeof mem);
        fprintf(stderr, "[%s; kernels %s]\n", mem, ifp_isa_name(ifp_isa_get()));
        if (a->predictor || a->mask) print_mask_summary(a, r.mask, &r.cfg);
        if (r.table) fprintf(stderr, "[served from cluster %d's union: coverage %.4f]\n", r.cluster, r.coverage);
        fputs(a->prompt, stdout);
        fflush(stdout);
    }
    if (run_generate(&r) || run_report(&r)) goto done;
    status = 0;
done:
    run_free(&r);
    return status;
}
