#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_FILE_MAX 65536 /* bytes: a key file is a few lines */

static const char Z85_ALPHABET[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int ifp_key_is_z85(const char *s) {
    if (!s) return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 40 || !strchr(Z85_ALPHABET, s[n])) return 0;
    return n == 40;
}

int ifp_key_generate(ifp_keypair_t *kp, ifp_err_t *err) {
    memset(kp, 0, sizeof *kp);
    if (!zmq_has("curve")) return ifp_errf(err, IFP_EUNSUPPORTED, "this libzmq was built without CURVE");
    if (zmq_curve_keypair(kp->pub, kp->sec) != 0)
        return ifp_errf(err, IFP_EIO, "zmq_curve_keypair: %s", zmq_strerror(errno));
    return IFP_OK;
}

/* Reads a small text file whole (NUL-terminated) into *out. */
static int read_small(const char *path, int fd, char **out, ifp_err_t *err) {
    char *buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) return ifp_errf(err, IFP_ENOMEM, "out of memory");
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            return ifp_errf(err, IFP_EIO, "%s: %s", path, strerror(e));
        }
        if (k == 0) break;
        len += (size_t)k;
        if (len > KEY_FILE_MAX) {
            free(buf);
            return ifp_errf(err, IFP_EFORMAT, "%s: more than %d bytes: not a key file", path, KEY_FILE_MAX);
        }
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        free(buf);
        return ifp_errf(err, IFP_EFORMAT, "%s: holds a NUL byte: not a key file", path);
    }
    *out = buf;
    return IFP_OK;
}

/* The keys of text, one per line (comments and blank lines skipped). */
static int parse_keys(const char *path, char *text, char (*out)[IFP_Z85_KEY], int max, int *n, ifp_err_t *err) {
    *n = 0;
    int line = 0;
    for (char *s = text; *s;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        line++;
        char *b = s, *e = s + strlen(s);
        while (*b == ' ' || *b == '\t') b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        *e = '\0';
        if (*b && *b != '#') {
            if (!ifp_key_is_z85(b))
                return ifp_errf(err, IFP_EFORMAT, "%s:%d: not a CURVE key (expected 40 characters of Z85)", path, line);
            if (*n == max) return ifp_errf(err, IFP_EFORMAT, "%s:%d: more than %d keys", path, line, max);
            memcpy(out[(*n)++], b, IFP_Z85_KEY);
        }
        if (!nl) break;
        s = nl + 1;
    }
    if (!*n) return ifp_errf(err, IFP_EFORMAT, "%s: no key in the file", path);
    return IFP_OK;
}

static int open_regular(const char *path, struct stat *st, ifp_err_t *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC); /* a link is followed: the mode checked is its target's */
    if (fd < 0) {
        int e = errno;
        return ifp_errf(err, e == ENOENT ? IFP_ENOTFOUND : IFP_EIO, "%s: %s", path, strerror(e));
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return ifp_errf(err, IFP_EINVAL, "%s: not a regular file", path);
    }
    return fd;
}

int ifp_key_read_public(const char *path, char (*out)[IFP_Z85_KEY], int max, int *n, ifp_err_t *err) {
    struct stat st;
    *n = 0;
    int fd = open_regular(path, &st, err);
    if (fd < 0) return fd;
    char *text = NULL;
    int rc = read_small(path, fd, &text, err);
    close(fd);
    if (!rc) rc = parse_keys(path, text, out, max, n, err);
    free(text);
    return rc;
}

int ifp_key_read_secret(const char *path, ifp_keypair_t *kp, ifp_err_t *err) {
    memset(kp, 0, sizeof *kp);
    struct stat st;
    int fd = open_regular(path, &st, err);
    if (fd < 0) return fd;
    if (st.st_mode & 077) {
        close(fd);
        return ifp_errf(err, IFP_EINVAL,
                        "%s: mode %04o lets others than its owner %s it; a secret key must be mode 0600 "
                        "(chmod 600 %s)",
                        path, (unsigned)(st.st_mode & 07777), (st.st_mode & 044) ? "read" : "write", path);
    }
    char *text = NULL;
    int rc = read_small(path, fd, &text, err);
    close(fd);
    char one[1][IFP_Z85_KEY];
    int n = 0;
    if (!rc) rc = parse_keys(path, text, one, 1, &n, err);
    if (text) {
        memset(text, 0, strlen(text));
        free(text);
    }
    if (rc) return rc;
    memcpy(kp->sec, one[0], IFP_Z85_KEY);
    memset(one, 0, sizeof one);
    if (zmq_curve_public(kp->pub, kp->sec) != 0) {
        memset(kp, 0, sizeof *kp);
        return ifp_errf(err, IFP_EFORMAT, "%s: not a CURVE secret key", path);
    }
    return IFP_OK;
}

