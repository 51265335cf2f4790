#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ifp_errf(ifp_err_t *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ifp_err_prefix(ifp_err_t *err, const char *fmt, ...) {
    if (!err) return IFP_OK;
    char old[IFP_ERR_MSG_LEN];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof err->msg - 2) return err->code;
    size_t used = (size_t)n;
    err->msg[used++] = ':';
    err->msg[used++] = ' ';
    size_t room = sizeof err->msg - used - 1, len = strnlen(old, sizeof old);
    if (len > room) len = room;
    memcpy(err->msg + used, old, len);
    err->msg[used + len] = '\0';
    return err->code;
}

const char *ifp_strerror(int code) {
    switch (code) {
    case IFP_OK: return "ok";
    case IFP_EINVAL: return "invalid argument";
    case IFP_EIO: return "i/o error";
    case IFP_EFORMAT: return "format error";
    case IFP_ENOMEM: return "out of memory";
    case IFP_ENOTFOUND: return "not found";
    case IFP_ERANGE: return "out of range";
    case IFP_EUNSUPPORTED: return "unsupported";
    default: return "unknown error";
    }
}
