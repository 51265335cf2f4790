#!/usr/bin/env bash
# bench/run_prefill.sh [--quick] — TTFT of one long prompt on a shard group of
# P = 1, 2, 3 pipeline stages, with the prompt's prefill chunks pipelined
# across the stages (the shard's default: up to P chunks of it in flight) and
# one chunk at a time through all the stages (IFP_SHARD_PREFILL_INFLIGHT=1,
# shard/sched.h), requests to the two alternating on the same machine.
# Model: `ifp synth --shape 3b --layers 6` (the paper's d 2048, 16/2 heads,
# d_ffn 6656; 6 of its 56 layers, 1.2 GB of F32) with vocabulary 2048 and the
# ifp-mix tokenizer added (bench/gguf_tokenizer.py), so the real ifp-router
# runs it (and a 10M predictor for it, which only deploy/local.sh's readiness
# probe uses).  For each P and mode, a local cluster (deploy/local.sh: the
# router and one dense group of P stages, an even layer split, max_batch 64,
# [security] curve = off, ipc:// endpoints in a temp dir), both modes up at
# once (an idle group naps), one warm-up request each, then N rounds of one
# request to each, old and new in turn: a 512-token prompt (8 chunks of 64
# rows), max_tokens 1, greedy, mask dense, through `ifp client --json`; TTFT
# = its ttft_ms (client send -> first token).  Full: N = 7 (~4 min);
# --quick: N = 2 (~1.5 min).  On a machine with fewer cores than P the ranks
# share cores: compare old and new at equal P.
# Results: bench/results/prefill.csv (one row per request),
# prefill_summary.csv (medians and minima per P), prefill.png; the last line is the
# headline: median TTFT per P and mode, old/new ratios.  Environment:
# IFP_PREFILL_RUNS (N), IFP_PREFILL_SHAPE (3b), IFP_PREFILL_LAYERS (6).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
root="$PWD"

ifp_bench_args "$0" 23 "$@"
if ((quick)); then runs=2 results="$root/build/bench-quick"; else runs=7 results="$root/bench/results"; fi
runs="${IFP_PREFILL_RUNS:-$runs}"
shape="${IFP_PREFILL_SHAPE:-3b}"
layers="${IFP_PREFILL_LAYERS:-6}"
chunk=64
prompt_len=512

[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
command -v mpirun >/dev/null || ifp_die "mpirun not found (apt-get install openmpi-bin)"
command -v python3 >/dev/null || ifp_die "python3 not found (bench/gguf_tokenizer.py adds the tokenizer to the model)"
cmake -S . -B build >/dev/null
cmake --build build --target ifp-router ifp-shard ifp -j"$(ifp_nproc)" >/dev/null

mkdir -p "$results"
tmp="$( [[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}" )"
work="$(mktemp -d "$tmp/ifp-prefill.XXXXXX")"
# cluster MODE ARGS...: deploy/local.sh ARGS for the cluster of MODE (old or
# new: its own config, endpoints and run dir)
cluster() {
    local mode="$1"
    shift
    IFP_RUN_DIR="$work/run-$mode" IFP_START_TIMEOUT=120 deploy/local.sh "$1" "$work/$mode.ini"
}
cleanup() {
    for m in old new; do cluster "$m" stop >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
csv="$results/prefill.csv"
summary="$results/prefill_summary.csv"

ifp_step "the model: ifp synth --shape $shape --layers $layers, with the ifp-mix tokenizer"
./build/tools/ifp synth --shape "$shape" --layers "$layers" --vocab 2048 --ctx 1024 -o "$work/synth.gguf" >&2
python3 bench/gguf_tokenizer.py "$work/synth.gguf" models/ifp-mix/ifp-mix.gguf "$work/model.gguf"
rm -f "$work/synth.gguf"
# a 10M predictor, only for deploy/local.sh's readiness probe (its request
# asks for an input mask); the measured requests are dense
./build/tools/ifp synth --predictor-for "$work/model.gguf" --backbone 10m -o "$work/predictor.gguf" >&2

# 127 x "a b c d " + "a b c": BOS + 511 tokens with the ifp-mix tokenizer
# (checked on every answer)
prompt="$(for ((i = 0; i < 127; i++)); do printf 'a b c d '; done)a b c"

# write_config MODE P: one dense group of P stages
write_config() {
    cat >"$work/$1.ini" <<EOF
[security]
curve = off

[http]
listen = off

[router]
frontend = ipc://$work/frontend-$1
backend = ipc://$work/backend-$1
max_tokens = 1

[model]
model = $work/model.gguf
predictor = $work/predictor.gguf

[group g0]
stages = $2
cluster = dense
slots = 2
max_batch = $chunk
EOF
}

# ask RUN P MODE: one request; appends its CSV row (or dies).
ask() {
    local out ttft n
    out="$(./build/tools/ifp client --router "ipc://$work/frontend-$3" --plain --prompt "$prompt" -n 1 --temp 0 \
        --mask dense --timeout-ms 120000 --json 2>"$work/client.err")" || {
        cat "$work/client.err" >&2
        ifp_die "the request failed (P=$2, $3; logs in $work/run-$3)"
    }
    ttft="$(grep -o '"ttft_ms":[0-9.]*' <<<"$out" | cut -d: -f2)"
    n="$(grep -o '"prompt_tokens":\[[0-9,]*\]' <<<"$out" | tr -cd ',' | wc -c)"
    n=$((n + 1))
    ((n == prompt_len)) || ifp_die "the prompt came out as $n tokens, not $prompt_len"
    [[ -n "$ttft" ]] || ifp_die "no ttft_ms in the answer: $out"
    (($1 == 0)) || printf '%d,%s,%d,%s,%d\n' "$2" "$3" "$1" "$ttft" "$n" >>"$csv"
    ifp_info "  P=$2 $3 run $1: ttft ${ttft} ms"
}

