/* tokenizer.c — SentencePiece BPE with byte fallback (see tokenizer.h).
 *
 * Load time: every piece is copied into one arena, a hash table maps piece
 * text -> id, the 256 byte-fallback ids are resolved once, and the decoded
 * text of every token ('▁' -> ' ', "<0xXX>" -> the byte, control -> "") is
 * precomputed so ifp_tokenizer_piece() is a lookup.
 *
 * Encode (what sentencepiece's bpe_model.cc does):
 *   1. normalise: a '▁' prefix (add_dummy_prefix) and every ' ' -> '▁';
 *   2. one symbol per UTF-8 code point (an invalid byte is a symbol of its
 *      own that is frozen: it never merges and always becomes a byte token);
 *   3. all adjacent pairs whose concatenation is a mergeable piece go into a
 *      max-heap keyed by (score, leftmost); pop the best pair, skip it if
 *      stale, merge right into left, push the two new neighbour pairs;
 *   4. each final symbol that is a piece becomes its id, any other symbol
 *      becomes the byte tokens of its bytes (unk when a byte piece is absent).
 * Symbols form a doubly linked list over a scratch array; the heap holds at
 * most 3n entries (n-1 initial pairs + 2 per merge), so one sizing per call
 * suffices.  The tokenizer is not thread-safe: encode uses its scratch. */
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOK_SPACE "\xE2\x96\x81" /* U+2581 '▁' */
#define TOK_SPACE_LEN 3
#define TOK_MAX_VOCAB (1 << 24)

typedef struct {
    int32_t start; /* byte offset into the normalised text */
    int32_t len;   /* byte length; 0 = merged away */
    int32_t prev;  /* -1 = none */
    int32_t next;  /* -1 = none */
    int32_t frozen;/* invalid UTF-8 byte: never merges */
} tok_sym_t;

typedef struct {
    float score;   /* score of the merged piece */
    int32_t left;  /* symbol indices */
    int32_t right;
    int32_t size;  /* len(left) + len(right) when pushed (staleness check) */
} tok_pair_t;

struct ifp_tokenizer {
    int n_vocab;
    int bos_id, eos_id, unk_id, add_bos;
    char *raw;          /* all raw pieces, each NUL-terminated */
    uint32_t *raw_off;  /* (n_vocab) */
    uint32_t *raw_len;  /* (n_vocab) */
    float *scores;      /* (n_vocab) */
    int32_t *types;     /* (n_vocab) */
    char *dec;          /* decoded pieces, each NUL-terminated */
    uint32_t *dec_off;  /* (n_vocab) */
    uint32_t *dec_len;  /* (n_vocab) */
    int32_t *hash;      /* (hash_mask+1) open-addressing slots: id or -1 */
    uint32_t hash_mask;
    int32_t byte_id[256];
    /* encode scratch, grown on demand */
    char *norm;
    tok_sym_t *sym;
    tok_pair_t *heap;
    size_t scratch_cap; /* capacity in normalised bytes (sym: cap, heap: 3*cap) */
};

/* ---- helpers ---- */

static uint32_t tok_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int tok_lookup(const ifp_tokenizer_t *t, const char *s, size_t n) {
    uint32_t i = tok_hash(s, n) & t->hash_mask;
    for (;;) {
        int32_t id = t->hash[i];
        if (id < 0) return -1;
        if (t->raw_len[id] == n && memcmp(t->raw + t->raw_off[id], s, n) == 0) return id;
        i = (i + 1) & t->hash_mask;
    }
}

/* Pieces that BPE may produce: sentencepiece keeps control, unknown and
 * byte pieces out of its merge table. */
static int tok_mergeable(const ifp_tokenizer_t *t, int id) {
    int ty = t->types[id];
    return ty != IFP_TOK_CONTROL && ty != IFP_TOK_UNKNOWN && ty != IFP_TOK_BYTE && ty != IFP_TOK_UNUSED;
}

