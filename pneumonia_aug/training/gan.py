"""GAN training (paper section 3; PROTOCOL.md "GANs"): BCE-with-logits, Adam(beta1 = 0.5).

The DCGAN learns from the real NORMAL training images only; the CGAN from both classes with
their labels (0 = NORMAL, 1 = PNEUMONIA). GANs never see validation or test images: the caller
passes the training images after the validation split.

As in `training.classifier`, the uint8 images stay in one tensor (on the GPU when there is
one), batches are indexed and scaled to [-1, 1] on the device, losses are summed on the device
and read once per epoch. Under torchrun each process trains on its shard of every epoch
(`training.distributed`); each epoch ends in a checkpoint a run can continue from exactly
(`resume`). This module knows nothing of MLflow: it reports through `on_epoch`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from pneumonia_aug.config import (
    EXPERIMENT_NAME,
    LR_SCALING_RULES,
    check,
    coerce_fields,
    scale_lr,
)
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.gan import (
    GAN_MODELS,
    NORMAL,
    PNEUMONIA,
    Discriminator,
    Generator,
    build_gan,
    gan_stages,
)
from pneumonia_aug.training.diffaugment import diff_augment, parse_policy
from pneumonia_aug.training.distributed import (
    SINGLE,
    DistContext,
    autocast,
    derived_seed,
    pick_device,
    unwrap,
)
from pneumonia_aug.training.state import atomic_save, capture_rng, restore_rng

log = logging.getLogger(__name__)
AUTHORS_GAN_BATCH_SIZE = 128  # the authors' GAN code


@dataclass
class GANConfig:
    model: str = "dcgan"  # "dcgan" (NORMAL only) or "cgan" (both classes, labelled)
    image_size: int = 256  # the authors' GANs draw 256 px images (paper, section 3)
    epochs: int = 500  # authors' code
    batch_size: int = AUTHORS_GAN_BATCH_SIZE
    # The paper says lr 0.005; the authors' code used 2e-5 (D) and 1e-4 (G), for batch 128.
    # PROTOCOL.md follows the code.
    lr_d: float = 2e-5
    lr_g: float = 1e-4
    lr_scaling: str = "none"  # how lr_d, lr_g follow batch_size: none, linear, sqrt
    beta1: float = 0.5  # Adam beta1 (authors' code, as in DCGAN)
    latent_dim: int = 100  # N(0, 1) noise (paper, section 3)
    seed: int = 0  # weights, batch order, noise, DiffAugment draws
    split_seed: int = 0  # the validation split whose training part the GAN learns from
    data_dir: str = ""  # "" = $PNEUMONIA_AUG_DATA_DIR or data/chest_xray
    cache_dir: str = ""  # "" = $PNEUMONIA_AUG_CACHE_DIR or ~/.cache/pneumonia-aug
    # Not in the paper: DiffAugment policy for D's inputs, e.g. "color,translation,cutout".
    diffaugment: str = ""
    # Not in the paper: generated images per FID/KID evaluation and memorization check.
    eval_images: int = 500
    sample_every: int = 10  # epochs between sample grids / evaluations by the caller (0 = never)
    max_images: int = 0  # debug/test knob: train on at most this many images (0 = all)
    device: str = "auto"  # auto = cuda when available
    experiment_name: str = EXPERIMENT_NAME

    def __post_init__(self) -> None:
        coerce_fields(self)
        self.model = self.model.lower()
        for validate in (lambda: gan_stages(self.image_size),
                         lambda: parse_policy(self.diffaugment)):
            try:
                validate()
            except ValueError as exc:
                raise PneumoniaAugError(str(exc)) from exc
        check(self, [
            (self.model in GAN_MODELS, f"model must be one of {GAN_MODELS}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr_d > 0 and self.lr_g > 0, "lr_d and lr_g must be positive"),
            (self.lr_scaling in LR_SCALING_RULES, f"lr_scaling must be one of {LR_SCALING_RULES}"),
            (0 <= self.beta1 < 1, "beta1 must be in [0, 1)"),
            (self.latent_dim >= 1, "latent_dim must be at least 1"),
            (self.sample_every >= 0, "sample_every must be >= 0 (0 = never)"),
            (self.eval_images >= 2, "eval_images must be at least 2"),
            (self.max_images >= 0, "max_images must be >= 0 (0 = all)"),
        ])

    @property
    def effective_lrs(self) -> tuple[float, float]:
        """(lr_d, lr_g) after `lr_scaling` to this batch size."""
        return tuple(scale_lr(lr, self.batch_size, AUTHORS_GAN_BATCH_SIZE, self.lr_scaling)
                     for lr in (self.lr_d, self.lr_g))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GANResult:
    generator: Generator  # eval mode, on the CPU
    discriminator: Discriminator  # eval mode, on the CPU
    history: list[dict]  # per epoch: epoch, d_loss, g_loss, d_real, d_fake, seconds
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
        raise PneumoniaAugError("the DCGAN learns NORMAL images only (PROTOCOL.md): pass the "
                                "NORMAL training images, or use model=cgan for both classes")
    if len(images) == 0:
        raise PneumoniaAugError("train_gan got no images")


def _to_device(images, labels, cfg: GANConfig, device: torch.device):
    if cfg.max_images and len(images) > cfg.max_images:
        keep = np.sort(np.random.default_rng(cfg.seed).permutation(len(images))[:cfg.max_images])
        images, labels = images[keep], labels[keep]
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)  # (N, 1, S, S) uint8
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return (x.to(device), y.to(device)) if device.type == "cuda" else (x, y)


def _save_checkpoint(path: Path, epoch, G, D, opt_g, opt_d, history, rng, world_size,
                     cfg) -> None:
    atomic_save({"epoch": epoch, "generator": G.state_dict(), "discriminator": D.state_dict(),
                 "optimizer_g": opt_g.state_dict(), "optimizer_d": opt_d.state_dict(),
                 "history": history, "rng": rng, "world_size": world_size,
                 "config": cfg.to_dict()}, path)


def _restore(resume: dict, G, D, opt_g, opt_d, order_gen, draw_gen, dist) -> list[dict]:
    G.load_state_dict(resume["generator"])
    D.load_state_dict(resume["discriminator"])
    opt_g.load_state_dict(resume["optimizer_g"])
    opt_d.load_state_dict(resume["optimizer_d"])
    restore_rng(resume["rng"], order_gen, draw_gen, dist)
    return list(resume["history"])


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
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(cfg.beta1, 0.999))
    train_x, train_y = _to_device(images, labels, cfg, device)
    conditional = G.n_classes > 0
    history: list[dict] = []
    first = 1
    if resume is not None:
        history = _restore(resume, G, D, opt_g, opt_d, order_gen, draw_gen, dist)
        first = resume["epoch"] + 1
        if on_epoch is not None and dist.is_main and history:
            on_epoch(history[-1], G)
    net_g, net_d = dist.wrap(G), dist.wrap(D)
    started = time.perf_counter()
    if dist.is_main:
        log.info("training the %s on %s%s: %d images at %d px, %d epochs", cfg.model.upper(),
                 device, f" x {dist.world_size} processes" if dist.enabled else "",
                 len(train_x), cfg.image_size, cfg.epochs)
    for epoch in range(first, cfg.epochs + 1):
        tick = time.perf_counter()
        net_g.train()
        net_d.train()
        order = torch.randperm(len(train_x), generator=order_gen, device=order_gen.device)
        order = dist.shard(order.to(train_x.device))
        sums = torch.zeros(4, device=device)  # d_loss, g_loss, d_real, d_fake, image-weighted
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            stats = _train_step(net_g, net_d, opt_g, opt_d, train_x[idx], train_y[idx], cfg,
                                draw_gen, conditional, device)
            sums += stats * len(idx)
        sums, seen = dist.total(sums, len(order))
        d_loss, g_loss, d_real, d_fake = (sums / seen).tolist()  # one sync per epoch
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            raise FloatingPointError(
                f"GAN losses became d_loss={d_loss}, g_loss={g_loss} at epoch {epoch}: "
                f"try lower learning rates (lr_d={cfg.lr_d}, lr_g={cfg.lr_g})")
        rng = capture_rng(order_gen, draw_gen, dist)
        if not dist.is_main:
            continue
        row = {"epoch": epoch, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real,
               "d_fake": d_fake, "seconds": time.perf_counter() - tick}
        history.append(row)
        log.info("epoch %d/%d  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f  (%.1f s)",
                 epoch, cfg.epochs, d_loss, g_loss, d_real, d_fake, row["seconds"])
        # Checkpoint first, then report: a kill between the two loses no epoch (see `resume`).
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, epoch, G, D, opt_g, opt_d, history, rng,
                             dist.world_size, cfg)
        if on_epoch is not None:
            on_epoch(row, G)
    if not dist.is_main:
        return None
    G, D = G.to("cpu").eval(), D.to("cpu").eval()
    return GANResult(G, D, history, time.perf_counter() - started)


def _train_step(G, D, opt_g, opt_d, batch, batch_labels, cfg, gen, conditional,
                device) -> torch.Tensor:
    """One D step on real + generated images, then one G step; `[d_loss, g_loss, D(x), D(G(z))]`
    as a device tensor (no sync)."""
    n = len(batch)
    real = batch.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)  # [-1, 1]
    y = batch_labels.to(device, non_blocking=True) if conditional else None
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
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
    with autocast(device):
        # Unwrapped: under DDP, D's wrapper would wait for gradients of D that never come.
        g_logits = unwrap(D)(diff_augment(fake, cfg.diffaugment, gen), y).float()
    # Non-saturating generator loss: make D call the generated images real.
    g_loss = F.binary_cross_entropy_with_logits(g_logits, targets[:n])
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    D.requires_grad_(True)
    probs = torch.sigmoid(d_logits.detach())
    return torch.stack([d_loss.detach(), g_loss.detach(), probs[:n].mean(), probs[n:].mean()])


def fixed_noise(n: int, latent_dim: int = 100, seed: int = 0) -> torch.Tensor:
    """`(n, latent_dim)` N(0, 1) noise on the CPU, the same for a seed on every machine."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _generate(G: Generator, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Images in [-1, 1], `(N, C, S, S)` float32 on the CPU. fp32 on purpose: bf16 cannot
    hold 256 grey levels near 1."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    out = G(noise.to(device), None if labels is None else labels.to(device)).float().cpu()
    G.train(was_training)
    return out


