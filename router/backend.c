/* backend.c — the router's side of the shard groups: what it sends them
 * (Work, CancelWork, Control) and what it reads from them (heartbeats,
 * token batches, work errors), validated and clamped to the configuration
 * before anything else sees it.  Requests are flight.c's business. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define OUT_SUFFIX ".out" /* identity of a group's last stage */

/* ---------------------------------------------------------------- sending */

static int send_group(rt_router_t *R, int g, Ifp__RouterToGroup *m) {
    rt_group_t *G = rt_balancer_group(R->bal, g);
    if (!G->ident_len) errno = EHOSTUNREACH;
    else if (rt_send(R->back, G->ident, (size_t)G->ident_len, 0, &m->base) == 0) return 0;
    R->st.send_failed++;
    rt_log(R, RT_LOG_SEND, "cannot send to group %s: %s", G->name,
           errno == EHOSTUNREACH ? "not connected" : errno == EAGAIN ? "its queue is full" : zmq_strerror(errno));
    return -1;
}

void rt_group_send_cancel(rt_router_t *R, int g, uint64_t rid) {
    Ifp__CancelWork c = IFP__CANCEL_WORK__INIT;
    c.rid = rid;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CANCEL;
    m.cancel = &c;
    send_group(R, g, &m);
}

void rt_group_send_control(rt_router_t *R, int g, int kind, int cluster) {
    Ifp__Control c = IFP__CONTROL__INIT;
    c.kind = (Ifp__Control__Kind)kind;
    c.cluster = cluster;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_CONTROL;
    m.control = &c;
    send_group(R, g, &m);
}

int rt_group_send_work(rt_router_t *R, rt_req_t *r, int g) {
    int n = rt_req_work_prompt(r, R->ids, R->ids_cap);
    if (n < 0) return -1; /* cannot happen: prompt + max_new <= ctx */
    rt_group_t *G = rt_balancer_group(R->bal, g);
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
    if (r->mask_bits) {
        w.mask.data = r->mask_bits;
        w.mask.len = R->mask_bytes;
    }
    w.eos = r->ignore_eos ? -1 : R->eos;
    w.debug = r->debug;
    w.router_epoch = R->epoch;
    w.seq = G->send_seq + 1;
    Ifp__RouterToGroup m = IFP__ROUTER_TO_GROUP__INIT;
    m.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
    m.work = &w;
    if (send_group(R, g, &m)) return -1;
    G->send_seq = w.seq;
    r->work_seq = w.seq;
    return 0;
}

/* ---------------------------------------------------------------- checks */

static void group_malformed(rt_router_t *R, const char *who, const char *why) {
    R->st.group_malformed++;
    rt_log(R, RT_LOG_GROUP, "malformed message from group identity '%s': %s (%llu so far)", who, why,
           (unsigned long long)R->st.group_malformed);
}

/* Checks a heartbeat against the configuration; 0, or -1 with why.  Counts
 * beyond what the configured group can hold are a broken or hostile peer:
 * the heartbeat is refused (it does not keep the group alive). */
static int check_heartbeat(rt_router_t *R, int g, const Ifp__Heartbeat *hb, char *why, size_t cap) {
    const rt_group_t *G = rt_balancer_group(R->bal, g);
    if (hb->group && hb->group[0] && strcmp(hb->group, G->name) != 0) {
        char name[72];
        rt_printable(name, sizeof name, hb->group, strlen(hb->group));
        return snprintf(why, cap, "heartbeat names group '%s'", name), -1;
    }
    if (hb->cluster != IFP_CLUSTER_DENSE && (hb->cluster < 0 || hb->cluster >= R->n_clusters))
        return snprintf(why, cap, "heartbeat announces cluster %d, the table has %d", (int)hb->cluster, R->n_clusters),
               -1;
    if (hb->n_running > (size_t)R->hb_max_running)
        return snprintf(why, cap, "heartbeat lists %zu running requests, at most %d for %d slots", hb->n_running,
                        R->hb_max_running, G->cfg_slots),
               -1;
    if (hb->n_finished > (size_t)R->hb_max_finished)
        return snprintf(why, cap, "heartbeat lists %zu finished requests, at most %d for %d slots", hb->n_finished,
                        R->hb_max_finished, G->cfg_slots),
               -1;
    return 0;
}

