/* test_sim.c — the datacenter simulator's core (bench/sim): event order,
 * one-group scenarios whose latencies follow by hand, the balancer prefilter
 * it relies on, and determinism by seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"
#include "sim.h"
#include "workload.h"

static void test_heap_order(void **state) {
    (void)state;
    sim_heap_t h = {0};
    const double T[] = {5, 1, 3, 1, 9, 3, 0, 1};
    for (int i = 0; i < 8; i++) assert_int_equal(sim_heap_push(&h, T[i], 0, i, 0), 0);
    /* by time, then first pushed first: 0(6) 1(1) 1(3) 1(7) 3(2) 3(5) 5(0) 9(4) */
    const int want[] = {6, 1, 3, 7, 2, 5, 0, 4};
    sim_event_t e;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(sim_heap_pop(&h, &e), 1);
        assert_int_equal(e.a, want[i]);
    }
    assert_int_equal(sim_heap_pop(&h, &e), 0);
    for (int i = 0; i < 5000; i++) sim_heap_push(&h, (double)((i * 7919) % 1000), 0, i, 0);
    double last = -1;
    while (sim_heap_pop(&h, &e)) {
        assert_true(e.t >= last);
        last = e.t;
    }
    sim_heap_free(&h);
}

/* A step table where every micro-batch takes ms per layer, whatever its rows. */
static void flat_table(sim_steptab_t *t, double ms) {
    memset(t, 0, sizeof *t);
    t->n_width = 1;
    t->c[0] = (sim_curve_t){.width = 100, .n = 2, .rows = {1, 4096}, .ms = {ms, ms}};
    t->d_ffn = 100, t->keep = 50;
}

/* One dense group, deterministic arrivals, no latencies: the pool holds one
 * example of `prompt` tokens answering `answer`. */
static int run_one(int stages, double rate, double duration_s, sim_result_t *r) {
    static int prompt[1] = {10}, answer[1] = {5}, domain[1] = {0}, nearest[1] = {-1};
    ifp_mask_t *m = ifp_mask_dense(1, 1);
    const ifp_mask_t *masks[1] = {m};
    sim_pool_t pool = {.n = 1, .mask = masks, .prompt_tokens = prompt, .answer_tokens = answer, .domain = domain,
                       .nearest = nearest, .n_domains = 1, .table = NULL};
    sim_steptab_t st;
    flat_table(&st, 10);
    sim_params_t p = sim_default_params();
    p.groups = 1, p.cell_size = 1, p.stages = stages, p.layers = stages, p.slots = 1, p.dense_frac = 1;
    p.rate = rate, p.duration_s = duration_s, p.fixed_arrivals = 1, p.shift_s = 0;
    p.net_ms = 0, p.hop_ms = 0, p.router_ms = 0, p.link_gbps = 1e15; /* no transfer time */
    ifp_err_t err = {0};
    int rc = sim_run(&p, &pool, &st, r, &err);
    ifp_mask_destroy(&m);
    return rc;
}

static void test_one_group_by_hand(void **state) {
    (void)state;
    sim_result_t r;
    /* arrivals at 0, 1, 2, 3 s; each: prefill (10 rows, 10 ms) -> token 0 at
     * +10 ms, then 4 decode steps of 10 ms: done at +50 ms */
    assert_int_equal(run_one(1, 1.0, 3.5, &r), 0);
    assert_int_equal(r.arrivals, 4);
    assert_int_equal(r.completed, 4);
    assert_int_equal(r.tokens_window, 20);
    assert_float_equal(r.ttft[0], 10, 1e-9);
    assert_float_equal(r.ttft[2], 10, 1e-9);
    assert_float_equal(r.tpot[0], 10, 1e-9);
    assert_float_equal(r.e2e[2], 50, 1e-9);
    assert_float_equal(r.tps, 20 / 3.5, 1e-9);
    assert_float_equal(r.exact_share, 1, 1e-12);
    assert_float_equal(r.dense_share, 1, 1e-12);
}

