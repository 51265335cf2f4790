/* test_sampler.c — greedy, RNG quality, replay, temperature, top-k, top-p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

#define NV 8 /* the small vocabulary used by the distribution tests */

/* A fixed, irregular set of logits: distinct, with a clear argmax (id 5). */
static const float LOGITS8[NV] = {0.3f, -1.2f, 1.1f, 0.0f, 0.7f, 2.0f, -0.4f, 1.5f};

static ifp_sampler_params_t params(float t, int k, float p, uint64_t seed) {
    ifp_sampler_params_t sp = ifp_sampler_default_params();
    sp.temperature = t;
    sp.top_k = k;
    sp.top_p = p;
    sp.seed = seed;
    return sp;
}

/* softmax(x / t) in double. */
static void softmax_t(const float *x, int n, double t, double *out) {
    double m = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        if (x[i] / t > m) m = x[i] / t;
    for (int i = 0; i < n; i++) sum += out[i] = exp(x[i] / t - m);
    for (int i = 0; i < n; i++) out[i] /= sum;
}

/* Samples positions [0, n_pos) and counts each token. */
static void histogram(ifp_sampler_t *s, const ifp_sampler_params_t *p, const float *logits, int n_vocab,
                      uint64_t n_pos, long *count) {
    memset(count, 0, sizeof *count * (size_t)n_vocab);
    for (uint64_t pos = 0; pos < n_pos; pos++) {
        int tok = ifp_sampler_sample(s, p, logits, pos);
        assert_true(tok >= 0 && tok < n_vocab);
        count[tok]++;
    }
}

static void test_default_params(void **state) {
    (void)state;
    ifp_sampler_params_t p = ifp_sampler_default_params();
    assert_true(p.temperature == 0.0f);
    assert_int_equal(p.top_k, 0);
    assert_true(p.top_p == 1.0f);
    assert_int_equal(p.seed, 0);
}

static void test_new_destroy(void **state) {
    (void)state;
    assert_null(ifp_sampler_new(0));
    assert_null(ifp_sampler_new(-3));
    ifp_sampler_t *s = ifp_sampler_new(1);
    assert_non_null(s);
    float one = 0.5f;
    ifp_sampler_params_t p = params(1.0f, 0, 0.9f, 7);
    assert_int_equal(ifp_sampler_sample(s, &p, &one, 3), 0); /* n_vocab 1 */
    ifp_sampler_destroy(&s);
    assert_null(s);
    ifp_sampler_destroy(&s); /* already NULL */
    ifp_sampler_destroy(NULL);
}

static void test_null_args(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    ifp_sampler_params_t p = ifp_sampler_default_params();
    assert_true(ifp_sampler_sample(NULL, &p, LOGITS8, 0) < 0);
    assert_true(ifp_sampler_sample(s, NULL, LOGITS8, 0) < 0);
    assert_true(ifp_sampler_sample(s, &p, NULL, 0) < 0);
    assert_true(ifp_argmax(NULL, 4) < 0);
    assert_true(ifp_argmax(LOGITS8, 0) < 0);
    ifp_sampler_destroy(&s);
}

static void test_argmax(void **state) {
    (void)state;
    assert_int_equal(ifp_argmax(LOGITS8, NV), 5);
    const float ties[] = {1.0f, 3.0f, -2.0f, 3.0f, 3.0f};
    assert_int_equal(ifp_argmax(ties, 5), 1);
    const float neg[] = {-5.0f, -INFINITY, -1.0f};
    assert_int_equal(ifp_argmax(neg, 3), 2);
    const float one[] = {-INFINITY};
    assert_int_equal(ifp_argmax(one, 1), 0);
}

