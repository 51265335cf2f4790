/* admit.c — Request validation and the task-mask cache (see admit.h). */
#include "admit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "request.h"

static int bad(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *msg, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}

int rt_admit_check(const Ifp__Request *q, const rt_limits_t *lim, char *msg, size_t cap) {
    size_t idlen = q->id ? strlen(q->id) : 0;
    if (idlen == 0) return bad(msg, cap, "id: empty (every request needs a client-chosen id)");
    if (idlen > RT_ID_MAX) return bad(msg, cap, "id: %zu bytes, at most %d", idlen, RT_ID_MAX);
    if (q->n_prompt_tokens > 0) {
        if (q->n_prompt_tokens >= (size_t)lim->ctx)
            return bad(msg, cap, "prompt_tokens: %zu tokens, the model context is %d", q->n_prompt_tokens, lim->ctx);
        for (size_t i = 0; i < q->n_prompt_tokens; i++)
            if (q->prompt_tokens[i] < 0 || q->prompt_tokens[i] >= lim->vocab)
                return bad(msg, cap, "prompt_tokens[%zu]: id %d outside the vocabulary [0, %d)", i,
                           (int)q->prompt_tokens[i], lim->vocab);
    } else {
        size_t n = q->prompt ? strlen(q->prompt) : 0;
        if (n > lim->max_prompt_bytes)
            return bad(msg, cap, "prompt: %zu bytes cannot fit the model context of %d tokens", n, lim->ctx);
    }
    if (q->max_tokens > (uint32_t)lim->max_tokens_limit)
        return bad(msg, cap, "max_tokens: %u exceeds the limit %d", q->max_tokens, lim->max_tokens_limit);
    if (q->n_resume_tokens > 0) { /* a client's failover: the tokens it already has (PROTOCOL.md §4) */
        uint32_t most = q->max_tokens ? q->max_tokens : (uint32_t)lim->max_tokens;
        if (q->n_resume_tokens >= most || q->n_resume_tokens >= (size_t)lim->ctx)
            return bad(msg, cap, "resume_tokens: %zu tokens, but the request allows %u new tokens (nothing left to "
                       "generate)", q->n_resume_tokens, most);
        for (size_t i = 0; i < q->n_resume_tokens; i++)
            if (q->resume_tokens[i] < 0 || q->resume_tokens[i] >= lim->vocab)
                return bad(msg, cap, "resume_tokens[%zu]: id %d outside the vocabulary [0, %d)", i,
                           (int)q->resume_tokens[i], lim->vocab);
    }
    if (!isfinite(q->temperature) || q->temperature < 0)
        return bad(msg, cap, "temperature: must be a finite number >= 0 (got %g)", (double)q->temperature);
    if (!isfinite(q->top_p) || q->top_p < 0 || q->top_p > 1)
        return bad(msg, cap, "top_p: must be in [0, 1] (got %g)", (double)q->top_p);
    if (q->n_stop > RT_MAX_STOP) return bad(msg, cap, "stop: %zu stop strings, at most %d", q->n_stop, RT_MAX_STOP);
    for (size_t i = 0; i < q->n_stop; i++) {
        size_t n = q->stop[i] ? strlen(q->stop[i]) : 0;
        if (n == 0) return bad(msg, cap, "stop[%zu]: empty", i);
        if (n > RT_STOP_MAX) return bad(msg, cap, "stop[%zu]: %zu bytes, at most %d", i, n, RT_STOP_MAX);
    }
    switch ((int)q->mask_mode) {
    case IFP__MASK_MODE__MASK_DENSE:
        break;
    case IFP__MASK_MODE__MASK_TASK: {
        size_t n = q->task ? strlen(q->task) : 0;
        if (n == 0) return bad(msg, cap, "task: empty (MASK_TASK needs the task instruction)");
        if (n > RT_TASK_MAX) return bad(msg, cap, "task: %zu bytes, at most %d", n, RT_TASK_MAX);
    } /* fall through */
    case IFP__MASK_MODE__MASK_INPUT:
        if (!lim->have_predictor)
            return bad(msg, cap, "mask_mode: %s needs a predictor and this router has none (use MASK_DENSE)",
                       q->mask_mode == IFP__MASK_MODE__MASK_TASK ? "MASK_TASK" : "MASK_INPUT");
        break;
    default:
        return bad(msg, cap, "mask_mode: unknown value %d (expected MASK_INPUT, MASK_TASK or MASK_DENSE)",
                   (int)q->mask_mode);
    }
    return 0;
}

