#include "tools.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ifp_default_model(void) {
    const char *env = getenv("IFP_MODEL");
    if (env && *env) return env;
    static const char *const candidates[] = {"models/ifp-mix/ifp-mix.gguf", IFP_DEFAULT_MODEL};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)
        if (access(candidates[i], R_OK) == 0) return candidates[i];
    return candidates[0];
}


const char *ifp_tool_commas(uint64_t v, char *buf, size_t len) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

uint64_t ifp_tool_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

int ifp_tool_dir_writable(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (n >= len) n = len - 1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    if (slash && n == 0) snprintf(dir, len, "/");
    return access(dir, W_OK) == 0 ? 0 : -1;
}
