/* predict.c — the predictor worker pool (see predict.h). */
#include "predict.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "gguf.h"
#include "ifp.pb-c.h"
#include "kernels.h"
#include "log.h"
#include "predictor.h"
#include "tokenizer.h"
#include "wire.h"

#define MAX_WORKERS 256

typedef struct {
    rt_predict_t *pool;
    int index;
    pthread_t thread;
    int started;
    ifp_tokenizer_t *tok;
    ifp_predictor_t *pred;
    char ident[16];
    /* busy time (rt_predict_busy_ms): written by the worker under a sequence
     * count (odd while it writes), read by the loop */
    atomic_uint seq;
    atomic_ullong busy_us;   /* finished jobs */
    atomic_ullong start_us;  /* the job on it now began (ifp_now_ms x 1000), 0 = idle */
} worker_t;

struct rt_predict {
    rt_predict_params_t p;
    char endpoint[64];
    void *sock;               /* ROUTER: workers' DEALERs connect */
    worker_t *w;
    int n_workers;
    int *ready;               /* worker indices waiting for a job (a stack) */
    int n_ready;
    rt_job_t *head, *tail;    /* waiting FIFO */
    int n_waiting, n_running;
    size_t mask_bytes;
    uint8_t **ubits;          /* [n_clusters] packed cluster unions */
    uint8_t **mbits;          /* [n_clusters] packed cluster medoids */
    int n_clusters;
};

/* ---------------------------------------------------------------- jobs */

rt_job_t *rt_job_new(int ids_cap) {
    rt_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->ids_cap = ids_cap > 0 ? ids_cap : 1;
    j->ids = malloc((size_t)j->ids_cap * sizeof *j->ids);
    j->nearest = -1;
    if (!j->ids) {
        free(j);
        return NULL;
    }
    return j;
}

void rt_job_free(rt_job_t *j) {
    if (!j) return;
    free(j->text);
    free(j->task);
    free(j->ids);
    free(j->bits);
    free(j->cov);
    free(j);
}

/* ---------------------------------------------------------------- bits */

static int popcount64(uint64_t x) { return __builtin_popcountll(x); }

/* |a|, |b| and |a & b| of two packed masks. */
static void bits_counts(const uint8_t *a, const uint8_t *b, size_t total, int64_t *na, int64_t *nb, int64_t *nab) {
    int64_t x = 0, y = 0, z = 0;
    size_t i = 0;
    for (; i + 8 <= total; i += 8) {
        uint64_t p, q;
        memcpy(&p, a + i, 8);
        memcpy(&q, b + i, 8);
        x += popcount64(p);
        y += popcount64(q);
        z += popcount64(p & q);
    }
    for (; i < total; i++) {
        x += popcount64(a[i]);
        y += popcount64(b[i]);
        z += popcount64((uint64_t)(a[i] & b[i]));
    }
    *na = x, *nb = y, *nab = z;
}

double rt_bits_coverage(const uint8_t *m, const uint8_t *u, int n_layers, int d_ffn) {
    int64_t kept, nu, have;
    bits_counts(m, u, (size_t)(d_ffn + 7) / 8 * (size_t)n_layers, &kept, &nu, &have);
    return kept ? (double)have / (double)kept : 1.0;
}

int rt_bits_nearest(const uint8_t *m, const uint8_t *const *medoids, int n, int n_layers, int d_ffn) {
    size_t total = (size_t)(d_ffn + 7) / 8 * (size_t)n_layers;
    int best = -1;
    double bd = 0;
    for (int c = 0; c < n; c++) {
        int64_t na, nb, inter;
        bits_counts(m, medoids[c], total, &na, &nb, &inter);
        int64_t uni = na + nb - inter; /* ifp_mask_jaccard_distance, from counts */
        double d = uni == 0 ? 0.0 : 1.0 - (double)inter / (double)uni;
        if (best < 0 || d < bd) bd = d, best = c;
    }
    return best;
}

/* ---------------------------------------------------------------- worker */

static void job_fail(rt_job_t *j, int rc, const char *msg) {
    j->rc = rc;
    snprintf(j->err, sizeof j->err, "%s", msg);
}