int rt_admit_fit(const rt_limits_t *lim, int n_prompt, uint32_t requested, int *max_new, char *msg, size_t cap) {
    if (n_prompt < 1) return bad(msg, cap, "prompt: empty and the model adds no BOS: nothing to condition on");
    if (n_prompt >= lim->ctx)
        return bad(msg, cap, "prompt: %d tokens, the model context is %d", n_prompt, lim->ctx);
    int64_t n = requested ? (int64_t)requested : lim->max_tokens;
    if (n > lim->ctx - n_prompt) n = lim->ctx - n_prompt;
    *max_new = (int)n;
    return 0;
}

/* ---------------------------------------------------------------- task cache */

typedef struct {
    char *task;
    uint8_t *bits;
    double *cov;
    int nearest;
    uint64_t used;
} entry_t;

struct rt_taskcache {
    int cap, n, n_clusters;
    size_t mask_bytes;
    uint64_t clock;
    entry_t *e;
};

rt_taskcache_t *rt_taskcache_new(int cap, size_t mask_bytes, int n_clusters) {
    if (cap < 1 || n_clusters < 0) return NULL;
    rt_taskcache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->e = calloc((size_t)cap, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->cap = cap;
    c->mask_bytes = mask_bytes;
    c->n_clusters = n_clusters;
    return c;
}

static void entry_clear(entry_t *e) {
    free(e->task);
    free(e->bits);
    free(e->cov);
    memset(e, 0, sizeof *e);
}

void rt_taskcache_destroy(rt_taskcache_t **cp) {
    if (!cp || !*cp) return;
    rt_taskcache_t *c = *cp;
    for (int i = 0; i < c->n; i++) entry_clear(&c->e[i]);
    free(c->e);
    free(c);
    *cp = NULL;
}

int rt_taskcache_get(rt_taskcache_t *c, const char *task, rt_taskmask_t *out) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].task, task) == 0) {
            c->e[i].used = ++c->clock;
            *out = (rt_taskmask_t){.bits = c->e[i].bits, .cov = c->e[i].cov, .nearest = c->e[i].nearest};
            return 1;
        }
    return 0;
}

int rt_taskcache_put(rt_taskcache_t *c, const char *task, const uint8_t *bits, const double *cov, int nearest) {
    entry_t e = {.task = strdup(task), .bits = malloc(c->mask_bytes ? c->mask_bytes : 1),
                 .cov = calloc((size_t)(c->n_clusters ? c->n_clusters : 1), sizeof *e.cov), .nearest = nearest};
    if (!e.task || !e.bits || !e.cov) {
        entry_clear(&e);
        return IFP_ENOMEM;
    }
    memcpy(e.bits, bits, c->mask_bytes);
    if (c->n_clusters && cov) memcpy(e.cov, cov, (size_t)c->n_clusters * sizeof *cov);
    int slot = c->n;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].task, task) == 0) slot = i; /* a newer mask of the same task replaces it */
    if (slot == c->n && c->n == c->cap) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used) slot = i;
    }
    if (slot == c->n) c->n++;
    else entry_clear(&c->e[slot]);
    e.used = ++c->clock;
    c->e[slot] = e;
    return IFP_OK;
}

int rt_taskcache_size(const rt_taskcache_t *c) { return c->n; }
