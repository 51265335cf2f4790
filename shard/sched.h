/* sched.h — stage 0's continuous-batching scheduler (no sockets, no MPI,
 * no protobuf).
 *
 * Admission.  A request (sh_work_t, work.h) is taken only while the group
 * holds fewer than n_slots + extra requests (held: in a slot and neither
 * finished nor cancelled, or waiting); stage 0 uses extra = 0, so the
 * requests it holds never outnumber its slots, whichever routers sent them
 * (several routers share one group: routers.c).  A taken request waits in
 * the local queue only for a slot whose request ended but whose last
 * micro-batch is still in the pipe (a cancel), at most one round trip; it
 * never takes KV memory beyond the slots.  Each request remembers the link
 * (router) it came from: the heartbeat of each link lists only that link's
 * requests (sh_sched_running, sh_sched_finished), a cancel is honoured only
 * from its link, and a link's requests can all be cancelled at once
 * (sh_sched_cancel_link: its router went away).
 *
 * Each step, sh_sched_build forms one micro-batch from the slots:
 *
 *   1. decode rows first: one row per slot whose sampled token came back and
 *      that is in no in-flight micro-batch, at most ceil(decoding / depth)
 *      of them, starting after the slot served last (round robin) — with
 *      depth = P pipeline stages, the decoding slots settle into P cohorts
 *      that take turns, so every stage has a micro-batch to work on;
 *   2. then prefill chunks, oldest admission first, up to max_prefill rows in
 *      total (chunked prefill), one chunk per slot per micro-batch; its last
 *      prompt row asks for logits.  A slot's consecutive chunks may be in
 *      flight together, in up to prefill_inflight micro-batches (default
 *      depth), so one long prompt keeps every stage busy: chunk k+1 enters
 *      stage 0 while chunk k runs in stage 1, and its TTFT shrinks with P
 *      instead of growing.
 *
 * Why pipelined chunks are exact.  The pipe keeps order (one source, one
 * tag: MPI does not let messages overtake, pipe.h), and every stage runs
 * micro-batches in arrival order, so at each stage chunk k+1 of a slot runs
 * after chunk k and finds that slot's KV positions [0, pos) in place — the
 * same computation as one chunk at a time (ifp_batch_validate refuses a
 * gap, so a lost or failed chunk fails the later ones loudly, never
 * silently).  `fed` advances when a chunk is built, so chunks carry
 * consecutive positions; only the chunk holding the last prompt row has a
 * `want` row, so the last stage samples once, after the whole prompt; a
 * slot's first decode row needs that token back (have_token) and no
 * micro-batch of the slot in flight (inflight == 0), so a slot's decode
 * never overlaps its own prefill, and its decode steps stay one at a time.
 *
 * Why one prompt may fill all `depth` micro-batches (prefill_inflight =
 * depth, the default).  Decode rows go first into every micro-batch, and a
 * decoding slot's token comes back exactly when a micro-batch completes,
 * which frees room for the next one: the prefill never keeps a ready decode
 * out of the pipe.  What it changes is how heavy the micro-batches around a
 * decode are: with chunks in all depth micro-batches, a decode step of the
 * other slots can cost each stage up to depth chunks instead of one, but
 * for 1/depth as many steps — the time the prefill adds to their answers is
 * about the same, and the prompt's TTFT is up to depth times shorter on a
 * balanced pipe.  Each step is still bounded by max_prefill rows.
 * prefill_inflight = 1 is one chunk at a time through all the stages
 * (smoother TPOT during a long prefill, TTFT growing with P); stage 0 reads
 * it from the environment (IFP_SHARD_PREFILL_INFLIGHT, intake.c).
 *
 * At most `depth` micro-batches are in flight.  They complete in order
 * (sh_sched_complete, with the tokens sampled for their `want` rows): the
 * pipe keeps order, so a result for any but the oldest means a micro-batch
 * was lost — the caller aborts the group then (shard.h).  A finished or
 * cancelled slot is freed once no in-flight micro-batch holds it.
 *
 * The scheduler also keeps what the heartbeat reports: counters of tokens
 * and requests done, and the requests finished recently (a bounded ring of
 * SH_SCHED_FINISHED_PER_SLOT × n_slots entries, oldest dropped first). */
#ifndef SH_SCHED_H
#define SH_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "pipe.h"
#include "work.h"

#define SH_SCHED_FINISHED_PER_SLOT 4 /* finished list: entries per slot */
#define SH_SCHED_FINISHED_BEATS 4    /* heartbeats that list an entry at least */

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
    uint32_t max_new, generated, first_index;
    int finished, cancelled;
    int link;            /* the router link the request came from (sh_work_t.link) */
} sh_slot_t;

typedef struct {
    uint32_t seq;
    int n;      /* distinct slots */
    int *slots; /* [n_slots] */
} sh_flight_t;

typedef struct {
    sh_finished_t f;
    double at_ms;  /* when it finished */
    int listed;    /* heartbeats (of its link) it went out with */
    int link;      /* the router link the request came from */
} sh_done_t;

