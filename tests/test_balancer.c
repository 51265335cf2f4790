/* test_balancer — router/balancer.c without sockets: mask affinity
 * (covering, cheapest), spill when slots run out and by the two-part
 * imbalance test, the dense fallback, approximate picks under
 * min_coverage < 1, wait vs never, the benchmark policies, liveness
 * (first beat, death, revival, restart), heartbeat refresh, demand EWMA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "balancer.h"
#include "predict.h"
#include "wire.h"

#define NL 2
#define DF 16

/* A mask keeping channels [lo, hi] in every layer. */
static ifp_mask_t *range_mask(int lo, int hi) {
    ifp_mask_t *m = ifp_mask_new(NL, DF);
    assert_non_null(m);
    for (int l = 0; l < NL; l++) {
        int n = 0;
        for (int c = lo; c <= hi; c++) m->kept[l][n++] = c;
        m->n_kept[l] = n;
    }
    return m;
}

static const rt_heartbeat_t HB = {.incarnation = 1, .slots = 4, .free_slots = 4};

/* Groups: A = [0,7] (cost 16), B = [0,11] (24), C = [8,15] (16), D dense
 * (32); each with `slots` slots, all alive. */
static rt_balancer_t *four_groups(const rt_balancer_params_t *p, int slots) {
    rt_balancer_t *b = rt_balancer_new(p, NL, DF, 4);
    assert_non_null(b);
    ifp_mask_t *a = range_mask(0, 7), *bb = range_mask(0, 11), *c = range_mask(8, 15);
    assert_int_equal(rt_balancer_add_group(b, "A", 0, a, slots), 0);
    assert_int_equal(rt_balancer_add_group(b, "B", 1, bb, slots), 1);
    assert_int_equal(rt_balancer_add_group(b, "C", 2, c, slots), 2);
    assert_int_equal(rt_balancer_add_group(b, "D", IFP_CLUSTER_DENSE, NULL, slots), 3);
    ifp_mask_destroy(&a), ifp_mask_destroy(&bb), ifp_mask_destroy(&c);
    rt_heartbeat_t hb = HB;
    hb.slots = hb.free_slots = slots;
    for (int g = 0; g < 4; g++) assert_int_equal(rt_balancer_heartbeat(b, g, 0, &hb), RT_HB_FIRST);
    return b;
}

static int pick(rt_balancer_t *b, const ifp_mask_t *m, rt_pick_t *p) {
    int rc = rt_balancer_pick(b, m, 0, p);
    return rc == RT_PICK_OK ? p->group : -10 - rc;
}
#define WAIT (-10 - RT_PICK_WAIT)
#define NEVER (-10 - RT_PICK_NEVER)

static void affinity_covering_cheapest(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    rt_balancer_t *b = four_groups(&bp, 4);
    ifp_mask_t *m1 = range_mask(0, 3), *m2 = range_mask(8, 11), *m3 = range_mask(6, 9), *m4 = range_mask(0, 15);
    rt_pick_t p;
    assert_int_equal(pick(b, m1, &p), 0); /* A, B, D cover; A is cheapest */
    assert_true(p.coverage == 1.0 && !p.approximate && !p.spilled);
    assert_int_equal(pick(b, m2, &p), 2); /* C */
    assert_int_equal(pick(b, m3, &p), 1); /* only B and D cover 6..9; B is cheaper */
    assert_int_equal(pick(b, m4, &p), 3); /* only the dense group covers all */
    assert_int_equal(pick(b, NULL, &p), 3); /* dense mode: D (A covers half) */
    assert_true(rt_balancer_coverage(b, 0, NULL) == 0.5);
    assert_true(rt_balancer_coverage(b, 0, m3) == 0.5);
    assert_int_equal(rt_balancer_group(b, 1)->cost, 24);
    assert_int_equal(rt_balancer_group(b, 3)->cost, 32);
    /* avoided groups are skipped */
    assert_int_equal(rt_balancer_pick(b, m1, 1u << 0, &p), RT_PICK_OK);
    assert_int_equal(p.group, 1);
    assert_int_equal(rt_balancer_pick(b, m4, 1u << 3, &p), RT_PICK_NEVER);
    ifp_mask_destroy(&m1), ifp_mask_destroy(&m2), ifp_mask_destroy(&m3), ifp_mask_destroy(&m4);
    rt_balancer_destroy(&b);
    assert_null(b);
}

