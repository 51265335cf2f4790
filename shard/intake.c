/* intake.c — stage 0's loop: router work in (the router link, admission
 * into slots), the scheduler, the embedding and the first layers, and
 * (P = 1) sampling.
 *
 * One iteration: zmq_poll (timeout 0 while there is work; while micro-batches
 * are in flight the adaptive nap comes first, since MPI cannot wake
 * zmq_poll; when idle, until the next heartbeat — nothing can arrive over
 * MPI then) -> router messages -> tokens back from the last stage -> the
 * heartbeat if due -> re-compaction if asked and idle -> admission -> as
 * many micro-batches as the pipeline has room for. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "sched.h"
#include "shard.h"
#include "wire.h"
#include "clock.h"

#define NO_CLUSTER INT_MIN
#define SHUTDOWN_GRACE_MS 10000.0

typedef struct {
    sh_group_t *G;
    sh_stage_t *st;
    sh_sched_t *sched;
    int P;
    int draining, shutting, pending_cluster;
    double shutting_since;
    uint64_t incarnation;
    uint64_t *rids;
    unsigned long admitted, batches;
    /* pipeline accounting: when each in-flight micro-batch left (by seq % P),
     * and over the completed ones, round trips vs compute in all stages */
    double *sent_at;
    double rt_ms, busy_ms;
    unsigned long n_rt;
} first_t;

static uint64_t random64(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) == (ssize_t)sizeof x && x) return x;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
}

static void heartbeat(first_t *f) {
    sh_sched_stats_t s;
    sh_sched_stats(f->sched, &s, f->rids);
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = (char *)f->G->group->name;
    hb.cluster = f->st->cluster;
    hb.stages = (uint32_t)f->P;
    hb.slots = (uint32_t)f->st->slots;
    hb.free_slots = (uint32_t)s.free_slots;
    hb.queued_tokens = s.queued_tokens;
    hb.kv_free = s.kv_free;
    hb.incarnation = f->incarnation;
    hb.draining = f->draining || f->shutting;
    hb.n_running = (size_t)s.n_running;
    hb.running = f->rids;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    sh_routerlink_send(&f->G->link, &m.base);
}

static void on_work(first_t *f, Ifp__RouterToGroup **mp) {
    const Ifp__Work *w = (*mp)->work;
    sh_routerlink_t *l = &f->G->link;
    char why[256];
    if (f->shutting || f->draining) {
        sh_routerlink_work_error(l, w->rid, "group %s is %s", f->G->group->name, f->shutting ? "shutting down" : "draining");
        return;
    }
    if (sh_work_check(w, f->st->cfg, f->st->ctx, why, sizeof why)) {
        sh_routerlink_work_error(l, w->rid, "invalid work: %s", why);
        return;
    }
    if (sh_sched_has_rid(f->sched, w->rid)) {
        sh_routerlink_work_error(l, w->rid, "request %llu is already running on group %s", (unsigned long long)w->rid,
                           f->G->group->name);
        return;
    }
    uint64_t rid = w->rid;
    if (sh_sched_enqueue(f->sched, mp)) {
        sh_routerlink_work_error(l, rid, "group %s is full: %d slots busy and %d requests queued", f->G->group->name,
                           f->st->slots, f->sched->q_cap);
        return;
    }
    sh_vlog("queued request %llu", (unsigned long long)rid);
}

static void on_control(first_t *f, const Ifp__Control *c) {
    ifp_err_t err = {0};
    switch (c->kind) {
    case IFP__CONTROL__KIND__DRAIN:
        if (!f->draining) sh_log("draining: no new work accepted");
        f->draining = 1;
        break;
    case IFP__CONTROL__KIND__SHUTDOWN:
        if (!f->shutting) sh_log("shutdown requested by the router");
        f->shutting = 1;
        break;
    case IFP__CONTROL__KIND__LOAD_CLUSTER:
        if (sh_stage_cluster_ok(f->st, c->cluster, &err)) {
            sh_log("load-cluster refused: %s", err.msg);
        } else if (c->cluster != f->st->cluster || f->pending_cluster != NO_CLUSTER) {
            f->pending_cluster = c->cluster;
            sh_log("will load cluster %d once idle", c->cluster);
        }
        break;
    default:
        f->G->link.malformed++;
        sh_log_limited(&f->G->link.rl_malformed, "unknown control kind %d ignored", (int)c->kind);
    }
}

