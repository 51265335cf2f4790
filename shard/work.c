#include "work.h"

#include "mask.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sh_work_t *sh_work_new(int n_prompt, size_t mask_len) {
    if (n_prompt < 0) return NULL;
    size_t head = sizeof(sh_work_t), pb = sizeof(int32_t) * (size_t)n_prompt;
    sh_work_t *w = calloc(1, head + pb + mask_len);
    if (!w) return NULL;
    w->prompt = (int32_t *)(void *)((uint8_t *)w + head);
    w->n_prompt = n_prompt;
    w->mask = mask_len ? (uint8_t *)w + head + pb : NULL;
    w->mask_len = mask_len;
    w->eos = -1;
    return w;
}

void sh_work_destroy(sh_work_t **w) {
    if (!w) return;
    free(*w);
    *w = NULL;
}

int sh_mask_check(const uint8_t *mask, size_t len, int n_layers, int d_ffn, int l0, int l1, char *why, size_t wlen) {
    return ifp_mask_bits_check(mask, len, n_layers, d_ffn, l0, l1, why, wlen);
}

int sh_submask_from_bits(const uint8_t *bits, int d_ffn, const int32_t *kept, int n_kept, float *out) {
    return ifp_submask_from_bits(bits, d_ffn, kept, n_kept, out);
}

int sh_work_check(const sh_work_t *w, const ifp_config_t *c, int ctx, char *why, size_t len) {
    if (w->n_prompt <= 0) return snprintf(why, len, "empty prompt"), -1;
    if (w->n_prompt >= ctx)
        return snprintf(why, len, "prompt of %d tokens does not fit the context of %d (room for one new token needed)",
                        w->n_prompt, ctx),
               -1;
    for (int i = 0; i < w->n_prompt; i++)
        if (w->prompt[i] < 0 || w->prompt[i] >= c->vocab)
            return snprintf(why, len, "prompt token %d: id %d out of range [0, %d)", i, w->prompt[i], c->vocab), -1;
    if (w->max_new == 0) return snprintf(why, len, "max_new is 0"), -1;
    if (w->eos < -1 || w->eos >= c->vocab)
        return snprintf(why, len, "eos id %d out of range [-1, %d)", w->eos, c->vocab), -1;
    if (!isfinite(w->sp.temperature) || w->sp.temperature < 0)
        return snprintf(why, len, "temperature %g is not a finite number >= 0", (double)w->sp.temperature), -1;
    if (!isfinite(w->sp.top_p)) return snprintf(why, len, "top_p is not finite"), -1;
    if (w->mask_len && sh_mask_check(w->mask, w->mask_len, c->n_layers, c->d_ffn, 0, c->n_layers, why, len))
        return -1;
    return 0;
}

size_t sh_setup_pack(const sh_work_t *w, void *buf) {
    sh_setup_wire_t h = {
        .rid = w->rid,
        .seed = w->sp.seed,
        .max_new = w->max_new,
        .first_index = w->first_index,
        .temperature = w->sp.temperature,
        .top_p = w->sp.top_p,
        .top_k = w->sp.top_k,
        .eos = w->eos,
        .debug = w->debug != 0,
        .mask_len = (uint32_t)w->mask_len,
        .link = w->link,
    };
    memcpy(buf, &h, sizeof h);
    if (w->mask_len) memcpy((uint8_t *)buf + sizeof h, w->mask, w->mask_len);
    return sh_setup_bytes(w->mask_len);
}

int sh_setup_unpack(void *buf, size_t len, sh_work_t *w) {
    sh_setup_wire_t h;
    if (len < sizeof h) return -1;
    memcpy(&h, buf, sizeof h); /* buf need not be aligned */
    if (len != sh_setup_bytes(h.mask_len)) return -1;
    *w = (sh_work_t){
        .rid = h.rid,
        .max_new = h.max_new,
        .first_index = h.first_index,
        .sp = {.temperature = h.temperature, .top_k = h.top_k, .top_p = h.top_p, .seed = h.seed},
        .eos = h.eos,
        .debug = h.debug,
        .mask = h.mask_len ? (uint8_t *)buf + sizeof h : NULL,
        .mask_len = h.mask_len,
        .link = h.link,
    };
    return 0;
}
