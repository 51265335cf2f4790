/* steptab.c — per-layer micro-batch step times at the paper shapes: read
 * from bench_stage's CSV or, without one, a roofline of this machine class.
 *
 * CSV schema read (columns found by header name; others are ignored):
 *   FFN width held by the stage: ffn_per_layer | ffn | ffn_width | width | d_ffn | ffn_kept
 *   layers in the stage:         layers | n_layers
 *   phase:                       prefill | decode
 *   batch:                       sequences in a decode step (prefill: 1)
 *   throughput:                  tokens_per_s | tok_per_s | tps
 *   prompt tokens (optional):    prompt | prompt_tokens | prefill_tokens, else tokens_per_s x
 *                                ms_per_step of the prefill row, else 512
 *   compaction (optional):       compact_ms_per_layer (mean of the rows > 0 -> t->compact_ms_layer)
 * This is the schema of bench_stage's bench/results/stage.csv.
 *   threads (optional):          only the rows of the largest count are used
 * A decode row gives the point (rows = batch, ms = batch / tps / layers); a
 * prefill row (rows = prompt, ms = prompt / tps / layers).  Points of the same
 * width and rows are averaged. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"

#define ST_D_MODEL 2048.0
#define ST_ATTN_PARAMS (2.0 * 2048 * 2048 + 2.0 * 256 * 2048) /* wq, wo + wk, wv (2 kv heads of 128) */

int sim_shape_dims(const char *shape, int *d_ffn, int *keep) {
    static const struct { const char *name; int d_ffn; } S[] = {{"6b", 16384}, {"9b", 24576}, {"12b", 32768}};
    for (size_t i = 0; i < sizeof S / sizeof *S; i++)
        if (!strcasecmp(shape, S[i].name)) {
            *d_ffn = S[i].d_ffn, *keep = 6656;
            return 0;
        }
    return -1;
}

/* Value of a piecewise-linear curve at x (linear extrapolation at both ends,
 * floored at 1% of the nearest point). */
static double curve_at(const sim_curve_t *c, double x) {
    if (c->n == 1) return c->ms[0] * (x > c->rows[0] ? x / c->rows[0] : 1.0);
    int j = 1;
    while (j < c->n - 1 && x > c->rows[j]) j++;
    double x0 = c->rows[j - 1], x1 = c->rows[j], y0 = c->ms[j - 1], y1 = c->ms[j];
    double y = y0 + (y1 - y0) * (x - x0) / (x1 - x0), floor = 0.01 * (x < x0 ? y0 : y1);
    return y > floor ? y : floor;
}

double sim_step_ms(const sim_steptab_t *t, double width, double rows) {
    if (t->n_width == 1) return curve_at(&t->c[0], rows);
    int i = 1;
    while (i < t->n_width - 1 && width > t->c[i].width) i++;
    const sim_curve_t *a = &t->c[i - 1], *b = &t->c[i];
    double ya = curve_at(a, rows), yb = curve_at(b, rows);
    double y = ya + (yb - ya) * (width - a->width) / (b->width - a->width), floor = 0.01 * (ya < yb ? ya : yb);
    return y > floor ? y : floor;
}

double sim_scale_width(const sim_steptab_t *st, double mean_kept, int keep_src, int d_ffn_src) {
    if (d_ffn_src <= keep_src) return st->d_ffn;
    double f = (mean_kept - keep_src) / (double)(d_ffn_src - keep_src);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return st->keep + f * (st->d_ffn - st->keep);
}

