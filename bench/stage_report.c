#include "stage_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "kernels.h"
#include "synth.h"
#include "wmat.h"

/* Every type a column group of the summary CSV has, whether measured or not. */
static const char *const bs_all_types[] = {"f32", "f16", "bf16", "q8_0"};
enum { BS_N_ALL_TYPES = 4, BS_MAX_PAIRS = 4 * SM_MAX_ROUNDS };

/* ---- facts ------------------------------------------------------------------------------------ */

const char *bs_cpu_name(void) {
    static char name[128];
    if (name[0]) return name;
    snprintf(name, sizeof name, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        for (v++; *v == ' ' || *v == '\t'; v++) {}
        v[strcspn(v, "\n")] = '\0';
        for (char *e = v + strlen(v); e > v && e[-1] == ' '; e--) e[-1] = '\0';
        snprintf(name, sizeof name, "%s", *v ? v : "unknown");
        break;
    }
    if (f) fclose(f);
    for (char *p = name; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == ',' || *p == '=') *p = '_';
    return name;
}

double bs_l3_gb(void) {
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    long n = 0;
    char unit = 0;
    if (f) {
        if (fscanf(f, "%ld%c", &n, &unit) < 1) n = 0;
        fclose(f);
    }
    double b = unit == 'K' ? (double)n * 1024 : unit == 'M' ? (double)n * 1048576 : (double)n;
    return (b > 0 ? b : (double)bl_l3_bytes()) / 1e9;
}

void bs_print_facts(FILE *f, const char *prefix) {
    fprintf(f, "%scpu=%s isa=%s blas_core=%s\n", prefix, bs_cpu_name(), ifp_isa_name(ifp_isa_get()),
            ifp_blas_corename());
}

/* Appends " key=text" to a headline (bl_head_add takes numbers only). */
static void head_str(bl_headline_t *h, const char *key, const char *text) {
    if (h->len >= sizeof h->text) return;
    int n = snprintf(h->text + h->len, sizeof h->text - h->len, " %s=%s", key, text);
    if (n > 0) h->len += (size_t)n;
}

/* ---- lookups ---------------------------------------------------------------------------------- */

const bs_model_t *bs_find(const bs_results_t *r, const char *key, const char *t) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->m[i].e.key, key) && !strcmp(r->m[i].e.type, t)) return &r->m[i];
    return NULL;
}

static double tok_s(const bs_model_t *m, int kind, const bs_opts_t *o) {
    return sm_median_tok_s(&m->e, kind, o->plan.prompt);
}

/* Weight GB/s of a decode step at batch index bi (the figure: median over rounds of the fastest step). */
static double gbps(const bs_model_t *m, int bi, const bs_opts_t *o) {
    return m->weight_gb * tok_s(m, 1 + bi, o) / sm_batches[bi];
}

/* Median per-round ratio tok/s(a) / tok/s(b) at kind; NAN if either is missing. */
static double ratio(const bs_model_t *a, const bs_model_t *b, int kind, const bs_opts_t *o) {
    return a && b ? sm_ratio(&a->e, kind, &b->e, kind, o->plan.prompt, NULL) : NAN;
}

/* The same model in the reference type (NULL for the reference type itself). */
static const bs_model_t *in_ref_type(const bs_results_t *r, const bs_model_t *m, const bs_opts_t *o) {
    if (!strcmp(m->e.type, o->type_names[o->ref])) return NULL;
    return bs_find(r, m->e.key, o->type_names[o->ref]);
}

/* The median over every A/A pair (each set's copy against the reference). */
static double aa_ratio(const bs_results_t *r, const bs_opts_t *o, int kind, int *pairs) {
    const bs_model_t *a = bs_find(r, "dense3b", o->type_names[o->ref]);
    double v[BS_MAX_PAIRS];
    int n = 0;
    for (int i = 0; a && i < r->n; i++)
        if (!strcmp(r->m[i].e.key, "dense3b_aa"))
            n = sm_ratios(&r->m[i].e, kind, &a->e, kind, o->plan.prompt, v, n, BS_MAX_PAIRS);
    *pairs = n;
    return n ? bl_median(v, n) : NAN;
}

