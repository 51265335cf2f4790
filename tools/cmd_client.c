/* ifp client — send a prompt to ifp-router and stream the answer.
 *
 * Through the client library (client/client.h): one DEALER per router
 * (ZeroMQ's random identity); each request is a ClientMessage{Request} with
 * stream = true, and the router answers with TokenEvents then one Reply, or
 * an Error (see proto/ifp.proto).  Many requests can be in flight: the
 * request id tells their messages apart.
 *
 * --router ADDR[,ADDR...]: one router, or several routers of one deployment
 * (active-active, one key pair).  Requests are spread over them round
 * robin; when a router goes away (its connection closes) or goes silent (a
 * request heard nothing for 3 s), its requests are sent again to another
 * router with the tokens already received (Request.resume_tokens), and the
 * stream goes on with no gap and no repeat (sampling is keyed by seed and
 * position: the answer is the one a single router would have given).  Each
 * move prints one line on stderr:
 *   ifp client: router tcp://A:5555 went away; request c123-0 resumed on tcp://B:5555 after 17 tokens
 * ("went silent (no answer for 3000 ms)", "skipped tokens (...)", "is shutting
 * down", "is overloaded (retry after N ms)" for the other reasons).
 *
 * One request (the default): the text pieces are printed as they arrive,
 * then a newline and a stats line on stderr; --json prints one object with
 * the fields of `ifp run --json` plus group, cluster, coverage, ttft_ms,
 * replays, failovers and max_stall_ms instead.  --n-requests K
 * --concurrency C: a small load test (K requests, C in flight, seeds seed,
 * seed+1, ...) that prints throughput.
 *
 * Exit codes: 0 ok, 1 a router error or a timeout (after sending Cancel),
 * 2 a usage error. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "link.h"
#include "jsonw.h"
#include "tools.h"
#include "wire.h"
#include "clock.h"

#define CL_MAX_STOP 4    /* proto: at most 4 stop strings ... */
#define CL_STOP_LEN 64   /* ... of at most 64 bytes each */
#define CL_CANCEL_LINGER_MS 500

typedef struct {
    const char *router, *prompt, *mask, *id;
    int n, top_k, json, deadline_ms, timeout_ms, n_requests, concurrency, ignore_eos;
    float temp, top_p;
    uint64_t seed;
    const char *stop[CL_MAX_STOP];
    int n_stop;
    Ifp__MaskMode mode;
    const char *task;
} client_args_t;

/* One request and what came back for it. */
typedef struct {
    char id[96];
    int state;                    /* 0 not sent, 1 in flight, 2 replied, 3 failed */
    uint64_t seed;
    double t_sent, t_first, t_last, t_done;
    int n_events;                 /* tokens received (the library delivers each once, in order) */
    int failovers;                /* times it moved to another router */
    double stall_ms;              /* the longest wait between two of its events */
    ifp_buf_t streamed;           /* concatenated TokenEvent pieces */
    size_t printed;               /* bytes of `streamed` already on stdout */
    Ifp__ServerMessage *reply;    /* owned; reply->reply is the Reply */
} creq_t;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static const char *finish_name(Ifp__FinishReason f) {
    switch (f) {
    case IFP__FINISH_REASON__FINISH_LENGTH: return "length";
    case IFP__FINISH_REASON__FINISH_STOP: return "stop";
    case IFP__FINISH_REASON__FINISH_EOS: return "eos";
    case IFP__FINISH_REASON__FINISH_CANCELLED: return "cancelled";
    case IFP__FINISH_REASON__FINISH_ERROR: return "error";
    default: return "none";
    }
}

static const char *error_name(Ifp__ErrorCode c) {
    switch (c) {
    case IFP__ERROR_CODE__ERR_BAD_REQUEST: return "bad request";
    case IFP__ERROR_CODE__ERR_OVERLOADED: return "overloaded";
    case IFP__ERROR_CODE__ERR_DEADLINE: return "deadline";
    case IFP__ERROR_CODE__ERR_INTERNAL: return "internal";
    case IFP__ERROR_CODE__ERR_UNKNOWN_REQUEST: return "unknown request";
    case IFP__ERROR_CODE__ERR_MALFORMED: return "malformed";
    default: return "error";
    }
}

/* Pulls every --stop VALUE / --stop=VALUE out of argv (cli_parse keeps the
 * last value of an option; stop strings repeat).  The rest is copied to
 * rest[] (argc entries).  Returns the new argc or -1 after a message. */
