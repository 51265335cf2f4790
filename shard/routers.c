/* routers.c — stage 0's side of the routers (intake.h).
 *
 * Several routers (active-active).  Stage 0 has one link per router of the
 * config (G->links, routerlink.h) and reads Work, CancelWork and Control
 * from all of them (one zmq_poll over every socket and its monitor; idle,
 * it sleeps until the next heartbeat).  Each request remembers its link
 * (sh_work_t.link): its tokens and work errors go back on that link (the
 * link travels to the last stage in the SETUP), and a CancelWork counts
 * only from that link (a cancel for another link's rid is ignored).  Every
 * link gets a heartbeat every heartbeat_ms listing only its own requests
 * (running, finished) and echoing its own last Work (router_epoch,
 * work_seen) — a router cancels as orphans the rids it does not know —
 * with the group-wide numbers as true totals over every router (slots,
 * free_slots, queued_tokens, kv_free, tokens_generated, requests_done,
 * draining, cluster), so each router's balancer sees the whole group.
 *
 * Admission.  The group holds at most `slots` requests, whoever sent them:
 * a Work that finds none free is refused at once with WorkError{busy}
 * ("group G is busy: S of S slots taken"); the router places it again.  No
 * work waits beyond the slots (two routers can never oversubscribe the
 * slots or the KV memory); a Work taken while a slot is still draining a
 * cancelled request's last micro-batch waits for that slot only.  Before
 * refusing, a stage 0 with later stages reads the tokens that came back
 * (the last stage tells stage 0 before the routers that a request ended).
 * Other refusals (invalid work, draining, a rid already running) are as
 * with one router, busy = false.  Every Work, refused or not, counts for
 * its link's work_seen.
 *
 * A router that goes away: once a link has been disconnected (its socket
 * monitor) for longer than liveness × heartbeat_ms, the link's requests are
 * cancelled — their slots freed for the other routers' work — with one log
 * line naming the router and how many were dropped.  (A restarted router
 * would cancel them as orphans anyway; its clients re-send them elsewhere.)
 */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "intake.h"

/* Sends link i's heartbeat: the group-wide numbers, link i's requests and
 * its last Work.  0, or -1 if it was dropped (no router connected). */
static int heartbeat(sh_intake_t *f, int i) {
    sh_sched_stats_t s;
    sh_sched_stats(f->sched, &s, NULL);
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
        .n_running = sh_sched_running(f->sched, i, f->rids),
        .router_epoch = f->lk[i].router_epoch,
        .work_seen = f->lk[i].work_seen,
        .finished = f->fin,
        .n_finished = sh_sched_finished(f->sched, i, ifp_now_ms(), keep, f->fin),
        .tokens_generated = s.tokens_generated,
        .requests_done = s.requests_done,
    };
    return sh_routerlink_heartbeat(&f->G->links[i], &hb);
}

/* Sends each link's heartbeat if it is due.  A heartbeat that found no
 * router (it restarted, or the group did) is tried again soon, backing off
 * to the period: the router hears of the group, and of the work it still
 * runs, right after it (re)connects. */
void sh_routers_heartbeat_if_due(sh_intake_t *f, double now) {
    double hb_ms = f->G->cfg->heartbeat_ms;
    for (int i = 0; i < f->G->n_links; i++) {
        sh_intake_link_t *k = &f->lk[i];
        if (now < k->next_hb) continue;
        if (heartbeat(f, i) == 0) {
            k->next_hb = now + hb_ms;
            k->hb_retry = SH_HB_RETRY_MS;
        } else {
            k->next_hb = now + (k->hb_retry < hb_ms ? k->hb_retry : hb_ms);
            k->hb_retry *= 2;
        }
    }
}

/* The earliest heartbeat due. */
double sh_routers_next_heartbeat(const sh_intake_t *f) {
    double t = f->lk[0].next_hb;
    for (int i = 1; i < f->G->n_links; i++)
        if (f->lk[i].next_hb < t) t = f->lk[i].next_hb;
    return t;
}

void sh_routers_heartbeat_all(sh_intake_t *f) {
    for (int i = 0; i < f->G->n_links; i++) heartbeat(f, i);
}

