"""Checks that a LoRA adapter saved by textbench loads in Python's peft and gives the same probabilities.

    python tests/python/check_peft_adapter.py BASE_MODEL_DIR ADAPTER_DIR PREDICTIONS.jsonl [TOLERANCE]

PREDICTIONS.jsonl is the output of `bench predict --run ID --json TEXT...` (one {"text", "probability"} per
line). The base model is loaded as AutoModelForSequenceClassification with the config textbench saved beside
the adapter (classes, and for a decoder the pad id its head finds the last token by): BERT with the
checkpoint's pooler and a fresh classifier, or LLaMA/Qwen2 with a fresh score layer. The adapter is applied
with PeftModel.from_pretrained (which restores the head from the adapter's modules_to_save), the texts are
tokenized by the model's tokenizer.json as textbench tokenizes them, and softmax(logits)[1] is compared with
textbench's probability. Needs torch, transformers and peft.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast


def main():
    base, adapter, preds_path = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
    rows = [json.loads(l) for l in open(preds_path, encoding="utf-8") if l.strip()]
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(base, "tokenizer.json"))
    config = AutoConfig.from_pretrained(adapter)
    model = AutoModelForSequenceClassification.from_pretrained(base, config=config)
    model = PeftModel.from_pretrained(model, adapter).eval()
    worst = 0.0
    with torch.no_grad():
        for row in rows:
            enc = tok(row["text"], truncation=True, max_length=128, return_tensors="pt")
            enc.pop("token_type_ids", None)  # all zeros for BERT (its default); decoders take none
            p = torch.softmax(model(**enc).logits, dim=-1)[0, 1].item()
            worst = max(worst, abs(p - row["probability"]))
    print(f"{len(rows)} texts, max |p_peft - p_textbench| = {worst:.2e} (tolerance {tol:g})")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
