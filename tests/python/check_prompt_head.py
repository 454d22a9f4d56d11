"""Checks a `head: prompt` run against transformers (and peft, when the run trained adapters): the same prompt,
the same next-token logits of the label words, the same class probabilities.

    python tests/python/check_prompt_head.py BASE_MODEL_DIR RUN_DIR PREDICTIONS.jsonl [TOLERANCE] [--gguf FILE]

RUN_DIR is the run's artifact folder: its config.json carries `textbench_prompt` (the rendered prompt before
and after the text, and the label words' token ids); an adapter_model.safetensors there (task CAUSAL_LM) is
applied with PeftModel.from_pretrained; without one (a zero-shot run) the base model is used as it is.
PREDICTIONS.jsonl is `bench predict --run ID --json TEXT...`. The base is AutoModelForCausalLM (from a GGUF
through transformers' loader with --gguf, which needs the `gguf` package; a tied output layer is tied by
hand, since transformers 4.46's GGUF loader leaves lm_head random). Texts must fit max_length untruncated.
"""
import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("run")
    ap.add_argument("predictions")
    ap.add_argument("tolerance", nargs="?", type=float, default=1e-4)
    ap.add_argument("--gguf")
    args = ap.parse_args()
    with open(os.path.join(args.run, "config.json")) as f:
        prompt = json.load(f)["textbench_prompt"]
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(args.base, "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(args.base, **({"gguf_file": args.gguf} if args.gguf else {}))
    with open(os.path.join(args.base, "config.json")) as f:
        tied = json.load(f).get("tie_word_embeddings", False)
    if tied:  # transformers' GGUF loader reads tie_word_embeddings as false and leaves lm_head random
        model.lm_head.weight = model.model.embed_tokens.weight
    if os.path.exists(os.path.join(args.run, "adapter_model.safetensors")):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.run)
    model.eval()
    ids = torch.tensor(prompt["label_ids"])
    rows = [json.loads(line) for line in open(args.predictions, encoding="utf-8") if line.strip()]
    worst = 0.0
    with torch.no_grad():
        for row in rows:
            enc = tok(prompt["before"] + row["text"] + prompt["after"], return_tensors="pt")
            enc.pop("token_type_ids", None)
            logits = model(**enc).logits[0, -1]
            p = torch.softmax(logits[ids], -1)[1].item()
            top = tok.convert_ids_to_tokens(logits.topk(3).indices.tolist())
            print(f"p={p:.4f} textbench={row['probability']:.4f} top-3 next tokens {top}  {row['text'][:50]!r}")
            worst = max(worst, abs(p - row["probability"]))
    print(f"{len(rows)} texts, max |p_transformers - p_textbench| = {worst:.2e} (tolerance {args.tolerance:g})")
    raise SystemExit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
