#!/usr/bin/env bash
# bench/run_depth.sh [--quick] — the paper's full depth served for real: a
# 56-layer model of the 3b shape (`ifp synth --shape 3b`: d 2048, 16/2 heads,
# d_ffn 6656 = the "3B active" model itself, 11.3 GB of F32) behind the real
# ifp-router, one dense 4-stage group with a stage on each of 4 hosts
# (network namespaces made by deploy/netns.sh, MPI over TCP on veth, CURVE
# on), started by deploy/cluster.sh.  Against it, on the same model and
# machine: that group with Open MPI's TCP progress thread (--mca
# btl_tcp_progress_thread 1), the same 4-stage group on ONE host (shared
# memory between the stages: what is left is the network's share) and a
# 1-stage group on one host (no pipeline).  All the clusters are up at once
# (the shards map the weights from the file, so they share one copy in the
# page cache) and requests alternate between them.
# Each layout: TTFT of a 16-token and of a 128-token prompt (-n 1), decode
# tokens/s of one stream (16-token prompt, 128 new tokens, EOS ignored,
# decode = (n-1) / (last token - first token)), N runs each, medians; then 4
# streams at once (aggregate tokens/s; not on the 1-stage group by default:
# before commit f1af69b it read no new Work while it decoded, and no full
# run has tried it since: IFP_DEPTH_C4_STAGE1=1 does).  Greedy, --mask
# dense, through `ifp client --json`.  Beside them, the composed estimate of
# docs/BENCHMARKS.md ("From a stage to 56 layers") for these prompt lengths,
# from bench/results/stage.csv and again from a 3b bench_stage run now.
# The model (vocabulary 2048 with the ifp-mix tokenizer, bench/gguf_tokenizer.py)
# is made once (progress on the terminal), reused while it matches, deleted
# at the end unless IFP_DEPTH_KEEP=1.  Needs root (namespaces), ~23 GB of
# disk while it is made, ~12 GB of RAM for the page cache.
# Full: N = 5, 2 rounds of 4 streams (~75 min with the model); --quick: N = 1,
# 16 new tokens, no 4 streams (results in build/bench-quick/).
# Results: bench/results/depth.csv (layout,metric,run,value: every run, the
# medians, the estimates), depth.stage.csv (the bench_stage run), depth.txt
# (the table), depth.png; the last line of stdout is the headline.
# Environment: IFP_DEPTH_MODEL (the file; default ifp-depth-3b-L56.gguf in the
# first of $IFP_DEPTH_DIR, /var/tmp, /tmp with room), IFP_DEPTH_KEEP=1,
# IFP_DEPTH_LAYERS (56; fewer only to try the script), IFP_DEPTH_RUNS,
# IFP_DEPTH_NEW (new tokens of the decode runs), IFP_DEPTH_C4_RUNS,
# IFP_DEPTH_LAYOUTS ("hosts4 hosts4pt host1 stage1"), IFP_MPIRUN_ARGS (to
# every group's mpirun), IFP_BENCH_NATIVE=1 (OpenBLAS's own kernel choice
# instead of the one picked from the CPU flags, as bench/run.sh does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh
root="$PWD"

quick=0
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    -h | --help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ifp_die "run_depth.sh: unknown argument '$arg' (usage: bench/run_depth.sh [--quick])" ;;
    esac
done
if ((quick)); then
    runs=1 new=16 c4_runs=0 results="$root/build/bench-quick"
else
    runs=5 new=128 c4_runs=2 results="$root/bench/results"
fi
runs="${IFP_DEPTH_RUNS:-$runs}"
new="${IFP_DEPTH_NEW:-$new}"
c4_runs="${IFP_DEPTH_C4_RUNS:-$c4_runs}"
layers="${IFP_DEPTH_LAYERS:-56}"
read -r -a layouts <<<"${IFP_DEPTH_LAYOUTS:-hosts4 hosts4pt host1 stage1}"
vocab=2048 # the ifp-mix tokenizer's
ctx=512    # per slot: a 128-token prompt + 128 new fit
slots=4
streams=4

say() { ifp_info "$@" >&2; }
step() { ifp_step "$@" >&2; }
tty=0
[[ -t 2 ]] && tty=1

