#!/usr/bin/env bash
# tests/test_http.sh — ifp-router's OpenAI-compatible HTTP API end to end, as
# users use it, against a real cluster of its own (deploy/cluster.sh with a
# config written here: a dense group of 2 stages and a cluster-0 group of 1
# stage, 2 slots each, [router] queue_max 2, [client alice] with
# max_inflight 1, free loopback ports, run dir and keys in a temp folder;
# API keys by `ifp keygen --config`, auth on as CURVE is):
#   (a) the official OpenAI client (npm `openai` 4.x pinned by
#       tests/http/package-lock.json, `npm ci` into the build tree):
#       tests/http/openai_e2e.mjs — completions and chat, plain and streaming,
#       equal token for token to `ifp client --json`; models; 404; 401; a
#       stream aborted by the client is cancelled at the router;
#   (b) raw Server-Sent Events with `curl -N`: `data: {chunk}` events, the
#       final chunk with finish_reason, usage and ifp, then `data: [DONE]`;
#   (c) one check per error status: 400 (bad JSON, a bad field named), 401
#       (no key, unknown key), 404 (path, model), 405, 413 (10 MB), 429 (alice
#       over max_inflight) and 503 (queue full), both with Retry-After and made
#       by real concurrent long requests, 504 (ifp_deadline_ms);
#   (d) a corpus of malformed bodies (tests/http/malformed.sh) -> each 400 or
#       413 with a JSON error, and the same router still answers afterwards;
#   (e) GET /metrics passes `promtool check metrics`, and its counters and
#       histograms move exactly as the traffic sent between two scrapes says;
#       /health and /ready: 200 while a group is live, 503 when none is.
# Every load loop is bounded in count and time; nothing asserts on a time.
# Run by ctest (IFP_BUILD_DIR = the build tree).  Needs node + npm, promtool
# (Debian package prometheus), curl, jq (tests/http/packages.txt; tests/run.sh
# installs them) and the npm registry for `npm ci`.  The cluster is always
# stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deploy/lib.sh
source "$root/deploy/lib.sh" # ifp_free_port
build="${IFP_BUILD_DIR:-$root/build}"
ifp="$build/tools/ifp"
cluster_sh="$root/deploy/cluster.sh"
t_start=$SECONDS

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*"; }
failures=0
passes=0
ok() { passes=$((passes + 1)) && printf '  ok   %s\n' "$*"; }
bad() {
    failures=$((failures + 1))
    printf '  FAIL %s\n' "$1"
    [[ -z "${2:-}" ]] || printf '%s\n' "$2" | sed 's/^/       /'
}
# check WHAT CONDITION-COMMAND...: ok or FAIL (the test goes on; exits 1 at the end)
check() {
    local what="$1"
    shift
    if "$@" >/dev/null; then ok "$what"; else bad "$what"; fi
}

for tool in node npm promtool curl jq ss pgrep mpirun; do
    command -v "$tool" >/dev/null ||
        fail "$tool not found: tests/http/packages.txt (node, npm, promtool, curl, jq) and deploy/packages.txt list what this test needs; tests/run.sh installs them"
done
for bin in "$ifp" "$build/router/ifp-router" "$build/shard/ifp-shard"; do
    [[ -x "$bin" ]] || fail "$bin not built (cmake --build ${build#"$root"/})"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ifp-test-http.XXXXXX")"
export IFP_RUN_DIR="$tmp/run"
export IFP_BUILD_DIR="$build"
export IFP_START_TIMEOUT=90
export IFP_GROUP_DEAD_GRACE=120 # (e) stops every group on purpose: no restart meanwhile
unset IFP_KEYS IFP_MPIRUN_ARGS

