/* pipe.h — the MPI pipe between the stages of a shard group.
 *
 * Rank r is pipeline stage r.  Two streams, on separate tags:
 *
 *   SH_TAG_PIPE   rank r -> r+1, strictly ordered (one tag, one source):
 *                 SETUP  (a slot's request, before that slot's first rows),
 *                 BATCH  (a micro-batch: rows + hidden activations),
 *                 CLUSTER (re-compact to another cluster; sent when idle),
 *                 SHUTDOWN (the last message; every stage forwards it and exits).
 *   SH_TAG_TOKENS last rank -> rank 0: one TOKENS message per BATCH, in batch
 *                 order: the token sampled for each row that wanted logits.
 *
 * Every message is one MPI_BYTE buffer that starts with an sh_hdr_t:
 *
 *   SETUP    hdr{n = payload bytes, slot} + sh_setup_wire_t + mask bits (work.h)
 *   BATCH    hdr{n = rows, seq, busy_ms, slot = 1 if a stage failed it}
 *                                         + sh_row_t[n] + float hidden[n][dim]
 *   TOKENS   hdr{n = entries, seq, busy_ms} + sh_tok_t[n]
 *   CLUSTER  hdr{slot = cluster id (-1 = dense)}
 *   SHUTDOWN hdr{}
 *
 * Ranks of one group run the same binary on hosts of the same architecture,
 * so the integers and floats travel in native byte order.  busy_ms adds up
 * the compute time the stages spent on a micro-batch, so stage 0 can split
 * a round trip into compute and pipe (MPI transfers + wake-ups + queueing).
 *
 * Sends go through a ring of preallocated buffers (sh_ring_t): MPI_Isend, and
 * a buffer is reused only after MPI_Test says its send completed.  Receives
 * use MPI_Improbe + MPI_Mrecv of an already-matched message, so no call here
 * waits for a peer — the loops stay non-blocking and sleep adaptively
 * (sh_idle_t) when there is nothing to do. */
#ifndef SH_PIPE_H
#define SH_PIPE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

enum { SH_TAG_PIPE = 1, SH_TAG_TOKENS = 2 };

enum { SH_MSG_SETUP = 1, SH_MSG_BATCH = 2, SH_MSG_TOKENS = 3, SH_MSG_CLUSTER = 4, SH_MSG_SHUTDOWN = 5 };

typedef struct {
    int32_t kind;  /* SH_MSG_* */
    int32_t n;     /* rows / entries / SETUP payload bytes */
    int32_t slot;  /* SETUP: slot; CLUSTER: cluster id */
    uint32_t seq;  /* BATCH / TOKENS: micro-batch sequence number */
    float busy_ms; /* BATCH / TOKENS: compute time spent on it so far */
} sh_hdr_t;

/* One row of a micro-batch: token `token` of slot `slot` at position `pos`;
 * want = 1 asks the last stage to sample the token that follows it. */
typedef struct {
    int32_t slot, pos, token, want;
} sh_row_t;

/* sh_tok_t.flags: the slot's request is complete; it failed (its micro-batch
 * failed in some stage: the last stage sent the router a WorkError) */
enum { SH_TOK_FINISHED = 1, SH_TOK_FAILED = 2 };

/* The token sampled after a `want` row, sent back to stage 0. */
typedef struct {
    int32_t slot, token, flags;
} sh_tok_t;

/* Bytes of a BATCH of n rows of width dim; offsets of its parts. */
static inline size_t sh_batch_bytes(int n, int dim) {
    return sizeof(sh_hdr_t) + (size_t)n * sizeof(sh_row_t) + (size_t)n * (size_t)dim * sizeof(float);
}
static inline sh_row_t *sh_batch_rows(void *msg) { return (sh_row_t *)((uint8_t *)msg + sizeof(sh_hdr_t)); }
static inline float *sh_batch_hidden(void *msg, int n) {
    return (float *)((uint8_t *)msg + sizeof(sh_hdr_t) + (size_t)n * sizeof(sh_row_t));
}
static inline sh_tok_t *sh_tokens(void *msg) { return (sh_tok_t *)((uint8_t *)msg + sizeof(sh_hdr_t)); }

/* ---- send ring ---- */
typedef struct {
    int n;              /* buffers */
    size_t cap;         /* bytes per buffer */
    uint8_t **buf;
    MPI_Request *req;   /* MPI_REQUEST_NULL when free */
    int dest, tag;
} sh_ring_t;

/* n buffers of cap bytes each, all sent to dest with tag.  NULL on OOM. */
sh_ring_t *sh_ring_new(int n, size_t cap, int dest, int tag);
/* Cancels nothing: call sh_ring_drain first.  Accepts NULL. */
void sh_ring_destroy(sh_ring_t **r);
/* A free buffer (index in *idx), or NULL if every send is still pending. */
uint8_t *sh_ring_acquire(sh_ring_t *r, int *idx);
/* The same, polling (with short sleeps) up to timeout_ms; NULL on timeout. */
uint8_t *sh_ring_acquire_wait(sh_ring_t *r, int *idx, double timeout_ms);
/* MPI_Isend of the first len bytes of buffer idx.  Returns 0 or -1. */
int sh_ring_send(sh_ring_t *r, int idx, size_t len);
/* Tests the pending sends; returns how many are still pending. */
int sh_ring_pending(sh_ring_t *r);
/* Polls until no send is pending or timeout_ms passed; returns the number
 * still pending (those are cancelled so MPI_Finalize is not left waiting). */
int sh_ring_drain(sh_ring_t *r, double timeout_ms);

/* One message from src with tag if one has arrived: copies it into buf (cap
 * bytes).  Returns its length, 0 if none is waiting, -1 if it was larger than
 * cap or shorter than a header (it is received and dropped). */
long sh_pipe_recv(int src, int tag, void *buf, size_t cap);

/* ---- adaptive idle sleep ----
 * Tight (SH_IDLE_SPIN_US sleeps) for SH_IDLE_HOT_MS after the last activity,
 * then a linear back-off to SH_IDLE_MAX_US. */
#define SH_IDLE_SPIN_US 30
#define SH_IDLE_HOT_MS 50.0
#define SH_IDLE_MAX_US 10000

typedef struct {
    double last_active_ms;
} sh_idle_t;

void sh_idle_touch(sh_idle_t *s);               /* there was work just now */
long sh_idle_us(const sh_idle_t *s);            /* the sleep the back-off calls for now */
void sh_idle_sleep(const sh_idle_t *s);         /* sleeps sh_idle_us (signals cut it short) */
void sh_sleep_us(long us);

#endif
