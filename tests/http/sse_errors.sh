# tests/http/sse_errors.sh — sourced by tests/test_http.sh (its helpers and
# cluster): (b) raw Server-Sent Events with curl -N, (c) one check per error
# status of the HTTP API, 429 and 503 made by real concurrent requests.
# shellcheck shell=bash

# ---------------------------------------------------------------- (b) SSE

# sse_check WHAT PATH OBJECT BODY: BODY (with "stream": true) streamed by
# curl -N against the same body answered whole.
sse_check() {
    local what="$1" path="$2" object="$3" body="$4" whole events
    req "${auth[@]}" -H 'Content-Type: application/json' "$url$path" \
        -d "$(jq -c '.stream = false | del(.stream_options)' <<<"$body")"
    whole="$(cat "$tmp/b")"
    [[ "$code" == 200 ]] || { bad "$what: the non-streamed request answered $code" "$whole"; return; }
    code="$(curl -s -N -o "$tmp/sse" -D "$tmp/h" -w '%{http_code}' --max-time 60 "${auth[@]}" \
        -H 'Content-Type: application/json' "$url$path" -d "$body")" || code="curl-exit-$?"
    [[ "$code" == 200 && "$(header Content-Type)" == text/event-stream* ]] ||
        { bad "$what: expected 200 text/event-stream, got $code $(header Content-Type)" "$(head -c 300 "$tmp/sse")"; return; }
    check "$what: Cache-Control: no-cache" test "$(header Cache-Control)" == no-cache
    # the framing: `data: X` lines each followed by a blank line, the last one `data: [DONE]`
    local framing
    framing="$(awk 'BEGIN { want = "data" }
        want == "data" { if ($0 !~ /^data: /) { print "line " NR ": expected a data: line, got: " $0; exit }
                         if (done) { print "line " NR ": an event after [DONE]"; exit }
                         if ($0 == "data: [DONE]") done = 1; n++; want = "blank"; next }
        want == "blank" { if ($0 != "") { print "line " NR ": expected the blank line ending an event, got: " $0; exit }
                          want = "data" }
        END { if (!done) print "no data: [DONE] at the end (" n " events)" }' "$tmp/sse")"
    if [[ -n "$framing" ]]; then
        bad "$what: SSE framing" "$framing"
        return
    fi
    events="$(sed -n 's/^data: //p' "$tmp/sse" | grep -vx '\[DONE\]' | jq -cs . 2>/dev/null)" ||
        { bad "$what: a data: line that is not JSON" "$(head -c 600 "$tmp/sse")"; return; }
    local text_of='if .object == "chat.completion.chunk" then (.choices[0].delta.content // "") else .choices[0].text end'
    local verdict
    verdict="$(jq -rn --argjson ev "$events" --argjson w "$whole" --arg obj "$object" "
        def text_of: $text_of;
        (\$ev | length) as \$n | \$ev[-1] as \$last |
        if \$n < 3 then \"only \(\$n) events\"
        elif any(\$ev[]; .id != \$ev[0].id or .object != \$obj or .model != \"ifp-mix\") then \"ids, objects or models differ: \(\$ev | map([.id, .object, .model]) | unique)\"
        elif any(\$ev[:-1][]; .choices[0].finish_reason != null or has(\"usage\")) then \"finish_reason or usage before the final chunk\"
        elif \$last.choices[0].finish_reason != \$w.choices[0].finish_reason then \"final finish_reason \(\$last.choices[0].finish_reason), whole \(\$w.choices[0].finish_reason)\"
        elif \$last.usage != \$w.usage then \"final usage \(\$last.usage), whole \(\$w.usage)\"
        elif (\$last.ifp | type) != \"object\" or \$last.ifp.mask != \$w.ifp.mask then \"final ifp \(\$last.ifp)\"
        elif ([\$ev[] | text_of] | add) != (\$w.choices[0].text // \$w.choices[0].message.content) then \"streamed text \([\$ev[] | text_of] | add | tojson), whole \((\$w.choices[0].text // \$w.choices[0].message.content) | tojson)\"
        elif \$obj == \"chat.completion.chunk\" and \$ev[0].choices[0].delta.role != \"assistant\" then \"the first chunk has no delta.role assistant\"
        else \"ok \(\$n) events, \(\$last.usage.completion_tokens) tokens, finish_reason \(\$last.choices[0].finish_reason)\" end")"
    if [[ "$verdict" == ok* ]]; then
        ok "$what: ${verdict#ok } = the same request answered whole"
    else
        bad "$what: $verdict" "$(head -c 800 "$tmp/sse")"
    fi
}

step "(b) raw Server-Sent Events (curl -N)"
sse_check "completions stream" /v1/completions text_completion \
    '{"model":"ifp-mix","prompt":"Once upon a time","max_tokens":20,"temperature":0.8,"seed":11,"ignore_eos":true,"stream":true}'
sse_check "completions stream, ending on EOS" /v1/completions text_completion \
    '{"model":"ifp-mix","prompt":"Question: What is 2+3?\nAnswer:","max_tokens":32,"temperature":0,"stream":true,"ifp_mask":"input"}'
sse_check "chat stream" /v1/chat/completions chat.completion.chunk \
    '{"model":"ifp-mix","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":16,"temperature":0.8,"seed":5,"stream":true,"stream_options":{"include_usage":true}}'

# ---------------------------------------------------------------- (c) errors

step "(c) one check per error status"
json=(-H 'Content-Type: application/json')
expect_error "400 bad JSON" 400 "" "${auth[@]}" "${json[@]}" "$url/v1/completions" -d '{"model":'
expect_error "400 a field of the wrong type" 400 max_tokens "${auth[@]}" "${json[@]}" "$url/v1/completions" \
    -d '{"model":"ifp-mix","prompt":"x","max_tokens":"16"}'
expect_error "400 a chat field out of its choices" 400 "messages[0].role" "${auth[@]}" "${json[@]}" \
    "$url/v1/chat/completions" -d '{"model":"ifp-mix","messages":[{"role":"tool","content":"x"}]}'
expect_error "401 no API key" 401 "" "${json[@]}" "$url/v1/completions" -d "$(completion hi)"
check "  401 says WWW-Authenticate: Bearer" test "$(header WWW-Authenticate)" == Bearer
expect_error "401 an unknown API key" 401 "" -H "Authorization: Bearer ifp-0000000000000000000000000000000000000000" \
    "${json[@]}" "$url/v1/chat/completions" -d '{"model":"ifp-mix","messages":[{"role":"user","content":"hi"}]}'
expect_error "401 a key of another scheme" 401 "" -H "Authorization: Basic $(printf 'client:%s' "$key" | base64 -w0)" \
    "$url/v1/models"
expect_error "404 an unknown path" 404 "" "${auth[@]}" "$url/v1/engines"
expect_error "404 an unknown path (POST)" 404 "" "${auth[@]}" "${json[@]}" "$url/v2/completions" -d "$(completion hi)"
expect_error "404 an unknown model (completions)" 404 model "${auth[@]}" "${json[@]}" "$url/v1/completions" \
    -d '{"model":"gpt-4o","prompt":"hi"}'
check "  its code is model_not_found" jq -e '.error.code == "model_not_found"' "$tmp/b"
expect_error "404 an unknown model (GET /v1/models/ID)" 404 model "${auth[@]}" "$url/v1/models/gpt-4o"
expect_error "405 GET /v1/completions" 405 "" "${auth[@]}" "$url/v1/completions"
check "  405 says Allow: POST" test "$(header Allow)" == POST
expect_error "405 PATCH /v1/chat/completions (no body)" 405 "" "${auth[@]}" -X PATCH "$url/v1/chat/completions"
expect_error "405 PUT /v1/chat/completions with a JSON body" 405 "" "${auth[@]}" -X PUT "${json[@]}" \
    "$url/v1/chat/completions" -d '{"model":"ifp-mix","messages":[{"role":"user","content":"hi"}]}'
expect_error "405 POST /v1/models" 405 "" "${auth[@]}" "${json[@]}" "$url/v1/models" -d '{}'
expect_error "405 DELETE /metrics" 405 "" -X DELETE "$url/metrics"
{
    printf '{"model":"ifp-mix","prompt":"'
    head -c $((10 << 20)) /dev/zero | tr '\0' a
    printf '"}'
} >"$tmp/10mb.json"
expect_error "413 a 10 MB body (Content-Length)" 413 "" "${auth[@]}" "${json[@]}" "$url/v1/completions" \
    --data-binary "@$tmp/10mb.json"
expect_error "413 a 10 MB body (chunked, no Content-Length)" 413 "" "${auth[@]}" "${json[@]}" \
    -H 'Transfer-Encoding: chunked' "$url/v1/chat/completions" --data-binary "@$tmp/10mb.json"

# 429: alice (max_inflight 1) has a long stream running; her next request is
# refused while it runs, another key's is not.  At most 5 attempts (one
# where the stream ended before the second request arrived does not count).
long_body() { completion "Once upon a time" "\"max_tokens\":250,\"ignore_eos\":true,\"ifp_mask\":\"dense\",\"temperature\":0.8,\"seed\":$1${2:+,$2}"; }
inflight_zero || bad "requests still in flight before the 429 check"
scrape "$tmp/m_load0"
n429=0 n503=0 n200_load=0 other_ok=0
for ((attempt = 1; attempt <= 5 && n429 == 0; attempt++)); do
    rm -f "$tmp/a.sse"
    curl -s -N -o "$tmp/a.sse" --max-time 120 -H "Authorization: Bearer $alice" "${json[@]}" "$url/v1/completions" \
        -d "$(long_body 1 '"stream":true')" &
    a_pid=$!
    for ((i = 0; i < 300; i++)); do # 30 s at most for its first event
        grep -q '^data: {' "$tmp/a.sse" 2>/dev/null && break
        sleep 0.1
    done
    req -H "Authorization: Bearer $alice" "${json[@]}" "$url/v1/completions" -d "$(completion hi '"max_tokens":2')"
    if [[ "$code" == 429 ]]; then
        n429=$((n429 + 1))
        retry="$(header Retry-After)"
        if is_error 429 && [[ "$retry" =~ ^[1-9][0-9]*$ ]] && jq -e '.error.type == "rate_limit_error"' "$tmp/b" >/dev/null; then
            ok "429 alice over her max_inflight (1) while her stream runs: Retry-After $retry, $(jq -r .error.message "$tmp/b")"
        else
            bad "429: expected a rate_limit_error with Retry-After, got Retry-After '$retry'" "$(cat "$tmp/b")"
        fi
        req "${auth[@]}" "${json[@]}" "$url/v1/completions" -d "$(completion hi '"max_tokens":2')"
        check "  meanwhile the key named client is served (200)" test "$code" == 200
        if [[ "$code" == 200 ]]; then other_ok=$((other_ok + 1)); fi
    fi
    wait "$a_pid" || true
    if tail -n 4 "$tmp/a.sse" | grep -q '^data: \[DONE\]'; then n200_load=$((n200_load + 1)); fi
    if [[ "$code" == 200 ]] && ((n429 == 0)); then n200_load=$((n200_load + 1)); fi # her second came after the first ended
done
((n429 > 0)) || bad "429: alice's second request was never refused in 5 attempts (her stream always ended first?)"
check "  alice's stream ran to its end ([DONE], 250 tokens)" grep -q '"completion_tokens":250' "$tmp/a.sse"
grep -q ' msg=request .*key=alice .*via=http' "$IFP_RUN_DIR/router.log" &&
    ok "  the router's request log names the key: key=alice via=http" ||
    bad "  no request log line with key=alice via=http"
req -H "Authorization: Bearer $alice" "${json[@]}" "$url/v1/completions" -d "$(completion hi '"max_tokens":2')"
check "  once her stream ended, alice is served again (200)" test "$code" == 200
if [[ "$code" == 200 ]]; then other_ok=$((other_ok + 1)); fi

# 503: 12 long dense requests at once on a group of 2 slots with queue_max 2:
# some run, some wait, the rest are refused.  At most 3 rounds.
for ((round = 1; round <= 3 && n503 == 0; round++)); do
    pids=()
    for ((i = 0; i < 12; i++)); do
        curl -s -o "$tmp/p$i.b" -D "$tmp/p$i.h" -w '%{http_code}\n' --max-time 120 "${auth[@]}" "${json[@]}" \
            "$url/v1/completions" -d "$(long_body $((100 + i)))" >"$tmp/p$i.code" &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    for ((i = 0; i < 12; i++)); do
        c="$(cat "$tmp/p$i.code")"
        case "$c" in
        200) n200_load=$((n200_load + 1))
            jq -e '.usage.completion_tokens == 250' "$tmp/p$i.b" >/dev/null || bad "503 round $round: request $i answered 200 without its 250 tokens" ;;
        503) n503=$((n503 + 1))
            retry="$(tr -d '\r' <"$tmp/p$i.h" | awk 'tolower($0) ~ /^retry-after:/ { print $2 }')"
            [[ "$retry" =~ ^[1-9][0-9]*$ ]] && jq -e '.error.type == "server_overloaded" and (.error.message | test("overloaded"))' \
                "$tmp/p$i.b" >/dev/null || bad "503 round $round: request $i without Retry-After or overloaded error" "$(cat "$tmp/p$i.b")" ;;
        *) bad "503 round $round: request $i answered $c (expected 200 or 503)" "$(head -c 300 "$tmp/p$i.b")" ;;
        esac
    done
    printf '  round %d: %s\n' "$round" "$(cat "$tmp"/p*.code | sort | uniq -c | tr '\n' ' ')"
