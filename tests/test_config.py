"""Run configs: the paper's values as defaults, learning-rate scaling with the batch size."""

import math

import pytest

from pneumonia_aug.config import ClassifierConfig, GANConfig, scale_lr
from pneumonia_aug.errors import PneumoniaAugError


def test_paper_defaults_are_unscaled():
    cfg = ClassifierConfig()
    assert (cfg.batch_size, cfg.lr, cfg.lr_scaling, cfg.effective_lr) == (16, 1e-3, "none", 1e-3)
    gan = GANConfig()
    assert (gan.batch_size, gan.effective_lrs) == (128, (2e-5, 1e-4))


@pytest.mark.parametrize("rule, factor", [("none", 1.0), ("linear", 4.0), ("sqrt", 2.0)])
def test_lr_follows_the_batch_size_by_rule(rule, factor):
    assert scale_lr(1e-3, 64, 16, rule) == pytest.approx(1e-3 * factor)
    assert ClassifierConfig(batch_size=64, lr_scaling=rule).effective_lr == pytest.approx(
        1e-3 * factor)
    # GANs scale from the authors' batch of 128: half the batch, lr / 2 (linear), / sqrt 2.
    lr_d, lr_g = GANConfig(batch_size=64, lr_scaling=rule).effective_lrs
    shrink = {"none": 1.0, "linear": 0.5, "sqrt": 1 / math.sqrt(2)}[rule]
    assert (lr_d, lr_g) == pytest.approx((2e-5 * shrink, 1e-4 * shrink))


def test_unknown_scaling_rule_is_refused_with_the_choices():
    with pytest.raises(PneumoniaAugError, match=r"lr_scaling must be one of \('none', 'linear'"):
        ClassifierConfig(lr_scaling="cubic")
    with pytest.raises(PneumoniaAugError, match="lr_scaling must be one of"):
        GANConfig(lr_scaling="Linear ")
