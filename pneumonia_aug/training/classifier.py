"""CheXNet training (paper section 3.3): BCE-with-logits, Adam, ReduceLROnPlateau on the
validation loss, keep the lowest-validation-loss weights, evaluate those on test.

The decoded uint8 images stay in one tensor (on the GPU when there is one); batches are
indexed, augmented and normalised on the device, so no per-step Python image work remains.
Under torchrun each process trains on its shard of every epoch (`training.distributed`).
Every epoch ends in a checkpoint that holds all a run needs to continue exactly (`resume`).
This module knows nothing of MLflow: it reports each epoch through `on_epoch`, as a row of
metrics under their published names (`contract`: `epoch/loss_train`, `epoch/loss_val`,
`epoch/lr_scale`, `epoch/val_accuracy`, ...) that also make up the checkpoint's history.
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
from pneumonia_aug.contract import LR_SCALE, TRAIN_LOSS, VAL_LOSS, val_metric
from pneumonia_aug.data.dataset import ClassifierData
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.evaluation.metrics import binary_metrics
from pneumonia_aug.models.chexnet import CheXNet
from pneumonia_aug.training.augment import random_resized_crop_flip
from pneumonia_aug.training.distributed import SINGLE, DistContext, autocast, pick_device
from pneumonia_aug.training.progress import batch_starts
from pneumonia_aug.training.state import atomic_save, capture_rng, restore_rng

log = logging.getLogger(__name__)
EVAL_BATCH = 128


@dataclass
class ClassifierResult:
    model: CheXNet  # best weights, eval mode, on the CPU
    history: list[dict]
    best_epoch: int
    best_val_loss: float
    test_metrics: dict  # at 0.5 (Table 1)
    test_probs: np.ndarray
    seconds: float
    # The best weights' logits, for calibration and the operating point (evaluation.bedside).
    val_logits: np.ndarray
    test_logits: np.ndarray
    extra: dict = field(default_factory=dict)


def as_tensor(images: np.ndarray, labels: np.ndarray,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The tensors `train_classifier` indexes its batches from: `(N, 1, S, S)` uint8 images and
    their `(N,)` labels, on `device` when it is a GPU, else left on the CPU (no copy)."""
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, S, S) uint8
    y = torch.from_numpy(labels)
    if device.type == "cuda":
        return x.to(device), y.to(device)
    return x, y


def _to_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


