/* dataset.h — prompt sets in JSON lines: one object per line with
 * "prompt" (required), "domain", "response" and "source" (optional strings).
 * This is the format of data/ifp-mix/calib.jsonl.  Every line is validated;
 * a bad line is an error naming the file, the line and what is wrong. */
#ifndef IFP_DATASET_H
#define IFP_DATASET_H

#include "err.h"

typedef struct {
    char *domain;   /* "" if absent */
    char *prompt;
    char *response; /* NULL if absent */
    char *source;   /* NULL if absent */
} ifp_example_t;

typedef struct {
    int n;
    ifp_example_t *ex;
    int n_domains;
    char **domains; /* distinct domains in order of first appearance */
} ifp_dataset_t;

int ifp_dataset_load(const char *path, ifp_dataset_t **out, ifp_err_t *err);
void ifp_dataset_destroy(ifp_dataset_t **d);
/* Index of a domain in d->domains, -1 if absent. */
int ifp_dataset_domain_index(const ifp_dataset_t *d, const char *domain);

#endif
