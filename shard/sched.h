/* sched.h — stage 0's continuous-batching scheduler (no sockets, no MPI).
 *
 * Requests (ifp.Work) wait in a bounded local queue until a sequence slot is
 * free.  Each step, sh_sched_build forms one micro-batch from the slots:
 *
 *   1. decode rows first: one row per slot whose sampled token came back and
 *      that is in no in-flight micro-batch, at most ceil(decoding / depth)
 *      of them, starting after the slot served last (round robin) — with
 *      depth = P pipeline stages, the decoding slots settle into P cohorts
 *      that take turns, so every stage has a micro-batch to work on;
 *   2. then prefill chunks, oldest admission first, up to max_prefill rows in
 *      total (chunked prefill).  A slot's consecutive prefill chunks may be
 *      in flight together (the pipe keeps them in order); its last prompt
 *      row asks for logits.
 *
 * At most `depth` micro-batches are in flight.  They complete in order
 * (sh_sched_complete, with the tokens sampled for their `want` rows); a
 * finished or cancelled slot is freed once no in-flight micro-batch holds
 * it. */
#ifndef SH_SCHED_H
#define SH_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "ifp.pb-c.h"
#include "model.h"
#include "pipe.h"

typedef struct {
    int busy;            /* holds a request */
    uint64_t rid;
    uint64_t order;      /* admission order: prefill is served oldest first */
    int32_t *prompt;     /* [ctx] */
    int n_prompt;
    int fed;             /* positions sent into the pipe */
    int inflight;        /* in-flight micro-batches with rows of this slot */
    int have_token;      /* a sampled token waits to be fed */
    int32_t next;        /* that token */
    uint32_t max_new, generated;
    int finished, cancelled;
} sh_slot_t;

typedef struct {
    uint32_t seq;
    int n;      /* distinct slots */
    int *slots; /* [n_slots] */
} sh_flight_t;

typedef struct {
    int n_slots, ctx, max_prefill, depth;
    sh_slot_t *slot;
    Ifp__RouterToGroup **queue; /* ring of waiting requests (msg->work), owned */
    int q_head, q_len, q_cap;
    sh_flight_t *flight;        /* ring of in-flight micro-batches, [depth] */
    int f_head, f_len;
    uint32_t next_seq;
    uint64_t next_order;
    int rr;                     /* decode round-robin start */
    uint8_t *mark;              /* [n_slots] scratch */
} sh_sched_t;

typedef struct {
    int free_slots;
    uint32_t queued_tokens; /* prompt rows not yet fed + decode budget left, queue included */
    uint32_t kv_free;       /* KV positions not in use over all slots */
    int n_running;          /* rids held (slots not cancelled, then the queue) */
} sh_sched_stats_t;

/* NULL on OOM or bad sizes. */
sh_sched_t *sh_sched_new(int n_slots, int ctx, int max_prefill, int depth, int queue_cap);
void sh_sched_destroy(sh_sched_t **s);

/* Takes *m (a RouterToGroup holding a valid Work) into the queue and NULLs
 * it; -1 if the queue is full (*m untouched). */
int sh_sched_enqueue(sh_sched_t *s, Ifp__RouterToGroup **m);
/* 1 if rid is queued or in a slot (and not cancelled). */
int sh_sched_has_rid(const sh_sched_t *s, uint64_t rid);
/* If a slot is free and a request waits: moves it into the slot, returns 1
 * with *slot and *m (the caller sets the slot up and frees *m).  Else 0. */
int sh_sched_admit(sh_sched_t *s, int *slot, Ifp__RouterToGroup **m);
/* Frees a slot at once (its setup failed).  It must not be in flight. */
void sh_sched_release(sh_sched_t *s, int slot);
/* Cancels rid: 1 = removed from the queue, 2 = its slot will be freed when
 * not in flight, 0 = unknown. */
int sh_sched_cancel(sh_sched_t *s, uint64_t rid);

/* Forms the next micro-batch into rows[] (capacity n_slots + max_prefill).
 * Returns its row count (0 = nothing to do or depth batches in flight) and
 * its sequence number in *seq. */
int sh_sched_build(sh_sched_t *s, sh_row_t *rows, uint32_t *seq);
/* The oldest in-flight micro-batch came back (it must be seq) with the
 * tokens of its want rows.  Returns 0, or -1 if seq is not the oldest. */
int sh_sched_complete(sh_sched_t *s, uint32_t seq, const sh_tok_t *tok, int n);

int sh_sched_inflight(const sh_sched_t *s);   /* micro-batches in flight */
int sh_sched_busy_slots(const sh_sched_t *s); /* slots holding a request */
/* Heartbeat numbers; rids (capacity n_slots + queue_cap) gets the running ids. */
void sh_sched_stats(const sh_sched_t *s, sh_sched_stats_t *st, uint64_t *rids);

/* Validates a Work for a model of config c and a context of ctx positions:
 * non-empty prompt shorter than ctx, token ids in the vocabulary, max_new >=
 * 1, eos in range, sane sampling parameters, a mask of the right size.
 * Returns 0, or -1 with a one-line reason in why. */
int sh_work_check(const Ifp__Work *w, const ifp_config_t *c, int ctx, char *why, size_t len);

#endif
