/* reqtable.h — the router's table of requests in flight.  No sockets.
 *
 * Each request has a router-wide id (rid, sent to groups) and is also found
 * by its client: (ROUTER identity bytes, client-chosen id string), for
 * Cancel.  It keeps what a replay needs — the prompt, the mask, the sampling
 * parameters and every token already received — so a group failure costs
 * the client nothing (DESIGN.md §4).  Requests waiting for a slot sit in one
 * FIFO queue (replays go to its front).
 *
 * Tokens arrive from groups with their index among the new tokens:
 *   index <  n_tokens  -> a duplicate (dropped),
 *   index >  n_tokens  -> a gap (the group lost tokens: the caller replays),
 *   index == n_tokens  -> appended; its text piece extends `text`, which is
 *                         searched for the stop strings: on a match the text
 *                         is cut before the stop string and the request is
 *                         finished (FINISH_STOP).
 * Streaming holds back the bytes at the end of the text that could still
 * become a stop string, so streamed text never shows part of one:
 * rt_req_stream_text hands out the bytes that became final. */
#ifndef RT_REQTABLE_H
#define RT_REQTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "mask.h"

#define RT_MAX_STOP 4         /* stop strings per request */
#define RT_STOP_MAX 64        /* bytes per stop string */
#define RT_IDENT_MAX 255      /* ZeroMQ routing ids are at most 255 bytes */
#define RT_HEAD_LOGITS 16     /* logits_last_prompt kept */
#define RT_MAX_REPLAYS 8      /* group failures a request survives */

/* Finish reasons: the values of ifp.FinishReason. */
enum { RT_FIN_NONE = 0, RT_FIN_LENGTH = 1, RT_FIN_STOP = 2, RT_FIN_EOS = 3, RT_FIN_CANCELLED = 4, RT_FIN_ERROR = 5 };

typedef enum {
    RT_REQ_NEW,     /* admitted, not yet placed */
    RT_REQ_QUEUED,  /* waiting in the queue for a group slot */
    RT_REQ_RUNNING, /* running on `group` */
    RT_REQ_DONE,    /* finished (`finish`); removed once the reply is sent */
} rt_req_state_t;

/* Results of the token checks. */
enum { RT_TOK_OK = 0, RT_TOK_DONE = 1, RT_TOK_DUPLICATE = 2, RT_TOK_GAP = 3 };

typedef struct rt_req rt_req_t;
struct rt_req {
    uint64_t rid;
    /* the client */
    uint8_t ident[RT_IDENT_MAX];
    int ident_len;
    int delim;                  /* the client framed with an empty delimiter frame */
    char *id;                   /* client's request id */
    /* the work */
    int32_t *prompt;            /* [n_prompt] ids the client's text became (BOS first) */
    int n_prompt;
    ifp_mask_t *mask;           /* owned; NULL = dense mode */
    int mask_cluster;           /* nearest cluster medoid (demand), -1 = none */
    float temperature, top_p;
    uint32_t top_k;
    uint64_t seed;
    int max_new;                /* new tokens allowed (after the context cut) */
    int n_stop;
    char stop[RT_MAX_STOP][RT_STOP_MAX + 1];
    int stop_len[RT_MAX_STOP];
    int stream;
    int debug;                  /* the client asked for Reply.debug */
    double deadline;            /* absolute ms (ifp_now_ms), 0 = none */
    /* progress */
    rt_req_state_t state;
    int group;                  /* balancer index while RUNNING, else -1 */
    int last_group;             /* produced the last token (-1: none yet) */
    double coverage;            /* of the group it runs / ran on */
    int approximate;
    uint64_t avoid;             /* groups that failed it (bit = balancer index) */
    int32_t *tokens;            /* [max_new] new tokens received (no EOS) */
    int n_tokens;
    char *text;                 /* decoded text of tokens (cut at a stop match) */
    size_t text_len, text_cap, text_sent;
    int finish;                 /* RT_FIN_* once done */
    uint32_t replays[RT_MAX_REPLAYS];
    int n_replays;
    float head[RT_HEAD_LOGITS]; /* logits at the last prompt position (first token's event) */
    int n_head, argmax;
    int prefilled;              /* a token arrived since the last dispatch */
    int64_t charged;            /* load charged to `group` */
    int lost_beats;             /* heartbeats in a row from `group` not listing it */
    /* timings, ms (ifp_now_ms clock) */
    double t_arrival, t_dispatch, t_sent, t_first, predictor_ms;
    /* links (owned by the table) */
    rt_req_t *h_rid, *h_cli;    /* hash chains */
    rt_req_t *prev, *next;      /* all requests, in arrival order */
    rt_req_t *qprev, *qnext;    /* the queue */
    int queued;
};

