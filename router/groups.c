/* groups.c — the backend: heartbeats, token batches and work errors from the
 * shard groups, liveness, replays, and placing work on groups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "clock.h"

#define OUT_SUFFIX ".out" /* identity of a group's last stage */

/* ---------------------------------------------------------------- sending */

static int send_group(rt_router_t *R, int g, Ifp__RouterToGroup *m) {
    rt_group_t *G = rt_balancer_group(R->bal, g);
    if (rt_send(R, R->back, G->name, strlen(G->name), 0, &m->base) == 0) return 0;
    R->st.send_failed++;
    rt_log(R, RT_LOG_SEND, "cannot send to group %s: %s", G->name, zmq_strerror(errno));
    return -1;
}

void rt_send_cancel(rt_router_t *R, int g, uint64_t rid) {
    Ifp__CancelWork c = IFP__CANCEL_WORK__INIT;
    c.rid = rid;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CANCEL;
    m.cancel = &c;
    send_group(R, g, &m);
}

void rt_send_control(rt_router_t *R, int g, int kind, int cluster) {
    Ifp__Control c = IFP__CONTROL__INIT;
    c.kind = (Ifp__Control__Kind)kind;
    c.cluster = cluster;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    m.control = &c;
    send_group(R, g, &m);
}

/* Work for r on group g: its prompt plus every token already received, the
 * budget left, and the index the next token will have. */
static int send_work(rt_router_t *R, rt_req_t *r, int g) {
    int n = rt_req_work_prompt(r, R->ids, R->ids_cap);
    if (n < 0) return -1; /* cannot happen: prompt + max_new <= ctx */
    Ifp__Work w = IFP__WORK__INIT;
    w.rid = r->rid;
    w.n_prompt = (size_t)n;
    w.prompt = R->ids;
    w.max_new = (uint32_t)(r->max_new - r->n_tokens);
    w.first_index = (uint32_t)r->n_tokens;
    w.temperature = r->temperature;
    w.top_p = r->top_p;
    w.top_k = r->top_k;
    w.seed = r->seed;
    if (r->mask) {
        ifp_wire_mask_pack(r->mask, R->maskbuf);
        w.mask.data = R->maskbuf;
        w.mask.len = R->mask_bytes;
    }
    w.eos = R->eos;
    w.debug = r->debug;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
    m.work = &w;
    return send_group(R, g, &m);
}

/* ---------------------------------------------------------------- placing */

void rt_unassign(rt_router_t *R, rt_req_t *r, int finished) {
    if (r->group < 0) return;
    rt_balancer_release(R->bal, r->group, r->charged, finished);
    r->charged = 0;
    r->group = -1;
    r->state = RT_REQ_NEW;
    R->pump = 1;
}

/* Brings the load r puts on its group up to date. */
static void recharge(rt_router_t *R, rt_req_t *r) {
    int64_t now = rt_req_load(r);
    rt_balancer_add_load(R->bal, r->group, now - r->charged);
    r->charged = now;
}

