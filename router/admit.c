/* admit.c — Request validation and the task-mask cache (see admit.h). */
#include "admit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "reqtable.h"

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
    ifp_mask_t *mask;
    uint64_t used;
} entry_t;

struct rt_taskcache {
    int cap, n;
    uint64_t clock;
    entry_t *e;
};

rt_taskcache_t *rt_taskcache_new(int cap) {
    if (cap < 1) return NULL;
    rt_taskcache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->e = calloc((size_t)cap, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->cap = cap;
    return c;
}

void rt_taskcache_destroy(rt_taskcache_t **cp) {
    if (!cp || !*cp) return;
    rt_taskcache_t *c = *cp;
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].task);
        ifp_mask_destroy(&c->e[i].mask);
    }
    free(c->e);
    free(c);
    *cp = NULL;
}

const ifp_mask_t *rt_taskcache_get(rt_taskcache_t *c, const char *task) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].task, task) == 0) {
            c->e[i].used = ++c->clock;
            return c->e[i].mask;
        }
    return NULL;
}

int rt_taskcache_put(rt_taskcache_t *c, const char *task, ifp_mask_t **m) {
    char *key = strdup(task);
    if (!key) {
        ifp_mask_destroy(m);
        return IFP_ENOMEM;
    }
    int slot = c->n;
    if (c->n == c->cap) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used) slot = i;
        free(c->e[slot].task);
        ifp_mask_destroy(&c->e[slot].mask);
    } else {
        c->n++;
    }
    c->e[slot] = (entry_t){.task = key, .mask = *m, .used = ++c->clock};
    *m = NULL;
    return IFP_OK;
}

int rt_taskcache_size(const rt_taskcache_t *c) { return c->n; }
