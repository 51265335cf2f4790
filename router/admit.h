/* admit.h — what the router checks before it takes a client Request, and
 * the cache of per-task masks.  No sockets.
 *
 * Every problem is reported as "field: what is wrong" (the text of an
 * ERR_BAD_REQUEST).  Limits: id 1..RT_ID_MAX bytes; prompt text or
 * prompt_tokens (ids in [0, vocab), at least one); max_tokens 0 (= the
 * default) .. max_tokens_limit, cut so prompt + max_tokens fits the context
 * (a prompt that alone fills it is refused); temperature finite >= 0; top_p
 * in [0, 1]; at most RT_MAX_STOP stop strings of 1..RT_STOP_MAX bytes;
 * mask_mode INPUT / TASK / DENSE (INPUT and TASK need a predictor); task
 * 1..RT_TASK_MAX bytes for MASK_TASK. */
#ifndef RT_ADMIT_H
#define RT_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "ifp.pb-c.h"

#define RT_ID_MAX 256     /* bytes of a client request id */
#define RT_TASK_MAX 4096  /* bytes of a task instruction */

typedef struct {
    int vocab, ctx;                    /* the model's */
    int max_tokens, max_tokens_limit;  /* [router] */
    size_t max_prompt_bytes;           /* longer prompt text cannot fit the context */
    int have_predictor;
} rt_limits_t;

/* Checks the fields of q that need no tokenizer.  Returns 0, or -1 with the
 * problem in msg. */
int rt_admit_check(const Ifp__Request *q, const rt_limits_t *lim, char *msg, size_t cap);
/* New-token budget for a prompt of n_prompt tokens: requested (0 = the
 * default), cut to the context.  Returns 0, or -1 with msg if the prompt
 * leaves no room. */
int rt_admit_fit(const rt_limits_t *lim, int n_prompt, uint32_t requested, int *max_new, char *msg, size_t cap);

/* Least-recently-used cache of task masks, keyed by the task string: what
 * routing needs of a mask — its packed bits (Work.mask), its coverage by
 * each cluster union and its nearest cluster. */
typedef struct rt_taskcache rt_taskcache_t;

typedef struct {
    const uint8_t *bits;  /* mask_bytes */
    const double *cov;    /* [n_clusters] */
    int nearest;
} rt_taskmask_t;

/* cap entries of masks of mask_bytes bytes and n_clusters coverages. */
rt_taskcache_t *rt_taskcache_new(int cap, size_t mask_bytes, int n_clusters);
void rt_taskcache_destroy(rt_taskcache_t **c);
/* The cached mask of task (borrowed: valid until the next put), or 0. */
int rt_taskcache_get(rt_taskcache_t *c, const char *task, rt_taskmask_t *out);
/* Caches a copy of the mask under task, evicting the least recently used
 * entry when full.  Returns 0 or IFP_ENOMEM. */
int rt_taskcache_put(rt_taskcache_t *c, const char *task, const uint8_t *bits, const double *cov, int nearest);
int rt_taskcache_size(const rt_taskcache_t *c);

#endif
