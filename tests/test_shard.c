/* test_shard — ifp-shard, the pipeline-parallel shard group.
 *
 * Unit tests of stage 0's scheduler (no MPI: cohorts, the queue, the
 * finished list, one long prompt's chunks pipelined and capped, decodes
 * beside it, and a seeded random walk checking positions, want rows and
 * in-flight limits), then the group end to end: the
 * test plays the router (shard_testlib.h), starts `mpirun -np P ifp-shard`
 * for P = 1, 2, 3 (layers 2,1,1) on a dense and on a cluster group, and
 * checks every golden prompt's greedy answer token for token against
 * golden.jsonl with at least 8 requests in flight (masks mixed in every
 * micro-batch); plus malformed frames, bad protobuf, unknown message types
 * and invalid work (the group stays up and answers WorkError), the context
 * limit, cancellation, DRAIN, LOAD_CLUSTER (re-compaction of every stage),
 * SIGTERM under load, wrong command lines, a clean SHUTDOWN (exit 0), and a
 * 230-token prompt on P = 3 with its chunks pipelined and one at a time,
 * bit for bit the single-process answer. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "forward.h"
#include "gguf.h"
#include "mask.h"
#include "model.h"
#include "sampler.h"
#include "sched.h"
#include "work.h"
#include "shard_testlib.h"
#include "testutil.h"
#include "wire.h"

/* ---------------------------------------------------------------- helpers */

static sh_work_t *work_new(uint64_t rid, int n_prompt, uint32_t max_new) {
    sh_work_t *w = sh_work_new(n_prompt, 0);
    assert_non_null(w);
    for (int i = 0; i < n_prompt; i++) w->prompt[i] = 3 + i;
    w->rid = rid;
    w->max_new = max_new;
    w->eos = 2;
    return w;
}

/* ---------------------------------------------------------------- scheduler */

static void sched_prefill_then_decode_cohorts(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(8, 64, 16, 2, 4);
    assert_non_null(s);
    int lens[3] = {20, 5, 3};
    for (int i = 0; i < 3; i++) {
        sh_work_t *w = work_new(10 + i, lens[i], 4);
        w->first_index = (uint32_t)(100 * i); /* as a replay would */
        assert_int_equal(sh_sched_enqueue(s, &w), 0);
        assert_null(w);
    }
    int slot;
    sh_work_t *w;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sh_sched_admit(s, &slot, &w), 1);
        assert_int_equal(slot, i);
        assert_int_equal(w->rid, 10 + i);
        sh_work_destroy(&w);
        assert_null(w);
    }
    assert_int_equal(sh_sched_admit(s, &slot, &w), 0);
    sh_row_t rows[24];
    uint32_t seq1, seq2, seq3;
    /* batch 1: the oldest prompt's first chunk fills the prefill budget */
    assert_int_equal(sh_sched_build(s, rows, &seq1), 16);
    assert_int_equal(rows[15].slot, 0);
    assert_int_equal(rows[15].pos, 15);
    assert_int_equal(rows[15].want, 0);
    /* batch 2: the rest of slot 0 (its chunks pipeline), then slots 1 and 2 */
    assert_int_equal(sh_sched_build(s, rows, &seq2), 4 + 5 + 3);
    assert_int_equal(rows[3].slot, 0);
    assert_int_equal(rows[3].pos, 19);
    assert_int_equal(rows[3].want, 1);
    assert_int_equal(rows[8].want, 1);
    assert_int_equal(rows[11].slot, 2);
    assert_int_equal(sh_sched_inflight(s), 2);
    assert_int_equal(sh_sched_build(s, rows, &seq3), 0); /* depth 2 reached */
    /* completions come back in order: a later one first means a lost one */
    uint32_t oldest;
    assert_int_equal(sh_sched_oldest(s, &oldest), 1);
    assert_int_equal(oldest, seq1);
    assert_int_equal(sh_sched_complete(s, seq2, NULL, 0, 0), -1);
    assert_int_equal(sh_sched_inflight(s), 2); /* nothing changed */
    assert_int_equal(sh_sched_complete(s, seq1, NULL, 0, 0), 0);
    assert_int_equal(sh_sched_oldest(s, &oldest), 1);
    assert_int_equal(oldest, seq2);
    sh_tok_t t[3] = {{0, 100, 0}, {1, 101, 0}, {2, 102, 0}};
    assert_int_equal(sh_sched_complete(s, seq2, t, 3, 0), 0);
    assert_int_equal(sh_sched_oldest(s, &oldest), 0);
    /* three decoding slots over depth 2: cohorts of 2 and 1 */
    assert_int_equal(sh_sched_build(s, rows, &seq1), 2);
    assert_int_equal(rows[0].token, 100);
    assert_int_equal(rows[0].pos, 20);
    assert_int_equal(rows[1].token, 101);
    assert_int_equal(rows[1].pos, 5);
    assert_int_equal(sh_sched_build(s, rows, &seq2), 1);
    assert_int_equal(rows[0].slot, 2);
    assert_int_equal(rows[0].pos, 3);
    /* slot 1 finishes; slot 0 is cancelled while in flight */
    assert_int_equal(sh_sched_cancel(s, 10, -1), 2);
    assert_int_equal(sh_sched_busy_slots(s), 3);
    sh_tok_t t2[2] = {{0, 7, 0}, {1, 2, SH_TOK_FINISHED}};
    assert_int_equal(sh_sched_complete(s, seq1, t2, 2, 1000), 0);
    assert_int_equal(sh_sched_busy_slots(s), 1);
    sh_sched_stats_t st;
    uint64_t rids[12];
    sh_sched_stats(s, &st, rids);
    assert_int_equal(st.free_slots, 7);
    assert_int_equal(st.n_running, 1);
    assert_int_equal(rids[0], 12);
    /* 4 tokens counted (the cancelled request's last one is not); request
     * 11 (first_index 100) finished with 2, the cancelled one is not listed */
    assert_int_equal(st.tokens_generated, 4);
    assert_int_equal(st.requests_done, 1);
    sh_finished_t fin[32];
    assert_int_equal(sh_sched_finished(s, -1, 1000, 200, fin), 1);
    assert_int_equal(fin[0].rid, 11);
    assert_int_equal(fin[0].tokens, 102);
    /* slot 2's micro-batch failed in some stage: the request is over, listed
     * as finished with the tokens it really got */
    sh_tok_t t3[1] = {{2, -1, SH_TOK_FINISHED | SH_TOK_FAILED}};
    assert_int_equal(sh_sched_complete(s, seq2, t3, 1, 1100), 0);
    assert_int_equal(sh_sched_busy_slots(s), 0);
    sh_sched_stats(s, &st, rids);
    assert_int_equal(st.tokens_generated, 4);
    assert_int_equal(st.requests_done, 2);
    assert_int_equal(st.n_running, 0);
    assert_int_equal(sh_sched_finished(s, -1, 1150, 200, fin), 2);
    assert_int_equal(fin[1].rid, 12);
    assert_int_equal(fin[1].tokens, 201);
    /* an entry goes once older than keep_ms and listed in 4 heartbeats */
    assert_int_equal(sh_sched_finished(s, -1, 1250, 200, fin), 2); /* 11: 250 ms old, listed twice */
    assert_int_equal(sh_sched_finished(s, -1, 1260, 200, fin), 2);
    assert_int_equal(sh_sched_finished(s, -1, 1270, 200, fin), 1);
    assert_int_equal(fin[0].rid, 12);
    assert_int_equal(sh_sched_finished(s, -1, 1301, 200, fin), 0);
    assert_int_equal(sh_sched_cancel(s, 999, -1), 0);
    sh_sched_destroy(&s);
    assert_null(s);
}

