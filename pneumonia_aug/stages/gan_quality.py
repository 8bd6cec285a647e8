"""GAN quality measured into a GAN run after it trained (`gan_quality`; not in the paper).

A GAN run keeps the images it drew for quality (`contract.EVAL_IMAGES_DIR`: one file per
sampled epoch, drawn with seed + 1 as training went, and the memorization set, drawn with seed
+ 2 from the final generator). Measuring them needs an X-ray feature network, which a study
only knows once its Original runs have finished; so the GAN trains without waiting for them,
and this step measures afterwards, into the GAN run: `quality/fid_xray`, `quality/kid_xray`,
`quality/kid_xray_std` at each sampled epoch's step, `quality/nn_distance_*` at step 0, the
closest pairs figure, and the tags naming the feature network. The same images can be measured
again in another feature network (`pneumonia-aug gan-quality`).

Distances in the features of a network that hardly tells X-rays apart, or that saw tiny
images, say nothing about image quality: below `QualityConfig`'s floors the run gets a line
saying why, and no quality metric at all.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from pneumonia_aug import tracking
from pneumonia_aug.config import GANConfig, QualityConfig
from pneumonia_aug.contract import (
    CHOSEN_EPOCH,
    EVAL_IMAGES_DIR,
    MEMORIZATION_IMAGES,
    NN_DISTANCE_MEDIAN,
    NN_DISTANCE_MIN,
    TAG_FID_FEATURE_MODEL_URI,
    TAG_FID_FEATURE_MODEL_VERSION,
    TAG_QUALITY_SKIPPED,
    TAG_QUALITY_SKIPPED_IN,
    TAG_STAGE,
    TRAIN_GAN,
    VAL_AUROC,
    Gan,
    current_metrics,
    logged_metric_name,
)
from pneumonia_aug.data.dataset import GANData, load_gan_data
from pneumonia_aug.errors import ModelVersionError, PneumoniaAugError, TrackingError
from pneumonia_aug.serving import registry
from pneumonia_aug.training.distributed import pick_device

log = logging.getLogger(__name__)


def eval_images_file(epoch: int) -> str:
    """The file, under EVAL_IMAGES_DIR, of the images drawn for quality at `epoch`."""
    return f"epoch_{epoch:04d}.npz"


def unfit_reason(feature_model_uri: str, cfg: QualityConfig) -> str:
    """Why FID/KID in this network's features would mean nothing ("" when they can mean
    something): trained on images smaller than the floor, or telling NORMAL from PNEUMONIA on
    validation less well than the floor (its AUROC at the epoch it kept)."""
    _, run_id = tracking.model_version_of(feature_model_uri)
    if not run_id:
        return ""  # a model without a run: nothing to judge it by
    run = tracking.run_info(run_id)
    size = int(float(run.data.params.get("image_size", 0)))
    chosen = current_metrics(run.data.metrics).get(CHOSEN_EPOCH)
    key = logged_metric_name(VAL_AUROC, run.data.metrics)  # an older run's name, if it is one
    history = {m.step: m.value for m in tracking.metric_history(run_id, key)}
    auroc = history.get(int(chosen)) if chosen is not None else None
    problems = []
    if size < cfg.min_feature_image_size:
        problems.append(f"it saw {size} px images (floor {cfg.min_feature_image_size} px)")
    if auroc is None or auroc < cfg.min_feature_auroc:
        shown = "no validation AUROC" if auroc is None else f"validation AUROC {auroc:.3f}"
        problems.append(f"{shown} at its kept epoch (floor {cfg.min_feature_auroc:g})")
    if not problems:
        return ""
    return (f"GAN quality not measured: FID/KID and nearest-neighbour distances in the features "
            f"of {feature_model_uri} would say nothing about image quality, as "
            + " and ".join(problems))


def _gan_config(run) -> GANConfig:
    """The GAN run's config, from its params (what it was trained with)."""
    names = {f.name for f in dataclasses.fields(GANConfig)}
    return GANConfig(**{k: v for k, v in run.data.params.items() if k in names})


def _extractor(model_uri: str, device: torch.device):
    from pneumonia_aug.evaluation.gan_quality import XrayFeatures

    classifier = tracking.load_python_model(model_uri)
    return XrayFeatures(classifier.net.to(device))


