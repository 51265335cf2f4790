/* ifp info — print a GGUF file's metadata, tensor table and llama config,
 * and for a llama model its memory: the weights' bytes by type as stored,
 * the resident bytes of every pipeline stage of a group of 1, 2 or 4 stages
 * at each weight type (dense, and holding a cluster union), and the KV cache
 * per slot.  `ifp info --shape 9b` prints that table for one of the paper's
 * shapes without a file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compact.h"
#include "config.h"
#include "gguf.h"
#include "mask.h"
#include "model.h"
#include "synth.h"
#include "tools.h"
#include "wmat.h"

static void print_str(const ifp_gguf_str_t *s, size_t max) {
    size_t n = s->len < max ? (size_t)s->len : max;
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s->ptr[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch < 0x20) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('"');
    if (n < s->len) printf("...(%" PRIu64 " bytes)", s->len);
}

static void print_scalar(const ifp_gguf_kv_t *kv) {
    switch (kv->type) {
    case IFP_GGUF_UINT8: case IFP_GGUF_UINT16: case IFP_GGUF_UINT32: case IFP_GGUF_UINT64:
        printf("%" PRIu64, kv->v.u64); break;
    case IFP_GGUF_INT8: case IFP_GGUF_INT16: case IFP_GGUF_INT32: case IFP_GGUF_INT64:
        printf("%" PRId64, kv->v.i64); break;
    case IFP_GGUF_FLOAT32: case IFP_GGUF_FLOAT64: printf("%g", kv->v.f64); break;
    case IFP_GGUF_BOOL: fputs(kv->v.u64 ? "true" : "false", stdout); break;
    case IFP_GGUF_STRING: print_str(&kv->v.str, 120); break;
    default: fputs("?", stdout);
    }
}

static void print_array(const ifp_gguf_kv_t *kv) {
    printf("%s[%" PRIu64 "] [", ifp_gguf_vtype_name(kv->arr_type), kv->arr_n);
    uint64_t show = kv->arr_n < 8 ? kv->arr_n : 8;
    for (uint64_t i = 0; i < show; i++) {
        if (i) fputs(", ", stdout);
        if (kv->arr_type == IFP_GGUF_STRING)
            print_str(&kv->arr_str[i], 40);
        else if (kv->arr_type == IFP_GGUF_ARRAY)
            fputs("[...]", stdout);
        else
            printf("%g", ifp_gguf_arr_num(kv, i));
    }
    if (show < kv->arr_n) fputs(", ...", stdout);
    putchar(']');
}

/* ---- memory: what a pipeline stage holds resident ---------------------------------------------- */

/* Weight types the plan is printed for (f16 and bf16 have the same size). */
static const struct {
    ifp_ggml_type_t t;
    const char *name;
} plan_types[] = {{IFP_GGML_F32, "f32"}, {IFP_GGML_BF16, "f16/bf16"}, {IFP_GGML_Q8_0, "q8_0"}};
#define N_PLAN_TYPES 3

/* Resident weight bytes of one pipeline stage holding layers [l0, l1) of c,
 * every matrix in type t (norms f32), as ifp_model_from_gguf allocates them:
 * per layer attention (q, k, v, o), two norms and an FFN of ffn[l] channels
 * (ffn NULL: the full d_ffn; gate, up and the channel-major down are each
 * ffn[l] rows of dim); the embedding when first; the output norm and head
 * when last (a tied head shares the embedding only when the stage holds
 * both).  0 when t cannot hold the rows (q8_0 needs multiples of 32). */
static uint64_t plan_stage_bytes(const ifp_config_t *c, ifp_ggml_type_t t, int tied, int l0, int l1, int first,
                                 int last, const int *ffn) {
    int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    uint64_t rd = ifp_wtype_row_bytes(t, c->dim), rq = ifp_wtype_row_bytes(t, q), n = 0;
    if (!rd || !rq) return 0;
    for (int l = l0; l < l1; l++)
        n += (uint64_t)(q + 2 * kv) * rd + (uint64_t)c->dim * rq + 2 * 4 * (uint64_t)c->dim +
             ifp_compact_bytes(t, c->dim, ffn ? ffn[l] : c->d_ffn);
    if (first) n += (uint64_t)c->vocab * rd;
    if (last) n += 4 * (uint64_t)c->dim + (tied && first ? 0 : (uint64_t)c->vocab * rd);
    return n;
}

