"""Typed run configurations with the paper's values as defaults.

Each default says where it comes from: the paper (Tung et al., section 3) or the authors'
code where the two disagree (PROTOCOL.md decides). The resolved config is logged as run
params and saved in every checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from pneumonia_aug.errors import PneumoniaAugError

EXPERIMENT_NAME = "pneumonia-aug"
PAPER_BATCH_SIZE = 16  # CheXNet's batch size (paper, section 3.3)
LR_SCALING_RULES = ("none", "linear", "sqrt")


def scale_lr(lr: float, batch_size: int, reference_batch: int, rule: str) -> float:
    """The learning rate for `batch_size`, from `lr` set for `reference_batch` (the paper's).

    none: `lr` as given (the paper's runs, or an lr tuned by hand); linear: times
    batch / reference (Goyal et al. 2017); sqrt: times sqrt(batch / reference), gentler, often
    preferred with Adam.
    """
    ratio = batch_size / reference_batch
    return {"none": lr, "linear": lr * ratio, "sqrt": lr * math.sqrt(ratio)}[rule]


def coerce_fields(config) -> None:
    """Coerce every field to its declared type: values arrive as strings from `mlflow run -P`."""
    for field in fields(config):
        value = getattr(config, field.name)
        kind = {"int": int, "float": float, "str": str}[str(field.type)]
        try:
            setattr(config, field.name, kind(value))
        except (TypeError, ValueError) as exc:
            raise PneumoniaAugError(
                f"parameter {field.name}={value!r} is not a valid {field.type}") from exc


def check(config, checks: list[tuple[bool, str]]) -> None:
    """Raise the first failed check's message, with the config it was about."""
    for ok, message in checks:
        if not ok:
            raise PneumoniaAugError(f"{message} (got the config {asdict(config)})")


@dataclass
class ClassifierConfig:
    setting: str = "Original-1.0-0.0"
    seed: int = 0  # drives every draw of the run: subsets, init, batches, augmentation
    split_seed: int = 0  # fixes the validation split, shared by every setting (PROTOCOL.md)
    image_size: int = 256  # the GANs draw 256 px images (paper, section 3)
    epochs: int = 100  # paper, section 3.3
    batch_size: int = PAPER_BATCH_SIZE
    lr: float = 1e-3  # Adam lr, paper section 3.3, for batch 16
    lr_scaling: str = "none"  # how lr follows batch_size: none, linear, sqrt (not in the paper)
    weight_decay: float = 1e-5  # authors' code
    lr_factor: float = 0.1  # ReduceLROnPlateau factor (CheXNet)
    lr_patience: int = 5  # ReduceLROnPlateau patience, on validation loss (CheXNet)
    # Random resized crop scale range: torchvision's default, as the authors' transforms used.
    crop_scale_min: float = 0.08
    pretrained: str = "none"  # authors' code trained from scratch; the paper says ImageNet
    real_fraction_scope: str = "normal"  # authors' code: r applies to NORMAL only
    data_dir: str = ""  # "" = $PNEUMONIA_AUG_DATA_DIR or data/chest_xray
    cache_dir: str = ""  # "" = $PNEUMONIA_AUG_CACHE_DIR or ~/.cache/pneumonia-aug
    synthetic_run_id: str = ""  # "" = newest finished generate run of the setting's GAN
    max_images_per_split: int = 0  # debug/test knob: cap train/val/test sizes (0 = all)
    device: str = "auto"  # auto = cuda when available
    experiment_name: str = EXPERIMENT_NAME

    def __post_init__(self) -> None:
        coerce_fields(self)
        check(self, [
            (self.pretrained in ("none", "imagenet"), "pretrained must be 'none' or 'imagenet'"),
            (self.real_fraction_scope in ("normal", "all"),
             "real_fraction_scope must be 'normal' or 'all'"),
            (self.image_size >= 32, "image_size must be at least 32 (DenseNet121 downsamples 32x)"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 2, "batch_size must be at least 2 (batch norm)"),
            (self.lr > 0, "lr must be positive"),
            (self.lr_scaling in LR_SCALING_RULES, f"lr_scaling must be one of {LR_SCALING_RULES}"),
            (0 < self.crop_scale_min <= 1, "crop_scale_min must be in (0, 1]"),
        ])

    @property
    def effective_lr(self) -> float:
        return scale_lr(self.lr, self.batch_size, PAPER_BATCH_SIZE, self.lr_scaling)

    def to_dict(self) -> dict:
        return asdict(self)
