#!/usr/bin/env bash
# bench/run_http.sh [--quick] — what the HTTP front door costs: the same
# requests to the same cluster through ifp-router's OpenAI-compatible HTTP
# API (router/http.h) and through the ZeroMQ frontend with CURVE (`ifp
# client`), side by side in one run.  The cluster is its own (a config
# written here: one dense group of 2 stages of the embedded ifp-mix model, 8
# slots, [security] curve on, [http] auth on, free loopback ports, its own
# IFP_RUN_DIR).  Every request: one fixed 25-token prompt, greedy,
# ignore_eos, mask dense, exactly IFP_HTTP_TOKENS new tokens (default 128).
#   (a) one stream, sequential requests, interleaved (ZMQ, HTTP SSE, HTTP
#       non-streaming, ZMQ, ...): TTFT, decode tokens/s, end to end, and
#       the router's own TTFT, duration (its request log) and CPU time
#       (all its threads, /proc/PID/task/*/schedstat) for each request.
#   (b) 8 streams at once (K requests, 8 in flight), ZMQ and HTTP rounds
#       alternating: aggregate tokens/s, TTFT p50 and p95, the router's CPU
#       and the client's (ifp client: its process; node: process.cpuUsage).
#   (c) the HTTP clients' own cost: GET /health round trips (node, and curl
#       as a process) and curl's time_starttransfer on the same stream.
# The ZMQ client is `ifp client --json` (one process per request in (a);
# --n-requests K --concurrency 8 in (b)): its clock starts when a request
# is sent on the connection it made (CURVE handshake done).  The HTTP client
# is bench/http_client.mjs (node's http module), one process for the whole
# run, its 8 kept-alive connections opened first, so neither counts a
# process start or a connection set-up.  HTTP TTFT = the first `data:`
# event that has text, timed at its arrival in node (not curl's
# time_starttransfer, the response headers: the gateway sends them with the
# first token's event, and the headline's http_hdr_to_text_ms says how far
# apart node saw the two).  One warm-up request per path is not timed.
# Full: 100 runs per path, 12 rounds of 64 requests (~2 min); --quick: 6
# runs, 1 round of 24 (~20 s).  Every loop is bounded in count and in time
# (IFP_HTTP_BUDGET_S, default 480; --quick 60).
# Results: bench/results/http.csv (path,metric,run,value), http.png; the
# last line is the headline (medians; ratios are HTTP / ZMQ).  Environment:
# IFP_HTTP_RUNS, IFP_HTTP_ROUNDS, IFP_HTTP_C8_REQUESTS, IFP_HTTP_TOKENS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
root="$PWD"

ifp_bench_args "$0" 34 "$@"
if ((quick)); then
    runs=6 rounds=1 c8_requests=24 budget=60 results="$root/build/bench-quick"
else
    runs=100 rounds=12 c8_requests=64 budget=480 results="$root/bench/results"
fi
runs="${IFP_HTTP_RUNS:-$runs}"
rounds="${IFP_HTTP_ROUNDS:-$rounds}"
c8_requests="${IFP_HTTP_C8_REQUESTS:-$c8_requests}"
tokens="${IFP_HTTP_TOKENS:-128}"
budget="${IFP_HTTP_BUDGET_S:-$budget}"
conc=8
prompt=$'Instruction: Write a short story about a robot who learns to paint.\nResponse:'
prompt_json='Instruction: Write a short story about a robot who learns to paint.\nResponse:' # the same, in JSON

[ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
for tool in mpirun node curl ss; do
    command -v "$tool" >/dev/null || ifp_die "$tool not found (deploy/packages.txt; node: apt-get install nodejs)"
done
cmake -S . -B build >/dev/null
cmake --build build --target ifp-router ifp-shard ifp ifp_bindaddr -j"$(ifp_nproc)" >/dev/null

mkdir -p "$results"
work="$(mktemp -d "${TMPDIR:-/tmp}/ifp-http.XXXXXX")"
export IFP_RUN_DIR="$work/run"
# A client takes a --server-key of 40 Z85 characters as the key itself, and
# the default KEYS/router.pub is tried that way first (security/curve.c): a
# path of exactly 40 characters (/tmp/ifp-http.XXXXXX/run/keys/router.pub)
# is then a wrong key and every CURVE handshake fails.  Avoid that length.
((${#IFP_RUN_DIR} + 16 != 40)) || export IFP_RUN_DIR="$work/rundir"
unset IFP_KEYS
cfg="$work/cluster.ini"
node_pid=""
cleanup() {
    if [[ -n "$node_pid" ]]; then
        exec {node_in}>&- 2>/dev/null || true
        kill "$node_pid" 2>/dev/null || true
    fi
    deploy/cluster.sh stop "$cfg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
csv="$results/http.csv"
echo "path,metric,run,value" >"$csv"
row() { echo "$1,$2,$3,$4" >>"$csv"; }

free_port() { ifp_free_port || ifp_die "no free TCP port found"; }
free_port && front="tcp://127.0.0.1:$port"
free_port && back="tcp://127.0.0.1:$port"
free_port && url="http://127.0.0.1:$port"

# One dense group of 2 stages (the runs in docs/BENCHMARKS.md used it; a
# 1-stage group read no new Work while it decoded until commit f1af69b).
cat >"$cfg" <<EOF
; written by bench/run_http.sh
[router]
frontend = $front
backend = $back
heartbeat_ms = 250
liveness = 4
queue_max = 256
max_tokens = $tokens

[model]
model = $root/models/ifp-mix/ifp-mix.gguf
predictor = $root/models/ifp-mix/ifp-mix-predictor.gguf
clusters = $root/models/ifp-mix/clusters-k4.gguf

[security]
curve = on

[http]
listen = ${url#http://}
auth = on

[group d0]
stages = 2
cluster = dense
slots = $conc
EOF

ifp_info "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(ifp_nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
ifp_step "starting the cluster (1 dense group x 2 stages, ZMQ $front, HTTP $url, run dir $IFP_RUN_DIR)"
deploy/cluster.sh start "$cfg" >"$work/start.log" 2>&1 || {
    cat "$work/start.log" >&2
    ifp_die "the cluster did not start"
}
keys="$IFP_RUN_DIR/keys"
key="$(awk '$1 == "client" { k = $2 } END { print k }' "$keys/api_keys")"
[[ -n "$key" ]] || ifp_die "no API key named client in $keys/api_keys"

# The HTTP client: one node process, commands on its stdin, answers on its stdout.
mkfifo "$work/node.in" "$work/node.out"
node bench/http_client.mjs --url "$url" --key "$key" --prompt "$prompt" -n "$tokens" --timeout-ms 60000 \
    <"$work/node.in" >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
exec {node_in}>"$work/node.in" {node_out}<"$work/node.out"
# http CMD: sends CMD, sets `reply` (one line of JSON; waits 120 s at most).
http() {
    printf '%s\n' "$1" >&"$node_in"
    reply=""
    IFS= read -r -t 120 reply <&"$node_out" || { cat "$work/node.err" >&2; ifp_die "bench/http_client.mjs: no answer to '$1'"; }
    [[ "$reply" != '{"error"'* ]] || ifp_die "bench/http_client.mjs: $1: $reply"
}
# zmq [ARGS...]: one `ifp client --json` with the common request; sets `reply`.
# zmq_cpu_ms: the user + system CPU that process used (bash's `time`: its
# rusage), process start and CURVE handshake included.
zmq() {
    local TIMEFORMAT='%3U %3S' t
    { time timeout 120 ./build/tools/ifp client --router "$front" --keys "$keys" --prompt "$prompt" -n "$tokens" \
        --temp 0 --ignore-eos --mask dense --json --timeout-ms 60000 "$@" >"$work/zmq.out" 2>"$work/zmq.err"; } 2>"$work/zmq.time" ||
        { cat "$work/zmq.err" >&2; ifp_die "ifp client failed"; }
    reply="$(cat "$work/zmq.out")"
    read -r -a t <"$work/zmq.time"
    zmq_cpu_ms="$(awk -v u="${t[0]}" -v s="${t[1]}" 'BEGIN { printf "%.1f", (u + s) * 1e3 }')"
}
# jnum KEY: the number KEY of `reply` (its first occurrence); jstr KEY: a string.
jnum() { grep -o "\"$1\":[-0-9.e+]*" <<<"$reply" | head -1 | cut -d: -f2; }
jstr() { grep -o "\"$1\":\"[^\"]*\"" <<<"$reply" | head -1 | cut -d'"' -f4; }
ids="$work/ids" # path run request-id, to find the router's own timings in its log
router_pid="$(cat "$IFP_RUN_DIR/router.pid")"
# router_cpu: ns of CPU all the router's threads have used (the loop, the
# HTTP gateway, the predictor worker, ZeroMQ's I/O thread); cpu_row PATH
# METRIC RUN T0: the ms used since T0.
router_cpu() { cat /proc/"$router_pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
cpu_row() { row "$1" "$2" "$3" "$(awk -v a="$4" -v b="$(router_cpu)" 'BEGIN { printf "%.4f", (b - a) / 1e6 }')"; }
over_budget() { ((SECONDS - t_start > budget)); }

t_start=$SECONDS
failed=0
zmq
http stream
http plain

ifp_step "(a) one stream: $runs runs per path, interleaved (ZMQ, HTTP SSE, HTTP non-streaming), $tokens tokens each"
for ((r = 1; r <= runs; r++)); do
    if over_budget; then ifp_info "time budget ($budget s) spent: $((r - 1)) runs"; break; fi
    c0="$(router_cpu)"
    zmq
    cpu_row zmq router_cpu_ms "$r" "$c0"
    n="$(jnum events)" ttft="$(jnum ttft_ms)" tps="$(jnum tokens_per_s)" total="$(jnum total_ms)"
    ((n == tokens)) || { failed=$((failed + 1)); continue; }
    # tokens_per_s = n / (last token - send): the last token's time back
    awk -v n="$n" -v ttft="$ttft" -v tps="$tps" -v total="$total" -v r="$r" 'BEGIN {
        last = n * 1e3 / tps
        printf "zmq,ttft_ms,%d,%.4f\nzmq,decode_tps,%d,%.3f\nzmq,e2e_ms,%d,%.4f\nzmq,e2e_tps,%d,%.3f\n",
            r, ttft, r, (n - 1) * 1e3 / (last - ttft), r, total, r, n * 1e3 / total }' >>"$csv"
    echo "zmq $r $(jstr id)" >>"$ids"

    c0="$(router_cpu)"
    http stream
    cpu_row http router_cpu_ms "$r" "$c0"
    # end to end: to `data: [DONE]` (the Reply's counterpart; the body's
    # terminating chunk follows it: done_to_end_ms)
    awk -v n="$tokens" -v hdr="$(jnum hdr_ms)" -v ttft="$(jnum ttft_ms)" -v last="$(jnum last_ms)" \
        -v done="$(jnum done_ms)" -v total="$(jnum total_ms)" -v cms="$(jnum client_ms)" -v r="$r" 'BEGIN {
        printf "http,ttft_ms,%d,%.4f\nhttp,hdr_ms,%d,%.4f\nhttp,hdr_to_text_ms,%d,%.4f\n", r, ttft, r, hdr, r, ttft - hdr
        printf "http,decode_tps,%d,%.3f\nhttp,e2e_ms,%d,%.4f\nhttp,e2e_tps,%d,%.3f\n",
            r, (n - 1) * 1e3 / (last - ttft), r, done, r, n * 1e3 / done
        printf "http,done_to_end_ms,%d,%.4f\nhttp,client_ms,%d,%.4f\n", r, total - done, r, cms }' >>"$csv"
    echo "http $r $(jstr id)" >>"$ids"

    c0="$(router_cpu)"
    http plain
    cpu_row http_plain router_cpu_ms "$r" "$c0"
    total="$(jnum total_ms)"
    row http_plain e2e_ms "$r" "$total"
    row http_plain e2e_tps "$r" "$(awk -v n="$tokens" -v t="$total" 'BEGIN { printf "%.3f", n * 1e3 / t }')"
    echo "http_plain $r $(jstr id)" >>"$ids"
done

ifp_step "(b) $conc streams at once: $rounds rounds of $c8_requests requests per path, alternating"
for ((r = 1; r <= rounds; r++)); do
    if over_budget; then ifp_info "time budget ($budget s) spent: $((r - 1)) rounds"; break; fi
    for path in zmq http; do
        c0="$(router_cpu)"
        if [[ "$path" == zmq ]]; then zmq --n-requests "$c8_requests" --concurrency "$conc"; else http "load $c8_requests $conc"; fi
        failed=$((failed + $(jnum failed)))
        cpu_row "$path" c8_router_cpu_ms "$r" "$c0"
        if [[ "$path" == zmq ]]; then row zmq c8_client_cpu_ms "$r" "$zmq_cpu_ms"; else row http c8_client_cpu_ms "$r" "$(jnum client_cpu_ms)"; fi
        row "$path" c8_tps "$r" "$(jnum tokens_per_s)"
        row "$path" c8_ttft_p50_ms "$r" "$(jnum ttft_ms_p50)"
        row "$path" c8_ttft_p95_ms "$r" "$(jnum ttft_ms_p95)"
        ifp_info "round $r $path: $(jnum tokens_per_s) tok/s, TTFT p50 $(jnum ttft_ms_p50) ms"
    done
done

ifp_step "(c) the HTTP clients' own cost"
nh=$((runs < 20 ? 20 : runs))
http "health $nh"
grep -o '[0-9.]*' <<<"${reply#*:}" | awk '{ printf "node,health_ms,%d,%.4f\n", NR, $1 }' >>"$csv"
body="$(printf '{"model":"ifp-mix","prompt":"%s","max_tokens":%d,"temperature":0,"ignore_eos":true,"ifp_mask":"dense","stream":true}' \
    "$prompt_json" "$tokens")"
for ((i = 1; i <= nh; i++)); do
    over_budget && break
    t0="$EPOCHREALTIME"
    out="$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$url/health")" || out="curl-failed 0"
    t1="$EPOCHREALTIME"
    [[ "$out" == 200* ]] || { failed=$((failed + 1)); continue; }
    awk -v i="$i" -v t0="$t0" -v t1="$t1" -v tt="${out#* }" 'BEGIN {
        printf "curl,health_wall_ms,%d,%.4f\ncurl,health_ms,%d,%.4f\n", i, (t1 - t0) * 1e3, i, tt * 1e3 }' >>"$csv"
    # the same stream as (a): time_starttransfer (the headers) against the whole answer
    out="$(curl -sN -o /dev/null -w '%{http_code} %{time_pretransfer} %{time_starttransfer} %{time_total}' --max-time 60 \
        -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" "$url/v1/completions")" || out="curl-failed"
    [[ "$out" == 200* ]] || { failed=$((failed + 1)); continue; }
    read -r _ pre st tt <<<"$out"
    awk -v i="$i" -v pre="$pre" -v st="$st" -v tt="$tt" 'BEGIN {
        printf "curl,starttransfer_ms,%d,%.4f\ncurl,e2e_ms,%d,%.4f\n", i, (st - pre) * 1e3, i, (tt - pre) * 1e3 }' >>"$csv"
done

# The router's own TTFT and duration of each request of (a) (its request
# log, by id): what the client saw minus this is the way in and out.
awk 'FNR == NR { path[$3] = $1; run[$3] = $2; next }
    / msg=request / && match($0, / id="[^"]*"/) {
        id = substr($0, RSTART + 5, RLENGTH - 6)
        if (!(id in path)) next
        if (match($0, / ttft_ms=[0-9.]+/)) printf "%s,router_ttft_ms,%d,%s\n", path[id], run[id], substr($0, RSTART + 9, RLENGTH - 9)
        if (match($0, / duration_ms=[0-9.]+/)) printf "%s,router_e2e_ms,%d,%s\n", path[id], run[id], substr($0, RSTART + 13, RLENGTH - 13)
    }' "$ids" "$IFP_RUN_DIR/router.log" >>"$csv"
