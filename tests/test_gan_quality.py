"""FID/KID in X-ray feature space and the memorization check, with a random CheXNet at 32 px.

Random conv features are enough here: they still map distinct images to distinct vectors. FID's
1024x1024 matrix square root costs a few seconds on the CPU, so scores are computed once per
module and shared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance

from pneumonia_aug.contract import FID_XRAY, KID_XRAY, KID_XRAY_STD
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.evaluation.gan_quality import (
    FEATURE_DIM,
    XrayFeatures,
    closest_pairs_figure,
    extract_features,
    fid_kid,
    memorization_check,
    nearest_real,
)
from pneumonia_aug.models.chexnet import CheXNet

SIZE = 32


def xray_like(n: int, seed: int, stripes: float = 6.0) -> np.ndarray:
    """`(n, SIZE, SIZE)` uint8: a sinusoid, a bright blob and noise, different per image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    phase = rng.uniform(0, 6, (n, 1, 1))
    cy, cx = rng.uniform(0.2, 0.8, (2, n, 1, 1))
    img = 110 + 50 * np.sin(stripes * xx + phase) * np.cos(4 * yy)
    img = img + 70 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)
    return np.clip(img + rng.normal(0, 8, (n, SIZE, SIZE)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def extractor() -> XrayFeatures:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return XrayFeatures(CheXNet())


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return xray_like(30, seed=0)


@pytest.fixture(scope="module")
def different() -> np.ndarray:
    """Clearly another distribution: fine vertical stripes instead of broad bands."""
    return xray_like(30, seed=2, stripes=30.0)


@pytest.fixture(scope="module")
def scores_self(real, extractor) -> dict:
    return fid_kid(real, real, extractor)


@pytest.fixture(scope="module")
def scores_different(real, different, extractor) -> dict:
    # Subsets smaller than the sets, so that KID's random subsets actually differ.
    return fid_kid(real, different, extractor, kid_subset_size=10)


@pytest.fixture(scope="module")
def planted(real) -> np.ndarray:
    """20 noise-like generated images, one of which (#7) is an exact copy of real image 5."""
    fake = np.random.default_rng(3).integers(0, 256, (20, SIZE, SIZE), dtype=np.uint8)
    fake[7] = real[5]
    return fake


def test_features_are_pooled_1024_vectors_the_same_for_uint8_and_float(real, extractor):
    images = torch.from_numpy(real[:4]).unsqueeze(1)
    from_uint8 = extractor(images)
    assert from_uint8.shape == (4, FEATURE_DIM) == (4, extractor.num_features)
    torch.testing.assert_close(extractor(images.float() / 255), from_uint8)
    assert not extractor.train().training and not extractor.net.training  # batch norm frozen
    with pytest.raises(PneumoniaAugError, match="uint8"):
        extractor(images.long())


def test_fid_of_a_set_against_itself_is_zero_and_larger_against_a_different_set(
        scores_self, scores_different):
    assert scores_different[FID_XRAY] > 1.0
    assert abs(scores_self[FID_XRAY]) < 1e-4 * scores_different[FID_XRAY]


def test_kid_is_finite_and_larger_for_a_different_set(scores_self, scores_different):
    for scores in (scores_self, scores_different):
        assert math.isfinite(scores[KID_XRAY])
        assert math.isfinite(scores[KID_XRAY_STD]) and scores[KID_XRAY_STD] >= 0
    assert scores_different[KID_XRAY] > scores_self[KID_XRAY] + 1e-3
    assert scores_different[KID_XRAY_STD] > 0  # subsets of 10 out of 30 do vary


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_extractor_plugs_into_torchmetrics_directly_with_uint8_images(
        real, different, extractor, scores_different):
    """fid_kid's shared-features route equals the metric fed images through the extractor."""
    kid = KernelInceptionDistance(feature=extractor, subset_size=10, normalize=False)
    kid.update(torch.from_numpy(real).unsqueeze(1), real=True)
    kid.update(torch.from_numpy(different).unsqueeze(1), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # fid_kid's default seed
        kid_mean, kid_std = kid.compute()
    assert float(kid_mean) == pytest.approx(scores_different[KID_XRAY], rel=1e-4)
    assert float(kid_std) == pytest.approx(scores_different[KID_XRAY_STD], rel=1e-3)


@pytest.fixture(scope="module")
def memorization(planted, real, extractor) -> dict:
    return memorization_check(planted, real, extractor, n_pairs=4)


def test_memorization_check_finds_the_planted_copy(memorization):
    assert (memorization["fake_index"][0], memorization["real_index"][0]) == (7, 5)
    assert memorization["distance"][0] < 1e-4
    assert memorization["nn_distance_min"] == pytest.approx(memorization["distance"][0])
    assert memorization["nn_distance_median"] > 0.05
    assert np.all(np.diff(memorization["distance"]) >= 0)  # closest first
    assert len(memorization["fake_index"]) == len(memorization["real_index"]) == 4


def test_closest_pairs_figure_has_a_generated_and_a_real_row(planted, real, memorization):
    fig = closest_pairs_figure(planted, real, memorization)
    assert len(fig.axes) == 2 * 4
    assert fig.axes[0].get_title().startswith("d = 0.000")


def test_nearest_real_matches_brute_force_whatever_the_chunk_size():
    rng = np.random.default_rng(0)
    fake, real = rng.random((11, 16)), rng.random((7, 16))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    brute = np.linalg.norm(unit(fake)[:, None] - unit(real)[None], axis=2)
    for chunk_size in (3, 1024):
        distances, indices = nearest_real(fake, real, chunk_size=chunk_size)
        np.testing.assert_array_equal(indices, brute.argmin(axis=1))
        np.testing.assert_allclose(distances, brute.min(axis=1), atol=1e-12)


def test_image_sets_must_be_uint8_grayscale(real, extractor):
    with pytest.raises(PneumoniaAugError, match="uint8"):
        extract_features(real.astype(np.float32) / 255, extractor)
    with pytest.raises(PneumoniaAugError, match="resolution"):
        fid_kid(real, real[:, :16, :16], extractor)
