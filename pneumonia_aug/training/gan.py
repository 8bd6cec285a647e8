"""GAN training (paper section 3; docs/protocol.md "GANs"): BCE-with-logits, Adam(beta1 = 0.5).

The DCGAN learns from the real NORMAL training images only; the CGAN from both classes with
their labels (0 = NORMAL, 1 = PNEUMONIA). GANs never see validation or test images: the caller
passes the training images after the validation split.

As in `training.classifier`, the uint8 images stay in one tensor (on the GPU when there is
one), batches are indexed and scaled to [-1, 1] on the device, losses are summed on the device
and read once per epoch. Under torchrun each process trains on its shard of every epoch
(`training.distributed`); each epoch ends in a checkpoint a run can continue from exactly
(`resume`). What a step updates and a checkpoint saves travels as one `GANState`. This module
knows nothing of MLflow: it reports through `on_epoch`, each epoch as a row of metrics under
their published names (`contract`: `train/d_loss`, ...).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from pneumonia_aug.config import GANConfig
from pneumonia_aug.contract import D_FAKE, D_LOSS, D_REAL, G_LOSS
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.gan import NORMAL, PNEUMONIA, Discriminator, Generator, build_gan
from pneumonia_aug.models.sampling import draw, labels_for
from pneumonia_aug.training.diffaugment import diff_augment
from pneumonia_aug.training.distributed import (
    SINGLE,
    DistContext,
    autocast,
    derived_seed,
    pick_device,
    unwrap,
)
from pneumonia_aug.training.progress import batch_starts
from pneumonia_aug.training.state import atomic_save, capture_rng, restore_rng

log = logging.getLogger(__name__)


@dataclass
class GANResult:
    generator: Generator  # eval mode, on the CPU
    discriminator: Discriminator  # eval mode, on the CPU
    history: list[dict]  # per epoch: epoch, D_LOSS, G_LOSS, D_REAL, D_FAKE (contract), seconds
    seconds: float


def _check_data(images: np.ndarray, labels: np.ndarray, cfg: GANConfig) -> None:
    size = cfg.image_size
    if images.ndim != 3 or images.shape[1:] != (size, size) or images.dtype != np.uint8:
        raise PneumoniaAugError(f"train_gan needs uint8 images of shape (N, {size}, {size}) "
                                f"(image_size={size}), got {images.dtype} {images.shape}")
    if len(labels) != len(images) or not np.isin(labels, (NORMAL, PNEUMONIA)).all():
        raise PneumoniaAugError(f"train_gan needs one label per image, {NORMAL} (NORMAL) or "
                                f"{PNEUMONIA} (PNEUMONIA)")
    if cfg.model == "dcgan" and (labels != NORMAL).any():
        raise PneumoniaAugError("the DCGAN learns NORMAL images only (docs/protocol.md): pass the "
                                "NORMAL training images, or use model=cgan for both classes")
    if len(images) == 0:
        raise PneumoniaAugError("train_gan got no images")


def capped(n: int, max_images: int) -> int:
    """How many of `n` images a GAN trains on under the debug cap `max_images` (0 = none)."""
    return min(n, max_images) if max_images else n


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device,
              max_images: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The training tensors of `train_gan`: `(N, 1, S, S)` uint8 images and `(N,)` int64
    labels, on `device` when it is a GPU (batches are indexed there), else on the CPU.
    `max_images` > 0 keeps that many, drawn with `seed` (the debug cap `GANConfig.max_images`).
    """
    if capped(len(images), max_images) < len(images):
        keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:max_images])
        images, labels = images[keep], labels[keep]
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)  # (N, 1, S, S) uint8
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return (x.to(device), y.to(device)) if device.type == "cuda" else (x, y)


