/* sampler.h — next-token sampling: greedy, temperature, top-k, top-p.
 *
 * Randomness is counter-based: the uniform draw for position pos of a request
 * is a pure function of (seed, pos), so a request replayed from any position
 * (e.g. after a failover) reproduces the same tokens. */
#ifndef IFP_SAMPLER_H
#define IFP_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature; /* <= 0: greedy (argmax, ties -> lowest id) */
    int top_k;         /* <= 0 or >= vocab: off */
    float top_p;       /* >= 1 or <= 0: off */
    uint64_t seed;
} ifp_sampler_params_t;

ifp_sampler_params_t ifp_sampler_default_params(void); /* greedy, top_k 0, top_p 1, seed 0 */

typedef struct ifp_sampler ifp_sampler_t;

/* Scratch for a vocabulary of n_vocab; NULL on allocation failure. */
ifp_sampler_t *ifp_sampler_new(int n_vocab);
void ifp_sampler_destroy(ifp_sampler_t **s);

/* Picks the token at absolute sequence position pos (the position the new
 * token will occupy) from logits[n_vocab].  logits is not modified.  Never
 * allocates. */
int ifp_sampler_sample(ifp_sampler_t *s, const ifp_sampler_params_t *p, const float *logits, uint64_t pos);

/* Argmax, ties -> lowest index. */
int ifp_argmax(const float *x, int n);

/* The counter-based uniform draw in [0,1) for (seed, pos). */
float ifp_rng_uniform(uint64_t seed, uint64_t pos);

#endif