typedef struct rt_reqtable rt_reqtable_t;

/* rids are first_rid, first_rid + 1, ...  (pick a first_rid unlikely to
 * repeat across router runs: groups may still hold work of a previous run). */
rt_reqtable_t *rt_reqtable_new(uint64_t first_rid);
void rt_reqtable_destroy(rt_reqtable_t **t);

/* A new request (state NEW, no prompt yet) for client (ident, id); NULL if
 * out of memory or ident_len is not 1..RT_IDENT_MAX. */
rt_req_t *rt_reqtable_add(rt_reqtable_t *t, const void *ident, int ident_len, const char *id);
/* Unlinks (queue included) and frees *r; sets *r to NULL. */
void rt_reqtable_remove(rt_reqtable_t *t, rt_req_t **r);
rt_req_t *rt_reqtable_find(const rt_reqtable_t *t, uint64_t rid);
rt_req_t *rt_reqtable_find_client(const rt_reqtable_t *t, const void *ident, int ident_len, const char *id);
int rt_reqtable_count(const rt_reqtable_t *t);
rt_req_t *rt_reqtable_first(const rt_reqtable_t *t); /* then r->next */

/* The FIFO of requests waiting for a slot. */
void rt_reqtable_enqueue(rt_reqtable_t *t, rt_req_t *r, int at_front);
void rt_reqtable_dequeue(rt_reqtable_t *t, rt_req_t *r); /* no-op if not queued */
rt_req_t *rt_reqtable_queue_head(const rt_reqtable_t *t); /* then r->qnext */
int rt_reqtable_queue_len(const rt_reqtable_t *t);

/* Copies the prompt and allocates room for max_new tokens (max_new >= 1). */
int rt_req_set_prompt(rt_req_t *r, const int32_t *ids, int n, int max_new);
/* Adds a stop string (1..RT_STOP_MAX bytes, at most RT_MAX_STOP). */
int rt_req_add_stop(rt_req_t *r, const char *s, size_t len);

/* RT_TOK_OK (index is the next one), RT_TOK_DUPLICATE or RT_TOK_GAP. */
int rt_req_check_index(const rt_req_t *r, uint32_t index);
/* The token the next one follows (for ifp_tokenizer_piece). */
int32_t rt_req_prev_token(const rt_req_t *r);
/* Appends the next token: is_eos -> finish EOS, nothing appended; else the
 * token and its text piece, then the stop strings are searched; group_finish
 * (RT_FIN_NONE / LENGTH / EOS as the group flagged it) and max_new end it too.
 * Returns RT_TOK_OK, RT_TOK_DONE (r->finish set) or IFP_ENOMEM. */
int rt_req_append(rt_req_t *r, int32_t token, int is_eos, const char *piece, size_t len, int group_finish);
/* The text that became final since the last call (held-back bytes that may
 * start a stop string stay back until the request is done); advances. */
size_t rt_req_stream_text(rt_req_t *r, const char **p);
/* Tokens this request still puts on its group: prompt not yet prefilled
 * (prompt + tokens so far until a token arrives) + decode budget left. */
int64_t rt_req_load(const rt_req_t *r);
/* Records a replay at the current token index; IFP_ERANGE once
 * RT_MAX_REPLAYS replays were recorded. */
int rt_req_note_replay(rt_req_t *r);
/* The sequence a (re)dispatch prefills: prompt + tokens so far, into buf
 * (cap ids); returns its length, or -1 if cap is too small. */
int rt_req_work_prompt(const rt_req_t *r, int32_t *buf, int cap);
void rt_req_set_head(rt_req_t *r, const float *logits, int n, int argmax);

#endif
