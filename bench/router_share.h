/* router_share.h — what choosing a mask costs the router at the paper's 9B
 * shape, as a share of time-to-first-token (bench_router's second part).
 *
 * The router's own code: its predictor pool (router/predict.c, one worker)
 * with a 9B-target predictor of the paper's proportions (302M backbone,
 * head over 56 x 24576) and 4 cluster unions runs a job — scores on the
 * prompt, top-K per layer, the mask packed as Work.mask bits, its coverage
 * by each union and its nearest medoid — and the balancer picks a group
 * from that coverage.  overhead = submit -> job back -> pick.  The prefill
 * it precedes: a dense stage of the 9B and 3B shapes (the compacted model
 * computes like 3B) on the same prompt, composed to 56 layers. */
#ifndef BR_ROUTER_SHARE_H
#define BR_ROUTER_SHARE_H

#include "benchlib.h"
#include "err.h"

enum { BR_SHARE_LONG = 512, BR_SHARE_SHORT = 128 }; /* prompt tokens the predictor reads */

typedef struct {
    int runs, layers;
    double params;                 /* the predictor's */
    double over_ms[2], work_ms[2]; /* median overhead and worker time: [0] 512 tokens, [1] 128 */
    double pick_us;                /* the balancer's pick from the coverage */
    double prefill56_9b, prefill56_3b; /* seconds, 512 tokens */
} br_share_t;

int br_measure_share(int runs, int layers, const char *tmpdir, br_share_t *s, ifp_err_t *err);
void br_print_share(const br_share_t *s);
void br_share_csv(const br_share_t *s, bl_csv_t *csv);
void br_share_headline(const br_share_t *s, bl_headline_t *h);

#endif
