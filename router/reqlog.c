/* reqlog.c — the request log line (see reqlog.h). */
#include "reqlog.h"

#include <stdio.h>
#include <string.h>

#include "ifp.pb-c.h"
#include "metrics.h"

static const char *cluster_name(char *buf, size_t cap, int cluster) {
    if (cluster < 0) return "dense";
    snprintf(buf, cap, "%d", cluster);
    return buf;
}

void rt_logfmt_value(ifp_buf_t *o, const char *s, int always_quote) {
    int bare = !always_quote && *s;
    for (const char *p = s; bare && *p; p++)
        bare = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               strchr("_.:/@+-", *p);
    if (!*s && !always_quote) {
        ifp_buf_append(o, "-", 1);
        return;
    }
    if (bare) {
        ifp_buf_append(o, s, strlen(s));
        return;
    }
    ifp_buf_append(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') ifp_buf_printf(o, "\\%c", *p);
        else if (*p == '\n') ifp_buf_append(o, "\\n", 2);
        else if (*p == '\r') ifp_buf_append(o, "\\r", 2);
        else if (*p == '\t') ifp_buf_append(o, "\\t", 2);
        else if (*p < 0x20 || *p == 0x7f) ifp_buf_printf(o, "\\u%04x", *p);
        else ifp_buf_append(o, (const char *)p, 1);
    }
    ifp_buf_append(o, "\"", 1);
}

/* " key=<ms with one decimal>", or " key=-" when t0 or t1 is unknown. */
static void log_ms(ifp_buf_t *o, const char *key, double t0, double t1) {
    if (t0 > 0 && t1 > 0 && t1 >= t0) ifp_buf_printf(o, " %s=%.1f", key, t1 - t0);
    else ifp_buf_printf(o, " %s=-", key);
}

void rt_reqlog_line(ifp_buf_t *o, const rt_req_t *r, const char *stamp, const char *group_name, int group_cluster,
                    int status, double now) {
    const char *level = status == RT_MSTATUS_ERROR ? "error" : status == RT_MSTATUS_DEADLINE ? "warn" : "info";
    ifp_buf_printf(o, "ts=%s level=%s msg=request id=", stamp, level);
    rt_logfmt_value(o, r->id ? r->id : "", 1);
    ifp_buf_printf(o, " rid=%llu key=", (unsigned long long)r->rid);
    rt_logfmt_value(o, r->key_name, 0);
    ifp_buf_append(o, " group=", 7);
    rt_logfmt_value(o, group_name ? group_name : "", 0);
    char cb[16];
    if (group_name) ifp_buf_printf(o, " cluster=%s coverage=%.3f", cluster_name(cb, sizeof cb, group_cluster), r->coverage);
    else ifp_buf_append(o, " cluster=- coverage=-", 21);
    const char *mode = r->mask_mode == IFP__MASK_MODE__MASK_INPUT  ? "input"
                       : r->mask_mode == IFP__MASK_MODE__MASK_TASK ? "task"
                                                                   : "dense";
    ifp_buf_printf(o, " mask=%s nearest=%s", mode,
                   !r->mask_bits ? "-" : r->mask_cluster >= 0 ? cluster_name(cb, sizeof cb, r->mask_cluster) : "-");
    ifp_buf_printf(o, " prompt_tokens=%d completion_tokens=%d", r->n_prompt, r->n_tokens);
    log_ms(o, "ttft_ms", r->t_arrival, r->t_first);
    log_ms(o, "duration_ms", r->t_arrival, now);
    log_ms(o, "queue_ms", r->t_masked, r->t_dispatch);
    log_ms(o, "predictor_ms", r->t_arrival, r->t_masked);
    const char *fin = rt_finish_name(r->finish);
    ifp_buf_printf(o, " replays=%d status=%s finish=%s via=%s", r->n_replays, rt_mstatus_name(status), fin,
                   r->via_http ? "http" : "zmq");
}
