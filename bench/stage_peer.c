#include "stage_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "forward.h"
#include "kernels.h"
#include "model.h"
#include "stage_report.h"

enum { BP_MAX_REPS = 64 };

typedef struct {
    ifp_state_t *st;
    int32_t *tok, *pos, *slot;
    uint8_t *want;
    int vocab;
    uint64_t rng;
} bp_run_t;

/* "pp": prompt tokens in one batch from an empty context, the last row's logits. */
static int run_prefill(bp_run_t *r, int n, double *secs, ifp_err_t *err) {
    ifp_state_reset_slot(r->st, 0);
    for (int i = 0; i < n; i++) {
        r->tok[i] = (int32_t)(bl_rand(&r->rng) % (uint64_t)r->vocab);
        r->pos[i] = i, r->slot[i] = 0, r->want[i] = i == n - 1;
    }
    ifp_batch_t b = {.n = n, .token = r->tok, .pos = r->pos, .slot = r->slot, .want_logits = r->want};
    double t0 = bl_now();
    int rc = ifp_forward(r->st, &b, err);
    *secs = bl_now() - t0;
    return rc < 0 ? rc : IFP_OK;
}

/* "tg": n tokens one at a time from an empty context, logits for each. */
static int run_decode(bp_run_t *r, int n, double *secs, ifp_err_t *err) {
    ifp_state_reset_slot(r->st, 0);
    double t0 = bl_now();
    for (int i = 0; i < n; i++) {
        int32_t tok = (int32_t)(bl_rand(&r->rng) % (uint64_t)r->vocab), pos = i, slot = 0;
        ifp_batch_t b = {.n = 1, .token = &tok, .pos = &pos, .slot = &slot};
        int rc = ifp_forward(r->st, &b, err);
        if (rc < 0) return rc;
    }
    *secs = bl_now() - t0;
    return IFP_OK;
}

int bs_peer_main(const char *path, int threads, int prompt, int gen, int reps) {
    ifp_err_t err = {0};
    ifp_model_t *m = NULL;
    bp_run_t r = {0};
    double tp[BP_MAX_REPS], tg[BP_MAX_REPS], dt;
    int rc;
    if (reps > BP_MAX_REPS) reps = BP_MAX_REPS;
    bs_print_facts(stdout, "machine: ");
    double t0 = bl_now();
    if ((rc = ifp_model_load(path, NULL, &m, &err))) goto fail;
    char mem[256];
    ifp_model_describe_memory(m, mem, sizeof mem);
    printf("model %s: %d layers, d_model %d, d_ffn %d, vocab %d; loaded in %.1f s; %s\n", path, m->cfg.n_layers,
           m->cfg.dim, m->cfg.d_ffn, m->cfg.vocab, bl_now() - t0, mem);
    int ctx = prompt > gen ? prompt : gen;
    if (ctx > m->cfg.ctx) {
        rc = ifp_errf(&err, IFP_ERANGE, "the tests need %d positions, the model's context is %d", ctx, m->cfg.ctx);
        goto fail;
    }
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = 1, sp.max_batch = prompt, sp.ctx = ctx;
    if ((rc = ifp_state_new(m, &sp, &r.st, &err))) goto fail;
    r.vocab = m->cfg.vocab, r.rng = 0x11A3A;
    r.tok = malloc((size_t)prompt * sizeof *r.tok), r.pos = malloc((size_t)prompt * sizeof *r.pos);
    r.slot = malloc((size_t)prompt * sizeof *r.slot), r.want = malloc((size_t)prompt);
    if (!r.tok || !r.pos || !r.slot || !r.want) {
        rc = ifp_errf(&err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    /* like llama-bench: each test once untimed, then the repetitions */
    if ((rc = run_prefill(&r, prompt, &dt, &err)) || (rc = run_decode(&r, gen < 16 ? gen : 16, &dt, &err))) goto fail;
    for (int i = 0; i < reps; i++) {
        if ((rc = run_prefill(&r, prompt, &tp[i], &err)) || (rc = run_decode(&r, gen, &tg[i], &err))) goto fail;
        bl_log("rep %d: pp%d %.2f tok/s, tg%d %.2f tok/s", i + 1, prompt, prompt / tp[i], gen, gen / tg[i]);
    }
    double pp = prompt / bl_median(tp, reps), dec = gen / bl_median(tg, reps);
    printf("pp%d %.2f tok/s, tg%d %.2f tok/s (%d thread%s, median of %d repetition%s after a warm-up)\n", prompt, pp,
           gen, dec, threads, threads > 1 ? "s" : "", reps, reps > 1 ? "s" : "");
    bl_headline_t h = {{0}, 0};
    bl_head_add(&h, "peer_ifp_prefill_tok_s", "%.3f", pp);
    bl_head_add(&h, "peer_ifp_decode_tok_s", "%.3f", dec);
    bl_head_add(&h, "prompt", "%.0f", prompt);
    bl_head_add(&h, "gen", "%.0f", gen);
    bl_head_add(&h, "threads", "%.0f", threads);
    bl_head_print(&h);
    ifp_state_free(&r.st);
    ifp_model_free(&m);
    free(r.tok), free(r.pos), free(r.slot), free(r.want);
    return 0;
fail:
    fprintf(stderr, "bench_stage --model: %s\n", err.msg[0] ? err.msg : ifp_strerror(rc));
    ifp_state_free(&r.st);
    ifp_model_free(&m);
    free(r.tok), free(r.pos), free(r.slot), free(r.want);
    return 1;
}