static int take_stops(int argc, char **argv, client_args_t *a, char **rest) {
    int n = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (i >= 2 && !strcmp(argv[i], "--stop")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ifp client: --stop needs a value\n");
                return -1;
            }
            v = argv[++i];
        } else if (i >= 2 && !strncmp(argv[i], "--stop=", 7)) {
            v = argv[i] + 7;
        } else {
            rest[n++] = argv[i];
            continue;
        }
        if (a->n_stop >= CL_MAX_STOP) {
            fprintf(stderr, "ifp client: --stop: at most %d stop strings\n", CL_MAX_STOP);
            return -1;
        }
        if (!*v || strlen(v) > CL_STOP_LEN) {
            fprintf(stderr, "ifp client: --stop: a stop string has 1 to %d bytes\n", CL_STOP_LEN);
            return -1;
        }
        a->stop[a->n_stop++] = v;
    }
    return n;
}

static int parse_mask(client_args_t *a) {
    const char *s = a->mask;
    if (!s || !strcmp(s, "input")) a->mode = IFP__MASK_MODE__MASK_INPUT;
    else if (!strcmp(s, "dense")) a->mode = IFP__MASK_MODE__MASK_DENSE;
    else if (!strncmp(s, "task:", 5) && s[5]) a->mode = IFP__MASK_MODE__MASK_TASK, a->task = s + 5;
    else {
        fprintf(stderr, "ifp client: --mask: expected input, task:TEXT or dense, got '%s'\n", s);
        return -1;
    }
    return 0;
}

/* Bytes of s[0..n) that can be shown without ever showing part of a stop
 * string: up to a full match, else all but the longest suffix that begins
 * one. */
static size_t stop_safe_len(const client_args_t *a, const char *s, size_t n) {
    size_t safe = n;
    for (int k = 0; k < a->n_stop; k++) {
        const char *m = memmem(s, n, a->stop[k], strlen(a->stop[k]));
        if (m && (size_t)(m - s) < safe) safe = (size_t)(m - s);
    }
    for (int k = 0; k < a->n_stop; k++) {
        size_t ls = strlen(a->stop[k]);
        for (size_t l = ls - 1; l > 0; l--)
            if (l <= n && !memcmp(s + n - l, a->stop[k], l)) {
                if (n - l < safe) safe = n - l;
                break;
            }
    }
    return safe;
}

static int send_request(ifp_client_t *cl, const client_args_t *a, creq_t *r) {
    Ifp__Request req = IFP__REQUEST__INIT;
    req.id = r->id;
    req.prompt = (char *)a->prompt;
    req.max_tokens = (uint32_t)a->n;
    req.temperature = a->temp;
    req.top_p = a->top_p;
    req.top_k = (uint32_t)a->top_k;
    req.seed = r->seed;
    req.n_stop = (size_t)a->n_stop;
    req.stop = (char **)a->stop;
    req.mask_mode = a->mode;
    req.task = (char *)(a->task ? a->task : "");
    req.deadline_ms = (uint32_t)a->deadline_ms;
    req.ignore_eos = a->ignore_eos;
    req.stream = 1;
    req.debug = a->json; /* --json prints ifp run's fields, the last-prompt logits among them */
    ifp_err_t err = {0};
    if (ifp_client_submit(cl, &req, r, &err)) {
        fprintf(stderr, "ifp client: %s\n", err.msg);
        return -1;
    }
    r->state = 1;
    r->t_sent = ifp_now_ms();
    return 0;
}

static void print_error(const Ifp__Error *e, const char *unknown_id) {
    if (unknown_id)
        fprintf(stderr, "ifp client: router error (%s) for request '%s': %s\n", error_name(e->code), unknown_id,
                e->message ? e->message : "");
    else {
        fprintf(stderr, "ifp client: router error (%s): %s", error_name(e->code), e->message ? e->message : "");
        if (e->code == IFP__ERROR_CODE__ERR_OVERLOADED && e->retry_after_ms)
            fprintf(stderr, " (retry after %u ms)", e->retry_after_ms);
        fputc('\n', stderr);
    }
}

/* The request's stream went on: print what can be shown. */
static void on_token(const client_args_t *a, creq_t *r, const Ifp__TokenEvent *t, double now, int show) {
    if (r->n_events++ == 0) r->t_first = now;
    r->t_last = now;
    ifp_buf_append(&r->streamed, (const char *)t->text.data, t->text.len);
    if (show && r->streamed.p) {
        size_t safe = a->n_stop ? stop_safe_len(a, r->streamed.p, r->streamed.len) : r->streamed.len;
        if (safe > r->printed) {
            fwrite(r->streamed.p + r->printed, 1, safe - r->printed, stdout);
            fflush(stdout);
            r->printed = safe;
        }
    }
}

