/* ifp keygen — CURVE key pairs and HTTP API keys (docs/SECURITY.md).
 *
 *   ifp keygen -o BASE [--force]        one pair: BASE.key (mode 0600), BASE.pub
 *   ifp keygen --config C [--keys DIR]  every key a deployment needs, in its
 *                                       keys folder (security/keys.h): the
 *                                       router's, each [group NAME]'s, and
 *                                       this machine's client pair (admitted
 *                                       as clients/local.pub); and the HTTP
 *                                       API keys file ([http] api_keys, else
 *                                       KEYS/api_keys): a key named "client"
 *                                       and one per [client NAME].  Keys that
 *                                       exist are kept, so it is safe to run
 *                                       on every start.  It never prints an
 *                                       API key, only where they are.
 *   ifp keygen --api-key NAME [--config C] [--keys DIR] [--new | --force]
 *                                       prints NAME's API key on stdout (the
 *                                       last one listed), adding one to the
 *                                       file when NAME has none: for scripts;
 *                                       --new adds one beside NAME's others
 *                                       (rotation), --force replaces them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "apikeys.h"
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

/* Where the HTTP API keys are: [http] api_keys when the config sets it,
 * else KEYS/api_keys. */
static void api_keys_file(const ifp_config_file_t *c, const char *dir, char *out, size_t len) {
    if (c && c->http_api_keys[0])
        snprintf(out, len, "%s", c->http_api_keys);
    else
        ifp_apikeys_path(dir, out, len);
}

/* The base URL of the config's HTTP API, for the example curl line. */
static void api_url(const ifp_config_file_t *c, char *out, size_t len) {
    const char *listen = c->http_listen, *port = strrchr(listen, ':');
    const char *scheme = c->http_tls_cert[0] ? "https" : "http";
    if (!strcmp(listen, "off") || !port)
        snprintf(out, len, "%s://127.0.0.1:8080", scheme);
    else if (!strncmp(listen, "0.0.0.0:", 8) || !strncmp(listen, "*:", 2) || !strncmp(listen, "[::]:", 5))
        snprintf(out, len, "%s://127.0.0.1%s", scheme, port); /* a wildcard: this machine reaches it on loopback */
    else
        snprintf(out, len, "%s://%s", scheme, listen);
}

/* The API keys of the deployment: "client" (this machine's, as client.key)
 * and one per [client NAME]; says where they are and how to use one, never
 * a key itself. */
static int api_keys(const ifp_config_file_t *c, const char *dir, int force, ifp_err_t *err) {
    const char **names = malloc((size_t)(c->n_clients + 1) * sizeof *names);
    if (!names) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    char path[IFP_KEYS_PATH], url[IFP_KEYS_PATH + 16];
    int n = 0, added = 0;
    names[n++] = "client";
    for (int i = 0; i < c->n_clients; i++) names[n++] = c->clients[i].name;
    api_keys_file(c, dir, path, sizeof path);
    int rc = ifp_apikeys_ensure(path, names, n, force, &added, err);
    free(names);
    if (rc) return rc;
    api_url(c, url, sizeof url);
    printf("ifp keygen: HTTP API keys in %s (mode 0600): %d added, %d kept; one named \"client\" and one per "
           "[client NAME]\n",
           path, added, n - added);
    printf("ifp keygen: a request sends one as `Authorization: Bearer KEY`, e.g.\n"
           "    curl -H \"Authorization: Bearer $(awk '$1==\"client\"{print $2}' %s)\" %s/v1/models\n"
           "  or `ifp keygen --api-key NAME --config %s` prints NAME's key\n",
           path, url, c->path);
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
    if (!rc) rc = api_keys(c, dir, force, &err);
    free(c);
    if (rc) {
        fprintf(stderr, "ifp keygen: %s\n", err.msg);
        return 1;
    }
    /* the last line: deploy/cluster.sh reads the folder from it */
    printf("ifp keygen: keys in %s: %d made, %d kept\n", dir, made, kept);
    return 0;
}

/* ifp keygen --api-key NAME: NAME's key on stdout (the last one listed:
 * the newest of a rotation), one added when NAME has none (--force: a new
 * one replacing NAME's).  What is done goes to stderr. */
