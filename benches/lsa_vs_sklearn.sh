#!/usr/bin/env bash
# Whole-process time of `bench run` against scikit-learn's pipeline at the same settings, alternating
# the two in one sitting (shared machines drift: compare the ratio, not absolute seconds).
#
#   benches/lsa_vs_sklearn.sh [DATA_DIR] [ROUNDS] [SPEC...]
#
# Creates a virtualenv with scikit-learn under target/bench-venv on first use. Reports the median whole-
# process wall time and peak resident memory (/usr/bin/time) and the median fit time (the record's
# timings.fit_s against the same span timed inside the Python script) over the rounds. The multi-class
# specs (experiments/20news-lsa.yaml, trec-lsa.yaml) use their datasets' own split on both sides.
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

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for spec in "${specs[@]}"; do
    ours="./target/release/bench -q run --force --data-dir $data --runs-dir $runs $spec"
    theirs="$venv/bin/python benches/sklearn_lsa.py $spec $data"
    echo "== $spec"
    declare -a a=() b=() fa=() fb=() ma_kb=() mb_kb=()
    $ours >/dev/null 2>&1; $theirs >/dev/null 2>&1   # warm-up (page cache)
    for _ in $(seq "$rounds"); do
        /usr/bin/time -f "%e %M" -o "$runs/time" $ours >/dev/null 2>&1
        a+=("$(tail -1 "$runs/time" | cut -d' ' -f1)")
        ma_kb+=("$(tail -1 "$runs/time" | cut -d' ' -f2)")
        fa+=("$(python3 -c 'import glob,json,sys; print(max((json.load(open(f)) for f in glob.glob(sys.argv[1] + "/*.json")), key=lambda r: r["finished_at"])["timings"]["fit_s"])' "$runs")")
        out=$( { /usr/bin/time -f "%e %M" $theirs; } 2>&1 )
        b+=("$(echo "$out" | tail -1 | cut -d' ' -f1)")
        mb_kb+=("$(echo "$out" | tail -1 | cut -d' ' -f2)")
        fb+=("$(echo "$out" | grep -o 'fit_s [0-9.]*' | cut -d' ' -f2)")
    done
    ma=$(median "${a[@]}"); mb=$(median "${b[@]}"); fma=$(median "${fa[@]}"); fmb=$(median "${fb[@]}")
    echo "whole process: textbench median ${ma}s (${a[*]}), scikit-learn ${mb}s (${b[*]})"
    echo "fit:           textbench median ${fma}s (${fa[*]}), scikit-learn ${fmb}s (${fb[*]})"
    echo "peak memory:   textbench median $(( $(median "${ma_kb[@]}" | cut -d. -f1) / 1024 )) MiB, scikit-learn $(( $(median "${mb_kb[@]}" | cut -d. -f1) / 1024 )) MiB"
    awk -v a="$ma" -v b="$mb" -v fa="$fma" -v fb="$fmb" 'BEGIN { printf "textbench is %.1fx faster as a whole process, %.1fx faster to fit\n", b / a, fb / fa }'
    echo "scikit-learn quality (its own stratified split for the binary sets, the identical one for 20newsgroups and trec): $(echo "$out" | grep accuracy)"
done