/* Handles one event of the client library.  `show` = print pieces as they
 * come.  Returns 1 when a request finished (replied or failed), else 0. */
static int on_event(const client_args_t *a, ifp_client_t *cl, ifp_client_event_t *ev, int show) {
    double now = ifp_now_ms();
    creq_t *r = ev->user;
    switch (ev->kind) {
    case IFP_CLIENT_FAILOVER:
        fprintf(stderr, "ifp client: router %s %s%s%s%s; request %s resumed on %s after %u tokens\n",
                ifp_client_router_addr(cl, ev->from), ifp_client_why_str(ev->why), *ev->detail ? " (" : "",
                ev->detail, *ev->detail ? ")" : "", ev->id, ifp_client_router_addr(cl, ev->router), ev->n_tokens);
        return 0;
    case IFP_CLIENT_REFUSED:
        /* a router that refuses this client (no key, unknown key, plain vs
         * CURVE) says so in its handshake: report that at once */
        if (ifp_client_n_routers(cl) > 1)
            fprintf(stderr, "ifp client: router %s: %s\n", ifp_client_router_addr(cl, ev->router), ev->detail);
        else
            fprintf(stderr, "ifp client: %s\n", ev->detail);
        return 0;
    case IFP_CLIENT_OTHER:
        if (ev->msg->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR) print_error(ev->msg->error, ev->msg->error->id);
        return 0;
    default: break;
    }
    if (!r || r->state != 1) return 0; /* (a Reply after an Error: the request failed already) */
    switch (ev->kind) {
    case IFP_CLIENT_TOKEN: on_token(a, r, ev->msg->token, now, show); return 0;
    case IFP_CLIENT_REPLY:
        r->state = 2, r->t_done = now;
        if (!r->n_events) r->t_first = r->t_last = now;
        r->reply = ifp_client_event_take(cl, ev);
        break;
    case IFP_CLIENT_ERROR: print_error(ev->msg->error, NULL); r->state = 3, r->t_done = now; break;
    case IFP_CLIENT_FAILED:
        if (ev->why == IFP_CLIENT_TIMEOUT && r->n_events)
            fprintf(stderr, "ifp client: request '%s': not finished within %d ms (%d tokens so far); cancelling\n",
                    r->id, a->timeout_ms, r->n_events);
        else if (ev->why == IFP_CLIENT_TIMEOUT)
            fprintf(stderr, "ifp client: request '%s': no answer within %d ms (is ifp-router running at %s?); cancelling\n",
                    r->id, a->timeout_ms, a->router);
        else
            fprintf(stderr, "ifp client: request '%s' failed: %s%s%s%s\n", r->id, ifp_client_why_str(ev->why),
                    *ev->detail ? " (" : "", ev->detail, *ev->detail ? ")" : "");
        r->state = 3, r->t_done = now;
        break;
    default: return 0;
    }
    r->failovers = ev->failovers;
    r->stall_ms = ev->stall_ms;
    return 1;
}

/* Client-side generation rate: new tokens over the time from sending the
 * request to the last token (routing, prefill and decode; token events can
 * arrive in bursts, so a first-to-last-token rate would be noise). */
static double decode_tps(const creq_t *r, size_t n_tokens) {
    double t_end = r->n_events ? r->t_last : r->t_done, span = t_end - r->t_sent;
    return n_tokens && span > 0 ? (double)n_tokens * 1e3 / span : 0.0;
}

