/* bench_stage.c — one pipeline stage of N layers at the paper's shapes:
 * prefill and decode throughput of dense and IFP-compacted stages, against
 * the machine's DRAM read bandwidth.
 *
 * Models, built one base shape at a time (and freed before the next):
 *   dense-3b, dense-6b, dense-9b, dense-12b   synthetic stages (bench/stagerun.h)
 *   dense-3b@Xb    the dense-3b stage (kept all run) measured again, run for
 *                  run alternating with ifp-Xb-3b: the IFP-vs-dense-3b ratios
 *                  compare these pairs (the machine's speed drifts by 10-20%
 *                  over minutes; alternating runs see the same drift)
 *   ifp-Xb-3b      the Xb stage compacted to a random kept set of K = 6656
 *                  channels per layer (ifp_compact_model): one mask, no row masks
 *   ifp-Xb-u1.25k, ifp-Xb-u1.5k   compacted to a random union U of 1.25 K /
 *                  1.5 K channels per layer, every row carrying its own
 *                  sub-mask over U (K random channels of U) — how a group
 *                  serves a cluster's requests
 * For each: prefill of one P-token sequence (P = 512), decode at batch 1, 4
 * and 16 with `prefix` positions cached per sequence (512), the compaction
 * time per layer, VmRSS.  Weight bandwidth of a decode step = bytes of the
 * stage's weights / step time, against bl_membw_measure at the same thread
 * count (a 1 GiB read: far larger than the L3), measured at the start and at
 * the end of the run (the better of the two).
 *
 * Output: progress on stderr; on stdout the machine, the bandwidth, a table,
 * full-model and pipeline estimates composed from the per-layer figures, and
 * one headline line.  CSV: --csv (one row per measurement) and
 * PATH-without-.csv + "_summary.csv" (one row per model, for the plots). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "compact.h"
#include "kernels.h"
#include "stagerun.h"
#include "synth.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#define BS_DEFAULT_CSV IFP_SOURCE_DIR "/bench/results/stage.csv"

enum { BS_MAX_MODELS = 24, BS_N_BATCH = 3, BS_MAX_DEC = 16 };
static const int bs_batches[BS_N_BATCH] = {1, 4, 16};

typedef struct {
    int layers, threads, runs, prefill_runs, prompt, prefix, quick;
    int steps[BS_N_BATCH], warm_steps;
    double membw_gb; /* buffer, GB */
    const char *csv;
    const char *shapes; /* comma-separated subset of 3b,6b,9b,12b; NULL = all */
} bs_opts_t;

/* One model's results. */
typedef struct {
    char name[32], key[24];
    const char *kind;          /* dense | ifp | union */
    const char *base;          /* base shape */
    int ffn;                   /* FFN channels per held layer */
    double weight_gb;          /* weights read per forward row */
    double prefill_tok_s;
    double step_s[BS_N_BATCH]; /* decode: seconds per step at each batch */
    double compact_ms_layer;   /* 0 for dense */
    double rss_gb;
} bs_model_t;

typedef struct {
    bs_model_t m[BS_MAX_MODELS];
    int n;
    double membw;        /* GB/s at the run's threads: the best of the start and end measurements */
    double membw_start, membw_end;
    double l3_gb;
    bl_csv_t csv;
} bs_results_t;

static const bs_model_t *find_model(const bs_results_t *r, const char *key) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->m[i].key, key)) return &r->m[i];
    return NULL;
}

static double decode_tok_s(const bs_model_t *m, int bi) { return bs_batches[bi] / m->step_s[bi]; }