/* The finished list keeps at most SH_SCHED_FINISHED_PER_SLOT × slots
 * entries: the oldest go first. */
static void sched_finished_bounded(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(1, 16, 8, 1, 1);
    sh_row_t rows[9];
    int cap = SH_SCHED_FINISHED_PER_SLOT, slot;
    for (int i = 0; i < cap + 3; i++) {
        sh_work_t *w = work_new(500 + i, 2, 1);
        assert_int_equal(sh_sched_enqueue(s, &w), 0);
        assert_int_equal(sh_sched_admit(s, &slot, &w), 1);
        sh_work_destroy(&w);
        uint32_t seq;
        assert_int_equal(sh_sched_build(s, rows, &seq), 2);
        sh_tok_t t = {slot, 9, SH_TOK_FINISHED};
        assert_int_equal(sh_sched_complete(s, seq, &t, 1, i), 0);
    }
    sh_finished_t fin[SH_SCHED_FINISHED_PER_SLOT];
    assert_int_equal(sh_sched_finished(s, -1, cap + 3, 1e9, fin), cap);
    for (int i = 0; i < cap; i++) {
        assert_int_equal(fin[i].rid, 500 + 3 + i);
        assert_int_equal(fin[i].tokens, 1);
    }
    sh_sched_stats_t st;
    uint64_t rids[2];
    sh_sched_stats(s, &st, rids);
    assert_int_equal(st.requests_done, cap + 3);
    sh_sched_destroy(&s);
}

/* The scheduler holds at most n_slots + extra requests (in a slot and not
 * finished nor cancelled, or waiting). */
static void sched_queue_bound_and_cancel(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(1, 64, 8, 1, 1);
    sh_work_t *m[3] = {work_new(1, 4, 2), work_new(2, 4, 2), work_new(3, 4, 2)};
    assert_int_equal(sh_sched_enqueue(s, &m[0]), 0);
    assert_int_equal(sh_sched_enqueue(s, &m[1]), 0);
    assert_int_equal(sh_sched_held(s), 2);
    assert_int_equal(sh_sched_enqueue(s, &m[2]), -1); /* full: still ours */
    assert_non_null(m[2]);
    sh_work_destroy(&m[2]);
    assert_true(sh_sched_has_rid(s, 2));
    assert_int_equal(sh_sched_cancel(s, 1, -1), 1);
    assert_false(sh_sched_has_rid(s, 1));
    assert_int_equal(sh_sched_held(s), 1);
    sh_sched_destroy(&s); /* frees the queued request */
}

/* Stage 0's rule (extra = 0): never more requests held than slots, whatever
 * links they came from.  A slot whose request was cancelled while in flight
 * is not held: a new request may wait for it (and takes it once its
 * micro-batch is back), but no more than that. */
static void sched_no_work_beyond_slots(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(2, 64, 8, 2, 0);
    sh_work_t *w = work_new(1, 4, 8);
    int slot[2];
    sh_sched_stats_t st;
    assert_int_equal(sh_sched_enqueue(s, &w), 0);
    w = work_new(2, 4, 8);
    w->link = 1;
    assert_int_equal(sh_sched_enqueue(s, &w), 0);
    w = work_new(3, 4, 8);
    assert_int_equal(sh_sched_enqueue(s, &w), -1); /* 2 of 2 held */
    sh_work_destroy(&w);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sh_sched_admit(s, &slot[i], &w), 1);
        sh_work_destroy(&w);
    }
    sh_sched_stats(s, &st, NULL);
    assert_int_equal(st.free_slots, 0);
    w = work_new(3, 4, 8);
    assert_int_equal(sh_sched_enqueue(s, &w), -1);
    sh_row_t rows[2 + 8];
    uint32_t seq;
    assert_int_equal(sh_sched_build(s, rows, &seq), 8); /* both prompts in flight */
    assert_int_equal(sh_sched_cancel(s, 2, 1), 2);       /* slot 1: freed when back */
    assert_int_equal(sh_sched_busy_slots(s), 2);
    assert_int_equal(sh_sched_held(s), 1);
    sh_sched_stats(s, &st, NULL);
    assert_int_equal(st.free_slots, 1);
    assert_int_equal(sh_sched_enqueue(s, &w), 0);         /* waits for slot 1 */
    w = work_new(4, 4, 8);
    assert_int_equal(sh_sched_enqueue(s, &w), -1);        /* and nothing beyond */
    sh_work_destroy(&w);
    assert_int_equal(sh_sched_admit(s, &slot[0], &w), 0); /* slot 1 still in the pipe */
    sh_tok_t t[2] = {{slot[0], 9, 0}, {slot[1], 9, 0}};
    assert_int_equal(sh_sched_complete(s, seq, t, 2, 0), 0);
    assert_int_equal(sh_sched_admit(s, &slot[1], &w), 1);
    assert_int_equal(w->rid, 3);
    sh_work_destroy(&w);
    assert_int_equal(sh_sched_held(s), 2);
    sh_sched_destroy(&s);
}

/* Every request remembers its link: per-link running and finished lists,
 * cancels only from the owning link, a whole link cancelled at once. */
