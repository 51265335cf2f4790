/* gen_seeds_gguf.c — seed inputs of fuzz_gguf: whole small models.
 *   tiny-llama.gguf   dim 8, a byte-fallback tokenizer, F16/BF16/F32 tensors
 *   all-types.gguf    every metadata value type, a few odd tensors
 *   tiny-q8_0*.gguf, tiny-bf16.gguf   a tiny model (dim 32, so Q8_0 rows are
 *                     whole blocks) with Q8_0 matrices, once with the down
 *                     projection channel-major (ffn_down_t, as `ifp quantize`
 *                     writes it) and once in llama's layout (converted at
 *                     load), and once in BF16 — each checked to load.
 * (The header-only seeds of the real models are gen_seeds.c's.) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "gguf.h"
#include "model.h"
#include "synth.h"
#include "tokenizer.h"

typedef void (*put_fn)(const char *target, const char *name, const void *data, size_t len);

/* The bytes of a file at path, to put() as fuzz_gguf seed name; removes it. */
static void put_file(put_fn put, const char *path, const char *name) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
        put("fuzz_gguf", name, buf, (size_t)n);
    } else {
        fprintf(stderr, "gen_seeds: %s: cannot read back %s\n", name, path);
        exit(1);
    }
    free(buf);
    fclose(f);
    unlink(path);
}

/* Writes w to a temporary file and puts its bytes as seed name. */
static void put_writer(put_fn put, ifp_gguf_writer_t *w, const char *name) {
    char path[] = "/tmp/ifp-seed-XXXXXX";
    int fd = mkstemp(path);
    ifp_err_t err = {0};
    if (fd < 0 || ifp_gguf_writer_write(w, path, &err)) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, fd < 0 ? "mkstemp failed" : err.msg);
        exit(1);
    }
    close(fd);
    put_file(put, path, name);
}

/* A complete llama model small enough to load in microseconds: dim 8, one
 * layer, a byte-fallback tokenizer with a few merges; F16 / BF16 / F32
 * tensors and a tied classifier. */
static void gguf_tiny_model(put_fn put) {
    enum { DIM = 8, FFN = 16, HEADS = 2, KV = 1 };
    static const char *const merges[] = {"\xE2\x96\x81", ("\xE2\x96\x81" "t"), "he", ("\xE2\x96\x81" "the"), "ll", "o",
                                         ("\xE2\x96\x81" "a"), "in", "ing", ("\xE2\x96\x81" "w")};
    enum { N_MERGES = sizeof merges / sizeof *merges, VOCAB = 3 + 256 + N_MERGES };
    char *pieces[VOCAB];
    float scores[VOCAB];
    int32_t types[VOCAB];
    const char *special[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < VOCAB; i++) {
        char buf[16];
        if (i < 3) snprintf(buf, sizeof buf, "%s", special[i]);
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else snprintf(buf, sizeof buf, "%s", merges[i - 259]);
        pieces[i] = strdup(buf);
        types[i] = i == 0 ? IFP_TOK_UNKNOWN : i < 3 ? IFP_TOK_CONTROL : i < 259 ? IFP_TOK_BYTE : IFP_TOK_NORMAL;
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    ifp_gguf_writer_set_str(w, "general.architecture", "llama");
    ifp_gguf_writer_set_str(w, "general.name", "fuzz-tiny");
    ifp_gguf_writer_set_u32(w, "llama.context_length", 32);
    ifp_gguf_writer_set_u32(w, "llama.embedding_length", DIM);
    ifp_gguf_writer_set_u32(w, "llama.block_count", 1);
    ifp_gguf_writer_set_u32(w, "llama.feed_forward_length", FFN);
    ifp_gguf_writer_set_u32(w, "llama.attention.head_count", HEADS);
    ifp_gguf_writer_set_u32(w, "llama.attention.head_count_kv", KV);
    ifp_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    ifp_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    ifp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    ifp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, VOCAB);
    ifp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IFP_GGUF_FLOAT32, scores, VOCAB);
    ifp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IFP_GGUF_INT32, types, VOCAB);
    ifp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    ifp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    ifp_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    ifp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    /* weights: small deterministic values */
    static float f32[FFN * DIM];
    static uint16_t f16[VOCAB * DIM], bf16[FFN * DIM];
    for (int i = 0; i < FFN * DIM; i++) f32[i] = (float)((i * 37) % 17 - 8) / 16.0f;
    for (int i = 0; i < VOCAB * DIM; i++) f16[i] = ifp_f32_to_f16((float)((i * 13) % 11 - 5) / 8.0f);
    for (int i = 0; i < FFN * DIM; i++) bf16[i] = ifp_f32_to_bf16(f32[i]);
    uint64_t emb[2] = {DIM, VOCAB}, vec[1] = {DIM}, q[2] = {DIM, HEADS * DIM / HEADS}, kv[2] = {DIM, KV * DIM / HEADS},
             up[2] = {DIM, FFN}, down[2] = {FFN, DIM};
    ifp_gguf_writer_add_tensor(w, "token_embd.weight", IFP_GGML_F16, 2, emb, f16);
    ifp_gguf_writer_add_tensor(w, "output_norm.weight", IFP_GGML_F32, 1, vec, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", IFP_GGML_F32, 1, vec, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", IFP_GGML_F32, 2, q, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.attn_k.weight", IFP_GGML_F32, 2, kv, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.attn_v.weight", IFP_GGML_BF16, 2, kv, bf16);
    ifp_gguf_writer_add_tensor(w, "blk.0.attn_output.weight", IFP_GGML_F32, 2, q, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.ffn_norm.weight", IFP_GGML_F32, 1, vec, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.ffn_gate.weight", IFP_GGML_BF16, 2, up, bf16);
    ifp_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", IFP_GGML_F32, 2, up, f32);
    ifp_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", IFP_GGML_F32, 2, down, f32);
    put_writer(put, w, "tiny-llama.gguf");
    ifp_gguf_writer_destroy(&w);
    for (int i = 0; i < VOCAB; i++) free(pieces[i]);
}

