#include "apikeys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

#define APIKEYS_FILE_MAX (4 << 20) /* bytes: 4096 entries of 63 + 256 characters and comments */

static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static const char HEADER[] =
    "# ifp HTTP API keys: one `NAME KEY` per line; a request sends `Authorization: Bearer KEY`.\n"
    "# Keep this file private (mode 0600).  A name may have several keys (rotation); a name that is\n"
    "# also a [client NAME] of the config shares its max_inflight.  The router re-reads it on SIGHUP.\n";

/* ---------------------------------------------------------------- lines */

/* One line of a keys file: its fields (the first three), separated by
 * spaces and tabs; a final '\r' is dropped (CRLF files). */
typedef struct {
    int n;                /* fields on the line (0: blank or comment); counts past 3 */
    const char *f[3];
    size_t len[3];
} fields_t;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static void split(const char *b, const char *e, fields_t *fl) {
    memset(fl, 0, sizeof *fl);
    if (e > b && e[-1] == '\r') e--;
    while (b < e && is_blank(*b)) b++;
    if (b == e || *b == '#') return;
    while (b < e) {
        const char *s = b;
        while (b < e && !is_blank(*b)) b++;
        if (fl->n < 3) fl->f[fl->n] = s, fl->len[fl->n] = (size_t)(b - s);
        fl->n++;
        while (b < e && is_blank(*b)) b++;
    }
}

