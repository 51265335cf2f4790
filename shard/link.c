#include "link.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "wire.h"
#include "clock.h"

/* ---------------------------------------------------------------- logging */

static char log_prefix[128] = "ifp-shard";
static int log_verbose;

void sh_log_init(const char *group, int rank, int verbose) {
    snprintf(log_prefix, sizeof log_prefix, "ifp-shard %s/%d", group, rank);
    log_verbose = verbose;
}

static void vlog_line(const char *fmt, va_list ap, const char *suffix) {
    char line[1024];
    int n = snprintf(line, sizeof line, "%s: ", log_prefix);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(stderr, "%s%s\n", line, suffix ? suffix : "");
}

void sh_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap, NULL);
    va_end(ap);
}

void sh_vlog(const char *fmt, ...) {
    if (!log_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap, NULL);
    va_end(ap);
}

void sh_log_limited(sh_ratelimit_t *rl, const char *fmt, ...) {
    double now = ifp_now_ms();
    if (rl->last_ms > 0 && now - rl->last_ms < (rl->every_ms > 0 ? rl->every_ms : 1000.0)) {
        rl->suppressed++;
        return;
    }
    char suffix[64] = "";
    if (rl->suppressed) snprintf(suffix, sizeof suffix, " (%lu more like it suppressed)", rl->suppressed);
    rl->last_ms = now;
    rl->suppressed = 0;
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap, suffix);
    va_end(ap);
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

void sh_signals_install(void) {
    /* naps of tens of microseconds must not become the default 50 us slack
     * longer: the pipe's wake-up latency is most of its overhead */
    prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int sh_stop_requested(void) { return stop_flag != 0; }

/* ---------------------------------------------------------------- socket */

int sh_link_open(sh_link_t *l, const char *endpoint, const char *identity, ifp_err_t *err) {
    memset(l, 0, sizeof *l);
    l->opened_ms = ifp_now_ms();
    l->rl_drop.every_ms = 10000;
    int one = 1, hwm = 100000;
    if (!(l->zctx = zmq_ctx_new())) return ifp_errf(err, IFP_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
    zmq_ctx_set(l->zctx, ZMQ_BLOCKY, 0);
    if (!(l->sock = zmq_socket(l->zctx, ZMQ_DEALER))) {
        int e = errno;
        sh_link_close(l, 0);
        return ifp_errf(err, IFP_EIO, "zmq_socket: %s", zmq_strerror(e));
    }
    zmq_setsockopt(l->sock, ZMQ_ROUTING_ID, identity, strlen(identity));
    zmq_setsockopt(l->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(l->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(l->sock, endpoint)) {
        int e = errno;
        sh_link_close(l, 0);
        return ifp_errf(err, IFP_EINVAL, "cannot connect to the router backend %s: %s", endpoint, zmq_strerror(e));
    }
    return IFP_OK;
}

void sh_link_close(sh_link_t *l, int linger_ms) {
    if (l->sock) {
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(l->sock);
    }
    if (l->zctx) zmq_ctx_term(l->zctx);
    free(l->buf);
    l->sock = l->zctx = NULL;
    l->buf = NULL;
    l->cap = 0;
}

int sh_link_send(sh_link_t *l, const ProtobufCMessage *m) {
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > l->cap) {
        size_t cap = len < 4096 ? 4096 : len * 2;
        uint8_t *b = realloc(l->buf, cap);
        if (!b) {
            l->send_drops++;
            sh_log_limited(&l->rl_drop, "out of memory packing a message for the router: dropped");
            return -1;
        }
        l->buf = b;
        l->cap = cap;
    }
    protobuf_c_message_pack(m, l->buf);
    for (;;) {
        if (zmq_send(l->sock, l->buf, len, ZMQ_DONTWAIT) >= 0) return l->sent++, 0;
        if (errno != EINTR) break;
    }
    l->send_drops++;
    if (!l->sent && ifp_now_ms() - l->opened_ms < 5000) return -1;
    sh_log_limited(&l->rl_drop, "message to the router dropped (%s); %lu dropped so far",
                   errno == EAGAIN ? "router not connected or not reading" : zmq_strerror(errno), l->send_drops);
    return -1;
}

int sh_link_work_error(sh_link_t *l, uint64_t rid, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Ifp__WorkError we = IFP__WORK_ERROR__INIT;
    we.rid = rid;
    we.message = msg;
    Ifp__GroupToRouter out = IFP__GROUP_TO_ROUTER__INIT;
    out.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    out.error = &we;
    sh_vlog("work error for rid %llu: %s", (unsigned long long)rid, msg);
    return sh_link_send(l, &out.base);
}

Ifp__RouterToGroup *sh_link_recv(sh_link_t *l, int *waiting) {
    ifp_frames_t f;
    *waiting = 0;
    for (;;) {
        if (ifp_wire_recv(l->sock, &f, ZMQ_DONTWAIT) >= 0) break;
        if (errno != EINTR) return NULL;
    }
    *waiting = 1;
    Ifp__RouterToGroup *m = NULL;
    const char *why = NULL;
    if (f.n != 1 || f.truncated) why = "expected exactly one frame";
    else if (!(m = ifp_wire_router_msg(ifp_frame_data(&f, 0), ifp_frame_size(&f, 0))))
        why = "not a RouterToGroup protobuf (or an empty / unknown message type)";
    if (why) {
        l->malformed++;
        sh_log_limited(&l->rl_malformed, "malformed message from the router (%d frame%s, %zu bytes): %s; %lu so far",
                       f.n, f.n == 1 ? "" : "s", f.n ? ifp_frame_size(&f, f.n - 1) : (size_t)0, why, l->malformed);
    }
    ifp_frames_close(&f);
    return m;
}