ifp_info "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(ifp_nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
printf 'P,mode,run,ttft_ms,prompt_tokens\n' >"$csv"
t_start=$SECONDS
for P in 1 2 3; do
    ifp_step "P=$P: old (one chunk at a time) and new (chunks pipelined), one cluster each, requests alternating"
    for mode in old new; do
        write_config "$mode" "$P"
        if [[ "$mode" == old ]]; then export IFP_SHARD_PREFILL_INFLIGHT=1; else unset IFP_SHARD_PREFILL_INFLIGHT; fi
        cluster "$mode" start >"$work/start.log" 2>&1 || {
            cat "$work/start.log" >&2
            ifp_die "the $mode cluster did not start (logs in $work/run-$mode)"
        }
        unset IFP_SHARD_PREFILL_INFLIGHT
        want=$([[ "$mode" == old ]] && echo 1 || echo "$P")
        if ((P > 1)) && ! grep -q "chunks in up to $want of the $P micro-batches" "$work/run-$mode/group-g0.log"; then
            ifp_die "stage 0 of P=$P does not run $mode (no 'up to $want of the $P' in $work/run-$mode/group-g0.log)"
        fi
    done
    # run 0 warms both up; then old, new in turn (new first every other
    # round), so that both see the same machine
    for ((r = 0; r <= runs; r++)); do
        if ((r % 2)); then ask "$r" "$P" new; ask "$r" "$P" old; else ask "$r" "$P" old; ask "$r" "$P" new; fi
    done
    for mode in old new; do cluster "$mode" stop >/dev/null; done
done
ifp_info "prefill runs took $((SECONDS - t_start)) s"

# medians per (P, mode) -> summary; the headline
awk -F, -v shape="$shape" -v layers="$layers" -v chunk="$chunk" -v plen="$prompt_len" -v runs="$runs" -v summary="$summary" '
    function med(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 { k = ++n[$1, $2]; v[$1, $2, k] = $4 }
    END {
        print "P,old_ms,new_ms,old_over_new,old_min_ms,new_min_ms" >summary
        line = ""
        for (P = 1; P <= 3; P++) {
            for (mi = 1; mi <= 2; mi++) {
                m = mi == 1 ? "old" : "new"
                delete a
                for (k = 1; k <= n[P, m]; k++) a[k] = v[P, m, k]
                M[m] = med(a, n[P, m])
                L[m] = a[1] # med() sorted a
            }
            r = sprintf("%.2f", M["old"] / M["new"])
            printf "%d,%.1f,%.1f,%s,%.1f,%.1f\n", P, M["old"], M["new"], r, L["old"], L["new"] >summary
            line = line sprintf("ttft_ms_p%d_old=%.0f ttft_ms_p%d_new=%.0f ratio_p%d=%s ", P, M["old"], P, M["new"], P, r)
        }
        printf "%sshape=%s layers=%s prompt_tokens=%s chunk=%s runs=%s\n", line, shape, layers, plen, chunk, runs
    }' "$csv" >"$work/headline"

if ! command -v gnuplot >/dev/null 2>&1; then
    ifp_info "installing gnuplot-nox for the plot"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends gnuplot-nox; } >&2 || true
fi
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot -e "csv='$csv'; summary='$summary'; out='$results/prefill.png'; title='$shape shape, $layers layers, $prompt_len-token prompt, chunks of $chunk, $(ifp_nproc) cores'" \
        bench/plot_prefill.gp && ifp_info "plot: $results/prefill.png"
else
    ifp_info "gnuplot is not available: no plot (the CSVs are in $results/)"
fi
cat "$work/headline"
