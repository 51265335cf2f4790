/* bench_stage.c — one pipeline stage of N layers at the paper's shapes, in
 * every weight type: prefill and decode throughput of dense and
 * IFP-compacted stages, against the machine's DRAM read bandwidth.
 *
 * Models (synthetic, bench/stagerun.h; every type from the same seed):
 *   dense-3b        the reference: one per weight type, built first and kept
 *                   all run; measured with every set below
 *   dense-3b-aa@Xb  a second, separately built dense-3b in the reference type
 *                   (f32 if listed), rebuilt with each set after its other
 *                   models: the A/A check (aa_ratio should be 1 +- 5%; it
 *                   also tests that where a model is built does not matter)
 *   dense-Xb        X = 6, 9, 12, per type
 *   ifp-Xb-3b       dense-Xb compacted to a random kept set of K = 6656
 *                   channels per layer (ifp_compact_model)
 *   ifp-Xb-u1.25k, ifp-Xb-u1.5k   compacted to a random union U of 1.25 K /
 *                   1.5 K channels per layer, every row carrying its own
 *                   sub-mask of K channels of U (how a group serves a cluster)
 * A set is one base shape X: its models in every type, the references and
 * the A/A copy, all built before any timing, then measured in interleaved
 * rounds (bench/stage_measure.h: every figure is the median over rounds,
 * every ratio the median of per-round ratios).  Sets run one after another
 * (the largest are freed before the next is built).
 * Figures: prefill of one P-token sequence; decode at batch 1, 4 and 16 with
 * `prefix` positions cached per sequence; compaction time per layer; the
 * weight bytes a decode step reads (every held matrix once, in its type:
 * sr_weight_bytes) over the step time, against the DRAM read bandwidth at the
 * same thread count: the better of bl_membw_measure and OpenBLAS sgemv over
 * a 1 GiB buffer, at the start and at the end of the run (measure_membw).
 *
 * --model FILE instead measures a GGUF as llama-bench does (stage_peer.c).
 *
 * Output: progress on stderr; on stdout the facts (CPU, kernel path, BLAS
 * core), the bandwidth, a table, estimates, one headline line (last).  CSVs
 * described in stage_report.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "compact.h"
#include "kernels.h"
#include "stage_peer.h"
#include "stage_report.h"
#include "stagerun.h"
#include "synth.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#define BS_DEFAULT_CSV IFP_SOURCE_DIR "/bench/results/stage.csv"

enum { BS_N_VARIANT = 3 };

/* The compactions of a base shape: K, 1.25 K, 1.5 K channels per layer. */
static const struct {
    int num, den;
    const char *suffix, *key;
} bs_variants[BS_N_VARIANT] = {{1, 1, "3b", "3b"}, {5, 4, "u1.25k", "_u125"}, {3, 2, "u1.5k", "_u150"}};

/* ---- models --------------------------------------------------------------------------------- */

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

/* Row masks of a union-compacted stage: per slot 0..SM_MAX_DEC and held
 * layer, K ones among the |U| channels (a request's mask, all inside U). */
typedef struct {
    float *vals;                /* [slots × held × |U|] */
    const float **layer;        /* [slots × n_layers] */
    ifp_ffn_mask_t mask[SM_MAX_DEC + 1];
} bs_rowmasks_t;

