#!/usr/bin/env bash
# textbench's transformer engine against PyTorch + transformers + peft on the SMS data with MiniLM,
# run alternately in one sitting (shared machines drift: read the ratios, not absolute figures).
#
#   benches/perf.sh [DATA_DIR] [MODELS_DIR] [ROUNDS]
#
# Workloads: inference (mean-pooled embeddings of the evaluation split, batch 32), full fine-tuning and
# LoRA (batch 16, max length 128, AdamW; 40 timed steps after 3 untimed). Two batching modes:
#   same:   textbench runs the random, dynamically padded batches it writes for PyTorch, which runs
#           exactly those (engine against engine); PyTorch's DataLoader + DataCollatorWithPadding
#           default. textbench packs each batch's real tokens and skips the padding (its CPU default);
#           PyTorch computes the padding and masks it.
#   padded: the same batches, textbench computing the padding too (`bench perf --padded`): the two
#           engines at equal work.
#   best:   textbench's own batching (the spec's `bucketing`), against PyTorch's default (the same
#           random batches) and against PyTorch's best practice on the same examples: inference sorted
#           by length (sentence-transformers' `encode`), training in length-grouped batches (Hugging Face
#           Trainer's `group_by_length`); and, where the CPU has AVX512-BF16 or AMX, that best practice
#           under bf16 autocast (other numerics: marked so in the summary).
# WORKLOADS chooses other specs, as kind:spec pairs: the decoder LLM is
#   WORKLOADS="infer:experiments/sms-llm-frozen.yaml lora:experiments/sms-llm-lora.yaml" benches/perf.sh
# (SmolLM2's GGUF folder is read by transformers' GGUF loader, which needs the `gguf` package).
# Also the matrix-product rate of both engines and the CPU's f32 FMA peak (benches/fma_peak.c, built with
# the system's cc), the rates every GFLOP/s is read against, and the CPU model; with LSA=1, the LSA
# baseline against scikit-learn (benches/lsa_vs_sklearn.sh). The figures hold for the machine they ran
# on: the summary names it, and nothing measured on one CPU is claimed for another.
#
# PyTorch is installed into a virtualenv (PERF_VENV, default target/perf-venv) from
# benches/requirements-perf.txt on first use; set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# to get the CPU-only wheel instead of PyPI's CUDA build. Results: target/perf/results.jsonl (one JSON
# object per measurement) and target/perf/summary.md (medians over the rounds, and the ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets}
models=${2:-../shared/models}
rounds=${3:-2}
steps=${STEPS:-40}
venv=${PERF_VENV:-target/perf-venv}
out=target/perf
mkdir -p "$out"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, transformers, peft' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        "$venv/bin/pip" install -q --index-url "$TORCH_INDEX_URL" "$(grep '^torch==' benches/requirements-perf.txt)"
    fi
    "$venv/bin/pip" install -q -r benches/requirements-perf.txt
fi
cargo build --release -q
cc -O3 -march=native -mprefer-vector-width=512 -ffp-contract=fast -fopenmp benches/fma_peak.c -o target/fma_peak
threads=$(./target/release/bench perf --workload matmul --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["threads"])')
bf16=0
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then bf16=1; fi
bench() { ./target/release/bench -q --data-dir "$data" --models-dir "$models" perf --json "$@"; }
torch() { "$venv/bin/python" benches/torch_perf.py "$@" 2>/dev/null; }

results=$out/results.jsonl
: > "$results"
record() { # round, mode, json line
    python3 -c 'import json,sys; d=json.loads(sys.argv[3]); d["round"]=int(sys.argv[1]); d["mode"]=sys.argv[2]; print(json.dumps(d))' "$1" "$2" "$3" >> "$results"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "CPU: $cpu; $(nproc) logical CPUs, $threads threads used; bf16 autocast measured: $([ $bf16 = 1 ] && echo yes || echo no)" >&2
for round in $(seq "$rounds"); do
    echo "== round $round of $rounds" >&2
    record "$round" peak "$(target/fma_peak "$threads")"
    record "$round" peak "$(bench --workload matmul)"
    record "$round" peak "$(torch --matmul)"
    if [ $bf16 = 1 ]; then record "$round" peak-bf16 "$(torch --matmul --bf16)"; fi
    for w in ${WORKLOADS:-infer:experiments/sms-frozen.yaml finetune:experiments/sms-finetune.yaml lora:experiments/sms-lora.yaml}; do
        name=${w%%:*}; spec=${w#*:}
        kind=train; [ "$name" = infer ] && kind=infer
        batches=$out/batches-$name.json
        # Alternate which engine goes first, round by round.
        if [ $((round % 2)) = 1 ]; then
            record "$round" same "$(bench --workload "$kind" --spec "$spec" --steps "$steps" --batching random --batches-out "$batches")"
            record "$round" torch "$(torch "$batches")"
            record "$round" padded "$(bench --workload "$kind" --spec "$spec" --steps "$steps" --batching random --padded)"
            record "$round" best "$(bench --workload "$kind" --spec "$spec" --steps "$steps" --batching bucketed)"
            record "$round" torch-grouped "$(torch "$batches" --grouped)"
            if [ $bf16 = 1 ]; then record "$round" torch-bf16 "$(torch "$batches" --grouped --bf16)"; fi
        else
            if [ $bf16 = 1 ]; then record "$round" torch-bf16 "$(torch "$batches" --grouped --bf16)"; fi
            record "$round" torch-grouped "$(torch "$batches" --grouped)"
            record "$round" best "$(bench --workload "$kind" --spec "$spec" --steps "$steps" --batching bucketed)"
            record "$round" padded "$(bench --workload "$kind" --spec "$spec" --steps "$steps" --batching random --padded)"
            record "$round" same "$(bench --workload "$kind" --spec "$spec" --steps "$steps" --batching random --batches-out "$batches")"
            record "$round" torch "$(torch "$batches")"
        fi
        echo "   $name done" >&2
    done
done
python3 benches/perf_summary.py "$results" "$cpu" | tee "$out/summary.md"
if [ "${LSA:-0}" = 1 ]; then
    benches/lsa_vs_sklearn.sh "$data" 5
fi
