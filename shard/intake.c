/* intake.c — stage 0's loop: router work in (admission into slots), the
 * scheduler, the embedding and the first layers, the deadlines of the
 * micro-batches in flight, and (P = 1) sampling.
 *
 * One iteration: zmq_poll (timeout 0 while there is work; while micro-batches
 * are in flight the adaptive nap comes first, since MPI cannot wake
 * zmq_poll; when idle, until the next heartbeat — nothing can arrive over
 * MPI then) -> router messages -> tokens back from the last stage -> the
 * oldest in-flight deadline -> the heartbeat if due -> re-compaction if
 * asked and idle -> admission -> as many micro-batches as the pipeline has
 * room for.
 *
 * A micro-batch lost in the pipe, a result that is bad or out of order, or a
 * send that cannot get out ends the job (sh_abort, shard.h): a group that
 * lost a micro-batch would otherwise keep heartbeating with slots that never
 * finish. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "sched.h"
#include "shard.h"

#define NO_CLUSTER INT_MIN
#define SHUTDOWN_GRACE_MS 10000.0
#define SH_HB_RETRY_MS 10.0 /* first retry of a heartbeat that found no router */
/* micro-batches in flight with one prompt's prefill chunks, 1..P (unset: P;
 * 1: one chunk at a time through all the stages; sched.h) */
#define SH_PREFILL_ENV "IFP_SHARD_PREFILL_INFLIGHT"

typedef struct {
    sh_group_t *G;
    sh_stage_t *st;
    sh_sched_t *sched;
    int P;
    int draining, shutting, pending_cluster;
    double shutting_since;
    uint64_t incarnation;
    uint64_t router_epoch, work_seen; /* of the last Work received */
    double next_hb, hb_retry;         /* when the next heartbeat is due; the retry delay after a dropped one */
    uint64_t *rids;                   /* [slots + queue] heartbeat scratch */
    sh_finished_t *fin;               /* [SH_SCHED_FINISHED_PER_SLOT × slots] heartbeat scratch */
    unsigned long admitted, batches, works;
    /* in-flight micro-batches (by seq % P): when each left and its rows; and
     * over the completed ones, round trips vs compute in all stages */
    double *sent_at;
    int *sent_rows;
    double grace_ms; /* added to deadlines while the later stages re-compact */
    double rt_ms, busy_ms;
    unsigned long n_rt;
} intake_t;

static uint64_t random64(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) == (ssize_t)sizeof x && x) return x;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
}

/* Sends a heartbeat; 0, or -1 if it was dropped (no router connected). */
static int heartbeat(intake_t *f) {
    sh_sched_stats_t s;
    sh_sched_stats(f->sched, &s, f->rids);
    double keep = SH_SCHED_FINISHED_PER_SLOT * (double)f->G->cfg->heartbeat_ms; /* >= 4 heartbeat periods */
    sh_heartbeat_t hb = {
        .group = f->G->group->name,
        .cluster = f->st->cluster,
        .stages = f->P,
        .slots = f->st->slots,
        .free_slots = s.free_slots,
        .draining = f->draining || f->shutting,
        .queued_tokens = s.queued_tokens,
        .kv_free = s.kv_free,
        .incarnation = f->incarnation,
        .running = f->rids,
        .n_running = s.n_running,
        .router_epoch = f->router_epoch,
        .work_seen = f->work_seen,
        .finished = f->fin,
        .n_finished = sh_sched_finished(f->sched, ifp_now_ms(), keep, f->fin),
        .tokens_generated = s.tokens_generated,
        .requests_done = s.requests_done,
    };
    return sh_routerlink_heartbeat(&f->G->link, &hb);
}

/* Sends the heartbeat if it is due.  A heartbeat that found no router (it
 * restarted, or the group did) is tried again soon, backing off to the
 * period: the router hears of the group, and of the work it still runs,
 * right after it (re)connects. */
static void heartbeat_if_due(intake_t *f, double now) {
    double hb_ms = f->G->cfg->heartbeat_ms;
    if (now < f->next_hb) return;
    if (heartbeat(f) == 0) {
        f->next_hb = now + hb_ms;
        f->hb_retry = SH_HB_RETRY_MS;
    } else {
        f->next_hb = now + (f->hb_retry < hb_ms ? f->hb_retry : hb_ms);
        f->hb_retry *= 2;
    }
}

/* Called between the layers of a forward pass: a long micro-batch (many
 * layers, a big prefill chunk) must not silence the heartbeat, or the router
 * would declare a working group dead. */
static void on_layer(void *arg) {
    intake_t *f = arg;
    heartbeat_if_due(f, ifp_now_ms());
}

