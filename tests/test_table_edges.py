"""Table 1 at its edges: differences with no spread, a metric that is not finite, and a
table short of its planned seeds (interim), each through `summarize` and the reports; and
the plan's absence changes nothing."""

from __future__ import annotations

import html
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pneumonia_aug.evaluation import sequential
from pneumonia_aug.evaluation.groups import Scale
from pneumonia_aug.evaluation.inference import paired_contrasts
from pneumonia_aug.evaluation.report import to_html, to_markdown
from pneumonia_aug.evaluation.table import summarize

BASE, GAN = "Original-1.0-0.0", "DCGAN-1.0-0.6"
PARTS = {"image_size": "128", "epochs": "10", "batch_size": "64", "lr": "0.001",
         "lr_scaling": "sqrt", "pretrained": "none", "real_fraction_scope": "normal",
         "max_images_per_split": "0", "dataset_digest": "d" * 16, "code_version": "c" * 40}
ORIGINAL = np.array([0.859, 0.864, 0.907, 0.872, 0.851, 0.880, 0.866])


def _runs(gan: np.ndarray, original: np.ndarray = ORIGINAL, auroc=None) -> pd.DataFrame:
    rows = []
    for setting, values in ((BASE, original), (GAN, gan)):
        for seed, value in enumerate(values):
            rows.append({"run_id": f"{setting}-s{seed}", "setting": setting, "seed": seed,
                         "status": "FINISHED", "test/accuracy": value,
                         "test/auroc": 0.9 + value / 10})
    runs = pd.DataFrame(rows)
    if auroc:
        run_id, value = auroc
        runs.loc[runs["run_id"] == run_id, "test/auroc"] = value
    return runs


def _scale(seeds: int) -> Scale:
    return Scale("k", PARTS, tuple(range(seeds)), (seeds, seeds))


def test_float_ties_give_no_p_value_instead_of_a_tiny_one():
    correct = np.array([536, 539, 566])  # of 624 test images
    original, gan = correct / 624, (correct + 12) / 624  # 12 more images right at every seed
    differences = gan - original
    assert differences.std(ddof=1) > 0  # rounding leaves a spread of about 1e-17 ...
    with warnings.catch_warnings():  # scipy warns of "nearly identical" data, and goes on
        warnings.simplefilter("ignore", RuntimeWarning)
        assert stats.ttest_rel(gan, original).pvalue < 1e-20  # ... which scipy calls certain
    runs = _runs(gan, original)
    c = paired_contrasts(runs, "test/accuracy", [(GAN, BASE)])[GAN]
    assert c.no_spread and c.n_pairs == 3 and c.estimate == pytest.approx(12 / 624)
    assert all(np.isnan(x) for x in (c.p, c.se, c.ci_low, c.ci_high, c.effect_size_dz))
    table = summarize(runs, {}).set_index("setting", drop=False)
    row = table.loc[GAN]
    assert np.isnan(row["delta_accuracy_p"]) and np.isnan(row["delta_accuracy_p_holm"])
    assert "Δ accuracy: no spread in the per-seed differences (each of the 3 pairs differs by " \
           "+0.0192): no p-value or interval" in row["note"]
    markdown = to_markdown(table.reset_index(drop=True), _scale(3))
    assert f"| {GAN} | {BASE} | 3 | +0.019 (no spread) |  |  |" in markdown
    assert "no spread in the per-seed differences" in markdown


def test_a_real_spread_keeps_its_p_value():
    gan = ORIGINAL[:3] + np.array([0.02, 0.021, 0.019])
    c = paired_contrasts(_runs(gan, ORIGINAL[:3]), "test/accuracy", [(GAN, BASE)])[GAN]
    assert not c.no_spread
    assert c.p == pytest.approx(stats.ttest_rel(gan, ORIGINAL[:3]).pvalue)


def test_an_infinite_metric_drops_that_seed_with_a_note():
    gan = ORIGINAL[:4] + np.array([0.01, -0.02, 0.03, 0.0])
    runs = _runs(gan, ORIGINAL[:4], auroc=(f"{GAN}-s2", np.inf))
    table = summarize(runs, {}).set_index("setting", drop=False)
    row = table.loc[GAN]
    assert f"seed 2 (run {GAN}-s2): test/auroc is inf: left out of auroc" in row["note"]
    assert row["delta_accuracy_p"] == pytest.approx(stats.ttest_rel(gan, ORIGINAL[:4]).pvalue)
    kept = [0, 1, 3]
    auroc = stats.ttest_rel(0.9 + gan[kept] / 10, 0.9 + ORIGINAL[kept] / 10)
    assert row["delta_auroc_p"] == pytest.approx(auroc.pvalue)
    assert row["delta_auroc_per_seed"].count(":") == 3
    assert np.isfinite(row["auroc_mean"]) and row["auroc_mean"] == pytest.approx(
        np.mean(0.9 + gan[kept] / 10))
    markdown = to_markdown(table.reset_index(drop=True), _scale(4))
    assert "test/auroc is inf: left out of auroc" in markdown


