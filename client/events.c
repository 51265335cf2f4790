/* events.c — the queue of events a client hands its caller, one per
 * ifp_client_poll: FIFO, so a request's events keep their order and its
 * final event is its last.  An event owns its message until the caller
 * takes it or polls again; a request that ended is destroyed once the
 * caller is done with its final event (its id stays valid until then). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "clock.h"

static void free_event(cl_event_t *e) {
    if (e->msg) ifp__server_message__free_unpacked(e->msg, NULL);
    e->msg = NULL;
    if (e->final) cl_req_destroy(&e->req);
}

static cl_event_t *push(ifp_client_t *cl) {
    cl_queue_t *q = &cl->q;
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 64;
        cl_event_t *e = malloc(cap * sizeof *e);
        if (!e) return NULL;
        for (size_t i = 0; i < q->n; i++) e[i] = q->e[(q->head + i) % q->cap];
        free(q->e);
        q->e = e, q->cap = cap, q->head = 0;
    }
    cl_event_t *e = &q->e[(q->head + q->n++) % q->cap];
    memset(e, 0, sizeof *e);
    return e;
}

/* The kinds the caller sees as the request moving on (for the stall). */
static int is_progress(ifp_client_kind_t k) {
    return k == IFP_CLIENT_TOKEN || k == IFP_CLIENT_REPLY || k == IFP_CLIENT_ERROR || k == IFP_CLIENT_FAILED;
}

void cl_emit_why(ifp_client_t *cl, ifp_client_kind_t kind, cl_req_t *r, int router, int from, ifp_client_why_t why,
                 const char *detail) {
    cl_emit(cl, kind, r, router, NULL);
    if (!cl->q.n) return; /* out of memory: dropped */
    cl_event_t *e = &cl->q.e[(cl->q.head + cl->q.n - 1) % cl->q.cap];
    if (e->kind != kind || e->req != r) return;
    e->from = from;
    e->why = why;
    if (detail) snprintf(e->detail, sizeof e->detail, "%s", detail);
}

void cl_emit(ifp_client_t *cl, ifp_client_kind_t kind, cl_req_t *r, int router, Ifp__ServerMessage *msg) {
    double now = ifp_now_ms();
    int final = r && (kind == IFP_CLIENT_REPLY || kind == IFP_CLIENT_FAILED ||
                      (kind == IFP_CLIENT_ERROR && !r->wait_reply));
    if (r && is_progress(kind)) {
        if (now - r->t_event > r->stall_ms) r->stall_ms = now - r->t_event;
        r->t_event = now;
    }
    if (final) { /* out of the table now: its id may be used again */
        r->state = CL_DONE;
        cl_reqs_remove(&cl->reqs, r);
        if (kind == IFP_CLIENT_FAILED) cl->st.failed++;
        else cl->st.completed++;
    }
    cl_event_t *e = push(cl);
    if (!e) { /* out of memory: the event is lost, the request still ends */
        if (msg) ifp__server_message__free_unpacked(msg, NULL);
        if (final) cl_req_destroy(&r);
        return;
    }
    e->kind = kind;
    e->req = r;
    e->router = router;
    e->from = -1;
    e->final = final;
    e->msg = msg;
    if (r) {
        e->n_tokens = r->n_toks;
        e->failovers = r->failovers;
        e->heard = r->heard;
        e->stall_ms = r->stall_ms;
        e->age_ms = now - r->t_submit;
    }
}

int cl_queue_pop(ifp_client_t *cl, ifp_client_event_t *ev) {
    cl_queue_t *q = &cl->q;
    cl_queue_release(cl);
    do { /* (events of abandoned requests are NONE: skipped) */
        if (!q->n) return 0;
        q->cur = q->e[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
    } while (q->cur.kind == IFP_CLIENT_NONE);
    q->have_cur = 1;
    const cl_event_t *e = &q->cur;
    memset(ev, 0, sizeof *ev);
    ev->kind = e->kind;
    ev->id = e->req ? e->req->q->id : "";
    ev->user = e->req ? e->req->user : NULL;
    ev->router = e->router;
    ev->from = e->from;
    ev->why = e->why;
    ev->detail = e->kind == IFP_CLIENT_REFUSED ? cl->r[e->router].why : e->detail;
    ev->final = e->final;
    ev->msg = e->msg;
    ev->n_tokens = e->n_tokens;
    ev->failovers = e->failovers;
    ev->heard = e->heard;
    ev->stall_ms = e->stall_ms;
    ev->age_ms = e->age_ms;
    return 1;
}

Ifp__ServerMessage *ifp_client_event_take(ifp_client_t *cl, ifp_client_event_t *ev) {
    cl_queue_t *q = &cl->q;
    if (!ev || !ev->msg || !q->have_cur || q->cur.msg != ev->msg) return NULL;
    Ifp__ServerMessage *m = ev->msg;
    q->cur.msg = ev->msg = NULL;
    return m;
}

void cl_queue_release(ifp_client_t *cl) {
    cl_queue_t *q = &cl->q;
    if (q->have_cur) {
        free_event(&q->cur);
        q->have_cur = 0;
    }
    for (cl_req_t *r = q->dead, *next; r; r = next) { /* abandoned requests */
        next = r->hnext;
        cl_req_destroy(&r);
    }
    q->dead = NULL;
}

void cl_queue_free(cl_queue_t *q) {
    if (q->have_cur) free_event(&q->cur);
    for (size_t i = 0; i < q->n; i++) free_event(&q->e[(q->head + i) % q->cap]);
    for (cl_req_t *r = q->dead, *next; r; r = next) {
        next = r->hnext;
        cl_req_destroy(&r);
    }
    free(q->e);
    memset(q, 0, sizeof *q);
}
