/* flight.c — the one owner of a request's life (request.h's diagram):
 * every state change, placement on a group, tokens, the end, replays after
 * a group failure, lost and orphaned work, deadlines and keep-alives.
 *
 * Lost work is decided from facts, not timers.  Work reaches a group in the
 * order the router sent it (one connection), and each heartbeat echoes the
 * last Work.seq received (work_seen), the rids the group holds (running)
 * and the ones it finished recently (finished: their last tokens come from
 * the last stage on another connection and may still be on the way).  So a
 * request RUNNING on g is
 *   - in `running`                   -> fine;
 *   - in `finished`                  -> fine while its last tokens may be in
 *                                       flight: lost after liveness_ms more;
 *   - neither, and seq <= work_seen  -> lost (the group had it): replay;
 *   - neither, and seq >  work_seen  -> not received yet; lost in transit
 *                                       after RT_UNSEEN_BEATS heartbeats.
 * A rid a group lists that the router does not run there is an orphan (a
 * previous router's work, or work replayed elsewhere): it is cancelled at
 * the group. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define RT_UNSEEN_BEATS 4      /* heartbeats that do not show a Work received: lost in transit */
#define RT_KEEPALIVE_MS 1000.0 /* a Progress when nothing else went to the client for this long */
#define RT_SWEEP_MS 250.0      /* keep-alive / deferred-stream sweep period */

static void move(rt_router_t *R, rt_req_t *r, rt_req_state_t to) {
    rt_req_state_t from = r->state;
    rt_req_set_state(r, to);
    rt_reqtable_note_state(R->reqs, from, to);
}

/* ---------------------------------------------------------------- orphans */

static int orphan_known(const rt_router_t *R, uint64_t rid) {
    for (int i = 0; i < RT_ORPHAN_MEMORY; i++)
        if (R->orphans[i] == rid) return 1;
    return 0;
}

static void orphan_note(rt_router_t *R, uint64_t rid) {
    R->orphans[R->orphan_at] = rid;
    R->orphan_at = (R->orphan_at + 1) % RT_ORPHAN_MEMORY;
}

/* rid runs on g but the router does not run it there: cancel it (counted
 * once per rid; a rid the router finished itself is expected to linger a
 * moment and is not counted). */
static void cancel_orphan(rt_router_t *R, int g, uint64_t rid) {
    if (!orphan_known(R, rid)) {
        R->st.orphans_cancelled++;
        orphan_note(R, rid);
        rt_log(R, RT_LOG_EVENT, "group %s runs rid %llu, which this router does not run there: cancelled",
               rt_balancer_group(R->bal, g)->name, (unsigned long long)rid);
    }
    rt_group_send_cancel(R, g, rid);
}

/* ---------------------------------------------------------------- placing */

/* Releases r's group slot and load (no message). */
static void unassign(rt_router_t *R, rt_req_t *r, int finished) {
    if (r->group < 0) return;
    rt_balancer_release(R->bal, r->group, r->charged, finished);
    r->charged = 0;
    rt_reqtable_group_unlink(R->reqs, r);
}

/* Brings the load r puts on its group up to date. */
static void recharge(rt_router_t *R, rt_req_t *r) {
    int64_t now = rt_req_load(r);
    rt_balancer_add_load(R->bal, r->group, now - r->charged);
    r->charged = now;
}

/* The request's coverage by every group, from its per-cluster coverage. */
static const double *group_coverage(rt_router_t *R, const rt_req_t *r, double *cov) {
    if (!r->cov) return NULL; /* dense mode */
    int n = rt_balancer_n_groups(R->bal);
    for (int i = 0; i < n; i++) {
        const rt_group_t *G = rt_balancer_group(R->bal, i);
        cov[i] = !G->uni ? 1.0 : G->cluster >= 0 && G->cluster < R->n_clusters ? r->cov[G->cluster] : 0.0;
    }
    return cov;
}