static void csv_rows(bs_results_t *r, const bs_opts_t *o, const bs_model_t *m) {
    const char *fmt = "%s,%s,%s,%d,%d,%d,%s,%d,%d,%d,%.3f,%.3f,%d,%.4f,%.3f,%.4f,%.3f,%.2f,%.3f,%s";
    bl_csv_row(&r->csv, fmt, m->name, m->kind, m->base, m->ffn, o->layers, o->threads, "prefill", 1, o->prompt, 0,
               m->prefill_tok_s, o->prompt / m->prefill_tok_s * 1e3, o->prefill_runs, m->weight_gb, 0.0, 0.0, r->membw,
               m->compact_ms_layer, m->rss_gb, ifp_blas_corename());
    for (int bi = 0; bi < BS_N_BATCH; bi++) {
        double gbps = m->weight_gb / m->step_s[bi];
        bl_csv_row(&r->csv, fmt, m->name, m->kind, m->base, m->ffn, o->layers, o->threads, "decode", bs_batches[bi], 0,
                   o->prefix, decode_tok_s(m, bi), m->step_s[bi] * 1e3, o->runs, m->weight_gb, gbps, gbps / r->membw,
                   r->membw, m->compact_ms_layer, m->rss_gb, ifp_blas_corename());
    }
}

/* Prefill and decode of the model the stage runs now. */
static int measure_model(sr_stage_t *s, const bs_opts_t *o, bs_model_t *m, ifp_err_t *err) {
    double t;
    int rc = sr_measure_prefill(s, m->name, 0, o->prefill_runs, &t, err);
    if (rc) return rc;
    m->prefill_tok_s = o->prompt / t;
    for (int bi = 0; bi < BS_N_BATCH; bi++)
        if ((rc = sr_measure_decode(s, m->name, bs_batches[bi], o->steps[bi], o->warm_steps, o->runs, &m->step_s[bi],
                                    err)))
            return rc;
    return IFP_OK;
}

/* Per held layer: a random kept set of n of the layer's channels (the union
 * U, or the K of a single mask).  kept[l] points into *block. */
static int random_sets(const ifp_model_t *m, int n, uint64_t seed, int32_t **kept, int *n_kept, int32_t **block) {
    int held = m->layer_end - m->layer_begin;
    *block = malloc((size_t)held * n * sizeof **block);
    if (!*block) return IFP_ENOMEM;
    uint64_t s = seed;
    for (int l = m->layer_begin; l < m->layer_end; l++) {
        kept[l] = *block + (size_t)(l - m->layer_begin) * n;
        n_kept[l] = n;
        bl_random_kept(kept[l], m->layers[l].d_ffn, n, &s);
    }
    return IFP_OK;
}

/* Row masks of a union-compacted stage: per slot 0..BS_MAX_DEC and held
 * layer, K ones among the |U| channels (a request's mask, all inside U). */
typedef struct {
    float *vals;                /* [slots × held × |U|] */
    const float **layer;        /* [slots × n_layers] */
    ifp_ffn_mask_t mask[BS_MAX_DEC + 1];
} bs_rowmasks_t;

static int rowmasks_new(bs_rowmasks_t *rm, const ifp_model_t *m, int u, int K, uint64_t seed) {
    int held = m->layer_end - m->layer_begin, L = m->cfg.n_layers, slots = BS_MAX_DEC + 1;
    rm->vals = calloc((size_t)slots * held * u, sizeof *rm->vals);
    rm->layer = calloc((size_t)slots * L, sizeof *rm->layer);
    int32_t *pick = malloc((size_t)K * sizeof *pick);
    if (!rm->vals || !rm->layer || !pick) {
        free(pick);
        return IFP_ENOMEM;
    }
    uint64_t s = seed;
    for (int k = 0; k < slots; k++) {
        for (int l = m->layer_begin; l < m->layer_end; l++) {
            float *v = rm->vals + ((size_t)k * held + (l - m->layer_begin)) * u;
            bl_random_kept(pick, u, K, &s);
            for (int j = 0; j < K; j++) v[pick[j]] = 1.0f;
            rm->layer[(size_t)k * L + l] = v;
        }
        rm->mask[k].layer = rm->layer + (size_t)k * L;
    }
    free(pick);
    return IFP_OK;
}

static void rowmasks_free(bs_rowmasks_t *rm) {
    free(rm->vals), free(rm->layer);
    memset(rm, 0, sizeof *rm);
}

/* The dense 3b stage stays built all run: it is measured again alternating
 * with each ifp-Xb-3b stage, so the IFP-vs-dense-3b ratios compare runs
 * taken side by side (other work on a shared machine drifts). */
typedef struct {
    ifp_model_t *m;
    sr_stage_t *s;
} bs_ref_t;

/* Fills *bm (a result slot) for model m. */
static bs_model_t *new_model(bs_model_t *bm, const ifp_model_t *m, const char *shape, const char *name,
                             const char *key, const char *kind) {
    memset(bm, 0, sizeof *bm);
    snprintf(bm->name, sizeof bm->name, "%s", name);
    snprintf(bm->key, sizeof bm->key, "%s", key);
    bm->kind = kind;
    bm->base = ifp_synth_shape_find(shape)->name;
    bm->ffn = m->cfg.d_ffn;
    bm->weight_gb = sr_weight_bytes(m) / 1e9;
    bm->rss_gb = bl_vmrss_gb();
    return bm;
}

/* Measures the stages sa (model a) and sb (b) run for run, alternating, so
 * both see the same machine: prefill, then decode at each batch. */
static int measure_pair(sr_stage_t *sa, bs_model_t *a, sr_stage_t *sb, bs_model_t *b, const bs_opts_t *o,
                        ifp_err_t *err) {
    double ta[64], tb[64], dt;
    int rc = IFP_OK, R = o->runs < 64 ? o->runs : 64, P = o->prefill_runs < 64 ? o->prefill_runs : 64;
    for (int r = 0; r < P && !rc; r++)
        if (!(rc = sr_prefill(sa, &ta[r], err))) rc = sr_prefill(sb, &tb[r], err);
    if (rc) return rc;
    a->prefill_tok_s = o->prompt / bl_median(ta, P), b->prefill_tok_s = o->prompt / bl_median(tb, P);
    fprintf(stderr, "  %s / %s, alternating runs: prefill %.1f / %.1f tok/s\n", a->name, b->name, a->prefill_tok_s,
            b->prefill_tok_s);
    for (int bi = 0; bi < BS_N_BATCH && !rc; bi++) {
        int B = bs_batches[bi], S = o->steps[bi];
        if (o->warm_steps && !(rc = sr_decode(sa, B, o->warm_steps, &dt, err))) rc = sr_decode(sb, B, o->warm_steps, &dt, err);
        for (int r = 0; r < R && !rc; r++)
            if (!(rc = sr_decode(sa, B, S, &ta[r], err))) rc = sr_decode(sb, B, S, &tb[r], err);
        if (rc) break;
        a->step_s[bi] = bl_median(ta, R) / S, b->step_s[bi] = bl_median(tb, R) / S;
        fprintf(stderr, "  %s / %s, alternating runs: decode B=%d %.2f / %.2f tok/s\n", a->name, b->name, B,
                decode_tok_s(a, bi), decode_tok_s(b, bi));
    }
    return rc;
}

/* One compacted variant of the base stage: n channels per layer; union
 * variants (n > K) give every row its own K-of-U sub-mask. */
static int run_variant(sr_stage_t *s, const ifp_model_t *base, const bs_opts_t *o, const char *shape, int n,
                       const char *suffix, bs_ref_t *ref, bs_results_t *res, ifp_err_t *err) {
    bs_model_t *bm = &res->m[res->n];
    memset(bm, 0, sizeof *bm);
    int uni = n > IFP_SYNTH_KEEP;
    snprintf(bm->name, sizeof bm->name, "ifp-%s-%s", shape, suffix);
    if (uni) snprintf(bm->key, sizeof bm->key, "ifp%s_%s", shape, n * 4 == 5 * IFP_SYNTH_KEEP ? "u125" : "u150");
    else snprintf(bm->key, sizeof bm->key, "ifp%s3b", shape);
    bm->kind = uni ? "union" : "ifp";
    bm->base = ifp_synth_shape_find(shape)->name;
    bm->ffn = n;
    int L = base->cfg.n_layers, rc;
    int32_t **kept = calloc((size_t)L, sizeof *kept), *block = NULL;
    int *n_kept = calloc((size_t)L, sizeof *n_kept);
    ifp_model_t *cm = NULL;
    bs_rowmasks_t rm = {0};
    if (!kept || !n_kept || random_sets(base, n, 0xC0FFEEull + (uint64_t)n, kept, n_kept, &block)) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto done;
    }
    double t0 = bl_now();
    if ((rc = ifp_compact_model(base, (const int32_t *const *)kept, n_kept, &cm, err))) goto done;
    bm->compact_ms_layer = (bl_now() - t0) * 1e3 / o->layers;
    bm->weight_gb = sr_weight_bytes(cm) / 1e9;
    bm->rss_gb = bl_vmrss_gb();
    bl_log("%s: compacted to %d channels per layer in %.0f ms per layer; VmRSS %.2f GB", bm->name, n,
           bm->compact_ms_layer, bm->rss_gb);
    if ((rc = sr_use(s, cm, err))) goto done;
    if (uni) {
        if (rowmasks_new(&rm, cm, n, IFP_SYNTH_KEEP, 0x5AB5ull + (uint64_t)n)) {
            rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
            goto done;
        }
        for (int k = 0; k <= BS_MAX_DEC; k++) sr_set_mask(s, k, &rm.mask[k]);
    }
    if (!uni && ref->m) { /* K: alternating with the dense-3b reference */
        char name[32], key[24];
        snprintf(name, sizeof name, "dense-3b@%s", shape);
        snprintf(key, sizeof key, "dense3b_at_%s", shape);
        bs_model_t *rm3 = new_model(&res->m[res->n + 1], ref->m, "3b", name, key, "dense-ref");
        if (!(rc = measure_pair(s, bm, ref->s, rm3, o, err))) res->n += 2;
    } else if (!(rc = measure_model(s, o, bm, err))) {
        res->n++;
    }
