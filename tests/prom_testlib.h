/* prom_testlib.h — a checker of the Prometheus text exposition format
 * (0.0.4) for tests (header-only): every family has one # HELP and then one
 * # TYPE before its samples, a family's samples are together, every sample
 * line is `name{label="value",...} value` with only \\ \" \n escapes, a
 * histogram's buckets are cumulative with ascending le and end with
 * le="+Inf" equal to its _count, counters are not negative; plus the value of
 * one sample, and Prometheus's own checker (promtool) when installed. */
#ifndef IFP_PROM_TESTLIB_H
#define IFP_PROM_TESTLIB_H

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PT_MAX_FAMILIES 256

typedef struct {
    char name[128], type[16];
    int has_help, has_type, samples, done;
} pt_fam_t;

typedef struct {
    pt_fam_t f[PT_MAX_FAMILIES];
    int n;
    int cur;                  /* the family whose samples come now, -1 none */
    /* the histogram series being read: its labels without le, last le and count */
    char series[512];
    double last_le, last_cum;
    int in_buckets;
} pt_checker_t;

static inline pt_fam_t *pt_fam_find(pt_checker_t *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->f[i].name, name)) return &c->f[i];
    return NULL;
}

static inline pt_fam_t *pt_fam_get(pt_checker_t *c, const char *name) {
    pt_fam_t *f = pt_fam_find(c, name);
    if (f || c->n == PT_MAX_FAMILIES) return f;
    f = &c->f[c->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

static inline int pt_name_char(int ch, int first) { return isalpha(ch) || ch == '_' || ch == ':' || (!first && isdigit(ch)); }

/* The family a sample name belongs to (histogram and summary suffixes). */
static inline pt_fam_t *pt_family_of(pt_checker_t *c, const char *name, const char **suffix) {
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    *suffix = "";
    pt_fam_t *f = pt_fam_find(c, name);
    if (f && strcmp(f->type, "histogram") && strcmp(f->type, "summary")) return f;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(sfx[i]);
        if (n > k && !strcmp(name + n - k, sfx[i])) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
            pt_fam_t *b = pt_fam_find(c, base);
            if (b && (!strcmp(b->type, "histogram") || (!strcmp(b->type, "summary") && i > 0))) {
                *suffix = sfx[i];
                return b;
            }
        }
    }
    return f;
}

static inline int pt_parse_value(const char *s, double *v) {
    if (!strcmp(s, "+Inf")) return *v = INFINITY, 0;
    if (!strcmp(s, "-Inf")) return *v = -INFINITY, 0;
    if (!strcmp(s, "NaN")) return *v = NAN, 0;
    char *end;
    *v = strtod(s, &end);
    return end == s || *end ? -1 : 0;
}

