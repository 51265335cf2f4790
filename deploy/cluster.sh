#!/usr/bin/env bash
# deploy/cluster.sh — an ifp deployment as one config describes it, on this
# machine or across hosts: one ifp-router on [router] host and one mpirun
# job per [group NAME] (P = its `stages`, stage i on the i-th of its `hosts`
# or placed by its `hostfile`), all watched from here by a supervisor that
# restarts whatever dies, and any group the router does not see alive.
# Processes on other hosts are started through [deploy] agent (`ssh` by
# default: run as `AGENT HOST COMMAND...`; deploy/netns-agent.sh for network
# namespaces made by deploy/netns.sh); mpirun uses it too (plm_rsh_agent).
# The build, the config, the models and the keys folder must be at the same
# paths on every host (a shared file system), docs/DEPLOY.md.
#
# usage: deploy/cluster.sh start|stop|status|restart [CONFIG]   (default deploy/local.ini)
# start makes the CURVE keys that are missing (ifp keygen --config), then runs
# `ifp-router --check-config CONFIG` and launches nothing if the config or its
# model files are wrong.  status exits 0 only when every process runs and the
# router answers and sees every group alive.  deploy/local.sh is this script
# with deploy/local.ini (every host localhost).
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
usage() { sed -n '2,27p' "$script" | sed 's/^# \{0,1\}//'; }
log_line() { printf '== %s %s\n' "$(date '+%F %T')" "$*"; }

# proc_read PID FILE: /proc/PID/FILE with its NULs turned into newlines, or
# nothing when the process is gone.  A process may exit between any two
# reads: that is never an error here, whatever `set -e` says (the redirection
# itself fails then, so its message is silenced around the whole command).
proc_read() { { tr '\0' '\n' <"/proc/$1/$2"; } 2>/dev/null || true; }

# running PID: the process exists and is not a zombie (PID 1 of a container
# may be slow to reap the orphans it inherits).
running() {
    local stat
    [[ -n "$1" ]] || return 1
    stat="$(proc_read "$1" stat)"
    [[ -n "$stat" && "${stat##*) }" != Z* ]]
}
# alive PID NAME: the process PID runs and its command line mentions NAME.
alive() {
    local pid="$1" name="$2" cmdline
    running "$pid" || return 1
    cmdline="$(proc_read "$pid" cmdline)"
    [[ "${cmdline//$'\n'/ } " == *"$name"* ]]
}
pid_of() { cat "$run/$1.pid" 2>/dev/null || true; }

# kill_session PID: SIGKILL every process of the session PID leads (each
# process was started with setsid; an mpirun's ranks stay in its session
# even when it dies, but not in its process group).
kill_session() {
    [[ -n "$1" ]] || return 0
    pkill -KILL -s "$1" 2>/dev/null || true
}

# session_running SID: some process of the session SID runs (zombies aside).
session_running() {
    local p
    for p in $(pgrep -s "$1" 2>/dev/null || true); do
        running "$p" && return 0
    done
    return 1
}

# is_local HOST: HOST is this machine (no agent needed).
is_local() {
    case "$1" in
    localhost | 127.0.0.1 | ::1 | "$(hostname 2>/dev/null)" | "$(hostname -f 2>/dev/null)") return 0 ;;
    esac
    return 1
}

# on_host HOST COMMAND...: COMMAND on HOST, directly or through the agent
# (which runs it through a shell there, as ssh does: words are quoted).
on_host() {
    local host="$1"
    shift
    if is_local "$host"; then
        "$@"
    else
        "${agent[@]}" "$host" "$(printf '%q ' "$@")"
    fi
}

# signal_remote HOST SIGNAL PATTERN: pkill -SIGNAL -f PATTERN on HOST when it
# is not this machine (what an agent such as ssh leaves running there when
# the local end of its connection is killed).
signal_remote() {
    is_local "$1" && return 0
    timeout 10 "${agent[@]}" "$1" "pkill -$2 -f -- $(printf '%q' "$3")" >/dev/null 2>&1 </dev/null || true
}