sessions=() # every session (pid of a setsid leader) the cluster had
remember_sessions() {
    local f pid
    for f in "$IFP_RUN_DIR"/*.pid; do
        [[ -e "$f" ]] || continue
        pid="$(cat "$f" 2>/dev/null || true)"
        [[ -n "$pid" && " ${sessions[*]} " != *" $pid "* ]] && sessions+=("$pid")
    done
    return 0
}
stopped_ranks=""
cleanup() {
    local rc=$? sid p
    trap - EXIT
    # shellcheck disable=SC2086 # one pid a word
    [[ -z "$stopped_ranks" ]] || kill -CONT $stopped_ranks 2>/dev/null || true
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    remember_sessions
    "$cluster_sh" stop >/dev/null 2>&1 || true
    for sid in "${sessions[@]}"; do pkill -KILL -s "$sid" 2>/dev/null || true; done
    if ((rc != 0)); then
        for f in "$IFP_RUN_DIR"/*.log; do
            [[ -e "$f" ]] || continue
            printf '\n---- the end of %s\n' "$f"
            tail -n 25 "$f"
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

free_port() { ifp_free_port || fail "no free TCP port found"; }
free_port && front_port="$port"
free_port && back_port="$port"
free_port && http_port="$port"
frontend="tcp://127.0.0.1:$front_port"
url="http://127.0.0.1:$http_port"

# alice: a [client NAME] (a CURVE key of her own) whose API key shares its max_inflight
"$ifp" keygen -o "$tmp/alice" >/dev/null
cfg="$tmp/cluster.ini"
cat >"$cfg" <<EOF
; written by tests/test_http.sh
[router]
frontend = $frontend
backend = tcp://127.0.0.1:$back_port
heartbeat_ms = 250
liveness = 4
min_coverage = 1.0
queue_max = 2
max_tokens = 32

[model]
model = $root/models/ifp-mix/ifp-mix.gguf
predictor = $root/models/ifp-mix/ifp-mix-predictor.gguf
clusters = $root/models/ifp-mix/clusters-k4.gguf

[http]
listen = 127.0.0.1:$http_port

[group gd]
stages = 2
cluster = dense
slots = 2

[group gc]
stages = 1
cluster = 0
slots = 2

[client alice]
key = $tmp/alice.pub
max_inflight = 1
EOF

# The OpenAI client: npm ci of the pinned lock into the build tree (kept
# across runs while the lock is the same).
step "npm ci (openai 4.x, tests/http/package-lock.json) into ${build#"$root"/}/tests/http-node"
printf '  node %s, npm %s\n' "$(node --version)" "$(npm --version)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 18)) || fail "node $(node --version): openai 4.x needs Node 18 or newer"
nm="$build/tests/http-node"
if ! cmp -s "$root/tests/http/package-lock.json" "$nm/package-lock.json" ||
    ! cmp -s "$root/tests/http/package.json" "$nm/package.json" ||
    [[ ! -r "$nm/node_modules/openai/package.json" ]]; then
    mkdir -p "$nm"
    cp "$root/tests/http/package.json" "$root/tests/http/package-lock.json" "$nm/"
    (cd "$nm" && npm ci --prefix "$nm" --no-audit --no-fund --loglevel=error) ||
        fail "npm ci --prefix $nm failed (the npm registry must be reachable)"
fi
cp "$root/tests/http/openai_e2e.mjs" "$nm/"
printf '  openai %s\n' "$(node -p "require('$nm/node_modules/openai/package.json').version")"

step "deploy/cluster.sh start (run dir $IFP_RUN_DIR, HTTP at $url)"
out="$("$cluster_sh" start "$cfg" 2>&1)" || {
    printf '%s\n' "$out"
    fail "deploy/cluster.sh start failed"
}
printf '%s\n' "$out" | sed 's/^/  /'
remember_sessions
keys="$IFP_RUN_DIR/keys"
api_keys="$keys/api_keys"
[[ -r "$api_keys" ]] || fail "ifp keygen --config made no $api_keys"
[[ "$(stat -c %a "$api_keys")" == 600 ]] || fail "$api_keys has mode $(stat -c %a "$api_keys"), expected 600"
key="$(awk '$1 == "client" { k = $2 } END { print k }' "$api_keys")"
alice="$("$ifp" keygen --api-key alice --config "$cfg")" || fail "ifp keygen --api-key alice --config failed"
[[ -n "$key" && -n "$alice" && "$key" != "$alice" ]] || fail "no API keys named client and alice in $api_keys"
[[ "$alice" == "$(awk '$1 == "alice" { k = $2 } END { print k }' "$api_keys")" ]] ||
    fail "ifp keygen --api-key alice printed a key that is not alice's in $api_keys"
grep -q "HTTP API on http://127.0.0.1:$http_port" "$IFP_RUN_DIR/router.log" ||
    fail "the router did not log 'HTTP API on http://127.0.0.1:$http_port'"
router_pid="$(cat "$IFP_RUN_DIR/router.pid")"
auth=(-H "Authorization: Bearer $key")

# req [curl args...]: one request; sets `code`; headers in $tmp/h, body in $tmp/b.
req() {
    : >"$tmp/b" && : >"$tmp/h"
    code="$(curl -s -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' --max-time 120 "$@")" || code="curl-exit-$?"
}
header() { tr -d '\r' <"$tmp/h" | awk -v h="$1" 'tolower($0) ~ "^" tolower(h) ":" { sub(/^[^:]*: */, ""); print; exit }'; }
# is_error STATUS [PARAM]: the last answer has status STATUS and is an OpenAI
# error object with a message (whose param is PARAM or whose message names it).
is_error() {
    [[ "$code" == "$1" ]] || return 1
    [[ "$(header Content-Type)" == application/json* ]] || return 1
    jq -e '.error.message | type == "string" and length > 0' "$tmp/b" >/dev/null 2>&1 || return 1
    [[ -z "${2:-}" ]] && return 0
    jq -e --arg p "$2" '.error.param == $p or (.error.message | startswith($p))' "$tmp/b" >/dev/null
}
# expect_error WHAT STATUS PARAM [curl args...]
expect_error() {
    local what="$1" status="$2" param="$3"
    shift 3
    req "$@"
    if is_error "$status" "$param"; then
        ok "$what -> $status: $(jq -r .error.message "$tmp/b" | cut -c1-110)"
    else
        bad "$what: expected $status (an OpenAI error${param:+ naming $param}), got $code" "$(head -c 400 "$tmp/b")"
    fi
}
completion() { printf '{"model":"ifp-mix","prompt":%s%s}' "$(jq -Rn --arg p "$1" '$p')" "${2:+,$2}"; }
n_scrapes=0
scrape() { n_scrapes=$((n_scrapes + 1)) && curl -s --max-time 30 -o "$1" "$url/metrics"; }
# metric FILE 'name{labels}': its value in a scrape (0 when absent)
metric() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"; }
# delta A B 'name{labels}': B's value - A's
delta() { echo $(($(metric "$2" "$3" | cut -d. -f1) - $(metric "$1" "$3" | cut -d. -f1))); }
inflight_zero() {
    local i
    for ((i = 0; i < 100; i++)); do
        scrape "$tmp/m0" && [[ "$(metric "$tmp/m0" ifp_requests_inflight)" == 0 ]] && return 0
        sleep 0.2
    done
    return 1
}

