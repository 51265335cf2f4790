# deploy/cluster-procs.sh — the processes of a deployment, for
# deploy/cluster.sh (sourced by it; functions only): finding them (pid files
# in the run dir, /proc), starting them on their hosts (each router, each
# group's mpirun job, in a session of its own), stopping them and reaping
# what they leave on other hosts.  A process is known by its FILE: `router`
# (the one router of a config without [router NAME]), `router-NAME`,
# `group-NAME` or `supervisor`; $run/FILE.pid, FILE.log, FILE.started,
# FILE.restarts.  Reads cluster.sh's globals: cfg, run, agent, the rt_*
# arrays of the routers (read_launch), mpirun_bin, mpirun_args and the
# binaries.
# shellcheck shell=bash disable=SC2154 # the globals named above are cluster.sh's

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

# rt_index FILE: the index in rt_* of the router whose file is FILE
# (router or router-NAME), or nothing (a router the config no longer lists).
rt_index() {
    local i
    for i in "${!rt_file[@]}"; do
        [[ "${rt_file[i]}" == "$1" ]] && echo "$i" && return 0
    done
    return 0
}
# rt_host_of FILE: where the router of FILE runs (localhost when unknown).
rt_host_of() {
    local i
    i="$(rt_index "$1")"
    if [[ -n "$i" ]]; then echo "${rt_host[i]}"; else echo localhost; fi
}
# rt_pattern FILE: the router of FILE's command line as pkill -f matches it
# on its host.
rt_pattern() {
    if [[ "$1" == router ]]; then printf '%s\n' "ifp-router --config $cfg( |$)"; else
        printf '%s\n' "ifp-router --config $cfg --name ${1#router-}( |$)"
    fi
}
# rt_match I: what the command line of router I's local process (the
# router, or the agent that runs it elsewhere) contains (see alive).
rt_match() {
    if [[ -z "${rt_name[$1]}" ]]; then echo ifp-router; else echo "--name ${rt_name[$1]} "; fi
}
# rt_alive I: router I's local process runs.
rt_alive() { alive "$(pid_of "${rt_file[$1]}")" "$(rt_match "$1")"; }

# reap FILE PID: KILL the session PID leads (FILE's job, run from here) and
# what it left on other hosts (a router, or the ranks of group NAME).
reap() {
    local file="$1" pid="$2" h
    [[ -n "$pid" ]] && kill_session "$pid"
    if [[ "$file" == router || "$file" == router-* ]]; then
        signal_remote "$(rt_host_of "$file")" KILL "$(rt_pattern "$file")"
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

# launch_router I: router I of rt_* (ifp-router --config CFG [--name NAME])
# on its host, in a session of its own, its output in $run/FILE.log.
launch_router() {
    local i="$1" file="${rt_file[$1]}" host="${rt_host[$1]}" env=(IFP_RUN_DIR="$run" OPENBLAS_NUM_THREADS=1)
    local args=(--config "$cfg")
    [[ -n "${rt_name[i]}" ]] && args+=(--name "${rt_name[i]}")
    [[ -n "${IFP_KEYS:-}" ]] && env+=(IFP_KEYS="$IFP_KEYS")
    log_line "starting on $host: $router_bin ${args[*]}" >>"$run/$file.log"
    if is_local "$host"; then
        env "${env[@]}" setsid "$router_bin" "${args[@]}" >>"$run/$file.log" 2>&1 </dev/null &
    else
        setsid "${agent[@]}" "$host" "$(printf '%q ' env "${env[@]}" "$router_bin" "${args[@]}")" \
            >>"$run/$file.log" 2>&1 </dev/null &
    fi
    echo $! >"$run/$file.pid"
    date +%s >"$run/$file.started"
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
        [[ "$name" == router || "$name" == router-* ]] && signal_remote "$(rt_host_of "$name")" TERM "$(rt_pattern "$name")"
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