/* ---- table ------------------------------------------------------------------------------------ */

static void print_cell(double v, const char *fmt, int width) {
    if (isfinite(v)) printf(fmt, width, v);
    else printf("%*s", width, "-");
}

static void print_table(const bs_results_t *r, const bs_opts_t *o) {
    const sm_plan_t *p = &o->plan;
    printf("\n%d-layer stages, %d thread%s; prefill P = %d; decode with %d cached positions per sequence; every figure "
           "the median over its interleaved rounds (%d per set) of its fastest run in the round (prefill: %d runs; "
           "decode: single steps, ~%.2g G parameters' worth, at most %d/%d/%d at batch 1/4/16: 'steps' below); "
           "'vs 3b' and 'vs %s': batch-1 decode against dense-3b of the same type / the same model in %s, medians of "
           "per-round ratios\n",
           o->layers, o->threads, o->threads > 1 ? "s" : "", p->prompt, o->prefix, p->rounds, p->prefill_runs,
           p->run_params / 1e9,
           p->max_steps[0], p->max_steps[1], p->max_steps[2], o->type_names[o->ref], o->type_names[o->ref]);
    printf("%-17s %-5s %6s %8s %8s %8s %8s %8s %8s %7s %7s %6s %7s %7s %7s %6s\n", "model", "type", "ffn", "weightGB",
           "prefill", "dec b1", "dec b4", "dec b16", "b1 GB/s", "of DRAM", "vs 3b", "vs ref", "compact", "held GB",
           "RSS GB", "steps");
    printf("%-17s %-5s %6s %8s %8s %8s %8s %8s %8s %7s %7s %6s %7s %7s %7s %6s\n", "", "", "/layer", "/step", "tok/s",
           "tok/s", "tok/s", "tok/s", "", "", "", "", "ms/layer", "", "", "b1/4/16");
    const char *base = NULL;
    for (int i = 0; i < r->n; i++) {
        const bs_model_t *m = &r->m[i];
        if (base && strcmp(base, m->e.base) && strcmp(m->e.kind, "aa")) putchar('\n');
        if (strcmp(m->e.kind, "aa")) base = m->e.base;
        double g = gbps(m, 0, o);
        char steps[24];
        snprintf(steps, sizeof steps, "%d/%d/%d", m->e.steps[0], m->e.steps[1], m->e.steps[2]);
        printf("%-17s %-5s %6d %8.3f", m->e.name, m->e.type, m->ffn, m->weight_gb);
        print_cell(tok_s(m, 0, o), " %*.1f", 8);
        for (int k = 1; k < SM_N_KIND; k++) print_cell(tok_s(m, k, o), " %*.2f", 8);
        print_cell(g, " %*.2f", 8);
        print_cell(100 * g / r->membw, " %*.0f%%", 6);
        print_cell(ratio(m, bs_find(r, "dense3b", m->e.type), 1, o), " %*.3f", 7);
        print_cell(ratio(m, in_ref_type(r, m, o), 1, o), " %*.3f", 6);
        printf(" %7.1f %7.3f %7.2f %6s%s\n", m->compact_ms_layer, m->resident_gb, m->rss_gb, steps,
               m->weight_gb < r->l3_gb ? "  (fits in L3)" : "");
    }
}

