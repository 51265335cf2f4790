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

#include "err.h"
#include "mask.h"
#include "model.h"

typedef struct ifp_predictor ifp_predictor_t;

int ifp_predictor_load(const char *path, ifp_predictor_t **out, ifp_err_t *err);
void ifp_predictor_destroy(ifp_predictor_t **p);

/* Refuses (IFP_EINVAL, clear message) a predictor whose target layer count or
 * FFN width differ from the model's. */
int ifp_predictor_check_target(const ifp_predictor_t *p, const ifp_config_t *model_cfg, ifp_err_t *err);

int ifp_predictor_n_layers(const ifp_predictor_t *p);  /* target */
int ifp_predictor_d_ffn(const ifp_predictor_t *p);     /* target */
int ifp_predictor_keep(const ifp_predictor_t *p);
int ifp_predictor_max_prompt(const ifp_predictor_t *p);
const ifp_model_t *ifp_predictor_backbone(const ifp_predictor_t *p);

/* Raw scores [n_layers * d_ffn] for a token sequence (truncated to
 * max_prompt_tokens).  scores is owned by the caller. */
int ifp_predictor_scores(ifp_predictor_t *p, const int32_t *ids, int n, float *scores, ifp_err_t *err);
/* scores -> top-keep mask (keep <= 0: the predictor's keep). */
int ifp_predictor_mask(ifp_predictor_t *p, const int32_t *ids, int n, int keep, ifp_mask_t **out, ifp_err_t *err);

#endif
