"""comparison: seed statistics, the paired bootstrap against Original, and the reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from scipy import stats
from sklearn.metrics import roc_auc_score

from pneumonia_aug import comparison
from pneumonia_aug.comparison import (
    PAPER_TABLE1_VALUES,
    bar_chart,
    missing_settings,
    summarize,
    to_csv,
    to_html,
    to_markdown,
)
from pneumonia_aug.settings import PAPER_TABLE1

N_IMAGES = 40
LABELS = np.array([0, 1] * (N_IMAGES // 2))
SHA = [f"{i:064x}" for i in range(N_IMAGES)]
ORIGINAL_ACC = [0.80, 0.85, 0.90]
DCGAN_ACC = [0.95, 0.93, 0.97]


def _predictions(correct: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """A prediction table whose thresholded output is right exactly where `correct` is True."""
    confidence = rng.uniform(0.55, 0.99, N_IMAGES)  # varied, so AUROC is not degenerate
    p_positive = np.where(LABELS == 1, confidence, 1 - confidence)
    probability = np.where(correct, p_positive, 1 - p_positive)
    table = pd.DataFrame({"sha256": SHA, "y_true": LABELS, "probability": probability})
    return table.sample(frac=1, random_state=int(rng.integers(1000)))  # order must not matter


def _run(run_id, setting, seed, accuracy, status="FINISHED"):
    metrics = {f"test_{m}": accuracy for m in ("precision", "recall", "specificity", "f1", "auroc")}
    return {"run_id": run_id, "setting": setting, "seed": seed, "status": status,
            "test_accuracy": accuracy, **metrics}


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(0)
    runs, predictions = [], {}
    half_wrong = np.arange(N_IMAGES) % 4 < 2  # half the images of each class
    for seed in range(3):
        # Original-1.0 gets half the images wrong; DCGAN-1.0-0.6 gets all right; the CGAN
        # run is a copy of Original's; DCGAN-1.0-0.3 is random, for the hand-computed delta.
        tables = {
            "Original-1.0-0.0": _predictions(half_wrong, rng),
            "DCGAN-1-0.6": _predictions(np.ones(N_IMAGES, bool), rng),
            "DCGAN-1.0-0.3": _predictions(rng.random(N_IMAGES) < 0.7, rng),
        }
        tables["CGAN-1.0-0.3"] = tables["Original-1.0-0.0"].copy()
        accuracy = {"Original-1.0-0.0": ORIGINAL_ACC[seed], "DCGAN-1-0.6": DCGAN_ACC[seed]}
        for setting, table in tables.items():
            run_id = f"{setting}-s{seed}"
            predictions[run_id] = table
            runs.append(_run(run_id, setting, seed, accuracy.get(setting, 0.5)))
    runs.append(_run("dcgan-failed", "DCGAN-1.0-0.6", 3, 0.1, status="FAILED"))
    runs.append(_run("no-baseline", "DCGAN-0.3-0.3", 0, 0.7))
    predictions["no-baseline"] = predictions["DCGAN-1.0-0.3-s0"]
    runs = pd.DataFrame(runs)
    table = summarize(runs, predictions, n_boot=400, seed=0).set_index("setting", drop=False)
    return runs, predictions, table


def test_paper_values_cover_table1():
    assert list(PAPER_TABLE1_VALUES) == list(PAPER_TABLE1)
    assert PAPER_TABLE1_VALUES["Original-0.3-0.0"] == {"accuracy": 0.78365, "recall": 0.997,
                                                       "precision": 0.744}


def test_mean_std_ci_by_hand(study):
    _, _, table = study
    row = table.loc["DCGAN-1.0-0.6"]  # "DCGAN-1-0.6" canonicalised
    values = np.array(DCGAN_ACC)
    mean, std = values.mean(), np.sqrt(((values - values.mean()) ** 2).sum() / 2)
    half = stats.t.ppf(0.975, 2) * std / np.sqrt(3)
    assert row["n_runs"] == 3
    assert row["accuracy_mean"] == pytest.approx(mean)
    assert row["accuracy_std"] == pytest.approx(std)
    assert row["accuracy_ci_low"] == pytest.approx(mean - half)
    assert row["accuracy_ci_high"] == pytest.approx(mean + half)
    assert row["paper_accuracy"] == 0.92468


def test_single_run_has_no_std_or_ci(study):
    row = study[2].loc["DCGAN-0.3-0.3"]
    assert row["n_runs"] == 1 and row["accuracy_mean"] == pytest.approx(0.7)
    assert np.isnan(row["accuracy_std"]) and np.isnan(row["accuracy_ci_low"])


def test_observed_delta_is_mean_paired_difference(study):
    _, predictions, table = study

    def accuracy(run_id):
        t = predictions[run_id]
        return ((t["probability"] >= 0.5).astype(int) == t["y_true"]).mean()

    by_hand = np.mean([accuracy(f"DCGAN-1.0-0.3-s{s}") - accuracy(f"Original-1.0-0.0-s{s}")
                       for s in range(3)])
    row = table.loc["DCGAN-1.0-0.3"]
    assert row["delta_accuracy"] == pytest.approx(by_hand)
    assert row["delta_accuracy_ci_low"] <= row["delta_accuracy"] <= row["delta_accuracy_ci_high"]
    assert row["n_paired_seeds"] == 3 and row["baseline"] == "Original-1.0-0.0"


def test_clear_winner_is_significant_and_a_copy_is_not(study):
    table = study[2]
    winner, copy = table.loc["DCGAN-1.0-0.6"], table.loc["CGAN-1.0-0.3"]
    assert winner["delta_accuracy"] == pytest.approx(0.5)
    assert winner["delta_accuracy_p"] < 0.05
    assert copy["delta_accuracy"] == 0 and copy["delta_accuracy_p"] > 0.5
    assert copy["delta_auroc"] == 0 and copy["delta_auroc_p"] > 0.5
    assert np.isnan(table.loc["Original-1.0-0.0", "delta_accuracy"])


def test_bootstrap_is_deterministic(study):
    runs, predictions, table = study
    again = summarize(runs, predictions, n_boot=400, seed=0).set_index("setting", drop=False)
    pd.testing.assert_frame_equal(table, again)


def test_failed_run_is_listed_not_averaged(study):
    runs, _, table = study
    row = table.loc["DCGAN-1.0-0.6"]
    assert row["n_runs"] == 3 and row["n_missing_or_failed"] == 1
    assert "dcgan-failed (FAILED, seed 3)" in row["missing_or_failed"]
    assert row["accuracy_mean"] == pytest.approx(np.mean(DCGAN_ACC))  # 0.1 not averaged in
    assert missing_settings(runs, ["Original-1.0-0.0", "CGAN-1.0-0.6"]) == ["CGAN-1.0-0.6"]


def test_missing_original_gives_nan_and_note(study):
    row = study[2].loc["DCGAN-0.3-0.3"]
    assert np.isnan(row["delta_accuracy"]) and "Original-0.3-0.0" in row["note"]


def test_expected_settings_get_empty_rows(study):
    runs, predictions, _ = study
    table = summarize(runs, predictions, n_boot=10, expected_settings=["CGAN-0.3-1"])
    row = table.set_index("setting").loc["CGAN-0.3-1.0"]
    assert row["n_runs"] == 0 and "no finished runs" in row["note"]
    assert list(table["setting"][:2]) == ["Original-1.0-0.0", "CGAN-0.3-1.0"]  # Table 1 order


def test_weighted_auroc_matches_sklearn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 50)
    probs = np.round(rng.random(50), 1)  # rounded: ties must count one half
    counts = rng.integers(0, 4, 50)
    got = comparison._weighted_auroc(np.stack([np.ones(50), counts]), labels, probs)
    assert got[0] == pytest.approx(roc_auc_score(labels, probs))
    assert got[1] == pytest.approx(roc_auc_score(np.repeat(labels, counts),
                                                 np.repeat(probs, counts)))


def test_reports(study, tmp_path):
    table = study[2].reset_index(drop=True)
    markdown = to_markdown(table)
    assert "| DCGAN-1.0-0.6 |" in markdown and "0.92468" in markdown and "0.896" in markdown
    assert "dcgan-failed (FAILED, seed 3)" in markdown
    fig = bar_chart(table)
    assert isinstance(fig, Figure)
    bars = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars) == 1 and len(bars[0]) == len(table)
    page = to_html(table, fig)
    assert "data:image/png;base64," in page and "<style>" in page
    assert "src='http" not in page and "<link" not in page
    path = to_csv(table, tmp_path / "results.csv")
    assert pd.read_csv(path)["setting"].tolist() == table["setting"].tolist()