static void test_argmax_nan(void **state) {
    (void)state;
    const float a[] = {NAN, 1.0f, NAN, 2.0f, NAN};
    assert_int_equal(ifp_argmax(a, 5), 3);
    const float b[] = {NAN, -INFINITY, NAN};
    assert_int_equal(ifp_argmax(b, 3), 1); /* NaN below -inf */
    const float c[] = {NAN, NAN, NAN};
    assert_int_equal(ifp_argmax(c, 3), 0); /* nothing valid: lowest id */
    const float d[] = {1.0f, INFINITY, NAN, INFINITY};
    assert_int_equal(ifp_argmax(d, 4), 1);
}

static void test_greedy_sample(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    float copy[NV];
    memcpy(copy, LOGITS8, sizeof copy);
    const float temps[] = {0.0f, -1.0f, -0.0f, NAN};
    for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++) {
        ifp_sampler_params_t p = params(temps[t], 3, 0.5f, 99);
        for (uint64_t pos = 0; pos < 200; pos++) assert_int_equal(ifp_sampler_sample(s, &p, copy, pos), 5);
    }
    assert_memory_equal(copy, LOGITS8, sizeof copy); /* logits not modified */

    const float ties[NV] = {0, 4, 1, 4, 4, 0, 0, 2};
    ifp_sampler_params_t g = ifp_sampler_default_params();
    assert_int_equal(ifp_sampler_sample(s, &g, ties, 0), 1);
    ifp_sampler_destroy(&s);
}

/* NaN logits never get sampled and never crash; +inf dominates; all -inf is
 * still answered. */
static void test_nonfinite_logits(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    long count[NV];

    float nan_mix[NV] = {NAN, 0.0f, NAN, 0.5f, NAN, 0.2f, NAN, -INFINITY};
    const int ks[] = {0, 2};
    const float ps[] = {1.0f, 0.6f};
    for (int a = 0; a < 2; a++) {
        for (int b = 0; b < 2; b++) {
            ifp_sampler_params_t p = params(1.0f, ks[a], ps[b], 5);
            histogram(s, &p, nan_mix, NV, 5000, count);
            for (int i = 0; i < NV; i += 2) assert_int_equal(count[i], 0);
            assert_int_equal(count[7], 0); /* -inf */
            assert_true(count[3] > 0);
        }
    }

    const float inf_mix[NV] = {1.0f, INFINITY, NAN, 5.0f, INFINITY, -INFINITY, 2.0f, 0.0f};
    for (float t = 0.25f; t <= 4.0f; t *= 2.0f) {
        ifp_sampler_params_t p = params(t, 0, 1.0f, 11);
        histogram(s, &p, inf_mix, NV, 4000, count);
        assert_int_equal(count[1] + count[4], 4000); /* only the +inf tokens */
        assert_true(count[1] > 1600 && count[4] > 1600);
    }

    const float none[NV] = {NAN, -INFINITY, NAN, -INFINITY, NAN, NAN, NAN, NAN};
    ifp_sampler_params_t p = params(1.0f, 3, 0.5f, 1);
    assert_int_equal(ifp_sampler_sample(s, &p, none, 0), 1);
    const float all_nan[NV] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    assert_int_equal(ifp_sampler_sample(s, &p, all_nan, 0), 0);

    /* Extreme but valid temperatures. */
    ifp_sampler_params_t cold = params(1e-30f, 0, 1.0f, 3);
    for (uint64_t pos = 0; pos < 100; pos++) assert_int_equal(ifp_sampler_sample(s, &cold, LOGITS8, pos), 5);
    ifp_sampler_params_t hot = params(INFINITY, 0, 1.0f, 3);
    histogram(s, &hot, LOGITS8, NV, 16000, count);
    for (int i = 0; i < NV; i++) assert_true(count[i] > 1700 && count[i] < 2300); /* uniform */
    const float big[NV] = {3e38f, -3e38f, 3e38f, 0, 1, 2, 3, 4};
    ifp_sampler_params_t tiny = params(1e-3f, 0, 0.9f, 3);
    histogram(s, &tiny, big, NV, 1000, count);
    assert_int_equal(count[0] + count[2], 1000);
    ifp_sampler_destroy(&s);
}

