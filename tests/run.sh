#!/usr/bin/env bash
# tests/run.sh — install missing build dependencies, then build and run every
# test twice: a RelWithDebInfo build in build/ and an AddressSanitizer +
# UBSan build in build-asan/ (ctest -j, see tests/CMakeLists.txt); build
# what packagers build (Release, -O3, -Werror: programs, libraries and
# benchmarks) in build-release/; and fuzz every decoder of outside bytes
# briefly (tests/fuzz/run.sh, clang + libFuzzer, in build-fuzz/, a target
# per core at a time).  Exits non-zero if any step failed.
#
# usage: tests/run.sh [--no-asan] [--no-fuzz]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/..
source deploy/lib.sh

usage() {
    cat <<'USAGE'
usage: tests/run.sh [--no-asan] [--no-fuzz]

  --no-asan   skip the sanitizer build (build-asan/)
  --no-fuzz   skip the fuzz step (tests/fuzz/run.sh)
  -h, --help  show this help

Installs missing packages from deploy/packages.txt and tests/http/packages.txt
(node, npm, promtool, curl, jq for tests/test_http.sh; apt-get; sudo if not
root), then configures, builds and runs ctest in build/ and build-asan/, and runs
each fuzz target for IFP_FUZZ_SECONDS (default 8) seconds after installing
tests/fuzz/packages.txt (clang, libclang-rt-14-dev).
USAGE
}

asan=1
fuzz=1
for arg in "$@"; do
    case "$arg" in
    --no-asan) asan=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; ifp_die "unknown option: $arg" ;;
    esac
done

jobs="$(ifp_nproc)"
results=() # "step|status" rows for the summary
failed=0
record() { results+=("$1|$2"); [[ "$2" == FAIL ]] && failed=1; return 0; }

# Runs "$@" as step NAME and records PASS/FAIL; returns its status.
run_step() {
    local name="$1"; shift
    ifp_step "$name"
    ifp_info "\$ $*"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    if ((rc == 0)); then
        record "$name ($((SECONDS - t0))s)" PASS
    else
        record "$name (exit $rc)" FAIL
    fi
    return "$rc"
}

# ctest -j N: tests/CMakeLists.txt keeps the cluster tests apart (a lock) and
# the failure-timing ones alone.
ctest_in() { (cd "$1" && ctest --output-on-failure -j "$jobs"); }

# Configure, build and test one build directory; later steps are skipped
# when an earlier one fails.
build_and_test() {
    local dir="$1"; shift
    if run_step "configure $dir" cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
        run_step "build $dir" cmake --build "$dir" -j "$jobs"; then
        run_step "ctest $dir" ctest_in "$dir" || true
    else
        record "ctest $dir" SKIP
    fi
}

ifp_step "ifp tests in $IFP_ROOT ($jobs jobs)"
[[ -n "${OPENBLAS_CORETYPE:-}" ]] && ifp_info "note: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is set in the environment"

if ! run_step "install missing packages" ifp_install_packages; then
    printf '\nRESULT: FAILED: the build dependencies could not be installed\n'
    exit 1
fi

# tests/test_http.sh drives the HTTP API with the official OpenAI client (Node
# and npm), curl and jq, and checks GET /metrics with promtool: without them
# it fails, never skips.
install_http_packages() { (IFP_PACKAGES_FILE="$IFP_ROOT/tests/http/packages.txt" && ifp_install_packages); }
run_step "install HTTP test packages (nodejs, npm, prometheus, curl, jq)" install_http_packages ||
    ifp_info "the HTTP test's packages could not be installed: test_http will fail"

# mpirun refuses to start as root unless told; CI containers run as root.
if ((EUID == 0)); then
    export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
    export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
fi

build_and_test build || true

# The build users and packagers make: -O3 finds warnings -O2 does not.  The
# programs, libraries and benchmarks (the tests are built and run in build/
# and build-asan/).
if run_step "configure build-release" cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DIFP_BUILD_TESTS=OFF; then
    run_step "build build-release" cmake --build build-release -j "$jobs" || true
else
    record "build build-release" SKIP
fi

# Fuzzing (tests/fuzz/): every decoder of bytes from outside, briefly; the
# longer run is `tests/fuzz/run.sh 600`.  Without clang it fails, never skips.
install_fuzz_packages() { (IFP_PACKAGES_FILE="$IFP_ROOT/tests/fuzz/packages.txt" && ifp_install_packages); }
if ((fuzz)); then
    fuzz_secs="${IFP_FUZZ_SECONDS:-8}"
    if run_step "install fuzz packages (clang, libclang-rt-14-dev)" install_fuzz_packages; then
        run_step "fuzz (${fuzz_secs}s per target)" tests/fuzz/run.sh "$fuzz_secs" || true
    else
        ifp_info "clang and the libFuzzer runtime could not be installed: the fuzz targets cannot be built"
        record "fuzz: clang / libclang-rt-14-dev not installable" FAIL
    fi
else
    record "fuzz (--no-fuzz)" SKIP
fi

if ((asan)); then
    # Only sanitized binaries read these; the plain build is done by now.
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    build_and_test build-asan -DIFP_SANITIZE=ON
else
    record "build-asan (--no-asan)" SKIP
fi

printf '\n==================== SUMMARY ====================\n'
for row in "${results[@]}"; do
    printf '  %-6s %s\n' "${row##*|}" "${row%|*}"
done
if ((failed)); then
    printf 'RESULT: FAILED (see the output above for the failing step)\n'
    exit 1
fi
printf 'RESULT: all steps passed\n'
