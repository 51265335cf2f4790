#!/usr/bin/env bash
# bench/peer.sh --llama-bench PATH [--quick] [--threads 1,2] [--types bf16,q8_0] [--rounds R] [--layers N]
# — ifp against llama.cpp's llama-bench on the very same GGUF files.
#
# llama.cpp is not a dependency: give the path of a llama-bench binary you built
# (https://github.com/ggml-org/llama.cpp, `cmake -B b && cmake --build b --target
# llama-bench`).  Without --llama-bench, or if PATH is not an executable, the
# script exits 2 and says so.
#
# Defaults: --threads 1, --layers 4, --types bf16,q8_0.
#
# Files (in /dev/shm when writable, removed at the end):
#   ifp synth --shape S --layers N --tokenizer -o S-synth.gguf  S = 3b, and 9b unless --quick (a
#                                                             synthetic vocabulary: llama.cpp needs one)
#   ifp quantize S-synth.gguf S-T.gguf --type T --llama-layout  T in --types (default bf16,q8_0;
#                                                             f32 and f16 too): llama's tensor
#                                                             layout, so llama.cpp loads it
# Runs, per round, for every file and thread count T, the two tools one after the
# other — llama-bench first in odd rounds, ifp first in even ones:
#   llama-bench -m FILE -p 512 -n 128 -t T -r 1 -o csv
#   bench_stage --model FILE --threads T --prompt 512 --gen 128 --reps 1
#     (stage_peer.c: the same two tests as llama-bench — pp512, one 512-token
#     prompt from an empty context, logits of its last token; tg128, 128 tokens
#     one at a time from an empty context, logits for each — after an untimed
#     warm-up, as llama-bench has)
# Ratios are ours / theirs in tokens/s, per round; reported: the median of the
# per-round ratios (rounds: 3; --quick 2, 3b only).
#
# Output: a table on stdout, CSV at bench/results/peer.csv (--quick:
# $IFP_BUILD_DIR/bench-quick/peer.csv, as bench/run.sh does), and a headline
# (last line): peer_decode_<type>= and peer_prefill_<type>= at the 3b shape and
# the first thread count, peer_{decode,prefill}_<type>_<shape>_t<T>= for every
# measurement, and cpu=, isa=, blas_core=.
#
# Run against a real llama-bench (llama.cpp c392e5094, built with GGML_NATIVE
# on the benchmark machine): docs/BENCHMARKS.md has the figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

llama="" quick=0 threads="1" types="bf16,q8_0" rounds="" layers=4
while (($#)); do
    case "$1" in
    --llama-bench) llama="${2:-}"; shift 2 || true ;;
    --quick) quick=1; shift ;;
    --threads) threads="${2:-}"; shift 2 || true ;;
    --types) types="${2:-}"; shift 2 || true ;;
    --rounds) rounds="${2:-}"; shift 2 || true ;;
    --layers) layers="${2:-}"; shift 2 || true ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'bench/peer.sh: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ -z "$llama" ]]; then
    printf 'bench/peer.sh: --llama-bench PATH is required: the llama-bench binary of a llama.cpp build\n' >&2
    printf '  (llama.cpp is not a dependency of ifp; build it yourself, then pass its path)\n' >&2
    exit 2
fi
if [[ ! -f "$llama" || ! -x "$llama" ]]; then
    printf 'bench/peer.sh: --llama-bench %s: not an executable file\n' "$llama" >&2
    exit 2