static int tok_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xXX>" -> 0..255, else -1. */
static int tok_parse_byte(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int hi = tok_hexval(s[3]), lo = tok_hexval(s[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid
 * (bad lead, truncated, bad continuation, overlong or surrogate). */
static int tok_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if ((size_t)len > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* ---- build / destroy ---- */

void ifp_tokenizer_destroy(ifp_tokenizer_t **tp) {
    if (!tp || !*tp) return;
    ifp_tokenizer_t *t = *tp;
    free(t->raw);
    free(t->raw_off);
    free(t->raw_len);
    free(t->scores);
    free(t->types);
    free(t->dec);
    free(t->dec_off);
    free(t->dec_len);
    free(t->hash);
    free(t->norm);
    free(t->sym);
    free(t->heap);
    free(t);
    *tp = NULL;
}

/* Decoded text of piece id written to dst (which has room for raw_len
 * bytes); returns its length. */
static uint32_t tok_decode_piece(const ifp_tokenizer_t *t, int id, char *dst) {
    const char *s = t->raw + t->raw_off[id];
    uint32_t n = t->raw_len[id], o = 0;
    int ty = t->types[id];
    if (ty == IFP_TOK_CONTROL || ty == IFP_TOK_UNKNOWN) return 0;
    if (ty == IFP_TOK_BYTE) {
        dst[0] = (char)tok_parse_byte(s, n); /* validated at build */
        return 1;
    }
    for (uint32_t i = 0; i < n;) {
        if (n - i >= TOK_SPACE_LEN && memcmp(s + i, TOK_SPACE, TOK_SPACE_LEN) == 0) {
            dst[o++] = ' ';
            i += TOK_SPACE_LEN;
        } else {
            dst[o++] = s[i++];
        }
    }
    return o;
}

/* Common builder: pieces given as (pointer, length) pairs; types NULL =
 * normal except "<0xXX>" = byte. */
static int tok_build(int n, const char *const *ptrs, const size_t *lens, const float *scores,
                     const int32_t *types, int bos_id, int eos_id, int unk_id, int add_bos,
                     ifp_tokenizer_t **out, ifp_err_t *err) {
    *out = NULL;
    if (n <= 0 || n > TOK_MAX_VOCAB)
        return ifp_errf(err, IFP_ERANGE, "tokenizer: vocab size %d out of range [1, %d]", n, TOK_MAX_VOCAB);
    if (bos_id < -1 || bos_id >= n || eos_id < -1 || eos_id >= n || unk_id < 0 || unk_id >= n)
        return ifp_errf(err, IFP_ERANGE, "tokenizer: special ids bos=%d eos=%d unk=%d out of range for vocab %d",
                        bos_id, eos_id, unk_id, n);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!ptrs[i] && lens[i]) return ifp_errf(err, IFP_EINVAL, "tokenizer: piece %d is NULL", i);
        total += lens[i] + 1;
        if (lens[i] > UINT32_MAX / 2 || total > UINT32_MAX / 2)
            return ifp_errf(err, IFP_ERANGE, "tokenizer: pieces too large (%zu bytes at piece %d)", total, i);
    }

    ifp_tokenizer_t *t = calloc(1, sizeof *t);
    if (!t) return ifp_errf(err, IFP_ENOMEM, "tokenizer: out of memory");
    t->n_vocab = n;
    t->bos_id = bos_id;
    t->eos_id = eos_id;
    t->unk_id = unk_id;
    t->add_bos = add_bos;
    uint32_t hsize = 16;
    while (hsize < 2u * (uint32_t)n) hsize <<= 1;
    t->hash_mask = hsize - 1;
    t->raw = malloc(total);
    t->dec = malloc(total);
    t->raw_off = malloc(n * sizeof *t->raw_off);
    t->raw_len = malloc(n * sizeof *t->raw_len);
    t->dec_off = malloc(n * sizeof *t->dec_off);
    t->dec_len = malloc(n * sizeof *t->dec_len);
    t->scores = malloc(n * sizeof *t->scores);
    t->types = malloc(n * sizeof *t->types);
    t->hash = malloc(hsize * sizeof *t->hash);
    if (!t->raw || !t->dec || !t->raw_off || !t->raw_len || !t->dec_off || !t->dec_len || !t->scores ||
        !t->types || !t->hash) {
        ifp_tokenizer_destroy(&t);
        return ifp_errf(err, IFP_ENOMEM, "tokenizer: out of memory for %d pieces", n);
    }

    uint32_t off = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i]) memcpy(t->raw + off, ptrs[i], lens[i]);
        t->raw[off + lens[i]] = '\0';
        t->raw_off[i] = off;
        t->raw_len[i] = (uint32_t)lens[i];
        off += (uint32_t)lens[i] + 1;
        /* a NaN score would make the heap order inconsistent */
        t->scores[i] = isnan(scores[i]) ? -INFINITY : scores[i];
        if (types) {
            t->types[i] = types[i];
            if (types[i] == IFP_TOK_BYTE && tok_parse_byte(ptrs[i], lens[i]) < 0) {
                ifp_tokenizer_destroy(&t);
                return ifp_errf(err, IFP_EFORMAT, "tokenizer: token %d has type byte but piece is not <0xXX>", i);
            }
        } else {
            t->types[i] = tok_parse_byte(ptrs[i], lens[i]) >= 0 ? IFP_TOK_BYTE : IFP_TOK_NORMAL;
        }
    }

    /* hash: the first id of a duplicated piece wins; empty pieces never match */
    memset(t->hash, 0xFF, hsize * sizeof *t->hash);
    for (int i = 0; i < n; i++) {
        if (t->raw_len[i] == 0) continue;
        const char *s = t->raw + t->raw_off[i];
        if (tok_lookup(t, s, t->raw_len[i]) >= 0) continue;
        uint32_t h = tok_hash(s, t->raw_len[i]) & t->hash_mask;
        while (t->hash[h] >= 0) h = (h + 1) & t->hash_mask;
        t->hash[h] = i;
    }

    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', '\0'};
        int id = tok_lookup(t, name, 6);
        t->byte_id[b] = id >= 0 ? id : unk_id;
    }

    off = 0;
    for (int i = 0; i < n; i++) {
        uint32_t len = tok_decode_piece(t, i, t->dec + off);
        t->dec[off + len] = '\0';
        t->dec_off[i] = off;
        t->dec_len[i] = len;
        off += len + 1;
    }
    *out = t;
    return IFP_OK;
}

