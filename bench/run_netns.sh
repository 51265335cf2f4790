#!/usr/bin/env bash
# bench/run_netns.sh [--quick] — what the network hop between two pipeline
# stages costs: one 2-stage group with both stages on one host against the
# same group with its stages on two hosts (MPI over TCP on veth), hosts being
# network namespaces (deploy/netns.sh; root needed), the router on a third,
# deploy/cluster.sh starting it all, the embedded model.  Runs alternate
# (one host, two hosts, one, two, ...).  Each run measures one stream (5
# answers of 128 tokens, EOS ignored: median TTFT and tokens/s), 8 streams
# at once (32 answers: aggregate tokens/s, TTFT p50), and from stage 0's
# log at the end the micro-batch round trip and its share spent outside
# compute (MPI transfers, wake-ups, waiting).
# Full: 3 rounds (~3 min); --quick: 1 round.  Results: bench/results/netns.csv,
# netns.png; the last line is the headline (medians, two-host/one-host ratios).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
root="$PWD"
ifp_bench_args "$0" 14 "$@"
if ((quick)); then rounds=1 results="$root/build/bench-quick"; else rounds=3 results="$root/bench/results"; fi
export IFP_NETNS_PREFIX=ifpb-h IFP_NETNS_BRIDGE=ifpb-br0 IFP_NETNS_SUBNET=10.79.0
why="$(deploy/netns.sh check 2>&1)" || ifp_die "network namespaces cannot be made here: $why"
[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
cmake -S . -B build >/dev/null
cmake --build build --target ifp-router ifp-shard ifp ifp_bindaddr -j"$(ifp_nproc)" >/dev/null
mkdir -p "$results"
work="$(mktemp -d "${TMPDIR:-/tmp}/ifp-netns.XXXXXX")"
export IFP_RUN_DIR="$work/run" IFP_START_TIMEOUT=90
cleanup() {
    for l in one two; do deploy/cluster.sh stop "$work/$l.ini" >/dev/null 2>&1 || true; done
    deploy/netns.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
deploy/netns.sh up 3 >/dev/null
csv="$results/netns.csv"
echo "layout,round,ttft_ms,tokens_per_s,c8_tokens_per_s,c8_ttft_ms_p50,round_trip_ms,compute_pct,outside_compute_pct" >"$csv"
models="$root/models/ifp-mix"
ifp=build/tools/ifp
link=(--router tcp://10.79.0.11:5555 --keys "$IFP_RUN_DIR/keys")

write_config() { # LAYOUT FILE
    local hosts=ifpb-h2,ifpb-h2
    [[ "$1" == two ]] && hosts=ifpb-h2,ifpb-h3
    cat >"$2" <<INI
[router]
host = ifpb-h1
frontend = tcp://10.79.0.11:5555
backend = tcp://10.79.0.11:5556
[model]
model = $models/ifp-mix.gguf
predictor = $models/ifp-mix-predictor.gguf
[deploy]
agent = $root/deploy/netns-agent.sh
[group g0]
stages = 2
hosts = $hosts
cluster = dense
slots = 8
mpi_if = 10.79.0.0/24
INI
}
json_field() { grep -oE "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2; }
median() { sort -g | awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

ifp_info "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
prompt='Once upon a time, in a small village by the sea,'
for ((r = 1; r <= rounds; r++)); do
    for layout in one two; do
        cfg="$work/$layout.ini"
        write_config "$layout" "$cfg"
        ifp_step "round $r/$rounds: g0's two stages on $layout host(s)"
        deploy/cluster.sh start "$cfg" >"$work/start.log" 2>&1 || { cat "$work/start.log" >&2; ifp_die "the cluster did not start"; }
        "$ifp" client "${link[@]}" --prompt "$prompt" -n 16 --temp 0 >/dev/null 2>&1 || true # warm-up
        ttfts=() tpss=()
        for i in 1 2 3 4 5; do
            out="$("$ifp" client "${link[@]}" --prompt "$prompt" -n 128 --ignore-eos --temp 0 --json)"
            ttfts+=("$(json_field ttft_ms <<<"$out")")
            tpss+=("$(json_field tokens_per_s <<<"$out")")
        done
        ttft="$(printf '%s\n' "${ttfts[@]}" | median)" tps="$(printf '%s\n' "${tpss[@]}" | median)"
        out="$("$ifp" client "${link[@]}" --prompt "$prompt" -n 128 --ignore-eos --n-requests 32 --concurrency 8 --json)"
        c8="$(json_field tokens_per_s <<<"$out")" c8ttft="$(json_field ttft_ms_p50 <<<"$out")"
        deploy/cluster.sh stop "$cfg" >/dev/null
        line="$(grep -h 'pipeline: ' "$IFP_RUN_DIR/group-g0.log" | tail -n 1 || true)"
        rt="$(sed -n 's/.*round trip \([0-9.]*\) ms.*/\1/p' <<<"$line")"
        comp="$(sed -n 's/.*compute \([0-9.]*\)%.*/\1/p' <<<"$line")"
        pipe="$(sed -n 's/.*pipe \([0-9.]*\)%.*/\1/p' <<<"$line")"
        printf '  one stream: TTFT %s ms, %s tok/s; 8 streams: %s tok/s, TTFT p50 %s ms; micro-batch round trip %s ms (compute %s%%, outside compute %s%%)\n' \
            "$ttft" "$tps" "$c8" "$c8ttft" "${rt:-?}" "${comp:-?}" "${pipe:-?}"
        echo "$layout,$r,$ttft,$tps,$c8,$c8ttft,${rt:-},${comp:-},${pipe:-}" >>"$csv"
        : >"$IFP_RUN_DIR/group-g0.log"
    done
done

if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; out='$results/netns.png'" bench/plot_netns.gp && ifp_info "plot: $results/netns.png"
fi
awk -F, 'NR > 1 { k = $1; n[k]++; for (c = 3; c <= 9; c++) v[k, c, n[k]] = $c }
    function med(k, c,   i, j, t, a, m) {
        m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, c, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        split("ttft_ms tps c8_tps c8_ttft_p50_ms round_trip_ms compute_pct outside_compute_pct", name, " ")
        line = ""
        for (c = 3; c <= 9; c++) {
            o = med("one", c); t = med("two", c)
            line = line sprintf("one_host_%s=%s two_hosts_%s=%s ", name[c - 2], o, name[c - 2], t)
            if (c <= 7) line = line sprintf("%s_ratio=%.3f ", name[c - 2], (o > 0 ? t / o : 0))
        }
        printf "%srounds=%d\n", line, n["one"]
    }' "$csv"