export IFP_NETNS_PREFIX=ifpd-h IFP_NETNS_BRIDGE=ifpd-br0 IFP_NETNS_SUBNET=10.80.0
net="$IFP_NETNS_SUBNET"
router_host=ifpd-h1 router_addr="$net.11"
why="$(deploy/netns.sh check 2>&1)" || ifp_die "network namespaces cannot be made here: $why"
command -v mpirun >/dev/null || ifp_die "mpirun not found (apt-get install openmpi-bin)"
command -v python3 >/dev/null || ifp_die "python3 not found (bench/gguf_tokenizer.py adds the tokenizer to the model)"
for l in "${layouts[@]}"; do
    [[ "$l" =~ ^(hosts4|hosts4pt|host1|stage1)$ ]] || ifp_die "IFP_DEPTH_LAYOUTS: hosts4, hosts4pt, host1 or stage1, got '$l'"
done
{
    [ "${IFP_BENCH_NATIVE:-0}" = 1 ] || ifp_set_openblas_coretype
    cmake -S . -B build >/dev/null
    cmake --build build --target ifp-router ifp-shard ifp ifp_bindaddr bench_stage -j"$(ifp_nproc)" >/dev/null
} >&2
ifp=build/tools/ifp
mkdir -p "$results"
work="$(mktemp -d "${TMPDIR:-/tmp}/ifp-depth.XXXXXX")"