static void on_work(intake_t *f, sh_router_msg_t *m) {
    sh_routerlink_t *l = &f->G->link;
    uint64_t rid = m->work->rid;
    char why[256];
    /* Work arrives in order on one connection: the last one seen tells the
     * router which of its Work reached us (refused ones included) */
    f->router_epoch = m->router_epoch;
    f->work_seen = m->seq;
    f->works++;
    if (f->shutting || f->draining) {
        sh_routerlink_work_error(l, rid, "group %s is %s", f->G->group->name,
                                 f->shutting ? "shutting down" : "draining");
        return;
    }
    if (sh_work_check(m->work, f->st->cfg, f->st->ctx, why, sizeof why)) {
        sh_routerlink_work_error(l, rid, "invalid work: %s", why);
        return;
    }
    if (sh_sched_has_rid(f->sched, rid)) {
        sh_routerlink_work_error(l, rid, "request %llu is already running on group %s", (unsigned long long)rid,
                                 f->G->group->name);
        return;
    }
    if (sh_sched_enqueue(f->sched, &m->work)) {
        sh_routerlink_work_error(l, rid, "group %s is full: %d slots busy and %d requests queued",
                                 f->G->group->name, f->st->slots, f->sched->q_cap);
        return;
    }
    sh_vlog("queued request %llu (work %llu of router epoch %llx)", (unsigned long long)rid,
            (unsigned long long)m->seq, (unsigned long long)m->router_epoch);
}

static void on_control(intake_t *f, const sh_router_msg_t *m) {
    ifp_err_t err = {0};
    switch (m->control) {
    case SH_CONTROL_DRAIN:
        if (!f->draining) sh_log("draining: no new work accepted");
        f->draining = 1;
        break;
    case SH_CONTROL_SHUTDOWN:
        if (!f->shutting) sh_log("shutdown requested by the router");
        f->shutting = 1;
        break;
    case SH_CONTROL_LOAD_CLUSTER:
        if (sh_stage_cluster_ok(f->st, m->cluster, &err)) {
            sh_log("load-cluster refused: %s", err.msg);
        } else if (m->cluster != f->st->cluster || f->pending_cluster != NO_CLUSTER) {
            f->pending_cluster = m->cluster;
            sh_log("will load cluster %d once idle", m->cluster);
        }
        break;
    default:
        f->G->link.malformed++;
        sh_log_limited(&f->G->link.rl_malformed, "unknown control kind %d ignored", m->control_raw);
    }
}

/* Drains the router socket (bounded, so batches keep flowing).  Returns the
 * number of messages read. */
static int handle_router(intake_t *f) {
    int n = 0;
    for (; n < 256; n++) {
        sh_router_msg_t m;
        int got = sh_routerlink_recv(&f->G->link, &m);
        if (got == 0) break;
        if (got < 0) continue; /* malformed: counted and logged */
        switch (m.kind) {
        case SH_ROUTER_WORK:
            on_work(f, &m);
            break;
        case SH_ROUTER_CANCEL:
            if (sh_sched_cancel(f->sched, m.rid)) sh_vlog("cancelled request %llu", (unsigned long long)m.rid);
            break;
        case SH_ROUTER_CONTROL:
            on_control(f, &m);
            break;
        }
        sh_router_msg_clear(&m);
    }
    return n;
}

/* Re-compacts every stage once nothing is running.  Returns 1 if done. */
static int recompact(intake_t *f) {
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
    double took = ifp_now_ms() - t0;
    if (buf) {
        *(sh_hdr_t *)buf = (sh_hdr_t){.kind = SH_MSG_CLUSTER, .slot = c};
        sh_ring_send_or_abort(f->G, idx, sizeof(sh_hdr_t), "a load-cluster message");
        /* the next micro-batches wait behind the later stages' own
         * re-compaction, about as long as this one took */
        f->grace_ms = 2 * took;
    }
    char desc[512];
    sh_stage_describe(f->st, desc, sizeof desc);
    sh_log("loaded cluster %d in %.0f ms: %s", c, took, desc);
    heartbeat(f);
    return 1;
}

/* The cap on one prompt's chunks in flight: SH_PREFILL_ENV if set, else P. */
static void set_prefill_inflight(intake_t *f) {
    const char *e = getenv(SH_PREFILL_ENV);
    int want = 0;
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end || v < 1 || v > f->P)
            sh_log("%s=%s ignored: want 1..%d (the stages)", SH_PREFILL_ENV, e, f->P);
        else
            want = (int)v;
    }
    int n = sh_sched_set_prefill_inflight(f->sched, want);
    if (f->P > 1)
        sh_log("prefill: a prompt's chunks in up to %d of the %d micro-batches in flight%s", n, f->P,
               want ? " (" SH_PREFILL_ENV ")" : "");
}

/* Moves queued requests into free slots; each slot's SETUP goes down the
 * pipe before any of its rows.  Returns the number admitted. */
