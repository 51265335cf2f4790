/* confcheck.h — `ifp-router --check-config FILE`: what a config promises
 * that only its model files can confirm, checked without starting anything
 * (no socket bound, no thread started).  The INI itself is checked before,
 * by ifp_config_load (config.h).
 *
 *   1. [model] model: the GGUF opens; its llama config and tokenizer load;
 *   2. [model] predictor (when given): loads, and targets the model's
 *      layers x d_ffn and vocabulary (ifp_predictor_check_target);
 *   3. [model] clusters (when given): the table loads, and its masks have
 *      the model's layers x d_ffn;
 *   4. every [group NAME]: cluster is dense or an index of the table; its
 *      layer split fits the model (ifp_config_split); ctx fits the model's
 *      context. */
#ifndef RT_CONFCHECK_H
#define RT_CONFCHECK_H

#include <stddef.h>

#include "config.h"
#include "err.h"

/* Checks cfg (from ifp_config_load) against its model files.  Returns IFP_OK
 * with a one-line summary in summary[len] (groups, stages, model), or the
 * first error's code with err reading `FILE:LINE: [section] key: what is
 * wrong` (the line of the key that names the file or value at fault). */
int rt_config_check(const ifp_config_file_t *cfg, char *summary, size_t len, ifp_err_t *err);

#endif
