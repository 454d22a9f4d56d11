"""Tiny random decoders for the decoder family's tests, and transformers' outputs on them.

    python benches/tiny_decoders.py tests/data

writes two Hugging Face folders, tests/data/tiny-llama (LLaMA: grouped-query attention with 2 key/value
heads for 4 query heads, llama3 rotary scaling, separate output layer) and tests/data/tiny-qwen2 (Qwen2:
q/k/v biases, one key/value head, tied embeddings), each with a small word-level tokenizer.json, and
tests/data/tiny-decoders.json with, per model:

- `input_ids`, `last_token_hidden` and `mean_pooled` of the final-norm hidden states for each text, one
  text at a time (LlamaModel / Qwen2Model, eager attention, f32);
- `finetune` and `lora`: one cross-entropy backward pass of …ForSequenceClassification over the texts as
  one right-padded batch, dropout off, the `score` layer (and, for LoRA, peft's adapters on all seven
  projections, r 4, alpha 8) set by the formula tests/gradient_parity.rs uses; each trainable tensor's
  gradient as its L2 norm, sum, largest magnitude and projection on sin(0.37 i).

Weights are drawn with a fixed torch seed; norms and biases are drawn too (their defaults, ones and
zeros, would hide a norm or bias applied in the wrong place).
"""
import csv
import json
import os
import re
import sys

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import AutoModel, AutoModelForSequenceClassification, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

# Run as a script from benches/ (python benches/tiny_decoders.py), so its sibling is importable: the same
# probe, fill formula and gradient summaries as the MiniLM reference.
from torch_gradients import fill, fill_adapters, summaries

TEXTS = [
    "winner you have been selected to receive a prize reward call now",
    "i will be late the bus broke down save me some dinner",
    "free entry to win a prize text now",
    "ok",
    "call me when you get home",
]
LABELS = [1, 0, 1, 0, 0]


def vocabulary():
    """The words of TEXTS and of the shipped smoke samples (datasets/smoke/*.csv), split as the
    tokenizer's Whitespace pre-tokenizer splits (runs of word characters, runs of other non-space
    characters), lower-cased: the smoke specs train the tiny decoders on those samples."""
    texts = list(TEXTS)
    smoke = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "datasets", "smoke")
    for name in sorted(os.listdir(smoke)):
        if name.endswith(".csv"):
            with open(os.path.join(smoke, name), newline="") as f:
                texts += [row["text"] for row in csv.DictReader(f)]
    return sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]+", t.lower())})


def tokenizer(path):
    words = vocabulary()
    vocab = {"<pad>": 0, "<unk>": 1}
    for w in words:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    os.makedirs(path, exist_ok=True)
    tok.save(os.path.join(path, "tokenizer.json"))
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"), pad_token="<pad>", unk_token="<unk>", model_input_names=["input_ids", "attention_mask"])
    return fast, len(vocab)


def configs(vocab):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=128,
                  pad_token_id=0, bos_token_id=None, eos_token_id=None, initializer_range=0.2, attn_implementation="eager")
    llama = LlamaConfig(num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                        rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 64}, **common)
    qwen2 = Qwen2Config(num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, **common)
    return {"tiny-llama": llama, "tiny-qwen2": qwen2}


def make(name, config, out):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).float()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    # Saved as the base model (LlamaModel's names under `model.` and an lm_head, as LlamaForCausalLM),
    # the way checkpoints are shared; the score layer is not part of it.
    from transformers import AutoModelForCausalLM

    causal = AutoModelForCausalLM.from_config(config).float()
    missing = causal.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("score.")}, strict=False)
    assert all(k.startswith("lm_head") for k in missing.missing_keys), missing
    path = os.path.join(out, name)
    causal.save_pretrained(path, safe_serialization=True)
    return path


def hidden_states(path, tok):
    model = AutoModel.from_pretrained(path, attn_implementation="eager").float().eval()
    rows = []
    for text in TEXTS:
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0]
        rows.append({"input_ids": enc["input_ids"][0].tolist(), "last_token_hidden": h[-1].tolist(), "mean_pooled": h.mean(0).tolist()})
    return rows


def classifier(path):
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, attn_implementation="eager").float()
    model.eval()
    fill(model.score.weight, 0.02, 0.5)
    return model


def step(model, tok):
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    loss = F.cross_entropy(model(**enc).logits, torch.tensor(LABELS))
    loss.backward()
    return loss.item()


def gradients(path, tok):
    from peft import LoraConfig, get_peft_model

    model = classifier(path)
    loss = step(model, tok)
    full = {"loss": loss, "gradients": {n.removeprefix("model."): g for n, g in summaries(model.named_parameters()).items()}}
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(classifier(path), LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    model.eval()
    fill_adapters(model)
    loss = step(model, tok)

    def ours(name):
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight → layers.0.self_attn.q_proj.lora_A.weight
        name = name.removeprefix("base_model.model.").removeprefix("model.")
        return name.replace(".default.", ".").replace("score.modules_to_save.", "score.")

    lora = {"loss": loss, "gradients": {ours(n): g for n, g in summaries(model.named_parameters()).items()}}
    return full, lora


def main():
    out = sys.argv[1]
    reference = {"torch": torch.__version__, "texts": TEXTS, "labels": LABELS, "models": {}}
    for name, config in configs(0).items():
        tok, vocab = tokenizer(os.path.join(out, name))
        config.vocab_size = vocab
        path = make(name, config, out)
        full, lora = gradients(path, tok)
        reference["models"][name] = {"rows": hidden_states(path, tok), "finetune": full, "lora": lora}
        print(f"{name}: finetune loss {full['loss']:.6f} ({len(full['gradients'])} gradients), lora loss {lora['loss']:.6f} ({len(lora['gradients'])})")
    with open(os.path.join(out, "tiny-decoders.json"), "w") as f:
        json.dump(reference, f, indent=1)


if __name__ == "__main__":
    main()