/* Dispatches r (PREDICTING or QUEUED) to a group.  Returns RT_PICK_OK,
 * RT_PICK_WAIT (no group free now) or RT_PICK_NEVER. */
static int place(rt_router_t *R, rt_req_t *r) {
    double covbuf[RT_MAX_GROUPS];
    const double *cov = group_coverage(R, r, covbuf);
    uint64_t failed = 0; /* groups a send just failed to reach */
    for (;;) {
        rt_pick_t p;
        int rc = rt_balancer_pick_cov(R->bal, cov, r->avoid | failed, &p);
        if (rc != RT_PICK_OK) return rc == RT_PICK_NEVER && failed ? RT_PICK_WAIT : rc;
        if (rt_group_send_work(R, r, p.group) != 0) {
            failed |= 1ull << p.group;
            continue;
        }
        double now = ifp_now_ms();
        rt_reqtable_dequeue(R->reqs, r);
        rt_reqtable_group_link(R->reqs, r, p.group);
        move(R, r, RT_REQ_RUNNING);
        r->coverage = p.coverage;
        r->approximate = p.approximate;
        r->prefilled = 0;
        r->beats_unseen = 0;
        r->finished_seen = 0;
        if (!r->t_dispatch) r->t_dispatch = now;
        r->charged = rt_req_load(r);
        rt_balancer_take(R->bal, p.group, r->charged);
        R->st.spills += (uint64_t)p.spilled;
        R->st.approximate += (uint64_t)p.approximate;
        if (R->opt.verbose)
            rt_log(R, RT_LOG_TRACE, "rid %llu (%s) -> %s: coverage %.3f%s%s, %d prompt + %d new tokens from index %d",
                   (unsigned long long)r->rid, r->id, rt_balancer_group(R->bal, p.group)->name, p.coverage,
                   p.spilled ? ", spilled" : "", p.approximate ? ", approximate" : "", r->n_prompt + r->n_tokens,
                   r->max_new - r->n_tokens, r->n_tokens);
        return RT_PICK_OK;
    }
}

static void never_msg(rt_router_t *R, rt_req_t *r, char *msg, size_t cap) {
    double covbuf[RT_MAX_GROUPS];
    rt_pick_t p;
    rt_balancer_pick_cov(R->bal, group_coverage(R, r, covbuf), 0, &p);
    snprintf(msg, cap, "no configured group can serve this request's mask: best coverage %.3f < min_coverage %.3f",
             p.best_possible, R->cfg.min_coverage);
}

/* A request whose prompt and mask are ready: placed, queued or refused. */
/* A client's failover (Request.resume_tokens): the tokens it already has
 * become the request's first tokens, as if a group had sent them and the
 * client had taken their events; the first dispatch is then a replay from
 * there (prompt + tokens, first_index = n, the same seed).  Returns 1 when
 * they already finish it (a stop string, max_new): then it is finished. */
static int resume(rt_router_t *R, rt_req_t **rp) {
    rt_req_t *r = *rp;
    int n = r->n_resume, rc = RT_TOK_OK;
    r->n_resume = 0;
    if (n >= r->max_new) n = r->max_new; /* a context cut since: what fits */
    for (int i = 0; i < n && rc == RT_TOK_OK; i++) {
        int32_t t = r->resume[i];
        int is_eos = t == R->eos && !r->ignore_eos;
        size_t len = 0;
        const char *piece = is_eos ? "" : ifp_tokenizer_piece(R->tok, rt_req_prev_token(r), t, &len);
        rc = rt_req_append(r, t, 0.0f, is_eos, piece, len, RT_FIN_NONE);
    }
    free(r->resume);
    r->resume = NULL;
    if (rc < 0) {
        rt_flight_finish(R, rp, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, "out of memory", 0);
        return 1;
    }
    r->n_streamed = r->n_tokens; /* the client has their events ... */
    const char *p;
    rt_req_stream_advance(r, rt_req_stream_text(r, &p)); /* ... and their final text */
    R->st.resumed++;
    rt_log(R, RT_LOG_EVENT, "rid %llu (%s) resumed from token %d (a client's failover)", (unsigned long long)r->rid,
           r->id, r->n_tokens);
    if (rc == RT_TOK_DONE) {
        rt_flight_finish(R, rp, r->finish, IFP__ERROR_CODE__ERR_NONE, NULL, 0);
        return 1;
    }
    return 0;
}

