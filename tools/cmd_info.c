/* ifp info — print a GGUF file's metadata, tensor table and llama config. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"
#include "model.h"
#include "tools.h"

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

int ifp_cmd_info(int argc, char **argv) {
    cli_opt_t opts[] = {{0}};
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("info", argc, argv, 2, opts, pos, 1, &n_pos, "FILE.gguf");
    if (rc) return rc > 0 ? 0 : 2;
    if (n_pos != 1) {
        fprintf(stderr, "ifp info: expected one GGUF file (usage: ifp info FILE.gguf)\n");
        return 2;
    }
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    if (ifp_gguf_open(pos[0], &g, &err)) {
        fprintf(stderr, "ifp info: %s\n", err.msg);
        return 1;
    }
    printf("file: %s\nGGUF version %u, alignment %" PRIu64 ", %" PRIu64 " metadata keys, %" PRIu64 " tensors\n\n",
           pos[0], ifp_gguf_version(g), ifp_gguf_alignment(g), ifp_gguf_n_kv(g), ifp_gguf_n_tensors(g));
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
    ifp_config_t c;
    if (ifp_config_from_gguf(g, &c, &err) == 0)
        printf("\nllama config: dim %d, layers %d, heads %d (kv %d, head dim %d), d_ffn %d, vocab %d, ctx %d, "
               "rms eps %g, rope theta %g (dims %d)\n",
               c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.d_ffn, c.vocab, c.ctx, (double)c.norm_eps,
               (double)c.rope_theta, c.rope_dim);
    else
        printf("\nnot a loadable llama model: %s\n", err.msg);
    ifp_gguf_close(&g);
    return 0;
}
