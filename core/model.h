/* model.h — a Llama-architecture model: hyper-parameters and weights.
 *
 * Weights come from a GGUF file (ifp_model_load) or are generated from a seed
 * in memory (ifp_model_synth, for benchmarks and tests).  Matrices keep their
 * stored type (F32, F16, BF16 or Q8_0: core/wmat.h), or are converted once at
 * load to the type asked for (ifp_model_params_t.wtype).  Served weights are
 * resident: copied once from the file into anonymous (huge-page) memory that
 * the kernel does not reclaim like page cache (core/arena.h); the file stays
 * mapped for metadata and as the source that compaction gathers from.
 *
 * Layout: matrices are row-major [out][in] (GGUF ne = [in, out]), except
 * ffn_down, held channel-major: row j is FFN channel j's column of llama's
 * ffn_down ([d_ffn][dim]), so a channel of every FFN matrix is one row and
 * compaction is a gather of rows in any type.  A file may store the down
 * projection in llama's layout (ffn_down, ne = [d_ffn, dim]; converted at
 * load: exact for F32/F16/BF16, re-quantized along dim for Q8_0) or already
 * channel-major (ffn_down_t, ne = [dim, d_ffn], written by `ifp quantize`).
 *
 * A model may hold only a slice of the layers (a pipeline stage): layers
 * [layer_begin, layer_end) are loaded; the embedding and the head only when
 * asked for. */
#ifndef IFP_MODEL_H
#define IFP_MODEL_H

#include <stdint.h>

#include "arena.h"
#include "err.h"
#include "gguf.h"
#include "wmat.h"

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
    const float *attn_norm; /* (dim) f32 */
    ifp_wmat_t wq;          /* (n_heads*head_dim, dim) */
    ifp_wmat_t wk;          /* (n_kv_heads*head_dim, dim) */
    ifp_wmat_t wv;          /* (n_kv_heads*head_dim, dim) */
    ifp_wmat_t wo;          /* (dim, n_heads*head_dim) */
    const float *ffn_norm;  /* (dim) f32 */
    ifp_wmat_t w_gate;      /* (d_ffn, dim)  llama w1 */
    ifp_wmat_t w_up;        /* (d_ffn, dim)  llama w3 */
    ifp_wmat_t w_down;      /* (d_ffn, dim)  llama w2, channel-major (see above) */
    int d_ffn;              /* channels held; 0 = the FFN is not loaded (only its source) */
} ifp_layer_t;

/* Where a layer's FFN channels are gathered from (core/compact.h): the
 * resident full weights, or the file's tensors in the mapping. */
typedef struct {
    ifp_wmat_t gate, up; /* (d_ffn, dim): channel j = row j */
    ifp_wmat_t down;     /* channel-major (d_ffn, dim), or llama's (dim, d_ffn) if down_llama */
    int down_llama;      /* 1: channel j is column j of down */
} ifp_ffn_src_t;

typedef struct {
    ifp_config_t cfg;
    int layer_begin, layer_end; /* layers held: [begin, end) */
    ifp_wmat_t tok_embd;        /* (vocab, dim), data NULL if not held */
    const float *out_norm;      /* (dim), NULL if the head is not held */
    ifp_wmat_t output;          /* (vocab, dim), data NULL if the head is not held (tied: = tok_embd's data) */
    ifp_layer_t *layers;        /* indexed by absolute layer id; only [begin,end) valid */
    ifp_ffn_src_t *ffn_src;     /* indexed like layers: compaction's source */
    ifp_ggml_type_t ffn_type;   /* the type FFN matrices are held in (and gathered to) */
    ifp_gguf_t *gguf;           /* the file (metadata, and FFN source when not resident); NULL for synth */
    ifp_arena_t *arena;         /* resident weights */
} ifp_model_t;

#define IFP_WTYPE_ASIS (-1)

typedef struct {
    int layer_begin;  /* default 0 */
    int layer_end;    /* default -1 = n_layers */
    int load_embd;    /* default 1 */
    int load_head;    /* default 1 */
    int load_ffn;     /* default 1: the full FFN resident; 0: only its source (a cluster
                       * stage compacts from the file instead) */
    int wtype;        /* IFP_WTYPE_ASIS (default) or an ifp_ggml_type_t every matrix is
                       * converted to at load (embedding and head included) */
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

/* Bytes of weights the model holds resident (its arena), and their type
 * summary ("bf16", or "q8_0+f32 norms"...) for logs. */
size_t ifp_model_resident_bytes(const ifp_model_t *m);
/* "41.2 MiB resident (bf16 matrices, f32 norms; anonymous memory, huge pages 94%, locked)" */
void ifp_model_describe_memory(const ifp_model_t *m, char *buf, size_t len);

/* Embedding row of token t, widened to f32. */
void ifp_model_embed_row(const ifp_model_t *m, int t, float *out);

#endif
