#include "tools.h"

#include <stdlib.h>
#include <unistd.h>

const char *ifp_default_model(void) {
    const char *env = getenv("IFP_MODEL");
    if (env && *env) return env;
    static const char *const candidates[] = {"models/ifp-mix/ifp-mix.gguf", IFP_DEFAULT_MODEL};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)
        if (access(candidates[i], R_OK) == 0) return candidates[i];
    return candidates[0];
}

