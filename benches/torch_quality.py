"""PyTorch's quality on textbench's exact split: full fine-tuning or LoRA of a BERT-family checkpoint on the
files `bench datasets split SPEC --out DIR` writes, evaluated on every example of the evaluation split.

    python benches/torch_quality.py DIR MODEL_DIR [--lora] [--epochs 1] [--lr 5e-5] [--batch-size 16]
                                    [--max-length 128] [--seed 42] [--lora-dropout 0.1] [--gguf FILE]
                                    [--predictions FILE]

A decoder (config model_type llama, mistral or qwen2; `--gguf FILE` reads the folder's GGUF through
transformers' own loader, which de-quantizes it to f32 and needs the `gguf` package) is trained as
LlamaForSequenceClassification: a fresh bias-free `score` layer on the last real token, the pad id the
config's; its texts tokenized by the folder's tokenizer.json as textbench tokenizes them; LoRA on all seven
projections of every block (q/k/v/o, gate/up/down).

The recipe is textbench's `finetune` / `lora` defaults, so a difference in accuracy is the engine's, not
the data's or the recipe's: AutoModelForSequenceClassification ([CLS] -> pooler -> fresh k-way head, k the
number of classes in the training file),
AdamW with weight decay 0.01 on weights only, 6% linear warm-up then linear decay, gradient clipping at
1.0, shuffled batches padded to their longest text (DataCollatorWithPadding's practice); LoRA r=8,
alpha 16, dropout 0.1 (--lora-dropout) on query, key, value and every dense layer of the encoder (peft).
Prints one JSON line: accuracy, F1 of the positive class and AUROC (two classes) or macro-F1 (more), the
training samples/s, and the mean training loss of each epoch and of every 50 steps (as a run record's
history.steps). `--predictions FILE` also writes each evaluation example's class probabilities, one JSON line
per line of eval.jsonl and in its order, for `mcnemar_vs_record.py` to set against a textbench run.
"""
import argparse
import json
import os
import random
import time

import torch

# Run as a script from benches/, so its sibling is importable: one padding, LoRA target table and optimiser.
from torch_perf import adamw, lora_pattern, pad

