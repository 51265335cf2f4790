#include "stage_measure.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "benchlib.h"

const int sm_batches[SM_N_BATCH] = {1, 4, 16};

void sm_entry_reset(sm_entry_t *e) {
    for (int k = 0; k < SM_N_KIND; k++)
        for (int r = 0; r < SM_MAX_ROUNDS; r++) e->t[k][r] = NAN;
    memset(e->steps, 0, sizeof e->steps);
    e->n_rounds = 0;
}

/* The runner takes over e's model and row masks. */
static int use(sm_entry_t *e, ifp_err_t *err) {
    int rc = sr_use(e->s, e->m, err);
    if (rc) return rc;
    if (e->slot_mask)
        for (int k = 0; k <= SM_MAX_DEC; k++) sr_set_mask(e->s, k, &e->slot_mask[k]);
    return IFP_OK;
}

/* Kind k of every entry (0: prefill, 1 + b: decode at batch index b), the
 * entries' runs interleaved: pass q of P (P = the most runs any entry takes:
 * plan->prefill_runs for prefill, the entries' steps for decode) runs once
 * each entry whose runs, spread evenly over the passes, fall in q — in
 * forward order when r + q is even, else reversed.  A decode run is one step
 * fed at position prefix, timed on its own.  An entry's figure for the round
 * is its fastest run: other work on the machine only ever slows a run down,
 * it comes in bursts of ~0.1 s here that slow every entry's run of a pass
 * alike, and the fastest run of each entry is one it left alone (the median
 * of 4 steps still moved with the bursts: A/A ratios of 0.89-1.12, against
 * 0.97-1.02 with the fastest). */
static int measure_kind(sm_entry_t *const *e, int n, int k, int r, int round, const sm_plan_t *p, ifp_err_t *err) {
    static double v[SM_MAX_ENTRIES][SM_MAX_STEPS];
    int rc = IFP_OK, P = 1, got[SM_MAX_ENTRIES] = {0};
    for (int j = 0; j < n; j++) {
        int S = k ? e[j]->steps[k - 1] : p->prefill_runs;
        P = S > P ? S : P;
    }
    if (P > SM_MAX_STEPS) P = SM_MAX_STEPS;
    for (int q = 0; q < P && !rc; q++)
        for (int j = 0; j < n && !rc; j++) {
            int i = (r + q) % 2 ? n - 1 - j : j, S = k ? e[i]->steps[k - 1] : p->prefill_runs;
            if ((q + 1) * S / P == q * S / P) continue; /* not one of its passes */
            if ((rc = use(e[i], err))) break;
            double *t = &v[i][got[i]++];
            rc = k ? sr_decode(e[i]->s, sm_batches[k - 1], 1, t, err) : sr_prefill(e[i]->s, t, err);
        }
    for (int i = 0; i < n && !rc; i++) e[i]->t[k][round] = bl_min(v[i], got[i]);
    return rc;
}

/* Steps per run at every batch, then per runner (first entry on it) a
 * prefill and a step at every batch (first touch of its buffers), per entry
 * a batch-1 step (its weights' page tables). */
static int warm_up(sm_entry_t *const *e, int n, const sm_plan_t *p, ifp_err_t *err) {
    double dt;
    int rc = IFP_OK;
    for (int i = 0; i < n && !rc; i++) {
        for (int b = 0; b < SM_N_BATCH; b++) {
            int S = e[i]->params > 0 ? (int)ceil(p->run_params / e[i]->params) : 1, hi = p->max_steps[b];
            hi = hi < 1 ? 1 : hi > SM_MAX_STEPS ? SM_MAX_STEPS : hi;
            e[i]->steps[b] = S < 1 ? 1 : S > hi ? hi : S;
        }
        int first = 1;
        for (int j = 0; j < i; j++) first &= e[j]->s != e[i]->s;
        if ((rc = use(e[i], err))) break;
        if (first && p->prompt) rc = sr_prefill(e[i]->s, &dt, err);
        for (int b = first ? SM_N_BATCH - 1 : 0; b >= 0 && !rc; b--)
            rc = sr_decode(e[i]->s, sm_batches[b], 1, &dt, err);
    }
    return rc;
}

int sm_run(sm_entry_t *const *e, int n, const sm_plan_t *p, int *round, ifp_err_t *err) {
    if (*round + p->rounds > SM_MAX_ROUNDS)
        return ifp_errf(err, IFP_ERANGE, "%d more rounds pass the limit of %d in a run", p->rounds, SM_MAX_ROUNDS);
    if (n > SM_MAX_ENTRIES) return ifp_errf(err, IFP_ERANGE, "%d stages in a set, at most %d", n, SM_MAX_ENTRIES);
    bl_log("warm-up of %d stages", n);
    int rc = warm_up(e, n, p, err), first = *round;
    for (int r = 0; r < p->rounds && !rc; r++, (*round)++) {
        double t0 = bl_now();
        for (int k = p->prompt ? 0 : 1; k < SM_N_KIND && !rc; k++) rc = measure_kind(e, n, k, r, *round, p, err);
        for (int j = 0; j < n && !rc; j++) e[j]->n_rounds++;
        if (!rc) bl_log("round %d of %d (%s order): %.1f s", r + 1, p->rounds, r % 2 ? "reverse" : "forward",
                        bl_now() - t0);
    }
    for (int j = 0; j < n && !rc; j++) { /* the spread behind every median */
        fprintf(stderr, "  %-17s %-5s batch-1 decode tok/s by round:", e[j]->name, e[j]->type);
        for (int r = first; r < *round; r++) fprintf(stderr, " %.2f", sm_tok_s(1, p->prompt, e[j]->t[1][r]));
        fputc('\n', stderr);
    }
    return rc;
}

double sm_tok_s(int kind, int prompt, double t) { return (kind ? sm_batches[kind - 1] : prompt) / t; }

double sm_median_tok_s(const sm_entry_t *e, int kind, int prompt) {
    double v[SM_MAX_ROUNDS];
    int n = 0;
    for (int r = 0; r < SM_MAX_ROUNDS; r++)
        if (isfinite(e->t[kind][r]) && e->t[kind][r] > 0) v[n++] = sm_tok_s(kind, prompt, e->t[kind][r]);
    return n ? bl_median(v, n) : NAN;
}

int sm_ratios(const sm_entry_t *a, int ka, const sm_entry_t *b, int kb, int prompt, double *v, int n, int cap) {
    for (int r = 0; r < SM_MAX_ROUNDS && n < cap; r++) {
        double x = a->t[ka][r], y = b->t[kb][r];
        if (isfinite(x) && isfinite(y) && x > 0 && y > 0) v[n++] = sm_tok_s(ka, prompt, x) / sm_tok_s(kb, prompt, y);
    }
    return n;
}

double sm_ratio(const sm_entry_t *a, int ka, const sm_entry_t *b, int kb, int prompt, int *pairs) {
    double v[SM_MAX_ROUNDS];
    int n = a && b ? sm_ratios(a, ka, b, kb, prompt, v, 0, SM_MAX_ROUNDS) : 0;
    if (pairs) *pairs = n;
    return n ? bl_median(v, n) : NAN;
}
