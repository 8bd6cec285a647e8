"""What using the classifier at the bedside needs beyond Table 1's numbers at 0.5: a
temperature and an operating point fitted on validation only, and on test the calibration
before and after, the metrics at that operating point, fixed points of the ROC curve and
recall per pneumonia subtype.

Order: T is fitted on the validation logits (`calibration`), then the threshold is chosen by
the rule on the CALIBRATED validation probabilities (`operating_point`); test data is only
ever measured with both. Metric names (`contract`; docs/stages.md, "What a classifier run
logs"): `model/threshold`, `model/temperature`; `test_op/*` at the threshold (its confusion
cells apart, in `counts`: counts, not measures); `test/sens_at_spec90` and the like;
`test/ece`, `test/brier` (uncalibrated) and `test/ece_calibrated`, `test/brier_calibrated`;
`test/recall_<subtype>` at 0.5 and `test_op/recall_<subtype>` at the threshold. The subtype
counts and Wilson 95% intervals are in `subgroups`, a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pneumonia_aug.contract import (
    CHOSEN_TEMPERATURE,
    CHOSEN_THRESHOLD,
    TEMPERATURE,
    TEST,
    TEST_OP,
    THRESHOLD,
    metric,
)
from pneumonia_aug.evaluation import calibration
from pneumonia_aug.evaluation.metrics import CELLS, binary_metrics
from pneumonia_aug.evaluation.operating_point import choose_threshold, roc_points
from pneumonia_aug.evaluation.subgroups import recall_by_subtype


@dataclass
class Bedside:
    temperature: float
    threshold: float
    metrics: dict  # every measure above, named as logged
    counts: dict  # the confusion cells at the threshold: tn, fp, fn, tp
    test_probs_calibrated: np.ndarray
    subgroups: pd.DataFrame  # recall per subtype, at 0.5 and at the threshold, with n


def assess(val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray,
           test_labels: np.ndarray, test_subtypes, rule: str) -> Bedside:
    """Fit T and choose the threshold on validation, then measure test with them."""
    temperature = calibration.fit_temperature(val_logits, val_labels)
    threshold = choose_threshold(
        val_labels, calibration.scaled_probabilities(val_logits, temperature), rule)
    raw = calibration.scaled_probabilities(test_logits, TEMPERATURE)
    calibrated = calibration.scaled_probabilities(test_logits, temperature)
    at_op = binary_metrics(test_labels, calibrated, threshold)
    counts = {k: at_op.pop(k) for k in CELLS}
    metrics = {CHOSEN_THRESHOLD: threshold, CHOSEN_TEMPERATURE: temperature,
               **{metric(TEST_OP, k): v for k, v in at_op.items() if k != "auroc"},
               **{metric(TEST, k): v for k, v in roc_points(test_labels, raw).items()},
               metric(TEST, "ece"): calibration.expected_calibration_error(test_labels, raw),
               metric(TEST, "ece_calibrated"): calibration.expected_calibration_error(
                   test_labels, calibrated),
               metric(TEST, "brier"): calibration.brier_score(test_labels, raw),
               metric(TEST, "brier_calibrated"): calibration.brier_score(test_labels,
                                                                         calibrated)}
    frames = []
    for section, at, called in ((TEST, THRESHOLD, raw >= THRESHOLD),
                                (TEST_OP, threshold, calibrated >= threshold)):
        rows = recall_by_subtype(test_labels, called, test_subtypes)
        for row in rows.itertuples():
            if not row.n:
                continue  # no such image in the test set: a table row, no NaN metric
            metrics[metric(section, f"recall_{row.subtype}")] = row.recall
        frames.append(rows.assign(threshold=at))
    return Bedside(temperature, threshold, metrics, counts, calibrated,
                   pd.concat(frames, ignore_index=True))