@dataclass
class GANState:
    """What GAN training updates and a checkpoint saves, passed whole to `gan_train_step`.

    `generator` and `discriminator` are the modules the step trains: under DDP their wrappers
    (after `wrap`); `unwrap` gives the networks. `order` draws the batch order (the same on
    every rank), `draws` the noise and DiffAugment (per rank; one process: `order` itself).
    """

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    order: torch.Generator
    draws: torch.Generator
    device: torch.device
    history: list[dict] = field(default_factory=list)  # one row per finished epoch

    @property
    def conditional(self) -> bool:
        return unwrap(self.generator).n_classes > 0

    def wrap(self, dist: DistContext) -> None:
        """Wrap both networks for DDP (no-op for one process); after `restore`."""
        self.generator, self.discriminator = dist.wrap(self.generator), dist.wrap(
            self.discriminator)

    def checkpoint(self, epoch: int, rng: dict, world_size: int, cfg: GANConfig) -> dict:
        """A checkpoint after `epoch`; `rng` from `capture_rng` (a collective under DDP)."""
        return {"epoch": epoch, "generator": unwrap(self.generator).state_dict(),
                "discriminator": unwrap(self.discriminator).state_dict(),
                "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
                "history": self.history, "rng": rng, "world_size": world_size,
                "config": cfg.to_dict()}

    def restore(self, resume: dict, dist: DistContext) -> None:
        """Load a `checkpoint`: weights, optimizers, random streams and history."""
        unwrap(self.generator).load_state_dict(resume["generator"])
        unwrap(self.discriminator).load_state_dict(resume["discriminator"])
        self.opt_g.load_state_dict(resume["optimizer_g"])
        self.opt_d.load_state_dict(resume["optimizer_d"])
        restore_rng(resume["rng"], self.order, self.draws, dist)
        self.history = list(resume["history"])


def train_gan(
    images: np.ndarray,
    labels: np.ndarray,
    cfg: GANConfig,
    on_epoch: Callable[[dict, Generator], None] | None = None,
    checkpoint_path: Path | None = None,
    resume: dict | None = None,
    dist: DistContext = SINGLE,
) -> GANResult | None:
    """Train `cfg.model` on `images` `(N, S, S)` uint8 with `labels` `(N,)` (0 / 1).

    `resume`: a checkpoint of this run; training continues after its epoch, and its last epoch
    is reported again through `on_epoch` (a kill may have landed between saving it and
    reporting it; the caller skips what it already has). Under DDP only rank 0 saves, reports
    and returns a result; the others return None.
    """
    _check_data(images, labels, cfg)
    device = dist.device(pick_device(cfg.device))
    batch = dist.local_batch(cfg.batch_size)
    torch.manual_seed(cfg.seed)  # weights (the same on every rank) and dropout
    order_gen = torch.Generator(device=device).manual_seed(cfg.seed)  # batch order
    G, D = (m.to(device) for m in build_gan(cfg.model, cfg.image_size, cfg.latent_dim))
    draw_gen = dist.rank_generator(order_gen, cfg.seed)  # noise, DiffAugment
    if dist.enabled:
        torch.manual_seed(derived_seed(cfg.seed, dist.rank))  # dropout masks differ per rank
    lr_d, lr_g = cfg.effective_lrs
    state = GANState(G, D, torch.optim.Adam(G.parameters(), lr=lr_g, betas=(cfg.beta1, 0.999)),
                     torch.optim.Adam(D.parameters(), lr=lr_d, betas=(cfg.beta1, 0.999)),
                     order_gen, draw_gen, device)
    train_x, train_y = to_device(images, labels, device, cfg.max_images, cfg.seed)
    first = 1
    if resume is not None:
        state.restore(resume, dist)
        first = resume["epoch"] + 1
        if on_epoch is not None and dist.is_main and state.history:
            on_epoch(state.history[-1], G)
    state.wrap(dist)
    started = time.perf_counter()
    if dist.is_main:
        log.info("training the %s on %s%s: %d images at %d px, %d epochs", cfg.model.upper(),
                 device, f" x {dist.world_size} processes" if dist.enabled else "",
                 len(train_x), cfg.image_size, cfg.epochs)
    for epoch in range(first, cfg.epochs + 1):
        tick = time.perf_counter()
        state.generator.train()
        state.discriminator.train()
        order = torch.randperm(len(train_x), generator=order_gen, device=order_gen.device)
        order = dist.shard(order.to(train_x.device))
        sums = torch.zeros(4, device=device)  # d_loss, g_loss, d_real, d_fake, image-weighted
        for start in batch_starts(len(order), batch, f"epoch {epoch}/{cfg.epochs}", dist.is_main):
            idx = order[start : start + batch]
            sums += gan_train_step(state, train_x[idx], train_y[idx], cfg) * len(idx)
        sums, seen = dist.total(sums, len(order))
        d_loss, g_loss, d_real, d_fake = (sums / seen).tolist()  # one sync per epoch
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            raise FloatingPointError(
                f"GAN losses became d_loss={d_loss}, g_loss={g_loss} at epoch {epoch}: "
                f"try lower learning rates (lr_d={cfg.lr_d}, lr_g={cfg.lr_g})")
        rng = capture_rng(order_gen, draw_gen, dist)
        if not dist.is_main:
            continue
        row = {"epoch": epoch, D_LOSS: d_loss, G_LOSS: g_loss, D_REAL: d_real, D_FAKE: d_fake,
               "seconds": time.perf_counter() - tick}
        state.history.append(row)
        log.info("epoch %d/%d  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f  (%.1f s)",
                 epoch, cfg.epochs, d_loss, g_loss, d_real, d_fake, row["seconds"])
        # Checkpoint first, then report: a kill between the two loses no epoch (see `resume`).
        if checkpoint_path is not None:
            atomic_save(state.checkpoint(epoch, rng, dist.world_size, cfg), checkpoint_path)
        if on_epoch is not None:
            on_epoch(row, G)
    if not dist.is_main:
        return None
    G, D = G.to("cpu").eval(), D.to("cpu").eval()
    return GANResult(G, D, state.history, time.perf_counter() - started)


