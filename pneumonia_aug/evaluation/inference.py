"""Is a GAN setting better than its Original baseline? Inference over a few training seeds.

The procedure
-------------
Each classifier run is one (setting, seed) and yields one test metric (accuracy, AUROC) on
the same fixed test set. A contrast "setting minus its baseline" (e.g. DCGAN-1.0-0.6 minus
Original-1.0-0.0) is tested on the seeds both settings finished, with the paired t-test
(scipy.stats.ttest_rel): d[seed] = y[setting, seed] - y[baseline, seed] for the n paired seeds,

- estimate: mean(d),
- standard error sd(d) / sqrt(n), df = n - 1,
- a (1 - alpha) t-interval and a two-sided t p-value on those df.

With fewer than 2 pairs there is no standard error, interval or p-value (NaN). `holm` adjusts
the p-values of the family of contrasts in one table (Holm's step-down, which controls the
family-wise error rate under any dependence between the contrasts; they are dependent, as GAN
rows share their Original's runs).

Why pairing by seed: runs with the same seed share the initial weights, the data order and
the augmentation draws, so part of their luck is common; comparing within a seed keeps that
shared part out of the error. It also keeps a failed seed from biasing the estimate: a seed
either enters both sides of the difference or neither.

Why each contrast on its own differences, not a model of the whole table
------------------------------------------------------------------------
The previous procedure fitted one additive model y = setting + seed + error to every run of
the table and pooled the residual variance over all settings: at 3 seeds a 13-setting table
gets 24 df (t quantile 2.06) instead of the paired test's 2 (4.30), so much shorter intervals
and more power - but only if every setting varies as much between seeds as every other. A
setting that trains less stably than the rest gets the table's average spread as its error,
too small, and false positives follow. In tests/test_inference_simulation.py (binomial
accuracies on the 624 test images, seed-to-seed SD 0.026, 4,000 tables per cell) the pooled
test of one unstable GAN setting rejected a true null in 8.4-9.0% of 13-setting tables at 1.5x
the others' spread and 15-18% at 2x (6.7-7.4% and 8.6-9.9% with 4 settings), with interval
coverage down to 82%; the other rows then became conservative. Pooling only where a test of
equal spread does not reject does not repair it: with 2-4 df per setting such a pretest
rarely rejects (an F-test of the row's spread against the table's: 6-29% of 13-setting tables
at 1.5-2x), and pooling unless it rejected still gave 8-9% at 1.5x and 12-15% at 2x.
The paired t-test uses nothing but the row's own differences, so its level is exact for any
spread of the other settings (and of its own), and it measured 4.5-5.9% in every cell of
that grid (2, 4 and 13 settings; 3 and 5 seeds; seed luck shared by all settings of a seed or
drawn per run). The price is power: for a true +5-point gain the paired test at 3 seeds finds
it in 23% of tables when the seed luck is drawn per run and 67% when it is shared (5 seeds:
53% and 99%), where the pooled model, valid only at equal spread, had 42-51% and 96-99% at 3
seeds in 4- and 13-setting tables. Holm over many GAN rows costs more (printed by that test).

Why not the seed-resampling bootstrap used before that: it resampled the 3 seeds with
replacement, so its replicates see only (n - 1)/n = 2/3 of the seed variance of the mean and
its percentile interval has no small-sample (t with 2 df) widening: with 3 seeds the interval
is roughly [smallest, largest] per-seed difference, so under no true difference the seed
resampling alone "rejects" whenever all three differences share a sign, about 30% of studies
instead of 5% (tests/test_inference.py simulates it). It also resampled the test images,
which widened it again, but by accident rather than by design: that counts the per-image
flips between runs a second time (they are already in the seed spread), so its error rate
depended on how much of the run-to-run spread is such flips (4-9% in our simulations at the
same 2.6-point spread).

What it assumes
---------------
- Independent training runs, and seeds missing at random (a run did not fail because of its
  metric).
- Approximately normal per-seed differences; t-procedures are robust to the mild skew of
  accuracies, which the simulations check with binomial and per-image Bernoulli test counts.
- Nothing about the other settings of the table: their spread, or whether they finished.
- The population is "new training runs scored on this 624-image test set". The test images
  are fixed, so the interval is about training variation, not about drawing another test set.

What one seed cannot tell
-------------------------
With one paired seed the difference of two runs mixes the setting's effect with run-to-run
training luck (2.5-3 accuracy points between seeds in practice), and nothing in the data
measures that luck. Then p, SE and the interval are NaN. `paired_test_set_interval` gives,
for one pair of runs, the uncertainty from the test images only (which images happen to be
in the test set). It says nothing about training variance, so it must not be read as a test
of the setting: in the simulation it "rejects" a true null far more often than 5%.

Pure numpy/scipy/pandas: callers pass DataFrames; nothing here talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Contrast:
    """One setting against its baseline on one metric (NaN where it cannot be computed)."""

    setting: str
    baseline: str
    estimate: float  # mean of the per-seed differences setting - baseline
    se: float  # NaN with fewer than 2 pairs
    df: int  # n_pairs - 1 (0 with fewer than 2 pairs)
    ci_low: float
    ci_high: float
    p: float  # two-sided paired t p-value, NaN with fewer than 2 pairs
    n_pairs: int  # seeds where both settings have a run
    per_seed: dict[int, float]  # seed -> setting - baseline, paired seeds only
    effect_size_dz: float  # Cohen's d_z of the per-seed differences


def _t_inference(estimate: np.ndarray, se: np.ndarray, df: int,
                 alpha: float) -> dict[str, np.ndarray]:
    """t-interval and two-sided p-value; NaN without df."""
    if df <= 0:
        nan = np.full_like(estimate, np.nan)
        return {"ci_low": nan, "ci_high": nan.copy(), "p": nan.copy()}
    half = stats.t.ppf(1 - alpha / 2, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(estimate / se), df)
    # Identical differences at every seed: certain if they are 0, else not.
    p = np.where(se == 0, np.where(estimate == 0, 1.0, 0.0), p)
    return {"ci_low": estimate - half, "ci_high": estimate + half, "p": p}


def paired_t(differences: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """The paired t-test over seeds of per-seed differences, along the last axis.

    `differences` has shape (..., n): n paired seeds (all finite) for each of any number of
    contrasts or simulated studies. Returns estimate (the mean difference), se, df (n - 1),
    ci_low, ci_high and p, each of the leading shape; se, interval and p are NaN when n < 2,
    the estimate when n == 0.
    """
    d = np.asarray(differences, dtype=float)
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite: keep only the seeds both settings have")
    n = d.shape[-1]
    nan = np.full(d.shape[:-1], np.nan)
    estimate = d.mean(axis=-1) if n else nan
    se = d.std(axis=-1, ddof=1) / np.sqrt(n) if n > 1 else nan.copy()
    return {"estimate": estimate, "se": se, "df": max(n - 1, 0),
            **_t_inference(estimate, se, n - 1, alpha)}


def per_seed_differences(runs: pd.DataFrame, value: str, setting: str,
                         baseline: str) -> dict[int, float]:
    """seed -> value(setting) - value(baseline), for seeds where both have a non-NaN value."""
    wide = runs.pivot(index="seed", columns="setting", values=value)
    if setting not in wide or baseline not in wide:
        return {}
    diff = (wide[setting] - wide[baseline]).dropna()
    return {int(seed): float(d) for seed, d in diff.items()}


def cohens_dz(differences: Iterable[float]) -> float:
    """Mean / sd (ddof=1) of paired differences; NaN with fewer than 2 or with sd 0."""
    d = np.asarray(list(differences), dtype=float)
    if len(d) < 2 or d.std(ddof=1) == 0:
        return float("nan")
    return float(d.mean() / d.std(ddof=1))


def _clean(runs: pd.DataFrame, value: str) -> pd.DataFrame:
    """setting, seed, value of the runs that have the metric; one run per (setting, seed)."""
    data = runs[["setting", "seed", value]].copy()
    data[value] = pd.to_numeric(data[value], errors="coerce")
    data = data.dropna(subset=[value])
    data["setting"] = data["setting"].astype(str)
    data["seed"] = data["seed"].astype(int)
    # A rerun of a seed repeats that seed's shared luck; it is not a new pair. The caller
    # chooses which run counts (the Table 1 code keeps the first and notes the others).
    duplicated = data.duplicated(["setting", "seed"])
    if duplicated.any():
        first = data[duplicated].iloc[0]
        raise ValueError(f"more than one run for setting {first.setting}, seed {first.seed}: "
                         "keep one run per (setting, seed)")
    return data


def paired_contrasts(runs: pd.DataFrame, value: str, pairs: Iterable[tuple[str, str]],
                     alpha: float = 0.05) -> dict[str, Contrast]:
    """Each (setting, baseline) pair's paired t-test on `value` over their shared seeds.

    `runs` has one row per finished run with columns setting, seed and `value`; runs whose
    `value` is NaN are dropped. A pair uses only its own two settings' runs: other settings
    of the table do not enter its test.
    """
    data = _clean(runs, value)
    result = {}
    for setting, baseline in pairs:
        if setting in result:
            raise ValueError(f"setting {setting} appears in more than one pair")
        per_seed = per_seed_differences(data, value, setting, baseline)
        numbers = paired_t(np.array(list(per_seed.values())), alpha)
        result[setting] = Contrast(setting=setting, baseline=baseline, df=numbers.pop("df"),
                                   n_pairs=len(per_seed), per_seed=per_seed,
                                   effect_size_dz=cohens_dz(per_seed.values()),
                                   **{k: float(v) for k, v in numbers.items()})
    return result


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values for one family; NaN stays NaN and is not counted.

    The i-th smallest of m p-values is multiplied by (m - i + 1), then a running maximum
    keeps the adjusted values in the order of the raw ones; capped at 1.
    """
    adjusted = {name: float("nan") for name in pvalues}
    finite = sorted((p, name) for name, p in pvalues.items() if not np.isnan(p))
    running = 0.0
    for i, (p, name) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - i) * p))
        adjusted[name] = running
    return adjusted


def paired_test_set_interval(correct_a: np.ndarray, correct_b: np.ndarray,
                      alpha: float = 0.05) -> tuple[float, float, float]:
    """(difference, low, high) of accuracy a - b of two runs on the same test images.

    `correct_a[i]` and `correct_b[i]` say whether run a and run b got image i right (the
    same image at the same index). With d_i = correct_a[i] - correct_b[i], the interval is
    mean(d) +- t(N-1) * sd(d) / sqrt(N): the paired difference of proportions on the same
    images. It reflects only which images happen to be in the test set; it says nothing about
    training variance (another seed of either setting would move the difference by more), so
    it is no test of setting a against setting b.
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("correct_a and correct_b must be 1-D, aligned, with 2+ images")
    d = a - b
    half = stats.t.ppf(1 - alpha / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
