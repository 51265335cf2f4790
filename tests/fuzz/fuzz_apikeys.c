/* fuzz_apikeys — the HTTP API keys file (security/apikeys.h).
 *
 * The input is written to a private file (mode 0600) and read with
 * ifp_apikeys_read.  A file read must hold valid entries only (a name of
 * 1..63 of A-Z a-z 0-9 . _ -, a key of 20..256 printable ASCII characters,
 * no key twice, at most IFP_APIKEYS_MAX); ifp_apikeys_find must agree with a
 * plain search for every key, a prefix and an extension of it, and the
 * input's own bytes.  Then ifp_apikeys_ensure rewrites it (byte 0 picks
 * force or not): the file must read again, with the entries it had, in
 * order, kept (force: but those of the name given) and the missing names
 * added. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apikeys.h"
#include "fuzz.h"

/* The index of the entry equal to q[0..len), by the obvious search. */
static int plain_find(const ifp_apikey_t *keys, int n, const char *q, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(keys[i].key) == len && !memcmp(keys[i].key, q, len)) return i;
    return -1;
}

static void check_find(const ifp_apikey_t *keys, int n, const char *q, size_t len) {
    int got = ifp_apikeys_find(keys, n, q, len), want = plain_find(keys, n, q, len);
    FUZZ_CHECK(got == want, "find: %d, the plain search: %d (len %zu)", got, want, len);
}

static void check_entries(const ifp_apikey_t *keys, int n) {
    FUZZ_CHECK(n >= 0 && n <= IFP_APIKEYS_MAX, "%d entries", n);
    FUZZ_CHECK((n == 0) == (keys == NULL), "%d entries at %p", n, (const void *)keys);
    for (int i = 0; i < n; i++) {
        ifp_fuzz_touch_str(keys[i].name);
        size_t len = ifp_fuzz_touch_str(keys[i].key);
        FUZZ_CHECK(ifp_apikey_name_ok(keys[i].name), "entry %d: a bad name was accepted", i);
        FUZZ_CHECK(len >= IFP_APIKEY_MIN && len <= IFP_APIKEY_MAX, "entry %d: a key of %zu characters", i, len);
        for (size_t j = 0; j < len; j++)
            FUZZ_CHECK(keys[i].key[j] > ' ' && keys[i].key[j] < 0x7f, "entry %d: byte 0x%02x in a key", i,
                       (unsigned char)keys[i].key[j]);
        /* unique: the search finds this entry, not an earlier one */
        FUZZ_CHECK(ifp_apikeys_find(keys, n, keys[i].key, len) == i, "entry %d: its key is found elsewhere", i);
    }
}

static void write_private(const char *path, const uint8_t *data, size_t size) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot write %s", path);
    FUZZ_CHECK(fchmod(fd, 0600) == 0, "chmod %s", path);
    FUZZ_CHECK(!size || write(fd, data, size) == (ssize_t)size, "write %s", path);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *tmp = ifp_fuzz_tmp_path("api_keys");
    char path[600];
    snprintf(path, sizeof path, "%s", tmp);
    write_private(path, data, size);

    ifp_apikey_t *keys = NULL;
    int n = -1;
    ifp_err_t err = {0};
    int rc = ifp_apikeys_read(path, &keys, &n, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(rc == IFP_EFORMAT, "rc %d for a private regular file: %s", rc, err.msg);
        FUZZ_CHECK(keys == NULL && n == 0, "a refused file left %d entries", n);
        FUZZ_CHECK(!strncmp(err.msg, path, strlen(path)), "the message does not name the file: %s", err.msg);
        return 0;
    }
    check_entries(keys, n);
    char q[IFP_APIKEY_MAX + 2];
    for (int i = 0; i < n; i++) {
        size_t len = strlen(keys[i].key);
        memcpy(q, keys[i].key, len);
        check_find(keys, n, q, len - 1); /* a prefix (may be another entry's key) */
        q[len] = data[i % (size ? size : 1)] | 0x21;
        check_find(keys, n, q, len + 1); /* longer */
        q[len / 2] ^= 1;
        check_find(keys, n, q, len); /* one character off */
    }
    check_find(keys, n, (const char *)data, size);
    check_find(keys, n, NULL, 0);

    /* ensure: the name of the first entry and one that may be new */
    int force = size && (data[0] & 1), added = -1;
    const char *names[2] = {n ? keys[0].name : "fuzz-a", "fuzz-new"};
    if (!strcmp(names[0], names[1])) names[1] = "fuzz-new2"; /* two names */
    memset(&err, 0, sizeof err);
    rc = ifp_apikeys_ensure(path, names, 2, force, &added, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        FUZZ_CHECK(rc == IFP_ERANGE && n >= IFP_APIKEYS_MAX - 2, "ensure on a file read: %s", err.msg);
        ifp_apikeys_free(&keys, n);
        return 0;
    }
    ifp_apikey_t *after = NULL;
    int m = -1;
    FUZZ_CHECK(ifp_apikeys_read(path, &after, &m, &err) == 0, "the file ensure wrote does not read: %s", err.msg);
    check_entries(after, m);
    struct stat st;
    FUZZ_CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "ensure left mode %o", st.st_mode & 07777);
    /* the old entries, in order (force: without those of names[0] and names[1]), then the new */
    int at = 0, has[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int named = !strcmp(keys[i].name, names[0]) ? 0 : !strcmp(keys[i].name, names[1]) ? 1 : -1;
        if (named >= 0) has[named] = 1;
        if (force && named >= 0) continue;
        FUZZ_CHECK(at < m && !strcmp(after[at].name, keys[i].name) && !strcmp(after[at].key, keys[i].key),
                   "entry %d was not kept in place", i);
        at++;
    }
    int want_added = force ? 2 : !has[0] + !has[1];
    FUZZ_CHECK(added == want_added && m == at + added, "added %d (want %d), %d entries after, %d kept", added,
               want_added, m, at);
    for (int i = at; i < m; i++) {
        FUZZ_CHECK(!strcmp(after[i].name, names[0]) || !strcmp(after[i].name, names[1]), "a new entry of another name");
        FUZZ_CHECK(strlen(after[i].key) == 44 && !strncmp(after[i].key, "ifp-", 4), "a new key not of the format");
    }
    ifp_apikeys_free(&after, m);
    ifp_apikeys_free(&keys, n);
    return 0;
}
