"""The paper's GANs (Tung et al., section 3; the authors' 256 px code, docs/protocol.md "GANs").

A DCGAN draws NORMAL radiographs; a CGAN draws either class from a label. One `Generator` and
one `Discriminator` class serve both: `n_classes=0` is the unconditional DCGAN. No batch norm
anywhere (the authors found it unstable). Images are `(N, channels, S, S)` in [-1, 1] (tanh).

Sizes: `S = 8 * 2**k` with `k >= 2` stride-2 stages between 8x8 feature maps and the image.
Channel widths are counted from the image side: 32 channels at full resolution, doubling at
every halving, so at 256 px (k = 5) the layers are exactly the authors' (1024 at 8x8, then
512, 256, 128, 64, 32), and a 32 px model is the last two stages of that network (128 at 8x8,
then 64, 32) rather than a 256 px-width model squeezed onto a small image.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from pneumonia_aug.contract import Gan
from pneumonia_aug.models.sizes import BASE_SIZE, gan_stages

NORMAL, PNEUMONIA = 0, 1  # class labels: the order of `data.kermany.CLASSES`
IMAGE_WIDTH = 32  # channels at full resolution (authors' code); doubled at every halving
EMBED_DIM = 50  # CGAN label embedding (authors' code)
SLOPE = 0.2  # LeakyReLU negative slope (authors' code)


def _widths(k: int) -> list[int]:
    """Feature-map channels from 8x8 to full size: `[1024, 512, 256, 128, 64, 32]` for k = 5."""
    return [IMAGE_WIDTH * 2**i for i in range(k, -1, -1)]


def _require(labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None:
        raise ValueError(f"a conditional GAN needs labels ({NORMAL} = NORMAL, "
                         f"{PNEUMONIA} = PNEUMONIA)")
    return labels


class Generator(nn.Module):
    """Noise `(N, latent_dim)` (+ labels `(N,)` when `n_classes`) -> images `(N, C, S, S)`."""

    def __init__(self, image_size: int = 256, channels: int = 1, latent_dim: int = 100,
                 n_classes: int = 0):
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.latent_dim, self.n_classes = latent_dim, n_classes
        self.widths = _widths(gan_stages(image_size))
        cells = BASE_SIZE * BASE_SIZE
        self.project = nn.Sequential(nn.Linear(latent_dim, self.widths[0] * cells),
                                     nn.LeakyReLU(SLOPE))
        if n_classes:
            # The label becomes one extra 8x8 channel beside the projected noise.
            self.label = nn.Sequential(nn.Embedding(n_classes, EMBED_DIM),
                                       nn.Linear(EMBED_DIM, cells))
        layers: list[nn.Module] = []
        in_ch = self.widths[0] + (1 if n_classes else 0)
        for out_ch in self.widths[1:]:  # each stage doubles H and W
            layers += [nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1),
                       nn.LeakyReLU(SLOPE)]
            in_ch = out_ch
        layers += [nn.Conv2d(in_ch, channels, 5, padding=2), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.project(z).view(-1, self.widths[0], BASE_SIZE, BASE_SIZE)  # (N, 1024, 8, 8)
        if self.n_classes:
            y = self.label(_require(labels)).view(-1, 1, BASE_SIZE, BASE_SIZE)  # (N, 1, 8, 8)
            x = torch.cat([x, y], dim=1)  # (N, 1025, 8, 8)
        # 256 px: (N, 512, 16, 16) -> (N, 256, 32, 32) -> ... -> (N, 32, 256, 256)
        # -> 5x5 conv + tanh -> (N, 1, 256, 256)
        return self.body(x)


class Discriminator(nn.Module):
    """Images `(N, C, S, S)` in [-1, 1] (+ labels `(N,)` when `n_classes`) -> logits `(N,)`."""

    def __init__(self, image_size: int = 256, channels: int = 1, n_classes: int = 0,
                 dropout: float = 0.4):
        super().__init__()
        self.image_size, self.channels, self.n_classes = image_size, channels, n_classes
        widths = _widths(gan_stages(image_size))[::-1]  # [32, 64, ..., 1024] at 256 px
        if n_classes:
            # The label becomes one extra image-sized channel beside the image.
            self.label = nn.Sequential(nn.Embedding(n_classes, EMBED_DIM),
                                       nn.Linear(EMBED_DIM, image_size * image_size))
        layers: list[nn.Module] = [
            nn.Conv2d(channels + (1 if n_classes else 0), widths[0], 5, padding=2),
            nn.LeakyReLU(SLOPE),
        ]
        for in_ch, out_ch in pairwise(widths):  # each stage halves H and W
            layers += [nn.Conv2d(in_ch, out_ch, 5, stride=2, padding=2), nn.LeakyReLU(SLOPE)]
        layers += [nn.Flatten(), nn.Dropout(dropout),
                   nn.Linear(widths[-1] * BASE_SIZE * BASE_SIZE, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            size = self.image_size
            y = self.label(_require(labels)).view(-1, 1, size, size)  # (N, 1, 256, 256)
            x = torch.cat([x, y.to(x.dtype)], dim=1)  # (N, 2, 256, 256)
        # 256 px: (N, 32, 256, 256) -> (N, 64, 128, 128) -> ... -> (N, 1024, 8, 8) -> (N, 1)
        return self.body(x).squeeze(1)


def build_gan(model: str, image_size: int = 256, latent_dim: int = 100, n_classes: int = 2,
              channels: int = 1) -> tuple[Generator, Discriminator]:
    """`(G, D)` for `model` "dcgan" (unconditional; `n_classes` ignored) or "cgan" (a `Gan` or
    its name; ValueError naming the choices otherwise)."""
    n = n_classes if Gan.parse(model) is Gan.CGAN else 0
    return (Generator(image_size, channels, latent_dim, n),
            Discriminator(image_size, channels, n))