static int admit(intake_t *f) {
    int n = 0;
    sh_group_t *G = f->G;
    while (f->pending_cluster == NO_CLUSTER) {
        int idx = 0, slot;
        uint8_t *buf = NULL;
        if (f->P > 1 && !(buf = sh_ring_acquire(G->ring, &idx))) break;
        sh_work_t *w = NULL;
        if (!sh_sched_admit(f->sched, &slot, &w)) break;
        ifp_err_t err = {0};
        if (sh_stage_setup_slot(f->st, slot, w, &err)) {
            sh_routerlink_work_error(&G->link, w->rid, "cannot set up the request: %s", err.msg);
            sh_sched_release(f->sched, slot);
            sh_work_destroy(&w);
            continue;
        }
        if (G->sampling) sh_sampling_setup(G->sampling, slot, w);
        if (buf) {
            /* sh_work_check bounded the mask, so it fits the ring buffer */
            size_t len = sh_setup_pack(w, buf + sizeof(sh_hdr_t));
            *(sh_hdr_t *)buf = (sh_hdr_t){.kind = SH_MSG_SETUP, .n = (int32_t)len, .slot = slot};
            sh_ring_send_or_abort(G, idx, sizeof(sh_hdr_t) + len, "a setup");
        }
        sh_vlog("request %llu -> slot %d (%d prompt tokens, max_new %u, %s)", (unsigned long long)w->rid, slot,
                w->n_prompt, w->max_new, w->mask_len ? "masked" : "dense");
        sh_work_destroy(&w);
        f->admitted++;
        n++;
    }
    return n;
}

/* Runs and sends micro-batches while the pipeline has room.  Returns the
 * number started. */
static int schedule(intake_t *f) {
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
        f->sent_at[seq % (uint32_t)f->P] = t0;
        f->sent_rows[seq % (uint32_t)f->P] = n;
        f->batches++;
        started++;
        if (f->P == 1 && G->fault.drop_batch == f->batches) {
            sh_log("test hook %s: dropping micro-batch %u (%d row%s; number %lu formed)", SH_FAULT_ENV, seq, n,
                   n == 1 ? "" : "s", f->batches);
            continue; /* never run, never completed: the deadline must catch it */
        }
        int rc = sh_stage_forward(f->st, G->rows, n, &err);
        if (rc < 0) sh_log("micro-batch %u (%d rows) failed: %s", seq, n, err.msg);
        if (f->P == 1) {
            const float *logits = rc < 0 ? NULL : ifp_state_logits(f->st->st);
            int nt = sh_sampling_sample(G->sampling, G->rows, n, logits, G->toks);
            sh_sampling_flush(G->sampling, &G->link);
            if (sh_sched_complete(f->sched, seq, G->toks, nt, ifp_now_ms()))
                sh_abort("micro-batch %u completed out of order", seq); /* cannot happen: one stage */
            /* one micro-batch per loop pass: new Work, cancels and heartbeats
             * are read between decode steps, not only once every slot is done */
            break;
        } else {
            double t1 = ifp_now_ms();
            *(sh_hdr_t *)buf =
                (sh_hdr_t){.kind = SH_MSG_BATCH, .n = n, .slot = rc < 0, .seq = seq, .busy_ms = (float)(t1 - t0)};
            memcpy(sh_batch_rows(buf), G->rows, sizeof(sh_row_t) * (size_t)n);
            memcpy(sh_batch_hidden(buf, n), ifp_state_hidden(f->st->st), sizeof(float) * (size_t)n * f->st->cfg->dim);
            sh_ring_send_or_abort(G, idx, sh_batch_bytes(n, f->st->cfg->dim), "a micro-batch");
        }
    }
    return started;
}

/* Token ids back from the last stage.  Returns the number of messages. */
static int drain_results(intake_t *f) {
    sh_group_t *G = f->G;
    int got = 0;
    for (;;) {
        long len = sh_pipe_recv(f->P - 1, SH_TAG_TOKENS, G->rbuf, G->msg_cap);
        if (len == 0) break;
        got++;
        const sh_hdr_t *h = (const sh_hdr_t *)G->rbuf;
        if (len < 0 || h->kind != SH_MSG_TOKENS || h->n < 0 ||
            (size_t)len != sizeof *h + (size_t)h->n * sizeof(sh_tok_t))
            sh_abort("bad result message from the last stage (%ld bytes, kind %d, %d entries)", len,
                     len < 0 ? -1 : h->kind, len < 0 ? -1 : h->n);
        double now = ifp_now_ms();
        uint32_t oldest;
        if (!sh_sched_oldest(f->sched, &oldest))
            sh_abort("tokens for micro-batch %u arrived with no micro-batch in flight", h->seq);
        if (sh_sched_complete(f->sched, h->seq, sh_tokens(G->rbuf), h->n, now)) {
            uint32_t k = oldest % (uint32_t)f->P;
            sh_abort("micro-batch %u lost: sent to stage 1 %.0f ms ago (%d row%s), but the tokens of micro-batch %u "
                     "came back first and the pipe keeps order",
                     oldest, now - f->sent_at[k], f->sent_rows[k], f->sent_rows[k] == 1 ? "" : "s", h->seq);
        }
        f->rt_ms += now - f->sent_at[h->seq % (uint32_t)f->P];
        f->busy_ms += h->busy_ms;
        f->n_rt++;
        f->grace_ms = 0;
    }
    return got;
}