static void sched_links(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(4, 64, 16, 1, 0);
    int link_of[4] = {0, 1, 0, 1}, slot;
    for (int i = 0; i < 4; i++) {
        sh_work_t *w = work_new(100 + i, 2, i < 2 ? 1 : 8);
        w->link = link_of[i];
        assert_int_equal(sh_sched_enqueue(s, &w), 0);
        if (i < 3) {
            assert_int_equal(sh_sched_admit(s, &slot, &w), 1);
            assert_int_equal(s->slot[slot].link, link_of[i]);
            sh_work_destroy(&w);
        }
    }
    uint64_t rids[4];
    assert_int_equal(sh_sched_running(s, 0, rids), 2);
    assert_int_equal(rids[0], 100);
    assert_int_equal(rids[1], 102);
    assert_int_equal(sh_sched_running(s, 1, rids), 2);
    assert_int_equal(rids[0], 101);
    assert_int_equal(rids[1], 103); /* the one waiting */
    assert_int_equal(sh_sched_running(s, -1, rids), 4);
    assert_int_equal(sh_sched_owner(s, 103), 1);
    assert_int_equal(sh_sched_owner(s, 999), -1);
    /* a cancel from the other link is ignored */
    assert_int_equal(sh_sched_cancel(s, 101, 0), 0);
    assert_int_equal(sh_sched_cancel(s, 103, 0), 0);
    assert_true(sh_sched_has_rid(s, 101) && sh_sched_has_rid(s, 103));
    /* requests 100 and 101 finish (max_new 1): each listed to its link only */
    sh_row_t rows[4 + 16];
    uint32_t seq;
    assert_int_equal(sh_sched_build(s, rows, &seq), 6);
    sh_tok_t t[3] = {{0, 5, SH_TOK_FINISHED}, {1, 5, SH_TOK_FINISHED}, {2, 5, 0}};
    assert_int_equal(sh_sched_complete(s, seq, t, 3, 0), 0);
    sh_finished_t fin[16];
    assert_int_equal(sh_sched_finished(s, 0, 10, 1e9, fin), 1);
    assert_int_equal(fin[0].rid, 100);
    assert_int_equal(sh_sched_finished(s, 1, 10, 1e9, fin), 1);
    assert_int_equal(fin[0].rid, 101);
    assert_int_equal(sh_sched_finished(s, -1, 10, 1e9, fin), 2);
    /* link 1's router leaves: its request in a slot and its waiting one go */
    sh_work_t *w = NULL;
    assert_int_equal(sh_sched_admit(s, &slot, &w), 1);
    assert_int_equal(w->rid, 103);
    sh_work_destroy(&w);
    w = work_new(104, 2, 8);
    w->link = 1;
    assert_int_equal(sh_sched_enqueue(s, &w), 0);
    w = work_new(105, 2, 8);
    assert_int_equal(sh_sched_enqueue(s, &w), 0);
    assert_int_equal(sh_sched_held(s), 4);
    assert_int_equal(sh_sched_cancel_link(s, 1), 2);
    assert_int_equal(sh_sched_held(s), 2);
    assert_false(sh_sched_has_rid(s, 103) || sh_sched_has_rid(s, 104));
    assert_int_equal(sh_sched_running(s, 1, rids), 0);
    assert_int_equal(sh_sched_running(s, 0, rids), 2);
    assert_int_equal(rids[0], 102);
    assert_int_equal(rids[1], 105);
    assert_int_equal(sh_sched_cancel_link(s, 1), 0);
    sh_sched_destroy(&s);
}

/* Rows [0, n) are one prefill chunk of slot k at positions pos0.. with a
 * want row only at the prompt's last position. */
static void expect_chunk(const sh_row_t *rows, int n, int k, int pos0, int n_prompt) {
    for (int i = 0; i < n; i++) {
        assert_int_equal(rows[i].slot, k);
        assert_int_equal(rows[i].pos, pos0 + i);
        assert_int_equal(rows[i].token, 3 + pos0 + i); /* work_new's prompt */
        assert_int_equal(rows[i].want, pos0 + i == n_prompt - 1);
    }
}

/* One 300-token prompt, max_batch 64, P = 3: its chunks pipeline, up to 3 in
 * flight, in order, at consecutive positions; only the last chunk samples;
 * its first decode row waits for that token and for the last chunk to leave
 * the pipe, and decode steps never overlap. */
static void sched_long_prompt_pipelines(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(4, 512, 64, 3, 4);
    assert_int_equal(s->prefill_inflight, 3); /* default: depth */
    sh_work_t *w = work_new(1, 300, 3);
    assert_int_equal(sh_sched_enqueue(s, &w), 0);
    int slot;
    assert_int_equal(sh_sched_admit(s, &slot, &w), 1);
    sh_work_destroy(&w);
    sh_row_t rows[4 + 64];
    uint32_t seq[6];
    for (int c = 0; c < 3; c++) { /* three chunks in flight at once */
        assert_int_equal(sh_sched_build(s, rows, &seq[c]), 64);
        expect_chunk(rows, 64, slot, 64 * c, 300);
        assert_int_equal(sh_sched_inflight(s), c + 1);
        assert_int_equal(s->slot[slot].inflight, c + 1);
    }
    assert_true(seq[1] == seq[0] + 1 && seq[2] == seq[1] + 1);
    assert_int_equal(sh_sched_build(s, rows, &seq[3]), 0); /* depth 3 reached */
    assert_int_equal(sh_sched_complete(s, seq[0], NULL, 0, 0), 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[3]), 64);
    expect_chunk(rows, 64, slot, 192, 300);
    assert_int_equal(sh_sched_complete(s, seq[1], NULL, 0, 0), 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[4]), 300 - 256); /* the last chunk: 44 rows, one want */
    expect_chunk(rows, 44, slot, 256, 300);
    /* whole prompt fed, no token yet: nothing to build while chunks fly */
    assert_int_equal(sh_sched_complete(s, seq[2], NULL, 0, 0), 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[5]), 0);
    assert_int_equal(sh_sched_complete(s, seq[3], NULL, 0, 0), 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[5]), 0);
    sh_tok_t t = {slot, 77, 0};
    assert_int_equal(sh_sched_complete(s, seq[4], &t, 1, 0), 0);
    assert_int_equal(s->slot[slot].inflight, 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[5]), 1);
    assert_int_equal(rows[0].slot, slot);
    assert_int_equal(rows[0].pos, 300);
    assert_int_equal(rows[0].token, 77);
    assert_int_equal(rows[0].want, 1);
    assert_int_equal(sh_sched_build(s, rows, &seq[0]), 0); /* its next step needs this one's token */
    sh_sched_destroy(&s);
}

/* A decoding slot keeps its turn while a long prompt fills the pipe (and
 * with prefill_inflight = 1, one chunk at a time): its row leads the first
 * micro-batch built after its token comes back, ahead of the prompt's next
 * chunk. */
