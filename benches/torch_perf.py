"""PyTorch's side of benches/perf.sh: the same workload on the same batches as `bench perf`.

    python benches/torch_perf.py BATCHES.json [--grouped] [--bf16]   # from `bench perf --batches-out`
    python benches/torch_perf.py --matmul [--bf16]

--grouped: PyTorch's best practice instead of the file's batches, on the same examples. Inference sorts
the texts by length before batching, as sentence-transformers' `encode` does; training groups them as
Hugging Face Trainer's `group_by_length` does (LengthGroupedSampler: shuffled mega-batches of 50 batches,
each sorted by length). --bf16: matrix products and attention under `torch.autocast("cpu", bfloat16)`
(other numerics than f32; fast where the CPU has AVX512-BF16 or AMX).

Training: AutoModelForSequenceClassification on the same backbone folder (BERT, its pooler, a fresh
2-way head; a decoder, LlamaForSequenceClassification's fresh `score` on the last token, a folder holding
only a GGUF read through transformers' GGUF loader), full fine-tuning or peft LoRA with the batch file's
rank, alpha, dropout and target modules; torch.optim.AdamW with weight decay on weights only (as Hugging Face's Trainer), gradient
clipping, dropout on (train mode). Inference: AutoModel, mean pooling, torch.inference_mode.
Each batch is padded to its longest sequence, as DataCollatorWithPadding does. The first
`warmup_batches` run untimed. Prints one JSON line in the same shape as `bench perf --json`.
"""
import contextlib
import json
import os
import resource
import sys
import time

import torch

# The names textbench's spec uses for LoRA targets, as module-name patterns inside BertModel.
TARGETS = {
    "query": r"attention\.self\.query",
    "key": r"attention\.self\.key",
    "value": r"attention\.self\.value",
    "attention_output": r"attention\.output\.dense",
    "intermediate": r"intermediate\.dense",
    "output": r"(?<!attention\.)output\.dense",
}


# A decoder's targets are its module names (q_proj, …, down_proj).
DECODERS = ("llama", "mistral", "qwen2")


def load(cls, backbone, **kwargs):
    """A backbone folder as transformers loads it: its weights, or, where it has only a GGUF file, that file
    through transformers' GGUF loader (de-quantized to f32). Returns the model and its pad id (the folder's
    config.json says it for decoders, whose transformers config from a GGUF may not)."""
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    ggufs = sorted(f for f in os.listdir(backbone) if f.endswith(".gguf"))
    extra = {"gguf_file": ggufs[0]} if ggufs and not any(os.path.exists(os.path.join(backbone, w)) for w in weights) else {}
    model = cls.from_pretrained(backbone, **extra, **kwargs)
    config_path = os.path.join(backbone, "config.json")
    pad_id = model.config.pad_token_id
    if os.path.exists(config_path):
        with open(config_path) as f:
            pad_id = json.load(f).get("pad_token_id", pad_id)
    model.config.pad_token_id = pad_id or 0
    return model, pad_id or 0


def is_decoder(cfg):
    return cfg.model_type in DECODERS


def lora_pattern(targets=tuple(TARGETS)):
    """peft's target_modules regex for textbench target names, on the encoder's layers only."""
    return r".*encoder\.layer\.\d+\.(" + "|".join(TARGETS[t] for t in targets if t in TARGETS) + ")"