static void print_json(const creq_t *r, int bad_events) {
    const Ifp__Reply *p = r->reply->reply;
    ifp_buf_t o = {0};
    ifp_buf_printf(&o, "{\"id\":");
    ifp_buf_json_str(&o, r->id, strlen(r->id));
    ifp_buf_printf(&o, ",\"prompt_tokens\":[");
    for (size_t i = 0; i < p->n_prompt_tokens; i++) ifp_buf_printf(&o, "%s%d", i ? "," : "", p->prompt_tokens[i]);
    ifp_buf_printf(&o, "],\"tokens\":[");
    for (size_t i = 0; i < p->n_tokens; i++) ifp_buf_printf(&o, "%s%d", i ? "," : "", p->tokens[i]);
    ifp_buf_printf(&o, "],\"text\":");
    ifp_buf_json_str(&o, (const char *)p->text.data, p->text.len);
    const Ifp__Debug *dbg = p->debug;
    ifp_buf_printf(&o, ",\"logits_last_prompt\":[");
    for (size_t i = 0; dbg && i < dbg->n_logits_last_prompt; i++) {
        if (i) ifp_buf_append(&o, ",", 1);
        ifp_buf_json_float(&o, dbg->logits_last_prompt[i]);
    }
    ifp_buf_printf(&o, "],\"argmax_last_prompt\":%d,\"tokens_per_s\":", dbg ? dbg->argmax_last_prompt : -1);
    ifp_buf_json_float(&o, decode_tps(r, p->n_tokens));
    ifp_buf_printf(&o, ",\"finish_reason\":\"%s\",\"seed\":%llu,\"group\":", finish_name(p->finish),
                   (unsigned long long)r->seed);
    ifp_buf_json_str(&o, p->group ? p->group : "", p->group ? strlen(p->group) : 0);
    ifp_buf_printf(&o, ",\"cluster\":%d,\"coverage\":", p->cluster);
    ifp_buf_json_float(&o, p->coverage);
    ifp_buf_printf(&o, ",\"ttft_ms\":");
    ifp_buf_json_float(&o, r->t_first - r->t_sent);
    ifp_buf_printf(&o, ",\"total_ms\":");
    ifp_buf_json_float(&o, r->t_done - r->t_sent);
    ifp_buf_printf(&o, ",\"replays\":[");
    for (size_t i = 0; i < p->n_replays; i++) ifp_buf_printf(&o, "%s%u", i ? "," : "", p->replays[i]);
    ifp_buf_printf(&o, "],\"events\":%d,\"bad_events\":%d,\"failovers\":%d,\"max_stall_ms\":", r->n_events, bad_events,
                   r->failovers);
    ifp_buf_json_float(&o, r->stall_ms);
    ifp_buf_printf(&o, "}\n");
    if (o.oom)
        fprintf(stderr, "ifp client: out of memory\n");
    else
        fputs(o.p, stdout);
    ifp_buf_free(&o);
}

