#!/usr/bin/env bash
# bench/run_sim.sh [--quick] [bench_sim options] — builds and runs the
# datacenter simulator (bench/sim): routing policies and the hot-cluster
# rebalancer at several offered loads.  Step times come from
# bench/results/stage.csv (bench/run.sh stage) when it exists, else from the
# built-in roofline; the run prints which.
# Full: 1000 groups x 4 stages x 16 slots, 600 simulated seconds, loads
# 0.5 1 2 3 (x the all-dense capacity), ~1.5 min.  --quick: 200 groups,
# loads 1 and 2, ~15 s.  Results: bench/results/sim.csv and sim.png; the last
# line is the headline (at the largest load).  Extra options pass through to
# bench_sim (see build/bench/bench_sim --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
quick=0
args=()
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$arg") ;;
    esac
done
# the predictor runs once over the calibration prompts: a fitting BLAS kernel
[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
export OPENBLAS_NUM_THREADS=1
if ! command -v gnuplot >/dev/null; then
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gnuplot-nox >/dev/null ||
        ifp_info "gnuplot could not be installed: no plot"
fi
cmake -S . -B build >/dev/null
cmake --build build --target bench_sim -j"$(ifp_nproc)" >/dev/null
mkdir -p bench/results
csv=bench/results/sim.csv
if ((quick)); then
    size=(--groups 200 --loads "1,2" --duration 600)
else
    size=(--groups 1000 --loads "0.5,1,2,3" --duration 600)
fi
t0=$SECONDS
./build/bench/bench_sim "${size[@]}" --csv "$csv" "${args[@]}" | tee "$csv.log.tmp"
ifp_info "bench_sim took $((SECONDS - t0)) s"
if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; out='bench/results/sim.png'" bench/plot_sim.gp && ifp_info "plot: bench/results/sim.png"
fi
grep '^sim_groups=' "$csv.log.tmp" | tail -n 1
rm -f "$csv.log.tmp"
