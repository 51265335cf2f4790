/* shlog.h — the shard group's log lines: "<stamp> ifp-shard GROUP/STAGE: ..."
 * on stderr (the stamp: core/log.h), one line per call, plus a per-cause
 * rate limiter for lines that input from outside could repeat at will
 * (malformed messages, drops). */
#ifndef SH_SHLOG_H
#define SH_SHLOG_H

typedef struct {
    double last_ms;
    unsigned long suppressed;
    double every_ms; /* 0 = 1000 */
} sh_ratelimit_t;

/* Sets the prefix ("ifp-shard g0/1") and whether sh_vlog prints. */
void sh_log_init(const char *group, int rank, int verbose);
void sh_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sh_vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* only with --verbose */
/* At most one line per limiter a second (or every_ms); the next line
 * reports how many were suppressed. */
void sh_log_limited(sh_ratelimit_t *rl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
