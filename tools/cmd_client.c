/* ifp client — send a prompt to an ifp-router and stream the answer.
 *
 * One DEALER socket (ZeroMQ's random identity) connected to the router's
 * frontend; each request is a ClientMessage{Request} with stream = true, and
 * the router answers with TokenEvents then one Reply, or an Error (see
 * proto/ifp.proto).  Many requests can be in flight on the one socket: the
 * request id tells their messages apart.
 *
 * One request (the default): the text pieces are printed as they arrive,
 * then a newline and a stats line on stderr; --json prints one object with
 * the fields of `ifp run --json` plus group, cluster, coverage, ttft_ms and
 * replays instead.  --n-requests K --concurrency C: a small load test (K
 * requests, C in flight, seeds seed, seed+1, ...) that prints throughput.
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

/* One request on the socket and what came back for it. */
typedef struct {
    char id[96];
    int state;                    /* 0 not sent, 1 in flight, 2 replied, 3 failed */
    uint64_t seed;
    double t_sent, t_first, t_last, t_done;
    uint32_t next_index;          /* index the next TokenEvent should carry */
    int n_events, bad_events;     /* events received; events out of order or repeated */
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

static int send_request(void *sock, const client_args_t *a, creq_t *r) {
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
    Ifp__ClientMessage msg = IFP__CLIENT_MESSAGE__INIT;
    msg.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    msg.request = &req;
    if (ifp_wire_send(sock, NULL, NULL, 0, &msg.base)) {
        fprintf(stderr, "ifp client: send failed: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    r->state = 1;
    r->t_sent = ifp_now_ms();
    return 0;
}

static void send_cancel(void *sock, creq_t *r) {
    Ifp__Cancel c = IFP__CANCEL__INIT;
    c.id = r->id;
    Ifp__ClientMessage msg = IFP__CLIENT_MESSAGE__INIT;
    msg.msg_case = IFP__CLIENT_MESSAGE__MSG_CANCEL;
    msg.cancel = &c;
    (void)ifp_wire_send(sock, NULL, NULL, 0, &msg.base);
}

static creq_t *find_req(creq_t *reqs, int n, const char *id) {
    for (int i = 0; i < n; i++)
        if (reqs[i].state == 1 && !strcmp(reqs[i].id, id)) return &reqs[i];
    return NULL;
}

/* Handles one ServerMessage (consumed).  `show` = print pieces as they come.
 * Returns 1 when a request finished (replied or failed), else 0. */
static int on_message(const client_args_t *a, creq_t *reqs, int n, Ifp__ServerMessage *m, int show) {
    double now = ifp_now_ms();
    const char *id = ifp_wire_server_msg_id(m);
    creq_t *r = find_req(reqs, n, id);
    if (!r) {
        if (m->msg_case == IFP__SERVER_MESSAGE__MSG_ERROR)
            fprintf(stderr, "ifp client: router error (%s) for request '%s': %s\n", error_name(m->error->code), id,
                    m->error->message ? m->error->message : "");
        ifp__server_message__free_unpacked(m, NULL);
        return 0;
    }
    int done = 0;
    switch (m->msg_case) {
    case IFP__SERVER_MESSAGE__MSG_TOKEN: {
        Ifp__TokenEvent *t = m->token;
        if (r->n_events++ == 0) r->t_first = now;
        r->t_last = now;
        if (t->index != r->next_index) {
            r->bad_events++;
            fprintf(stderr, "ifp client: request '%s': token event %u, expected %u\n", r->id, t->index, r->next_index);
            break; /* a repeat or a gap: keep the text as the router's Reply will give it */
        }
        r->next_index++;
        ifp_buf_append(&r->streamed, (const char *)t->text.data, t->text.len);
        if (show && r->streamed.p) {
            size_t safe = a->n_stop ? stop_safe_len(a, r->streamed.p, r->streamed.len) : r->streamed.len;
            if (safe > r->printed) {
                fwrite(r->streamed.p + r->printed, 1, safe - r->printed, stdout);
                fflush(stdout);
                r->printed = safe;
            }
        }
        break;
    }
    case IFP__SERVER_MESSAGE__MSG_REPLY:
        r->state = 2, r->t_done = now, done = 1;
        if (!r->n_events) r->t_first = r->t_last = now;
        r->reply = m;
        m = NULL;
        break;
    case IFP__SERVER_MESSAGE__MSG_ERROR:
        fprintf(stderr, "ifp client: router error (%s): %s", error_name(m->error->code),
                m->error->message ? m->error->message : "");
        if (m->error->code == IFP__ERROR_CODE__ERR_OVERLOADED && m->error->retry_after_ms)
            fprintf(stderr, " (retry after %u ms)", m->error->retry_after_ms);
        fputc('\n', stderr);
        r->state = 3, r->t_done = now, done = 1;
        break;
    default:
        break;
    }
    if (m) ifp__server_message__free_unpacked(m, NULL);
    return done;
}

/* Client-side generation rate: new tokens over the time from sending the
 * request to the last token (routing, prefill and decode; token events can
 * arrive in bursts, so a first-to-last-token rate would be noise). */
static double decode_tps(const creq_t *r, size_t n_tokens) {
    double t_end = r->n_events ? r->t_last : r->t_done, span = t_end - r->t_sent;
    return n_tokens && span > 0 ? (double)n_tokens * 1e3 / span : 0.0;
}

static void print_json(const creq_t *r) {
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
    ifp_buf_printf(&o, "],\"events\":%d,\"bad_events\":%d}\n", r->n_events, r->bad_events);
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
    int ok = 0;
    long tokens = 0;
    double *ttft = calloc((size_t)n + 1, sizeof *ttft), sum_tps = 0;
    for (int i = 0; i < n; i++) {
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
               "\"tokens_per_s\":%.2f,\"stream_tokens_per_s\":%.2f,\"ttft_ms_p50\":%.2f,\"ttft_ms_p95\":%.2f}\n",
               n, ok, n - ok, a->concurrency, tokens, wall_ms / 1e3, agg, per_stream, p50, p95);
    else
        printf("%d requests (%d ok, %d failed), concurrency %d: %ld tokens in %.2f s = %.1f tok/s in total, "
               "%.1f tok/s per stream, ttft p50 %.1f ms p95 %.1f ms\n",
               n, ok, n - ok, a->concurrency, tokens, wall_ms / 1e3, agg, per_stream, p50, p95);
}

/* Sends the requests (at most a->concurrency in flight) and waits for their
 * answers.  Returns the number that failed (error, timeout, interrupted). */
static int run_requests(void *sock, const client_args_t *a, creq_t *reqs, int n) {
    int sent = 0, finished = 0, in_flight = 0, failed = 0, show = n == 1 && !a->json;
    while (finished < n) {
        while (in_flight < a->concurrency && sent < n && !interrupted) {
            if (send_request(sock, a, &reqs[sent])) return n - finished;
            sent++, in_flight++;
        }
        double now = ifp_now_ms(), next = now + 1000;
        for (int i = 0; i < sent; i++)
            if (reqs[i].state == 1 && reqs[i].t_sent + a->timeout_ms < next) next = reqs[i].t_sent + a->timeout_ms;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        long wait = next > now ? (long)(next - now) + 1 : 0;
        if (zmq_poll(&item, 1, wait) < 0 && zmq_errno() != EINTR) {
            fprintf(stderr, "ifp client: poll failed: %s\n", zmq_strerror(zmq_errno()));
            return n - finished;
        }
        for (;;) { /* drain what is waiting */
            ifp_frames_t f;
            if (ifp_wire_recv(sock, &f, ZMQ_DONTWAIT) < 0) break;
            Ifp__ServerMessage *m = f.n ? ifp_wire_server_msg(ifp_frame_data(&f, f.n - 1), ifp_frame_size(&f, f.n - 1)) : NULL;
            ifp_frames_close(&f);
            if (!m) {
                fprintf(stderr, "ifp client: dropped a malformed message from the router\n");
                continue;
            }
            if (on_message(a, reqs, sent, m, show)) finished++, in_flight--;
        }
        now = ifp_now_ms();
        for (int i = 0; i < sent; i++) {
            creq_t *r = &reqs[i];
            if (r->state != 1 || (!interrupted && now < r->t_sent + a->timeout_ms)) continue;
            if (interrupted)
                fprintf(stderr, "ifp client: interrupted: cancelling request '%s'\n", r->id);
            else if (r->n_events)
                fprintf(stderr, "ifp client: request '%s': not finished within %d ms (%d tokens so far); cancelling\n",
                        r->id, a->timeout_ms, r->n_events);
            else
                fprintf(stderr, "ifp client: request '%s': no answer within %d ms (is ifp-router running at %s?); cancelling\n",
                        r->id, a->timeout_ms, a->router);
            send_cancel(sock, r);
            r->state = 3, r->t_done = now;
            finished++, in_flight--;
        }
        if (interrupted && sent < n) {
            finished += n - sent; /* never sent */
            sent = n;
        }
    }
    for (int i = 0; i < n; i++) failed += reqs[i].state != 2;
    return failed;
}

int ifp_cmd_client(int argc, char **argv) {
    tools_link_t link = {0};
    client_args_t a = {.router = "tcp://127.0.0.1:5555", .prompt = NULL, .n = 0, .temp = 0.8f, .top_p = 0.95f,
                       .top_k = 40, .timeout_ms = 60000, .n_requests = 1, .concurrency = 1};
    cli_opt_t opts[] = {
        {"router", 'r', CLI_STR, &a.router, 0, 0, "router frontend address (default tcp://127.0.0.1:5555)", 0},
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
    const char *usage_line = "--router ADDR --prompt TEXT [-n N] [--temp T] [--seed S] [--mask MODE] [--json] [options]";
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
    if (!strstr(a.router, "://")) {
        fprintf(stderr, "ifp client: --router: expected a ZeroMQ address like tcp://HOST:PORT or ipc://PATH, got '%s'\n",
                a.router);
        return 2;
    }
    if (a.id && (!*a.id || strlen(a.id) > 80)) {
        fprintf(stderr, "ifp client: --id: 1 to 80 characters\n");
        return 2;
    }
    if (parse_mask(&a)) return 2;
    if (!opts[6].seen) a.seed = (uint64_t)time(NULL);
    if (a.concurrency > a.n_requests) a.concurrency = a.n_requests;

    void *ctx = zmq_ctx_new(), *sock = NULL;
    creq_t *reqs = calloc((size_t)a.n_requests, sizeof *reqs);
    int status = 1;
    if (!ctx || !reqs) {
        fprintf(stderr, "ifp client: out of memory\n");
        goto done;
    }
    if (!(sock = tools_link_connect("client", &link, ctx, a.router))) {
        status = 2;
        goto done;
    }
    int linger = CL_CANCEL_LINGER_MS;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    /* a router that refuses this client (no key, unknown key, plain vs
     * CURVE) says so in its handshake: report that at once */
    if (tools_link_wait("client", &link, a.timeout_ms) < 0) goto done;
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
    int failed = run_requests(sock, &a, reqs, a.n_requests);
    double wall = ifp_now_ms() - t0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    if (a.n_requests > 1) {
        print_load_summary(&a, reqs, a.n_requests, wall);
    } else if (reqs[0].state != 2) {
        if (reqs[0].printed) fputc('\n', stdout);
    } else {
        creq_t *r = &reqs[0];
        const Ifp__Reply *p = r->reply->reply;
        if (a.json) {
            print_json(r);
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
    tools_link_close(&link);
    if (sock) zmq_close(sock);
    if (ctx) zmq_ctx_term(ctx);
    return status;
}
