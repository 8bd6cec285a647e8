"""Grad-CAM figures on real (untrained) CheXNets: no heatmap where the map has no spatial
resolution or no contrast, the reason in the caption; a drawn heatmap has a colour scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import xray_like
from pneumonia_aug.evaluation.gradcam import gradcam, overlay, why_no_heatmap
from pneumonia_aug.models.chexnet import CheXNet


@pytest.fixture(scope="module")
def net() -> CheXNet:
    """A CheXNet whose pneumonia logit rises with every feature (positive head weights), so its
    Grad-CAM map is not cut to zero everywhere by the ReLU."""
    torch.manual_seed(0)
    model = CheXNet()
    with torch.no_grad():
        model.net.classifier.weight.abs_()
    return model


def scan(size: int) -> np.ndarray:
    return np.array(xray_like(3, size, "PNEUMONIA"))


def test_a_32_px_model_draws_no_heatmap_and_says_why(net):
    cam = gradcam(net, scan(32))
    assert 0 <= cam.probability <= 1
    assert cam.heatmap is None
    assert cam.reason.startswith("no heatmap") and "1x1" in cam.reason and "32 px" in cam.reason
    figure = np.asarray(overlay(xray_like(3, 300, "PNEUMONIA"), cam.heatmap,
                                f"NORMAL\n{cam.reason}"))
    assert figure.shape[1] == 300 and figure.shape[0] > 300  # caption band, no colour scale
    # Gray image, white-on-black caption: not one coloured pixel.
    assert (figure.max(axis=2) == figure.min(axis=2)).all()


def test_a_64_px_model_draws_a_heatmap_with_a_colour_scale(net):
    cam = gradcam(net, scan(64))  # a 2x2 feature map
    assert cam.reason == "" and cam.heatmap.shape == (64, 64)
    assert cam.heatmap.min() == pytest.approx(0) and cam.heatmap.max() == pytest.approx(1)
    picture = xray_like(3, 300, "PNEUMONIA")
    figure = np.asarray(overlay(picture, cam.heatmap, "PNEUMONIA"), dtype=int)
    plain = np.asarray(overlay(picture, cam.heatmap), dtype=int)
    assert figure.shape[1] == 300 and plain.shape[0] > 300  # the colour scale below the image
    # The scale: a row below the image that runs from blue (0) to red (1), left to right.
    below = plain[300:]
    bar = [row for row in below if row[5, 2] > 100 > row[5, 0] and row[-6, 0] > 100 > row[-6, 2]]
    assert bar, "no colour bar under the heatmap"
    assert (figure.max(axis=2) != figure.min(axis=2)).any()  # the heatmap is in colour


def test_a_flat_or_zero_map_is_refused():
    flat = np.full((4, 4), 0.3, dtype=np.float32)
    assert why_no_heatmap(flat, 128).startswith("no heatmap: the Grad-CAM map is flat")
    noisy = flat + np.float32(5e-7) * np.eye(4, dtype=np.float32)  # rounding noise, no contrast
    assert "flat" in why_no_heatmap(noisy, 128)
    assert "zero everywhere" in why_no_heatmap(np.zeros((4, 4)), 128)
    contrast = flat.copy()
    contrast[0, 0] = 0.6
    assert why_no_heatmap(contrast, 128) == ""
    assert "1x1" in why_no_heatmap(np.ones((1, 1)), 32)
