/* relay.c — the loop of stages 1 .. P-1: receive from the previous rank,
 * run the held layers, pass on (a middle stage) or sample and answer (the
 * last stage: token events to the router each request came from — its
 * link, carried in the SETUP — and token ids to stage 0).
 *
 * Only MPI_Improbe / MPI_Mrecv of arrived messages and MPI_Isend / MPI_Test:
 * no call waits for a peer, except for a free send buffer (bounded by
 * batch_timeout_ms).  With nothing to do the rank naps (sh_idle_t): ~30 µs
 * right after work, backing off to 10 ms when idle.  A signal does not stop
 * a stage by itself: stage 0 sends SHUTDOWN down the pipe once its in-flight
 * micro-batches are back; if none comes within STOP_GRACE_MS of the signal
 * (stage 0 gone), the stage leaves anyway.
 *
 * Messages between the ranks of one job cannot be malformed unless
 * something is badly wrong: a bad or oversized message, or a send buffer
 * that does not free up within batch_timeout_ms, aborts the group
 * (sh_abort) — dropping it would leave stage 0 waiting for a micro-batch
 * that never comes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "shard.h"

#define STOP_GRACE_MS 15000.0

typedef struct {
    sh_group_t *G;
    sh_stage_t *st;
    int rank;
    unsigned long received, batches; /* micro-batches received / run */
} relay_t;

/* Passes the message in rbuf (len bytes) on to the next rank unchanged. */
static void forward_raw(relay_t *r, long len, const char *what) {
    int idx;
    uint8_t *b = sh_ring_acquire_or_abort(r->G, &idx, what);
    memcpy(b, r->G->rbuf, (size_t)len);
    sh_ring_send_or_abort(r->G, idx, (size_t)len, what);
}

static void on_setup(relay_t *r, const sh_hdr_t *h, long len) {
    sh_group_t *G = r->G;
    sh_work_t w;
    if (h->n < 0 || (size_t)len != sizeof *h + (size_t)h->n ||
        sh_setup_unpack(G->rbuf + sizeof *h, (size_t)h->n, &w))
        sh_abort("bad setup message from stage %d (%ld bytes, slot %d)", r->rank - 1, len, h->slot);
    /* every rank read the same config: stage 0 numbers the links as we do */
    if (w.link < 0 || w.link >= G->cfg->n_routers)
        sh_abort("bad setup message from stage %d: request %llu of router link %d (the config has %d routers)",
                 r->rank - 1, (unsigned long long)w.rid, w.link, G->cfg->n_routers);
    ifp_err_t err = {0};
    if (sh_stage_setup_slot(r->st, h->slot, &w, &err)) {
        /* the slot stays broken: its micro-batches fail and the request ends
         * with a WorkError from the last stage */
        sh_log("setup for slot %d (request %llu): %s", h->slot, (unsigned long long)w.rid, err.msg);
    } else if (G->sampling) {
        sh_sampling_setup(G->sampling, h->slot, &w);
    }
    if (!r->st->last) forward_raw(r, len, "a setup");
}

static void on_batch(relay_t *r, const sh_hdr_t *h, long len) {
    sh_group_t *G = r->G;
    sh_stage_t *st = r->st;
    int dim = st->cfg->dim, n = h->n;
    if (n <= 0 || n > st->max_rows || (size_t)len != sh_batch_bytes(n, dim))
        sh_abort("bad micro-batch message from stage %d (%ld bytes, %d rows, seq %u)", r->rank - 1, len, n, h->seq);
    r->received++;
    if (r->rank == 1 && G->fault.drop_batch == r->received) {
        sh_log("test hook %s: dropping micro-batch %u (%d row%s; number %lu received)", SH_FAULT_ENV, h->seq, n,
               n == 1 ? "" : "s", r->received);
        return;
    }
    memcpy(G->rows, sh_batch_rows(G->rbuf), sizeof(sh_row_t) * (size_t)n);
    memcpy(ifp_state_hidden(st->st), sh_batch_hidden(G->rbuf, n), sizeof(float) * (size_t)n * dim);
    int failed = h->slot != 0, rc = 0;
    ifp_err_t err = {0};
    double t0 = ifp_now_ms();
    if (!failed && (rc = sh_stage_forward(st, G->rows, n, &err)) < 0) {
        sh_log("micro-batch %u (%d rows) failed: %s", h->seq, n, err.msg);
        failed = 1;
    }
    int idx;
    if (!st->last) {
        float busy = h->busy_ms + (float)(ifp_now_ms() - t0);
        uint8_t *b = sh_ring_acquire_or_abort(G, &idx, "a micro-batch");
        *(sh_hdr_t *)b = (sh_hdr_t){.kind = SH_MSG_BATCH, .n = n, .slot = failed, .seq = h->seq, .busy_ms = busy};
        memcpy(sh_batch_rows(b), G->rows, sizeof(sh_row_t) * (size_t)n);
        memcpy(sh_batch_hidden(b, n), ifp_state_hidden(st->st), sizeof(float) * (size_t)n * dim);
        sh_ring_send_or_abort(G, idx, sh_batch_bytes(n, dim), "a micro-batch");
    } else {
        int nt = sh_sampling_sample(G->sampling, G->rows, n, failed ? NULL : ifp_state_logits(st->st), G->toks);
        float busy = h->busy_ms + (float)(ifp_now_ms() - t0);
        uint8_t *b = sh_ring_acquire_or_abort(G, &idx, "the tokens of a micro-batch");
        *(sh_hdr_t *)b = (sh_hdr_t){.kind = SH_MSG_TOKENS, .n = nt, .seq = h->seq, .busy_ms = busy};
        memcpy(sh_tokens(b), G->toks, sizeof(sh_tok_t) * (size_t)nt);
        sh_ring_send_or_abort(G, idx, sizeof(sh_hdr_t) + sizeof(sh_tok_t) * (size_t)nt, "the tokens of a micro-batch");
        /* the routers hear of a finished request after stage 0 was sent
         * the news: a router that answers a finish with new Work at once
         * finds the slot free (stage 0 reads the pipe before refusing
         * work as busy: routers.c) */
        sh_sampling_flush(G->sampling, G->links, G->n_links);
    }
    r->batches++;
}