# signal_rank0 HOST NAME: TERM the rank 0 (stage 0) of group NAME on HOST,
# found by its MPI rank in its environment (stage 0 sends the shutdown down
# the pipe, so that every rank exits cleanly).
signal_rank0() {
    local snippet
    snippet="for p in \$(pgrep -f -- $(printf '%q' "ifp-shard --config $cfg --group $2( |$)")); do "
    snippet+="tr '\\0' '\\n' </proc/\$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=0 && kill -TERM \$p; done; true"
    timeout 10 "${agent[@]}" "$1" "$snippet" >/dev/null 2>&1 </dev/null || true
}

# reap FILE PID: KILL the session PID leads (FILE's job, run from here) and
# what it left on other hosts (the router, or the ranks of group NAME).
reap() {
    local file="$1" pid="$2" h
    [[ -n "$pid" ]] && kill_session "$pid"
    if [[ "$file" == router ]]; then
        signal_remote "$router_host" KILL "ifp-router --config $cfg"
    elif [[ "$file" == group-* ]]; then
        local ghosts=() ghostfile
        group_hosts "${file#group-}" 1
        local -A seen_=()
        for h in "${ghosts[@]}"; do
            [[ -n "${seen_[$h]:-}" ]] && continue
            seen_[$h]=1
            signal_remote "$h" KILL "ifp-shard --config $cfg --group ${file#group-}( |$)"
        done
    fi
}

launch_router() {
    local env=(IFP_RUN_DIR="$run" OPENBLAS_NUM_THREADS=1)
    [[ -n "${IFP_KEYS:-}" ]] && env+=(IFP_KEYS="$IFP_KEYS")
    log_line "starting on $router_host: $router_bin --config $cfg" >>"$run/router.log"
    if is_local "$router_host"; then
        env "${env[@]}" setsid "$router_bin" --config "$cfg" >>"$run/router.log" 2>&1 </dev/null &
    else
        setsid "${agent[@]}" "$router_host" "$(printf '%q ' env "${env[@]}" "$router_bin" --config "$cfg")" \
            >>"$run/router.log" 2>&1 </dev/null &
    fi
    echo $! >"$run/router.pid"
    date +%s >"$run/router.started"
}

