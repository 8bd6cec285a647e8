"""Planned looks at a growing table: a group-sequential paired t-test that stays at its level
however often the table is looked at (docs/statistics.md, "Interim tables").

A study that runs its seeds over several allocations plans N pairs and K looks in advance, at
n_j = ceil(j N / K) pairs. Stopping at the first p < 0.05 after each allocation would find a
difference that is not there far more often than 5%; instead, the look statistics Z_j (jointly
normal, corr(Z_i, Z_j) = sqrt(n_i / n_j)) get Lan-DeMets O'Brien-Fleming boundaries: by look j
the two-sided alpha spent is alpha(t_j) = 4 - 4 Phi(z_{1 - alpha/4} / sqrt(t_j)), t_j = n_j / N
(each side spends the one-sided spending function of alpha / 2), and boundary c_j makes the
probability of first crossing at look j equal to alpha(t_j) - alpha(t_{j-1}). A look applies
its boundary as a nominal two-sided p, 2 (1 - Phi(c_j)), to the paired t-test of the first n_j
pairs in seed order: the decision at a look never depends on when, or how often, anyone looked.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from pneumonia_aug.evaluation.inference import ALPHA, paired_t

# Genz's integration of the joint normal: an absolute error of 1e-6 moves a boundary by under
# 1e-4 in z (tests hold them to the published values); a fixed generator keeps it repeatable.
_MVN = {"abseps": 1e-6, "releps": 0.0}


def spent(fraction: float | np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Two-sided alpha spent by information fraction t (Lan-DeMets O'Brien-Fleming)."""
    t = np.asarray(fraction, dtype=float)
    return 4 * stats.norm.sf(stats.norm.isf(alpha / 4) / np.sqrt(t))


def _inside(bounds: np.ndarray, cov: np.ndarray) -> float:
    """P(|Z_i| < bounds_i for every i) for jointly normal Z with covariance `cov`."""
    if len(bounds) == 1:
        return float(1 - 2 * stats.norm.sf(bounds[0]))
    return float(stats.multivariate_normal.cdf(bounds, cov=cov, lower_limit=-bounds,
                                               rng=np.random.default_rng(0), **_MVN))


def _first_crossing(c: float, found: tuple[float, ...], cov: np.ndarray, before: float,
                    increment: float) -> float:
    return before - _inside(np.array([*found, c]), cov) - increment


@functools.lru_cache(maxsize=64)
def boundaries(fractions: tuple[float, ...], alpha: float = ALPHA) -> tuple[float, ...]:
    """z boundaries c_1..c_K at the information fractions t_1 < ... < t_K = 1."""
    t = np.asarray(fractions, dtype=float)
    if not (np.all(np.diff(t) > 0) and t[0] > 0 and math.isclose(t[-1], 1.0)):
        raise ValueError(f"information fractions must rise to 1, not {fractions}")
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    found: list[float] = []
    for j in range(len(t)):
        increment = float(spent(t[j], alpha) - (spent(t[j - 1], alpha) if j else 0.0))
        before = _inside(np.array(found), cov[:j, :j]) if j else 1.0
        # the probability of crossing first at look j, minus what look j may spend
        excess = functools.partial(_first_crossing, found=tuple(found), cov=cov[:j + 1, :j + 1],
                                   before=before, increment=increment)
        found.append(optimize.brentq(excess, 0.1, 12.0, xtol=1e-7))
    return tuple(found)


@dataclass(frozen=True)
class Plan:
    """N planned pairs, the pairs at each look, and each look's nominal two-sided p."""

    planned_seeds: int
    looks: tuple[int, ...]  # pairs at each look: n_1 < ... < n_K = planned_seeds
    z: tuple[float, ...]  # boundary of each look on the z scale
    p: tuple[float, ...]  # the same as a nominal two-sided p


def plan(planned_seeds: int, n_looks: int, alpha: float = ALPHA) -> Plan:
    """Looks at ceil(j N / K) pairs, j = 1..K, with their boundaries."""
    if n_looks < 1 or planned_seeds < 2 * n_looks:
        raise ValueError(f"{planned_seeds} planned seeds cannot hold {n_looks} looks: each look "
                         "needs 2 more pairs than the one before")
    looks = tuple(math.ceil(j * planned_seeds / n_looks) for j in range(1, n_looks + 1))
    z = boundaries(tuple(n / planned_seeds for n in looks), alpha)
    return Plan(planned_seeds, looks, z, tuple(float(2 * stats.norm.sf(c)) for c in z))


