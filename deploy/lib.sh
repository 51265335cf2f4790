# deploy/lib.sh — helpers shared by tests/run.sh and deploy/quickstart.sh.
# shellcheck shell=bash
# Source it (bash); it defines functions only and changes no settings.

# Repository root: the parent of the folder holding this file.
IFP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IFP_PACKAGES_FILE="${IFP_PACKAGES_FILE:-$IFP_ROOT/deploy/packages.txt}"

ifp_step() { printf '\n==> %s\n' "$*"; }
ifp_info() { printf '    %s\n' "$*"; }
ifp_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Prints the package names in FILE (default deploy/packages.txt), one a line,
# without comments or blank lines.
ifp_packages() {
    local file="${1:-$IFP_PACKAGES_FILE}" line
    [[ -r "$file" ]] || ifp_die "package list not found: $file"
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line%%#*}"
        line="${line//[[:space:]]/}"
        [[ -n "$line" ]] && printf '%s\n' "$line"
    done <"$file"
}

# ifp_pkg_installed NAME: NAME is installed, or is a virtual package an
# installed one provides (NodeSource's nodejs provides npm and conflicts with
# Debian's npm package: asking apt for npm then would fail).
ifp_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
    dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | awk -F'|' -v p="$1" '
        $1 == "install ok installed" { n = split($2, a, /, */)
            for (i = 1; i <= n; i++) { sub(/ .*/, "", a[i]); if (a[i] == p) found = 1 } }
        END { exit !found }'
}

# Installs whichever packages of $IFP_PACKAGES_FILE are missing: one
# apt-get update, then one apt-get install.  Uses sudo only when not root.
ifp_install_packages() {
    local pkgs=() missing=() pkg
    [[ -r "$IFP_PACKAGES_FILE" ]] || ifp_die "package list not found: $IFP_PACKAGES_FILE"
    mapfile -t pkgs < <(ifp_packages "$IFP_PACKAGES_FILE")
    if ! command -v dpkg-query >/dev/null 2>&1; then
        ifp_info "dpkg-query not found (not a Debian-based system): skipping the package check."
        ifp_info "Install the equivalents of: ${pkgs[*]}"
        return 0
    fi
    for pkg in "${pkgs[@]}"; do
        ifp_pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        ifp_info "all ${#pkgs[@]} packages from ${IFP_PACKAGES_FILE#"$IFP_ROOT"/} are installed"
        return 0
    fi
    ifp_info "missing: ${missing[*]}"

    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || ifp_die "not root and sudo not found; install as root: apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    ifp_info "running: ${sudo[*]:+${sudo[*]} }apt-get update"
    "${sudo[@]}" apt-get update || ifp_die "apt-get update failed"
    ifp_info "running: ${sudo[*]:+${sudo[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
        ifp_die "apt-get install failed"

    for pkg in "${missing[@]}"; do
        ifp_pkg_installed "$pkg" || ifp_die "package $pkg is still not installed"
    done
}

# OpenBLAS picks its kernels by probing the CPU; in some VMs and containers
# the probe fails and it falls back to slow generic kernels.  If the caller
# has not chosen, pick from /proc/cpuinfo's flags.  For deploy scripts only:
# the test runner keeps OpenBLAS's own choice.
ifp_set_openblas_coretype() {
    if [[ -n "${OPENBLAS_CORETYPE:-}" ]]; then
        ifp_info "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (from the environment)"
        return 0
    fi
    local flags=""
    [[ -r /proc/cpuinfo ]] && flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
    if grep -qw avx512f <<<"$flags"; then
        export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 <<<"$flags"; then
        export OPENBLAS_CORETYPE=Haswell
    else
        ifp_info "OPENBLAS_CORETYPE left unset (no avx2/avx512f flag found)"
        return 0
    fi
    ifp_info "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (from /proc/cpuinfo)"
}

ifp_nproc() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2; }

