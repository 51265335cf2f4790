/* bench_sim — routing policies and a hot-cluster rebalancer in a simulated
 * datacenter (sim.h): throughput, p99 TTFT and the share of requests served
 * exactly, against offered load.
 *
 * Inputs, computed once per run: the ifp-mix predictor's masks for every
 * calibration prompt (bench/sim/workload.h), clustered by k-medoids into
 * --k clusters (core/cluster.h); requests draw from that pool (their masks,
 * prompt and answer lengths; prompt-only examples get the mean answer
 * length).  Step times: bench_stage's CSV (--stage-csv, default
 * bench/results/stage.csv) if it is usable, else the built-in roofline.
 *
 * Offered load is given as multiples (--loads) of the all-dense deployment's
 * estimated capacity: groups x slots / (mean answer x P x stage time of a
 * dense micro-batch of slots/P rows) requests per second.  For each load it
 * runs: affinity, round-robin, least-loaded, dense-only (every group dense),
 * and affinity with the rebalancer.  Output: a table, CSV (--csv), and one
 * headline line of key=value at the largest load.  Deterministic by --seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"
#include "workload.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#define BS_MODELS IFP_SOURCE_DIR "/models/ifp-mix/"
#define BS_MAX_LOADS 8

typedef struct {
    const char *model, *predictor, *calib, *stage_csv, *shape, *csv;
    int k, budget, roofline, compact_set;
    double loads[BS_MAX_LOADS];
    int n_loads;
    sim_params_t sp;
} bs_args_t;

typedef struct {
    const char *name;
    rt_policy_t policy;
    int rebalance;
} bs_scenario_t;

static const bs_scenario_t SCEN[] = {{"affinity", RT_POLICY_AFFINITY, 0},
                                     {"round-robin", RT_POLICY_ROUND_ROBIN, 0},
                                     {"least-loaded", RT_POLICY_LEAST_LOADED, 0},
                                     {"dense-only", RT_POLICY_DENSE_ONLY, 0},
                                     {"affinity+rebalance", RT_POLICY_AFFINITY, 1}};
#define BS_NSCEN (int)(sizeof SCEN / sizeof *SCEN)

static void usage(void) {
    sim_params_t d = sim_default_params();
    printf("usage: bench_sim [options]\n"
           "  --groups N --stages P --slots S --cell N   deployment (default %d x %d stages, %d slots, cells of %d)\n"
           "  --dense-frac F      share of dense groups per cell (default %.2f)\n"
           "  --loads a,b,...     offered load, x the all-dense capacity (default 0.5,1,1.5,2)\n"
           "  --duration S        simulated arrival window, s (default %.0f)\n"
           "  --shift-s S --hot-factor F   hot-spot phase length (default duration/4; 0 = none), factor (x%.0f)\n"
           "  --k K --budget B    clusters of the calibration masks, union budget per layer (default 8, 0)\n"
           "  --shape 6b|9b|12b   paper shape of the step times (default 9b)\n"
           "  --stage-csv FILE    bench_stage results (default bench/results/stage.csv); --roofline 1 ignores it\n"
           "  --compact-ms MS --rebalance-ms MS --rebalance-ratio R   the rebalancer (default %.0f, %.0f, %.1f)\n"
           "  --fail-groups N --fail-at S   groups that die at S seconds (default 0)\n"
           "  --len-scale F --min-coverage C --queue-max N --net-ms MS --seed S\n"
           "  --csv FILE          write one row per scenario and load\n",
           d.groups, d.stages, d.slots, d.cell_size, d.dense_frac, d.duration_s, d.hot_factor, d.compact_ms,
           d.rebalance_ms, d.rebalance_ratio);
}

static int parse_loads(const char *s, bs_args_t *a) {
    a->n_loads = 0;
    for (char *end; *s && a->n_loads < BS_MAX_LOADS; s = *end == ',' ? end + 1 : end) {
        double x = strtod(s, &end);
        if (end == s || !(x > 0) || (*end && *end != ',')) return -1;
        a->loads[a->n_loads++] = x;
    }
    return a->n_loads ? 0 : -1;
}

static int parse_args(int argc, char **argv, bs_args_t *a) {
    *a = (bs_args_t){.model = BS_MODELS "ifp-mix.gguf", .predictor = BS_MODELS "ifp-mix-predictor.gguf",
                     .calib = IFP_SOURCE_DIR "/data/ifp-mix/calib.jsonl",
                     .stage_csv = IFP_SOURCE_DIR "/bench/results/stage.csv", .shape = "9b", .k = 8,
                     .loads = {0.5, 1, 1.5, 2}, .n_loads = 4, .sp = sim_default_params()};
    sim_params_t *p = &a->sp;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) return usage(), 1;
        if (!v) return fprintf(stderr, "bench_sim: %s needs a value\n", k), -1;
        i++;
        char *end;
        double x = strtod(v, &end);
        int num = end != v && !*end;
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--predictor")) a->predictor = v;
        else if (!strcmp(k, "--calib")) a->calib = v;
        else if (!strcmp(k, "--stage-csv")) a->stage_csv = v;
        else if (!strcmp(k, "--shape")) a->shape = v;
        else if (!strcmp(k, "--csv")) a->csv = v;
        else if (!strcmp(k, "--loads")) {
            if (parse_loads(v, a)) return fprintf(stderr, "bench_sim: --loads: positive numbers a,b,...\n"), -1;
        } else if (!num || x < 0) return fprintf(stderr, "bench_sim: %s: expected a number >= 0, got '%s'\n", k, v), -1;
        else if (!strcmp(k, "--groups")) p->groups = (int)x;
        else if (!strcmp(k, "--stages")) p->stages = (int)x;
        else if (!strcmp(k, "--slots")) p->slots = (int)x;
        else if (!strcmp(k, "--cell")) p->cell_size = (int)x;
        else if (!strcmp(k, "--layers")) p->layers = (int)x;
        else if (!strcmp(k, "--max-prefill")) p->max_prefill = (int)x;
        else if (!strcmp(k, "--dense-frac")) p->dense_frac = x;
        else if (!strcmp(k, "--duration")) p->duration_s = x;
        else if (!strcmp(k, "--shift-s")) p->shift_s = x;
        else if (!strcmp(k, "--hot-factor")) p->hot_factor = x;
        else if (!strcmp(k, "--len-scale")) p->len_scale = x;
        else if (!strcmp(k, "--min-coverage")) p->min_coverage = x;
        else if (!strcmp(k, "--queue-max")) p->queue_max = (int)x;
        else if (!strcmp(k, "--net-ms")) p->net_ms = x;
        else if (!strcmp(k, "--compact-ms")) p->compact_ms = x, a->compact_set = 1;
        else if (!strcmp(k, "--rebalance-ms")) p->rebalance_ms = x;
        else if (!strcmp(k, "--rebalance-ratio")) p->rebalance_ratio = x;
        else if (!strcmp(k, "--fail-groups")) p->fail_groups = (int)x;
        else if (!strcmp(k, "--fail-at")) p->fail_at_s = x;
        else if (!strcmp(k, "--seed")) p->seed = (uint64_t)x;
        else if (!strcmp(k, "--k")) a->k = (int)x;
        else if (!strcmp(k, "--budget")) a->budget = (int)x;
        else if (!strcmp(k, "--roofline")) a->roofline = x != 0;
        else return fprintf(stderr, "bench_sim: unknown option %s (see --help)\n", k), -1;
    }
    return 0;
}

/* Requests per second the deployment would serve if every group were dense
 * and always full: each group finishes slots requests every mean_answer
 * pipeline rounds of P stage steps at slots/P rows. */
