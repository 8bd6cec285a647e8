"""Assemble the train/val/test arrays of one classifier run from a setting.

Order of operations (each step reproducible): index the folder -> validation split
(`split_seed`) -> optional debug cap -> `r` subsample of the real training rows (`seed`)
-> `g` of the generated images added to train only -> decode through the cache, dropping
unreadable files with one warning that lists them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pneumonia_aug.data.cache import ImageCache
from pneumonia_aug.data.kermany import (
    INDEX_COLUMNS,
    POSITIVE,
    SkippedFile,
    dataset_digest,
    file_sha256,
    index_kermany,
    resolve_data_dir,
)
from pneumonia_aug.data.splits import (
    apply_real_fraction,
    cap_per_subset,
    sample_synthetic,
    split_train_val,
)
from pneumonia_aug.errors import DataLayoutError
from pneumonia_aug.settings import Setting

log = logging.getLogger(__name__)
SUBSETS = ("train", "val", "test")


@dataclass
class Subset:
    images: np.ndarray  # (N, S, S) uint8 grayscale
    labels: np.ndarray  # (N,) float32, 1 = PNEUMONIA
    manifest: pd.DataFrame  # one row per image, INDEX_COLUMNS + subset


@dataclass
class ClassifierData:
    train: Subset
    val: Subset
    test: Subset
    data_dir: Path
    dataset_digest: str
    skipped: list[SkippedFile] = field(default_factory=list)
    # A GAN setting's: the digest of all the generated images it drew from, as the generate
    # run logged it (`tracking.manifest_digest`); set by the stage, which knows the run.
    generated_digest: str = ""


def index_generated(folder: str | Path, gan: str) -> pd.DataFrame:
    """Index a folder of generated NORMAL PNGs (the `generate` stage's output)."""
    paths = sorted(p for p in Path(folder).rglob("*.png") if p.is_file())
    if not paths:
        raise DataLayoutError(f"no generated PNG images under {folder}")
    rows = [
        {
            "path": str(p),
            "relpath": p.name,
            "split": "generated",
            "label": "NORMAL",
            "patient_id": f"{gan}-{p.stem}",
            "subtype": "",
            "sha256": file_sha256(p),
            "origin": gan,
        }
        for p in paths
    ]
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def warn_skipped(skipped: list[SkippedFile]) -> None:
    if skipped:
        listing = "\n".join(f"  {s.path}: {s.reason}" for s in skipped)
        log.warning("skipped %d file(s) that are not usable images:\n%s", len(skipped), listing)


def keep_real(rows: pd.DataFrame, real_fraction: float, seed: int,
              scope: str) -> pd.DataFrame:
    """The rows with the training part subsampled to `real_fraction` (`apply_real_fraction`)."""
    train = apply_real_fraction(rows[rows["subset"] == "train"], real_fraction, seed, scope)
    return pd.concat([train, rows[rows["subset"] != "train"]])


def select_rows(
    index: pd.DataFrame,
    setting: Setting,
    generated: pd.DataFrame | None = None,
    *,
    split_seed: int,
    seed: int,
    real_fraction_scope: str,
    max_images_per_split: int = 0,
    real_subset: str = "per_seed",
    cache_dir: str = "",
) -> pd.DataFrame:
    """The rows of each subset for this run, with a `subset` column (no decoding).

    `split_seed`: the validation split; `seed`: the debug cap, the `r` subsample of the real
    training rows and the `g` sample of `generated`; `real_fraction_scope`: which classes `r`
    subsamples ("normal" or "all"); `max_images_per_split`: debug cap per subset (0 = all);
    `real_subset`: "per_seed" (the authors' way: the run's seed draws the `r` subsample) or
    "fixed" (`split_seed` draws it, before the cap: the same real images for every seed and
    setting at that r, and the ones a GAN trained with `real_fraction` r learns from);
    `cache_dir`: where the validation split is kept ("" = the default cache folder).
    """
    rows = split_train_val(index, split_seed, cache_dir=cache_dir)
    if real_subset == "fixed":
        rows = keep_real(rows, setting.real_fraction, split_seed, real_fraction_scope)
    rows = cap_per_subset(rows, max_images_per_split, seed)
    if real_subset != "fixed":
        rows = keep_real(rows, setting.real_fraction, seed, real_fraction_scope)
    parts = [rows]
    if setting.gan:
        if generated is None:
            raise ValueError(f"{setting} needs generated images")
        synthetic = sample_synthetic(generated, setting.synthetic_fraction, seed)
        parts.append(synthetic.assign(subset="train"))
    return pd.concat(parts, ignore_index=True)


def load_classifier_data(
    setting: Setting,
    generated: pd.DataFrame | None = None,
    *,
    data_dir: str,
    split_seed: int,
    seed: int,
    image_size: int,
    real_fraction_scope: str,
    cache_dir: str = "",
    max_images_per_split: int = 0,
    real_subset: str = "per_seed",
) -> ClassifierData:
    """The decoded train/val/test images of one classifier run (`setting`, with the generated
    images a GAN setting adds). `data_dir` and `cache_dir`: "" = the defaults
    (`default_data_dir`, `ImageCache`); the other values as in `select_rows`."""
    root = resolve_data_dir(data_dir)
    index, skipped = index_kermany(root)
    rows = select_rows(index, setting, generated, split_seed=split_seed, seed=seed,
                       real_fraction_scope=real_fraction_scope,
                       max_images_per_split=max_images_per_split, real_subset=real_subset,
                       cache_dir=cache_dir)
    images, ok, failed = ImageCache(cache_dir or None).load(
        rows["path"].tolist(), rows["sha256"].tolist(), image_size
    )
    skipped = skipped + failed
    warn_skipped(skipped)
    subsets = {}
    for name in SUBSETS:
        mask = ok & (rows["subset"] == name).to_numpy()
        manifest = rows[mask].reset_index(drop=True)
        labels = (manifest["label"] == POSITIVE).to_numpy(np.float32)
        if len(set(labels.tolist())) < 2:
            raise DataLayoutError(f"the {name} subset needs both classes; check {root}")
        subsets[name] = Subset(images[mask], labels, manifest)
    return ClassifierData(
        **subsets, data_dir=root, dataset_digest=dataset_digest(index), skipped=skipped
    )


@dataclass
class GANData:
    train: Subset  # what the GAN learns from: NORMAL only (DCGAN) or both classes (CGAN)
    reference: Subset  # held-out real NORMAL images (validation) for FID/KID
    data_dir: Path
    dataset_digest: str
    skipped: list[SkippedFile] = field(default_factory=list)


def load_gan_data(data_dir: str, split_seed: int, image_size: int, cache_dir: str = "",
                  normal_only: bool = True, real_fraction: float = 1.0,
                  real_fraction_scope: str = "normal") -> GANData:
    """The real training images left after the validation split (GANs never see validation or
    test images), and the validation NORMAL images as the reference set of GAN quality.

    `real_fraction` < 1: only the real images an r = `real_fraction` setting keeps with
    `real_subset="fixed"` (drawn with `split_seed`), so that its comparison with Original-r
    measures augmentation alone (the authors' GANs learned from all real images).
    """
    root = resolve_data_dir(data_dir)
    index, skipped = index_kermany(root)
    rows = keep_real(split_train_val(index, split_seed, cache_dir=cache_dir), real_fraction,
                     split_seed, real_fraction_scope)
    train = rows[rows["subset"] == "train"]
    if normal_only:
        train = train[train["label"] == "NORMAL"]
    reference = rows[(rows["subset"] == "val") & (rows["label"] == "NORMAL")]
    cache = ImageCache(cache_dir or None)
    subsets = []
    for frame in (train, reference):
        images, ok, failed = cache.load(frame["path"].tolist(), frame["sha256"].tolist(),
                                        image_size)
        skipped += failed
        manifest = frame[ok].reset_index(drop=True)
        subsets.append(Subset(images[ok], (manifest["label"] == POSITIVE).to_numpy(np.float32),
                              manifest))
    warn_skipped(skipped)
    return GANData(*subsets, data_dir=root, dataset_digest=dataset_digest(index), skipped=skipped)