static void print_stats(const creq_t *r) {
    const Ifp__Reply *p = r->reply->reply;
    fprintf(stderr, "[group %s, cluster ", p->group && *p->group ? p->group : "?");
    if (p->cluster < 0)
        fprintf(stderr, "dense");
    else
        fprintf(stderr, "%d", p->cluster);
    fprintf(stderr, ", coverage %.3f, %zu prompt tokens, %zu new tokens, ttft %.1f ms, %.1f tok/s, finish: %s, seed %llu",
            p->coverage, p->n_prompt_tokens, p->n_tokens, r->t_first - r->t_sent, decode_tps(r, p->n_tokens),
            finish_name(p->finish), (unsigned long long)r->seed);
    if (p->n_replays) {
        fprintf(stderr, ", replayed at token");
        for (size_t i = 0; i < p->n_replays; i++) fprintf(stderr, " %u", p->replays[i]);
    }
    fprintf(stderr, "]\n");
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* --n-requests: one summary (text or JSON) over all requests. */
static void print_load_summary(const client_args_t *a, const creq_t *reqs, int n, double wall_ms) {
    int ok = 0, failovers = 0;
    long tokens = 0;
    double *ttft = calloc((size_t)n + 1, sizeof *ttft), sum_tps = 0, stall = 0;
    for (int i = 0; i < n; i++) {
        failovers += reqs[i].failovers;
        if (reqs[i].stall_ms > stall) stall = reqs[i].stall_ms;
        if (reqs[i].state != 2) continue;
        size_t nt = reqs[i].reply->reply->n_tokens;
        tokens += (long)nt;
        sum_tps += decode_tps(&reqs[i], nt);
        if (ttft) ttft[ok] = reqs[i].t_first - reqs[i].t_sent;
        ok++;
    }
    double p50 = 0, p95 = 0, agg = wall_ms > 0 ? (double)tokens * 1e3 / wall_ms : 0;
    if (ttft && ok) {
        qsort(ttft, (size_t)ok, sizeof *ttft, cmp_double);
        p50 = ttft[(ok - 1) / 2];
        p95 = ttft[(int)ceil(0.95 * ok) - 1];
    }
    free(ttft);
    double per_stream = ok ? sum_tps / ok : 0;
    if (a->json)
        printf("{\"requests\":%d,\"ok\":%d,\"failed\":%d,\"concurrency\":%d,\"completion_tokens\":%ld,\"wall_s\":%.3f,"
               "\"tokens_per_s\":%.2f,\"stream_tokens_per_s\":%.2f,\"ttft_ms_p50\":%.2f,\"ttft_ms_p95\":%.2f,"
               "\"failovers\":%d,\"max_stall_ms\":%.2f}\n",
               n, ok, n - ok, a->concurrency, tokens, wall_ms / 1e3, agg, per_stream, p50, p95, failovers, stall);
    else
        printf("%d requests (%d ok, %d failed), concurrency %d: %ld tokens in %.2f s = %.1f tok/s in total, "
               "%.1f tok/s per stream, ttft p50 %.1f ms p95 %.1f ms\n",
               n, ok, n - ok, a->concurrency, tokens, wall_ms / 1e3, agg, per_stream, p50, p95);
}

/* Submits the requests (at most a->concurrency in flight) and waits for
 * their answers.  Returns the number that failed (error, timeout,
 * interrupted, refused). */
static int run_requests(ifp_client_t *cl, const client_args_t *a, creq_t *reqs, int n) {
    int sent = 0, finished = 0, in_flight = 0, failed = 0, show = n == 1 && !a->json;
    while (finished < n) {
        while (in_flight < a->concurrency && sent < n && !interrupted) {
            if (send_request(cl, a, &reqs[sent])) return n - finished;
            sent++, in_flight++;
        }
        ifp_client_event_t ev;
        int rc = ifp_client_poll(cl, 100, &ev);
        if (rc < 0) {
            fprintf(stderr, "ifp client: poll failed: %s\n", zmq_strerror(zmq_errno()));
            return n - finished;
        }
        if (rc == 1 && on_event(a, cl, &ev, show)) finished++, in_flight--;
        int refused = ifp_client_all_refused(cl);
        if (!interrupted && !refused) continue;
        for (int i = 0; i < sent; i++) {
            creq_t *r = &reqs[i];
            if (r->state != 1) continue;
            if (interrupted) fprintf(stderr, "ifp client: interrupted: cancelling request '%s'\n", r->id);
            ifp_client_abandon(cl, r->id);
            r->state = 3, r->t_done = ifp_now_ms();
            finished++, in_flight--;
        }
        finished += n - sent; /* never sent */
        sent = n;
    }
    for (int i = 0; i < n; i++) failed += reqs[i].state != 2;
    return failed;
}

int ifp_cmd_client(int argc, char **argv) {
    tools_link_t link = {0};
    client_args_t a = {.router = "tcp://127.0.0.1:5555", .prompt = NULL, .n = 0, .temp = 0.8f, .top_p = 0.95f,
                       .top_k = 40, .timeout_ms = 60000, .n_requests = 1, .concurrency = 1};
    cli_opt_t opts[] = {
        {"router", 'r', CLI_STR, &a.router, 0, 0,
         "router frontend address, or a comma-separated list of the routers of one deployment: requests are "
         "spread over them and move to another when one goes away (default tcp://127.0.0.1:5555)", 0},
        {"prompt", 'p', CLI_STR, &a.prompt, 0, 0, "prompt text (required)", 0},
        {"n", 'n', CLI_INT, &a.n, 0, 1 << 20, "new tokens; 0 = the router's default (default 0)", 0},
        {"temp", 0, CLI_FLOAT, &a.temp, 0, 100, "temperature; 0 = greedy (default 0.8)", 0},
        {"top-p", 0, CLI_FLOAT, &a.top_p, 0, 1, "nucleus sampling mass, 1 = off (default 0.95)", 0},
        {"top-k", 0, CLI_INT, &a.top_k, 0, 1 << 24, "keep the k most likely tokens, 0 = off (default 40)", 0},
        {"seed", 's', CLI_U64, &a.seed, 0, 9.0e18, "sampling seed (default: from the clock)", 0},
        {"mask", 0, CLI_STR, &a.mask, 0, 0, "input | task:TEXT | dense (default input)", 0},
        {"stop", 0, CLI_STR, NULL, 0, 0, "stop string (repeatable, at most 4 of at most 64 bytes)", 0},
        {"deadline-ms", 0, CLI_INT, &a.deadline_ms, 0, 86400000, "router-side deadline, 0 = none (default 0)", 0},
        {"id", 0, CLI_STR, &a.id, 0, 0, "request id (default: c<pid>-<n>)", 0},
        {"timeout-ms", 0, CLI_INT, &a.timeout_ms, 1, 86400000, "give up (and cancel) after this long (default 60000)", 0},
        {"json", 0, CLI_FLAG, &a.json, 0, 0, "print one JSON object (the fields of ifp run --json + routing)", 0},
        {"ignore-eos", 0, CLI_FLAG, &a.ignore_eos, 0, 0, "generate all -n tokens, past EOS (benchmarks, tests)", 0},
        {"n-requests", 0, CLI_INT, &a.n_requests, 1, 1000000, "load test: send this many requests (default 1)", 0},
        {"concurrency", 'c', CLI_INT, &a.concurrency, 1, 4096, "load test: requests in flight (default 1)", 0},
        TOOLS_LINK_OPTS(link),
        {0},
    };
    const char *usage_line = "--router ADDR[,ADDR...] --prompt TEXT [-n N] [--temp T] [--seed S] [--mask MODE] [--json] [options]";
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    int rest_argc = take_stops(argc, argv, &a, rest);
    const char *pos_args[1];
    int n_pos, rc = rest_argc < 0 ? -1 : cli_parse("client", rest_argc, rest, 2, opts, pos_args, 0, &n_pos, usage_line);
    free(rest);
    if (rc) return rc > 0 ? 0 : 2;
    if (!a.prompt) {
        fprintf(stderr, "ifp client: --prompt is required\n");
        return 2;
    }
    if (tools_link_routers("client", &link, a.router)) return 2;
    if (a.id && (!*a.id || strlen(a.id) > 80)) {
        fprintf(stderr, "ifp client: --id: 1 to 80 characters\n");
        return 2;
    }
    if (parse_mask(&a)) return 2;
    if (!opts[6].seen) a.seed = (uint64_t)time(NULL);
    if (a.concurrency > a.n_requests) a.concurrency = a.n_requests;

    ifp_client_t *cl = NULL;
    creq_t *reqs = calloc((size_t)a.n_requests, sizeof *reqs);
    int status = 1;
    if (!reqs) {
        fprintf(stderr, "ifp client: out of memory\n");
        goto done;
    }
    ifp_client_opts_t o = ifp_client_default_opts();
    o.request_timeout_ms = a.timeout_ms;
    o.linger_ms = CL_CANCEL_LINGER_MS; /* the last Cancels leave */
    o.hwm = 0;                         /* --concurrency requests at once, whatever their number */
    if (!(cl = tools_link_open("client", &link, &o))) {
        status = 2;
        goto done;
    }
    for (int i = 0; i < a.n_requests; i++) {
        creq_t *r = &reqs[i];
        if (a.id && a.n_requests == 1)
            snprintf(r->id, sizeof r->id, "%s", a.id);
        else if (a.id)
            snprintf(r->id, sizeof r->id, "%s-%d", a.id, i);
        else
            snprintf(r->id, sizeof r->id, "c%ld-%d", (long)getpid(), i);
        r->seed = a.seed + (uint64_t)i;
    }
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    double t0 = ifp_now_ms();
    int failed = run_requests(cl, &a, reqs, a.n_requests);
    double wall = ifp_now_ms() - t0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ifp_client_all_refused(cl)) goto done; /* said why already */

    if (a.n_requests > 1) {
        print_load_summary(&a, reqs, a.n_requests, wall);
    } else if (reqs[0].state != 2) {
        if (reqs[0].printed) fputc('\n', stdout);
    } else {
        creq_t *r = &reqs[0];
        const Ifp__Reply *p = r->reply->reply;
        if (a.json) {
            ifp_client_stats_t st;
            ifp_client_stats(cl, &st);
            print_json(r, (int)st.gaps);
        } else {
            /* the Reply's text is authoritative (cut before a stop string) */
            if (p->text.len > r->printed && (!r->printed || !memcmp(p->text.data, r->streamed.p, r->printed)))
                fwrite(p->text.data + r->printed, 1, p->text.len - r->printed, stdout);
            fputc('\n', stdout);
            fflush(stdout);
            print_stats(r);
        }
    }
    status = failed ? 1 : 0;
done:
    if (reqs)
        for (int i = 0; i < a.n_requests; i++) {
            ifp_buf_free(&reqs[i].streamed);
            if (reqs[i].reply) ifp__server_message__free_unpacked(reqs[i].reply, NULL);
        }
    free(reqs);
    ifp_client_close(&cl);
    return status;
}