int ifp_key_write_file(const char *path, const char *text, unsigned mode, ifp_err_t *err) {
    char tmp[IFP_KEYS_PATH + 8];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return ifp_errf(err, IFP_EINVAL, "%s: path too long", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    if (fd < 0) return ifp_errf(err, IFP_EIO, "%s: %s", tmp, strerror(errno));
    size_t len = strlen(text), at = 0;
    int rc = IFP_OK;
    while (at < len) {
        ssize_t k = write(fd, text + at, len - at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            rc = ifp_errf(err, IFP_EIO, "%s: %s", tmp, strerror(errno));
            break;
        }
        at += (size_t)k;
    }
    if (!rc && (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0))
        rc = ifp_errf(err, IFP_EIO, "%s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !rc) rc = ifp_errf(err, IFP_EIO, "%s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0) rc = ifp_errf(err, IFP_EIO, "%s: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int ifp_key_write_pair(const char *base, const ifp_keypair_t *kp, const char *about, int force, ifp_err_t *err) {
    char key[IFP_KEYS_PATH], pub[IFP_KEYS_PATH], text[512];
    if ((size_t)snprintf(key, sizeof key, "%s.key", base) >= sizeof key ||
        (size_t)snprintf(pub, sizeof pub, "%s.pub", base) >= sizeof pub)
        return ifp_errf(err, IFP_EINVAL, "%s: path too long", base);
    struct stat st;
    if (!force && lstat(key, &st) == 0)
        return ifp_errf(err, IFP_EINVAL, "%s exists; refusing to overwrite a secret key (--force replaces it)", key);
    if (!ifp_key_is_z85(kp->pub) || !ifp_key_is_z85(kp->sec)) return ifp_errf(err, IFP_EINVAL, "not a key pair");
    snprintf(text, sizeof text, "# ifp CURVE secret key (Z85) of %s: keep it private (mode 0600)\n%s\n", about,
             kp->sec);
    int rc = ifp_key_write_file(key, text, 0600, err);
    memset(text, 0, sizeof text);
    if (rc) return rc;
    snprintf(text, sizeof text, "# ifp CURVE public key (Z85) of %s\n%s\n", about, kp->pub);
    return ifp_key_write_file(pub, text, 0644, err);
}

void ifp_keys_dir(const char *configured, char *out, size_t len) {
    const char *env = getenv("IFP_KEYS"), *run = getenv("IFP_RUN_DIR"), *user = getenv("USER");
    if (configured && *configured)
        snprintf(out, len, "%s", configured);
    else if (env && *env)
        snprintf(out, len, "%s", env);
    else if (run && *run)
        snprintf(out, len, "%s/keys", run);
    else
        snprintf(out, len, "/tmp/ifp-local-%s/keys", user && *user ? user : "root");
}

int ifp_key_base(const char *dir, const char *what, const char *name, char *out, size_t len) {
    int n;
    if (!strcmp(what, "router"))
        n = snprintf(out, len, "%s/router", dir);
    else if (!strcmp(what, "group"))
        n = snprintf(out, len, "%s/groups/%s", dir, name);
    else if (!strcmp(what, "client"))
        n = snprintf(out, len, "%s/clients/%s", dir, name);
    else if (!strcmp(what, "local"))
        n = snprintf(out, len, "%s/client", dir);
    else
        return IFP_EINVAL;
    return n < 0 || (size_t)n >= len ? IFP_ERANGE : IFP_OK;
}

int ifp_keys_mkdir(const char *path, ifp_err_t *err) {
    char buf[IFP_KEYS_PATH];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return ifp_errf(err, IFP_EINVAL, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) return ifp_errf(err, IFP_EIO, "mkdir %s: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return ifp_errf(err, IFP_EIO, "%s: not a folder", path);
    return IFP_OK;
}
