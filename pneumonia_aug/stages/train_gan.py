"""The `train_gan` stage as a tracked run: a DCGAN or CGAN on the real training images.

Logged: the config; per epoch `d_loss`, `g_loss`, `d_real`, `d_fake`; every `sample_every`
epochs a fixed-noise grid `samples/epoch_XXXX.png` and, when an X-ray feature network is
registered, `fid_xray` / `kid_xray` against the validation NORMAL images; at the end the
loss curves (the paper's Figure 6), the memorization check, the checkpoint, and the
generator registered as `pneumonia-{dcgan,cgan}-generator` with the alias `newest`.
"""

from __future__ import annotations

import logging

import numpy as np

from pneumonia_aug import plots, tracking
from pneumonia_aug.data.dataset import GANData, load_gan_data
from pneumonia_aug.errors import TrackingError, TrainingDivergedError
from pneumonia_aug.stages.checkpoints import local_checkpoint
from pneumonia_aug.models.gan import NORMAL, Generator
from pneumonia_aug.training.gan import (
    GANConfig,
    fixed_noise,
    generate_images,
    sample_grid,
    train_gan,
)

log = logging.getLogger(__name__)
STAGE = "train_gan"
# GAN quality is measured in the feature space of a classifier trained on chest X-rays.
DEFAULT_FEATURE_MODEL = f"models:/{tracking.CLASSIFIER_MODEL}@{tracking.CHAMPION}"
GRID = 64  # images in each sample grid (8 x 8)


def _feature_extractor(model_uri: str):
    """The X-ray feature network, or None (with a warning) when none is registered."""
    from pneumonia_aug.gan_quality import XrayFeatures

    if not model_uri:
        return None
    try:
        classifier = tracking.load_python_model(model_uri)
    except TrackingError as exc:
        log.warning("no GAN quality metrics: %s", exc)
        return None
    return XrayFeatures(classifier.net)


def _grid_labels(cfg: GANConfig):
    """CGAN grids show NORMAL on the top half, PNEUMONIA below; the DCGAN needs no labels."""
    return np.repeat([0, 1], GRID // 2) if cfg.model == "cgan" else None


def _epoch_logger(cfg: GANConfig, data: GANData, extractor):
    from pneumonia_aug.gan_quality import fid_kid

    noise, labels = fixed_noise(GRID, cfg.latent_dim, cfg.seed), _grid_labels(cfg)

    def on_epoch(row: dict, generator: Generator) -> None:
        epoch = row["epoch"]
        tracking.log_metrics({k: row[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")}, step=epoch)
        due = cfg.sample_every and (epoch % cfg.sample_every == 0 or epoch == cfg.epochs)
        if not due:
            return
        tracking.log_image(sample_grid(generator, noise, labels), f"samples/epoch_{epoch:04d}.png")
        if extractor is not None:
            fake = generate_images(generator, cfg.eval_images, cfg.seed + 1, NORMAL)
            tracking.log_metrics(fid_kid(data.reference.images, fake, extractor), step=epoch)

    return on_epoch


def _memorization(cfg: GANConfig, data: GANData, generator: Generator, extractor) -> None:
    from pneumonia_aug.gan_quality import closest_pairs_figure, memorization_check

    real = data.train.images[data.train.labels == 0]  # NORMAL training images
    fake = generate_images(generator, cfg.eval_images, cfg.seed + 2, NORMAL)
    check = memorization_check(fake, real, extractor)
    tracking.log_metrics({k: check[k] for k in ("nn_distance_min", "nn_distance_median")})
    tracking.log_figure(closest_pairs_figure(fake, real, check), "quality/closest_pairs.png")


def run_train_gan(cfg: GANConfig, feature_model_uri: str = DEFAULT_FEATURE_MODEL) -> str:
    """Train one GAN as an MLflow run; return its run id."""
    gan = cfg.model.upper()
    tags = {"stage": STAGE, "gan": gan, "seed": cfg.seed, "git_commit": tracking.git_commit()}
    with tracking.start_run(cfg.experiment_name, run_name=f"{STAGE}-{cfg.model}-s{cfg.seed}",
                            tags=tags) as run:
        tracking.log_params(cfg.to_dict() | {"feature_model_uri": feature_model_uri})
        data = load_gan_data(cfg.data_dir, cfg.split_seed, cfg.image_size, cfg.cache_dir,
                             normal_only=cfg.model == "dcgan")
        tracking.set_tags({"dataset_digest": data.dataset_digest})
        tracking.log_metrics({"n_train": len(data.train.labels), "n_skipped_files": len(data.skipped)})
        tracking.log_manifest(data.train.manifest, "gan_train", source=str(data.data_dir))
        extractor = _feature_extractor(feature_model_uri)
        if extractor is not None:
            tracking.set_tags({"fid_feature_model_uri": feature_model_uri})
        with local_checkpoint(run.info.run_id, cfg.cache_dir) as checkpoint:
            try:
                result = train_gan(data.train.images, data.train.labels.astype(np.int64), cfg,
                                   on_epoch=_epoch_logger(cfg, data, extractor),
                                   checkpoint_path=checkpoint)
            except FloatingPointError as exc:
                raise TrainingDivergedError(f"{gan} training diverged: {exc}. Lower lr_d/lr_g "
                                            "or try diffaugment=color,translation,cutout") from exc
            tracking.log_artifact(checkpoint, "checkpoints")
        tracking.log_figure(plots.gan_losses(result.history, f"{gan} losses"), "plots/losses.png")
        if extractor is not None:
            _memorization(cfg, data, result.generator, extractor)
        info = tracking.log_generator_model(
            gan, result.generator.state_dict(),
            {"model": cfg.model, "image_size": cfg.image_size, "latent_dim": cfg.latent_dim},
            metadata={"train_gan_run_id": run.info.run_id})
        version = str(info.registered_model_version)
        tracking.set_newest(tracking.generator_model_name(gan), version)
        tracking.set_tags({"registered_model_version": version})
        log.info("run %s: %s generator registered as %s version %s (alias newest)",
                 run.info.run_id, gan, tracking.generator_model_name(gan), version)
        return run.info.run_id