# ---- the model -------------------------------------------------------------
layer_bytes=201342976                                 # 50,335,744 F32 parameters
model_bytes=$((layers * layer_bytes + 2 * vocab * 2048 * 4)) # + embedding, head
model_gb="$(awk -v b="$model_bytes" 'BEGIN { printf "%.2f", b / 1e9 }')"
name="ifp-depth-3b-L$layers.gguf"
# model_ok FILE: a finished file of this script (written last, by rename)
# with the expected shape, depth, seed, vocabulary and the tokenizer.
model_ok() {
    local info
    [[ -f "$1" ]] || return 1
    info="$("$ifp" info "$1" 2>/dev/null)" || return 1
    grep -qE "llama.block_count +uint32 +$layers\$" <<<"$info" &&
        grep -qE 'llama.feed_forward_length +uint32 +6656$' <<<"$info" &&
        grep -qE 'llama.embedding_length +uint32 +2048$' <<<"$info" &&
        grep -qE "llama.vocab_size +uint32 +$vocab\$" <<<"$info" &&
        grep -qE 'general.file_type +uint32 +0$' <<<"$info" &&
        grep -qE 'ifp.synth.shape +string +"3b"$' <<<"$info" &&
        grep -qE 'ifp.synth.seed +uint64 +1$' <<<"$info" &&
        grep -qE 'tokenizer.ggml.model +string +"llama"$' <<<"$info" &&
        (($(stat -c %s "$1") >= model_bytes))
}
avail_bytes() { df -P -B1 "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
model="${IFP_DEPTH_MODEL:-}"
if [[ -z "$model" ]]; then
    dirs=()
    [[ -n "${IFP_DEPTH_DIR:-}" ]] && dirs+=("$IFP_DEPTH_DIR")
    dirs+=(/var/tmp /tmp)
    for d in "${dirs[@]}"; do model_ok "$d/$name" && { model="$d/$name"; break; }; done
    if [[ -z "$model" ]]; then
        # made beside an intermediate file without the tokenizer: twice the size
        for d in "${dirs[@]}"; do
            [[ -d "$d" && -w "$d" ]] || continue
            a="$(avail_bytes "$d")"
            if [[ -n "$a" ]] && ((a > 2 * model_bytes + (1 << 30))); then model="$d/$name"; break; fi
        done
        [[ -n "$model" ]] || ifp_die "no room for the model: it takes $((2 * model_bytes >> 30)) GB while it is made (df -h ${dirs[*]}; set IFP_DEPTH_DIR)"
    fi
fi
partial="$model.notok.gguf"

cleanup() {
    local rc=$?
    for l in hosts4 hosts4pt host1 stage1; do
        [[ -e "$work/$l.ini" ]] || continue
        IFP_RUN_DIR="$work/run-$l" deploy/cluster.sh stop "$work/$l.ini" >/dev/null 2>&1 || true
    done
    deploy/netns.sh down >/dev/null 2>&1 || true
    [[ -n "${prog_pid:-}" ]] && kill "$prog_pid" 2>/dev/null
    rm -f "$partial" "$model.tmp" "$partial.tmp"
    if [[ "${IFP_DEPTH_KEEP:-0}" == 1 ]]; then
        [[ -e "$model" ]] && say "kept the model: $model (IFP_DEPTH_KEEP=1)"
    else
        rm -f "$model"
    fi
    if ((rc == 0)); then rm -rf "$work"; else printf 'run_depth: failed; logs kept in %s\n' "$work" >&2; fi
}
trap cleanup EXIT

# progress FILE TOTAL: a progress line for a growing FILE (on a terminal), in
# the background; prog_pid is its pid.
progress() {
    prog_pid=""
    ((tty)) || return 0
    (
        while sleep 1; do
            s="$(stat -c %s "$1" 2>/dev/null || echo 0)"
            printf '\r    %s: %.1f of %.1f GB ' "$(basename "$1")" "$(awk -v s="$s" 'BEGIN { print s / 1e9 }')" \
                "$(awk -v s="$2" 'BEGIN { print s / 1e9 }')" >&2
        done
    ) &
    prog_pid=$!
}
progress_end() { [[ -n "${prog_pid:-}" ]] && { kill "$prog_pid" 2>/dev/null; wait "$prog_pid" 2>/dev/null; printf '\n' >&2; }; prog_pid=""; }

step "the model: ifp synth --shape 3b --layers $layers --vocab $vocab, with the ifp-mix tokenizer ($model_gb GB)"
if model_ok "$model"; then
    say "reusing $model (it matches)"
else
    rm -f "$model"
    t0=$SECONDS
    "$ifp" synth --shape 3b --layers "$layers" --vocab "$vocab" --seed 1 -o "$partial" >&2
    say "synthesized in $((SECONDS - t0)) s; adding the tokenizer (bench/gguf_tokenizer.py copies the file)"
    t0=$SECONDS
    progress "$model.tmp" "$model_bytes"
    python3 bench/gguf_tokenizer.py "$partial" models/ifp-mix/ifp-mix.gguf "$model.tmp" >&2
    progress_end
    rm -f "$partial"
    mv "$model.tmp" "$model"
    model_ok "$model" || ifp_die "$model does not come out as expected ($ifp info $model)"
    say "tokenizer added in $((SECONDS - t0)) s: $model"
fi
# The shards map the F32 weights from the file (no copy): read it once so
# that the page cache holds it before anything is timed.
mem_avail_kb="$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)"
((mem_avail_kb * 1024 > model_bytes + (2 << 30))) ||
    say "warning: MemAvailable $((mem_avail_kb >> 20)) GB: the page cache cannot hold the model and the figures will include disk reads"
t0="$(date +%s.%N)"
if ((tty)); then dd if="$model" of=/dev/null bs=64M status=progress 2>&1 | tr '\r' '\n' | tail -n 1 >&2 || true
else dd if="$model" of=/dev/null bs=64M 2>/dev/null; fi
say "read the model into the page cache in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# ---- the composed estimate on this machine: bench_stage, the 3b shape -------
step "per-layer times on this machine: bench_stage --shapes 3b (the figures docs/BENCHMARKS.md composes)"
stage_args=(--shapes 3b --types f32 --csv "$work/stage-here.csv")
((quick)) && stage_args+=(--runs 1)
GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" \
    build/bench/bench_stage "${stage_args[@]}" >"$work/stage-here.txt" 2>&1 || {
    cat "$work/stage-here.txt" >&2
    ifp_die "bench_stage failed"
}
cp "$work/stage-here.csv" "$results/depth.stage.csv"
bw_line="$(grep -m1 'DRAM read bandwidth' "$work/stage-here.txt" || true)"
bw1="$(sed -n 's/.*: \([0-9.]*\) GB\/s at 1 thread.*/\1/p' <<<"$bw_line")"
bw2="$(sed -n 's/.* \([0-9.]*\) GB\/s at 2 threads.*/\1/p' <<<"$bw_line")"
say "DRAM read bandwidth ${bw1:-?} GB/s at 1 thread, ${bw2:-?} GB/s at 2; $(grep -E '^  dense-3b +(prefill|decode B=1 )' "$work/stage-here.txt" | sed 's/  */ /g' | paste -sd';')"

