#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_parse_i64(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

void cli_usage(FILE *f, const char *cmd, const cli_opt_t *opts, const char *usage) {
    fprintf(f, "usage: ifp %s %s\n\noptions:\n", cmd, usage ? usage : "[options]");
    for (const cli_opt_t *o = opts; o->name; o++) {
        char flag[64];
        const char *arg = o->kind == CLI_FLAG ? "" : o->kind == CLI_STR ? " TEXT" : " N";
        if (o->short_name)
            snprintf(flag, sizeof flag, "-%c, --%s%s", o->short_name, o->name, arg);
        else
            snprintf(flag, sizeof flag, "    --%s%s", o->name, arg);
        fprintf(f, "  %-26s %s\n", flag, o->help);
    }
}

static cli_opt_t *find(cli_opt_t *opts, const char *arg) {
    for (cli_opt_t *o = opts; o->name; o++) {
        if (arg[0] == '-' && arg[1] == '-' && strcmp(arg + 2, o->name) == 0) return o;
        if (arg[0] == '-' && arg[1] == o->short_name && o->short_name && arg[2] == '\0') return o;
    }
    return NULL;
}

static int set_value(const char *cmd, cli_opt_t *o, const char *val) {
    double d;
    long long i;
    switch (o->kind) {
    case CLI_STR:
        *(const char **)o->dst = val;
        return 0;
    case CLI_FLOAT:
        if (cli_parse_double(val, &d)) {
            fprintf(stderr, "ifp %s: --%s: expected a number, got '%s'\n", cmd, o->name, val);
            return -1;
        }
        if (d < o->min || d > o->max) {
            fprintf(stderr, "ifp %s: --%s: %s is out of range [%g, %g]\n", cmd, o->name, val, o->min, o->max);
            return -1;
        }
        *(float *)o->dst = (float)d;
        return 0;
    case CLI_INT:
    case CLI_U64:
        if (cli_parse_i64(val, &i)) {
            fprintf(stderr, "ifp %s: --%s: expected an integer, got '%s'\n", cmd, o->name, val);
            return -1;
        }
        if ((double)i < o->min || (double)i > o->max) {
            fprintf(stderr, "ifp %s: --%s: %s is out of range [%.0f, %.0f]\n", cmd, o->name, val, o->min, o->max);
            return -1;
        }
        if (o->kind == CLI_INT)
            *(int *)o->dst = (int)i;
        else
            *(uint64_t *)o->dst = (uint64_t)i;
        return 0;
    case CLI_FLAG:
        *(int *)o->dst = 1;
        return 0;
    }
    return -1;
}

int cli_parse(const char *cmd, int argc, char **argv, int first, cli_opt_t *opts, const char **pos, int max_pos,
              int *n_pos, const char *usage) {
    *n_pos = 0;
    for (int a = first; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_usage(stdout, cmd, opts, usage);
            return 1;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            /* --name=value */
            char namebuf[64];
            const char *eq = strchr(arg, '=');
            const char *val = NULL;
            if (eq && arg[1] == '-' && (size_t)(eq - arg) < sizeof namebuf) {
                memcpy(namebuf, arg, (size_t)(eq - arg));
                namebuf[eq - arg] = '\0';
                arg = namebuf;
                val = eq + 1;
            }
            cli_opt_t *o = find(opts, arg);
            if (!o) {
                fprintf(stderr, "ifp %s: unknown option '%s' (see ifp %s --help)\n", cmd, argv[a], cmd);
                return -1;
            }
            if (o->kind == CLI_FLAG) {
                if (val) {
                    fprintf(stderr, "ifp %s: --%s takes no value\n", cmd, o->name);
                    return -1;
                }
            } else if (!val) {
                if (a + 1 >= argc) {
                    fprintf(stderr, "ifp %s: --%s needs a value\n", cmd, o->name);
                    return -1;
                }
                val = argv[++a];
            }
            if (set_value(cmd, o, val)) return -1;
            o->seen = 1;
            continue;
        }
        if (*n_pos >= max_pos) {
            fprintf(stderr, "ifp %s: unexpected argument '%s'\n", cmd, arg);
            return -1;
        }
        pos[(*n_pos)++] = arg;
    }
    return 0;
}
