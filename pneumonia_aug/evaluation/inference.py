"""Is a GAN setting better than its Original? The paired t-test over training seeds.

Each classifier run is one (setting, seed) with one test metric on the same fixed test set. A
contrast "setting minus its baseline" is tested on the seeds both finished: d[seed] =
y[setting, seed] - y[baseline, seed], and the paired t-test over those n differences gives
the mean, its standard error sd(d) / sqrt(n) on n - 1 df, a (1 - alpha) t-interval and a
two-sided p. With fewer than 2 pairs, or differences with no spread, there is no standard
error, interval or p (NaN). `holm` adjusts the p-values of one table's contrasts.

Why this test, and the measurements behind it (the pooled model and the seed bootstrap it
replaced, the simulations of its level and power): docs/statistics.md.

Pure numpy/scipy/pandas: callers pass DataFrames; nothing here talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05  # two-sided: every interval of the table is a 95% one
# Differences whose SD is at most this fraction of the values they come from have no spread:
# exact ties differ only by float rounding (about 1e-16 of the values), and a t-test on such
# noise gives p of 1e-29.
SPREAD_TOLERANCE = 1e-12
NO_SPREAD = "no spread in the per-seed differences"


@dataclass(frozen=True)
class Contrast:
    """One setting against its baseline on one metric (NaN where it cannot be computed)."""

    setting: str
    baseline: str
    estimate: float  # mean of the per-seed differences setting - baseline
    se: float  # NaN with fewer than 2 pairs or no spread
    df: int  # n_pairs - 1 (0 with fewer than 2 pairs)
    ci_low: float
    ci_high: float
    p: float  # two-sided paired t p-value, NaN with fewer than 2 pairs or no spread
    n_pairs: int  # seeds where both settings have a run
    per_seed: dict[int, float]  # seed -> setting - baseline, paired seeds only
    effect_size_dz: float  # Cohen's d_z of the per-seed differences
    no_spread: bool = False  # 2+ pairs, all the same difference: nothing measures the noise


def t_interval(mean: float, se: float, df: int, alpha: float = ALPHA) -> tuple[float, float]:
    """scipy's (1 - alpha) t-interval around `mean`; the point itself where se is 0 (scipy
    takes no zero scale), NaN without df."""
    if df < 1 or np.isnan(se):
        return float("nan"), float("nan")
    if se == 0:
        return float(mean), float(mean)
    low, high = stats.t.interval(1 - alpha, df, loc=mean, scale=se)
    return float(low), float(high)


def _no_spread(sd: np.ndarray, d: np.ndarray, scale) -> np.ndarray:
    """True where the SD of the differences is within rounding of zero (`SPREAD_TOLERANCE` of
    `scale`, default the largest |difference|)."""
    scale = np.abs(d).max(axis=-1) if scale is None else np.abs(np.asarray(scale, dtype=float))
    return sd <= SPREAD_TOLERANCE * scale


def paired_t(differences: np.ndarray, alpha: float = ALPHA,
             scale: float | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The paired t-test over seeds of per-seed differences, along the last axis.

    `differences` has shape (..., n): n paired seeds (all finite) for each of any number of
    contrasts or simulated studies. Returns estimate (the mean difference), se, df (n - 1),
    ci_low, ci_high, p and no_spread, each of the leading shape; se, interval and p are NaN
    when n < 2 or where the differences have no spread (no_spread: their SD is within
    `SPREAD_TOLERANCE` of `scale`, the size of the values they were taken from, default the
    largest |difference|); the estimate is NaN when n == 0.
    """
    d = np.asarray(differences, dtype=float)
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite: keep only the seeds both settings have")
    n = d.shape[-1]
    nan = np.full(d.shape[:-1], np.nan)
    estimate = d.mean(axis=-1) if n else nan
    if n < 2:
        return {"estimate": estimate, "se": nan.copy(), "df": 0, "ci_low": nan.copy(),
                "ci_high": nan.copy(), "p": nan.copy(), "no_spread": np.zeros(nan.shape, bool)}
    sd = d.std(axis=-1, ddof=1)
    flat = _no_spread(sd, d, scale)
    se = np.where(flat, np.nan, sd / np.sqrt(n))
    with np.errstate(invalid="ignore"):
        low, high = stats.t.interval(1 - alpha, n - 1, loc=estimate, scale=se)
    return {"estimate": estimate, "se": se, "df": n - 1, "ci_low": low, "ci_high": high,
            "p": 2 * stats.t.sf(np.abs(estimate / se), n - 1), "no_spread": flat}