def _drawn(gan_run_id: str, folder: Path) -> dict[int, np.ndarray]:
    """Epoch -> the images drawn for quality then; the memorization set under -1."""
    local = tracking.download_artifacts(gan_run_id, EVAL_IMAGES_DIR, folder)
    drawn = {}
    for path in sorted(local.glob("*.npz")):
        key = -1 if path.name == MEMORIZATION_IMAGES else int(path.stem.removeprefix("epoch_"))
        with np.load(path) as arrays:
            drawn[key] = arrays["images"]
    return drawn


def measure(cfg: QualityConfig, data: GANData | None = None) -> str:
    """Measure the GAN run `cfg.gan_run_id` in `cfg.feature_model_uri`'s features and log it
    into that run (once per feature network); return the GAN run id. `data`: the GAN's real
    images when the caller has them loaded (the GAN's own run, at its end)."""
    from pneumonia_aug.evaluation.gan_quality import (
        closest_pairs_figure,
        fid_kid,
        memorization_check,
    )

    run_id, uri = cfg.gan_run_id, cfg.feature_model_uri
    run = tracking.run_info(run_id)
    if run.data.tags.get(TAG_STAGE) != TRAIN_GAN:
        raise PneumoniaAugError(f"run {run_id} is not a train_gan run: give --gan-run-id of one")
    if run.data.tags.get(TAG_FID_FEATURE_MODEL_URI) == uri:  # the run read just above
        log.info("GAN run %s: quality already measured in %s", run_id, uri)
        return run_id
    try:
        registry.check_alias(uri, "--feature-model-uri")  # no version there: which to pass
        reason = unfit_reason(uri, cfg)
        extractor = None if reason else _extractor(uri, pick_device(cfg.device))
    except (TrackingError, ModelVersionError) as exc:
        reason = f"GAN quality not measured: {exc}"
    if reason:
        log.warning("GAN run %s: %s", run_id, reason)
        found = {TAG_QUALITY_SKIPPED: reason[:500], TAG_QUALITY_SKIPPED_IN: uri}
        if any(run.data.tags.get(key) != value for key, value in found.items()):
            tracking.tag_run(run_id, found)  # said once, not again at every rerun
            tracking.add_to_description(run_id, reason + ".")
        return run_id
    gan_cfg = _gan_config(run)
    if data is None:
        data = load_gan_data(gan_cfg.data_dir, gan_cfg.split_seed, gan_cfg.image_size,
                             gan_cfg.cache_dir, normal_only=gan_cfg.gan is Gan.DCGAN,
                             real_fraction=gan_cfg.real_fraction,
                             real_fraction_scope=gan_cfg.real_fraction_scope)
    with tempfile.TemporaryDirectory() as tmp:
        drawn = _drawn(run_id, Path(tmp))
        if not drawn:
            raise PneumoniaAugError(f"GAN run {run_id} kept no images to measure "
                                    f"({EVAL_IMAGES_DIR}/): it was trained with sample_every 0,"
                                    " or by an older version of the project")
        now = tracking.now_ms()
        rows = [{"key": key, "value": value, "step": epoch, "timestamp": now}
                for epoch, fake in sorted(drawn.items()) if epoch >= 0
                for key, value in fid_kid(data.reference.images, fake, extractor).items()]
        if -1 in drawn:
            real = data.train.images[data.train.labels == 0]  # NORMAL training images
            check = memorization_check(drawn[-1], real, extractor)
            rows += [{"key": NN_DISTANCE_MIN, "value": check["nn_distance_min"], "step": 0,
                      "timestamp": now},
                     {"key": NN_DISTANCE_MEDIAN, "value": check["nn_distance_median"],
                      "step": 0, "timestamp": now}]
            figure = Path(tmp) / "closest_pairs.png"
            closest_pairs_figure(drawn[-1], real, check).savefig(figure)
            tracking.upload_artifact(run_id, figure, "quality")
        tracking.log_metric_rows(run_id, rows)
    version, _ = tracking.model_version_of(uri)
    tracking.tag_run(run_id, {TAG_FID_FEATURE_MODEL_URI: uri,
                              TAG_FID_FEATURE_MODEL_VERSION: version})
    tracking.add_to_description(run_id, f"GAN quality (FID/KID at epochs "
                                        f"{', '.join(str(e) for e in sorted(drawn) if e >= 0)};"
                                        f" memorization) measured in the features of `{uri}` "
                                        f"(version {version}).")
    log.info("GAN run %s: quality measured in %s (version %s)", run_id, uri, version)
    return run_id