int ifp_tokenizer_new(int n_vocab, const char *const *pieces, const float *scores, const int32_t *types,
                      int bos_id, int eos_id, int unk_id, ifp_tokenizer_t **out, ifp_err_t *err) {
    if (!out) return ifp_errf(err, IFP_EINVAL, "tokenizer: out is NULL");
    *out = NULL;
    if (!pieces || !scores) return ifp_errf(err, IFP_EINVAL, "tokenizer: pieces and scores are required");
    if (n_vocab <= 0 || n_vocab > TOK_MAX_VOCAB)
        return ifp_errf(err, IFP_ERANGE, "tokenizer: vocab size %d out of range [1, %d]", n_vocab, TOK_MAX_VOCAB);
    size_t *lens = malloc((size_t)n_vocab * sizeof *lens);
    if (!lens) return ifp_errf(err, IFP_ENOMEM, "tokenizer: out of memory");
    for (int i = 0; i < n_vocab; i++) lens[i] = pieces[i] ? strlen(pieces[i]) : 0;
    int rc = tok_build(n_vocab, pieces, lens, scores, types, bos_id, eos_id, unk_id, 1, out, err);
    free(lens);
    return rc;
}

/* Adds context to a gguf getter's message; returns rc (even when err is NULL). */
static int tok_fail(ifp_err_t *err, int rc) {
    ifp_err_prefix(err, "tokenizer");
    return rc;
}

/* Optional integer key: def when absent; error if present but bad. */
static int tok_opt_id(const ifp_gguf_t *g, const char *key, int def, int *out, ifp_err_t *err) {
    int64_t v;
    *out = def;
    if (!ifp_gguf_find(g, key)) return IFP_OK;
    int rc = ifp_gguf_get_i64(g, key, &v, err);
    if (rc) return rc;
    if (v < -1 || v > TOK_MAX_VOCAB) return ifp_errf(err, IFP_ERANGE, "%s = %lld out of range", key, (long long)v);
    *out = (int)v;
    return IFP_OK;
}

