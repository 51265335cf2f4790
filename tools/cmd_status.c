/* ifp status — ask a running ifp-router how it and its groups are (a Ping,
 * answered by the router's event loop with a Pong): every configured group
 * with its liveness, slots, requests and its own counters, the requests in
 * flight, and the router's counters.  Exit 0 when the router answered and
 * every group is alive, 1 when some group is not, 2 when the router did not
 * answer within --timeout-ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cli.h"
#include "clock.h"
#include "jsonw.h"
#include "link.h"
#include "tools.h"
#include "wire.h"

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

static void print_json(const Ifp__Pong *p) {
    ifp_buf_t o = {0};
    ifp_buf_printf(&o, "{\"inflight\":%u,\"predicting\":%u,\"queued\":%u,\"groups\":[", p->inflight, p->predicting,
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
        {"router", 'r', CLI_STR, &router, 0, 0, "router frontend address (default tcp://127.0.0.1:5555)", 0},
        {"json", 0, CLI_FLAG, &json, 0, 0, "print one JSON object", 0},
        {"counters", 0, CLI_FLAG, &counters, 0, 0, "also print the router's counters", 0},
        {"timeout-ms", 0, CLI_INT, &timeout_ms, 1, 600000, "wait this long for the answer (default 3000)", 0},
        TOOLS_LINK_OPTS(link),
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse("status", argc, argv, 2, opts, pos, 0, &n_pos, "[--router ADDR] [--json] [--counters]");
    if (rc) return rc > 0 ? 0 : 2;
    if (!strstr(router, "://")) {
        fprintf(stderr, "ifp status: --router: expected a ZeroMQ address like tcp://HOST:PORT, got '%s'\n", router);
        return 2;
    }
    void *ctx = zmq_ctx_new(), *s = NULL;
    int status = 2;
    if (!(s = tools_link_connect("status", &link, ctx, router)) || tools_link_wait("status", &link, timeout_ms) < 0)
        goto done;
    Ifp__Ping ping = IFP__PING__INIT;
    ping.id = "status";
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_PING;
    m.ping = &ping;
    if (ifp_wire_send(s, NULL, NULL, 0, &m.base)) {
        fprintf(stderr, "ifp status: send failed: %s\n", zmq_strerror(zmq_errno()));
        goto done;
    }
    double end = ifp_now_ms() + timeout_ms;
    while (ifp_now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 50) <= 0) continue;
        ifp_frames_t f;
        if (ifp_wire_recv(s, &f, ZMQ_DONTWAIT) < 0) continue;
        Ifp__ServerMessage *r = ifp_wire_server_msg(ifp_frame_data(&f, f.n - 1), ifp_frame_size(&f, f.n - 1));
        ifp_frames_close(&f);
        if (!r || r->msg_case != IFP__SERVER_MESSAGE__MSG_PONG) {
            if (r) ifp__server_message__free_unpacked(r, NULL);
            continue;
        }
        if (json) print_json(r->pong);
        else print_text(r->pong, counters);
        status = 0;
        for (size_t i = 0; i < r->pong->n_groups; i++)
            if (!r->pong->groups[i]->alive) status = 1;
        ifp__server_message__free_unpacked(r, NULL);
        goto done;
    }
    fprintf(stderr, "ifp status: no answer from %s within %d ms\n", router, timeout_ms);
done:
    tools_link_close(&link);
    if (s) zmq_close(s);
    zmq_ctx_term(ctx);
    return status;
}