static double dense_capacity(const sim_params_t *p, const sim_steptab_t *st, double mean_answer) {
    double rows = ceil((double)p->slots / p->stages);
    double round_ms = p->stages * sim_step_ms(st, st->d_ffn, rows) * p->layers / p->stages;
    return p->groups * (double)p->slots / (mean_answer * p->len_scale * round_ms / 1e3);
}

int main(int argc, char **argv) {
    bs_args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    ifp_err_t err = {0};
    sim_steptab_t st;
    if (a.roofline || sim_steptab_load(&st, a.stage_csv, a.shape, &err)) {
        if (!a.roofline) fprintf(stderr, "bench_sim: no usable stage CSV (%s): using the roofline table\n", err.msg);
        if (sim_steptab_roofline(&st, a.shape, 20, 150)) {
            fprintf(stderr, "bench_sim: --shape: 6b, 9b or 12b\n");
            return 2;
        }
    }
    if (!a.compact_set && st.compact_ms_layer > 0) /* stages compact their layers in parallel */
        a.sp.compact_ms = st.compact_ms_layer * a.sp.layers / a.sp.stages;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    wl_workload_t *w = NULL;
    if (wl_load(a.model, a.predictor, a.calib, NULL, &w, &err) || wl_cluster(w, a.k, a.sp.seed, a.budget, &err)) {
        fprintf(stderr, "bench_sim: %s\n", err.msg);
        wl_destroy(&w);
        return 1;
    }
    /* the pool */
    const ifp_mask_t **mask = malloc((size_t)w->n * sizeof *mask);
    int *pt = malloc((size_t)w->n * sizeof *pt), *at = malloc((size_t)w->n * sizeof *at),
        *dom = malloc((size_t)w->n * sizeof *dom), *near = malloc((size_t)w->n * sizeof *near);
    FILE *csv = a.csv ? fopen(a.csv, "w") : NULL;
    int status = 1;
    if (!mask || !pt || !at || !dom || !near || (a.csv && !csv)) {
        fprintf(stderr, "bench_sim: %s\n", a.csv && !csv ? "cannot write the CSV" : "out of memory");
        goto done;
    }
    double sum_ans = 0;
    int n_ans = 0;
    for (int i = 0; i < w->n; i++)
        if (w->ex[i].answer_tokens > 0) sum_ans += w->ex[i].answer_tokens, n_ans++;
    double mean_ans = n_ans ? sum_ans / n_ans : 64;
    for (int i = 0; i < w->n; i++) {
        mask[i] = w->ex[i].mask, pt[i] = w->ex[i].prompt_tokens, dom[i] = w->ex[i].domain, near[i] = w->ex[i].nearest;
        at[i] = w->ex[i].answer_tokens > 0 ? w->ex[i].answer_tokens : (int)lround(mean_ans);
    }
    sim_pool_t pool = {.n = w->n, .mask = mask, .prompt_tokens = pt, .answer_tokens = at, .domain = dom,
                       .nearest = near, .n_domains = w->n_domains, .table = w->table};
    double cap = dense_capacity(&a.sp, &st, mean_ans);
    printf("bench_sim: %d groups x %d stages x %d slots in cells of %d, shape %s (%d layers), %d pool masks in %d "
           "clusters (k-medoids), steps from %s\n",
           a.sp.groups, a.sp.stages, a.sp.slots, a.sp.cell_size, a.shape, a.sp.layers, w->n, w->table->n_clusters,
           st.source);
    printf("compaction %.0f ms per reload; dense capacity estimate %.1f req/s; union widths at %s:", a.sp.compact_ms, cap,
           a.shape);
    for (int k = 0; k < w->table->n_clusters; k++)
        printf(" %.0f", sim_scale_width(&st, ifp_mask_total(w->table->c[k].uni) / (double)w->n_layers, w->keep, w->d_ffn));
    printf(" (K %d, dense %d)\n\n", st.keep, st.d_ffn);
    printf("%-19s %5s %8s %9s %8s %9s %9s %9s %6s %6s %6s %6s %5s %6s\n", "scenario", "load", "rate", "tok/s", "req/s",
           "ttft_p50", "ttft_p99", "tpot_p50", "exact", "compct", "dense", "reject", "moves", "wall_s");
    if (csv)
        fprintf(csv, "scenario,policy,rebalance,load,rate,groups,stages,slots,arrivals,completed,rejected,failed,"
                     "unfinished,tokens_per_s,req_per_s,ttft_p50_ms,ttft_p95_ms,ttft_p99_ms,tpot_p50_ms,tpot_p99_ms,"
                     "e2e_p50_ms,e2e_p99_ms,exact_share,compact_share,dense_share,mean_coverage,mean_width,"
                     "recompactions,replays,spills,events,wall_s\n");
    sim_result_t head[BS_NSCEN];
    long events = 0;
    for (int li = 0; li < a.n_loads; li++)
        for (int si = 0; si < BS_NSCEN; si++) {
            sim_params_t p = a.sp;
            p.policy = SCEN[si].policy;
            p.rebalance = SCEN[si].rebalance;
            p.rate = a.loads[li] * cap;
            sim_result_t r;
            double c0 = (double)clock() / CLOCKS_PER_SEC;
            if (sim_run(&p, &pool, &st, &r, &err)) {
                fprintf(stderr, "bench_sim: %s: %s\n", SCEN[si].name, err.msg);
                goto done;
            }
            double wall = (double)clock() / CLOCKS_PER_SEC - c0;
            events += r.events;
            printf("%-19s %5.2f %8.1f %9.0f %8.2f %9.1f %9.1f %9.2f %6.3f %6.3f %6.3f %6ld %5ld %6.2f\n", SCEN[si].name,
                   a.loads[li], p.rate, r.tps, r.rps, r.ttft[0], r.ttft[2], r.tpot[0], r.exact_share, r.compact_share,
                   r.dense_share, r.rejected, r.recompactions, wall);
            if (csv)
                fprintf(csv, "%s,%s,%d,%g,%.3f,%d,%d,%d,%ld,%ld,%ld,%ld,%ld,%.1f,%.3f,%.2f,%.2f,%.2f,%.3f,%.3f,%.1f,%.1f,"
                             "%.4f,%.4f,%.4f,%.4f,%.0f,%ld,%ld,%ld,%ld,%.3f\n",
                        SCEN[si].name, rt_policy_name(p.policy), p.rebalance, a.loads[li], p.rate, p.groups, p.stages,
                        p.slots, r.arrivals, r.completed, r.rejected, r.failed, r.unfinished, r.tps, r.rps, r.ttft[0],
                        r.ttft[1], r.ttft[2], r.tpot[0], r.tpot[2], r.e2e[0], r.e2e[2], r.exact_share, r.compact_share,
                        r.dense_share, r.mean_coverage, r.mean_width, r.recompactions, r.replays, r.spills, r.events,
                        wall);
            if (li == a.n_loads - 1) head[si] = r;
        }
    double total = (double)clock() / CLOCKS_PER_SEC - t0;
    printf("\nsim_groups=%d sim_load=%g affinity_tps=%.0f rr_tps=%.0f ll_tps=%.0f dense_only_tps=%.0f "
           "rebalance_tps=%.0f affinity_p99_ttft_ms=%.1f rr_p99_ttft_ms=%.1f dense_only_p99_ttft_ms=%.1f "
           "rebalance_p99_ttft_ms=%.1f affinity_exact_share=%.3f affinity_compact_share=%.3f "
           "rebalance_compact_share=%.3f affinity_vs_dense_tps=%.2f events=%ld cpu_s=%.1f\n",
           a.sp.groups, a.loads[a.n_loads - 1], head[0].tps, head[1].tps, head[2].tps, head[3].tps, head[4].tps,
           head[0].ttft[2], head[1].ttft[2], head[3].ttft[2], head[4].ttft[2], head[0].exact_share,
           head[0].compact_share, head[4].compact_share, head[3].tps > 0 ? head[0].tps / head[3].tps : 0, events, total);
    status = 0;
done:
    if (csv) fclose(csv);
    free(mask), free(pt), free(at), free(dom), free(near);
    wl_destroy(&w);
    return status;
}