static int name_ok(const char *s, size_t len) {
    if (len < 1 || len >= IFP_APIKEY_NAME) return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr(ALNUM, s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

int ifp_apikey_name_ok(const char *s) { return s && name_ok(s, strnlen(s, IFP_APIKEY_NAME)); }

/* The problem with a line's fields, or NULL.  Never quotes a field: either
 * may be a key (a line written KEY NAME). */
static const char *line_problem(const fields_t *fl, char *why, size_t len) {
    if (fl->n == 1) return "a name without a key (a line is `NAME KEY`)";
    if (fl->n > 2) return "more than two fields (a line is `NAME KEY`; a key holds no spaces)";
    if (!name_ok(fl->f[0], fl->len[0]))
        return fl->len[0] >= IFP_APIKEY_NAME ? "the name is longer than 63 characters"
                                             : "the name is not 1..63 of A-Z a-z 0-9 . _ -";
    if (fl->len[1] < IFP_APIKEY_MIN) {
        snprintf(why, len, "the key is %zu characters; a key has %d to %d", fl->len[1], IFP_APIKEY_MIN,
                 IFP_APIKEY_MAX);
        return why;
    }
    if (fl->len[1] > IFP_APIKEY_MAX) {
        snprintf(why, len, "the key is longer than %d characters", IFP_APIKEY_MAX);
        return why;
    }
    for (size_t i = 0; i < fl->len[1]; i++) {
        unsigned char c = (unsigned char)fl->f[1][i];
        if (c < 0x21 || c > 0x7e) {
            snprintf(why, len, "the key holds byte 0x%02x at its character %zu: a key is printable ASCII", c, i + 1);
            return why;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- read */

/* The whole file (NUL-terminated, *len bytes) after checking it is a
 * regular file private to its owner. */
static int read_private(const char *path, char **out, size_t *len, ifp_err_t *err) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC); /* a link is followed: the mode checked is its target's */
    if (fd < 0) {
        int e = errno;
        return ifp_errf(err, e == ENOENT ? IFP_ENOTFOUND : IFP_EIO, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ifp_errf(err, IFP_EINVAL, "%s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return ifp_errf(err, IFP_EINVAL,
                        "%s: mode %04o lets others than its owner %s it; an API keys file must be mode 0600 "
                        "(chmod 600 %s)",
                        path, (unsigned)(st.st_mode & 07777), (st.st_mode & 044) ? "read" : "write", path);
    }
    if (st.st_size > APIKEYS_FILE_MAX) {
        close(fd);
        return ifp_errf(err, IFP_EFORMAT, "%s: more than %d bytes: not an API keys file", path, APIKEYS_FILE_MAX);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0; /* one byte more: a file that grew is noticed */
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    int rc = IFP_OK;
    while (n < cap) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) rc = ifp_errf(err, IFP_EIO, "%s: %s", path, strerror(errno));
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(fd);
    if (!rc && n == cap) rc = ifp_errf(err, IFP_EIO, "%s: changed while it was read", path);
    if (!rc && memchr(buf, '\0', n)) rc = ifp_errf(err, IFP_EFORMAT, "%s: holds a NUL byte: not a text file", path);
    if (rc) {
        explicit_bzero(buf, cap + 1);
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return IFP_OK;
}

typedef struct {
    const char *key;
    int line;
} seen_t;

static int seen_cmp(const void *a, const void *b) {
    const seen_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Refuses a key listed twice, naming the first repeat in file order. */
static int check_unique(const char *path, const ifp_apikey_t *keys, const int *lines, int n, ifp_err_t *err) {
    if (n < 2) return IFP_OK;
    seen_t *s = malloc((size_t)n * sizeof *s);
    if (!s) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) s[i].key = keys[i].key, s[i].line = lines[i];
    qsort(s, (size_t)n, sizeof *s, seen_cmp);
    int first = 0, again = 0;
    for (int i = 1; i < n; i++)
        if (!strcmp(s[i - 1].key, s[i].key) && (!again || s[i].line < again)) first = s[i - 1].line, again = s[i].line;
    free(s);
    if (again)
        return ifp_errf(err, IFP_EFORMAT,
                        "%s:%d: the key of this line is also on line %d: a key is listed once (give each its own)",
                        path, again, first);
    return IFP_OK;
}

/* Parses text: the entries into *keys (malloc'd, NULL when none), their
 * lines into *lines (malloc'd, when lines is not NULL). */
static int parse(const char *path, const char *text, size_t len, ifp_apikey_t **keys, int **lines, int *n,
                 ifp_err_t *err) {
    *keys = NULL;
    *n = 0;
    if (lines) *lines = NULL;
    size_t cap = 1;
    for (size_t i = 0; i < len && cap <= IFP_APIKEYS_MAX; i++) cap += text[i] == '\n';
    if (cap > IFP_APIKEYS_MAX) cap = IFP_APIKEYS_MAX;
    ifp_apikey_t *k = calloc(cap, sizeof *k);
    int *ln = malloc(cap * sizeof *ln);
    if (!k || !ln) {
        free(k);
        free(ln);
        return ifp_errf(err, IFP_ENOMEM, "out of memory");
    }
    int rc = IFP_OK, count = 0, line = 0;
    char why[128];
    for (const char *s = text, *end = text + len; s < end && !rc; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        fields_t fl;
        split(s, e, &fl);
        s = nl ? nl + 1 : end;
        if (!fl.n) continue;
        const char *problem = line_problem(&fl, why, sizeof why);
        if (problem) rc = ifp_errf(err, IFP_EFORMAT, "%s:%d: %s", path, line + 1, problem);
        else if (count == IFP_APIKEYS_MAX)
            rc = ifp_errf(err, IFP_EFORMAT, "%s:%d: more than %d keys in one file", path, line + 1, IFP_APIKEYS_MAX);
        else {
            memcpy(k[count].name, fl.f[0], fl.len[0]);
            memcpy(k[count].key, fl.f[1], fl.len[1]);
            ln[count++] = line + 1;
        }
    }
    if (!rc) rc = check_unique(path, k, ln, count, err);
    if (rc || !count) ifp_apikeys_free(&k, (int)cap);
    if (rc || !lines) free(ln);
    else *lines = ln;
    if (rc) return rc;
    *keys = k;
    *n = count;
    return IFP_OK;
}

/* The text of path and its entries (text NULL: not kept). */
static int load(const char *path, char **text, size_t *text_len, ifp_apikey_t **keys, int *n, ifp_err_t *err) {
    char *buf = NULL;
    size_t len = 0;
    *keys = NULL;
    *n = 0;
    if (text) *text = NULL;
    if (!path) return ifp_errf(err, IFP_EINVAL, "no API keys file given");
    int rc = read_private(path, &buf, &len, err);
    if (!rc) rc = parse(path, buf, len, keys, NULL, n, err);
    if (!rc && text) {
        *text = buf;
        *text_len = len;
    } else if (buf) {
        explicit_bzero(buf, len);
        free(buf);
    }
    return rc;
}

int ifp_apikeys_read(const char *path, ifp_apikey_t **keys, int *n, ifp_err_t *err) {
    return load(path, NULL, NULL, keys, n, err);
}

void ifp_apikeys_free(ifp_apikey_t **keys, int n) {
    if (!keys || !*keys) return;
    if (n > 0) explicit_bzero(*keys, (size_t)n * sizeof **keys);
    free(*keys);
    *keys = NULL;
}

/* ---------------------------------------------------------------- find */

int ifp_apikeys_find(const ifp_apikey_t *keys, int n, const char *key, size_t len) {
    if (!key) len = 0;
    int found = -1;
    for (int i = 0; i < n; i++) {
        const char *k = keys[i].key;
        size_t klen = strnlen(k, IFP_APIKEY_MAX);
        /* every byte of the entry, whatever the input holds: no early exit */
        unsigned d = klen != len;
        for (size_t j = 0; j < klen; j++) {
            unsigned char b = j < len ? (unsigned char)key[j] : 0;
            d |= (unsigned char)k[j] ^ b;
        }
        /* found = i when d == 0 (keys are unique: one entry at most), without a branch */
        unsigned hit = ((d | (0u - d)) >> (sizeof d * 8 - 1)) ^ 1u;
        int mask = -(int)hit;
        found = (found & ~mask) | (i & mask);
    }
    return found;
}

/* ---------------------------------------------------------------- generate */

int ifp_apikey_generate(char out[IFP_APIKEY_MAX + 1], ifp_err_t *err) {
    memset(out, 0, IFP_APIKEY_MAX + 1);
    size_t pre = strlen(IFP_APIKEY_PREFIX), at = 0;
    memcpy(out, IFP_APIKEY_PREFIX, pre);
    unsigned char buf[64];
    while (at < IFP_APIKEY_RANDOM) {
        ssize_t k = getrandom(buf, sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            memset(out, 0, IFP_APIKEY_MAX + 1);
            return ifp_errf(err, IFP_EIO, "getrandom: %s", strerror(errno));
        }
        /* 248 = 4 * 62: bytes from 248 up are dropped, so each character is equally likely */
        for (ssize_t i = 0; i < k && at < IFP_APIKEY_RANDOM; i++)
            if (buf[i] < 248) out[pre + at++] = ALNUM[buf[i] % 62];
    }
    explicit_bzero(buf, sizeof buf);
    return IFP_OK;
}

int ifp_apikeys_path(const char *keys_dir, char *out, size_t len) {
    char dir[IFP_KEYS_PATH];
    if (!keys_dir || !*keys_dir) {
        ifp_keys_dir(NULL, dir, sizeof dir);
        keys_dir = dir;
    }
    int n = snprintf(out, len, "%s/api_keys", keys_dir);
    return n < 0 || (size_t)n >= len ? IFP_ERANGE : IFP_OK;
}

/* ---------------------------------------------------------------- ensure */

static int listed(const char *const *names, int n, const char *s, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], s, len)) return 1;
    return 0;
}

static int has_name(const ifp_apikey_t *keys, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i].name, name)) return 1;
    return 0;
}

