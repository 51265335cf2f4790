#include "predictor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "gguf.h"
#include "kernels.h"

#define PRED_FEATURE "last_token_final_norm"
#define PRED_ACTIVATION "silu"
#define PRED_MAX_CHUNK 512 /* prefill rows per forward call */

/* Weights (bb, the head pointers, owned) belong to the loaded handle; a fork
 * (is_fork) borrows them and owns only its run state (st and the scratch). */
struct ifp_predictor {
    ifp_model_t *bb;       /* backbone: embedding + layers, no output head */
    ifp_state_t *st;       /* 1 slot, ctx = max_prompt, max_batch = chunk */
    const float *out_norm; /* (dim) final RMSNorm weight: the feature norm */
    const float *fc1_w;    /* (hidden, dim) */
    const float *fc1_b;    /* (hidden) */
    const float *fc2_w;    /* (n_layers * d_ffn, hidden) */
    const float *fc2_b;    /* (n_layers * d_ffn) */
    int n_layers, d_ffn;   /* target model */
    int keep, max_prompt, hidden, chunk;
    int32_t *pos, *slot;   /* [chunk] batch scratch */
    float *feat;           /* (dim) f = output_norm(h_last) */
    float *act;            /* (hidden) silu(fc1 f + b1) */
    float *scores;         /* (n_layers * d_ffn) scratch for the mask calls */
    int32_t *ids;          /* [max_prompt] tokenized text */
    float *owned[5];       /* head tensors converted from F16/BF16 */
    int n_owned;
    int is_fork;           /* 1: bb, the head and owned are another handle's */
};

/* ---- loading ---- */

/* Optional u32 key in [lo, hi]: *out keeps dflt when absent (dflt < 0: required). */
static int key_int(const ifp_gguf_t *g, const char *key, int dflt, int lo, int hi, int *out, ifp_err_t *err) {
    if (!ifp_gguf_find(g, key)) {
        if (dflt < 0)
            return ifp_errf(err, IFP_ENOTFOUND, "%s: not a predictor: missing required key %s", ifp_gguf_path(g), key);
        *out = dflt;
        return IFP_OK;
    }
    int64_t v;
    int rc = ifp_gguf_get_i64(g, key, &v, err);
    if (rc) return rc;
    if (v < lo || v > hi)
        return ifp_errf(err, IFP_ERANGE, "%s: %s = %lld out of range [%d, %d]", ifp_gguf_path(g), key, (long long)v,
                        lo, hi);
    *out = (int)v;
    return IFP_OK;
}

/* Optional string key that must equal want when present. */
static int key_str_is(const ifp_gguf_t *g, const char *key, const char *want, ifp_err_t *err) {
    if (!ifp_gguf_find(g, key)) return IFP_OK;
    char *v = NULL;
    int rc = ifp_gguf_get_str(g, key, &v, err);
    if (rc) return rc;
    if (strcmp(v, want) != 0)
        rc = ifp_errf(err, IFP_EUNSUPPORTED, "%s: %s is \"%s\"; only \"%s\" is supported", ifp_gguf_path(g), key, v,
                      want);
    free(v);
    return rc;
}

/* Head / norm tensor `name` with ne = [ne0] (ne1 == 0) or [ne0, ne1]; f32
 * data in place when possible, else converted into a predictor-owned copy. */