static void sched_decode_beside_long_prefill(void **unused) {
    (void)unused;
    for (int cap = 3; cap >= 1; cap -= 2) {
        sh_sched_t *s = sh_sched_new(4, 512, 64, 3, 4);
        assert_int_equal(sh_sched_set_prefill_inflight(s, cap), cap);
        sh_work_t *w = work_new(1, 3, 8);
        int a, b;
        assert_int_equal(sh_sched_enqueue(s, &w), 0);
        assert_int_equal(sh_sched_admit(s, &a, &w), 1);
        sh_work_destroy(&w);
        sh_row_t rows[4 + 64];
        uint32_t seq[8];
        int n_seq = 0, done = 0;
        assert_int_equal(sh_sched_build(s, rows, &seq[n_seq++]), 3); /* a's prompt */
        sh_tok_t ta = {a, 100, 0};
        assert_int_equal(sh_sched_complete(s, seq[done++], &ta, 1, 0), 0);
        w = work_new(2, 300, 8);
        assert_int_equal(sh_sched_enqueue(s, &w), 0);
        assert_int_equal(sh_sched_admit(s, &b, &w), 1);
        sh_work_destroy(&w);
        /* a decodes first, b's first chunk fills the rest */
        assert_int_equal(sh_sched_build(s, rows, &seq[n_seq++]), 1 + 64);
        assert_int_equal(rows[0].slot, a);
        assert_int_equal(rows[0].pos, 3);
        expect_chunk(rows + 1, 64, b, 0, 300);
        /* a is in flight: only b's chunks, up to the cap */
        for (int c = 1; c < cap; c++) {
            assert_int_equal(sh_sched_build(s, rows, &seq[n_seq++]), 64);
            expect_chunk(rows, 64, b, 64 * c, 300);
        }
        assert_int_equal(sh_sched_build(s, rows, &seq[n_seq]), 0);
        assert_int_equal(sh_sched_inflight(s), cap);
        /* a's token back: its row leads the next micro-batch */
        ta.token = 101;
        assert_int_equal(sh_sched_complete(s, seq[done++], &ta, 1, 0), 0);
        assert_int_equal(sh_sched_build(s, rows, &seq[n_seq++]), 1 + 64);
        assert_int_equal(rows[0].slot, a);
        assert_int_equal(rows[0].pos, 4);
        assert_int_equal(rows[0].token, 101);
        expect_chunk(rows + 1, 64, b, 64 * cap, 300); /* b's chunk 0 came back with a's row */
        assert_int_equal(sh_sched_inflight(s), cap);
        sh_sched_destroy(&s);
    }
}

/* prefill_inflight: clamped to 1..depth; with 1, a second prompt takes the
 * micro-batch the first cannot (work-conserving), and each prompt has one
 * chunk in flight at a time. */
static void sched_prefill_inflight_cap(void **unused) {
    (void)unused;
    sh_sched_t *s = sh_sched_new(4, 512, 64, 3, 4);
    assert_int_equal(sh_sched_set_prefill_inflight(s, 0), 3);
    assert_int_equal(sh_sched_set_prefill_inflight(s, 99), 3);
    assert_int_equal(sh_sched_set_prefill_inflight(s, 2), 2);
    assert_int_equal(sh_sched_set_prefill_inflight(s, 1), 1);
    int k[2];
    for (int i = 0; i < 2; i++) {
        sh_work_t *w = work_new(10 + i, 200, 2);
        assert_int_equal(sh_sched_enqueue(s, &w), 0);
        assert_int_equal(sh_sched_admit(s, &k[i], &w), 1);
        sh_work_destroy(&w);
    }
    sh_row_t rows[4 + 64];
    uint32_t seq[3];
    assert_int_equal(sh_sched_build(s, rows, &seq[0]), 64);
    expect_chunk(rows, 64, k[0], 0, 200);
    assert_int_equal(sh_sched_build(s, rows, &seq[1]), 64);
    expect_chunk(rows, 64, k[1], 0, 200);
    assert_int_equal(sh_sched_build(s, rows, &seq[2]), 0); /* both at their cap: the pipe has room, no work */
    assert_int_equal(sh_sched_inflight(s), 2);
    assert_int_equal(sh_sched_complete(s, seq[0], NULL, 0, 0), 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[2]), 64);
    expect_chunk(rows, 64, k[0], 64, 200);
    /* a cap of 2 from now on: the first prompt's next chunk joins */
    assert_int_equal(sh_sched_set_prefill_inflight(s, 2), 2);
    assert_int_equal(sh_sched_complete(s, seq[1], NULL, 0, 0), 0);
    assert_int_equal(sh_sched_build(s, rows, &seq[0]), 64);
    expect_chunk(rows, 64, k[0], 128, 200);
    assert_int_equal(s->slot[k[0]].inflight, 2);
    sh_sched_destroy(&s);
}

/* A seeded random walk of builds and in-order completions over many requests
 * (prompts of 1..70 tokens, 4 slots, max_batch 16, depth 3, every cap):
 * each slot's rows come at consecutive positions across micro-batches (no
 * gap, no repeat), a want row only at the prompt's last position and on
 * decode rows, a decode row only when nothing of its slot is in flight and
 * with the token last sampled, at most `cap` micro-batches with a slot's
 * prefill, decode rows ahead of prefill rows, and every request gets its
 * max_new tokens. */
typedef struct {
    int n_prompt, max_new, gen, next_pos, flying, flying_prefill, last_token, busy;
} shadow_t;

static uint32_t lcg(uint32_t *x) { return (*x = *x * 1664525u + 1013904223u) >> 8; }

static void sched_random_walk_invariants(void **unused) {
    (void)unused;
    enum { SLOTS = 4, DEPTH = 3, MAXP = 16, CTX = 128, NREQ = 60 };
    for (int cap = 1; cap <= DEPTH; cap++) {
        uint32_t x = 12345u + (uint32_t)cap;
        sh_sched_t *s = sh_sched_new(SLOTS, CTX, MAXP, DEPTH, NREQ);
        sh_sched_set_prefill_inflight(s, cap);
        for (int i = 0; i < NREQ; i++) {
            sh_work_t *w = work_new(100 + i, 1 + (int)(lcg(&x) % 70), 1 + lcg(&x) % 6);
            assert_int_equal(sh_sched_enqueue(s, &w), 0);
        }
        shadow_t sh[SLOTS] = {0};
        sh_row_t fl[DEPTH][SLOTS + MAXP];
        int fl_n[DEPTH], f_head = 0, f_len = 0, finished = 0, tokens = 0, pipelined = 0;
        uint32_t fl_seq[DEPTH];
        for (int step = 0; finished < NREQ; step++) {
            assert_true(step < 100000);
            int slot;
            sh_work_t *w;
            while (sh_sched_admit(s, &slot, &w)) {
                assert_false(sh[slot].busy);
                sh[slot] = (shadow_t){.n_prompt = w->n_prompt, .max_new = (int)w->max_new, .busy = 1};
                sh_work_destroy(&w);
            }
            if (f_len < DEPTH && (f_len == 0 || lcg(&x) % 2)) {
                sh_row_t *rows = fl[(f_head + f_len) % DEPTH];
                uint32_t seq;
                int n = sh_sched_build(s, rows, &seq);
                if (n > 0) {
                    int seen[SLOTS] = {0}, prefill_started = 0;
                    for (int i = 0; i < n; i++) {
                        shadow_t *q = &sh[rows[i].slot];
                        assert_true(q->busy);
                        assert_int_equal(rows[i].pos, q->next_pos++); /* consecutive across micro-batches */
                        int decode = rows[i].pos >= q->n_prompt;
                        if (decode) {
                            assert_false(prefill_started);  /* decode rows first */
                            assert_int_equal(q->flying, 0); /* never overlapping the slot's prefill or decode */
                            assert_int_equal(rows[i].token, q->last_token);
                            assert_int_equal(rows[i].want, 1);
                        } else {
                            prefill_started = 1;
                            assert_int_equal(rows[i].want, rows[i].pos == q->n_prompt - 1);
                            if (!seen[rows[i].slot]) {
                                assert_true(q->flying_prefill < cap);
                                pipelined += q->flying_prefill > 0;
                                q->flying_prefill++;
                            }
                        }
                        if (!seen[rows[i].slot]) q->flying++;
                        seen[rows[i].slot] = 1;
                    }
                    fl_n[(f_head + f_len) % DEPTH] = n;
                    fl_seq[(f_head + f_len++) % DEPTH] = seq;
                    continue;
                }
                if (f_len == 0) fail_msg("nothing in flight and nothing to build (%d requests finished)", finished);
            }
            if (f_len == 0) continue;
            /* the oldest comes back: a token for each want row */
            const sh_row_t *rows = fl[f_head];
            int n = fl_n[f_head], nt = 0, seen[SLOTS] = {0};
            sh_tok_t t[SLOTS + MAXP];
            for (int i = 0; i < n; i++) {
                shadow_t *q = &sh[rows[i].slot];
                if (!seen[rows[i].slot]) {
                    q->flying--;
                    if (rows[i].pos < q->n_prompt) q->flying_prefill--;
                    seen[rows[i].slot] = 1;
                }
                if (!rows[i].want) continue;
                q->last_token = 1000 + (int)(lcg(&x) % 1000);
                int fin = ++q->gen == q->max_new;
                t[nt++] = (sh_tok_t){rows[i].slot, q->last_token, fin ? SH_TOK_FINISHED : 0};
                tokens++;
                if (fin) {
                    q->busy = 0;
                    finished++;
                }
            }
            assert_int_equal(sh_sched_complete(s, fl_seq[f_head], t, nt, step), 0);
            f_head = (f_head + 1) % DEPTH;
            f_len--;
        }
        sh_sched_stats_t st;
        uint64_t rids[SLOTS + NREQ];
        sh_sched_stats(s, &st, rids);
        assert_int_equal(st.requests_done, NREQ);
        assert_int_equal(st.tokens_generated, (uint64_t)tokens);
        assert_int_equal(st.free_slots, SLOTS);
        if (cap == 1) assert_int_equal(pipelined, 0);
        else assert_true(pipelined > 0);
        sh_sched_destroy(&s);
    }
}

