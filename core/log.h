/* log.h — the timestamp every log line of ifp's servers starts with, and
 * one-call log lines on stderr.
 *
 *   2026-12-03T10:41:07.123Z ifp-router: group g0 died (no message for 612 ms)
 *   2026-12-03T10:41:07.125Z ifp-shard g0/1: signal received: shutting down
 *
 * The stamp is RFC 3339 in UTC with milliseconds (the wall clock: for
 * reading logs side by side, never for timing — core/clock.h is for that).
 * What follows the stamp is what the line said before stamps existed, so a
 * pattern such as "ifp-router: keys reloaded" still matches; a pattern
 * anchored at the start of the line ("^ifp-router:") must allow the stamp.
 * A line is written with one stdio call, so lines of different threads do not
 * interleave.  The `ifp` command's output is for people and has no stamps. */
#ifndef IFP_LOG_H
#define IFP_LOG_H

#include <stdarg.h>
#include <stddef.h>

#define IFP_LOG_STAMP_LEN 24 /* "2026-12-03T10:41:07.123Z" */

/* Writes the current wall-clock time as "YYYY-MM-DDTHH:MM:SS.mmmZ" to buf
 * (cap >= IFP_LOG_STAMP_LEN + 1; shorter: truncated, still NUL-terminated).
 * Returns buf. */
char *ifp_log_stamp(char *buf, size_t cap);
/* The same for a given time (seconds since the epoch, UTC). */
char *ifp_log_stamp_at(char *buf, size_t cap, double epoch_s);

/* One line on stderr: "<stamp> <who>: <message>\n" (who NULL or "": no
 * "who: ").  The message is cut at about 8 KiB; a trailing newline in fmt is
 * not doubled. */
void ifp_logf(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ifp_vlogf(const char *who, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
