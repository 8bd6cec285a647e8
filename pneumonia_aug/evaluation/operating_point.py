"""Where on the ROC curve the classifier calls PNEUMONIA: a threshold chosen by a rule on
validation probabilities, and test sensitivity and specificity at fixed points of the curve.

Rules (`ClassifierConfig.threshold_rule`): `spec_at_sens95`, the threshold of highest
specificity among those with sensitivity >= 0.95 (a screening test should miss few
pneumonias); `youden`, the threshold of largest sensitivity + specificity - 1 (Youden's J);
`0.5`, the fixed threshold. A threshold is one of the validation probabilities: an image is
called PNEUMONIA at probability >= threshold. A validation set without both classes has no
ROC curve: every rule then gives 0.5.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from pneumonia_aug.config import THRESHOLD_RULES
from pneumonia_aug.contract import THRESHOLD

SCREENING_SENSITIVITY = 0.95  # what `spec_at_sens95` guarantees on validation
ROC_POINTS = (0.90, 0.95)  # the fixed sensitivities and specificities reported on test


def _roc(labels: np.ndarray, probs: np.ndarray):
    """(specificity, sensitivity, threshold) at every distinct probability, highest threshold
    first (sklearn's first point, threshold inf, calls nothing)."""
    fpr, tpr, thresholds = roc_curve(np.asarray(labels).astype(int), probs,
                                     drop_intermediate=False)
    return 1 - fpr, tpr, thresholds


def _two_classes(labels) -> bool:
    return len(set(np.asarray(labels).astype(int).tolist())) == 2


def choose_threshold(labels: np.ndarray, probs: np.ndarray, rule: str) -> float:
    """The threshold `rule` picks from these (validation) labels and probabilities."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule must be one of {THRESHOLD_RULES}, not {rule!r}")
    if rule == "0.5" or not _two_classes(labels):
        return THRESHOLD
    specificity, sensitivity, thresholds = _roc(labels, probs)
    finite = np.isfinite(thresholds)
    if rule == "youden":
        j = np.where(finite, sensitivity + specificity - 1, -np.inf)
        return float(thresholds[int(np.argmax(j))])
    ok = finite & (sensitivity >= SCREENING_SENSITIVITY)
    # specificity falls as the threshold falls: the first qualifying point is the best one
    return float(thresholds[int(np.argmax(ok))])


def roc_points(labels: np.ndarray, probs: np.ndarray) -> dict:
    """`sens_at_spec90`: the highest sensitivity at specificity >= 0.90 (and 95), and
    `spec_at_sens90`: the highest specificity at sensitivity >= 0.90 (and 95), read off the
    empirical ROC curve; nan without both classes."""
    out = {}
    for level in ROC_POINTS:
        pct = round(level * 100)
        if not _two_classes(labels):
            out[f"sens_at_spec{pct}"] = out[f"spec_at_sens{pct}"] = float("nan")
            continue
        specificity, sensitivity, _ = _roc(labels, probs)
        out[f"sens_at_spec{pct}"] = float(sensitivity[specificity >= level].max())
        out[f"spec_at_sens{pct}"] = float(specificity[sensitivity >= level].max())
    return out