done:
    if (cm) {
        int rc2 = sr_use(s, base, err); /* the state must not point at cm once it is freed */
        if (!rc) rc = rc2;
    }
    ifp_model_free(&cm);
    rowmasks_free(&rm);
    free(block), free(kept), free(n_kept);
    return rc;
}

/* The dense stage of one shape, then (above 3b) its three compactions and
 * the reference again.  The 3b stage is kept in *ref when ref->m is NULL. */
static int run_shape(const char *shape, const bs_opts_t *o, bs_ref_t *ref, bs_results_t *res, ifp_err_t *err) {
    ifp_model_t *m = NULL;
    sr_stage_t *s = NULL;
    int ctx = o->prompt > o->prefix + o->steps[0] ? o->prompt : o->prefix + o->steps[0];
    bl_log("dense-%s: generating %d layers", shape, o->layers);
    int rc = sr_synth(shape, o->layers, ctx, 1, &m, err);
    if (rc) return rc;
    bl_log("dense-%s: %.2f GB of weights; filling %d decode prefixes of %d positions", shape, sr_weight_bytes(m) / 1e9,
           BS_MAX_DEC, o->prefix);
    if ((rc = sr_new(m, o->prompt, o->prefix, BS_MAX_DEC, o->steps[0], &s, err))) goto done;
    char name[32], key[24];
    snprintf(name, sizeof name, "dense-%s", shape);
    snprintf(key, sizeof key, "dense%s", shape);
    bs_model_t *bm = new_model(&res->m[res->n], m, shape, name, key, "dense");
    if ((rc = measure_model(s, o, bm, err))) goto done;
    res->n++;
    if (m->cfg.d_ffn > IFP_SYNTH_KEEP) {
        static const struct { int num, den; const char *suffix; } v[] = {{1, 1, "3b"}, {5, 4, "u1.25k"}, {3, 2, "u1.5k"}};
        for (int i = 0; i < 3 && !rc; i++)
            rc = run_variant(s, m, o, shape, IFP_SYNTH_KEEP * v[i].num / v[i].den, v[i].suffix, ref, res, err);
    } else if (!ref->m) { /* the 3b stage: keep it as the reference */
        ref->m = m, ref->s = s;
        m = NULL, s = NULL;
    }
done:
    sr_free(&s);
    ifp_model_free(&m);
    return rc;
}

/* ---- report ---------------------------------------------------------------------------------- */