/* Full 56-layer and pipeline estimates from the per-layer times, per type. */
static void print_estimates(const bs_results_t *r, const bs_opts_t *o) {
    static const char *keys[] = {"dense3b", "ifp9b3b", "ifp9b_u125", "dense9b", "dense12b", "ifp12b3b"};
    static const int P[] = {1, 4, 14};
    const double link_s = 50e-6, link_Bps = 1.25e9, row_bytes = 2048 * 4; /* 10 GbE, 50 us a message */
    printf("\nestimates for the 56-layer model (per-layer time = stage time / %d):\n", o->layers);
    printf("  TTFT(P=%d) = 56 x prefill per layer;  pipeline of S stages with S micro-batches of B rows in flight:\n"
           "  token latency = 56 x t_layer(B) + S x t_link(B);  throughput = S x B / (56 x t_layer(B) + S x "
           "t_link(B));\n  t_link(B) = 50 us + B x 8 KB / 1.25 GB/s (10 GbE)\n", o->plan.prompt);
    printf("  %-14s %-5s %8s %3s %9s %11s %11s %11s %11s\n", "model", "type", "TTFT s", "B", "ms/layer", "S=1 tok/s",
           "S=4 tok/s", "S=14 tok/s", "S=14 lat ms");
    for (int ti = 0; ti < o->n_types; ti++)
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            const bs_model_t *m = bs_find(r, keys[k], o->type_names[ti]);
            if (!m) continue;
            double ttft = IFP_SYNTH_LAYERS * (o->plan.prompt / tok_s(m, 0, o)) / o->layers;
            for (int bi = 0; bi < SM_N_BATCH; bi++) {
                int B = sm_batches[bi];
                double tl = B / tok_s(m, 1 + bi, o) / o->layers, tput[3], lat = 0;
                for (int q = 0; q < 3; q++) {
                    double tx = P[q] > 1 ? link_s + B * row_bytes / link_Bps : 0;
                    lat = IFP_SYNTH_LAYERS * tl + P[q] * tx;
                    tput[q] = P[q] * B / lat;
                }
                printf("  %-14s %-5s %8.1f %3d %9.2f %11.2f %11.2f %11.2f %11.1f\n", bi ? "" : m->e.name,
                       bi ? "" : m->e.type, ttft, B, tl * 1e3, tput[0], tput[1], tput[2], lat * 1e3);
            }
        }
}

/* ---- CSVs ------------------------------------------------------------------------------------- */

#define BS_CSV_HEADER                                                                                                 \
    "model,kind,base_shape,ffn_per_layer,layers,threads,phase,batch,prompt_tokens,cached_positions,tokens_per_s,"     \
    "ms_per_step,runs,weight_gb_per_step,achieved_gbps,bw_fraction,membw_gbps,compact_ms_per_layer,rss_gb,"           \
    "openblas_core,weight_type,isa,steps_per_run,vs_dense3b,vs_ref_type,resident_gb"

static void csv_rows(bl_csv_t *c, const bs_results_t *r, const bs_opts_t *o, const bs_model_t *m) {
    const char *fmt = "%s,%s,%s,%d,%d,%d,%s,%d,%d,%d,%.3f,%.3f,%d,%.4f,%.3f,%.4f,%.3f,%.2f,%.3f,%s,%s,%s,%d,%.4f,%.4f,"
                      "%.4f";
    const bs_model_t *d3 = bs_find(r, "dense3b", m->e.type), *rt = in_ref_type(r, m, o);
    for (int k = 0; k < SM_N_KIND; k++) {
        double ts = tok_s(m, k, o);
        int B = k ? sm_batches[k - 1] : 1, rows = k ? B : o->plan.prompt;
        double g = k ? m->weight_gb * ts / B : 0;
        bl_csv_row(c, fmt, m->e.name, m->e.kind, m->e.base, m->ffn, o->layers, o->threads, k ? "decode" : "prefill", B,
                   k ? 0 : o->plan.prompt, k ? o->prefix : 0, ts, rows / ts * 1e3, m->e.n_rounds, m->weight_gb, g,
                   g / r->membw, r->membw, m->compact_ms_layer, m->rss_gb, ifp_blas_corename(), m->e.type,
                   ifp_isa_name(ifp_isa_get()), k ? m->e.steps[k - 1] : 1, ratio(m, d3, k, o),
                   rt ? ratio(m, rt, k, o) : 1.0, m->resident_gb);
    }
}

