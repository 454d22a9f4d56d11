"""scikit-learn's LSA pipeline on the same data and settings as a textbench LSA spec, as one process.

    python benches/sklearn_lsa.py SPEC DATA_DIR

Reads the spec's dataset (sms, enron, jigsaw, 20newsgroups or trec) the way textbench does. The binary
sets are split with scikit-learn's stratified train_test_split (same fraction and seed; the exact split
differs); 20newsgroups and trec use their own train/test split, as textbench does, so the split is the
identical one. Fits TfidfVectorizer → TruncatedSVD → LogisticRegression (multinomial for more than two
classes) with the spec's hyperparameters. Prints accuracy, F1 (macro-F1 for more than two classes),
AUROC (macro one-vs-rest) and the fit time (vectoriser, SVD and regression fitted on the training split;
the record's `timings.fit_s` is the same span on textbench's side). Time the whole process with
`/usr/bin/time -v` for the side-by-side with `bench run`.
"""
import csv
import io
import sys
import tarfile
import time

import numpy as np
import yaml
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score


def newsgroups(data_dir, folder):
    """One split of 20news-bydate.tar.gz: texts by path order, labels the group names (latin-1)."""
    texts, labels = [], []
    with tarfile.open(f"{data_dir}/20newsgroups/20news-bydate.tar.gz") as tar:
        for m in sorted((m for m in tar.getmembers() if m.isfile() and m.name.startswith(folder + "/")), key=lambda m: m.name):
            texts.append(tar.extractfile(m).read().decode("latin-1"))
            labels.append(m.name.split("/")[1])
    return texts, np.array(labels)


def trec(path):
    texts, labels = [], []
    for line in open(path, encoding="latin-1").read().splitlines():
        if line.strip():
            label, question = line.split(" ", 1)
            texts.append(question.strip())
            labels.append(label.split(":", 1)[0])
    return texts, np.array(labels)


def own_split(ds, data_dir):
    """(train texts, train labels, test texts, test labels) of the datasets with a split of their own."""
    if ds["name"] == "20newsgroups":
        return (*newsgroups(data_dir, "20news-bydate-train"), *newsgroups(data_dir, "20news-bydate-test"))
    if ds["name"] == "trec":
        return (*trec(f"{data_dir}/trec/train_5500.label"), *trec(f"{data_dir}/trec/TREC_10.label"))
    return None
from sklearn.model_selection import train_test_split


def load(ds, data_dir):
    name = ds["name"]
    if name == "sms":
        rows = [l.split("\t", 1) for l in open(f"{data_dir}/sms/SMSSpamCollection", encoding="utf-8").read().splitlines() if l.strip()]
        return [r[1] for r in rows], np.array([r[0] == "spam" for r in rows])
    if name == "enron":
        texts, labels = [], []
        for n in ds.get("parts", [1, 2, 3, 4, 5, 6]):
            with tarfile.open(f"{data_dir}/enron/enron{n}.tar.gz") as tar:
                for m in sorted(tar.getmembers(), key=lambda m: m.name):
                    parts = m.name.split("/")
                    if m.isfile() and m.name.endswith(".txt") and parts[-2] in ("ham", "spam"):
                        raw = tar.extractfile(m).read()
                        try:
                            texts.append(raw.decode("utf-8"))
                        except UnicodeDecodeError:
                            texts.append(raw.decode("cp1252", errors="replace"))
                        labels.append(parts[-2] == "spam")
        return texts, np.array(labels)
    if name == "jigsaw":
        with open(f"{data_dir}/jigsaw/train.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        return [r["comment_text"] for r in rows], np.array([r["toxic"] == "1" for r in rows])
    raise SystemExit(f"unsupported dataset {name}")


def main():
    spec = yaml.safe_load(open(sys.argv[1]))
    ds, m = spec["dataset"], spec["method"]
    own = own_split(ds, sys.argv[2])
    if own is not None:
        return fit_and_score(m, *own)
    texts, y = load(ds, sys.argv[2])
    split = ds.get("split", {})
    seed = split.get("seed", 42)
    if ds.get("balance") == "downsample":
        rng = np.random.default_rng(seed)
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        k = min(len(pos), len(neg))
        keep = np.sort(np.concatenate([rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)]))
        texts, y = [texts[i] for i in keep], y[keep]
    xtr, xte, ytr, yte = train_test_split(texts, y, test_size=split.get("validation", 0.2), stratify=y, random_state=seed)
    fit_and_score(m, xtr, ytr, xte, yte)


def fit_and_score(m, xtr, ytr, xte, yte):
    vec = TfidfVectorizer(
        sublinear_tf=m.get("sublinear_tf", True),
        ngram_range=tuple(m.get("ngram_range", [1, 1])),
        min_df=m.get("min_df", 1),
        max_df=m.get("max_df", 1.0),
        max_features=m.get("max_features"),
    )
    svd = TruncatedSVD(m.get("components", 200), n_iter=m.get("svd_iterations", 5), random_state=0)
    started = time.perf_counter()
    z = svd.fit_transform(vec.fit_transform(xtr))
    lr = LogisticRegression(C=m.get("C", 1.0), max_iter=m.get("max_iterations", 300), tol=m.get("tolerance", 1e-4)).fit(z, ytr)
    fit_s = time.perf_counter() - started
    proba = lr.predict_proba(svd.transform(vec.transform(xte)))
    if len(lr.classes_) == 2:
        p = proba[:, 1]
        print(f"accuracy {accuracy_score(yte, p > 0.5):.4f} f1 {f1_score(yte, p > 0.5):.4f} auroc {roc_auc_score(yte, p):.4f} fit_s {fit_s:.3f}")
    else:
        pred = lr.classes_[proba.argmax(axis=1)]
        auroc = roc_auc_score(yte, proba, multi_class="ovr", labels=lr.classes_)
        print(f"accuracy {accuracy_score(yte, pred):.4f} macro_f1 {f1_score(yte, pred, average='macro'):.4f} auroc {auroc:.4f} fit_s {fit_s:.3f}")


if __name__ == "__main__":
    main()
