"""CheXNet training (paper section 3.3): BCE-with-logits, Adam, ReduceLROnPlateau on the
validation loss, keep the lowest-validation-loss weights, evaluate those on test.

The decoded uint8 images stay in one tensor (on the GPU when there is one); batches are
indexed, augmented and normalised on the device, so no per-step Python image work remains.
This module knows nothing of MLflow: it reports each epoch through `on_epoch`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.data.dataset import ClassifierData, Subset
from pneumonia_aug.metrics import binary_metrics
from pneumonia_aug.models.chexnet import CheXNet
from pneumonia_aug.training.augment import random_resized_crop_flip

log = logging.getLogger(__name__)
EVAL_BATCH = 128


@dataclass
class ClassifierResult:
    model: CheXNet  # best weights, eval mode, on the CPU
    history: list[dict]
    best_epoch: int
    best_val_loss: float
    test_metrics: dict
    test_probs: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _as_tensor(subset: Subset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(subset.images).unsqueeze(1)  # (N, 1, S, S) uint8
    labels = torch.from_numpy(subset.labels)
    if device.type == "cuda":
        return images.to(device), labels.to(device)
    return images, labels


def _to_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict_logits(model: CheXNet, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Logits for `(N, 1, S, S)` uint8 images, kept on the device until the caller reads them."""
    model.eval()
    out = []
    for start in range(0, len(images), EVAL_BATCH):
        with _autocast(device):
            out.append(model(_to_input(images[start : start + EVAL_BATCH], device)).float())
    return torch.cat(out)


def _evaluate(model, images, labels, device) -> tuple[float, np.ndarray, dict]:
    logits = predict_logits(model, images, device)
    loss = F.binary_cross_entropy_with_logits(logits, labels.to(device)).item()
    probs = torch.sigmoid(logits).cpu().numpy()
    return loss, probs, binary_metrics(labels.cpu().numpy(), probs)


def train_classifier(
    data: ClassifierData,
    cfg: ClassifierConfig,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint_path: Path | None = None,
) -> ClassifierResult:
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    model = CheXNet(cfg.pretrained).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience
    )
    train_x, train_y = _as_tensor(data.train, device)
    val_x, val_y = _as_tensor(data.val, device)
    history, best_state, best_loss, best_epoch = [], None, float("inf"), 0
    started = time.perf_counter()
    log.info("training CheXNet on %s: %d train, %d val, %d test images at %d px",
             device, len(train_x), len(val_x), len(data.test.labels), cfg.image_size)
    for epoch in range(1, cfg.epochs + 1):
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=gen, device=gen.device).to(train_x.device)
        loss_sum = torch.zeros((), device=device)
        seen = 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:  # batch norm cannot train on a single image
                continue
            x = random_resized_crop_flip(_to_input(train_x[idx], device), gen, cfg.crop_scale_min)
            y = train_y[idx].to(device, non_blocking=True)
            with _autocast(device):
                loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            seen += len(idx)
        train_loss = (loss_sum / max(seen, 1)).item()
        if not np.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} at epoch {epoch}")
        val_loss, _, val = _evaluate(model, val_x, val_y, device)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
               **{f"val_{k}": v for k, v in val.items() if k not in ("tn", "fp", "fn", "tp")}}
        history.append(row)
        log.info("epoch %d/%d  train_loss %.4f  val_loss %.4f  val_accuracy %.3f  "
                 "val_auroc %.3f  lr %.1e  (%.1f s)", epoch, cfg.epochs, train_loss, val_loss,
                 val["accuracy"], val["auroc"], lr, time.perf_counter() - tick)
        if checkpoint_path is not None:
            torch.save({"epoch": epoch, "model": model.state_dict(), "best_model": best_state,
                        "best_epoch": best_epoch, "best_val_loss": best_loss,
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "history": history, "config": cfg.to_dict()}, checkpoint_path)
        if on_epoch is not None:
            on_epoch(row)
    model.load_state_dict(best_state)
    test_x, test_y = _as_tensor(data.test, device)
    _, test_probs, test_metrics = _evaluate(model, test_x, test_y, device)
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    return ClassifierResult(model, history, best_epoch, best_loss, test_metrics, test_probs,
                            time.perf_counter() - started)
