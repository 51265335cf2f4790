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

#endif