static void test_queueing_by_hand(void **state) {
    (void)state;
    sim_result_t r;
    /* arrivals at 0 and 1 ms, one slot: the second waits in the router's
     * queue until the first is done at 50 ms, then 10 ms of prefill:
     * TTFT 60 - 1 = 59, done at 100 (E2E 99) */
    assert_int_equal(run_one(1, 1000.0, 0.0015, &r), 0);
    assert_int_equal(r.completed, 2);
    assert_float_equal(r.ttft[0], 10, 1e-9);
    assert_float_equal(r.ttft[2], 59, 1e-9);
    assert_float_equal(r.e2e[2], 99, 1e-9);
}

static void test_pipeline_by_hand(void **state) {
    (void)state;
    sim_result_t r;
    /* two stages of one layer each: every micro-batch takes 10 ms per stage,
     * 20 ms through the pipe; one request: token 0 at 20 ms, 4 more rounds */
    assert_int_equal(run_one(2, 1.0, 0.5, &r), 0);
    assert_int_equal(r.completed, 1);
    assert_float_equal(r.ttft[0], 20, 1e-9);
    assert_float_equal(r.tpot[0], 20, 1e-9);
    assert_float_equal(r.e2e[0], 100, 1e-9);
}

/* ---- a pool of random masks with a real cluster table ---- */
typedef struct {
    int n;
    ifp_mask_t *m[60];
    const ifp_mask_t *cm[60];
    int prompt[60], answer[60], domain[60], nearest[60];
    ifp_cluster_table_t *t;
} pool_fx_t;

static void make_pool(pool_fx_t *f, uint64_t seed) {
    f->n = 60;
    uint64_t s = seed;
    for (int i = 0; i < f->n; i++) {
        f->m[i] = ifp_mask_new(2, 32);
        int family = i % 3; /* three families of similar masks */
        for (int l = 0; l < 2; l++) {
            float sc[32];
            for (int j = 0; j < 32; j++) sc[j] = (float)((j / 8 == family) * 2 + wl_uniform(&s));
            assert_int_equal(ifp_mask_set_topk(f->m[i], l, sc, 8), 0);
        }
        f->cm[i] = f->m[i];
        f->prompt[i] = 5 + i % 7, f->answer[i] = 3 + i % 5, f->domain[i] = family;
    }
    ifp_kmedoids_params_t kp = ifp_kmedoids_default_params();
    kp.k = 3;
    ifp_err_t err = {0};
    assert_int_equal(ifp_cluster_masks(f->cm, f->n, &kp, &f->t, NULL, &err), 0);
    for (int i = 0; i < f->n; i++) f->nearest[i] = ifp_cluster_nearest(f->t, f->m[i]);
}

static void free_pool(pool_fx_t *f) {
    for (int i = 0; i < f->n; i++) ifp_mask_destroy(&f->m[i]);
    ifp_cluster_table_destroy(&f->t);
}

static int run_pool(const pool_fx_t *f, uint64_t seed, rt_policy_t pol, int rebalance, sim_result_t *r) {
    sim_pool_t pool = {.n = f->n, .mask = f->cm, .prompt_tokens = f->prompt, .answer_tokens = f->answer,
                       .domain = f->domain, .nearest = f->nearest, .n_domains = 3, .table = f->t};
    sim_steptab_t st;
    assert_int_equal(sim_steptab_roofline(&st, "9b", 20, 150), 0);
    sim_params_t p = sim_default_params();
    p.groups = 70, p.cell_size = 35, p.stages = 2, p.slots = 4, p.layers = 4, p.rate = 60, p.duration_s = 20;
    p.policy = pol, p.rebalance = rebalance, p.seed = seed, p.fail_groups = 3, p.fail_at_s = 10;
    ifp_err_t err = {0};
    return sim_run(&p, &pool, &st, r, &err);
}

