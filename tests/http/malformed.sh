# tests/http/malformed.sh — sourced by tests/test_http.sh (its helpers and
# cluster): (d) a corpus of malformed request bodies, each answered 400 (or
# 413) with an OpenAI error in JSON that names the field when there is one;
# then the same router still answers, and the gateway counted every refusal.
# shellcheck shell=bash

step "(d) malformed bodies"
corpus="$tmp/corpus"
mkdir -p "$corpus"
# add NAME PATH STATUS PARAM: the body on stdin (add runs in a pipeline's
# subshell: its row goes to a file, "-" for no param expected)
add() {
    cat >"$corpus/$1"
    printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" >>"$tmp/corpus.index"
}
C=/v1/completions
H=/v1/chat/completions
# a completions body with FIELDS (raw JSON text) after model
cb() { printf '{"model":"ifp-mix",%s}' "$1"; }
# a chat body with the user content CONTENT (raw JSON text) and more FIELDS
chb() { printf '{"model":"ifp-mix","messages":[{"role":"user","content":%s}]%s}' "$1" "${2:+,$2}"; }
deep() { # deep N OPEN CLOSE INNER: OPEN x N, INNER, CLOSE x N
    local i
    for ((i = 0; i < $1; i++)); do printf '%s' "$2"; done
    printf '%s' "$4"
    for ((i = 0; i < $1; i++)); do printf '%s' "$3"; done
}

# not JSON, or not one object
printf '' | add empty-body $C 400 -
printf '{' | add open-brace $C 400 -
printf '{"model":"ifp-mix","prompt":"x",}' | add trailing-comma $C 400 -
printf "{'model':'ifp-mix','prompt':'x'}" | add single-quotes $C 400 -
printf '{"model":"ifp-mix","prompt":"x"} {"more":1}' | add trailing-garbage $C 400 -
printf '[{"model":"ifp-mix","prompt":"x"}]' | add array-not-object $C 400 -
printf 'null' | add null-body $H 400 -
printf '"a string"' | add string-body $H 400 -
printf '{"model":"ifp-mix","prompt":"x' | add unterminated-string $C 400 -
printf '{"model":"ifp-mix","prompt":"a\001b"}' | add raw-control-char $C 400 -
printf '{"model":"ifp-mix","prompt":"\\x41"}' | add bad-escape $C 400 -
cb '"prompt":"x","max_tokens":016' | add leading-zero $C 400 -     # RFC 8259: no leading zero
cb '"prompt":"x","max_tokens":16.' | add trailing-dot $C 400 -      # nor a dot without digits
cb '"prompt":"x","temperature":NaN' | add nan-literal $C 400 -
cb '"prompt":"x","temperature":Infinity' | add infinity-literal $C 400 -
# wrong types and values (the error names the field)
printf '{"model":5,"prompt":"x"}' | add model-number $C 400 model
printf '{"prompt":"x"}' | add model-missing $C 400 model
cb '"max_tokens":4' | add prompt-missing $C 400 prompt
cb '"prompt":5' | add prompt-number $C 400 prompt
cb '"prompt":["a","b"]' | add prompt-two-prompts $C 400 prompt
cb '"prompt":[1.5]' | add prompt-fractional-id $C 400 prompt
cb '"prompt":[99999]' | add prompt-id-out-of-vocab $C 400 prompt
cb '"prompt":"x","prompt":"y"' | add duplicate-field $C 400 prompt
cb '"prompt":"x","max_tokens":"16"' | add max-tokens-string $C 400 max_tokens
cb '"prompt":"x","max_tokens":16.5' | add max-tokens-fraction $C 400 max_tokens
cb '"prompt":"x","max_tokens":0' | add max-tokens-zero $C 400 max_tokens
cb '"prompt":"x","max_tokens":true' | add max-tokens-bool $C 400 max_tokens
cb '"prompt":"x","temperature":"hot"' | add temperature-string $C 400 temperature
cb '"prompt":"x","temperature":3' | add temperature-range $C 400 temperature
cb '"prompt":"x","top_p":0' | add top-p-zero $C 400 top_p
cb '"prompt":"x","top_k":-1' | add top-k-negative $C 400 top_k
cb '"prompt":"x","seed":-1' | add seed-negative $C 400 seed
cb '"prompt":"x","seed":"7"' | add seed-string $C 400 seed
cb '"prompt":"x","stream":"yes"' | add stream-string $C 400 stream
cb '"prompt":"x","stop":7' | add stop-number $C 400 stop
cb '"prompt":"x","stop":["a","b","c","d","e"]' | add stop-five $C 400 stop
cb '"prompt":"x","n":2' | add n-two $C 400 n
cb '"prompt":"x","echo":true' | add echo-true $C 400 echo
cb '"prompt":"x","logprobs":5' | add logprobs-five $C 400 logprobs
cb '"prompt":"x","ignore_eos":"no"' | add ignore-eos-string $C 400 ignore_eos
cb '"prompt":"x","ifp_mask":"sparse"' | add ifp-mask-unknown $C 400 ifp_mask
cb '"prompt":"x","ifp_mask":{"task":5}' | add ifp-mask-task-number $C 400 ifp_mask.task
cb '"prompt":"x","stream_options":{"include_usage":"yes"}' | add stream-options-type $C 400 stream_options
printf '{"model":"ifp-mix","messages":"hi"}' | add messages-string $H 400 messages
printf '{"model":"ifp-mix","messages":[]}' | add messages-empty $H 400 messages
printf '{"model":"ifp-mix","messages":[{"role":"tool","content":"x"}]}' | add role-tool $H 400 'messages[0].role'
chb 5 | add content-number $H 400 'messages[0].content'
chb '[{"type":"image_url","image_url":{"url":"http://x"}}]' | add content-image-part $H 400 'messages[0].content[0].type'
printf '{"model":"ifp-mix","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}' |
    add last-not-user $H 400 messages