static void print_table(const bs_results_t *r, const bs_opts_t *o) {
    printf("\n%d-layer stage, %d thread%s; prefill P = %d (median of %d); decode with %d cached positions per sequence "
           "(median of %d runs of %d/%d/%d steps at batch 1/4/16)\n", o->layers, o->threads, o->threads > 1 ? "s" : "",
           o->prompt, o->prefill_runs, o->prefix, o->runs, o->steps[0], o->steps[1], o->steps[2]);
    printf("%-15s %6s %8s %9s %9s %9s %9s %9s %7s %8s %7s\n", "model", "ffn", "weightGB", "prefill", "dec b1",
           "dec b4", "dec b16", "b1 GB/s", "of DRAM", "compact", "RSS GB");
    printf("%-15s %6s %8s %9s %9s %9s %9s %9s %7s %8s %7s\n", "", "/layer", "/step", "tok/s", "tok/s", "tok/s", "tok/s",
           "", "", "ms/layer", "");
    for (int i = 0; i < r->n; i++) {
        const bs_model_t *m = &r->m[i];
        double g = m->weight_gb / m->step_s[0];
        printf("%-15s %6d %8.3f %9.1f %9.2f %9.2f %9.2f %9.2f %6.0f%% %8.1f %7.2f%s\n", m->name, m->ffn, m->weight_gb,
               m->prefill_tok_s, decode_tok_s(m, 0), decode_tok_s(m, 1), decode_tok_s(m, 2), g, 100 * g / r->membw,
               m->compact_ms_layer, m->rss_gb, m->weight_gb < r->l3_gb ? "  (fits in L3)" : "");
    }
}

/* Full 56-layer and pipeline estimates from the per-layer decode time. */
static void print_estimates(const bs_results_t *r, const bs_opts_t *o) {
    static const char *keys[] = {"dense3b", "ifp9b3b", "ifp9b_u125", "dense9b", "dense12b", "ifp12b3b"};
    static const int P[] = {1, 4, 14};
    const double link_s = 50e-6, link_Bps = 1.25e9, row_bytes = 2048 * 4; /* 10 GbE, 50 us a message */
    printf("\nestimates for the 56-layer model (per-layer time = stage time / %d):\n", o->layers);
    printf("  TTFT(P=%d) = 56 x prefill per layer;  pipeline of S stages with S micro-batches of B rows in flight:\n"
           "  token latency = 56 x t_layer(B) + S x t_link(B);  throughput = S x B / (56 x t_layer(B) + S x "
           "t_link(B));\n  t_link(B) = 50 us + B x 8 KB / 1.25 GB/s (10 GbE)\n", o->prompt);
    printf("  %-14s %8s %3s %9s %11s %11s %11s %11s\n", "model", "TTFT s", "B", "ms/layer", "S=1 tok/s", "S=4 tok/s",
           "S=14 tok/s", "S=14 lat ms");
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const bs_model_t *m = find_model(r, keys[k]);
        if (!m) continue;
        double ttft = IFP_SYNTH_LAYERS * (o->prompt / m->prefill_tok_s) / o->layers;
        for (int bi = 0; bi < BS_N_BATCH; bi++) {
            int B = bs_batches[bi];
            double tl = m->step_s[bi] / o->layers, tput[3], lat = 0;
            for (int p = 0; p < 3; p++) {
                double tx = P[p] > 1 ? link_s + B * row_bytes / link_Bps : 0;
                lat = IFP_SYNTH_LAYERS * tl + P[p] * tx;
                tput[p] = P[p] * B / lat;
            }
            printf("  %-14s %8.1f %3d %9.2f %11.2f %11.2f %11.2f %11.1f\n", bi ? "" : m->name, ttft, B, tl * 1e3,
                   tput[0], tput[1], tput[2], lat * 1e3);
        }
    }
}

/* b = "dense3b" means the dense-3b measurement nearest in time to a: the
 * reference taken after a's family when there is one. */
static void head_ratio(bl_headline_t *h, const bs_results_t *r, const char *name, const char *a, int ba,
                       const char *b, int bb) {
    const bs_model_t *x = find_model(r, a), *y = find_model(r, b);
    if (x && !strcmp(b, "dense3b")) {
        char key[24];
        snprintf(key, sizeof key, "dense3b_at_%s", x->base);
        if (find_model(r, key)) y = find_model(r, key);
    }
    if (x && y) bl_head_add(h, name, "%.3f", decode_tok_s(x, ba) / decode_tok_s(y, bb));
}