/* Drains the router socket (bounded, so batches keep flowing).  Returns the
 * number of messages read. */
static int handle_router(first_t *f) {
    int n = 0, waiting;
    for (; n < 256; n++) {
        Ifp__RouterToGroup *m = sh_routerlink_recv(&f->G->link, &waiting);
        if (!waiting) break;
        if (!m) continue; /* malformed: counted and logged */
        switch (m->msg_case) {
        case IFP__ROUTER_TO_GROUP__MSG_WORK:
            on_work(f, &m);
            break;
        case IFP__ROUTER_TO_GROUP__MSG_CANCEL:
            if (sh_sched_cancel(f->sched, m->cancel->rid))
                sh_vlog("cancelled request %llu", (unsigned long long)m->cancel->rid);
            break;
        case IFP__ROUTER_TO_GROUP__MSG_CONTROL:
            on_control(f, m->control);
            break;
        default:
            break;
        }
        if (m) ifp__router_to_group__free_unpacked(m, NULL);
    }
    return n;
}

/* Re-compacts every stage once nothing is running.  Returns 1 if done. */
static int recompact(first_t *f) {
    if (f->pending_cluster == NO_CLUSTER || sh_sched_busy_slots(f->sched) || sh_sched_inflight(f->sched)) return 0;
    int c = f->pending_cluster, idx = 0;
    uint8_t *buf = NULL;
    if (f->P > 1 && !(buf = sh_ring_acquire(f->G->ring, &idx))) return 0;
    ifp_err_t err = {0};
    double t0 = ifp_now_ms();
    f->pending_cluster = NO_CLUSTER;
    if (sh_stage_load_cluster(f->st, c, &err)) {
        sh_log("cannot load cluster %d: %s; keeping cluster %d", c, err.msg, f->st->cluster);
        return 1;
    }
    if (buf) {
        *(sh_hdr_t *)buf = (sh_hdr_t){.kind = SH_MSG_CLUSTER, .slot = c};
        sh_ring_send(f->G->ring, idx, sizeof(sh_hdr_t));
    }
    char desc[512];
    sh_stage_describe(f->st, desc, sizeof desc);
    sh_log("loaded cluster %d in %.0f ms: %s", c, ifp_now_ms() - t0, desc);
    heartbeat(f);
    return 1;
}

/* Moves queued requests into free slots; each slot's SETUP goes down the
 * pipe before any of its rows.  Returns the number admitted. */
static int admit(first_t *f) {
    int n = 0;
    sh_group_t *G = f->G;
    while (f->pending_cluster == NO_CLUSTER) {
        int idx = 0, slot;
        uint8_t *buf = NULL;
        if (f->P > 1 && !(buf = sh_ring_acquire(G->ring, &idx))) break;
        Ifp__RouterToGroup *m = NULL;
        if (!sh_sched_admit(f->sched, &slot, &m)) break;
        const Ifp__Work *w = m->work;
        ifp_err_t err = {0};
        if (sh_stage_setup_slot(f->st, slot, w, &err)) {
            sh_routerlink_work_error(&G->link, w->rid, "cannot set up the request: %s", err.msg);
            sh_sched_release(f->sched, slot);
            ifp__router_to_group__free_unpacked(m, NULL);
            continue;
        }
        if (G->sampling) sh_sampling_setup(G->sampling, slot, w);
        if (buf) {
            /* a clean copy: unknown fields a sender added do not travel */
            Ifp__Work c = IFP__WORK__INIT;
            c.rid = w->rid;
            c.n_prompt = w->n_prompt;
            c.prompt = w->prompt;
            c.max_new = w->max_new;
            c.first_index = w->first_index;
            c.temperature = w->temperature;
            c.top_p = w->top_p;
            c.top_k = w->top_k;
            c.seed = w->seed;
            c.mask = w->mask;
            c.eos = w->eos;
            c.debug = w->debug;
            size_t len = ifp__work__get_packed_size(&c);
            /* sh_work_check bounds the prompt by ctx, so it fits the ring buffer */
            ifp__work__pack(&c, buf + sizeof(sh_hdr_t));
            *(sh_hdr_t *)buf = (sh_hdr_t){.kind = SH_MSG_SETUP, .n = (int32_t)len, .slot = slot};
            if (sh_ring_send(G->ring, idx, sizeof(sh_hdr_t) + len)) sh_log("MPI_Isend of a setup failed");
        }
        sh_vlog("request %llu -> slot %d (%zu prompt tokens, max_new %u, %s)", (unsigned long long)w->rid, slot,
                w->n_prompt, w->max_new, w->mask.len ? "masked" : "dense");
        ifp__router_to_group__free_unpacked(m, NULL);
        f->admitted++;
        n++;
    }
    return n;
}

