#!/usr/bin/env python3
"""Generates run records for the report benchmark: copies of real records (from a runs folder) spread over
datasets, method variants and seeds, with their numbers jittered, so `bench report` has realistic work:
every record parsed, a leaderboard per dataset, charts, curves and pairwise tests.

Usage: make_records.py TEMPLATE_RUNS_DIR OUT_DIR [COUNT]   (COUNT defaults to 1000)
"""
import hashlib
import json
import pathlib
import random
import sys

DATASETS, SEEDS = 4, 10


def main():
    src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    templates = [json.loads(p.read_text()) for p in sorted(src.glob("*.json"))]
    templates = [t for t in templates if t.get("status") == "ok"]
    if not templates:
        sys.exit(f"no successful records in {src}")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    variants = max(1, count // (DATASETS * SEEDS))
    made = 0
    for d in range(DATASETS):
        for v in range(variants):
            for s in range(SEEDS):
                if made == count:
                    break
                r = json.loads(json.dumps(templates[(v + d) % len(templates)]))
                key = f"{d}/{v}/{s}"
                r["id"] = hashlib.sha256(key.encode()).hexdigest()[:16]
                r["config_hash"] = hashlib.sha256(f"{d}/{v}".encode() + bytes([s])).hexdigest()[:16]
                r["spec"]["name"] = f"generated-{v:03d}"
                r["data"]["name"] = f"dataset-{d}"
                r["data"]["fingerprint"] = hashlib.sha256(f"data{d}".encode()).hexdigest()
                r["config"]["seed"] = s
                # A distinct configuration per variant: the records must still parse as textbench's.
                method = r["config"]["method"]
                method["C" if method["kind"] == "lsa" else "lr"] = 1.0 + v if method["kind"] == "lsa" else 1e-5 * (1 + v)
                for k in ("accuracy", "precision", "recall", "f1", "auroc", "average_precision"):
                    r["metrics"][k] = min(1.0, max(0.0, r["metrics"][k] + rng.uniform(-0.01, 0.01)))
                for p in r["predictions"]:
                    p["probability"] = min(1.0, max(0.0, p["probability"] + rng.uniform(-0.05, 0.05)))
                (out / f"{r['id']}.json").write_text(json.dumps(r))
                made += 1
    print(f"wrote {made} records into {out}")


if __name__ == "__main__":
    main()
