#!/usr/bin/env bash
# deploy/cluster.sh — an ifp deployment as one config describes it, on this
# machine or across hosts: one ifp-router per router of the config ([router]
# itself, or each [router NAME]: `ifp-router --config CONFIG --name NAME`) on
# its `host`, and one mpirun job per [group NAME] (P = its `stages`, stage i
# on the i-th of its `hosts` or placed by its `hostfile`), all watched from
# here by a supervisor that restarts whatever dies (any router, any group),
# and any group the routers do not see alive (asked of the first live router
# that answers).  Processes on other hosts are started through [deploy]
# agent (`ssh` by default: run as `AGENT HOST COMMAND...`;
# deploy/netns-agent.sh for network namespaces made by deploy/netns.sh);
# mpirun uses it too (plm_rsh_agent).  The build, the config, the models and
# the keys folder must be at the same paths on every host (a shared file
# system), docs/DEPLOY.md.
#
# usage: deploy/cluster.sh start|stop|status|restart [CONFIG]   (default deploy/local.ini)
# start makes the CURVE keys that are missing (ifp keygen --config), then runs
# `ifp-router --check-config CONFIG` and launches nothing if the config or its
# model files are wrong.  status exits 0 only when every process runs, every
# router answers, and the first that answers sees every group alive.  Logs
# and pid files: router.* (one router), router-NAME.*, group-NAME.*,
# supervisor.*.  deploy/local.sh is this script with deploy/local.ini.
#
# Environment: IFP_BUILD_DIR (default build/), IFP_RUN_DIR (pid files, logs
# and keys; default /tmp/ifp-local-$USER; exported to everything launched),
# IFP_MPIRUN (default [deploy] mpirun), IFP_MPIRUN_ARGS (more mpirun
# options, after [deploy] mpirun_args), IFP_START_TIMEOUT (s, default 30),
# IFP_STOP_TIMEOUT (s, default 10), IFP_GROUP_GRACE (s, default 30: a group
# never seen alive since its start), IFP_GROUP_DEAD_GRACE (s, default 10: a
# group no longer alive).
set -euo pipefail

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=deploy/lib.sh
source "$(dirname "$script")/lib.sh"
# shellcheck source=deploy/cluster-procs.sh
source "$(dirname "$script")/cluster-procs.sh"
# shellcheck source=deploy/cluster-watch.sh
source "$(dirname "$script")/cluster-watch.sh"
cfg="${2:-$IFP_ROOT/deploy/local.ini}"
[[ "$cfg" == /* || ! -e "$cfg" ]] || cfg="$(cd "$(dirname "$cfg")" && pwd)/$(basename "$cfg")"
cd "$IFP_ROOT"

build="${IFP_BUILD_DIR:-$IFP_ROOT/build}"
build="$(cd "$build" 2>/dev/null && pwd || echo "$build")"
router_bin="$build/router/ifp-router"
shard_bin="$build/shard/ifp-shard"
bindaddr_lib="$build/security/libifp_bindaddr.so"
ifp_bin="$build/tools/ifp"
# The keys folder a bare `ifp client` of the caller would use (security/keys.c)
caller_keys="${IFP_KEYS:-${IFP_RUN_DIR:-/tmp/ifp-local-${USER:-root}}/keys}"
run="$(ifp_local_run_dir)"
# The router, the shards and the probes find the keys folder through it
# (unless [security] keys or $IFP_KEYS says otherwise).
export IFP_RUN_DIR="$run"
mpirun_bin="${IFP_MPIRUN:-}" # else [deploy] mpirun (read_config)
start_timeout="${IFP_START_TIMEOUT:-30}"
stop_timeout="${IFP_STOP_TIMEOUT:-10}"
group_grace="${IFP_GROUP_GRACE:-30}"
dead_grace="${IFP_GROUP_DEAD_GRACE:-10}"

# the command the user typed (deploy/local.sh runs this script)
launcher="${IFP_LAUNCHER:-deploy/cluster.sh}"
usage() { awk 'NR >= 2 && !/^#/ { exit } NR >= 2' "$script" | sed 's/^# \{0,1\}//'; }
log_line() { printf '== %s %s\n' "$(date '+%F %T')" "$*"; }

# The groups ("NAME STAGES"), the routers and [security] curve of $cfg,
# read the way the C parser reads them (deploy/lib.sh); a file it would
# refuse is refused here.  Sets `link`, the options with which `ifp client`
# and `ifp status` reach the routers: --plain, or --keys with the folder
# that start's ifp keygen used.
read_config() {
    local listing keys
    [[ -r "$cfg" ]] || ifp_die "config not found: $cfg"
    listing="$(ifp_ini_groups "$cfg")" || ifp_die "$cfg: fix the error above"
    mapfile -t groups <<<"$listing"
    ((${#groups[@]} > 0)) && [[ -n "${groups[0]}" ]] || ifp_die "$cfg has no [group NAME] section"
    curve="$(ifp_ini_get "$cfg" security curve on)"
    read_launch
    [[ -n "$mpirun_bin" ]] || mpirun_bin="$(ifp_ini_get "$cfg" deploy mpirun mpirun)"
    mpirun_args="$(ifp_ini_get "$cfg" deploy mpirun_args "")"
    link=()
    if [[ "$curve" == off ]]; then
        link=(--plain)
    else
        keys="$(cat "$run/keys-dir" 2>/dev/null || true)"
        [[ -n "$keys" ]] && link=(--keys "$keys")
    fi
    return 0
}

# read_launch: the routers and where they run, and how to reach other hosts
# (stop needs these even when the rest of the file has become unreadable:
# nothing is checked here).  The routers in config order: rt_name ("" for
# the one router of a config without [router NAME]), rt_file (router or
# router-NAME: its pid file and log), rt_front, rt_host, rt_label ("the
# router" or "router NAME", for messages); `frontends` (comma-separated,
# what `ifp client --router` takes) and `rt_all` ("the router" or
# "routers A, B").
read_launch() {
    local line names=()
    rt_name=() rt_file=() rt_front=() rt_host=() rt_label=()
    while IFS= read -r line; do
        [[ -n "$line" ]] || continue
        ifp_router_fields "$line"
        rt_name+=("${rf[0]}") rt_front+=("${rf[1]}") rt_host+=("${rf[4]}")
        if [[ -z "${rf[0]}" ]]; then
            rt_file+=(router) rt_label+=("the router")
        else
            rt_file+=("router-${rf[0]}") rt_label+=("router ${rf[0]}") names+=("${rf[0]}")
        fi
    done < <(ifp_ini_routers "$cfg" lax 2>/dev/null || true)
    frontends="$(IFS=, && echo "${rt_front[*]}")"
    rt_all="the router"
    ((${#names[@]} == 1)) && rt_all="router ${names[0]}"
    ((${#names[@]} > 1)) && rt_all="routers $(printf '%s, ' "${names[@]}" | sed 's/, $//')"
    read -r -a agent <<<"$(ifp_ini_get "$cfg" deploy agent ssh 2>/dev/null || echo ssh)"
    # a relative agent path is the config folder's (e.g. deploy/netns-agent.sh)
    [[ "${agent[0]}" == */* && "${agent[0]}" != /* ]] && agent[0]="$(dirname "$cfg")/${agent[0]}"
    return 0
}

# make_keys: with CURVE on (the default), every key of the deployment that
# is missing: `ifp keygen --config` (it keeps the keys that exist, so it runs
# on every start), its line printed and logged to supervisor.log, the folder
# it used recorded for status and the supervisor.  With [security] curve =
# off: a warning, no keys.
make_keys() {
    local out re='^ifp keygen: keys in (.*): [0-9]+ made, [0-9]+ kept$'
    rm -f "$run/keys-dir"
    if [[ "$(ifp_ini_get "$cfg" security curve on)" == off ]]; then
        printf 'WARNING: %s sets [security] curve = off: every ZeroMQ link of this cluster is plain (no authentication, no encryption)\n' "$cfg"
        log_line "WARNING: [security] curve = off in $cfg: plain ZeroMQ links, no keys made" >>"$run/supervisor.log"
        return 0
    fi
    if ! out="$("$ifp_bin" keygen --config "$cfg" 2>&1)"; then
        printf '%s\n' "$out" >&2
        ifp_die "refusing to start: the CURVE keys of $cfg could not be made"
    fi
    printf '%s\n' "$out"
    log_line "$out" >>"$run/supervisor.log"
    [[ "$(tail -n 1 <<<"$out")" =~ $re ]] && printf '%s\n' "${BASH_REMATCH[1]}" >"$run/keys-dir"
    return 0
}

# ifp-router --check-config: the whole file and its model files, before
# anything is launched.  Prints the router's one-line summary, or its error
# and exits.
check_config() {
    local out
    if ! out="$("$router_bin" --check-config "$cfg" 2>&1)"; then
        printf '%s\n' "$out" >&2
        ifp_die "refusing to start: $cfg does not pass ifp-router --check-config"
    fi
    printf '%s\n' "$out"
}

cmd_start() {
    [[ -r "$cfg" ]] || ifp_die "config not found: $cfg"
    for bin in "$router_bin" "$shard_bin" "$ifp_bin"; do
        [[ -x "$bin" ]] || ifp_die "$bin not built (cmake -S . -B build && cmake --build build -j)"
    done
    # shellcheck disable=SC2174 # only the run dir itself is private (logs, keys)
    [[ -d "$run" ]] || mkdir -p -m 0700 "$run"
    if alive "$(pid_of supervisor)" cluster.sh; then
        ifp_die "already running from $(cat "$run/config" 2>/dev/null) (run dir $run); stop it first: $launcher stop"
    fi
    make_keys
    check_config
    read_config
    command -v "$mpirun_bin" >/dev/null || ifp_die "mpirun not found ($mpirun_bin); install openmpi-bin or set IFP_MPIRUN"
    local g i f names=("${rt_file[@]}")
    for g in "${groups[@]}"; do names+=("group-${g%% *}"); done
    # leftovers of a crashed run (and of an earlier config's routers)
    for f in "$run"/*.pid; do
        [[ -e "$f" && "$f" != */supervisor.pid && " ${names[*]} " != *" $(basename "$f" .pid) "* ]] &&
            names+=("$(basename "$f" .pid)")
    done
    stop_procs "${names[@]}" >/dev/null 2>&1 || true
    for g in "${names[@]}"; do rm -f "$run/$g.restarts"; done
    echo "$cfg" >"$run/config"
    [[ -z "${OPENBLAS_CORETYPE:-}" ]] && ifp_set_openblas_coretype >/dev/null
    for i in "${!rt_file[@]}"; do launch_router "$i"; done
    for g in "${groups[@]}"; do launch_group "${g%% *}" "${g##* }"; done
    IFP_SUPERVISE=1 setsid "$script" __supervise "$cfg" >>"$run/supervisor.log" 2>&1 </dev/null &
    echo $! >"$run/supervisor.pid"
    printf 'ifp cluster: config %s, %d groups, %s at %s\n' "$cfg" "${#groups[@]}" "$(rt_at)" "$frontends"
    printf 'waiting for the %s to answer (up to %ss) ...\n' "$( ((${#rt_file[@]} > 1)) && echo routers || echo router)" \
        "$start_timeout"
    local rc=0 t0=$SECONDS dead_router logs=()
    wait_ready || rc=$?
    if ((rc != 0)); then
        if ((rc == 1)); then
            logs=("$run/${rt_file[dead_router]}.log")
            printf 'ifp-router (%s) exited; the end of %s:\n' "${rt_label[dead_router]}" "${logs[0]}" >&2
        else
            for f in "${rt_file[@]}"; do logs+=("$run/$f.log"); done
            printf 'no answer within %ss; the end of %s:\n' "$start_timeout" "${logs[*]}" >&2
        fi
        tail -n 20 "${logs[@]}" >&2 || true
        [[ -s "$run/probe.err" ]] && sed 's/^/probe: /' "$run/probe.err" >&2
        cmd_stop >/dev/null
        exit 1
    fi
    printf 'ready in %ds.\n\n' $((SECONDS - t0))
    cmd_status || true
    printf '\nlogs: %s/{%s,group-NAME,supervisor}.log\n' "$run" "$(IFS=, && echo "${rt_file[*]}")"
    # what a bare `ifp client` of the caller would not find by itself
    local hint=""
    [[ "$curve" == off ]] && hint=" --plain"
    [[ ${#link[@]} -eq 2 && "${link[1]}" != "$caller_keys" ]] && hint=" --keys ${link[1]}"
    printf 'try:  %s client --router %s%s --prompt $'"'"'Question: What is 2+3?\\nAnswer:'"'"' -n 32 --temp 0\n' \
        "${ifp_bin#"$IFP_ROOT"/}" "$frontends" "$hint"
    printf 'stop: %s stop\n' "$launcher"
}

# rt_at: "router" or "routers r1, r2" (before their frontends).
rt_at() { if [[ "$rt_all" == "the router" ]]; then echo router; else echo "$rt_all"; fi; }

cmd_stop() {
    local names=() f
    for f in "$run"/*.pid; do [[ -e "$f" ]] && names+=("$(basename "$f" .pid)"); done
    if ((${#names[@]} == 0)); then
        rm -f "$run/config"
        echo "ifp cluster: not running (run dir $run)"
        return 0
    fi
    # the config it was started with: where its processes are
    [[ -r "$run/config" ]] && cfg="$(cat "$run/config")"
    [[ -r "$cfg" ]] && read_launch
    stop_procs supervisor # first, so that nothing gets restarted
    stop_procs "${names[@]}"
    rm -f "$run/config"
    echo "ifp cluster stopped (logs kept in $run)"
}

# Each process by its PID; each router: does it answer ifp status, and how
# many groups it sees alive; each group as the first router that answers
# sees it (alive, DEAD, down = never registered).  Returns 0 when every
# process runs, every router answers and that view has every group alive, 1
# otherwise, 3 when not running.
cmd_status() {
    [[ -e "$run/config" ]] || {
        echo "ifp cluster: not running (run dir $run)"
        return 3
    }
    cfg="$(cat "$run/config")"
    read_config
    local bad=0 pid state g i name ranks restarts seen rc sec n_alive by="" label
    local -A view=() gview=()
    local view_err
    sec="CURVE on, keys ${link[1]:-(default folder)}"
    [[ "$curve" == off ]] && sec="CURVE OFF (plain ZeroMQ)"
    printf 'config %s, run dir %s, %s at %s, %s\n' "$cfg" "$run" "$(rt_at)" "$frontends" "$sec"
    pid="$(pid_of supervisor)"
    if alive "$pid" cluster.sh; then state=alive; else state=DEAD bad=1; fi
    printf '  %-14s pid %-8s %s\n' supervisor "${pid:--}" "$state"
    for i in "${!rt_file[@]}"; do
        pid="$(pid_of "${rt_file[i]}")"
        if rt_alive "$i"; then state=alive; else state=DEAD bad=1; fi
        rc=0
        router_view_of "$i" 2000 || rc=$?
        if ((rc > 1)); then
            seen="NO ANSWER (${view_err:-no answer})" bad=1
        else
            n_alive=0
            for g in "${groups[@]}"; do [[ "${view[${g%% *}]:-}" == alive ]] && n_alive=$((n_alive + 1)); done
            seen="answers, sees $n_alive/${#groups[@]} groups alive"
            if [[ -z "$by" && "$state" == alive ]]; then # the groups' view below
                by="$i"
                for g in "${!view[@]}"; do gview[$g]="${view[$g]}"; done
            fi
        fi
        restarts="$(cat "$run/${rt_file[i]}.restarts" 2>/dev/null || echo 0)"
        label=router
        [[ -n "${rt_name[i]}" ]] && label="router ${rt_name[i]}"
        printf '  %-14s pid %-8s %-6s %s, frontend %s, on %s, restarts %s, log %s\n' "$label" "${pid:--}" "$state" \
            "$seen" "${rt_front[i]}" "${rt_host[i]}" "$restarts" "$run/${rt_file[i]}.log"
    done
    if ((${#rt_file[@]} > 1)); then
        if [[ -n "$by" ]]; then label="${rt_label[by]}"; else label="no router (none answers)"; fi
        printf '  (the groups as %s sees them)\n' "$label"
    fi
    for g in "${groups[@]}"; do
        name="${g%% *}"
        pid="$(pid_of "group-$name")"
        ranks=""
        [[ -n "$pid" ]] && ranks="$(pgrep -d, -P "$pid" 2>/dev/null || true)"
        restarts="$(cat "$run/group-$name.restarts" 2>/dev/null || echo 0)"
        if alive "$pid" "--group $name "; then state=alive; else state=DEAD bad=1; fi
        seen="${gview[$name]:-down}"
        [[ -n "$by" ]] || seen="unknown"
        [[ "$seen" == alive ]] || bad=1
        [[ "$seen" == down ]] && seen="down (never registered)"
        local ghosts=() ghostfile where
        group_hosts "$name" "${g##* }"
        where="${ghostfile:-$(IFS=, && echo "${ghosts[*]}")}"
        printf '  %-14s pid %-8s %-6s router: %-7s %s ranks (%s) on %s, restarts %s, log %s\n' "group $name" \
            "${pid:--}" "$state" "$seen" "${g##* }" "${ranks:-none}" "$where" "$restarts" "$run/group-$name.log"
    done
    return $bad
}

action="${1:-}"
groups=()
rt_name=() rt_file=() rt_front=() rt_host=() rt_label=()
rt_all="the router"
frontends=""
agent=(ssh)
mpirun_args=""
curve=on
link=()
case "$action" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
restart)
    cmd_stop
    cmd_start
    ;;
__supervise)
    [[ -n "${IFP_SUPERVISE:-}" ]] || ifp_die "internal command"
    read_config
    supervise
    ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