/* Runs and sends micro-batches while the pipeline has room.  Returns the
 * number started. */
static int schedule(first_t *f) {
    sh_group_t *G = f->G;
    int started = 0;
    while (sh_sched_inflight(f->sched) < f->P) {
        int idx = 0;
        uint8_t *buf = NULL;
        if (f->P > 1 && !(buf = sh_ring_acquire(G->ring, &idx))) break;
        uint32_t seq;
        int n = sh_sched_build(f->sched, G->rows, &seq);
        if (n == 0) break;
        ifp_err_t err = {0};
        double t0 = ifp_now_ms();
        int rc = sh_stage_forward(f->st, G->rows, n, &err);
        if (rc < 0) sh_log("micro-batch %u (%d rows) failed: %s", seq, n, err.msg);
        if (f->P == 1) {
            const float *logits = rc < 0 ? NULL : ifp_state_logits(f->st->st);
            int nt = sh_sampling_sample(G->sampling, G->rows, n, logits, G->toks);
            sh_sampling_flush(G->sampling, &G->link);
            sh_sched_complete(f->sched, seq, G->toks, nt);
        } else {
            double t1 = ifp_now_ms();
            f->sent_at[seq % (uint32_t)f->P] = t0;
            *(sh_hdr_t *)buf =
                (sh_hdr_t){.kind = SH_MSG_BATCH, .n = n, .slot = rc < 0, .seq = seq, .busy_ms = (float)(t1 - t0)};
            memcpy(sh_batch_rows(buf), G->rows, sizeof(sh_row_t) * (size_t)n);
            memcpy(sh_batch_hidden(buf, n), ifp_state_hidden(f->st->st), sizeof(float) * (size_t)n * f->st->cfg->dim);
            if (sh_ring_send(G->ring, idx, sh_batch_bytes(n, f->st->cfg->dim))) sh_log("MPI_Isend of a batch failed");
        }
        f->batches++;
        started++;
    }
    return started;
}

/* Token ids back from the last stage.  Returns the number of messages. */
static int drain_results(first_t *f) {
    sh_group_t *G = f->G;
    int got = 0;
    for (;;) {
        long len = sh_pipe_recv(f->P - 1, SH_TAG_TOKENS, G->rbuf, G->msg_cap);
        if (len == 0) break;
        got++;
        const sh_hdr_t *h = (const sh_hdr_t *)G->rbuf;
        if (len < 0 || h->kind != SH_MSG_TOKENS || h->n < 0 ||
            (size_t)len != sizeof *h + (size_t)h->n * sizeof(sh_tok_t)) {
            sh_log("bad message from the last stage (%ld bytes) dropped", len);
            continue;
        }
        if (sh_sched_complete(f->sched, h->seq, sh_tokens(G->rbuf), h->n)) {
            sh_log("tokens for micro-batch %u arrived out of order; dropped", h->seq);
            continue;
        }
        f->rt_ms += ifp_now_ms() - f->sent_at[h->seq % (uint32_t)f->P];
        f->busy_ms += h->busy_ms;
        f->n_rt++;
    }
    return got;
}

