#!/usr/bin/env bash
# deploy/quickstart.sh — from a fresh Debian/Ubuntu checkout to a serving
# cluster: install missing packages, build, start the local cluster
# (deploy/local.sh: two ifp-routers + 3 shard groups of 2 MPI ranks, every
# group serving both routers), send one prompt per domain and show where
# each was served.
#
# usage: deploy/quickstart.sh [CONFIG]   (default deploy/local.ini; leaves the cluster running)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib.sh
source deploy/lib.sh

case "${1:-}" in
-h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
-*) ifp_die "unknown option: $1 (try --help)" ;;
esac
config="${1:-deploy/local.ini}"
[[ -r "$config" ]] || ifp_die "config not found: $config"

n_tokens=48
jobs="$(ifp_nproc)"

ifp_step "1/5 Checking build dependencies (deploy/packages.txt)"
ifp_install_packages

ifp_step "2/5 Configuring and building build/ (RelWithDebInfo, $jobs jobs)"
ifp_info "\$ cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || ifp_die "cmake configure failed (run it by hand to see why)"
ifp_info "\$ cmake --build build -j $jobs"
cmake --build build -j "$jobs" || ifp_die "build failed (see above)"
ifp=build/tools/ifp
for bin in "$ifp" build/router/ifp-router build/shard/ifp-shard; do
    [[ -x "$bin" ]] || ifp_die "$bin was not built"
done

ifp_step "3/5 Choosing OpenBLAS kernels"
ifp_set_openblas_coretype

ifp_step "4/5 Starting the local cluster ($config)"
# local.sh, the router, the shards and `ifp client` below find the CURVE keys
# (made on the first start) in the same run dir.
IFP_RUN_DIR="$(ifp_local_run_dir)"
export IFP_RUN_DIR
if deploy/local.sh status >/dev/null 2>&1; then
    ifp_info "already running; using it (deploy/local.sh restart to start over)"
    deploy/local.sh status | sed 's/^/    /'
else
    # (start refuses a cluster that runs but is not healthy: see its message)
    deploy/local.sh start "$config" 2>&1 | sed 's/^/    /' || ifp_die "the cluster did not start (see above)"
fi
running_config="$(cat "$IFP_RUN_DIR/config")"
# the routers' frontends, comma-separated: `ifp client` fails over between
# them; and the first HTTP API of a router (deploy/local.ini: r1's)
frontends="" http_listen=off
while IFS= read -r line; do
    ifp_router_fields "$line"
    frontends+="${frontends:+,}${rf[1]}"
    [[ "$http_listen" == off ]] && http_listen="${rf[5]}"
done < <(ifp_ini_routers "$running_config")
[[ -n "$frontends" ]] || ifp_die "$running_config: no router (see the error above)"
# how `ifp client` reaches it: plain when the config says so, else with the
# keys folder local.sh's ifp keygen used ([security] keys may name another)
link=()
if [[ "$(ifp_ini_get "$running_config" security curve on)" == off ]]; then
    link=(--plain)
elif [[ -s "$IFP_RUN_DIR/keys-dir" ]]; then
    link=(--keys "$(cat "$IFP_RUN_DIR/keys-dir")")
fi

ifp_step "5/5 One prompt per domain: greedy, $n_tokens tokens, mask predicted from the prompt"
# The formats the model was trained on (models/ifp-mix/MODEL_CARD.md, "Prompt formats").
domains=(math code story qa instruct)
prompts=(
    $'Question: Tom has 3 apples and buys 5 more. How many apples does he have now?\nAnswer:'
    $'Task: Write a python function to find the largest of three numbers.\nCode:\n'
    'Once upon a time, there was a little girl named Lily who loved to play in the park.'
    $'Question: who wrote the declaration of independence?\nAnswer:'
    $'Instruction: Give three tips for staying healthy.\nResponse:'
)
failed=0
for i in "${!domains[@]}"; do
    prompt="${prompts[$i]}"
    printf '\n[%s] %s\n' "${domains[$i]}" "${prompt//$'\n'/\\n}"
    err="$(mktemp)"
    if answer="$("$ifp" client --router "$frontends" "${link[@]}" --prompt "$prompt" -n "$n_tokens" --temp 0 --timeout-ms 30000 2>"$err")"; then
        stats="$(tail -n 1 "$err")"
        if [[ "$stats" =~ group\ ([^,]+),\ cluster\ ([^,]+),\ coverage\ ([0-9.]+).*\ ([0-9.]+)\ tok/s ]]; then
            printf '    group %s, cluster %s, coverage %s (%s tok/s)\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" \
                "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}"
        else
            printf '    %s\n' "$stats"
        fi
        printf '    answer: %s\n' "${answer//$'\n'/$'\n'            }"
    else
        failed=1
        sed 's/^/    /' "$err"
    fi
    rm -f "$err"
done

# The OpenAI-compatible HTTP API ([http] listen; docs/HTTP.md): the same
# kind of prompt through curl, with the API key `ifp keygen` made.
curl_line=""
if [[ "$http_listen" != off ]]; then
    ifp_step "The HTTP API on http://$http_listen (OpenAI-compatible: docs/HTTP.md)"
    auth=()
    http_auth="$(ifp_ini_get "$running_config" http auth auto)"
    if [[ "$http_auth" == on || ("$http_auth" == auto && "$(ifp_ini_get "$running_config" security curve on)" != off) ]]; then
        keys_opt=()
        [[ -s "$IFP_RUN_DIR/keys-dir" ]] && keys_opt=(--keys "$(cat "$IFP_RUN_DIR/keys-dir")")
        api_key="$("$ifp" keygen --api-key client --config "$running_config" "${keys_opt[@]}")" ||
            ifp_die "cannot read the HTTP API key (ifp keygen --api-key client)"
        auth=(-H "Authorization: Bearer $api_key")
    fi
    model_id="$(curl -s "${auth[@]}" "http://$http_listen/v1/models" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
    body="{\"model\": \"${model_id:-ifp-mix}\", \"prompt\": \"Question: who wrote the declaration of independence?\\nAnswer:\", \"max_tokens\": 32, \"temperature\": 0}"
    curl_line="curl -s http://$http_listen/v1/completions -H 'Content-Type: application/json'"
    ((${#auth[@]})) && curl_line+=" -H 'Authorization: Bearer $api_key'"
    curl_line+=" -d '$body'"
    printf '\n$ %s\n' "$curl_line"
    if out="$(curl -s --max-time 30 -H 'Content-Type: application/json' "${auth[@]}" -d "$body" "http://$http_listen/v1/completions")" &&
        [[ "$out" == *'"choices"'* ]]; then
        printf '    %s\n' "$out"
    else
        failed=1
        printf '    the HTTP API did not answer: %s\n' "${out:-no answer}"
    fi
fi

ifp_step "Done. The cluster keeps running in the background."
ifp_info "your own prompt: $ifp client --router $frontends --prompt \$'Question: ...\\nAnswer:' -n $n_tokens [--temp 0.8 --seed 1] [--json]"
[[ -n "$curl_line" ]] && ifp_info "over HTTP:       $curl_line"
ifp_info "state and logs:  deploy/local.sh status"
ifp_info "stop it:         deploy/local.sh stop"
exit "$failed"
