#!/usr/bin/env bash
# tests/test_deploy_local.sh — deploy/local.sh end to end, secure by default:
# a cluster of its own (2 groups of 1 stage on free loopback ports, run dir
# in a temp folder) started with `deploy/local.sh start CONFIG`, then
#   (a) the CURVE keys were made on the first start, secret files mode 600;
#   (b) `ifp client` answers with the keys it finds through IFP_RUN_DIR, and
#       a plain client is refused;
#   (c) every socket the deployment listens on (the router, each mpirun and
#       its ranks) is on loopback: the `ss` table is printed; the one
#       exception allowed is named in the output (OpenMPI 4.1's mpirun);
#   (d) `status` exits 0; with one group's ranks stopped (SIGSTOP) the router
#       declares it dead while its PIDs live: `status` exits non-zero showing
#       DEAD, the supervisor kills and restarts the group, `status` is 0 again;
#   (e) a restart keeps the keys, and `stop` leaves no process of any of the
#       deployment's sessions;
#   (f) two routers ([router r1], [router r2] on free ports): each runs as
#       `ifp-router --name NAME` with its own pid file and log, `status`
#       lists both (each answers and sees every group alive) and exits 0, the
#       "try:" line lists both frontends, a client of r2 alone is served (the
#       groups serve both routers); `kill -9` of r1 while a client with both
#       frontends keeps sending: the supervisor restarts r1 (its log and
#       supervisor.log say so), `status` is 0 again, and every request of
#       that client was answered; `stop` leaves nothing.
# Run by ctest (IFP_BUILD_DIR = the build tree); needs ss (iproute2), pgrep
# (procps) and mpirun.  The deployment is always stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deploy/lib.sh
source "$root/deploy/lib.sh" # ifp_free_port
build="${IFP_BUILD_DIR:-$root/build}"
ifp="$build/tools/ifp"
local_sh="$root/deploy/local.sh"
t_start=$SECONDS

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*"; }

for tool in ss pgrep mpirun; do
    command -v "$tool" >/dev/null ||
        fail "$tool not found: install iproute2 (ss), procps (pgrep) and openmpi-bin (mpirun); deploy/packages.txt lists them and tests/run.sh installs them"
done
for bin in "$ifp" "$build/router/ifp-router" "$build/shard/ifp-shard"; do
    [[ -x "$bin" ]] || fail "$bin not built (cmake --build ${build#"$root"/})"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ifp-test-deploy.XXXXXX")"
export IFP_RUN_DIR="$tmp/run"
export IFP_BUILD_DIR="$build"
export IFP_START_TIMEOUT=90
export IFP_GROUP_GRACE=30      # a group never seen alive since its start
export IFP_GROUP_DEAD_GRACE=2  # a group that was alive: short, for (d)
unset IFP_KEYS IFP_MPIRUN_ARGS