/* KV cache of one slot for layers [l0, l1) at ctx positions (f32 keys and values). */
static uint64_t plan_kv_bytes(const ifp_config_t *c, int l0, int l1, int ctx) {
    return 2 * sizeof(float) * (uint64_t)(l1 - l0) * (uint64_t)ctx * (uint64_t)(c->n_kv_heads * c->head_dim);
}

/* The layer split of a group of `stages` stages (ifp_config_split's even split). */
static int plan_split(int n_layers, int stages, int *begin, int *end) {
    ifp_group_cfg_t *g = calloc(1, sizeof *g); /* large; only name, stages and n_layers_given are read */
    if (!g) return -1;
    snprintf(g->name, sizeof g->name, "plan");
    g->stages = stages, g->n_layers_given = 0;
    int rc = ifp_config_split(g, n_layers, begin, end, NULL);
    free(g);
    return rc;
}

static const char *human(uint64_t b, char *buf, size_t len) {
    if (b >= (1ull << 30)) snprintf(buf, len, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, len, "%.2f MiB", (double)b / (double)(1ull << 20));
    else snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
    return buf;
}

/* The FFN a cluster group holds: a union of `uni` channels in every layer,
 * or the unions of a cluster table (for each stage the heaviest cluster). */
typedef struct {
    const int *uni;                   /* channels per layer (absolute layer id), or NULL */
    const ifp_cluster_table_t *table; /* or the unions of a table, or NULL */
    const char *what;                 /* where the size comes from, for the table */
} plan_union_t;

/* Bytes of stage [l0, l1) at type t for a union (the heaviest cluster of a
 * table); *width gets the widest layer's union. */
static uint64_t plan_union_bytes(const ifp_config_t *c, const plan_union_t *u, ifp_ggml_type_t t, int tied, int l0,
                                 int l1, int first, int last, int *width) {
    if (!u->table) {
        *width = 0;
        for (int l = l0; l < l1; l++)
            if (u->uni[l] > *width) *width = u->uni[l];
        return plan_stage_bytes(c, t, tied, l0, l1, first, last, u->uni);
    }
    uint64_t best = 0;
    *width = 0;
    for (int i = 0; i < u->table->n_clusters; i++) {
        const int *n_kept = u->table->c[i].uni->n_kept;
        uint64_t b = plan_stage_bytes(c, t, tied, l0, l1, first, last, n_kept);
        if (b > best) best = b;
        for (int l = l0; l < l1; l++)
            if (n_kept[l] > *width) *width = n_kept[l];
    }
    return best;
}

/* "  weights as stored: 7.25 MiB (7606784 bytes): f32 7.25 MiB in 39 tensors" */
static void print_stored(const ifp_gguf_t *g) {
    char b1[32], b2[32];
    uint64_t by_type[64] = {0}, n_of[64] = {0}, total = 0;
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        unsigned k = (unsigned)t->type < 64 ? (unsigned)t->type : 63;
        by_type[k] += t->n_bytes, n_of[k]++, total += t->n_bytes;
    }
    printf("  weights as stored: %s (%" PRIu64 " bytes):", human(total, b1, sizeof b1), total);
    for (unsigned k = 0, n = 0; k < 64; k++)
        if (n_of[k])
            printf("%s %s %s in %" PRIu64 " tensor%s", n++ ? "," : "", ifp_ggml_type_name((ifp_ggml_type_t)k),
                   human(by_type[k], b2, sizeof b2), n_of[k], n_of[k] == 1 ? "" : "s");
    printf("\n");
}

/* The memory section: weights as stored (when g is given), then a table of
 * the resident bytes of every stage of groups of `stages` stages (0: 1, 2
 * and 4), dense and for the union, and the KV cache per slot. */
