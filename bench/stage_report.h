/* stage_report.h — bench_stage's options and results, and everything it
 * prints and writes: the header line, the table, the 56-layer estimates, the
 * CSVs and the headline. */
#ifndef IFP_BENCH_STAGE_REPORT_H
#define IFP_BENCH_STAGE_REPORT_H

#include <stdio.h>

#include "gguf.h"
#include "stage_measure.h"

enum { BS_MAX_TYPES = 4, BS_MAX_MODELS = 72 };

typedef struct {
    int layers, threads, prefix, quick;
    sm_plan_t plan;                        /* rounds, prompt, steps */
    ifp_ggml_type_t types[BS_MAX_TYPES];   /* weight types measured, in --types order */
    const char *type_names[BS_MAX_TYPES];
    int n_types;
    int ref;                               /* index of the reference type: f32 if listed, else the first */
    const char *csv;
    const char *shapes;                    /* comma-separated base shapes; NULL = all (quick: 3b,9b) */
    double membw_gb;                       /* bandwidth buffer, GB */
    /* --model: a GGUF measured like llama-bench (stage_peer.c) */
    const char *model;
    int peer_prompt, peer_gen, peer_reps;
} bs_opts_t;

/* One model of one type and what was measured of it. */
typedef struct {
    sm_entry_t e;
    int ffn;                 /* FFN channels per held layer */
    double weight_gb;        /* bytes a decode step reads (sr_weight_bytes) */
    double resident_gb;      /* bytes of its own arena (ifp_model_resident_bytes; a compaction borrows attention) */
    double compact_ms_layer; /* 0 for dense stages */
    double rss_gb;           /* VmRSS with its set built */
} bs_model_t;

/* One bandwidth measurement, GB/s. */
typedef struct {
    double loop1, loop2;     /* bench/membw's loop at 1 and 2 threads */
    double loop, sgemv;      /* the loop and OpenBLAS sgemv at the run's threads */
    double ref;              /* the better of the two */
} bs_bw_t;

typedef struct {
    bs_model_t m[BS_MAX_MODELS];
    int n;
    double membw;            /* GB/s at the run's threads: the best reference of start and end */
    bs_bw_t bw_start, bw_end;
    double l3_gb;
    int rounds;              /* global rounds run */
} bs_results_t;

/* The CPU's model name (/proc/cpuinfo, spaces as '_'), the kernel path. */
const char *bs_cpu_name(void);
/* The last-level cache one core sees, GB: sysfs (cpu0's index3, e.g. the
 * 32 MB of a Zen 3 CCD) when present — sysconf may report the whole
 * package's (256 MB in this VM) — else bl_l3_bytes. */
double bs_l3_gb(void);
/* "cpu=AMD_EPYC isa=avx2 blas_core=Haswell" facts, as one line to f. */
void bs_print_facts(FILE *f, const char *prefix);

/* The model of key (e.g. "dense3b", "ifp9b3b") in type name t, or NULL. */
const bs_model_t *bs_find(const bs_results_t *r, const char *key, const char *t);

/* Table, estimates, CSVs (o->csv: the reference type's rows, the schema
 * bench/sim and run_depth.sh read; *_types.csv: every type; *_summary.csv:
 * one row per model and type for the plots), headline.  Returns 0, or -1
 * if a CSV could not be written. */
int bs_report(const bs_results_t *r, const bs_opts_t *o, double t_start);

#endif
