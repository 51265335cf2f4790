#!/usr/bin/env bash
# Builds bench_forward and runs it; arguments pass through (e.g. --quick).
# Results: bench/results/forward.csv unless --csv says otherwise.
# Like the deploy launchers, picks an OpenBLAS kernel matching the CPU when
# OPENBLAS_CORETYPE is unset (Debian's OpenBLAS may detect an old core);
# IFP_BENCH_NATIVE=1 keeps OpenBLAS's own detection.  The benchmark prints
# the core it runs on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
cmake -S . -B build >/dev/null
cmake --build build --target bench_forward
exec ./build/bench/bench_forward "$@"