static void print_memory(const ifp_gguf_t *g, const ifp_config_t *c, int tied, int stages, const plan_union_t *u) {
    char b1[32];
    printf("\nmemory:\n");
    if (g) print_stored(g);
    printf("  resident weights per stage (stage 0 holds the embedding, the last stage the head%s; ffn_down\n"
           "  channel-major; layers split evenly as [group] layers does by default):\n",
           tied ? ", tied: one copy when one stage holds both" : "");
    printf("    %-8s %-6s %-8s %-12s", "group", "stage", "layers", "ffn");
    for (int k = 0; k < N_PLAN_TYPES; k++) printf(" %12s", plan_types[k].name);
    printf("\n");
    static const int groups[] = {1, 2, 4};
    int n_groups = stages ? 1 : 3;
    for (int pass = 0; pass < (u->uni || u->table ? 2 : 1); pass++) {
        for (int gi = 0; gi < n_groups; gi++) {
            int S = stages ? stages : groups[gi], begin[IFP_CFG_MAX_STAGES], end[IFP_CFG_MAX_STAGES];
            if (S > c->n_layers || plan_split(c->n_layers, S, begin, end)) continue;
            for (int s = 0; s < S; s++) {
                char grp[24] = "", lay[24], ffn[40];
                if (s == 0) snprintf(grp, sizeof grp, "%d stage%s", S, S == 1 ? "" : "s");
                snprintf(lay, sizeof lay, "[%d,%d)", begin[s], end[s]);
                printf("    %-8s %-6d %-8s", grp, s, lay);
                for (int k = 0; k < N_PLAN_TYPES; k++) {
                    int width = c->d_ffn, first = s == 0, last = s == S - 1;
                    uint64_t b = pass ? plan_union_bytes(c, u, plan_types[k].t, tied, begin[s], end[s], first, last,
                                                         &width)
                                      : plan_stage_bytes(c, plan_types[k].t, tied, begin[s], end[s], first, last, NULL);
                    if (k == 0) {
                        if (pass) snprintf(ffn, sizeof ffn, "union %s%d", u->table ? "<=" : "", width);
                        else snprintf(ffn, sizeof ffn, "dense %d", width);
                        printf(" %-12s", ffn);
                    }
                    printf(" %12s", b ? human(b, b1, sizeof b1) : "n/a");
                }
                printf("\n");
            }
        }
    }
    if (u->uni || u->table) printf("    (union: %s)\n", u->what);
    printf("  KV cache per slot per stage (f32 keys and values, ctx %d):\n", c->ctx);
    for (int gi = 0; gi < n_groups; gi++) {
        int S = stages ? stages : groups[gi], begin[IFP_CFG_MAX_STAGES], end[IFP_CFG_MAX_STAGES], same = 1;
        if (S > c->n_layers || plan_split(c->n_layers, S, begin, end)) continue;
        for (int s = 1; s < S; s++) same &= end[s] - begin[s] == end[0] - begin[0];
        printf("    %d stage%s: ", S, S == 1 ? "" : "s");
        for (int s = 0; s < (same ? 1 : S); s++)
            printf("%s%s", s ? " + " : "", human(plan_kv_bytes(c, begin[s], end[s], c->ctx), b1, sizeof b1));
        printf("%s\n", same && S > 1 ? " each" : "");
    }
}

typedef struct {
    const char *shape, *clusters;
    int layers, vocab, ctx, stages, uni;
} info_args_t;

