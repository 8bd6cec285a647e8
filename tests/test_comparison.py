"""Table 1: seed statistics, the calibrated comparison with Original, completeness, reports.

The statistics are checked against hand computation and scipy; their calibration against
simulation is in tests/test_inference.py and tests/test_inference_simulation.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from scipy import stats
from sklearn.metrics import roc_auc_score

from pneumonia_aug.evaluation.groups import Scale
from pneumonia_aug.evaluation.report import (
    accuracy_chart,
    forest_plot,
    to_csv,
    to_html,
    to_markdown,
)
from pneumonia_aug.evaluation.table import PAPER_TABLE1_VALUES, summarize
from pneumonia_aug.settings import PAPER_TABLE1

N_IMAGES = 40
LABELS = np.array([0, 1] * (N_IMAGES // 2))
SHA = [f"{i:064x}" for i in range(N_IMAGES)]
PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
PARTS = {"image_size": "32", "epochs": "5", "batch_size": "32", "lr": "0.001",
         "lr_scaling": "none", "pretrained": "none", "real_fraction_scope": "normal",
         "max_images_per_split": "500", "dataset_digest": "d" * 16, "code_version": "c" * 40}


def _predictions(correct: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """A prediction table whose thresholded output is right exactly where `correct` is True."""
    confidence = rng.uniform(0.55, 0.99, N_IMAGES)  # varied, so AUROC is not degenerate
    p_positive = np.where(LABELS == 1, confidence, 1 - confidence)
    probability = np.where(correct, p_positive, 1 - p_positive)
    table = pd.DataFrame({"sha256": SHA, "y_true": LABELS, "probability": probability})
    return table.sample(frac=1, random_state=int(rng.integers(1000)))  # order must not matter


def _run(run_id, setting, seed, accuracy, auroc=0.9, status="FINISHED"):
    metrics = {f"test/{m}": accuracy for m in ("precision", "recall", "specificity", "f1")}
    return {"run_id": run_id, "setting": setting, "seed": seed, "status": status,
            "test/accuracy": accuracy, "test/auroc": auroc, **metrics}


def _accuracy(table: pd.DataFrame) -> float:
    return float(((table["probability"] >= 0.5).astype(int) == table["y_true"]).mean())


@pytest.fixture(scope="module")
def study():
    """Three seeds: Original-1.0 gets about half the images wrong, DCGAN-1.0-0.6 nearly all right,
    CGAN-1.0-0.3 copies Original's runs, DCGAN-1.0-0.3 is random; plus a failed seed-3 run
    and a DCGAN-0.3-0.3 run without its Original-0.3 baseline."""
    rng = np.random.default_rng(0)
    runs, predictions = [], {}
    for seed in range(3):
        tables = {
            "Original-1.0-0.0": _predictions((np.arange(N_IMAGES) % 4 < 2)
                                             | (np.arange(N_IMAGES) == 2 * (seed == 2)), rng),
            "DCGAN-1-0.6": _predictions(np.arange(N_IMAGES) >= seed, rng),
            "DCGAN-1.0-0.3": _predictions(rng.random(N_IMAGES) < 0.7, rng),
        }
        tables["CGAN-1.0-0.3"] = tables["Original-1.0-0.0"].copy()
        for setting, table in tables.items():
            run_id = f"{setting}-s{seed}"
            predictions[run_id] = table
            runs.append(_run(run_id, setting, seed, _accuracy(table),
                             auroc=roc_auc_score(table["y_true"], table["probability"])))
    runs.append(_run("dcgan-failed", "DCGAN-1.0-0.6", 3, 0.1, status="FAILED"))
    runs.append(_run("no-baseline", "DCGAN-0.3-0.3", 0, 0.7))
    predictions["no-baseline"] = predictions["DCGAN-1.0-0.3-s0"]
    runs = pd.DataFrame(runs)
    table = summarize(runs, predictions, expected_seeds=[0, 1, 2])
    return runs, predictions, table.set_index("setting", drop=False)


def _by_seed(runs, setting):
    rows = runs[(runs["setting"] == setting) & (runs["status"] == "FINISHED")]
    return rows.set_index("seed")["test/accuracy"].sort_index()


def test_paper_values_are_the_papers_table1():
    """The constant against the paper's Table 1 as docs/protocol.md quotes it (accuracy in %,
    then recall, precision)."""
    rows = {}
    for line in PROTOCOL.read_text().split("## The paper's Table 1", 1)[1].splitlines():
        parts = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(parts) == 4 and parts[0].split("-")[0] in ("Original", "DCGAN", "CGAN"):
            accuracy, recall, precision = (float(x) for x in parts[1:])
            rows[parts[0]] = {"accuracy": accuracy / 100, "recall": recall,
                              "precision": precision}
    assert list(rows) == list(PAPER_TABLE1)  # the same 12 rows, in the paper's order
    for setting, values in rows.items():
        assert PAPER_TABLE1_VALUES[setting] == pytest.approx(values, abs=1e-9), setting


def test_mean_std_ci_by_hand(study):
    runs, _, table = study
    row = table.loc["DCGAN-1.0-0.6"]  # "DCGAN-1-0.6" canonicalised
    values = _by_seed(runs, "DCGAN-1-0.6").to_numpy()
    mean, std = values.mean(), np.sqrt(((values - values.mean()) ** 2).sum() / 2)
    half = stats.t.ppf(0.975, 2) * std / np.sqrt(3)
    assert row["n_runs"] == 3 and row["seeds"] == "0,1,2"
    assert row["accuracy_mean"] == pytest.approx(mean)
    assert row["accuracy_std"] == pytest.approx(std)
    assert (row["accuracy_ci_low"], row["accuracy_ci_high"]) == pytest.approx(
        (mean - half, mean + half))
    assert row["paper_accuracy"] == 0.92468


def test_delta_is_the_mean_paired_difference_with_per_seed_values(study):
    runs, _, table = study
    diffs = _by_seed(runs, "DCGAN-1-0.6") - _by_seed(runs, "Original-1.0-0.0")
    row = table.loc["DCGAN-1.0-0.6"]
    assert row["delta_accuracy"] == pytest.approx(diffs.mean())
    assert row["n_paired_seeds"] == 3 and row["baseline"] == "Original-1.0-0.0"
    assert row["delta_accuracy_per_seed"] == ";".join(f"{s}:{d:+.4f}" for s, d in diffs.items())
    assert row["delta_accuracy_dz"] == pytest.approx(diffs.mean() / diffs.std(ddof=1))
    assert row["interval"] == "seeds"


@pytest.mark.parametrize("alone", [True, False])
def test_each_row_is_scipys_paired_t_test_whatever_the_other_rows(study, alone):
    """The row's own paired t-test over seeds, the same alone with its baseline or in the
    whole table (where DCGAN-1.0-0.6 and CGAN-1.0-0.3 vary far less between seeds)."""
    runs, predictions, table = study
    pair = runs[runs["setting"].isin(["Original-1.0-0.0", "DCGAN-1.0-0.3"])]
    row = (summarize(pair, predictions).set_index("setting") if alone else table).loc[
        "DCGAN-1.0-0.3"]
    ours, base = _by_seed(runs, "DCGAN-1.0-0.3"), _by_seed(runs, "Original-1.0-0.0")
    test = stats.ttest_rel(ours, base)
    assert row["delta_accuracy_p"] == pytest.approx(test.pvalue)
    assert row["delta_accuracy_df"] == 2
    half = stats.t.ppf(0.975, 2) * (ours - base).std(ddof=1) / np.sqrt(3)
    assert row["delta_accuracy_ci_high"] - row["delta_accuracy"] == pytest.approx(half)
    auroc = stats.ttest_rel(
        *(runs[(runs["setting"] == s)].set_index("seed")["test/auroc"].sort_index()
          for s in ("DCGAN-1.0-0.3", "Original-1.0-0.0")))
    interval = auroc.confidence_interval(0.95)
    assert (row["delta_auroc_ci_low"], row["delta_auroc_ci_high"]) == pytest.approx(
        (interval.low, interval.high), abs=1e-12)


def test_a_gan_row_with_one_finished_run_gets_no_p_value(study):
    runs, predictions, _ = study
    fewer = runs[~((runs["setting"] == "DCGAN-1.0-0.3") & (runs["seed"] > 0))]
    row = summarize(fewer, predictions).set_index("setting").loc["DCGAN-1.0-0.3"]
    assert row["n_paired_seeds"] == 1 and row["interval"] == "test set only"
    assert np.isnan(row["delta_accuracy_p"]) and np.isnan(row["delta_accuracy_p_holm"])
    assert np.isnan(row["delta_auroc_p"]) and np.isnan(row["delta_auroc_ci_low"])


def test_clear_winner_is_significant_and_a_copy_is_not(study):
    runs, _, table = study
    winner, copy = table.loc["DCGAN-1.0-0.6"], table.loc["CGAN-1.0-0.3"]
    reference = stats.ttest_rel(_by_seed(runs, "DCGAN-1-0.6"), _by_seed(runs, "Original-1.0-0.0"))
    assert winner["delta_accuracy_p"] == pytest.approx(reference.pvalue)
    assert winner["delta_accuracy"] > 0.35 and winner["delta_accuracy_p"] < 0.05
    assert winner["delta_accuracy_p_holm"] >= winner["delta_accuracy_p"]
    # a copy differs by 0 at every seed: nothing measures the noise, so no p-value at all
    assert copy["delta_accuracy"] == 0 and np.isnan(copy["delta_accuracy_p"])
    assert copy["delta_accuracy_no_spread"] and np.isnan(copy["delta_accuracy_ci_low"])
    assert "Δ accuracy: no spread in the per-seed differences" in copy["note"]
    assert copy["delta_auroc"] == pytest.approx(0)
    assert np.isnan(table.loc["Original-1.0-0.0", "delta_accuracy"])


def test_failed_and_missing_seeds_are_listed_by_seed(study):
    runs, _, table = study
    row = table.loc["DCGAN-1.0-0.6"]
    assert row["n_runs"] == 3  # the failed seed-3 run is not averaged in
    assert "seed 3 (FAILED run dcgan-failed)" in row["missing_or_failed"]
    assert row["accuracy_mean"] == pytest.approx(_by_seed(runs, "DCGAN-1-0.6").mean())
    lonely = table.loc["DCGAN-0.3-0.3"]
    assert "seed 1 (missing)" in lonely["missing_or_failed"]


def test_missing_original_gives_nan_and_note(study):
    row = study[2].loc["DCGAN-0.3-0.3"]
    assert np.isnan(row["delta_accuracy"]) and "Original-0.3-0.0" in row["note"]


def test_expected_settings_get_empty_rows(study):
    runs, predictions, _ = study
    table = summarize(runs, predictions, expected_settings=["CGAN-0.3-1"])
    row = table.set_index("setting").loc["CGAN-0.3-1.0"]
    assert row["n_runs"] == 0 and "no finished runs" in row["note"]
    assert list(table["setting"][:2]) == ["Original-1.0-0.0", "CGAN-0.3-1.0"]  # Table 1 order


@pytest.fixture(scope="module")
def one_seed(study):
    runs, predictions, _ = study
    return runs[runs["seed"] == 0], predictions


def test_one_seed_has_no_p_value_and_a_test_set_only_interval(one_seed):
    runs, predictions = one_seed
    row = summarize(runs, predictions).set_index("setting").loc["DCGAN-1.0-0.3"]
    assert np.isnan(row["delta_accuracy_p"]) and row["interval"] == "test set only"
    ours = predictions["DCGAN-1.0-0.3-s0"].set_index("sha256")
    base = predictions["Original-1.0-0.0-s0"].set_index("sha256").loc[ours.index]
    d = (((ours["probability"] >= 0.5).astype(int) == ours["y_true"]).astype(float)
         - ((base["probability"] >= 0.5).astype(int) == base["y_true"]).astype(float))
    half = stats.t.ppf(0.975, N_IMAGES - 1) * d.std(ddof=1) / np.sqrt(N_IMAGES)
    assert row["delta_accuracy"] == pytest.approx(d.mean())
    assert row["delta_accuracy_ci_high"] == pytest.approx(d.mean() + half)


def test_a_run_scored_on_other_test_images_is_named(study):
    runs, predictions, _ = study
    short = dict(predictions)
    short["Original-1.0-0.0-s1"] = predictions["Original-1.0-0.0-s1"].iloc[:30]
    table = summarize(runs, short).set_index("setting")
    assert "run Original-1.0-0.0-s1 scored 30 test images, not the 40" in \
        table.loc["Original-1.0-0.0", "note"]
    other = dict(predictions)  # as many images, 5 of them others: a different draw
    swapped = predictions["Original-1.0-0.0-s1"].copy()
    swapped.loc[swapped.index[:5], "sha256"] = [f"other-{i}" for i in range(5)]
    other["Original-1.0-0.0-s1"] = swapped
    note = summarize(runs, other).set_index("setting").loc["Original-1.0-0.0", "note"]
    assert "scored another draw of 40 test images than the others (5 differ)" in note


def test_reports_state_scale_and_what_one_seed_cannot_tell(study, one_seed, tmp_path):
    table = study[2].reset_index(drop=True)
    scale = Scale("abc123", PARTS, (0, 1, 2), (1, 3))
    markdown = to_markdown(table, scale)
    assert markdown.startswith("Scale: profile quick, 32 px, 5 epochs, batch 32")
    assert "seeds 0,1,2 (1-3 finished per setting)" in markdown
    assert "at most 500 images" in markdown
    assert "paired t-test over those seeds" in markdown and "fewer than 2 pairs" in markdown
    blocks = markdown.split("\n\n**")
    assert [b.split("**")[0] for b in blocks[1:4]] == [
        "Ours: mean ± SD over seeds [95% interval]", "Paper: Tung et al. Table 1 (one run each)",
        "Each GAN setting against its Original (paired over seeds)"]
    assert all(len(line.split(" | ")) <= 10 for line in markdown.splitlines())  # no 17 columns
    winner = table.set_index("setting").loc["DCGAN-1.0-0.6"]
    assert (f"| DCGAN-1.0-0.6 | Original-1.0-0.0 | 3 | {winner['delta_accuracy']:+.3f} "
            f"[{winner['delta_accuracy_ci_low']:+.3f}, {winner['delta_accuracy_ci_high']:+.3f}]"
            f" | {winner['delta_accuracy_p']:.3f} | {winner['delta_accuracy_p_holm']:.3f} | "
            f"{winner['delta_auroc']:+.3f} [{winner['delta_auroc_ci_low']:+.3f}, "
            f"{winner['delta_auroc_ci_high']:+.3f}] |") in markdown
    assert "Not comparable with the paper's numbers" in markdown
    assert "| DCGAN-1.0-0.6 | 0.925 | 0.995 | 0.896 |" in markdown  # one precision
    assert "0.92468" not in markdown
    assert "seed 3 (FAILED run dcgan-failed)" in markdown and "Holm" in markdown
    fig = accuracy_chart(table, scale)
    assert isinstance(fig, Figure)
    assert not [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]  # points
    assert len(fig.axes[0].containers) == len(table)  # one point with its interval each
    assert "not comparable with the paper" in fig.axes[0].get_title()
    forest = forest_plot(table, scale)
    gan_rows = table[table["delta_accuracy"].notna()]
    labels = [t.get_text().split("\n")[0] for t in forest.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(gan_rows["setting"])
    # the winner's point sits at its Δ, its seeds' dots at their own differences
    winner_y = len(labels) - 1 - labels[::-1].index("DCGAN-1.0-0.6")
    points = [line for line in forest.axes[0].lines if line.get_marker() == "o"
              and list(line.get_ydata()) == [winner_y]]
    assert points and points[0].get_xdata()[0] == pytest.approx(winner["delta_accuracy"])
    dots = [line for line in forest.axes[0].lines if line.get_marker() == "."
            and list(line.get_ydata())[:1] == [winner_y - 0.18]]
    per_seed = [float(v.split(":")[1]) for v in winner["delta_accuracy_per_seed"].split(";")]
    assert sorted(dots[0].get_xdata()) == pytest.approx(sorted(per_seed))
    page = to_html(table, scale, fig, forest)
    assert page.count("data:image/png;base64,") == 2 and "Scale: profile quick" in page
    assert "src='http" not in page and "<link" not in page
    path = to_csv(table, tmp_path / "results.csv")
    assert pd.read_csv(path)["setting"].tolist() == table["setting"].tolist()

    runs, predictions = one_seed
    single = summarize(runs, predictions)
    scale1 = Scale("abc123", PARTS, (0,), (1, 1))
    text = to_markdown(single, scale1)
    assert "ONE SEED per setting" in text and "No p-values" in text
    assert "| DCGAN-1.0-0.6 | Original-1.0-0.0 | 1 | +0.500 [+0.338, +0.662] (test set only) |  |" \
        in text  # one pair: no p-value
    legend = [t.get_text() for t in
              accuracy_chart(single, scale1).axes[0].get_legend().get_texts()]
    assert "no interval: one seed" in legend


def test_only_the_paper_profile_on_full_data_is_comparable():
    paper = PARTS | {"image_size": "256", "epochs": "100", "batch_size": "16",
                     "max_images_per_split": "0"}
    assert Scale("k", paper, (0, 1, 2), (3, 3)).comparable_with_paper
    assert "Not comparable" not in Scale("k", paper, (0, 1, 2), (3, 3)).line()
    assert "seeds 0,1,2 (3 finished per setting)" in Scale("k", paper, (0, 1, 2), (3, 3)).line()
    assert not Scale("k", paper | {"max_images_per_split": "100"}, (0,),
                     (1, 1)).comparable_with_paper
    assert Scale("k", PARTS | {"epochs": "7"}, (0,), (1, 1)).profile == "custom"
