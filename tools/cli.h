/* cli.h — table-driven command-line options for the ifp subcommands.
 *
 * One row per option: names, kind, destination, bounds, help.  Parsing
 * validates every value (number syntax, finite, range) and reports the first
 * problem as "ifp CMD: --opt: what is wrong". */
#ifndef IFP_CLI_H
#define IFP_CLI_H

#include <stdint.h>
#include <stdio.h>

typedef enum { CLI_INT, CLI_U64, CLI_FLOAT, CLI_STR, CLI_FLAG } cli_kind_t;

typedef struct {
    const char *name;  /* long name without dashes, e.g. "temp" */
    char short_name;   /* 0 if none, e.g. 'n' */
    cli_kind_t kind;
    void *dst;         /* int*, uint64_t*, float*, const char**, int* (flag) */
    double min, max;   /* inclusive bounds for numbers */
    const char *help;
    int seen;          /* set by cli_parse */
} cli_opt_t;

/* Parses argv[first..argc).  Positional arguments are stored in pos[] (up to
 * max_pos; more is an error).  Returns 0, or -1 after printing the problem
 * to stderr; 1 when --help was asked (usage printed to stdout). */
int cli_parse(const char *cmd, int argc, char **argv, int first, cli_opt_t *opts, const char **pos, int max_pos,
              int *n_pos, const char *usage);

void cli_usage(FILE *f, const char *cmd, const cli_opt_t *opts, const char *usage);

/* Strict number parsing: the whole string must be a number. */
int cli_parse_double(const char *s, double *out);
int cli_parse_i64(const char *s, long long *out);

#endif