DECODERS = ("llama", "mistral", "qwen2")
DECODER_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def auroc(labels, scores):
    """Mann-Whitney U over average ranks (ties share their rank)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    rank_sum = sum(r for r, l in zip(ranks, labels) if l)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def metrics(labels, probs):
    pred = [p > 0.5 for p in probs]
    tp = sum(1 for p, l in zip(pred, labels) if p and l)
    fp = sum(1 for p, l in zip(pred, labels) if p and not l)
    fn = sum(1 for p, l in zip(pred, labels) if not p and l)
    correct = sum(1 for p, l in zip(pred, labels) if p == bool(l))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"accuracy": correct / len(labels), "f1": f1, "auroc": auroc(labels, probs)}


def multiclass_metrics(labels, rows):
    """Accuracy and macro-F1 (over every class of the training set) of the most probable class."""
    k = len(rows[0])
    pred = [max(range(k), key=lambda c: r[c]) for r in rows]
    f1s = []
    for c in range(k):
        tp = sum(1 for p, l in zip(pred, labels) if p == c and l == c)
        fp = sum(1 for p, l in zip(pred, labels) if p == c and l != c)
        fn = sum(1 for p, l in zip(pred, labels) if p != c and l == c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": sum(1 for p, l in zip(pred, labels) if p == l) / len(labels), "macro_f1": sum(f1s) / k}


def epoch_batches(ids, batch_size, by_length):
    """One epoch's batches of example indices: shuffled, and with `by_length` sorted by length within windows
    of 50 batches (so each batch pads little) and the batches shuffled, as textbench's make_batches does."""
    order = list(range(len(ids)))
    random.shuffle(order)
    if by_length:
        window = 50 * batch_size
        order = [i for w in range(0, len(order), window) for i in sorted(order[w : w + window], key=lambda i: len(ids[i]))]
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if by_length:
        random.shuffle(batches)
    return batches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split_dir")
    ap.add_argument("model_dir")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--lora-dropout", type=float, default=0.1, help="dropout on each adapter's input (spec: lora.dropout)")
    ap.add_argument("--gguf", help="the model folder's GGUF file (a decoder shared as llama.cpp's GGUF)")
    ap.add_argument("--predictions", help="write each evaluation example's class probabilities here (JSON lines)")
    ap.add_argument("--group-by-length", action="store_true",
                    help="length-grouped batches as textbench's default `bucketing: true` (and transformers' Trainer group_by_length) form them: "
                    "windows of 50 batches' worth of shuffled examples sorted by length, then the batches shuffled")
    args = ap.parse_args()

    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerFast, get_linear_schedule_with_warmup

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    train_texts, train_labels = read_jsonl(f"{args.split_dir}/train.jsonl")
    eval_texts, eval_labels = read_jsonl(f"{args.split_dir}/eval.jsonl")
    classes = max(train_labels) + 1
    gguf = {"gguf_file": args.gguf} if args.gguf else {}
    decoder = AutoConfig.from_pretrained(args.model_dir, **gguf).model_type in DECODERS
    model = AutoModelForSequenceClassification.from_pretrained(args.model_dir, num_labels=classes, **gguf)
    if decoder:
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(args.model_dir, "tokenizer.json"))
        with open(os.path.join(args.model_dir, "config.json")) as f:
            pad_id = json.load(f).get("pad_token_id") or model.config.pad_token_id
        model.config.pad_token_id = pad_id
    else:
        tok = AutoTokenizer.from_pretrained(args.model_dir)
        pad_id = tok.pad_token_id
    if args.lora:
        from peft import LoraConfig, get_peft_model

        targets = DECODER_TARGETS if decoder else lora_pattern()
        model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=args.lora_dropout, target_modules=targets))
    encode = lambda texts: tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    train_ids, eval_ids = encode(train_texts), encode(eval_texts)

    batch = lambda ids: pad(ids, pad_id)

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optim = adamw(trainable, args.lr, 0.01)
    steps_per_epoch = -(-len(train_ids) // args.batch_size)
    total = args.epochs * steps_per_epoch
    sched = get_linear_schedule_with_warmup(optim, int(0.06 * total + 0.999), total)
    started = time.perf_counter()
    model.train()
    epoch_losses, window_losses, window = [], [], []
    for _ in range(args.epochs):
        losses = []
        for idx in epoch_batches(train_ids, args.batch_size, args.group_by_length):
            input_ids, mask = batch([train_ids[i] for i in idx])
            out = model(input_ids=input_ids, attention_mask=mask, labels=torch.tensor([train_labels[i] for i in idx]))
            losses.append(out.loss.item())
            window.append(losses[-1])
            if len(window) == 50:  # textbench's history.steps: the mean loss of every 50 steps
                window_losses.append(sum(window) / len(window))
                window = []
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
        epoch_losses.append(sum(losses) / len(losses))
    if window:
        window_losses.append(sum(window) / len(window))
    train_s = time.perf_counter() - started

    model.eval()
    probs = []
    with torch.inference_mode():
        for start in range(0, len(eval_ids), 64):
            input_ids, mask = batch(eval_ids[start : start + 64])
            probs += torch.softmax(model(input_ids=input_ids, attention_mask=mask).logits, -1).tolist()
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as f:
            for label, p in zip(eval_labels, probs):
                f.write(json.dumps({"label": label, "probabilities": p}) + "\n")
    result = metrics(eval_labels, [p[1] for p in probs]) if classes == 2 else multiclass_metrics(eval_labels, probs)
    result.update(method="lora" if args.lora else "finetune", epochs=args.epochs, lr=args.lr, max_length=args.max_length,
                  eval_examples=len(eval_labels), train_samples_per_s=args.epochs * len(train_ids) / train_s,
                  seed=args.seed, group_by_length=args.group_by_length, model=os.path.basename(os.path.normpath(args.model_dir)), train_loss=epoch_losses, loss_every_50=window_losses, **({"lora_dropout": args.lora_dropout} if args.lora else {}))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
