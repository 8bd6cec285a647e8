"""Recall on bacterial and on viral pneumonia apart: the Kermany file names say which
(`person1_bacteria_1.jpeg`, `person1_virus_6.jpeg`; the manifests' `subtype` column), with
Wilson 95% intervals, which stay inside [0, 1] and behave on small counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

SUBTYPES = ("bacteria", "virus")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion k / n; (nan, nan) for n = 0 (scipy has no
    interval without trials)."""
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def recall_by_subtype(labels: np.ndarray, called: np.ndarray, subtypes) -> pd.DataFrame:
    """One row per subtype of the PNEUMONIA images: `subtype`, `n`, `detected` (called
    PNEUMONIA), `recall`, `recall_low`, `recall_high` (Wilson 95%)."""
    labels, called = np.asarray(labels).astype(int), np.asarray(called).astype(int)
    subtypes = np.asarray(subtypes, dtype=object)
    rows = []
    for subtype in SUBTYPES:
        inside = (labels == 1) & (subtypes == subtype)
        n, k = int(inside.sum()), int(called[inside].sum())
        low, high = wilson_interval(k, n)
        rows.append({"subtype": subtype, "n": n, "detected": k,
                     "recall": k / n if n else math.nan, "recall_low": low, "recall_high": high})
    return pd.DataFrame(rows)
