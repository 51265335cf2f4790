/* ifp-router --config C [--name NAME] [--verbose] [--shutdown-groups]
 * ifp-router --check-config C
 *
 * Parses the command line, loads the config, installs SIGINT/SIGTERM
 * handlers that ask the loop to stop, and runs the router (router.h); or
 * only checks the config and its model files (confcheck.h) and exits. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "confcheck.h"
#include "log.h"
#include "router.h"

static volatile sig_atomic_t g_stop, g_reload;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void on_hup(int sig) {
    (void)sig;
    g_reload = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ifp-router --config FILE.ini [--name NAME] [--verbose] [--shutdown-groups]\n"
            "       ifp-router --check-config FILE.ini\n"
            "\n"
            "  --config FILE      cluster configuration (INI: [router], [model], [group NAME]...)\n"
            "  --name NAME        which [router NAME] of the config this process is (needed when the\n"
            "                     config lists several routers: they all serve the same groups)\n"
            "  --check-config FILE  check the file and its model files without starting anything:\n"
            "                     prints a one-line summary and exits 0, or the error and exits 1\n"
            "  --verbose          per-request events and a one-line stats report every 2 s on stderr\n"
            "  --shutdown-groups  on SIGINT/SIGTERM, also tell every group to shut down\n"
            "\n"
            "Clients connect to [router] frontend, shard groups to [router] backend (see docs/PROTOCOL.md).\n"
            "With [security] curve = on (the default) both are CURVE servers that admit only the keys of\n"
            "the keys folder and the [client] sections; SIGHUP reloads those keys (docs/SECURITY.md).\n");
}

/* --check-config: the INI, then the model files; nothing is started. */
static int check_config(const char *path) {
    ifp_err_t err = {0};
    static ifp_config_file_t cfg; /* large: keep it off the stack */
    char summary[512];
    if (ifp_config_load(path, &cfg, &err) || rt_config_check(&cfg, summary, sizeof summary, &err)) {
        fprintf(stderr, "ifp-router: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", summary);
    return 0;
}

int main(int argc, char **argv) {
    const char *config = NULL, *check = NULL, *name = NULL;
    rt_router_opts_t opts = rt_router_default_opts();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) config = argv[i] + 9;
        else if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
        else if (!strncmp(argv[i], "--name=", 7)) name = argv[i] + 7;
        else if (!strcmp(argv[i], "--check-config") && i + 1 < argc) check = argv[++i];
        else if (!strncmp(argv[i], "--check-config=", 15)) check = argv[i] + 15;
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) opts.verbose = 1;
        else if (!strcmp(argv[i], "--shutdown-groups")) opts.shutdown_groups = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ifp-router: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (check) return check_config(check);
    if (!config) {
        fprintf(stderr, "ifp-router: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    ifp_err_t err = {0};
    static ifp_config_file_t cfg; /* large: keep it off the stack */
    if (ifp_config_load(config, &cfg, &err)) {
        ifp_logf("ifp-router", "%s", err.msg);
        return 1;
    }
    if (ifp_config_use_router(&cfg, name, &err)) {
        ifp_logf("ifp-router", "%s%s", err.msg, name ? "" : " with --name NAME");
        return 1;
    }
    rt_router_t *r = NULL;
    opts.reload = &g_reload;
    if (rt_router_new(&cfg, &opts, &r, &err)) {
        ifp_logf("ifp-router", "%s", err.msg);
        return 1;
    }
    if (rt_router_start_http(r, &err)) {
        ifp_logf("ifp-router", "%s", err.msg);
        rt_router_destroy(&r);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = rt_router_run(r, &g_stop);
    rt_router_destroy(&r);
    return rc ? 1 : 0;
}