def adamw(named, lr, weight_decay):
    """AdamW as textbench (and Hugging Face's Trainer) sets it up: weight decay on weight matrices, not on
    biases or norms (BERT's LayerNorm, LLaMA's input_layernorm, post_attention_layernorm and norm)."""
    decay = [q for n, q in named if not n.endswith("bias") and "norm" not in n.lower()]
    plain = [q for n, q in named if n.endswith("bias") or "norm" in n.lower()]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pad(ids, pad_id):
    longest = max(len(s) for s in ids)
    tok = torch.full((len(ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for i, s in enumerate(ids):
        tok[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return tok, mask


def flops(cfg, batch, seq, classifier, pass_, adapters):
    """The same count as src/perf/flops.rs: matrix products only, on the padded batch."""
    b, t, h, i, layers = batch, seq, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    if is_decoder(cfg):
        # Seven projections (q and o of the query heads' width, k and v of the key/value heads'), attention
        # over every (query, key) pair computed, the score layer on one token per sequence.
        dh = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
        q_out, kv_out = cfg.num_attention_heads * dh, (cfg.num_key_value_heads or cfg.num_attention_heads) * dh
        weights = layers * 2.0 * b * t * (2 * h * q_out + 2 * h * kv_out + 3 * h * i) + (2.0 * b * h * 2 if classifier else 0.0)
        attention = layers * 4.0 * b * t * t * q_out
    else:
        weights = layers * 2.0 * b * t * (4 * h * h + 2 * h * i) + (2.0 * b * (h * h + 2 * h) if classifier else 0.0)
        attention = layers * 4.0 * b * t * t * h
    lora = sum(2.0 * b * t * adapters["rank"] * (inp + out) for inp, out in adapters["dims"]) if adapters else 0.0
    forward = weights + attention + lora
    if pass_ == "inference":
        return forward
    if pass_ == "full":
        return 3.0 * forward
    return forward + weights + 2.0 * (attention + lora)


def regroup(batches, warm, train):
    """The same examples (warm-up batches kept as they are), re-batched as PyTorch's best practice does."""
    size = len(batches[0]["ids"])
    examples = [(s, b["labels"][i] if train else None) for b in batches[warm:] for i, s in enumerate(b["ids"])]
    if train:
        # transformers' get_length_grouped_indices: a random permutation cut into mega-batches of 50
        # batches, each sorted by length (longest first), the longest batch moved to the front.
        g = torch.Generator().manual_seed(0)
        order = torch.randperm(len(examples), generator=g).tolist()
        mega = size * min(len(examples) // (size * 4), 50) or size
        order = [i for k in range(0, len(order), mega) for i in sorted(order[k : k + mega], key=lambda i: -len(examples[i][0]))]
    else:
        # sentence-transformers' encode: longest first.
        order = sorted(range(len(examples)), key=lambda i: -len(examples[i][0]))
    cut = [order[k : k + size] for k in range(0, len(order), size)]
    regrouped = [{"ids": [examples[i][0] for i in c], "labels": [examples[i][1] for i in c]} for c in cut]
    return batches[:warm] + regrouped


def autocast(bf16):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def result(workload, batches, seconds, gflop):
    items = sum(len(b["ids"]) for b in batches)
    real = sum(len(s) for b in batches for s in b["ids"])
    padded = sum(len(b["ids"]) * max(len(s) for s in b["ids"]) for b in batches)
    return {
        "engine": "pytorch",
        "workload": workload,
        "batching": "grouped" if GROUPED else "random",
        "precision": "bf16" if BF16 else "f32",
        "items": items,
        "seconds": seconds,
        "items_per_s": items / seconds,
        "real_tokens": real,
        "padded_tokens": padded,
        # transformers' BERT computes every padded position and masks it.
        "padded": True,
        "computed_tokens": padded,
        "gflop": gflop,
        "gflop_per_s": gflop / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def timed(batches, warm, run):
    """Runs the first `warm` batches untimed, then the rest timed; (timed batches, seconds)."""
    for b in batches[:warm]:
        run(b)
    start = time.perf_counter()
    for b in batches[warm:]:
        run(b)
    return batches[warm:], time.perf_counter() - start


def infer(spec):
    from transformers import AutoModel

    model, pad_id = load(AutoModel, spec["backbone"])
    model.eval()
    warm = spec["warmup_batches"]
    batches = regroup(spec["batches"], warm, False) if GROUPED else spec["batches"]

    def run(b):
        tok, mask = pad(b["ids"], pad_id)
        with autocast(BF16):
            hidden = model(input_ids=tok, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)

    with torch.inference_mode():
        done, seconds = timed(batches, warm, run)
    gflop = sum(flops(model.config, len(b["ids"]), max(len(s) for s in b["ids"]), False, "inference", None) for b in done) / 1e9
    return result("infer", done, seconds, gflop)


def train(spec):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    p = spec["params"]
    model, pad_id = load(AutoModelForSequenceClassification, spec["backbone"], num_labels=2)
    decoder = is_decoder(model.config)
    adapters = None
    if spec["method"] == "lora":
        from peft import LoraConfig, get_peft_model

        lora = p["lora"]
        targets = list(lora["targets"]) if decoder else lora_pattern(lora["targets"])
        cfg = LoraConfig(task_type="SEQ_CLS", r=lora["rank"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=targets)
        model = get_peft_model(model, cfg)
        body = "layers." if decoder else "encoder.layer"
        dims = [(m.in_features, m.out_features) for n, m in model.named_modules() if hasattr(m, "lora_A") and hasattr(m, "in_features") and body in n]
        adapters = {"rank": lora["rank"], "dims": dims}
    model.train()
    named = [(n, q) for n, q in model.named_parameters() if q.requires_grad]
    opt = adamw(named, p["lr"], p["weight_decay"])
    warm = spec["warmup_batches"]
    batches = regroup(spec["batches"], warm, True) if GROUPED else spec["batches"]

    def step(b):
        tok, mask = pad(b["ids"], pad_id)
        labels = torch.tensor(b["labels"], dtype=torch.long)
        with autocast(BF16):
            loss = model(input_ids=tok, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for _, q in named], p["max_grad_norm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    done, seconds = timed(batches, warm, step)
    pass_ = "full" if spec["method"] == "finetune" else "frozen"
    gflop = sum(flops(model.config, len(b["ids"]), max(len(s) for s in b["ids"]), True, pass_, adapters) for b in done) / 1e9
    return result(spec["method"], done, seconds, gflop)


def matmul():
    rates = []
    dtype = torch.bfloat16 if BF16 else torch.float32
    for m, k, n in [(1024, 1024, 1024), (2048, 384, 1536), (2048, 1536, 384)]:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            a @ b
            reps += 1
        rates.append({"shape": [m, k, n], "gflop_per_s": 2.0 * m * k * n * reps / (time.perf_counter() - start) / 1e9})
    return {
        "engine": "pytorch",
        "workload": "matmul",
        "precision": "bf16" if BF16 else "f32",
        "peak_gflop_per_s": max(r["gflop_per_s"] for r in rates),
        "rates": rates,
        "threads": torch.get_num_threads(),
    }


GROUPED = "--grouped" in sys.argv
BF16 = "--bf16" in sys.argv


def main():
    args = [a for a in sys.argv[1:] if a not in ("--grouped", "--bf16")]
    if len(args) != 1:
        sys.exit(__doc__)
    if args[0] == "--matmul":
        print(json.dumps(matmul()))
        return
    with open(args[0], encoding="utf-8") as f:
        spec = json.load(f)
    out = infer(spec) if spec["workload"] == "infer" else train(spec)
    print(json.dumps(out))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