static int rowmasks_new(bs_rowmasks_t *rm, const ifp_model_t *m, int u, int K, uint64_t seed) {
    int held = m->layer_end - m->layer_begin, L = m->cfg.n_layers, slots = SM_MAX_DEC + 1;
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

/* A result slot for model m of type ti on runner s. */
static bs_model_t *add_model(bs_results_t *res, const bs_opts_t *o, int ti, const ifp_model_t *m, sr_stage_t *s,
                             const char *name, const char *key, const char *kind, const char *base) {
    if (res->n >= BS_MAX_MODELS) return NULL;
    bs_model_t *bm = &res->m[res->n++];
    memset(bm, 0, sizeof *bm);
    sm_entry_reset(&bm->e);
    snprintf(bm->e.name, sizeof bm->e.name, "%s", name);
    snprintf(bm->e.key, sizeof bm->e.key, "%s", key);
    bm->e.type = o->type_names[ti];
    bm->e.kind = kind;
    bm->e.base = base;
    bm->e.m = m;
    bm->e.s = s;
    bm->ffn = m->layers[m->layer_begin].d_ffn;
    bm->weight_gb = sr_weight_bytes(m) / 1e9;
    for (int l = m->layer_begin; l < m->layer_end; l++)
        bm->e.params += (double)ifp_synth_layer_params(&m->cfg, m->layers[l].d_ffn);
    bm->resident_gb = (double)ifp_model_resident_bytes(m) / 1e9;
    return bm;
}

static int ctx_of(const bs_opts_t *o) {
    int smax = 0;
    for (int b = 0; b < SM_N_BATCH; b++) smax = o->plan.max_steps[b] > smax ? o->plan.max_steps[b] : smax;
    return o->plan.prompt > o->prefix + smax ? o->plan.prompt : o->prefix + smax;
}

static int max_steps(const bs_opts_t *o) { return ctx_of(o) - o->prefix; }

static int synth(const bs_opts_t *o, const char *shape, int ti, ifp_model_t **m, ifp_err_t *err) {
    double t0 = bl_now();
    int rc = sr_synth_typed(shape, o->layers, ctx_of(o), 1, (int)o->types[ti], m, err);
    if (!rc) {
        char mem[256];
        ifp_model_describe_memory(*m, mem, sizeof mem);
        bl_log("dense-%s %s: %d layers built in %.1f s; %s", shape, o->type_names[ti], o->layers, bl_now() - t0, mem);
    }
    return rc;
}

/* The references: dense-3b in every type on one runner. */
typedef struct {
    ifp_model_t *m[BS_MAX_TYPES];
    bs_model_t *bm[BS_MAX_TYPES];
    sr_stage_t *s;
} bs_refs_t;

static int build_refs(const bs_opts_t *o, bs_refs_t *ref, bs_results_t *res, ifp_err_t *err) {
    int rc = IFP_OK;
    for (int ti = 0; ti < o->n_types && !rc; ti++) rc = synth(o, "3b", ti, &ref->m[ti], err);
    if (rc) return rc;
    bl_log("dense-3b: filling %d decode prefixes of %d positions", SM_MAX_DEC, o->prefix);
    if ((rc = sr_new(ref->m[o->ref], o->plan.prompt, o->prefix, SM_MAX_DEC, max_steps(o), &ref->s, err))) return rc;
    for (int ti = 0; ti < o->n_types; ti++) {
        ref->bm[ti] = add_model(res, o, ti, ref->m[ti], ref->s, "dense-3b", "dense3b", "dense", "3b");
        if (!ref->bm[ti]) return ifp_errf(err, IFP_ERANGE, "too many models");
        ref->bm[ti]->rss_gb = bl_vmrss_gb();
    }
    return IFP_OK;
}

/* One set: base shape X (NULL: the references alone), every type. */
typedef struct {
    ifp_model_t *dense[BS_MAX_TYPES], *comp[BS_MAX_TYPES][BS_N_VARIANT], *aa;
    sr_stage_t *s;
    bs_rowmasks_t rm[BS_N_VARIANT];
} bs_set_t;

static void set_free(bs_set_t *set) {
    sr_free(&set->s);
    for (int ti = 0; ti < BS_MAX_TYPES; ti++) {
        for (int v = 0; v < BS_N_VARIANT; v++) ifp_model_free(&set->comp[ti][v]);
        ifp_model_free(&set->dense[ti]);
    }
    ifp_model_free(&set->aa);
    for (int v = 0; v < BS_N_VARIANT; v++) rowmasks_free(&set->rm[v]);
}

/* Compacts set->dense[ti] to variant v; adds its result slot. */
static int compact_variant(const bs_opts_t *o, const char *shape, int ti, int v, bs_set_t *set, bs_results_t *res,
                           bs_model_t **out, ifp_err_t *err) {
    const ifp_model_t *base = set->dense[ti];
    int n = IFP_SYNTH_KEEP * bs_variants[v].num / bs_variants[v].den, L = base->cfg.n_layers, rc;
    int32_t **kept = calloc((size_t)L, sizeof *kept), *block = NULL;
    int *n_kept = calloc((size_t)L, sizeof *n_kept);
    if (!kept || !n_kept || random_sets(base, n, 0xC0FFEEull + (uint64_t)n, kept, n_kept, &block)) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto done;
    }
    double t0 = bl_now();
    if ((rc = ifp_compact_model(base, (const int32_t *const *)kept, n_kept, &set->comp[ti][v], err))) goto done;
    double ms = (bl_now() - t0) * 1e3 / o->layers;
    if (v && !set->rm[v].vals && rowmasks_new(&set->rm[v], base, n, IFP_SYNTH_KEEP, 0x5AB5ull + (uint64_t)n)) {
        rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        goto done;
    }
    char name[32], key[24];
    snprintf(name, sizeof name, "ifp-%s-%s", shape, bs_variants[v].suffix);
    snprintf(key, sizeof key, "ifp%s%s", shape, bs_variants[v].key);
    bs_model_t *bm = add_model(res, o, ti, set->comp[ti][v], set->s, name, key, v ? "union" : "ifp", shape);
    if (!bm) {
        rc = ifp_errf(err, IFP_ERANGE, "too many models");
        goto done;
    }
    bm->compact_ms_layer = ms;
    if (v) bm->e.slot_mask = set->rm[v].mask;
    *out = bm;
    char mem[256];
    ifp_model_describe_memory(set->comp[ti][v], mem, sizeof mem);
    bl_log("%s %s: compacted to %d channels per layer in %.0f ms per layer; %s", name, o->type_names[ti], n, ms, mem);
done:
    free(block), free(kept), free(n_kept);
    return rc;
}

