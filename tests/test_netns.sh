#!/usr/bin/env bash
# tests/test_netns.sh — a multi-host deployment for real, on one machine:
# four network namespaces joined by a bridge (deploy/netns.sh) are the
# hosts, deploy/netns-agent.sh is the launch agent, deploy/cluster.sh starts
# everything from one config:
#   ifpt-h1  the router (CURVE on)
#   ifpt-h2  stage 0 of group g0 ─┐ MPI over TCP between the two hosts
#   ifpt-h3  stage 1 of group g0 ─┘
#   ifpt-h4  group g1 (one stage)
# and clients send from the default namespace.  Checks:
#   (a) the stages' MPI traffic crosses namespaces (their TCP peers' addresses)
#       and the groups reach the router from their own addresses;
#   (b) answers equal `ifp run` for the same prompts;
#   (c) g0's stage-1 link goes down while sampled streams run: g0 is declared
#       dead, its requests are replayed on g1, every stream completes and
#       equals the fault-free run (nothing lost, nothing duplicated); the time
#       to detect is printed;
#   (d) the link comes back: the supervisor restarts g0, the router sees it
#       alive again and it takes work again.
# Needs root, iproute2 and util-linux (unshare); where network namespaces
# cannot be made it says why and exits 77 (ctest: skipped).  Traffic stays in
# these namespaces (10.78.0.0/24, nothing routed beyond the bridge).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${IFP_BUILD_DIR:-$root/build}"
ifp="$build/tools/ifp"
export IFP_NETNS_PREFIX=ifpt-h IFP_NETNS_BRIDGE=ifpt-br0 IFP_NETNS_SUBNET=10.78.0
netns="$root/deploy/netns.sh"
cluster="$root/deploy/cluster.sh"
models="$root/models/ifp-mix"

step() { printf '\n== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    for f in "$IFP_RUN_DIR"/*.log; do [[ -e "$f" ]] && { printf -- '---- %s\n' "$f" >&2; tail -n 25 "$f" >&2; }; done
    exit 1
}

if ! why="$("$netns" check 2>&1)"; then
    printf 'SKIP: network namespaces cannot be made here: %s\n' "$why"
    exit 77
fi
for bin in "$ifp" "$build/router/ifp-router" "$build/shard/ifp-shard"; do
    [[ -x "$bin" ]] || fail "$bin not built"
done