static void print_headline(const bs_results_t *r, const bs_opts_t *o) {
    bl_headline_t h = {{0}, 0};
    head_ratio(&h, r, "ifp9b3b_vs_dense3b", "ifp9b3b", 0, "dense3b", 0);
    head_ratio(&h, r, "ifp9b3b_vs_dense9b", "ifp9b3b", 0, "dense9b", 0);
    head_ratio(&h, r, "ifp6b3b_vs_dense3b", "ifp6b3b", 0, "dense3b", 0);
    head_ratio(&h, r, "ifp6b3b_vs_dense6b", "ifp6b3b", 0, "dense6b", 0);
    head_ratio(&h, r, "ifp12b3b_vs_dense3b", "ifp12b3b", 0, "dense3b", 0);
    head_ratio(&h, r, "ifp12b3b_vs_dense12b", "ifp12b3b", 0, "dense12b", 0);
    head_ratio(&h, r, "ifp9b_u125_vs_dense3b", "ifp9b_u125", 0, "dense3b", 0);
    head_ratio(&h, r, "ifp9b_u150_vs_dense3b", "ifp9b_u150", 0, "dense3b", 0);
    head_ratio(&h, r, "ifp9b3b_b16_vs_dense3b_b16", "ifp9b3b", 2, "dense3b", 2);
    const bs_model_t *i9 = find_model(r, "ifp9b3b"), *r9 = find_model(r, "dense3b_at_9b");
    if (!r9) r9 = find_model(r, "dense3b");
    /* the dense-3b stage's own figures: medians over its measurements */
    double b16[8], b4[8], frac[8], b1[8], pre[8];
    int nd = 0;
    for (int i = 0; i < r->n && nd < 8; i++) {
        const bs_model_t *m = &r->m[i];
        if (strncmp(m->key, "dense3b", 7)) continue;
        b16[nd] = decode_tok_s(m, 2) / decode_tok_s(m, 0), b4[nd] = decode_tok_s(m, 1) / decode_tok_s(m, 0);
        frac[nd] = m->weight_gb / m->step_s[0] / r->membw, b1[nd] = decode_tok_s(m, 0), pre[nd] = m->prefill_tok_s;
        nd++;
    }
    if (nd) {
        bl_head_add(&h, "batch16_vs_batch1", "%.3f", bl_median(b16, nd));
        bl_head_add(&h, "batch4_vs_batch1", "%.3f", bl_median(b4, nd));
        bl_head_add(&h, "decode_bw_fraction", "%.3f", bl_median(frac, nd));
    }
    double min_frac = INFINITY;
    for (int i = 0; i < r->n; i++)
        if (r->m[i].weight_gb > r->l3_gb && r->m[i].weight_gb / r->m[i].step_s[0] / r->membw < min_frac)
            min_frac = r->m[i].weight_gb / r->m[i].step_s[0] / r->membw;
    if (isfinite(min_frac)) bl_head_add(&h, "decode_bw_fraction_min", "%.3f", min_frac);
    bl_head_add(&h, "membw_gbps", "%.2f", r->membw);
    if (nd) bl_head_add(&h, "decode_dense3b_b1_tok_s", "%.2f", bl_median(b1, nd));
    if (nd) bl_head_add(&h, "prefill_dense3b_tok_s", "%.1f", bl_median(pre, nd));
    if (r9 && i9) bl_head_add(&h, "prefill_ifp9b3b_vs_dense3b", "%.3f", i9->prefill_tok_s / r9->prefill_tok_s);
    if (i9) bl_head_add(&h, "compact_ms_per_layer_9b", "%.1f", i9->compact_ms_layer);
    bl_head_add(&h, "rss_peak_gb", "%.2f", bl_vmhwm_gb());
    bl_head_add(&h, "layers", "%.0f", o->layers);
    bl_head_add(&h, "threads", "%.0f", o->threads);
    bl_head_print(&h);
}

