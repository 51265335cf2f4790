/* testutil.h — small helpers shared by the cmocka tests (header-only). */
#ifndef IFP_TESTUTIL_H
#define IFP_TESTUTIL_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_PATH(rel) IFP_SOURCE_DIR "/models/" rel

/* Reads a whole file into a NUL-terminated malloc'd buffer (NULL on error). */
static inline char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* Parses a JSON-lines file into an array of cJSON objects; *n gets the count. */
static inline cJSON **tu_read_jsonl(const char *path, int *n) {
    char *text = tu_read_file(path, NULL);
    *n = 0;
    if (!text) return NULL;
    int cap = 64;
    cJSON **rows = malloc(cap * sizeof *rows);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!*line) continue;
        if (*n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
        rows[(*n)++] = cJSON_Parse(line);
    }
    free(text);
    return rows;
}

static inline void tu_free_jsonl(cJSON **rows, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);
    free(rows);
}

/* Copies a JSON array of numbers into a new int array. */
static inline int *tu_ints(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = cJSON_GetArrayItem(arr, i)->valueint;
    return v;
}

/* ---- running a command (the ifp tools) and capturing its output ---- */
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *out, *err; /* NUL-terminated */
    int status;      /* exit code; -1 if killed by a signal; -2 if it could not start */
} tu_run_t;

/* Runs argv (NULL-terminated; argv[0] a path) with stdout and stderr captured.
 * Both pipes are drained together (poll), so a chatty child never blocks. */
static inline tu_run_t tu_run(const char *const *argv) {
    tu_run_t r = {NULL, NULL, -2};
    int po[2], pe[2];
    if (pipe(po)) return r;
    if (pipe(pe)) {
        close(po[0]), close(po[1]);
        return r;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    char *buf[2] = {NULL, NULL};
    size_t len[2] = {0, 0}, cap[2] = {0, 0};
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = pid > 0 ? 2 : 0;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (cap[i] - len[i] < 4097) buf[i] = realloc(buf[i], cap[i] = cap[i] * 2 + 8192);
            ssize_t n = read(fds[i].fd, buf[i] + len[i], cap[i] - len[i] - 1);
            if (n > 0) {
                len[i] += (size_t)n;
            } else {
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    close(po[0]), close(pe[0]);
    for (int i = 0; i < 2; i++) {
        if (!buf[i]) buf[i] = malloc(1);
        buf[i][len[i]] = '\0';
    }
    r.out = buf[0];
    r.err = buf[1];
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    return r;
}

static inline void tu_run_free(tu_run_t *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

#endif
