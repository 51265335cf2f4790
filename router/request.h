/* request.h — one client request as the router holds it, and the rules of
 * its life.  No sockets, no table: router/flight.c is the only code that
 * moves a request from state to state (rt_req_set_state, which asserts the
 * transition is one of the allowed ones); router/reqtable.c indexes them.
 *
 *            ┌──────────────── replay (group died, lost work, bad tokens) ─┐
 *            ▼                                                             │
 *   PREDICTING ──mask ready──▶ QUEUED ──dispatched──▶ RUNNING ─────────────┘
 *        │    └────────mask ready, a group free at once───────▲    │
 *        └───────────────┴────────────────────┴───────────────────┴──▶ DONE
 *      (error, cancel, deadline, client gone, finished: Reply sent, freed)
 *
 * It keeps what a replay needs — the prompt, the packed mask, the sampling
 * parameters and every token already received — so a group failure costs
 * the client nothing (DESIGN.md §4).
 *
 * Tokens arrive from groups with their index among the new tokens:
 *   index <  n_tokens  -> a duplicate (dropped),
 *   index >  n_tokens  -> a gap (the group lost tokens: the caller replays),
 *   index == n_tokens  -> appended; its text piece extends `text`, which is
 *                         searched for the stop strings: on a match the text
 *                         is cut before the stop string and the request is
 *                         finished (FINISH_STOP).
 * Streaming holds back the bytes at the end of the text that could still
 * become a stop string, so streamed text never shows part of one.  Token
 * events are derived from the tokens: n_streamed counts the events the
 * client's socket accepted, so an event refused by a full socket is sent
 * again later and the client never sees a gap. */
#ifndef RT_REQUEST_H
#define RT_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define RT_MAX_STOP 4         /* stop strings per request */
#define RT_STOP_MAX 64        /* bytes per stop string */
#define RT_IDENT_MAX 255      /* ZeroMQ routing ids are at most 255 bytes */
#define RT_HEAD_LOGITS 16     /* debug: logits_last_prompt kept */
#define RT_MAX_REPLAYS 8      /* group failures a request survives */

/* Finish reasons: the values of ifp.FinishReason. */
enum { RT_FIN_NONE = 0, RT_FIN_LENGTH = 1, RT_FIN_STOP = 2, RT_FIN_EOS = 3, RT_FIN_CANCELLED = 4, RT_FIN_ERROR = 5 };

typedef enum {
    RT_REQ_PREDICTING, /* admitted; tokenizer + predictor job waiting for or on a worker */
    RT_REQ_QUEUED,     /* waiting for a group slot (first placement or a replay) */
    RT_REQ_RUNNING,    /* its Work is on `group` */
    RT_REQ_DONE,       /* finished (`finish`), Reply sent; freed next */
    RT_REQ_N_STATES
} rt_req_state_t;

/* Results of the token checks. */
enum { RT_TOK_OK = 0, RT_TOK_DONE = 1, RT_TOK_DUPLICATE = 2, RT_TOK_GAP = 3 };

typedef struct rt_job rt_job_t; /* router/predict.h */

