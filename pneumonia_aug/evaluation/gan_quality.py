"""GAN quality beyond the paper: FID/KID in a chest X-ray feature space, and a memorization check.

The paper judges its GANs only by the classifier they help train. Two further questions:
- Do generated radiographs look like the real ones as a set? FID and KID (torchmetrics) answer
  that in the feature space of a trained CheXNet, not ImageNet Inception: Inception weights
  need a download (an offline machine has none) and fit radiographs poorly. Values are
  therefore `quality/fid_xray` and `quality/kid_xray`, comparable with each other only for
  the same feature network.
- Does the GAN copy training patients? `memorization_check` finds each generated image's nearest
  real training image in the same feature space, and `closest_pairs_figure` shows the closest
  pairs so a person can judge.

Image convention: sets of images are numpy `(N, S, S)` uint8 in 0..255, as the GANs save them.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from pneumonia_aug.contract import FID_XRAY, KID_XRAY, KID_XRAY_STD
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.chexnet import CheXNet

FEATURE_DIM = 1024  # DenseNet121's last feature maps


class XrayFeatures(nn.Module):
    """A trained CheXNet as a feature extractor: `(N, 1, S, S)` images -> `(N, 1024)` features.

    Input follows torchvision's dtype convention: uint8 is read as 0..255 (what torchmetrics'
    FID/KID hand a custom extractor with `normalize=False`), floating point as [0, 1]. Features
    are `net.features` average-pooled, the vector the classifier's head sees. The wrapped network
    is put in eval mode (also on the caller's side: it is the same module) and stays there.
    """

    num_features = FEATURE_DIM  # torchmetrics reads this instead of running a dummy image

    def __init__(self, net: CheXNet):
        super().__init__()
        self.net = net
        self.train(False)

    def train(self, mode: bool = True) -> XrayFeatures:
        # Batch norm must use its running statistics: in train mode a metric or parent module
        # would make every image's features depend on the rest of its batch.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 1:
            raise PneumoniaAugError(
                f"XrayFeatures expects grayscale images (N, 1, S, S), got {tuple(images.shape)}"
            )
        if images.dtype == torch.uint8:
            x = images.float() / 255
        elif images.is_floating_point():
            x = images.float()
        else:
            raise PneumoniaAugError(
                f"XrayFeatures expects uint8 (0..255) or float ([0, 1]) images, got {images.dtype}"
            )
        maps = self.net.features(x.to(self.net.mean.device))  # (N, 1024, S/32, S/32)
        return F.adaptive_avg_pool2d(maps, 1).flatten(1)  # (N, 1024)


def extract_features(images: np.ndarray, extractor: XrayFeatures,
                     batch_size: int = 64) -> torch.Tensor:
    """`(N, S, S)` uint8 -> `(N, 1024)` float32 features on the CPU, `batch_size` at a time."""
    images = _check_images(images, "images")
    batches = [
        extractor(torch.from_numpy(images[start:start + batch_size]).unsqueeze(1)).cpu()
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(batches)


class _Precomputed(nn.Module):
    """Hands features through unchanged, so FID and KID share one pass of the feature network."""

    num_features = FEATURE_DIM

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid_kid(real: np.ndarray, fake: np.ndarray, extractor: XrayFeatures,
            kid_subset_size: int = 50, batch_size: int = 64, kid_subsets: int = 100,
            seed: int = 0) -> dict:
    """FID and KID between real and generated `(N, S, S)` uint8 sets in X-ray feature space.

    Returns, under their metric names (`contract`), `quality/fid_xray`, `quality/kid_xray`
    (mean over `kid_subsets` random subsets) and `quality/kid_xray_std`.
    The feature network runs once per image; torchmetrics computes both statistics from those
    features (fed through `_Precomputed`), which gives exactly what
    `FrechetInceptionDistance(feature=extractor)` fed the uint8 images would, at half the cost.
    FID from fewer images than 1024 features is biased upwards: compare values computed from
    equally many images only. KID's random subsets are drawn from `seed`, leaving the caller's
    random state alone.
    """
    real, fake = _check_images(real, "real"), _check_images(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise PneumoniaAugError(
            f"real images are {real.shape[1:]} px but generated ones {fake.shape[1:]}: "
            "resize one set so both have the resolution the feature network was trained at"
        )
    real_features = extract_features(real, extractor, batch_size)
    fake_features = extract_features(fake, extractor, batch_size)

    # sync_on_compute=False: under DDP rank 0 alone computes FID/KID from the full sets; a
    # gather over the process group would wait forever for the other ranks.
    fid = FrechetInceptionDistance(feature=_Precomputed(), normalize=False, sync_on_compute=False)
    with warnings.catch_warnings():
        # KID warns that it keeps all features; at 1024 floats per image that is intended.
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(
            feature=_Precomputed(), normalize=False, subsets=kid_subsets, sync_on_compute=False,
            subset_size=min(kid_subset_size, len(real), len(fake)),
        )
    for metric in (fid, kid):
        metric.update(real_features, real=True)
        metric.update(fake_features, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # KID draws its subsets with torch.randperm
        kid_mean, kid_std = kid.compute()
    return {FID_XRAY: float(fid.compute()), KID_XRAY: float(kid_mean),
            KID_XRAY_STD: float(kid_std)}


def nearest_real(fake_feats: np.ndarray, real_feats: np.ndarray,
                 chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each generated image, the nearest real image: `(distances, indices)`, both `(N_fake,)`.

    Distance is Euclidean between L2-normalised features, sqrt(2 - 2 cos): 0 for the same
    direction, 2 at most; unlike raw Euclidean it ignores overall feature magnitude (contrast).
    Computed in float64 so that an exact copy comes out at ~0 rather than at cdist's
    matrix-product rounding (~1e-3 in float32). Fakes go `chunk_size` at a time to bound memory
    to a `(chunk_size, N_real)` matrix.
    """
    fake = F.normalize(torch.as_tensor(fake_feats, dtype=torch.float64), dim=1)
    real = F.normalize(torch.as_tensor(real_feats, dtype=torch.float64), dim=1)
    distances, indices = [], []
    for start in range(0, len(fake), chunk_size):
        nearest = torch.cdist(fake[start:start + chunk_size], real).min(dim=1)
        distances.append(nearest.values)
        indices.append(nearest.indices)
    return torch.cat(distances).numpy(), torch.cat(indices).numpy()


def memorization_check(fake: np.ndarray, real: np.ndarray, extractor: XrayFeatures,
                       n_pairs: int = 8, batch_size: int = 64) -> dict:
    """Does the GAN reproduce training images? Nearest real image for every generated one.

    Returns `nn_distance_min` and `nn_distance_median` over generated images, and for the
    `n_pairs` closest pairs (ascending distance) `fake_index`, `real_index` and `distance`,
    which `closest_pairs_figure` draws. A minimum far below the median points at copies;
    the figure tells whether they are copies or just similar anatomy.
    """
    if n_pairs < 1:
        raise PneumoniaAugError(f"n_pairs must be at least 1, got {n_pairs}")
    distances, indices = nearest_real(extract_features(fake, extractor, batch_size),
                                      extract_features(real, extractor, batch_size))
    closest = np.argsort(distances, kind="stable")[:n_pairs]
    return {
        "nn_distance_min": float(distances.min()),
        "nn_distance_median": float(np.median(distances)),
        "fake_index": closest,
        "real_index": indices[closest],
        "distance": distances[closest],
    }


def closest_pairs_figure(fake: np.ndarray, real: np.ndarray, pairs: dict) -> Figure:
    """Generated images (top row) above their nearest real training images (bottom row).

    `pairs` is `memorization_check`'s result (or any dict with `fake_index`, `real_index`,
    `distance`); one column per pair, the distance as the column's title.
    """
    n = len(pairs["fake_index"])
    fig = Figure(figsize=(1.8 * n, 4.2))
    axes = fig.subplots(2, n, squeeze=False)
    for col, (i, j, d) in enumerate(zip(pairs["fake_index"], pairs["real_index"],
                                        pairs["distance"], strict=True)):
        top, bottom = axes[0, col], axes[1, col]
        # Fixed 0..255 grey levels: auto-scaling would make a dark copy look like its source.
        top.imshow(fake[i], cmap="gray", vmin=0, vmax=255)
        bottom.imshow(real[j], cmap="gray", vmin=0, vmax=255)
        top.set_title(f"d = {d:.3f}", fontsize=9)
        top.set_xlabel(f"generated #{i}", fontsize=8)
        bottom.set_xlabel(f"real #{j}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Closest generated / real training pairs (X-ray feature space)")
    fig.tight_layout()
    return fig


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) < 2:
        raise PneumoniaAugError(
            f"{name} must be at least 2 grayscale images as a uint8 array (N, S, S) in 0..255, "
            f"got {images.dtype} {images.shape}"
        )
    return np.ascontiguousarray(images)
