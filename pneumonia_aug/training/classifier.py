"""CheXNet training (paper section 3.3): BCE-with-logits, Adam, ReduceLROnPlateau on the
validation loss, keep the lowest-validation-loss weights, evaluate those on test.

The decoded uint8 images stay in one tensor (on the GPU when there is one); batches are
indexed, augmented and normalised on the device, so no per-step Python image work remains.
Under torchrun each process trains on its shard of every epoch (`training.distributed`).
Every epoch ends in a checkpoint that holds all a run needs to continue exactly (`resume`).
What an epoch updates and a checkpoint saves travels as one `ClassifierState` (as a
`GANState` does in `training.gan`). This module knows nothing of MLflow: it reports each epoch
through `on_epoch`, as a row of metrics under their published names (`contract`:
`epoch/loss_train`, `epoch/loss_val`, `epoch/lr_scale`, `epoch/val_accuracy`, ...) that also
make up the checkpoint's history.
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
from pneumonia_aug.evaluation.metrics import CELLS, binary_metrics
from pneumonia_aug.models.chexnet import CheXNet
from pneumonia_aug.training.augment import random_resized_crop_flip
from pneumonia_aug.training.distributed import (
    SINGLE,
    DistContext,
    autocast,
    pick_device,
    unwrap,
)
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


@dataclass
class ClassifierState:
    """What classifier training updates and a checkpoint saves, passed whole to an epoch.

    `model` is the module the step trains: under DDP its wrapper (after `wrap`); `network`
    gives CheXNet itself, which rank 0 evaluates. `order` draws the batch order (the same on
    every rank), `draws` the crops and flips (per rank; one process: `order` itself). The
    best epoch's weights are kept (`best_model`) to be evaluated on test at the end.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    order: torch.Generator
    draws: torch.Generator
    device: torch.device
    history: list[dict] = field(default_factory=list)  # one row per finished epoch
    best_model: dict | None = None
    best_epoch: int = 0
    best_val_loss: float = float("inf")

    @property
    def network(self) -> CheXNet:
        return unwrap(self.model)

    def wrap(self, dist: DistContext) -> None:
        """Wrap the model for DDP (no-op for one process); after `restore`."""
        self.model = dist.wrap(self.model)

    def checkpoint(self, epoch: int, rng: dict, world_size: int, cfg: ClassifierConfig) -> dict:
        """A checkpoint after `epoch`; `rng` from `capture_rng` (a collective under DDP)."""
        return {"epoch": epoch, "model": self.network.state_dict(), "history": self.history,
                "best_model": self.best_model, "best_epoch": self.best_epoch,
                "best_val_loss": self.best_val_loss, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rng": rng,
                "world_size": world_size, "config": cfg.to_dict()}

    def restore(self, resume: dict, dist: DistContext) -> None:
        """Load a `checkpoint`: weights, optimizer, scheduler, random streams, the best epoch
        so far and the history."""
        self.network.load_state_dict(resume["model"])
        self.optimizer.load_state_dict(resume["optimizer"])
        self.scheduler.load_state_dict(resume["scheduler"])
        restore_rng(resume["rng"], self.order, self.draws, dist)
        self.history = resume["history"]
        self.best_model, self.best_epoch = resume["best_model"], resume["best_epoch"]
        self.best_val_loss = resume["best_val_loss"]

    def step_lr(self, val_loss: float) -> float:
        """The learning rate the epoch trained with; then the scheduler reads `val_loss`."""
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(val_loss)
        return lr

    def record(self, epoch: int, train_loss: float, val_loss: float, lr_scale: float,
               val: dict) -> dict:
        """Keep the weights if this epoch's validation loss is the lowest yet; the epoch's row
        (appended to the history). `lr_scale`: the epoch's lr over the lr it started at."""
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch = val_loss, epoch
            self.best_model = copy.deepcopy(self.network.state_dict())
        row = {"epoch": epoch, TRAIN_LOSS: train_loss, VAL_LOSS: val_loss, LR_SCALE: lr_scale,
               **{val_metric(k): v for k, v in val.items() if k not in CELLS}}
        self.history.append(row)
        return row


def start_state(cfg: ClassifierConfig, dist: DistContext) -> ClassifierState:
    """Seeded weights, optimizer, scheduler and random streams on this process's device."""
    device = dist.device(pick_device(cfg.device))
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
    return ClassifierState(model, optimizer, scheduler, order_gen, aug_gen, device)