# ---- the hosts and the clusters ---------------------------------------------
step "6 hosts (network namespaces ${IFP_NETNS_PREFIX}1..6 on $IFP_NETNS_BRIDGE, $net.0/24): the router on $router_host"
deploy/netns.sh up 6 >/dev/null

port_of() { case "$1" in hosts4) echo 5555 ;; host1) echo 5557 ;; stage1) echo 5559 ;; hosts4pt) echo 5561 ;; esac; }
describe() {
    case "$1" in
    hosts4) echo "4 stages on 4 hosts (MPI over TCP on veth)" ;;
    hosts4pt) echo "4 stages on 4 hosts, with Open MPI's TCP progress thread" ;;
    host1) echo "4 stages on 1 host (shared memory)" ;;
    stage1) echo "1 stage on 1 host" ;;
    esac
}
write_config() { # LAYOUT
    local stages=4 hosts="ifpd-h2,ifpd-h3,ifpd-h4,ifpd-h5" port
    port="$(port_of "$1")"
    [[ "$1" == host1 ]] && hosts=ifpd-h6
    [[ "$1" == stage1 ]] && stages=1 hosts=ifpd-h6
    cat >"$work/$1.ini" <<INI
; bench/run_depth.sh: $(describe "$1")
[http]
listen = off

[router]
host = $router_host
frontend = tcp://$router_addr:$port
backend = tcp://$router_addr:$((port + 1))
[model]
model = $model
[deploy]
agent = $root/deploy/netns-agent.sh
[group g0]
stages = $stages
hosts = $hosts
cluster = dense
slots = $slots
ctx = $ctx
mpi_if = $net.0/24
INI
}
# cluster LAYOUT start|stop|status.  hosts4pt: the hosts4 group with Open
# MPI's TCP progress thread, which moves a large message (a 64-row prefill
# chunk is 512 KB, past the 64 KB eager limit) while its sender computes.
cluster() {
    local mpi_args="${IFP_MPIRUN_ARGS:-}"
    [[ "$1" == hosts4pt ]] && mpi_args="${mpi_args:+$mpi_args }--mca btl_tcp_progress_thread 1"
    IFP_RUN_DIR="$work/run-$1" IFP_START_TIMEOUT="${IFP_START_TIMEOUT:-900}" IFP_GROUP_GRACE="${IFP_GROUP_GRACE:-300}" \
        IFP_MPIRUN_ARGS="$mpi_args" deploy/cluster.sh "$2" "$work/$1.ini"
}
declare -A ready_s=()
for l in "${layouts[@]}"; do
    write_config "$l"
    step "starting $l: $(describe "$l")"
    t0=$SECONDS
    cluster "$l" start >"$work/start-$l.log" 2>&1 || {
        cat "$work/start-$l.log" >&2
        ifp_die "the $l cluster did not start (logs in $work/run-$l)"
    }
    ready_s[$l]=$((SECONDS - t0))
    grep -E '^  (router|group)' "$work/start-$l.log" | sed 's/^ */    /' >&2 || true
    say "ready in ${ready_s[$l]} s"
done