static void test_rng_deterministic_range(void **state) {
    (void)state;
    const uint64_t seeds[] = {0, 1, 42, 0xDEADBEEFull, UINT64_MAX};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        for (uint64_t pos = 0; pos < 20000; pos++) {
            float u = ifp_rng_uniform(seeds[i], pos);
            assert_true(u >= 0.0f && u < 1.0f);
            assert_true(u == ifp_rng_uniform(seeds[i], pos));
            assert_true(u * 16777216.0f == floorf(u * 16777216.0f)); /* 24-bit grid */
        }
        float hi = ifp_rng_uniform(seeds[i], UINT64_MAX);
        assert_true(hi >= 0.0f && hi < 1.0f);
    }
}

static void test_rng_differs(void **state) {
    (void)state;
    int same_pos = 0, same_seed = 0, same_swap = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        same_pos += ifp_rng_uniform(7, i) == ifp_rng_uniform(7, i + 1);
        same_seed += ifp_rng_uniform(i, 123) == ifp_rng_uniform(i + 1, 123);
        same_swap += ifp_rng_uniform(i, i + 1) == ifp_rng_uniform(i + 1, i);
    }
    /* A 24-bit value collides by chance with p = 2^-24 per pair. */
    assert_true(same_pos <= 2);
    assert_true(same_seed <= 2);
    assert_true(same_swap <= 2);
    /* A seed's stream is not another seed's stream shifted by one. */
    int shifted = 0;
    for (uint64_t i = 0; i < 10000; i++) shifted += ifp_rng_uniform(1, i + 1) == ifp_rng_uniform(2, i);
    assert_true(shifted <= 2);
}

/* Chi-square over 100 equal bins; df = 99, mean 99, sd ~14. */
static double chi_square(uint64_t seed, uint64_t pos0, uint64_t stride, int n) {
    enum { BINS = 100 };
    long bin[BINS] = {0};
    for (int i = 0; i < n; i++) {
        int b = (int)(ifp_rng_uniform(seed, pos0 + (uint64_t)i * stride) * BINS);
        assert_true(b >= 0 && b < BINS);
        bin[b]++;
    }
    double e = (double)n / BINS, chi = 0.0;
    for (int b = 0; b < BINS; b++) chi += (bin[b] - e) * (bin[b] - e) / e;
    return chi;
}

static void test_rng_uniformity(void **state) {
    (void)state;
    const uint64_t seeds[] = {0, 1, 0xC0FFEEull};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        double chi = chi_square(seeds[i], 0, 1, 100000);
        assert_true(chi > 40.0 && chi < 180.0); /* ~ +-4 sd; too good is also suspicious */
        chi = chi_square(seeds[i], 1ull << 40, 1ull << 20, 100000); /* sparse counters */
        assert_true(chi > 40.0 && chi < 180.0);
    }
    /* Across seeds at a fixed position (each request's first token). */
    enum { BINS = 100 };
    long bin[BINS] = {0};
    for (uint64_t seed = 0; seed < 100000; seed++) bin[(int)(ifp_rng_uniform(seed, 0) * BINS)]++;
    double chi = 0.0;
    for (int b = 0; b < BINS; b++) chi += (bin[b] - 1000.0) * (bin[b] - 1000.0) / 1000.0;
    assert_true(chi > 40.0 && chi < 180.0);
}

