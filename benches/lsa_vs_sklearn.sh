#!/usr/bin/env bash
# Whole-process time of `bench run` against scikit-learn's pipeline at the same settings, alternating
# the two in one sitting (shared machines drift: compare the ratio, not absolute seconds).
#
#   benches/lsa_vs_sklearn.sh [DATA_DIR] [ROUNDS] [SPEC...]
#
# Creates a virtualenv with scikit-learn under target/bench-venv on first use. Uses hyperfine when it is
# installed (apt-get install hyperfine), else /usr/bin/time in a loop.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets}
rounds=${2:-5}
shift $(( $# > 2 ? 2 : $# )) || true
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(experiments/sms-lsa.yaml experiments/enron-lsa.yaml)

venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q scikit-learn pyyaml
fi
cargo build --release -q
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

for spec in "${specs[@]}"; do
    ours="./target/release/bench -q run --force --data-dir $data --runs-dir $runs $spec"
    theirs="$venv/bin/python benches/sklearn_lsa.py $spec $data"
    echo "== $spec"
    if command -v hyperfine >/dev/null; then
        hyperfine --warmup 1 --runs "$rounds" -N "$ours" "$theirs"
    else
        declare -a a=() b=()
        $ours >/dev/null 2>&1; $theirs >/dev/null 2>&1   # warm-up (page cache)
        for _ in $(seq "$rounds"); do
            a+=("$( { /usr/bin/time -f %e $ours >/dev/null 2>/dev/null; } 2>&1 | tail -1)")
            b+=("$( { /usr/bin/time -f %e $theirs >/dev/null; } 2>&1 | tail -1)")
        done
        median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
        ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
        echo "textbench    median ${ma}s  (${a[*]})"
        echo "scikit-learn median ${mb}s  (${b[*]})"
        awk -v a="$ma" -v b="$mb" 'BEGIN { printf "textbench is %.1fx faster\n", b / a }'
    fi
    echo "scikit-learn quality on its own split: $($theirs)"
done
