# deploy/cluster-watch.sh — what deploy/cluster.sh knows of a running
# deployment beyond its PIDs, and the supervisor that acts on it (sourced by
# cluster.sh; functions only): the routers' view of the groups (ifp status
# asked of one router, or of the first live router that answers), the
# supervisor's loop (restart whatever died, with backoff; kill a group the
# routers do not see alive), and start's wait until the deployment serves.
# Reads cluster.sh's globals (cfg, run, groups, link, the rt_* arrays of the
# routers) and deploy/cluster-procs.sh's functions.
# shellcheck shell=bash disable=SC2154 # the globals named above are cluster.sh's

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

# router_view_of I [TIMEOUT_MS]: router I's view of the groups, from
# `ifp status --json`: fills the caller's associative array `view` (NAME ->
# alive, DEAD (was alive, now not) or down (never registered)) and the
# caller's `view_err` (ifp status's message when it got no answer); returns
# ifp status's exit status: 0 every group alive, 1 some group not, 2 no
# answer (any other failure counts as no answer).
router_view_of() {
    local out rc=0 rec re='"name":"([A-Za-z0-9_-]+)","alive":(true|false),"seen":(true|false)'
    view=()
    view_err=""
    out="$("$ifp_bin" status --router "${rt_front[$1]}" "${link[@]}" --json --timeout-ms "${2:-2000}" 2>&1)" || rc=$?
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

# router_view [TIMEOUT_MS]: the view of the first live router (in config
# order) that answers, as router_view_of; sets the caller's `view_by` to its
# index (empty when none answers: then `view_err` is the last one's answer,
# and the status 2).
router_view() {
    local i rc=2 err=""
    view_by=""
    for i in "${!rt_file[@]}"; do
        rt_alive "$i" || continue
        rc=0
        router_view_of "$i" "${1:-2000}" || rc=$?
        if ((rc <= 1)); then
            view_by="$i"
            return "$rc"
        fi
        err="${view_err:-no answer}"
        ((${#rt_file[@]} == 1)) || err="${rt_label[i]}: $err"
    done
    view=()
    view_err="${err:-no router runs}"
    return 2
}

# judge_groups: used by supervise (it shares its tables).  Restarts a group
# whose processes run but that the routers have not seen alive for longer
# than its grace: $group_grace s after the group's (re)start (or the start
# of the router whose view is taken, or that view's first answer after a
# silence), $dead_grace s once it had been alive.  The view is that of the
# first live router that answers; no verdict while none does.  Each
# decision is logged with its reason; the job is killed (its whole session)
# and watch relaunches it through the usual backoff.
judge_groups() {
    local -A view=()
    local view_err view_by now rc=0 g name pid base started rstarted state grace age reason who
    now="$(date +%s)"
    router_view 2000 || rc=$?
    if ((rc > 1)); then
        # no verdict; watch restarts a router that died
        if ((!silent && ${#rt_file[@]} == 1)); then
            log_line "${rt_label[0]} does not answer (${view_err:-no answer}): no verdict on the groups until it does"
        elif ((!silent)); then
            log_line "no router answers (${view_err:-no answer}): no verdict on the groups until one does"
        fi
        silent=1
        return 0
    fi
    who="${rt_label[view_by]}"
    if ((silent)) || [[ "$view_by" != "$judged_by" ]]; then
        # the groups may have to register again: give them their whole grace
        if ((answered > 0)); then
            if ((silent)); then
                log_line "$who answers again; judging the groups by its view from now on"
            else
                log_line "$who answers first now (${rt_label[judged_by]:-none} did); judging the groups by its view from now on"
            fi
        fi
        silent=0
        answered="$now"
        judged_by="$view_by"
    fi
    rstarted="$(cat "$run/${rt_file[view_by]}.started" 2>/dev/null || echo "$now")"
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
            ((was_alive[$name])) || log_line "group-$name (pid $pid): alive in $who's view"
            last_ok[$name]="$now" was_alive[$name]=1
            continue
        fi
        if ((was_alive[$name])); then grace="$dead_grace"; else grace="$group_grace"; fi
        age=$((now - last_ok[$name]))
        ((age > grace)) || continue
        if ((was_alive[$name])); then
            reason="$who has not seen it alive for ${age}s (now $state) while its processes ran (grace ${grace}s once alive)"
        else
            reason="$who has not seen it alive in the ${age}s since its start while its processes ran (state $state, grace ${grace}s)"
        fi
        why[group-$name]="killed by the supervisor: $reason"
        log_line "group-$name (pid $pid): $reason: killing the job"
        reap "group-$name" "$pid"
    done
}

# The supervisor: every second, restart a router or a group whose process
# died, waiting 1, 2, 4 ... 30 s between restarts of one that keeps dying
# (the wait resets once it has stayed up for a minute); every 2 s, ask the
# routers how they see the groups (judge_groups).
supervise() {
    local -A fails=() next=() why=() since=() last_ok=() was_alive=()
    local g i tick=0 silent=1 answered=0 judged_by=""
    set +e # a failed check must not end the supervisor
    trap 'log_line "supervisor stopping"; exit 0' TERM INT
    log_line "supervisor pid $$ watching $rt_all and groups: ${groups[*]%% *}" \
        "(grace ${group_grace}s after a start, ${dead_grace}s once alive)"
    while :; do
        sleep 1
        for i in "${!rt_file[@]}"; do
            watch "${rt_file[i]}" "$(rt_match "$i")" launch_router "$i"
        done
        for g in "${groups[@]}"; do
            watch "group-${g%% *}" "--group ${g%% *} " launch_group "${g%% *}" "${g##* }"
        done
        ((++tick % 2 == 0)) && judge_groups
    done
}

# wait_ready: tiny requests (to each router in turn) until one is answered
# (a router is up and some group has registered), then until every router
# answers ifp status and the first one's view has every group alive, for at
# most $start_timeout s.  Returns 1 if a router died (its index in
# `dead_router`), 2 on timeout; after the first answer, a timeout is only a
# warning naming what is missing.
wait_ready() {
    local deadline=$((SECONDS + start_timeout)) g i missing quiet rc
    local -A view=()
    local view_err view_by
    dead_router=""
    while :; do
        ((SECONDS < deadline)) || return 2
        for i in "${!rt_file[@]}"; do
            rt_alive "$i" || {
                # shellcheck disable=SC2034 # cmd_start's
                dead_router="$i"
                return 1
            }
        done
        for i in "${!rt_file[@]}"; do
            "$ifp_bin" client --router "${rt_front[i]}" "${link[@]}" --prompt "Hello" -n 1 --temp 0 --mask dense \
                --timeout-ms 2000 --json >/dev/null 2>"$run/probe.err" && break 2
        done
        sleep 0.5
    done
    while :; do
        quiet=()
        for i in "${!rt_file[@]}"; do
            rc=0
            router_view_of "$i" 2000 || rc=$?
            ((rc > 1)) && quiet+=("${rt_label[i]}")
        done
        rc=0
        router_view 2000 || rc=$?
        ((rc == 0 && ${#quiet[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            missing=()
            for g in "${groups[@]}"; do
                [[ "${view[${g%% *}]:-}" == alive ]] || missing+=("${g%% *}")
            done
            ((${#quiet[@]} == 0)) || printf 'warning: not answering yet: %s (see %s status and their logs)\n' \
                "${quiet[*]}" "$launcher"
            ((${#missing[@]} == 0)) || printf 'warning: groups %s does not see alive yet: %s (see %s status and their logs)\n' \
                "${rt_label[${view_by:-0}]}" "${missing[*]}" "$launcher"
            return 0
        fi
        sleep 0.3
    done
}