int ifp_tokenizer_from_gguf(const ifp_gguf_t *g, ifp_tokenizer_t **out, ifp_err_t *err) {
    if (!out) return ifp_errf(err, IFP_EINVAL, "tokenizer: out is NULL");
    *out = NULL;
    if (!g) return ifp_errf(err, IFP_EINVAL, "tokenizer: gguf is NULL");
    char *model = NULL;
    int rc = ifp_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc) return tok_fail(err, rc);
    if (strcmp(model, "llama") != 0) {
        rc = ifp_errf(err, IFP_EUNSUPPORTED,
                      "tokenizer: tokenizer.ggml.model is \"%s\"; only \"llama\" (SentencePiece BPE) is supported",
                      model);
        free(model);
        return rc;
    }
    free(model);

    const ifp_gguf_kv_t *tok_kv = NULL, *score_kv = NULL, *type_kv = NULL;
    rc = ifp_gguf_get_arr(g, "tokenizer.ggml.tokens", IFP_GGUF_STRING, 0, &tok_kv, err);
    if (rc) return tok_fail(err, rc);
    uint64_t n = tok_kv->arr_n;
    if (n == 0 || n > TOK_MAX_VOCAB)
        return ifp_errf(err, IFP_ERANGE, "tokenizer: tokenizer.ggml.tokens has %llu entries (want 1..%d)",
                        (unsigned long long)n, TOK_MAX_VOCAB);
    rc = ifp_gguf_get_arr(g, "tokenizer.ggml.scores", IFP_GGUF_FLOAT32, n, &score_kv, err);
    if (rc) return tok_fail(err, rc);
    if (ifp_gguf_find(g, "tokenizer.ggml.token_type")) {
        rc = ifp_gguf_get_arr(g, "tokenizer.ggml.token_type", IFP_GGUF_INT32, n, &type_kv, err);
        if (rc) return tok_fail(err, rc);
    }
    int bos, eos, unk, add_bos = 1;
    if ((rc = tok_opt_id(g, "tokenizer.ggml.bos_token_id", 1, &bos, err)) ||
        (rc = tok_opt_id(g, "tokenizer.ggml.eos_token_id", 2, &eos, err)) ||
        (rc = tok_opt_id(g, "tokenizer.ggml.unknown_token_id", 0, &unk, err)))
        return tok_fail(err, rc);
    if (ifp_gguf_find(g, "tokenizer.ggml.add_bos_token") &&
        (rc = ifp_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, err)))
        return tok_fail(err, rc);

    const char **ptrs = malloc(n * sizeof *ptrs);
    size_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = type_kv ? malloc(n * sizeof *types) : NULL;
    if (!ptrs || !lens || !scores || (type_kv && !types)) {
        rc = ifp_errf(err, IFP_ENOMEM, "tokenizer: out of memory");
    } else {
        for (uint64_t i = 0; i < n; i++) {
            ptrs[i] = tok_kv->arr_str[i].ptr;
            lens[i] = (size_t)tok_kv->arr_str[i].len;
            scores[i] = (float)ifp_gguf_arr_num(score_kv, i);
            if (types) types[i] = (int32_t)ifp_gguf_arr_num(type_kv, i);
        }
        rc = tok_build((int)n, ptrs, lens, scores, types, bos, eos, unk, add_bos != 0, out, err);
    }
    free(ptrs);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

int ifp_tokenizer_n_vocab(const ifp_tokenizer_t *t) { return t->n_vocab; }
int ifp_tokenizer_bos(const ifp_tokenizer_t *t) { return t->bos_id; }
int ifp_tokenizer_eos(const ifp_tokenizer_t *t) { return t->eos_id; }
int ifp_tokenizer_add_bos(const ifp_tokenizer_t *t) { return t->add_bos; }

/* ---- encode ---- */

/* Ensures scratch for `need` normalised bytes. */
static int tok_reserve(ifp_tokenizer_t *t, size_t need) {
    if (need <= t->scratch_cap) return IFP_OK;
    size_t cap = t->scratch_cap ? t->scratch_cap : 256;
    while (cap < need) cap *= 2;
    char *norm = realloc(t->norm, cap);
    if (!norm) return IFP_ENOMEM;
    t->norm = norm;
    tok_sym_t *sym = realloc(t->sym, cap * sizeof *sym);
    if (!sym) return IFP_ENOMEM;
    t->sym = sym;
    tok_pair_t *heap = realloc(t->heap, 3 * cap * sizeof *heap);
    if (!heap) return IFP_ENOMEM;
    t->heap = heap;
    t->scratch_cap = cap;
    return IFP_OK;
}

