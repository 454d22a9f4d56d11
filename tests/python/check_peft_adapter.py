"""Checks that a LoRA adapter saved by textbench loads in Python's peft and gives the same probabilities.

    python tests/python/check_peft_adapter.py BASE_MODEL_DIR ADAPTER_DIR PREDICTIONS.jsonl [TOLERANCE]

PREDICTIONS.jsonl is the output of `bench predict --run ID --json TEXT...` (one {"text", "probability"} per
line). The base model is loaded as AutoModelForSequenceClassification (BERT with the checkpoint's pooler and a
fresh classifier), the adapter applied with PeftModel.from_pretrained (which restores the classifier from the
adapter's modules_to_save), and softmax(logits)[1] compared with textbench's probability. Needs torch,
transformers and peft.
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main():
    base, adapter, preds_path = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
    rows = [json.loads(l) for l in open(preds_path, encoding="utf-8") if l.strip()]
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    model = PeftModel.from_pretrained(model, adapter).eval()
    worst = 0.0
    with torch.no_grad():
        for row in rows:
            enc = tok(row["text"], truncation=True, max_length=128, return_tensors="pt")
            p = torch.softmax(model(**enc).logits, dim=-1)[0, 1].item()
            worst = max(worst, abs(p - row["probability"]))
    print(f"{len(rows)} texts, max |p_peft - p_textbench| = {worst:.2e} (tolerance {tol:g})")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