static void spill_when_full_then_wait(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    rt_balancer_t *b = four_groups(&bp, 1); /* one slot each */
    ifp_mask_t *m = range_mask(0, 3);
    rt_pick_t p;
    int order[3] = {0, 1, 3}; /* A, then B, then the dense fallback */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pick(b, m, &p), order[i]);
        rt_balancer_take(b, p.group, 10);
        assert_int_equal(rt_balancer_free_slots(b, p.group), 0);
    }
    assert_int_equal(pick(b, m, &p), WAIT); /* C does not cover: queue */
    rt_balancer_release(b, 1, 10, 1);       /* B finishes one */
    assert_int_equal(pick(b, m, &p), 1);
    assert_int_equal(rt_balancer_group(b, 1)->n_finished, 1);
    assert_int_equal(rt_balancer_group(b, 1)->load, 0);
    ifp_mask_destroy(&m);
    rt_balancer_destroy(&b);
}

static void spill_by_imbalance(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params(); /* abs 256, rel 1.5 */
    rt_balancer_t *b = four_groups(&bp, 4);
    ifp_mask_t *m = range_mask(0, 3); /* A, B, D eligible; A best */
    rt_pick_t p;
    rt_balancer_take(b, 0, 200); /* 200 - 0 <= 256: balanced enough */
    assert_int_equal(pick(b, m, &p), 0);
    assert_false(p.spilled);
    rt_balancer_add_load(b, 0, 800); /* A 1000 vs 0: spill to the least loaded (B: cheaper than D) */
    assert_int_equal(pick(b, m, &p), 1);
    assert_true(p.spilled && p.coverage == 1.0);
    /* relative part: A 3000, B 2500, D 2500: gap 500 > 256 but 3000 < 1.5 x 2500 */
    rt_balancer_add_load(b, 0, 2000);
    rt_balancer_take(b, 1, 2500);
    rt_balancer_take(b, 3, 2500);
    assert_int_equal(pick(b, m, &p), 0);
    assert_false(p.spilled);
    /* A 4000: 4000 > 3750 and gap 1500: spill; B and D tie on load, B is cheaper */
    rt_balancer_add_load(b, 0, 1000);
    assert_int_equal(pick(b, m, &p), 1);
    assert_true(p.spilled);
    /* a group whose slots are full is not a candidate for the test either */
    for (int i = 0; i < 3; i++) rt_balancer_take(b, 1, 0);
    assert_int_equal(rt_balancer_free_slots(b, 1), 0);
    assert_int_equal(pick(b, m, &p), 3);
    ifp_mask_destroy(&m);
    rt_balancer_destroy(&b);
}

static void dense_fallback_and_never(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    rt_balancer_t *b = rt_balancer_new(&bp, NL, DF, 1);
    ifp_mask_t *a = range_mask(0, 7), *m = range_mask(4, 11);
    assert_int_equal(rt_balancer_add_group(b, "A", 0, a, 2), 0);
    rt_pick_t p;
    assert_int_equal(rt_balancer_pick(b, m, 0, &p), RT_PICK_NEVER); /* no group can ever cover 4..11 */
    assert_true(p.best_possible == 0.5);
    assert_int_equal(rt_balancer_add_group(b, "D", IFP_CLUSTER_DENSE, NULL, 2), 1);
    assert_int_equal(rt_balancer_pick(b, m, 0, &p), RT_PICK_WAIT); /* D configured but not up yet */
    assert_int_equal(rt_balancer_heartbeat(b, 0, 0, &HB), RT_HB_FIRST);
    assert_int_equal(rt_balancer_heartbeat(b, 1, 0, &HB), RT_HB_FIRST);
    assert_int_equal(pick(b, m, &p), 1);
    assert_false(p.approximate);
    assert_int_equal(rt_balancer_add_group(b, "D", IFP_CLUSTER_DENSE, NULL, 2), IFP_EINVAL); /* duplicate */
    ifp_mask_destroy(&a), ifp_mask_destroy(&m);
    rt_balancer_destroy(&b);
}

static void approximate_under_min_coverage(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    bp.min_coverage = 0.5;
    rt_balancer_t *b = four_groups(&bp, 1);
    ifp_mask_t *m = range_mask(6, 9); /* A 0.5, B 1, C 0.5, D 1 */
    rt_pick_t p;
    assert_int_equal(pick(b, m, &p), 1); /* B: covers, cheaper than D */
    rt_balancer_take(b, 1, 1);
    assert_int_equal(pick(b, m, &p), 3); /* then the dense group: coverage beats cost */
    rt_balancer_take(b, 3, 1);
    assert_int_equal(pick(b, m, &p), 0); /* then A, approximate (ties with C: lower index) */
    assert_true(p.approximate && p.coverage == 0.5);
    rt_balancer_take(b, 0, 1);
    assert_int_equal(pick(b, m, &p), 2);
    assert_true(p.approximate);
    rt_balancer_take(b, 2, 1);
    assert_int_equal(pick(b, m, &p), WAIT);
    rt_balancer_destroy(&b);
    /* min_coverage 1: A and C are never eligible */
    bp.min_coverage = 1.0;
    b = four_groups(&bp, 1);
    rt_balancer_take(b, 1, 1);
    rt_balancer_take(b, 3, 1);
    assert_int_equal(pick(b, m, &p), WAIT);
    ifp_mask_destroy(&m);
    rt_balancer_destroy(&b);
}

static void policies(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    rt_policy_t pol;
    assert_int_equal(rt_policy_parse("round-robin", &pol), 0);
    assert_int_equal(pol, RT_POLICY_ROUND_ROBIN);
    assert_int_equal(rt_policy_parse("fastest", &pol), -1);
    ifp_mask_t *m = range_mask(0, 3); /* eligible: A, B, D */
    rt_pick_t p;

    bp.policy = RT_POLICY_ROUND_ROBIN;
    rt_balancer_t *b = four_groups(&bp, 8);
    int want[] = {0, 1, 3, 0, 1, 3};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pick(b, m, &p), want[i]);
        rt_balancer_take(b, p.group, 1);
    }
    rt_balancer_destroy(&b);

    bp.policy = RT_POLICY_LEAST_LOADED;
    b = four_groups(&bp, 8);
    rt_balancer_take(b, 0, 50);
    rt_balancer_take(b, 1, 10);
    rt_balancer_take(b, 3, 20);
    assert_int_equal(pick(b, m, &p), 1);
    rt_balancer_add_load(b, 1, 100);
    assert_int_equal(pick(b, m, &p), 3);
    rt_balancer_destroy(&b);

    bp.policy = RT_POLICY_DENSE_ONLY;
    b = four_groups(&bp, 1);
    assert_int_equal(pick(b, m, &p), 3); /* A covers and is cheaper, but dense-only */
    rt_balancer_take(b, 3, 1);
    assert_int_equal(pick(b, m, &p), WAIT);
    rt_balancer_destroy(&b);
    ifp_mask_destroy(&m);
}

static void liveness(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    bp.liveness_ms = 100;
    rt_balancer_t *b = rt_balancer_new(&bp, NL, DF, 0);
    assert_int_equal(rt_balancer_add_group(b, "D", IFP_CLUSTER_DENSE, NULL, 2), 0);
    assert_int_equal(rt_balancer_add_group(b, "E", IFP_CLUSTER_DENSE, NULL, 2), 1);
    rt_pick_t p;
    assert_true(rt_balancer_next_expiry(b) == 0);
    rt_heartbeat_t hb = HB;
    assert_int_equal(rt_balancer_heartbeat(b, 0, 1000, &hb), RT_HB_FIRST);
    assert_int_equal(rt_balancer_heartbeat(b, 0, 1050, &hb), RT_HB_OK);
    assert_int_equal(rt_balancer_heartbeat(b, 1, 1060, &hb), RT_HB_FIRST);
    assert_true(rt_balancer_next_expiry(b) == 1150);
    int dead[4];
    assert_int_equal(rt_balancer_expire(b, 1150, dead, 4), 0); /* exactly liveness: still alive */
    assert_int_equal(rt_balancer_expire(b, 1151, dead, 4), 1);
    assert_int_equal(dead[0], 0);
    assert_false(rt_balancer_group(b, 0)->alive);
    assert_int_equal(rt_balancer_group(b, 0)->n_deaths, 1);
    assert_int_equal(rt_balancer_pick(b, NULL, 0, &p), RT_PICK_OK);
    assert_int_equal(p.group, 1); /* only E is alive */
    assert_int_equal(rt_balancer_expire(b, 1200, dead, 4), 1);
    assert_int_equal(rt_balancer_pick(b, NULL, 0, &p), RT_PICK_WAIT); /* all dead: they may come back */
    assert_int_equal(rt_balancer_heartbeat(b, 1, 1300, &hb), RT_HB_REVIVED);
    hb.incarnation = 2;
    assert_int_equal(rt_balancer_heartbeat(b, 0, 1300, &hb), RT_HB_RESTARTED);
    assert_int_equal(rt_balancer_heartbeat(b, 0, 1310, &hb), RT_HB_OK);
    assert_int_equal(rt_balancer_pick(b, NULL, 0, &p), RT_PICK_OK);
    assert_int_equal(p.group, 0);
    /* a live group restarting without being declared dead */
    hb.incarnation = 3;
    assert_int_equal(rt_balancer_heartbeat(b, 0, 1320, &hb), RT_HB_RESTARTED);
    assert_int_equal(rt_balancer_find(b, "E", 1), 1);
    assert_int_equal(rt_balancer_find(b, "Ex", 2), -1);
    rt_balancer_destroy(&b);
}

static void heartbeat_refresh(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    rt_balancer_t *b = rt_balancer_new(&bp, NL, DF, 0);
    assert_int_equal(rt_balancer_add_group(b, "D", IFP_CLUSTER_DENSE, NULL, 8), 0);
    rt_heartbeat_t hb = {.incarnation = 7, .slots = 4, .free_slots = 4, .queued_tokens = 0, .stages = 2};
    rt_balancer_heartbeat(b, 0, 0, &hb);
    rt_group_t *g = rt_balancer_group(b, 0);
    assert_int_equal(g->slots, 4); /* the group's own count wins over the config */
    assert_int_equal(g->stages, 2);
    rt_balancer_take(b, 0, 100);
    assert_int_equal(rt_balancer_free_slots(b, 0), 3);
    /* the group holds 3 (e.g. 2 cancelled, still draining) and 500 tokens */
    hb.free_slots = 1;
    hb.queued_tokens = 500;
    rt_balancer_heartbeat(b, 0, 10, &hb);
    assert_int_equal(rt_balancer_free_slots(b, 0), 1);
    assert_int_equal(g->hb_extra, 400);
    /* a heartbeat sent before our work arrived does not add slots */
    hb.free_slots = 4;
    hb.queued_tokens = 0;
    rt_balancer_heartbeat(b, 0, 20, &hb);
    assert_int_equal(rt_balancer_free_slots(b, 0), 3);
    assert_int_equal(g->hb_extra, 0);
    hb.draining = 1;
    rt_balancer_heartbeat(b, 0, 30, &hb);
    rt_pick_t p;
    assert_int_equal(rt_balancer_pick(b, NULL, 0, &p), RT_PICK_WAIT);
    assert_int_equal(rt_balancer_total_free(b), 0);
    rt_balancer_destroy(&b);
}

