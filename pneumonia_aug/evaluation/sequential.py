"""Planned looks at a growing table: a group-sequential paired t-test that stays at its level
however often the table is looked at (docs/statistics.md, "Interim tables").

A study that runs its seeds over several allocations plans N pairs and K looks in advance, at
n_j = ceil(j N / K) pairs. Stopping at the first p < 0.05 after each allocation would find a
difference that is not there far more often than 5%; instead each look j compares the paired
t statistic T_j of the first n_j pairs in seed order with a boundary c_j, spent by the
Lan-DeMets O'Brien-Fleming function: by look j the two-sided alpha spent is
alpha(t_j) = 4 - 4 Phi(z_{1 - alpha/4} / sqrt(t_j)), t_j = n_j / N (each side spends the
one-sided spending function of alpha / 2), and c_j makes the probability of first crossing at
look j equal to alpha(t_j) - alpha(t_{j-1}). The boundaries are found for the t statistics
themselves: under no true difference and normal per-seed differences the law of the nested
(T_1, ..., T_K) does not depend on their SD, so one fixed simulation of it serves every study
with the same N and K. Look 1's boundary is the exact t quantile; later looks' are found among
the simulated studies not yet stopped. A look applies c_j as a nominal two-sided p at its df,
so the decision at a look never depends on when, or how often, anyone looked.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pneumonia_aug.evaluation.inference import ALPHA, paired_t

# Simulated studies behind each plan's boundaries (about 2 s, once per plan; fixed seed: the
# same boundaries on every machine), in chunks that keep the memory small.
STUDIES, CHUNK, SEED = 1_000_000, 250_000, 20261206
MARGIN_SE = 3.0  # spend alpha less 3 Monte Carlo SEs: its own error (~1 SE) keeps it <= alpha


def spent(fraction: float | np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Two-sided alpha spent by information fraction t (Lan-DeMets O'Brien-Fleming)."""
    t = np.asarray(fraction, dtype=float)
    return 4 * stats.norm.sf(stats.norm.isf(alpha / 4) / np.sqrt(t))


def design_alpha(alpha: float = ALPHA, studies: int = STUDIES) -> float:
    """The level the boundaries spend: alpha less MARGIN_SE Monte Carlo SEs."""
    return alpha - MARGIN_SE * math.sqrt(alpha * (1 - alpha) / studies)


def first_crossing(statistics: np.ndarray, cumulative: np.ndarray, first: float) -> np.ndarray:
    """Boundaries c_1..c_K from simulated |statistics| (studies, K) under no difference: c_1 =
    `first`; each later c_j the smallest with at most round(cumulative_j x studies) studies
    crossed by look j (|statistic| > c at some look), those crossed before counted."""
    studies, looks = statistics.shape
    bounds = np.empty(looks)
    bounds[0] = first
    going = statistics[:, 0] <= first
    for j in range(1, looks):
        allowed = int(round(cumulative[j] * studies)) - (studies - int(going.sum()))
        values = np.sort(statistics[going, j])
        bounds[j] = values[-allowed - 1] if 0 <= allowed < len(values) else (
            np.inf if allowed < 0 else 0.0)
        going &= statistics[:, j] <= bounds[j]
    return bounds


def null_t(looks: tuple[int, ...], studies: int, rng: np.random.Generator) -> np.ndarray:
    """(studies, K) |paired t| at each look of studies with normal differences and no true
    difference (any SD: T does not depend on it), pairs added look by look."""
    out = np.empty((studies, len(looks)))
    total = np.zeros(studies)
    squares = np.zeros(studies)
    for j, (before, n) in enumerate(zip((0, *looks), looks, strict=False)):
        x = rng.standard_normal((studies, n - before))
        total += x.sum(axis=1)
        squares += np.einsum("ij,ij->i", x, x)
        sd = np.sqrt((squares - total**2 / n) / (n - 1))
        out[:, j] = np.abs(total / n) / (sd / math.sqrt(n))
    return out


@functools.lru_cache(maxsize=64)
def boundaries(planned_seeds: int, looks: tuple[int, ...], alpha: float = ALPHA) -> tuple[
        float, ...]:
    """t boundaries c_1..c_K of the paired t statistics at the looks (pairs n_1 < ... < N)."""
    if len(looks) == 1:  # one test: its exact t quantile, nothing simulated
        return (float(stats.t.isf(alpha / 2, looks[0] - 1)),)
    cumulative = spent(np.asarray(looks) / planned_seeds, design_alpha(alpha))
    first = float(stats.t.isf(cumulative[0] / 2, looks[0] - 1))
    rng = np.random.default_rng(SEED)
    simulated = np.concatenate([null_t(looks, min(CHUNK, STUDIES - s), rng)
                                for s in range(0, STUDIES, CHUNK)])
    return tuple(float(c) for c in first_crossing(simulated, cumulative, first))


@dataclass(frozen=True)
class Plan:
    """N planned pairs, the pairs at each look, and each look's boundary."""

    planned_seeds: int
    looks: tuple[int, ...]  # pairs at each look: n_1 < ... < n_K = planned_seeds
    t: tuple[float, ...]  # boundary of each look's |paired t|, on n_j - 1 df
    p: tuple[float, ...]  # the same as a nominal two-sided p at that df


def plan(planned_seeds: int, n_looks: int, alpha: float = ALPHA) -> Plan:
    """Looks at ceil(j N / K) pairs, j = 1..K, with their boundaries."""
    if n_looks < 1 or planned_seeds < 2 * n_looks:
        raise ValueError(f"{planned_seeds} planned seeds cannot hold {n_looks} looks: each look "
                         "needs 2 more pairs than the one before")
    looks = tuple(math.ceil(j * planned_seeds / n_looks) for j in range(1, n_looks + 1))
    t = boundaries(planned_seeds, looks, alpha)
    return Plan(planned_seeds, looks, t,
                tuple(float(2 * stats.t.sf(c, n - 1)) for c, n in zip(t, looks, strict=True)))


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
