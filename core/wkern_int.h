/* wkern_int.h — the fast kernels behind ifp_wmat_xwt / ifp_wmat_xw (core
 * internal; callers use wmat.h).  isa is never IFP_ISA_AUTO and never above
 * what the CPU supports.  Same contract as the public functions. */
#ifndef IFP_WKERN_INT_H
#define IFP_WKERN_INT_H

#include "kernels.h"
#include "wmat.h"

void ifp_wk_xwt(ifp_isa_t isa, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
                int accumulate);
void ifp_wk_xw(ifp_isa_t isa, float *y, int ldy, const float *x, int ldx, const ifp_wmat_t *w, int n,
               int accumulate);

/* Per-thread scratch of the kernels, one buffer per slot: at least bytes,
 * 64-byte aligned, this thread's own until its next call for the slot; it
 * grows and is freed when the thread exits (no allocation once grown).
 * Aborts when out of memory: the products have no error path. */
enum {
    IFP_WK_XW_IDX,   /* wk_xw: the inputs that are not zero */
    IFP_WK_XW_PART,  /* wk_xw: partial sums when accumulating */
    IFP_WK_XW_ROW,   /* wk_xw: one widened row (portable path) */
    IFP_WK_XW_PANEL, /* wk_xw: widened rows of a prefill panel */
    IFP_WK_XWT_WORK, /* wk_xwt: widened panel / decode work area */
    IFP_WK_NSLOTS
};
void *ifp_wk_scratch(int slot, size_t bytes);

#endif