sessions=() # every session (pid of a setsid leader) the deployment had
remember_sessions() {
    local f pid
    for f in "$IFP_RUN_DIR"/*.pid; do
        [[ -e "$f" ]] || continue
        pid="$(cat "$f" 2>/dev/null || true)"
        [[ -n "$pid" && " ${sessions[*]} " != *" $pid "* ]] && sessions+=("$pid")
    done
    return 0
}

# live_in_session SID: the processes of session SID that still run (zombies
# aside), one pid a line.
live_in_session() {
    local p stat
    for p in $(pgrep -s "$1" 2>/dev/null || true); do
        stat="$({ cat "/proc/$p/stat"; } 2>/dev/null || true)"
        [[ -n "$stat" && "${stat##*) }" != Z* ]] && echo "$p"
    done
    return 0
}

loop_pid="" # (f)'s client loop
cleanup() {
    local rc=$? sid
    trap - EXIT
    [[ -z "$loop_pid" ]] || kill "$loop_pid" 2>/dev/null || true
    remember_sessions
    "$local_sh" stop >/dev/null 2>&1 || true
    for sid in "${sessions[@]}"; do pkill -KILL -s "$sid" 2>/dev/null || true; done
    if ((rc != 0)); then
        for f in "$IFP_RUN_DIR"/*.log; do
            [[ -e "$f" ]] || continue
            printf '\n---- the end of %s\n' "$f"
            tail -n 15 "$f"
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# free_port: sets `port` to a free TCP port of 127.0.0.1 not taken before
# (5755, 5756 when nobody uses them; nothing may use it in any state).
free_port() { ifp_free_port 5755 5756 || fail "no free TCP port found"; }
free_port
front_port="$port"
free_port
back_port="$port"
frontend="tcp://127.0.0.1:$front_port"

# deploy/local.ini's router settings on other ports; 2 groups of 1 stage.
cfg="$tmp/cluster.ini"
cat >"$cfg" <<EOF
; written by tests/test_deploy_local.sh
[router]
frontend = $frontend
backend = tcp://127.0.0.1:$back_port
heartbeat_ms = 250
liveness = 4
min_coverage = 1.0
balance_abs = 256
balance_rel = 1.5
queue_max = 256
max_tokens = 128
policy = affinity

[model]
model = $root/models/ifp-mix/ifp-mix.gguf
predictor = $root/models/ifp-mix/ifp-mix-predictor.gguf
clusters = $root/models/ifp-mix/clusters-k4.gguf

[group g0]
stages = 1
cluster = 0
slots = 4

[group g1]
stages = 1
cluster = dense
slots = 4
EOF

step "deploy/local.sh start (run dir $IFP_RUN_DIR, router at $frontend)"
out="$("$local_sh" start "$cfg" 2>&1)" || {
    printf '%s\n' "$out"
    fail "deploy/local.sh start failed"
}
printf '%s\n' "$out"
remember_sessions

step "(a) the keys were made on the first start"
keys="$IFP_RUN_DIR/keys"
grep -qx "ifp keygen: keys in $keys: 4 made, 0 kept" <<<"$out" ||
    fail "start did not print ifp keygen's 'keys in $keys: 4 made, 0 kept'"
grep -q "ifp keygen: keys in $keys" "$IFP_RUN_DIR/supervisor.log" || fail "ifp keygen's line is not in supervisor.log"
for f in router.key router.pub groups/g0.key groups/g0.pub groups/g1.key groups/g1.pub client.key client.pub \
    clients/local.pub; do
    [[ -s "$keys/$f" ]] || fail "missing key file $keys/$f"
done
for f in "$keys/router.key" "$keys/groups/g0.key" "$keys/groups/g1.key" "$keys/client.key"; do
    mode="$(stat -c %a "$f")"
    [[ "$mode" == 600 ]] || fail "$f has mode $mode, expected 600"
    printf '  %s mode %s\n' "${f#"$keys"/}" "$mode"
done

step "(b) ifp client finds the keys through IFP_RUN_DIR"
answer="$("$ifp" client --router "$frontend" --prompt hi -n 8 --temp 0 --timeout-ms 30000 2>"$tmp/client.err")" || {
    cat "$tmp/client.err"
    fail "ifp client --router $frontend --prompt hi -n 8 --temp 0 failed"
}
[[ -n "$answer" ]] || fail "ifp client printed no answer"
grep -q "8 new tokens" "$tmp/client.err" || fail "ifp client's stats do not say 8 new tokens: $(cat "$tmp/client.err")"
printf '  answer: %s\n  %s\n' "$answer" "$(tail -n 1 "$tmp/client.err")"
if "$ifp" client --router "$frontend" --plain --prompt hi -n 2 --temp 0 --timeout-ms 3000 >/dev/null 2>"$tmp/plain.err"; then
    fail "a plain client (--plain) was served by a CURVE router"
fi
printf '  a plain client is refused: %s\n' "$(tail -n 1 "$tmp/plain.err")"

step "(c) what the deployment listens on (ss -ltnp, ss -lunp, ss -lxp)"
declare -A ours=() # pid -> session
for sid in "${sessions[@]}"; do
    for p in $(live_in_session "$sid"); do ours[$p]="$sid"; done
done
((${#ours[@]} >= 5)) || fail "expected at least 5 processes (router, 2 mpirun, 2 ranks), found ${#ours[@]}"
bad=0 rows=0
printf '  %-5s %-28s %-10s %-7s %s\n' proto local process pid verdict
while read -r proto local users; do
    mine="" comm=""
    while [[ "$users" =~ \(\"([^\"]*)\",pid=([0-9]+), ]]; do
        users="${users#*"${BASH_REMATCH[0]}"}"
        if [[ -n "${ours[${BASH_REMATCH[2]}]:-}" ]]; then
            mine="${BASH_REMATCH[2]}" comm="${BASH_REMATCH[1]}"
        fi
    done
    [[ -n "$mine" ]] || continue
    rows=$((rows + 1))
    addr="${local%:*}"
    addr="${addr%%\%*}" # 127.0.0.1%lo -> 127.0.0.1
    case "$addr" in
    127.* | "[::1]" | "[::ffff:127."*) verdict=loopback ;;
    *)
        # (OpenMPI 4.1's mpirun binds its out-of-band listener to the
        # wildcard address: deploy/local.sh preloads security/bindaddr.c's
        # shim so that it binds mpi_if's address, here loopback)
        verdict="NOT LOOPBACK"
        bad=1
        ;;
    esac
    printf '  %-5s %-28s %-10s %-7s %s\n' "$proto" "$local" "$comm" "$mine" "$verdict"
done < <({
    ss -Hltnp | awk '{ print "tcp", $4, $0 }'
    ss -Hlunp | awk '{ print "udp", $4, $0 }'
} 2>/dev/null)
unix_rows="$(ss -Hlxp 2>/dev/null | grep -cE "pid=($(IFS='|' && echo "${!ours[*]}"))," || true)"
printf '  + %s unix socket(s) of the deployment (local only by nature)\n' "$unix_rows"
((rows > 0)) || fail "ss showed no socket of the deployment (the router listens on two): is ss allowed to see processes?"
((bad == 0)) || fail "a process of the deployment listens on a non-loopback address (see the table)"

step "(d) status by the router's view"
"$local_sh" status || fail "deploy/local.sh status exited $? on a healthy cluster"
g0_pid="$(cat "$IFP_RUN_DIR/group-g0.pid")"
# the supervisor judges every 2 s: wait until it has seen g0 alive, so that
# what follows tests the grace of a group that was alive
for ((i = 0; i < 30; i++)); do
    grep -q "group-g0 (pid $g0_pid): alive in the router's view" "$IFP_RUN_DIR/supervisor.log" && break
    sleep 1
done
grep "group-g0 (pid $g0_pid): alive in the router's view" "$IFP_RUN_DIR/supervisor.log" | sed 's/^/  supervisor.log: /' ||
    fail "the supervisor did not log group g0 alive in the router's view within 30 s"
ranks="$(pgrep -s "$g0_pid" -x ifp-shard | tr '\n' ' ' || true)"
[[ -n "$ranks" ]] || fail "no ifp-shard rank found in group g0's session $g0_pid"
printf '  SIGSTOP group g0 ranks: %s\n' "$ranks"
# shellcheck disable=SC2086 # one pid a word
kill -STOP $ranks
deadline=$((SECONDS + 90))
seen_dead=0
restarted=0
while ((SECONDS < deadline)); do
    sleep 1
    rc=0
    st="$("$local_sh" status 2>&1)" || rc=$?
    line="$(grep 'group g0 ' <<<"$st" || true)"
    if ((!seen_dead)) && ((rc != 0)) && [[ "$line" =~ pid\ +$g0_pid\ +alive\ +router:\ DEAD ]]; then
        seen_dead=1
        printf '  status exit %d after %ds:\n%s\n' "$rc" $((SECONDS - deadline + 90)) "$st"
    fi
    now_pid="$(cat "$IFP_RUN_DIR/group-g0.pid" 2>/dev/null || true)"
    if [[ -n "$now_pid" && "$now_pid" != "$g0_pid" ]]; then
        remember_sessions
        restarted=1
        if ((rc == 0)); then
            printf '  restarted as pid %s; status exit 0 after %ds:\n%s\n' "$now_pid" $((SECONDS - deadline + 90)) "$st"
            break
        fi
    fi
done
((seen_dead)) || fail "status never showed group g0 alive by its PIDs but DEAD in the router's view (exit non-zero)"
((restarted)) || fail "the supervisor did not restart group g0 within 90 s: $(tail -n 5 "$IFP_RUN_DIR/supervisor.log")"
((rc == 0)) || fail "status did not return to 0 within 90 s after the restart:"$'\n'"$st"
grep -q "group-g0 (pid $g0_pid): the router has not seen it alive for .* (grace ${IFP_GROUP_DEAD_GRACE}s once alive)" \
    "$IFP_RUN_DIR/supervisor.log" || fail "the supervisor did not log why it killed group g0 (the grace of a group once alive)"
grep "group-g0" "$IFP_RUN_DIR/supervisor.log" | sed 's/^/  supervisor.log: /'
for p in $ranks; do
    [[ -z "$(live_in_session "$g0_pid" | grep -x "$p" || true)" ]] || fail "the stopped rank $p still runs"
done

step "(e) restart keeps the keys; stop leaves nothing"
out="$("$local_sh" restart "$cfg" 2>&1)" || {
    printf '%s\n' "$out"
    fail "deploy/local.sh restart failed"
}
remember_sessions
grep -x "ifp keygen: keys in $keys: 0 made, 4 kept" <<<"$out" | sed 's/^/  /' ||
    fail "restart did not keep the keys: $(grep keygen <<<"$out")"
"$local_sh" status >/dev/null || fail "status exited $? after restart"
"$local_sh" stop
for sid in "${sessions[@]}"; do
    left="$(live_in_session "$sid" | tr '\n' ' ')"
    [[ -z "$left" ]] || fail "after stop, session $sid still has processes: $left"
done
printf '  no process left in the %d sessions the deployment had: %s\n' "${#sessions[@]}" "${sessions[*]}"
rc=0
"$local_sh" status >/dev/null || rc=$?
((rc == 3)) || fail "status after stop exited $rc, expected 3 (not running)"

step "(f) two routers: each its own process, pid file and log; kill -9 of one"
ports=()
for i in 1 2 3 4 5 6; do
    free_port
    ports+=("$port")
done
fe1="tcp://127.0.0.1:${ports[0]}" fe2="tcp://127.0.0.1:${ports[2]}"
cfg2="$tmp/two-routers.ini"
{
    printf '; written by tests/test_deploy_local.sh: the same groups, two routers\n[router]\n'
    sed -n '/^heartbeat_ms/,/^policy/p' "$cfg"
    printf '\n[router r1]\nfrontend = %s\nbackend = tcp://127.0.0.1:%s\nhttp_listen = 127.0.0.1:%s\n' "$fe1" "${ports[1]}" "${ports[4]}"
    printf '\n[router r2]\nfrontend = %s\nbackend = tcp://127.0.0.1:%s\nhttp_listen = 127.0.0.1:%s\n\n' "$fe2" "${ports[3]}" "${ports[5]}"
    sed -n '/^\[model\]/,$p' "$cfg"
} >"$cfg2"
out="$("$local_sh" start "$cfg2" 2>&1)" || {
    printf '%s\n' "$out"
    fail "deploy/local.sh start $cfg2 failed"
}
printf '%s\n' "$out"
remember_sessions
grep -qF -- "--router $fe1,$fe2 " <<<"$out" || fail "the start-up message does not give the client command with both frontends ($fe1,$fe2)"
[[ ! -e "$IFP_RUN_DIR/router.pid" ]] || fail "router.pid exists with two named routers"
for r in r1 r2; do
    pid="$(cat "$IFP_RUN_DIR/router-$r.pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] || fail "no $IFP_RUN_DIR/router-$r.pid"
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"ifp-router --config $cfg2 --name $r "* ]] || fail "router $r (pid $pid) runs as '$cmdline'"
    grep -q "starting on localhost: .*ifp-router --config $cfg2 --name $r$" "$IFP_RUN_DIR/router-$r.log" ||
        fail "router-$r.log does not say how $r was started"
    printf '  router %s: pid %s, %s\n' "$r" "$pid" "$cmdline"
done
st="$("$local_sh" status 2>&1)" || fail "status exited non-zero with two healthy routers:"$'\n'"$st"
for r in r1 r2; do
    grep -qE "^  router $r +pid [0-9]+ +alive +answers, sees 2/2 groups alive, frontend " <<<"$st" ||
        fail "status does not show router $r alive, answering and seeing both groups:"$'\n'"$st"
done
printf '%s\n' "$st"
answer="$("$ifp" client --router "$fe2" --prompt hi -n 4 --temp 0 --timeout-ms 30000 2>"$tmp/r2.err")" ||
    fail "a client of router r2 alone was not served: $(tail -n 2 "$tmp/r2.err")"
printf '  router r2 alone serves: %s\n' "$(tail -n 1 "$tmp/r2.err")"

# a client with both frontends, one request after another, until told to stop
rm -f "$tmp/loop.stop" "$tmp/loop.log"
(
    n=0
    while [[ -d "$tmp" && ! -e "$tmp/loop.stop" ]]; do
        n=$((n + 1))
        if "$ifp" client --router "$fe1,$fe2" --prompt "hi $n" -n 4 --temp 0 --timeout-ms 30000 >/dev/null 2>"$tmp/loop.err"; then
            echo "$n ok" >>"$tmp/loop.log"
        else
            echo "$n FAILED: $(tail -n 1 "$tmp/loop.err")" >>"$tmp/loop.log"
        fi
    done
) &
loop_pid=$!
for ((i = 0; i < 300; i++)); do
    [[ -s "$tmp/loop.log" ]] && break
    sleep 0.1
done
[[ -s "$tmp/loop.log" ]] || fail "the client with both frontends made no request in 30 s"
! grep -q FAILED "$tmp/loop.log" ||
    fail "a client with both frontends (--router $fe1,$fe2) was not served before any router was killed: $(grep -m1 FAILED "$tmp/loop.log")"
r1_pid="$(cat "$IFP_RUN_DIR/router-r1.pid")" r2_pid="$(cat "$IFP_RUN_DIR/router-r2.pid")"
before="$(wc -l <"$tmp/loop.log")"
printf '  kill -9 router r1 (pid %s) after %s request(s) of the client with both frontends\n' "$r1_pid" "$before"
kill -KILL "$r1_pid"
deadline=$((SECONDS + 60))
rc=1
while ((SECONDS < deadline)); do
    sleep 1
    now_pid="$(cat "$IFP_RUN_DIR/router-r1.pid" 2>/dev/null || true)"
    [[ -n "$now_pid" && "$now_pid" != "$r1_pid" ]] || continue
    rc=0
    st="$("$local_sh" status 2>&1)" || rc=$?
    ((rc == 0)) && break
done
((rc == 0)) || fail "status did not return to 0 within 60 s after kill -9 of router r1:"$'\n'"$st"
printf '  router r1 restarted as pid %s; status exit 0:\n%s\n' "$now_pid" "$st"
remember_sessions
# two more requests once it is back, then the client stops
n_at="$(wc -l <"$tmp/loop.log")"
for ((i = 0; i < 600; i++)); do
    (($(wc -l <"$tmp/loop.log") >= n_at + 2)) && break
    sleep 0.1
done
touch "$tmp/loop.stop"
wait "$loop_pid" || true
loop_pid=""
sed 's/^/  client with both frontends: request /' "$tmp/loop.log" | tail -n 5
(($(wc -l <"$tmp/loop.log") >= n_at + 2)) || fail "the client with both frontends made no request after r1 came back"
! grep -q FAILED "$tmp/loop.log" || fail "a request with both frontends failed: $(grep FAILED "$tmp/loop.log" | head -n 3)"
printf '  all %s requests answered (%s before the kill)\n' "$(wc -l <"$tmp/loop.log")" "$before"
grep -q "supervisor: the process died; restarting in " "$IFP_RUN_DIR/router-r1.log" ||
    fail "router-r1.log does not say the supervisor restarts it"
(($(grep -c "starting on localhost: .*--name r1$" "$IFP_RUN_DIR/router-r1.log") == 2)) ||
    fail "router-r1.log does not show two starts of r1"
grep "router-r1" "$IFP_RUN_DIR/supervisor.log" | sed 's/^/  supervisor.log: /'
grep -q "restarted router-r1: pid $now_pid" "$IFP_RUN_DIR/supervisor.log" || fail "supervisor.log does not say it restarted router-r1"
[[ "$(cat "$IFP_RUN_DIR/router-r2.pid")" == "$r2_pid" ]] || fail "router r2 was restarted too (pid $r2_pid, now $(cat "$IFP_RUN_DIR/router-r2.pid"))"
"$local_sh" stop
for sid in "${sessions[@]}"; do
    left="$(live_in_session "$sid" | tr '\n' ' ')"
    [[ -z "$left" ]] || fail "after stop, session $sid still has processes: $left"
done
printf '  no process left in the %d sessions the deployments had\n' "${#sessions[@]}"

printf '\ntest_deploy_local: PASS in %ds\n' $((SECONDS - t_start))