/* Pearson correlation of neighbouring draws; sd is 1/sqrt(n) ~ 0.003. */
static void test_rng_correlation(void **state) {
    (void)state;
    const int n = 100000;
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    double tx = 0, ty = 0, txx = 0, tyy = 0, txy = 0;
    for (int i = 0; i < n; i++) {
        double x = ifp_rng_uniform(99, (uint64_t)i), y = ifp_rng_uniform(99, (uint64_t)i + 1);
        sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
        double a = ifp_rng_uniform((uint64_t)i, 17), b = ifp_rng_uniform((uint64_t)i + 1, 17);
        tx += a, ty += b, txx += a * a, tyy += b * b, txy += a * b;
    }
    double r_pos = (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
    double r_seed = (n * txy - tx * ty) / sqrt((n * txx - tx * tx) * (n * tyy - ty * ty));
    assert_true(fabs(r_pos) < 0.02);
    assert_true(fabs(r_seed) < 0.02);
    /* Mean 1/2, variance 1/12. */
    assert_true(fabs(sx / n - 0.5) < 0.01);
    assert_true(fabs(sxx / n - sx * sx / ((double)n * n) - 1.0 / 12.0) < 0.003);
    /* Pairs (u_i, u_i+1) fill a 10x10 grid evenly (catches lattice structure). */
    long grid[100] = {0};
    for (int i = 0; i < n; i++) {
        int a = (int)(ifp_rng_uniform(5, (uint64_t)i) * 10), b = (int)(ifp_rng_uniform(5, (uint64_t)i + 1) * 10);
        grid[a * 10 + b]++;
    }
    double chi = 0.0;
    for (int c = 0; c < 100; c++) chi += (grid[c] - 1000.0) * (grid[c] - 1000.0) / 1000.0;
    assert_true(chi < 180.0);
}

static void test_replay(void **state) {
    (void)state;
    const ifp_sampler_params_t cfgs[] = {
        params(1.0f, 0, 1.0f, 1234), params(0.8f, 4, 1.0f, 1), params(1.3f, 0, 0.9f, 77), params(0.7f, 5, 0.8f, 0),
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        ifp_sampler_t *a = ifp_sampler_new(NV);
        int seq[100];
        for (int pos = 0; pos < 100; pos++) seq[pos] = ifp_sampler_sample(a, &cfgs[c], LOGITS8, (uint64_t)pos);
        ifp_sampler_destroy(&a);

        /* A fresh sampler restarted at position 50 (a failover replay). */
        ifp_sampler_t *b = ifp_sampler_new(NV);
        for (int pos = 50; pos < 100; pos++)
            assert_int_equal(ifp_sampler_sample(b, &cfgs[c], LOGITS8, (uint64_t)pos), seq[pos]);
        /* Out of order, interleaved with other requests: still the same. */
        ifp_sampler_params_t other = params(2.0f, 0, 1.0f, 5);
        for (int pos = 99; pos >= 0; pos -= 3) {
            (void)ifp_sampler_sample(b, &other, LOGITS8, (uint64_t)pos + 1000);
            assert_int_equal(ifp_sampler_sample(b, &cfgs[c], LOGITS8, (uint64_t)pos), seq[pos]);
        }
        ifp_sampler_destroy(&b);

        /* The sequence actually varies (not stuck on one token). */
        int distinct = 0;
        for (int pos = 1; pos < 100; pos++) distinct += seq[pos] != seq[0];
        assert_true(distinct > 0);
    }
}

static void test_seed_changes_sequence(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    ifp_sampler_params_t p1 = params(1.0f, 0, 1.0f, 1), p2 = params(1.0f, 0, 1.0f, 2);
    int diff = 0;
    for (uint64_t pos = 0; pos < 200; pos++)
        diff += ifp_sampler_sample(s, &p1, LOGITS8, pos) != ifp_sampler_sample(s, &p2, LOGITS8, pos);
    assert_true(diff > 50);
    ifp_sampler_destroy(&s);
}

/* Empirical frequencies over 200k positions match softmax(logits / T). */
static void test_frequencies_match_softmax(void **state) {
    (void)state;
    const float temps[] = {0.5f, 1.0f, 1.7f};
    const long N = 200000;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++) {
        ifp_sampler_params_t p = params(temps[t], 0, 1.0f, 2024 + t);
        long count[NV];
        double want[NV];
        histogram(s, &p, LOGITS8, NV, (uint64_t)N, count);
        softmax_t(LOGITS8, NV, temps[t], want);
        double chi = 0.0;
        for (int i = 0; i < NV; i++) {
            double f = (double)count[i] / N, sd = sqrt(want[i] * (1 - want[i]) / N);
            assert_true(fabs(f - want[i]) < 5 * sd + 1e-4);
            chi += (count[i] - N * want[i]) * (count[i] - N * want[i]) / (N * want[i]);
        }
        assert_true(chi < 30.0); /* df = 7: p < 1e-4 */
    }
    ifp_sampler_destroy(&s);
}

