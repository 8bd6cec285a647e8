"""Binary metrics with PNEUMONIA as the positive class and a 0.5 threshold (docs/protocol.md)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

from pneumonia_aug.contract import THRESHOLD

CELLS = ("tn", "fp", "fn", "tp")  # the confusion matrix's counts among `binary_metrics`


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def binary_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = THRESHOLD) -> dict:
    """accuracy, precision, recall, specificity, f1, auroc and the confusion matrix counts."""
    labels = np.asarray(labels).astype(int)
    preds = (np.asarray(probs) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, preds, labels=[0, 1]).ravel().tolist()
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, len(labels)),
        "precision": precision,
        "recall": recall,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * precision * recall, precision + recall),
        "auroc": (float(roc_auc_score(labels, probs)) if len(set(labels.tolist())) == 2
                  else float("nan")),
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }
