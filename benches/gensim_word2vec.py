"""The peer of textbench's `word2vec` method: gensim's Word2Vec on the training split, each text the mean
(or IDF-weighted mean) of its words' vectors, scikit-learn's logistic regression on top, at the settings
of a textbench spec, on the split `bench datasets split SPEC --out DIR` wrote (the identical split).

    python benches/gensim_word2vec.py SPEC SPLIT_DIR [--workers 2] [--seed 0]

Prints one JSON line: accuracy, F1 (binary: of class 1) and macro-F1 on the evaluation split, the
training's words per second (corpus words in the vocabulary × epochs / training seconds, the figure
textbench records as train_words_per_s), and the seconds of each stage. Words follow textbench's rule:
scikit-learn's default token pattern (?u)\\b\\w\\w+\\b on the lower-cased text.
"""

import argparse
import json
import math
import re
import time

import numpy as np
import yaml
from gensim.models import Word2Vec
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

WORD = re.compile(r"(?u)\b\w\w+\b")

# textbench's defaults (src/methods/word2vec/mod.rs and logistic.rs).
DEFAULTS = dict(architecture="skipgram", vector_size=100, window=5, min_count=2, negative=5, sample=1e-3, epochs=5, alpha=0.025,
                min_alpha=1e-4, pooling="mean", lowercase=True)
HEAD = dict(C=1.0, class_weight=None, max_iterations=300, tolerance=1e-4)


def read_jsonl(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return texts, labels


def tokens(text, lowercase):
    return WORD.findall(text.lower() if lowercase else text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("split_dir")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    method = yaml.safe_load(open(args.spec))["method"]
    s = {k: method.get(k, v) for k, v in DEFAULTS.items()}
    head = {k: method.get("head", {}).get(k, v) for k, v in HEAD.items()}

    started = time.perf_counter()
    train_texts, train_labels = read_jsonl(f"{args.split_dir}/train.jsonl")
    eval_texts, eval_labels = read_jsonl(f"{args.split_dir}/eval.jsonl")
    train_words = [tokens(t, s["lowercase"]) for t in train_texts]
    eval_words = [tokens(t, s["lowercase"]) for t in eval_texts]
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    model = Word2Vec(vector_size=s["vector_size"], window=s["window"], min_count=s["min_count"], negative=s["negative"], hs=0,
                     sample=s["sample"], alpha=s["alpha"], min_alpha=s["min_alpha"], sg=1 if s["architecture"] == "skipgram" else 0,
                     workers=args.workers, seed=args.seed)
    model.build_vocab(train_words)
    vocab_s = time.perf_counter() - started
    started = time.perf_counter()
    model.train(train_words, total_examples=len(train_words), epochs=s["epochs"])
    train_s = time.perf_counter() - started
    kv = model.wv
    corpus_words = sum(1 for t in train_words for w in t if w in kv.key_to_index)

    started = time.perf_counter()
    if s["pooling"] == "tfidf":
        n = len(train_words)
        df = {}
        for t in train_words:
            for w in set(t):
                df[w] = df.get(w, 0) + 1
        weight = {w: math.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}
    else:
        weight = None

    def pool(words):
        known = [w for w in words if w in kv.key_to_index]
        if not known:
            return np.zeros(kv.vector_size)
        ws = np.array([weight[w] if weight else 1.0 for w in known])
        return (ws[:, None] * kv[known]).sum(axis=0) / ws.sum()

    x_train = np.array([pool(t) for t in train_words])
    x_eval = np.array([pool(t) for t in eval_words])
    pool_s = time.perf_counter() - started

    started = time.perf_counter()
    clf = LogisticRegression(C=head["C"], max_iter=head["max_iterations"], tol=head["tolerance"],
                             class_weight="balanced" if head["class_weight"] == "balanced" else None)
    clf.fit(x_train, train_labels)
    predicted = clf.predict(x_eval)
    head_s = time.perf_counter() - started

    binary = len(set(train_labels)) == 2
    print(json.dumps({
        "accuracy": accuracy_score(eval_labels, predicted),
        "f1": f1_score(eval_labels, predicted) if binary else None,
        "macro_f1": f1_score(eval_labels, predicted, average="macro"),
        "vocabulary_size": len(kv.key_to_index),
        "train_words_per_s": corpus_words * s["epochs"] / train_s,
        "train_s": train_s,
        "fit_s": vocab_s + train_s + pool_s + head_s,
        "load_s": load_s,
        "workers": args.workers,
        "seed": args.seed,
    }))


if __name__ == "__main__":
    main()