/* Lower temperature concentrates mass on the argmax, higher spreads it. */
static void test_temperature_scaling(void **state) {
    (void)state;
    const float temps[] = {0.25f, 0.5f, 1.0f, 2.0f, 8.0f};
    const int nt = sizeof temps / sizeof temps[0];
    ifp_sampler_t *s = ifp_sampler_new(NV);
    long top[8], distinct_min = NV;
    double entropy[8];
    for (int t = 0; t < nt; t++) {
        ifp_sampler_params_t p = params(temps[t], 0, 1.0f, 31);
        long count[NV];
        histogram(s, &p, LOGITS8, NV, 50000, count);
        top[t] = count[5];
        entropy[t] = 0.0;
        long distinct = 0;
        for (int i = 0; i < NV; i++) {
            if (!count[i]) continue;
            double f = count[i] / 50000.0;
            entropy[t] -= f * log(f);
            distinct++;
        }
        if (distinct < distinct_min) distinct_min = distinct;
    }
    for (int t = 1; t < nt; t++) {
        assert_true(top[t] < top[t - 1]);
        assert_true(entropy[t] > entropy[t - 1]);
    }
    assert_true(top[0] > 40000);                 /* T = 0.25: p(argmax) ~ 0.86 */
    assert_true(entropy[nt - 1] > 0.95 * log(NV)); /* T = 8: nearly uniform */
    assert_true(distinct_min >= 3);
    ifp_sampler_destroy(&s);
}

static void test_top_k1_is_greedy(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    const float ties[NV] = {0, 4, 1, 4, 4, 0, 0, 2};
    for (uint64_t pos = 0; pos < 2000; pos++) {
        ifp_sampler_params_t p = params(1.5f, 1, 1.0f, pos * 31);
        assert_int_equal(ifp_sampler_sample(s, &p, LOGITS8, pos), 5);
        assert_int_equal(ifp_sampler_sample(s, &p, ties, pos), 1);
    }
    ifp_sampler_destroy(&s);
}

static void test_top_k_support(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    long count[NV];
    const long N = 60000;
    ifp_sampler_params_t p = params(1.0f, 3, 1.0f, 8);
    histogram(s, &p, LOGITS8, NV, (uint64_t)N, count);
    /* Top 3 of LOGITS8: ids 5 (2.0), 7 (1.5), 2 (1.1); renormalised among them. */
    const float kept[3] = {2.0f, 1.5f, 1.1f};
    const int ids[3] = {5, 7, 2};
    double want[3];
    softmax_t(kept, 3, 1.0, want);
    for (int i = 0; i < NV; i++)
        if (i != 5 && i != 7 && i != 2) assert_int_equal(count[i], 0);
    for (int j = 0; j < 3; j++) assert_true(fabs((double)count[ids[j]] / N - want[j]) < 0.01);

    /* Ties at the boundary go to the lower ids: 4 of {1,3,4} equal -> keep 1,3. */
    const float ties[NV] = {0, 3, 1, 3, 3, 0, 5, 2};
    p = params(2.0f, 3, 1.0f, 9);
    histogram(s, &p, ties, NV, 20000, count);
    assert_true(count[6] > 0 && count[1] > 0 && count[3] > 0);
    assert_int_equal(count[6] + count[1] + count[3], 20000);

    /* k >= vocab and k <= 0 are off: the full softmax. */
    const int offs[] = {0, -1, NV, NV + 5};
    for (size_t o = 0; o < 4; o++) {
        p = params(1.0f, offs[o], 1.0f, 10);
        histogram(s, &p, LOGITS8, NV, 20000, count);
        for (int i = 0; i < NV; i++) assert_true(count[i] > 0);
    }
    ifp_sampler_destroy(&s);
}

