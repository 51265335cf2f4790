/* test_apikeys — the HTTP API keys file (security/apikeys.h) and
 * `ifp keygen`'s part in it.
 *
 *   - reading: good files (comments, blank lines, tabs, CRLF, no final
 *     newline, rotation: a name with two keys), an empty file, every error
 *     with the line it names (bad or long name, short or long key, spaces,
 *     non-ASCII, a name alone, a key listed twice, a NUL byte, more than
 *     IFP_APIKEYS_MAX entries) — no message quotes a key; the mode check
 *     (0644, 0640, 0620 refused with the chmod hint, a symlink to a 0644
 *     file refused, to a 0600 file read), a folder, a missing file;
 *   - find: hit, miss, a prefix of a key, longer than a key, empty, NULL;
 *   - generate: the format, two keys differ, every character used;
 *   - ensure: creates the file (0600, its comment, the entries), keeps
 *     existing entries and comments, adds only missing names, writes
 *     nothing when nothing is missing, force replaces the names given
 *     (their rotation keys too), add puts a second key beside a name's,
 *     a broken file is never rewritten, a bad name is refused;
 *   - ifp keygen --config: makes KEYS/api_keys ("client" and one per
 *     [client NAME]) and keeps it on a second run, prints where it is and
 *     never a key; --api-key NAME prints that key alone on stdout (adding
 *     one when NAME has none; --force replaces it; --new adds another). */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apikeys.h"
#include "keys.h"
#include "testutil.h"

#define IFP_BIN IFP_BINARY_DIR "/tools/ifp"
#define K1 "ifp-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define K2 "ifp-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define K3 "x~!@#$%^&*()_+{}|:<>?"                       /* 21 printable characters */
#define CLIENT_KEY "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" /* a CURVE public key for [client NAME] */

static char g_dir[64];

