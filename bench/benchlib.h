/* benchlib.h — helpers shared by the bench/ executables: the clock and
 * statistics, a deterministic random stream, CSV files written atomically,
 * progress lines, process memory, the machine banner, DRAM read bandwidth
 * and the one-line headline of key=value pairs every benchmark ends with.
 *
 * Conventions of the benchmarks: progress on stderr, results on stdout, the
 * headline is the last line of stdout; a CSV is written to PATH.tmp while
 * rows are measured and renamed to PATH only when the run completes. */
#ifndef IFP_BENCHLIB_H
#define IFP_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- time and statistics ---- */

double bl_now(void);                     /* seconds, monotonic */
double bl_median(double *v, int n);      /* sorts v[0..n); n >= 1 */
double bl_min(const double *v, int n);

/* ---- a deterministic random stream (xorshift64*; seed 0 is remapped) ---- */

uint64_t bl_rand(uint64_t *s);
double bl_unit(uint64_t *s);             /* uniform in [0, 1) */
/* kept[0..K): a uniformly random, strictly increasing K-subset of [0, F)
 * (selection sampling); 1 <= K <= F. */
void bl_random_kept(int32_t *kept, int F, int K, uint64_t *s);

/* ---- CSV ---- */

typedef struct {
    FILE *f;
    char path[4096], tmp[4104];
    int rows;
} bl_csv_t;

/* Creates PATH's parent directory if missing, opens PATH.tmp and writes the
 * header line.  0 ok, -1 after printing why to stderr. */
int bl_csv_open(bl_csv_t *c, const char *path, const char *header);
/* Appends one printf-formatted row (the newline is added) and flushes. */
void bl_csv_row(bl_csv_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* keep: close and rename PATH.tmp to PATH; else close and remove it.
 * 0 ok, -1 after printing why. */
int bl_csv_close(bl_csv_t *c, int keep);

/* ---- progress (stderr, prefixed with the seconds since the first call) ---- */

void bl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- machine ---- */

double bl_vmrss_gb(void);          /* resident set (VmRSS), GB; 0 if unknown */
double bl_vmhwm_gb(void);          /* peak resident set (VmHWM), GB */
double bl_mem_available_gb(void);  /* MemAvailable, GB */
long bl_l3_bytes(void);            /* last-level cache size, bytes; 0 if unknown */
/* One line: OpenBLAS core, OPENBLAS_CORETYPE, online CPUs, L3, load average. */
void bl_print_machine(FILE *f);

/* ---- DRAM read bandwidth ---- */

typedef struct {
    double gbps;  /* best over passes and stream counts, GB/s (1e9 bytes) */
    int threads;
    int streams;  /* interleaved streams per thread at the best */
    double bytes; /* buffer size */
} bl_membw_t;

/* Allocates and fills a read buffer of `bytes` (rounded down to 4 KiB);
 * NULL if out of memory.  Free with bl_membw_free. */
float *bl_membw_buffer(size_t bytes);
void bl_membw_free(float **buf, size_t bytes);
/* Read bandwidth of `threads` threads (1..64) each summing its share of buf
 * in 1, 2, 4, 8 and 16 interleaved streams (more streams keep more cache
 * lines in flight); the best of `passes` passes per stream count.  buf must
 * be much larger than the last-level cache for this to be DRAM. */
bl_membw_t bl_membw_measure(const float *buf, size_t bytes, int threads, int passes);

/* ---- headline: " key=value" pairs printed as one line ---- */

typedef struct {
    char text[4096];
    size_t len;
} bl_headline_t;

void bl_head_add(bl_headline_t *h, const char *key, const char *fmt, double v);
/* Prints "headline:" + the pairs + newline to stdout. */
void bl_head_print(const bl_headline_t *h);

/* ---- argument parsing ---- */

/* A whole decimal integer in [lo, hi]: 0 ok, -1 otherwise. */
int bl_parse_int(const char *s, int lo, int hi, int *out);

#endif
