#include "clock.h"

#include <time.h>

double ifp_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

double ifp_now_s(void) { return ifp_now_ms() * 1e-3; }
