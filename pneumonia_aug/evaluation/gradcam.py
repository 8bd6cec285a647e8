"""Grad-CAM (Selvaraju et al. 2017) heatmaps for CheXNet: where the pneumonia logit looks.

CheXNet's paper showed class activation maps beside its probability; Grad-CAM on the last
DenseNet feature maps gives the same picture for our one-logit model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw

from pneumonia_aug.models.chexnet import CheXNet


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


def overlay(image: np.ndarray, heatmap: np.ndarray, caption: str = "",
            alpha: float = 0.4) -> Image.Image:
    """The X-ray in gray with the heatmap in colour on top, and a caption line."""
    gray = np.repeat(image[..., None].astype(np.float32) / 255.0, 3, axis=2)
    colour = colormaps["jet"](heatmap)[..., :3]
    mixed = (1 - alpha) * gray + alpha * colour
    picture = Image.fromarray((mixed * 255).clip(0, 255).astype(np.uint8), "RGB")
    if caption:
        ImageDraw.Draw(picture).text((4, 4), caption, fill=(255, 255, 255))
    return picture
