/* test_config_routers — the routers of a deployment in the config
 * (config/config.h): [router NAME] sections for active-active routers, the
 * single unnamed [router] as the one-router case, the rules (own frontend
 * and backend, no shared address on one host, [router] then without
 * endpoints), and ifp_config_use_router choosing the one a process runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define M "[model]\nmodel = m.gguf\n"
#define G "[group g0]\nstages = 1\n"
#define TWO                                                                                                  \
    "[router]\npolicy = least-loaded\nhost = rt0\n"                                                          \
    "[router r1]\nfrontend = tcp://127.0.0.1:5555\nbackend = tcp://127.0.0.1:5556\nhttp_listen = 127.0.0.1:8080\n" \
    "[router r2]\nfrontend = tcp://127.0.0.1:5565\nbackend = tcp://127.0.0.1:5566\nhttp_listen = 127.0.0.1:8081\n"

static ifp_config_file_t g_c;

static void one_router_is_router_itself(void **u) {
    (void)u;
    ifp_err_t err = {0};
    assert_int_equal(ifp_config_parse("[router]\nfrontend = tcp://127.0.0.1:7000\nbackend_connect = tcp://a:7001\n"
                                      "backend = tcp://0.0.0.0:7001\n" M G, NULL, &g_c, &err), 0);
    assert_int_equal(g_c.n_routers, 1);
    assert_string_equal(g_c.routers[0].name, "");
    assert_string_equal(g_c.routers[0].frontend, "tcp://127.0.0.1:7000");
    assert_string_equal(ifp_router_backend_connect(&g_c.routers[0]), "tcp://a:7001");
    assert_string_equal(g_c.routers[0].http_listen, "127.0.0.1:8080"); /* [http] listen's default */
    assert_int_equal(ifp_router_line(&g_c.routers[0], "frontend"), 2);
    assert_int_equal(ifp_config_use_router(&g_c, NULL, &err), 0);
    assert_int_equal(g_c.router_index, 0);
    assert_string_equal(g_c.frontend, "tcp://127.0.0.1:7000");
}

static void two_named_routers(void **u) {
    (void)u;
    ifp_err_t err = {0};
    assert_int_equal(ifp_config_parse(TWO M G, NULL, &g_c, &err), 0);
    assert_int_equal(g_c.n_routers, 2);
    assert_string_equal(g_c.routers[1].name, "r2");
    assert_string_equal(g_c.routers[1].host, "rt0"); /* [router] host */
    assert_string_equal(ifp_router_backend_connect(&g_c.routers[1]), "tcp://127.0.0.1:5566");
    assert_string_equal(g_c.policy, "least-loaded"); /* shared settings stay in [router] */
    /* a process runs one of them: named, never guessed */
    assert_int_equal(ifp_config_use_router(&g_c, NULL, &err), IFP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "2 routers (r1, r2)"));
    assert_int_equal(ifp_config_use_router(&g_c, "r3", &err), IFP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no [router r3]"));
    assert_int_equal(ifp_config_use_router(&g_c, "r2", &err), 0);
    assert_int_equal(g_c.router_index, 1);
    assert_string_equal(g_c.frontend, "tcp://127.0.0.1:5565");
    assert_string_equal(g_c.backend, "tcp://127.0.0.1:5566");
    assert_string_equal(g_c.http_listen, "127.0.0.1:8081");
    /* on different hosts the same ports are fine */
    assert_int_equal(ifp_config_parse("[router a]\nfrontend = tcp://*:5555\nbackend = tcp://*:5556\n"
                                      "backend_connect = tcp://ha:5556\nhost = ha\n"
                                      "[router b]\nfrontend = tcp://*:5555\nbackend = tcp://*:5556\n"
                                      "backend_connect = tcp://hb:5556\nhost = hb\n" M G, NULL, &g_c, &err), 0);
    assert_int_equal(g_c.n_routers, 2);
}

static void refused(const char *text, const char *want) {
    ifp_err_t err = {0};
    int rc = ifp_config_parse(text, NULL, &g_c, &err);
    if (rc != IFP_EFORMAT || !strstr(err.msg, want))
        fail_msg("config:\n%s\nwant an error with \"%s\", got rc %d: %s", text, want, rc, err.msg);
    assert_int_equal(g_c.n_routers, 0); /* nothing half-loaded */
}

static void router_rules(void **u) {
    (void)u;
    refused("[router r1]\nbackend = tcp://127.0.0.1:5556\n" M G, "config:1: [router r1] frontend: required");
    refused("[router r1]\n" M G, "config:1: [router r1]: empty section");
    refused("[router r1]\nfrontend = tcp://127.0.0.1:1\nbackend = tcp://127.0.0.1:1\n" M G,
            "[router r1] backend: the same endpoint as frontend");
    refused("[router]\nfrontend = tcp://127.0.0.1:9\n[router r1]\nfrontend = tcp://127.0.0.1:5555\n"
            "backend = tcp://127.0.0.1:5556\n" M G,
            "config:2: [router] frontend: the routers are [router NAME] sections");
    refused(TWO "[router r3]\nfrontend = tcp://127.0.0.1:5575\nbackend = tcp://127.0.0.1:5556\n" M G,
            "[router r3] backend: tcp://127.0.0.1:5556 is [router r1]'s backend too, on the same host rt0");
    refused(TWO "[router r3]\nfrontend = tcp://127.0.0.1:5575\nbackend = tcp://127.0.0.1:5576\n" M G,
            "[router r3] http_listen: 127.0.0.1:8080 is [router r1]'s http_listen too");
    refused(TWO "[router r1]\nfrontend = tcp://127.0.0.1:5585\nbackend = tcp://127.0.0.1:5586\n" M G,
            "[router r1]: duplicate section");
    refused("[router r.1]\nfrontend = tcp://127.0.0.1:5585\nbackend = tcp://127.0.0.1:5586\n" M G,
            "'.' is not allowed in a router name");
    refused("[router r1]\nfrontend = tcp://127.0.0.1:5585\nbackend = tcp://*:5586\n" M G,
            "[router r1] backend: tcp://*:5586 binds every interface");
    refused("[router r1]\nfrontend = tcp://127.0.0.1:5585\nbackend = tcp://127.0.0.1:5586\npolicy = x\n" M G,
            "[router r1] policy: unknown key here; it belongs in [router]");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_router_is_router_itself),
        cmocka_unit_test(two_named_routers),
        cmocka_unit_test(router_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
