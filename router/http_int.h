/* http_int.h — the HTTP gateway's insides, shared by its two files.  Not
 * API: only router/http.c (the daemon, its thread, requests in) and
 * router/http_relay.c (the bridge's answers out, disconnects) and
 * router/http_setup.c (settings, start, stop) include it.
 * Everything here is touched by the gateway's thread only, except the API
 * keys (keys_mu: the loop reloads them on SIGHUP). */
#ifndef RT_HTTP_INT_H
#define RT_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "apikeys.h"
#include "http.h"
#include "jsonw.h"

#define HT_IDLE_TIMEOUT_S 60 /* an idle keep-alive connection is closed */
#define HT_MAP 1024 /* buckets of the tag -> connection map (a power of two) */

/* Endpoints, for routing and the gateway's own metrics. */
enum { EP_COMPLETIONS, EP_CHAT, EP_MODELS, EP_MODEL, EP_METRICS, EP_HEALTH, EP_READY, EP_OTHER, EP_N };
/* Statuses counted per endpoint. */
#define HT_CODES(X) X(200) X(400) X(401) X(404) X(405) X(413) X(429) X(500) X(503) X(504)
enum {
#define HT_CODE_ENUM(c) HT_C_##c,
    HT_CODES(HT_CODE_ENUM)
#undef HT_CODE_ENUM
    HT_C_N
};

typedef enum {
    HC_NEW,    /* headers read, body coming */
    HC_WAIT,   /* suspended: the loop has it (a request, a metrics or health ask) */
    HC_ANSWER, /* out holds a whole answer (status, body) to queue */
    HC_STREAM, /* Server-Sent Events: out holds events not yet written */
    HC_GONE,   /* the client went away (or the gateway stops): close */
} hc_state_t;

typedef struct rt_http rt_http_t;
typedef struct hconn hconn_t;
struct hconn {
    rt_http_t *H;
    struct MHD_Connection *mc;
    int ep;
    hc_state_t state;
    uint64_t tag;          /* the bridge tag and request id ("h<tag>") while in the map */
    int in_map;
    hconn_t *hnext;
    int suspended;
    ifp_buf_t body;        /* the request body */
    int too_large;
    char key_name[IFP_APIKEY_NAME];
    oai_request_t q;       /* the checked request (parsed) */
    int parsed;
    char rid[48];          /* the response's id: "cmpl-..." / "chatcmpl-..." */
    int64_t created;
    /* the answer */
    int status;
    ifp_buf_t out;         /* body, or SSE bytes not yet written (from out_pos) */
    size_t out_pos;
    const char *ctype;
    uint32_t retry_after_s;
    /* a stream */
    int stream_started, stream_done, first_chunk;
    size_t text_sent;      /* text bytes streamed so far */
    char carry[8];         /* the start of a UTF-8 sequence the next token completes */
    size_t carry_len;
    int prev_token;
    double t0;
};

struct rt_http {
    struct MHD_Daemon *d;
    void *zctx, *sock;     /* DEALER to the loop's bridge */
    char bridge[64];
    pthread_t th;
    int thread_started;
    int wake_fd;           /* eventfd: rt_http_destroy wakes the thread */
    volatile int stop;
    const ifp_tokenizer_t *tok;
    oai_limits_t lim;
    char model_id[IFP_CFG_NAME];
    size_t max_body;
    int auth, metrics_auth, tls;
    char keys_path[IFP_CFG_PATH + 16];
    pthread_mutex_t keys_mu;
    ifp_apikey_t *keys;
    int n_keys;
    hconn_t *map[HT_MAP];
    uint64_t next_tag;
    uint64_t rid_salt;     /* random per run: response ids differ across runs */
    int n_open, n_streams;
    char address[96];
    uint64_t counts[EP_N][HT_C_N];
    double next_sweep;
    double log_window;     /* rate limit of the gateway's own log lines */
    int log_n;
};

/* ---- http.c ---- */
/* The gateway's thread; libmicrohttpd's callbacks (router/http_setup.c starts them). */
void *ht_run(void *arg);
enum MHD_Result ht_on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **ptr);
void ht_on_completed(void *cls, struct MHD_Connection *mc, void **ptr, enum MHD_RequestTerminationCode toe);
void ht_mhd_logger(void *cls, const char *fmt, va_list ap);
void ht_log(rt_http_t *H, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Resumes c if it is suspended (MHD then calls the handler or the SSE
 * reader again). */
void ht_resume(hconn_t *c);
/* Sends a bridge message: frames[0..n). */
int ht_bridge_send(rt_http_t *H, const void *const *frames, const size_t *lens, int n);
/* Sends the loop a Cancel of c's request. */
void ht_cancel(hconn_t *c);
/* c's answer becomes an error in the OpenAI shape. */
void ht_set_error(hconn_t *c, int status, const char *type, const char *param, const char *code, const char *fmt,
                  ...) __attribute__((format(printf, 6, 7)));

/* ---- http_relay.c ---- */
void ht_map_put(rt_http_t *H, hconn_t *c);
hconn_t *ht_map_get(rt_http_t *H, uint64_t tag);
void ht_map_del(rt_http_t *H, hconn_t *c);
/* Reads and handles every message waiting on the bridge. */
void ht_on_bridge(rt_http_t *H);
/* Finds suspended connections whose client closed: cancels their requests. */
void ht_sweep(rt_http_t *H);
/* The gateway's own metrics (after the loop's text in GET /metrics). */
void ht_write_metrics(rt_http_t *H, ifp_buf_t *b);
int ht_code_index(int status);
extern const char *const HT_EP_PATH[EP_N];

#endif