# The folder of deploy/local.sh's pid files, logs and (by default) keys: the
# same default as the C side's keys folder (security/keys.c), so that a bare
# `ifp client` finds the local cluster's keys in its keys/ subfolder.
# ifp_mpi_bind_addrs MPI_IF: "IPV4 IPV6", this host's addresses on the
# first interface or subnet of a group's mpi_if ("lo" -> 127.0.0.1 ::1;
# an interface -> its addresses; a CIDR -> this host's IPv4 address in it),
# for the wildcard-bind shim (security/bindaddr.c); IPv4 "-" where none is
# found; IPv6 ::1 unless the interface has a global IPv6 address.
ifp_mpi_bind_addrs() {
    local first="${1%%,*}" v4="" v6="" net bits
    if [[ "$first" == lo ]]; then
        v4=127.0.0.1 v6=::1
    elif [[ "$first" == */* ]]; then
        net="${first%/*}" bits="${first#*/}"
        v4="$(ip -o -4 addr show 2>/dev/null | awk -v net="$net" -v bits="$bits" '
            function ip2n(s,   a) { split(s, a, "."); return ((a[1] * 256 + a[2]) * 256 + a[3]) * 256 + a[4] }
            { split($4, x, "/"); m = 2 ^ (32 - bits)
              if (int(ip2n(x[1]) / m) == int(ip2n(net) / m)) { print x[1]; exit } }')"
    else
        v4="$(ip -o -4 addr show dev "$first" 2>/dev/null | awk '{ split($4, x, "/"); print x[1]; exit }')"
        v6="$(ip -o -6 addr show dev "$first" scope global 2>/dev/null | awk '{ split($4, x, "/"); print x[1]; exit }')"
    fi
    printf '%s %s\n' "${v4:--}" "${v6:-::1}"
}

# ifp_bench_args SCRIPT LAST ARGS...: the arguments of a bench/run_*.sh
# script: sets `quick` (1 with --quick); -h/--help prints the script's
# header (lines 2..LAST) and exits; anything else is an error.
ifp_bench_args() {
    local script="$1" last="$2" arg
    shift 2
    quick=0
    for arg in "$@"; do
        case "$arg" in
        --quick) quick=1 ;;
        -h | --help) sed -n "2,${last}p" "$script" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) ifp_die "$script: unknown argument '$arg' (usage: $script [--quick])" ;;
        esac
    done
}

ifp_local_run_dir() { printf '%s\n' "${IFP_RUN_DIR:-/tmp/ifp-local-${USER:-root}}"; }

# ---------------------------------------------------------------- INI config
# The cluster config (config/config.h) read from bash with awk, by the same
# rules as the C reader (config/ini_reader.h): a '\r' before the newline and
# a UTF-8 BOM on line 1 are dropped, indentation is ignored, blank lines and
# lines starting with ; or # are comments, " ;" starts a comment inside a
# line, `[NAME]` starts a section (only a comment may follow its ']'), any
# other line is `key = value` or `key: value` (split at the first = or :),
# at most 198 characters.  ifp_ini_groups and ifp_ini_routers also apply
# config.c's section rules and check what decides where things run (a
# group's stages, its hosts or hostfile; the routers: [router NAME]
# sections, each router's host, its endpoints and addresses as
# finish_routers checks them), so that they never list a file ifp-router
# would refuse for those; `ifp-router --check-config` checks everything
# else (the other values, model files).

