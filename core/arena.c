#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_ALIGN 64
#define ARENA_HUGE ((size_t)2 << 20)
#define ARENA_CHUNK ((size_t)32 << 20)

typedef struct chunk {
    struct chunk *next;
    char *base;     /* 2 MiB aligned */
    size_t size;    /* usable bytes */
    size_t used;
    void *map;      /* the whole mapping (base may sit inside it) */
    size_t map_len;
} chunk_t;

struct ifp_arena {
    chunk_t *head;  /* newest first */
    size_t bytes;
    int locked;
};

ifp_arena_t *ifp_arena_new(void) { return calloc(1, sizeof(ifp_arena_t)); }

static chunk_t *chunk_new(size_t need) {
    size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
    size = (size + ARENA_HUGE - 1) & ~(ARENA_HUGE - 1);
    size_t len = size + ARENA_HUGE; /* room to align the start */
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return NULL;
    chunk_t *c = calloc(1, sizeof *c);
    if (!c) {
        munmap(map, len);
        return NULL;
    }
    uintptr_t b = ((uintptr_t)map + ARENA_HUGE - 1) & ~(uintptr_t)(ARENA_HUGE - 1);
    c->base = (char *)b;
    c->size = size;
    c->map = map;
    c->map_len = len;
#ifdef MADV_HUGEPAGE
    madvise(c->base, size, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    return c;
}

void *ifp_arena_alloc(ifp_arena_t *a, size_t bytes) {
    if (!a || bytes == 0 || bytes > SIZE_MAX / 2) return NULL;
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    chunk_t *c = a->head;
    if (!c || c->size - c->used < need) {
        if (!(c = chunk_new(need))) return NULL;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->base + c->used;
    c->used += need;
    a->bytes += bytes;
    return p;
}

size_t ifp_arena_bytes(const ifp_arena_t *a) { return a ? a->bytes : 0; }

int ifp_arena_seal(ifp_arena_t *a) {
    if (!a || !a->head) return 0;
    /* mlock succeeds within RLIMIT_MEMLOCK, or beyond it with CAP_IPC_LOCK (root) */
    int ok = 1;
    for (chunk_t *c = a->head; c && ok; c = c->next)
        if (c->used && mlock(c->base, c->used) != 0) ok = 0;
    if (!ok)
        for (chunk_t *c = a->head; c; c = c->next)
            if (c->used) munlock(c->base, c->used);
    a->locked = ok;
    return ok;
}

/* kB of AnonHugePages and Rss in the mappings that overlap the arena's chunks. */
static int huge_share(const ifp_arena_t *a, double *share) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[256];
    int in = 0;
    unsigned long long rss = 0, huge = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, kb;
        if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = 0;
            for (const chunk_t *c = a->head; c; c = c->next)
                if ((uintptr_t)c->base < hi && (uintptr_t)c->base + c->size > lo) in = 1;
        } else if (in && sscanf(line, "Rss: %llu kB", &kb) == 1) {
            rss += kb;
        } else if (in && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
            huge += kb;
        }
    }
    fclose(f);
    if (!rss) return -1;
    *share = (double)huge / (double)rss;
    return 0;
}

void ifp_arena_describe(const ifp_arena_t *a, char *buf, size_t len) {
    double share = 0.0;
    char hp[32] = "huge pages n/a";
    if (a && huge_share(a, &share) == 0) snprintf(hp, sizeof hp, "huge pages %.0f%%", 100.0 * share);
    snprintf(buf, len, "anonymous memory, %s, %s", hp, a && a->locked ? "locked" : "not locked");
}

void ifp_arena_destroy(ifp_arena_t **ap) {
    if (!ap || !*ap) return;
    for (chunk_t *c = (*ap)->head, *n; c; c = n) {
        n = c->next;
        if ((*ap)->locked && c->used) munlock(c->base, c->used);
        munmap(c->map, c->map_len);
        free(c);
    }
    free(*ap);
    *ap = NULL;
}