def look_p_values(differences: np.ndarray, design: Plan) -> np.ndarray:
    """(..., K): each look's paired t p-value on the first n_j differences (in seed order)
    along the last axis; NaN at a look not reached or without a p-value."""
    d = np.asarray(differences, dtype=float)
    out = np.full((*d.shape[:-1], len(design.looks)), np.nan)
    for j, n in enumerate(design.looks):
        if d.shape[-1] >= n:
            out[..., j] = paired_t(d[..., :n])["p"]
    return out


def crossed(differences: np.ndarray, design: Plan) -> np.ndarray:
    """(..., K): True where look j is reached and its p is below its boundary."""
    with np.errstate(invalid="ignore"):
        return look_p_values(differences, design) < np.asarray(design.p)


@dataclass(frozen=True)
class Decision:
    """Where a row stands in its plan."""

    pairs: int  # paired seeds so far
    look: int  # 1-based look that decided (first crossed, else the last reached); 0 none yet
    look_pairs: int
    p: float  # the paired t p-value at that look (NaN: none)
    boundary: float  # that look's nominal p
    crossed: bool
    next_look: int  # pairs of the next look (0: none left, or decided)


def decide(differences: np.ndarray, design: Plan) -> Decision:
    """The decision from a row's per-seed differences in seed order."""
    d = np.asarray(differences, dtype=float)
    p = look_p_values(d, design)
    with np.errstate(invalid="ignore"):
        hit = p < np.asarray(design.p)
    reached = [j for j, n in enumerate(design.looks) if len(d) >= n]
    hits = [j for j in reached if hit[j]]
    j = hits[0] if hits else (reached[-1] if reached else -1)
    later = [n for n in design.looks if n > len(d)]
    return Decision(pairs=len(d), look=j + 1, look_pairs=design.looks[j] if j >= 0 else 0,
                    p=float(p[j]) if j >= 0 else math.nan,
                    boundary=design.p[j] if j >= 0 else math.nan, crossed=bool(hits),
                    next_look=later[0] if later and not hits else 0)


def _g(value: float) -> str:
    return f"{value:.2g}" if value >= 0.001 else f"{value:.1e}"


def describe(decision: Decision, design: Plan) -> str:
    """One line: `interim: 11 of 36 planned seeds; decision at look 1 (9 pairs): not crossed
    (p 0.21 > boundary 1.5e-05); next look at 18`."""
    n, planned = decision.pairs, design.planned_seeds
    head = (f"interim: {n} of {planned} planned seeds" if n < planned else
            f"complete: {n} of {planned} planned seeds" + (
                f" (the decision uses the first {planned})" if n > planned else ""))
    if not decision.look:
        return f"{head}; no decision yet; first look at {design.looks[0]}"
    at = f"look {decision.look} ({decision.look_pairs} pairs)"
    if decision.crossed:
        verdict = (f"decision at {at}: crossed (p {_g(decision.p)} < boundary "
                   f"{_g(decision.boundary)}): a difference; the planned test is decided")
    elif math.isnan(decision.p):
        verdict = f"decision at {at}: no p-value (not crossed)"
    else:
        verdict = (f"decision at {at}: not crossed (p {_g(decision.p)} > boundary "
                   f"{_g(decision.boundary)})")
    if decision.next_look:
        return f"{head}; {verdict}; next look at {decision.next_look}"
    final = "" if decision.crossed else "; no difference detected at the planned seeds"
    return f"{head}; {verdict}{final}"


def simulated_power(design: Plan, difference: float, sd: float, studies: int,
                    rng: np.random.Generator) -> tuple[float, float]:
    """(power of the planned looks, power of one paired t-test at N), from the same
    `studies` simulated sets of N normal per-seed differences."""
    d = rng.normal(difference, sd, (studies, design.planned_seeds))
    fixed = paired_t(d)["p"] < ALPHA
    return float(crossed(d, design).any(axis=-1).mean()), float(fixed.mean())
