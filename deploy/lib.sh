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