@torch.no_grad()
def predict_logits(model: CheXNet, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Logits for `(N, 1, S, S)` uint8 images, kept on the device until the caller reads them.

    In fp32 even on CUDA (training runs in bf16): bf16's 8-bit mantissa would tie many
    probabilities (AUROC) and coarsen the validation loss that picks the best epoch."""
    model.eval()
    out = []
    for start in range(0, len(images), EVAL_BATCH):
        out.append(model(_to_input(images[start : start + EVAL_BATCH], device)).float())
    return torch.cat(out)


def _evaluate(model, images, labels, device) -> tuple[float, np.ndarray, dict, np.ndarray]:
    """Loss, probabilities, metrics at 0.5 and logits of `model` on these images."""
    logits = predict_logits(model, images, device)
    loss = F.binary_cross_entropy_with_logits(logits, labels.to(device)).item()
    probs = torch.sigmoid(logits).cpu().numpy()
    return loss, probs, binary_metrics(labels.cpu().numpy(), probs), logits.cpu().numpy()


def _train_epoch(net, optimizer, train_x, train_y, cfg: ClassifierConfig, batch: int,
                 order_gen, aug_gen, dist: DistContext, device, epoch: int) -> float:
    """One pass over this rank's shard of a fresh permutation; the global mean training loss."""
    net.train()
    order = torch.randperm(len(train_x), generator=order_gen, device=order_gen.device)
    order = dist.shard(order.to(train_x.device))
    loss_sum = torch.zeros((), device=device)
    seen = 0
    for start in batch_starts(len(order), batch, f"epoch {epoch}/{cfg.epochs}", dist.is_main):
        idx = order[start : start + batch]
        if len(idx) < 2:  # batch norm cannot train on a single image
            continue
        loss_sum += train_step(net, optimizer, train_x, train_y, idx, device, aug_gen,
                               cfg.crop_scale_min) * len(idx)
        seen += len(idx)
    loss_sum, seen = dist.total(loss_sum, seen)
    return (loss_sum / max(seen, 1)).item()


def train_step(net, optimizer, train_x: torch.Tensor, train_y: torch.Tensor, idx: torch.Tensor,
               device: torch.device, aug_gen: torch.Generator,
               crop_scale_min: float) -> torch.Tensor:
    """One optimisation step on the images at `idx`; returns the batch loss, on the device."""
    x = random_resized_crop_flip(_to_input(train_x[idx], device), aug_gen, crop_scale_min)
    y = train_y[idx].to(device, non_blocking=True)
    with autocast(device):
        loss = F.binary_cross_entropy_with_logits(net(x).float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_classifier(
    data: ClassifierData,
    cfg: ClassifierConfig,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint_path: Path | None = None,
    resume: dict | None = None,
    dist: DistContext = SINGLE,
) -> ClassifierResult | None:
    """Train, keep the lowest-validation-loss weights, evaluate them on test; the result
    also holds their validation and test logits.

    `resume`: a checkpoint of this run; training continues after its epoch, and its last epoch
    is reported again through `on_epoch` (a kill may have landed between saving it and
    reporting it; the caller skips what it already has). Under DDP only rank 0 evaluates,
    saves, reports and returns a result; the others return None.
    """
    device = dist.device(pick_device(cfg.device))
    batch = dist.local_batch(cfg.batch_size)
    if batch < 2:
        raise PneumoniaAugError(f"batch_size {cfg.batch_size} over {dist.world_size} processes "
                                f"leaves {batch} image per step; batch norm needs 2 or more")
    torch.manual_seed(cfg.seed)  # initial weights, the same on every rank
    order_gen = torch.Generator(device=device).manual_seed(cfg.seed)  # batch order
    aug_gen = dist.rank_generator(order_gen, cfg.seed)  # crops and flips
    model = CheXNet(cfg.pretrained).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.effective_lr,
                                 weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience
    )
    train_x, train_y = as_tensor(data.train.images, data.train.labels, device)
    val_x, val_y = as_tensor(data.val.images, data.val.labels, device)
    # What a checkpoint carries besides weights, optimizer and random state.
    progress = {"history": [], "best_model": None, "best_epoch": 0, "best_val_loss": float("inf")}
    first = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        restore_rng(resume["rng"], order_gen, aug_gen, dist)
        progress = {key: resume[key] for key in progress}
        first = resume["epoch"] + 1
        if on_epoch is not None and dist.is_main and progress["history"]:
            on_epoch(progress["history"][-1])
    net = dist.wrap(model)
    started = time.perf_counter()
    if dist.is_main:
        log.info("training CheXNet on %s%s: %d train, %d val, %d test images at %d px", device,
                 f" x {dist.world_size} processes" if dist.enabled else "", len(train_x),
                 len(val_x), len(data.test.labels), cfg.image_size)
    for epoch in range(first, cfg.epochs + 1):
        tick = time.perf_counter()
        train_loss = _train_epoch(net, optimizer, train_x, train_y, cfg, batch, order_gen,
                                  aug_gen, dist, device, epoch)
        if not np.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} at epoch {epoch}")
        # Rank 0 evaluates the unwrapped model (the weights are the same on every rank); the
        # others get its validation loss so that every scheduler lowers the lr alike.
        val_loss = val = None
        if dist.is_main:
            val_loss, _, val, _ = _evaluate(model, val_x, val_y, device)
        val_loss = dist.broadcast(val_loss)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        rng = capture_rng(order_gen, aug_gen, dist)
        if not dist.is_main:
            continue
        if val_loss < progress["best_val_loss"]:
            progress.update(best_val_loss=val_loss, best_epoch=epoch,
                            best_model=copy.deepcopy(model.state_dict()))
        row = {"epoch": epoch, TRAIN_LOSS: train_loss, VAL_LOSS: val_loss,
               LR_SCALE: lr / cfg.effective_lr,
               **{val_metric(k): v for k, v in val.items() if k not in ("tn", "fp", "fn", "tp")}}
        progress["history"].append(row)
        log.info("epoch %d/%d  train_loss %.4f  val_loss %.4f  val_accuracy %.3f  "
                 "val_auroc %.3f  lr %.1e  (%.1f s)", epoch, cfg.epochs, train_loss, val_loss,
                 val["accuracy"], val["auroc"], lr, time.perf_counter() - tick)
        # Checkpoint first, then report: a kill between the two loses no epoch (see `resume`).
        if checkpoint_path is not None:
            atomic_save({"epoch": epoch, "model": model.state_dict(), **progress,
                         "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "rng": rng, "world_size": dist.world_size, "config": cfg.to_dict()},
                        checkpoint_path)
        if on_epoch is not None:
            on_epoch(row)
    if not dist.is_main:
        return None
    model.load_state_dict(progress["best_model"])
    val_logits = predict_logits(model, val_x, device).cpu().numpy()
    test_x, test_y = as_tensor(data.test.images, data.test.labels, device)
    _, test_probs, test_metrics, test_logits = _evaluate(model, test_x, test_y, device)
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    return ClassifierResult(model, progress["history"], progress["best_epoch"],
                            progress["best_val_loss"], test_metrics, test_probs,
                            time.perf_counter() - started, val_logits=val_logits,
                            test_logits=test_logits)