def _train_epoch(state: ClassifierState, train_x, train_y, cfg: ClassifierConfig, batch: int,
                 dist: DistContext, epoch: int) -> float:
    """One pass over this rank's shard of a fresh permutation; the global mean training loss."""
    state.model.train()
    order = torch.randperm(len(train_x), generator=state.order, device=state.order.device)
    order = dist.shard(order.to(train_x.device))
    loss_sum = torch.zeros((), device=state.device)
    seen = 0
    for start in batch_starts(len(order), batch, f"epoch {epoch}/{cfg.epochs}", dist.is_main):
        idx = order[start : start + batch]
        if len(idx) < 2:  # batch norm cannot train on a single image
            continue
        loss_sum += train_step(state.model, state.optimizer, train_x, train_y, idx,
                               state.device, state.draws, cfg.crop_scale_min) * len(idx)
        seen += len(idx)
    loss_sum, seen = dist.total(loss_sum, seen)
    loss = (loss_sum / max(seen, 1)).item()
    if not np.isfinite(loss):
        raise FloatingPointError(f"training loss became {loss} at epoch {epoch}")
    return loss


def _validate(state: ClassifierState, val_x, val_y, dist: DistContext) -> tuple[float, dict]:
    """The validation loss on every rank, and the metrics on rank 0 (None elsewhere).

    Rank 0 evaluates the unwrapped model (the weights are the same on every rank); the others
    get its validation loss so that every scheduler lowers the lr alike."""
    val_loss = val = None
    if dist.is_main:
        val_loss, _, val, _ = _evaluate(state.network, val_x, val_y, state.device)
    return dist.broadcast(val_loss), val


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
    batch = dist.local_batch(cfg.batch_size)
    if batch < 2:
        raise PneumoniaAugError(f"batch_size {cfg.batch_size} over {dist.world_size} processes "
                                f"leaves {batch} image per step; batch norm needs 2 or more")
    state = start_state(cfg, dist)
    train_x, train_y = as_tensor(data.train.images, data.train.labels, state.device)
    val_x, val_y = as_tensor(data.val.images, data.val.labels, state.device)
    first = 1
    if resume is not None:
        state.restore(resume, dist)
        first = resume["epoch"] + 1
        if on_epoch is not None and dist.is_main and state.history:
            on_epoch(state.history[-1])
    state.wrap(dist)
    started = time.perf_counter()
    if dist.is_main:
        log.info("training CheXNet on %s%s: %d train, %d val, %d test images at %d px",
                 state.device, f" x {dist.world_size} processes" if dist.enabled else "",
                 len(train_x), len(val_x), len(data.test.labels), cfg.image_size)
    for epoch in range(first, cfg.epochs + 1):
        tick = time.perf_counter()
        train_loss = _train_epoch(state, train_x, train_y, cfg, batch, dist, epoch)
        val_loss, val = _validate(state, val_x, val_y, dist)
        lr = state.step_lr(val_loss)
        rng = capture_rng(state.order, state.draws, dist)
        if not dist.is_main:
            continue
        row = state.record(epoch, train_loss, val_loss, lr / cfg.effective_lr, val)
        log.info("epoch %d/%d  train_loss %.4f  val_loss %.4f  val_accuracy %.3f  "
                 "val_auroc %.3f  lr %.1e  (%.1f s)", epoch, cfg.epochs, train_loss, val_loss,
                 val["accuracy"], val["auroc"], lr, time.perf_counter() - tick)
        # Checkpoint first, then report: a kill between the two loses no epoch (see `resume`).
        if checkpoint_path is not None:
            atomic_save(state.checkpoint(epoch, rng, dist.world_size, cfg), checkpoint_path)
        if on_epoch is not None:
            on_epoch(row)
    return _result(state, data, val_x, started) if dist.is_main else None


def _result(state: ClassifierState, data: ClassifierData, val_x: torch.Tensor,
            started: float) -> ClassifierResult:
    """The best epoch's weights, their validation logits and their test numbers."""
    model, device = state.network, state.device
    model.load_state_dict(state.best_model)
    val_logits = predict_logits(model, val_x, device).cpu().numpy()
    test_x, test_y = as_tensor(data.test.images, data.test.labels, device)
    _, test_probs, test_metrics, test_logits = _evaluate(model, test_x, test_y, device)
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    return ClassifierResult(model, state.history, state.best_epoch, state.best_val_loss,
                            test_metrics, test_probs, time.perf_counter() - started,
                            val_logits=val_logits, test_logits=test_logits)