static void demand_and_set_cluster(void **u) {
    (void)u;
    rt_balancer_params_t bp = rt_balancer_default_params();
    bp.demand_alpha = 0.5;
    rt_balancer_t *b = four_groups(&bp, 2);
    for (int i = 0; i < 4; i++) rt_balancer_note_demand(b, 2);
    rt_balancer_note_demand(b, 9); /* out of range: ignored */
    rt_balancer_note_demand(b, -1);
    rt_balancer_demand_tick(b);
    assert_true(rt_balancer_demand(b, 2) == 2.0);
    rt_balancer_demand_tick(b);
    assert_true(rt_balancer_demand(b, 2) == 1.0);
    assert_true(rt_balancer_demand(b, 0) == 0.0);
    assert_int_equal(rt_balancer_n_clusters(b), 4);
    /* C re-compacts to the union [0, 3]: it becomes the cheapest cover of 0..3 */
    ifp_mask_t *u4 = range_mask(0, 3), *m = range_mask(0, 3);
    assert_int_equal(rt_balancer_set_cluster(b, 2, 3, u4), IFP_OK);
    rt_pick_t p;
    assert_int_equal(pick(b, m, &p), 2);
    assert_int_equal(rt_balancer_group(b, 2)->cost, 8);
    ifp_mask_t *wrong = ifp_mask_new(NL + 1, DF);
    assert_int_equal(rt_balancer_set_cluster(b, 2, 1, wrong), IFP_EINVAL);
    ifp_mask_destroy(&wrong), ifp_mask_destroy(&u4), ifp_mask_destroy(&m);
    rt_balancer_destroy(&b);
}

/* The router's routing facts from packed bits equal the list-based ones:
 * coverage (ifp_mask_coverage), the nearest medoid (ifp_cluster_nearest's
 * Jaccard rule, ties -> lower index). */
static void bits_match_lists(void **u) {
    (void)u;
    enum { L = 3, F = 77, NC = 5 };
    uint64_t s = 12345;
    ifp_mask_t *med[NC], *m = ifp_mask_new(L, F);
    uint8_t *mb[NC], bits[L * ((F + 7) / 8)];
    for (int c = 0; c < NC; c++) {
        med[c] = ifp_mask_new(L, F);
        mb[c] = malloc(sizeof bits);
    }
    for (int trial = 0; trial < 200; trial++) {
        for (int c = 0; c <= NC; c++) {
            ifp_mask_t *x = c < NC ? med[c] : m;
            for (int l = 0; l < L; l++) {
                int n = 0;
                for (int j = 0; j < F; j++) {
                    s = s * 6364136223846793005ull + 1442695040888963407ull;
                    if ((s >> 33) % 3 == 0 || (trial % 7 == 0 && c == 1)) x->kept[l][n++] = j;
                }
                if (!n) x->kept[l][n++] = (int32_t)(trial % F);
                x->n_kept[l] = n;
            }
        }
        if (trial % 11 == 0) { /* ties: two identical medoids */
            ifp_mask_t *t = ifp_mask_clone(med[2]);
            ifp_mask_destroy(&med[3]);
            med[3] = t;
        }
        ifp_wire_mask_pack(m, bits);
        int want = -1;
        double bd = 0;
        for (int c = 0; c < NC; c++) {
            ifp_wire_mask_pack(med[c], mb[c]);
            assert_true(rt_bits_coverage(bits, mb[c], L, F) == ifp_mask_coverage(m, med[c]));
            double d = ifp_mask_jaccard_distance(m, med[c]);
            if (want < 0 || d < bd) bd = d, want = c;
        }
        assert_int_equal(rt_bits_nearest(bits, (const uint8_t *const *)mb, NC, L, F), want);
    }
    assert_int_equal(rt_bits_nearest(bits, NULL, 0, L, F), -1);
    for (int c = 0; c < NC; c++) ifp_mask_destroy(&med[c]), free(mb[c]);
    ifp_mask_destroy(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(affinity_covering_cheapest),
        cmocka_unit_test(bits_match_lists),
        cmocka_unit_test(spill_when_full_then_wait),
        cmocka_unit_test(spill_by_imbalance),
        cmocka_unit_test(dense_fallback_and_never),
        cmocka_unit_test(approximate_under_min_coverage),
        cmocka_unit_test(policies),
        cmocka_unit_test(liveness),
        cmocka_unit_test(heartbeat_refresh),
        cmocka_unit_test(demand_and_set_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
