"""Prints scikit-learn's numbers for the fixed multi-class cases of src/metrics/multiclass.rs (its tests
quote them): python benches/sklearn_multiclass_cases.py (needs scikit-learn)."""
import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, log_loss, roc_auc_score, top_k_accuracy_score

y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
p = np.array([
    [0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.2, 0.4, 0.4],
    [0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3], [0.1, 0.1, 0.8],
])
pred = p.argmax(axis=1)
print("predicted", pred.tolist())
print("confusion", confusion_matrix(y, pred, labels=[0, 1, 2]).tolist())
print(classification_report(y, pred, labels=[0, 1, 2], digits=12, zero_division=0))
print("auroc per class", roc_auc_score(y, p, multi_class="ovr", average=None).tolist())
print("macro auroc", roc_auc_score(y, p, multi_class="ovr", average="macro"))
print("log loss", log_loss(y, p, labels=[0, 1, 2]))
print("top-2", top_k_accuracy_score(y, p, k=2, labels=[0, 1, 2]))
