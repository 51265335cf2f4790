# deploy/slurm/launch-lib.sh — helpers shared by the cluster launchers,
# deploy/slurm/ifp.sbatch and deploy/k8s/generate.sh (and their test,
# tests/test_deploy_manifests.sh): rewrite a cluster INI for another place
# (endpoints, paths, keys folder), list its keys, take endpoints apart.
# shellcheck shell=bash
# Source it after deploy/lib.sh (it reads the INI with lib.sh's reader,
# _IFP_INI_AWK, through its documented on_key hook); functions only.

# ifp_ini_dump FILE: one line "SECTION<TAB>KEY<TAB>VALUE" per `key = value`
# line of FILE, in file order (SECTION as ifp_ini_get names it: router,
# model, security, "group NAME", "client NAME", ...).  No checks: run
# ifp_ini_groups first.
ifp_ini_dump() {
    LC_ALL=C awk -v strict=0 "$_IFP_INI_AWK"'
        function on_key(s, k, v, line) { printf "%s\t%s\t%s\n", s, k, v }' "$1"
}

# ifp_ini_rewrite FILE HEADER [EDIT...]: prints FILE with the EDITs applied,
# each "SECTION<TAB>KEY<TAB>VALUE": the key's last line in SECTION becomes
# `KEY = VALUE` (its earlier lines go: the last one was the one in force), a
# key the section lacks is added after its last key, a section the file lacks
# is added at the end.  Comments and order are kept; indentation, '\r' and a
# BOM are dropped (the C reader ignores them).  HEADER (lines) goes first, as
# '#' comments.  Returns 1 (message on stderr) if a line would be longer than
# the 198 characters the C reader takes.  No checks of FILE: run
# ifp_ini_groups first.
ifp_ini_rewrite() {
    local file="$1" header="$2" edits=""
    shift 2
    (($# == 0)) || edits="$(printf '%s\n' "$@")"
    IFP_INI_EDITS="$edits" IFP_INI_HEADER="$header" LC_ALL=C awk -v strict=0 '{ raw[NR] = $0 }'"$_IFP_INI_AWK"'
        function on_key(s, k, v, line) {
            sk = s SUBSEP k
            if (sk in at) prev[sk] = prev[sk] " " at[sk]
            at[sk] = line
            last[s] = line
        }
        function put(text) {
            if (length(text) > 198) {
                printf "%s: rewritten line of %d characters (the INI reader takes at most 198): %s\n", FILENAME, length(text), text > "/dev/stderr"
                bad = 1
            }
            print text
        }
        END {
            n = split(ENVIRON["IFP_INI_EDITS"], e, "\n")
            for (i = 1; i <= n; i++) {
                if (e[i] == "") continue
                split(e[i], f, "\t")
                s = f[1]; k = f[2]; v = substr(e[i], length(s) + length(k) + 3)
                sk = s SUBSEP k
                if (sk in at) {
                    repl[at[sk]] = k " = " v
                    m = split(prev[sk], old, " ")
                    for (j = 1; j <= m; j++) drop[old[j]] = 1
                } else if (s in last) {
                    add[last[s]] = add[last[s]] k " = " v "\n"
                } else {
                    if (!(s in newsec)) order[nnew++] = s
                    newsec[s] = newsec[s] k " = " v "\n"
                }
            }
            n = split(ENVIRON["IFP_INI_HEADER"], h, "\n")
            for (i = 1; i <= n; i++) put("# " h[i])
            for (l = 1; l <= NR; l++) {
                if (l in drop) continue
                text = raw[l]
                if (l == 1) sub(/^\357\273\277/, "", text)
                sub(/\r$/, "", text)
                sub(/^[[:space:]]+/, "", text)
                put((l in repl) ? repl[l] : text)
                m = split(add[l], extra, "\n")
                for (j = 1; j < m; j++) put(extra[j])
            }
            for (i = 0; i < nnew; i++) {
                put("")
                put("[" order[i] "]")
                m = split(newsec[order[i]], extra, "\n")
                for (j = 1; j < m; j++) put(extra[j])
            }
            exit bad
        }' "$file"
}

# ifp_abs_path BASE PATH: PATH made absolute from the folder BASE (as the C
# reader takes a relative path: from the config file's folder), normalized
# (no symbolic link resolved).
ifp_abs_path() {
    local p="$2"
    [[ "$p" == /* ]] || p="$1/$p"
    realpath -m -s -- "$p"
}

# ifp_is_z85_key TEXT: exactly 40 characters of Z85 (what the C reader takes
# as a key rather than a file in [client NAME] key).
ifp_is_z85_key() {
    local not_z85='*[!]0-9a-zA-Z.:+=^!/*?&<>()[{}@%$#-]*'
    # shellcheck disable=SC2053 # the right side is a pattern
    [[ ${#1} -eq 40 && $1 != $not_z85 ]]
}

# ifp_tcp_port ENDPOINT: the port of tcp://HOST:PORT (nothing for another
# transport or a port that is not a number).
ifp_tcp_port() {
    local ep="$1" port
    [[ "$ep" == tcp://*:* ]] || return 0
    port="${ep##*:}"
    [[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) && printf '%s\n' "$port"
    return 0
}

# ifp_mpi_if_loopback MPI_IF: true when every item of a group's mpi_if is the
# loopback interface or a 127.x subnet: ranks on different hosts (or pods)
# cannot reach each other there.
ifp_mpi_if_loopback() {
    local item items
    IFS=, read -ra items <<<"$1"
    for item in "${items[@]}"; do
        [[ "$item" == lo || "$item" == 127.* || "$item" == ::1* ]] || return 1
    done
    return 0
}
