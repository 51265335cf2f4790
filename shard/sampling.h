/* sampling.h — the last stage's sampling: per slot, the request's sampling
 * parameters and limits; per micro-batch, one token per `want` row, the
 * finish decision, one TokenBatch to each router that has tokens in it (the
 * router each request came from: sh_work_t.link) and the token ids for
 * stage 0.
 *
 * Sampling is exactly `ifp run`'s: ifp_sampler_sample(logits of the row at
 * position pos, pos + 1) — the position the new token will occupy — so a
 * group's answers are token-for-token those of `ifp run` with the same mask,
 * seed and parameters.  The logprob is the log-softmax of the raw logits at
 * the sampled token.  Finish: the token is eos -> EOS (the event carries it);
 * the request's max_new tokens are out -> LENGTH; the new token takes the
 * last context position -> LENGTH.  A request with sh_work_t.debug gets the
 * Debug fields (first SH_LOGITS_HEAD logits at the last prompt position, the
 * argmax there) with its token of index 0. */
#ifndef SH_SAMPLING_H
#define SH_SAMPLING_H

#include <stdint.h>

#include "pipe.h"
#include "routerlink.h"
#include "sampler.h"
#include "work.h"

#define SH_LOGITS_HEAD 16

typedef struct {
    int active;
    uint64_t rid;
    ifp_sampler_params_t sp;
    uint32_t first_index, generated, max_new;
    int32_t eos;
    int debug;
    int link;    /* the router link the request came from */
} sh_sampling_slot_t;

typedef struct {
    int n_slots, max_rows, vocab, ctx;
    char group[64];
    sh_sampling_slot_t *slot;
    ifp_sampler_t *smp;
    /* the tokens of the last micro-batch, for the router */
    sh_token_t *out;        /* [max_rows] */
    int *out_link;          /* [max_rows] the link of each */
    sh_token_t *batch;      /* [max_rows] one link's tokens (flush) */
    float *head;            /* [max_rows × SH_LOGITS_HEAD] */
    int n_out;
    uint64_t *failed;       /* [max_rows] rids of a failed micro-batch */
    int *failed_link;       /* [max_rows] */
    int n_failed;
    unsigned long no_link;  /* tokens / errors for a link that does not exist (not sent) */
} sh_sampling_t;

sh_sampling_t *sh_sampling_new(int n_slots, int max_rows, int vocab, int ctx, const char *group);
void sh_sampling_destroy(sh_sampling_t **t);

/* Request w now occupies slot. */
void sh_sampling_setup(sh_sampling_t *t, int slot, const sh_work_t *w);

/* Samples the `want` rows of rows[0..n) (logits: one row per want row, in
 * order; NULL when the micro-batch failed upstream — its requests then end
 * with a WorkError and SH_TOK_FAILED).  Writes one sh_tok_t per want row to
 * out and returns their count. */
int sh_sampling_sample(sh_sampling_t *t, const sh_row_t *rows, int n, const float *logits, sh_tok_t *out);

/* Sends the tokens of the last sh_sampling_sample, one TokenBatch per link
 * of links[0..n_links) that has some, and the work errors of a failed
 * micro-batch, each on its request's link. */
void sh_sampling_flush(sh_sampling_t *t, sh_routerlink_t *links, int n_links);

#endif
