/* ifp run — generate text from a prompt with one model in this process,
 * optionally under an FFN channel mask (DESIGN.md §2).
 *
 * Mask modes (--mask): input (the predictor on the prompt; the default with
 * --predictor), task:TEXT (the predictor on an instruction), static (top-K of
 * the mean predictor score over --calib FILE.jsonl), file:PATH (a saved mask)
 * and dense (no mask; the default without --predictor).  A mask is applied at
 * every position, prompt and generated tokens alike, by compacting the model
 * to the kept channels once (ifp_compact_model) — the serving path.
 * With --clusters C.gguf the mask is instead served from the union of its
 * nearest cluster, as a shard group does: weights compacted to the union, every
 * row multiplied by the mask's 0/1 sub-mask over it; channels of the mask the
 * union lacks are dropped, and --json reports "cluster" and "coverage". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "compact.h"
#include "dataset.h"
#include "forward.h"
#include "jsonw.h"
#include "kernels.h"
#include "mask.h"
#include "model.h"
#include "predictor.h"
#include "sampler.h"
#include "tokenizer.h"
#include "tools.h"
#include "clock.h"

#define RUN_CHUNK 256 /* rows per prefill call */

typedef enum { MASK_DENSE, MASK_INPUT, MASK_TASK, MASK_STATIC, MASK_FILE } mask_mode_t;
static const char *const mask_mode_names[] = {"dense", "input", "task", "static", "file"};

