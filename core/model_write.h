/* model_write.h — a whole model written as a llama GGUF file, matrices in a
 * chosen weight type (the quantizer and `ifp synth -o` use it).
 *
 * Matrices are converted from the type the model holds (F32 gives one
 * rounding; converting a held BF16/Q8_0 model rounds again).  Norms stay
 * F32.  The down projection is written in llama's layout (ffn_down, ne =
 * [d_ffn, dim]: other engines load it) unless the type is Q8_0, which is
 * written channel-major (ffn_down_t, ne = [dim, d_ffn]: ifp gathers a
 * channel's row without re-quantizing); down_llama = 1 forces llama's
 * layout for Q8_0 too (blocks along d_ffn, which must be a multiple of 32). */
#ifndef IFP_MODEL_WRITE_H
#define IFP_MODEL_WRITE_H

#include "err.h"
#include "gguf.h"
#include "model.h"

typedef struct {
    int wtype;              /* IFP_WTYPE_ASIS (default: as held) or an ifp_ggml_type_t */
    int down_llama;         /* see above; default 0 */
    const ifp_gguf_t *meta; /* copy every key of this file first (tokenizer...), or NULL */
    const char *name;       /* general.name (default: kept from meta, else "ifp") */
    /* more keys, written after meta's (may be NULL); returns 0 or a code */
    int (*add_keys)(ifp_gguf_writer_t *w, void *ctx);
    void *keys_ctx;
    /* more tensors, added after the model's (may be NULL; data borrowed until the write) */
    int (*add_tensors)(ifp_gguf_writer_t *w, void *ctx);
    int headless; /* 1: the model holds no head (no output_norm / output written) */
    /* progress: called after each tensor with bytes written so far / total (may be NULL) */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} ifp_model_write_params_t;

ifp_model_write_params_t ifp_model_write_default_params(void);

/* Tensor data bytes the file will hold. */
uint64_t ifp_model_write_bytes(const ifp_model_t *m, const ifp_model_write_params_t *p);

/* Writes m (every layer, the embedding and the head; FFNs uncompacted).
 * Errors name the path and the problem. */
int ifp_model_write_gguf(const ifp_model_t *m, const char *path, const ifp_model_write_params_t *p, ifp_err_t *err);

#endif
