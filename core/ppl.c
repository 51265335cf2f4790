#include "ppl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"
#include "forward.h"

struct ifp_ppl {
    const ifp_model_t *m;
    ifp_ppl_params_t p;
    ifp_state_t *st;
    int words; /* 64-bit words of a layer bitset */
    /* per forward call, [max_batch] rows */
    int32_t *token, *pos, *slot;
    uint8_t *want;
    int *row_item; /* item of each row */
    const ifp_ffn_mask_t **row_mask;
    /* per slot (example of the call) */
    const ifp_mask_t **slot_src; /* [n_slots] the example's mask, NULL = dense */
    uint64_t *slot_bits;         /* [n_slots × n_layers × words] its kept channels */
    float *mask_buf;             /* [n_slots × n_layers × d_ffn] its 0/1 multipliers over the layer's channels */
    const float **mask_layers;   /* [n_slots × n_layers] */
    ifp_ffn_mask_t *ffn_mask;    /* [n_slots] */
    /* the call's union of masks: FFN weights gathered to it */
    uint64_t *uni_bits;       /* [n_layers × words] */
    int32_t *uni_kept;        /* [n_layers × d_ffn] */
    char *gathered;           /* [n_layers × ifp_compact_bytes(d_ffn)]: gate | up | down rows */
    ifp_model_t view;         /* m with its FFNs pointing into `gathered` where the union is partial */
    ifp_layer_t *view_layers; /* [n_layers] */
};

ifp_ppl_params_t ifp_ppl_default_params(void) {
    ifp_ppl_params_t p = {.max_batch = 1024, .n_slots = 16, .compact = 1, .progress = NULL, .progress_ctx = NULL};
    return p;
}

void ifp_ppl_destroy(ifp_ppl_t **ep) {
    if (!ep || !*ep) return;
    ifp_ppl_t *e = *ep;
    ifp_state_free(&e->st);
    free(e->token), free(e->pos), free(e->slot), free(e->want), free(e->row_item), free(e->row_mask);
    free(e->slot_src), free(e->slot_bits), free(e->mask_buf), free(e->mask_layers), free(e->ffn_mask);
    free(e->uni_bits), free(e->uni_kept), free(e->gathered), free(e->view_layers);
    free(e);
    *ep = NULL;
}

int ifp_ppl_new(const ifp_model_t *m, const ifp_ppl_params_t *pp, ifp_ppl_t **out, ifp_err_t *err) {
    ifp_ppl_params_t p = pp ? *pp : ifp_ppl_default_params();
    const ifp_config_t *c = &m->cfg;
    if (!m->tok_embd.data || !m->output.data || m->layer_begin != 0 || m->layer_end != c->n_layers)
        return ifp_errf(err, IFP_EINVAL, "perplexity needs the whole model (embedding, all layers, head)");
    for (int l = 0; l < c->n_layers; l++)
        if (m->layers[l].d_ffn != c->d_ffn)
            return ifp_errf(err, IFP_EINVAL, "perplexity needs uncompacted FFN weights (layer %d has %d of %d)", l,
                            m->layers[l].d_ffn, c->d_ffn);
    if (p.n_slots <= 0 || p.n_slots > 4096) return ifp_errf(err, IFP_ERANGE, "slot count %d out of range", p.n_slots);
    if (p.max_batch < c->ctx) p.max_batch = c->ctx; /* one whole example always fits */
    if (p.max_batch > 65536) return ifp_errf(err, IFP_ERANGE, "max batch %d out of range", p.max_batch);
    ifp_ppl_t *e = calloc(1, sizeof *e);
    if (!e) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    e->m = m;
    e->p = p;
    ifp_state_params_t sp = ifp_state_default_params();
    sp.n_slots = p.n_slots;
    sp.max_batch = p.max_batch;
    int rc = ifp_state_new(m, &sp, &e->st, err);
    if (rc) {
        ifp_ppl_destroy(&e);
        return rc;
    }
    e->words = (c->d_ffn + 63) / 64;
    size_t B = (size_t)p.max_batch, S = (size_t)p.n_slots, L = (size_t)c->n_layers, F = (size_t)c->d_ffn;
    size_t W = (size_t)e->words;
    int ok =
        (e->token = malloc(B * sizeof *e->token)) && (e->pos = malloc(B * sizeof *e->pos)) &&
        (e->slot = malloc(B * sizeof *e->slot)) && (e->want = malloc(B)) &&
        (e->row_item = malloc(B * sizeof *e->row_item)) && (e->row_mask = malloc(B * sizeof *e->row_mask)) &&
        (e->slot_src = malloc(S * sizeof *e->slot_src)) && (e->slot_bits = malloc(S * L * W * sizeof *e->slot_bits)) &&
        (e->mask_buf = malloc(S * L * F * sizeof *e->mask_buf)) &&
        (e->mask_layers = malloc(S * L * sizeof *e->mask_layers)) && (e->ffn_mask = malloc(S * sizeof *e->ffn_mask)) &&
        (e->uni_bits = malloc(L * W * sizeof *e->uni_bits)) && (e->uni_kept = malloc(L * F * sizeof *e->uni_kept)) &&
        (e->view_layers = malloc(L * sizeof *e->view_layers)) &&
        (!p.compact || (e->gathered = malloc(L * ifp_compact_bytes(m->ffn_type, c->dim, c->d_ffn))));
    if (!ok) {
        ifp_ppl_destroy(&e);
        return ifp_errf(err, IFP_ENOMEM, "out of memory for the perplexity batch");
    }
    for (size_t s = 0; s < S; s++) e->ffn_mask[s].layer = e->mask_layers + s * L;
    e->view = *m; /* borrows every weight of m; never freed as a model */
    e->view.layers = e->view_layers;
    e->view.gguf = NULL;
    e->view.arena = NULL;
    memcpy(e->view_layers, m->layers, L * sizeof *e->view_layers);
    *out = e;
    return IFP_OK;
}