/* Tokenize, predict, pack and measure one job. */
static void run_job(worker_t *w, rt_job_t *j) {
    const rt_predict_params_t *P = &w->pool->p;
    ifp_err_t err = {0};
    j->rc = IFP_OK;
    if (j->text && !w->tok) {
        job_fail(j, IFP_EINVAL, "prompt: this predictor pool has no tokenizer (give token ids)");
        j->tok_failed = 1;
        return;
    }
    if (j->text) {
        int n = ifp_tokenizer_encode(w->tok, j->text, ifp_tokenizer_add_bos(w->tok), j->ids, j->ids_cap);
        if (n < 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "prompt: cannot tokenize (%s)", ifp_strerror(n));
            job_fail(j, n, msg);
            j->tok_failed = 1;
            return;
        }
        j->n_full = n;
        j->n_ids = n < j->ids_cap ? n : j->ids_cap;
        if (n > j->ids_cap) return; /* too long: the loop answers with the count */
    }
    if (!j->need_mask) return;
    if (!w->pred) {
        job_fail(j, IFP_EINVAL, "this router has no predictor");
        return;
    }
    ifp_mask_t *m = NULL;
    int rc;
    if (j->mode == IFP__MASK_MODE__MASK_TASK) {
        if (!w->tok) {
            job_fail(j, IFP_EINVAL, "task: this predictor pool has no tokenizer");
            return;
        }
        rc = ifp_predictor_mask_text(w->pred, w->tok, j->task ? j->task : "", 0, &m, &err);
    } else {
        /* [BOS] + prompt: text prompts have it already */
        int bos = w->tok ? ifp_tokenizer_bos(w->tok) : -1; /* no tokenizer: the ids are given whole */
        if (bos >= 0 && j->n_ids > 0 && j->ids[0] != bos) {
            int32_t *ids = malloc((size_t)(j->n_ids + 1) * sizeof *ids);
            if (!ids) {
                job_fail(j, IFP_ENOMEM, "out of memory");
                return;
            }
            ids[0] = bos;
            memcpy(ids + 1, j->ids, (size_t)j->n_ids * sizeof *ids);
            rc = ifp_predictor_mask(w->pred, ids, j->n_ids + 1, 0, &m, &err);
            free(ids);
        } else {
            rc = ifp_predictor_mask(w->pred, j->ids, j->n_ids, 0, &m, &err);
        }
    }
    if (rc) {
        char msg[RT_JOB_ERR];
        snprintf(msg, sizeof msg, "predictor failed: %.400s", err.msg);
        job_fail(j, rc, msg);
        ifp_mask_destroy(&m);
        return;
    }
    rt_predict_t *pool = w->pool;
    j->bits = malloc(pool->mask_bytes);
    j->cov = calloc((size_t)(pool->n_clusters ? pool->n_clusters : 1), sizeof *j->cov);
    if (!j->bits || !j->cov) {
        job_fail(j, IFP_ENOMEM, "out of memory");
        ifp_mask_destroy(&m);
        return;
    }
    ifp_wire_mask_pack(m, j->bits);
    for (int c = 0; c < pool->n_clusters; c++)
        j->cov[c] = rt_bits_coverage(j->bits, pool->ubits[c], P->n_layers, P->d_ffn);
    j->nearest = pool->n_clusters ? rt_bits_nearest(j->bits, (const uint8_t *const *)pool->mbits, pool->n_clusters,
                                                    P->n_layers, P->d_ffn)
                                  : -1;
    ifp_mask_destroy(&m);
}

/* A job starts (start_us) or ends (add_us of work), as one update. */
static void busy_note(worker_t *w, unsigned long long start_us, unsigned long long add_us) {
    atomic_fetch_add(&w->seq, 1);
    atomic_fetch_add(&w->busy_us, add_us);
    atomic_store(&w->start_us, start_us);
    atomic_fetch_add(&w->seq, 1);
}

