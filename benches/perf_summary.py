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
    print("Tokens computed per real token: what each engine computed (PyTorch computes the padding of its")
    print("batches; textbench packs the real tokens unless `--padded`).\n")
    print("| workload | PyTorch | textbench, same batches | ratio | textbench, same batches, padding computed | ratio (equal work) | textbench, own batching | ratio (best vs best) | tokens computed per real token: PyTorch / same / padded / own |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in ("infer", "finetune", "lora"):
        t, s, p, b = (med(k, "items_per_s") for k in (("pytorch", w, "torch"), ("textbench", w, "same"), ("textbench", w, "padded"), ("textbench", w, "best")))
        computed = lambda k: med(k, "computed_tokens") / med(k, "real_tokens")
        tokens = " / ".join(f"{computed(k):.2f}" for k in (("pytorch", w, "torch"), ("textbench", w, "same"), ("textbench", w, "padded"), ("textbench", w, "best")))
        print(f"| {w} ({unit[w]}) | {t:.1f} | {s:.1f} | {s / t:.2f}× | {p:.1f} | {p / t:.2f}× | {b:.1f} | {b / t:.2f}× | {tokens} |")
    print(f"\nMatrix-product peak (best of 3 shapes, f32): textbench/candle {peak['textbench']:.0f} GFLOP/s, PyTorch {peak['pytorch']:.0f} GFLOP/s.\n")
    print("GFLOP/s count the products each engine computed (padding included where it computed it).\n")
    print("| workload | GFLOP/s PyTorch | % of its peak | GFLOP/s textbench (same) | % of peak | GFLOP/s textbench (padded) | % of peak | GFLOP/s textbench (own) | peak RSS MB PyTorch | textbench same | padded | own |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in ("infer", "finetune", "lora"):
        gt, gs, gp, gb = (med(k, "gflop_per_s") for k in (("pytorch", w, "torch"), ("textbench", w, "same"), ("textbench", w, "padded"), ("textbench", w, "best")))
        mt, ms, mp, mb = (med(k, "peak_rss_mb") for k in (("pytorch", w, "torch"), ("textbench", w, "same"), ("textbench", w, "padded"), ("textbench", w, "best")))
        pct = lambda g, e: 100 * g / peak[e]
        print(f"| {w} | {gt:.0f} | {pct(gt, 'pytorch'):.0f}% | {gs:.0f} | {pct(gs, 'textbench'):.0f}% | {gp:.0f} | {pct(gp, 'textbench'):.0f}% | {gb:.0f} | {mt:.0f} | {ms:.0f} | {mp:.0f} | {mb:.0f} |")


if __name__ == "__main__":
    main()
