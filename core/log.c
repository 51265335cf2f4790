/* log.c — log line stamps (see log.h). */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES 8192

static char *stamp(char *buf, size_t cap, time_t sec, int ms) {
    if (!buf || cap == 0) return buf;
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) memset(&tm, 0, sizeof tm);
    char s[96]; /* room for any int in every field */
    snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ms < 0 ? 0 : ms > 999 ? 999 : ms);
    size_t n = strlen(s) < cap ? strlen(s) : cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

char *ifp_log_stamp_at(char *buf, size_t cap, double epoch_s) {
    if (!(epoch_s >= 0)) epoch_s = 0;
    time_t sec = (time_t)epoch_s;
    return stamp(buf, cap, sec, (int)((epoch_s - (double)sec) * 1000.0));
}

char *ifp_log_stamp(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return stamp(buf, cap, ts.tv_sec, (int)(ts.tv_nsec / 1000000)); /* truncated: never a later second */
}

void ifp_vlogf(const char *who, const char *fmt, va_list ap) {
    char line[LINE_MAX_BYTES];
    char stamp[IFP_LOG_STAMP_LEN + 1];
    int n = snprintf(line, sizeof line, "%s %s%s", ifp_log_stamp(stamp, sizeof stamp), who ? who : "",
                     who && *who ? ": " : "");
    if (n < 0) n = 0;
    if ((size_t)n < sizeof line) {
        int k = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        if (k > 0) n += k;
    }
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    while (len > 0 && line[len - 1] == '\n') len--;
    line[len] = '\0';
    fprintf(stderr, "%s\n", line);
}

void ifp_logf(const char *who, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ifp_vlogf(who, fmt, ap);
    va_end(ap);
}