double rt_predict_busy_ms(const rt_predict_t *P) {
    double now = ifp_now_ms(), total = 0;
    for (int i = 0; i < P->n_workers; i++) {
        worker_t *w = &P->w[i];
        unsigned s;
        unsigned long long busy, start;
        do {
            while ((s = atomic_load(&w->seq)) & 1u) {} /* the worker is writing: two stores */
            busy = atomic_load(&w->busy_us);
            start = atomic_load(&w->start_us);
        } while (atomic_load(&w->seq) != s);
        total += (double)busy * 1e-3;
        if (start && now * 1000.0 > (double)start) total += now - (double)start * 1e-3;
    }
    return total;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    void *s = zmq_socket(w->pool->p.zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_ROUTING_ID, w->ident, strlen(w->ident));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, w->pool->endpoint)) {
        ifp_logf("ifp-router", "predictor worker %d cannot connect: %s", w->index, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    rt_job_t *j = NULL; /* NULL = "ready" */
    for (;;) {
        if (zmq_send(s, &j, sizeof j, 0) < 0) break;
        rt_job_t *in = NULL;
        int n = zmq_recv(s, &in, sizeof in, 0);
        if (n < 0) {
            if (errno == EINTR) {
                j = NULL;
                continue;
            }
            break;
        }
        if (n != (int)sizeof in || !in) break; /* stop */
        double t0 = ifp_now_ms();
        busy_note(w, (unsigned long long)(t0 * 1000.0), 0);
        run_job(w, in);
        in->work_ms = ifp_now_ms() - t0;
        busy_note(w, 0, (unsigned long long)(in->work_ms * 1000.0));
        j = in;
    }
    zmq_close(s);
    return NULL;
}

/* ---------------------------------------------------------------- pool */

static int load_worker(rt_predict_t *P, worker_t *w, const ifp_predictor_t *first, ifp_err_t *err) {
    int rc = IFP_OK;
    if (P->p.model) {
        ifp_gguf_t *g = NULL;
        rc = ifp_gguf_open(P->p.model, &g, err);
        if (!rc) rc = ifp_tokenizer_from_gguf(g, &w->tok, err);
        ifp_gguf_close(&g);
        if (rc) return ifp_err_prefix(err, "[model] model");
    }
    if (P->p.predictor && P->p.predictor[0]) {
        /* one copy of the weights: the first worker loads, the others fork */
        rc = first ? ifp_predictor_fork(first, &w->pred, err) : ifp_predictor_load_typed(P->p.predictor, P->p.predictor_wtype, &w->pred, err);
        if (!rc && !first && P->p.model_cfg) rc = ifp_predictor_check_target(w->pred, P->p.model_cfg, err);
        if (rc) return ifp_err_prefix(err, "[model] predictor %s", P->p.predictor);
    }
    return IFP_OK;
}

int rt_predict_new(const rt_predict_params_t *p, rt_predict_t **out, ifp_err_t *err) {
    *out = NULL;
    if (p->threads < 1 || p->threads > MAX_WORKERS)
        return ifp_errf(err, IFP_ERANGE, "[router] predictor_threads: %d workers, need 1..%d", p->threads,
                        MAX_WORKERS);
    rt_predict_t *P = calloc(1, sizeof *P);
    if (!P) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    P->p = *p;
    P->mask_bytes = ifp_wire_mask_bytes(p->n_layers, p->d_ffn);
    int rc = IFP_OK;
    P->n_clusters = p->clusters ? p->clusters->n_clusters : 0;
    if (P->n_clusters) {
        P->ubits = calloc((size_t)P->n_clusters, sizeof *P->ubits);
        P->mbits = calloc((size_t)P->n_clusters, sizeof *P->mbits);
        for (int c = 0; P->ubits && P->mbits && c < P->n_clusters; c++) {
            if (!(P->ubits[c] = malloc(P->mask_bytes)) || !(P->mbits[c] = malloc(P->mask_bytes))) break;
            ifp_wire_mask_pack(p->clusters->c[c].uni, P->ubits[c]);
            ifp_wire_mask_pack(p->clusters->c[c].medoid, P->mbits[c]);
        }
        if (!P->ubits || !P->mbits || !P->mbits[P->n_clusters - 1]) {
            rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
            goto fail;
        }
    }
    snprintf(P->endpoint, sizeof P->endpoint, "inproc://ifp-predict-%p", (void *)P);
    P->w = calloc((size_t)p->threads, sizeof *P->w);
    P->ready = calloc((size_t)p->threads, sizeof *P->ready);
    if (!P->w || !P->ready) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(P->sock = zmq_socket(p->zctx, ZMQ_ROUTER))) {
        rc = ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    int linger = 0;
    zmq_setsockopt(P->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(P->sock, P->endpoint)) {
        rc = ifp_errf(err, IFP_EIO, "cannot bind %s: %s", P->endpoint, zmq_strerror(errno));
        goto fail;
    }
    P->n_workers = p->threads;
    for (int i = 0; i < P->n_workers; i++) {
        worker_t *w = &P->w[i];
        w->pool = P;
        w->index = i;
        snprintf(w->ident, sizeof w->ident, "w%d", i);
        if ((rc = load_worker(P, w, i ? P->w[0].pred : NULL, err))) goto fail;
    }
    /* the model code a worker runs uses its own OpenBLAS calls: one thread each */
    ifp_blas_threads(1);
    for (int i = 0; i < P->n_workers; i++) {
        if (pthread_create(&P->w[i].thread, NULL, worker_main, &P->w[i])) {
            rc = ifp_errf(err, IFP_EIO, "cannot start predictor worker %d", i);
            goto fail;
        }
        P->w[i].started = 1;
    }
    *out = P;
    return IFP_OK;
fail:
    rt_predict_destroy(&P);
    return rc ? rc : IFP_EIO;
}

void *rt_predict_socket(const rt_predict_t *p) { return p->sock; }
int rt_predict_threads(const rt_predict_t *p) { return p->n_workers; }
int rt_predict_waiting(const rt_predict_t *p) { return p->n_waiting; }
int rt_predict_running(const rt_predict_t *p) { return p->n_running; }

/* Hands waiting jobs to ready workers. */
static void dispatch(rt_predict_t *P) {
    while (P->n_ready > 0 && P->head) {
        rt_job_t *j = P->head;
        int wi = P->ready[P->n_ready - 1];
        const char *id = P->w[wi].ident;
        if (zmq_send(P->sock, id, strlen(id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(P->sock, &j, sizeof j, ZMQ_DONTWAIT) < 0) {
            /* cannot happen on inproc with a ready worker; retry on the next call */
            ifp_logf("ifp-router", "cannot hand a job to predictor worker %d: %s", wi, zmq_strerror(errno));
            return;
        }
        P->n_ready--;
        P->head = j->next;
        if (!P->head) P->tail = NULL;
        j->next = NULL;
        j->running = 1;
        P->n_waiting--;
        P->n_running++;
    }
}

void rt_predict_submit(rt_predict_t *P, rt_job_t *j) {
    j->next = NULL;
    j->running = 0;
    j->orphaned = 0;
    if (P->tail) P->tail->next = j;
    else P->head = j;
    P->tail = j;
    P->n_waiting++;
    dispatch(P);
}

rt_job_t *rt_predict_collect(rt_predict_t *P) {
    for (;;) {
        char id[16];
        rt_job_t *j = NULL;
        int n = zmq_recv(P->sock, id, sizeof id - 1, ZMQ_DONTWAIT);
        if (n < 0) return NULL;
        int m = zmq_recv(P->sock, &j, sizeof j, ZMQ_DONTWAIT);
        id[n < (int)sizeof id - 1 ? n : (int)sizeof id - 1] = '\0';
        int wi = id[0] == 'w' ? atoi(id + 1) : -1;
        if (wi >= 0 && wi < P->n_workers && P->n_ready < P->n_workers) P->ready[P->n_ready++] = wi;
        if (m == (int)sizeof j && j) {
            P->n_running--;
            j->running = 0;
        } else {
            j = NULL; /* a worker's first "ready" */
        }
        dispatch(P);
        if (!j) continue;
        if (j->orphaned) {
            rt_job_free(j);
            continue;
        }
        return j;
    }
}

void rt_predict_drop(rt_predict_t *P, rt_job_t *j) {
    if (!j) return;
    if (j->running) {
        j->orphaned = 1;
        return;
    }
    for (rt_job_t **pp = &P->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            if (P->tail == j) P->tail = prev;
            P->n_waiting--;
            break;
        }
    rt_job_free(j);
}

void rt_predict_destroy(rt_predict_t **pp) {
    if (!pp || !*pp) return;
    rt_predict_t *P = *pp;
    if (P->sock) {
        /* every started worker gets a stop (NULL job) once it is ready */
        int stopped = 0, started = 0;
        for (int i = 0; i < P->n_workers; i++) started += P->w[i].started;
        rt_job_t *none = NULL;
        for (int k = 0; k < P->n_ready; k++) { /* idle workers wait for a job: give them the stop */
            const char *id = P->w[P->ready[k]].ident;
            if (zmq_send(P->sock, id, strlen(id), ZMQ_SNDMORE) >= 0 && zmq_send(P->sock, &none, sizeof none, 0) >= 0)
                stopped++;
        }
        P->n_ready = 0;
        double t0 = ifp_now_ms();
        while (stopped < started && ifp_now_ms() - t0 < 60000) {
            zmq_pollitem_t it = {P->sock, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 100) <= 0) continue;
            char id[16];
            rt_job_t *j = NULL, *stop = NULL;
            int n = zmq_recv(P->sock, id, sizeof id, 0);
            int m = zmq_recv(P->sock, &j, sizeof j, 0);
            if (m == (int)sizeof j && j) rt_job_free(j);
            if (n > 0 && zmq_send(P->sock, id, (size_t)n, ZMQ_SNDMORE) >= 0 && zmq_send(P->sock, &stop, sizeof stop, 0) >= 0)
                stopped++;
        }
        for (int i = 0; i < P->n_workers; i++)
            if (P->w[i].started) pthread_join(P->w[i].thread, NULL);
        zmq_close(P->sock);
    }
    for (rt_job_t *j = P->head, *nx; j; j = nx) {
        nx = j->next;
        rt_job_free(j);
    }
    for (int i = P->w ? P->n_workers - 1 : -1; i >= 0; i--) { /* forks before the handle they share */
        ifp_tokenizer_destroy(&P->w[i].tok);
        ifp_predictor_destroy(&P->w[i].pred);
    }
    for (int c = 0; c < P->n_clusters; c++) {
        if (P->ubits) free(P->ubits[c]);
        if (P->mbits) free(P->mbits[c]);
    }
    free(P->ubits);
    free(P->mbits);
    free(P->w);
    free(P->ready);
    free(P);
    *pp = NULL;
}
