/* reqtable.h — the router's index of requests in flight.  No sockets, no
 * rules: a container of rt_req_t (router/request.h) that finds a request by
 * its router-wide id (rid, sent to groups) and by its client (ROUTER
 * identity bytes + client-chosen id string, for Cancel), keeps arrival
 * order, the FIFO of requests waiting for a slot (replays at its front) and,
 * per group, the list of requests running there (so a heartbeat or a death
 * costs O(requests on that group)). */
#ifndef RT_REQTABLE_H
#define RT_REQTABLE_H

#include <stdint.h>

#include "request.h"

typedef struct rt_reqtable rt_reqtable_t;

/* rids are first_rid, first_rid + 1, ...  (pick a first_rid unlikely to
 * repeat across router runs: groups may still hold work of a previous run).
 * n_groups: groups that may hold requests (indices 0 .. n_groups-1). */
rt_reqtable_t *rt_reqtable_new(uint64_t first_rid, int n_groups);
/* Rids go first_rid, first_rid + step, ... (default step 1).  Several
 * routers share the groups: router i of n starts at a multiple of
 * IFP_CFG_MAX_ROUTERS plus i and steps by IFP_CFG_MAX_ROUTERS, so their
 * rids never meet. */
void rt_reqtable_rid_step(rt_reqtable_t *t, uint64_t step);
void rt_reqtable_destroy(rt_reqtable_t **t);

/* A new request (state PREDICTING) for client (ident, id); NULL if out of
 * memory or ident_len is not 1..RT_IDENT_MAX. */
rt_req_t *rt_reqtable_add(rt_reqtable_t *t, const void *ident, int ident_len, const char *id);
/* Unlinks (queue and group list included) and frees *r; sets *r to NULL. */
void rt_reqtable_remove(rt_reqtable_t *t, rt_req_t **r);
rt_req_t *rt_reqtable_find(const rt_reqtable_t *t, uint64_t rid);
rt_req_t *rt_reqtable_find_client(const rt_reqtable_t *t, const void *ident, int ident_len, const char *id);
int rt_reqtable_count(const rt_reqtable_t *t);
rt_req_t *rt_reqtable_first(const rt_reqtable_t *t); /* then r->next */
/* Requests in each state. */
int rt_reqtable_count_state(const rt_reqtable_t *t, rt_req_state_t s);
/* Keeps the per-state counts right: call after every rt_req_set_state. */
void rt_reqtable_note_state(rt_reqtable_t *t, rt_req_state_t from, rt_req_state_t to);

/* The FIFO of requests waiting for a slot. */
void rt_reqtable_enqueue(rt_reqtable_t *t, rt_req_t *r, int at_front);
void rt_reqtable_dequeue(rt_reqtable_t *t, rt_req_t *r); /* no-op if not queued */
rt_req_t *rt_reqtable_queue_head(const rt_reqtable_t *t); /* then r->qnext */
int rt_reqtable_queue_len(const rt_reqtable_t *t);

/* The requests running on group g (r->group == g): link when it starts
 * running there, unlink when it leaves. */
void rt_reqtable_group_link(rt_reqtable_t *t, rt_req_t *r, int g);
void rt_reqtable_group_unlink(rt_reqtable_t *t, rt_req_t *r);
rt_req_t *rt_reqtable_group_first(const rt_reqtable_t *t, int g); /* then r->gnext */
int rt_reqtable_group_count(const rt_reqtable_t *t, int g);

/* Requests per client key (r->client, set once, right after add). */
int rt_reqtable_set_client(rt_reqtable_t *t, rt_req_t *r, int client_index);
int rt_reqtable_client_count(const rt_reqtable_t *t, int client_index);

#endif
