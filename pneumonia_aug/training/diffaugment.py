"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", https://github.com/mit-han-lab/data-efficient-gans).

The same random, differentiable transforms are applied to every batch the discriminator sees,
real and generated alike, in both the D and the G step: D cannot memorise the few real
radiographs, and since the generator's gradient flows through the transforms, G is not
pushed to draw the augmentations themselves.

`policy` is a comma-separated subset of `color`, `translation`, `cutout` ("" = off). The
transforms follow the reference implementation, on images in [-1, 1]. For grayscale, `color`
is brightness and contrast: saturation (spread around the per-pixel channel mean) is a no-op
on one channel and is skipped there.
"""

from __future__ import annotations

import torch

from pneumonia_aug.diffaugment_policy import parse_policy

TRANSLATION_RATIO = 0.125  # max shift, fraction of the side (reference implementation)
CUTOUT_RATIO = 0.5  # side of the erased square, fraction of the side (reference)


def _rand(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    return torch.rand(*shape, generator=generator, device=device).to(x.device, x.dtype)


def _randint(x, generator, low: int, high: int, n: int) -> torch.Tensor:
    """`(n, 1)` integers in `[low, high)` on `x`'s device."""
    device = generator.device if generator is not None else x.device
    return torch.randint(low, high, (n, 1), generator=generator, device=device).to(x.device)


def _color(x: torch.Tensor, generator) -> torch.Tensor:
    n = x.shape[0]
    x = x + (_rand(x, generator, n, 1, 1, 1) - 0.5)  # brightness
    if x.shape[1] > 1:  # saturation
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(x, generator, n, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # contrast
    return (x - mean) * (_rand(x, generator, n, 1, 1, 1) + 0.5) + mean


def _translation(x: torch.Tensor, generator) -> torch.Tensor:
    """Shift each image by up to 1/8 of its side; uncovered pixels become 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    rows = torch.arange(h, device=x.device) + _randint(x, generator, -sh, sh + 1, n)  # (N, H)
    cols = torch.arange(w, device=x.device) + _randint(x, generator, -sw, sw + 1, n)  # (N, W)
    inside = (((rows >= 0) & (rows < h))[:, None, :, None]
              & ((cols >= 0) & (cols < w))[:, None, None, :])  # (N, 1, H, W)
    x = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand_as(x))
    x = x.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand_as(x))
    return x * inside.to(x.dtype)


def _cutout(x: torch.Tensor, generator) -> torch.Tensor:
    """Zero one square of half the side per image, centred anywhere (it may overhang)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = _randint(x, generator, 0, h + (1 - ch % 2), n) - ch // 2  # (N, 1)
    left = _randint(x, generator, 0, w + (1 - cw % 2), n) - cw // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + ch)  # (N, H)
    in_cols = (cols >= left) & (cols < left + cw)  # (N, W)
    keep = ~(in_rows[:, None, :, None] & in_cols[:, None, None, :])  # (N, 1, H, W)
    return x * keep.to(x.dtype)


_TRANSFORMS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """`x`: `(N, C, H, W)` in [-1, 1]; the same shape, each image transformed independently."""
    for name in parse_policy(policy):
        x = _TRANSFORMS[name](x, generator)
    return x