/* One key of every value type and array element type, alignment 64, one
 * tensor of each element type. */
static void gguf_all_types(put_fn put) {
    ifp_gguf_writer_t *w = ifp_gguf_writer_new();
    ifp_gguf_writer_set_alignment(w, 64);
    ifp_gguf_writer_set_str(w, "general.architecture", "test");
    ifp_gguf_writer_set_u32(w, "t.u32", 4000000000u);
    ifp_gguf_writer_set_i32(w, "t.i32", -7);
    ifp_gguf_writer_set_u64(w, "t.u64", 1ull << 40);
    ifp_gguf_writer_set_f32(w, "t.f32", 0.25f);
    ifp_gguf_writer_set_bool(w, "t.bool", 1);
    ifp_gguf_writer_set_str(w, "t.str", "caf\xc3\xa9");
    static const char *const strs[] = {"a", "", "\xE2\x96\x81x"}; /* x is not a hex digit */
    ifp_gguf_writer_set_arr_str(w, "t.arr.str", strs, 3);
    static const uint8_t u8[] = {0, 1, 255};
    static const int16_t i16[] = {-1, 2, 300};
    static const int32_t i32[] = {-5, 0, 7, 1 << 30};
    static const uint64_t u64[] = {0, 1ull << 63};
    static const int64_t i64[] = {-1, 1ll << 50};
    static const float f32[] = {1.5f, -0.0f};
    static const double f64[] = {3.25, -1e300};
    ifp_gguf_writer_set_arr(w, "t.arr.u8", IFP_GGUF_UINT8, u8, 3);
    ifp_gguf_writer_set_arr(w, "t.arr.i8", IFP_GGUF_INT8, u8, 3);
    ifp_gguf_writer_set_arr(w, "t.arr.i16", IFP_GGUF_INT16, i16, 3);
    ifp_gguf_writer_set_arr(w, "t.arr.u16", IFP_GGUF_UINT16, i16, 3);
    ifp_gguf_writer_set_arr(w, "t.arr.i32", IFP_GGUF_INT32, i32, 4);
    ifp_gguf_writer_set_arr(w, "t.arr.u32", IFP_GGUF_UINT32, i32, 4);
    ifp_gguf_writer_set_arr(w, "t.arr.u64", IFP_GGUF_UINT64, u64, 2);
    ifp_gguf_writer_set_arr(w, "t.arr.i64", IFP_GGUF_INT64, i64, 2);
    ifp_gguf_writer_set_arr(w, "t.arr.f32", IFP_GGUF_FLOAT32, f32, 2);
    ifp_gguf_writer_set_arr(w, "t.arr.f64", IFP_GGUF_FLOAT64, f64, 2);
    static const float data[6] = {1, 2, 3, 4, 5, 6};
    uint64_t ne3[3] = {1, 2, 3}, ne1[1] = {4};
    ifp_gguf_writer_add_tensor(w, "t.f32", IFP_GGML_F32, 3, ne3, data);
    ifp_gguf_writer_add_tensor(w, "t.f16", IFP_GGML_F16, 1, ne1, data);
    ifp_gguf_writer_add_tensor(w, "t.bf16", IFP_GGML_BF16, 1, ne1, data);
    put_writer(put, w, "all-types.gguf");
    ifp_gguf_writer_destroy(&w);
}


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
    close(fd);
    put_file(put, path, name);
    ifp_model_free(&back);
    ifp_model_free(&m);
}

void gen_seeds_gguf(put_fn put) {
    gguf_tiny_model(put);
    gguf_all_types(put);
    one(put, "tiny-q8_0.gguf", IFP_GGML_Q8_0, 0);
    one(put, "tiny-q8_0-llama.gguf", IFP_GGML_Q8_0, 1);
    one(put, "tiny-bf16.gguf", IFP_GGML_BF16, 0);
}