static void test_top_p_small_is_greedy(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    const float ties[NV] = {0, 4, 1, 4, 4, 0, 0, 2};
    for (uint64_t pos = 0; pos < 2000; pos++) {
        ifp_sampler_params_t p = params(1.0f, 0, 0.01f, pos);
        assert_int_equal(ifp_sampler_sample(s, &p, LOGITS8, pos), 5);
        assert_int_equal(ifp_sampler_sample(s, &p, ties, pos), 1);
    }
    ifp_sampler_destroy(&s);
}

static void test_top_p_nucleus(void **state) {
    (void)state;
    ifp_sampler_t *s = ifp_sampler_new(NV);
    long count[NV];
    const long N = 60000;
    /* Probabilities 0.40 0.25 0.15 0.10 0.05 0.03 0.01 0.01, shuffled. */
    const double probs[NV] = {0.05, 0.25, 0.01, 0.40, 0.10, 0.01, 0.15, 0.03};
    float logits[NV];
    for (int i = 0; i < NV; i++) logits[i] = (float)log(probs[i]);

    /* 0.40 + 0.25 = 0.65 < 0.7 <= 0.80: nucleus {3, 1, 6}. */
    ifp_sampler_params_t p = params(1.0f, 0, 0.7f, 3);
    histogram(s, &p, logits, NV, (uint64_t)N, count);
    assert_int_equal(count[3] + count[1] + count[6], N);
    assert_true(fabs(count[3] / (double)N - 0.40 / 0.80) < 0.01);
    assert_true(fabs(count[1] / (double)N - 0.25 / 0.80) < 0.01);
    assert_true(fabs(count[6] / (double)N - 0.15 / 0.80) < 0.01);

    /* 0.5: {3, 1}. */
    p = params(1.0f, 0, 0.5f, 4);
    histogram(s, &p, logits, NV, 20000, count);
    assert_int_equal(count[3] + count[1], 20000);
    assert_true(count[1] > 0);

    /* Combined with top-k: top-2 of these then p = 0.9 of the renormalised
     * {0.40/0.65, 0.25/0.65} needs both. */
    p = params(1.0f, 2, 0.9f, 5);
    histogram(s, &p, logits, NV, 20000, count);
    assert_int_equal(count[3] + count[1], 20000);
    assert_true(count[1] > 0);

    /* Equal probabilities: ties go to the lower id; 2 of 4 exactly reach 0.5. */
    const float flat[NV] = {-INFINITY, 1, NAN, 1, 1, 1, -INFINITY, -INFINITY};
    p = params(1.0f, 0, 0.5f, 6);
    histogram(s, &p, flat, NV, 20000, count);
    assert_true(count[1] > 0 && count[3] > 0);
    assert_int_equal(count[1] + count[3], 20000);

    /* top_p >= 1, <= 0 or NaN is off. */
    const float offs[] = {1.0f, 1.5f, 0.0f, -0.5f, NAN};
    for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
        p = params(1.0f, 0, offs[o], 10);
        histogram(s, &p, logits, NV, 20000, count);
        assert_true(count[2] + count[5] > 0); /* the 1% tokens still appear */
    }
    ifp_sampler_destroy(&s);
}

typedef struct {
    double v;
    int id;
} ref_t;