step "(a) the official OpenAI client (tests/http/openai_e2e.mjs)"
IFP_HTTP_BASE="$url/v1" IFP_API_KEY="$key" IFP_BIN="$ifp" IFP_ROUTER="$frontend" IFP_KEYS="$keys" \
    IFP_ROUTER_LOG="$IFP_RUN_DIR/router.log" node "$nm/openai_e2e.mjs" >"$tmp/node.out" 2>&1 || true
sed 's/^/  /' "$tmp/node.out"
node_summary="$(grep '^openai_e2e: ' "$tmp/node.out" || true)"
if [[ "$node_summary" =~ ^openai_e2e:\ ([0-9]+)\ passed,\ 0\ failed ]] && ((BASH_REMATCH[1] > 30)); then
    ok "openai_e2e.mjs: $node_summary"
else
    bad "openai_e2e.mjs: ${node_summary:-no summary line (it crashed?)}"
fi

# shellcheck source=tests/http/sse_errors.sh
source "$root/tests/http/sse_errors.sh"
# shellcheck source=tests/http/malformed.sh
source "$root/tests/http/malformed.sh"
# shellcheck source=tests/http/metrics.sh
source "$root/tests/http/metrics.sh"
# shellcheck source=tests/http/tls.sh
source "$root/tests/http/tls.sh"

step "the same router answered throughout"
check "router pid $router_pid still runs (no crash, no restart by the supervisor)" \
    test "$(cat "$IFP_RUN_DIR/router.pid" 2>/dev/null)" == "$router_pid" -a -d "/proc/$router_pid"
check "no request ended with status=error in the router's log" \
    test -z "$(grep ' msg=request .* status=error ' "$IFP_RUN_DIR/router.log" || true)"

# the router and the shards exit cleanly (a sanitizer build reports leaks and
# errors at exit, into their logs)
step "deploy/cluster.sh stop: clean exits, no sanitizer report"
"$cluster_sh" stop | sed 's/^/  /'
check "the router logged its shutdown with no request in flight" \
    grep -q 'ifp-router: shutting down (0 requests in flight)' "$IFP_RUN_DIR/router.log"
reports="$(grep -HE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error: |^SUMMARY: ' "$IFP_RUN_DIR"/*.log || true)"
check "no sanitizer report in the router's and groups' logs" test -z "$reports"
[[ -z "$reports" ]] || printf '%s\n' "$reports" | head -n 20 | sed 's/^/       /'

printf '\ntest_http: %d checks passed, %d failed, in %ds\n' "$passes" "$failures" $((SECONDS - t_start))
((failures == 0)) || exit 1
