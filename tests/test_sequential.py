"""Planned looks (pneumonia_aug.evaluation.sequential): the boundaries against published
O'Brien-Fleming/Lan-DeMets values and against simulation, and the table's false-positive rate
when it is looked at after every allocation of seeds, against the naive "stop at the first p <
0.05" in the same simulated studies. Planned seeds and power: tests/test_power.py."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonia_aug.evaluation import sequential
from pneumonia_aug.evaluation.inference import ALPHA, paired_t

N_IMAGES, ACCURACY, RUN_SD = 624, 0.85, 0.04  # per-seed differences with an SD near 0.06
PLANNED, LOOKS = 36, 4
STUDIES = 20_000


@pytest.mark.parametrize(("fractions", "published"), [
    ((0.25, 0.5, 0.75, 1.0), (4.333, 2.963, 2.359, 2.014)),
    ((1 / 3, 2 / 3, 1.0), (3.710, 2.511, 1.993)),
    ((0.5, 1.0), (2.963, 1.969)),
    ((1.0,), (1.960,)),
])
def test_boundaries_are_the_published_lan_demets_obrien_fleming_ones(fractions, published):
    """Two-sided 0.05, symmetric: Jennison & Turnbull (2000), gsDesign's sfLDOF."""
    assert sequential.boundaries(fractions) == pytest.approx(published, abs=1e-3)


def test_the_boundaries_spend_what_the_spending_function_allows():
    """Brownian motion at the looks (the z statistics of known-variance sums): the share of
    paths that have crossed by look j is the alpha spent by then."""
    design = sequential.plan(PLANNED, LOOKS)
    rng = np.random.default_rng(11)
    steps = np.diff(np.r_[0, design.looks])
    sums = np.cumsum(rng.standard_normal((400_000, LOOKS)) * np.sqrt(steps), axis=1)
    beyond = np.abs(sums / np.sqrt(design.looks)) > np.asarray(design.z)
    by_look = np.logical_or.accumulate(beyond, axis=1).mean(0)
    spent = sequential.spent(np.asarray(design.looks) / PLANNED)
    assert by_look == pytest.approx(spent, abs=4 * np.sqrt(ALPHA / 400_000))
    assert spent[-1] == pytest.approx(ALPHA)


def _accuracies(rng: np.random.Generator, studies: int, seeds: int, gain: float = 0.0):
    """(studies, seeds) per-seed differences GAN - Original of test accuracies: each run's
    accuracy Binomial(624, 0.85 + its own training luck) / 624."""
    truth = np.array([ACCURACY, ACCURACY + gain])[:, None, None]
    p = np.clip(truth + RUN_SD * rng.standard_normal((2, studies, seeds)), 0, 1)
    accuracy = rng.binomial(N_IMAGES, p) / N_IMAGES
    return accuracy[1] - accuracy[0]


def _allocations(rng: np.random.Generator, studies: int) -> np.ndarray:
    """(studies, allocations) pairs finished after each allocation of 3-7 pairs, up to N."""
    sizes = rng.integers(3, 8, (studies, PLANNED // 3 + 1))
    return np.minimum(np.cumsum(sizes, axis=1), PLANNED)


@pytest.fixture(scope="module")
def null_studies():
    rng = np.random.default_rng(20261206)
    return _accuracies(rng, STUDIES, PLANNED), _allocations(rng, STUDIES)


def test_simulated_differences_spread_as_at_128_px(null_studies):
    differences, _ = null_studies
    assert differences.std(axis=1, ddof=1).mean() == pytest.approx(0.06, abs=0.004)


def test_looking_after_every_allocation_keeps_the_false_positive_rate(null_studies):
    differences, viewed = null_studies
    design = sequential.plan(PLANNED, LOOKS)
    # The table after each allocation: a look decides once its pairs are in, on its own pairs.
    crossed = sequential.crossed(differences, design)
    reached = np.asarray(design.looks)[None, None, :] <= viewed[:, :, None]
    planned = (crossed[:, None, :] & reached).any(axis=(1, 2)).mean()
    # Naive: stop at the first allocation whose pairs so far give p < 0.05.
    prefix_p = np.full((STUDIES, PLANNED + 1), np.nan)
    for n in range(2, PLANNED + 1):
        prefix_p[:, n] = paired_t(differences[:, :n])["p"]
    naive = (np.take_along_axis(prefix_p, viewed, axis=1) < ALPHA).any(axis=1).mean()
    error = 3 * np.sqrt(ALPHA * (1 - ALPHA) / STUDIES)
    # 5.1% over 2 million such studies (docs/statistics.md): the t-tests on 9-36 pairs sit a
    # tenth of a point above the z boundaries' exact 5%, inside this simulation's error.
    assert planned <= ALPHA + error, f"planned looks {planned:.4f}, naive {naive:.4f}"
    assert naive > ALPHA + 3 * error, f"planned looks {planned:.4f}, naive {naive:.4f}"


def test_the_table_decides_as_the_batch_does_however_often_it_is_looked_at(null_studies):
    differences, viewed = null_studies
    design = sequential.plan(PLANNED, LOOKS)
    batch = sequential.crossed(differences, design)
    some = np.r_[np.flatnonzero(batch.any(axis=1))[:30], np.flatnonzero(~batch.any(axis=1))[:30]]
    for d, views, hits in zip(differences[some], viewed[some], batch[some], strict=True):
        decisions = [sequential.decide(d[:k], design) for k in views]
        final = decisions[-1]
        assert final.crossed == hits.any()
        if final.crossed:  # the first crossing decides, and stays the decision
            first = int(np.argmax(hits)) + 1
            assert final.look == first
            assert all(x.look == first for x in decisions if x.crossed)
            assert not any(x.crossed for x in decisions if x.pairs < design.looks[first - 1])


def test_the_interim_line():
    design = sequential.plan(PLANNED, LOOKS)
    d = np.array([0.05, -0.02, 0.01, 0.03, -0.04, 0.02, 0.0, 0.06, -0.01, 0.02, 0.01])
    p9 = paired_t(d[:9])["p"]
    assert sequential.describe(sequential.decide(d, design), design) == (
        f"interim: 11 of 36 planned seeds; decision at look 1 (9 pairs): not crossed (p "
        f"{p9:.2g} > boundary 1.5e-05); next look at 18")
    assert sequential.describe(sequential.decide(d[:5], design), design) == (
        "interim: 5 of 36 planned seeds; no decision yet; first look at 9")
    strong = np.r_[np.full(9, 0.05) + np.linspace(-0.01, 0.01, 9), np.zeros(9)]
    line = sequential.describe(sequential.decide(strong, design), design)
    assert line.startswith("interim: 18 of 36 planned seeds; decision at look 1 (9 pairs): "
                           "crossed (p ") and line.endswith("the planned test is decided")
    assert "next look" not in line


def test_a_plan_needs_room_for_its_looks():
    assert sequential.plan(36, 4).looks == (9, 18, 27, 36)
    assert sequential.plan(35, 4).looks == (9, 18, 27, 35)
    with pytest.raises(ValueError, match="cannot hold 4 looks"):
        sequential.plan(7, 4)
