/* err.h — the one small set of return codes used by every ifp module.
 *
 * Functions return int: IFP_OK (0) on success or a negative IFP_E* code.  When
 * they can fail for a reason worth telling a user, they take an `ifp_err_t *`
 * (may be NULL) and write a one-line message naming what is wrong. */
#ifndef IFP_ERR_H
#define IFP_ERR_H

#include <stddef.h>

enum {
    IFP_OK = 0,
    IFP_EINVAL = -1,   /* bad argument or bad input value */
    IFP_EIO = -2,      /* open/read/write/mmap failed */
    IFP_EFORMAT = -3,  /* malformed file or message */
    IFP_ENOMEM = -4,   /* allocation failed */
    IFP_ENOTFOUND = -5,/* missing key, tensor, token, ... */
    IFP_ERANGE = -6,   /* value out of range / overflow */
    IFP_EUNSUPPORTED = -7, /* valid but not supported (tensor type, arch) */
};

#define IFP_ERR_MSG_LEN 512

typedef struct {
    int code;                   /* last code set, IFP_OK if none */
    char msg[IFP_ERR_MSG_LEN];  /* human-readable, no trailing newline */
} ifp_err_t;

/* Sets err (if non-NULL) to code and a printf-formatted message; returns code
 * so callers can write `return ifp_errf(err, IFP_EFORMAT, "...", ...);`. */
int ifp_errf(ifp_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (adds context on the way up). */
int ifp_err_prefix(ifp_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Static name of a code, e.g. "format error". */
const char *ifp_strerror(int code);

#endif
