# tests/http/metrics.sh — sourced by tests/test_http.sh (its helpers and
# cluster): (e) GET /metrics checked by Prometheus's own `promtool check
# metrics`, its counters and histograms moved exactly by known traffic
# between two scrapes; GET /health and /ready with groups live, with every
# group stopped (SIGSTOP: 503), and once they are back.
# shellcheck shell=bash

step "(e) GET /metrics (promtool), counters that follow the traffic, /health and /ready"
inflight_zero || bad "requests still in flight before the metrics check"
scrape "$tmp/m_a"
check "GET /metrics needs no API key, answers text/plain; version=0.0.4" \
    grep -q '^ifp_build_info{' "$tmp/m_a"
req "$url/metrics"
check "  Content-Type $(header Content-Type)" test "$(header Content-Type | cut -d';' -f1)" == text/plain
if promtool check metrics <"$tmp/m_a" >"$tmp/promtool.out" 2>&1; then
    ok "promtool check metrics: $(wc -l <"$tmp/m_a") lines, $(grep -c '^# TYPE ' "$tmp/m_a") families, no problem"
else
    bad "promtool check metrics refused GET /metrics" "$(head -n 20 "$tmp/promtool.out")"
fi
scrape "$tmp/m_a" # the scrape the deltas start from
s0="$n_scrapes"

# The traffic: 8 answered requests of 8 tokens each (ignore_eos: finish
# "length"), 5 to /v1/completions (2 streamed) and 3 to /v1/chat/completions
# (1 streamed); 2 refused with 400 on /v1/completions, 1 with 401 on chat.
n_ok=0 prompt_sum=0
send_ok() { # send_ok PATH BODY (stream or not): counts it when answered with 8 tokens
    local u
    req "${auth[@]}" -H 'Content-Type: application/json' "$url$1" -d "$2"
    if [[ "$2" == *'"stream":true'* ]]; then
        u="$(sed -n 's/^data: //p' "$tmp/b" | grep -v '^\[DONE\]$' | jq -c 'select(.usage) | .usage' | tail -n 1)"
    else
        u="$(jq -c .usage "$tmp/b" 2>/dev/null || true)"
    fi
    if [[ "$code" == 200 ]] && jq -e '.completion_tokens == 8' <<<"$u" >/dev/null 2>&1; then
        n_ok=$((n_ok + 1)) prompt_sum=$((prompt_sum + $(jq .prompt_tokens <<<"$u")))
    else
        bad "metrics traffic: $1 $2 answered $code, usage ${u:-none}" "$(head -c 300 "$tmp/b")"
    fi
}
eight='"max_tokens":8,"ignore_eos":true,"temperature":0.8'
user() { printf '"messages":[{"role":"user","content":"%s"}]' "$1"; }
send_ok "$C" "$(completion 'Once upon a time' "$eight,\"seed\":1")"
send_ok "$C" "$(completion $'Question: What is 2+3?\nAnswer:' "$eight,\"seed\":2,\"ifp_mask\":\"input\"")"
send_ok "$C" "$(completion 'The sky is' "$eight,\"seed\":3,\"ifp_mask\":{\"task\":\"Continue the text.\"}")"
send_ok "$C" "$(completion 'Once upon a time' "$eight,\"seed\":4,\"stream\":true")"
send_ok "$C" "$(completion 'A cat' "$eight,\"seed\":5,\"stream\":true,\"ifp_mask\":\"dense\"")"
send_ok "$H" "{\"model\":\"ifp-mix\",$(user 'Name a color.'),$eight,\"seed\":6}"
send_ok "$H" "{\"model\":\"ifp-mix\",$(user 'Write a poem.'),$eight,\"seed\":7,\"ifp_mask\":\"dense\"}"
send_ok "$H" "{\"model\":\"ifp-mix\",$(user 'Tell me a story.'),$eight,\"seed\":8,\"stream\":true}"
req "${auth[@]}" "$url$C" -d '{"model":"ifp-mix","prompt":"x","max_tokens":-3}'
req "${auth[@]}" "$url$C" -d '{"model":"ifp-mix","prompt":7}'
req -H 'Authorization: Bearer ifp-not-a-key-of-this-router-00000000000' "$url$H" -d '{}'
inflight_zero || bad "requests still in flight after the metrics traffic"
s1="$n_scrapes" # scrapes s0..s1 are counted in the next one (a scrape is counted once answered)
scrape "$tmp/m_b"
promtool check metrics <"$tmp/m_b" >"$tmp/promtool.out" 2>&1 || bad "promtool check metrics refused the second scrape" "$(head "$tmp/promtool.out")"
((n_ok == 8)) || bad "only $n_ok of the 8 requests were answered with 8 tokens"

# expect NAME WANT: the delta of NAME between the two scrapes is WANT
expect() {
    local d
    d="$(awk -v k="$1" '$1 == k { v[FILENAME] = $2 } END { printf "%.10g\n", v[ARGV[2]] - v[ARGV[1]] }' "$tmp/m_a" "$tmp/m_b")"
    if [[ "$d" == "$2" ]]; then ok "+$d $1"; else bad "$1 grew by $d, expected $2"; fi
}
expect 'ifp_requests_total{status="ok"}' "$n_ok"
for s in bad_request overloaded unauthorized deadline cancelled client_gone error; do
    expect "ifp_requests_total{status=\"$s\"}" 0
