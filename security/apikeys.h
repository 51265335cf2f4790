/* apikeys.h — the HTTP API's keys (`Authorization: Bearer KEY`).
 *
 * An API keys file (default KEYS/api_keys, security/keys.h) is text, one
 * entry a line:
 *
 *   # comment                     blank lines and lines starting with '#'
 *   client ifp-3kQ...             NAME KEY, separated by spaces or tabs
 *   alice  ifp-Zx9...
 *   alice  ifp-7Hb...             a name may have several keys (rotation)
 *
 * NAME is what the router's logs and metrics show for a request; a NAME that
 * is also a [client NAME] of the config shares that client's max_inflight.
 * A KEY belongs to one entry only.  The file holds secrets: it must be
 * private to its owner (mode 0600), as a CURVE secret key file.
 *
 * Key values never appear in an error message (a line with its fields
 * swapped would otherwise print a key); messages name PATH:LINE. */
#ifndef IFP_APIKEYS_H
#define IFP_APIKEYS_H

#include <stddef.h>

#include "err.h"

#define IFP_APIKEY_NAME 64   /* name: 1..63 of A-Z a-z 0-9 . _ - */
#define IFP_APIKEY_MAX 256   /* key: 20..256 printable ASCII, no spaces */
#define IFP_APIKEY_MIN 20
#define IFP_APIKEYS_MAX 4096 /* entries per file */
#define IFP_APIKEY_PREFIX "ifp-" /* generated keys: the prefix and ... */
#define IFP_APIKEY_RANDOM 40     /* ... this many characters of [A-Za-z0-9] */

typedef struct {
    char name[IFP_APIKEY_NAME];
    char key[IFP_APIKEY_MAX + 1];
} ifp_apikey_t;

/* 1 if s is a valid entry name (1..63 of A-Z a-z 0-9 . _ -), else 0. */
int ifp_apikey_name_ok(const char *s);

/* Reads an API keys file: one `NAME KEY` per line (blank lines and '#'
 * comments allowed, spaces/tabs separate); the file must be private to its
 * owner like a secret key (mode & 077 == 0; a symlink's target is checked):
 * "PATH: mode 0644 lets others than its owner read it; an API keys file must
 * be mode 0600 (chmod 600 PATH)".  Errors name PATH:LINE and what is wrong;
 * a key listed twice is refused; a name may have several keys.  A file
 * without any entry is valid (*keys NULL, *n 0: every request is refused).
 * *keys is malloc'd, in file order (free with ifp_apikeys_free, which zeroes
 * it first).  IFP_ENOTFOUND when the file does not exist, IFP_EINVAL for its
 * mode or kind, IFP_EFORMAT for its contents. */
int ifp_apikeys_read(const char *path, ifp_apikey_t **keys, int *n, ifp_err_t *err);
/* Zeroes and frees *keys (n entries), sets *keys to NULL; NULL is fine. */
void ifp_apikeys_free(ifp_apikey_t **keys, int n);

/* The index of the entry whose key equals key[0..len), or -1.  Every entry
 * is compared, each in time independent of where it differs from key (no
 * early exit on content; a length mismatch fails without one too); only
 * n and the entries' lengths set the time taken.  Never reads key past len
 * nor past IFP_APIKEY_MAX bytes. */
int ifp_apikeys_find(const ifp_apikey_t *keys, int n, const char *key, size_t len);

/* A new random key: "ifp-" + 40 characters of [A-Za-z0-9] from getrandom
 * (rejection sampling: every character equally likely; ~238 bits). */
int ifp_apikey_generate(char out[IFP_APIKEY_MAX + 1], ifp_err_t *err);

/* KEYS/api_keys into out[len] (keys_dir NULL or "": the default keys folder,
 * ifp_keys_dir).  IFP_ERANGE when it does not fit. */
int ifp_apikeys_path(const char *keys_dir, char *out, size_t len);

/* Adds an entry `name KEY` (a new key) for each of names[0..n_names) that
 * has no key yet, keeping every existing line and comment; creates the file
 * (mode 0600, with a comment saying what it is) when it does not exist.
 * force: new keys for the names given, their old ones dropped (other names
 * untouched).  Writes through PATH.tmp, fsync and rename (as key files), and
 * only when something changed.  An existing file must read without error
 * (ifp_apikeys_read): a broken one is never rewritten.  *added (may be
 * NULL): how many entries were added. */
int ifp_apikeys_ensure(const char *path, const char *const *names, int n_names, int force, int *added,
                       ifp_err_t *err);

/* Adds a new key for name beside the ones it has (the first step of a
 * rotation: both work until the old line is removed), as ifp_apikeys_ensure
 * writes; the new key into key. */
int ifp_apikeys_add(const char *path, const char *name, char key[IFP_APIKEY_MAX + 1], ifp_err_t *err);

#endif