static int ref_cmp(const void *a, const void *b) {
    const ref_t *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The full-sort definition of ifp_sampler_sample (temperature > 0), written
 * without selection heaps or the top-p pre-filter. */
static int ref_sample(const ifp_sampler_params_t *p, const float *logits, int n_vocab, uint64_t pos, ref_t *c) {
    int n = 0;
    double inv_t = 1.0 / (double)p->temperature;
    for (int i = 0; i < n_vocab; i++) {
        if (isnan(logits[i]) || logits[i] == -INFINITY) continue;
        c[n].v = (double)logits[i] * inv_t;
        c[n].id = i;
        n++;
    }
    if (p->top_k > 0 && p->top_k < n) {
        qsort(c, (size_t)n, sizeof *c, ref_cmp);
        n = p->top_k;
    }
    double vmax = -INFINITY, total = 0.0;
    for (int i = 0; i < n; i++) vmax = c[i].v > vmax ? c[i].v : vmax;
    for (int i = 0; i < n; i++) total += c[i].v = exp(c[i].v - vmax);
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        qsort(c, (size_t)n, sizeof *c, ref_cmp);
        double target = p->top_p * total, cum = 0.0;
        int len = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].v;
            if (cum >= target) {
                len = i + 1;
                break;
            }
        }
        n = len;
        total = cum;
    }
    double r = ifp_rng_uniform(p->seed, pos) * total, cum = 0.0;
    int last = c[0].id;
    for (int i = 0; i < n; i++) {
        if (c[i].v <= 0.0) continue;
        cum += c[i].v;
        last = c[i].id;
        if (cum > r) return c[i].id;
    }
    return last;
}

/* A large vocabulary exercising the heap top-k and the top-p pre-filter:
 * every pick equals the reference's, and support matches the definition. */
static void test_matches_reference(void **state) {
    (void)state;
    enum { N = 6000 };
    float *logits = malloc(sizeof *logits * N);
    ref_t *scratch = malloc(sizeof *scratch * N);
    assert_non_null(logits);
    assert_non_null(scratch);
    ifp_sampler_t *s = ifp_sampler_new(N);
    uint64_t lcg = 12345;
    for (int i = 0; i < N; i++) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(lcg >> 11) / 9007199254740992.0;
        /* A peaked head and a long tail, with some exact ties. */
        logits[i] = (float)(i % 97 == 0 ? 4.0 : 6.0 * u * u * u);
        if (i % 1000 == 7) logits[i] = NAN;
    }
    const struct {
        float t;
        int k;
        float p;
    } cfg[] = {
        {1.0f, 0, 0.9f}, {0.7f, 0, 0.5f}, {1.0f, 40, 1.0f}, {1.2f, 40, 0.95f}, {0.9f, 1000, 0.3f},
        {2.0f, 0, 0.99f}, {1.0f, 0, 0.001f}, {5.0f, 0, 0.2f}, {1.0f, N - 1, 0.8f}, {1.0f, 0, 1.0f},
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        ifp_sampler_params_t p = params(cfg[c].t, cfg[c].k, cfg[c].p, 1000 + c);
        for (uint64_t pos = 0; pos < 200; pos++) {
            int got = ifp_sampler_sample(s, &p, logits, pos);
            int want = ref_sample(&p, logits, N, pos, scratch);
            assert_int_equal(got, want);
            assert_false(isnan(logits[got]));
        }
    }
    ifp_sampler_destroy(&s);
    free(scratch);
    free(logits);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_params),
        cmocka_unit_test(test_new_destroy),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_argmax_nan),
        cmocka_unit_test(test_greedy_sample),
        cmocka_unit_test(test_nonfinite_logits),
        cmocka_unit_test(test_rng_deterministic_range),
        cmocka_unit_test(test_rng_differs),
        cmocka_unit_test(test_rng_uniformity),
        cmocka_unit_test(test_rng_correlation),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_seed_changes_sequence),
        cmocka_unit_test(test_frequencies_match_softmax),
        cmocka_unit_test(test_temperature_scaling),
        cmocka_unit_test(test_top_k1_is_greedy),
        cmocka_unit_test(test_top_k_support),
        cmocka_unit_test(test_top_p_small_is_greedy),
        cmocka_unit_test(test_top_p_nucleus),
        cmocka_unit_test(test_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
