/* heap.c — the simulator's event queue: a binary min-heap ordered by time,
 * then by insertion order, so simultaneous events pop first-in first-out and
 * a run never depends on the heap's internal layout (see sim.h). */
#include <stdlib.h>

#include "sim.h"

static int before(const sim_event_t *x, const sim_event_t *y) {
    return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

int sim_heap_push(sim_heap_t *h, double t, int kind, int a, int b) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 1024;
        sim_event_t *ev = realloc(h->ev, (size_t)cap * sizeof *ev);
        if (!ev) return IFP_ENOMEM;
        h->ev = ev, h->cap = cap;
    }
    sim_event_t e = {.t = t, .seq = h->next_seq++, .kind = kind, .a = a, .b = b};
    int i = h->n++;
    while (i > 0 && before(&e, &h->ev[(i - 1) / 2])) { /* sift up */
        h->ev[i] = h->ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->ev[i] = e;
    return IFP_OK;
}

int sim_heap_pop(sim_heap_t *h, sim_event_t *out) {
    if (h->n == 0) return 0;
    *out = h->ev[0];
    sim_event_t last = h->ev[--h->n];
    int i = 0;
    for (;;) { /* sift the last element down from the root */
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->ev[c + 1], &h->ev[c])) c++;
        if (!before(&h->ev[c], &last)) break;
        h->ev[i] = h->ev[c];
        i = c;
    }
    if (h->n > 0) h->ev[i] = last;
    return 1;
}

void sim_heap_free(sim_heap_t *h) {
    free(h->ev);
    *h = (sim_heap_t){0};
}