typedef struct rt_req rt_req_t;
struct rt_req {
    uint64_t rid;
    /* the client */
    uint8_t ident[RT_IDENT_MAX];
    int ident_len;
    int delim;                  /* the client framed with an empty delimiter frame */
    int client;                 /* 1 + the index of its connection's client key (router/zap.h); 0: none */
    char key_name[IFP_CFG_NAME];/* the client's name for logs: its key's or API key's ("" = none) */
    int via_http;               /* came through the HTTP gateway (router/http.h): answers go to its bridge */
    int mask_mode;              /* IFP__MASK_MODE__* as admitted (logs; router/flight.c sets it) */
    char *id;                   /* client's request id (valid UTF-8, no NUL) */
    /* the work */
    int32_t *prompt;            /* [n_prompt] ids (BOS first for text prompts) */
    int n_prompt;
    uint8_t *mask_bits;         /* owned; Work.mask bytes; NULL = dense mode */
    double *cov;                /* owned; [n_clusters] coverage of the mask by each cluster union; NULL = dense mode */
    int mask_cluster;           /* nearest cluster medoid (demand), -1 = none */
    float temperature, top_p;
    uint32_t top_k;
    uint64_t seed;
    uint32_t max_tokens_req;    /* Request.max_tokens (0 = the default) */
    int max_new;                /* new tokens allowed (after the context cut) */
    int n_stop;
    char stop[RT_MAX_STOP][RT_STOP_MAX + 1];
    int stop_len[RT_MAX_STOP];
    int stream, debug, ignore_eos, want_logprobs;
    double deadline;            /* absolute ms (ifp_now_ms), 0 = none */
    /* progress */
    rt_req_state_t state;
    rt_job_t *job;              /* PREDICTING: the predictor job (owned by router/predict.c) */
    int group;                  /* balancer index while RUNNING, else -1 */
    int last_group;             /* produced the last token (-1: none yet) */
    double coverage;            /* of the group it runs / ran on */
    int approximate;
    uint64_t avoid;             /* groups that failed it (bit = balancer index) */
    int32_t *tokens;            /* [max_new] new tokens received (no EOS) */
    float *logprobs;            /* [max_new] */
    int n_tokens;
    char *text;                 /* decoded text of tokens (cut at a stop match) */
    size_t text_len, text_cap, text_sent;
    int n_streamed;             /* TokenEvents the client's socket accepted */
    int finish;                 /* RT_FIN_* once done */
    uint32_t replays[RT_MAX_REPLAYS];
    int n_replays;
    int32_t *resume;            /* owned: Request.resume_tokens (a client's failover), applied once the prompt is set */
    int n_resume;
    float head[RT_HEAD_LOGITS]; /* debug: logits at the last prompt position */
    int n_head, argmax;
    int prefilled;              /* a token arrived since the last dispatch */
    int64_t charged;            /* load charged to `group` */
    /* lost-work bookkeeping of the current dispatch (router/flight.c) */
    uint64_t work_seq;          /* Work.seq it was sent with */
    int beats_unseen;           /* heartbeats since then whose work_seen had not reached work_seq */
    double finished_seen;       /* when a heartbeat first listed it as finished (0 = not yet) */
    /* timings, ms (ifp_now_ms clock) */
    double t_arrival, t_masked, t_dispatch, t_first, t_last_sent, predictor_ms;
    /* links (owned by router/reqtable.c) */
    rt_req_t *h_rid, *h_cli;    /* hash chains */
    rt_req_t *prev, *next;      /* all requests, in arrival order */
    rt_req_t *qprev, *qnext;    /* the queue */
    rt_req_t *gprev, *gnext;    /* the requests running on `group` */
    int queued;
};

/* A new request (state PREDICTING, no prompt yet) for client (ident, id);
 * NULL if out of memory or ident_len is not 1..RT_IDENT_MAX. */
rt_req_t *rt_req_new(uint64_t rid, const void *ident, int ident_len, const char *id);
void rt_req_free(rt_req_t *r);

/* Moves r to state `to`.  Aborts (assert) on a transition the diagram above
 * does not have: such a call is a bug in the router, never bad input. */
void rt_req_set_state(rt_req_t *r, rt_req_state_t to);
const char *rt_req_state_name(rt_req_state_t s);

/* Copies the prompt and allocates room for max_new tokens (max_new >= 1). */
int rt_req_set_prompt(rt_req_t *r, const int32_t *ids, int n, int max_new);
/* Adds a stop string (1..RT_STOP_MAX bytes, at most RT_MAX_STOP). */
int rt_req_add_stop(rt_req_t *r, const char *s, size_t len);

/* RT_TOK_OK (index is the next one), RT_TOK_DUPLICATE or RT_TOK_GAP. */
int rt_req_check_index(const rt_req_t *r, uint32_t index);
/* The token the next one follows (for ifp_tokenizer_piece). */
int32_t rt_req_prev_token(const rt_req_t *r);
/* Appends the next token: is_eos -> finish EOS, nothing appended; else the
 * token, its logprob and text piece, then the stop strings are searched;
 * group_finish (RT_FIN_NONE / LENGTH / EOS as the group flagged it) and
 * max_new end it too.  Returns RT_TOK_OK, RT_TOK_DONE (r->finish set) or
 * IFP_ENOMEM. */
int rt_req_append(rt_req_t *r, int32_t token, float logprob, int is_eos, const char *piece, size_t len,
                  int group_finish);
/* The text that became final and was not yet streamed (held-back bytes that
 * may start a stop string stay back until the request is done).  Does not
 * advance: rt_req_stream_advance(r, n) once the client took n bytes. */
size_t rt_req_stream_text(const rt_req_t *r, const char **p);
void rt_req_stream_advance(rt_req_t *r, size_t n);
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