static void work_validation(void **unused) {
    (void)unused;
    ifp_config_t c = {.n_layers = 2, .d_ffn = 12, .vocab = 100};
    sh_work_t *w = sh_work_new(4, 4);
    int32_t p[4] = {1, 5, 99, 7};
    memcpy(w->prompt, p, sizeof p);
    uint8_t *mask = w->mask;
    w->max_new = 3;
    w->eos = 2;
    size_t mask_len = w->mask_len;
    w->mask_len = 0;
    char why[256];
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), 0);
    assert_int_equal(sh_work_check(w, &c, 4, why, sizeof why), -1); /* no room for a new token */
    assert_non_null(strstr(why, "does not fit the context of 4"));
    w->mask_len = mask_len;
    memcpy(mask, (uint8_t[]){0x01, 0x00, 0x03, 0x00}, 4);
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), 0);
    w->mask_len = 3;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    assert_string_equal(why, "mask has 3 bytes, expected 4 (2 layers x 12 channels)");
    w->mask_len = 4;
    mask[1] = 0x10; /* a bit past channel 11 */
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    assert_string_equal(why, "mask layer 0 has bits set past channel 11");
    mask[1] = 0;
    mask[2] = mask[3] = 0; /* layer 1 keeps nothing */
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    assert_string_equal(why, "mask layer 1 keeps no channel");
    w->mask_len = 0;
    w->prompt[2] = 100;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    assert_string_equal(why, "prompt token 2: id 100 out of range [0, 100)");
    w->prompt[2] = 99;
    w->max_new = 0;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    w->max_new = 1;
    w->eos = 100;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    w->eos = -1;
    w->sp.temperature = NAN;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    w->sp.temperature = 0;
    w->sp.top_p = INFINITY;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    w->sp.top_p = 1;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), 0);
    w->n_prompt = 0;
    assert_int_equal(sh_work_check(w, &c, 8, why, sizeof why), -1);
    assert_string_equal(why, "empty prompt");
    sh_work_destroy(&w);
    assert_null(w);
    sh_work_destroy(&w); /* accepts NULL */
}

/* ---------------------------------------------------------------- golden answers */

enum { NG = 12 };

typedef struct {
    int n;
    int32_t *prompt[NG];
    int n_prompt[NG];
    ifp_mask_t *mask[NG];
    int32_t want[2][NG][40]; /* [0] masked, [1] dense greedy ids */
    int n_want[2][NG], argmax[2][NG];
    float head[2][NG][16];
    ifp_cluster_table_t *table;
} golden_t;

static void read_answer(const cJSON *o, golden_t *g, int which, int i) {
    int n, *ids = tu_ints(cJSON_GetObjectItem(o, "greedy_ids"), &n);
    assert_true(n <= 40);
    for (int k = 0; k < n; k++) g->want[which][i][k] = ids[k];
    g->n_want[which][i] = n;
    free(ids);
    g->argmax[which][i] = cJSON_GetObjectItem(o, "last_argmax")->valueint;
    const cJSON *h = cJSON_GetObjectItem(o, "last_logits_first16");
    for (int k = 0; k < 16; k++) g->head[which][i][k] = (float)cJSON_GetArrayItem(h, k)->valuedouble;
}

static int golden_setup(void **state) {
    golden_t *g = calloc(1, sizeof *g);
    ifp_gguf_t *gg = NULL;
    ifp_config_t c;
    assert_int_equal(ifp_gguf_open(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &gg, NULL), 0);
    assert_int_equal(ifp_config_from_gguf(gg, &c, NULL), 0);
    ifp_gguf_close(&gg);
    cJSON **rows = tu_read_jsonl(MODEL_PATH("ifp-mix/golden.jsonl"), &g->n);
    assert_int_equal(g->n, NG);
    for (int i = 0; i < NG; i++) {
        g->prompt[i] = (int32_t *)tu_ints(cJSON_GetObjectItem(rows[i], "prompt_ids"), &g->n_prompt[i]);
        const cJSON *kc = cJSON_GetObjectItem(rows[i], "kept_channels");
        g->mask[i] = ifp_mask_new(c.n_layers, c.d_ffn);
        for (int l = 0; l < c.n_layers; l++) {
            int nk, *k = tu_ints(cJSON_GetArrayItem(kc, l), &nk);
            assert_int_equal(ifp_mask_set_layer(g->mask[i], l, (int32_t *)k, nk, NULL), 0);
            free(k);
        }
        read_answer(cJSON_GetObjectItem(rows[i], "masked"), g, 0, i);
        read_answer(cJSON_GetObjectItem(rows[i], "dense"), g, 1, i);
    }
    tu_free_jsonl(rows, g->n);
    assert_int_equal(ifp_cluster_table_load(MODEL_PATH("ifp-mix/clusters-k4.gguf"), &g->table, NULL), 0);
    *state = g;
    return 0;
}

