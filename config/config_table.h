/* config_table.h — the option table of the cluster config: one row per key
 * (section, key, kind, where it goes, bounds or choices, default), the
 * value parsers and checks of each kind, and the defaults they give.  Not
 * API: only config.c and config_table.c include it (config.h is the API).
 *
 * A row's index (from 0) is where its line goes in the `lines[IFP_CFG_KEYS]`
 * arrays of ifp_config_file_t, ifp_group_cfg_t and ifp_client_cfg_t. */
#ifndef IFP_CONFIG_TABLE_H
#define IFP_CONFIG_TABLE_H

#include <stddef.h>

#include "config.h"

/* The sections, in the order of ifp_cfg_sect_name. */
typedef enum { IFP_CFG_S_ROUTER, IFP_CFG_S_MODEL, IFP_CFG_S_SECURITY, IFP_CFG_S_DEPLOY, IFP_CFG_S_GROUP,
               IFP_CFG_S_CLIENT, IFP_CFG_S_HTTP, IFP_CFG_S_ROUTERS, IFP_CFG_S_NONE } ifp_cfg_sect_t;

typedef enum {
    IFP_CFG_K_INT,      /* min..max */
    IFP_CFG_K_DOUBLE,   /* min..max, finite */
    IFP_CFG_K_ENDPOINT, /* a ZeroMQ endpoint */
    IFP_CFG_K_CHOICE,   /* one of choices, kept as written */
    IFP_CFG_K_ONOFF,    /* "on" or "off" -> int 1 / 0 */
    IFP_CFG_K_PATH,     /* a file; relative to the config file's folder */
    IFP_CFG_K_DIR,      /* a folder; relative to the config file's folder; need not exist */
    IFP_CFG_K_CLUSTER,  /* "dense" (or -1), or 0..max */
    IFP_CFG_K_LAYERS,   /* comma-separated positive counts (group only) */
    IFP_CFG_K_IFLIST,   /* comma-separated interfaces or CIDR subnets (group only) */
    IFP_CFG_K_KEY,      /* a Z85 CURVE public key, or a file holding one (client only) */
    IFP_CFG_K_HOST,     /* a host name, an IP address or a network namespace name */
    IFP_CFG_K_HOSTLIST, /* comma-separated hosts: one, or one per stage (group only; sets n_hosts) */
    IFP_CFG_K_STRING,   /* printable characters (a command, options), kept as written */
    IFP_CFG_K_LISTEN,   /* "off", or ADDRESS:PORT with an IPv4 address, [IPv6] or localhost */
} ifp_cfg_kind_t;

/* One row: where the value goes is an offset into ifp_config_file_t for
 * [router], [model], [security], [deploy] and [http], into ifp_group_cfg_t for [group NAME],
 * into ifp_client_cfg_t for [client NAME], into ifp_router_cfg_t for [router NAME].  def is the default as it would
 * be written in the file, applied by the same parser ("" = none: the field
 * stays zero, "" for a string; a value written in the file is never empty). */
typedef struct {
    ifp_cfg_sect_t sect;
    const char *key;
    ifp_cfg_kind_t kind;
    size_t off, size;
    double min, max;
    const char *choices; /* IFP_CFG_K_CHOICE: "a|b|c" */
    const char *def;
} ifp_cfg_opt_t;

extern const ifp_cfg_opt_t IFP_CFG_OPTS[];
extern const int IFP_CFG_N_OPTS;

/* "router", "model", "security", "deploy", "group", "client", "http", and
 * "router" for [router NAME] (IFP_CFG_S_ROUTERS). */
const char *ifp_cfg_sect_name(ifp_cfg_sect_t s);

/* The row of key in sect (IFP_CFG_S_NONE: in any section), or NULL; *row
 * (when not NULL) gets its index. */
const ifp_cfg_opt_t *ifp_cfg_find_opt(ifp_cfg_sect_t sect, const char *key, int *row);

/* The values row o accepts, in words (for messages and ifp_config_key_info). */
void ifp_cfg_range_text(const ifp_cfg_opt_t *o, char *buf, size_t len);

/* val -> the field of base (the struct of o's section) that row o names;
 * relative paths resolve against base_dir (NULL or "": left as written).
 * Returns 0, or -1 with why = what is wrong (without section and key). */
int ifp_cfg_parse_value(const ifp_cfg_opt_t *o, void *base, const char *val, const char *base_dir, char *why,
                        size_t len);

/* "ADDRESS:PORT" (IFP_CFG_K_LISTEN, not "off") -> the address as
 * inet_pton takes it ("localhost" -> 127.0.0.1, brackets off an IPv6 one)
 * and the port; addr may be NULL.  0, or -1 if val is not one. */
int ifp_cfg_parse_listen(const char *val, char *addr, size_t addr_len, int *port);

/* The defaults of every row of sect into base (asserts they parse). */
void ifp_cfg_apply_defaults(ifp_cfg_sect_t sect, void *base);

#endif