/* Builds set X (every model before any timing), measures it with the
 * references in interleaved rounds, frees it. */
static int run_set(const bs_opts_t *o, const char *shape, bs_refs_t *ref, bs_results_t *res, ifp_err_t *err) {
    bs_set_t set;
    memset(&set, 0, sizeof set);
    sm_entry_t *order[BS_MAX_MODELS];
    bs_model_t *mine[BS_MAX_MODELS];
    int n = 0, nm = 0, rc = IFP_OK;
    bs_model_t *per_type[BS_MAX_TYPES][1 + BS_N_VARIANT] = {{0}};
    bl_log("set %s: building every model before timing (MemAvailable %.1f GB)", shape ? shape : "3b",
           bl_mem_available_gb());
    for (int ti = 0; shape && ti < o->n_types && !rc; ti++) {
        if ((rc = synth(o, shape, ti, &set.dense[ti], err))) break;
        if (!set.s) {
            bl_log("dense-%s: filling %d decode prefixes of %d positions", shape, SM_MAX_DEC, o->prefix);
            if ((rc = sr_new(set.dense[ti], o->plan.prompt, o->prefix, SM_MAX_DEC, max_steps(o), &set.s, err))) break;
        }
        char name[32], key[24];
        snprintf(name, sizeof name, "dense-%s", shape);
        snprintf(key, sizeof key, "dense%s", shape);
        if (!(per_type[ti][0] = add_model(res, o, ti, set.dense[ti], set.s, name, key, "dense", shape))) {
            rc = ifp_errf(err, IFP_ERANGE, "too many models");
            break;
        }
        mine[nm++] = per_type[ti][0];
        if (set.dense[ti]->cfg.d_ffn > IFP_SYNTH_KEEP)
            for (int v = 0; v < BS_N_VARIANT && !rc; v++)
                if (!(rc = compact_variant(o, shape, ti, v, &set, res, &per_type[ti][1 + v], err)))
                    mine[nm++] = per_type[ti][1 + v];
    }
    /* the A/A copy last: built after (and placed among) the set's models */
    bs_model_t *aa = NULL;
    char aa_name[32];
    snprintf(aa_name, sizeof aa_name, "dense-3b-aa%s%s", shape ? "@" : "", shape ? shape : "");
    if (!rc && !(rc = synth(o, "3b", o->ref, &set.aa, err))) {
        if (!(aa = add_model(res, o, o->ref, set.aa, ref->s, aa_name, "dense3b_aa", "aa", "3b")))
            rc = ifp_errf(err, IFP_ERANGE, "too many models");
        else mine[nm++] = aa;
    }
    double rss = bl_vmrss_gb();
    for (int i = 0; i < nm; i++) mine[i]->rss_gb = rss;
    /* order, per type: the A/A copy, the reference, ifp-Xb-3b, the unions,
     * dense-Xb — the reference measured right next to both of its pairs */
    for (int ti = 0; ti < o->n_types && !rc; ti++) {
        if (ti == o->ref && aa) order[n++] = &aa->e;
        order[n++] = &ref->bm[ti]->e;
        for (int k = 1; k <= BS_N_VARIANT + 1; k++)
            if (per_type[ti][k % (BS_N_VARIANT + 1)]) order[n++] = &per_type[ti][k % (BS_N_VARIANT + 1)]->e;
    }
    if (!rc) {
        bl_log("set %s: %d stages, VmRSS %.2f GB; %d interleaved rounds", shape ? shape : "3b", n, rss,
               o->plan.rounds);
        rc = sm_run(order, n, &o->plan, &res->rounds, err);
    }
    if (ref->s && ref->m[o->ref]) {
        int rc2 = sr_use(ref->s, ref->m[o->ref], err); /* the runner must not point at the freed copy */
        if (!rc) rc = rc2;
    }
    for (int i = 0; i < nm; i++) mine[i]->e.m = NULL, mine[i]->e.s = NULL;
    set_free(&set);
    return rc;
}