double ifp_ppl_token_nll(const float *logits, int vocab, int target) {
    float mx = logits[0];
    for (int v = 1; v < vocab; v++)
        if (logits[v] > mx) mx = logits[v];
    double sum = 0.0; /* terms in (0, 1]: float exp, double sum */
    for (int v = 0; v < vocab; v++) sum += expf(logits[v] - mx);
    return (double)mx + log(sum) - (double)logits[target];
}

static int check_item(const ifp_ppl_t *e, const ifp_ppl_item_t *it, int i, ifp_err_t *err) {
    const ifp_config_t *c = &e->m->cfg;
    if (it->n < 0 || it->n > c->ctx)
        return ifp_errf(err, IFP_EINVAL, "example %d: length %d out of range [0, %d]", i, it->n, c->ctx);
    if (it->n_ctx < 1) return ifp_errf(err, IFP_EINVAL, "example %d: needs at least one context token", i);
    if (it->n > 0 && !it->ids) return ifp_errf(err, IFP_EINVAL, "example %d: no token ids", i);
    for (int t = 0; t < it->n; t++)
        if (it->ids[t] < 0 || it->ids[t] >= c->vocab)
            return ifp_errf(err, IFP_EINVAL, "example %d: token %d at position %d out of range [0, %d)", i, it->ids[t],
                            t, c->vocab);
    const ifp_mask_t *mk = it->mask;
    if (mk && (mk->n_layers != c->n_layers || mk->d_ffn != c->d_ffn))
        return ifp_errf(err, IFP_EINVAL, "example %d: mask shape %d×%d does not match the model's %d×%d", i,
                        mk->n_layers, mk->d_ffn, c->n_layers, c->d_ffn);
    int rc = mk ? ifp_mask_validate(mk, err) : IFP_OK;
    if (rc) ifp_err_prefix(err, "example %d", i);
    return rc;
}

/* Prepares the masks of a call whose slots [0, n_slots) hold slot_src[]:
 * per layer the union U of the slots' kept channels (every channel if a slot
 * is dense); where U is partial (and compaction is on) the layer's FFN is
 * gathered to U and each slot gets its 0/1 sub-mask over U — exact
 * mixed-mask batching at the cost of |U| channels instead of d_ffn. */
static int prepare_masks(ifp_ppl_t *e, int n_slots, ifp_err_t *err) {
    const ifp_config_t *c = &e->m->cfg;
    int L = c->n_layers, F = c->d_ffn, W = e->words, any_dense = 0;
    for (int s = 0; s < n_slots; s++) {
        const ifp_mask_t *mk = e->slot_src[s];
        if (!mk) {
            any_dense = 1;
            continue;
        }
        for (int l = 0; l < L; l++) ifp_mask_layer_bits(mk, l, e->slot_bits + ((size_t)s * L + l) * W);
    }
    for (int l = 0; l < L; l++) {
        uint64_t *u = e->uni_bits + (size_t)l * W;
        int32_t *kept = e->uni_kept + (size_t)l * F;
        memset(u, 0, (size_t)W * sizeof *u);
        for (int s = 0; s < n_slots && !any_dense; s++)
            for (int w = 0; w < W; w++) u[w] |= e->slot_bits[((size_t)s * L + l) * W + w];
        int n = 0;
        for (int j = 0; j < F; j++)
            if (any_dense || !e->p.compact || (u[j >> 6] >> (j & 63) & 1)) kept[n++] = j;
        if (n == 0) /* every mask drops the whole layer: keep its shape, all multipliers 0 */
            for (; n < F; n++) kept[n] = n;
        e->view_layers[l] = e->m->layers[l];
        if (n < F) {
            ifp_ggml_type_t t = e->m->ffn_type;
            size_t sz = (size_t)n * ifp_wtype_row_bytes(t, c->dim);
            char *g = e->gathered + (size_t)l * ifp_compact_bytes(t, c->dim, F);
            ifp_compact_gather(&e->m->ffn_src[l], c->dim, kept, n, t, g, g + sz, g + 2 * sz);
            ifp_compact_set_layer(&e->view_layers[l], t, c->dim, n, g);
        }
        /* each slot's multipliers over the layer's channels kept[0..n) */
        for (int s = 0; s < n_slots; s++) {
            const float **layers = e->mask_layers + (size_t)s * L;
            const ifp_mask_t *mk = e->slot_src[s];
            if (!mk || mk->n_kept[l] == n) { /* keeps every channel the layer holds */
                layers[l] = NULL;
                continue;
            }
            const uint64_t *bits = e->slot_bits + ((size_t)s * L + l) * W;
            float *f = e->mask_buf + ((size_t)s * L + l) * F;
            for (int j = 0; j < n; j++) f[j] = (float)(bits[kept[j] >> 6] >> (kept[j] & 63) & 1);
            layers[l] = f;
        }
    }
    return ifp_state_set_model(e->st, &e->view, err);
}