static int golden_teardown(void **state) {
    rig_reap(); /* a job a failed test left running */
    golden_t *g = *state;
    for (int i = 0; i < NG; i++) {
        free(g->prompt[i]);
        ifp_mask_destroy(&g->mask[i]);
    }
    ifp_cluster_table_destroy(&g->table);
    free(g);
    return 0;
}

static void check_answer(const req_t *q, const golden_t *g, int which, int i) {
    const int32_t *want = g->want[which][i];
    int n = g->n_want[which][i];
    assert_false(q->error);
    int same = 0;
    while (same < n && same < q->n && q->tok[same] == want[same]) same++;
    if (q->n != n || same != n)
        fail_msg("golden %d (%s): %d tokens, want %d; first difference at %d", i, which ? "dense" : "masked", q->n, n,
                 same);
    assert_int_equal(q->finish, want[n - 1] == 2 ? IFP__FINISH_REASON__FINISH_EOS : IFP__FINISH_REASON__FINISH_LENGTH);
    assert_int_equal(q->n_head, 16);
    assert_int_equal(q->argmax, g->argmax[which][i]);
    for (int k = 0; k < 16; k++) assert_true(fabsf(q->head[k] - g->head[which][i][k]) < 1e-3f);
}

/* Most requests streaming at the same time, from the token events. */
static int max_concurrent(const rig_t *r) {
    int best = 0;
    for (int i = 0; i < r->n_req; i++) {
        if (!r->req[i].n) continue;
        double t = r->req[i].t_first;
        int open = 0;
        for (int j = 0; j < r->n_req; j++) open += r->req[j].n && r->req[j].t_first <= t && r->req[j].t_last >= t;
        if (open > best) best = open;
    }
    return best;
}

/* Every golden prompt, masked and dense, all submitted at once (8 slots, the
 * rest queued).  On a cluster group, masked answers are checked when the
 * union covers the mask; the others (and dense requests, which run on the
 * whole union there) are in the mix but not checked. */
static void run_golden(rig_t *r, const golden_t *g, int cluster, uint64_t base) {
    const ifp_mask_t *u = cluster >= 0 ? g->table->c[cluster].uni : NULL;
    int first = r->n_req, checked = 0;
    double t0 = now_ms();
    for (int i = 0; i < NG; i++) {
        rig_work(r, base + 2 * i, g->prompt[i], g->n_prompt[i], g->mask[i], 32, 2);
        rig_work(r, base + 2 * i + 1, g->prompt[i], g->n_prompt[i], NULL, 32, 2);
    }
    rig_wait_all(r, 30000);
    int tokens = 0;
    for (int i = 0; i < NG; i++) {
        const req_t *qm = &r->req[first + 2 * i], *qd = &r->req[first + 2 * i + 1];
        tokens += qm->n + qd->n;
        if (!u || ifp_mask_coverage(g->mask[i], u) == 1.0) check_answer(qm, g, 0, i), checked++;
        if (!u) check_answer(qd, g, 1, i), checked++;
    }
    int conc = max_concurrent(r);
    fprintf(stderr, "  %d golden answers identical (%d requests, %d tokens in %.0f ms, up to %d streaming at once)\n",
            checked, 2 * NG, tokens, now_ms() - t0, conc);
    assert_true(conc >= 8);
    assert_true(checked >= (u ? 5 : 2 * NG));
}

/* Heartbeats of a group that has run only the requests r->req[0..n_req):
 * the counters add up to what the router received, every request is listed
 * as finished (with the index after its last token) in some heartbeat, the
 * list stays within 4 × slots, and the last Work is echoed. */
static void check_heartbeat_fields(rig_t *r) {
    uint64_t tokens = 0, done = 0;
    for (int i = 0; i < r->n_req; i++) tokens += (uint64_t)r->req[i].n, done += r->req[i].finish != 0;
    for (int i = 0; i < 40 && r->last_requests_done != done; i++) rig_wait_heartbeat(r);
    assert_int_equal(r->last_requests_done, done);
    assert_int_equal(r->last_tokens_generated, tokens);
    for (int i = 0; i < r->n_req; i++) {
        const req_t *q = &r->req[i];
        if (!q->finish) continue;
        if (!q->fin_seen) fail_msg("request %llu never listed as finished", (unsigned long long)q->rid);
        assert_int_equal(q->fin_tokens, q->n);
    }
    assert_true(r->max_finished >= 1 && r->max_finished <= 4 * 8);
    assert_int_equal(r->last_epoch, RIG_EPOCH);
    assert_int_equal(r->last_work_seen, r->work_seq);
    fprintf(stderr, "  heartbeats: %llu tokens, %llu requests done, up to %d finished listed, work_seen %llu\n",
            (unsigned long long)tokens, (unsigned long long)done, r->max_finished, (unsigned long long)r->work_seq);
}

static void group_p1_dense(void **state) {
    rig_t r;
    rig_start(&r, 1, NULL, "dense");
    rig_wait_heartbeat(&r);
    assert_int_equal(r.last_work_seen, 0); /* nothing received yet */
    run_golden(&r, *state, -1, 1000);
    check_heartbeat_fields(&r);
    rig_stop(&r);
}

/* A cluster group; then LOAD_CLUSTER re-compacts every stage: to the dense
 * weights (every answer exact again), and back. */
static void group_p2_cluster(void **state) {
    rig_t r;
    rig_start(&r, 2, NULL, "0");
    rig_wait_heartbeat(&r);
    assert_int_equal(r.last_cluster, 0);
    run_golden(&r, *state, 0, 1000);
    rig_load_cluster(&r, -1);
    run_golden(&r, *state, -1, 2000);
    rig_load_cluster(&r, 0);
    run_golden(&r, *state, 0, 3000);
    rig_stop(&r);
}

/* SIGTERM to mpirun with requests streaming: stage 0 stops taking work,
 * waits for its micro-batches to come back, sends SHUTDOWN down the pipe;
 * every rank stops cleanly (mpirun itself reports a signalled job). */
static void group_p3_dense(void **state) {
    rig_t r;
    rig_start(&r, 3, "2,1,1", "dense");
    rig_wait_heartbeat(&r);
    run_golden(&r, *state, -1, 1000);
    req_t *q[8];
    for (int i = 0; i < 8; i++) q[i] = rig_work(&r, 3000 + i, (const int32_t[]){1, 327}, 2, NULL, 200, -1);
    while (q[7]->n < 2) assert_true(rig_pump(&r, 5000));
    kill(r.pid, SIGTERM);
    double t0 = now_ms();
    int st = wait_exit(r.pid, 20000);
    fprintf(stderr, "  SIGTERM with 8 streams: job gone in %.0f ms (mpirun status %d)\n", now_ms() - t0, st);
    const char *log = read_log(r.log);
    assert_true(st >= 0 && st < 128);
    assert_non_null(strstr(log, "g0/0: signal received: shutting down"));
    assert_non_null(strstr(log, "g0/0: stopped:"));
    assert_non_null(strstr(log, "g0/1: stopped:"));
    assert_non_null(strstr(log, "g0/2: stopped:"));
    assert_null(strstr(log, "leaving"));
    rig_close(&r);
}