# The awk program shared by the functions below: reads FILE and calls
# on_key(section, key, value, line) for each `key = value` (section is
# "router", "router NAME", "model", "security", "deploy", "http",
# "group NAME" or "client NAME"); with strict=1 it refuses what config.c
# refuses about sections and lines (message FILE:LINE: ... on stderr, exit
# 1).  resolve_routers() lists the routers with their values in force
# (rname, rfe, rbe, rbc, rhost, rhttp [0..nr-1]).  The caller's program is
# appended (on_key and the END rule's output).
_IFP_INI_AWK='
function fail(line, msg) {
    if (!failed) printf "%s:%d: %s\n", FILENAME, line, msg > "/dev/stderr"
    failed = 1
    exit 1
}
function trim(s) { sub(/^[[:space:]]+/, "", s); sub(/[[:space:]]+$/, "", s); return s }
# hosts: HOST or HOST,HOST,... (each 1..255 of A-Za-z0-9._:- not starting
# with -), at most 16: config_table.c'"'"'s HOST and HOSTLIST kinds.
function check_hosts(s, k, v, line, list,   n, i, item, what) {
    what = "[" s "] " k ": \"" v "\": "
    if (v == "") fail(line, "[" s "] " k ": empty value; expected " (list ? "one host or one per stage" : "a host"))
    n = list ? split(v, item, ",") : split(v, item, "\n")
    if (n > 16) fail(line, "[" s "] " k ": more than 16 hosts; a group has at most 16 stages")
    for (i = 1; i <= n; i++) {
        if (item[i] == "") fail(line, what "an empty item")
        if (length(item[i]) > 255) fail(line, "[" s "] " k ": a host of " length(item[i]) " characters; at most 255")
        if (item[i] ~ /^-/) fail(line, what "a host cannot start with '"'"'-'"'"' (it would be read as an option)")
        if (item[i] !~ /^[A-Za-z0-9._:-]+$/) fail(line, what "only A-Z a-z 0-9 . _ : - are allowed in a host")
    }
    return n
}
function close_section() {
    if (!strict || sec == "") return
    if (sec ~ /^router /) {
        if (nkeys == 0) fail(secline, "[" sec "]: empty section; a router needs `frontend =` and `backend =`")
        if (!((rn_of_sec, "frontend") in rval) || !((rn_of_sec, "backend") in rval))
            fail(secline, "[" sec "] " (((rn_of_sec, "frontend") in rval) ? "backend" : "frontend") ": required (each router of several binds its own frontend and backend)")
        return
    }
    if (nkeys == 0) {
        if (sec == "router" || sec == "security" || sec == "deploy") fail(secline, "[" sec "]: empty section; set a key in it or remove it (every [" sec "] key has a default)")
        if (sec == "model") fail(secline, "[model]: empty section; it needs `model = PATH.gguf`")
        if (sec ~ /^client /) fail(secline, "[" sec "]: empty section; a client needs `key = ` its CURVE public key (40 characters of Z85) or a file holding one")
        fail(secline, "[" sec "]: empty section; a group needs at least one key (the minimal group is `stages = 1`)")
    }
    if (sec ~ /^client / && !has_key) fail(secline, "[" sec "] key: required (the client'"'"'s CURVE public key: 40 characters of Z85, or a file holding one)")
    if (sec ~ /^group / && hosts_line && hostfile_line) {
        if (hosts_line > hostfile_line) fail(hosts_line, "[" sec "] hosts: hostfile is set too (line " hostfile_line "); give one of them: hosts = HOST[,HOST...] or hostfile = PATH")
        fail(hostfile_line, "[" sec "] hostfile: hosts is set too (line " hosts_line "); give one of them: hosts = HOST[,HOST...] or hostfile = PATH")
    }
    if (sec ~ /^group / && n_hosts != 1 && n_hosts != sec_stages) fail(hosts_line, "[" sec "] hosts: " n_hosts " hosts for " sec_stages " stage" (sec_stages == 1 ? "" : "s") ": give one host, or one per stage")
}
function open_section(name, line,   g, word) {
    close_section()
    if (name == "router" || name == "model" || name == "security" || name == "deploy" || name == "http") {
        if (strict && (name in first)) fail(line, "[" name "]: duplicate section (first at line " first[name] "); merge the two")
        first[name] = line
        sec = name
    } else if (name ~ /^(group|client)([[:space:]]|$)/ || name ~ /^router[[:space:]]/) {
        word = substr(name, 1, 1) == "g" ? "group" : substr(name, 1, 1) == "c" ? "client" : "router"
        g = name; sub(/^(group|client|router)[[:space:]]*/, "", g)
        if (strict && g == "") fail(line, "[" word "]: a " word " needs a name: [" word " NAME]")
        if (strict && length(g) > 63) fail(line, "[" word " " substr(g, 1, 40) "...]: the name has " length(g) " characters; at most 63")
        if (strict && word == "group" && g ~ /\./) fail(line, "[group " g "]: '"'"'.'"'"' is not allowed in a group name: \"G.out\" is the ZeroMQ identity of group G'"'"'s last stage; use letters, digits, '"'"'-'"'"' and '"'"'_'"'"'")
        if (strict && word == "router" && match(g, /[^A-Za-z0-9_-]/)) fail(line, "[router " g "]: '"'"'" substr(g, RSTART, 1) "'"'"' is not allowed in a router name; use 1..63 letters, digits, '"'"'-'"'"' and '"'"'_'"'"'")
        if (strict && g !~ /^[A-Za-z0-9_-]+$/) fail(line, "[" word " " g "]: only letters, digits, '"'"'-'"'"' and '"'"'_'"'"' are allowed in a " word " name")
        sec = word " " g
        if (strict && (sec in first)) fail(line, "[" sec "]: duplicate section (first at line " first[sec] "); give each " word " one section")
        if (word == "group") groups[ngroups++] = g
        if (word == "router" && !(sec in first)) { routers[nrouters++] = g; rhdr[g] = line }
        first[sec] = line
    } else {
        if (strict) fail(line, "[" name "]: unknown section; expected [router], [router NAME], [model], [security], [deploy], [http], [group NAME] or [client NAME]")
        sec = "?"
    }
    rn_of_sec = sec == "router" ? "" : sec ~ /^router / ? substr(sec, 8) : "?"
    secline = line
    nkeys = 0
    has_key = 0
    hosts_line = hostfile_line = 0
    n_hosts = sec_stages = 1
}
{
    line = $0
    if (NR == 1) sub(/^\357\273\277/, "", line)
    sub(/\r$/, "", line)
    sub(/^[[:space:]]+/, "", line)
    if (strict && length(line) > 198) fail(NR, "line of " length(line) " characters; the INI reader takes at most 198")
    c = substr(line, 1, 1)
    if (line == "" || c == ";" || c == "#") next
    cm = match(line, /[[:space:]];/)
    if (c == "[") {
        rb = index(line, "]")
        if (rb == 0 || (cm && cm < rb)) { if (strict) fail(NR, "syntax error: a section header needs a closing '"'"']'"'"'"); next }
        if (strict && substr(line, rb + 1) !~ /^[[:space:]]*(;.*)?$/) fail(NR, "syntax error: only a '"'"';'"'"' comment may follow a section header'"'"'s '"'"']'"'"'")
        open_section(trim(substr(line, 2, rb - 2)), NR)
        next
    }
    eq = match(line, /[=:]/)
    if (eq == 0 || (cm && cm < eq)) { if (strict) fail(NR, "syntax error: expected `key = value`, a [section] header or a comment"); next }
    if (sec == "") { if (strict) fail(NR, trim(substr(line, 1, eq - 1)) ": a key before the first section header"); next }
    value = substr(line, eq + 1)
    sub(/[[:space:]];.*$/, "", value)
    key = trim(substr(line, 1, eq - 1))
    nkeys++
    value = trim(value)
    if (key == "key") has_key = 1
    if (sec ~ /^group /) {
        if (key == "stages") sec_stages = value + 0
        if (key == "hosts") { hosts_line = NR; n_hosts = strict ? check_hosts(sec, key, value, NR, 1) : 1 }
        if (key == "hostfile") hostfile_line = NR
    }
    if (strict && (sec == "router" || sec ~ /^router /) && key == "host") check_hosts(sec, key, value, NR, 0)
    # the routers'"'"' keys (the last one given wins; a named router'"'"'s
    # required ones count only with a value)
    if (rn_of_sec != "?" && (key == "frontend" || key == "backend" || key == "backend_connect" || key == "host" || (rn_of_sec != "" && key == "http_listen"))) {
        if (value != "" || rn_of_sec == "") { rval[rn_of_sec, key] = value; rline[rn_of_sec, key] = NR }
    }
    if (sec == "http" && key == "listen") http_listen = value
    if (sec == "model" && key == "model" && value != "") has_model = 1
    if (strict && sec ~ /^group / && key == "stages" && (value !~ /^[+-]?[0-9]+$/ || value + 0 < 1 || value + 0 > 16))
        fail(NR, "[" sec "] stages: \"" value "\": expected an integer in 1..16")
    on_key(sec, key, value, NR)
}
# rget(NAME, KEY, DEFAULT): a router key as given ("" = the unnamed [router]).
function rget(n, k, d) { return ((n, k) in rval) ? rval[n, k] : d }
function wildcard(ep,   a) {
    if (substr(ep, 1, 6) != "tcp://") return 0
    a = substr(ep, 7); sub(/:[^:]*$/, "", a)
    return a == "*" || a == "0.0.0.0" || a == "[::]"
}
# The routers with the values in force: [router NAME] in file order, or
# [router] itself (config.c finish_routers); host from [router] host,
# http_listen from [http] listen when not given.
function resolve_routers(   i, n) {
    nr = 0
    if (nrouters == 0) {
        rname[0] = ""; rfe[0] = rget("", "frontend", "tcp://127.0.0.1:5555"); rbe[0] = rget("", "backend", "tcp://127.0.0.1:5556")
        rbc[0] = rget("", "backend_connect", ""); rhost[0] = rget("", "host", "localhost")
        rhttp[0] = http_listen != "" ? http_listen : "127.0.0.1:8080"; rfirst[0] = ("router" in first) ? first["router"] : 0
        nr = 1
        return
    }
    for (i = 0; i < nrouters; i++) {
        n = routers[i]
        rname[i] = n; rfe[i] = rget(n, "frontend", ""); rbe[i] = rget(n, "backend", ""); rbc[i] = rget(n, "backend_connect", "")
        rhost[i] = rget(n, "host", rget("", "host", "localhost"))
        rhttp[i] = rget(n, "http_listen", http_listen != "" ? http_listen : "127.0.0.1:8080"); rfirst[i] = rhdr[n]
    }
    nr = nrouters
}
function rline_of(i, k) { return ((rname[i], k) in rline) ? rline[rname[i], k] : 0 }
# config.c'"'"'s finish_routers: [router] without endpoints when routers are
# named; each router binds two endpoints groups can reach; two routers on
# one host share no address.
function check_routers(   i, j, x, y, k, n, hdr, fl, bl, a, b, what) {
    if (nrouters > 0) {
        split("frontend backend backend_connect", k, " ")
        for (x = 1; x <= 3; x++)
            if (("", k[x]) in rline) fail(rline["", k[x]], "[router] " k[x] ": the routers are [router NAME] sections (first at line " rhdr[routers[0]] "): set " k[x] " in each of them")
    }
    split("frontend backend http_listen", what, " ")
    for (i = 0; i < nr; i++) {
        hdr = "[router" (rname[i] == "" ? "" : " " rname[i]) "]"
        fl = rline_of(i, "frontend"); bl = rline_of(i, "backend")
        if (rfe[i] == rbe[i])
            fail(bl >= fl ? bl : fl, hdr " " (bl >= fl ? "backend" : "frontend") ": the same endpoint as " (bl >= fl ? "frontend" : "backend") " (" ((bl >= fl ? fl : bl) > 0 ? "line " (bl >= fl ? fl : bl) : "the default") "); the router binds both")
        if (rbc[i] != "" && wildcard(rbc[i]))
            fail(rline_of(i, "backend_connect"), hdr " backend_connect: " rbc[i] " is a wildcard address (every interface); groups connect to it: give the router host'"'"'s name or address")
        if (rbc[i] == "" && wildcard(rbe[i]))
            fail(bl, hdr " backend: " rbe[i] " binds every interface; groups need a routable address to connect to: set backend_connect = tcp://ROUTER_HOST:PORT")
        for (j = 0; j < i; j++) {
            if (rhost[j] != rhost[i]) continue
            a[1] = rfe[i]; a[2] = rbe[i]; a[3] = rhttp[i]; b[1] = rfe[j]; b[2] = rbe[j]; b[3] = rhttp[j]
            for (x = 1; x <= 3; x++)
                for (y = 1; y <= 3; y++)
                    if (a[x] == b[y] && a[x] != "off")
                        fail(rline_of(i, what[x]) ? rline_of(i, what[x]) : rfirst[i], hdr " " what[x] ": " a[x] " is [router " rname[j] "]'"'"'s " what[y] " too, on the same host " rhost[i] "; give each router its own addresses")
        }
    }
}
function finish() {
    if (failed) exit 1
    close_section()
    resolve_routers()
    if (strict) check_routers()
    if (strict && !("model" in first)) fail(NR, "[model]: missing at the end of the file; add a [model] section with `model = PATH.gguf`")
    if (strict && !has_model) fail(first["model"], "[model] model: missing; [model] needs `model = PATH.gguf`")
    if (strict && ngroups == 0) fail(NR, "[group NAME]: none at the end of the file; a cluster needs at least one group")
}
'

# Prints the value of KEY in SECTION of FILE (the last one wins), or DEFAULT.
# SECTION is router, model, security, deploy, "group NAME" or "client NAME";
# e.g. ifp_ini_get FILE security curve on, ifp_ini_get FILE deploy agent ssh.
# The defaults are the caller's (those of config/config_table.c when it
# wants the router's view).
ifp_ini_get() {
    local file="$1" section="$2" key="$3" default="${4:-}" v
    v="$(LC_ALL=C awk -v strict=0 -v want_sec="$section" -v want_key="$key" "$_IFP_INI_AWK"'
        function on_key(s, k, v, line) { if (s == want_sec && k == want_key) { val = v; found = 1 } }
        END { if (found) print val }' "$file")"
    printf '%s\n' "${v:-$default}"
}

# Prints the value of KEY in [group NAME] of FILE, or DEFAULT; e.g.
# ifp_ini_group_get FILE g0 mpi_if lo, ifp_ini_group_get FILE g0 hosts localhost.
ifp_ini_group_get() { ifp_ini_get "$1" "group $2" "$3" "${4:-}"; }

# Prints one line "NAME STAGES" per [group NAME] section of FILE, in file
# order (stages defaults to 1, as in config/config_table.c); [client NAME]
# sections are not groups.  A file whose sections config.c would refuse
# (empty, duplicate, unknown, a bad group or client name, a client without
# key, a bad stages value, a bad host or hosts value, hosts that fit
# neither 1 nor stages, hosts with hostfile, a syntax error) prints nothing
# but the error (FILE:LINE: ...) on stderr, and the function returns 1.
ifp_ini_groups() {
    LC_ALL=C awk -v strict=1 "$_IFP_INI_AWK"'
        function on_key(s, k, v, line) { if (s ~ /^group / && k == "stages") stages[substr(s, 7)] = v + 0 }
        END {
            finish()
            for (i = 0; i < ngroups; i++) print groups[i], (groups[i] in stages ? stages[groups[i]] : 1)
        }' "$1"
}

# ifp_ini_routers FILE [lax]: one line per router of FILE, in file order:
# NAME<TAB>FRONTEND<TAB>BACKEND<TAB>BACKEND_CONNECT<TAB>HOST<TAB>HTTP_LISTEN,
# the values in force ([router NAME] sections, or NAME "" for [router]
# itself when there is none; host from [router] host, http_listen from
# [http] listen when not given; BACKEND_CONNECT "" when not given).  Split
# a line with ifp_router_fields.  A file ifp_ini_groups would refuse, or
# whose routers config.c would refuse, prints only the error, and the
# function returns 1; with `lax`, nothing is checked (what stop needs of a
# file that may have become wrong).
ifp_ini_routers() {
    local strict=1
    [[ "${2:-}" == lax ]] && strict=0
    LC_ALL=C awk -v strict="$strict" "$_IFP_INI_AWK"'
        function on_key(s, k, v, line) { }
        END {
            finish()
            for (i = 0; i < nr; i++) printf "%s\t%s\t%s\t%s\t%s\t%s\n", rname[i], rfe[i], rbe[i], rbc[i], rhost[i], rhttp[i]
        }' "$1"
}

# ifp_router_fields LINE: a line of ifp_ini_routers as the array `rf`
# (name, frontend, backend, backend_connect, host, http_listen; empty
# fields kept).
ifp_router_fields() {
    rf=()
    mapfile -t -d $'\t' rf < <(printf '%s' "$1")
    while ((${#rf[@]} < 6)); do rf+=(""); done
}

# ifp_free_port [PREFERRED...]: sets `port` to a TCP port of 127.0.0.1 that
# nothing uses (ss) and no earlier call of this shell returned: the
# preferred ones first, then random ones in 20000-59999.  Returns 1 if none
# was found.
_ifp_ports_taken=" "
ifp_free_port() {
    local p
    for p in "$@" $(shuf -i 20000-59999 -n 50); do
        [[ "$_ifp_ports_taken" == *" $p "* ]] && continue
        [[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]] || continue
        _ifp_ports_taken+="$p "
        port="$p"
        return 0
    done
    return 1
}
