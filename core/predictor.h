/* predictor.h — the IFPruning sparsity predictor (paper §3.2).
 *
 * A predictor GGUF holds a Llama backbone (llama.* keys, its own tokenizer
 * metadata), a 2-layer head (ifp.head.fc1.{weight,bias}, ifp.head.fc2.{weight,bias})
 * and ifp.predictor.* metadata (target_block_count, target_feed_forward_length,
 * keep, max_prompt_tokens, feature = "last_token_final_norm",
 * head_activation = "silu").
 *
 *   f      = output_norm(backbone(ids[:max_prompt_tokens]))[last]
 *   scores = fc2 · silu(fc1 · f + b1) + b2          reshaped [n_layers × d_ffn]
 *   mask   = per layer the top `keep` scores (ties -> lower index). */
#ifndef IFP_PREDICTOR_H
#define IFP_PREDICTOR_H

#include <stdint.h>

#include "dataset.h"
#include "err.h"
#include "mask.h"
#include "model.h"
#include "tokenizer.h"

typedef struct ifp_predictor ifp_predictor_t;

/* Loads and validates a predictor GGUF: the backbone config and weights, the
 * head tensor shapes against the backbone dim and the target size, and the
 * ifp.predictor.* keys (target_block_count, target_feed_forward_length and
 * keep are required; max_prompt_tokens defaults to the backbone context;
 * feature / head_activation, when present, must be the supported values).
 * Every buffer a call needs is allocated here.  Errors name the file and what
 * is wrong (IFP_ENOTFOUND missing key/tensor, IFP_EFORMAT wrong shape or
 * string, IFP_ERANGE value out of range). */
int ifp_predictor_load(const char *path, ifp_predictor_t **out, ifp_err_t *err);
/* The same with the backbone's matrices held in wtype (IFP_WTYPE_ASIS or a
 * weight type, model.h); the head stays f32. */
int ifp_predictor_load_typed(const char *path, int wtype, ifp_predictor_t **out, ifp_err_t *err);
/* Frees p (NULL and *p == NULL are fine; *p becomes NULL).  For a fork: only
 * its own run state; the weights stay with the handle they came from. */
void ifp_predictor_destroy(ifp_predictor_t **p);

/* A second handle on p's weights, for scoring on another thread: the
 * backbone, head and norm are shared read-only (nothing is copied); the fork
 * has its own run state (a KV cache of max_prompt positions, activations for
 * up to 512 prompt rows, the score and token scratch), allocated here.
 * Lifetime: p's weights must outlive every fork (destroy the forks first; a
 * fork of a fork borrows the same weights, so the loaded handle must outlive
 * both).  Destroy a fork with ifp_predictor_destroy.  Threads: each handle
 * (the loaded one and every fork) is used by one thread at a time; distinct
 * handles score concurrently with results identical to serial calls.  What
 * a handle does not make thread-safe: a shared ifp_tokenizer_t (it has
 * encode scratch: one per thread for ifp_predictor_mask_text) and
 * ifp_kernel_set (process-wide).  IFP_EINVAL for a NULL p, IFP_ENOMEM. */
int ifp_predictor_fork(const ifp_predictor_t *p, ifp_predictor_t **out, ifp_err_t *err);

/* Refuses (IFP_EINVAL, clear message) a predictor whose target layer count or
 * FFN width differ from the model's, or whose backbone vocabulary differs
 * (the predictor reads the model's token ids). */
int ifp_predictor_check_target(const ifp_predictor_t *p, const ifp_config_t *model_cfg, ifp_err_t *err);

int ifp_predictor_n_layers(const ifp_predictor_t *p);  /* target */
int ifp_predictor_d_ffn(const ifp_predictor_t *p);     /* target */
int ifp_predictor_keep(const ifp_predictor_t *p);
int ifp_predictor_max_prompt(const ifp_predictor_t *p);
int ifp_predictor_hidden(const ifp_predictor_t *p);    /* head width (fc1 rows) */
const ifp_model_t *ifp_predictor_backbone(const ifp_predictor_t *p);

/* Raw scores [n_layers * d_ffn] (layer-major: l * d_ffn + j) for a token
 * sequence, normally [BOS] + prompt ids; only ids[0 .. min(n, max_prompt))
 * are read.  n >= 1.  scores is owned by the caller.  Allocation-free; not
 * thread-safe (one handle = one run state: see ifp_predictor_fork). */
int ifp_predictor_scores(ifp_predictor_t *p, const int32_t *ids, int n, float *scores, ifp_err_t *err);
/* ids -> scores -> a new top-keep mask (keep <= 0: the predictor's keep;
 * keep > d_ffn is IFP_ERANGE).  *out is owned by the caller. */
int ifp_predictor_mask(ifp_predictor_t *p, const int32_t *ids, int n, int keep, ifp_mask_t **out, ifp_err_t *err);
/* Per layer top-keep of scores[n_layers * d_ffn] (ties -> lower index). */
int ifp_predictor_mask_from_scores(const ifp_predictor_t *p, const float *scores, int keep, ifp_mask_t **out,
                                   ifp_err_t *err);
/* Mask for a text (a prompt, or a task instruction for per-task masks):
 * [BOS] + tok(text), truncated to max_prompt_tokens. */
int ifp_predictor_mask_text(ifp_predictor_t *p, ifp_tokenizer_t *tok, const char *text, int keep, ifp_mask_t **out,
                            ifp_err_t *err);

/* Static mask: the mean predictor score over every prompt of ds ([BOS] +
 * tok(prompt), truncated), then per layer top-keep.  mean_scores (optional,
 * [n_layers * d_ffn]) receives the mean.  Shows progress on stderr when it is
 * a terminal. */
int ifp_predictor_static_mask(ifp_predictor_t *p, ifp_tokenizer_t *tok, const ifp_dataset_t *ds, int keep,
                              float *mean_scores, ifp_mask_t **out, ifp_err_t *err);

#endif