/* ---- bandwidth ------------------------------------------------------------------------------ */

/* Read bandwidth of a 1 GiB buffer: bench/membw's loop (bl_membw_measure)
 * at 1 and 2 threads and at the run's count, and OpenBLAS's sgemv reading the
 * buffer as a [rows x 2048] f32 matrix (ifp_sgemm with one row of x) at the
 * run's threads — on this Zen 3 VM sgemv, which prefetches, reads ~1.6x what
 * the loop does.  *ref: the best of the loop and sgemv at the run's count:
 * the measured DRAM bandwidth that decode shares are taken of. */
static int measure_membw(const bs_opts_t *o, int passes, bs_bw_t *bw) {
    enum { COLS = 2048 };
    size_t bytes = (size_t)(o->membw_gb * 1073741824.0);
    float *buf = bl_membw_buffer(bytes), *x = calloc(COLS, sizeof *x);
    int rows = (int)(bytes / sizeof(float) / COLS);
    float *y = malloc((size_t)rows * sizeof *y);
    if (!buf || !x || !y) {
        fprintf(stderr, "bench_stage: out of memory for the bandwidth buffer\n");
        bl_membw_free(&buf, bytes), free(x), free(y);
        return -1;
    }
    bl_membw_t x1 = bl_membw_measure(buf, bytes, 1, passes), x2 = bl_membw_measure(buf, bytes, 2, passes);
    bw->loop1 = x1.gbps, bw->loop2 = x2.gbps;
    bw->loop = o->threads == 1 ? x1.gbps : o->threads == 2 ? x2.gbps
                                                             : bl_membw_measure(buf, bytes, o->threads, passes).gbps;
    for (int i = 0; i < COLS; i++) x[i] = 1.0f / COLS;
    bw->sgemv = 0;
    for (int p = 0; p < passes + 1; p++) { /* the first pass also warms OpenBLAS up */
        double t0 = bl_now();
        ifp_sgemm(0, 1, 1, rows, COLS, 1.0f, x, COLS, buf, COLS, 0.0f, y, rows);
        double g = (double)rows * COLS * sizeof(float) / (bl_now() - t0) / 1e9;
        if (p && g > bw->sgemv) bw->sgemv = g;
    }
    bw->ref = bw->loop > bw->sgemv ? bw->loop : bw->sgemv;
    bl_membw_free(&buf, bytes), free(x), free(y);
    return 0;
}

/* ---- options and main ----------------------------------------------------------------------- */