# ... and that difference per request: front_ttft_ms (the request's way in
# plus its first token's way out) and front_e2e_ms (in plus the last answer's out).
awk -F, 'NR > 1 { v[$1 SUBSEP $2 SUBSEP $3] = $4; p[$1] = 1; if ($3 > n) n = $3 }
    END {
        for (x in p) for (r = 1; r <= n; r++) {
            if ((x SUBSEP "ttft_ms" SUBSEP r) in v && (x SUBSEP "router_ttft_ms" SUBSEP r) in v && x != "http_plain")
                printf "%s,front_ttft_ms,%d,%.4f\n", x, r, v[x, "ttft_ms", r] - v[x, "router_ttft_ms", r]
            if ((x SUBSEP "e2e_ms" SUBSEP r) in v && (x SUBSEP "router_e2e_ms" SUBSEP r) in v)
                printf "%s,front_e2e_ms,%d,%.4f\n", x, r, v[x, "e2e_ms", r] - v[x, "router_e2e_ms", r]
        }
    }' "$csv" | sort -t, -k1,1 -k2,2 -k3n >"$work/front.csv"
cat "$work/front.csv" >>"$csv"
ifp_info "http runs took $((SECONDS - t_start)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
deploy/cluster.sh stop "$cfg" >/dev/null 2>&1 || true

