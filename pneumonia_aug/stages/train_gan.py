"""The `train_gan` stage as a tracked run: a DCGAN or CGAN on the real training images.

Logged: the config; per epoch `d_loss`, `g_loss`, `d_real`, `d_fake`; every `sample_every`
epochs a fixed-noise grid `samples/epoch_XXXX.png` and, when an X-ray feature network is
registered, `fid_xray` / `kid_xray` against the validation NORMAL images; at the end the
loss curves (the paper's Figure 6), the memorization check, the checkpoint, and the
generator registered as `pneumonia-{dcgan,cgan}-generator` with the alias `newest`; the tag
`world_size` (processes under torchrun, 1 otherwise).

`resume_run_id` continues a run that was killed or failed, into the same run, from its last
checkpoint: every epoch ends up logged once, then the run finishes as a new one would.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from pneumonia_aug import plots, tracking
from pneumonia_aug.data.dataset import GANData, load_gan_data
from pneumonia_aug.errors import TrackingError, TrainingDivergedError
from pneumonia_aug.models.gan import NORMAL, Generator
from pneumonia_aug.stages.checkpoints import (
    MetricLog,
    Resume,
    ResumeError,
    load_resume,
    local_checkpoint,
    sigterm_as_interrupt,
)
from pneumonia_aug.training import distributed
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


def _epoch_logger(cfg: GANConfig, data: GANData, extractor, log_metrics: MetricLog):
    from pneumonia_aug.gan_quality import fid_kid

    noise, labels = fixed_noise(GRID, cfg.latent_dim, cfg.seed), _grid_labels(cfg)

    def on_epoch(row: dict, generator: Generator) -> None:
        epoch = row["epoch"]
        log_metrics({k: row[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")}, step=epoch)
        due = cfg.sample_every and (epoch % cfg.sample_every == 0 or epoch == cfg.epochs)
        if not due:
            return
        # Same name again on a resumed run's replayed epoch: the artifact is overwritten.
        tracking.log_image(sample_grid(generator, noise, labels), f"samples/epoch_{epoch:04d}.png")
        if extractor is not None:
            # KID draws subsets from torch's global RNG, which also drives D's dropout: keep
            # evaluation from shifting training, so a resumed run draws what an unbroken one does.
            device = next(generator.parameters()).device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                fake = generate_images(generator, cfg.eval_images, cfg.seed + 1, NORMAL)
                log_metrics(fid_kid(data.reference.images, fake, extractor), step=epoch)

    return on_epoch


def _memorization(cfg: GANConfig, data: GANData, generator: Generator, extractor,
                  log_metrics: MetricLog) -> None:
    from pneumonia_aug.gan_quality import closest_pairs_figure, memorization_check

    real = data.train.images[data.train.labels == 0]  # NORMAL training images
    fake = generate_images(generator, cfg.eval_images, cfg.seed + 2, NORMAL)
    check = memorization_check(fake, real, extractor)
    log_metrics({k: check[k] for k in ("nn_distance_min", "nn_distance_median")}, step=0)
    tracking.log_figure(closest_pairs_figure(fake, real, check), "quality/closest_pairs.png")


def run_train_gan(cfg: GANConfig, feature_model_uri: str = DEFAULT_FEATURE_MODEL,
                  resume_run_id: str = "") -> str:
    """Train one GAN as an MLflow run, or continue the unfinished run `resume_run_id` from its
    checkpoint; return the run id. Under torchrun every process calls this and only rank 0
    talks to MLflow."""
    gan = cfg.model.upper()
    lr_d, lr_g = cfg.effective_lrs  # derived, logged too: what Adam actually ran with
    params = cfg.to_dict() | {"feature_model_uri": feature_model_uri, "lr_d_effective": lr_d,
                              "lr_g_effective": lr_g}
    with distributed.process_group(cfg.device) as dist, sigterm_as_interrupt():
        if not dist.is_main:
            run_id, checkpoint = dist.broadcast(None)  # rank 0 first fills the image cache
            data = _load(cfg)
            train_gan(data.train.images, data.train.labels.astype(np.int64), cfg,
                      resume=checkpoint, dist=dist)
            return run_id
        resume = None
        if resume_run_id:
            resume = load_resume(resume_run_id, STAGE, params, cfg.cache_dir)
        with _open_run(cfg, resume, dist) as run:
            run_id = run.info.run_id
            data = _load(cfg)
            if resume:
                if resume.tags.get("dataset_digest") != data.dataset_digest:
                    raise ResumeError(f"the data changed since run {run_id} started: point "
                                      "--data-dir at the run's data, or start a new run")
            else:
                tracking.log_params(params)
                tracking.set_tags({"dataset_digest": data.dataset_digest})
                tracking.log_metrics({"n_train": len(data.train.labels),
                                      "n_skipped_files": len(data.skipped)})
                tracking.log_manifest(data.train.manifest, "gan_train", source=str(data.data_dir))
            checkpoint = resume.checkpoint if resume else None
            dist.broadcast((run_id, checkpoint))
            extractor = _feature_extractor(feature_model_uri)
            if extractor is not None:
                tracking.set_tags({"fid_feature_model_uri": feature_model_uri})
            log_metrics = MetricLog(resume.logged if resume else None)
            on_epoch = _epoch_logger(cfg, data, extractor, log_metrics)
            with local_checkpoint(run_id, cfg.cache_dir) as path:
                try:
                    result = train_gan(data.train.images, data.train.labels.astype(np.int64), cfg,
                                       on_epoch=on_epoch, checkpoint_path=path, resume=checkpoint,
                                       dist=dist)
                except FloatingPointError as exc:
                    raise TrainingDivergedError(
                        f"{gan} training diverged: {exc}. Lower lr_d/lr_g "
                        "or try diffaugment=color,translation,cutout") from exc
                tracking.log_artifact(path, "checkpoints")
            _log_results(cfg, data, result, extractor, log_metrics, run_id)
        return run_id


def _load(cfg: GANConfig) -> GANData:
    return load_gan_data(cfg.data_dir, cfg.split_seed, cfg.image_size, cfg.cache_dir,
                         normal_only=cfg.model == "dcgan")


def _open_run(cfg: GANConfig, resume: Resume | None, dist: distributed.DistContext):
    """A new run, or the interrupted one reopened (its tags and params are already there)."""
    if resume:
        tracking.tag_run(resume.run_id, {"resumed_after_epoch": resume.checkpoint["epoch"]})
        return tracking.resume_run(resume.run_id)
    tags = {"stage": STAGE, "gan": cfg.model.upper(), "seed": cfg.seed,
            "world_size": dist.world_size, "git_commit": tracking.git_commit()}
    return tracking.start_run(cfg.experiment_name, run_name=f"{STAGE}-{cfg.model}-s{cfg.seed}",
                              tags=tags)


def _log_results(cfg: GANConfig, data: GANData, result, extractor, log_metrics: MetricLog,
                 run_id: str) -> None:
    gan = cfg.model.upper()
    tracking.log_figure(plots.gan_losses(result.history, f"{gan} losses"), "plots/losses.png")
    if extractor is not None:
        _memorization(cfg, data, result.generator, extractor, log_metrics)
    info = tracking.log_generator_model(
        gan, result.generator.state_dict(),
        {"model": cfg.model, "image_size": cfg.image_size, "latent_dim": cfg.latent_dim},
        metadata={"train_gan_run_id": run_id})
    version = str(info.registered_model_version)
    tracking.set_newest(tracking.generator_model_name(gan), version)
    tracking.set_tags({"registered_model_version": version})
    log.info("run %s: %s generator registered as %s version %s (alias newest)",
             run_id, gan, tracking.generator_model_name(gan), version)
