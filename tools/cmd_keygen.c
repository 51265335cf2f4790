/* ifp keygen — CURVE key pairs (docs/SECURITY.md).
 *
 *   ifp keygen -o BASE [--force]        one pair: BASE.key (mode 0600), BASE.pub
 *   ifp keygen --config C [--keys DIR]  every key a deployment needs, in its
 *                                       keys folder (security/keys.h): the
 *                                       router's, each [group NAME]'s, and
 *                                       this machine's client pair (admitted
 *                                       as clients/local.pub); keys that
 *                                       exist are kept, so it is safe to run
 *                                       on every start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "keys.h"
#include "tools.h"

/* The pair of base unless it exists (then 0, "kept"); 1 when written. */
static int ensure_pair(const char *base, const char *about, int force, ifp_err_t *err) {
    char key[IFP_KEYS_PATH + 8];
    struct stat st;
    snprintf(key, sizeof key, "%s.key", base);
    if (!force && stat(key, &st) == 0) {
        ifp_keypair_t kp;
        int rc = ifp_key_read_secret(key, &kp, err); /* kept: it must still be a usable key */
        memset(&kp, 0, sizeof kp);
        return rc ? rc : 0;
    }
    ifp_keypair_t kp;
    int rc = ifp_key_generate(&kp, err);
    if (!rc) rc = ifp_key_write_pair(base, &kp, about, force, err);
    memset(&kp, 0, sizeof kp);
    return rc ? rc : 1;
}

/* clients/local.pub: this machine's client public key, admitted by the router. */
static int admit_local(const char *dir, ifp_err_t *err) {
    char base[IFP_KEYS_PATH], src[IFP_KEYS_PATH + 8], dst[IFP_KEYS_PATH + 8];
    char keys[1][IFP_Z85_KEY];
    int n = 0;
    ifp_key_base(dir, "local", NULL, base, sizeof base);
    snprintf(src, sizeof src, "%s.pub", base);
    int rc = ifp_key_read_public(src, keys, 1, &n, err);
    if (rc) return rc;
    ifp_key_base(dir, "client", "local", base, sizeof base);
    snprintf(dst, sizeof dst, "%s.pub", base);
    FILE *f = fopen(dst, "w");
    if (!f) return ifp_errf(err, IFP_EIO, "%s: cannot write", dst);
    fprintf(f, "# ifp CURVE public key (Z85) of this machine's client (%s), admitted as client \"local\"\n%s\n", src,
            keys[0]);
    if (fclose(f) != 0) return ifp_errf(err, IFP_EIO, "%s: cannot write", dst);
    return IFP_OK;
}

static int deployment(const char *config, const char *keys_dir, int force) {
    ifp_config_file_t *c = malloc(sizeof *c);
    ifp_err_t err = {0};
    if (!c) return 1;
    if (ifp_config_load(config, c, &err)) {
        fprintf(stderr, "ifp keygen: %s\n", err.msg);
        free(c);
        return 1;
    }
    char dir[IFP_KEYS_PATH], sub[IFP_KEYS_PATH + 16], base[IFP_KEYS_PATH], about[128];
    ifp_keys_dir(keys_dir ? keys_dir : c->keys, dir, sizeof dir);
    int made = 0, kept = 0, rc = ifp_keys_mkdir(dir, &err);
    snprintf(sub, sizeof sub, "%s/groups", dir);
    if (!rc) rc = ifp_keys_mkdir(sub, &err);
    snprintf(sub, sizeof sub, "%s/clients", dir);
    if (!rc) rc = ifp_keys_mkdir(sub, &err);
    for (int i = -2; !rc && i < c->n_groups; i++) {
        if (i == -2) {
            ifp_key_base(dir, "router", NULL, base, sizeof base);
            snprintf(about, sizeof about, "the router");
        } else if (i == -1) {
            ifp_key_base(dir, "local", NULL, base, sizeof base);
            snprintf(about, sizeof about, "this machine's client");
        } else {
            ifp_key_base(dir, "group", c->groups[i].name, base, sizeof base);
            snprintf(about, sizeof about, "shard group %s", c->groups[i].name);
        }
        int k = ensure_pair(base, about, force, &err);
        if (k < 0) rc = k;
        else if (k) made++;
        else kept++;
    }
    if (!rc) rc = admit_local(dir, &err);
    free(c);
    if (rc) {
        fprintf(stderr, "ifp keygen: %s\n", err.msg);
        return 1;
    }
    printf("ifp keygen: keys in %s: %d made, %d kept\n", dir, made, kept);
    return 0;
}

int ifp_cmd_keygen(int argc, char **argv) {
    const char *out = NULL, *config = NULL, *keys = NULL;
    int force = 0;
    cli_opt_t opts[] = {
        {"out", 'o', CLI_STR, &out, 0, 0, "write one pair: OUT.key (mode 0600) and OUT.pub", 0},
        {"config", 'c', CLI_STR, &config, 0, 0, "make every key the deployment of this config needs", 0},
        {"keys", 0, CLI_STR, &keys, 0, 0,
         "with --config: the keys folder (default: [security] keys, else $IFP_KEYS, else "
         "${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys)",
         0},
        {"force", 0, CLI_FLAG, &force, 0, 0, "replace existing keys (every connection made with them stops working)", 0},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse("keygen", argc, argv, 2, opts, pos, 0, &n_pos, "-o BASE | --config CONFIG [--keys DIR]");
    if (rc) return rc > 0 ? 0 : 2;
    if (!out == !config) {
        fprintf(stderr, "ifp keygen: give either -o BASE (one pair) or --config CONFIG (a deployment's keys)\n");
        return 2;
    }
    if (config) return deployment(config, keys, force);
    ifp_err_t err = {0};
    int k = ensure_pair(out, out, force, &err);
    if (k < 0) {
        fprintf(stderr, "ifp keygen: %s\n", err.msg);
        return 1;
    }
    if (!k) {
        fprintf(stderr, "ifp keygen: %s.key exists (kept; --force replaces it)\n", out);
        return 1;
    }
    printf("ifp keygen: wrote %s.key (secret, mode 0600) and %s.pub\n", out, out);
    return 0;
}