# group_hosts NAME STAGES: sets `ghosts` (the host of each stage, or empty
# with a hostfile) and `ghostfile`; dies on stages of one host that are not
# consecutive (mpirun fills a host's slots in a row).
group_hosts() {
    local name="$1" np="$2" list i
    ghosts=()
    ghostfile="$(ifp_ini_group_get "$cfg" "$name" hostfile "")"
    if [[ -n "$ghostfile" ]]; then
        [[ "$ghostfile" == /* ]] || ghostfile="$(dirname "$cfg")/$ghostfile"
        return 0
    fi
    list="$(ifp_ini_group_get "$cfg" "$name" hosts localhost)"
    IFS=, read -r -a ghosts <<<"${list// /}"
    if ((${#ghosts[@]} == 1 && np > 1)); then
        for ((i = 1; i < np; i++)); do ghosts+=("${ghosts[0]}"); done
    fi
    local -A done_=()
    for ((i = 0; i < ${#ghosts[@]}; i++)); do
        if ((i > 0)) && [[ "${ghosts[i]}" != "${ghosts[i - 1]}" ]] && [[ -n "${done_[${ghosts[i]}]:-}" ]]; then
            ifp_die "[group $name] hosts: the stages on ${ghosts[i]} are not consecutive (${list}); put a host's stages next to each other"
        fi
        done_[${ghosts[i]}]=1
    done
}

# launch_group NAME STAGES: one mpirun job of STAGES ranks, in a session of
# its own (pid = sid) so that its ranks can be found and killed together.
launch_group() {
    local name="$1" np="$2" root_env=() extra=() mpi_if remote=0 h ghosts=() ghostfile
    ((EUID == 0)) && root_env=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
    read -ra extra <<<"${mpirun_args} ${IFP_MPIRUN_ARGS:-}"
    mpi_if="$(ifp_ini_group_get "$cfg" "$name" mpi_if lo)"
    group_hosts "$name" "$np"
    [[ -n "$ghostfile" ]] && remote=1
    for h in "${ghosts[@]}"; do is_local "$h" || remote=1; done
    local cmd=("$mpirun_bin" --oversubscribe --bind-to none)
    if ((remote)); then
        # stage i on ghosts[i]: --host H1:N1,H2:N2 in stage order (or the hostfile)
        local spec="" prev="" n=0
        if [[ -n "$ghostfile" ]]; then
            cmd+=(--hostfile "$ghostfile")
        else
            for h in "${ghosts[@]}" ""; do
                if [[ "$h" != "$prev" && -n "$prev" ]]; then spec+="${spec:+,}$prev:$n" n=0; fi
                prev="$h" n=$((n + 1))
            done
            cmd+=(--host "$spec")
        fi
        mca_unless_given plm_rsh_agent "${agent[*]}"
        # the ranks elsewhere get these from mpirun (ssh passes no environment)
        cmd+=(-x OPENBLAS_NUM_THREADS=1 -x IFP_RUN_DIR="$run")
        [[ -n "${IFP_KEYS:-}" ]] && cmd+=(-x IFP_KEYS="$IFP_KEYS")
    fi
    mca_unless_given mpi_yield_when_idle 1
    # when a rank dies, mpirun kills the others at once (default: SIGTERM
    # after 1 s, SIGKILL after 2 s; meanwhile a surviving stage 0 would keep
    # heartbeating for a broken pipeline)
    mca_unless_given odls_base_sigkill_timeout 0
    # Every rank of the job runs here: shared memory between stages, no TCP
    # BTL (which would listen on every interface, whatever its if_include).
    # Across hosts, TCP between them, on mpi_if only.
    if ((remote)); then mca_unless_given btl self,vader,tcp; else mca_unless_given btl self,vader; fi
    # What MPI may use of the network: the group's mpi_if (default lo).
    mca_unless_given btl_tcp_if_include "$mpi_if"
    mca_unless_given oob_tcp_if_include "$mpi_if"
    cmd+=("${extra[@]}" -np "$np" "$shard_bin" --config "$cfg" --group "$name")
    # mpirun of OpenMPI 4.1 binds its out-of-band listener to the wildcard
    # address whatever oob_tcp_if_include says: the shim turns those binds
    # into binds of this host's address on mpi_if (security/bindaddr.c)
    local bind_env=() addrs
    addrs="$(ifp_mpi_bind_addrs "$mpi_if")"
    if [[ -r "$bindaddr_lib" && "${addrs%% *}" != - ]]; then
        # (the ranks mpirun starts here inherit it; in a sanitizer build
        # ASan wants its runtime first in LD_PRELOAD: the shim touches only
        # bind(), so the order does not matter to it)
        bind_env=(LD_PRELOAD="$bindaddr_lib${LD_PRELOAD:+:$LD_PRELOAD}" IFP_BIND_IPV4="${addrs%% *}"
            IFP_BIND_IPV6="${addrs##* }" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
    else
        log_line "WARNING: mpirun's out-of-band listener binds every interface (no $bindaddr_lib, or no address of mpi_if $mpi_if here)" >>"$run/group-$name.log"
    fi
    log_line "starting (hosts ${ghostfile:-${ghosts[*]}}): ${bind_env[*]} ${cmd[*]}" >>"$run/group-$name.log"
    setsid env "${root_env[@]}" "${bind_env[@]}" OPENBLAS_NUM_THREADS=1 "${cmd[@]}" >>"$run/group-$name.log" 2>&1 </dev/null &
    echo $! >"$run/group-$name.pid"
    date +%s >"$run/group-$name.started"
}

# mca_unless_given NAME VALUE: appends `--mca NAME VALUE` to launch_group's
# cmd unless IFP_MPIRUN_ARGS (its extra) sets NAME (mpirun refuses a
# parameter given twice).
mca_unless_given() {
    local i
    for ((i = 0; i + 1 < ${#extra[@]}; i++)); do
        [[ "${extra[i]}" =~ ^--?g?mca$ && "${extra[i + 1]}" == "$1" ]] && return 0
    done
    cmd+=(--mca "$1" "$2")
}

# rank0_of PID: the rank-0 process among the children of mpirun PID (none
# printed if it has exited meanwhile).
rank0_of() {
    local p
    for p in $(pgrep -P "$1" 2>/dev/null || true); do
        if [[ $'\n'"$(proc_read "$p" environ)"$'\n' == *$'\nOMPI_COMM_WORLD_RANK=0\n'* ]]; then
            echo "$p"
            return 0
        fi
    done
    return 0
}

# stop_procs NAME...: TERM each (a group: its stage 0, which sends the
# shutdown down the pipe so that every rank exits cleanly; else the whole
# process group), wait up to $stop_timeout s, then KILL what is left.
stop_procs() {
    local name pid r0 pids=() left t
    for name in "$@"; do
        pid="$(pid_of "$name")"
        running "$pid" || continue
        r0=""
        [[ "$name" == group-* ]] && r0="$(rank0_of "$pid")"
        [[ "$name" == router ]] && signal_remote "$router_host" TERM "ifp-router --config $cfg"
        if [[ -z "$r0" && "$name" == group-* ]]; then
            local ghosts=() ghostfile
            group_hosts "${name#group-}" 1
            # a stage 0 on another host: TERM it there (mpirun's own TERM
            # would kill the ranks before they could shut down)
            if [[ -z "$ghostfile" ]] && ! is_local "${ghosts[0]}"; then
                signal_rank0 "${ghosts[0]}" "${name#group-}"
                pids+=("$pid")
                continue
            fi
        fi
        if [[ -n "$r0" ]]; then
            kill -TERM "$r0" 2>/dev/null || true
        else
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
        pids+=("$pid")
    done
    for ((t = 0; t < stop_timeout * 10; t++)); do
        left=()
        for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && break
        sleep 0.1
    done
    for name in "$@"; do
        # the leader may be gone while its ranks are not: KILL its whole
        # session (mpirun puts each rank in a process group of its own), and
        # what is left of it on other hosts
        pid="$(pid_of "$name")"
        [[ -n "$pid" ]] && reap "$name" "$pid"
    done
    # and return once the KILLed are gone (zombies aside), 2 s at most
    for ((t = 0; t < 20; t++)); do
        left=()
        for pid in "${pids[@]}"; do session_running "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && break
        sleep 0.1
    done
    for name in "$@"; do rm -f "$run/$name.pid" "$run/$name.started"; done
}

# watch FILE MATCH LAUNCH...: used by supervise (it shares its fails/next/why
# tables).  If the process of $run/FILE.pid is gone, schedule a restart after
# a backoff; once due, run LAUNCH...
watch() {
    local file="$1" match="$2" pid now started f delay r
    shift 2
    pid="$(pid_of "$file")"
    now="$(date +%s)"
    if alive "$pid" "$match"; then
        started="$(cat "$run/$file.started" 2>/dev/null || echo "$now")"
        ((now - started > 60)) && fails[$file]=0
        return 0
    fi
    if [[ -z "${next[$file]:-}" ]]; then
        f="${fails[$file]:-0}"
        delay=$((f == 0 ? 1 : 1 << (f < 5 ? f : 5)))
        ((delay > 30)) && delay=30
        next[$file]=$((now + delay))
        fails[$file]=$((f + 1))
        log_line "$file (pid ${pid:-none}) is down${why[$file]:+ (${why[$file]})}; restarting in ${delay}s"
        log_line "supervisor: ${why[$file]:-the process died}; restarting in ${delay}s" >>"$run/$file.log"
        unset "why[$file]"
        # reap what is left of the job (ranks that outlived their mpirun,
        # here or on other hosts)
        reap "$file" "$pid"
        return 0
    fi
    ((now < next[$file])) && return 0
    unset "next[$file]"
    "$@"
    r="$(cat "$run/$file.restarts" 2>/dev/null || echo 0)"
    echo $((r + 1)) >"$run/$file.restarts"
    log_line "restarted $file: pid $(pid_of "$file")"
}

# router_view [TIMEOUT_MS]: the router's view of the groups, from
# `ifp status --json`: fills the caller's associative array `view` (NAME ->
# alive, DEAD (was alive, now not) or down (never registered)) and the
# caller's `view_err` (ifp status's message when it got no answer); returns
# ifp status's exit status: 0 every group alive, 1 some group not, 2 no
# answer (any other failure counts as no answer).
router_view() {
    local out rc=0 rec re='"name":"([A-Za-z0-9_-]+)","alive":(true|false),"seen":(true|false)'
    view=()
    view_err=""
    out="$("$ifp_bin" status --router "$frontend" "${link[@]}" --json --timeout-ms "${1:-2000}" 2>&1)" || rc=$?
    if ((rc > 1)) || [[ "$out" != "{"* ]]; then
        view_err="$(tail -n 1 <<<"$out")"
        return 2
    fi
    while IFS= read -r rec; do
        [[ "$rec" =~ $re ]] || continue
        if [[ "${BASH_REMATCH[2]}" == true ]]; then
            view[${BASH_REMATCH[1]}]=alive
        elif [[ "${BASH_REMATCH[3]}" == true ]]; then
            view[${BASH_REMATCH[1]}]=DEAD
        else
            view[${BASH_REMATCH[1]}]=down
        fi
    done < <(grep -oE "$re" <<<"$out" || true)
    return "$rc"
}

# judge_groups: used by supervise (it shares its tables).  Restarts a group
# whose processes run but that the router has not seen alive for longer than
# its grace: $group_grace s after the group's (re)start (or the router's, or
# the router's first answer after a silence), $dead_grace s once it had been
# alive.  No verdict while the router is down or does not answer.  Each
# decision is logged with its reason; the job is killed (its whole session)
# and watch relaunches it through the usual backoff.
judge_groups() {
    local -A view=()
    local view_err now rc=0 g name pid base started rstarted state grace age reason
    now="$(date +%s)"
    if ! alive "$(pid_of router)" ifp-router; then
        silent=1 # no verdict; watch restarts the router
        return 0
    fi
    router_view 2000 || rc=$?
    if ((rc > 1)); then
        if ((!silent)); then
            log_line "the router does not answer (${view_err:-no answer}): no verdict on the groups until it does"
        fi
        silent=1
        return 0
    fi
    if ((silent)); then
        # the groups may have to register again: give them their whole grace
        ((answered > 0)) && log_line "the router answers again; judging the groups by its view from now on"
        silent=0
        answered="$now"
    fi
    rstarted="$(cat "$run/router.started" 2>/dev/null || echo "$now")"
    for g in "${groups[@]}"; do
        name="${g%% *}"
        pid="$(pid_of "group-$name")"
        # a group whose processes are gone, or that is waiting for its
        # restart, is watch's business
        [[ -z "${next[group-$name]:-}" ]] || continue
        alive "$pid" "--group $name " || continue
        started="$(cat "$run/group-$name.started" 2>/dev/null || echo "$now")"
        base=$((started > rstarted ? started : rstarted))
        ((answered > base)) && base="$answered"
        if [[ "${since[$name]:-}" != "$base" ]]; then
            since[$name]="$base" last_ok[$name]="$base" was_alive[$name]=0
        fi
        state="${view[$name]:-down}"
        if [[ "$state" == alive ]]; then
            ((was_alive[$name])) || log_line "group-$name (pid $pid): alive in the router's view"
            last_ok[$name]="$now" was_alive[$name]=1
            continue
        fi
        if ((was_alive[$name])); then grace="$dead_grace"; else grace="$group_grace"; fi
        age=$((now - last_ok[$name]))
        ((age > grace)) || continue
        if ((was_alive[$name])); then
            reason="the router has not seen it alive for ${age}s (now $state) while its processes ran (grace ${grace}s once alive)"
        else
            reason="the router has not seen it alive in the ${age}s since its start while its processes ran (state $state, grace ${grace}s)"
        fi
        why[group-$name]="killed by the supervisor: $reason"
        log_line "group-$name (pid $pid): $reason: killing the job"
        reap "group-$name" "$pid"
    done
}

# The supervisor: every second, restart the router or a group whose process
# died, waiting 1, 2, 4 ... 30 s between restarts of one that keeps dying
# (the wait resets once it has stayed up for a minute); every 2 s, ask the
# router how it sees the groups (judge_groups).
supervise() {
    local -A fails=() next=() why=() since=() last_ok=() was_alive=()
    local g tick=0 silent=1 answered=0
    set +e # a failed check must not end the supervisor
    trap 'log_line "supervisor stopping"; exit 0' TERM INT
    log_line "supervisor pid $$ watching the router and groups: ${groups[*]%% *}" \
        "(grace ${group_grace}s after a start, ${dead_grace}s once alive)"
    while :; do
        sleep 1
        watch router ifp-router launch_router
        for g in "${groups[@]}"; do
            watch "group-${g%% *}" "--group ${g%% *} " launch_group "${g%% *}" "${g##* }"
        done
        ((++tick % 2 == 0)) && judge_groups
    done
}

# The groups ("NAME STAGES"), the frontend and [security] curve of $cfg,
# read the way the C parser reads them (deploy/lib.sh); a file it would
# refuse is refused here.  Sets `link`, the options with which `ifp client`
# and `ifp status` reach this router: --plain, or --keys with the folder that
# start's ifp keygen used.
read_config() {
    local listing keys
    [[ -r "$cfg" ]] || ifp_die "config not found: $cfg"
    listing="$(ifp_ini_groups "$cfg")" || ifp_die "$cfg: fix the error above"
    mapfile -t groups <<<"$listing"
    ((${#groups[@]} > 0)) && [[ -n "${groups[0]}" ]] || ifp_die "$cfg has no [group NAME] section"
    frontend="$(ifp_ini_get "$cfg" router frontend tcp://127.0.0.1:5555)"
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

# read_launch: where the router runs and how to reach other hosts (stop
# needs these even when the rest of the file has become unreadable).
read_launch() {
    router_host="$(ifp_ini_get "$cfg" router host localhost 2>/dev/null || echo localhost)"
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

# Tiny requests until one is answered (the router is up and some group has
# registered), then until the router sees every group alive (ifp status),
# for at most $start_timeout s.  Returns 1 if the router died, 2 on timeout.
wait_ready() {
    local deadline=$((SECONDS + start_timeout)) g missing rc
    local -A view=()
    local view_err
    while :; do
        ((SECONDS < deadline)) || return 2
        alive "$(pid_of router)" ifp-router || return 1
        "$ifp_bin" client --router "$frontend" "${link[@]}" --prompt "Hello" -n 1 --temp 0 --mask dense --timeout-ms 2000 \
            --json >/dev/null 2>"$run/probe.err" && break
        sleep 0.5
    done
    while :; do
        rc=0
        router_view 2000 || rc=$?
        ((rc == 0)) && return 0
        if ((SECONDS >= deadline)); then
            missing=()
            for g in "${groups[@]}"; do
                [[ "${view[${g%% *}]:-}" == alive ]] || missing+=("${g%% *}")
            done
            printf 'warning: groups the router does not see alive yet: %s (see $launcher status and their logs)\n' \
                "${missing[*]}"
            return 0
        fi
        sleep 0.3
    done
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
    local g names=(router)
    for g in "${groups[@]}"; do names+=("group-${g%% *}"); done
    stop_procs "${names[@]}" >/dev/null 2>&1 || true # leftovers of a crashed run
    for g in "${names[@]}"; do rm -f "$run/$g.restarts"; done
    echo "$cfg" >"$run/config"
    [[ -z "${OPENBLAS_CORETYPE:-}" ]] && ifp_set_openblas_coretype >/dev/null
    launch_router
    for g in "${groups[@]}"; do launch_group "${g%% *}" "${g##* }"; done
    IFP_SUPERVISE=1 setsid "$script" __supervise "$cfg" >>"$run/supervisor.log" 2>&1 </dev/null &
    echo $! >"$run/supervisor.pid"
    printf 'ifp cluster: config %s, %d groups, router at %s\n' "$cfg" "${#groups[@]}" "$frontend"
    printf 'waiting for the router to answer (up to %ss) ...\n' "$start_timeout"
    local rc=0 t0=$SECONDS
    wait_ready || rc=$?
    if ((rc != 0)); then
        ((rc == 1)) && printf 'ifp-router exited; the end of %s:\n' "$run/router.log" >&2
        ((rc == 2)) && printf 'no answer within %ss; the end of %s:\n' "$start_timeout" "$run/router.log" >&2
        tail -n 20 "$run/router.log" >&2 || true
        [[ -s "$run/probe.err" ]] && sed 's/^/probe: /' "$run/probe.err" >&2
        cmd_stop >/dev/null
        exit 1
    fi
    printf 'ready in %ds.\n\n' $((SECONDS - t0))
    cmd_status || true
    printf '\nlogs: %s/{router,group-NAME,supervisor}.log\n' "$run"
    # what a bare `ifp client` of the caller would not find by itself
    local hint=""
    [[ "$curve" == off ]] && hint=" --plain"
    [[ ${#link[@]} -eq 2 && "${link[1]}" != "$caller_keys" ]] && hint=" --keys ${link[1]}"
    printf 'try:  %s client --router %s%s --prompt $'"'"'Question: What is 2+3?\\nAnswer:'"'"' -n 32 --temp 0\n' \
        "${ifp_bin#"$IFP_ROOT"/}" "$frontend" "$hint"
    printf 'stop: %s stop\n' "$launcher"
}

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

# Each process by its PID, and each group as the router sees it (alive, DEAD,
# down = never registered).  Returns 0 when every process runs and the router
# answers and sees every group alive, 1 otherwise, 3 when not running.
cmd_status() {
    [[ -e "$run/config" ]] || {
        echo "ifp cluster: not running (run dir $run)"
        return 3
    }
    cfg="$(cat "$run/config")"
    read_config
    local bad=0 pid state g name ranks restarts seen rc=0 sec
    local -A view=()
    local view_err
    sec="CURVE on, keys ${link[1]:-(default folder)}"
    [[ "$curve" == off ]] && sec="CURVE OFF (plain ZeroMQ)"
    printf 'config %s, run dir %s, router at %s, %s\n' "$cfg" "$run" "$frontend" "$sec"
    pid="$(pid_of supervisor)"
    if alive "$pid" cluster.sh; then state=alive; else state=DEAD bad=1; fi
    printf '  %-14s pid %-8s %s\n' supervisor "${pid:--}" "$state"
    pid="$(pid_of router)"
    if alive "$pid" ifp-router; then state=alive; else state=DEAD bad=1; fi
    router_view 2000 || rc=$?
    seen="answers"
    ((rc > 1)) && seen="NO ANSWER (${view_err:-no answer})" bad=1
    printf '  %-14s pid %-8s %-6s %s, on %s, log %s\n' router "${pid:--}" "$state" "$seen" "$router_host" "$run/router.log"
    for g in "${groups[@]}"; do
        name="${g%% *}"
        pid="$(pid_of "group-$name")"
        ranks=""
        [[ -n "$pid" ]] && ranks="$(pgrep -d, -P "$pid" 2>/dev/null || true)"
        restarts="$(cat "$run/group-$name.restarts" 2>/dev/null || echo 0)"
        if alive "$pid" "--group $name "; then state=alive; else state=DEAD bad=1; fi
        seen="${view[$name]:-down}"
        ((rc > 1)) && seen="unknown"
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
router_host=localhost
agent=(ssh)
mpirun_args=""
frontend=""
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