/* The oldest micro-batch in flight must be back within batch_timeout_ms. */
static void check_deadline(intake_t *f, double now) {
    uint32_t seq;
    if (!sh_sched_oldest(f->sched, &seq)) return;
    uint32_t k = seq % (uint32_t)f->P;
    double age = now - f->sent_at[k];
    if (age <= f->G->batch_timeout_ms + f->grace_ms) return;
    int rows = f->sent_rows[k];
    if (f->P == 1)
        sh_abort("micro-batch %u lost: formed %.0f ms ago (%d row%s) on this stage, the only one, and never "
                 "completed (batch_timeout_ms %.0f)",
                 seq, age, rows, rows == 1 ? "" : "s", f->G->batch_timeout_ms);
    sh_abort("micro-batch %u lost: sent to stage 1 %.0f ms ago (%d row%s), its tokens not back from stage %d "
             "(batch_timeout_ms %.0f)",
             seq, age, rows, rows == 1 ? "" : "s", f->P - 1, f->G->batch_timeout_ms);
}

int sh_intake_loop(sh_group_t *G) {
    intake_t F = {.G = G, .st = G->stage, .P = G->stage->n_stages, .pending_cluster = NO_CLUSTER};
    intake_t *f = &F;
    const sh_stage_t *st = G->stage;
    int qcap = 4 * st->slots;
    f->sched = sh_sched_new(st->slots, st->ctx, G->group->max_batch, f->P, qcap);
    f->rids = calloc((size_t)(st->slots + qcap), sizeof *f->rids);
    f->fin = calloc((size_t)(SH_SCHED_FINISHED_PER_SLOT * st->slots), sizeof *f->fin);
    f->sent_at = calloc((size_t)f->P, sizeof *f->sent_at);
    f->sent_rows = calloc((size_t)f->P, sizeof *f->sent_rows);
    int code = 0;
    if (!f->sched || !f->rids || !f->fin || !f->sent_at || !f->sent_rows) {
        sh_log("out of memory");
        code = 1;
        goto out;
    }
    set_prefill_inflight(f);
    f->incarnation = random64();
    sh_idle_t idle;
    sh_idle_touch(&idle);
    f->next_hb = 0;
    f->hb_retry = SH_HB_RETRY_MS;
    f->st->tick = on_layer;
    f->st->tick_arg = f;
    int active = 1;
    for (;;) {
        long timeout = 0;
        int busy = sh_sched_inflight(f->sched) > 0 || (G->ring && sh_ring_pending(G->ring));
        if (!active) {
            if (busy) {
                sh_idle_sleep(&idle);
            } else {
                double wait = f->next_hb - ifp_now_ms();
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
        check_deadline(f, now); /* before a heartbeat: a stuck group must not report healthy */
        heartbeat_if_due(f, now);
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
        uint8_t *buf = sh_ring_acquire_or_abort(G, &idx, "the shutdown");
        *(sh_hdr_t *)buf = (sh_hdr_t){.kind = SH_MSG_SHUTDOWN};
        sh_ring_send_or_abort(G, idx, sizeof(sh_hdr_t), "the shutdown");
        if (sh_ring_drain(G->ring, G->batch_timeout_ms))
            sh_abort("the shutdown did not reach stage 1 within %.0f ms", G->batch_timeout_ms);
    }
    sh_log("stopped: %lu works received, %lu requests admitted, %lu micro-batches, %lu malformed messages, %lu sends "
           "dropped",
           f->works, f->admitted, f->batches, G->link.malformed, G->link.send_drops);
    if (f->n_rt)
        sh_log("pipeline: %lu micro-batches, round trip %.3f ms on average: compute %.0f%%, pipe %.0f%% (MPI "
               "transfers, wake-ups, waiting behind other micro-batches)",
               f->n_rt, f->rt_ms / f->n_rt, 100 * f->busy_ms / f->rt_ms, 100 * (1 - f->busy_ms / f->rt_ms));
out:
    sh_sched_destroy(&f->sched);
    free(f->rids);
    free(f->fin);
    free(f->sent_at);
    free(f->sent_rows);
    return code;
}
