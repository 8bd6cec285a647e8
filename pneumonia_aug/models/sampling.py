"""Drawing images from a trained generator: fixed noise, uint8 images, reproducible by seed.

Kept apart from the training loop (`training.gan`) so that a registered generator's code
(`serving.generator_pyfunc`) needs only this module and `models.gan`: torch and numpy, nothing
of training.
"""

from __future__ import annotations

import numpy as np
import torch

from pneumonia_aug.models.gan import Generator


def fixed_noise(n: int, latent_dim: int = 100, seed: int = 0) -> torch.Tensor:
    """`(n, latent_dim)` N(0, 1) noise on the CPU, the same for a seed on every machine."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def draw(G: Generator, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Images in [-1, 1], `(N, C, S, S)` float32 on the CPU. fp32 on purpose: bf16 cannot
    hold 256 grey levels near 1."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    out = G(noise.to(device), None if labels is None else labels.to(device)).float().cpu()
    G.train(was_training)
    return out


def labels_for(G: Generator, n: int, label) -> torch.Tensor | None:
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
    labels = labels_for(generator, n, label)
    out = np.empty((n, generator.image_size, generator.image_size), dtype=np.uint8)
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        images = draw(generator, noise[part], None if labels is None else labels[part])
        out[part] = _to_uint8(images[:, 0]).numpy()
    return out