static int print_api_key(const char *name, const char *config, const char *keys_dir, int force, int add) {
    ifp_config_file_t *c = NULL;
    ifp_err_t err = {0};
    char dir[IFP_KEYS_PATH], path[IFP_KEYS_PATH];
    int rc = IFP_OK, added = 0, n = 0;
    ifp_apikey_t *keys = NULL;
    if (config) {
        c = malloc(sizeof *c);
        if (!c) return 1;
        rc = ifp_config_load(config, c, &err);
    }
    if (!rc) {
        ifp_keys_dir(keys_dir ? keys_dir : c ? c->keys : NULL, dir, sizeof dir);
        api_keys_file(c, dir, path, sizeof path);
        if (!(c && c->http_api_keys[0])) rc = ifp_keys_mkdir(dir, &err); /* KEYS/api_keys: the folder may be new */
    }
    free(c);
    char fresh[IFP_APIKEY_MAX + 1] = "";
    if (!rc)
        rc = add ? ifp_apikeys_add(path, name, fresh, &err) : ifp_apikeys_ensure(path, &name, 1, force, &added, &err);
    if (!rc) rc = ifp_apikeys_read(path, &keys, &n, &err);
    int at = -1;
    for (int i = 0; !rc && i < n; i++)
        if (!strcmp(keys[i].name, name) && (!add || !strcmp(keys[i].key, fresh))) at = i;
    explicit_bzero(fresh, sizeof fresh);
    if (!rc && at < 0) rc = ifp_errf(&err, IFP_ENOTFOUND, "%s: no key named %s (changed meanwhile?)", path, name);
    if (!rc) {
        if (add)
            fprintf(stderr,
                    "ifp keygen: added a key for %s to %s beside its others (rotation: remove the old line when "
                    "its clients have moved; the router reads the file again on SIGHUP)\n",
                    name, path);
        else if (added)
            fprintf(stderr, "ifp keygen: added a key named %s to %s\n", name, path);
        printf("%s\n", keys[at].key);
    }
    ifp_apikeys_free(&keys, n);
    if (rc) {
        fprintf(stderr, "ifp keygen: %s\n", err.msg);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int ifp_cmd_keygen(int argc, char **argv) {
    const char *out = NULL, *config = NULL, *keys = NULL, *api_key = NULL;
    int force = 0, add = 0;
    cli_opt_t opts[] = {
        {"out", 'o', CLI_STR, &out, 0, 0, "write one pair: OUT.key (mode 0600) and OUT.pub", 0},
        {"config", 'c', CLI_STR, &config, 0, 0,
         "make every key the deployment of this config needs: CURVE pairs, and HTTP API keys ([http] api_keys, "
         "else KEYS/api_keys: one named client, one per [client NAME]); prints where, never an API key",
         0},
        {"keys", 0, CLI_STR, &keys, 0, 0,
         "the keys folder KEYS (default: [security] keys, else $IFP_KEYS, else "
         "${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys)",
         0},
        {"api-key", 0, CLI_STR, &api_key, 0, 0,
         "print the HTTP API key named TEXT on stdout (for scripts), adding one to the API keys file if it has none",
         0},
        {"new", 0, CLI_FLAG, &add, 0, 0,
         "with --api-key: add a new key for that name beside the ones it has (rotation) and print it", 0},
        {"force", 0, CLI_FLAG, &force, 0, 0,
         "replace existing keys (every connection made with them stops working); with --api-key: a new key for "
         "that name",
         0},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse("keygen", argc, argv, 2, opts, pos, 0, &n_pos,
                              "-o BASE | --config CONFIG [--keys DIR] | --api-key NAME [--config CONFIG] [--keys DIR] "
                              "[--new]");
    if (rc) return rc > 0 ? 0 : 2;
    if (out ? config || api_key : !config && !api_key) {
        fprintf(stderr, "ifp keygen: give -o BASE (one pair), --config CONFIG (a deployment's keys) or --api-key NAME "
                        "(print one HTTP API key)\n");
        return 2;
    }
    if ((add && !api_key) || (add && force)) {
        fprintf(stderr, "ifp keygen: --new goes with --api-key NAME, without --force\n");
        return 2;
    }
    if (api_key) return print_api_key(api_key, config, keys, force, add);
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