chb '"x"' '"logprobs":1' | add chat-logprobs-number $H 400 logprobs
chb '"x"' '"top_logprobs":3' | add chat-top-logprobs $H 400 top_logprobs
# huge numbers
cb '"prompt":"x","max_tokens":1e400' | add max-tokens-1e400 $C 400 max_tokens
cb '"prompt":"x","temperature":1e400' | add temperature-1e400 $C 400 temperature
cb '"prompt":"x","temperature":-1e400' | add temperature-minus-1e400 $C 400 temperature
cb '"prompt":"x","seed":1e400' | add seed-1e400 $C 400 seed
cb '"prompt":"x","seed":1e300' | add seed-1e300 $C 400 seed
cb '"prompt":"x","top_k":1e400' | add top-k-1e400 $C 400 top_k
cb '"prompt":"x","max_tokens":123456789012345678901234567890' | add max-tokens-30-digits $C 400 max_tokens
chb '"x"' '"max_tokens":1e400' | add chat-max-tokens-1e400 $H 400 max_tokens
# deep nesting (an unknown field is still parsed)
cb "\"prompt\":\"x\",\"extra\":$(deep 5000 '[' ']' 1)" | add nest-arrays-5000 $C 400 -
cb "\"prompt\":\"x\",\"extra\":$(deep 5000 '{"a":' '}' 1)" | add nest-objects-5000 $C 400 -
chb "$(deep 5000 '[' ']' '"x"')" | add nest-content-5000 $H 400 -
deep 5000 '[' ']' '' | add nest-body-5000 $C 400 -
# invalid UTF-8 and NUL
cb '"prompt":"a'$'\xff''b"' | add utf8-ff-byte $C 400 prompt
cb '"prompt":"'$'\xc0\xaf''"' | add utf8-overlong $C 400 prompt
cb '"prompt":"ab'$'\xe2\x82''"' | add utf8-truncated $C 400 prompt
cb '"prompt":"'$'\xed\xa0\x80''"' | add utf8-raw-surrogate $C 400 prompt
cb '"prompt":"\ud800x"' | add escaped-lone-surrogate $C 400 -
printf '{"model":"ifp-mix\xfe","prompt":"x"}' | add utf8-in-model $C 400 model
chb '"caf'$'\xe9''"' | add utf8-latin1-content $H 400 'messages[0].content'
cb '"prompt":"a\u0000b"' | add nul-escaped-prompt $C 400 prompt
printf '{"model":"ifp-mix","prompt":"a\0b"}' | add nul-raw-prompt $C 400 -
cb '"prompt":"x","stop":["a\u0000"]' | add nul-escaped-stop $C 400 stop
chb '"a\u0000b"' | add nul-escaped-content $H 400 'messages[0].content'
cb '"prompt":"x","ifp_mask":{"task":"t\u0000"}' | add nul-escaped-task $C 400 ifp_mask.task
# 10 MB
head -c $((10 << 20)) /dev/zero | tr '\0' '[' | add 10mb-brackets $C 413 -
{
    printf '{"model":"ifp-mix","messages":[{"role":"user","content":"'
    head -c $((10 << 20)) /dev/zero | tr '\0' b
    printf '"}]}'
} | add 10mb-chat-content $H 413 -