/* PATH.csv -> PATH<suffix>.csv */
static void sibling(char *out, size_t len, const char *csv, const char *suffix) {
    size_t n = strlen(csv);
    int ext = n > 4 && !strcmp(csv + n - 4, ".csv");
    snprintf(out, len, "%.*s%s.csv", (int)(ext ? n - 4 : n), csv, suffix);
}

/* One row per model name, a column group per type (empty where not
 * measured): the plots draw one series per type. */
static int write_summary(const bs_results_t *r, const bs_opts_t *o) {
    char path[4200], hdr[1024] = "model,kind,membw_gbps";
    sibling(path, sizeof path, o->csv, "_summary");
    for (int t = 0; t < BS_N_ALL_TYPES; t++) {
        size_t n = strlen(hdr);
        snprintf(hdr + n, sizeof hdr - n, ",prefill_%s,b1_%s,b4_%s,b16_%s,b1_gbps_%s,b1_share_%s", bs_all_types[t],
                 bs_all_types[t], bs_all_types[t], bs_all_types[t], bs_all_types[t], bs_all_types[t]);
    }
    bl_csv_t c;
    if (bl_csv_open(&c, path, hdr)) return -1;
    for (int i = 0; i < r->n; i++) {
        const bs_model_t *m = &r->m[i];
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= !strcmp(r->m[j].e.name, m->e.name);
        if (seen) continue;
        char row[2048];
        int len = snprintf(row, sizeof row, "%s,%s,%.3f", m->e.name, m->e.kind, r->membw);
        for (int t = 0; t < BS_N_ALL_TYPES; t++) {
            const bs_model_t *x = NULL;
            for (int j = i; j < r->n && !x; j++)
                if (!strcmp(r->m[j].e.name, m->e.name) && !strcmp(r->m[j].e.type, bs_all_types[t])) x = &r->m[j];
            if (!x) {
                len += snprintf(row + len, sizeof row - (size_t)len, ",,,,,,");
                continue;
            }
            double g = gbps(x, 0, o);
            len += snprintf(row + len, sizeof row - (size_t)len, ",%.3f,%.3f,%.3f,%.3f,%.3f,%.4f", tok_s(x, 0, o),
                            tok_s(x, 1, o), tok_s(x, 2, o), tok_s(x, 3, o), g, g / r->membw);
        }
        bl_csv_row(&c, "%s", row);
    }
    return bl_csv_close(&c, 1);
}

static int write_csvs(const bs_results_t *r, const bs_opts_t *o, int *rows) {
    char path[4200];
    sibling(path, sizeof path, o->csv, "_types");
    bl_csv_t ref, all;
    if (bl_csv_open(&ref, o->csv, BS_CSV_HEADER)) return -1;
    if (bl_csv_open(&all, path, BS_CSV_HEADER)) {
        bl_csv_close(&ref, 0);
        return -1;
    }
    for (int i = 0; i < r->n; i++) {
        if (!strcmp(r->m[i].e.type, o->type_names[o->ref])) csv_rows(&ref, r, o, &r->m[i]);
        csv_rows(&all, r, o, &r->m[i]);
    }
    *rows = all.rows;
    int rc = bl_csv_close(&ref, 1) | bl_csv_close(&all, 1);
    return rc | write_summary(r, o);
}

/* ---- headline --------------------------------------------------------------------------------- */

static void head_num(bl_headline_t *h, const char *key, const char *fmt, double v) {
    if (isfinite(v)) bl_head_add(h, key, fmt, v);
}

/* tok/s(a at ka) / tok/s(b at kb), both in type t, median of per-round ratios. */
static void head_ratio(bl_headline_t *h, const bs_results_t *r, const bs_opts_t *o, const char *name, const char *a,
                       const char *b, const char *t, int kind) {
    const bs_model_t *x = bs_find(r, a, t), *y = bs_find(r, b, t);
    head_num(h, name, "%.3f", ratio(x, y, kind, o));
}