static int reap(void **unused) {
    (void)unused;
    rig_reap();
    return 0;
}

/* Wrong rank count, unknown group: a clear message, no hang. */
static void bad_command_lines(void **unused) {
    (void)unused;
    rig_t r;
    rig_start(&r, 1, NULL, "dense");
    rig_wait_heartbeat(&r);
    char log[160];
    snprintf(log, sizeof log, "%s/bad.log", r.dir);
    assert_int_equal(wait_exit(spawn_shard(2, r.cfg, "g0", log), 20000) != 0, 1);
    assert_non_null(strstr(read_log(log), "the group has stages = 1 but the MPI job has 2 ranks: run mpirun -np 1"));
    assert_int_equal(wait_exit(spawn_shard(1, r.cfg, "nope", log), 20000) != 0, 1);
    assert_non_null(strstr(read_log(log), "has no group \"nope\"; configured groups: g0"));
    unlink(log);
    rig_stop(&r);
}

static void group_p3_cluster(void **state) {
    rig_t r;
    rig_start(&r, 3, "2,1,1", "0");
    rig_wait_heartbeat(&r);
    run_golden(&r, *state, 0, 1000);
    check_heartbeat_fields(&r); /* the tokens come from the last stage's socket */
    rig_stop(&r);
}

static const int32_t short_prompt[2] = {1, 327};

static void group_p2_dense_robustness(void **state) {
    rig_t r;
    rig_start(&r, 2, NULL, "dense");
    rig_wait_heartbeat(&r);
    /* malformed frames, bad protobuf, unknown message types */
    rig_send(&r, "\xff\xff\xff\xff", 4);
    rig_send(&r, "", 0);
    zmq_send(r.sock, r.ident, r.ident_len, ZMQ_SNDMORE);
    zmq_send(r.sock, "a", 1, ZMQ_SNDMORE);
    zmq_send(r.sock, "b", 1, 0);
    rig_send(&r, "\x48\x01", 2); /* RouterToGroup field 9: no such message type */
    rig_send(&r, "\x1a\x02\x08\x07", 4); /* Control of an unknown kind */
    /* invalid work: each gets a WorkError */
    const golden_t *g = *state;
    int32_t big[256], bad_tok[3] = {1, 5000, 7}, neg[2] = {1, -4};
    for (int i = 0; i < 256; i++) big[i] = 5;
    rig_work(&r, 901, short_prompt, 0, NULL, 8, 2);                /* empty prompt */
    rig_work(&r, 902, bad_tok, 3, NULL, 8, 2);                     /* token out of range */
    rig_work(&r, 903, neg, 2, NULL, 8, 2);                         /* negative token */
    rig_work(&r, 904, short_prompt, 2, NULL, 0, 2);                /* max_new 0 */
    rig_work(&r, 905, big, 256, NULL, 8, 2);                       /* no room in the context */
    ifp_mask_t *empty = ifp_mask_clone(g->mask[0]);
    empty->n_kept[2] = 0;                                          /* a layer keeping nothing */
    rig_work(&r, 906, short_prompt, 2, empty, 8, 2);
    ifp_mask_destroy(&empty);
    {   /* a mask of the wrong size */
        uint8_t m[10] = {0};
        Ifp__Work w = IFP__WORK__INIT;
        w.rid = 907;
        w.n_prompt = 2;
        w.prompt = (int32_t *)short_prompt;
        w.max_new = 4;
        w.mask.data = m;
        w.mask.len = sizeof m;
        Ifp__RouterToGroup msg = IFP__ROUTER_TO_GROUP__INIT;
        msg.msg_case = IFP__ROUTER_TO_GROUP__MSG_WORK;
        msg.work = &w;
        r.req[r.n_req++] = (req_t){.rid = 907};
        rig_send_msg(&r, &msg);
    }
    rig_wait_all(&r, 10000);
    assert_int_equal(r.work_errors, 7);
    for (int i = 0; i < r.n_req; i++) assert_true(r.req[i].error);
    rig_wait_heartbeat(&r); /* still up */
    /* the context bounds an answer like `ifp run` does: 254 + 2 = ctx 256 */
    req_t *edge = rig_work(&r, 908, big, 254, NULL, 10, -1);
    rig_wait_all(&r, 10000);
    assert_int_equal(edge->n, 2);
    assert_int_equal(edge->finish, IFP__FINISH_REASON__FINISH_LENGTH);
    /* the golden answers, through the pipe */
    run_golden(&r, g, -1, 1000);
    /* cancellation: the slot is freed, the stream stops */
    req_t *c = rig_work(&r, 600, short_prompt, 2, NULL, 200, -1);
    while (c->n < 3) assert_true(rig_pump(&r, 5000));
    Ifp__CancelWork cw = IFP__CANCEL_WORK__INIT;
    cw.rid = 600;
    Ifp__RouterToGroup cm = IFP__ROUTER_TO_GROUP__INIT;
    cm.msg_case = IFP__ROUTER_TO_GROUP__MSG_CANCEL;
    cm.cancel = &cw;
    rig_send_msg(&r, &cm);
    c->finish = IFP__FINISH_REASON__FINISH_CANCELLED;
    for (int i = 0; i < 40 && (r.last_free != 8 || r.last_running); i++) rig_wait_heartbeat(&r);
    assert_int_equal(r.last_free, 8);
    assert_int_equal(r.last_running, 0);
    assert_true(c->n < 100);
    /* throughput: 1 stream, then 8 */
    int first = r.n_req;
    rig_work(&r, 700, short_prompt, 2, NULL, 128, -1);
    rig_wait_all(&r, 30000);
    double one = rate(&r, first);
    first = r.n_req;
    for (int i = 0; i < 8; i++) rig_work(&r, 710 + i, short_prompt, 2, NULL, 128, -1);
    rig_wait_all(&r, 30000);
    double eight = rate(&r, first);
    fprintf(stderr, "  P=2 decode: %.0f tokens/s with 1 stream, %.0f tokens/s with 8 streams\n", one, eight);
    /* idle: the group naps */
    for (int i = 0; i < 4; i++) rig_wait_heartbeat(&r);
    double c0 = tree_cpu_ns(r.pid), w0 = now_ms();
    while (now_ms() - w0 < 2000) rig_pump(&r, 100);
    double cpu = 100.0 * (tree_cpu_ns(r.pid) - c0) / 1e6 / (now_ms() - w0);
    fprintf(stderr, "  idle P=2 group (mpirun + 2 ranks, 50 ms heartbeats): %.1f%% of one core (not asserted: a busy "
                    "machine decides)\n", cpu);
    /* the heartbeat echoes the last Work received: every one of them reached
     * the group (the refused ones too) */
    for (int i = 0; i < 40 && r.last_work_seen != r.work_seq; i++) rig_wait_heartbeat(&r);
    assert_int_equal(r.last_work_seen, r.work_seq);
    assert_int_equal(r.last_epoch, RIG_EPOCH);
    /* DRAIN: heartbeats say so, new work is refused */
    rig_control(&r, IFP__CONTROL__KIND__DRAIN);
    for (int i = 0; i < 40 && !r.last_draining; i++) rig_wait_heartbeat(&r);
    assert_true(r.last_draining);
    req_t *late = rig_work(&r, 800, short_prompt, 2, NULL, 4, 2);
    rig_wait_all(&r, 5000);
    assert_true(late->error);
    rig_stop(&r);
}

