#!/usr/bin/env bash
# bench/run_curve.sh [--quick] — what CURVE costs: the local cluster
# (deploy/local.ini: 3 groups x 2 stages) under the same open-loop load
# (bench_load) with [security] curve = on and = off, run after run in
# alternation (on, off, on, off, ...) so that both see the same machine.
# Each run offers 16 req/s (TTFT under moderate load) and then 64 req/s
# (beyond saturation: throughput).  Full: 3 rounds of 10 s per rate
# (~5 min).  --quick: 1 round of 6 s.
# The sockets are tcp:// on loopback (ports IFP_CURVE_PORT, +1; default
# 5950), so the bytes take the kernel's TCP path as between hosts.
# Results: bench/results/curve.csv (one row per run), curve.png; the last
# line is the headline: medians over the rounds, on/off ratios.  Environment:
# IFP_CURVE_RATES ("16 64"), IFP_CURVE_DURATION, IFP_CURVE_ROUNDS override
# the defaults.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
root="$PWD"

ifp_bench_args "$0" 12 "$@"
if ((quick)); then rounds=1 duration=6 drain=10 results="$root/build/bench-quick"; else rounds=3 duration=10 drain=30 results="$root/bench/results"; fi
rounds="${IFP_CURVE_ROUNDS:-$rounds}"
duration="${IFP_CURVE_DURATION:-$duration}"
read -r -a rates <<<"${IFP_CURVE_RATES:-16 64}"
port="${IFP_CURVE_PORT:-5950}"

[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
command -v mpirun >/dev/null || ifp_die "mpirun not found (apt-get install openmpi-bin)"
cmake -S . -B build >/dev/null
cmake --build build --target bench_load ifp-router ifp-shard ifp -j"$(ifp_nproc)" >/dev/null

mkdir -p "$results"
work="$(mktemp -d "${TMPDIR:-/tmp}/ifp-curve.XXXXXX")"
export IFP_RUN_DIR="$work/run"
cleanup() {
    for m in on off; do deploy/local.sh stop "$work/$m.ini" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
csv="$results/curve.csv"
rm -f "$csv"
((${#rates[@]} > 0)) || ifp_die "IFP_CURVE_RATES is empty"

# write_config on|off FILE: deploy/local.ini on loopback tcp ports of our
# own, model paths made absolute, [security] curve = MODE.
write_config() {
    local mode="$1" out="$2"
    {
        printf '[security]\ncurve = %s\nkeys = %s/keys\n\n' "$mode" "$work"
        # router k (from 0) of local.ini on ports port + 2k, port + 2k + 1; no HTTP
        awk -v root="$root" -v port="$port" '
            /^[ \t]*frontend[ \t]*=/ { print "frontend = tcp://127.0.0.1:" port + 2 * nf++; next }
            /^[ \t]*backend[ \t]*=/ { print "backend = tcp://127.0.0.1:" port + 2 * nb++ + 1; next }
            /^[ \t]*http_listen[ \t]*=/ { print "http_listen = off"; next }
            { sub(/= \.\.\//, "= " root "/"); print }' deploy/local.ini
    } >"$out"
}

ifp_info "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
t_start=$SECONDS
for ((r = 1; r <= rounds; r++)); do
    for mode in on off; do
        cfg="$work/$mode.ini"
        write_config "$mode" "$cfg"
        ifp_step "round $r/$rounds, CURVE $mode: starting the local cluster"
        deploy/local.sh start "$cfg" >"$work/start-$mode-$r.log" 2>&1 || {
            cat "$work/start-$mode-$r.log" >&2
            ifp_die "the local cluster did not start (logs in $IFP_RUN_DIR)"
        }
        plain=0
        [[ "$mode" == off ]] && plain=1
        for rate in "${rates[@]}"; do
            ./build/bench/bench_load --router "tcp://127.0.0.1:$port,tcp://127.0.0.1:$((port + 2))" --keys "$work/keys" --plain "$plain" \
                --policy "curve-$mode" --rate "$rate" --duration "$duration" --drain-s "$drain" --seed "$r" \
                --csv "$csv" | grep -v '^load ' || true
        done
        deploy/local.sh stop "$cfg" >/dev/null
    done
done
ifp_info "curve runs took $((SECONDS - t_start)) s"

if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; out='$results/curve.png'; lo=${rates[0]}; hi=${rates[${#rates[@]}-1]}" bench/plot_curve.gp && ifp_info "plot: $results/curve.png"
fi

# Headline: per rate, medians over the rounds of tokens/s, TTFT p50 and p99
# and TPOT p50 with CURVE on and off, and the on/off ratios.
awk -F, 'function med(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 {
        m = ($1 == "curve-on") ? "on" : "off"; r = $2 + 0
        if (!(r in seen)) { seen[r] = 1; order[nr++] = r }
        k = ++n[m, r]; v["tps", m, r, k] = $11; v["p50", m, r, k] = $13; v["p99", m, r, k] = $15; v["tpot", m, r, k] = $16
        bad += $6; rounds = k > rounds ? k : rounds
    }
    END {
        line = ""
        for (i = 0; i < nr; i++) {
            r = order[i]
            split("tps p50 p99 tpot", what, " ")
            for (w = 1; w <= 4; w++) {
                for (mi = 1; mi <= 2; mi++) {
                    m = mi == 1 ? "on" : "off"
                    for (k = 1; k <= n[m, r]; k++) a[k] = v[what[w], m, r, k]
                    x[m] = med(a, n[m, r])
                }
                name = what[w] == "tps" ? "tps" : what[w] == "tpot" ? "tpot_p50_ms" : "ttft_" what[w] "_ms"
                line = line sprintf("r%d_%s_on=%.2f r%d_%s_off=%.2f r%d_%s_ratio=%.3f ", r, name, x["on"], r, name, x["off"],
                                    r, name, (x["off"] > 0 ? x["on"] / x["off"] : 0))
            }
        }
        printf "%srounds=%d failed=%d\n", line, rounds, bad
    }' "$csv"