typedef struct {
    const char *model, *prompt, *predictor, *mask, *calib, *mask_out, *clusters;
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
static int build_mask(const run_args_t *a, const ifp_model_t *m, ifp_tokenizer_t *tok, const int32_t *ids, int n,
                      ifp_mask_t **out) {
    ifp_err_t err = {0};
    ifp_predictor_t *p = NULL;
    ifp_dataset_t *ds = NULL;
    const ifp_config_t *c = &m->cfg;
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
 * the state.  Returns 0 or prints the error. */
static int feed(ifp_state_t *st, const int32_t *ids, int from, int to, int chunk, int32_t *pos, int32_t *slot,
                uint8_t *want, const ifp_ffn_mask_t *const *rowmask) {
    for (int i = from; i < to; i += chunk) {
        int n = to - i < chunk ? to - i : chunk;
        for (int r = 0; r < n; r++) pos[r] = i + r, slot[r] = 0, want[r] = (i + r == to - 1);
        ifp_batch_t b = {.n = n, .token = ids + i, .pos = pos, .slot = slot, .want_logits = want, .mask = rowmask};
        ifp_err_t err = {0};
        if (ifp_forward(st, &b, &err) < 0) {
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

int ifp_cmd_run(int argc, char **argv) {
    run_args_t a = {.model = NULL, .prompt = "", .n = 128, .temp = 0.8f, .top_p = 0.95f, .top_k = 40, .threads = 1};
    cli_opt_t opts[] = {
        {"model", 'm', CLI_STR, &a.model, 0, 0, "model GGUF (default: the embedded ifp-mix)", 0},
        {"prompt", 'p', CLI_STR, &a.prompt, 0, 0, "prompt text (default: empty = start from BOS)", 0},
        {"n", 'n', CLI_INT, &a.n, 0, 1 << 20, "number of new tokens (default 128; stops early at EOS)", 0},
        {"temp", 0, CLI_FLOAT, &a.temp, 0, 100, "temperature; 0 = greedy (default 0.8)", 0},
        {"top-p", 0, CLI_FLOAT, &a.top_p, 0, 1, "nucleus sampling mass, 1 = off (default 0.95)", 0},
        {"top-k", 0, CLI_INT, &a.top_k, 0, 1 << 24, "keep the k most likely tokens, 0 = off (default 40)", 0},
        {"seed", 's', CLI_U64, &a.seed, 0, 9.0e18, "sampling seed (default: from the clock)", 0},
        {"threads", 't', CLI_INT, &a.threads, 1, 256, "OpenBLAS threads (default 1)", 0},
        {"json", 0, CLI_FLAG, &a.json, 0, 0, "print one JSON object instead of streaming text", 0},
        {"predictor", 0, CLI_STR, &a.predictor, 0, 0, "sparsity predictor GGUF (must target this model)", 0},
        {"mask", 0, CLI_STR, &a.mask, 0, 0,
         "input | task:TEXT | static | file:PATH | dense (default: input with --predictor, else dense)", 0},
        {"calib", 0, CLI_STR, &a.calib, 0, 0, "prompts (JSONL) whose mean predictor score makes --mask static", 0},
        {"keep", 0, CLI_INT, &a.keep, 1, 1 << 22, "channels kept per layer (default: the predictor's keep)", 0},
        {"mask-out", 0, CLI_STR, &a.mask_out, 0, 0, "save the mask used to this file (for --mask file:PATH)", 0},
        {"clusters", 0, CLI_STR, &a.clusters, 0, 0, "serve the mask from its nearest cluster's union (cluster table GGUF)", 0},
        {0},
    };
    const char *pos_args[1];
    int n_pos;
    int rc = cli_parse("run", argc, argv, 2, opts, pos_args, 0, &n_pos,
                       "--model M.gguf [--prompt TEXT] [--predictor P.gguf [--mask MODE]] [options]");
    if (rc) return rc > 0 ? 0 : 2;
    if (parse_mask(&a, opts[12].seen)) return 2;
    if (!opts[6].seen) a.seed = (uint64_t)time(NULL);
    if (!a.model) a.model = ifp_default_model();
    ifp_blas_threads(a.threads);

    ifp_err_t err = {0};
    ifp_model_t *m = NULL, *cm = NULL;
    ifp_tokenizer_t *tok = NULL;
    ifp_mask_t *mask = NULL;
    ifp_cluster_table_t *table = NULL;
    float *subbuf = NULL;
    const float **sublayer = NULL;
    const ifp_ffn_mask_t **rowmask = NULL;
    ifp_ffn_mask_t submask = {0};
    int cluster = -1;
    double coverage = 1.0;
    ifp_state_t *st = NULL;
    ifp_sampler_t *smp = NULL;
    int32_t *ids = NULL, *pos = NULL, *slot = NULL;
    uint8_t *want = NULL;
    ifp_buf_t out = {0}, text = {0};
    int status = 1;
    if (ifp_model_load(a.model, NULL, &m, &err) || ifp_tokenizer_from_gguf(m->gguf, &tok, &err)) {
        fprintf(stderr, "ifp run: %s\n", err.msg);
        goto done;
    }
    const ifp_config_t *c = &m->cfg;
    int cap = 64, n_prompt;
    for (;;) {
        int32_t *grown = realloc(ids, (size_t)cap * sizeof *ids);
        if (!grown) goto oom;
        ids = grown;
        n_prompt = ifp_tokenizer_encode(tok, a.prompt, ifp_tokenizer_add_bos(tok), ids, cap);
        if (n_prompt < 0) {
            fprintf(stderr, "ifp run: cannot tokenize the prompt: %s\n", ifp_strerror(n_prompt));
            goto done;
        }
        if (n_prompt <= cap) break;
        cap = n_prompt;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "ifp run: the prompt is empty and the model adds no BOS: nothing to condition on\n");
        goto done;
    }
    if (n_prompt >= c->ctx) {
        fprintf(stderr, "ifp run: the prompt has %d tokens; the model's context is %d\n", n_prompt, c->ctx);
        goto done;
    }
    int n_new = a.n;
    if (n_prompt + n_new > c->ctx) {
        n_new = c->ctx - n_prompt;
        fprintf(stderr, "ifp run: note: -n %d exceeds the context (%d); generating %d tokens\n", a.n, c->ctx, n_new);
    }
    int32_t *grown = realloc(ids, (size_t)(n_prompt + n_new + 1) * sizeof *ids);
    if (!grown) goto oom;
    ids = grown;

    /* the mask, computed once from the prompt (or task / calib / file), then
     * the model compacted to its kept channels */
    double tm0 = ifp_now_s();
    if (build_mask(&a, m, tok, ids, n_prompt, &mask)) goto done;
    double mask_s = ifp_now_s() - tm0;
    if (a.mask_out) {
        ifp_mask_t *dense = mask ? NULL : ifp_mask_dense(c->n_layers, c->d_ffn);
        if (!mask && !dense) goto oom;
        int src = ifp_mask_save(mask ? mask : dense, a.mask_out, &err);
        ifp_mask_destroy(&dense);
        if (src) {
            fprintf(stderr, "ifp run: --mask-out: %s\n", err.msg);
            goto done;
        }
    }
    if (a.clusters && !mask) {
        fprintf(stderr, "ifp run: --clusters needs a mask (a predictor, or --mask file:PATH)\n");
        goto done;
    }
    if (a.clusters) {
        if (ifp_cluster_table_load(a.clusters, &table, &err)) {
            fprintf(stderr, "ifp run: --clusters: %s\n", err.msg);
            goto done;
        }
        if (table->n_layers != c->n_layers || table->d_ffn != c->d_ffn) {
            fprintf(stderr, "ifp run: --clusters: the table is for %d layers x %d channels; the model has %d x %d\n",
                    table->n_layers, table->d_ffn, c->n_layers, c->d_ffn);
            goto done;
        }
        cluster = ifp_cluster_nearest(table, mask);
        if (cluster < 0) {
            fprintf(stderr, "ifp run: --clusters: the table has no cluster\n");
            goto done;
        }
        const ifp_mask_t *u = table->c[cluster].uni;
        coverage = ifp_mask_coverage(mask, u);
        if (ifp_compact_model(m, (const int32_t *const *)u->kept, u->n_kept, &cm, &err)) {
            fprintf(stderr, "ifp run: cannot compact to cluster %d: %s\n", cluster, err.msg);
            goto done;
        }
        /* the mask as 0/1 multipliers over the union's channels, every row */
        subbuf = malloc(sizeof(float) * (size_t)(ifp_mask_total(u) ? ifp_mask_total(u) : 1));
        sublayer = calloc((size_t)c->n_layers, sizeof *sublayer);
        rowmask = malloc(sizeof *rowmask * RUN_CHUNK);
        if (!subbuf || !sublayer || !rowmask) goto oom;
        float **sub = (float **)sublayer;
        for (int l = 0, off = 0; l < c->n_layers; off += u->n_kept[l], l++) sub[l] = subbuf + off;
        ifp_mask_submask(mask, u, sub);
        submask.layer = sublayer;
        for (int r = 0; r < RUN_CHUNK; r++) rowmask[r] = &submask;
    } else if (mask && ifp_compact_model(m, (const int32_t *const *)mask->kept, mask->n_kept, &cm, &err)) {
        fprintf(stderr, "ifp run: cannot apply the %s mask: %s\n", mask_mode_names[a.mode], err.msg);
        goto done;
    }
    const ifp_model_t *run_model = cm ? cm : m;

    int chunk = RUN_CHUNK;
    ifp_state_params_t sp = ifp_state_default_params();
    sp.max_batch = chunk;
    if (ifp_state_new(run_model, &sp, &st, &err)) {
        fprintf(stderr, "ifp run: %s\n", err.msg);
        goto done;
    }
    smp = ifp_sampler_new(c->vocab);
    pos = malloc(sizeof *pos * chunk);
    slot = malloc(sizeof *slot * chunk);
    want = malloc((size_t)chunk);
    if (!smp || !pos || !slot || !want) goto oom;
    ifp_sampler_params_t spar = {.temperature = a.temp, .top_k = a.top_k, .top_p = a.top_p, .seed = a.seed};

    if (!a.json) {
        if (a.predictor || a.mask) print_mask_summary(&a, mask, c);
        if (table) fprintf(stderr, "[served from cluster %d's union: coverage %.4f]\n", cluster, coverage);
        fputs(a.prompt, stdout);
        fflush(stdout);
    }
    double t0 = ifp_now_s();
    if (feed(st, ids, 0, n_prompt, chunk, pos, slot, want, rowmask)) goto done;
    double t1 = ifp_now_s();
    float first16[16];
    int n16 = c->vocab < 16 ? c->vocab : 16;
    memcpy(first16, ifp_state_logits(st), sizeof(float) * n16);
    int argmax_prompt = ifp_argmax(ifp_state_logits(st), c->vocab);
    int n_gen = 0, eos = ifp_tokenizer_eos(tok);
    const char *finish = "length";
    while (n_gen < n_new) {
        int p = n_prompt + n_gen;
        int next = ifp_sampler_sample(smp, &spar, ifp_state_logits(st), (uint64_t)p);
        if (next == eos) {
            finish = "eos";
            break;
        }
        ids[p] = next;
        n_gen++;
        size_t len;
        const char *piece = ifp_tokenizer_piece(tok, ids[p - 1], next, &len);
        if (a.json) {
            ifp_buf_append(&text, piece, len);
        } else {
            fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
        if (n_gen < n_new && feed(st, ids, p, p + 1, chunk, pos, slot, want, rowmask)) goto done;
    }
    double t2 = ifp_now_s();
    double tps = n_gen > 0 && t2 > t1 ? n_gen / (t2 - t1) : 0.0;
    double pps = t1 > t0 ? n_prompt / (t1 - t0) : 0.0;
    if (a.json) {
        ifp_buf_printf(&out, "{\"prompt_tokens\":[");
        for (int i = 0; i < n_prompt; i++) ifp_buf_printf(&out, "%s%d", i ? "," : "", ids[i]);
        ifp_buf_printf(&out, "],\"tokens\":[");
        for (int i = 0; i < n_gen; i++) ifp_buf_printf(&out, "%s%d", i ? "," : "", ids[n_prompt + i]);
        ifp_buf_printf(&out, "],\"text\":");
        ifp_buf_json_str(&out, text.p ? text.p : "", text.len);
        ifp_buf_printf(&out, ",\"logits_last_prompt\":[");
        for (int i = 0; i < n16; i++) {
            if (i) ifp_buf_append(&out, ",", 1);
            ifp_buf_json_float(&out, first16[i]);
        }
        ifp_buf_printf(&out, "],\"argmax_last_prompt\":%d,\"tokens_per_s\":", argmax_prompt);
        ifp_buf_json_float(&out, tps);
        ifp_buf_printf(&out, ",\"prompt_tokens_per_s\":");
        ifp_buf_json_float(&out, pps);
        ifp_buf_printf(&out, ",\"mask_s\":");
        ifp_buf_json_float(&out, mask_s);
        json_mask(&out, &a, mask);
        if (table) {
            ifp_buf_printf(&out, ",\"cluster\":%d,\"coverage\":", cluster);
            ifp_buf_json_float(&out, coverage);
        }
        ifp_buf_printf(&out, ",\"finish_reason\":\"%s\",\"seed\":%llu}\n", finish, (unsigned long long)a.seed);
        if (out.oom) goto oom;
        fputs(out.p, stdout);
    } else {
        fputs("\n", stdout);
        fprintf(stderr, "[%d prompt tokens at %.1f tok/s, %d new tokens at %.1f tok/s, finish: %s, seed %llu]\n",
                n_prompt, pps, n_gen, tps, finish, (unsigned long long)a.seed);
    }
    status = 0;
    goto done;
oom:
    fprintf(stderr, "ifp run: out of memory\n");
done:
    ifp_buf_free(&out);
    ifp_buf_free(&text);
    free(ids), free(pos), free(slot), free(want);
    ifp_sampler_destroy(&smp);
    ifp_state_free(&st);
    ifp_mask_destroy(&mask);
    ifp_cluster_table_destroy(&table);
    free(subbuf), free(sublayer), free(rowmask);
    ifp_model_free(&cm);
    ifp_tokenizer_destroy(&tok);
    ifp_model_free(&m);
    return status;
}
