#include "ini_reader.h"

#include <ctype.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *file, *text;
    size_t len, pos;  /* text[pos..len): not handed out yet */
    int line;         /* of the line inih is working on */
    const ifp_ini_handlers_t *h;
    void *user;
    ifp_err_t *err;
    int rc;           /* first error; once set, the reader reports end of input */
} reader_t;

static char *syntax(reader_t *r, const char *why) {
    r->rc = ifp_errf(r->err, IFP_EFORMAT, "%s:%d: syntax error: %s", r->file, r->line, why);
    return NULL;
}

/* The first of chars, or of a ';' after whitespace (an inline comment), or
 * the end of s — the way inih looks for them. */
static const char *find_or_comment(const char *s, const char *chars) {
    int was_space = 0;
    while (*s && !(chars && strchr(chars, *s)) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

/* A line as inih will see it (indentation gone, "\n"-terminated): checks
 * its shape, and reports a section header to the handlers. */
static char *classify(reader_t *r, char *str) {
    char c = str[0];
    if (c == '\n' || c == ';' || c == '#') return str;
    if (c == '[') {
        const char *end = find_or_comment(str + 1, "]");
        if (*end != ']')
            return syntax(r, "a section header needs a closing ']' (\"[router]\", \"[model]\", \"[group NAME]\")");
        const char *after = end + 1;
        while (*after && isspace((unsigned char)*after)) after++;
        if (*after && *after != ';') return syntax(r, "only a ';' comment may follow a section header's ']'");
        const char *a = str + 1, *b = end;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(b - a), a);
        int rc = r->h->section(r->user, name, r->line);
        if (rc) {
            r->rc = rc;
            return NULL;
        }
        return str;
    }
    const char *eq = find_or_comment(str, "=:");
    if (*eq != '=' && *eq != ':')
        return syntax(r, "expected `key = value`, a [section] header or a comment (';' or '#')");
    return str;
}

/* inih's fgets: the next line of the text, or NULL at the end / after an error. */
static char *next_line(char *str, int num, void *stream) {
    reader_t *r = stream;
    if (r->rc || r->pos >= r->len) return NULL;
    const char *s = r->text + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
    r->pos += n + (nl != NULL);
    r->line++;
    if (memchr(s, '\0', n)) return syntax(r, "NUL byte (not a text file?)");
    if (n && s[n - 1] == '\r') n--;
    if (r->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, n -= 3;
    while (n && isspace((unsigned char)*s)) s++, n--;
    if (num < 3 || n + 2 > (size_t)num) {
        r->rc = ifp_errf(r->err, IFP_EFORMAT, "%s:%d: line of %zu characters; the INI reader takes at most %d", r->file,
                         r->line, n, num - 2);
        return NULL;
    }
    memcpy(str, s, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return classify(r, str);
}

static int on_pair(void *user, const char *section, const char *name, const char *value) {
    (void)section; /* ours comes from the section handler, untruncated */
    reader_t *r = user;
    if (r->rc) return 0;
    int rc = r->h->key(r->user, name, value, r->line);
    if (rc) r->rc = rc;
    return rc == 0;
}

int ifp_ini_read(const char *file, const char *text, size_t len, const ifp_ini_handlers_t *h, void *user,
                 int *n_lines, ifp_err_t *err) {
    reader_t r = {.file = file, .text = text, .len = len, .h = h, .user = user, .err = err};
    int e = ini_parse_stream(next_line, &r, on_pair, &r);
    if (n_lines) *n_lines = r.line;
    if (r.rc) return r.rc;
    if (e == -2) return ifp_errf(err, IFP_ENOMEM, "%s: out of memory", file);
    if (e) return ifp_errf(err, IFP_EFORMAT, "%s:%d: syntax error", file, e); /* inih saw what we did not */
    return IFP_OK;
}