# ---- the requests ------------------------------------------------------------
# BOS + 15 and BOS + 127 tokens with the ifp-mix tokenizer (checked on every answer)
prompt16="a b c d a b c d a b c d a b c"
prompt128="$(for ((i = 0; i < 31; i++)); do printf 'a b c d '; done)a b c"
csv="$results/depth.csv"
echo "layout,metric,run,value" >"$csv"
json_num() { grep -oE "\"$1\":[-0-9.e+]*" | head -n 1 | cut -d: -f2; }
json_count() { # FIELD: the length of the integer array FIELD
    local a
    a="$(grep -oE "\"$1\":\[[0-9,]*\]" | head -n 1 | sed 's/.*\[//; s/\]//')"
    [[ -z "$a" ]] && { echo 0; return; }
    tr -cd ',' <<<"$a" | wc -c | awk '{ print $1 + 1 }'
}
client() { # LAYOUT ARGS...
    local l="$1"
    shift
    "$ifp" client --router "tcp://$router_addr:$(port_of "$l")" --keys "$work/run-$l/keys" --mask dense --json \
        --ignore-eos --temp 0 --timeout-ms 1800000 "$@" 2>"$work/client.err" || {
        cat "$work/client.err" >&2
        ifp_die "a request to $l failed (logs in $work/run-$l)"
    }
}
declare -A first_tokens=()
# one LAYOUT KIND RUN: one measurement; appends its CSV rows
one() {
    local l="$1" kind="$2" r="$3" out pt nt ttft total dec ctps
    case "$kind" in
    ttft16 | ttft128)
        local p="$prompt16" want=16
        [[ "$kind" == ttft128 ]] && p="$prompt128" want=128
        out="$(client "$l" --prompt "$p" -n 1)"
        pt="$(json_count prompt_tokens <<<"$out")"
        ((pt == want)) || ifp_die "the $want-token prompt came out as $pt tokens"
        ttft="$(json_num ttft_ms <<<"$out")"
        echo "$l,${kind}_ms,$r,$ttft" >>"$csv"
        say "  $l run $r: $want-token prompt, TTFT $ttft ms"
        ;;
    decode)
        out="$(client "$l" --prompt "$prompt16" -n "$new")"
        nt="$(json_count tokens <<<"$out")"
        ((nt == new)) || ifp_die "$l answered $nt tokens, not $new"
        ttft="$(json_num ttft_ms <<<"$out")" total="$(json_num total_ms <<<"$out")"
        ctps="$(json_num tokens_per_s <<<"$out")"
        dec="$(awk -v n="$nt" -v a="$ttft" -v b="$total" 'BEGIN { printf "%.3f", (n - 1) * 1000 / (b - a) }')"
        first_tokens[$l]="${first_tokens[$l]:-$(grep -oE '"tokens":\[[0-9,]*\]' <<<"$out" | head -n 1)}"
        printf '%s,decode_tok_s,%s,%s\n%s,client_tok_s,%s,%s\n%s,decode_ttft_ms,%s,%s\n' \
            "$l" "$r" "$dec" "$l" "$r" "$ctps" "$l" "$r" "$ttft" >>"$csv"
        say "  $l run $r: $nt tokens, TTFT $ttft ms, decode $dec tok/s (client, with TTFT: $ctps tok/s)"
        ;;
    c4)
        if [[ "$l" == stage1 && "${IFP_DEPTH_C4_STAGE1:-0}" != 1 ]]; then
            # before f1af69b a 1-stage group read no new Work while it decoded
            # (at 56 layers the router took the other streams' Work for lost
            # and replayed it until the requests failed); not re-run since
            say "  $l run $r: $streams streams skipped (IFP_DEPTH_C4_STAGE1=1 runs them)"
            return 0
        fi
        out="$(client "$l" --prompt "$prompt16" -n "$new" --n-requests "$streams" --concurrency "$streams")"
        [[ "$(json_num ok <<<"$out")" == "$streams" ]] || ifp_die "$l: not every one of the $streams streams finished: $out"
        printf '%s,c4_tok_s,%s,%s\n%s,c4_ttft_p50_ms,%s,%s\n' "$l" "$r" "$(json_num tokens_per_s <<<"$out")" \
            "$l" "$r" "$(json_num ttft_ms_p50 <<<"$out")" >>"$csv"
        say "  $l run $r: $streams streams, $(json_num tokens_per_s <<<"$out") tok/s in all, TTFT p50 $(json_num ttft_ms_p50 <<<"$out") ms"
        ;;
    esac
}
# each kind: N rounds of one request per layout, the order reversed every
# other round, so that every layout sees the same machine
rounds() { # KIND N
    local r i order=()
    for ((r = 1; r <= $2; r++)); do
        order=("${layouts[@]}")
        if ((r % 2 == 0)); then
            order=()
            for ((i = ${#layouts[@]} - 1; i >= 0; i--)); do order+=("${layouts[i]}"); done
        fi
        for l in "${order[@]}"; do one "$l" "$1" "$r"; done
    done
}

say "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(ifp_nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset, the kernel OpenBLAS picks}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
t_start=$SECONDS
step "warm-up: one 128-token prompt + 4 tokens on each"
for l in "${layouts[@]}"; do client "$l" --prompt "$prompt128" -n 4 >/dev/null; done
step "TTFT, 16-token prompt ($runs runs per layout, alternating)"
rounds ttft16 "$runs"
step "TTFT, 128-token prompt ($runs runs per layout, alternating)"
rounds ttft128 "$runs"
step "one stream: $new new tokens after the 16-token prompt ($runs runs per layout, alternating)"
rounds decode "$runs"
if ((c4_runs > 0)); then
    step "$streams streams at once, $new new tokens each ($c4_runs runs per layout, alternating)"
    rounds c4 "$c4_runs"
fi
say "requests took $((SECONDS - t_start)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# the same greedy answer whatever the layout
tokens_equal=1
for l in "${layouts[@]}"; do [[ "${first_tokens[$l]}" == "${first_tokens[${layouts[0]}]}" ]] || tokens_equal=0; done
((tokens_equal)) || say "warning: the layouts answered the decode prompt with different tokens"

# what the shard ranks did: page faults that read the disk, CPU seconds
declare -A majflt=() cpu_s=() pipeline=()
hz="$(getconf CLK_TCK)"
for l in "${layouts[@]}"; do
    m=0 c=0
    for p in $(pgrep -f -- "ifp-shard --config $work/$l.ini" || true); do
        read -r a b <<<"$(awk '{ print $12, $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo "0 0")"
        m=$((m + a)) c=$((c + b))
    done
    majflt[$l]=$m cpu_s[$l]=$((c / hz))
    cluster "$l" stop >/dev/null
    # stage 0's summary at its clean shutdown: micro-batch round trip, compute share
    pipeline[$l]="$(grep -h 'pipeline: ' "$work/run-$l/group-g0.log" | tail -n 1 | sed 's/.*pipeline: //' || true)"
    say "$l: shard ranks: $m major page faults, ${cpu_s[$l]} CPU s; ${pipeline[$l]:-no pipeline line}"
done

# ---- medians, estimates, table, headline --------------------------------------
awk -F, -v layers="$layers" -v new="$new" -v bw1="${bw1:-0}" -v bw2="${bw2:-0}" \
    -v docs="$root/bench/results/stage.csv" -v here="$work/stage-here.csv" -v csv="$csv" \
    -v txt="$work/table" -v head="$work/headline" -v lay="${layouts[*]}" -v runs="$runs" \
    -v equal="$tokens_equal" -v model_gb="$model_gb" -v core="${OPENBLAS_CORETYPE:-native}" \
    -v cores="$(ifp_nproc)" -v ready="$(for l in "${layouts[@]}"; do printf 'ready_s_%s=%s ' "$l" "${ready_s[$l]}"; done)" '
    function med(k,   i, j, t, m, a) {
        m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m == 0 ? "" : (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2)
    }
    # per-layer figures of a bench_stage CSV (the dense-3b rows): T[src, "p"] =
    # prefill s per token and layer, T[src, B] = decode step s per layer at B rows
    function stage(file, src,   line, f, L) {
        while ((getline line < file) > 0) {
            split(line, f, ",")
            if (f[1] != "dense-3b") continue
            L = f[5]; CORE[src] = f[20]
            if (f[7] == "prefill") T[src, "p"] = 1 / (f[11] * L)
            else T[src, f[8]] = f[12] / 1000 / L
        }
        close(file)
    }
    # the composition of docs/BENCHMARKS.md ("From a stage to 56 layers"):
    # t_link = 50 us + B x 8 KB / 1.25 GB/s; a 16-row prompt = one 16-row step;
    # 128 tokens at the 512-token prefill rate, as 2 chunks of 64 over S stages
    # ((2 + S - 1) / (2 S) of it; never more than 2 stages busy, so 2 cores
    # suffice); one stream = 56 t(1) + S t_link; 4 streams: S = 4 one row per
    # micro-batch, at most min(S, cores) stages at once (x the 2-thread DRAM
    # bandwidth gain here); S = 1 micro-batches of 4 rows.
    function estimate(src, S, nc, bwgain,   tl1, tl4, one, par) {
        tl1 = 50e-6 + 8192 / 1.25e9; tl4 = 50e-6 + 4 * 8192 / 1.25e9
        E["ttft16_ms"] = 1000 * layers * T[src, 16]
        E["ttft128_ms"] = 1000 * 128 * layers * T[src, "p"] * (S > 1 ? (2 + S - 1) / (2 * S) : 1)
        one = layers * T[src, 1] + S * tl1
        E["decode_tok_s"] = 1 / one
        if (S == 1) E["c4_tok_s"] = 4 / (layers * T[src, 4] + tl4)
        else { par = S < nc ? S : nc; if (bwgain > 0 && bwgain < par) par = bwgain; E["c4_tok_s"] = par / one }
    }
    BEGIN {
        nk = split("ttft16_ms ttft128_ms decode_tok_s c4_tok_s", K, " ")
        split("TTFT 16 tok (ms)|TTFT 128 tok (ms)|1 stream decode tok/s|4 streams tok/s", title, "|")
        stage(docs, "docs"); stage(here, "here")
    }
    NR > 1 { k = $1 SUBSEP $2; v[k, ++n[k]] = $4 }
    END {
        nl = split(lay, L, " ")
        for (i = 1; i <= nl; i++) for (j = 1; j <= nk + 3; j++) {
            m = (j <= nk) ? K[j] : (j == nk + 1 ? "client_tok_s" : (j == nk + 2 ? "c4_ttft_p50_ms" : "decode_ttft_ms"))
            M[L[i], m] = med(L[i] SUBSEP m)
            if (M[L[i], m] != "") printf "%s,%s,median,%s\n", L[i], m, M[L[i], m] >>csv
        }
        # estimates: S = 4 (hosts4, host1) and S = 1 (stage1), from each CSV
        for (s = 1; s <= 2; s++) {
            src = s == 1 ? "docs" : "here"
            if (T[src, 1] == "") continue
            for (S = 1; S <= 4; S += 3) {
                estimate(src, S, src == "docs" ? 4 : cores, src == "here" && bw1 > 0 ? bw2 / bw1 : 0)
                name = "est-" src "-s" S
                for (j = 1; j <= nk; j++) { EST[name, K[j]] = E[K[j]]; printf "%s,%s,estimate,%.3f\n", name, K[j], E[K[j]] >>csv }
            }
        }
        desc["hosts4"] = "4 stages on 4 hosts (TCP, veth)"; desc["host1"] = "4 stages on 1 host (shared memory)"
        desc["hosts4pt"] = "4 stages on 4 hosts, TCP progress thread"
        desc["stage1"] = "1 stage on 1 host"
        desc["est-docs-s4"] = "composed, stage.csv (" CORE["docs"] "), S = 4, a core per stage"
        desc["est-docs-s1"] = "composed, stage.csv (" CORE["docs"] "), S = 1"
        desc["est-here-s4"] = "composed, this machine (" CORE["here"] "), S = 4, " cores " cores"
        desc["est-here-s1"] = "composed, this machine (" CORE["here"] "), S = 1"
        printf "| %s |", "layout" >txt
        for (j = 1; j <= nk; j++) printf " %s |", title[j] >txt
        printf "\n|---|" >txt
        for (j = 1; j <= nk; j++) printf "---:|" >txt
        printf "\n" >txt
        for (i = 1; i <= nl; i++) {
            printf "| %s |", desc[L[i]] >txt
            for (j = 1; j <= nk; j++) printf " %s |", (M[L[i], K[j]] == "" ? "–" : sprintf(K[j] ~ /ms/ ? "%.0f" : "%.2f", M[L[i], K[j]])) >txt
            printf "\n" >txt
        }
        split("est-docs-s4 est-docs-s1 est-here-s4 est-here-s1", ES, " ")
        for (i = 1; i <= 4; i++) {
            if (EST[ES[i], K[1]] == "") continue
            printf "| %s |", desc[ES[i]] >txt
            for (j = 1; j <= nk; j++) printf " %s |", sprintf(K[j] ~ /ms/ ? "%.0f" : "%.2f", EST[ES[i], K[j]]) >txt
            printf "\n" >txt
        }
        # the headline: medians per layout, ratios, estimates
        line = ""
        for (i = 1; i <= nl; i++) for (j = 1; j <= nk; j++)
            if (M[L[i], K[j]] != "") line = line sprintf("%s_%s=%s ", K[j], L[i], M[L[i], K[j]])
        if (M["hosts4", "decode_tok_s"] != "" && M["host1", "decode_tok_s"] != "") {
            line = line sprintf("net_decode_ratio=%.3f net_ttft16_ratio=%.3f net_ttft128_ratio=%.3f ",
                M["hosts4", "decode_tok_s"] / M["host1", "decode_tok_s"], M["hosts4", "ttft16_ms"] / M["host1", "ttft16_ms"],
                M["hosts4", "ttft128_ms"] / M["host1", "ttft128_ms"])
            if (M["hosts4", "c4_tok_s"] != "" && M["host1", "c4_tok_s"] != "")
                line = line sprintf("net_c4_ratio=%.3f ", M["hosts4", "c4_tok_s"] / M["host1", "c4_tok_s"])
        }
        if (M["hosts4pt", "ttft128_ms"] != "" && M["host1", "ttft128_ms"] != "") {
            line = line sprintf("pt_decode_ratio=%.3f pt_ttft128_ratio=%.3f ", M["hosts4pt", "decode_tok_s"] / M["host1", "decode_tok_s"],
                M["hosts4pt", "ttft128_ms"] / M["host1", "ttft128_ms"])
            if (M["hosts4pt", "c4_tok_s"] != "" && M["host1", "c4_tok_s"] != "")
                line = line sprintf("pt_c4_ratio=%.3f ", M["hosts4pt", "c4_tok_s"] / M["host1", "c4_tok_s"])
        }
        if (EST["est-here-s4", "decode_tok_s"] != "" && M["hosts4", "decode_tok_s"] != "")
            line = line sprintf("est_here_decode_tok_s=%.3f hosts4_decode_vs_est_here=%.3f ", EST["est-here-s4", "decode_tok_s"],
                M["hosts4", "decode_tok_s"] / EST["est-here-s4", "decode_tok_s"])
        if (EST["est-docs-s4", "decode_tok_s"] != "" && M["hosts4", "decode_tok_s"] != "")
            line = line sprintf("est_docs_decode_tok_s=%.3f hosts4_decode_vs_est_docs=%.3f ", EST["est-docs-s4", "decode_tok_s"],
                M["hosts4", "decode_tok_s"] / EST["est-docs-s4", "decode_tok_s"])
        sub(/ +$/, "", ready)
        printf "%slayers=%s model_gb=%s new_tokens=%s runs=%s tokens_equal=%s openblas=%s cores=%s %s\n",
            line, layers, model_gb, new, runs, equal, core, cores, ready >head
    }' "$csv"

{
    printf 'bench/run_depth.sh, %s: a %s-layer 3b-shape model (%s GB F32), %s new tokens, %s runs, medians\n' \
        "$(date '+%F %T')" "$layers" "$model_gb" "$new" "$runs"
    printf 'CPU:%s, %s cores, OPENBLAS_CORETYPE=%s; DRAM %s GB/s at 1 thread, %s at 2\n' \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" "$(ifp_nproc)" "${OPENBLAS_CORETYPE:-native}" "${bw1:-?}" "${bw2:-?}"
    cat "$work/table"
    for l in "${layouts[@]}"; do
        printf '%s: ready in %s s; shard ranks %s major faults, %s CPU s; stage 0: %s\n' "$l" "${ready_s[$l]}" \
            "${majflt[$l]}" "${cpu_s[$l]}" "${pipeline[$l]:-no pipeline line}"
    done
    cat "$work/headline"
} >"$results/depth.txt"
sed '$d' "$results/depth.txt" >&2

if ! command -v gnuplot >/dev/null 2>&1; then
    say "installing gnuplot-nox for the plot"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends gnuplot-nox; } >&2 || true
fi
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot -e "csv='$csv'; out='$results/depth.png'; title='$layers-layer 3b-shape model (${model_gb} GB F32), $(ifp_nproc) cores, medians of $runs'" \
        bench/plot_depth.gp >&2 && say "plot: $results/depth.png"
else
    say "gnuplot is not available: no plot (the CSV is $csv)"
fi
cat "$work/headline"