enum { ENSURE, REPLACE, ADD }; /* what update does for each name given */

/* The file with new keys for names: ENSURE those without one, REPLACE the
 * keys of all (their lines dropped), or ADD one to each beside those it has.
 * last (may be NULL): the last key made. */
static int update(const char *path, const char *const *names, int n_names, int how, int *added,
                  char last[IFP_APIKEY_MAX + 1], ifp_err_t *err) {
    int force = how == REPLACE;
    if (added) *added = 0;
    if (n_names < 0 || (n_names && !names)) return ifp_errf(err, IFP_EINVAL, "no names given");
    for (int i = 0; i < n_names; i++)
        if (!ifp_apikey_name_ok(names[i]))
            return ifp_errf(err, IFP_EINVAL, "\"%.80s\" is not a name for an API key (1..63 of A-Z a-z 0-9 . _ -)",
                            names[i] ? names[i] : "(null)");
    char *text = NULL;
    size_t len = 0;
    ifp_apikey_t *keys = NULL;
    int n = 0, rc = load(path, &text, &len, &keys, &n, err);
    if (rc == IFP_ENOTFOUND) rc = IFP_OK;
    if (rc) return rc;

    /* the new text: the old one (force: without the lines of the names given), then the new entries */
    size_t cap = (text ? len + 1 : sizeof HEADER) + (size_t)n_names * (IFP_APIKEY_NAME + IFP_APIKEY_MAX + 2) + 1;
    char *out = malloc(cap), *w = out;
    if (!out) rc = ifp_errf(err, IFP_ENOMEM, "out of memory");
    int kept = n, made = 0;
    if (!rc && !text) {
        memcpy(w, HEADER, sizeof HEADER - 1);
        w += sizeof HEADER - 1;
    }
    for (const char *s = text, *end = text ? text + len : NULL; !rc && s && s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl + 1 : end;
        fields_t fl;
        split(s, nl ? nl : end, &fl);
        if (force && fl.n == 2 && listed(names, n_names, fl.f[0], fl.len[0])) {
            kept--;
        } else {
            memcpy(w, s, (size_t)(e - s));
            w += e - s;
            if (!nl) *w++ = '\n';
        }
        s = e;
    }
    for (int i = 0; !rc && i < n_names; i++) {
        if (listed(names, i, names[i], strlen(names[i]))) continue; /* a name given twice */
        if (how == ENSURE && has_name(keys, n, names[i])) continue;
        if (kept + made == IFP_APIKEYS_MAX) {
            rc = ifp_errf(err, IFP_ERANGE, "%s: more than %d keys in one file", path, IFP_APIKEYS_MAX);
            break;
        }
        char key[IFP_APIKEY_MAX + 1];
        do /* a key already listed (odds 2^-238) would make the file refused */
            rc = ifp_apikey_generate(key, err);
        while (!rc && ifp_apikeys_find(keys, n, key, strlen(key)) >= 0);
        if (!rc) {
            w += sprintf(w, "%s %s\n", names[i], key);
            made++;
            if (last) memcpy(last, key, sizeof key);
        }
        explicit_bzero(key, sizeof key);
    }
    if (!rc && (made || kept != n)) {
        *w = '\0';
        rc = ifp_key_write_file(path, out, 0600, err);
    }
    if (!rc && added) *added = made;
    if (out) {
        explicit_bzero(out, cap);
        free(out);
    }
    if (text) {
        explicit_bzero(text, len);
        free(text);
    }
    ifp_apikeys_free(&keys, n);
    return rc;
}

int ifp_apikeys_ensure(const char *path, const char *const *names, int n_names, int force, int *added,
                       ifp_err_t *err) {
    return update(path, names, n_names, force ? REPLACE : ENSURE, added, NULL, err);
}

int ifp_apikeys_add(const char *path, const char *name, char key[IFP_APIKEY_MAX + 1], ifp_err_t *err) {
    memset(key, 0, IFP_APIKEY_MAX + 1);
    int rc = update(path, &name, 1, ADD, NULL, key, err);
    if (rc) memset(key, 0, IFP_APIKEY_MAX + 1);
    return rc;
}
