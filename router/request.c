/* request.c — a request's state rules and token bookkeeping (see request.h). */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

/* Invariants of the state machine hold in every build type (not assert():
 * RelWithDebInfo and Release define NDEBUG).  A failure is a router bug. */
#define CHECK(cond)                                                                                       \
    do {                                                                                                  \
        if (!(cond)) invariant_failed(r, to, #cond);                                                      \
    } while (0)

static void invariant_failed(const rt_req_t *r, rt_req_state_t to, const char *what) {
    ifp_logf("ifp-router", "BUG: request rid %llu: %s -> %s breaks %s", (unsigned long long)r->rid,
            rt_req_state_name(r->state), rt_req_state_name(to), what);
    abort();
}

rt_req_t *rt_req_new(uint64_t rid, const void *ident, int ident_len, const char *id) {
    if (ident_len < 1 || ident_len > RT_IDENT_MAX || !id) return NULL;
    rt_req_t *r = calloc(1, sizeof *r);
    if (!r || !(r->id = strdup(id))) {
        free(r);
        return NULL;
    }
    memcpy(r->ident, ident, (size_t)ident_len);
    r->ident_len = ident_len;
    r->rid = rid;
    r->state = RT_REQ_PREDICTING;
    r->group = r->last_group = -1;
    r->mask_cluster = -1;
    r->argmax = -1;
    return r;
}

void rt_req_free(rt_req_t *r) {
    if (!r) return;
    free(r->id);
    free(r->prompt);
    free(r->tokens);
    free(r->logprobs);
    free(r->text);
    free(r->mask_bits);
    free(r->cov);
    free(r->resume);
    free(r);
}

/* ---------------------------------------------------------------- states */

static const char *const STATE_NAMES[RT_REQ_N_STATES] = {"predicting", "queued", "running", "done"};

const char *rt_req_state_name(rt_req_state_t s) { return (unsigned)s < RT_REQ_N_STATES ? STATE_NAMES[s] : "?"; }

/* ALLOWED[from] has bit `to` set for every transition of the diagram. */
#define BIT(s) (1u << (s))
static const unsigned ALLOWED[RT_REQ_N_STATES] = {
    [RT_REQ_PREDICTING] = BIT(RT_REQ_QUEUED) | BIT(RT_REQ_RUNNING) | BIT(RT_REQ_DONE),
    [RT_REQ_QUEUED] = BIT(RT_REQ_RUNNING) | BIT(RT_REQ_DONE),
    [RT_REQ_RUNNING] = BIT(RT_REQ_QUEUED) | BIT(RT_REQ_DONE),
    [RT_REQ_DONE] = 0,
};

void rt_req_set_state(rt_req_t *r, rt_req_state_t to) {
    CHECK((unsigned)r->state < RT_REQ_N_STATES && (unsigned)to < RT_REQ_N_STATES);
    CHECK(ALLOWED[r->state] & BIT(to));
    /* invariants of the state entered */
    CHECK(to != RT_REQ_RUNNING || r->group >= 0);
    CHECK(to == RT_REQ_RUNNING || r->group < 0);
    CHECK(to == RT_REQ_PREDICTING || !r->job);
    CHECK(to == RT_REQ_QUEUED || !r->queued);
    r->state = to;
}

/* ---------------------------------------------------------------- work */

int rt_req_set_prompt(rt_req_t *r, const int32_t *ids, int n, int max_new) {
    if (n < 1 || max_new < 1 || r->prompt) return IFP_EINVAL;
    r->prompt = malloc((size_t)n * sizeof *r->prompt);
    r->tokens = malloc((size_t)max_new * sizeof *r->tokens);
    r->logprobs = malloc((size_t)max_new * sizeof *r->logprobs);
    r->text_cap = 64;
    r->text = malloc(r->text_cap);
    if (!r->prompt || !r->tokens || !r->logprobs || !r->text) return IFP_ENOMEM; /* freed with the request */
    memcpy(r->prompt, ids, (size_t)n * sizeof *ids);
    r->n_prompt = n;
    r->max_new = max_new;
    return IFP_OK;
}

int rt_req_add_stop(rt_req_t *r, const char *s, size_t len) {
    if (r->n_stop >= RT_MAX_STOP || len < 1 || len > RT_STOP_MAX) return IFP_EINVAL;
    memcpy(r->stop[r->n_stop], s, len);
    r->stop[r->n_stop][len] = '\0';
    r->stop_len[r->n_stop++] = (int)len;
    return IFP_OK;
}

/* ---------------------------------------------------------------- tokens */

int rt_req_check_index(const rt_req_t *r, uint32_t index) {
    if (index < (uint32_t)r->n_tokens) return RT_TOK_DUPLICATE;
    if (index > (uint32_t)r->n_tokens) return RT_TOK_GAP;
    return RT_TOK_OK;
}

int32_t rt_req_prev_token(const rt_req_t *r) {
    return r->n_tokens > 0 ? r->tokens[r->n_tokens - 1] : r->prompt[r->n_prompt - 1];
}

static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0 || m > n) return NULL;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

