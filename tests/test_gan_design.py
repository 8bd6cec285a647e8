"""What a GAN row's interval covers under each GAN design, by simulation.

A GAN run moves its rows' accuracy by its own luck: here a 1-point SD between GAN runs, and no
true effect of augmentation. `per-seed` (one GAN and one generated set per seed): each pair
draws a GAN of its own, so the pairs are independent draws of the whole method and the paired
t-test holds its 5%. `shared` (one GAN for every seed): that GAN's luck is in every pair, the
test reads it as an effect, and more seeds make it worse: they narrow the interval around
that one GAN. Runs as in tests/test_inference_simulation.py: Binomial(624, 0.85 + luck) / 624
with a 2.6-point training luck per run.
"""

from __future__ import annotations

import numpy as np
import pytest

from pneumonia_aug.evaluation.inference import ALPHA, paired_t

N_IMAGES, ACCURACY, RUN_SD, GAN_SD = 624, 0.85, 0.026, 0.01
STUDIES = 10_000


def false_positives(rng: np.random.Generator, seeds: int, shared: bool) -> float:
    gan = rng.normal(0, GAN_SD, (STUDIES, 1 if shared else seeds))
    luck = RUN_SD * rng.standard_normal((2, STUDIES, seeds))
    p = np.clip(ACCURACY + luck + np.stack([np.zeros((STUDIES, seeds)),
                                            np.broadcast_to(gan, (STUDIES, seeds))]), 0, 1)
    original, augmented = rng.binomial(N_IMAGES, p) / N_IMAGES
    return float((paired_t(augmented - original)["p"] < ALPHA).mean())


@pytest.fixture(scope="module")
def rates() -> dict[tuple[int, bool], float]:
    rng = np.random.default_rng(1206)
    return {(seeds, shared): false_positives(rng, seeds, shared)
            for seeds in (3, 10, 30) for shared in (True, False)}


def test_per_seed_gans_keep_the_level(rates):
    for seeds in (3, 10, 30):
        assert 0.04 <= rates[(seeds, False)] <= 0.06, rates


def test_one_shared_gan_gets_worse_with_more_seeds(rates):
    assert 0.08 <= rates[(10, True)] <= 0.13, rates  # about 10%
    assert rates[(30, True)] >= 0.18, rates  # about 22%
    assert rates[(3, True)] < rates[(10, True)] < rates[(30, True)]
