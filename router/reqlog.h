/* reqlog.h — the request log: one logfmt line per request that ended, on
 * stderr, always (not only with --verbose), written by the metrics' finish
 * hook (router/metrics.h):
 *
 *   ts=2026-12-03T10:41:07.123Z level=info msg=request id="r1" rid=1764758467123000001 key=alice
 *   group=g0 cluster=0 coverage=1.000 mask=input nearest=0 prompt_tokens=12 completion_tokens=64
 *   ttft_ms=123.4 duration_ms=1234.5 queue_ms=0.1 predictor_ms=8.2 replays=0 status=ok finish=eos via=zmq
 *
 * (one line).  Values from outside (id) are always quoted, with \" \\ \n \r
 * \t and \u00XX escapes: no value can break the line or forge a field.
 * Other values are bare when made of [A-Za-z0-9_.:/@+-], else quoted; "-"
 * stands for "none" (no key, no group, no token yet).  docs/OPERATIONS.md
 * "Metrics and logs" describes every field. */
#ifndef RT_REQLOG_H
#define RT_REQLOG_H

#include "jsonw.h"
#include "request.h"

/* Appends (no newline) the line of request r, ended with status
 * (RT_MSTATUS_*, router/metrics.h) at now (ifp_now_ms) and r->finish; stamp:
 * the wall-clock time (core/log.h); group_name: the group that served it
 * last (NULL: none), of cluster group_cluster (IFP_CLUSTER_DENSE: dense). */
void rt_reqlog_line(ifp_buf_t *out, const rt_req_t *r, const char *stamp, const char *group_name, int group_cluster,
                    int status, double now);
/* Appends s as a logfmt value (see above); always_quote for values from
 * outside. */
void rt_logfmt_value(ifp_buf_t *out, const char *s, int always_quote);

#endif
