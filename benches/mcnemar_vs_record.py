"""McNemar's exact test between a textbench run and PyTorch on the same evaluation split: which examples
each gets wrong, and whether the disagreements lean to one side more than chance would.

    python benches/mcnemar_vs_record.py RUNS_DIR/RUN_ID.json SPLIT_DIR PREDICTIONS.jsonl

SPLIT_DIR is what `bench datasets split` wrote for the run's spec; PREDICTIONS.jsonl is what
`torch_quality.py --predictions` wrote, one line per line of SPLIT_DIR/eval.jsonl. The record's predictions,
in the order of their dataset index, are the evaluation split's lines in order; the script checks that (every
label, and the start of every text the record kept) before it counts anything. Both sides decide at probability 0.5 (two
classes) or by the most probable class, as the record's metrics do. Prints one JSON line.
"""
import json
import sys
from math import comb


def argmax(probabilities):
    return max(range(len(probabilities)), key=lambda c: probabilities[c])


def main():
    record_path, split_dir, predictions_path = sys.argv[1:4]
    with open(record_path, encoding="utf-8") as f:
        record = json.load(f)
    with open(f"{split_dir}/eval.jsonl", encoding="utf-8") as f:
        split = [json.loads(line) for line in f]
    with open(predictions_path, encoding="utf-8") as f:
        torch_rows = [json.loads(line) for line in f]
    binary = bool(record.get("predictions"))
    ours = sorted(record["predictions" if binary else "class_predictions"], key=lambda p: p["index"])
    if binary:
        threshold = record["metrics"].get("threshold", 0.5)
        our_pred = [int(p["probability"] > threshold) for p in ours]
    else:
        our_pred = [argmax(p["probabilities"]) for p in ours]
    our_label = [int(p["label"]) for p in ours]
    if not (len(ours) == len(split) == len(torch_rows)):
        sys.exit(f"lengths differ: record {len(ours)}, {split_dir}/eval.jsonl {len(split)}, {predictions_path} {len(torch_rows)}")
    for i, (p, s, t) in enumerate(zip(ours, split, torch_rows)):
        if our_label[i] != int(s["label"]) or int(t["label"]) != int(s["label"]):
            sys.exit(f"line {i + 1}: labels differ (record {our_label[i]}, split {s['label']}, PyTorch {t['label']}): not the same split")
        # A record keeps the first 400 characters of each text it got wrong.
        if "text" in p and not s["text"].startswith(p["text"]):
            sys.exit(f"line {i + 1}: the record's text differs from eval.jsonl's: not the same split")
    torch_pred = [argmax(t["probabilities"]) for t in torch_rows]
    ours_right = [p == l for p, l in zip(our_pred, our_label)]
    torch_right = [p == l for p, l in zip(torch_pred, our_label)]
    only_ours = sum(1 for a, b in zip(ours_right, torch_right) if a and not b)
    only_torch = sum(1 for a, b in zip(ours_right, torch_right) if b and not a)
    n = only_ours + only_torch
    # Exact two-sided binomial test of the disagreements against an even split.
    tail = sum(comb(n, k) for k in range(min(only_ours, only_torch) + 1)) / 2**n if n else 1.0
    print(json.dumps({
        "run": record["id"], "examples": len(split),
        "textbench_accuracy": sum(ours_right) / len(split), "pytorch_accuracy": sum(torch_right) / len(split),
        "only_textbench_right": only_ours, "only_pytorch_right": only_torch, "p_value": min(1.0, 2 * tail),
    }))


if __name__ == "__main__":
    main()