/* The file's metadata and tensors (and its llama config into *c: 0 when it has one). */
static int print_file(const char *path, const ifp_gguf_t *g, ifp_config_t *c) {
    ifp_err_t err = {0};
    printf("file: %s\nGGUF version %u, alignment %" PRIu64 ", %" PRIu64 " metadata keys, %" PRIu64 " tensors\n\n",
           path, ifp_gguf_version(g), ifp_gguf_alignment(g), ifp_gguf_n_kv(g), ifp_gguf_n_tensors(g));
    printf("metadata:\n");
    for (uint64_t i = 0; i < ifp_gguf_n_kv(g); i++) {
        const ifp_gguf_kv_t *kv = ifp_gguf_kv_at(g, i);
        printf("  %-44.*s %-8s ", (int)kv->key.len, kv->key.ptr, ifp_gguf_vtype_name(kv->type));
        if (kv->type == IFP_GGUF_ARRAY)
            print_array(kv);
        else
            print_scalar(kv);
        putchar('\n');
    }
    printf("\ntensors:\n  %-4s %-36s %-5s %-22s %12s %12s\n", "#", "name", "type", "shape (ne, inner first)",
           "offset", "bytes");
    uint64_t total = 0;
    for (uint64_t i = 0; i < ifp_gguf_n_tensors(g); i++) {
        const ifp_gguf_tensor_t *t = ifp_gguf_tensor_at(g, i);
        char shape[96];
        int o = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims && o < (int)sizeof shape; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
        if (o < (int)sizeof shape) snprintf(shape + o, sizeof shape - (size_t)o, "]");
        printf("  %-4" PRIu64 " %-36.*s %-5s %-22s %12" PRIu64 " %12" PRIu64 "\n", i, (int)t->name.len, t->name.ptr,
               ifp_ggml_type_name(t->type), shape, t->offset, t->n_bytes);
        total += t->n_elements;
    }
    printf("  total: %" PRIu64 " parameters\n", total);
    if (ifp_config_from_gguf(g, c, &err) == 0) {
        printf("\nllama config: dim %d, layers %d, heads %d (kv %d, head dim %d), d_ffn %d, vocab %d, ctx %d, "
               "rms eps %g, rope theta %g (dims %d)\n",
               c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ffn, c->vocab, c->ctx,
               (double)c->norm_eps, (double)c->rope_theta, c->rope_dim);
        return 0;
    }
    printf("\nnot a loadable llama model: %s\n", err.msg);
    return -1;
}

/* The union the memory table shows for a cluster group: --union N, the
 * unions of --clusters C, or the file's ifp.synth.keep (K).  Returns 0, or
 * the exit code after printing the problem; *per_layer is malloc'd. */
static int pick_union(const info_args_t *a, const ifp_gguf_t *g, const ifp_config_t *c, ifp_cluster_table_t **table,
                      int **per_layer, char *what, size_t wlen, plan_union_t *u) {
    ifp_err_t err = {0};
    int k = a->uni;
    memset(u, 0, sizeof *u);
    u->what = what;
    if (a->uni > c->d_ffn) {
        fprintf(stderr, "ifp info: --union: %d channels is more than the model's d_ffn %d\n", a->uni, c->d_ffn);
        return 2;
    }
    if (a->uni) {
        snprintf(what, wlen, "%d channels per layer (--union)", a->uni);
    } else if (a->clusters) {
        if (ifp_cluster_table_load(a->clusters, table, &err)) {
            fprintf(stderr, "ifp info: --clusters: %s\n", err.msg);
            return 1;
        }
        if ((*table)->n_layers != c->n_layers || (*table)->d_ffn != c->d_ffn) {
            fprintf(stderr, "ifp info: --clusters: %s is for %d layers x %d channels; the model has %d x %d\n",
                    a->clusters, (*table)->n_layers, (*table)->d_ffn, c->n_layers, c->d_ffn);
            return 1;
        }
        u->table = *table;
        snprintf(what, wlen, "the heaviest of the %d cluster unions of %s for each stage (K = %d)",
                 (*table)->n_clusters, a->clusters, (*table)->keep);
        return 0;
    } else if (g) {
        uint32_t keep = 0;
        if (!ifp_gguf_find(g, "ifp.synth.keep") || ifp_gguf_get_u32(g, "ifp.synth.keep", &keep, NULL) || !keep)
            return 0; /* no union: dense only */
        k = keep < (uint32_t)c->d_ffn ? (int)keep : c->d_ffn;
        snprintf(what, wlen, "K = %d channels per layer (ifp.synth.keep; a cluster's union is larger: --union N)", k);
    } else {
        k = IFP_SYNTH_KEEP < c->d_ffn ? IFP_SYNTH_KEEP : c->d_ffn;
        snprintf(what, wlen, "K = %d channels per layer (the paper's; a cluster's union is larger: --union N)", k);
    }
    if (!(*per_layer = malloc((size_t)c->n_layers * sizeof **per_layer))) {
        fprintf(stderr, "ifp info: out of memory\n");
        return 1;
    }
    for (int l = 0; l < c->n_layers; l++) (*per_layer)[l] = k;
    u->uni = *per_layer;
    return 0;
}