int sim_steptab_roofline(sim_steptab_t *t, const char *shape, double gbps, double gflops) {
    memset(t, 0, sizeof *t);
    if (sim_shape_dims(shape, &t->d_ffn, &t->keep) || gbps <= 0 || gflops <= 0) return -1;
    static const double ROWS[] = {1, 4, 16, 64, 256, 512, 1024};
    double widths[] = {t->keep, 1.25 * t->keep, 1.5 * t->keep, 2.0 * t->keep, t->d_ffn};
    for (int i = 0; i < 5; i++) {
        sim_curve_t *c = &t->c[t->n_width++];
        c->width = widths[i];
        double params = ST_ATTN_PARAMS + 3.0 * ST_D_MODEL * widths[i];
        for (int j = 0; j < 7; j++) {
            double mem = 4.0 * params / (gbps * 1e9), flop = 2.0 * params * ROWS[j] / (gflops * 1e9);
            c->rows[j] = ROWS[j];
            c->ms[j] = 1e3 * (mem > flop ? mem : flop);
        }
        c->n = 7;
    }
    snprintf(t->source, sizeof t->source, "built-in roofline (f32 weights, %.0f GB/s, %.0f GFLOP/s)", gbps, gflops);
    return 0;
}

/* Index of the first header name in names[] (NULL-terminated), -1 if none. */
static int column(char **hdr, int n, const char *const *names) {
    for (int k = 0; names[k]; k++)
        for (int i = 0; i < n; i++)
            if (!strcasecmp(hdr[i], names[k])) return i;
    return -1;
}

static int split(char *line, char **f, int cap) {
    int n = 0;
    for (char *s = line; n < cap;) {
        f[n++] = s;
        char *c = strchr(s, ',');
        if (!c) break;
        *c = '\0', s = c + 1;
    }
    for (int i = 0; i < n; i++) { /* trim */
        while (isspace((unsigned char)*f[i])) f[i]++;
        for (char *e = f[i] + strlen(f[i]); e > f[i] && isspace((unsigned char)e[-1]);) *--e = '\0';
    }
    return n;
}

/* Adds a point (averaging with an equal one). */
static int add_point(sim_steptab_t *t, double width, double rows, double ms, int *count) {
    int i = 0;
    while (i < t->n_width && t->c[i].width != width) i++;
    if (i == t->n_width) {
        if (t->n_width == SIM_MAX_PTS) return -1;
        int at = 0;
        while (at < t->n_width && t->c[at].width < width) at++;
        memmove(&t->c[at + 1], &t->c[at], (size_t)(t->n_width - at) * sizeof *t->c);
        memmove(&count[(at + 1) * SIM_MAX_PTS], &count[at * SIM_MAX_PTS], (size_t)(t->n_width - at) * SIM_MAX_PTS * sizeof *count);
        memset(&t->c[at], 0, sizeof *t->c);
        memset(&count[at * SIM_MAX_PTS], 0, SIM_MAX_PTS * sizeof *count);
        t->c[at].width = width;
        t->n_width++;
        i = at;
    }
    sim_curve_t *c = &t->c[i];
    int *cnt = &count[i * SIM_MAX_PTS];
    int j = 0;
    while (j < c->n && c->rows[j] != rows) j++;
    if (j == c->n) {
        if (c->n == SIM_MAX_PTS) return -1;
        int at = 0;
        while (at < c->n && c->rows[at] < rows) at++;
        memmove(&c->rows[at + 1], &c->rows[at], (size_t)(c->n - at) * sizeof *c->rows);
        memmove(&c->ms[at + 1], &c->ms[at], (size_t)(c->n - at) * sizeof *c->ms);
        memmove(&cnt[at + 1], &cnt[at], (size_t)(c->n - at) * sizeof *cnt);
        c->rows[at] = rows, c->ms[at] = 0, cnt[at] = 0;
        c->n++;
        j = at;
    }
    c->ms[j] = (c->ms[j] * cnt[j] + ms) / (cnt[j] + 1);
    cnt[j]++;
    return 0;
}