def per_seed_differences(runs: pd.DataFrame, value: str, setting: str,
                         baseline: str) -> dict[int, float]:
    """seed -> value(setting) - value(baseline), for seeds where both have a non-NaN value.
    Pairing by seed keeps a seed's shared luck (initial weights, data order, augmentation
    draws) out of the error, and a failed seed out of both sides."""
    wide = runs.pivot(index="seed", columns="setting", values=value).sort_index()
    if setting not in wide or baseline not in wide:
        return {}
    diff = (wide[setting] - wide[baseline]).dropna()
    return {int(seed): float(d) for seed, d in diff.items()}


def cohens_dz(differences: Iterable[float], no_spread: bool = False) -> float:
    """Mean / sd (ddof=1) of paired differences; NaN with fewer than 2 or with no spread."""
    d = np.asarray(list(differences), dtype=float)
    if len(d) < 2 or no_spread or d.std(ddof=1) == 0:
        return float("nan")
    return float(d.mean() / d.std(ddof=1))


def _clean(runs: pd.DataFrame, value: str) -> pd.DataFrame:
    """setting, seed, value of the runs that have a finite metric; one run per (setting,
    seed)."""
    data = runs[["setting", "seed", value]].copy()
    data[value] = pd.to_numeric(data[value], errors="coerce")
    data = data[np.isfinite(data[value])]
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
                     alpha: float = ALPHA) -> dict[str, Contrast]:
    """Each (setting, baseline) pair's paired t-test on `value` over their shared seeds.

    `runs` has one row per finished run with columns setting, seed and `value`; runs whose
    `value` is NaN or infinite are dropped. A pair uses only its own two settings' runs (a
    setting that trains less stably than the others cannot distort another row's test).
    """
    data = _clean(runs, value)
    result = {}
    for setting, baseline in pairs:
        if setting in result:
            raise ValueError(f"setting {setting} appears in more than one pair")
        per_seed = per_seed_differences(data, value, setting, baseline)
        values = data.loc[data["setting"].isin([setting, baseline]), value]
        numbers = paired_t(np.array(list(per_seed.values())), alpha,
                           scale=values.abs().max() if len(values) else None)
        flat = bool(numbers.pop("no_spread"))
        result[setting] = Contrast(setting=setting, baseline=baseline, df=numbers.pop("df"),
                                   n_pairs=len(per_seed), per_seed=per_seed, no_spread=flat,
                                   effect_size_dz=cohens_dz(per_seed.values(), flat),
                                   **{k: float(v) for k, v in numbers.items()})
    return result


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values for one family; NaN stays NaN and is not counted.
    Hand-written (statsmodels' multipletests does it, but is no dependency for ten lines):
    the i-th smallest of m p-values is multiplied by (m - i + 1), then a running maximum
    keeps the adjusted values in the order of the raw ones; capped at 1. Holm holds the
    family-wise error under any dependence (GAN rows share their Original's runs)."""
    adjusted = {name: float("nan") for name in pvalues}
    finite = sorted((p, name) for name, p in pvalues.items() if not np.isnan(p))
    running = 0.0
    for i, (p, name) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - i) * p))
        adjusted[name] = running
    return adjusted


def paired_test_set_interval(correct_a: np.ndarray, correct_b: np.ndarray,
                             alpha: float = ALPHA) -> tuple[float, float, float]:
    """(difference, low, high) of accuracy a - b of two runs on the same test images.

    `correct_a[i]` and `correct_b[i]` say whether run a and run b got image i right (the
    same image at the same index): the t-interval of the mean of d_i = correct_a[i] -
    correct_b[i], the paired difference of proportions on the same images. It reflects only
    which images happen to be in the test set, not training variance (another seed of either
    setting would move the difference by more), so it is no test of setting a against b.
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("correct_a and correct_b must be 1-D, aligned, with 2+ images")
    d = a - b
    low, high = t_interval(d.mean(), d.std(ddof=1) / np.sqrt(len(d)), len(d) - 1, alpha)
    return float(d.mean()), low, high
