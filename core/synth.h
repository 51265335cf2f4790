/* synth.h — synthetic models at the IFPruning paper's shapes, and GGUF
 * output for them (the `ifp synth` command, the scale benchmarks, tests).
 *
 * The paper's models share everything but the FFN width: d_model 2048,
 * 56 layers, GQA with 16 query and 2 key/value heads of 128, SwiGLU FFN of
 * d_ffn 16384 (6B), 24576 (9B) or 32768 (12B); instruction-following pruning
 * keeps K = 6656 channels per layer, which is the FFN of the dense 3B shape.
 * Weights come from ifp_model_synth (seeded; every layer has its own stream,
 * so a stage's layers do not depend on which other layers are held).
 *
 * A synthetic predictor of the paper's proportions (a ~302M-parameter Llama
 * backbone and a 2-layer head) can be written as a predictor GGUF that
 * ifp_predictor_load reads, so benchmarks time the real scoring path; or one
 * for an existing model (`ifp synth --predictor-for MODEL.gguf`): its
 * tokenizer and vocabulary, a head over its layers × d_ffn, a backbone of
 * the paper's or any other size. */
#ifndef IFP_SYNTH_H
#define IFP_SYNTH_H

#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "model.h"

#define IFP_SYNTH_KEEP 6656     /* K: FFN channels kept per layer */
#define IFP_SYNTH_LAYERS 56     /* layers of the paper's models */
#define IFP_SYNTH_VOCAB 32000   /* default vocabulary (no tokenizer is written) */
#define IFP_SYNTH_CTX 2048      /* default context length */

typedef struct {
    const char *name; /* "3b", "6b", "9b", "12b" */
    int d_ffn;
} ifp_synth_shape_t;

/* The shape table, in increasing size; i in [0, ifp_synth_n_shapes()). */
int ifp_synth_n_shapes(void);
const ifp_synth_shape_t *ifp_synth_shape_at(int i);
/* The named shape (case-insensitive, "9b" or "9B"), NULL if unknown. */
const ifp_synth_shape_t *ifp_synth_shape_find(const char *name);

/* The config of a shape with n_layers layers (whole model), vocab and ctx
 * (each <= 0: IFP_SYNTH_LAYERS / _VOCAB / _CTX); rms eps 1e-5, RoPE theta
 * 10000 over the whole head.  IFP_EINVAL for an unknown shape (the message
 * lists the known ones), IFP_ERANGE for sizes ifp_config_validate refuses. */
int ifp_synth_config(const char *shape, int n_layers, int vocab, int ctx, ifp_config_t *cfg, ifp_err_t *err);

/* Parameters of one layer with an FFN of d_ffn channels (norms included). */
uint64_t ifp_synth_layer_params(const ifp_config_t *c, int d_ffn);
/* Parameters a model holds: its layers (at their own, maybe compacted,
 * widths), the embedding and the head when held. */
uint64_t ifp_synth_model_params(const ifp_model_t *m);

/* ---- GGUF output ---- */

typedef struct {
    int f16;           /* 1: matrices as F16 (norms stay F32); default 0 */
    int wtype;         /* IFP_WTYPE_ASIS (default: as held, or F16 if f16) or a weight type */
    int down_llama;    /* q8_0: write ffn_down in llama's layout (model_write.h); default 0 */
    int tokenizer;     /* 1: write a synthetic SentencePiece vocabulary of the model's size
                        * (<unk> <s> </s>, the 256 byte tokens, then "▁tN" pieces), so that
                        * other engines (llama.cpp) load the file; needs vocab >= 259; default 0 */
    const char *name;  /* general.name; default "ifp-synth" */
    const char *shape; /* ifp.synth.shape when non-NULL */
    uint64_t seed;     /* ifp.synth.seed */
} ifp_synth_write_params_t;

ifp_synth_write_params_t ifp_synth_write_default_params(void);

/* Bytes of tensor data a model's GGUF holds (the file is a few KB more). */
uint64_t ifp_synth_gguf_data_bytes(const ifp_model_t *m, int f16);

/* Writes m as a GGUF llama model without a tokenizer (llama.vocab_size
 * tells the vocabulary): llama.* hyper-parameters, ifp.synth.* provenance,
 * token_embd / output_norm / output and every layer's tensors.  m must hold
 * every layer, the embedding and the head, at full FFN width (IFP_EINVAL
 * otherwise).  The file is written to PATH.tmp and renamed (so a reader can
 * poll PATH.tmp's size for progress).  F16 holds an F16 copy of every
 * matrix (half the model's bytes) until the file is written. */
int ifp_synth_write_gguf(const ifp_model_t *m, const char *path, const ifp_synth_write_params_t *p, ifp_err_t *err);

/* ---- a synthetic predictor ---- */

