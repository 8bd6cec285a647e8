"""CheXNet (Rajpurkar et al. 2017) as used by the paper: DenseNet121 with one logit.

Input: `(N, 1, H, W)` float grayscale in [0, 1]. The model replicates the channel to RGB and
applies the ImageNet normalisation itself, so a registered model needs no outside
preprocessing and ImageNet weights (when available) fit unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import DenseNet121_Weights, densenet121

from pneumonia_aug.errors import PneumoniaAugError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _imagenet_state_dict() -> dict:
    """torchvision's DenseNet121 weights from the local torch hub cache, never the network."""
    weights = DenseNet121_Weights.IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.exists():
        raise PneumoniaAugError(
            f"pretrained=imagenet needs torchvision's DenseNet121 weights at {path} "
            f"(download {weights.url} there on a machine with network access), "
            "or use pretrained=none to train from scratch as the authors' code did"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    # Old DenseNet checkpoints name layers `norm.1`; torchvision's own loader renames them.
    return {k.replace("norm.1", "norm1").replace("conv.1", "conv1")
             .replace("norm.2", "norm2").replace("conv.2", "conv2"): v for k, v in state.items()}


class CheXNet(nn.Module):
    def __init__(self, pretrained: str = "none"):
        super().__init__()
        self.net = densenet121(weights=None)
        if pretrained == "imagenet":
            self.net.load_state_dict(_imagenet_state_dict())
        self.net.classifier = nn.Linear(self.net.classifier.in_features, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """`(N, 1, H, W)` -> the last feature maps `(N, 1024, H/32, W/32)` (Grad-CAM's layer)."""
        x = (x.expand(-1, 3, -1, -1) - self.mean) / self.std
        return F.relu(self.net.features(x))

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """Feature maps -> one logit per image `(N,)`."""
        return self.net.classifier(torch.flatten(F.adaptive_avg_pool2d(maps, 1), 1)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
