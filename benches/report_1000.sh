#!/usr/bin/env bash
# `bench report` over 1,000 generated run records (4 datasets x 25 variants x 10 seeds), whole process.
# Target: under 5 seconds. Usage: benches/report_1000.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
export BENCH_MODELS_DIR=${BENCH_MODELS_DIR:-../shared/models}
# Real records to copy: the LSA smoke runs (a second of work).
./target/release/bench -q run experiments/smoke-lsa.yaml --runs-dir "$work/templates" --force >/dev/null
python3 benches/make_records.py "$work/templates" "$work/runs" "$count"
cmd="./target/release/bench -q report --runs-dir $work/runs --out $work/report/index.html"
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs 5 "$cmd"
else
    for i in 1 2 3 4 5; do /usr/bin/time -f "%e s wall, %M KiB peak" $cmd; done
fi
