"""How far the pneumonia probabilities are from observed frequencies, and temperature scaling.

Expected calibration error (ECE) here is that of the PNEUMONIA probability (not of the
top-label confidence): the probabilities fall into `N_BINS` = 10 equal-width bins on [0, 1]
(`[0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]`, the last bin closed), and ECE is the mean over bins
of |fraction of PNEUMONIA - mean probability|, each bin weighted by its share of the images;
empty bins count zero. The Brier score is the mean squared difference between probability
and label (0 or 1).

Temperature scaling (Guo et al. 2017) divides the logits by one scalar T > 0, fitted to
minimise the negative log-likelihood of the validation labels. T > 1 softens over-confident
probabilities. It never changes the ranking (AUROC) nor which side of 0.5 an image falls on.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.metrics import brier_score_loss

N_BINS = 10
T_RANGE = (0.05, 20.0)  # the temperatures searched: far beyond any sensible fit either side


def scaled_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    return expit(np.asarray(logits, dtype=np.float64) / temperature)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))  # BCE on logits, stable


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in `T_RANGE` that minimises the mean negative log-likelihood of `labels` under
    sigmoid(logits / T) (a bounded search on log T)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    low, high = (math.log(t) for t in T_RANGE)
    found = minimize_scalar(lambda log_t: _nll(z, y, math.exp(log_t)), bounds=(low, high),
                            method="bounded", options={"xatol": 1e-6})
    return float(math.exp(found.x))


def calibration_bins(labels: np.ndarray, probs: np.ndarray, n_bins: int = N_BINS
                     ) -> list[tuple[int, float, float]]:
    """Per equal-width bin: (images, mean probability, fraction PNEUMONIA); empty bins give
    (0, nan, nan)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    index = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = index == b
        n = int(inside.sum())
        rows.append((n, float(probs[inside].mean()) if n else math.nan,
                     float(labels[inside].mean()) if n else math.nan))
    return rows


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray,
                               n_bins: int = N_BINS) -> float:
    total = len(probs)
    return float(sum(n / total * abs(frac - mean)
                     for n, mean, frac in calibration_bins(labels, probs, n_bins) if n))


def brier_score(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(brier_score_loss(np.asarray(labels), np.asarray(probs, dtype=np.float64)))
