#!/usr/bin/env bash
# bench/run_load.sh [--quick] — routing policies on the local cluster under
# open-loop load (bench_load).
#
# For each policy (affinity, round-robin, least-loaded, dense-only) it writes
# a config from deploy/local.ini with that policy, ipc:// sockets in a private
# run dir and absolute model paths, starts the cluster (deploy/local.sh),
# runs bench_load at each rate, stops the cluster.  dense-only also turns
# every group dense: the baseline is the same hardware serving the dense
# model (with local.ini's clusters it would use one group of three).
# The cluster has deploy/local.ini's two routers (active-active); bench_load
# spreads its requests over both.  IFP_LOAD_ROUTERS="1 2" also runs every
# policy with the second router's section removed (labelled POLICY@1router):
# 2 routers vs 1 at the same load, one run.
# Full: rates 8 16 32 48 req/s, 10 s each (~3.5 min).  --quick: rate 24, 6 s (~35 s).
# Results: bench/results/load.csv (one row per policy x rate, replaced),
# load_requests_POLICY_RATE.csv, load.png; the last line is the headline
# (figures at the highest rate).  OPENBLAS_CORETYPE as bench/run_forward.sh
# (IFP_BENCH_NATIVE=1 keeps OpenBLAS's own choice).  Environment:
# IFP_LOAD_RATES, IFP_LOAD_DURATION, IFP_LOAD_POLICIES override the lists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
root="$PWD"

ifp_bench_args "$0" 17 "$@"
if ((quick)); then rates=(24) duration=6 drain=10; else rates=(8 16 32 48) duration=10 drain=30; fi
[[ -n "${IFP_LOAD_RATES:-}" ]] && read -r -a rates <<<"$IFP_LOAD_RATES"
duration="${IFP_LOAD_DURATION:-$duration}"
policies=(affinity round-robin least-loaded dense-only)
[[ -n "${IFP_LOAD_POLICIES:-}" ]] && read -r -a policies <<<"$IFP_LOAD_POLICIES"
router_counts=(2)
[[ -n "${IFP_LOAD_ROUTERS:-}" ]] && read -r -a router_counts <<<"$IFP_LOAD_ROUTERS"
for n in "${router_counts[@]}"; do [[ "$n" == 1 || "$n" == 2 ]] || ifp_die "IFP_LOAD_ROUTERS: $n (1 or 2)"; done

[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
command -v mpirun >/dev/null || ifp_die "mpirun not found (apt-get install openmpi-bin)"
if ! command -v gnuplot >/dev/null; then
    ifp_info "installing gnuplot-nox for the plot"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gnuplot-nox >/dev/null ||
        ifp_info "gnuplot could not be installed: no plot"
fi
cmake -S . -B build >/dev/null
cmake --build build --target bench_load ifp-router ifp-shard ifp -j"$(ifp_nproc)" >/dev/null

results="$root/bench/results"
((quick)) && results="$root/${IFP_BUILD_DIR:-build}/bench-quick" # never over the full runs' results
mkdir -p "$results"
work="$(mktemp -d "${TMPDIR:-/tmp}/ifp-load.XXXXXX")"
export IFP_RUN_DIR="$work/run"
cleanup() {
    deploy/local.sh stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
csv="$results/load.csv"
rm -f "$csv" "$results"/load_requests_*.csv

# write_config POLICY ROUTERS FILE: deploy/local.ini with that policy, its
# first ROUTERS routers (each with private ipc sockets front<k>/back<k>, no
# HTTP) and model paths made absolute (the config moves to $work).
write_config() {
    local policy="$1" routers="$2" out="$3" dense=0
    [[ "$policy" == dense-only ]] && dense=1
    awk -v pol="$policy" -v dir="$work" -v root="$root" -v dense="$dense" -v keep="$routers" '
        /^[ \t]*\[/ { skip = 0; if ($0 ~ /^[ \t]*\[router [^]]+\]/ && ++nr > keep) skip = 1 }
        skip { next }
        /^[ \t]*frontend[ \t]*=/ { print "frontend = ipc://" dir "/front" nr; next }
        /^[ \t]*backend[ \t]*=/ { print "backend = ipc://" dir "/back" nr; next }
        /^[ \t]*http_listen[ \t]*=/ { print "http_listen = off"; next }
        /^[ \t]*policy[ \t]*=/ { print "policy = " pol; next }
        /^[ \t]*cluster[ \t]*=/ && dense { print "cluster = dense"; next }
        { sub(/= \.\.\//, "= " root "/"); print }' deploy/local.ini >"$out"
    grep -q '^policy' "$out" || ifp_die "deploy/local.ini has no policy line"
    fronts=""
    for ((k = 1; k <= routers; k++)); do fronts+="${fronts:+,}ipc://$work/front$k"; done
    grep -q "front$routers" "$out" || ifp_die "deploy/local.ini has fewer than $routers routers"
}

t_start=$SECONDS
for policy in "${policies[@]}"; do
    for routers in "${router_counts[@]}"; do
        label="$policy"
        ((routers == 2)) || label="$policy@${routers}router"
        cfg="$work/$label.ini"
        write_config "$policy" "$routers" "$cfg"
        ifp_step "policy $policy, $routers router(s): starting the local cluster"
        deploy/local.sh start "$cfg" >"$work/start-$label.log" 2>&1 || {
            cat "$work/start-$label.log" >&2
            ifp_die "the local cluster did not start (logs in $IFP_RUN_DIR)"
        }
        for rate in "${rates[@]}"; do
            ./build/bench/bench_load --router "$fronts" --policy "$label" --rate "$rate" \
                --duration "$duration" --drain-s "$drain" --seed 1 --csv "$csv" \
                --per-request "$results/load_requests_${label}_${rate}.csv" | grep -v '^load ' || true
        done
        deploy/local.sh stop "$cfg" >/dev/null
    done
done
ifp_info "load runs took $((SECONDS - t_start)) s"

if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; out='$results/load.png'" bench/plot_load.gp && ifp_info "plot: $results/load.png"
fi

# Headline: each policy's figures at its highest measured rate.
awk -F, 'NR > 1 {
        k = $1; gsub(/-/, "_", k)
        one = sub(/@1router/, "", k)
        if (k == "round_robin") k = "rr"; else if (k == "least_loaded") k = "ll"
        if (one) k = k "_1router"
        if (!(k in rate) || $2 + 0 >= rate[k]) { rate[k] = $2 + 0; tps[k] = $11; p99[k] = $15; hit[k] = $22; err[k] = $6 + $8 }
        if (!(k in seen)) { seen[k] = 1; order[n++] = k }
    }
    END {
        line = ""
        for (i = 0; i < n; i++) { k = order[i]; line = line sprintf("%s_tps=%s ", k, tps[k]) }
        for (i = 0; i < n; i++) { k = order[i]; line = line sprintf("%s_p99_ttft_ms=%s ", k, p99[k]) }
        if ("affinity" in hit) line = line sprintf("affinity_hit_rate=%s ", hit["affinity"])
        e = 0; for (k in err) e += err[k]
        printf "%srate=%s errors=%d\n", line, rate[order[0]], e
    }' "$csv"
