/* gen_seeds_gguf.c — seed inputs of fuzz_gguf in the quantized weight type:
 * a tiny model (dim 32, so Q8_0 rows are whole blocks) written with Q8_0
 * matrices, once with the down projection channel-major (ffn_down_t, as
 * `ifp quantize` writes it) and once in llama's layout (converted at load),
 * and once in BF16.  Each is checked to load before it is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "model.h"
#include "synth.h"

typedef void (*put_fn)(const char *target, const char *name, const void *data, size_t len);

static void one(put_fn put, const char *name, int wtype, int down_llama) {
    ifp_config_t c = {.dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 16, .d_ffn = 64,
                      .vocab = 40, .ctx = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_dim = 16};
    ifp_model_t *m = NULL, *back = NULL;
    ifp_err_t err = {0};
    char path[] = "/tmp/ifp-seed-XXXXXX";
    int fd = mkstemp(path);
    ifp_synth_write_params_t wp = ifp_synth_write_default_params();
    wp.wtype = wtype;
    wp.down_llama = down_llama;
    wp.name = name;
    if (fd < 0 || ifp_model_synth(&c, 3, NULL, &m, &err) || ifp_synth_write_gguf(m, path, &wp, &err) ||
        ifp_model_load(path, NULL, &back, &err)) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, err.msg);
        exit(1);
    }
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
        fread(buf, 1, (size_t)n, f) == (size_t)n)
        put("fuzz_gguf", name, buf, (size_t)n);
    else {
        fprintf(stderr, "gen_seeds: %s: cannot read back %s\n", name, path);
        exit(1);
    }
    free(buf);
    fclose(f);
    close(fd);
    unlink(path);
    ifp_model_free(&back);
    ifp_model_free(&m);
}

void gen_seeds_gguf(put_fn put) {
    one(put, "tiny-q8_0.gguf", IFP_GGML_Q8_0, 0);
    one(put, "tiny-q8_0-llama.gguf", IFP_GGML_Q8_0, 1);
    one(put, "tiny-bf16.gguf", IFP_GGML_BF16, 0);
}
