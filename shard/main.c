/* ifp-shard — one rank (pipeline stage) of a shard group; see shard.h.
 *
 *   mpirun -np P ifp-shard --config C --group G [--threads N] [--verbose]
 *
 * main only initializes MPI, parses the command line and hands over to
 * sh_run; every exit path goes through MPI_Finalize. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "shard.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: mpirun -np P ifp-shard --config FILE.ini --group NAME [--threads N] [--verbose]\n"
            "  --config FILE   the cluster configuration (router backend, model, groups)\n"
            "  --group NAME    the [group NAME] this job serves; P must equal its stages\n"
            "  --threads N     OpenBLAS threads per rank (default 1)\n"
            "  --verbose       log every request and control message\n");
}

/* Returns 0 (run), 1 (--help: exit 0) or 2 (usage error, printed by rank 0). */
static int parse_args(int argc, char **argv, sh_opts_t *o, int rank) {
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"group", required_argument, NULL, 'g'},
        {"threads", required_argument, NULL, 't'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    *o = (sh_opts_t){.threads = 1};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:g:t:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 256) {
                if (rank == 0) fprintf(stderr, "ifp-shard: --threads: expected an integer in [1, 256], got '%s'\n", optarg);
                return 2;
            }
            o->threads = (int)v;
            break;
        }
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            if (rank == 0) usage(stdout);
            return 1;
        default:
            if (rank == 0) {
                fprintf(stderr, "ifp-shard: unknown or incomplete option '%s'\n", argv[optind - 1]);
                usage(stderr);
            }
            return 2;
        }
    }
    if (optind < argc) {
        if (rank == 0) fprintf(stderr, "ifp-shard: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->config || !o->group) {
        if (rank == 0) {
            fprintf(stderr, "ifp-shard: %s is required\n", !o->config ? "--config" : "--group");
            usage(stderr);
        }
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        ifp_logf("ifp-shard", "MPI_Init failed");
        return 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    sh_opts_t o;
    int code = parse_args(argc, argv, &o, rank);
    if (code == 1) code = 0;
    else if (code == 0) code = sh_run(&o, rank, size);
    MPI_Finalize();
    return code;
}

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds.  OpenMPI and its plugins keep allocations alive past
 * MPI_Finalize (dlopen'd components leak by design): not ours to report.
 * Those libraries have no frame pointers, so the fast unwinder cannot see
 * that an allocation came from them: unwind slowly at malloc (the shard
 * allocates little outside start-up). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:mca_\nleak:libhwloc\nleak:libevent\n"
           "leak:libpmix\nleak:libucp\nleak:libucs\nleak:libfabric\n";
}
#endif
