/* ini_reader.h — inih with line numbers.  Hands inih (ini_parse_stream) one
 * line at a time from memory, counting the lines itself and recognising
 * section headers itself: Debian's libinih passes its handler neither the
 * line number nor a new-section event, so an empty section would otherwise
 * be invisible.  Not API: only config.c includes it.
 *
 * The syntax (deploy/lib.sh's awk reader follows the same rules):
 *   - a line ends at '\n'; a '\r' before it is dropped; line 1 may start
 *     with a UTF-8 BOM; no NUL bytes;
 *   - leading whitespace is ignored (so there are no continuation lines);
 *   - after it, a line is at most inih's buffer minus 2 characters (198);
 *   - blank lines and lines starting with ';' or '#' are comments; a ';'
 *     after whitespace starts a comment inside a line;
 *   - "[TEXT]" starts a section (TEXT trimmed); only a comment may follow ']';
 *   - any other line is `key = value` or `key: value` (split at the first
 *     '=' or ':', both sides trimmed, by inih). */
#ifndef IFP_INI_READER_H
#define IFP_INI_READER_H

#include <stddef.h>

#include "err.h"

typedef struct {
    /* a section header on `line`: 0 to go on, or an IFP_E* code (err filled) to stop */
    int (*section)(void *user, const char *name, int line);
    /* `key = value` on `line`: the same contract */
    int (*key)(void *user, const char *key, const char *value, int line);
} ifp_ini_handlers_t;

/* Reads text[0..len) through inih, calling h in file order.  Syntax errors
 * read "FILE:LINE: syntax error: ..." (IFP_EFORMAT).  Stops at the first
 * error (a handler's code is returned as is).  *n_lines gets the number of
 * lines read. */
int ifp_ini_read(const char *file, const char *text, size_t len, const ifp_ini_handlers_t *h, void *user,
                 int *n_lines, ifp_err_t *err);

#endif
