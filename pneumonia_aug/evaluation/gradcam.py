"""Grad-CAM (Selvaraju et al. 2017) heatmaps for CheXNet: where the pneumonia logit looks.

CheXNet's paper showed class activation maps beside its probability; Grad-CAM on the last
DenseNet feature maps gives the same picture for our one-logit model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from pneumonia_aug.models.chexnet import CheXNet

OVERLAY_MAX_SIDE = 1024  # px: readable on a screen, a few hundred kB as PNG


def gradcam(net: CheXNet, image: np.ndarray) -> tuple[float, np.ndarray]:
    """`image`: `(S, S)` uint8 -> (pneumonia probability, `(S, S)` heatmap in [0, 1])."""
    net.eval()
    x = torch.from_numpy(image).float().div(255.0)[None, None]
    maps = net.features(x).detach().requires_grad_(True)  # (1, 1024, S/32, S/32)
    logit = net.head(maps)
    logit.sum().backward()
    weights = maps.grad.mean(dim=(2, 3), keepdim=True)  # one weight per feature map
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=image.shape, mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach()
    span = cam.max() - cam.min()
    cam = (cam - cam.min()) / span if span > 0 else torch.zeros_like(cam)
    return float(torch.sigmoid(logit).item()), cam.numpy()


def overlay(picture: Image.Image, heatmap: np.ndarray, caption: str = "", alpha: float = 0.4,
            max_side: int = OVERLAY_MAX_SIDE) -> Image.Image:
    """The X-ray in gray at its own size (shrunk to `max_side` px on its long side), the
    heatmap (any size, stretched over it) in colour on top, and a caption band above it.

    Drawn at the image's resolution, not the model's working size: a 32 px model's map over a
    32 px thumbnail is unreadable, the same map over the radiograph is not."""
    gray = picture.convert("L")
    gray.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # keeps the aspect ratio
    heat = Image.fromarray(heatmap.astype(np.float32), "F").resize(gray.size,
                                                                    Image.Resampling.BILINEAR)
    colour = colormaps["jet"](np.clip(np.asarray(heat), 0.0, 1.0))[..., :3]
    base = np.repeat(np.asarray(gray, dtype=np.float32)[..., None] / 255.0, 3, axis=2)
    mixed = ((1 - alpha) * base + alpha * colour) * 255
    picture = Image.fromarray(mixed.clip(0, 255).astype(np.uint8), "RGB")
    return _captioned(picture, caption) if caption else picture


def _captioned(picture: Image.Image, caption: str) -> Image.Image:
    """`picture` below a black band holding `caption` in white, sized to the picture."""
    size = max(12, picture.width // 28)
    font = ImageFont.load_default(size=size)
    band = size + size // 2
    out = Image.new("RGB", (picture.width, picture.height + band), (0, 0, 0))
    out.paste(picture, (0, band))
    ImageDraw.Draw(out).text((size // 3, size // 4), caption, fill=(255, 255, 255), font=font)
    return out