done
expect 'ifp_requests_finished_total{finish_reason="length"}' "$n_ok"
expect 'ifp_requests_finished_total{finish_reason="eos"}' 0
expect ifp_completion_tokens_total $((8 * n_ok))
expect ifp_prompt_tokens_total "$prompt_sum"
expect ifp_time_to_first_token_seconds_count "$n_ok"
expect 'ifp_time_to_first_token_seconds_bucket{le="+Inf"}' "$n_ok"
expect ifp_time_per_output_token_seconds_count "$n_ok"
expect ifp_e2e_request_latency_seconds_count "$n_ok"
expect ifp_request_completion_tokens_count "$n_ok"
expect ifp_request_completion_tokens_sum $((8 * n_ok))
expect 'ifp_request_completion_tokens_bucket{le="4"}' 0
expect 'ifp_request_completion_tokens_bucket{le="8"}' "$n_ok"
expect ifp_request_prompt_tokens_sum "$prompt_sum"
expect ifp_router_requests_total "$n_ok"
expect 'ifp_http_requests_total{path="/v1/completions",code="200"}' 5
expect 'ifp_http_requests_total{path="/v1/chat/completions",code="200"}' 3
expect 'ifp_http_requests_total{path="/v1/completions",code="400"}' 2
expect 'ifp_http_requests_total{path="/v1/chat/completions",code="401"}' 1
expect 'ifp_http_requests_total{path="/metrics",code="200"}' $((s1 - s0 + 1))
sum_of() { awk -v p="$1" 'index($1, p "{") == 1 { s += $2 } END { printf "%.10g\n", s }' "$2"; }
d_tok=$(($(sum_of ifp_group_tokens_total "$tmp/m_b") - $(sum_of ifp_group_tokens_total "$tmp/m_a")))
check "ifp_group_tokens_total summed over the groups +$d_tok = the tokens generated ($((8 * n_ok)))" \
    test "$d_tok" == $((8 * n_ok))
d_cl=$(($(sum_of ifp_cluster_requests_total "$tmp/m_b") - $(sum_of ifp_cluster_requests_total "$tmp/m_a")))
check "ifp_cluster_requests_total summed over the clusters +$d_cl = $n_ok" test "$d_cl" == "$n_ok"
# histograms: cumulative buckets that never fall, +Inf = _count
hist_ok="$(awk '
    function key(name, labels) { sub(/,?le="[^"]*"/, "", labels); sub(/^\{,/, "{", labels); return name "|" (labels == "" ? "{}" : labels) }
    $1 ~ /_bucket\{/ { i = index($1, "_bucket{"); k = key(substr($1, 1, i - 1), substr($1, i + 7))
        if ((k in last) && $2 + 0 < last[k]) { print "falls: " $0; bad = 1 }
        last[k] = $2 + 0
        if ($1 ~ /le="\+Inf"/) inf[k] = $2 + 0 }
    $1 ~ /_count($|\{)/ { i = index($1, "_count"); k = key(substr($1, 1, i - 1), substr($1, i + 6))
        if ((k in inf) && inf[k] != $2 + 0) { print "+Inf != _count: " $0; bad = 1 } ; n++ }
    END { if (!bad) print "ok" }' "$tmp/m_b")"
check "every histogram's buckets are cumulative and +Inf = _count" test "$hist_ok" == ok
check "ifp_http_streams 0 and ifp_requests_inflight 0 once everything ended" \
    test "$(metric "$tmp/m_b" ifp_http_streams)" == 0 -a "$(metric "$tmp/m_b" ifp_requests_inflight)" == 0
check "ifp_group_live 1 for both groups" \
    test "$(metric "$tmp/m_b" 'ifp_group_live{group="gd",cluster="dense"}')" == 1 -a \
    "$(metric "$tmp/m_b" 'ifp_group_live{group="gc",cluster="0"}')" == 1

# /health and /ready: live -> every group stopped -> back
req "$url/health"
check "GET /health 200 with 2 live groups (no key needed)" jq -e '.live_groups == 2' "$tmp/b"
[[ "$code" == 200 ]] || bad "GET /health answered $code"
req "$url/ready"
check "GET /ready 200" test "$code" == 200
ranks=""
for g in gd gc; do
    ranks+="$(pgrep -s "$(cat "$IFP_RUN_DIR/group-$g.pid")" -x ifp-shard | tr '\n' ' ' || true)"
done
[[ -n "$ranks" ]] || bad "no ifp-shard rank found in the groups' sessions"
printf '  SIGSTOP every rank: %s\n' "$ranks"
stopped_ranks="$ranks"
# shellcheck disable=SC2086 # one pid a word
kill -STOP $ranks
for ((i = 0; i < 150; i++)); do # 30 s at most for the router to declare both dead
    req "$url/health"
    [[ "$code" == 503 ]] && break
    sleep 0.2
done
check "GET /health 503 once no group is live: $(tr -d '\n' <"$tmp/b")" test "$code" == 503
req "$url/ready"
check "GET /ready 503 too" test "$code" == 503
scrape "$tmp/m_c"
check "ifp_group_live 0 for both groups" \
    test "$(metric "$tmp/m_c" 'ifp_group_live{group="gd",cluster="dense"}')" == 0 -a \
    "$(metric "$tmp/m_c" 'ifp_group_live{group="gc",cluster="0"}')" == 0
# shellcheck disable=SC2086
kill -CONT $ranks
stopped_ranks=""
for ((i = 0; i < 300; i++)); do # 60 s at most for them to be live again
    req "$url/health"
    [[ "$code" == 200 ]] && jq -e '.live_groups == 2' "$tmp/b" >/dev/null && break
    sleep 0.2
done
check "GET /health 200 with 2 live groups once they run again" jq -e '.live_groups == 2' "$tmp/b"
req "${auth[@]}" "$url/v1/completions" -d "$(completion 'Once upon a time' '"max_tokens":4,"ignore_eos":true')"
check "and a completion is answered again (200, 4 tokens)" jq -e '.usage.completion_tokens == 4' "$tmp/b"