static void on_cluster(relay_t *r, const sh_hdr_t *h, long len) {
    ifp_err_t err = {0};
    double t0 = ifp_now_ms();
    if (sh_stage_load_cluster(r->st, h->slot, &err)) {
        sh_log("cannot load cluster %d: %s; keeping cluster %d", h->slot, err.msg, r->st->cluster);
    } else {
        char desc[512];
        sh_stage_describe(r->st, desc, sizeof desc);
        sh_log("loaded cluster %d in %.0f ms: %s", h->slot, ifp_now_ms() - t0, desc);
    }
    if (!r->st->last) forward_raw(r, len, "a load-cluster message");
}

int sh_relay_loop(sh_group_t *G) {
    relay_t R = {.G = G, .st = G->stage, .rank = G->stage->rank};
    sh_idle_t idle;
    sh_idle_touch(&idle);
    double stop_at = 0;
    int done = 0, code = 0;
    while (!done) {
        long len = sh_pipe_recv(R.rank - 1, SH_TAG_PIPE, G->rbuf, G->msg_cap);
        if (len == 0) {
            if (sh_stop_requested()) {
                double now = ifp_now_ms();
                if (stop_at == 0) stop_at = now + STOP_GRACE_MS;
                if (now > stop_at) {
                    sh_log("signal received and no shutdown from stage 0 within %.0f s; leaving",
                           STOP_GRACE_MS / 1000);
                    code = 1;
                    break;
                }
            }
            if (G->ring) sh_ring_pending(G->ring); /* progress the sends */
            sh_idle_sleep(&idle);
            continue;
        }
        sh_idle_touch(&idle);
        if (len < 0)
            sh_abort("oversized or truncated message from stage %d (not within [%zu, %zu] bytes)", R.rank - 1,
                     sizeof(sh_hdr_t), G->msg_cap);
        sh_hdr_t h = *(const sh_hdr_t *)G->rbuf;
        switch (h.kind) {
        case SH_MSG_SETUP:
            on_setup(&R, &h, len);
            break;
        case SH_MSG_BATCH:
            on_batch(&R, &h, len);
            break;
        case SH_MSG_CLUSTER:
            on_cluster(&R, &h, len);
            break;
        case SH_MSG_SHUTDOWN:
            if (!R.st->last) forward_raw(&R, len, "the shutdown");
            done = 1;
            break;
        default:
            sh_abort("unknown pipe message kind %d from stage %d (%ld bytes)", h.kind, R.rank - 1, len);
        }
    }
    if (G->ring && sh_ring_drain(G->ring, G->batch_timeout_ms))
        sh_log("sends to rank %d did not complete", G->ring->dest);
    unsigned long drops = 0;
    for (int i = 0; i < G->n_links; i++) drops += G->links[i].send_drops;
    if (R.st->last)
        sh_log("stopped: %lu micro-batches, %lu sends to the router%s dropped", R.batches, drops,
               G->n_links > 1 ? "s" : "");
    else
        sh_log("stopped: %lu micro-batches", R.batches);
    return code;
}
