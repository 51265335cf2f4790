#!/usr/bin/env bash
# tests/fuzz/run.sh — build the libFuzzer targets (clang, ASan + UBSan) in
# build-fuzz/ and run each for SECONDS from its committed seed corpus, one
# per core at a time (IFP_FUZZ_JOBS).
#
# usage: tests/fuzz/run.sh SECONDS [TARGET...]
#        tests/fuzz/run.sh --gen-seeds
#        tests/fuzz/run.sh --list
#
# New corpus entries go to a temporary folder (removed afterwards unless
# IFP_FUZZ_KEEP=1), never to tests/fuzz/corpus/.  Any crash, leak, timeout,
# out-of-memory or UBSan report fails the run; the input that caused it is
# kept in build-fuzz/artifacts/TARGET/ and the command to reproduce it is
# printed.  Exits non-zero if any target failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR/../..
source "$here/../../deploy/lib.sh"
cd "$IFP_ROOT"

build="${IFP_FUZZ_BUILD:-$IFP_ROOT/build-fuzz}"
corpus_root="$here/corpus"

usage() {
    cat <<'USAGE'
usage: tests/fuzz/run.sh SECONDS [TARGET...]   build, then fuzz each target (all by default) for SECONDS
       tests/fuzz/run.sh --gen-seeds           build, then regenerate tests/fuzz/corpus/ with gen_seeds
       tests/fuzz/run.sh --list                build, then list the targets

Environment: IFP_FUZZ_BUILD (default build-fuzz/), IFP_FUZZ_KEEP=1 keeps the
new corpus entries, IFP_FUZZ_JOBS targets at a time (default: one per core),
CC (default clang).
USAGE
}

# Installs clang + the libFuzzer runtime if missing (tests/fuzz/packages.txt)
# and checks that clang can link a fuzzer.
need_clang() {
    IFP_PACKAGES_FILE="$here/packages.txt" ifp_install_packages
    local cc="${CC:-clang}" probe
    command -v "$cc" >/dev/null 2>&1 || ifp_die "$cc not found (install: ${here#"$IFP_ROOT"/}/packages.txt)"
    probe="$(mktemp -d)"
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
        >"$probe/p.c"
    if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
        cat "$probe/err" >&2
        rm -rf "$probe"
        ifp_die "$cc cannot link a libFuzzer target (is libclang-rt-14-dev installed?)"
    fi
    rm -rf "$probe"
}

build_targets() {
    need_clang
    ifp_step "build fuzz targets in ${build#"$IFP_ROOT"/}"
    mkdir -p "$build"
    cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="${CC:-clang}" >"$build/configure.log" 2>&1 ||
        { cat "$build/configure.log" >&2; ifp_die "configure failed"; }
    cmake --build "$build" -j "$(ifp_nproc)" >"$build/build.log" 2>&1 ||
        { tail -n 60 "$build/build.log" >&2; ifp_die "build failed (log: $build/build.log)"; }
    ifp_info "built $(wc -l <"$build/fuzz_targets.txt") targets (log: ${build#"$IFP_ROOT"/}/build.log)"
}

# The last "cov: N ft: N" of a libFuzzer log.
last_stat() { grep -oE "$1: [0-9]+" "$2" | tail -n 1 | grep -oE '[0-9]+' || echo "?"; }
final_stat() { grep -oE "^stat::$1: *[0-9]+" "$2" | grep -oE '[0-9]+$' || echo "?"; }