int sh_intake_loop(sh_group_t *G) {
    first_t F = {.G = G, .st = G->stage, .P = G->stage->n_stages, .pending_cluster = NO_CLUSTER};
    first_t *f = &F;
    const sh_stage_t *st = G->stage;
    int qcap = 4 * st->slots;
    f->sched = sh_sched_new(st->slots, st->ctx, G->group->max_batch, f->P, qcap);
    f->rids = calloc((size_t)(st->slots + qcap), sizeof *f->rids);
    f->sent_at = calloc((size_t)f->P, sizeof *f->sent_at);
    if (!f->sched || !f->rids || !f->sent_at) {
        sh_log("out of memory");
        sh_sched_destroy(&f->sched);
        free(f->rids);
        free(f->sent_at);
        return 1;
    }
    f->incarnation = random64();
    sh_idle_t idle;
    sh_idle_touch(&idle);
    double hb_ms = G->cfg->heartbeat_ms, next_hb = 0;
    int active = 1;
    for (;;) {
        long timeout = 0;
        int busy = sh_sched_inflight(f->sched) > 0 || (G->ring && sh_ring_pending(G->ring));
        if (!active) {
            if (busy) {
                sh_idle_sleep(&idle);
            } else {
                double wait = next_hb - ifp_now_ms();
                timeout = wait < 0 ? 0 : wait > 1000 ? 1000 : (long)wait + 1;
            }
        }
        zmq_pollitem_t it = {.socket = G->link.sock, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, timeout); /* EINTR (a signal) is fine: the flag is checked next */
        active = 0;
        if (sh_stop_requested() && !f->shutting) {
            sh_log("signal received: shutting down");
            f->shutting = 1;
        }
        active += handle_router(f);
        if (f->P > 1) active += drain_results(f);
        double now = ifp_now_ms();
        if (now >= next_hb) {
            heartbeat(f);
            next_hb = now + hb_ms;
        }
        if (f->shutting) {
            if (f->shutting_since == 0) f->shutting_since = now;
            if (sh_sched_inflight(f->sched) == 0) break;
            if (now - f->shutting_since > SHUTDOWN_GRACE_MS) {
                sh_log("%d micro-batches still in flight after %.0f s; leaving anyway", sh_sched_inflight(f->sched),
                       SHUTDOWN_GRACE_MS / 1000);
                break;
            }
        } else {
            active += recompact(f);
            active += admit(f);
            active += schedule(f);
        }
        if (active) sh_idle_touch(&idle);
    }
    if (f->P > 1) {
        int idx;
        uint8_t *buf = sh_ring_acquire_wait(G->ring, &idx, 5000);
        if (buf) {
            *(sh_hdr_t *)buf = (sh_hdr_t){.kind = SH_MSG_SHUTDOWN};
            sh_ring_send(G->ring, idx, sizeof(sh_hdr_t));
        } else {
            sh_log("cannot send the shutdown down the pipe");
        }
        if (sh_ring_drain(G->ring, 10000)) sh_log("sends to stage 1 did not complete");
    }
    sh_log("stopped: %lu requests admitted, %lu micro-batches, %lu malformed messages, %lu sends dropped",
           f->admitted, f->batches, G->link.malformed, G->link.send_drops);
    if (f->n_rt)
        sh_log("pipeline: %lu micro-batches, round trip %.3f ms on average: compute %.0f%%, pipe %.0f%% (MPI "
               "transfers, wake-ups, waiting behind other micro-batches)",
               f->n_rt, f->rt_ms / f->n_rt, 100 * f->busy_ms / f->rt_ms, 100 * (1 - f->busy_ms / f->rt_ms));
    sh_sched_destroy(&f->sched);
    free(f->rids);
    free(f->sent_at);
    return 0;
}
