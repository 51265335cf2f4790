/* ifp — command-line entry point: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "tools.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", ifp_cmd_run, "generate text from a prompt with one model"},
    {"info", ifp_cmd_info, "print a GGUF file's metadata, tensors and memory per pipeline stage"},
    {"cluster", ifp_cmd_cluster, "k-medoids clusters of the predicted masks of a calibration set"},
    {"eval", ifp_cmd_eval, "per-domain response perplexity under mask modes (dense, input, task, ...)"},
    {"calibrate", ifp_cmd_calibrate, "fit a predictor for a model trained without one (channel importance)"},
    {"client", ifp_cmd_client, "send a prompt to an ifp-router and stream the answer"},
    {"status", ifp_cmd_status, "how a running ifp-router and its groups are (groups, requests, counters)"},
    {"keygen", ifp_cmd_keygen, "CURVE key pairs: one (-o BASE), or every key of a deployment (--config C)"},
    {"synth", ifp_cmd_synth, "a model of the paper's shapes (3b/6b/9b/12b) with seeded random weights"},
    {"quantize", ifp_cmd_quantize, "rewrite a model with its matrices as f32, f16, bf16 or q8_0 (docs/WEIGHTS.md)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ifp COMMAND [options]   (ifp COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc, argv);
    fprintf(stderr, "ifp: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