/* Writes the problem to err; returns -1. */
static inline int pt_problem(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int pt_problem(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}
#define PT_BAD(...) return pt_problem(err, cap, __VA_ARGS__)

/* One sample line.  Fills the label text without `le` (series) and le. */
static inline int pt_check_sample(pt_checker_t *c, const char *line, char *err, size_t cap) {
    char name[128], series[512] = "";
    size_t i = 0, sn = 0;
    double le = NAN;
    while (pt_name_char((unsigned char)line[i], i == 0) && i < sizeof name - 1) i++;
    if (i == 0) PT_BAD("no metric name: %s", line);
    snprintf(name, sizeof name, "%.*s", (int)i, line);
    if (line[i] == '{') {
        i++;
        for (int first = 1; line[i] != '}'; first = 0) {
            if (!first && line[i++] != ',') PT_BAD("expected , between labels: %s", line);
            size_t k = i;
            while (pt_name_char((unsigned char)line[i], i == k)) i++;
            if (i == k || line[i] != '=' || line[i + 1] != '"') PT_BAD("bad label at %zu: %s", k, line);
            char lname[64];
            snprintf(lname, sizeof lname, "%.*s", (int)(i - k), line + k);
            i += 2;
            char val[256];
            size_t vn = 0;
            for (; line[i] != '"'; i++) {
                if (!line[i]) PT_BAD("unterminated label value: %s", line);
                if (line[i] == '\\') {
                    i++;
                    if (line[i] != '\\' && line[i] != '"' && line[i] != 'n') PT_BAD("bad escape \\%c: %s", line[i], line);
                }
                if (vn < sizeof val - 1) val[vn++] = line[i];
            }
            val[vn] = '\0';
            i++;
            if (!strcmp(lname, "le")) {
                if (pt_parse_value(val, &le)) PT_BAD("le=\"%s\" is not a number: %s", val, line);
            } else {
                sn += (size_t)snprintf(series + sn, sizeof series - sn, "%s=%s;", lname, val);
            }
        }
        i++;
    }
    if (line[i] != ' ') PT_BAD("expected one space before the value: %s", line);
    double v;
    if (pt_parse_value(line + i + 1, &v)) PT_BAD("bad value \"%s\": %s", line + i + 1, line);
    const char *suffix;
    pt_fam_t *f = pt_family_of(c, name, &suffix);
    if (!f || !f->has_help || !f->has_type) PT_BAD("sample before its # HELP and # TYPE: %s", line);
    if (f->done) PT_BAD("family %s's samples are not together: %s", f->name, line);
    if (c->cur >= 0 && &c->f[c->cur] != f) c->f[c->cur].done = 1;
    c->cur = (int)(f - c->f);
    f->samples++;
    if (!strcmp(f->type, "histogram")) {
        if (!strcmp(suffix, "_bucket")) {
            if (isnan(le)) PT_BAD("bucket without le: %s", line);
            if (!c->in_buckets || strcmp(series, c->series)) { /* a new series */
                snprintf(c->series, sizeof c->series, "%s", series);
                c->in_buckets = 1;
                c->last_le = -INFINITY;
                c->last_cum = 0;
            }
            if (!(le > c->last_le)) PT_BAD("le not ascending: %s", line);
            if (v < c->last_cum) PT_BAD("buckets not cumulative: %s", line);
            c->last_le = le, c->last_cum = v;
        } else if (!strcmp(suffix, "_count")) {
            if (!c->in_buckets || strcmp(series, c->series) || !isinf(c->last_le))
                PT_BAD("histogram %s does not end its buckets with le=\"+Inf\" before _count", f->name);
            if (v != c->last_cum) PT_BAD("le=\"+Inf\" %g != _count %g in %s", c->last_cum, v, f->name);
            c->in_buckets = 0;
        } else if (strcmp(suffix, "_sum")) {
            PT_BAD("histogram sample without a suffix: %s", line);
        }
    } else if (!isnan(le)) {
        PT_BAD("le label outside a histogram: %s", line);
    }
    if (!strcmp(f->type, "counter") && !(v >= 0)) PT_BAD("negative counter: %s", line);
    return 0;
}

/* A # HELP or # TYPE line: once each per family, HELP first, before its
 * samples. */
static inline int pt_check_comment(pt_checker_t *c, const char *line, char *err, size_t cap) {
    char name[128], rest[1024] = "";
    if (sscanf(line + 7, "%127s %1023[^\n]", name, rest) < 1) PT_BAD("bad: %s", line);
    pt_fam_t *f = pt_fam_get(c, name);
    if (!f) PT_BAD("too many families");
    if (f->samples) PT_BAD("# line after samples of %s", name);
    if (line[2] == 'H') {
        if (f->has_help++) PT_BAD("two HELP for %s", name);
        return 0;
    }
    if (f->has_type++) PT_BAD("two TYPE for %s", name);
    if (!f->has_help) PT_BAD("TYPE before HELP for %s", name);
    if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") && strcmp(rest, "summary"))
        PT_BAD("unknown type %s", rest);
    snprintf(f->type, sizeof f->type, "%.15s", rest);
    return 0;
}

/* Checks the whole exposition; 0 or -1 with err. */
static inline int pt_check_exposition(const char *text, char *err, size_t cap) {
    pt_checker_t *c = calloc(1, sizeof *c);
    c->cur = -1;
    int rc = 0;
    size_t len = strlen(text);
    if (!len || text[len - 1] != '\n') {
        free(c);
        PT_BAD("the text does not end with a newline");
    }
    for (const char *p = text; *p && !rc;) {
        const char *nl = strchr(p, '\n');
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
        p = nl + 1;
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            rc = pt_check_comment(c, line, err, cap);
        } else if (line[0] == '#' || !line[0]) {
            rc = pt_problem(err, cap, "unexpected line: \"%s\"", line);
        } else {
            rc = pt_check_sample(c, line, err, cap);
        }
    }
    for (int i = 0; !rc && i < c->n; i++)
        if (!c->f[i].samples) rc = pt_problem(err, cap, "family %s has no sample", c->f[i].name);
    free(c);
    return rc;
}

/* The value of the sample written exactly as key ("name{labels}"); NAN if
 * absent. */
static inline double pt_value_of(const char *text, const char *key) {
    size_t k = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, k) && p[k] == ' ') return strtod(p + k + 1, NULL);
    return NAN;
}

/* Runs `promtool check metrics` on text: its exit status (0: accepted), its
 * output in out; -1 if promtool is not installed (Debian package
 * prometheus). */
static inline int pt_promtool(const char *text, char *out, size_t cap) {
    out[0] = '\0';
    if (system("command -v promtool >/dev/null 2>&1") != 0) return -1;
    char path[] = "/tmp/ifp-metrics-XXXXXX", cmd[128];
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = ok ? popen(cmd, "r") : NULL;
    int st = -1;
    if (p) {
        size_t n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
        st = pclose(p);
        st = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    }
    unlink(path);
    return st;
}

#endif
