"""Training augmentation on whole batches, on the training device.

Random resized crop + horizontal flip (docs/protocol.md), one crop per image, done with a single
`affine_grid`/`grid_sample` call instead of per-image PIL work. Crops follow torchvision's
`RandomResizedCrop` sampling: area fraction in `[scale_min, 1]`, aspect ratio log-uniform in
`[3/4, 4/3]`, clipped to the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_resized_crop_flip(
    x: torch.Tensor, generator: torch.Generator, scale_min: float = 0.08
) -> torch.Tensor:
    """`x`: `(N, C, H, W)` float; returns the same shape, each image cropped, resized, flipped."""
    n = x.shape[0]
    opts = {"device": x.device, "dtype": torch.float32}
    rand = torch.rand(n, 5, generator=generator, device=generator.device).to(**opts)
    area = scale_min + (1 - scale_min) * rand[:, 0]
    log_ratio = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * rand[:, 1]
    ratio = torch.exp(log_ratio)
    # Crop width/height as fractions of the image side, clipped to fit.
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    # Crop centre in normalised [-1, 1] coordinates, anywhere the crop still fits.
    cx = (1 - w) * (2 * rand[:, 2] - 1)
    cy = (1 - h) * (2 * rand[:, 3] - 1)
    flip = torch.where(rand[:, 4] < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, **opts)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)
