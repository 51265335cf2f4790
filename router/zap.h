/* zap.h — who may connect to the router, and as whom.
 *
 * With CURVE on ([security] curve, the default) the router's frontend and
 * backend are CURVE servers, and libzmq asks this module (ZAP, RFC 27, over
 * inproc://zeromq.zap.01) about every new connection: the frontend admits
 * the client keys (KEYS/clients/NAME.pub, and `key` of each [client NAME]
 * section), the backend the keys of the configured groups
 * (KEYS/groups/NAME.pub) — each domain only its own kind.  An admitted
 * connection's User-Id is its public key (Z85); the router looks it up on
 * every message (rt_zap_who), so a group's messages count only when they
 * come with that group's key, and a key removed by a reload (SIGHUP) stops
 * working at once, on connections already made too.
 *
 * A key may be listed under one name only.  The table is rebuilt as a whole
 * (rt_zap_load): a file that cannot be read keeps the old table. */
#ifndef RT_ZAP_H
#define RT_ZAP_H

#include "config.h"
#include "err.h"

typedef struct rt_zap rt_zap_t;

enum { RT_PEER_UNKNOWN = 0, RT_PEER_GROUP = 1, RT_PEER_CLIENT = 2 };

typedef struct {
    char name[IFP_CFG_NAME];
    int max_inflight; /* requests at once; 0 = no limit */
    int admitted;     /* 0: no key of it any more (a reload removed it) */
} rt_client_t;

/* Binds the ZAP endpoint in zctx (before any CURVE socket binds). */
int rt_zap_new(void *zctx, rt_zap_t **out, ifp_err_t *err);
void rt_zap_destroy(rt_zap_t **z);
/* (Re)builds the key table from cfg (its groups, in order, are indexes
 * 0..n_groups-1; its [client] sections) and the keys folder dir.  Client
 * indexes stay the same across reloads (a client keeps its slot by name). */
int rt_zap_load(rt_zap_t *z, const ifp_config_file_t *cfg, const char *dir, ifp_err_t *err);
void *rt_zap_socket(rt_zap_t *z);
/* The checks of rt_zap_load without a router (ifp-router --check-config):
 * every key file of cfg readable and well-formed; the counts of keys. */
int rt_zap_check(const ifp_config_file_t *cfg, const char *dir, int *group_keys, int *client_keys, ifp_err_t *err);
/* Answers the waiting ZAP requests; refused ones are counted and told to
 * log (a line for each, through the callback, with a reason). */
typedef void (*rt_zap_log_fn)(void *ctx, const char *line);
void rt_zap_serve(rt_zap_t *z, rt_zap_log_fn log, void *ctx);
/* The owner of a connection (its User-Id): RT_PEER_* and its index (group
 * index, or client index). */
int rt_zap_who(const rt_zap_t *z, const char *user_id, int *index);
const rt_client_t *rt_zap_client(const rt_zap_t *z, int i);
int rt_zap_n_clients(const rt_zap_t *z);
/* The index of the admitted client named name, or -1. */
int rt_zap_client_index(const rt_zap_t *z, const char *name);
/* Keys in the table, of groups and of clients; handshakes refused so far. */
void rt_zap_counts(const rt_zap_t *z, int *group_keys, int *client_keys, unsigned long long *refused);

#endif
