/* clock.h — the one monotonic clock every process of ifp times itself with
 * (timers, deadlines, liveness, benchmarks).  Never the wall clock: it does
 * not jump when NTP or an operator sets the time. */
#ifndef IFP_CLOCK_H
#define IFP_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC (arbitrary origin, comparable within one
 * host only). */
double ifp_now_ms(void);
/* The same in seconds. */
double ifp_now_s(void);

#endif