int ifp_cmd_info(int argc, char **argv) {
    info_args_t a = {0};
    cli_opt_t opts[] = {
        {"union", 0, CLI_INT, &a.uni, 1, 1 << 20,
         "memory table: a cluster group holding a union of N FFN channels per layer", 0},
        {"clusters", 0, CLI_STR, &a.clusters, 0, 0, "memory table: the unions of this cluster table (GGUF)", 0},
        {"stages", 0, CLI_INT, &a.stages, 1, IFP_CFG_MAX_STAGES,
         "memory table: only groups of N stages (default 1, 2 and 4)", 0},
        {"shape", 0, CLI_STR, &a.shape, 0, 0,
         "3b | 6b | 9b | 12b: no FILE, the memory table of the paper's shape (union: K = 6656)", 0},
        {"layers", 0, CLI_INT, &a.layers, 1, 1024, "with --shape: layers (default 56)", 0},
        {"vocab", 0, CLI_INT, &a.vocab, 1, 1 << 22, "with --shape: vocabulary (default 32000)", 0},
        {"ctx", 0, CLI_INT, &a.ctx, 1, 1 << 20, "with --shape: context length (default 2048)", 0},
        {0},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("info", argc, argv, 2, opts, pos, 1, &n_pos,
                       "FILE.gguf [--union N | --clusters C.gguf] [--stages N]\n"
                       "       ifp info --shape 3b|6b|9b|12b [--layers N] [--vocab V] [--ctx C] [--union N] "
                       "[--stages N]");
    if (rc) return rc > 0 ? 0 : 2;
    if (a.shape ? n_pos != 0 : n_pos != 1) {
        fprintf(stderr, a.shape ? "ifp info: --shape takes no FILE\n"
                                : "ifp info: expected one GGUF file (usage: ifp info FILE.gguf)\n");
        return 2;
    }
    if (!a.shape && (a.layers || a.vocab || a.ctx)) { /* 0 = not given (their minimum is 1) */
        fprintf(stderr, "ifp info: --layers, --vocab and --ctx go with --shape (a file has its own)\n");
        return 2;
    }
    if (a.uni && a.clusters) {
        fprintf(stderr, "ifp info: --union and --clusters both give the union: give one\n");
        return 2;
    }
    if (a.shape && a.clusters) {
        fprintf(stderr, "ifp info: --clusters needs the model FILE it was made for, not --shape\n");
        return 2;
    }
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_config_t c;
    int tied = 0;
    if (a.shape) {
        if (ifp_synth_config(a.shape, a.layers, a.vocab, a.ctx, &c, &err)) {
            fprintf(stderr, "ifp info: --shape: %s\n", err.msg);
            return 2;
        }
        printf("shape %s: d_model %d, %d layers, %d q / %d kv heads of %d, d_ffn %d, vocab %d, ctx %d (untied head)\n",
               ifp_synth_shape_find(a.shape)->name, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.d_ffn,
               c.vocab, c.ctx);
    } else {
        if (ifp_gguf_open(pos[0], &g, &err)) {
            fprintf(stderr, "ifp info: %s\n", err.msg);
            return 1;
        }
        if (print_file(pos[0], g, &c)) {
            ifp_gguf_close(&g);
            return 0; /* not a model: no memory section */
        }
        tied = !ifp_gguf_find_tensor(g, "output.weight");
        if (ifp_gguf_find(g, "ifp.predictor.target_block_count")) { /* held whole by the router */
            printf("\nmemory:\n");
            print_stored(g);
            printf("  (a sparsity predictor: the router holds it whole, not in pipeline stages)\n");
            ifp_gguf_close(&g);
            return 0;
        }
    }
    if (a.stages > c.n_layers) {
        fprintf(stderr, "ifp info: --stages: %d stages for a model of %d layers\n", a.stages, c.n_layers);
        ifp_gguf_close(&g);
        return 2;
    }
    ifp_cluster_table_t *table = NULL;
    int *per_layer = NULL;
    char what[512];
    plan_union_t u;
    fflush(stdout);
    rc = pick_union(&a, g, &c, &table, &per_layer, what, sizeof what, &u);
    if (!rc) print_memory(g, &c, tied, a.stages, &u);
    free(per_layer);
    ifp_cluster_table_destroy(&table);
    ifp_gguf_close(&g);
    return rc;
}