def gan_train_step(state: GANState, images: torch.Tensor, labels: torch.Tensor,
                   cfg: GANConfig) -> torch.Tensor:
    """One D step on real + generated images, then one G step: `train_gan`'s inner step.

    `images` `(n, 1, S, S)` uint8 and `labels` `(n,)` (read by a CGAN only), on the device or
    the CPU; noise and DiffAugment come from `state.draws`, the policy from `cfg.diffaugment`.
    Returns `[d_loss, g_loss, D(x), D(G(z))]` as a device tensor (no sync).
    """
    G, D, gen, device = state.generator, state.discriminator, state.draws, state.device
    conditional = state.conditional
    n = len(images)
    real = images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)  # [-1, 1]
    y = labels.to(device, non_blocking=True) if conditional else None
    z = torch.randn(n, cfg.latent_dim, generator=gen, device=gen.device).to(device)
    targets = torch.cat([torch.ones(n, device=device), torch.zeros(n, device=device)])
    y2 = torch.cat([y, y]) if conditional else None
    with autocast(device):
        # Generated images get the real batch's labels, so both classes keep their share.
        fake = G(z, y).float()
        # D sees real and generated images in one batch (no batch norm, so mixing is harmless).
        both = diff_augment(torch.cat([real, fake.detach()]), cfg.diffaugment, gen)
        d_logits = D(both, y2).float()
    d_loss = F.binary_cross_entropy_with_logits(d_logits, targets)
    state.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    state.opt_d.step()

    D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
    with autocast(device):
        # Unwrapped: under DDP, D's wrapper would wait for gradients of D that never come.
        g_logits = unwrap(D)(diff_augment(fake, cfg.diffaugment, gen), y).float()
    # Non-saturating generator loss: make D call the generated images real.
    g_loss = F.binary_cross_entropy_with_logits(g_logits, targets[:n])
    state.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    state.opt_g.step()
    D.requires_grad_(True)
    probs = torch.sigmoid(d_logits.detach())
    return torch.stack([d_loss.detach(), g_loss.detach(), probs[:n].mean(), probs[n:].mean()])


def sample_grid(generator: Generator, noise: torch.Tensor,
                labels: torch.Tensor | np.ndarray | int | None = None) -> np.ndarray:
    """A `(H, W)` uint8 grid of the images drawn from `noise` (e.g. 64 -> 8x8 tiles), for the
    per-epoch sample PNGs. `labels`: one per image or one for all (CGAN only)."""
    images = draw(generator, noise, labels_for(generator, len(noise), labels))
    nrow = max(1, round(math.sqrt(len(noise))))
    grid = make_grid(images, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    return grid[0].mul(255).round_().to(torch.uint8).numpy()  # make_grid repeats grey to RGB