int ifp_ppl_score(ifp_ppl_t *e, const ifp_ppl_item_t *items, int n, ifp_ppl_result_t *res, ifp_err_t *err) {
    if (n < 0 || (n > 0 && (!items || !res))) return ifp_errf(err, IFP_EINVAL, "bad item list");
    for (int i = 0; i < n; i++) {
        int rc = check_item(e, &items[i], i, err);
        if (rc) return rc;
        res[i].nll = 0.0;
        res[i].n_tokens = 0;
    }
    int vocab = e->m->cfg.vocab;
    for (int i = 0; i < n;) {
        /* pack examples [i, j) into one call: rows are ids[0..n-1) of each
         * (the last token is only a target); logits rows predict ids[n_ctx..n) */
        int rows = 0, slots = 0, j = i;
        while (j < n && slots < e->p.n_slots) {
            const ifp_ppl_item_t *it = &items[j];
            if (it->n - it->n_ctx <= 0) { /* nothing to score */
                j++;
                continue;
            }
            if (rows + it->n - 1 > e->p.max_batch) break;
            e->slot_src[slots] = it->mask;
            ifp_state_reset_slot(e->st, slots);
            for (int t = 0; t < it->n - 1; t++, rows++) {
                e->token[rows] = it->ids[t];
                e->pos[rows] = t;
                e->slot[rows] = slots;
                e->row_mask[rows] = it->mask ? &e->ffn_mask[slots] : NULL;
                e->want[rows] = t >= it->n_ctx - 1;
                e->row_item[rows] = j;
            }
            slots++, j++;
        }
        if (rows > 0) {
            int rc = prepare_masks(e, slots, err);
            if (rc) return rc;
            ifp_batch_t b = {.n = rows,
                             .token = e->token,
                             .pos = e->pos,
                             .slot = e->slot,
                             .mask = e->row_mask,
                             .want_logits = e->want};
            int got = ifp_forward(e->st, &b, err);
            if (got < 0) return got;
            const float *logits = ifp_state_logits(e->st);
            int r = 0;
            for (int row = 0; row < rows; row++) {
                if (!e->want[row]) continue;
                const ifp_ppl_item_t *it = &items[e->row_item[row]];
                ifp_ppl_result_t *out = &res[e->row_item[row]];
                out->nll += ifp_ppl_token_nll(logits + (size_t)r * vocab, vocab, it->ids[e->pos[row] + 1]);
                out->n_tokens++;
                r++;
            }
        }
        i = j;
        if (e->p.progress) e->p.progress(e->p.progress_ctx, i, n);
    }
    return IFP_OK;
}

/* Encodes text (with BOS if add_bos) into a growing buffer; returns the count. */
static int encode_all(ifp_tokenizer_t *t, const char *text, int add_bos, int32_t **ids, ifp_err_t *err) {
    int cap = 256;
    for (;;) {
        int32_t *grown = realloc(*ids, (size_t)cap * sizeof **ids);
        if (!grown) return ifp_errf(err, IFP_ENOMEM, "out of memory");
        *ids = grown;
        int got = ifp_tokenizer_encode(t, text, add_bos, *ids, cap);
        if (got < 0) return ifp_errf(err, got, "cannot tokenize: %s", ifp_strerror(got));
        if (got < cap) return got; /* room left for EOS */
        cap = got + 1;
    }
}

int ifp_ppl_tokenize(ifp_tokenizer_t *t, const char *prompt, const char *response, int ctx, int32_t **ids, int *n,
                     int *n_ctx, ifp_err_t *err) {
    *ids = NULL;
    if (ctx < 1) return ifp_errf(err, IFP_EINVAL, "context %d too small", ctx);
    int np = encode_all(t, prompt, 1, ids, err);
    if (np < 0) goto fail;
    if (!response || !*response) {
        *n = *n_ctx = np < ctx ? np : ctx;
        return IFP_OK;
    }
    size_t lp = strlen(prompt), lr = strlen(response);
    char *joined = malloc(lp + lr + 1);
    if (!joined) {
        np = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(joined, prompt, lp);
    memcpy(joined + lp, response, lr + 1);
    int nj = encode_all(t, joined, 1, ids, err);
    free(joined);
    if (nj < 0) {
        np = nj;
        goto fail;
    }
    (*ids)[nj++] = ifp_tokenizer_eos(t);
    *n = nj < ctx ? nj : ctx;
    *n_ctx = np;
    return IFP_OK;
fail:
    free(*ids);
    *ids = NULL;
    return np;
}
