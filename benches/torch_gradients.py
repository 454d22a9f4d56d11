"""Reference gradients for tests/gradient_parity.rs: one cross-entropy backward pass of PyTorch's
BertForSequenceClassification over a fixed batch, dropout off, with a classifier head set by a formula
both sides can compute (a fresh head would be random); then the same with peft LoRA adapters (r 8,
alpha 16, on query, key, value and every dense layer of the encoder: torch_perf's lora_pattern), set by formula too (at peft's
initialisation B is zero, and A would get no gradient). Last, training trajectories: twelve steps over
the same batch with textbench's recipe (AdamW, weight decay 0.01 on weight matrices, linear warm-up over 2
steps then linear decay, clipping at 1.0), dropout off, for full fine-tuning (peak lr 1e-4) and for LoRA
(peak lr 1e-3); the loss and the gradient norm before clipping at every step.

    python benches/torch_gradients.py MODEL_DIR OUT.json

For every parameter it stores the gradient's L2 norm, sum, largest magnitude and its dot product with a
fixed probe vector (sin(0.37 i) over the flattened tensor), which together catch a wrong term anywhere in
the tensor without storing 22.7M numbers.
"""
import json
import sys

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from torch_perf import adamw, lora_pattern

TEXTS = [
    "WINNER!! As a valued network customer you have been selected to receive a £900 prize reward!",
    "I'll be late, the bus broke down. Save me some dinner?",
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121",
    "ok",
]
LABELS = [1, 0, 1, 0]


def probe(n):
    return torch.sin(0.37 * torch.arange(n, dtype=torch.float64))


def fill(t, scale, phase):
    # t.flatten()[i] = scale · sin(0.1 · i + phase): the same formula in the Rust test.
    with torch.no_grad():
        t.copy_((scale * torch.sin(0.1 * torch.arange(t.numel(), dtype=torch.float64) + phase)).reshape(t.shape))


def summaries(named):
    out = {}
    for name, p in named:
        if p.grad is None:
            continue
        g = p.grad.detach().double().flatten()
        out[name] = {
            "norm": g.norm().item(),
            "sum": g.sum().item(),
            "max_abs": g.abs().max().item(),
            "probe": g.dot(probe(g.numel())).item(),
        }
    return out


def step(model, tok):
    enc = tok(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    logits = model(**enc).logits
    loss = F.cross_entropy(logits, torch.tensor(LABELS))
    loss.backward()
    return loss.item(), logits.tolist()


def classifier(model_dir):
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2).float()
    model.eval()  # dropout off; autograd still records
    fill(model.classifier.weight, 0.02, 0.5)
    with torch.no_grad():
        model.classifier.bias.zero_()
    return model


STEPS, WARMUP = 12, 2


def learning_rate(step, peak):
    # textbench's train::learning_rate: the first warm-up step already moves (HF's schedule starts at 0).
    if step < WARMUP:
        return peak * (step + 1) / WARMUP
    return peak * (STEPS - step) / max(1, STEPS - WARMUP)


def lora_classifier(model_dir):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(classifier(model_dir), LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=lora_pattern()))
    model.eval()
    fill_adapters(model)
    return model


def fill_adapters(model):
    # Every adapter set by formula (at peft's initialisation B is zero, and A would get no gradient).
    for name, p in model.named_parameters():
        if ".lora_A." in name:
            fill(p, 0.05, 0.3)
        elif ".lora_B." in name:
            fill(p, 0.02, 0.7)


def trajectory(model, tok, peak):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optim = adamw(named, peak, 0.01)
    enc = tok(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    losses, norms, lrs = [], [], []
    for s in range(STEPS):
        for g in optim.param_groups:
            g["lr"] = learning_rate(s, peak)
        loss = F.cross_entropy(model(**enc).logits, torch.tensor(LABELS))
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0).item())
        optim.step()
        optim.zero_grad()
        losses.append(loss.item())
        lrs.append(learning_rate(s, peak))
    return {"steps": STEPS, "warmup": WARMUP, "peak_lr": peak, "lr": lrs, "loss": losses, "grad_norm": norms}


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    tok = AutoTokenizer.from_pretrained(model_dir)

    model = classifier(model_dir)
    loss, logits = step(model, tok)
    full = {"loss": loss, "logits": logits, "gradients": {n.removeprefix("bert."): g for n, g in summaries(model.named_parameters()).items()}}

    model = lora_classifier(model_dir)
    loss, logits = step(model, tok)

    def ours(name):
        # base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight → encoder.layer.0
        # .attention.self.query.lora_A.weight; the head is peft's trainable copy of the classifier.
        name = name.removeprefix("base_model.model.").removeprefix("bert.")
        return name.replace(".default.", ".").replace("classifier.modules_to_save.", "classifier.")

    lora = {"loss": loss, "logits": logits, "gradients": {ours(n): g for n, g in summaries(model.named_parameters()).items()}}
    ref = {"model": "all-MiniLM-L6-v2", "torch": torch.__version__, "texts": TEXTS, "labels": LABELS, "finetune": full, "lora": lora,
           "trajectory": trajectory(classifier(model_dir), tok, 1e-4), "lora_trajectory": trajectory(lora_classifier(model_dir), tok, 1e-3)}
    with open(out, "w") as f:
        json.dump(ref, f, indent=1)
    print(f"finetune loss {full['loss']:.6f}, {len(full['gradients'])} gradients; "
          f"lora loss {lora['loss']:.6f}, {len(lora['gradients'])} gradients; "
          f"trajectory losses {ref['trajectory']['loss'][0]:.4f} → {ref['trajectory']['loss'][-1]:.4f}; written to {out}")


if __name__ == "__main__":
    main()
