/* bench_membw.c — DRAM read bandwidth: threads summing a buffer far larger
 * than the last-level cache (bl_membw_measure: 1-16 interleaved streams per
 * thread, the best of N passes).  bench_stage measures the same way and
 * compares its decode weight bandwidth with it.
 *
 * Output: one line per thread count, the CSV (threads,gbps,streams,bytes,
 * passes), and a headline line: membw_t1_gbps=.. membw_t2_gbps=.. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"

#ifndef IFP_SOURCE_DIR
#define IFP_SOURCE_DIR "."
#endif
#define BM_DEFAULT_CSV IFP_SOURCE_DIR "/bench/results/membw.csv"
#define BM_MAX_THREADS 8

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_membw [--quick] [--gb G] [--passes N] [--threads LIST] [--csv PATH]\n"
            "  --gb G          buffer size in GiB, 1..16 (default 2; quick 1)\n"
            "  --passes N      passes per stream count, 1..100 (default 5; quick 2)\n"
            "  --threads LIST  comma-separated thread counts, 1..64 each (default 1,2)\n"
            "  --csv PATH      results (default %s)\n",
            BM_DEFAULT_CSV);
}

int main(int argc, char **argv) {
    int gb = 0, passes = 0, quick = 0, threads[BM_MAX_THREADS] = {1, 2}, n_threads = 2;
    const char *csv_path = BM_DEFAULT_CSV;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quick")) {
            quick = 1;
            continue;
        }
        int bad = 0;
        if (!strcmp(a, "--gb")) bad = bl_parse_int(v, 1, 16, &gb);
        else if (!strcmp(a, "--passes")) bad = bl_parse_int(v, 1, 100, &passes);
        else if (!strcmp(a, "--csv")) {
            bad = !*v;
            csv_path = v;
        } else if (!strcmp(a, "--threads")) {
            char buf[256], *save = NULL;
            snprintf(buf, sizeof buf, "%s", v);
            n_threads = 0;
            for (char *t = strtok_r(buf, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save))
                bad = n_threads == BM_MAX_THREADS || bl_parse_int(t, 1, 64, &threads[n_threads++]);
            bad = bad || !n_threads;
        } else {
            fprintf(stderr, "bench_membw: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_membw: %s: bad value '%s' (see --help)\n", a, v);
            return 2;
        }
        i++;
    }
    if (!gb) gb = quick ? 1 : 2;
    if (!passes) passes = quick ? 2 : 5;
    bl_print_machine(stdout);
    size_t bytes = (size_t)gb << 30;
    bl_log("filling %d GiB", gb);
    float *buf = bl_membw_buffer(bytes);
    if (!buf) {
        fprintf(stderr, "bench_membw: out of memory for %d GiB\n", gb);
        return 1;
    }
    bl_csv_t csv;
    if (bl_csv_open(&csv, csv_path, "threads,gbps,streams,bytes,passes")) {
        bl_membw_free(&buf, bytes);
        return 1;
    }
    bl_headline_t h = {{0}, 0};
    for (int i = 0; i < n_threads; i++) {
        bl_membw_t r = bl_membw_measure(buf, bytes, threads[i], passes);
        printf("%2d thread%s: %6.2f GB/s (best of %d passes; %d streams per thread)\n", threads[i],
               threads[i] > 1 ? "s" : " ", r.gbps, passes, r.streams);
        bl_csv_row(&csv, "%d,%.3f,%d,%.0f,%d", threads[i], r.gbps, r.streams, r.bytes, passes);
        char key[32];
        snprintf(key, sizeof key, "membw_t%d_gbps", threads[i]);
        bl_head_add(&h, key, "%.2f", r.gbps);
    }
    bl_membw_free(&buf, bytes);
    int rc = bl_csv_close(&csv, 1);
    printf("csv: %s\n", csv_path);
    bl_head_print(&h);
    return rc ? 1 : 0;
}