static void ready(rt_router_t *R, rt_req_t *r) {
    if (r->resume && resume(R, &r)) return;
    int rc = place(R, r);
    if (rc == RT_PICK_OK) return;
    if (rc == RT_PICK_WAIT) {
        move(R, r, RT_REQ_QUEUED);
        rt_reqtable_enqueue(R->reqs, r, 0);
        return;
    }
    char msg[256];
    never_msg(R, r, msg, sizeof msg);
    rt_flight_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
}

void rt_flight_admit(rt_router_t *R, rt_req_t *r, rt_job_t *job) {
    /* without a job: a cached task mask, or dense mode */
    r->mask_mode = job ? job->mode : r->mask_bits ? IFP__MASK_MODE__MASK_TASK : IFP__MASK_MODE__MASK_DENSE;
    if (!job) {
        r->t_masked = ifp_now_ms();
        r->predictor_ms = r->t_masked - r->t_arrival;
        ready(R, r);
        return;
    }
    job->rid = r->rid;
    job->t_submit = ifp_now_ms();
    r->job = job;
    R->st.predictor_jobs++;
    rt_predict_submit(R->pred, job);
}

/* Refuses a request that was admitted but turned out invalid once
 * tokenized: one Error, no Reply (as for any refused request). */
static void refuse(rt_router_t *R, rt_req_t **rp, int code, const char *msg) {
    rt_req_t *r = *rp;
    rt_client_error(R, r, code, msg, 0);
    move(R, r, RT_REQ_DONE);
    rt_reqtable_remove(R->reqs, rp);
}

void rt_flight_job_done(rt_router_t *R, rt_job_t *job) {
    rt_metrics_on_job(R, job, ifp_now_ms());
    rt_req_t *r = rt_reqtable_find(R->reqs, job->rid);
    if (!r || r->job != job) { /* cannot happen: a dropped job is freed by the pool */
        rt_job_free(job);
        return;
    }
    r->job = NULL;
    char msg[IFP_ERR_MSG_LEN];
    if (job->rc) {
        rt_log(R, RT_LOG_CLIENT, "request \"%s\": %s", r->id, job->err);
        snprintf(msg, sizeof msg, "%s", job->err);
        if (job->tok_failed) { /* the prompt's fault: refused */
            R->st.bad_requests++;
            refuse(R, &r, IFP__ERROR_CODE__ERR_BAD_REQUEST, msg);
        } else {
            R->st.predictor_errors++;
            rt_flight_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
        }
        rt_job_free(job);
        return;
    }
    if (!r->prompt) { /* tokenized on the worker */
        int n = job->n_full, max_new;
        if (n > job->ids_cap || n >= R->lim.ctx) {
            snprintf(msg, sizeof msg, "prompt: %d tokens, the model context is %d", n, R->lim.ctx);
            R->st.bad_requests++;
            refuse(R, &r, IFP__ERROR_CODE__ERR_BAD_REQUEST, msg);
            rt_job_free(job);
            return;
        }
        if (rt_admit_fit(&R->lim, n, r->max_tokens_req, &max_new, msg, sizeof msg)) {
            R->st.bad_requests++;
            refuse(R, &r, IFP__ERROR_CODE__ERR_BAD_REQUEST, msg);
            rt_job_free(job);
            return;
        }
        if (rt_req_set_prompt(r, job->ids, n, max_new)) {
            rt_flight_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, "out of memory", 0);
            rt_job_free(job);
            return;
        }
    }
    if (job->bits) { /* the mask: the request takes it over */
        r->mask_bits = job->bits;
        r->cov = job->cov;
        r->mask_cluster = job->nearest;
        job->bits = NULL;
        job->cov = NULL;
        if (job->mode == IFP__MASK_MODE__MASK_TASK && job->task &&
            rt_taskcache_put(R->tasks, job->task, r->mask_bits, r->cov, r->mask_cluster))
            rt_log(R, RT_LOG_EVENT, "out of memory caching a task mask");
    }
    if (r->mask_bits) rt_balancer_note_demand(R->bal, r->mask_cluster);
    r->t_masked = ifp_now_ms();
    r->predictor_ms = r->t_masked - r->t_arrival;
    rt_job_free(job);
    ready(R, r);
}