int rt_place(rt_router_t *R, rt_req_t *r) {
    uint64_t failed = 0; /* groups a send just failed to reach */
    for (;;) {
        rt_pick_t p;
        int rc = rt_balancer_pick(R->bal, r->mask, r->avoid | failed, &p);
        if (rc != RT_PICK_OK) return rc == RT_PICK_NEVER && failed ? RT_PICK_WAIT : rc;
        if (send_work(R, r, p.group) != 0) {
            failed |= 1ull << p.group;
            continue;
        }
        double now = ifp_now_ms();
        rt_reqtable_dequeue(R->reqs, r);
        r->state = RT_REQ_RUNNING;
        r->group = p.group;
        r->coverage = p.coverage;
        r->approximate = p.approximate;
        r->prefilled = 0;
        r->lost_beats = 0;
        r->t_sent = now;
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

void rt_pump_queue(rt_router_t *R) {
    if (!R->pump) return;
    R->pump = 0;
    for (rt_req_t *r = rt_reqtable_queue_head(R->reqs), *nx; r; r = nx) {
        if (rt_balancer_total_free(R->bal) == 0) break;
        nx = r->qnext;
        int rc = rt_place(R, r);
        if (rc == RT_PICK_NEVER) {
            char msg[160];
            snprintf(msg, sizeof msg, "no group can take this request any more (%d replays, after %d tokens)",
                     r->n_replays, r->n_tokens);
            rt_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
        }
    }
}

void rt_replay(rt_router_t *R, rt_req_t **rp, int avoid_group, const char *why) {
    rt_req_t *r = *rp;
    if (r->state == RT_REQ_RUNNING) {
        rt_send_cancel(R, r->group, r->rid); /* best effort: frees the slot if the group still holds it */
        rt_unassign(R, r, 0);
    }
    if (avoid_group >= 0) r->avoid |= 1ull << avoid_group;
    if (rt_req_note_replay(r)) {
        char msg[IFP_ERR_MSG_LEN];
        snprintf(msg, sizeof msg, "gave up after %d group failures; last: %.400s", RT_MAX_REPLAYS, why);
        rt_finish(R, rp, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, msg, 0);
        return;
    }
    R->st.replays++;
    rt_log(R, RT_LOG_EVENT, "rid %llu (%s) replayed from token %d: %s", (unsigned long long)r->rid, r->id,
           r->n_tokens, why);
    rt_reqtable_enqueue(R->reqs, r, 1); /* ahead of new work */
    R->pump = 1;
}

/* Replays every request running on group g. */
static int replay_group(rt_router_t *R, int g, const char *why) {
    int n = 0;
    for (rt_req_t *r = rt_reqtable_first(R->reqs), *nx; r; r = nx) {
        nx = r->next;
        if (r->state == RT_REQ_RUNNING && r->group == g) {
            rt_replay(R, &r, -1, why);
            n++;
        }
    }
    return n;
}

void rt_check_groups(rt_router_t *R, double now) {
    int dead[RT_MAX_GROUPS];
    int n = rt_balancer_expire(R->bal, now, dead, RT_MAX_GROUPS);
    for (int i = 0; i < n && i < RT_MAX_GROUPS; i++) {
        rt_group_t *G = rt_balancer_group(R->bal, dead[i]);
        char why[160];
        snprintf(why, sizeof why, "group %s died (no heartbeat for %.0f ms)", G->name, now - G->last_hb);
        R->st.group_deaths++;
        int k = replay_group(R, dead[i], why);
        rt_log(R, RT_LOG_EVENT, "%s; %d requests replayed", why, k);
    }
}

/* ---------------------------------------------------------------- messages */

static void group_malformed(rt_router_t *R, const char *who, const char *why) {
    R->st.group_malformed++;
    rt_log(R, RT_LOG_GROUP, "malformed message from group identity '%s': %s (%llu so far)", who, why,
           (unsigned long long)R->st.group_malformed);
}

static int has_rid(const Ifp__Heartbeat *hb, uint64_t rid) {
    for (size_t i = 0; i < hb->n_running; i++)
        if (hb->running[i] == rid) return 1;
    return 0;
}

/* Work the group should hold but does not list in two heartbeats in a row
 * (and that was sent two periods ago) was lost: replay it. */
static void check_lost_work(rt_router_t *R, int g, const Ifp__Heartbeat *hb, double now) {
    if (hb->n_running == 0 && hb->free_slots < hb->slots) return; /* the group does not list its work */
    for (rt_req_t *r = rt_reqtable_first(R->reqs), *nx; r; r = nx) {
        nx = r->next;
        if (r->state != RT_REQ_RUNNING || r->group != g) continue;
        if (has_rid(hb, r->rid) || now - r->t_sent < 2.0 * R->cfg.heartbeat_ms) {
            r->lost_beats = 0;
        } else if (++r->lost_beats >= 2) {
            R->st.lost_work++;
            rt_replay(R, &r, -1, "its group no longer lists it (work lost)");
        }
    }
}

static void on_heartbeat(rt_router_t *R, int g, const char *who, const Ifp__Heartbeat *hb) {
    rt_group_t *G = rt_balancer_group(R->bal, g);
    if (hb->group && hb->group[0] && strcmp(hb->group, G->name) != 0) {
        char why[160];
        snprintf(why, sizeof why, "heartbeat names group '%.64s'", hb->group);
        group_malformed(R, who, why);
        return;
    }
    if (hb->cluster != G->cluster) {
        int nc = R->clusters ? R->clusters->n_clusters : 0;
        if (hb->cluster != IFP_CLUSTER_DENSE && (hb->cluster < 0 || hb->cluster >= nc)) {
            char why[96];
            snprintf(why, sizeof why, "heartbeat announces cluster %d, the table has %d", (int)hb->cluster, nc);
            group_malformed(R, who, why);
            return;
        }
        const ifp_mask_t *uni = hb->cluster == IFP_CLUSTER_DENSE ? NULL : R->clusters->c[hb->cluster].uni;
        if (rt_balancer_set_cluster(R->bal, g, hb->cluster, uni)) return;
        rt_log(R, RT_LOG_EVENT, "group %s now holds cluster %d", G->name, (int)hb->cluster);
    }
    double now = ifp_now_ms();
    rt_heartbeat_t h = {.incarnation = hb->incarnation,
                        .slots = (int)(hb->slots > 1000000 ? 1000000 : hb->slots),
                        .free_slots = (int)(hb->free_slots > hb->slots ? hb->slots : hb->free_slots),
                        .queued_tokens = hb->queued_tokens,
                        .draining = hb->draining,
                        .stages = (int)(hb->stages > 1000 ? 1000 : hb->stages)};
    if (h.free_slots > h.slots) h.free_slots = h.slots;
    R->st.heartbeats++;
    R->pump = 1;
    switch (rt_balancer_heartbeat(R->bal, g, now, &h)) {
    case RT_HB_FIRST:
        rt_log(R, RT_LOG_EVENT, "group %s up: cluster %d, %d stages, %d slots (incarnation %llu)", G->name,
               G->cluster, G->stages, G->slots, (unsigned long long)G->incarnation);
        break;
    case RT_HB_REVIVED:
        rt_log(R, RT_LOG_EVENT, "group %s is back (same incarnation)", G->name);
        break;
    case RT_HB_RESTARTED: {
        char why[128];
        snprintf(why, sizeof why, "group %s restarted (incarnation %llu)", G->name,
                 (unsigned long long)G->incarnation);
        R->st.group_restarts++;
        int k = replay_group(R, g, why);
        rt_log(R, RT_LOG_EVENT, "%s; %d requests replayed", why, k);
        break;
    }
    default:
        check_lost_work(R, g, hb, now);
    }
}

/* One token for a request running on g.  Anything inconsistent is the
 * group's error on that request: the request is replayed elsewhere. */
static void on_token(rt_router_t *R, int g, const Ifp__GroupToken *t) {
    R->st.tokens++;
    rt_req_t *r = rt_reqtable_find(R->reqs, t->rid);
    if (!r || r->state != RT_REQ_RUNNING) {
        R->st.tok_unknown++;
        return;
    }
    if (r->group != g) { /* from a group the request was taken away from */
        R->st.tok_stale++;
        return;
    }
    char why[160];
    switch (rt_req_check_index(r, t->index)) {
    case RT_TOK_DUPLICATE:
        R->st.tok_duplicate++;
        return;
    case RT_TOK_GAP:
        R->st.tok_gap++;
        snprintf(why, sizeof why, "group %s sent token %u, expected %d", rt_balancer_group(R->bal, g)->name,
                 t->index, r->n_tokens);
        rt_replay(R, &r, g, why);
        return;
    }
    int is_eos = t->token == R->eos;
    int fin = (int)t->finish;
    if ((!is_eos && (t->token < 0 || t->token >= R->lim.vocab)) ||
        (fin != RT_FIN_NONE && fin != RT_FIN_LENGTH && fin != RT_FIN_EOS)) {
        R->st.tok_bad++;
        snprintf(why, sizeof why, "group %s sent token %d with finish %d", rt_balancer_group(R->bal, g)->name,
                 (int)t->token, fin);
        rt_replay(R, &r, g, why);
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
    int rc = rt_req_append(r, t->token, is_eos, piece, len, fin);
    if (rc < 0) {
        rt_finish(R, &r, RT_FIN_ERROR, IFP__ERROR_CODE__ERR_INTERNAL, "out of memory", 1);
        return;
    }
    recharge(R, r);
    if (!is_eos && rt_stream_token(R, r, t->index, t->token, t->logprob) < 0) {
        R->st.cancelled++; /* the client is gone: stop the work */
        rt_finish(R, &r, RT_FIN_CANCELLED, IFP__ERROR_CODE__ERR_NONE, NULL, 1);
        return;
    }
    /* a stop string ended it early: the group would go on generating */
    if (rc == RT_TOK_DONE) rt_finish(R, &r, r->finish, IFP__ERROR_CODE__ERR_NONE, NULL, r->finish == RT_FIN_STOP);
}

static void on_work_error(rt_router_t *R, int g, const Ifp__WorkError *e) {
    rt_req_t *r = rt_reqtable_find(R->reqs, e->rid);
    const char *name = rt_balancer_group(R->bal, g)->name;
    if (!r || r->state != RT_REQ_RUNNING || r->group != g) {
        R->st.tok_unknown++;
        rt_log(R, RT_LOG_GROUP, "group %s: error for rid %llu it does not run: %.200s", name,
               (unsigned long long)e->rid, e->message ? e->message : "");
        return;
    }
    char why[IFP_ERR_MSG_LEN];
    snprintf(why, sizeof why, "group %s failed it: %.400s", name, e->message ? e->message : "");
    R->st.work_errors++;
    rt_replay(R, &r, g, why);
}

/* The group of a backend identity: "G" (stage 0) or "G.out" (last stage). */
static int group_of(rt_router_t *R, const char *ident, size_t len, int *is_out) {
    int g = rt_balancer_find(R->bal, ident, len);
    size_t sl = sizeof OUT_SUFFIX - 1;
    *is_out = 0;
    if (g < 0 && len > sl && memcmp(ident + len - sl, OUT_SUFFIX, sl) == 0) {
        g = rt_balancer_find(R->bal, ident, len - sl);
        *is_out = g >= 0;
    }
    return g;
}

void rt_on_group(rt_router_t *R, ifp_frames_t *f) {
    char who[72] = "?";
    if (f->n >= 1) { /* printable identity for logs */
        size_t n = ifp_frame_size(f, 0) < sizeof who - 1 ? ifp_frame_size(f, 0) : sizeof who - 1;
        const unsigned char *p = ifp_frame_data(f, 0);
        for (size_t i = 0; i < n; i++) who[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '?';
        who[n] = '\0';
    }
    if (f->truncated || f->n != 2) {
        char why[64];
        snprintf(why, sizeof why, "%d%s frames, expected [identity][GroupToRouter]", f->n, f->truncated ? "+" : "");
        group_malformed(R, who, why);
        return;
    }
    int is_out, g = group_of(R, ifp_frame_data(f, 0), ifp_frame_size(f, 0), &is_out);
    if (g < 0) {
        R->st.group_unknown++;
        rt_log(R, RT_LOG_GROUP, "message from unknown group identity '%s' dropped (not in the config; %llu so far)",
               who, (unsigned long long)R->st.group_unknown);
        return;
    }
    Ifp__GroupToRouter *m = ifp_wire_group_msg(ifp_frame_data(f, 1), ifp_frame_size(f, 1));
    if (!m) {
        group_malformed(R, who, "the body is not an ifp.GroupToRouter with heartbeat, tokens or error set");
        return;
    }
    switch (m->msg_case) {
    case IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT:
        if (is_out) group_malformed(R, who, "heartbeats come from stage 0 (identity without .out)");
        else on_heartbeat(R, g, who, m->heartbeat);
        break;
    case IFP__GROUP_TO_ROUTER__MSG_TOKENS:
        for (size_t i = 0; i < m->tokens->n_tokens; i++) on_token(R, g, m->tokens->tokens[i]);
        break;
    case IFP__GROUP_TO_ROUTER__MSG_ERROR:
        on_work_error(R, g, m->error);
        break;
    default:
        group_malformed(R, who, "empty message");
    }
    ifp__group_to_router__free_unpacked(m, NULL);
}
