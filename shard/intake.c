/* intake.c — stage 0's loop: router work in (admission into slots), the
 * scheduler, the embedding and the first layers, the deadlines of the
 * micro-batches in flight, and (P = 1) sampling.
 *
 * Its routers' side — every router link's messages, the taking or refusing
 * of Work, cancels, heartbeats, routers that go away — is routers.c; the
 * state both share is intake.h.
 *
 * One iteration: zmq_poll (timeout 0 while there is work; while
 * micro-batches are in flight the adaptive nap comes first, since MPI
 * cannot wake zmq_poll; when idle, until the next heartbeat — nothing can
 * arrive over MPI then) -> router messages -> tokens back from the last
 * stage -> the oldest in-flight deadline -> the links' connections -> the
 * heartbeats due -> re-compaction if asked and idle -> admission -> as many
 * micro-batches as the pipeline has room for.
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
#include "intake.h"

#define SHUTDOWN_GRACE_MS 10000.0
/* micro-batches in flight with one prompt's prefill chunks, 1..P (unset: P;
 * 1: one chunk at a time through all the stages; sched.h) */
#define SH_PREFILL_ENV "IFP_SHARD_PREFILL_INFLIGHT"

static uint64_t random64(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) == (ssize_t)sizeof x && x) return x;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
}

/* Called between the layers of a forward pass: a long micro-batch (many
 * layers, a big prefill chunk) must not silence the heartbeat, or the router
 * would declare a working group dead. */
static void on_layer(void *arg) {
    sh_intake_t *f = arg;
    sh_routers_heartbeat_if_due(f, ifp_now_ms());
}

/* Re-compacts every stage once nothing is running.  Returns 1 if done. */
static int recompact(sh_intake_t *f) {
    if (f->pending_cluster == SH_NO_CLUSTER || sh_sched_busy_slots(f->sched) || sh_sched_inflight(f->sched)) return 0;
    int c = f->pending_cluster, idx = 0;
    uint8_t *buf = NULL;
    if (f->P > 1 && !(buf = sh_ring_acquire(f->G->ring, &idx))) return 0;
    ifp_err_t err = {0};
    double t0 = ifp_now_ms();
    f->pending_cluster = SH_NO_CLUSTER;
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
    sh_routers_heartbeat_all(f);
    return 1;
}

