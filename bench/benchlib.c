#include "benchlib.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernels.h"

/* ---- time and statistics ---------------------------------------------------------------------- */

double bl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bl_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bl_min(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

/* ---- random ----------------------------------------------------------------------------------- */

uint64_t bl_rand(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double bl_unit(uint64_t *s) { return (double)(bl_rand(s) >> 11) * 0x1p-53; }

void bl_random_kept(int32_t *kept, int F, int K, uint64_t *s) {
    for (int j = 0, got = 0; j < F && got < K; j++)
        if (bl_unit(s) * (F - j) < K - got) kept[got++] = j;
}

/* ---- CSV -------------------------------------------------------------------------------------- */

int bl_csv_open(bl_csv_t *c, const char *path, const char *header) {
    memset(c, 0, sizeof *c);
    if (strlen(path) >= sizeof c->path) {
        fprintf(stderr, "csv path too long: %s\n", path);
        return -1;
    }
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->tmp, sizeof c->tmp, "%s.tmp", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0777) && errno != EEXIST) fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
    }
    if (!(c->f = fopen(c->tmp, "w"))) {
        fprintf(stderr, "cannot write %s: %s\n", c->tmp, strerror(errno));
        return -1;
    }
    fprintf(c->f, "%s\n", header);
    return 0;
}

void bl_csv_row(bl_csv_t *c, const char *fmt, ...) {
    if (!c->f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->f, fmt, ap);
    va_end(ap);
    fputc('\n', c->f);
    fflush(c->f);
    c->rows++;
}

int bl_csv_close(bl_csv_t *c, int keep) {
    if (!c->f) return keep ? -1 : 0;
    int bad = fclose(c->f) != 0;
    c->f = NULL;
    if (!keep) {
        remove(c->tmp);
        return 0;
    }
    if (bad || rename(c->tmp, c->path)) {
        fprintf(stderr, "cannot write %s: %s\n", c->path, strerror(errno));
        remove(c->tmp);
        return -1;
    }
    return 0;
}

/* ---- progress --------------------------------------------------------------------------------- */

