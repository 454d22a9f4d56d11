"""Summarises benches/perf.sh's results.jsonl: medians over rounds; textbench against PyTorch on the same
batches (engine against engine, and at equal work) and best practice against best practice (PyTorch's
length-sorted inference and length-grouped training, and its bf16 autocast where measured, marked as other
numerics); every GFLOP/s read against the CPU's f32 FMA peak and against each engine's own matrix-product
rate; peak memory. Prints Markdown for the machine it ran on.

    python benches/perf_summary.py target/perf/results.jsonl ["CPU MODEL"]
"""
import json
import statistics
import sys
from collections import defaultdict

UNIT = {"infer": "sentences/s", "finetune": "samples/s", "lora": "samples/s"}
WORKLOADS = ("infer", "finetune", "lora")
# (engine, mode) of each measurement the tables read.
TORCH, TORCH_BEST, TORCH_BF16 = ("pytorch", "torch"), ("pytorch", "torch-grouped"), ("pytorch", "torch-bf16")
SAME, PADDED, OWN = ("textbench", "same"), ("textbench", "padded"), ("textbench", "best")


def main():
    rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
    cpu = sys.argv[2] if len(sys.argv) > 2 else "?"
    by = defaultdict(list)
    for r in rows:
        by[(r["engine"], r["workload"], r["mode"])].append(r)

    def med(key, field):
        values = [r[field] for r in by.get(key, [])]
        return statistics.median(values) if values else float("nan")

    def m(w, which, field="items_per_s"):
        return med((which[0], w, which[1]), field)

    hw = med(("hardware", "fma", "peak"), "peak_gflop_per_s")
    own_peak = {"textbench": med(("textbench", "matmul", "peak"), "peak_gflop_per_s"), "pytorch": med(("pytorch", "matmul", "peak"), "peak_gflop_per_s")}
    bf16_peak = med(("pytorch", "matmul", "peak-bf16"), "peak_gflop_per_s")
    has_bf16 = bool(by.get(("pytorch", "infer", "torch-bf16")))
    rounds = max((r["round"] for r in rows), default=0)
    torch_version = next((r.get("torch") for r in rows if r.get("torch")), "?")
    threads = next((r.get("threads") for r in rows if r.get("threads")), "?")

    print(f"CPU: {cpu}; {threads} threads; PyTorch {torch_version}; medians over {rounds} alternating round(s).\n")
    print(f"f32 peaks: the CPU's FMA units {hw:.0f} GFLOP/s (benches/fma_peak.c); matrix products, textbench/candle "
          f"{own_peak['textbench']:.0f}, PyTorch {own_peak['pytorch']:.0f}" + (f"; PyTorch bf16 products {bf16_peak:.0f}." if has_bf16 else "."))
    print()
    print("**Same batches** (the random, dynamically padded batches of PyTorch's default DataLoader + collator).")
    print("textbench packs each batch's real tokens (its CPU default); with `--padded` it computes the padding")
    print("as PyTorch does: the engines at equal work.\n")
    print("| workload | PyTorch | textbench | ratio | textbench, padding computed | ratio (equal work) |")
    print("|---|---|---|---|---|---|")
    for w in WORKLOADS:
        t, s, p = m(w, TORCH), m(w, SAME), m(w, PADDED)
        print(f"| {w} ({UNIT[w]}) | {t:.1f} | {s:.1f} | {s / t:.2f}× | {p:.1f} | {p / t:.2f}× |")
    print()
    print("**Best practice against best practice**, on the same examples: textbench's own batching (the spec's")
    print("`bucketing`) against PyTorch's length-sorted inference (sentence-transformers' `encode`) and")
    print("length-grouped training (Trainer's `group_by_length`).")
    if has_bf16:
        print("The bf16 column is PyTorch's best practice under `torch.autocast(\"cpu\", bfloat16)`: other numerics")
        print("than textbench's f32, shown for what a PyTorch user on this CPU would reach.")
    print()
    head = "| workload | PyTorch best (f32) | textbench own | ratio |" + (" PyTorch best, bf16 autocast | ratio |" if has_bf16 else "")
    print(head)
    print("|---|---|---|---|" + ("---|---|" if has_bf16 else ""))
    for w in WORKLOADS:
        b, o = m(w, TORCH_BEST), m(w, OWN)
        line = f"| {w} ({UNIT[w]}) | {b:.1f} | {o:.1f} | {o / b:.2f}× |"
        if has_bf16:
            f = m(w, TORCH_BF16)
            line += f" {f:.1f} | {o / f:.2f}× |"
        print(line)
    print()
    print("GFLOP/s count the matrix products each engine computed (padding included where it computed it),")
    print("as a share of the CPU's f32 FMA peak and of the engine's own matrix-product rate.\n")
    cols = [("PyTorch", TORCH, "pytorch"), ("PyTorch best", TORCH_BEST, "pytorch"), ("textbench same", SAME, "textbench"), ("textbench padded", PADDED, "textbench"), ("textbench own", OWN, "textbench")]
    print("| workload | " + " | ".join(c[0] for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for w in WORKLOADS:
        cells = []
        for _, which, engine in cols:
            g = m(w, which, "gflop_per_s")
            cells.append(f"{g:.0f} ({100 * g / hw:.0f}% / {100 * g / own_peak[engine]:.0f}%)")
        print(f"| {w} | " + " | ".join(cells) + " |")
    print("\n(GFLOP/s (share of the FMA peak / share of the engine's own product rate).)\n")
    print("Tokens computed per real token, and peak RSS in MB:\n")
    print("| workload | " + " | ".join(c[0] for c in cols) + " | peak RSS MB, same order |")
    print("|---|" + "---|" * len(cols) + "---|")
    for w in WORKLOADS:
        tokens = [m(w, which, "computed_tokens") / m(w, which, "real_tokens") for _, which, _ in cols]
        mem = [m(w, which, "peak_rss_mb") for _, which, _ in cols]
        print(f"| {w} | " + " | ".join(f"{t:.2f}" for t in tokens) + " | " + " / ".join(f"{x:.0f}" for x in mem) + " |")


if __name__ == "__main__":
    main()
