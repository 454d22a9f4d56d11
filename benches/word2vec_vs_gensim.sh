#!/usr/bin/env bash
# textbench's word2vec against gensim's Word2Vec + scikit-learn's logistic regression at the same settings
# on the identical split, alternating the two in one sitting (shared machines drift: compare the ratios,
# not absolute seconds).
#
#   benches/word2vec_vs_gensim.sh [DATA_DIR] [ROUNDS] [SPEC...]      (default: experiments/enron-word2vec.yaml)
#
# Each side trains one model: the spec's run of seed 0 and the peer with --seed 0.
#
# Writes the spec's split with `bench datasets split`, then per round runs `bench run --force` and
# benches/gensim_word2vec.py (gensim with `workers=$WORKERS`, default 2). Reports the medians of: training
# words per second (corpus words in the vocabulary × epochs / training seconds, both sides the same
# figure), whole-process wall time and peak resident memory (/usr/bin/time), and each side's accuracy.
# Creates a virtualenv with gensim and scikit-learn under target/bench-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# )) || true
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(experiments/enron-word2vec.yaml)
workers=${WORKERS:-2}

venv=target/bench-venv
if ! "$venv/bin/python" -c "import gensim, sklearn, yaml" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q gensim scikit-learn pyyaml
fi
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) threads"
for spec in "${specs[@]}"; do
    echo "== $spec"
    ./target/release/bench -q datasets split "$spec" --out "$work/split" --data-dir "$data" >/dev/null
    # One run, seed 0, as the peer does one: the spec with its seeds cut to [0] (beside it, so that
    # paths relative to it still hold).
    one="$(dirname "$spec")/.seed0-$(basename "$spec")"
    sed -E 's/^seeds:.*/seeds: [0]/' "$spec" > "$one"
    trap 'rm -rf "$work" "$one"' EXIT
    ours="./target/release/bench -q run --force --data-dir $data --runs-dir $work/runs $one"
    theirs="$venv/bin/python benches/gensim_word2vec.py $spec $work/split --workers $workers"
    declare -a wa=() wb=() ta=() tb=() ma=() mb=() aa=() ab=()
    for _ in $(seq "$rounds"); do
        /usr/bin/time -f "%e %M" -o "$work/time" $ours >/dev/null 2>&1
        ta+=("$(cut -d' ' -f1 "$work/time")"); ma+=("$(cut -d' ' -f2 "$work/time")")
        record=$(python3 -c 'import glob,json,sys; print(json.dumps(max((json.load(open(f)) for f in glob.glob(sys.argv[1] + "/*.json")), key=lambda r: r["finished_at"])))' "$work/runs")
        wa+=("$(echo "$record" | python3 -c 'import json,sys; print(json.load(sys.stdin)["method_details"]["train_words_per_s"])')")
        aa+=("$(echo "$record" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["accuracy"])')")
        out=$( { /usr/bin/time -f "%e %M" $theirs; } 2>&1 )
        tb+=("$(echo "$out" | tail -1 | cut -d' ' -f1)"); mb+=("$(echo "$out" | tail -1 | cut -d' ' -f2)")
        json=$(echo "$out" | grep '^{')
        wb+=("$(echo "$json" | field train_words_per_s)"); ab+=("$(echo "$json" | field accuracy)")
    done
    mwa=$(median "${wa[@]}"); mwb=$(median "${wb[@]}"); mta=$(median "${ta[@]}"); mtb=$(median "${tb[@]}")
    printf 'training words/s: textbench %.0f (%s), gensim (workers=%s) %.0f\n' "$mwa" "${wa[*]}" "$workers" "$mwb"
    echo "whole process:    textbench ${mta}s (${ta[*]}), gensim + scikit-learn ${mtb}s (${tb[*]})"
    echo "peak memory:      textbench $(( $(median "${ma[@]}" | cut -d. -f1) / 1024 )) MiB, gensim + scikit-learn $(( $(median "${mb[@]}" | cut -d. -f1) / 1024 )) MiB"
    echo "accuracy:         textbench ${aa[*]}, gensim ${ab[*]}"
    awk -v a="$mwa" -v b="$mwb" -v ta="$mta" -v tb="$mtb" 'BEGIN { printf "textbench trains at %.2fx gensim'"'"'s words/s and runs the whole job %.2fx as fast\n", a / b, tb / ta }'
    rm -f "$one"
done