/* 1 if the comma-separated list has item. */
static int listed(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n])) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_stage [--quick] [--types L] [--shapes L] [--layers N] [--rounds R] [--threads T]\n"
            "                   [--csv PATH]\n"
            "       bench_stage --model FILE.gguf [--threads T] [--prompt P] [--gen N] [--reps R]\n"
            "  --types L    weight types, comma-separated: f32,f16,bf16,q8_0 (default f32,bf16,q8_0); the\n"
            "               reference type of the unsuffixed headline keys and of the A/A check is f32\n"
            "               when listed, else the first\n"
            "  --shapes L   base shapes, comma-separated, of 3b,6b,9b,12b (default all; quick 3b,9b); the\n"
            "               dense-3b references are always measured; the headline lacks the keys of the\n"
            "               shapes left out\n"
            "  --layers N   layers per stage, 1..56 (default 2; quick 1)\n"
            "  --rounds R   interleaved rounds per set, 1..20 (default 5; quick 3); --runs is the same\n"
            "  --threads T  OpenBLAS threads, 1..64 (default 1)\n"
            "  --quick      about a minute with bandwidth-bound kernels: shapes 3b,9b, 1 layer, prefill P = 64,\n"
            "               64 cached positions, per round and batch the fastest of steps reading ~0.2 G\n"
            "               parameters in all (at most 8/4/2 steps at batch 1/4/16); full run: P = 128,\n"
            "               512 cached positions, ~0.8 G parameters (at most 16/8/4 steps)\n"
            "  --csv PATH   results (default %s; PATH_types.csv and PATH_summary.csv next to it)\n"
            "  --model FILE measure a GGUF model as llama-bench does: prefill of P tokens (default 512) and\n"
            "               N generated tokens at batch 1 from an empty context (default 128), R repetitions\n"
            "               after a warm-up (default 1); prints peer_* headline keys\n",
            BS_DEFAULT_CSV);
}

static int parse_types(const char *s, bs_opts_t *o) {
    static const char *names[] = {"f32", "f16", "bf16", "q8_0"};
    o->n_types = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ifp_ggml_type_t ty;
        if (ifp_wtype_parse(t, &ty, NULL) || o->n_types >= BS_MAX_TYPES) return -1;
        for (int i = 0; i < o->n_types; i++)
            if (o->types[i] == ty) return -1;
        for (size_t k = 0; k < sizeof names / sizeof *names; k++)
            if (!strcmp(t, names[k])) o->type_names[o->n_types] = names[k];
        o->types[o->n_types++] = ty;
    }
    o->ref = 0;
    for (int i = 0; i < o->n_types; i++)
        if (o->types[i] == IFP_GGML_F32) o->ref = i;
    return o->n_types ? 0 : -1;
}

static int parse_args(int argc, char **argv, bs_opts_t *o) {
    int layers = 0, rounds = 0;
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->csv = BS_DEFAULT_CSV;
    o->peer_prompt = 512, o->peer_gen = 128, o->peer_reps = 1;
    const char *types = "f32,bf16,q8_0";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
            continue;
        }
        int bad = !v || !*v;
        if (!strcmp(a, "--layers")) bad = bad || bl_parse_int(v, 1, IFP_SYNTH_LAYERS, &layers);
        else if (!strcmp(a, "--threads")) bad = bad || bl_parse_int(v, 1, 64, &o->threads);
        else if (!strcmp(a, "--rounds") || !strcmp(a, "--runs")) bad = bad || bl_parse_int(v, 1, 20, &rounds);
        else if (!strcmp(a, "--prompt")) bad = bad || bl_parse_int(v, 1, 8192, &o->peer_prompt);
        else if (!strcmp(a, "--gen")) bad = bad || bl_parse_int(v, 1, 8192, &o->peer_gen);
        else if (!strcmp(a, "--reps")) bad = bad || bl_parse_int(v, 1, 64, &o->peer_reps);
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--types")) types = v;
        else if (!strcmp(a, "--shapes")) {
            o->shapes = v;
            for (char *p = (char *)v; !bad && *p;) { /* every item a known shape */
                size_t k = strcspn(p, ",");
                char item[8] = "";
                if (k < sizeof item) memcpy(item, p, k), item[k] = '\0';
                bad = k >= sizeof item || !ifp_synth_shape_find(item);
                p += k + (p[k] == ',');
            }
        } else {
            fprintf(stderr, "bench_stage: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_stage: %s: bad value '%s' (see --help)\n", a, v ? v : "");
            return 2;
        }
        i++;
    }
    if (types && parse_types(types, o)) {
        fprintf(stderr, "bench_stage: --types: expected distinct f32, f16, bf16, q8_0, comma-separated; got '%s'\n",
                types);
        return 2;
    }
    if (!o->shapes && o->quick) o->shapes = "3b,9b";
    o->layers = layers ? layers : o->quick ? 1 : 2;
    o->plan.rounds = rounds ? rounds : o->quick ? 3 : 5;
    o->plan.prompt = o->quick ? 64 : 128;
    o->plan.prefill_runs = 2;
    o->prefix = o->quick ? 64 : 512;
    int q[SM_N_BATCH] = {8, 4, 2}, f[SM_N_BATCH] = {16, 8, 4};
    memcpy(o->plan.max_steps, o->quick ? q : f, sizeof o->plan.max_steps);
    o->plan.run_params = o->quick ? 0.2e9 : 0.8e9;
    o->membw_gb = 1.0;
    return 0;
}