/* g_dir/name, in one of a few rotating buffers. */
static const char *tpath(const char *name) {
    static char paths[4][256];
    static int at;
    char *p = paths[at++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", g_dir, name);
    return p;
}

static const char *put(const char *name, const char *text, size_t len, mode_t mode) {
    const char *p = tpath(name);
    unlink(p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static const char *put_str(const char *name, const char *text) { return put(name, text, strlen(text), 0600); }

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **u) {
    (void)u;
    snprintf(g_dir, sizeof g_dir, "/tmp/ifp-test-apikeys-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **u) {
    (void)u;
    return nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- read */

static void read_good(void **u) {
    (void)u;
    const char *p = put_str("good", "# the keys\n"
                                    "\n"
                                    "client " K1 "\n"
                                    "   \t# an indented comment\n"
                                    "alice\t\t" K2 "  \r\n"
                                    "  alice " K3 "\n"
                                    "a.b_c-D9 " K1 "x");
    ifp_apikey_t *keys = NULL;
    int n = -1;
    ifp_err_t err = {0};
    int rc = ifp_apikeys_read(p, &keys, &n, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(n, 4);
    assert_string_equal(keys[0].name, "client");
    assert_string_equal(keys[0].key, K1);
    assert_string_equal(keys[1].name, "alice");
    assert_string_equal(keys[1].key, K2);
    assert_string_equal(keys[2].name, "alice"); /* rotation: a second key of one name */
    assert_string_equal(keys[2].key, K3);
    assert_string_equal(keys[3].name, "a.b_c-D9");
    assert_string_equal(keys[3].key, K1 "x");
    ifp_apikeys_free(&keys, n);
    assert_null(keys);
    ifp_apikeys_free(&keys, 0); /* NULL is fine */
    ifp_apikeys_free(NULL, 0);

    /* limits: a 63-character name, keys of 20 and 256 characters */
    char text[1024], name[64], k20[21], k256[257];
    memset(name, 'n', 63), name[63] = '\0';
    memset(k20, '2', 20), k20[20] = '\0';
    memset(k256, 'z', 256), k256[256] = '\0';
    snprintf(text, sizeof text, "%s %s\nb %s\n", name, k20, k256);
    assert_int_equal(ifp_apikeys_read(put_str("limits", text), &keys, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].name, name);
    assert_string_equal(keys[1].key, k256);
    ifp_apikeys_free(&keys, n);

    /* no entry: valid, nobody admitted */
    keys = (ifp_apikey_t *)&err;
    assert_int_equal(ifp_apikeys_read(put_str("empty", "# nobody yet\n\n"), &keys, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(keys);
    assert_int_equal(ifp_apikeys_read(put_str("void", ""), &keys, &n, &err), 0);
    assert_int_equal(n, 0);
}

/* text is refused with code and a message holding want (PATH:LINE: ...),
 * which never quotes a key of the file. */
static void refused(const char *text, size_t len, int code, const char *want) {
    const char *p = put("bad", text, len, 0600);
    ifp_apikey_t *keys = (ifp_apikey_t *)&keys;
    int n = -1;
    ifp_err_t err = {0};
    int rc = ifp_apikeys_read(p, &keys, &n, &err);
    if (rc != code) fail_msg("%s: rc %d, want %d (%s)", want, rc, code, err.msg);
    assert_null(keys);
    assert_int_equal(n, 0);
    char full[600];
    snprintf(full, sizeof full, "%s%s", p, want);
    if (!strstr(err.msg, full)) fail_msg("message \"%s\", want \"%s\"", err.msg, full);
    assert_null(strstr(err.msg, "ifp-AAAA"));
    assert_null(strstr(err.msg, "ifp-BBBB"));
}

static void read_errors(void **u) {
    (void)u;
#define R(text, want) refused(text, sizeof text - 1, IFP_EFORMAT, want)
    R("# x\nal/ice " K1 "\n", ":2: the name is not 1..63 of A-Z a-z 0-9 . _ -");
    R("al\xc3\xa9 " K1 "\n", ":1: the name is not");
    R("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn " K1 "\n",
      ":1: the name is longer than 63 characters");
    R("alice 1234567890123456789\n", ":1: the key is 19 characters; a key has 20 to 256");
    R("alice " K1 K1 K1 K1 K1 K1 "zzz\n", ":1: the key is longer than 256 characters");
    R("\nalice " K1 " " K2 "\n", ":2: more than two fields (a line is `NAME KEY`; a key holds no spaces)");
    R("alice ifp-AAAA AAAAAAAAAAAAAAAAAAAAAAAA\n", ":1: more than two fields");
    R("alice\n", ":1: a name without a key");
    R(K1 "\n", ":1: a name without a key");
    R("alice ifp-AAAAAAAAAAAAAAAAAAAA\xc3\xa9\n", ":1: the key holds byte 0xc3 at its character 25");
    R("alice ifp-AAAAAAAAAAAAAAAAAAAA\x7f\n", ":1: the key holds byte 0x7f");
    R("alice ifp-AAAAAAAAAAAAAAAAAAAA\rB\n", ":1: the key holds byte 0x0d");
    R("alice " K1 "\nbob " K2 "\n\ncarol " K1 "\n",
      ":4: the key of this line is also on line 1: a key is listed once");
    R("alice " K1 "\nalice " K1 "\n", ":2: the key of this line is also on line 1");
    R("a " K2 "\nb " K1 "\nc " K2 "\nd " K1 "\n", ":3: the key of this line is also on line 1");
    R("alice " K1 "\0\n", ": holds a NUL byte");
#undef R
    /* IFP_APIKEYS_MAX entries are fine, one more is not */
    size_t cap = (IFP_APIKEYS_MAX + 2) * 40;
    char *text = malloc(cap), *w = text;
    w += sprintf(w, "# many\n");
    for (int i = 0; i < IFP_APIKEYS_MAX; i++) w += sprintf(w, "n%d key-%020d\n", i % 7, i);
    ifp_apikey_t *keys = NULL;
    int n = 0;
    ifp_err_t err = {0};
    int rc = ifp_apikeys_read(put("many", text, (size_t)(w - text), 0600), &keys, &n, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(n, IFP_APIKEYS_MAX);
    assert_int_equal(ifp_apikeys_find(keys, n, "key-00000000000000004095", 24), IFP_APIKEYS_MAX - 1);
    ifp_apikeys_free(&keys, n);
    w += sprintf(w, "one more-than-the-limit-key\n");
    char want[64];
    snprintf(want, sizeof want, ":%d: more than %d keys in one file", IFP_APIKEYS_MAX + 2, IFP_APIKEYS_MAX);
    refused(text, (size_t)(w - text), IFP_EFORMAT, want);
    free(text);
}

static void read_modes(void **u) {
    (void)u;
    const char *good = "client " K1 "\n";
    ifp_apikey_t *keys = NULL;
    int n = 0;
    ifp_err_t err = {0};
    static const struct {
        mode_t mode;
        const char *verb;
    } modes[] = {{0644, "read"}, {0640, "read"}, {0604, "read"}, {0620, "write"}, {0602, "write"}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        const char *p = put("open", good, strlen(good), modes[i].mode);
        char want[700];
        snprintf(want, sizeof want,
                 "%s: mode %04o lets others than its owner %s it; an API keys file must be mode 0600 (chmod 600 %s)",
                 p, (unsigned)modes[i].mode, modes[i].verb, p);
        assert_int_equal(ifp_apikeys_read(p, &keys, &n, &err), IFP_EINVAL);
        assert_string_equal(err.msg, want);
        assert_null(keys);
    }
    /* a symbolic link: its target's mode is what counts */
    const char *target = put("target", good, strlen(good), 0644), *link = tpath("link");
    unlink(link);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(ifp_apikeys_read(link, &keys, &n, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, ": mode 0644 lets others than its owner read it"));
    assert_int_equal(chmod(target, 0600), 0);
    assert_int_equal(ifp_apikeys_read(link, &keys, &n, &err), 0);
    assert_int_equal(n, 1);
    ifp_apikeys_free(&keys, n);
    assert_int_equal(chmod(target, 0400), 0); /* read-only for its owner: fine */
    assert_int_equal(ifp_apikeys_read(target, &keys, &n, &err), 0);
    ifp_apikeys_free(&keys, n);
    /* missing, a dangling link, a folder */
    assert_int_equal(ifp_apikeys_read(tpath("missing"), &keys, &n, &err), IFP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "missing: No such file or directory"));
    unlink(target);
    assert_int_equal(ifp_apikeys_read(link, &keys, &n, &err), IFP_ENOTFOUND);
    assert_int_equal(ifp_apikeys_read(g_dir, &keys, &n, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, ": not a regular file"));
    assert_null(keys);
    assert_int_equal(n, 0);
}

/* ---------------------------------------------------------------- find */

static void find(void **u) {
    (void)u;
    ifp_apikey_t *keys = NULL;
    int n = 0;
    ifp_err_t err = {0};
    assert_int_equal(ifp_apikeys_read(put_str("find", "a " K1 "\nb " K2 "\nb " K3 "\n"), &keys, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ifp_apikeys_find(keys, n, K1, strlen(K1)), 0);
    assert_int_equal(ifp_apikeys_find(keys, n, K2, strlen(K2)), 1);
    assert_int_equal(ifp_apikeys_find(keys, n, K3, strlen(K3)), 2);
    /* the length given is what counts, not a NUL */
    assert_int_equal(ifp_apikeys_find(keys, n, K2 "trailing", strlen(K2)), 1);
    assert_int_equal(ifp_apikeys_find(keys, n, K2 "trailing", strlen(K2) + 1), -1);
    /* a miss by one character, anywhere */
    char k[64];
    for (size_t i = 0; i < strlen(K1); i++) {
        snprintf(k, sizeof k, "%s", K1);
        k[i] ^= 1;
        assert_int_equal(ifp_apikeys_find(keys, n, k, strlen(k)), -1);
    }
    assert_int_equal(ifp_apikeys_find(keys, n, K1, strlen(K1) - 1), -1); /* a prefix */
    assert_int_equal(ifp_apikeys_find(keys, n, K1, 1), -1);
    snprintf(k, sizeof k, "%sA", K1);
    assert_int_equal(ifp_apikeys_find(keys, n, k, strlen(k)), -1); /* longer */
    assert_int_equal(ifp_apikeys_find(keys, n, "", 0), -1);       /* empty */
    assert_int_equal(ifp_apikeys_find(keys, n, NULL, 0), -1);
    assert_int_equal(ifp_apikeys_find(keys, n, NULL, 44), -1);
    assert_int_equal(ifp_apikeys_find(keys, 0, K1, strlen(K1)), -1);
    assert_int_equal(ifp_apikeys_find(NULL, 0, K1, strlen(K1)), -1);
    /* longer than any key can be: never read past IFP_APIKEY_MAX + 1 */
    char *big = malloc(1 << 16);
    memset(big, 'A', 1 << 16);
    memcpy(big, K1, strlen(K1));
    assert_int_equal(ifp_apikeys_find(keys, n, big, 1 << 16), -1);
    free(big);
    ifp_apikeys_free(&keys, n);
}

/* ---------------------------------------------------------------- generate */

static void generate(void **u) {
    (void)u;
    char a[IFP_APIKEY_MAX + 1], b[IFP_APIKEY_MAX + 1];
    ifp_err_t err = {0};
    assert_int_equal(ifp_apikey_generate(a, &err), 0);
    assert_int_equal(ifp_apikey_generate(b, &err), 0);
    assert_int_equal(strlen(a), 44);
    assert_memory_equal(a, "ifp-", 4);
    assert_int_equal(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), 40);
    assert_string_not_equal(a, b);
    /* every one of the 62 characters shows up, none much more often than the rest */
    int count[256] = {0};
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(ifp_apikey_generate(a, &err), 0);
        for (int j = 4; j < 44; j++) count[(unsigned char)a[j]]++;
    }
    int used = 0;
    for (int c = 0; c < 256; c++) {
        if (!count[c]) continue;
        used++;
        /* 40000 draws / 62: 645 expected, sd ~25 */
        if (count[c] < 500 || count[c] > 800) fail_msg("'%c' drawn %d times of 40000", c, count[c]);
    }
    assert_int_equal(used, 62);
}

static void path(void **u) {
    (void)u;
    char out[64];
    assert_int_equal(ifp_apikeys_path("/srv/keys", out, sizeof out), 0);
    assert_string_equal(out, "/srv/keys/api_keys");
    assert_int_equal(ifp_apikeys_path("/srv/keys", out, 18), IFP_ERANGE);
    setenv("IFP_KEYS", "/elsewhere", 1);
    assert_int_equal(ifp_apikeys_path(NULL, out, sizeof out), 0);
    assert_string_equal(out, "/elsewhere/api_keys");
    assert_int_equal(ifp_apikeys_path("", out, sizeof out), 0);
    assert_string_equal(out, "/elsewhere/api_keys");
    unsetenv("IFP_KEYS");
}

/* ---------------------------------------------------------------- ensure */

/* The key of name in path (the last one listed), or "". */
static const char *key_of(const char *path, const char *name) {
    static char out[IFP_APIKEY_MAX + 1];
    ifp_apikey_t *keys = NULL;
    int n = 0;
    ifp_err_t err = {0};
    if (ifp_apikeys_read(path, &keys, &n, &err)) fail_msg("%s", err.msg);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i].name, name)) snprintf(out, sizeof out, "%s", keys[i].key);
    ifp_apikeys_free(&keys, n);
    return out;
}

static int count_of(const char *path) {
    ifp_apikey_t *keys = NULL;
    int n = 0;
    ifp_err_t err = {0};
    if (ifp_apikeys_read(path, &keys, &n, &err)) fail_msg("%s", err.msg);
    ifp_apikeys_free(&keys, n);
    return n;
}

static void ensure(void **u) {
    (void)u;
    const char *p = tpath("made"), *both[] = {"client", "alice"};
    ifp_err_t err = {0};
    int added = -1;
    unlink(p);
    /* created: mode 0600, its comment, one entry per name */
    assert_int_equal(ifp_apikeys_ensure(p, both, 2, 0, &added, &err), 0);
    assert_int_equal(added, 2);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *text = tu_read_file(p, NULL);
    assert_non_null(strstr(text, "# ifp HTTP API keys: one `NAME KEY` per line"));
    free(text);
    assert_int_equal(count_of(p), 2);
    char client[IFP_APIKEY_MAX + 1], alice[IFP_APIKEY_MAX + 1];
    snprintf(client, sizeof client, "%s", key_of(p, "client"));
    snprintf(alice, sizeof alice, "%s", key_of(p, "alice"));
    assert_int_equal(strlen(client), 44);
    assert_string_not_equal(client, alice);
    assert_int_not_equal(access(tpath("made.tmp"), F_OK), 0);

    /* nothing missing: nothing written (the same inode, the same text) */
    text = tu_read_file(p, NULL);
    ino_t ino = st.st_ino;
    assert_int_equal(ifp_apikeys_ensure(p, both, 2, 0, &added, &err), 0);
    assert_int_equal(added, 0);
    char *again = tu_read_file(p, NULL);
    assert_string_equal(text, again);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_ino, ino);
    free(text);
    free(again);

    /* an edited file: its comments and entries stay, only missing names are added */
    const char *q = put_str("edited", "# my keys\n"
                                      "alice " K1 "\n"
                                      "\n"
                                      "# bob rotates\n"
                                      "bob " K2 "\n"
                                      "bob " K3); /* no final newline */
    const char *three[] = {"alice", "carol", "dave", "carol"};
    assert_int_equal(ifp_apikeys_ensure(q, three, 4, 0, &added, &err), 0);
    assert_int_equal(added, 2); /* carol once, dave */
    text = tu_read_file(q, NULL);
#define KEPT "# my keys\nalice " K1 "\n\n# bob rotates\nbob " K2 "\nbob " K3 "\ncarol ifp-"
    assert_memory_equal(text, KEPT, strlen(KEPT));
#undef KEPT
    assert_non_null(strstr(text, "\ndave ifp-"));
    free(text);
    assert_string_equal(key_of(q, "alice"), K1);
    assert_int_equal(count_of(q), 5);

    /* force: new keys for the names given, their old ones (both of bob's) gone, the rest kept */
    const char *rotate[] = {"bob", "erin"};
    char carol[IFP_APIKEY_MAX + 1];
    snprintf(carol, sizeof carol, "%s", key_of(q, "carol"));
    assert_int_equal(ifp_apikeys_ensure(q, rotate, 2, 1, &added, &err), 0);
    assert_int_equal(added, 2);
    text = tu_read_file(q, NULL);
    assert_null(strstr(text, K2));
    assert_null(strstr(text, K3));
    assert_non_null(strstr(text, "# my keys\nalice " K1 "\n\n# bob rotates\ncarol "));
    free(text);
    assert_int_equal(count_of(q), 5); /* alice carol dave bob erin */
    assert_string_equal(key_of(q, "carol"), carol);
    assert_int_equal(strlen(key_of(q, "bob")), 44);
    assert_int_equal(stat(q, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* add: a second key for a name (rotation), the first one kept */
    char fresh[IFP_APIKEY_MAX + 1];
    assert_int_equal(ifp_apikeys_add(q, "alice", fresh, &err), 0);
    assert_int_equal(strlen(fresh), 44);
    assert_string_equal(key_of(q, "alice"), fresh); /* the last listed */
    assert_int_equal(count_of(q), 6);
    ifp_apikey_t *keys = NULL;
    int n = 0;
    assert_int_equal(ifp_apikeys_read(q, &keys, &n, &err), 0);
    assert_string_equal(keys[0].name, "alice");
    assert_string_equal(keys[0].key, K1);
    assert_string_equal(keys[n - 1].name, "alice");
    assert_int_equal(ifp_apikeys_find(keys, n, fresh, strlen(fresh)), n - 1);
    ifp_apikeys_free(&keys, n);
    assert_int_equal(ifp_apikeys_add(q, "bad name", fresh, &err), IFP_EINVAL);
    assert_string_equal(fresh, "");

    /* refusals: a broken file is never rewritten, a bad name, a file too open */
    const char *broken = put_str("broken", "alice short\n");
    assert_int_equal(ifp_apikeys_ensure(broken, both, 2, 0, &added, &err), IFP_EFORMAT);
    assert_non_null(strstr(err.msg, "broken:1: the key is 5 characters"));
    text = tu_read_file(broken, NULL);
    assert_string_equal(text, "alice short\n");
    free(text);
    const char *open_file = put("open", "alice " K1 "\n", strlen("alice " K1 "\n"), 0644);
    assert_int_equal(ifp_apikeys_ensure(open_file, both, 2, 1, &added, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "an API keys file must be mode 0600"));
    const char *bad[] = {"ok", "not ok"};
    assert_int_equal(ifp_apikeys_ensure(tpath("none"), bad, 2, 0, &added, &err), IFP_EINVAL);
    assert_non_null(strstr(err.msg, "\"not ok\" is not a name for an API key"));
    assert_int_not_equal(access(tpath("none"), F_OK), 0);
    /* no names: nothing to do, no file */
    assert_int_equal(ifp_apikeys_ensure(tpath("none"), NULL, 0, 0, &added, &err), 0);
    assert_int_equal(added, 0);
    assert_int_not_equal(access(tpath("none"), F_OK), 0);
}

/* ---------------------------------------------------------------- ifp keygen */

static void keygen(void **u) {
    (void)u;
    if (access(IFP_BIN, X_OK)) fail_msg("not built: %s", IFP_BIN);
    char ini[256], keys[256], file[300], *text;
    snprintf(ini, sizeof ini, "%s/c.ini", g_dir);
    snprintf(keys, sizeof keys, "%s/kk", g_dir);
    snprintf(file, sizeof file, "%s/api_keys", keys);
    put_str("c.ini", "[model]\nmodel = m.gguf\n[group g0]\nstages = 1\n"
                     "[client alice]\nkey = " CLIENT_KEY "\n[client bob-2]\nkey = " CLIENT_KEY "\n");
    const char *argv[] = {IFP_BIN, "keygen", "--config", ini, "--keys", keys, NULL};
    tu_run_t r = tu_run(argv);
    if (r.status) fail_msg("exit %d: %s", r.status, r.err);
    assert_int_equal(count_of(file), 3);
    char client[IFP_APIKEY_MAX + 1];
    snprintf(client, sizeof client, "%s", key_of(file, "client"));
    assert_int_equal(strlen(key_of(file, "alice")), 44);
    assert_int_equal(strlen(key_of(file, "bob-2")), 44);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* where the keys are and how to use one; never a key */
    char want[600];
    snprintf(want, sizeof want, "HTTP API keys in %s (mode 0600): 3 added, 0 kept", file);
    assert_non_null(strstr(r.out, want));
    snprintf(want, sizeof want, "curl -H \"Authorization: Bearer $(awk '$1==\"client\"{print $2}' %s)\"", file);
    assert_non_null(strstr(r.out, want));
    const char *names[] = {"client", "alice", "bob-2"};
    for (int i = 0; i < 3; i++) {
        const char *k = key_of(file, names[i]);
        assert_null(strstr(r.out, k));
        assert_null(strstr(r.err, k));
    }
    /* the last line is still the keys folder's (deploy/cluster.sh reads it) */
    snprintf(want, sizeof want, "ifp keygen: keys in %s: 3 made, 0 kept\n", keys);
    assert_true(strlen(r.out) >= strlen(want));
    assert_string_equal(r.out + strlen(r.out) - strlen(want), want);
    tu_run_free(&r);
    /* again: kept */
    r = tu_run(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "0 added, 3 kept"));
    assert_string_equal(key_of(file, "client"), client);
    tu_run_free(&r);

    /* --api-key NAME: the key alone on stdout */
    const char *get[] = {IFP_BIN, "keygen", "--api-key", "client", "--config", ini, "--keys", keys, NULL};
    r = tu_run(get);
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "%s\n", client);
    assert_string_equal(r.out, want);
    assert_string_equal(r.err, "");
    tu_run_free(&r);
    /* a name without a key gets one (said on stderr) */
    get[3] = "deploy-bot";
    r = tu_run(get);
    assert_int_equal(r.status, 0);
    assert_int_equal(strlen(r.out), 45);
    snprintf(want, sizeof want, "%s\n", key_of(file, "deploy-bot"));
    assert_string_equal(r.out, want);
    assert_non_null(strstr(r.err, "added a key named deploy-bot"));
    tu_run_free(&r);
    assert_int_equal(count_of(file), 4);
    /* --force: a new key for that name only */
    const char *force[] = {IFP_BIN, "keygen", "--api-key", "client", "--keys", keys, "--force", NULL};
    r = tu_run(force);
    assert_int_equal(r.status, 0);
    assert_string_not_equal(key_of(file, "client"), client);
    snprintf(want, sizeof want, "%s\n", key_of(file, "client"));
    assert_string_equal(r.out, want);
    tu_run_free(&r);
    assert_int_equal(count_of(file), 4);
    /* --new: one more key for that name, printed; the old one stays */
    char old[IFP_APIKEY_MAX + 1];
    snprintf(old, sizeof old, "%s", key_of(file, "alice"));
    const char *add[] = {IFP_BIN, "keygen", "--api-key", "alice", "--new", "--keys", keys, NULL};
    r = tu_run(add);
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "%s\n", key_of(file, "alice"));
    assert_string_equal(r.out, want);
    assert_string_not_equal(key_of(file, "alice"), old);
    assert_non_null(strstr(r.err, "beside its others (rotation"));
    tu_run_free(&r);
    assert_int_equal(count_of(file), 5);
    text = tu_read_file(file, NULL);
    assert_non_null(strstr(text, old));
    free(text);
    /* refusals */
    get[3] = "no/slash";
    r = tu_run(get);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "is not a name for an API key"));
    tu_run_free(&r);
    assert_int_equal(chmod(file, 0644), 0);
    get[3] = "client";
    r = tu_run(get);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "an API keys file must be mode 0600"));
    tu_run_free(&r);
    r = tu_run(argv);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "an API keys file must be mode 0600"));
    tu_run_free(&r);
    const char *both[] = {IFP_BIN, "keygen", "-o", keys, "--api-key", "x", NULL};
    r = tu_run(both);
    assert_int_equal(r.status, 2);
    tu_run_free(&r);
    const char *help[] = {IFP_BIN, "keygen", "--help", NULL};
    r = tu_run(help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--api-key NAME"));
    assert_non_null(strstr(r.out, "KEYS/api_keys"));
    tu_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_good), cmocka_unit_test(read_errors), cmocka_unit_test(read_modes),
        cmocka_unit_test(find),      cmocka_unit_test(generate),    cmocka_unit_test(path),
        cmocka_unit_test(ensure),    cmocka_unit_test(keygen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
