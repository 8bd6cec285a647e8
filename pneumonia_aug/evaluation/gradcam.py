"""Grad-CAM (Selvaraju et al. 2017) heatmaps for CheXNet: where the pneumonia logit looks.

CheXNet's paper showed class activation maps beside its probability; Grad-CAM on the last
DenseNet feature maps gives the same picture for our one-logit model.

A map is only drawn when it can say something. DenseNet's last feature map is 1/32 of the
image's side, so a 32 px model has a single cell (1x1): upsampled, that is one value
everywhere, and stretching its rounding noise to the full colour scale would paint speckles
that look like a finding. The same holds for a map without contrast (max - min below
`MIN_CONTRAST` of its largest value, or zero everywhere). Such images are shown alone, with
the reason in the caption. A drawn map carries a colour scale: it is scaled to its own
image, from its weakest (0) to its strongest (1) pull toward PNEUMONIA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from pneumonia_aug.contract import TEMPERATURE
from pneumonia_aug.models.chexnet import CheXNet

OVERLAY_MAX_SIDE = 1024  # px: readable on a screen, a few hundred kB as PNG
# A map whose spread (max - min) is below this share of its largest value is flat: 1e-3 is
# far above float32 rounding (about 1e-7 of the value) and far below any visible contrast.
MIN_CONTRAST = 1e-3
COLORMAP = "jet"
SCALE_LABEL = "Grad-CAM, scaled to this image: 0 = weakest, 1 = strongest pull toward PNEUMONIA"


@dataclass
class GradCam:
    probability: float  # of PNEUMONIA
    heatmap: np.ndarray | None  # (S, S) in [0, 1]; None: nothing worth drawing (`reason`)
    reason: str = ""  # why there is no heatmap


def why_no_heatmap(cam: np.ndarray, image_size: int) -> str:
    """Why the Grad-CAM map `cam` (at the feature map's resolution) is not worth drawing, or ""
    when it is."""
    h, w = cam.shape
    if h * w == 1:
        return (f"no heatmap: at {image_size} px the last feature map is 1x1, so Grad-CAM has "
                "no spatial resolution (64 px or more gives one)")
    peak, spread = float(np.abs(cam).max()), float(cam.max() - cam.min())
    if peak == 0:
        return "no heatmap: the Grad-CAM map is zero everywhere (no region raises the logit)"
    if not spread > MIN_CONTRAST * peak:
        return (f"no heatmap: the Grad-CAM map is flat (spread {spread / peak:.1e} of its "
                f"peak, under {MIN_CONTRAST:g})")
    return ""


def gradcam(net: CheXNet, image: np.ndarray, temperature: float = TEMPERATURE) -> GradCam:
    """`image`: `(S, S)` uint8 -> the pneumonia probability sigmoid(logit / temperature) and an
    `(S, S)` heatmap in [0, 1], or no heatmap and the reason (`why_no_heatmap`). The
    temperature changes the probability only: the map is scaled to [0, 1] anyway."""
    net.eval()
    x = torch.from_numpy(image).float().div(255.0)[None, None]
    maps = net.features(x).detach().requires_grad_(True)  # (1, 1024, S/32, S/32)
    logit = net.head(maps)
    logit.sum().backward()
    probability = float(torch.sigmoid(logit / temperature).item())
    weights = maps.grad.mean(dim=(2, 3), keepdim=True)  # one weight per feature map
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True)).detach()
    reason = why_no_heatmap(cam[0, 0].numpy(), image.shape[0])
    if reason:
        return GradCam(probability, None, reason)
    cam = F.interpolate(cam, size=image.shape, mode="bilinear", align_corners=False)[0, 0]
    cam = (cam - cam.min()) / (cam.max() - cam.min())
    return GradCam(probability, cam.numpy())


def overlay(picture: Image.Image, heatmap: np.ndarray | None, caption: str = "",
            alpha: float = 0.4, max_side: int = OVERLAY_MAX_SIDE) -> Image.Image:
    """The X-ray in gray at its own size (shrunk to `max_side` px on its long side), the
    heatmap (any size, stretched over it) in colour on top with its colour scale below, and a
    caption band above it. Without a heatmap: the X-ray alone (the caption says why).

    Drawn at the image's resolution, not the model's working size: a 64 px model's map over a
    64 px thumbnail is unreadable, the same map over the radiograph is not."""
    gray = picture.convert("L")
    gray.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # keeps the aspect ratio
    base = np.repeat(np.asarray(gray, dtype=np.float32)[..., None] / 255.0, 3, axis=2)
    if heatmap is not None:
        heat = Image.fromarray(heatmap.astype(np.float32), "F").resize(
            gray.size, Image.Resampling.BILINEAR)
        base = (1 - alpha) * base + alpha * _colours(np.asarray(heat))
    out = Image.fromarray((base * 255).clip(0, 255).astype(np.uint8), "RGB")
    if heatmap is not None:
        out = _stacked(out, _colour_scale(out.width))
    return _stacked(_text_band(caption, out.width)[0], out) if caption else out


def _colours(values: np.ndarray) -> np.ndarray:
    return colormaps[COLORMAP](np.clip(values, 0.0, 1.0))[..., :3]


def _font(width: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(12, width // 28))


def _lines(text: str, font, width: int) -> list[str]:
    """`text` broken into lines no wider than `width` px (at word boundaries)."""
    lines = [""]
    for word in text.split(" "):
        joined = f"{lines[-1]} {word}" if lines[-1] else word
        if lines[-1] and font.getlength(joined) > width:
            lines.append(word)
        else:
            lines[-1] = joined
    return lines


def _text_band(text: str, width: int, extra: int = 0) -> tuple[Image.Image, int]:
    """A black band `width` px wide holding `text` in white (wrapped), with `extra` px of room
    below it; returns the band and the text's height."""
    font = _font(width)
    size, margin = font.size, font.size // 3
    lines = [line for part in text.split("\n") for line in _lines(part, font, width - 2 * margin)]
    step = size + size // 4
    height = len(lines) * step + size // 4
    band = Image.new("RGB", (width, height + extra), (0, 0, 0))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((margin, size // 8 + i * step), line, fill=(255, 255, 255), font=font)
    return band, height


def _colour_scale(width: int) -> Image.Image:
    """The colour bar of the heatmap, 0 to 1 left to right, its ticks and `SCALE_LABEL`."""
    font = _font(width)
    margin, bar_height = font.size // 3, max(8, font.size // 2)
    tick_band = font.size + font.size // 2
    band, height = _text_band(SCALE_LABEL, width, extra=bar_height + tick_band)
    span = width - 2 * margin
    bar = _colours(np.tile(np.linspace(0.0, 1.0, span), (bar_height, 1)))
    band.paste(Image.fromarray((bar * 255).astype(np.uint8), "RGB"), (margin, height))
    draw = ImageDraw.Draw(band)
    for value in (0.0, 0.5, 1.0):
        text = f"{value:g}"
        x = margin + value * (span - 1) - value * font.getlength(text)
        draw.text((x, height + bar_height + font.size // 8), text, fill=(255, 255, 255),
                  font=font)
    return band


def _stacked(top: Image.Image, bottom: Image.Image) -> Image.Image:
    out = Image.new("RGB", (top.width, top.height + bottom.height), (0, 0, 0))
    out.paste(top, (0, 0))
    out.paste(bottom, (0, top.height))
    return out