done
if ((n503 > 0)); then
    ok "503 when the router's queue is full (12 at once, 2 slots, queue_max 2): $n503 refused with Retry-After, $(jq -r .error.message "$(grep -l overloaded "$tmp"/p*.b | head -1)")"
else
    bad "503: 12 concurrent long requests were all admitted, 3 rounds"
fi

inflight_zero || bad "requests still in flight after the 429/503 load"
scrape "$tmp/m_load1"
d429="$(delta "$tmp/m_load0" "$tmp/m_load1" 'ifp_http_requests_total{path="/v1/completions",code="429"}')"
d503="$(delta "$tmp/m_load0" "$tmp/m_load1" 'ifp_http_requests_total{path="/v1/completions",code="503"}')"
dover="$(delta "$tmp/m_load0" "$tmp/m_load1" 'ifp_requests_total{status="overloaded"}')"
dlim="$(delta "$tmp/m_load0" "$tmp/m_load1" 'ifp_router_client_limited_total')"
dok="$(delta "$tmp/m_load0" "$tmp/m_load1" 'ifp_requests_total{status="ok"}')"
check "metrics: ifp_http_requests_total 429 +$d429, 503 +$d503 = what the clients got ($n429, $n503)" \
    test "$d429" == "$n429" -a "$d503" == "$n503"
