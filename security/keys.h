/* keys.h — CURVE key files and where a deployment keeps them.
 *
 * A key is 32 bytes, written as 40 characters of Z85 (ZeroMQ's text form).
 * A file holds one key per line; blank lines and lines starting with '#'
 * are comments.  NAME.pub holds public keys (several: the keys admitted
 * under that name, for rotation); NAME.key holds one secret key and must be
 * readable by its owner only (mode 0600: a secret file that its group or
 * anyone else may read or write is refused).
 *
 * The keys folder of a deployment (KEYS):
 *   KEYS/router.key, router.pub        the router's pair
 *   KEYS/groups/NAME.key, NAME.pub     shard group NAME's pair (every rank
 *                                      of the group reads NAME.key; the
 *                                      router admits NAME.pub as NAME)
 *   KEYS/clients/NAME.pub              client keys the router admits, as NAME
 *   KEYS/client.key, client.pub        this machine's client pair: what
 *                                      `ifp client` uses unless told otherwise
 *   KEYS/api_keys                      the HTTP API's keys (`NAME KEY` lines,
 *                                      mode 0600; security/apikeys.h)
 * KEYS is `[security] keys` of the config when set, else $IFP_KEYS, else
 * ${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys (the local deployment's). */
#ifndef IFP_KEYS_H
#define IFP_KEYS_H

#include <stddef.h>

#include "err.h"

#define IFP_Z85_KEY 41 /* 40 characters and a NUL */
#define IFP_KEYS_PATH 1024

typedef struct {
    char pub[IFP_Z85_KEY];
    char sec[IFP_Z85_KEY];
} ifp_keypair_t;

/* 1 if s is exactly 40 characters of the Z85 alphabet. */
int ifp_key_is_z85(const char *s);

/* A fresh pair from the system's random source. */
int ifp_key_generate(ifp_keypair_t *kp, ifp_err_t *err);

/* Reads the public keys of path: *n of them (1..max) into out.  A file with
 * no key, a line that is not a key, or more than max keys is an error naming
 * the file and line. */
int ifp_key_read_public(const char *path, char (*out)[IFP_Z85_KEY], int max, int *n, ifp_err_t *err);

/* Reads the secret key of path (exactly one) and derives its public key.
 * Refuses a file whose mode lets its group or others read or write it, and
 * one that is not a regular file. */
int ifp_key_read_secret(const char *path, ifp_keypair_t *kp, ifp_err_t *err);

/* Writes BASE.key (mode 0600) and BASE.pub (0644), each through a temporary
 * file renamed into place; `about` goes into their comment line.  Refuses to
 * overwrite an existing BASE.key unless force. */
int ifp_key_write_pair(const char *base, const ifp_keypair_t *kp, const char *about, int force, ifp_err_t *err);

/* Writes text to path through PATH.tmp (created with mode, never through a
 * symbolic link), fsynced, then renamed over path: a reader sees the old
 * file or the new one, never half of one.  Used for every key file. */
int ifp_key_write_file(const char *path, const char *text, unsigned mode, ifp_err_t *err);

/* The keys folder: configured (when not empty), else $IFP_KEYS, else
 * ${IFP_RUN_DIR:-/tmp/ifp-local-$USER}/keys. */
void ifp_keys_dir(const char *configured, char *out, size_t len);

/* KEYS/router, KEYS/groups/NAME, KEYS/clients/NAME, KEYS/client — the base
 * path (no extension) of a role's files; what is "router", "group",
 * "client" (an admitted client's .pub) or "local" (this machine's client). */
int ifp_key_base(const char *dir, const char *what, const char *name, char *out, size_t len);

/* mkdir -p path with mode 0700 for what it creates. */
int ifp_keys_mkdir(const char *path, ifp_err_t *err);

#endif