/* Cuts the text at the earliest stop string that ends in the bytes appended
 * after old_len; returns 1 if one matched. */
static int match_stop(rt_req_t *r, size_t old_len) {
    size_t cut = (size_t)-1;
    for (int s = 0; s < r->n_stop; s++) {
        size_t m = (size_t)r->stop_len[s];
        size_t from = old_len >= m - 1 ? old_len - (m - 1) : 0;
        const char *hit = find_bytes(r->text + from, r->text_len - from, r->stop[s], m);
        if (hit && (size_t)(hit - r->text) < cut) cut = (size_t)(hit - r->text);
    }
    if (cut == (size_t)-1) return 0;
    r->text_len = cut;
    return 1;
}

int rt_req_append(rt_req_t *r, int32_t token, float logprob, int is_eos, const char *piece, size_t len,
                  int group_finish) {
    if (is_eos) {
        r->finish = RT_FIN_EOS;
        return RT_TOK_DONE;
    }
    if (r->n_tokens >= r->max_new) { /* cannot happen: finished at max_new */
        r->finish = RT_FIN_LENGTH;
        return RT_TOK_DONE;
    }
    if (r->text_len + len > r->text_cap) {
        size_t cap = r->text_cap * 2;
        while (cap < r->text_len + len) cap *= 2;
        char *grown = realloc(r->text, cap);
        if (!grown) return IFP_ENOMEM;
        r->text = grown;
        r->text_cap = cap;
    }
    r->logprobs[r->n_tokens] = logprob;
    r->tokens[r->n_tokens++] = token;
    size_t old_len = r->text_len;
    if (len) memcpy(r->text + r->text_len, piece, len);
    r->text_len += len;
    if (r->n_stop && match_stop(r, old_len)) r->finish = RT_FIN_STOP;
    else if (group_finish == RT_FIN_LENGTH || group_finish == RT_FIN_EOS) r->finish = group_finish;
    else if (r->n_tokens >= r->max_new) r->finish = RT_FIN_LENGTH;
    return r->finish ? RT_TOK_DONE : RT_TOK_OK;
}

/* Length of the longest suffix of the text that is a proper prefix of some
 * stop string (bytes that may still turn into a match). */
static size_t held_back(const rt_req_t *r) {
    size_t hold = 0;
    for (int s = 0; s < r->n_stop; s++) {
        size_t m = (size_t)r->stop_len[s] - 1;
        if (m > r->text_len) m = r->text_len;
        for (size_t k = m; k > hold; k--)
            if (memcmp(r->text + r->text_len - k, r->stop[s], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

size_t rt_req_stream_text(const rt_req_t *r, const char **p) {
    size_t safe = r->finish ? r->text_len : r->text_len - held_back(r);
    if (safe < r->text_sent) safe = r->text_sent;
    *p = r->text + r->text_sent;
    return safe - r->text_sent;
}

void rt_req_stream_advance(rt_req_t *r, size_t n) { r->text_sent += n; }

int64_t rt_req_load(const rt_req_t *r) {
    if (r->finish) return 0;
    int64_t left = r->max_new - r->n_tokens;
    return (r->prefilled ? 0 : (int64_t)r->n_prompt + r->n_tokens) + (left > 0 ? left : 0);
}

int rt_req_note_replay(rt_req_t *r) {
    if (r->n_replays >= RT_MAX_REPLAYS) return IFP_ERANGE;
    r->replays[r->n_replays++] = (uint32_t)r->n_tokens;
    return IFP_OK;
}

int rt_req_work_prompt(const rt_req_t *r, int32_t *buf, int cap) {
    int n = r->n_prompt + r->n_tokens;
    if (n > cap) return -1;
    memcpy(buf, r->prompt, (size_t)r->n_prompt * sizeof *buf);
    if (r->n_tokens) memcpy(buf + r->n_prompt, r->tokens, (size_t)r->n_tokens * sizeof *buf);
    return n;
}

void rt_req_set_head(rt_req_t *r, const float *logits, int n, int argmax) {
    if (n > RT_HEAD_LOGITS) n = RT_HEAD_LOGITS;
    if (n < 0) n = 0;
    if (n) memcpy(r->head, logits, (size_t)n * sizeof *logits);
    r->n_head = n;
    r->argmax = argmax;
}