void bl_log(const char *fmt, ...) {
    static double t0 = -1;
    if (t0 < 0) t0 = bl_now();
    fprintf(stderr, "[%6.1fs] ", bl_now() - t0);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- machine ---------------------------------------------------------------------------------- */

/* The value in kB of "Key:" in a /proc file, -1 if absent. */
static long long proc_kb(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtoll(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

double bl_vmrss_gb(void) {
    long long kb = proc_kb("/proc/self/status", "VmRSS");
    return kb < 0 ? 0 : (double)kb * 1024 / 1e9;
}

double bl_vmhwm_gb(void) {
    long long kb = proc_kb("/proc/self/status", "VmHWM");
    return kb < 0 ? 0 : (double)kb * 1024 / 1e9;
}

double bl_mem_available_gb(void) {
    long long kb = proc_kb("/proc/meminfo", "MemAvailable");
    return kb < 0 ? 0 : (double)kb * 1024 / 1e9;
}

long bl_l3_bytes(void) {
    long v = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    if (v > 0) return v;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    if (!f) return 0;
    char unit = 0;
    long n = 0;
    if (fscanf(f, "%ld%c", &n, &unit) < 1) n = 0;
    fclose(f);
    return unit == 'K' ? n << 10 : unit == 'M' ? n << 20 : n;
}

void bl_print_machine(FILE *f) {
    const char *ct = getenv("OPENBLAS_CORETYPE"), *tun = getenv("GLIBC_TUNABLES");
    double la[3] = {0};
    getloadavg(la, 3);
    char thp[128] = "?";
    FILE *t = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (t) {
        if (!fgets(thp, sizeof thp, t)) snprintf(thp, sizeof thp, "?");
        thp[strcspn(thp, "\n")] = '\0';
        fclose(t);
    }
    fprintf(f, "openblas core: %s; OPENBLAS_CORETYPE=%s; online CPUs: %ld; L3 %.0f MB; load average %.2f\n",
            ifp_blas_corename(), ct ? ct : "(unset)", sysconf(_SC_NPROCESSORS_ONLN), (double)bl_l3_bytes() / 1048576.0,
            la[0]);
    fprintf(f, "transparent huge pages: %s; GLIBC_TUNABLES=%s\n", thp, tun ? tun : "(unset)");
    if (!strcmp(ifp_blas_corename(), "Prescott"))
        fprintf(f, "note: OpenBLAS runs its generic Prescott (SSE3) kernels; OPENBLAS_CORETYPE (e.g. SkylakeX, "
                   "Haswell) selects others\n");
}

/* ---- DRAM read bandwidth ---------------------------------------------------------------------- */

typedef float bl_v16 __attribute__((vector_size(64))); /* 64 bytes: one cache line */

typedef struct {
    const float *p;
    size_t n;    /* floats, a multiple of 16 * streams * 4 */
    int streams;
    double sum;  /* keeps the reads alive */
} bw_job_t;

/* The widest loads the CPU has: with SSE2 loads one core reaches ~20% less
 * read bandwidth than with AVX-512 ones (as OpenBLAS's kernels use). */
#if defined(__x86_64__) && defined(__GNUC__)
#define BL_WIDE_LOADS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BL_WIDE_LOADS
#endif

/* Sums p[0..n) read as `streams` contiguous regions visited in turn, four
 * cache lines of each region at a time. */
BL_WIDE_LOADS static void *bw_sum(void *arg) {
    bw_job_t *j = arg;
    size_t lines = j->n / 16, per = lines / (size_t)j->streams;
    const bl_v16 *v = (const bl_v16 *)j->p;
    bl_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (size_t i = 0; i + 4 <= per; i += 4)
        for (int s = 0; s < j->streams; s++) {
            const bl_v16 *q = v + (size_t)s * per + i;
            a0 += q[0], a1 += q[1], a2 += q[2], a3 += q[3];
        }
    a0 += a1 + a2 + a3;
    double t = 0;
    for (int k = 0; k < 16; k++) t += a0[k];
    j->sum = t;
    return NULL;
}

float *bl_membw_buffer(size_t bytes) {
    bytes &= ~(size_t)4095;
    if (!bytes) return NULL;
    float *b = aligned_alloc(4096, bytes);
    if (!b) return NULL;
    size_t n = bytes / sizeof *b;
    for (size_t i = 0; i < n; i++) b[i] = (float)(i & 1023) * 1e-3f; /* touches every page */
    return b;
}

void bl_membw_free(float **buf, size_t bytes) {
    (void)bytes;
    free(*buf);
    *buf = NULL;
}

bl_membw_t bl_membw_measure(const float *buf, size_t bytes, int threads, int passes) {
    static const int stream_counts[] = {1, 2, 4, 8, 16};
    bl_membw_t best = {.gbps = 0, .threads = threads, .streams = 0, .bytes = 0};
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    size_t grain = (size_t)16 * 16 * 4 * (size_t)threads; /* floats: whole 4-line groups for 16 streams */
    size_t n = bytes / sizeof(float) / grain * grain;
    if (!n) return best;
    best.bytes = (double)n * sizeof(float);
    volatile double sink = 0;
    for (size_t si = 0; si < sizeof stream_counts / sizeof *stream_counts; si++) {
        for (int pass = 0; pass < passes; pass++) {
            bw_job_t job[64];
            pthread_t th[64];
            size_t share = n / (size_t)threads;
            int started[64] = {0};
            double t0 = bl_now();
            for (int t = 0; t < threads; t++) {
                job[t] = (bw_job_t){.p = buf + (size_t)t * share, .n = share, .streams = stream_counts[si]};
                if (t > 0) started[t] = pthread_create(&th[t], NULL, bw_sum, &job[t]) == 0;
            }
            bw_sum(&job[0]); /* the calling thread takes the first share */
            for (int t = 1; t < threads; t++) {
                if (started[t]) pthread_join(th[t], NULL);
                else bw_sum(&job[t]); /* no thread: serially (the figure is then low, not wrong) */
            }
            double dt = bl_now() - t0;
            for (int t = 0; t < threads; t++) sink += job[t].sum;
            double g = best.bytes / dt / 1e9;
            if (g > best.gbps) best.gbps = g, best.streams = stream_counts[si];
        }
    }
    (void)sink;
    return best;
}

/* ---- headline --------------------------------------------------------------------------------- */

void bl_head_add(bl_headline_t *h, const char *key, const char *fmt, double v) {
    char val[64];
    snprintf(val, sizeof val, fmt, v);
    if (h->len >= sizeof h->text) return;
    int n = snprintf(h->text + h->len, sizeof h->text - h->len, " %s=%s", key, val);
    if (n > 0) h->len += (size_t)n;
}

void bl_head_print(const bl_headline_t *h) {
    printf("headline:%s\n", h->text);
    fflush(stdout);
}

/* ---- arguments -------------------------------------------------------------------------------- */

int bl_parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}