void rt_flight_pump(rt_router_t *R) {
    if (!rt_balancer_capacity_changed(R->bal)) return;
    for (rt_req_t *r = rt_reqtable_queue_head(R->reqs), *nx; r; r = nx) {
        if (rt_balancer_total_free(R->bal) == 0) break;
        nx = r->qnext;
        int rc = place(R, r);
        if (rc == RT_PICK_NEVER) {
            char msg[160];
            snprintf(msg, sizeof msg, "no group can take this request any more (%d replays, after %d tokens)",
                     r->n_replays, r->n_tokens);
            rt_flight_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
        }
    }
}

/* ---------------------------------------------------------------- the end */

void rt_flight_finish(rt_router_t *R, rt_req_t **rp, int finish, int code, const char *msg, int cancel_group) {
    rt_flight_finish_as(R, rp, finish, code, msg, cancel_group, rt_mstatus_of(finish, code));
}

void rt_flight_finish_as(rt_router_t *R, rt_req_t **rp, int finish, int code, const char *msg, int cancel_group,
                         int status) {
    rt_req_t *r = *rp;
    double now = ifp_now_ms();
    r->finish = finish;
    rt_metrics_on_finish(R, r, status, now); /* counted and logged while r still holds its group */
    if (r->state == RT_REQ_RUNNING) {
        if (cancel_group) rt_group_send_cancel(R, r->group, r->rid);
        unassign(R, r, finish != RT_FIN_ERROR && finish != RT_FIN_CANCELLED);
    }
    if (r->job) {
        rt_predict_drop(R->pred, r->job);
        r->job = NULL;
    }
    rt_reqtable_dequeue(R->reqs, r);
    move(R, r, RT_REQ_DONE);
    orphan_note(R, r->rid); /* the group may list it a moment longer */
    if (code != IFP__ERROR_CODE__ERR_NONE) {
        rt_client_error(R, r, code, msg, 0);
        if (code == IFP__ERROR_CODE__ERR_INTERNAL) R->st.internal_errors++;
    }
    if (r->stream) rt_client_stream(R, r); /* deferred events first, if the client takes them now */
    rt_client_reply(R, r, now);
    R->st.replies++;
    double total = now - r->t_arrival;
    if (finish != RT_FIN_CANCELLED && finish != RT_FIN_ERROR)
        R->svc_ms = R->svc_ms > 0 ? 0.9 * R->svc_ms + 0.1 * total : total;
    if (R->opt.verbose) {
        const rt_group_t *g = rt_balancer_group(R->bal, r->last_group);
        rt_log(R, RT_LOG_TRACE, "rid %llu (%s) finished %d after %d tokens on %s, %.1f ms, %d replays",
               (unsigned long long)r->rid, r->id, finish, r->n_tokens, g ? g->name : "-", total, r->n_replays);
    }
    rt_reqtable_remove(R->reqs, rp);
}