def _labels_for(G: Generator, n: int, label) -> torch.Tensor | None:
    if not G.n_classes:
        return None  # DCGAN: unconditional, the label is ignored
    if label is None:
        raise ValueError("a CGAN needs the label to draw (0 = NORMAL, 1 = PNEUMONIA)")
    labels = torch.as_tensor(label, dtype=torch.long)
    return labels.expand(n) if labels.ndim == 0 else labels


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def generate_images(generator: Generator, n: int, seed: int, label: int | None = None,
                    batch_size: int = 256) -> np.ndarray:
    """`n` images `(n, S, S)` uint8, reproducible for a seed. The CGAN draws class `label`
    (e.g. `NORMAL`); the DCGAN ignores it."""
    noise = fixed_noise(n, generator.latent_dim, seed)
    labels = _labels_for(generator, n, label)
    out = np.empty((n, generator.image_size, generator.image_size), dtype=np.uint8)
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        images = _generate(generator, noise[part], None if labels is None else labels[part])
        out[part] = _to_uint8(images[:, 0]).numpy()
    return out


def sample_grid(generator: Generator, noise: torch.Tensor,
                labels: torch.Tensor | np.ndarray | int | None = None) -> np.ndarray:
    """A `(H, W)` uint8 grid of the images drawn from `noise` (e.g. 64 -> 8x8 tiles), for the
    per-epoch sample PNGs. `labels`: one per image or one for all (CGAN only)."""
    images = _generate(generator, noise, _labels_for(generator, len(noise), labels))
    nrow = max(1, round(math.sqrt(len(noise))))
    grid = make_grid(images, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    return grid[0].mul(255).round_().to(torch.uint8).numpy()  # make_grid repeats grey to RGB