/* PATH.csv -> PATH_summary.csv: one row per model for the gnuplot scripts. */
static int write_summary(const bs_results_t *r, const bs_opts_t *o) {
    char path[4096];
    size_t n = strlen(o->csv);
    int ext = n > 4 && !strcmp(o->csv + n - 4, ".csv");
    snprintf(path, sizeof path, "%.*s_summary.csv", (int)(ext ? n - 4 : n), o->csv);
    bl_csv_t c;
    if (bl_csv_open(&c, path, "model,kind,prefill_tok_s,decode_b1,decode_b4,decode_b16,b1_gbps,b1_bw_fraction,"
                              "membw_gbps"))
        return -1;
    for (int i = 0; i < r->n; i++) {
        const bs_model_t *m = &r->m[i];
        double g = m->weight_gb / m->step_s[0];
        bl_csv_row(&c, "%s,%s,%.3f,%.3f,%.3f,%.3f,%.3f,%.4f,%.3f", m->name, m->kind, m->prefill_tok_s,
                   decode_tok_s(m, 0), decode_tok_s(m, 1), decode_tok_s(m, 2), g, g / r->membw, r->membw);
    }
    return bl_csv_close(&c, 1);
}

/* Read bandwidth at 1 and 2 threads; *at_threads at the run's count. */
static int measure_membw(const bs_opts_t *o, size_t bytes, int passes, bl_membw_t *b1, bl_membw_t *b2,
                         double *at_threads) {
    float *buf = bl_membw_buffer(bytes);
    if (!buf) {
        fprintf(stderr, "bench_stage: out of memory for the bandwidth buffer\n");
        return -1;
    }
    *b1 = bl_membw_measure(buf, bytes, 1, passes);
    *b2 = bl_membw_measure(buf, bytes, 2, passes);
    *at_threads = o->threads == 1 ? b1->gbps : o->threads == 2 ? b2->gbps
                                                                : bl_membw_measure(buf, bytes, o->threads, passes).gbps;
    bl_membw_free(&buf, bytes);
    return 0;
}

/* 1 if --shapes lists shape (or is absent). */
static int shape_wanted(const bs_opts_t *o, const char *shape) {
    if (!o->shapes) return 1;
    size_t n = strlen(shape);
    for (const char *p = o->shapes; (p = strstr(p, shape)); p += n)
        if ((p == o->shapes || p[-1] == ',') && (p[n] == ',' || !p[n])) return 1;
    return 0;
}

