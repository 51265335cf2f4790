#include "shlog.h"

#include <stdarg.h>
#include <stdio.h>

#include "clock.h"
#include "log.h"

static char log_prefix[128] = "ifp-shard";
static int log_verbose;

void sh_log_init(const char *group, int rank, int verbose) {
    snprintf(log_prefix, sizeof log_prefix, "ifp-shard %s/%d", group, rank);
    log_verbose = verbose;
}

static void vlog_line(const char *fmt, va_list ap, const char *suffix) {
    char line[1024], stamp[IFP_LOG_STAMP_LEN + 1];
    int n = snprintf(line, sizeof line, "%s %s: ", ifp_log_stamp(stamp, sizeof stamp), log_prefix);
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
