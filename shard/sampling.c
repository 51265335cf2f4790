#include "sampling.h"

#include <limits.h>
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
    t->gt = calloc((size_t)max_rows, sizeof *t->gt);
    t->gtp = calloc((size_t)max_rows, sizeof *t->gtp);
    t->head = calloc((size_t)max_rows * SH_LOGITS_HEAD, sizeof *t->head);
    t->dbg = calloc((size_t)max_rows, sizeof *t->dbg);
    t->failed = calloc((size_t)max_rows, sizeof *t->failed);
    if (!t->slot || !t->smp || !t->gt || !t->gtp || !t->head || !t->dbg || !t->failed) sh_sampling_destroy(&t);
    return t;
}

void sh_sampling_destroy(sh_sampling_t **tp) {
    if (!tp || !*tp) return;
    sh_sampling_t *t = *tp;
    free(t->slot);
    ifp_sampler_destroy(&t->smp);
    free(t->gt);
    free(t->gtp);
    free(t->head);
    free(t->dbg);
    free(t->failed);
    free(t);
    *tp = NULL;
}

void sh_sampling_setup(sh_sampling_t *t, int slot, const Ifp__Work *w) {
    if (slot < 0 || slot >= t->n_slots) return;
    sh_sampling_slot_t *s = &t->slot[slot];
    s->active = 1;
    s->rid = w->rid;
    s->sp.temperature = w->temperature;
    s->sp.top_p = w->top_p;
    s->sp.top_k = w->top_k > INT_MAX ? INT_MAX : (int)w->top_k;
    s->sp.seed = w->seed;
    s->first_index = w->first_index;
    s->generated = 0;
    s->max_new = w->max_new;
    s->eos = w->eos;
    s->debug = w->debug;
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
    t->n_gt = 0;
    t->n_failed = 0;
    for (int i = 0; i < n; i++) {
        if (!rows[i].want) continue;
        int slot = rows[i].slot;
        const float *lg = logits ? logits + (size_t)r * t->vocab : NULL;
        r++;
        sh_sampling_slot_t *s = slot >= 0 && slot < t->n_slots ? &t->slot[slot] : NULL;
        if (!s || !s->active || !lg) {
            /* no request here (or the micro-batch failed): end the slot */
            if (s && s->active) t->failed[t->n_failed++] = s->rid;
            if (s) s->active = 0;
            out[k++] = (sh_tok_t){.slot = slot, .token = -1, .flags = SH_TOK_FINISHED};
            continue;
        }
        int64_t npos = (int64_t)rows[i].pos + 1; /* where the new token goes */
        int tok = ifp_sampler_sample(t->smp, &s->sp, lg, (uint64_t)npos);
        uint32_t index = s->first_index + s->generated;
        s->generated++;
        Ifp__FinishReason fin = IFP__FINISH_REASON__FINISH_NONE;
        if (tok == s->eos) fin = IFP__FINISH_REASON__FINISH_EOS;
        else if (s->generated >= s->max_new || npos >= t->ctx - 1) fin = IFP__FINISH_REASON__FINISH_LENGTH;
        Ifp__GroupToken *g = &t->gt[t->n_gt];
        ifp__group_token__init(g);
        g->rid = s->rid;
        g->index = index;
        g->token = tok;
        g->logprob = log_prob(lg, t->vocab, tok);
        g->finish = fin;
        if (index == 0 && s->debug) {
            int nh = t->vocab < SH_LOGITS_HEAD ? t->vocab : SH_LOGITS_HEAD;
            float *h = t->head + (size_t)t->n_gt * SH_LOGITS_HEAD;
            Ifp__Debug *d = &t->dbg[t->n_gt];
            ifp__debug__init(d);
            memcpy(h, lg, sizeof(float) * (size_t)nh);
            d->n_logits_last_prompt = (size_t)nh;
            d->logits_last_prompt = h;
            d->argmax_last_prompt = ifp_argmax(lg, t->vocab);
            g->debug = d;
        }
        t->gtp[t->n_gt++] = g;
        if (fin != IFP__FINISH_REASON__FINISH_NONE) s->active = 0;
        out[k++] = (sh_tok_t){.slot = slot, .token = tok, .flags = fin ? SH_TOK_FINISHED : 0};
    }
    return k;
}

void sh_sampling_flush(sh_sampling_t *t, sh_routerlink_t *l) {
    if (t->n_gt) {
        Ifp__TokenBatch tb = IFP__TOKEN_BATCH__INIT;
        tb.group = t->group;
        tb.n_tokens = (size_t)t->n_gt;
        tb.tokens = t->gtp;
        Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
        m.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
        m.tokens = &tb;
        sh_routerlink_send(l, &m.base);
        t->n_gt = 0;
    }
    for (int i = 0; i < t->n_failed; i++)
        sh_routerlink_work_error(l, t->failed[i], "internal error in the shard group's pipeline; request abandoned");
    t->n_failed = 0;
}