static void on_heartbeat(rt_router_t *R, int g, const char *who, const Ifp__Heartbeat *hb, const void *ident,
                         size_t ident_len) {
    rt_group_t *G = rt_balancer_group(R->bal, g);
    char why[200];
    if (check_heartbeat(R, g, hb, why, sizeof why)) {
        R->st.heartbeats_refused++;
        group_malformed(R, who, why);
        return;
    }
    /* Work goes to the connection that heartbeats (a restarted group's new
     * one; the old one is gone or will be) */
    if (ident_len <= sizeof G->ident && ((size_t)G->ident_len != ident_len || memcmp(G->ident, ident, ident_len))) {
        memcpy(G->ident, ident, ident_len);
        G->ident_len = (int)ident_len;
    }
    if (hb->cluster != G->cluster) {
        const ifp_mask_t *uni = hb->cluster == IFP_CLUSTER_DENSE ? NULL : R->clusters->c[hb->cluster].uni;
        if (rt_balancer_set_cluster(R->bal, g, hb->cluster, uni)) return;
        rt_log(R, RT_LOG_EVENT, "group %s now holds cluster %d", G->name, (int)hb->cluster);
    }
    double now = ifp_now_ms();
    const ifp_group_cfg_t *gc = ifp_config_group(&R->cfg, G->name);
    int64_t max_tokens = (int64_t)(R->hb_max_running + 1) * R->model.ctx;
    rt_heartbeat_t h = {
        .incarnation = hb->incarnation,
        .slots = hb->slots > (uint32_t)G->cfg_slots ? G->cfg_slots : (int)hb->slots,
        .free_slots = hb->free_slots > (uint32_t)G->cfg_slots ? G->cfg_slots : (int)hb->free_slots,
        .queued_tokens = (int64_t)hb->queued_tokens > max_tokens ? max_tokens : (int64_t)hb->queued_tokens,
        .draining = hb->draining,
        .stages = gc && hb->stages > (uint32_t)gc->stages ? gc->stages : (int)hb->stages};
    R->st.heartbeats++;
    G->hb_running = (int)hb->n_running;
    G->tokens_generated = hb->tokens_generated;
    G->requests_done = hb->requests_done;
    switch (rt_balancer_heartbeat(R->bal, g, now, &h)) {
    case RT_HB_FIRST:
        rt_log(R, RT_LOG_EVENT, "group %s up: cluster %d, %d stages, %d slots (incarnation %llu)", G->name,
               G->cluster, G->stages, G->slots, (unsigned long long)G->incarnation);
        break;
    case RT_HB_REVIVED:
        rt_log(R, RT_LOG_EVENT, "group %s is back (same incarnation)", G->name);
        break;
    case RT_HB_RESTARTED: {
        char msg[128];
        snprintf(msg, sizeof msg, "group %s restarted (incarnation %llu)", G->name,
                 (unsigned long long)G->incarnation);
        R->st.group_restarts++;
        int k = rt_flight_group_lost(R, g, msg);
        rt_log(R, RT_LOG_EVENT, "%s; %d requests replayed", msg, k);
        break;
    }
    default:
        break;
    }
    rt_flight_heartbeat(R, g, hb);
}

/* The group of a backend routing id: "G" (stage 0) or "G.out" (last
 * stage), either followed by "#NONCE" (what ifp-shard uses: a restarted
 * group's new connection never collides with its old one). */
static int group_of(rt_router_t *R, const char *ident, size_t len, int *is_out) {
    const char *hash = memchr(ident, '#', len);
    if (hash) len = (size_t)(hash - ident);
    int g = rt_balancer_find(R->bal, ident, len);
    size_t sl = sizeof OUT_SUFFIX - 1;
    *is_out = 0;
    if (g < 0 && len > sl && memcmp(ident + len - sl, OUT_SUFFIX, sl) == 0) {
        g = rt_balancer_find(R->bal, ident, len - sl);
        *is_out = g >= 0;
    }
    return g;
}

/* With CURVE, a message counts for group g only when its connection was
 * made with g's key (the ZAP User-Id is the key). */
static int sent_by_group(rt_router_t *R, ifp_frames_t *f, int g, const char *who) {
    if (!R->curve) return 1;
    const char *user = zmq_msg_gets(&f->part[f->n - 1], "User-Id");
    int idx, kind = rt_zap_who(R->zap, user, &idx);
    if (kind == RT_PEER_GROUP && idx == g) return 1;
    R->st.group_forged++;
    rt_log(R, RT_LOG_GROUP, "message from routing id '%s' dropped: its connection's key is %s, not group %s's (%llu so far)",
           who, kind == RT_PEER_GROUP ? rt_balancer_group(R->bal, idx)->name : "no group's",
           rt_balancer_group(R->bal, g)->name, (unsigned long long)R->st.group_forged);
    return 0;
}

void rt_on_group(rt_router_t *R, ifp_frames_t *f) {
    char who[72] = "?";
    if (f->n >= 1) rt_printable(who, sizeof who, ifp_frame_data(f, 0), ifp_frame_size(f, 0));
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
    if (!sent_by_group(R, f, g, who)) return;
    Ifp__GroupToRouter *m = ifp_wire_group_msg(ifp_frame_data(f, 1), ifp_frame_size(f, 1));
    if (!m) {
        group_malformed(R, who, "the body is not an ifp.GroupToRouter with heartbeat, tokens or error set");
        return;
    }
    switch (m->msg_case) {
    case IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT:
        if (is_out) group_malformed(R, who, "heartbeats come from stage 0 (identity without .out)");
        else on_heartbeat(R, g, who, m->heartbeat, ifp_frame_data(f, 0), ifp_frame_size(f, 0));
        break;
    case IFP__GROUP_TO_ROUTER__MSG_TOKENS:
        rt_balancer_seen(R->bal, g, ifp_now_ms());
        for (size_t i = 0; i < m->tokens->n_tokens; i++) rt_flight_token(R, g, m->tokens->tokens[i]);
        break;
    case IFP__GROUP_TO_ROUTER__MSG_ERROR:
        rt_balancer_seen(R->bal, g, ifp_now_ms());
        rt_flight_work_error(R, g, m->error);
        break;
    default:
        group_malformed(R, who, "empty message");
    }
    ifp__group_to_router__free_unpacked(m, NULL);
}
