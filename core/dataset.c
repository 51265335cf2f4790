#include "dataset.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void ifp_dataset_destroy(ifp_dataset_t **dp) {
    if (!dp || !*dp) return;
    ifp_dataset_t *d = *dp;
    for (int i = 0; i < d->n; i++) {
        free(d->ex[i].domain);
        free(d->ex[i].prompt);
        free(d->ex[i].response);
        free(d->ex[i].source);
    }
    for (int i = 0; i < d->n_domains; i++) free(d->domains[i]);
    free(d->domains);
    free(d->ex);
    free(d);
    *dp = NULL;
}

int ifp_dataset_domain_index(const ifp_dataset_t *d, const char *domain) {
    for (int i = 0; i < d->n_domains; i++)
        if (strcmp(d->domains[i], domain) == 0) return i;
    return -1;
}

/* Optional string field: NULL if absent, error if present but not a string. */
static int opt_str(const cJSON *o, const char *key, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return -1;
    return (*out = dup_str(v->valuestring)) ? 0 : -2;
}

static int parse_line(ifp_dataset_t *d, const char *line, const char *path, int lineno, ifp_err_t *err) {
    cJSON *o = cJSON_Parse(line);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ifp_errf(err, IFP_EFORMAT, "%s:%d: not a JSON object", path, lineno);
    }
    ifp_example_t e = {0};
    int rc = IFP_OK;
    const char *bad = NULL;
    if (opt_str(o, "prompt", &e.prompt)) bad = "prompt";
    else if (!e.prompt) rc = ifp_errf(err, IFP_EFORMAT, "%s:%d: missing \"prompt\"", path, lineno);
    else if (opt_str(o, "domain", &e.domain)) bad = "domain";
    else if (opt_str(o, "response", &e.response)) bad = "response";
    else if (opt_str(o, "source", &e.source)) bad = "source";
    if (bad) rc = ifp_errf(err, IFP_EFORMAT, "%s:%d: \"%s\" must be a string", path, lineno, bad);
    if (!rc && !e.domain && !(e.domain = dup_str(""))) rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
    cJSON_Delete(o);
    if (!rc && ifp_dataset_domain_index(d, e.domain) < 0) {
        char **grown = realloc(d->domains, (size_t)(d->n_domains + 1) * sizeof *grown);
        char *copy = dup_str(e.domain);
        if (!grown || !copy) {
            free(copy);
            if (grown) d->domains = grown;
            rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
        } else {
            d->domains = grown;
            d->domains[d->n_domains++] = copy;
        }
    }
    if (rc) {
        free(e.domain), free(e.prompt), free(e.response), free(e.source);
        return rc;
    }
    d->ex[d->n++] = e;
    return IFP_OK;
}

int ifp_dataset_load(const char *path, ifp_dataset_t **out, ifp_err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ifp_errf(err, IFP_EIO, "%s: cannot open", path);
    ifp_dataset_t *d = calloc(1, sizeof *d);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = d ? IFP_OK : ifp_errf(err, IFP_ENOMEM, "out of memory"), ex_cap = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if ((ssize_t)strlen(line) != len) {
            rc = ifp_errf(err, IFP_EFORMAT, "%s:%d: NUL byte in line", path, lineno);
            break;
        }
        if (d->n == ex_cap) {
            ex_cap = ex_cap ? 2 * ex_cap : 64;
            ifp_example_t *g = realloc(d->ex, (size_t)ex_cap * sizeof *g);
            if (!g) {
                rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
                break;
            }
            d->ex = g;
        }
        rc = parse_line(d, line, path, lineno, err);
    }
    if (!rc && ferror(f)) rc = ifp_errf(err, IFP_EIO, "%s: read error", path);
    if (!rc && d->n == 0) rc = ifp_errf(err, IFP_EFORMAT, "%s: no examples", path);
    free(line);
    fclose(f);
    if (rc) {
        ifp_dataset_destroy(&d);
        return rc;
    }
    *out = d;
    return IFP_OK;
}