typedef struct {
    int n_slots, ctx, max_prefill, depth;
    int prefill_inflight;       /* micro-batches in flight with one slot's prefill chunks, 1..depth */
    sh_slot_t *slot;
    int extra;                  /* requests held beyond n_slots (0 on stage 0) */
    sh_work_t **queue;          /* ring of waiting requests, owned, [n_slots + extra] */
    int q_head, q_len, q_cap;
    sh_flight_t *flight;        /* ring of in-flight micro-batches, [depth] */
    int f_head, f_len;
    uint32_t next_seq;
    uint64_t next_order;
    int rr;                     /* decode round-robin start */
    uint8_t *mark;              /* [n_slots] scratch */
    sh_done_t *done;            /* ring of recently finished requests */
    int d_head, d_len, d_cap;
    uint64_t tokens_generated, requests_done;
} sh_sched_t;

/* Group-wide numbers, over every link. */
typedef struct {
    int free_slots;         /* n_slots - held (>= 0): the requests the group would take now */
    uint32_t queued_tokens; /* prompt rows not yet fed + decode budget left, queue included */
    uint32_t kv_free;       /* KV positions not in use over all slots */
    int n_running;          /* rids held (slots not finished nor cancelled, then the queue) */
    uint64_t tokens_generated; /* tokens sampled since start for requests not cancelled */
    uint64_t requests_done;    /* requests finished (EOS, length or failed) since start, cancelled ones not */
} sh_sched_stats_t;

/* NULL on OOM or bad sizes.  extra: requests the scheduler may hold beyond
 * n_slots, waiting (0: none — stage 0).  prefill_inflight starts at depth. */
sh_sched_t *sh_sched_new(int n_slots, int ctx, int max_prefill, int depth, int extra);
void sh_sched_destroy(sh_sched_t **s);
/* Caps the micro-batches in flight that hold one slot's prefill chunks at n
 * (n < 1 or n > depth: depth).  Returns the cap now in effect.  Takes effect
 * from the next sh_sched_build; chunks already in flight stay. */
int sh_sched_set_prefill_inflight(sh_sched_t *s, int n);

/* Takes *w (a checked work, sh_work_check) into the queue and NULLs it; -1
 * if n_slots + extra requests are held already (*w untouched). */
int sh_sched_enqueue(sh_sched_t *s, sh_work_t **w);
/* Requests held: in a slot (not finished, not cancelled) or waiting. */
int sh_sched_held(const sh_sched_t *s);
/* 1 if rid is queued or in a slot (and not cancelled), whatever its link. */
int sh_sched_has_rid(const sh_sched_t *s, uint64_t rid);
/* The link of held request rid, or -1 if it holds no such request. */
int sh_sched_owner(const sh_sched_t *s, uint64_t rid);
/* If a slot is free and a request waits: moves it into the slot, returns 1
 * with *slot and *w (the caller sets the slot up and destroys *w).  Else 0. */
int sh_sched_admit(sh_sched_t *s, int *slot, sh_work_t **w);
/* Frees a slot at once (its setup failed).  It must not be in flight. */
void sh_sched_release(sh_sched_t *s, int slot);
/* Cancels rid if it came from link (link < 0: from any): 1 = removed from
 * the queue, 2 = its slot will be freed when not in flight, 0 = unknown or
 * another link's (nothing changes). */
int sh_sched_cancel(sh_sched_t *s, uint64_t rid, int link);
/* Cancels every request of link (queued or in a slot); returns how many. */
int sh_sched_cancel_link(sh_sched_t *s, int link);

/* Forms the next micro-batch into rows[] (capacity n_slots + max_prefill).
 * Returns its row count (0 = nothing to do or depth batches in flight) and
 * its sequence number in *seq. */
int sh_sched_build(sh_sched_t *s, sh_row_t *rows, uint32_t *seq);
/* The oldest in-flight micro-batch came back (it must be seq) with the
 * tokens of its want rows, at now_ms (stamps the requests it finished).
 * Returns 0, or -1 if seq is not the oldest (nothing changes then). */
int sh_sched_complete(sh_sched_t *s, uint32_t seq, const sh_tok_t *tok, int n, double now_ms);
/* 1 with the oldest in-flight micro-batch's seq, or 0 if none is in flight. */
int sh_sched_oldest(const sh_sched_t *s, uint32_t *seq);

int sh_sched_inflight(const sh_sched_t *s);   /* micro-batches in flight */
int sh_sched_busy_slots(const sh_sched_t *s); /* slots holding a request */
/* Group-wide heartbeat numbers; rids (capacity n_slots + extra, or NULL)
 * gets the running ids of every link. */
void sh_sched_stats(const sh_sched_t *s, sh_sched_stats_t *st, uint64_t *rids);
/* The rids held for link (link < 0: every link) into rids (capacity
 * n_slots + extra); returns their count. */
int sh_sched_running(const sh_sched_t *s, int link, uint64_t *rids);
/* The finished list for a heartbeat of link (link < 0: every link) at
 * now_ms: drops the entries (of any link) older than keep_ms that went out
 * with SH_SCHED_FINISHED_BEATS heartbeats of their link already (a stalled
 * loop does not lose any), copies link's others (oldest first) to out
 * (capacity SH_SCHED_FINISHED_PER_SLOT × n_slots), counts them as listed
 * once more and returns their count. */
int sh_sched_finished(sh_sched_t *s, int link, double now_ms, double keep_ms, sh_finished_t *out);

#endif