int main(int argc, char **argv) {
    bs_opts_t o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : 2;
    ifp_blas_threads(o.threads);
    int got = ifp_blas_threads(0);
    if (got != o.threads) fprintf(stderr, "warning: asked OpenBLAS for %d threads, it runs %d\n", o.threads, got);
    if (o.model) return bs_peer_main(o.model, o.threads, o.peer_prompt, o.peer_gen, o.peer_reps);
    static bs_results_t res;
    double t0 = bl_now();
    bs_print_facts(stdout, "machine: ");
    bl_print_machine(stdout);
    res.l3_gb = bs_l3_gb();
    /* DRAM read bandwidth: 1 and 2 threads, and the run's count; measured
     * again at the end (other work on the machine comes and goes) */
    int passes = o.quick ? 2 : 3;
    if (measure_membw(&o, passes, &res.bw_start)) return 1;
    printf("DRAM read bandwidth (%.2f GB buffer, best of %d passes x 1-16 streams): %.2f GB/s at 1 thread, "
           "%.2f GB/s at 2 threads; OpenBLAS sgemv over the same buffer: %.2f GB/s at %d thread%s\n",
           o.membw_gb * 1.073741824, passes, res.bw_start.loop1, res.bw_start.loop2, res.bw_start.sgemv, o.threads,
           o.threads > 1 ? "s" : "");
    fflush(stdout);
    ifp_err_t err = {0};
    bs_refs_t ref;
    memset(&ref, 0, sizeof ref);
    int rc = build_refs(&o, &ref, &res, &err), sets = 0;
    for (int i = 1; i < ifp_synth_n_shapes() && !rc; i++) { /* shape 0 is 3b: the references */
        const char *shape = ifp_synth_shape_at(i)->name;
        if (o.shapes && !listed(o.shapes, shape)) continue;
        rc = run_set(&o, shape, &ref, &res, &err);
        sets++;
    }
    if (!rc && !sets) rc = run_set(&o, NULL, &ref, &res, &err);
    for (int i = 0; i < res.n; i++) res.m[i].e.m = NULL, res.m[i].e.s = NULL;
    sr_free(&ref.s);
    for (int ti = 0; ti < BS_MAX_TYPES; ti++) ifp_model_free(&ref.m[ti]);
    if (rc) {
        fprintf(stderr, "bench_stage: %s\n", err.msg[0] ? err.msg : ifp_strerror(rc));
        return 1;
    }
    if (measure_membw(&o, passes, &res.bw_end)) return 1;
    res.membw = res.bw_start.ref > res.bw_end.ref ? res.bw_start.ref : res.bw_end.ref;
    printf("DRAM read bandwidth at %d thread%s (the better of bench/membw's loop and sgemv): %.2f GB/s at the start "
           "(loop %.2f, sgemv %.2f), %.2f GB/s at the end (loop %.2f, sgemv %.2f); decode compares with the better, "
           "%.2f GB/s\n", o.threads, o.threads > 1 ? "s" : "", res.bw_start.ref, res.bw_start.loop, res.bw_start.sgemv,
           res.bw_end.ref, res.bw_end.loop, res.bw_end.sgemv, res.membw);
    return bs_report(&res, &o, t0) ? 1 : 0;
}
