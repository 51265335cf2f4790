#include "pipe.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "wire.h"
#include "clock.h"

sh_ring_t *sh_ring_new(int n, size_t cap, int dest, int tag) {
    sh_ring_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->n = n;
    r->cap = cap;
    r->dest = dest;
    r->tag = tag;
    r->buf = calloc((size_t)n, sizeof *r->buf);
    r->req = malloc((size_t)n * sizeof *r->req);
    if (!r->buf || !r->req) {
        sh_ring_destroy(&r);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        r->req[i] = MPI_REQUEST_NULL;
        if (!(r->buf[i] = malloc(cap))) {
            sh_ring_destroy(&r);
            return NULL;
        }
    }
    return r;
}

void sh_ring_destroy(sh_ring_t **rp) {
    if (!rp || !*rp) return;
    sh_ring_t *r = *rp;
    if (r->buf)
        for (int i = 0; i < r->n; i++) free(r->buf[i]);
    free(r->buf);
    free(r->req);
    free(r);
    *rp = NULL;
}

uint8_t *sh_ring_acquire(sh_ring_t *r, int *idx) {
    for (int i = 0; i < r->n; i++) {
        int done = 1;
        if (r->req[i] != MPI_REQUEST_NULL) MPI_Test(&r->req[i], &done, MPI_STATUS_IGNORE);
        if (done) {
            *idx = i;
            return r->buf[i];
        }
    }
    return NULL;
}

uint8_t *sh_ring_acquire_wait(sh_ring_t *r, int *idx, double timeout_ms) {
    double until = ifp_now_ms() + timeout_ms;
    for (;;) {
        uint8_t *b = sh_ring_acquire(r, idx);
        if (b || ifp_now_ms() > until) return b;
        sh_sleep_us(SH_IDLE_SPIN_US);
    }
}

int sh_ring_send(sh_ring_t *r, int idx, size_t len) {
    if (len > r->cap || len > (size_t)INT32_MAX) return -1;
    return MPI_Isend(r->buf[idx], (int)len, MPI_BYTE, r->dest, r->tag, MPI_COMM_WORLD, &r->req[idx]) == MPI_SUCCESS
               ? 0
               : -1;
}

int sh_ring_pending(sh_ring_t *r) {
    int pending = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->req[i] == MPI_REQUEST_NULL) continue;
        int done = 0;
        MPI_Test(&r->req[i], &done, MPI_STATUS_IGNORE);
        pending += !done;
    }
    return pending;
}

int sh_ring_drain(sh_ring_t *r, double timeout_ms) {
    if (!r) return 0;
    double until = ifp_now_ms() + timeout_ms;
    int pending;
    while ((pending = sh_ring_pending(r)) > 0 && ifp_now_ms() < until) sh_sleep_us(200);
    for (int i = 0; pending && i < r->n; i++)
        if (r->req[i] != MPI_REQUEST_NULL) {
            MPI_Cancel(&r->req[i]);
            MPI_Request_free(&r->req[i]);
        }
    return pending;
}

long sh_pipe_recv(int src, int tag, void *buf, size_t cap) {
    int flag = 0, count = 0;
    MPI_Message msg;
    MPI_Status st;
    if (MPI_Improbe(src, tag, MPI_COMM_WORLD, &flag, &msg, &st) != MPI_SUCCESS || !flag) return 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (count < (int)sizeof(sh_hdr_t) || (size_t)count > cap) {
        /* not ours to keep: receive it into a scratch buffer and drop it */
        void *tmp = malloc(count > 0 ? (size_t)count : 1);
        if (tmp) MPI_Mrecv(tmp, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        else MPI_Mrecv(NULL, 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE); /* truncates: reports an error, clears it */
        free(tmp);
        return -1;
    }
    MPI_Mrecv(buf, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
    return count;
}

/* ---------------------------------------------------------------- idle */

void sh_idle_touch(sh_idle_t *s) { s->last_active_ms = ifp_now_ms(); }

long sh_idle_us(const sh_idle_t *s) {
    double quiet = ifp_now_ms() - s->last_active_ms;
    if (quiet < SH_IDLE_HOT_MS) return SH_IDLE_SPIN_US;
    /* 1 ms after 100 ms of quiet, the maximum after ~0.55 s */
    double us = SH_IDLE_SPIN_US + (quiet - SH_IDLE_HOT_MS) * 20.0;
    return us > SH_IDLE_MAX_US ? SH_IDLE_MAX_US : (long)us;
}

void sh_idle_sleep(const sh_idle_t *s) { sh_sleep_us(sh_idle_us(s)); }

void sh_sleep_us(long us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap early */
}
