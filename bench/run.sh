#!/usr/bin/env bash
# bench/run.sh stage|predictor|router|membw|load|sim|curve|netns|prefill|depth|http|peer [--quick] [args...] — the one
# entry point of the benchmarks: builds what the benchmark needs, runs it, and
# (stage, predictor) draws its plots.  Every benchmark ends with one headline
# line of key=value pairs: the last line of stdout.
#
#   stage      bench_stage: dense and IFP-compacted stages of the paper's
#              shapes in every weight type (--types f32,bf16,q8_0 by default),
#              prefill/decode tokens/s, DRAM bandwidth; interleaved rounds with an
#              A/A check (~10 min; --quick ~1 min, shapes 3b and 9b: both with
#              bandwidth-bound kernels, see docs/BENCHMARKS.md).  Results:
#              bench/results/stage.csv (the f32 rows bench/sim reads),
#              stage_types.csv (every type), stage_summary.csv, stage.txt (the
#              output), stage_{decode,prefill,bw}.png
#   peer       bench/peer.sh --llama-bench PATH: ifp vs llama.cpp's llama-bench on
#              the same GGUF files (its header)
#   predictor  bench_predictor: predictor + routing as a share of TTFT (~1.5 min;
#              --quick ~12 s).  Results: bench/results/predictor.{csv,txt,png}
#   router     bench_router: the router with a paper-size (302M) predictor made by
#              `ifp synth --predictor-for`: admission req/s at 1 and 2 predictor
#              threads and with two routers (active-active, 1 thread each), the
#              loop's answer time to Ping while the predictor is saturated, the
#              heartbeat read lag, and predictor + routing as a share of TTFT at
#              the 9B shape (~5 min; --quick ~2 min).
#              Results: bench/results/router.{csv,txt,png}, router.csv.pings.csv
#   membw      bench_membw: DRAM read bandwidth at 1 and 2 threads
#   load, sim  bench/run_load.sh, bench/run_sim.sh (see their headers)
#   curve      bench/run_curve.sh: the local cluster's tokens/s and TTFT with CURVE
#              on vs off, runs alternating (~4 min; --quick ~1 min)
#   netns      bench/run_netns.sh: a 2-stage group on one host vs two (network
#              namespaces; root): TTFT, tokens/s, MPI share (~3 min)
#   prefill    bench/run_prefill.sh: TTFT of a 512-token prompt on 1-3 stages, prefill
#              chunks pipelined vs one at a time (~4 min; --quick ~1.5 min; its header)
#   depth      bench/run_depth.sh: a 56-layer 3b-shape model (11.3 GB) on 4 namespace hosts
#              vs 1 host vs 1 stage, against the composed estimate (root; ~75 min; its header)
#   http       bench/run_http.sh: the HTTP front door (OpenAI API, SSE) vs ZeroMQ + CURVE
#              on the same cluster: TTFT, tokens/s, 8 streams (~2 min; --quick ~20 s)
#
# --quick results go to build/bench-quick/ (never over the committed full-run
# results); other arguments pass through to the benchmark (e.g. --threads 2;
# --csv is set here).  IFP_BUILD_DIR (default build) names the CMake build
# tree used (then --quick results go to $IFP_BUILD_DIR/bench-quick/).
# Like the deploy launchers, picks an OpenBLAS kernel matching the CPU when
# OPENBLAS_CORETYPE is unset; IFP_BENCH_NATIVE=1 keeps OpenBLAS's own choice.
# Weights go in transparent huge pages (GLIBC_TUNABLES glibc.malloc.hugetlb=1:
# malloc madvises its large blocks): with 4 KB pages a model allocated late in
# the process decoded up to 25% slower than the same model allocated first.
# gnuplot is installed with apt-get when missing (plots are skipped if that
# fails).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh

usage() { sed -n '2,48p' "$0" | sed 's/^# \{0,1\}//'; }

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
what="$1"
shift
case "$what" in
# ---- owned by the load/sim benchmarks (bench/run_load.sh, bench/run_sim.sh) ----
load) exec bench/run_load.sh "$@" ;;
curve) exec bench/run_curve.sh "$@" ;;
netns) exec bench/run_netns.sh "$@" ;;
sim) exec bench/run_sim.sh "$@" ;;
prefill) exec bench/run_prefill.sh "$@" ;;
depth) exec bench/run_depth.sh "$@" ;;
http) exec bench/run_http.sh "$@" ;;
peer) exec bench/peer.sh "$@" ;;
# ---- stage, predictor, membw: below ----
stage | predictor | router | membw) ;;
-h | --help | help) usage; exit 0 ;;
*) printf 'bench/run.sh: unknown benchmark %s\n' "$what" >&2; usage >&2; exit 2 ;;
esac

quick=0
for arg in "$@"; do [[ "$arg" == --quick ]] && quick=1; done
build="${IFP_BUILD_DIR:-build}"
if ((quick)); then out="$build/bench-quick"; else out="bench/results"; fi
mkdir -p "$out"

# progress and set-up messages go to stderr: the headline stays the last line of stdout
{
    [ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
    case "${GLIBC_TUNABLES:-}" in
    *glibc.malloc.hugetlb=*) ;;
    *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;;
    esac
    ifp_info "GLIBC_TUNABLES=$GLIBC_TUNABLES (huge pages for the weights)"
    cmake -S . -B "$build" >/dev/null
    targets=("bench_$what")
    [[ "$what" == router ]] && targets+=(ifp ifp-router)
    cmake --build "$build" --target "${targets[@]}" -- -j"$(ifp_nproc)"
} >&2

csv_args=(--csv "$out/$what.csv")
if [[ "$what" == router ]]; then
    # the paper's predictor size, for the embedded model (progress on the terminal)
    tmp="$( [[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}" )"
    pred="$tmp/ifp-bench-router-302m-$$.gguf"
    trap 'rm -f "$pred"' EXIT
    "./$build/tools/ifp" synth --predictor-for models/ifp-mix/ifp-mix.gguf --backbone 302m -o "$pred" >&2
    csv_args+=(--predictor "$pred")
fi
"./$build/bench/bench_$what" "$@" "${csv_args[@]}" | tee "$out/$what.txt"

[[ "$what" == membw ]] && exit 0
if ! command -v gnuplot >/dev/null 2>&1; then
    ifp_info "installing gnuplot-nox for the plots" >&2
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends gnuplot-nox; } >&2 || true
fi
if ! command -v gnuplot >/dev/null 2>&1; then
    ifp_info "gnuplot is not available: no plots (the CSVs are in $out/)" >&2
    exit 0
fi
if [[ "$what" == stage ]]; then
    # a line per weight type; types not measured are skipped (gnuplot warns, harmlessly)
    gnuplot -e "summary='$out/stage_summary.csv'; outdir='$out'" bench/plot_stage.gp 2>&1 |
        grep -v 'Skipping data file with no valid points' >&2 || true
    ifp_info "plots: $out/stage_decode.png $out/stage_prefill.png $out/stage_bw.png" >&2
elif [[ "$what" == router ]]; then
    gnuplot -e "trace='$out/router.csv.pings.csv'; outdir='$out'" bench/plot_router.gp >&2
    ifp_info "plot: $out/router.png" >&2
else
    gnuplot -e "csv='$out/predictor.csv'; outdir='$out'" bench/plot_predictor.gp >&2
    ifp_info "plot: $out/predictor.png" >&2
fi
