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

#endif
