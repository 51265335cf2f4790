/* stage_peer.h — a GGUF model measured the way llama.cpp's llama-bench
 * measures one (bench_stage --model; bench/peer.sh runs both side by side).
 *
 * llama-bench -p P -n N: "pp P" = one P-token prompt in one batch from an
 * empty context, logits of the last token only; "tg N" = N tokens decoded
 * one at a time at batch 1 from an empty context, logits for every token
 * (random token ids: no sampling); each test once untimed first, then the
 * mean over repetitions.  Here: the whole model (embedding, every layer,
 * head) through ifp_forward, the same two tests, the same warm-up, the
 * median over repetitions (= the value with -r 1). */
#ifndef IFP_BENCH_STAGE_PEER_H
#define IFP_BENCH_STAGE_PEER_H

/* Loads path (weights in their stored type), runs the tests with OpenBLAS
 * at `threads` (already set by the caller; reported), prints a summary and
 * a headline "peer_ifp_prefill_tok_s=... peer_ifp_decode_tok_s=..." on
 * stdout.  Returns the process exit code (0 ok, 1 error). */
int bs_peer_main(const char *path, int threads, int prompt, int gen, int reps);

#endif
