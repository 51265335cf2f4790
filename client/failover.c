/* failover.c — where a client's requests go: a new one to the next router
 * up (round robin), a request whose router went down to another router up
 * (resume_tokens = what it delivered), and the timers that find routers
 * down (silence), end requests (timeout) and ask silent routers whether
 * they are back (Ping).  The rules are client.h's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* The first router up from `start` on (cyclic) that r may go to, other
 * than skip; -1 none. */
static int next_up(const ifp_client_t *cl, const cl_req_t *r, int start, int skip) {
    for (int i = 0; i < cl->n; i++) {
        int k = (start + i) % cl->n;
        if (k != skip && cl_conn_up(&cl->r[k]) && !(r->left >> k & 1)) return k;
    }
    return -1;
}

int cl_can_move(const ifp_client_t *cl, const cl_req_t *r) { return next_up(cl, r, cl->rr, r->router) >= 0; }

/* Sends r to a router up other than skip (round robin); the router or -1. */
static int send_somewhere(ifp_client_t *cl, cl_req_t *r, int skip, double now) {
    int start = cl->rr;
    for (int i = 0; i < cl->n; i++) {
        int k = next_up(cl, r, start, skip);
        if (k < 0) return -1;
        if (!cl_req_send(cl, r, k, now)) {
            cl->rr = (k + 1) % cl->n;
            return k;
        }
        start = k + 1; /* its queue is full: the next one */
    }
    return -1;
}

int cl_dispatch(ifp_client_t *cl, cl_req_t *r, double now) {
    if (r->state != CL_PENDING) return 1;
    /* a move waits for another router first; the one it left counts once
     * it is connected again (a new connection: a new client to it) */
    int k = r->from >= 0 ? send_somewhere(cl, r, r->from, now) : -1;
    if (k < 0) k = send_somewhere(cl, r, -1, now);
    if (k < 0) return 0;
    cl->n_pending--;
    if (r->from >= 0) {
        r->failovers++;
        cl->st.failovers++;
        cl_emit_why(cl, IFP_CLIENT_FAILOVER, r, k, r->from, r->moved_why, "");
        r->from = -1;
    }
    return 1;
}

void cl_dispatch_pending(ifp_client_t *cl, double now) {
    int up = 0;
    for (int k = 0; k < cl->n; k++) up |= cl_conn_up(&cl->r[k]);
    if (!up) return;
    for (cl_req_t *r = cl->reqs.head, *next; r && cl->n_pending > 0; r = next) {
        next = r->next;
        if (r->state == CL_PENDING) cl_dispatch(cl, r, now); /* (in order: the oldest first) */
    }
}

void cl_cancel_at(ifp_client_t *cl, int k, const char *id) {
    cl_conn_send_cancel(cl, &cl->r[k], id); /* best effort */
    int i = cl->ghost_next;
    cl->ghost_next = (i + 1) % CL_GHOSTS;
    free(cl->ghost[i].id);
    cl->ghost[i].id = strdup(id); /* (out of memory: not remembered; its answer reaches the caller) */
    cl->ghost[i].router = k;
}

int cl_ghost_is(const ifp_client_t *cl, int k, const char *id) {
    for (int i = 0; i < CL_GHOSTS; i++)
        if (cl->ghost[i].id && cl->ghost[i].router == k && !strcmp(cl->ghost[i].id, id)) return 1;
    return 0;
}

void cl_ghosts_free(ifp_client_t *cl) {
    for (int i = 0; i < CL_GHOSTS; i++) free(cl->ghost[i].id), cl->ghost[i].id = NULL;
}

void cl_fail(ifp_client_t *cl, cl_req_t *r, ifp_client_why_t why, const char *detail) {
    if (r->state == CL_SENT) cl_cancel_at(cl, r->router, r->q->id);
    if (r->state == CL_PENDING) cl->n_pending--;
    cl_emit_why(cl, IFP_CLIENT_FAILED, r, r->router, -1, why, detail);
}

