"""The `train_gan` stage as a tracked run: a DCGAN or CGAN on the real training images.

Logged: the config; the tags `n_train` (the images it trains on, its debug cap applied) and,
where files were skipped, `n_skipped_files`; per epoch `epoch/d_loss`, `epoch/g_loss`,
`epoch/d_real`, `epoch/d_fake` (the UI's first chart section); every `sample_every` epochs a
fixed-noise grid `samples/epoch_XXXX.png` and the images drawn for GAN quality
(`quality/eval_images/`, measured by `stages.gan_quality` once an X-ray feature network is
known: at this run's end when `feature_model_uri` names one, else by the study's quality step);
at the end the loss curves (the paper's Figure 6), the memorization set, the checkpoint, and
the generator registered as `pneumonia-{dcgan,cgan}-generator` with the alias `newest`; the
tag `world_size` (processes under torchrun, 1 otherwise).

The run itself (checks, resume, checkpoint, failure) is `stages.runs.execute`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from pneumonia_aug import tracking
from pneumonia_aug.config import GANConfig, QualityConfig
from pneumonia_aug.contract import (
    CHECKPOINTS_DIR,
    D_FAKE,
    D_LOSS,
    D_REAL,
    EVAL_IMAGES_DIR,
    G_LOSS,
    MEMORIZATION_IMAGES,
    N_SKIPPED_FILES,
    N_TRAIN,
    PLOTS_DIR,
    TAG_GAN,
    TAG_MODEL_VERSION,
    TAG_REAL_FRACTION,
    TAG_SEED,
    TRAIN_GAN,
    Gan,
    gan_run_name,
    generator_model_name,
)
from pneumonia_aug.data.dataset import GANData, load_gan_data
from pneumonia_aug.data.kermany import check_layout, resolve_data_dir
from pneumonia_aug.evaluation import plots
from pneumonia_aug.models.gan import NORMAL, Generator
from pneumonia_aug.models.sampling import fixed_noise, generate_images
from pneumonia_aug.serving import packaging, registry
from pneumonia_aug.stages import describe
from pneumonia_aug.stages.gan_quality import eval_images_file, measure
from pneumonia_aug.stages.runs import TrainingStage, execute
from pneumonia_aug.training.gan import capped, sample_grid, train_gan

log = logging.getLogger(__name__)
GRID = 64  # images in each sample grid (8 x 8)
GAN_METRICS = (D_LOSS, G_LOSS, D_REAL, D_FAKE)


class GANStage(TrainingStage):
    stage = TRAIN_GAN
    diverged_hint = "Lower lr_d/lr_g or try diffaugment=color,translation,cutout"

    def __init__(self, cfg: GANConfig):
        self.cfg, self.gan = cfg, cfg.gan
        self.what = self.gan.display
        lr_d, lr_g = cfg.effective_lrs  # derived, logged too: what Adam actually ran with
        self.params = cfg.to_dict() | {"lr_d_effective": lr_d, "lr_g_effective": lr_g}
        self.run_name = gan_run_name(self.gan, cfg.real_fraction, cfg.seed)

    def prepare(self, resume):
        check_layout(resolve_data_dir(self.cfg.data_dir))

    def tags(self, upstream, dist) -> dict:
        subset = {TAG_REAL_FRACTION: self.cfg.real_fraction} if self.cfg.real_fraction < 1 else {}
        return {TAG_GAN: self.gan.display, TAG_SEED: self.cfg.seed} | subset

    def description(self, upstream, data: GANData | None = None) -> str:
        if data is None:
            return describe.gan_run(self.cfg)
        available = len(data.train.labels)
        return describe.gan_run(self.cfg, capped(available, self.cfg.max_images), available)

    def load(self, upstream) -> GANData:
        cfg = self.cfg
        return load_gan_data(cfg.data_dir, cfg.split_seed, cfg.image_size, cfg.cache_dir,
                             normal_only=self.gan is Gan.DCGAN, real_fraction=cfg.real_fraction,
                             real_fraction_scope=cfg.real_fraction_scope)

    def log_inputs(self, data: GANData, dist) -> None:
        skipped = {N_SKIPPED_FILES: len(data.skipped)} if data.skipped else {}
        tracking.set_tags({N_TRAIN: capped(len(data.train.labels), self.cfg.max_images)}
                          | skipped)
        tracking.log_manifest(data.train.manifest, "gan_train", source=str(data.data_dir))

    def train(self, data: GANData, dist, checkpoint, metric_log, checkpoint_path):
        on_epoch = self._epoch_logger(metric_log) if metric_log is not None else None
        return train_gan(data.train.images, data.train.labels.astype(np.int64), self.cfg,
                         on_epoch=on_epoch, checkpoint_path=checkpoint_path, resume=checkpoint,
                         dist=dist)

    def _grid_labels(self):
        """CGAN grids show NORMAL on the top half, PNEUMONIA below; the DCGAN needs no labels."""
        return np.repeat([0, 1], GRID // 2) if self.gan is Gan.CGAN else None

    def _epoch_logger(self, metric_log):
        cfg = self.cfg
        noise, labels = fixed_noise(GRID, cfg.latent_dim, cfg.seed), self._grid_labels()

        def on_epoch(row: dict, generator: Generator) -> None:
            epoch = row["epoch"]
            metric_log({k: row[k] for k in GAN_METRICS}, step=epoch)
            due = cfg.sample_every and (epoch % cfg.sample_every == 0 or epoch == cfg.epochs)
            if not due:
                return
            # Same name again on a resumed run's replayed epoch: the artifact is overwritten.
            metric_log.log_image(sample_grid(generator, noise, labels),
                                 f"samples/epoch_{epoch:04d}.png")
            # Kept for GAN quality, measured later. Drawing uses torch's global RNG, which also
            # drives D's dropout: keep it from shifting training, so a resumed run draws what
            # an unbroken one does.
            device = next(generator.parameters()).device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                fake = generate_images(generator, cfg.eval_images, cfg.seed + 1, NORMAL)
            metric_log.log_arrays(f"{EVAL_IMAGES_DIR}/{eval_images_file(epoch)}", images=fake)

        return on_epoch

    def log_results(self, data: GANData, result, metric_log, checkpoint_path) -> None:
        cfg, gan, run_id = self.cfg, self.gan, tracking.active_run_id()
        tracking.log_artifact(checkpoint_path, CHECKPOINTS_DIR)
        tracking.log_figure(plots.gan_losses(result.history, f"{gan.display} losses"),
                            f"{PLOTS_DIR}/losses.png")
        if cfg.sample_every:  # the memorization set: from the final generator, seed + 2
            fake = generate_images(result.generator, cfg.eval_images, cfg.seed + 2, NORMAL)
            metric_log.log_arrays(f"{EVAL_IMAGES_DIR}/{MEMORIZATION_IMAGES}", images=fake)
            metric_log.flush(wait=True)
        info = packaging.log_generator_model(
            gan, result.generator.state_dict(), self.params,
            metadata={"train_gan_run_id": run_id}, description=tracking.run_description(run_id))
        version = str(info.registered_model_version)
        registry.set_newest(gan, version)
        name = generator_model_name(gan)
        tracking.describe_version(name, version, describe.generator_version(
            cfg, data.dataset_digest, run_id, name, version))
        tracking.set_tags({TAG_MODEL_VERSION: version})
        log.info("run %s: %s generator registered as %s version %s (alias newest)",
                 run_id, gan.display, generator_model_name(gan), version)
        if cfg.feature_model_uri and cfg.sample_every:
            measure(QualityConfig(run_id, cfg.feature_model_uri, cfg.device), data)


def run_train_gan(cfg: GANConfig, resume_run_id: str = "", run_id: str = "",
                  parent_run_id: str = "") -> str:
    """Train one GAN as an MLflow run (a new one, or the claimed `run_id`), or continue the
    unfinished run `resume_run_id` from its checkpoint; return the run id."""
    return execute(GANStage(cfg), resume_run_id, run_id, parent_run_id)