static int head_tensor(ifp_predictor_t *p, const char *name, uint64_t ne0, uint64_t ne1, const char *why,
                       const float **out, ifp_err_t *err) {
    const ifp_gguf_t *g = p->bb->gguf;
    const ifp_gguf_tensor_t *t = ifp_gguf_find_tensor(g, name);
    if (!t) return ifp_errf(err, IFP_ENOTFOUND, "%s: missing required tensor %s", ifp_gguf_path(g), name);
    uint32_t nd = ne1 ? 2 : 1;
    if (t->n_dims != nd || t->ne[0] != ne0 || (nd == 2 && t->ne[1] != ne1)) {
        char have[96];
        int k = snprintf(have, sizeof have, "[%llu", (unsigned long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && k > 0 && (size_t)k < sizeof have; d++)
            k += snprintf(have + k, sizeof have - (size_t)k, ", %llu", (unsigned long long)t->ne[d]);
        if (k > 0 && (size_t)k < sizeof have) snprintf(have + k, sizeof have - (size_t)k, "]");
        if (nd == 1)
            return ifp_errf(err, IFP_EFORMAT, "%s: tensor %s has shape %s, expected [%llu] (%s)", ifp_gguf_path(g),
                            name, have, (unsigned long long)ne0, why);
        return ifp_errf(err, IFP_EFORMAT, "%s: tensor %s has shape %s, expected [%llu, %llu] (%s)", ifp_gguf_path(g),
                        name, have, (unsigned long long)ne0, (unsigned long long)ne1, why);
    }
    if (t->type == IFP_GGML_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = t->data;
        return IFP_OK;
    }
    float *buf = malloc(t->n_elements * sizeof *buf);
    if (!buf) return ifp_errf(err, IFP_ENOMEM, "out of memory converting %s", name);
    p->owned[p->n_owned++] = buf; /* at most 5 calls per load */
    int rc = ifp_gguf_tensor_read_f32(t, 0, t->n_elements, buf, err);
    if (rc) return rc;
    *out = buf;
    return IFP_OK;
}

static int load_head(ifp_predictor_t *p, ifp_err_t *err) {
    const ifp_gguf_t *g = p->bb->gguf;
    int dim = p->bb->cfg.dim, rc;
    /* hidden: the head_hidden key when present, else fc1's row count (its
     * shape is then checked against dim and hidden below) */
    const ifp_gguf_tensor_t *fc1 = ifp_gguf_find_tensor(g, "ifp.head.fc1.weight");
    int dflt = fc1 && fc1->n_dims == 2 && fc1->ne[1] >= 1 && fc1->ne[1] <= (1u << 20) ? (int)fc1->ne[1] : 1;
    if ((rc = key_int(g, "ifp.predictor.head_hidden", dflt, 1, 1 << 20, &p->hidden, err))) return rc;
    uint64_t H = (uint64_t)p->hidden, S = (uint64_t)p->n_layers * (uint64_t)p->d_ffn;
    char why[160];
    snprintf(why, sizeof why, "backbone dim %d -> head hidden %d", dim, p->hidden);
    if ((rc = head_tensor(p, "ifp.head.fc1.weight", (uint64_t)dim, H, why, &p->fc1_w, err)) ||
        (rc = head_tensor(p, "ifp.head.fc1.bias", H, 0, "one per head hidden unit", &p->fc1_b, err)))
        return rc;
    snprintf(why, sizeof why, "head hidden %d -> target %d layers x %d channels", p->hidden, p->n_layers, p->d_ffn);
    if ((rc = head_tensor(p, "ifp.head.fc2.weight", H, S, why, &p->fc2_w, err)) ||
        (rc = head_tensor(p, "ifp.head.fc2.bias", S, 0, why, &p->fc2_b, err)))
        return rc;
    snprintf(why, sizeof why, "backbone dim %d", dim);
    return head_tensor(p, "output_norm.weight", (uint64_t)dim, 0, why, &p->out_norm, err);
}

/* The ifp.predictor.* keys that do not depend on the backbone's weights. */
static int load_keys(ifp_predictor_t *p, const ifp_gguf_t *g, const ifp_config_t *bc, ifp_err_t *err) {
    int rc;
    if ((rc = key_int(g, "ifp.predictor.target_block_count", -1, 1, 4096, &p->n_layers, err)) ||
        (rc = key_int(g, "ifp.predictor.target_feed_forward_length", -1, 1, 1 << 22, &p->d_ffn, err)) ||
        (rc = key_int(g, "ifp.predictor.keep", -1, 1, p->d_ffn, &p->keep, err)) ||
        (rc = key_int(g, "ifp.predictor.max_prompt_tokens", bc->ctx, 1, bc->ctx, &p->max_prompt, err)) ||
        (rc = key_str_is(g, "ifp.predictor.feature", PRED_FEATURE, err)) ||
        (rc = key_str_is(g, "ifp.predictor.head_activation", PRED_ACTIVATION, err)))
        return rc;
    if ((int64_t)p->n_layers * p->d_ffn > (1 << 24))
        return ifp_errf(err, IFP_ERANGE, "%s: target %d layers x %d channels is too large", ifp_gguf_path(g),
                        p->n_layers, p->d_ffn);
    return IFP_OK;
}

/* Adds "PATH: predictor backbone: " to a backbone error unless the message
 * already names the file. */
static void backbone_err(ifp_err_t *err, const char *path) {
    if (err && strncmp(err->msg, path, strlen(path)) != 0) ifp_err_prefix(err, "%s: predictor backbone", path);
}

/* The run state of a handle over its (own or borrowed) weights: a KV cache of
 * max_prompt positions, activations for chunk rows, and the scratch. */
static int run_state_new(ifp_predictor_t *p, ifp_err_t *err) {
    ifp_state_params_t sp = {.n_slots = 1, .max_batch = p->chunk, .ctx = p->max_prompt};
    int rc = ifp_state_new(p->bb, &sp, &p->st, err);
    if (rc) return rc;
    size_t S = (size_t)p->n_layers * (size_t)p->d_ffn;
    p->pos = malloc((size_t)p->chunk * sizeof *p->pos);
    p->slot = calloc((size_t)p->chunk, sizeof *p->slot);
    p->feat = malloc((size_t)p->bb->cfg.dim * sizeof *p->feat);
    p->act = malloc((size_t)p->hidden * sizeof *p->act);
    p->scores = malloc(S * sizeof *p->scores);
    p->ids = malloc((size_t)p->max_prompt * sizeof *p->ids);
    if (!p->pos || !p->slot || !p->feat || !p->act || !p->scores || !p->ids)
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    return IFP_OK;
}

int ifp_predictor_load(const char *path, ifp_predictor_t **out, ifp_err_t *err) {
    return ifp_predictor_load_typed(path, IFP_WTYPE_ASIS, out, err);
}

int ifp_predictor_load_typed(const char *path, int wtype, ifp_predictor_t **out, ifp_err_t *err) {
    ifp_gguf_t *g = NULL;
    int rc = ifp_gguf_open(path, &g, err);
    if (rc) return rc;
    ifp_predictor_t *p = calloc(1, sizeof *p);
    if (!p) {
        ifp_gguf_close(&g);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    ifp_config_t bc;
    if ((rc = ifp_config_from_gguf(g, &bc, err))) {
        backbone_err(err, path);
        goto fail;
    }
    if ((rc = load_keys(p, g, &bc, err))) goto fail;
    /* the backbone: embedding and layers; the feature norm is read with the
     * head (its output matrix is not used) */
    ifp_model_params_t mp = ifp_model_default_params();
    mp.load_head = 0;
    mp.wtype = wtype;
    if ((rc = ifp_model_from_gguf(&g, &mp, &p->bb, err))) {
        backbone_err(err, path);
        goto fail;
    }
    if ((rc = load_head(p, err))) goto fail;
    p->chunk = p->max_prompt < PRED_MAX_CHUNK ? p->max_prompt : PRED_MAX_CHUNK;
    if ((rc = run_state_new(p, err))) goto fail;
    *out = p;
    return IFP_OK;
fail:
    ifp_gguf_close(&g);
    ifp_predictor_destroy(&p);
    return rc;
}

int ifp_predictor_fork(const ifp_predictor_t *p, ifp_predictor_t **out, ifp_err_t *err) {
    if (!p || !out) return ifp_errf(err, IFP_EINVAL, "predictor fork: no predictor");
    *out = NULL;
    ifp_predictor_t *f = malloc(sizeof *f);
    if (!f) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    *f = *p; /* the weights and sizes; the run state is replaced below */
    f->is_fork = 1;
    f->n_owned = 0;
    memset(f->owned, 0, sizeof f->owned);
    f->st = NULL, f->pos = f->slot = f->ids = NULL, f->feat = f->act = f->scores = NULL;
    int rc = run_state_new(f, err);
    if (rc) {
        ifp_predictor_destroy(&f);
        return rc;
    }
    *out = f;
    return IFP_OK;
}

void ifp_predictor_destroy(ifp_predictor_t **pp) {
    if (!pp || !*pp) return;
    ifp_predictor_t *p = *pp;
    ifp_state_free(&p->st);
    if (!p->is_fork) {
        for (int i = 0; i < p->n_owned; i++) free(p->owned[i]);
        ifp_model_free(&p->bb);
    }
    free(p->pos), free(p->slot), free(p->feat), free(p->act), free(p->scores), free(p->ids);
    free(p);
    *pp = NULL;
}

int ifp_predictor_check_target(const ifp_predictor_t *p, const ifp_config_t *c, ifp_err_t *err) {
    if (p->n_layers != c->n_layers || p->d_ffn != c->d_ffn)
        return ifp_errf(err, IFP_EINVAL, "predictor targets %d layers x %d channels; model has %d layers x %d channels",
                        p->n_layers, p->d_ffn, c->n_layers, c->d_ffn);
    if (p->bb->cfg.vocab != c->vocab)
        return ifp_errf(err, IFP_EINVAL,
                        "predictor vocabulary has %d tokens; model has %d (the predictor must share its tokenizer)",
                        p->bb->cfg.vocab, c->vocab);
    return IFP_OK;
}

int ifp_predictor_n_layers(const ifp_predictor_t *p) { return p->n_layers; }
int ifp_predictor_d_ffn(const ifp_predictor_t *p) { return p->d_ffn; }
int ifp_predictor_keep(const ifp_predictor_t *p) { return p->keep; }
int ifp_predictor_max_prompt(const ifp_predictor_t *p) { return p->max_prompt; }
int ifp_predictor_hidden(const ifp_predictor_t *p) { return p->hidden; }
const ifp_model_t *ifp_predictor_backbone(const ifp_predictor_t *p) { return p->bb; }

/* ---- scoring ---- */

int ifp_predictor_scores(ifp_predictor_t *p, const int32_t *ids, int n, float *scores, ifp_err_t *err) {
    if (!ids || n < 1 || !scores) return ifp_errf(err, IFP_EINVAL, "predictor input is empty");
    const ifp_config_t *c = &p->bb->cfg;
    if (n > p->max_prompt) n = p->max_prompt; /* the predictor reads ids[:max_prompt] */
    /* 1. the backbone, causally over the prompt, in chunks of rows */
    ifp_state_reset_slot(p->st, 0);
    int rows = 0;
    for (int i = 0; i < n; i += rows) {
        rows = n - i < p->chunk ? n - i : p->chunk;
        for (int r = 0; r < rows; r++) p->pos[r] = i + r;
        ifp_batch_t b = {.n = rows, .token = ids + i, .pos = p->pos, .slot = p->slot};
        int rc = ifp_forward_embed(p->st, &b, err);
        if (!rc) rc = ifp_forward_layers(p->st, &b, 0, c->n_layers, err);
        if (rc) {
            ifp_err_prefix(err, "predictor backbone");
            return rc;
        }
    }
    /* 2. f = output_norm(h) at the last position */
    const float *h = ifp_state_hidden(p->st) + (size_t)(rows - 1) * c->dim;
    ifp_rmsnorm(p->feat, h, p->out_norm, c->dim, c->norm_eps);
    /* 3. a = silu(fc1 f + b1);  s = fc2 a + b2  (layer-major [l * d_ffn + j]) */
    ifp_linear(p->act, p->feat, p->fc1_w, 1, c->dim, p->hidden);
    for (int j = 0; j < p->hidden; j++) p->act[j] = ifp_silu(p->act[j] + p->fc1_b[j]);
    int S = p->n_layers * p->d_ffn;
    ifp_linear(scores, p->act, p->fc2_w, 1, p->hidden, S);
    for (int j = 0; j < S; j++) scores[j] += p->fc2_b[j];
    return IFP_OK;
}

int ifp_predictor_mask_from_scores(const ifp_predictor_t *p, const float *scores, int keep, ifp_mask_t **out,
                                   ifp_err_t *err) {
    if (keep <= 0) keep = p->keep;
    if (keep > p->d_ffn)
        return ifp_errf(err, IFP_ERANGE, "keep %d exceeds the target's %d channels per layer", keep, p->d_ffn);
    ifp_mask_t *m = ifp_mask_new(p->n_layers, p->d_ffn);
    if (!m) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int l = 0; l < p->n_layers; l++) ifp_mask_set_topk(m, l, scores + (size_t)l * p->d_ffn, keep);
    *out = m;
    return IFP_OK;
}

int ifp_predictor_mask(ifp_predictor_t *p, const int32_t *ids, int n, int keep, ifp_mask_t **out, ifp_err_t *err) {
    if (keep > p->d_ffn)
        return ifp_errf(err, IFP_ERANGE, "keep %d exceeds the target's %d channels per layer", keep, p->d_ffn);
    int rc = ifp_predictor_scores(p, ids, n, p->scores, err);
    if (rc) return rc;
    return ifp_predictor_mask_from_scores(p, p->scores, keep, out, err);
}

/* [BOS] + tok(text) truncated to max_prompt into p->ids; returns the count. */
static int encode(ifp_predictor_t *p, ifp_tokenizer_t *tok, const char *text, ifp_err_t *err) {
    int n = ifp_tokenizer_encode(tok, text, 1, p->ids, p->max_prompt);
    if (n < 0) return ifp_errf(err, n, "cannot tokenize the predictor input: %s", ifp_strerror(n));
    if (n == 0) return ifp_errf(err, IFP_EINVAL, "predictor input is empty (the tokenizer has no BOS)");
    return n < p->max_prompt ? n : p->max_prompt;
}

int ifp_predictor_mask_text(ifp_predictor_t *p, ifp_tokenizer_t *tok, const char *text, int keep, ifp_mask_t **out,
                            ifp_err_t *err) {
    int n = encode(p, tok, text, err);
    if (n < 0) return n;
    return ifp_predictor_mask(p, p->ids, n, keep, out, err);
}

int ifp_predictor_static_mask(ifp_predictor_t *p, ifp_tokenizer_t *tok, const ifp_dataset_t *ds, int keep,
                              float *mean_scores, ifp_mask_t **out, ifp_err_t *err) {
    if (!ds || ds->n < 1) return ifp_errf(err, IFP_EINVAL, "static mask: no prompts");
    if (keep > p->d_ffn)
        return ifp_errf(err, IFP_ERANGE, "keep %d exceeds the target's %d channels per layer", keep, p->d_ffn);
    size_t S = (size_t)p->n_layers * (size_t)p->d_ffn;
    double *sum = calloc(S, sizeof *sum); /* double: 10^2..10^3 prompts of scores ~10^2 */
    if (!sum) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    int tty = isatty(STDERR_FILENO), rc = IFP_OK;
    for (int i = 0; i < ds->n; i++) {
        int n = encode(p, tok, ds->ex[i].prompt, err);
        rc = n < 0 ? n : ifp_predictor_scores(p, p->ids, n, p->scores, err);
        if (rc) {
            ifp_err_prefix(err, "static mask: prompt %d", i + 1);
            break;
        }
        for (size_t j = 0; j < S; j++) sum[j] += p->scores[j];
        if (tty && (i % 16 == 15 || i + 1 == ds->n)) {
            fprintf(stderr, "\rstatic mask: %d/%d prompts", i + 1, ds->n);
            if (i + 1 == ds->n) fputc('\n', stderr);
        }
    }
    if (!rc) {
        for (size_t j = 0; j < S; j++) p->scores[j] = (float)(sum[j] / ds->n);
        if (mean_scores) memcpy(mean_scores, p->scores, S * sizeof *mean_scores);
        rc = ifp_predictor_mask_from_scores(p, p->scores, keep, out, err);
    }
    free(sum);
    return rc;
}