void rt_flight_replay(rt_router_t *R, rt_req_t **rp, int avoid_group, const char *why) {
    rt_req_t *r = *rp;
    if (r->state != RT_REQ_RUNNING) return;
    rt_metrics_on_replay(R, r->group);
    rt_group_send_cancel(R, r->group, r->rid); /* best effort: frees the slot if the group still holds it */
    unassign(R, r, 0);
    if (avoid_group >= 0) r->avoid |= 1ull << avoid_group;
    if (rt_req_note_replay(r)) {
        char msg[IFP_ERR_MSG_LEN];
        snprintf(msg, sizeof msg, "gave up after %d group failures; last: %.400s", RT_MAX_REPLAYS, why);
        rt_flight_finish(R, rp, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
        return;
    }
    R->st.replays++;
    rt_log(R, RT_LOG_EVENT, "rid %llu (%s) replayed from token %d: %s", (unsigned long long)r->rid, r->id,
           r->n_tokens, why);
    move(R, r, RT_REQ_QUEUED);
    rt_reqtable_enqueue(R->reqs, r, 1); /* ahead of new work */
    rt_balancer_capacity_poke(R->bal); /* the queue (this request first) gets another try */
}

int rt_flight_group_lost(rt_router_t *R, int g, const char *why) {
    int n = 0;
    for (rt_req_t *r = rt_reqtable_group_first(R->reqs, g), *nx; r; r = nx) {
        nx = r->gnext;
        rt_flight_replay(R, &r, -1, why);
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- heartbeats */

/* A small open-addressing set of rids (a heartbeat's lists), over buffers
 * the router sized at start for the largest heartbeat it accepts. */
typedef struct {
    uint64_t *key;
    uint32_t *val;
    int cap; /* power of two, more than twice the entries */
} rid_set_t;

static uint32_t rid_slot(uint64_t rid, int cap) {
    rid ^= rid >> 33;
    rid *= 0xff51afd7ed558ccdull;
    rid ^= rid >> 33;
    return (uint32_t)(rid & (uint64_t)(cap - 1));
}

static void set_put(rid_set_t *s, uint64_t rid, uint32_t val) {
    if (rid == 0) return; /* 0 marks an empty cell; no rid is 0 */
    for (uint32_t i = rid_slot(rid, s->cap);; i = (i + 1) & (uint32_t)(s->cap - 1))
        if (s->key[i] == 0 || s->key[i] == rid) {
            s->key[i] = rid;
            s->val[i] = val;
            return;
        }
}

static int set_get(const rid_set_t *s, uint64_t rid, uint32_t *val) {
    if (rid == 0) return 0;
    for (uint32_t i = rid_slot(rid, s->cap);; i = (i + 1) & (uint32_t)(s->cap - 1)) {
        if (s->key[i] == 0) return 0;
        if (s->key[i] == rid) {
            if (val) *val = s->val[i];
            return 1;
        }
    }
}

void rt_flight_heartbeat(rt_router_t *R, int g, const Ifp__Heartbeat *hb) {
    /* the backend bounded hb's lists: each fits in under half its set */
    int cap = 16;
    while (cap < 2 * (int)(hb->n_running > hb->n_finished ? hb->n_running : hb->n_finished) + 2) cap *= 2;
    if (cap > R->hb_set_cap) cap = R->hb_set_cap; /* cannot happen (bounded), but never overrun */
    rid_set_t running = {R->hb_keys, R->hb_vals, cap}, finished = {R->hb_keys + cap, R->hb_vals + cap, cap};
    memset(R->hb_keys, 0, sizeof *R->hb_keys * 2 * (size_t)cap);
    for (size_t i = 0; i < hb->n_running; i++) set_put(&running, hb->running[i], 1);
    for (size_t i = 0; i < hb->n_finished; i++)
        if (hb->finished[i]) set_put(&finished, hb->finished[i]->rid, hb->finished[i]->tokens);
    uint64_t seen = hb->router_epoch == R->epoch ? hb->work_seen : 0;
    double now = ifp_now_ms(), grace = (double)R->cfg.liveness * R->cfg.heartbeat_ms;
    const char *name = rt_balancer_group(R->bal, g)->name;
    for (rt_req_t *r = rt_reqtable_group_first(R->reqs, g), *nx; r; r = nx) {
        nx = r->gnext;
        char why[200];
        if (set_get(&running, r->rid, NULL)) {
            r->beats_unseen = 0;
            r->finished_seen = 0;
        } else if (set_get(&finished, r->rid, NULL)) {
            if (!r->finished_seen) r->finished_seen = now;
            else if (now - r->finished_seen > grace) {
                R->st.lost_tokens++;
                snprintf(why, sizeof why, "group %s finished it but its last tokens did not arrive within %.0f ms",
                         name, grace);
                rt_flight_replay(R, &r, -1, why);
            }
        } else if (r->work_seq <= seen) {
            R->st.lost_work++;
            snprintf(why, sizeof why, "group %s received it and no longer holds it (work lost)", name);
            rt_flight_replay(R, &r, -1, why);
        } else if (++r->beats_unseen >= RT_UNSEEN_BEATS) {
            R->st.lost_in_transit++;
            snprintf(why, sizeof why, "group %s did not receive it in %d heartbeats (lost in transit)", name,
                     RT_UNSEEN_BEATS);
            rt_flight_replay(R, &r, -1, why);
        }
    }
    for (size_t i = 0; i < hb->n_running; i++) {
        const rt_req_t *q = rt_reqtable_find(R->reqs, hb->running[i]);
        if (!q || q->state != RT_REQ_RUNNING || q->group != g) cancel_orphan(R, g, hb->running[i]);
    }
}

/* ---------------------------------------------------------------- tokens */

void rt_flight_token(rt_router_t *R, int g, const Ifp__GroupToken *t) {
    R->st.tokens++;
    rt_req_t *r = rt_reqtable_find(R->reqs, t->rid);
    if (!r) {
        R->st.tok_unknown++;
        if (!orphan_known(R, t->rid)) cancel_orphan(R, g, t->rid);
        return;
    }
    if (r->state != RT_REQ_RUNNING || r->group != g) { /* from a group the request was taken away from */
        R->st.tok_stale++;
        return;
    }
    const char *name = rt_balancer_group(R->bal, g)->name;
    char why[160];
    switch (rt_req_check_index(r, t->index)) {
    case RT_TOK_DUPLICATE:
        R->st.tok_duplicate++;
        return;
    case RT_TOK_GAP:
        R->st.tok_gap++;
        snprintf(why, sizeof why, "group %s sent token %u, expected %d", name, t->index, r->n_tokens);
        rt_flight_replay(R, &r, g, why);
        return;
    }
    int is_eos = t->token == R->eos && !r->ignore_eos;
    int fin = (int)t->finish;
    if ((!is_eos && (t->token < 0 || t->token >= R->lim.vocab)) ||
        (fin != RT_FIN_NONE && fin != RT_FIN_LENGTH && fin != RT_FIN_EOS)) {
        R->st.tok_bad++;
        snprintf(why, sizeof why, "group %s sent token %d with finish %d", name, (int)t->token, fin);
        rt_flight_replay(R, &r, g, why);
        return;
    }
    if (t->index == 0 && t->debug && t->debug->n_logits_last_prompt > 0)
        rt_req_set_head(r, t->debug->logits_last_prompt, (int)t->debug->n_logits_last_prompt,
                        t->debug->argmax_last_prompt);
    size_t len = 0;
    const char *piece = is_eos ? "" : ifp_tokenizer_piece(R->tok, rt_req_prev_token(r), t->token, &len);
    if (!r->t_first) r->t_first = ifp_now_ms();
    r->prefilled = 1;
    r->last_group = g;
    int rc = rt_req_append(r, t->token, t->logprob, is_eos, piece, len, fin);
    if (rc < 0) {
        rt_flight_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, "out of memory", 1);
        return;
    }
    rt_metrics_on_token(R, g);
    recharge(R, r);
    if (rt_client_stream(R, r) < 0) {
        R->st.cancelled++; /* the client is gone: stop the work */
        rt_flight_finish_as(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE, NULL, 1, RT_MSTATUS_CLIENT_GONE);
        return;
    }
    /* a stop string ended it early: the group would go on generating */
    if (rc == RT_TOK_DONE) rt_flight_finish(R, &r, r->finish, IFP__ERROR_CODE__ERR_NONE, NULL, r->finish == RT_FIN_STOP);
}

void rt_flight_work_error(rt_router_t *R, int g, const Ifp__WorkError *e) {
    rt_req_t *r = rt_reqtable_find(R->reqs, e->rid);
    const char *name = rt_balancer_group(R->bal, g)->name;
    char text[256];
    rt_printable(text, sizeof text, e->message ? e->message : "", e->message ? strlen(e->message) : 0);
    if (!r || r->state != RT_REQ_RUNNING || r->group != g) {
        R->st.tok_unknown++;
        rt_log(R, RT_LOG_GROUP, "group %s: error for rid %llu it does not run: %s", name, (unsigned long long)e->rid,
               text);
        return;
    }
    if (e->busy) { /* no slot free there (another router's work holds it): place it again, nothing failed */
        R->st.group_busy++;
        rt_log(R, RT_LOG_EVENT, "rid %llu (%s): group %s is busy (%s); placed again", (unsigned long long)r->rid,
               r->id, name, text);
        unassign(R, r, 0);
        rt_balancer_note_full(R->bal, g);
        move(R, r, RT_REQ_QUEUED);
        rt_reqtable_enqueue(R->reqs, r, 1); /* ahead of new work */
        rt_balancer_capacity_poke(R->bal);
        return;
    }
    char why[IFP_ERR_MSG_LEN];
    snprintf(why, sizeof why, "group %s failed it: %s", name, text);
    R->st.work_errors++;
    rt_flight_replay(R, &r, g, why);
}

/* ---------------------------------------------------------------- timers */

double rt_flight_timers(rt_router_t *R, double now) {
    double next = 0;
    int sweep = now >= R->next_keepalive;
    if (sweep) R->next_keepalive = now + RT_SWEEP_MS;
    for (rt_req_t *r = rt_reqtable_first(R->reqs), *nx; r; r = nx) {
        nx = r->next;
        if (r->deadline && r->deadline <= now) {
            char msg[128];
            snprintf(msg, sizeof msg, "deadline of %.0f ms passed after %d tokens", r->deadline - r->t_arrival,
                     r->n_tokens);
            R->st.deadlines++;
            rt_flight_finish(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_DEADLINE, msg, 1);
            continue;
        }
        if (r->deadline && (!next || r->deadline < next)) next = r->deadline;
        if (!sweep) continue;
        int gone = 0;
        if (r->stream && r->n_streamed < r->n_tokens) gone = rt_client_stream(R, r) < 0;
        else if (!r->delim && now - (r->t_last_sent ? r->t_last_sent : r->t_arrival) >= RT_KEEPALIVE_MS)
            gone = rt_client_progress(R, r) < 0; /* not to a REQ client: it takes one message per request */
        if (gone) { /* the client went away: nobody reads the answer */
            R->st.cancelled++;
            rt_flight_finish_as(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE, NULL, 1, RT_MSTATUS_CLIENT_GONE);
        }
    }
    /* sends to a full group pipe leave work queued with slots free: retry */
    if (sweep && rt_reqtable_queue_len(R->reqs) && rt_balancer_total_free(R->bal))
        rt_balancer_capacity_poke(R->bal);
    if (!next || R->next_keepalive < next) next = R->next_keepalive;
    return next;
}

void rt_flight_abort_all(rt_router_t *R, const char *why) {
    for (rt_req_t *r = rt_reqtable_first(R->reqs), *nx; r; r = nx) {
        nx = r->next;
        rt_flight_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, why, 1);
    }
}
