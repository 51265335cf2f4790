/* reqs.c — one request of a client: the copy it keeps of the caller's
 * Request, the tokens delivered so far, the message that sends it (again),
 * and the table of requests in flight by id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "wire.h"

int cl_req_new(const Ifp__Request *q, void *user, cl_req_t **out, ifp_err_t *err) {
    *out = NULL;
    if (!q || !q->id || !*q->id) return ifp_errf(err, IFP_EINVAL, "request: an id is required");
    if (strlen(q->id) > IFP_CLIENT_ID_MAX)
        return ifp_errf(err, IFP_EINVAL, "request: the id has %zu bytes, at most %d", strlen(q->id), IFP_CLIENT_ID_MAX);
    /* the copy: packed and unpacked again (every string and list its own) */
    size_t len = protobuf_c_message_get_packed_size(&q->base);
    uint8_t *buf = malloc(len ? len : 1);
    cl_req_t *r = calloc(1, sizeof *r);
    if (!buf || !r) {
        free(buf), free(r);
        return ifp_errf(err, IFP_ENOMEM, "request: out of memory");
    }
    protobuf_c_message_pack(&q->base, buf);
    char why[200];
    if (ifp_wire_check_text(&ifp__request__descriptor, buf, len, why, sizeof why)) {
        free(buf), free(r);
        return ifp_errf(err, IFP_EINVAL, "request.%s", why);
    }
    r->q = ifp__request__unpack(NULL, len, buf);
    free(buf);
    if (!r->q) {
        free(r);
        return ifp_errf(err, IFP_ENOMEM, "request: out of memory");
    }
    /* resume_tokens the caller gave: tokens 0..n-1 already received */
    for (size_t i = 0; i < r->q->n_resume_tokens; i++)
        if (cl_req_push_token(r, r->q->resume_tokens[i])) {
            cl_req_destroy(&r);
            return ifp_errf(err, IFP_ENOMEM, "request: out of memory");
        }
    r->user = user;
    r->router = r->from = -1;
    *out = r;
    return IFP_OK;
}

void cl_req_destroy(cl_req_t **pr) {
    if (!pr || !*pr) return;
    cl_req_t *r = *pr;
    if (r->q) ifp__request__free_unpacked(r->q, NULL);
    free(r->toks);
    free(r);
    *pr = NULL;
}

int cl_req_push_token(cl_req_t *r, int32_t tok) {
    if (r->n_toks == r->cap_toks) {
        uint32_t cap = r->cap_toks ? 2 * r->cap_toks : 64;
        int32_t *t = realloc(r->toks, cap * sizeof *t);
        if (!t) return -1;
        r->toks = t, r->cap_toks = cap;
    }
    r->toks[r->n_toks++] = tok;
    return 0;
}

int cl_req_send(ifp_client_t *cl, cl_req_t *r, int k, double now) {
    Ifp__Request *q = r->q;
    size_t n_resume = q->n_resume_tokens;
    int32_t *resume = q->resume_tokens;
    uint32_t deadline = q->deadline_ms;
    q->n_resume_tokens = r->n_toks;
    q->resume_tokens = r->toks;
    if (deadline && r->t_first_send > 0) { /* what is left of it (1 ms: the router ends it at once) */
        double left = deadline - (now - r->t_first_send);
        q->deadline_ms = left >= 1 ? (uint32_t)left : 1;
    }
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = q;
    int rc = cl_conn_send(cl, &cl->r[k], &m.base, ZMQ_DONTWAIT);
    q->n_resume_tokens = n_resume;
    q->resume_tokens = resume;
    q->deadline_ms = deadline;
    if (rc) return -1;
    r->state = CL_SENT;
    r->router = k;
    if (r->t_first_send <= 0) r->t_first_send = now;
    r->t_heard = now;
    r->wait_reply = 0;
    cl->st.sends++;
    return 0;
}

/* ---------------------------------------------------------------- the table */

static size_t hash_id(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

static int grow(cl_reqs_t *t) {
    size_t nb = t->nb ? 2 * t->nb : 64;
    cl_req_t **b = calloc(nb, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < t->nb; i++)
        for (cl_req_t *r = t->b[i], *next; r; r = next) {
            next = r->hnext;
            size_t h = hash_id(r->q->id) & (nb - 1);
            r->hnext = b[h];
            b[h] = r;
        }
    free(t->b);
    t->b = b, t->nb = nb;
    return 0;
}

int cl_reqs_add(cl_reqs_t *t, cl_req_t *r) {
    if (t->n + 1 > 2 * t->nb && grow(t)) return IFP_ENOMEM;
    size_t h = hash_id(r->q->id) & (t->nb - 1);
    r->hnext = t->b[h];
    t->b[h] = r;
    r->prev = t->tail, r->next = NULL;
    if (t->tail) t->tail->next = r;
    else t->head = r;
    t->tail = r;
    t->n++;
    return IFP_OK;
}

cl_req_t *cl_reqs_find(const cl_reqs_t *t, const char *id) {
    if (!t->nb || !id) return NULL;
    for (cl_req_t *r = t->b[hash_id(id) & (t->nb - 1)]; r; r = r->hnext)
        if (!strcmp(r->q->id, id)) return r;
    return NULL;
}

void cl_reqs_remove(cl_reqs_t *t, cl_req_t *r) {
    cl_req_t **p = &t->b[hash_id(r->q->id) & (t->nb - 1)];
    while (*p && *p != r) p = &(*p)->hnext;
    if (!*p) return; /* not in the table */
    *p = r->hnext;
    if (r->prev) r->prev->next = r->next;
    else t->head = r->next;
    if (r->next) r->next->prev = r->prev;
    else t->tail = r->prev;
    r->prev = r->next = r->hnext = NULL;
    t->n--;
}

void cl_reqs_free(cl_reqs_t *t) {
    for (cl_req_t *r = t->head, *next; r; r = next) {
        next = r->next;
        cl_req_destroy(&r);
    }
    free(t->b);
    memset(t, 0, sizeof *t);
}
