"""The classifier loop on real images: a run stopped after its first epoch and resumed from
that checkpoint ends with exactly the history, test numbers, logits and weights of a run
never stopped (the same seeds drawn in the same order), and the checkpoint keeps its keys
(a checkpoint written by older code still resumes)."""

from __future__ import annotations

import numpy as np
import torch

from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.data.dataset import load_classifier_data
from pneumonia_aug.settings import parse_setting
from pneumonia_aug.training.classifier import train_classifier

CHECKPOINT_KEYS = {"epoch", "model", "history", "best_model", "best_epoch", "best_val_loss",
                   "optimizer", "scheduler", "rng", "world_size", "config"}


def test_a_resumed_run_ends_as_one_never_stopped(small_real_data, tmp_path):
    data = load_classifier_data(parse_setting("Original-1.0-0.0"), data_dir=str(small_real_data),
                                split_seed=0, seed=0, image_size=32,
                                real_fraction_scope="normal", cache_dir=str(tmp_path / "cache"),
                                max_images_per_split=16)
    cfg = ClassifierConfig(image_size=32, epochs=2, batch_size=8, pretrained="none",
                           device="cpu", seed=3)
    whole_rows: list[dict] = []
    whole = train_classifier(data, cfg, on_epoch=whole_rows.append)

    checkpoint = tmp_path / "checkpoint.pt"
    first = ClassifierConfig(**{**cfg.to_dict(), "epochs": 1})
    train_classifier(data, first, checkpoint_path=checkpoint)
    saved = torch.load(checkpoint, weights_only=False)
    assert set(saved) == CHECKPOINT_KEYS and saved["epoch"] == 1
    rows: list[dict] = []
    resumed = train_classifier(data, cfg, on_epoch=rows.append, checkpoint_path=checkpoint,
                               resume=saved)

    assert rows == whole_rows  # the saved epoch is reported again, then the next
    assert resumed.history == whole.history and len(whole.history) == 2
    assert (resumed.best_epoch, resumed.best_val_loss) == (whole.best_epoch, whole.best_val_loss)
    assert resumed.test_metrics == whole.test_metrics
    for name in ("test_probs", "val_logits", "test_logits"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
