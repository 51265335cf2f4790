/* arena.h — resident memory for weights.
 *
 * A bump allocator over anonymous mappings (2 MiB aligned, transparent huge
 * pages requested with madvise).  Weights copied here stay in memory while
 * the process lives — unlike pages of a mapped file, which the kernel
 * reclaims when they sit idle and reads back slowly later.  ifp_arena_seal
 * locks the used part (mlock) when RLIMIT_MEMLOCK (or CAP_IPC_LOCK) allows. */
#ifndef IFP_ARENA_H
#define IFP_ARENA_H

#include <stddef.h>

typedef struct ifp_arena ifp_arena_t;

/* NULL when out of memory. */
ifp_arena_t *ifp_arena_new(void);
void ifp_arena_destroy(ifp_arena_t **a);

/* bytes (> 0) of uninitialised memory, 64-byte aligned; NULL when out of
 * memory.  Lives until the arena is destroyed. */
void *ifp_arena_alloc(ifp_arena_t *a, size_t bytes);
/* Bytes handed out so far. */
size_t ifp_arena_bytes(const ifp_arena_t *a);

/* Done allocating: tries to lock what was handed out.  Returns 1 if locked. */
int ifp_arena_seal(ifp_arena_t *a);
/* "anonymous memory, huge pages 94%, locked" (huge-page share read from
 * /proc/self/smaps; "huge pages n/a" where that is not available). */
void ifp_arena_describe(const ifp_arena_t *a, char *buf, size_t len);

#endif