/* The cap on one prompt's chunks in flight: SH_PREFILL_ENV if set, else P. */
static void set_prefill_inflight(sh_intake_t *f) {
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
static int admit(sh_intake_t *f) {
    int n = 0;
    sh_group_t *G = f->G;
    while (f->pending_cluster == SH_NO_CLUSTER) {
        int idx = 0, slot;
        uint8_t *buf = NULL;
        if (f->P > 1 && !(buf = sh_ring_acquire(G->ring, &idx))) break;
        sh_work_t *w = NULL;
        if (!sh_sched_admit(f->sched, &slot, &w)) break;
        ifp_err_t err = {0};
        if (sh_stage_setup_slot(f->st, slot, w, &err)) {
            sh_routerlink_work_error(&G->links[w->link], w->rid, 0, "cannot set up the request: %s", err.msg);
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
        sh_vlog("request %llu -> slot %d (%d prompt tokens, max_new %u, %s, router link %d)", (unsigned long long)w->rid,
                slot, w->n_prompt, w->max_new, w->mask_len ? "masked" : "dense", w->link);
        sh_work_destroy(&w);
        f->admitted++;
        n++;
    }
    return n;
}

/* Runs and sends micro-batches while the pipeline has room.  Returns the
 * number started. */
static int schedule(sh_intake_t *f) {
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
            sh_sampling_flush(G->sampling, G->links, G->n_links);
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
int sh_intake_drain_results(sh_intake_t *f) {
    if (f->P == 1) return 0; /* one stage: completed in schedule() */
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
static void check_deadline(sh_intake_t *f, double now) {
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

/* The closing lines: totals, per router when there are several. */
static void log_stopped(const sh_intake_t *f) {
    const sh_group_t *G = f->G;
    unsigned long malformed = 0, drops = 0, dropped = 0;
    for (int i = 0; i < G->n_links; i++) {
        malformed += G->links[i].malformed;
        drops += G->links[i].send_drops;
        dropped += f->lk[i].dropped;
    }
    sh_log("stopped: %lu works received, %lu requests admitted, %lu refused as busy, at most %d of %d slots held at "
           "once, %lu micro-batches, %lu malformed messages, %lu sends dropped, %lu requests cancelled as their router "
           "left",
           f->works, f->admitted, f->busy, f->held_max, f->st->slots, f->batches, malformed, drops, dropped);
    for (int i = 0; G->n_links > 1 && i < G->n_links; i++)
        sh_log("router at %s: %lu works received, %lu refused as busy, %lu requests cancelled as it left, %lu "
               "malformed messages, %lu sends dropped",
               G->links[i].endpoint, f->lk[i].works, f->lk[i].busy, f->lk[i].dropped, G->links[i].malformed,
               G->links[i].send_drops);
    if (f->n_rt)
        sh_log("pipeline: %lu micro-batches, round trip %.3f ms on average: compute %.0f%%, pipe %.0f%% (MPI "
               "transfers, wake-ups, waiting behind other micro-batches)",
               f->n_rt, f->rt_ms / f->n_rt, 100 * f->busy_ms / f->rt_ms, 100 * (1 - f->busy_ms / f->rt_ms));
}

int sh_intake_loop(sh_group_t *G) {
    sh_intake_t F = {.G = G, .st = G->stage, .P = G->stage->n_stages, .pending_cluster = SH_NO_CLUSTER};
    sh_intake_t *f = &F;
    const sh_stage_t *st = G->stage;
    int R = G->n_links;
    /* extra = 0: the group never holds more requests than slots */
    f->sched = sh_sched_new(st->slots, st->ctx, G->group->max_batch, f->P, 0);
    f->rids = calloc((size_t)st->slots, sizeof *f->rids);
    f->fin = calloc((size_t)(SH_SCHED_FINISHED_PER_SLOT * st->slots), sizeof *f->fin);
    f->sent_at = calloc((size_t)f->P, sizeof *f->sent_at);
    f->sent_rows = calloc((size_t)f->P, sizeof *f->sent_rows);
    f->lk = calloc((size_t)R, sizeof *f->lk);
    f->items = calloc((size_t)(2 * R), sizeof *f->items);
    int code = 0;
    if (R < 1 || !f->sched || !f->rids || !f->fin || !f->sent_at || !f->sent_rows || !f->lk || !f->items) {
        sh_log(R < 1 ? "no router link" : "out of memory");
        code = 1;
        goto out;
    }
    for (int i = 0; i < R; i++) {
        f->items[i] = (zmq_pollitem_t){.socket = G->links[i].sock, .events = ZMQ_POLLIN};
        f->items[R + i] = (zmq_pollitem_t){.socket = G->links[i].mon, .events = G->links[i].mon ? ZMQ_POLLIN : 0};
        f->lk[i].hb_retry = SH_HB_RETRY_MS;
    }
    f->gone_ms = (double)G->cfg->liveness * G->cfg->heartbeat_ms;
    if (R > 1) {
        char names[1024];
        size_t at = 0;
        names[0] = 0;
        for (int i = 0; i < R && at < sizeof names; i++)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "", G->links[i].endpoint);
        sh_log("serving %d routers: %s; %d slots shared, a Work beyond them refused as busy", R, names, st->slots);
    }
    set_prefill_inflight(f);
    f->incarnation = random64();
    sh_idle_t idle;
    sh_idle_touch(&idle);
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
                double wait = sh_routers_next_heartbeat(f) - ifp_now_ms();
                timeout = wait < 0 ? 0 : wait > 1000 ? 1000 : (long)wait + 1;
            }
        }
        zmq_poll(f->items, 2 * R, timeout); /* EINTR (a signal) is fine: the flag is checked next */
        active = 0;
        if (sh_stop_requested() && !f->shutting) {
            sh_log("signal received: shutting down");
            f->shutting = 1;
        }
        active += sh_routers_read(f);
        active += sh_intake_drain_results(f);
        double now = ifp_now_ms();
        check_deadline(f, now); /* before a heartbeat: a stuck group must not report healthy */
        active += sh_routers_check(f, now);
        sh_routers_heartbeat_if_due(f, now);
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
    log_stopped(f);
out:
    sh_sched_destroy(&f->sched);
    free(f->rids);
    free(f->fin);
    free(f->sent_at);
    free(f->sent_rows);
    free(f->lk);
    free(f->items);
    return code;
}