if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; out='$results/http.png'; tokens=$tokens; conc=$conc; rounds=$rounds" bench/plot_http.gp && ifp_info "plot: $results/http.png"
fi

# Headline: medians per path and metric; ratios are HTTP over ZMQ.
awk -F, -v failed="$failed" -v tokens="$tokens" -v coretype="${OPENBLAS_CORETYPE:-native}" '
    function med(k,   n, i, j, t, a) {
        n = cnt[k]
        for (i = 1; i <= n; i++) a[i] = val[k, i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n == 0 ? 0 : n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function ratio(x, y) { return y > 0 ? x / y : 0 }
    NR > 1 { k = $1 SUBSEP $2; val[k, ++cnt[k]] = $4 }
    END {
        zt = med("zmq" SUBSEP "ttft_ms"); ht = med("http" SUBSEP "ttft_ms")
        zd = med("zmq" SUBSEP "decode_tps"); hd = med("http" SUBSEP "decode_tps")
        ze = med("zmq" SUBSEP "e2e_ms"); he = med("http" SUBSEP "e2e_ms"); pe = med("http_plain" SUBSEP "e2e_ms")
        zc = med("zmq" SUBSEP "c8_tps"); hc = med("http" SUBSEP "c8_tps")
        zc50 = med("zmq" SUBSEP "c8_ttft_p50_ms"); hc50 = med("http" SUBSEP "c8_ttft_p50_ms")
        zr = med("zmq" SUBSEP "router_ttft_ms"); hr = med("http" SUBSEP "router_ttft_ms")
        printf "http_vs_zmq_ttft_ratio=%.3f http_vs_zmq_tps_ratio=%.3f c8_tps_ratio=%.3f c8_ttft_p50_ratio=%.3f ", \
            ratio(ht, zt), ratio(hd, zd), ratio(hc, zc), ratio(hc50, zc50)
        printf "http_vs_zmq_e2e_ratio=%.3f plain_vs_zmq_e2e_ratio=%.3f ", ratio(he, ze), ratio(pe, ze)
        printf "zmq_ttft_ms=%.2f http_ttft_ms=%.2f zmq_router_ttft_ms=%.2f http_router_ttft_ms=%.2f ", zt, ht, zr, hr
        printf "zmq_decode_tps=%.1f http_decode_tps=%.1f zmq_e2e_ms=%.1f http_e2e_ms=%.1f http_plain_e2e_ms=%.1f ", zd, hd, ze, he, pe
        printf "c8_zmq_tps=%.1f c8_http_tps=%.1f c8_zmq_ttft_p50_ms=%.2f c8_http_ttft_p50_ms=%.2f ", zc, hc, zc50, hc50
        printf "zmq_front_ttft_ms=%.3f http_front_ttft_ms=%.3f zmq_front_e2e_ms=%.3f http_front_e2e_ms=%.3f http_plain_front_e2e_ms=%.3f ", \
            med("zmq" SUBSEP "front_ttft_ms"), med("http" SUBSEP "front_ttft_ms"), med("zmq" SUBSEP "front_e2e_ms"), \
            med("http" SUBSEP "front_e2e_ms"), med("http_plain" SUBSEP "front_e2e_ms")
        printf "http_done_to_end_ms=%.3f ", med("http" SUBSEP "done_to_end_ms")
        printf "http_hdr_to_text_ms=%.3f node_client_ms=%.2f node_health_ms=%.3f curl_health_ms=%.3f curl_health_wall_ms=%.2f ", \
            med("http" SUBSEP "hdr_to_text_ms"), med("http" SUBSEP "client_ms"), med("node" SUBSEP "health_ms"), \
            med("curl" SUBSEP "health_ms"), med("curl" SUBSEP "health_wall_ms")
        printf "zmq_router_cpu_ms=%.2f http_router_cpu_ms=%.2f http_plain_router_cpu_ms=%.2f c8_router_cpu_ratio=%.3f ", \
            med("zmq" SUBSEP "router_cpu_ms"), med("http" SUBSEP "router_cpu_ms"), med("http_plain" SUBSEP "router_cpu_ms"), \
            ratio(med("http" SUBSEP "c8_router_cpu_ms"), med("zmq" SUBSEP "c8_router_cpu_ms"))
        printf "c8_zmq_client_cpu_ms=%.0f c8_http_client_cpu_ms=%.0f ", med("zmq" SUBSEP "c8_client_cpu_ms"), med("http" SUBSEP "c8_client_cpu_ms")
        printf "curl_starttransfer_ms=%.2f runs=%d rounds=%d tokens=%d openblas=%s failed=%d\n", \
            med("curl" SUBSEP "starttransfer_ms"), cnt["http" SUBSEP "ttft_ms"], cnt["http" SUBSEP "c8_tps"], tokens, coretype, failed
    }' "$csv"
