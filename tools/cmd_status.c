/* ifp status — ask a running ifp-router how it and its groups are (a Ping,
 * answered by the router's event loop with a Pong): every configured group
 * with its liveness, slots, requests and its own counters, the requests in
 * flight, and the router's counters.  --router takes one address or a
 * comma-separated list (the routers of one deployment): each is asked, and
 * its answer printed under a "router ADDR" line (--json: one object per
 * line, with "router").  Exit 0 when every router answered and every group
 * is alive, 1 when some group is not, 2 when a router did not answer within
 * --timeout-ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "jsonw.h"
#include "link.h"
#include "tools.h"

static void print_text(const Ifp__Pong *p, int counters) {
    printf("router: %u requests in flight (%u predicting, %u queued)\n", p->inflight, p->predicting, p->queued);
    printf("%-16s %-6s %8s %11s %8s %9s %12s %10s %7s\n", "group", "state", "cluster", "free/slots", "running",
           "listed", "tokens", "hb age ms", "deaths");
    for (size_t i = 0; i < p->n_groups; i++) {
        const Ifp__GroupStatus *g = p->groups[i];
        char cl[16], fs[24];
        if (g->cluster < 0) snprintf(cl, sizeof cl, "dense");
        else snprintf(cl, sizeof cl, "%d", g->cluster);
        snprintf(fs, sizeof fs, "%u/%u", g->free_slots, g->slots);
        printf("%-16s %-6s %8s %11s %8u %9u %12llu %10.0f %7llu\n", g->name, g->alive ? "alive" : g->seen ? "DEAD" : "down",
               cl, fs, g->running, g->group_running, (unsigned long long)g->tokens_generated, g->heartbeat_age_ms,
               (unsigned long long)g->deaths);
    }
    if (!counters) return;
    printf("counters:");
    for (size_t i = 0; i < p->n_counters; i++)
        printf("%s %s=%llu", i % 6 ? "" : "\n ", p->counters[i]->name, (unsigned long long)p->counters[i]->value);
    printf("\n");
}

static void print_json(const Ifp__Pong *p, const char *router) {
    ifp_buf_t o = {0};
    ifp_buf_printf(&o, "{");
    if (router) {
        ifp_buf_printf(&o, "\"router\":");
        ifp_buf_json_str(&o, router, strlen(router));
        ifp_buf_printf(&o, ",");
    }
    ifp_buf_printf(&o, "\"inflight\":%u,\"predicting\":%u,\"queued\":%u,\"groups\":[", p->inflight, p->predicting,
                   p->queued);
    for (size_t i = 0; i < p->n_groups; i++) {
        const Ifp__GroupStatus *g = p->groups[i];
        ifp_buf_printf(&o, "%s{\"name\":", i ? "," : "");
        ifp_buf_json_str(&o, g->name, strlen(g->name));
        ifp_buf_printf(&o,
                       ",\"alive\":%s,\"seen\":%s,\"cluster\":%d,\"slots\":%u,\"free_slots\":%u,\"running\":%u,"
                       "\"group_running\":%u,\"incarnation\":%llu,\"tokens_generated\":%llu,\"requests_done\":%llu,"
                       "\"heartbeat_age_ms\":%.1f,\"deaths\":%llu}",
                       g->alive ? "true" : "false", g->seen ? "true" : "false", g->cluster, g->slots, g->free_slots,
                       g->running, g->group_running, (unsigned long long)g->incarnation,
                       (unsigned long long)g->tokens_generated, (unsigned long long)g->requests_done,
                       g->heartbeat_age_ms, (unsigned long long)g->deaths);
    }
    ifp_buf_printf(&o, "],\"counters\":{");
    for (size_t i = 0; i < p->n_counters; i++) {
        ifp_buf_printf(&o, "%s", i ? "," : "");
        ifp_buf_json_str(&o, p->counters[i]->name, strlen(p->counters[i]->name));
        ifp_buf_printf(&o, ":%llu", (unsigned long long)p->counters[i]->value);
    }
    ifp_buf_printf(&o, "}}\n");
    if (o.p) fwrite(o.p, 1, o.len, stdout);
    ifp_buf_free(&o);
}

int ifp_cmd_status(int argc, char **argv) {
    const char *router = "tcp://127.0.0.1:5555";
    tools_link_t link = {0};
    int json = 0, counters = 0, timeout_ms = 3000;
    cli_opt_t opts[] = {
        {"router", 'r', CLI_STR, &router, 0, 0,
         "router frontend address, or a comma-separated list: each is asked (default tcp://127.0.0.1:5555)", 0},
        {"json", 0, CLI_FLAG, &json, 0, 0, "print one JSON object (per router)", 0},
        {"counters", 0, CLI_FLAG, &counters, 0, 0, "also print the router's counters", 0},
        {"timeout-ms", 0, CLI_INT, &timeout_ms, 1, 600000, "wait this long for the answer (default 3000)", 0},
        TOOLS_LINK_OPTS(link),
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse("status", argc, argv, 2, opts, pos, 0, &n_pos,
                              "[--router ADDR[,ADDR...]] [--json] [--counters]");
    if (rc) return rc > 0 ? 0 : 2;
    if (tools_link_routers("status", &link, router)) return 2;
    ifp_client_opts_t o = ifp_client_default_opts();
    ifp_client_t *cl = tools_link_open("status", &link, &o);
    if (!cl) return 2;
    int n = link.n, answered[IFP_CLIENT_MAX_ROUTERS] = {0}, waiting = n, status = 0;
    Ifp__ServerMessage *pong[IFP_CLIENT_MAX_ROUTERS] = {0};
    for (int k = 0; k < n; k++) ifp_client_ping(cl, k, "status"); /* sent once connected */
    double end = ifp_now_ms() + timeout_ms;
    while (waiting > 0) {
        double left = end - ifp_now_ms();
        if (left <= 0) break;
        ifp_client_event_t ev;
        int got = ifp_client_poll(cl, left > 100 ? 100 : (int)left + 1, &ev);
        if (got < 0) break;
        if (got == 0 || ev.router < 0 || answered[ev.router]) continue;
        if (ev.kind == IFP_CLIENT_PONG) {
            pong[ev.router] = ifp_client_event_take(cl, &ev);
            answered[ev.router] = 1, waiting--;
        } else if (ev.kind == IFP_CLIENT_REFUSED) { /* a router that refuses this client says why at once */
            if (n > 1) fprintf(stderr, "ifp status: router %s: %s\n", link.addr[ev.router], ev.detail);
            else fprintf(stderr, "ifp status: %s\n", ev.detail);
            answered[ev.router] = -1, waiting--;
        }
    }
    for (int k = 0; k < n; k++) {
        if (!pong[k]) {
            if (!answered[k]) fprintf(stderr, "ifp status: no answer from %s within %d ms\n", link.addr[k], timeout_ms);
            status = 2;
            continue;
        }
        const Ifp__Pong *p = pong[k]->pong;
        if (json) {
            print_json(p, n > 1 ? link.addr[k] : NULL);
        } else {
            if (n > 1) printf("%srouter %s\n", k ? "\n" : "", link.addr[k]);
            print_text(p, counters);
        }
        for (size_t i = 0; i < p->n_groups; i++)
            if (!p->groups[i]->alive && status == 0) status = 1;
        ifp__server_message__free_unpacked(pong[k], NULL);
    }
    ifp_client_close(&cl);
    return status;
}