typedef struct {
    ifp_config_t backbone; /* the small LM */
    int hidden;            /* head width: fc1 (hidden × dim), fc2 (target_layers·target_ffn × hidden) */
    int target_layers;     /* the masked model's layers */
    int target_ffn;        /* and FFN width */
    int keep;              /* K */
    int max_prompt;        /* tokens the predictor reads (<= backbone ctx) */
    uint64_t seed;
    const ifp_gguf_t *tokenizer; /* non-NULL: its tokenizer.ggml.* keys are copied (borrowed while writing) */
} ifp_synth_predictor_t;

/* The paper's proportions for a target shape: a Llama backbone of d 1024,
 * 16 layers, 16 heads of 64 (no GQA), d_ffn 4096, vocab 32000 — 268M
 * parameters in its layers, 301M with the embedding (the paper: 302M) — a
 * head of width 128 (as `ifp calibrate` fits) over 56 × d_ffn scores,
 * K = 6656, 512 prompt tokens.  IFP_EINVAL for an unknown shape. */
int ifp_synth_predictor_default(const char *target_shape, ifp_synth_predictor_t *p, ifp_err_t *err);

/* Parameters of a backbone: its layers, the embedding and the final norm
 * (what the paper's "302M" counts). */
uint64_t ifp_synth_backbone_params(const ifp_config_t *c);
/* Parameters of the predictor: the backbone + the head. */
uint64_t ifp_synth_predictor_params(const ifp_synth_predictor_t *p);

/* Writes a predictor GGUF (F32, random weights from p->seed; ifp.synth.seed
 * records it) that ifp_predictor_load accepts, with p->tokenizer's
 * tokenizer.ggml.* keys when set.  Needs memory for the backbone and the
 * head while writing; like ifp_synth_write_gguf it fills PATH.tmp, then
 * renames it. */
int ifp_synth_predictor_write(const ifp_synth_predictor_t *p, const char *path, ifp_err_t *err);

/* ---- a predictor for an existing model ---- */

#define IFP_SYNTH_PAPER_BACKBONE "302m" /* the default backbone size: the paper's shape */
#define IFP_SYNTH_MAX_SIZE 1e12

/* A parameter count: digits with an optional fraction and an optional k / m
 * / b (or g) suffix, any case: "302m", "30m", "1.2b", ".5m", "2000000"
 * (rounded to a whole count).  IFP_EINVAL for anything else (signs,
 * exponents, spaces), IFP_ERANGE outside 1 .. 1e12. */
int ifp_synth_parse_size(const char *s, uint64_t *out, ifp_err_t *err);

/* The backbone for a size, with the given vocabulary and context.  Every
 * backbone has the paper's proportions: heads of 64 (no GQA), d_ffn = 4
 * d_model.  size NULL or "302m" (any case): the paper's own backbone, d 1024,
 * 16 layers, 16 heads, d_ffn 4096 — 268.5M parameters in its layers, 302M
 * with the embedding of its 32000-token vocabulary (fewer with a smaller one:
 * 270.6M at 2048 tokens).  Any other size S: over d_model = 64, 128, ... 8192
 * and the one or two layer counts (1..256) nearest S at each, the backbone
 * whose ifp_synth_backbone_params count C minimizes
 *   |ln(C / S)| + 0.02 |ln((d_model / layers) / 64)|
 * (close to S first, then near the paper's 64 d_model per layer), among
 * those within 15% of S.  IFP_EINVAL / IFP_ERANGE with a message for a bad
 * size or one no backbone comes within 15% of (e.g. below the embedding). */
int ifp_synth_backbone(const char *size, int vocab, int ctx, ifp_config_t *cfg, ifp_err_t *err);

/* K for a model of FFN width d_ffn: round(d_ffn × 6656 / 24576), the paper's
 * 9B -> 3B ratio (at least 1). */
int ifp_synth_keep_default(int d_ffn);
/* Prompt tokens a predictor for a model of context model_ctx reads: min(model_ctx, 512). */
int ifp_synth_predictor_prompt(int model_ctx);

/* Reads the target's config from its GGUF and checks it can have a
 * predictor: a llama model (not itself a predictor) with a tokenizer the
 * project loads whose size is the vocabulary.  Errors name the file:
 * IFP_EUNSUPPORTED (not llama), IFP_ENOTFOUND (no tokenizer), IFP_EINVAL (a
 * predictor), IFP_EFORMAT (tokenizer size), others from the reader. */
int ifp_synth_check_target(const ifp_gguf_t *g, ifp_config_t *model, ifp_err_t *err);

/* A predictor for model: the given backbone (vocabulary = the model's,
 * ctx >= ifp_synth_predictor_prompt(model->ctx)), a head of width 128 over
 * model->n_layers × d_ffn, keep (0: ifp_synth_keep_default; else 1..d_ffn,
 * IFP_ERANGE otherwise), max_prompt = ifp_synth_predictor_prompt(model->ctx).
 * p->tokenizer is NULL: set it to the model's GGUF before writing. */
int ifp_synth_predictor_for(const ifp_config_t *model, const ifp_config_t *backbone, int keep, uint64_t seed,
                            ifp_synth_predictor_t *p, ifp_err_t *err);

#endif
