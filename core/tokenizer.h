/* tokenizer.h — SentencePiece-BPE tokenizer (as llama.cpp / llama2.c do it).
 *
 * Built from GGUF `tokenizer.ggml.*` metadata (model "llama": tokens, scores,
 * token_type, bos/eos/unknown ids, add_bos_token).  Pieces use U+2581 '▁' for
 * a space, as in GGUF; byte-fallback tokens are "<0xXX>".
 *
 * encode: optional BOS; a leading '▁' (add_dummy_prefix) when the text is
 *   non-empty; spaces -> '▁'; one symbol per UTF-8 code point (a code point
 *   with no piece becomes its byte tokens); then repeatedly merge the adjacent
 *   pair whose concatenation is a piece with the highest score (leftmost on
 *   ties) — SentencePiece BPE.
 * decode: '▁' -> ' ', byte tokens -> raw bytes, control tokens -> nothing. */
#ifndef IFP_TOKENIZER_H
#define IFP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"

/* GGUF token types */
enum {
    IFP_TOK_NORMAL = 1,
    IFP_TOK_UNKNOWN = 2,
    IFP_TOK_CONTROL = 3,
    IFP_TOK_USER_DEFINED = 4,
    IFP_TOK_UNUSED = 5,
    IFP_TOK_BYTE = 6,
};

typedef struct ifp_tokenizer ifp_tokenizer_t;

/* Builds from a GGUF's metadata (copies what it needs; g may be closed after). */
int ifp_tokenizer_from_gguf(const ifp_gguf_t *g, ifp_tokenizer_t **out, ifp_err_t *err);
/* Builds from plain arrays (pieces as UTF-8 with '▁' for space; types may be
 * NULL = all normal except "<0xXX>" = byte).  Copies everything. */
int ifp_tokenizer_new(int n_vocab, const char *const *pieces, const float *scores, const int32_t *types,
                      int bos_id, int eos_id, int unk_id, ifp_tokenizer_t **out, ifp_err_t *err);
void ifp_tokenizer_destroy(ifp_tokenizer_t **t);

int ifp_tokenizer_n_vocab(const ifp_tokenizer_t *t);
int ifp_tokenizer_bos(const ifp_tokenizer_t *t);
int ifp_tokenizer_eos(const ifp_tokenizer_t *t);
int ifp_tokenizer_add_bos(const ifp_tokenizer_t *t); /* tokenizer.ggml.add_bos_token (default 1) */

/* Encodes text (NUL-terminated UTF-8; invalid UTF-8 bytes go through byte
 * fallback).  Writes at most cap ids; returns the number of ids the full
 * encoding has (which may exceed cap: call again with a bigger buffer), or a
 * negative code.  Allocation-free apart from a scratch buffer grown on demand. */
int ifp_tokenizer_encode(ifp_tokenizer_t *t, const char *text, int add_bos, int32_t *ids, int cap);

/* The text of token `id` when it follows token `prev` (prev < 0: none):
 * '▁' -> ' ', byte tokens -> their byte, control/unknown -> "".  As in
 * llama2.c, a leading space is dropped right after BOS.  Returns a pointer
 * valid until the tokenizer is destroyed and writes its length (byte tokens
 * may be a partial UTF-8 sequence). */
const char *ifp_tokenizer_piece(const ifp_tokenizer_t *t, int prev, int id, size_t *len);

/* Decodes ids[0..n) (prev-aware as above) into buf (NUL-terminated, truncated
 * to cap-1).  Returns the full length. */
size_t ifp_tokenizer_decode(const ifp_tokenizer_t *t, const int32_t *ids, int n, char *buf, size_t cap);

/* Raw piece string of id as stored (with '▁'), NULL if out of range. */
const char *ifp_tokenizer_raw_piece(const ifp_tokenizer_t *t, int id);

#endif
