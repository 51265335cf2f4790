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

ifp_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
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

# The folder of deploy/local.sh's pid files and logs.
ifp_local_run_dir() { printf '%s\n' "${IFP_RUN_DIR:-${TMPDIR:-/tmp}/ifp-local-$(id -un)}"; }

# ---------------------------------------------------------------- INI config
# The cluster config (proto/config.h) read from bash with awk: sections
# [router], [model], [group NAME]; `key = value`; comments start with ; or #
# at the beginning of a line, or with " ;" inside one (as inih reads them).

# Prints the value of KEY in SECTION of FILE (the last one wins), or DEFAULT.
ifp_ini_get() {
    local file="$1" section="$2" key="$3" default="${4:-}" v
    v="$(awk -v want_sec="$section" -v want_key="$key" '
        { sub(/\r$/, "") }
        /^[ \t]*[;#]/ { next }
        { sub(/[ \t]+;.*$/, "") }
        /^[ \t]*\[/ { s = $0; sub(/^[ \t]*\[[ \t]*/, "", s); sub(/[ \t]*\].*$/, "", s); gsub(/[ \t]+/, " ", s); sec = s; next }
        sec == want_sec && index($0, "=") {
            k = substr($0, 1, index($0, "=") - 1); v = substr($0, index($0, "=") + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v)
            if (k == want_key) { val = v; found = 1 }
        }
        END { if (found) print val }' "$file")"
    printf '%s\n' "${v:-$default}"
}

# Prints one line "NAME STAGES" per [group NAME] section of FILE, in file
# order (stages defaults to 1, as in proto/config.c).
ifp_ini_groups() {
    awk '
        { sub(/\r$/, "") }
        /^[ \t]*[;#]/ { next }
        { sub(/[ \t]+;.*$/, "") }
        /^[ \t]*\[/ {
            s = $0; sub(/^[ \t]*\[[ \t]*/, "", s); sub(/[ \t]*\].*$/, "", s); cur = ""
            if (s ~ /^group[ \t]+/) {
                sub(/^group[ \t]+/, "", s); cur = s
                if (!(cur in stages)) { order[n++] = cur; stages[cur] = 1 }
            }
            next
        }
        cur != "" && index($0, "=") {
            k = substr($0, 1, index($0, "=") - 1); v = substr($0, index($0, "=") + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v)
            if (k == "stages") stages[cur] = v
        }
        END { for (i = 0; i < n; i++) print order[i], stages[order[i]] }' "$1"
}