# run_target NAME MAX_LEN RSS_MB TIMEOUT SECONDS ROWFILE: one fuzzing
# session; writes its summary row to ROWFILE; returns non-zero on any finding.
run_target() {
    local name="$1" max_len="$2" rss="$3" tmo="$4" secs="$5" rowfile="$6"
    local seeds="$corpus_root/$name" new artifacts="$build/artifacts/$name" log="$build/logs/$name.log"
    new="$(mktemp -d "${TMPDIR:-/tmp}/ifp-fuzz-$name.XXXXXX")"
    mkdir -p "$artifacts" "$build/logs"
    [[ -d "$seeds" ]] || { ifp_info "note: no seed corpus $seeds (starting empty)"; seeds=""; }
    ((tmo > secs)) && tmo="$secs"
    local dict=()
    [[ -f "$here/dict/$name.dict" ]] && dict=(-dict="$here/dict/$name.dict")
    ifp_step "fuzz $name for ${secs}s (max_len $max_len, rss ${rss} MB, ${tmo}s per input)"
    local rc=0 t0=$SECONDS budget=$((secs > 1 ? secs - 1 : 1))
    # libFuzzer stops at the first check after max_total_time has passed
    # (about a second later), hence secs - 1; the outer timeout only catches
    # a target that does not stop (a hang outside an input).
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        timeout -k 5 $((secs + 10)) \
        "$build/$name" -max_total_time="$budget" -max_len="$max_len" -rss_limit_mb="$rss" -timeout="$tmo" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$new" ${seeds:+"$seeds"} \
        >"$log" 2>&1 || rc=$?
    local execs cov ft units
    execs="$(final_stat number_of_executed_units "$log")"
    units="$(final_stat new_units_added "$log")"
    cov="$(last_stat cov "$log")"
    ft="$(last_stat ft "$log")"
    local status=PASS
    if ((rc != 0)) || grep -qE "^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error:" "$log"; then
        status=FAIL
        printf '\n---- %s: FAILED (exit %d); the end of %s:\n' "$name" "$rc" "${log#"$IFP_ROOT"/}"
        grep -nE "ERROR|runtime error|check failed|SUMMARY|^    #[0-9]+ " "$log" | head -n 40 || true
        local art
        art="$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //' || true)"
        if [[ -n "$art" ]]; then
            printf '  crashing input: %s\n' "$art"
            printf '  reproduce:      %s %s\n' "${build#"$IFP_ROOT"/}/$name" "$art"
        elif ((rc == 124 || rc == 137)); then
            printf '  the target did not stop by itself within %ss\n' "$((secs + 10))"
        fi
    fi
    printf '    %s: %s executions, cov %s, ft %s, %s new units in %ss\n' "$name" "$execs" "$cov" "$ft" "$units" \
        "$((SECONDS - t0))"
    printf '%-6s %-20s %10s %7s %7s %6s\n' "$status" "$name" "$execs" "$cov" "$ft" "$units" >"$rowfile"
    if [[ "${IFP_FUZZ_KEEP:-0}" == 1 ]]; then
        ifp_info "new corpus entries kept in $new"
    else
        rm -rf "$new"
    fi
    [[ "$status" == PASS ]]
}

case "${1:-}" in
-h | --help) usage; exit 0 ;;
--list) build_targets; cut -d' ' -f1 "$build/fuzz_targets.txt"; exit 0 ;;
--gen-seeds)
    build_targets
    rm -rf "$corpus_root"
    "$build/gen_seeds" "$corpus_root"
    ifp_info "seeds regenerated: $(find "$corpus_root" -type f | wc -l) files, $(du -sh "$corpus_root" | cut -f1)"
    exit 0
    ;;
'' | *[!0-9]*) usage >&2; exit 2 ;;
esac
seconds="$1"
shift
((seconds >= 1)) || ifp_die "SECONDS must be at least 1"

build_targets
mapfile -t rows <"$build/fuzz_targets.txt"
declare -A known=()
for row in "${rows[@]}"; do known["${row%% *}"]="$row"; done
wanted=("$@")
if ((${#wanted[@]} == 0)); then
    for row in "${rows[@]}"; do wanted+=("${row%% *}"); done
fi
for t in "${wanted[@]}"; do [[ -n "${known[$t]:-}" ]] || ifp_die "unknown target: $t (tests/fuzz/run.sh --list)"; done

# The targets run IFP_FUZZ_JOBS (default: one per core) at a time, each on
# one core; their output is printed as each batch ends, in order.
fuzz_jobs="${IFP_FUZZ_JOBS:-$(ifp_nproc)}"
[[ "$fuzz_jobs" =~ ^[1-9][0-9]*$ ]] || ifp_die "IFP_FUZZ_JOBS must be a positive number (got '$fuzz_jobs')"
out="$(mktemp -d "${TMPDIR:-/tmp}/ifp-fuzz-run.XXXXXX")"
failed=0
summary=()
for ((i0 = 0; i0 < ${#wanted[@]}; i0 += fuzz_jobs)); do
    pids=()
    for ((i = i0; i < i0 + fuzz_jobs && i < ${#wanted[@]}; i++)); do
        read -r name max_len rss tmo <<<"${known[${wanted[i]}]}"
        run_target "$name" "$max_len" "$rss" "$tmo" "$seconds" "$out/$i.row" >"$out/$i.out" 2>&1 &
        pids+=($!)
    done
    for ((i = i0; i < i0 + ${#pids[@]}; i++)); do
        wait "${pids[i - i0]}" || failed=1
        cat "$out/$i.out"
        summary+=("$(cat "$out/$i.row" 2>/dev/null || printf 'FAIL   %-20s (no summary)' "${wanted[i]}")")
    done
done
rm -rf "$out"

printf '\n==================== FUZZ SUMMARY (%ss per target) ====================\n' "$seconds"
printf '  %-6s %-20s %10s %7s %7s %6s\n' status target executions cov ft new
for row in "${summary[@]}"; do printf '  %s\n' "$row"; done
if ((failed)); then
    printf 'FUZZ RESULT: FAILED (inputs in %s/artifacts/, logs in %s/logs/)\n' "${build#"$IFP_ROOT"/}" "${build#"$IFP_ROOT"/}"
    exit 1
fi
printf 'FUZZ RESULT: all %d targets ran %ss without a finding\n' "${#wanted[@]}" "$seconds"