/* ---- options and main ------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_stage [--quick] [--layers N] [--threads T] [--runs R] [--shapes L] [--csv PATH]\n"
            "  --layers N   layers per stage, 1..56 (default 4; quick 2)\n"
            "  --threads T  OpenBLAS threads, 1..64 (default 1)\n"
            "  --runs R     timed decode runs per measurement, 1..64 (default 5; quick 1); prefill\n"
            "               runs min(R, 3)\n"
            "  --quick      a smoke run in well under a minute: 2 layers, 1 run, prefill P = 128,\n"
            "               64 cached positions, 8/3/3 decode steps at batch 1/4/16, no warm-up\n"
            "  --shapes L   base shapes, comma-separated (default 3b,6b,9b,12b; the headline then\n"
            "               lacks the keys of the shapes left out)\n"
            "  --csv PATH   results (default %s; the per-model summary goes next to it)\n",
            BS_DEFAULT_CSV);
}

static int parse_args(int argc, char **argv, bs_opts_t *o) {
    int layers = 0, runs = 0;
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->csv = BS_DEFAULT_CSV;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
            continue;
        }
        int bad = !v;
        if (!strcmp(a, "--layers")) bad = bad || bl_parse_int(v, 1, IFP_SYNTH_LAYERS, &layers);
        else if (!strcmp(a, "--threads")) bad = bad || bl_parse_int(v, 1, 64, &o->threads);
        else if (!strcmp(a, "--runs")) bad = bad || bl_parse_int(v, 1, 64, &runs);
        else if (!strcmp(a, "--csv")) {
            bad = bad || !*v;
            o->csv = v;
        } else if (!strcmp(a, "--shapes")) {
            bad = bad || !*v;
            o->shapes = v;
        }
        else {
            fprintf(stderr, "bench_stage: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_stage: %s: expected %s\n", a, !strcmp(a, "--csv") ? "a path" : "an integer in range");
            return 2;
        }
        i++;
    }
    o->layers = layers ? layers : o->quick ? 2 : 4;
    o->runs = runs ? runs : o->quick ? 1 : 5;
    o->prefill_runs = o->runs < 3 ? o->runs : 3;
    o->prompt = o->quick ? 128 : 512;
    o->prefix = o->quick ? 64 : 512;
    int q[BS_N_BATCH] = {8, 3, 3}, f[BS_N_BATCH] = {16, 8, 8};
    memcpy(o->steps, o->quick ? q : f, sizeof o->steps);
    o->warm_steps = o->quick ? 0 : 2;
    o->membw_gb = 1.0;
    return 0;
}

int main(int argc, char **argv) {
    bs_opts_t o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : 2;
    static bs_results_t res;
    double t0 = bl_now();
    bl_print_machine(stdout);
    res.l3_gb = bl_l3_bytes() / 1e9;
    ifp_blas_threads(o.threads);
    int got = ifp_blas_threads(0);
    if (got != o.threads) fprintf(stderr, "warning: asked OpenBLAS for %d threads, it runs %d\n", o.threads, got);
    /* DRAM read bandwidth: 1 and 2 threads, and the run's count; measured
     * again at the end (other work on the machine comes and goes) */
    size_t bw_bytes = (size_t)(o.membw_gb * 1073741824.0);
    int passes = o.quick ? 2 : 3;
    bl_membw_t b1, b2;
    if (measure_membw(&o, bw_bytes, passes, &b1, &b2, &res.membw_start)) return 1;
    printf("DRAM read bandwidth (%.2f GB buffer, best of %d passes x 1-16 streams): %.2f GB/s at 1 thread (%d streams), "
           "%.2f GB/s at 2 threads (%d streams)\n", b1.bytes / 1e9, passes, b1.gbps, b1.streams, b2.gbps, b2.streams);
    fflush(stdout);
    ifp_err_t err = {0};
    bs_ref_t ref = {NULL, NULL};
    int rc = IFP_OK;
    for (int i = 0; i < ifp_synth_n_shapes() && !rc; i++)
        if (shape_wanted(&o, ifp_synth_shape_at(i)->name))
            rc = run_shape(ifp_synth_shape_at(i)->name, &o, &ref, &res, &err);
    sr_free(&ref.s);
    ifp_model_free(&ref.m);
    if (rc) {
        fprintf(stderr, "bench_stage: %s\n", err.msg[0] ? err.msg : ifp_strerror(rc));
        return 1;
    }
    if (measure_membw(&o, bw_bytes, passes, &b1, &b2, &res.membw_end)) return 1;
    res.membw = res.membw_start > res.membw_end ? res.membw_start : res.membw_end;
    printf("DRAM read bandwidth at %d thread%s: %.2f GB/s at the start, %.2f GB/s at the end; decode compares with the "
           "better, %.2f GB/s\n", o.threads, o.threads > 1 ? "s" : "", res.membw_start, res.membw_end, res.membw);
    if (bl_csv_open(&res.csv, o.csv, "model,kind,base_shape,ffn_per_layer,layers,threads,phase,batch,prompt_tokens,"
                                     "cached_positions,tokens_per_s,ms_per_step,runs,weight_gb_per_step,achieved_gbps,"
                                     "bw_fraction,membw_gbps,compact_ms_per_layer,rss_gb,openblas_core"))
        return 1;
    for (int i = 0; i < res.n; i++) csv_rows(&res, &o, &res.m[i]);
    print_table(&res, &o);
    printf("dense-3b batch-1 decode over the run (drift of the machine):");
    for (int i = 0; i < res.n; i++)
        if (!strncmp(res.m[i].key, "dense3b", 7)) printf(" %.2f", decode_tok_s(&res.m[i], 0));
    printf(" tok/s\n");
    print_estimates(&res, &o);
    int wrc = bl_csv_close(&res.csv, 1) | write_summary(&res, &o);
    double la[3] = {0};
    getloadavg(la, 3);
    printf("\ncsv: %s (%d rows); total %.0f s; load average at the end %.2f (other work on this machine skews the "
           "figures)\n", o.csv, res.csv.rows, bl_now() - t0, la[0]);
    print_headline(&res, &o);
    return wrc ? 1 : 0;
}
