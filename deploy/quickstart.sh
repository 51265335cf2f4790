#!/usr/bin/env bash
# deploy/quickstart.sh — from a fresh Debian/Ubuntu checkout to generated
# text: install missing packages, build (no tests), run the embedded model on
# a couple of example prompts.
#
# usage: deploy/quickstart.sh        (IFP_MODEL=path.gguf to use another model)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/..
source deploy/lib.sh

case "${1:-}" in
"") ;;
-h | --help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*) ifp_die "unknown option: $1 (try --help)" ;;
esac

model="${IFP_MODEL:-models/ifp-mix/ifp-mix.gguf}"
n_tokens=48
jobs="$(ifp_nproc)"

ifp_step "1/4 Checking build dependencies (deploy/packages.txt)"
ifp_install_packages

ifp_step "2/4 Configuring and building build/ (RelWithDebInfo, $jobs jobs)"
ifp_info "\$ cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo || ifp_die "cmake configure failed (see above)"
ifp_info "\$ cmake --build build -j $jobs"
cmake --build build -j "$jobs" || ifp_die "build failed (see above)"

ifp=build/tools/ifp
[[ -x "$ifp" ]] || ifp_die "$ifp was not built (is tools/ complete?)"
[[ -r "$model" ]] || ifp_die "model not found: $model"

ifp_step "3/4 Choosing OpenBLAS kernels"
ifp_set_openblas_coretype

ifp_step "4/4 Generating $n_tokens tokens per prompt with $model"
prompts=(
    $'Question: What is the capital of France?\nAnswer:'
    $'Question: Tom has 3 apples and buys 5 more. How many apples does he have now?\nAnswer:'
)
for prompt in "${prompts[@]}"; do
    printf '\n$ %s run --model %s --prompt %q -n %d\n' "$ifp" "$model" "$prompt" "$n_tokens"
    "$ifp" run --model "$model" --prompt "$prompt" -n "$n_tokens"
    printf '\n'
done

ifp_step "Done. Try your own prompt:"
ifp_info "$ifp run --model $model --prompt \$'Question: ...\\nAnswer:' -n $n_tokens [--temp 0.8 --seed 1] [--json]"
