/* test_shard_fault — a shard group that loses a micro-batch fails loudly and
 * never hangs.
 *
 * The test hook IFP_SHARD_FAULT=drop-batch=N makes stage 1 (the only stage
 * for P = 1) drop the N-th micro-batch it receives, as a lost MPI message
 * would.  With a small [group] batch_timeout_ms the job must die (mpirun
 * exits non-zero, through MPI_Abort) and stage 0's log line must name the
 * lost micro-batch.  Only the outcome is asserted; the bound on the wait is
 * a generous one that only keeps a broken build from hanging the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shard_testlib.h"

#define TIMEOUT_MS 1500
#define DIE_WITHIN_MS 90000.0 /* not a measurement: only "it did not hang" */

static const int32_t prompt[2] = {1, 327};

static int reap(void **unused) {
    (void)unused;
    rig_reap();
    return 0;
}

/* The seq stage `stage` says the hook dropped, from the log; -1 if none. */
static long dropped_seq(const char *log, int stage) {
    char key[96];
    snprintf(key, sizeof key, "g0/%d: test hook IFP_SHARD_FAULT: dropping micro-batch ", stage);
    const char *p = strstr(log, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Pumps the group's messages until mpirun exits; returns its status (-1:
 * still running after DIE_WITHIN_MS, then killed). */
static int wait_death(rig_t *r) {
    double until = now_ms() + DIE_WITHIN_MS;
    int status;
    pid_t got;
    while ((got = waitpid(r->pid, &status, WNOHANG)) == 0 && now_ms() < until) rig_pump(r, 20);
    if (got == 0) {
        kill(-r->pid, SIGKILL);
        waitpid(r->pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs a group with the hook, sends n requests of max_new tokens, and checks
 * the job died with stage 0 naming the micro-batch the hook dropped.
 * Returns the log (static buffer of read_log). */
static const char *run_lost_batch(rig_t *r, int P, const char *layers, const char *fault, int n, int max_new,
                                  int drop_stage) {
    rig_opts_t o = {.batch_timeout_ms = TIMEOUT_MS, .fault = fault};
    rig_start_ex(r, P, layers, "dense", &o);
    rig_wait_heartbeat(r);
    for (int i = 0; i < n; i++) rig_work(r, 100 + i, prompt, 2, NULL, max_new, -1);
    int st = wait_death(r);
    const char *log = read_log(r->log);
    fprintf(stderr, "  P=%d, %s, %d requests: mpirun exit status %d\n", P, fault, n, st);
    assert_true(st > 0); /* died (not -1: it did not hang), and not cleanly */
    long seq = dropped_seq(log, drop_stage);
    assert_true(seq >= 0);
    char want[96];
    snprintf(want, sizeof want, "g0/0: micro-batch %ld lost: ", seq);
    assert_non_null(strstr(log, want));
    assert_non_null(strstr(log, "aborting the group (MPI_Abort)"));
    for (int i = 0; i < r->n_req; i++) assert_int_equal(r->req[i].finish, 0); /* none could finish */
    return log;
}

/* One request: a single micro-batch in flight at a time, so nothing comes
 * back after the lost one and only the deadline can tell. */
static void p2_lost_batch_hits_deadline(void **unused) {
    (void)unused;
    rig_t r;
    const char *log = run_lost_batch(&r, 2, NULL, "drop-batch=3", 1, 200, 1);
    assert_int_equal(dropped_seq(log, 1), 2); /* the 3rd received: prefill, 1 decode, then this one */
    assert_non_null(strstr(log, "g0/0: micro-batch 2 lost: sent to stage 1 "));
    assert_non_null(strstr(log, "(1 row), its tokens not back from stage 1 (batch_timeout_ms 1500)"));
    assert_int_equal(r.req[0].n, 2); /* the tokens of the two micro-batches before it */
    rig_close(&r);
}

/* Eight requests over three stages (stage 1 a middle one): micro-batches
 * behind the lost one may come back first — out of order — or not; either
 * way the group dies naming the lost one. */
static void p3_lost_batch_under_load(void **unused) {
    (void)unused;
    rig_t r;
    run_lost_batch(&r, 3, "2,1,1", "drop-batch=20", 8, 200, 1);
    rig_close(&r);
}

/* One stage: it drops a micro-batch it formed itself. */
static void p1_lost_batch(void **unused) {
    (void)unused;
    rig_t r;
    const char *log = run_lost_batch(&r, 1, NULL, "drop-batch=4", 1, 200, 0);
    assert_int_equal(dropped_seq(log, 0), 3);
    assert_non_null(strstr(log, "g0/0: micro-batch 3 lost: formed "));
    assert_int_equal(r.req[0].n, 3);
    rig_close(&r);
}

/* A hook that does not parse: the group refuses to start (exit 2). */
static void bad_fault_spec(void **unused) {
    (void)unused;
    rig_t r;
    rig_opts_t o = {.fault = "drop-batch=zero"};
    rig_start_ex(&r, 1, NULL, "dense", &o);
    int st = wait_exit(r.pid, DIE_WITHIN_MS);
    const char *log = read_log(r.log);
    assert_int_equal(st, 2);
    assert_non_null(strstr(log, "IFP_SHARD_FAULT: drop-batch wants an integer >= 1, got 'zero'"));
    rig_close(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(p2_lost_batch_hits_deadline, reap),
        cmocka_unit_test_teardown(p3_lost_batch_under_load, reap),
        cmocka_unit_test_teardown(p1_lost_batch, reap),
        cmocka_unit_test_teardown(bad_fault_spec, reap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