/* dense-3b in type t against the reference type, at kind. */
static double type_ratio(const bs_results_t *r, const bs_opts_t *o, const char *t, int kind) {
    return ratio(bs_find(r, "dense3b", t), bs_find(r, "dense3b", o->type_names[o->ref]), kind, o);
}

static void print_headline(const bs_results_t *r, const bs_opts_t *o) {
    bl_headline_t h = {{0}, 0};
    const char *rt = o->type_names[o->ref];
    static const char *shapes[] = {"9b", "6b", "12b"};
    char name[64], a[24], b[24];
    for (int s = 0; s < 3; s++) { /* the reference type: as before the types came */
        snprintf(a, sizeof a, "ifp%s3b", shapes[s]);
        snprintf(name, sizeof name, "ifp%s3b_vs_dense3b", shapes[s]);
        head_ratio(&h, r, o, name, a, "dense3b", rt, 1);
        snprintf(b, sizeof b, "dense%s", shapes[s]);
        snprintf(name, sizeof name, "ifp%s3b_vs_dense%s", shapes[s], shapes[s]);
        head_ratio(&h, r, o, name, a, b, rt, 1);
    }
    head_ratio(&h, r, o, "ifp9b_u125_vs_dense3b", "ifp9b_u125", "dense3b", rt, 1);
    head_ratio(&h, r, o, "ifp9b_u150_vs_dense3b", "ifp9b_u150", "dense3b", rt, 1);
    head_ratio(&h, r, o, "ifp9b3b_b16_vs_dense3b_b16", "ifp9b3b", "dense3b", rt, 3);
    const bs_model_t *d3 = bs_find(r, "dense3b", rt);
    if (d3) {
        head_num(&h, "batch16_vs_batch1", "%.3f", sm_ratio(&d3->e, 3, &d3->e, 1, o->plan.prompt, NULL));
        head_num(&h, "batch4_vs_batch1", "%.3f", sm_ratio(&d3->e, 2, &d3->e, 1, o->plan.prompt, NULL));
        head_num(&h, "decode_bw_fraction", "%.3f", gbps(d3, 0, o) / r->membw);
    }
    double min_frac = INFINITY;
    for (int i = 0; i < r->n; i++)
        if (r->m[i].weight_gb > r->l3_gb && gbps(&r->m[i], 0, o) / r->membw < min_frac)
            min_frac = gbps(&r->m[i], 0, o) / r->membw;
    head_num(&h, "decode_bw_fraction_min", "%.3f", min_frac);
    head_num(&h, "membw_gbps", "%.2f", r->membw);
    head_num(&h, "membw_loop_gbps", "%.2f", r->bw_start.loop > r->bw_end.loop ? r->bw_start.loop : r->bw_end.loop);
    head_num(&h, "membw_sgemv_gbps", "%.2f", r->bw_start.sgemv > r->bw_end.sgemv ? r->bw_start.sgemv : r->bw_end.sgemv);
    if (d3) {
        head_num(&h, "decode_dense3b_b1_tok_s", "%.2f", tok_s(d3, 1, o));
        head_num(&h, "prefill_dense3b_tok_s", "%.1f", tok_s(d3, 0, o));
    }
    head_ratio(&h, r, o, "prefill_ifp9b3b_vs_dense3b", "ifp9b3b", "dense3b", rt, 0);
    const bs_model_t *i9 = bs_find(r, "ifp9b3b", rt);
    if (i9) head_num(&h, "compact_ms_per_layer_9b", "%.1f", i9->compact_ms_layer);
    /* the weight types */
    static const struct { const char *t, *dec, *pre; } tr[] = {
        {"bf16", "bf16_vs_f32_decode", "prefill_bf16_vs_f32"},
        {"q8_0", "q8_vs_f32_decode", "prefill_q8_vs_f32"},
        {"f16", "f16_vs_f32_decode", "prefill_f16_vs_f32"}};
    if (!strcmp(rt, "f32"))
        for (size_t i = 0; i < sizeof tr / sizeof *tr; i++) {
            head_num(&h, tr[i].dec, "%.3f", type_ratio(r, o, tr[i].t, 1));
            head_num(&h, tr[i].pre, "%.3f", type_ratio(r, o, tr[i].t, 0));
        }
    for (int ti = 0; ti < o->n_types; ti++) {
        snprintf(name, sizeof name, "ifp9b_vs_dense3b_%s", o->type_names[ti]);
        head_ratio(&h, r, o, name, "ifp9b3b", "dense3b", o->type_names[ti], 1);
    }
    for (int ti = 0; ti < o->n_types; ti++) {
        const bs_model_t *m = bs_find(r, "dense3b", o->type_names[ti]);
        snprintf(name, sizeof name, "decode_gbps_share_%s", o->type_names[ti]);
        if (m) head_num(&h, name, "%.3f", gbps(m, 0, o) / r->membw);
    }
    int pairs;
    head_num(&h, "aa_ratio", "%.3f", aa_ratio(r, o, 1, &pairs));
    head_num(&h, "rss_peak_gb", "%.2f", bl_vmhwm_gb());
    bl_head_add(&h, "layers", "%.0f", o->layers);
    bl_head_add(&h, "threads", "%.0f", o->threads);
    bl_head_add(&h, "rounds", "%.0f", o->plan.rounds);
    head_str(&h, "cpu", bs_cpu_name());
    head_str(&h, "isa", ifp_isa_name(ifp_isa_get()));
    head_str(&h, "blas_core", ifp_blas_corename());
    bl_head_print(&h);
}

