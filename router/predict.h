/* predict.h — the router's predictor workers: tokenization, the sparsity
 * predictor and a mask's routing facts, off the event loop (DESIGN.md §1:
 * the loop never runs model code).
 *
 *   event loop ──job──▶ ROUTER inproc ──▶ DEALER worker 0 (own tokenizer, own predictor run state)
 *              ◀─done──               ◀── DEALER worker 1 ...
 *
 * The loop hands a job (a pointer, over an inproc socket) to a worker that
 * said it is ready — the lbbroker pattern: a busy worker is never given a
 * second job, jobs wait in the loop's FIFO.  A worker tokenizes the prompt
 * text (when it has one), runs the predictor for INPUT and TASK masks, packs
 * the mask as Work.mask bits, and computes its coverage by every cluster
 * union (bitsets) and its nearest cluster.  The worker sends the same
 * pointer back; the loop owns the job again (rt_predict_collect).
 *
 * Workers share the predictor's weights (worker 0 loads them, the others
 * are ifp_predictor_fork handles of it) and the cluster table
 * (read-only); each has its own tokenizer and run state.  A job whose
 * request went away while a worker had it is marked orphaned and freed when
 * it comes back. */
#ifndef RT_PREDICT_H
#define RT_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mask.h"
#include "model.h"

#define RT_JOB_ERR 512

typedef struct rt_job rt_job_t;
struct rt_job {
    /* in (the loop fills these) */
    uint64_t rid;
    int mode;          /* IFP__MASK_MODE__MASK_INPUT / _TASK / _DENSE */
    char *text;        /* prompt text to tokenize (owned), or NULL when ids are given */
    int32_t *ids;      /* [ids_cap]: the given prompt ids, or the tokenized text */
    int n_ids, ids_cap;
    char *task;        /* MASK_TASK: the instruction (owned) */
    int need_mask;     /* run the predictor (INPUT; TASK when not cached) */
    /* out (the worker fills these) */
    int rc;            /* IFP_OK or an IFP_E* code, with err */
    int tok_failed;    /* the prompt text could not be tokenized (the input's fault) */
    char err[RT_JOB_ERR];
    int n_full;        /* tokens the text encodes to (may exceed ids_cap) */
    uint8_t *bits;     /* packed mask (Work.mask layout), owned; NULL when no mask was computed */
    double *cov;       /* [n_clusters] coverage of the mask by each cluster union, owned */
    int nearest;       /* nearest cluster medoid, -1 if none */
    double work_ms;    /* on the worker */
    /* the loop's bookkeeping */
    double t_submit;
    int orphaned;      /* its request is gone: free when it comes back */
    int running;       /* a worker has it */
    rt_job_t *next;    /* waiting FIFO */
};

typedef struct {
    const char *model;       /* GGUF with the tokenizer (NULL: none; jobs must give token ids) */
    const char *predictor;   /* predictor GGUF, or NULL / "" */
    int predictor_wtype;     /* IFP_WTYPE_ASIS or the type its backbone is held in */
    const ifp_cluster_table_t *clusters; /* shared read-only, may be NULL */
    const ifp_config_t *model_cfg; /* the model: the predictor's target must match it */
    int n_layers, d_ffn;     /* the model's FFN shape (mask size) */
    int threads;             /* workers, >= 1 */
    void *zctx;              /* the router's ZeroMQ context */
} rt_predict_params_t;

typedef struct rt_predict rt_predict_t;

/* Starts the workers; each loads its tokenizer and predictor state before
 * this returns (errors name the file).  */
int rt_predict_new(const rt_predict_params_t *p, rt_predict_t **out, ifp_err_t *err);
/* Stops and joins the workers (a running job is finished first) and frees
 * every job still held. */
void rt_predict_destroy(rt_predict_t **p);

/* The socket the loop polls for finished jobs (ZMQ_POLLIN). */
void *rt_predict_socket(const rt_predict_t *p);
int rt_predict_threads(const rt_predict_t *p);

/* A job with room for cap prompt ids; NULL on OOM. */
rt_job_t *rt_job_new(int ids_cap);
void rt_job_free(rt_job_t *j);

/* Queues j (the predictor now owns it) and hands it to a worker when one is
 * ready. */
void rt_predict_submit(rt_predict_t *p, rt_job_t *j);
/* The next finished job (owned by the caller again), or NULL when none is
 * waiting.  Orphaned jobs are freed here and never returned. */
rt_job_t *rt_predict_collect(rt_predict_t *p);
/* The request of j went away: a waiting job is dropped and freed at once, a
 * running one when it comes back.  j must not be used afterwards. */
void rt_predict_drop(rt_predict_t *p, rt_job_t *j);
/* Jobs waiting for a worker, and jobs on workers. */
int rt_predict_waiting(const rt_predict_t *p);
int rt_predict_running(const rt_predict_t *p);
/* Milliseconds the workers spent on jobs since they started, summed over
 * workers (the jobs on them now included up to now).  Any thread may ask. */
double rt_predict_busy_ms(const rt_predict_t *p);

/* Coverage of a packed mask by packed union u: Σ popcount(m & u) / Σ
 * popcount(m) over n_layers rows of ceil(d_ffn/8) bytes (1 if m is empty). */
double rt_bits_coverage(const uint8_t *m, const uint8_t *u, int n_layers, int d_ffn);
/* The nearest of n packed medoids to packed mask m by Jaccard distance (as
 * ifp_cluster_nearest: ties -> the lower index); -1 if n is 0. */
int rt_bits_nearest(const uint8_t *m, const uint8_t *const *medoids, int n, int n_layers, int d_ffn);

#endif