static void test_deterministic_by_seed(void **state) {
    (void)state;
    pool_fx_t f;
    make_pool(&f, 7);
    sim_result_t a, b, c;
    assert_int_equal(run_pool(&f, 3, RT_POLICY_AFFINITY, 1, &a), 0);
    assert_int_equal(run_pool(&f, 3, RT_POLICY_AFFINITY, 1, &b), 0);
    assert_int_equal(run_pool(&f, 4, RT_POLICY_AFFINITY, 1, &c), 0);
    assert_true(a.arrivals > 500 && a.completed > 0);
    assert_int_equal(a.arrivals, b.arrivals);
    assert_int_equal(a.completed, b.completed);
    assert_int_equal(a.events, b.events);
    assert_int_equal(a.replays, b.replays);
    assert_memory_equal(a.ttft, b.ttft, sizeof a.ttft);
    assert_true(a.arrivals != c.arrivals || a.events != c.events);
    assert_true(a.replays > 0); /* the failure injection hit running work */
    for (int pol = 0; pol < 4; pol++) {
        sim_result_t r;
        assert_int_equal(run_pool(&f, 3, (rt_policy_t)pol, 0, &r), 0);
        assert_int_equal(r.arrivals, a.arrivals); /* the same workload for every policy */
        assert_true(r.completed + r.rejected + r.failed + r.unfinished == r.arrivals);
    }
    free_pool(&f);
}

/* The simulator passes the groups the balancer would skip (full, not
 * covering the mask) in its avoid set: the choice must not change. */
static void test_prefilter_keeps_the_choice(void **state) {
    (void)state;
    pool_fx_t f;
    make_pool(&f, 11);
    uint64_t s = 5;
    for (int pol = 0; pol < 4; pol++) {
        rt_balancer_params_t bp = rt_balancer_default_params();
        bp.policy = (rt_policy_t)pol;
        rt_balancer_t *x = rt_balancer_new(&bp, 2, 32, 3), *y = rt_balancer_new(&bp, 2, 32, 3);
        for (int g = 0; g < 12; g++) {
            char name[8];
            snprintf(name, sizeof name, "g%d", g);
            int cl = g < 10 ? g % 3 : IFP_CLUSTER_DENSE;
            const ifp_mask_t *u = cl >= 0 ? f.t->c[cl].uni : NULL;
            assert_true(rt_balancer_add_group(x, name, cl, u, 4) >= 0);
            assert_true(rt_balancer_add_group(y, name, cl, u, 4) >= 0);
            rt_heartbeat_t hb = {.incarnation = 1, .slots = 4, .free_slots = 4, .stages = 1};
            rt_balancer_heartbeat(x, g, 0, &hb);
            rt_balancer_heartbeat(y, g, 0, &hb);
        }
        for (int it = 0; it < 400; it++) {
            const ifp_mask_t *m = f.m[wl_rand(&s) % 60];
            uint64_t keep = 0;
            for (int g = 0; g < 12; g++)
                if (rt_balancer_free_slots(x, g) > 0 && rt_balancer_coverage(x, g, m) >= 1.0 - 1e-12)
                    keep |= 1ull << g;
            rt_pick_t px, py;
            int rx = rt_balancer_pick(x, m, 0, &px), ry = rt_balancer_pick(y, m, 0xfffull & ~keep, &py);
            assert_int_equal(px.group, py.group);
            assert_int_equal(rx == RT_PICK_OK, ry == RT_PICK_OK);
            if (rx == RT_PICK_OK && wl_rand(&s) % 3) { /* take it, with a random load */
                int64_t load = (int64_t)(wl_rand(&s) % 600);
                rt_balancer_take(x, px.group, load), rt_balancer_take(y, py.group, load);
            } else { /* release a random running request */
                int g = (int)(wl_rand(&s) % 12);
                if (rt_balancer_group(x, g)->running) {
                    rt_balancer_release(x, g, 100, 1), rt_balancer_release(y, g, 100, 1);
                }
            }
        }
        rt_balancer_destroy(&x);
        rt_balancer_destroy(&y);
    }
    free_pool(&f);
}