int sim_steptab_load(sim_steptab_t *t, const char *path, const char *shape, ifp_err_t *err) {
    memset(t, 0, sizeof *t);
    if (sim_shape_dims(shape, &t->d_ffn, &t->keep)) return ifp_errf(err, IFP_EINVAL, "unknown shape '%s'", shape);
    FILE *f = fopen(path, "r");
    if (!f) return ifp_errf(err, IFP_ENOTFOUND, "%s: cannot open", path);
    static const char *const W[] = {"ffn_per_layer", "ffn", "ffn_width", "width", "d_ffn", "ffn_kept", NULL};
    static const char *const MS[] = {"ms_per_step", NULL};
    static const char *const CM[] = {"compact_ms_per_layer", NULL};
    static const char *const L[] = {"layers", "n_layers", NULL};
    static const char *const PH[] = {"phase", NULL};
    static const char *const B[] = {"batch", NULL};
    static const char *const TPS[] = {"tokens_per_s", "tok_per_s", "tps", NULL};
    static const char *const PR[] = {"prompt", "prompt_tokens", "prefill_tokens", NULL};
    static const char *const TH[] = {"threads", NULL};
    char line[4096], hline[4096], *hdr[64], *fld[64];
    int rc = IFP_OK, nh = 0, cw = -1, cl = -1, cp = -1, cb = -1, ct = -1, cpr = -1, cth = -1, cms = -1, ccm = -1;
    int max_th = 0, pass, n_cm = 0;
    double sum_cm = 0;
    int *count = calloc(SIM_MAX_PTS * SIM_MAX_PTS, sizeof *count);
    if (!count) {
        fclose(f);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    for (pass = 0; pass < 2 && rc == IFP_OK; pass++) { /* pass 0: the largest thread count; 1: the points */
        rewind(f);
        if (!fgets(hline, sizeof hline, f)) {
            rc = ifp_errf(err, IFP_EFORMAT, "%s: empty", path);
            break;
        }
        hline[strcspn(hline, "\r\n")] = '\0';
        nh = split(hline, hdr, 64);
        cw = column(hdr, nh, W), cl = column(hdr, nh, L), cp = column(hdr, nh, PH), cb = column(hdr, nh, B);
        ct = column(hdr, nh, TPS), cpr = column(hdr, nh, PR), cth = column(hdr, nh, TH);
        cms = column(hdr, nh, MS), ccm = column(hdr, nh, CM);
        if (cw < 0 || cl < 0 || cp < 0 || cb < 0 || ct < 0) {
            rc = ifp_errf(err, IFP_EFORMAT, "%s: needs columns for the FFN width, layers, phase, batch and tokens/s",
                          path);
            break;
        }
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            int n = split(line, fld, 64);
            if (n < nh) continue;
            int th = cth >= 0 ? atoi(fld[cth]) : 0;
            if (pass == 0) {
                if (th > max_th) max_th = th;
                continue;
            }
            double width = atof(fld[cw]), layers = atof(fld[cl]), batch = atof(fld[cb]), tps = atof(fld[ct]);
            double prompt = cpr >= 0 ? atof(fld[cpr]) : cms >= 0 ? round(tps * atof(fld[cms]) / 1e3) : 512;
            if (th != max_th || width <= 0 || layers <= 0 || tps <= 0) continue;
            if (ccm >= 0 && atof(fld[ccm]) > 0) sum_cm += atof(fld[ccm]), n_cm++;
            double rows = !strcasecmp(fld[cp], "prefill") ? prompt : !strcasecmp(fld[cp], "decode") ? batch : 0;
            if (rows <= 0) continue;
            if (add_point(t, width, rows, 1e3 * rows / tps / layers, count)) {
                rc = ifp_errf(err, IFP_ERANGE, "%s: more than %d widths or row counts", path, SIM_MAX_PTS);
                break;
            }
        }
    }
    fclose(f);
    free(count);
    if (n_cm) t->compact_ms_layer = sum_cm / n_cm;
    if (rc == IFP_OK && t->n_width < 2) /* one width cannot tell a union's cost from the dense one */
        rc = ifp_errf(err, IFP_EFORMAT, "%s: rows of at least two FFN widths needed, found %d", path, t->n_width);
    if (rc == IFP_OK && max_th)
        snprintf(t->source, sizeof t->source, "%s (%d FFN widths, %d threads)", path, t->n_width, max_th);
    else if (rc == IFP_OK)
        snprintf(t->source, sizeof t->source, "%s (%d FFN widths)", path, t->n_width);
    return rc;
}