def test_an_interim_table_says_so_and_decides_only_at_planned_looks(tmp_path):
    rng = np.random.default_rng(1)
    gan = ORIGINAL + rng.normal(0.02, 0.03, len(ORIGINAL))
    runs = _runs(gan)
    table = summarize(runs, {}, planned_seeds=12, planned_looks=4)
    design = sequential.plan(12, 4)
    row = table.set_index("setting").loc[GAN]
    p6 = stats.ttest_rel(gan[:6], ORIGINAL[:6]).pvalue
    line = (f"interim: 7 of 12 planned seeds; decision at look 2 (6 pairs): not crossed (p "
            f"{p6:.2g} > boundary {design.p[1]:.2g}); next look at 9")
    assert row["plan_line"] == line and row["decision_look"] == 2 and not row["decision_crossed"]
    assert row["interim"]
    assert row["decision_p"] == pytest.approx(p6) and row["next_look"] == 9
    assert row["planned_looks"] == "3,6,9,12" and row["planned_seeds"] == 12
    # the estimate and interval use every pair so far; the p is not shown: it decides nothing
    assert row["delta_accuracy"] == pytest.approx((gan - ORIGINAL).mean())
    markdown = to_markdown(table, _scale(7), "per-seed")
    assert f"- {GAN}: {line}" in markdown
    versus = [r for r in markdown.splitlines() if r.startswith(f"| {GAN} | {BASE}")][0]
    assert versus.split(" | ")[4:6] == ["", ""]  # no p, no p adj
    assert "Planned: 12 seeds per GAN row, looks at 3, 6, 9, 12 pairs" in markdown
    assert "GAN design per-seed" in markdown
    assert html.escape(line) in to_html(table, _scale(7), gan_seeds="per-seed")
    table.to_csv(tmp_path / "t.csv", index=False)
    back = pd.read_csv(tmp_path / "t.csv").set_index("setting")
    assert back.loc[GAN, "look_boundaries"].split(",")[0] == f"{design.p[0]:.6g}"
    assert back.loc[BASE, "planned_seeds"] == 12 and pd.isna(back.loc[BASE, "plan_line"])


def test_a_complete_plan_shows_its_p_and_the_final_decision():
    gan = ORIGINAL[:4] + np.array([0.05, 0.04, 0.06, 0.05])
    table = summarize(_runs(gan, ORIGINAL[:4]), {}, planned_seeds=4, planned_looks=2)
    row = table.set_index("setting").loc[GAN]
    assert row["plan_line"].startswith("complete: 4 of 4 planned seeds; decision at look 2")
    assert not row["interim"]
    versus = [r for r in to_markdown(table, _scale(4)).splitlines()
              if r.startswith(f"| {GAN} | {BASE}")][0]
    assert versus.split(" | ")[4] == f"{row['delta_accuracy_p']:.3f}"


def test_without_a_plan_the_table_is_as_before():
    runs = _runs(ORIGINAL + np.linspace(-0.02, 0.03, len(ORIGINAL)))
    table = summarize(runs, {})
    assert not {"planned_seeds", "interim", "plan_line", "decision_p"} & set(table.columns)
    markdown = to_markdown(table, _scale(7))
    assert "interim" not in markdown and "Planned" not in markdown
    assert "GAN design not recorded (runs from before it was), taken as shared" in markdown
    with pytest.raises(ValueError, match="gan_seeds"):
        to_markdown(table, _scale(7), "per_seed")


def test_the_short_table_gives_no_p_to_an_interim_row():
    """The study page's short table withholds p where the full table does: a row short of its
    planned seeds decides nothing yet."""
    from pneumonia_aug.evaluation.intervals import SEEDS
    from pneumonia_aug.evaluation.report_text import summary

    row = {"setting": "DCGAN-1.0-0.6", "n_runs": 3, "accuracy_mean": 0.8, "accuracy_std": 0.01,
           "paper_accuracy": 0.9, "delta_accuracy": 0.02, "delta_accuracy_ci_low": -0.01,
           "delta_accuracy_ci_high": 0.05, "delta_accuracy_p": 0.04, "interval": SEEDS}
    decided = summary(pd.DataFrame([{**row, "interim": False}]))[1][-1]
    interim = summary(pd.DataFrame([{**row, "interim": True}]))[1][-1]
    assert decided == "+0.020 [-0.010, +0.050] p 0.040"
    assert interim == "+0.020 [-0.010, +0.050]"