/* a ranks above b: higher score, then the leftmost pair. */
static int tok_pair_above(const tok_pair_t *a, const tok_pair_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void tok_heap_push(tok_pair_t *heap, int *n, tok_pair_t p) {
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!tok_pair_above(&p, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = p;
}

static tok_pair_t tok_heap_pop(tok_pair_t *heap, int *n) {
    tok_pair_t top = heap[0], last = heap[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_pair_above(&heap[c + 1], &heap[c])) c++;
        if (!tok_pair_above(&heap[c], &last)) break;
        heap[i] = heap[c];
        i = c;
    }
    if (*n > 0) heap[i] = last;
    return top;
}

/* Pushes the pair (l, r) if their concatenation is a mergeable piece. */
static void tok_try_pair(const ifp_tokenizer_t *t, int l, int r, tok_pair_t *heap, int *nheap) {
    if (l < 0 || r < 0) return;
    const tok_sym_t *a = &t->sym[l], *b = &t->sym[r];
    if (a->frozen || b->frozen) return;
    int id = tok_lookup(t, t->norm + a->start, (size_t)(a->len + b->len));
    if (id < 0 || !tok_mergeable(t, id)) return;
    tok_pair_t p = {t->scores[id], l, r, a->len + b->len};
    tok_heap_push(heap, nheap, p);
}

static inline void tok_emit(int32_t *ids, int cap, int *n, int id) {
    if (*n < cap) ids[*n] = id;
    (*n)++;
}

int ifp_tokenizer_encode(ifp_tokenizer_t *t, const char *text, int add_bos, int32_t *ids, int cap) {
    if (!t || !text || cap < 0 || (cap > 0 && !ids)) return IFP_EINVAL;
    int n_out = 0;
    if (add_bos && t->bos_id >= 0) tok_emit(ids, cap, &n_out, t->bos_id);
    size_t tlen = strlen(text);
    if (tlen == 0) return n_out;
    if (tlen > (size_t)(INT32_MAX / 4 - TOK_SPACE_LEN)) return IFP_ERANGE; /* ids would not fit in int */
    if (tok_reserve(t, TOK_SPACE_LEN * (tlen + 1))) return IFP_ENOMEM;

    /* 1. normalise */
    char *norm = t->norm;
    size_t nlen = 0;
    memcpy(norm, TOK_SPACE, TOK_SPACE_LEN);
    nlen = TOK_SPACE_LEN;
    for (size_t i = 0; i < tlen; i++) {
        if (text[i] == ' ') {
            memcpy(norm + nlen, TOK_SPACE, TOK_SPACE_LEN);
            nlen += TOK_SPACE_LEN;
        } else {
            norm[nlen++] = text[i];
        }
    }

    /* 2. one symbol per code point */
    tok_sym_t *sym = t->sym;
    int nsym = 0;
    for (size_t i = 0; i < nlen;) {
        int len = tok_utf8_len((const unsigned char *)norm + i, nlen - i);
        tok_sym_t s = {(int32_t)i, len ? len : 1, nsym - 1, nsym + 1, len == 0};
        sym[nsym++] = s;
        i += (size_t)s.len;
    }
    sym[nsym - 1].next = -1;

    /* 3. merge the best pair until none is left */
    int nheap = 0;
    for (int i = 1; i < nsym; i++) tok_try_pair(t, i - 1, i, t->heap, &nheap);
    while (nheap > 0) {
        tok_pair_t p = tok_heap_pop(t->heap, &nheap);
        tok_sym_t *l = &sym[p.left], *r = &sym[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.size) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        tok_try_pair(t, l->prev, p.left, t->heap, &nheap);
        tok_try_pair(t, p.left, l->next, t->heap, &nheap);
    }

    /* 4. symbols -> ids (symbol 0 is always the head: merges absorb right into left) */
    for (int i = 0; i >= 0; i = sym[i].next) {
        const tok_sym_t *s = &sym[i];
        int id = s->frozen ? -1 : tok_lookup(t, norm + s->start, (size_t)s->len);
        if (id >= 0 && tok_mergeable(t, id)) {
            tok_emit(ids, cap, &n_out, id);
        } else {
            for (int k = 0; k < s->len; k++)
                tok_emit(ids, cap, &n_out, t->byte_id[(unsigned char)norm[s->start + k]]);
        }
    }
    return n_out;
}

/* ---- decode ---- */

const char *ifp_tokenizer_piece(const ifp_tokenizer_t *t, int prev, int id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return "";
    }
    const char *s = t->dec + t->dec_off[id];
    size_t n = t->dec_len[id];
    /* llama2.c: the dummy-prefix space is dropped right after BOS */
    if (prev >= 0 && prev == t->bos_id && t->types[id] != IFP_TOK_BYTE && n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    if (len) *len = n;
    return s;
}

size_t ifp_tokenizer_decode(const ifp_tokenizer_t *t, const int32_t *ids, int n, char *buf, size_t cap) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *s = ifp_tokenizer_piece(t, i > 0 ? ids[i - 1] : -1, ids[i], &len);
        if (total < cap) {
            size_t room = cap - 1 - total;
            memcpy(buf + total, s, len < room ? len : room);
        }
        total += len;
    }
    if (cap > 0) buf[total < cap ? total : cap - 1] = '\0';
    return total;
}

const char *ifp_tokenizer_raw_piece(const ifp_tokenizer_t *t, int id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->raw + t->raw_off[id];
}