inflight_zero || bad "requests still in flight before the corpus"
scrape "$tmp/m_bad0"
declare -A sent=() # "PATH CODE" -> answers of that kind
n_cases=0
while read -r name path status param <&3; do
    n_cases=$((n_cases + 1))
    [[ "$param" == - ]] && param=""
    req "${auth[@]}" -H 'Content-Type: application/json' "$url$path" --data-binary "@$corpus/$name"
    sent["$path $code"]=$((${sent["$path $code"]:-0} + 1))
    if is_error "$status" "$param"; then
        ok "$(printf '%-24s %s %s' "$name" "$code" "$(jq -r .error.message "$tmp/b" | cut -c1-100)")"
    else
        bad "$name ($(stat -c %s "$corpus/$name") bytes to $path): expected $status with a JSON error${param:+ naming $param}, got $code" \
            "$(head -c 300 "$tmp/b")"
    fi
done 3<"$tmp/corpus.index"
printf '  %d bodies sent\n' "$n_cases"

scrape "$tmp/m_bad1"
for kind in "$C 400" "$C 413" "$H 400" "$H 413"; do
    read -r path c <<<"$kind"
    d="$(delta "$tmp/m_bad0" "$tmp/m_bad1" "ifp_http_requests_total{path=\"$path\",code=\"$c\"}")"
    check "metrics: ifp_http_requests_total{path=\"$path\",code=\"$c\"} +$d = the $c answers sent (${sent["$path $c"]:-0})" \
        test "$d" == "${sent["$path $c"]:-0}"
done
d="$(delta "$tmp/m_bad0" "$tmp/m_bad1" 'ifp_router_requests_total')"
accepted=$((${sent["$C 200"]:-0} + ${sent["$H 200"]:-0}))
check "metrics: only the bodies the gateway accepted ($accepted) reached the router's loop (ifp_router_requests_total +$d)" \
    test "$d" == "$accepted"

req "$url/health"
check "after the corpus: GET /health 200" test "$code" == 200
req "${auth[@]}" -H 'Content-Type: application/json' "$url/v1/completions" -d "$(completion 'Once upon a time' '"max_tokens":4,"ignore_eos":true')"
check "after the corpus: a valid completion is answered (200, 4 tokens)" jq -e '.usage.completion_tokens == 4' "$tmp/b"
check "after the corpus: the router is the same process (pid $router_pid)" test "$(cat "$IFP_RUN_DIR/router.pid")" == "$router_pid"