tmp="$(mktemp -d /tmp/ifp-test-netns.XXXXXX)"
export IFP_RUN_DIR="$tmp/run"
export IFP_GROUP_GRACE=60 IFP_GROUP_DEAD_GRACE=4 IFP_START_TIMEOUT=90
cfg="$tmp/cluster.ini"
cleanup() {
    "$cluster" stop "$cfg" >/dev/null 2>&1 || true
    "$netns" down >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

step "four hosts: deploy/netns.sh up 4"
"$netns" up 4

cat >"$cfg" <<INI
; written by tests/test_netns.sh
[router]
host = ifpt-h1
frontend = tcp://10.78.0.11:5555
backend = tcp://10.78.0.11:5556
heartbeat_ms = 250
liveness = 4
; every other request to each group, whichever is faster: the link cut of
; (c) must find streams running on g0 (with least-loaded, the 1-stage g1
; could take and finish them all first under a sanitizer build)
policy = round-robin

[model]
model = $models/ifp-mix.gguf
predictor = $models/ifp-mix-predictor.gguf
clusters = $models/clusters-k4.gguf

[deploy]
agent = $root/deploy/netns-agent.sh

[group g0]
stages = 2
hosts = ifpt-h2,ifpt-h3
cluster = dense
slots = 8
mpi_if = 10.78.0.0/24
batch_timeout_ms = 3000

[group g1]
stages = 1
hosts = ifpt-h4
cluster = dense
slots = 8
mpi_if = 10.78.0.0/24
INI
frontend=tcp://10.78.0.11:5555
link=(--router "$frontend" --keys "$IFP_RUN_DIR/keys")

step "deploy/cluster.sh start"
"$cluster" start "$cfg" || fail "deploy/cluster.sh start failed"

step "(a) where the traffic goes"
s0="$(ip netns exec ifpt-h2 ss -Htnp 2>/dev/null | grep ifp-shard || true)"
printf '%s\n' "$s0" | sed 's/^/  ifpt-h2: /'
grep -q '10\.78\.0\.13:' <<<"$s0" || fail "stage 0 of g0 (ifpt-h2) has no TCP connection to stage 1's host 10.78.0.13"
s1="$(ip netns exec ifpt-h3 ss -Htnp 2>/dev/null | grep ifp-shard || true)"
grep -q '10\.78\.0\.12:' <<<"$s1" || fail "stage 1 of g0 (ifpt-h3) has no TCP connection to stage 0's host 10.78.0.12"
peers="$(ip netns exec ifpt-h1 ss -Htn state established '( sport = :5556 )' 2>/dev/null | awk '{ print $4 }' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')"
printf '  the router (ifpt-h1) backend peers: %s\n' "$peers"
for a in 10.78.0.12 10.78.0.13 10.78.0.14; do
    [[ " $peers " == *" $a "* ]] || fail "no group connection from $a to the router's backend"
done

# json_field KEY: the value of "KEY" in the one-line JSON object on stdin
# (an array, a string or a number; our own tools' output, no nesting in it)
json_field() { grep -oE "\"$1\":(\[[^]]*\]|\"[^\"]*\"|[^,}]*)" | head -n 1 | cut -d: -f2- | tr -d '"'; }

step "(b) answers equal ifp run"
prompts=($'Question: What is 2+3?\nAnswer:' 'Once upon a time' 'def fibonacci(n):' 'The capital of France is')
for p in "${prompts[@]}"; do
    want="$("$ifp" run --model "$models/ifp-mix.gguf" --predictor "$models/ifp-mix-predictor.gguf" --mask input \
        --prompt "$p" -n 24 --temp 0 --json | json_field tokens)"
    got="$("$ifp" client "${link[@]}" --prompt "$p" -n 24 --temp 0 --json)"
    [[ -n "$want" && "$(json_field tokens <<<"$got")" == "$want" ]] ||
        fail "prompt '$p': cluster gave $(json_field tokens <<<"$got"), ifp run $want"
    printf '  %-28q same tokens as ifp run (group %s)\n' "$p" "$(json_field group <<<"$got")"
done

# streams STAGE: 8 sampled answers at once, each a client of its own; their
# JSON in $tmp/STAGE-i.json
streams() {
    local i pids=()
    for i in 0 1 2 3 4 5 6 7; do
        "$ifp" client "${link[@]}" --prompt "${prompts[i % 4]} (story $i)" -n 200 --ignore-eos --temp 0.8 --seed $((100 + i)) \
            --json --timeout-ms 120000 >"$tmp/$1-$i.json" 2>"$tmp/$1-$i.err" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do wait "${pids[i]}" || fail "stream $i of the $1 run failed: $(tail -n 2 "$tmp/$1-$i.err")"; done
}
counter() { { "$ifp" status "${link[@]}" --json || true; } | json_field "$1"; }
# group_field NAME KEY: KEY of group NAME in `ifp status --json`
# (ifp status exits 1 while a group is not alive: its output counts all the same)
group_field() {
    local out
    out="$("$ifp" status "${link[@]}" --json --timeout-ms 1000 2>/dev/null || true)"
    grep -oE "\{\"name\":\"$1\"[^}]*\}" <<<"$out" | json_field "$2" || true
}
# group_count NAME KEY: as group_field, but a number, asked until the router
# answers (a busy machine may miss one status's 1 s); fails after 10 tries
group_count() {
    local v
    for ((try = 0; try < 10; try++)); do
        v="$(group_field "$1" "$2")"
        [[ "$v" =~ ^[0-9]+$ ]] && { printf '%s\n' "$v"; return 0; }
        sleep 0.5
    done
    fail "ifp status gave no $2 for group $1 (10 tries)"
}
# served_by NAME: requests the router logged as answered by group NAME
served_by() { grep -c "msg=request .* group=$1 " "$IFP_RUN_DIR/router.log" || true; }

step "(c) fault-free streams, then the same with g0's stage-1 link down"
streams ref
replays0="$(counter replays)"
streams run &
run_pid=$!
# once g0 runs some of them (or after 5 s: the probes below make sure work
# meets the cut), cut ifpt-h3 (its stage 1) off the bridge
for ((i = 0; i < 100; i++)); do
    r="$(group_field g0 running)"
    [[ "$r" =~ ^[0-9]+$ ]] && ((r > 0)) && break
    sleep 0.05
done
t_down="$(date +%s.%N)"
ip link set "${IFP_NETNS_PREFIX}v3" down
# g0's streams may all have ended between that look and the cut, and an
# idle group with a cut later stage shows nothing until it next has work
# (a known limit: docs/OPERATIONS.md): two more requests, one of which
# round-robin gives g0, make sure work meets the cut link
probe_pids=()
for i in 0 1; do
    "$ifp" client "${link[@]}" --prompt "probe $i" -n 24 --temp 0 --json --timeout-ms 120000 \
        >"$tmp/probe-$i.json" 2>"$tmp/probe-$i.err" &
    probe_pids+=($!)
done
detect=""
for ((i = 0; i < 300; i++)); do
    if [[ "$(group_field g0 alive)" == false ]]; then
        detect="$(awk -v a="$(date +%s.%N)" -v b="$t_down" 'BEGIN { printf "%.2f", a - b }')"
        break
    fi
    sleep 0.1
done
[[ -n "$detect" ]] || fail "the router did not declare g0 dead within 30 s of its link going down"
wait "$run_pid" || fail "a stream failed while g0's link was down"
for i in "${!probe_pids[@]}"; do
    wait "${probe_pids[i]}" || fail "probe request $i failed while g0's link was down: $(tail -n 2 "$tmp/probe-$i.err")"
done
replays=$(($(counter replays) - replays0))
same=0
for i in 0 1 2 3 4 5 6 7; do
    a="$(json_field tokens <"$tmp/ref-$i.json")"
    b="$(json_field tokens <"$tmp/run-$i.json")"
    [[ -n "$a" && "$a" == "$b" ]] || fail "stream $i differs from the fault-free run after the failover"
    same=$((same + 1))
done
printf '  link down -> g0 dead in %s s (batch_timeout_ms 3000 + liveness 4 x 250 ms); %d requests replayed; %d/8 streams complete and identical to the fault-free run\n' \
    "$detect" "$replays" "$same"
((replays > 0)) || fail "no request was replayed (did the fault hit no running request?)"

step "(d) the link comes back: the supervisor restarts g0"
inc0="$(group_count g0 incarnation)"
ip link set "${IFP_NETNS_PREFIX}v3" up
back=""
for ((i = 0; i < 900; i++)); do
    if [[ "$(group_field g0 alive)" == true && "$(group_field g0 incarnation)" != "$inc0" ]]; then
        back=1
        break
    fi
    sleep 0.1
done
[[ -n "$back" ]] || fail "g0 did not come back alive within 90 s of its link coming back"
grep -h "restart\|killing\|down" "$IFP_RUN_DIR/supervisor.log" | tail -n 4 | sed 's/^/  supervisor: /'
tok0="$(group_count g0 tokens_generated)"
served0="$(served_by g0)"
"$ifp" client "${link[@]}" --prompt 'Once upon a time' -n 64 --n-requests 16 --concurrency 16 --temp 0.8 >/dev/null 2>&1 ||
    fail "requests failed after g0 came back"
served=$(($(served_by g0) - served0))
# the group's count comes with its heartbeats (every 250 ms): wait for the
# one after its last request
tok1="$(group_count g0 tokens_generated)"
for ((i = 0; i < 40 && tok1 <= tok0; i++)); do
    sleep 0.25
    tok1="$(group_count g0 tokens_generated)"
done
printf '  g0 alive again (new incarnation); of 16 requests it answered %d, generating %d tokens\n' \
    "$served" "$((tok1 - tok0))"
((served > 0)) || fail "g0 took no work after it came back (the router sent all 16 requests elsewhere)"
((tok1 > tok0)) || fail "g0 answered $served requests but its heartbeats count no tokens generated"
"$cluster" status "$cfg" || fail "deploy/cluster.sh status is not healthy at the end"

step "deploy/cluster.sh stop"
"$cluster" stop "$cfg"
left="$(for ns in ifpt-h1 ifpt-h2 ifpt-h3 ifpt-h4; do ip netns pids "$ns" 2>/dev/null; done | wc -l)"
((left == 0)) || fail "$left processes still run in the namespaces after stop"
printf '\nPASS\n'