/* The checks and targets, printed (not asserted) above the headline. */
static void print_checks(const bs_results_t *r, const bs_opts_t *o) {
    int pairs;
    double aa = aa_ratio(r, o, 1, &pairs), aap = aa_ratio(r, o, 0, &pairs);
    const char *rt = o->type_names[o->ref];
    printf("\nA/A check: dense-3b-aa / dense-3b (%s, two separately built identical stages, batch-1 decode): %.3f "
           "(median of %d per-round ratios; prefill %.3f)\n", rt, aa, pairs, aap);
    if (!isfinite(aa) || fabs(aa - 1) > 0.05)
        printf("warning: the A/A ratio %.3f is outside 1 +- 5%%: figures of this run differ by more than that for "
               "reasons other than the model (machine load, memory placement); read its ratios with care\n", aa);
    printf("targets (printed, not asserted):");
    if (!strcmp(rt, "f32")) {
        double bf = type_ratio(r, o, "bf16", 1), q8 = type_ratio(r, o, "q8_0", 1);
        if (isfinite(bf)) printf(" bf16_vs_f32_decode %.3f (>= 1.8);", bf);
        if (isfinite(q8)) printf(" q8_vs_f32_decode %.3f (>= 3.0);", q8);
    }
    printf(" ifp9b_vs_dense3b ~1.0:");
    for (int ti = 0; ti < o->n_types; ti++) {
        double v = ratio(bs_find(r, "ifp9b3b", o->type_names[ti]), bs_find(r, "dense3b", o->type_names[ti]), 1, o);
        if (isfinite(v)) printf(" %s %.3f", o->type_names[ti], v);
        else printf(" %s -", o->type_names[ti]);
    }
    printf("\n");
}

int bs_report(const bs_results_t *r, const bs_opts_t *o, double t_start) {
    print_table(r, o);
    print_estimates(r, o);
    int rows = 0, wrc = write_csvs(r, o, &rows);
    double la[3] = {0};
    getloadavg(la, 3);
    char types[4200];
    sibling(types, sizeof types, o->csv, "_types");
    printf("\ncsv: %s (%s rows), %s (%d rows, every type); total %.0f s; load average at the end %.2f (other work on "
           "this machine skews the figures)\n", o->csv, o->type_names[o->ref], types, rows, bl_now() - t_start, la[0]);
    print_checks(r, o);
    bs_print_facts(stdout, "ran on: ");
    print_headline(r, o);
    return wrc ? -1 : 0;
}
