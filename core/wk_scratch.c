/* wk_scratch.c — the kernels' per-thread scratch (wkern_int.h). */
#include <pthread.h>
#include <stdlib.h>

#include "wkern_int.h"

typedef struct {
    void *p[IFP_WK_NSLOTS];
    size_t cap[IFP_WK_NSLOTS]; /* bytes */
} scratch_t;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
    scratch_t *s = v;
    for (int i = 0; i < IFP_WK_NSLOTS; i++) free(s->p[i]);
    free(s);
}

static void scratch_key_init(void) {
    if (pthread_key_create(&g_scratch_key, scratch_free)) abort();
}

void *ifp_wk_scratch(int slot, size_t bytes) {
    pthread_once(&g_scratch_once, scratch_key_init);
    scratch_t *s = pthread_getspecific(g_scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(g_scratch_key, s)) abort();
    }
    if (s->cap[slot] < bytes) {
        free(s->p[slot]);
        size_t b = (bytes + 4095) & ~(size_t)4095;
        s->p[slot] = aligned_alloc(64, b);
        if (!s->p[slot]) abort(); /* no error path in the products' contract */
        s->cap[slot] = b;
    }
    return s->p[slot];
}
