/* tools.h — the ifp subcommands (each returns the process exit code). */
#ifndef IFP_TOOLS_H
#define IFP_TOOLS_H

int ifp_cmd_run(int argc, char **argv);
int ifp_cmd_info(int argc, char **argv);
int ifp_cmd_cluster(int argc, char **argv);
int ifp_cmd_eval(int argc, char **argv);
int ifp_cmd_calibrate(int argc, char **argv);
int ifp_cmd_client(int argc, char **argv);
int ifp_cmd_status(int argc, char **argv);
int ifp_cmd_keygen(int argc, char **argv);
int ifp_cmd_synth(int argc, char **argv);
int ifp_cmd_quantize(int argc, char **argv);

/* Path of the embedded default model ($IFP_MODEL, else the repo's
 * models/ifp-mix/ifp-mix.gguf found next to the binary or the source). */
const char *ifp_default_model(void);

#include <stddef.h>
#include <stdint.h>

/* "1,234,567" into buf (returns buf). */
const char *ifp_tool_commas(uint64_t v, char *buf, size_t len);
/* MemAvailable from /proc/meminfo in bytes, 0 if unknown. */
uint64_t ifp_tool_mem_available(void);
/* 0 if the folder a file `path` would be written into is writable; else -1
 * with that folder in dir (for the caller's message, errno kept). */
int ifp_tool_dir_writable(const char *path, char *dir, size_t len);

#endif
