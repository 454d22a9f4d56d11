"""Summarises benches/perf.sh's results.jsonl: medians over rounds, ratios textbench / PyTorch, GFLOP/s
against each engine's own measured matrix-product peak, and peak memory. Prints Markdown.

    python benches/perf_summary.py target/perf/results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def main():
    rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
    by = defaultdict(list)
    for r in rows:
        by[(r["engine"], r["workload"], r["mode"])].append(r)
    med = lambda key, field: statistics.median(r[field] for r in by[key]) if by.get(key) else float("nan")
    peak = {e: med((e, "matmul", "peak"), "peak_gflop_per_s") for e in ("textbench", "pytorch")}
    rounds = max((r["round"] for r in rows), default=0)
    torch_version = next((r.get("torch") for r in rows if r.get("torch")), "?")
    unit = {"infer": "sentences/s", "finetune": "samples/s", "lora": "samples/s"}
    print(f"Medians over {rounds} alternating round(s); PyTorch {torch_version}; threads {rows[0]['threads'] if rows else '?'}.\n")
    print("| workload | PyTorch | textbench, same batches | ratio | textbench, own batching | ratio (best vs best) | padding same / own |")
    print("|---|---|---|---|---|---|---|")
    for w in ("infer", "finetune", "lora"):
        t, s, b = med(("pytorch", w, "torch"), "items_per_s"), med(("textbench", w, "same"), "items_per_s"), med(("textbench", w, "best"), "items_per_s")
        pad = lambda k: med(k, "padded_tokens") / med(k, "real_tokens")
        print(f"| {w} ({unit[w]}) | {t:.1f} | {s:.1f} | {s / t:.2f}× | {b:.1f} | {b / t:.2f}× | {pad(('textbench', w, 'same')):.2f} / {pad(('textbench', w, 'best')):.2f} |")
    print(f"\nMatrix-product peak (best of 3 shapes, f32): textbench/candle {peak['textbench']:.0f} GFLOP/s, PyTorch {peak['pytorch']:.0f} GFLOP/s.\n")
    print("| workload | GFLOP/s PyTorch | % of its peak | GFLOP/s textbench (same) | % of peak | GFLOP/s textbench (own) | peak RSS MB PyTorch | textbench same | textbench own |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in ("infer", "finetune", "lora"):
        gt, gs, gb = med(("pytorch", w, "torch"), "gflop_per_s"), med(("textbench", w, "same"), "gflop_per_s"), med(("textbench", w, "best"), "gflop_per_s")
        mt, ms, mb = med(("pytorch", w, "torch"), "peak_rss_mb"), med(("textbench", w, "same"), "peak_rss_mb"), med(("textbench", w, "best"), "peak_rss_mb")
        print(f"| {w} | {gt:.0f} | {100 * gt / peak['pytorch']:.0f}% | {gs:.0f} | {100 * gs / peak['textbench']:.0f}% | {gb:.0f} | {mt:.0f} | {ms:.0f} | {mb:.0f} |")


if __name__ == "__main__":
    main()