void cl_move(ifp_client_t *cl, cl_req_t *r, ifp_client_why_t why, const char *detail, double now) {
    if (r->state != CL_SENT) return;
    if (r->cancelled) { /* the caller is done with it */
        cl_fail(cl, r, IFP_CLIENT_CANCELLED, "");
        return;
    }
    int k = r->router, other = next_up(cl, r, cl->rr, k);
    if (other < 0 && (why == IFP_CLIENT_SILENT || why == IFP_CLIENT_OVERLOADED))
        return; /* nowhere better: it stays (silence) or its Error stands (the caller decides) */
    if (r->failovers >= cl->o.max_failovers) {
        char d[160];
        snprintf(d, sizeof d, "moved %d times; the last router %s", r->failovers, ifp_client_why_str(why));
        cl_fail(cl, r, IFP_CLIENT_TOO_MANY, d);
        return;
    }
    if (why != IFP_CLIENT_OVERLOADED) {
        cl_cancel_at(cl, k, r->q->id);
        r->left |= 1u << k;
    }
    if (why == IFP_CLIENT_OVERLOADED) {
        r->overloads++;
        cl->st.overload_retries++;
    }
    r->state = CL_PENDING;
    r->router = -1;
    cl->n_pending++;
    int to = send_somewhere(cl, r, k, now);
    if (to >= 0) {
        cl->n_pending--;
        r->failovers++;
        cl->st.failovers++;
        cl_emit_why(cl, IFP_CLIENT_FAILOVER, r, to, k, why, detail);
        return;
    }
    if (why == IFP_CLIENT_GAP) { /* the same connection still has it: no second try there */
        cl_fail(cl, r, why, detail);
        return;
    }
    /* waits for a router: another, or k once it is connected again */
    r->from = k;
    r->moved_why = why;
}

void cl_router_down(ifp_client_t *cl, int k, ifp_client_why_t why, double now) {
    cl_router_t *R = &cl->r[k];
    int was_up = cl_conn_up(R);
    if (!R->connected) return; /* down already: nothing of ours is on it */
    if (why == IFP_CLIENT_SILENT) {
        if (R->silent) return;
        R->silent = 1;
        R->next_ping = now;
    } else {
        R->connected = 0;
        R->silent = 0;
        for (cl_req_t *r = cl->reqs.head; r; r = r->next) r->left &= ~(1u << k); /* a new connection: a new client */
    }
    if (was_up) {
        cl->st.router_downs++;
        cl_emit_why(cl, IFP_CLIENT_ROUTER_DOWN, NULL, k, -1, why, "");
    }
    char detail[160] = "";
    if (why == IFP_CLIENT_SILENT) snprintf(detail, sizeof detail, "no answer for %d ms", cl->o.silence_ms);
    for (cl_req_t *r = cl->reqs.head, *next; r; r = next) {
        next = r->next;
        if (r->state == CL_SENT && r->router == k) cl_move(cl, r, why, detail, now);
    }
}

void cl_router_up(ifp_client_t *cl, int k, double now) {
    cl_router_t *R = &cl->r[k];
    int was_up = cl_conn_up(R);
    R->connected = 1;
    R->silent = 0;
    R->refused = 0;
    if (R->user_ping[0] && !cl_conn_send_ping(cl, R, R->user_ping)) R->user_ping[0] = '\0';
    if (was_up) return;
    cl_emit_why(cl, IFP_CLIENT_ROUTER_UP, NULL, k, -1, IFP_CLIENT_WHY_NONE, "");
    cl_dispatch_pending(cl, now);
    /* requests left on a silent router when none other was up: now one is */
    for (cl_req_t *r = cl->reqs.head, *next; r; r = next) {
        next = r->next;
        if (r->state == CL_SENT && r->router != k && cl->r[r->router].silent)
            cl_move(cl, r, IFP_CLIENT_SILENT, "", now);
    }
}

double cl_sweep(ifp_client_t *cl, double now) {
    const ifp_client_opts_t *o = &cl->o;
    int silent[IFP_CLIENT_MAX_ROUTERS] = {0};
    for (cl_req_t *r = cl->reqs.head, *next; r; r = next) {
        next = r->next;
        if (o->request_timeout_ms > 0 && now - r->t_submit >= o->request_timeout_ms) {
            char d[160];
            snprintf(d, sizeof d, "%s within %d ms", r->heard ? "not finished" : "no answer", o->request_timeout_ms);
            cl_fail(cl, r, IFP_CLIENT_TIMEOUT, d);
            continue;
        }
        if (r->state == CL_SENT && o->silence_ms > 0 && now - r->t_heard >= o->silence_ms) silent[r->router] = 1;
    }
    for (int k = 0; k < cl->n; k++)
        if (silent[k]) cl_router_down(cl, k, IFP_CLIENT_SILENT, now);
    for (int k = 0; k < cl->n; k++) {
        cl_router_t *R = &cl->r[k];
        if (R->connected && R->user_ping[0] && !cl_conn_send_ping(cl, R, R->user_ping)) R->user_ping[0] = '\0';
        if (!R->connected || !R->silent || now < R->next_ping) continue;
        char id[64];
        snprintf(id, sizeof id, CL_PING_PREFIX "%d-%u", k, ++R->ping_seq);
        cl_conn_send_ping(cl, R, id);
        R->next_ping = now + (o->ping_ms > 0 ? o->ping_ms : 1000);
    }
    if (cl->n_pending) cl_dispatch_pending(cl, now);
    return now + CL_SWEEP_MS;
}