fi
[[ "$threads" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { printf 'bench/peer.sh: --threads: expected e.g. 1,2\n' >&2; exit 2; }
[[ "$types" =~ ^(f32|f16|bf16|q8_0)(,(f32|f16|bf16|q8_0))*$ ]] ||
    { printf 'bench/peer.sh: --types: expected a comma-separated list of f32, f16, bf16, q8_0\n' >&2; exit 2; }
[[ -z "$rounds" || "$rounds" =~ ^[1-9][0-9]?$ ]] || { printf 'bench/peer.sh: --rounds: expected 1..99\n' >&2; exit 2; }
[[ "$layers" =~ ^[1-9][0-9]?$ ]] || { printf 'bench/peer.sh: --layers: expected 1..56\n' >&2; exit 2; }
[[ -n "$rounds" ]] || rounds=$((quick ? 2 : 3))
shapes=(3b)
((quick)) || shapes+=(9b)
IFS=, read -r -a tlist <<<"$threads"
IFS=, read -r -a typelist <<<"$types"

build="${IFP_BUILD_DIR:-build}"
if ((quick)); then out="$build/bench-quick"; else out="bench/results"; fi
mkdir -p "$out"
csv="$out/peer.csv"
{
    [ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
    case "${GLIBC_TUNABLES:-}" in
    *glibc.malloc.hugetlb=*) ;;
    *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;;
    esac
    cmake -S . -B "$build" >/dev/null
    cmake --build "$build" --target ifp bench_stage -- -j"$(ifp_nproc)"
} >&2
ifp="./$build/tools/ifp"
bench="./$build/bench/bench_stage"
if ! "$ifp" quantize --help >/dev/null 2>&1; then
    printf 'bench/peer.sh: this build of ifp has no "ifp quantize" (needed for the llama-layout files)\n' >&2
    exit 1
fi

work="$(mktemp -d "$([[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/ifp-peer-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- the files ----------------------------------------------------------------
declare -A file
for s in "${shapes[@]}"; do
    ifp_info "ifp synth --shape $s --layers $layers" >&2
    "$ifp" synth --shape "$s" --layers "$layers" --tokenizer -o "$work/$s-synth.gguf" >&2
    for t in "${typelist[@]}"; do
        ifp_info "ifp quantize $s-synth.gguf $s-$t.gguf --type $t --llama-layout" >&2
        "$ifp" quantize "$work/$s-synth.gguf" "$work/$s-$t.gguf" --type "$t" --llama-layout >&2
        file[$s,$t]="$work/$s-$t.gguf"
    done
    rm -f "$work/$s-synth.gguf"
done

# ---- the runs -----------------------------------------------------------------
# llama-bench's csv: a header naming the fields (n_prompt, n_gen, avg_ts, ...),
# values double-quoted; one row per test.  Prints "PREFILL DECODE" tok/s.
parse_llama() {
    python3 -c '
import csv, sys
pp = tg = None
for row in csv.DictReader(sys.stdin):
    try:
        n_p, n_g, ts = int(row["n_prompt"]), int(row["n_gen"]), float(row["avg_ts"])
    except (KeyError, ValueError):
        continue
    if n_p > 0 and n_g == 0: pp = ts
    if n_g > 0 and n_p == 0: tg = ts
if pp is None or tg is None:
    sys.exit("no pp and tg rows with n_prompt, n_gen, avg_ts in its csv")
print(pp, tg)
'
}
run_llama() { # FILE T -> "PREFILL DECODE"
    local o
    o="$("$llama" -m "$1" -p 512 -n 128 -t "$2" -r 1 -o csv 2>"$work/llama.err")" ||
        { cat "$work/llama.err" >&2; ifp_die "llama-bench failed on $1"; }
    parse_llama <<<"$o" || { printf '%s\n' "$o" >&2; ifp_die "cannot read llama-bench's output"; }
}
run_ifp() { # FILE T -> "PREFILL DECODE"
    "$bench" --model "$1" --threads "$2" --prompt 512 --gen 128 --reps 1 >"$work/ifp.out" 2>"$work/ifp.err" ||
        { cat "$work/ifp.out" "$work/ifp.err" >&2; ifp_die "bench_stage --model failed on $1"; }
    tail -n 1 "$work/ifp.out" |
        sed -n 's/.*peer_ifp_prefill_tok_s=\([0-9.]*\).*peer_ifp_decode_tok_s=\([0-9.]*\).*/\1 \2/p'
}

tmpcsv="$csv.tmp"
echo "shape,layers,weight_type,threads,round,order,ifp_prefill_tok_s,llama_prefill_tok_s,prefill_ratio,ifp_decode_tok_s,llama_decode_tok_s,decode_ratio" >"$tmpcsv"
for ((r = 1; r <= rounds; r++)); do
    for s in "${shapes[@]}"; do
        for t in "${typelist[@]}"; do
            for T in "${tlist[@]}"; do
                f="${file[$s,$t]}"
                if ((r % 2)); then
                    order="llama,ifp"; read -r lp ld <<<"$(run_llama "$f" "$T")"; read -r ip id <<<"$(run_ifp "$f" "$T")"
                else
                    order="ifp,llama"; read -r ip id <<<"$(run_ifp "$f" "$T")"; read -r lp ld <<<"$(run_llama "$f" "$T")"
                fi
                [[ -n "${lp:-}" && -n "${ld:-}" ]] || ifp_die "no pp/tg figures from llama-bench on $f"
                [[ -n "${ip:-}" && -n "${id:-}" ]] || ifp_die "no peer_ifp_* figures from bench_stage --model $f"
                line="$(awk -v s="$s" -v L="$layers" -v t="$t" -v T="$T" -v r="$r" -v o="$order" -v ip="$ip" \
                    -v lp="$lp" -v id="$id" -v ld="$ld" 'BEGIN {
                    printf "%s,%d,%s,%d,%d,\"%s\",%.3f,%.3f,%.4f,%.3f,%.3f,%.4f", s, L, t, T, r, o, ip, lp, ip / lp, id, ld, id / ld }')"
                echo "$line" >>"$tmpcsv"
                ifp_info "round $r $s $t t=$T ($order): prefill ifp $ip / llama $lp tok/s, decode ifp $id / llama $ld tok/s" >&2
            done
        done
    done
done
mv "$tmpcsv" "$csv"

# ---- report -------------------------------------------------------------------
facts="$(sed -n 's/^machine: //p' "$work/ifp.out" | head -n 1)" # cpu=, isa=, blas_core= of the last ifp run
printf 'ifp %s vs llama-bench %s; %d-layer synthetic models, llama layout; %d round(s), runs alternating\n' \
    "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$llama" "$layers" "$rounds"
printf 'machine: %s; OPENBLAS_CORETYPE=%s\n' "$facts" "${OPENBLAS_CORETYPE:-native}"
python3 - "$csv" "${tlist[0]}" "$facts" <<'EOF'
import csv, statistics, sys
path, t0, facts = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.DictReader(open(path)))
keys = []
for r in rows:
    k = (r["shape"], r["weight_type"], r["threads"])
    if k not in keys: keys.append(k)
print(f'{"shape":<6}{"type":<6}{"thr":>4}{"ifp pp":>10}{"llama pp":>10}{"ratio":>8}{"ifp tg":>10}{"llama tg":>10}{"ratio":>8}  (tok/s, medians; ratios: medians of per-round ratios)')
head = []
for k in keys:
    g = [r for r in rows if (r["shape"], r["weight_type"], r["threads"]) == k]
    med = lambda c: statistics.median(float(r[c]) for r in g)
    pr, dr = med("prefill_ratio"), med("decode_ratio")
    print(f'{k[0]:<6}{k[1]:<6}{k[2]:>4}{med("ifp_prefill_tok_s"):>10.2f}{med("llama_prefill_tok_s"):>10.2f}{pr:>8.3f}'
          f'{med("ifp_decode_tok_s"):>10.2f}{med("llama_decode_tok_s"):>10.2f}{dr:>8.3f}')
    if k[0] == "3b" and k[2] == t0:
        head += [f"peer_decode_{k[1]}={dr:.3f}", f"peer_prefill_{k[1]}={pr:.3f}"]
    head += [f"peer_decode_{k[1]}_{k[0]}_t{k[2]}={dr:.3f}", f"peer_prefill_{k[1]}_{k[0]}_t{k[2]}={pr:.3f}"]
print(f"csv: {path}")
print("headline: " + " ".join(head + [f"rounds={len(set(r['round'] for r in rows))}"] + facts.split()))
EOF