/* ---------------------------------------------------------------- one long prompt */

enum { LONG_N = 230, LONG_NEW = 16, LONG_CHUNK = 48 /* the rig's max_batch */ };

typedef struct {
    int32_t prompt[LONG_N];
    int32_t tok[LONG_NEW];
    float head[16];
} long_ref_t;

/* The reference, in one process: the prompt in chunks of the group's
 * max_batch (the rows the group's micro-batches carry), then greedy decode,
 * EOS ignored. */
static void long_reference(long_ref_t *L) {
    ifp_model_params_t mp = ifp_model_default_params();
    ifp_model_t *m = NULL;
    assert_int_equal(ifp_model_load(MODEL_PATH("ifp-mix/ifp-mix.gguf"), &mp, &m, NULL), 0);
    ifp_state_params_t sp = ifp_state_default_params();
    sp.max_batch = LONG_CHUNK;
    ifp_state_t *st = NULL;
    assert_int_equal(ifp_state_new(m, &sp, &st, NULL), 0);
    int32_t tok[LONG_CHUNK], pos[LONG_CHUNK], slot[LONG_CHUNK] = {0};
    uint8_t want[LONG_CHUNK];
    int V = m->cfg.vocab, next = -1;
    for (int p0 = 0; p0 < LONG_N + LONG_NEW - 1;) {
        int n = p0 < LONG_N ? (LONG_N - p0 < LONG_CHUNK ? LONG_N - p0 : LONG_CHUNK) : 1;
        for (int i = 0; i < n; i++) {
            tok[i] = p0 < LONG_N ? L->prompt[p0 + i] : next;
            pos[i] = p0 + i;
            want[i] = p0 + i >= LONG_N - 1;
        }
        ifp_batch_t b = {.n = n, .token = tok, .pos = pos, .slot = slot, .want_logits = want};
        int rows = ifp_forward(st, &b, NULL);
        p0 += n;
        if (rows == 0) continue;
        assert_int_equal(rows, 1);
        const float *lg = ifp_state_logits(st);
        if (p0 == LONG_N) memcpy(L->head, lg, sizeof L->head);
        next = L->tok[p0 - LONG_N] = ifp_argmax(lg, V);
    }
    ifp_state_free(&st);
    ifp_model_free(&m);
}

/* One 230-token prompt (5 chunks of at most 48 rows) on a P = 3 group, with
 * its chunks pipelined (the default) and one at a time
 * (IFP_SHARD_PREFILL_INFLIGHT=1): alone, its first 16 logits are bit for bit
 * the single-process ones and its tokens the same; next to two decoding
 * streams (their rows ride in the chunks' micro-batches), the same tokens. */
static void group_p3_long_prompt(void **state) {
    const golden_t *g = *state;
    long_ref_t L;
    for (int i = 0, n = 0; n < LONG_N; i = (i + 1) % NG)
        for (int k = 0; k < g->n_prompt[i] && n < LONG_N; k++) L.prompt[n++] = g->prompt[i][k];
    long_reference(&L);
    for (int pass = 0; pass < 2; pass++) {
        if (pass) setenv("IFP_SHARD_PREFILL_INFLIGHT", "1", 1);
        rig_t r;
        rig_start(&r, 3, "2,1,1", "dense");
        unsetenv("IFP_SHARD_PREFILL_INFLIGHT");
        rig_wait_heartbeat(&r);
        req_t *q = rig_work(&r, 1, L.prompt, LONG_N, NULL, LONG_NEW, -1);
        rig_wait_all(&r, 30000);
        assert_false(q->error);
        assert_int_equal(q->n, LONG_NEW);
        assert_memory_equal(q->tok, L.tok, sizeof L.tok);
        assert_int_equal(q->n_head, 16);
        assert_memory_equal(q->head, L.head, sizeof L.head); /* the same rows in the same chunks: bit for bit */
        req_t *d[2];
        for (int i = 0; i < 2; i++) d[i] = rig_work(&r, 10 + i, short_prompt, 2, NULL, 120, -1);
        while (d[0]->n < 2 || d[1]->n < 2) assert_true(rig_pump(&r, 5000));
        q = rig_work(&r, 2, L.prompt, LONG_N, NULL, LONG_NEW, -1);
        rig_wait_all(&r, 30000);
        assert_int_equal(q->n, LONG_NEW);
        assert_memory_equal(q->tok, L.tok, sizeof L.tok);
        for (int k = 0; k < 16; k++) assert_true(fabsf(q->head[k] - L.head[k]) < 1e-3f);
        assert_int_equal(d[0]->n, 120);
        assert_memory_equal(d[0]->tok, d[1]->tok, sizeof(int32_t) * 120);
        assert_non_null(strstr(read_log(r.log), pass ? "chunks in up to 1 of the 3" : "chunks in up to 3 of the 3"));
        fprintf(stderr, "  P=3, %s: 230-token prompt exact, alone and beside 2 decoding streams\n",
                pass ? "one chunk at a time" : "chunks pipelined");
        rig_stop(&r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sched_prefill_then_decode_cohorts),
        cmocka_unit_test(sched_queue_bound_and_cancel),
        cmocka_unit_test(sched_no_work_beyond_slots),
        cmocka_unit_test(sched_links),
        cmocka_unit_test(sched_finished_bounded),
        cmocka_unit_test(sched_long_prompt_pipelines),
        cmocka_unit_test(sched_decode_beside_long_prefill),
        cmocka_unit_test(sched_prefill_inflight_cap),
        cmocka_unit_test(sched_random_walk_invariants),
        cmocka_unit_test(work_validation),
        cmocka_unit_test_teardown(bad_command_lines, reap),
        cmocka_unit_test_setup_teardown(group_p1_dense, golden_setup, golden_teardown),
        cmocka_unit_test_setup_teardown(group_p2_dense_robustness, golden_setup, golden_teardown),
        cmocka_unit_test_setup_teardown(group_p2_cluster, golden_setup, golden_teardown),
        cmocka_unit_test_setup_teardown(group_p3_dense, golden_setup, golden_teardown),
        cmocka_unit_test_setup_teardown(group_p3_cluster, golden_setup, golden_teardown),
        cmocka_unit_test_setup_teardown(group_p3_long_prompt, golden_setup, golden_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
