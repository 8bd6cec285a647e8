"""How many paired seeds a claim needs: the power of the paired t-test from the noncentral t
distribution, and how little a spread measured on a few seeds says about that number
(docs/statistics.md, "Power")."""

from __future__ import annotations

import math

from scipy import stats

from pneumonia_aug.evaluation.inference import ALPHA

POWER = 0.8


def power(n_pairs: int, difference: float, sd: float, alpha: float = ALPHA) -> float:
    """Probability that the two-sided paired t-test over `n_pairs` seeds rejects at `alpha`
    when the per-seed differences are normal with mean `difference` and SD `sd`: under that
    truth t follows the noncentral t on n - 1 df with noncentrality difference / sd * sqrt(n)."""
    if n_pairs < 2:
        return math.nan
    df, shift = n_pairs - 1, difference / sd * math.sqrt(n_pairs)
    critical = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def pairs_needed(difference: float, sd: float, alpha: float = ALPHA,
                 target: float = POWER) -> int:
    """The fewest pairs (2 or more) whose paired t-test reaches `target` power; the search
    starts at the normal approximation ((z_{1-alpha/2} + z_power) sd / difference)^2."""
    if difference == 0 or sd <= 0:
        raise ValueError("needs a non-zero difference and a positive SD")
    z = stats.norm.isf(alpha / 2) + stats.norm.ppf(target)
    n = max(2, math.ceil((z * sd / difference) ** 2))
    while power(n, difference, sd, alpha) < target:
        n += 1
    while n > 2 and power(n - 1, difference, sd, alpha) >= target:
        n -= 1
    return n


def sd_interval(sd: float, n_seeds: int, confidence: float = 0.95) -> tuple[float, float]:
    """The chi-square interval of a true SD from one estimated on `n_seeds` values (n - 1 df):
    sd * sqrt(df / chi2 quantile), for normal values."""
    df = n_seeds - 1
    high, low = stats.chi2.ppf([(1 - confidence) / 2, (1 + confidence) / 2], df)
    return sd * math.sqrt(df / low), sd * math.sqrt(df / high)
