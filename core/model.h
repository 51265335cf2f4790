/* model.h — a Llama-architecture model: hyper-parameters and weights.
 *
 * Weights come from a GGUF file (ifp_model_load: F32 tensors are used in place
 * from the mapping, F16/BF16 are converted to f32 once at load) or are
 * generated from a seed in memory (ifp_model_synth, for benchmarks and tests).
 * All matrices are row-major [out][in] (GGUF ne = [in, out]).
 *
 * A model may hold only a slice of the layers (a pipeline stage): layers
 * [layer_begin, layer_end) are loaded; the embedding and the head only when
 * asked for. */
#ifndef IFP_MODEL_H
#define IFP_MODEL_H

#include <stdint.h>

#include "err.h"
#include "gguf.h"

typedef struct {
    int dim;         /* d_model */
    int n_layers;    /* in the whole model */
    int n_heads;     /* query heads */
    int n_kv_heads;  /* key/value heads (GQA: query head h uses kv head h / (n_heads/n_kv_heads)) */
    int head_dim;    /* dim / n_heads */
    int d_ffn;       /* FFN width of the full model */
    int vocab;
    int ctx;         /* context length */
    float norm_eps;  /* RMSNorm epsilon */
    float rope_theta;
    int rope_dim;    /* rotated dims per head (<= head_dim) */
} ifp_config_t;

/* One transformer block.  d_ffn may be smaller than the config's: compacted
 * layers (core/compact.h) carry only the kept channels. */
typedef struct {
    const float *attn_norm; /* (dim) */
    const float *wq;        /* (n_heads*head_dim, dim) */
    const float *wk;        /* (n_kv_heads*head_dim, dim) */
    const float *wv;        /* (n_kv_heads*head_dim, dim) */
    const float *wo;        /* (dim, n_heads*head_dim) */
    const float *ffn_norm;  /* (dim) */
    const float *w_gate;    /* (d_ffn, dim)  llama w1 */
    const float *w_up;      /* (d_ffn, dim)  llama w3 */
    const float *w_down;    /* (dim, d_ffn)  llama w2 */
    int d_ffn;
} ifp_layer_t;

typedef struct {
    ifp_config_t cfg;
    int layer_begin, layer_end; /* layers held: [begin, end) */
    const float *tok_embd;      /* (vocab, dim), NULL if not held */
    const float *out_norm;      /* (dim), NULL if the head is not held */
    const float *output;        /* (vocab, dim), NULL if the head is not held (tied: = tok_embd) */
    ifp_layer_t *layers;        /* indexed by absolute layer id; only [begin,end) valid */
    ifp_gguf_t *gguf;           /* mapping the F32 weights point into (NULL for synth) */
    void **owned;               /* converted / generated buffers */
    int n_owned, cap_owned;
} ifp_model_t;

typedef struct {
    int layer_begin;  /* default 0 */
    int layer_end;    /* default -1 = n_layers */
    int load_embd;    /* default 1 */
    int load_head;    /* default 1 */
} ifp_model_params_t;

ifp_model_params_t ifp_model_default_params(void);

/* Reads llama.* hyper-parameters from a GGUF (validating ranges). */
int ifp_config_from_gguf(const ifp_gguf_t *g, ifp_config_t *cfg, ifp_err_t *err);
/* Checks internal consistency (positive sizes, divisibility, limits). */
int ifp_config_validate(const ifp_config_t *cfg, ifp_err_t *err);

/* Opens path, reads config and the requested weights (shapes checked). */
int ifp_model_load(const char *path, const ifp_model_params_t *p, ifp_model_t **out, ifp_err_t *err);
/* Same over an already-open GGUF; the model takes ownership of *g on success
 * (and *g is set to NULL). */
int ifp_model_from_gguf(ifp_gguf_t **g, const ifp_model_params_t *p, ifp_model_t **out, ifp_err_t *err);
/* Random weights from a seed (uniform, scaled 1/sqrt(fan_in); norms = 1). */
int ifp_model_synth(const ifp_config_t *cfg, uint64_t seed, const ifp_model_params_t *p, ifp_model_t **out,
                    ifp_err_t *err);
void ifp_model_free(ifp_model_t **m);

/* Registers a buffer for freeing with the model (internal use by loaders). */
int ifp_model_own(ifp_model_t *m, void *buf);

#endif