check "metrics: ifp_requests_total{status=\"overloaded\"} +$dover = 429s + 503s ($((n429 + n503))), client_limited +$dlim = 429s" \
    test "$dover" == $((n429 + n503)) -a "$dlim" == "$n429"
check "metrics: ifp_requests_total{status=\"ok\"} +$dok = the 200s of that load ($((n200_load + other_ok)))" \
    test "$dok" == $((n200_load + other_ok))

# 504: a deadline shorter than the answer (request field ifp_deadline_ms);
# streamed, once the stream started: an error event, then [DONE]
scrape "$tmp/m_dl0"
n_dl=0
expect_error "504 ifp_deadline_ms 20 on a 250-token answer" 504 "" "${auth[@]}" "${json[@]}" "$url/v1/completions" \
    -d "$(long_body 3 '"ifp_deadline_ms":20')"
if [[ "$code" == 504 ]]; then
    check "  its code is deadline_exceeded" jq -e '.error.code == "deadline_exceeded"' "$tmp/b"
    n_dl=$((n_dl + 1))
fi
dl_chat='{"model":"ifp-mix","messages":[{"role":"user","content":"Tell me a long story."}],"max_tokens":250,'
dl_chat+='"ignore_eos":true,"ifp_mask":"dense","stream":true,"ifp_deadline_ms":20}'
req -N "${auth[@]}" "${json[@]}" "$url/v1/chat/completions" -d "$dl_chat"
if [[ "$code" == 504 ]]; then # the deadline passed before the first token: a plain 504
    check "504 streamed, before its first event: deadline_exceeded" jq -e '.error.code == "deadline_exceeded"' "$tmp/b"
    n_dl=$((n_dl + 1))
else
    last2="$(grep '^data: ' "$tmp/b" | tail -n 2)"
    if [[ "$code" == 200 && "$(sed -n 2p <<<"$last2")" == 'data: [DONE]' ]] &&
        sed -n 1p <<<"$last2" | sed 's/^data: //' | jq -e '.error.code == "deadline_exceeded"' >/dev/null 2>&1; then
        ok "504 streamed: the stream ends with an error event (deadline_exceeded), then [DONE]"
        n_dl=$((n_dl + 1))
    else
        bad "a chat stream with ifp_deadline_ms 20: expected a deadline_exceeded error event then [DONE], got $code" \
            "$(tail -c 400 "$tmp/b")"
    fi
fi
inflight_zero || bad "requests still in flight after the deadline checks"
scrape "$tmp/m_dl1"
d="$(delta "$tmp/m_dl0" "$tmp/m_dl1" 'ifp_requests_total{status="deadline"}')"
check "metrics: ifp_requests_total{status=\"deadline\"} +$d = the deadlines the clients saw ($n_dl)" test "$d" == "$n_dl"
