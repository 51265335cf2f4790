#include "sampling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sh_sampling_t *sh_sampling_new(int n_slots, int max_rows, int vocab, int ctx, const char *group) {
    sh_sampling_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_slots = n_slots;
    t->max_rows = max_rows;
    t->vocab = vocab;
    t->ctx = ctx;
    snprintf(t->group, sizeof t->group, "%s", group);
    t->slot = calloc((size_t)n_slots, sizeof *t->slot);
    t->smp = ifp_sampler_new(vocab);
    t->out = calloc((size_t)max_rows, sizeof *t->out);
    t->out_link = calloc((size_t)max_rows, sizeof *t->out_link);
    t->batch = calloc((size_t)max_rows, sizeof *t->batch);
    t->head = calloc((size_t)max_rows * SH_LOGITS_HEAD, sizeof *t->head);
    t->failed = calloc((size_t)max_rows, sizeof *t->failed);
    t->failed_link = calloc((size_t)max_rows, sizeof *t->failed_link);
    if (!t->slot || !t->smp || !t->out || !t->out_link || !t->batch || !t->head || !t->failed || !t->failed_link)
        sh_sampling_destroy(&t);
    return t;
}

void sh_sampling_destroy(sh_sampling_t **tp) {
    if (!tp || !*tp) return;
    sh_sampling_t *t = *tp;
    free(t->slot);
    ifp_sampler_destroy(&t->smp);
    free(t->out);
    free(t->out_link);
    free(t->batch);
    free(t->head);
    free(t->failed);
    free(t->failed_link);
    free(t);
    *tp = NULL;
}

void sh_sampling_setup(sh_sampling_t *t, int slot, const sh_work_t *w) {
    if (slot < 0 || slot >= t->n_slots) return;
    sh_sampling_slot_t *s = &t->slot[slot];
    s->active = 1;
    s->rid = w->rid;
    s->sp = w->sp;
    s->first_index = w->first_index;
    s->generated = 0;
    s->max_new = w->max_new;
    s->eos = w->eos;
    s->debug = w->debug;
    s->link = w->link;
}

/* log softmax of logits[n] at index i */
static float log_prob(const float *x, int n, int i) {
    float mx = x[0];
    for (int j = 1; j < n; j++)
        if (x[j] > mx) mx = x[j];
    double sum = 0;
    for (int j = 0; j < n; j++) sum += exp((double)(x[j] - mx));
    return (float)((double)(x[i] - mx) - log(sum));
}

int sh_sampling_sample(sh_sampling_t *t, const sh_row_t *rows, int n, const float *logits, sh_tok_t *out) {
    int r = 0, k = 0;
    t->n_out = 0;
    t->n_failed = 0;
    for (int i = 0; i < n; i++) {
        if (!rows[i].want) continue;
        int slot = rows[i].slot;
        const float *lg = logits ? logits + (size_t)r * t->vocab : NULL;
        r++;
        sh_sampling_slot_t *s = slot >= 0 && slot < t->n_slots ? &t->slot[slot] : NULL;
        if (!s || !s->active || !lg) {
            /* no request here (or the micro-batch failed): end the slot */
            if (s && s->active) {
                t->failed_link[t->n_failed] = s->link;
                t->failed[t->n_failed++] = s->rid;
            }
            if (s) s->active = 0;
            out[k++] = (sh_tok_t){.slot = slot, .token = -1, .flags = SH_TOK_FINISHED | SH_TOK_FAILED};
            continue;
        }
        int64_t npos = (int64_t)rows[i].pos + 1; /* where the new token goes */
        int tok = ifp_sampler_sample(t->smp, &s->sp, lg, (uint64_t)npos);
        uint32_t index = s->first_index + s->generated;
        s->generated++;
        int fin = SH_FINISH_NONE;
        if (tok == s->eos) fin = SH_FINISH_EOS;
        else if (s->generated >= s->max_new || npos >= t->ctx - 1) fin = SH_FINISH_LENGTH;
        t->out_link[t->n_out] = s->link;
        sh_token_t *g = &t->out[t->n_out++];
        *g = (sh_token_t){.rid = s->rid, .index = index, .token = tok, .logprob = log_prob(lg, t->vocab, tok),
                          .finish = fin};
        if (index == 0 && s->debug) {
            int nh = t->vocab < SH_LOGITS_HEAD ? t->vocab : SH_LOGITS_HEAD;
            float *h = t->head + (size_t)(t->n_out - 1) * SH_LOGITS_HEAD;
            memcpy(h, lg, sizeof(float) * (size_t)nh);
            g->n_head = nh;
            g->head = h;
            g->argmax = ifp_argmax(lg, t->vocab);
        }
        if (fin != SH_FINISH_NONE) s->active = 0;
        out[k++] = (sh_tok_t){.slot = slot, .token = tok, .flags = fin ? SH_TOK_FINISHED : 0};
    }
    return k;
}

void sh_sampling_flush(sh_sampling_t *t, sh_routerlink_t *links, int n_links) {
    for (int i = 0; i < t->n_out; i++)
        if (t->out_link[i] < 0 || t->out_link[i] >= n_links) t->no_link++;
    /* one TokenBatch per link, the tokens in their order (almost always one
     * link, or a few: a micro-batch holds at most max_rows tokens) */
    for (int l = 0; l < n_links && t->n_out; l++) {
        int n = 0;
        for (int i = 0; i < t->n_out; i++)
            if (t->out_link[i] == l) t->batch[n++] = t->out[i];
        if (n) sh_routerlink_tokens(&links[l], t->group, t->batch, n);
    }
    t->n_out = 0;
    for (int i = 0; i < t->n_failed; i++) {
        int l = t->failed_link[i];
        if (l < 0 || l >= n_links) {
            t->no_link++;
            continue;
        }
        sh_routerlink_work_error(&links[l], t->failed[i], 0,
                                 "internal error in the shard group's pipeline; request abandoned");
    }
    t->n_failed = 0;
}