static void on_work(sh_intake_t *f, int i, sh_router_msg_t *m) {
    sh_routerlink_t *l = &f->G->links[i];
    sh_intake_link_t *k = &f->lk[i];
    uint64_t rid = m->work->rid;
    const char *name = f->G->group->name;
    char why[256];
    /* Work arrives in order on one connection: the last one seen tells that
     * router which of its Work reached us (refused ones included) */
    k->router_epoch = m->router_epoch;
    k->work_seen = m->seq;
    k->works++;
    f->works++;
    m->work->link = i;
    if (f->shutting || f->draining) {
        sh_routerlink_work_error(l, rid, 0, "group %s is %s", name, f->shutting ? "shutting down" : "draining");
        return;
    }
    if (sh_work_check(m->work, f->st->cfg, f->st->ctx, why, sizeof why)) {
        sh_routerlink_work_error(l, rid, 0, "invalid work: %s", why);
        return;
    }
    if (sh_sched_has_rid(f->sched, rid)) {
        sh_routerlink_work_error(l, rid, 0, "request %llu is already running on group %s", (unsigned long long)rid,
                                 name);
        return;
    }
    /* full: first the tokens that came back (a request the router saw end
     * may have freed its slot here too) */
    if (sh_sched_held(f->sched) >= f->st->slots && f->P > 1) sh_intake_drain_results(f);
    if (sh_sched_enqueue(f->sched, &m->work)) {
        k->busy++;
        f->busy++;
        sh_routerlink_work_error(l, rid, 1, "group %s is busy: %d of %d slots taken", name, sh_sched_held(f->sched),
                                 f->st->slots);
        return;
    }
    int held = sh_sched_held(f->sched);
    if (held > f->held_max) f->held_max = held;
    sh_vlog("took request %llu (work %llu of router epoch %llx, from the router at %s)", (unsigned long long)rid,
            (unsigned long long)m->seq, (unsigned long long)m->router_epoch, l->endpoint);
}

static void on_cancel(sh_intake_t *f, int i, uint64_t rid) {
    if (sh_sched_cancel(f->sched, rid, i)) {
        sh_vlog("cancelled request %llu", (unsigned long long)rid);
        return;
    }
    int owner = sh_sched_owner(f->sched, rid);
    if (owner >= 0) /* rids are unique across routers: not this router's to cancel */
        sh_vlog("cancel of request %llu from the router at %s ignored: it came from the router at %s",
                (unsigned long long)rid, f->G->links[i].endpoint, f->G->links[owner].endpoint);
}

static void on_control(sh_intake_t *f, int i, const sh_router_msg_t *m) {
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
        } else if (m->cluster != f->st->cluster || f->pending_cluster != SH_NO_CLUSTER) {
            f->pending_cluster = m->cluster;
            sh_log("will load cluster %d once idle", m->cluster);
        }
        break;
    default:
        f->G->links[i].malformed++;
        sh_log_limited(&f->G->links[i].rl_malformed, "unknown control kind %d from the router at %s ignored",
                       m->control_raw, f->G->links[i].endpoint);
    }
}

/* Drains the routers' sockets (bounded per link, so batches keep
 * flowing).  Returns the number of messages read. */
int sh_routers_read(sh_intake_t *f) {
    int total = 0;
    for (int i = 0; i < f->G->n_links; i++) {
        for (int n = 0; n < 256; n++, total++) {
            sh_router_msg_t m;
            int got = sh_routerlink_recv(&f->G->links[i], &m);
            if (got == 0) break;
            if (got < 0) continue; /* malformed: counted and logged */
            switch (m.kind) {
            case SH_ROUTER_WORK:
                on_work(f, i, &m);
                break;
            case SH_ROUTER_CANCEL:
                on_cancel(f, i, m.rid);
                break;
            case SH_ROUTER_CONTROL:
                on_control(f, i, &m);
                break;
            }
            sh_router_msg_clear(&m);
        }
    }
    return total;
}

/* Follows each link's connection; a link down for longer than gone_ms
 * loses its requests (their slots go to the other routers' work).
 * Returns the number of requests cancelled. */
int sh_routers_check(sh_intake_t *f, double now) {
    int total = 0;
    for (int i = 0; i < f->G->n_links; i++) {
        sh_routerlink_t *l = &f->G->links[i];
        /* the monitor's events, which the last zmq_poll saw (every
         * iteration polls) */
        if (f->items[f->G->n_links + i].revents & ZMQ_POLLIN) sh_routerlink_watch(l, now);
        if (l->up || now - l->since_ms <= f->gone_ms) continue;
        int n = sh_sched_cancel_link(f->sched, i);
        if (!n) continue;
        f->lk[i].dropped += (unsigned long)n;
        total += n;
        sh_log("the router at %s is gone: disconnected for %.0f ms (more than liveness x heartbeat_ms = %.0f ms); "
               "cancelled its %d request%s, %d of %d slots now held",
               l->endpoint, now - l->since_ms, f->gone_ms, n, n == 1 ? "" : "s", sh_sched_held(f->sched),
               f->st->slots);
    }
    return total;
}
