"""The words under a table: what its numbers are over, what the GAN design lets its intervals
cover, and, with a plan, when a row's claim is decided (docs/statistics.md)."""

from __future__ import annotations

import pandas as pd

from pneumonia_aug.config import PER_SEED, SHARED
from pneumonia_aug.evaluation.groups import Scale

# How a study gave its GAN rows their generated images (config.GAN_SEEDS), or "" for runs made
# before it was recorded (they all shared one).
UNRECORDED = ""
GAN_SEEDS = (PER_SEED, SHARED, UNRECORDED)

SEEDS = (
    "Ours: mean ± SD over seeds [95% t-interval of the mean, kept inside 0-1; "
    "'uninformative' where wider than 0.5]; paper: Tung et al. Table 1 (one run each). "
    "Δ accuracy, Δ AUROC: the setting minus its Original at the same r, seed by seed, averaged "
    "over the seeds both finished (pairs); [95% CI] and p (two-sided: how often a difference "
    "at least this large would appear if the setting changed nothing) are across training "
    "runs, from the paired t-test over those seeds (each row on its own differences, so a "
    "setting that trains less stably than the others does not distort the other rows); no "
    "p-value with fewer than 2 pairs (one pair: the bracket covers the test set only) or where "
    "every pair differs by the same amount (no spread); p adj: Holm-adjusted over the table's "
    "GAN rows.")
ONE_SEED = (
    "ONE SEED per setting: one training run each, so nothing here measures how much a setting "
    "varies between training runs (seed to seed, test accuracy moves by a few points). No "
    "p-values. Δ accuracy is the difference between two single runs; its [interval] covers only "
    "which images happen to be in the test set (test set only), not training variance, so it "
    "cannot say that augmentation helps. Ours: the run's value; paper: Tung et al. Table 1.")
_SHARED = (
    "a GAN row's seeds all draw from one generated set (one GAN run), so its "
    "interval covers how the classifier varies with that set, not how much another GAN "
    "training run would move it; more seeds narrow it around that one GAN and make a claim "
    "about the method less trustworthy, not more.")
DESIGN = {
    PER_SEED: ("GAN design per-seed: each seed of a GAN row trained its own GAN and drew its own "
               "generated set, so the pairs are independent draws of the whole method and the "
               "interval covers it, GAN training included."),
    SHARED: "GAN design shared: " + _SHARED,
    UNRECORDED: "GAN design not recorded (runs from before it was), taken as shared: " + _SHARED,
}


def planned(table: pd.DataFrame) -> str:
    """The plan's sentence, where the table has one; else ""."""
    if "planned_looks" not in table or table["planned_looks"].dropna().empty:
        return ""
    row = table.dropna(subset=["planned_looks"]).iloc[0]
    looks = str(row["planned_looks"]).split(",")
    bounds = ", ".join(f"{float(p):.2g}" for p in str(row["look_boundaries"]).split(","))
    return (f"Planned: {int(row['planned_seeds'])} seeds per GAN row, looks at "
            f"{', '.join(looks)} pairs, each with a boundary for its paired t-test from "
            f"Lan-DeMets O'Brien-Fleming alpha spending (nominal p {bounds}): a row's claim "
            "(Δ accuracy) is decided only at a planned look, on its first pairs by seed, so "
            "looking at the table after every run keeps its false-positive rate at or below 5% "
            "(stopping at the first p < 0.05 would not); between "
            "looks Δ and its interval are shown without p and decide nothing.")


def legend(scale: Scale, gan_seeds: str = UNRECORDED, table: pd.DataFrame | None = None) -> str:
    if gan_seeds not in GAN_SEEDS:
        raise ValueError(f"gan_seeds must be one of {GAN_SEEDS}, not {gan_seeds!r}")
    if scale.one_seed:
        return ONE_SEED
    plan = planned(table) if table is not None else ""
    return " ".join(filter(None, (SEEDS, DESIGN[gan_seeds], plan)))
