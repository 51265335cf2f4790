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
# at most 198 characters.  ifp_ini_groups also applies config.c's section
# rules and checks what decides where things run (a group's stages, its
# hosts or hostfile, [router] host), so that it never lists a group of a
# file ifp-router would refuse for those; `ifp-router --check-config` checks
# everything else (the other values, model files).

# The awk program shared by ifp_ini_get and ifp_ini_groups: reads FILE and
# calls on_key(section, key, value, line) for each `key = value` (section is
# "router", "model", "security", "deploy", "group NAME" or "client NAME"); with
# strict=1 it refuses what config.c refuses about sections and lines
# (message FILE:LINE: ... on stderr, exit 1).  The caller's program is
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
    } else if (name ~ /^(group|client)([[:space:]]|$)/) {
        word = substr(name, 1, 1) == "g" ? "group" : "client"
        g = name; sub(/^(group|client)[[:space:]]*/, "", g)
        if (strict && g == "") fail(line, "[" word "]: a " word " needs a name: [" word " NAME]")
        if (strict && length(g) > 63) fail(line, "[" word " " substr(g, 1, 40) "...]: the name has " length(g) " characters; at most 63")
        if (strict && word == "group" && g ~ /\./) fail(line, "[group " g "]: '"'"'.'"'"' is not allowed in a group name: \"G.out\" is the ZeroMQ identity of group G'"'"'s last stage; use letters, digits, '"'"'-'"'"' and '"'"'_'"'"'")
        if (strict && g !~ /^[A-Za-z0-9_-]+$/) fail(line, "[" word " " g "]: only letters, digits, '"'"'-'"'"' and '"'"'_'"'"' are allowed in a " word " name")
        sec = word " " g
        if (strict && (sec in first)) fail(line, "[" sec "]: duplicate section (first at line " first[sec] "); give each " word " one section")
        first[sec] = line
        if (word == "group") groups[ngroups++] = g
    } else {
        if (strict) fail(line, "[" name "]: unknown section; expected [router], [model], [security], [deploy], [http], [group NAME] or [client NAME]")
        sec = "?"
    }
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
    if (strict && sec == "router" && key == "host") check_hosts(sec, key, value, NR, 0)
    on_key(sec, key, value, NR)
}
function finish() {
    if (failed) exit 1
    close_section()
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
        function on_key(s, k, v, line,   g) {
            if (s == "model" && k == "model" && v != "") has_model = 1
            if (s !~ /^group / || k != "stages") return
            if (v !~ /^[+-]?[0-9]+$/ || v + 0 < 1 || v + 0 > 16)
                fail(line, "[" s "] stages: \"" v "\": expected an integer in 1..16")
            g = substr(s, 7); stages[g] = v + 0
        }
        END {
            finish()
            for (i = 0; i < ngroups; i++) print groups[i], (groups[i] in stages ? stages[groups[i]] : 1)
        }' "$1"
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