static void test_steptab_interpolation(void **state) {
    (void)state;
    sim_steptab_t t;
    assert_int_equal(sim_steptab_roofline(&t, "9b", 20, 150), 0);
    assert_int_equal(sim_steptab_roofline(&t, "7b", 20, 150), -1);
    assert_int_equal(sim_steptab_roofline(&t, "12b", 20, 150), 0);
    double k1 = sim_step_ms(&t, t.keep, 1), d1 = sim_step_ms(&t, t.d_ffn, 1);
    assert_true(d1 > 2.5 * k1);                                       /* dense costs ~ its weights */
    assert_float_equal(sim_step_ms(&t, t.keep, 2), k1, 1e-12);        /* memory-bound: flat */
    assert_true(sim_step_ms(&t, t.keep, 1024) > 10 * k1);             /* compute-bound */
    double mid = sim_step_ms(&t, (t.keep + 1.25 * t.keep) / 2, 1);
    assert_true(mid > k1 && mid < sim_step_ms(&t, 1.25 * t.keep, 1));
    /* K maps to K and d_ffn to d_ffn */
    assert_float_equal(sim_scale_width(&t, 256, 256, 768), t.keep, 1e-9);
    assert_float_equal(sim_scale_width(&t, 768, 256, 768), t.d_ffn, 1e-9);
}

/* bench_stage's CSV schema: per-layer ms = rows / tokens_per_s / layers,
 * only the largest thread count, prefill rows from tokens_per_s x ms. */
static void test_steptab_from_stage_csv(void **state) {
    (void)state;
    char path[] = "/tmp/test_sim_stageXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "model,kind,base_shape,ffn_per_layer,layers,threads,phase,batch,tokens_per_s,ms_per_step,"
               "compact_ms_per_layer\n"
               "dense-3b,dense,3b,6656,4,2,prefill,1,512,1000,0\n"
               "dense-3b,dense,3b,6656,4,2,decode,1,20,50,0\n"
               "dense-3b,dense,3b,6656,4,1,decode,1,999,1,0\n"
               "dense-9b,dense,9b,24576,4,2,decode,1,5,200,0\n"
               "dense-9b,dense,9b,24576,4,2,decode,4,10,400,0\n"
               "ifp-9b-u1.25k,ifp,9b,8320,4,2,decode,1,16,62.5,30\n");
    fclose(f);
    sim_steptab_t t;
    ifp_err_t err = {0};
    assert_int_equal(sim_steptab_load(&t, path, "9b", &err), 0);
    assert_int_equal(t.n_width, 3);
    assert_float_equal(sim_step_ms(&t, 6656, 1), 1e3 / 20 / 4, 1e-9);    /* threads 1 ignored */
    assert_float_equal(sim_step_ms(&t, 6656, 512), 1e3 / 4, 1e-9);       /* 512 rows of prefill */
    assert_float_equal(sim_step_ms(&t, 24576, 4), 4e3 / 10 / 4, 1e-9);
    assert_float_equal(sim_step_ms(&t, 8320, 1), 1e3 / 16 / 4, 1e-9);
    assert_float_equal(t.compact_ms_layer, 30, 1e-9);
    assert_int_equal(t.d_ffn, 24576);
    unlink(path);
    assert_int_equal(sim_steptab_load(&t, path, "9b", &err), IFP_ENOTFOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_order),
        cmocka_unit_test(test_one_group_by_hand),
        cmocka_unit_test(test_queueing_by_hand),
        cmocka_unit_test(test_pipeline_by_hand),
        cmocka_unit_test(test_steptab_interpolation),
        cmocka_unit_test(test_steptab_from_stage_csv),
        cmocka_unit_test(test_prefilter_keeps_the_choice),
        cmocka_unit_test(test_deterministic_by_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
