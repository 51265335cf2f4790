/* router.h — ifp-router: the one-thread broker between clients and shard
 * groups (DESIGN.md §1, §3, §4; wire contract in docs/PROTOCOL.md).
 *
 *   clients ──ROUTER (frontend)──┐              ┌──ROUTER (backend)── groups
 *                                └─ rt_router ──┘   ("G": stage 0, "G.out": last stage)
 *
 * One state object, one zmq_poll loop: timeout = the next timer (group
 * liveness, request deadlines, stats); the backend is drained first, then
 * the queue is pumped, then the frontend is read; queued work is placed
 * again before sleeping.  Nothing a peer sends can stop the loop. */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct rt_router rt_router_t;

typedef struct {
    int verbose;             /* periodic one-line stats and per-event logs on stderr */
    int shutdown_groups;     /* send Control SHUTDOWN to every group on exit */
    double stats_ms;         /* stats period with verbose (default 2000) */
    uint64_t first_rid;      /* 0: from the wall clock (rids differ across runs); fuzz targets fix it */
    uint64_t epoch;          /* Work.router_epoch; 0: random (fuzz targets fix it) */
    void *zctx;              /* NULL: a ZeroMQ context of its own; else this one (inproc:// peers in the
                                same process: fuzz targets), which the caller terminates */
    volatile sig_atomic_t *reload; /* when it becomes non-zero (SIGHUP): reload the key table
                                      (rt_router_reload_keys) and clear it */
} rt_router_opts_t;

rt_router_opts_t rt_router_default_opts(void);
/* 64 random bits (getrandom; else from the clock and the pid). */
uint64_t rt_random64(void);

/* Loads the tokenizer and model shape (not the weights), the predictor and
 * the cluster table named by cfg, and binds the frontend and backend.  Errors
 * name the file or endpoint. */
int rt_router_new(const ifp_config_file_t *cfg, const rt_router_opts_t *opts, rt_router_t **out, ifp_err_t *err);
/* Starts the HTTP gateway ([http] listen, router/http.h) when it is not
 * "off"; its address goes to stderr.  Call after rt_router_new, before
 * rt_router_run. */
int rt_router_start_http(rt_router_t *r, ifp_err_t *err);
/* Runs until *stop becomes non-zero (a signal handler sets it), then
 * answers every request still in flight with an error, optionally shuts the
 * groups down, and returns IFP_OK. */
int rt_router_run(rt_router_t *r, volatile sig_atomic_t *stop);
void rt_router_destroy(rt_router_t **r);
/* Re-reads the config file's [client] sections and the keys folder and
 * replaces the table of admitted keys (router/zap.h); on any error the old
 * table stays and the error is returned.  Other changes to the file need a
 * restart (the router says which it ignored). */
int rt_router_reload_keys(rt_router_t *r, ifp_err_t *err);

#endif
