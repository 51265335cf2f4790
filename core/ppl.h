/* ppl.h — response-token negative log-likelihood (perplexity) of examples.
 *
 * An example is a token sequence ids[0..n) whose first n_ctx tokens are
 * context (BOS + prompt) and whose remaining tokens are scored: the NLL of
 * ids[t] given ids[0..t), for t in [n_ctx, n), under the model with the
 * example's FFN mask applied at every position.  perplexity =
 * exp(Σ nll / Σ tokens) over a set of examples.
 *
 * ifp_ppl_tokenize builds the sequence the ifp-mix reference used
 * (MODEL_CARD "Reproduction table"):
 *   ids   = [BOS] + encode(prompt + response) + [EOS], truncated to ctx
 *   n_ctx = 1 + |encode(prompt)|
 * i.e. the prompt and the response are encoded as ONE string (one dummy-prefix
 * space, at the very start), and the loss is on the response tokens and EOS.
 * This is the convention that reproduces the card's response-token counts
 * exactly (encoding the response separately adds a second dummy prefix and
 * gives 27,985 tokens instead of 27,660 on calib.jsonl).
 *
 * ifp_ppl_score packs consecutive examples into each forward call — one KV
 * slot per example, each row carrying its example's mask — so a whole batch
 * runs as a few large GEMMs.  The FFN weights of a call are gathered to the
 * union U of its masks (per layer), and each row multiplies by its 0/1
 * sub-mask over U: the same result as the full masked FFN (masked channels
 * are exact zeros) at the cost of |U| channels.  Examples with similar masks
 * next to each other (e.g. sorted by domain) keep U small.  The evaluator
 * allocates everything in ifp_ppl_new; scoring does not allocate. */
#ifndef IFP_PPL_H
#define IFP_PPL_H

#include <stdint.h>

#include "err.h"
#include "mask.h"
#include "model.h"
#include "tokenizer.h"

typedef struct {
    const int32_t *ids;     /* the sequence; ids[0] is normally BOS */
    int n;                  /* length, <= the model context */
    int n_ctx;              /* >= 1: ids[0..n_ctx) are context, ids[n_ctx..n) are scored */
    const ifp_mask_t *mask; /* kept FFN channels per layer (full-model indices); NULL = dense */
} ifp_ppl_item_t;

typedef struct {
    double nll;   /* Σ -log p(ids[t] | ids[<t]) over the scored tokens (natural log) */
    int n_tokens; /* scored tokens: max(0, n - n_ctx) */
} ifp_ppl_result_t;

typedef struct {
    int max_batch; /* rows per forward call (default 1024; raised to the context if smaller) */
    int n_slots;   /* examples per forward call at most (default 16) */
    int compact;   /* 1 (default): run each call's FFNs on the union of its masks' channels */
    /* called after each forward call with (examples done, total) if non-NULL */
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
} ifp_ppl_params_t;

ifp_ppl_params_t ifp_ppl_default_params(void);

typedef struct ifp_ppl ifp_ppl_t;

/* Binds to model m (borrowed: must outlive the evaluator; it must hold all
 * layers, the embedding and the head, uncompacted). */
int ifp_ppl_new(const ifp_model_t *m, const ifp_ppl_params_t *p, ifp_ppl_t **out, ifp_err_t *err);
void ifp_ppl_destroy(ifp_ppl_t **e);

/* Scores items[0..n) into res[0..n).  Items with nothing to score get
 * {0, 0} without running the model.  Errors (bad lengths, token ids or mask
 * shapes) are reported before any work with the item's index. */
int ifp_ppl_score(ifp_ppl_t *e, const ifp_ppl_item_t *items, int n, ifp_ppl_result_t *res, ifp_err_t *err);

/* Builds the ifp-mix evaluation sequence of (prompt, response) as described
 * above into a new malloc'd *ids (caller frees) of *n <= ctx tokens, with
 * *n_ctx context tokens (*n_ctx >= *n when no response token fits in the
 * window; a NULL or empty response scores nothing: *n_ctx = *n). */
int ifp_ppl_tokenize(ifp_tokenizer_t *t, const char *prompt, const char *response, int ctx, int32_t **ids, int *n,
                     int *n_ctx, ifp_err_t *err);

/* -log softmax(logits)[target] over vocab entries, accumulated in double. */
double ifp_ppl_token_nll(const float *logits, int vocab, int target);

#endif
