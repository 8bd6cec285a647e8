"""Operating point, calibration and subgroups (evaluation.bedside and its parts): hand-checked
numbers, temperature scaling on a known miscalibration, and no test label reaching the
threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, logit

from pneumonia_aug.data.kermany import parse_patient
from pneumonia_aug.evaluation.bedside import assess
from pneumonia_aug.evaluation.calibration import (
    brier_score,
    expected_calibration_error,
    fit_temperature,
)
from pneumonia_aug.evaluation.operating_point import choose_threshold, roc_points
from pneumonia_aug.evaluation.subgroups import recall_by_subtype, wilson_interval


def test_ece_and_brier_by_hand():
    # bin [0.2, 0.3): p 0.25, 0.25 with labels 0, 1 -> |0.5 - 0.25| = 0.25, weight 2/4;
    # bin [0.9, 1.0]: p 0.95, 1.0 with labels 1, 1 -> |1 - 0.975| = 0.025, weight 2/4.
    labels, probs = np.array([0, 1, 1, 1]), np.array([0.25, 0.25, 0.95, 1.0])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.5 * 0.25 + 0.5 * 0.025)
    brier = (0.25 ** 2 + 0.75 ** 2 + 0.05 ** 2 + 0) / 4
    assert brier_score(labels, probs) == pytest.approx(brier)


def _calibrated_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a well-calibrated model: each label drawn with probability sigmoid(logit)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    return z, (rng.random(n) < expit(z)).astype(int)


def test_temperature_scaling_undoes_overconfidence():
    val_z, val_y = _calibrated_sample(4000, 0)
    test_z, test_y = _calibrated_sample(4000, 1)
    t = fit_temperature(3 * val_z, val_y)  # three times too sure of itself
    assert t == pytest.approx(3, rel=0.1)
    before = expected_calibration_error(test_y, expit(3 * test_z))
    after = expected_calibration_error(test_y, expit(3 * test_z / t))
    assert after < before / 2 and after < 0.03
    assert brier_score(test_y, expit(3 * test_z / t)) < brier_score(test_y, expit(3 * test_z))


def test_threshold_rules_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    # sensitivity >= 0.95 needs every positive, so the threshold 0.4 (specificity 3/4)
    assert choose_threshold(labels, probs, "spec_at_sens95") == pytest.approx(0.4)
    # J: 0.4 -> 1 + 0.75 - 1 = 0.75; 0.7 -> 0.75 + 1 - 1 = 0.75: the first (higher) wins
    assert choose_threshold(labels, probs, "youden") == pytest.approx(0.7)
    assert choose_threshold(labels, probs, "0.5") == 0.5
    assert choose_threshold(np.ones(8), probs, "youden") == 0.5  # one class: no ROC curve
    points = roc_points(labels, probs)
    assert points["spec_at_sens95"] == pytest.approx(0.75)
    assert points["sens_at_spec95"] == pytest.approx(0.75)  # threshold 0.7: 3 of 4, no FP
    with pytest.raises(ValueError, match="threshold rule"):
        choose_threshold(labels, probs, "f1")


def test_wilson_interval():
    low, high = wilson_interval(8, 10)  # the textbook case: 0.490 - 0.943
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def _split(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    z = 3 * (rng.normal(0, 1, n) + 1.5 * (2 * y - 1))  # separable-ish and over-confident
    subtypes = np.where(y == 1, np.where(rng.random(n) < 0.6, "bacteria", "virus"), "")
    return z, y, subtypes


def test_threshold_and_temperature_come_from_validation_only():
    val_z, val_y, _ = _split(0)
    test_z, test_y, test_sub = _split(1)
    honest = assess(val_z, val_y, test_z, test_y, test_sub, "spec_at_sens95")
    # The same run scored against scrambled test labels: what was chosen must not move.
    rng = np.random.default_rng(2)
    for labels in (1 - test_y, rng.permutation(test_y)):
        other = assess(val_z, val_y, test_z, labels, test_sub, "spec_at_sens95")
        assert other.threshold == honest.threshold
        assert other.temperature == honest.temperature
        assert other.metrics["test_op/recall"] != honest.metrics["test_op/recall"]
    # ...while other validation labels do move it.
    moved = assess(val_z, rng.permutation(val_y), test_z, test_y, test_sub, "spec_at_sens95")
    assert (moved.threshold, moved.temperature) != (honest.threshold, honest.temperature)
    # The chosen threshold reaches the target on the calibrated validation probabilities.
    val_p = expit(val_z / honest.temperature)
    assert (val_p[val_y == 1] >= honest.threshold).mean() >= 0.95
    m = honest.metrics
    assert m["model/threshold"] == honest.threshold
    assert m["model/temperature"] == honest.temperature
    assert {"test/sens_at_spec90", "test/spec_at_sens95", "test_op/specificity",
            "test/recall_virus", "test_op/recall_bacteria"} <= set(m)
    # Counts are no measures: the cells and the subtypes' n apart, in numbers that add up.
    assert sum(honest.counts.values()) == len(test_y)
    assert honest.counts["tp"] + honest.counts["fn"] == test_y.sum()
    assert not [k for k in m if k.endswith(("_low", "_high", "/tp", "/tn")) or "n_test" in k]
    served = honest.subgroups[honest.subgroups["threshold"] == honest.threshold]
    assert served["n"].sum() == test_y.sum()
    # Table 1's 0.5 calls are the same with or without the temperature.
    assert np.array_equal(expit(test_z) >= 0.5, honest.test_probs_calibrated >= 0.5)


def test_subgroups_of_the_real_test_set(shared_data):
    files = sorted(p.name for p in (shared_data / "test" / "PNEUMONIA").iterdir()
                   if p.suffix.lower() == ".jpeg")
    assert len(files) == 390
    bacteria = sum("bacteria" in f for f in files)
    virus = sum("virus" in f for f in files)
    assert bacteria + virus == 390 and bacteria > virus > 0
    subtypes = [parse_patient(f)[1] for f in files]
    rows = recall_by_subtype(np.ones(390), np.ones(390), subtypes).set_index("subtype")
    assert rows.loc["bacteria", "n"] == bacteria and rows.loc["virus", "n"] == virus
    assert (rows["recall"] == 1.0).all()


def test_logits_helper_round_trip():  # guards the test helpers' own assumption
    assert logit(expit(2.0)) == pytest.approx(2.0)
