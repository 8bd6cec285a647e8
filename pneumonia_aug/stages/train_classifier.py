"""The `train_classifier` stage as a tracked run: data -> CheXNet -> metrics, plots, model.

Logged to the run (docs/stages.md, "What a classifier run logs"): the resolved config as params and
`config.json`; tags `setting`, `gan`, `real_fraction`, `synthetic_fraction`, `seed` (what a
user filters by), the image counts (`n_train`, `n_train_real_normal`, `n_train_generated`,
`n_val`, `n_test`, and `n_skipped_files` where files were skipped), and the tags the project
reads: `code_version`, `dataset_digest`, `comparison_key` and `precision` (`evaluation.groups`),
`cpu_threads`, `world_size`, for GAN settings `synthetic_run_id` and `generated_set`; the
train/val/test manifests as dataset inputs; per-epoch losses, lr and validation metrics
(`epoch/*`, the UI's first chart section); then what `stages.classifier_results` logs: what
validation chose (`model/*`), test metrics of the kept weights at 0.5 (`test/*`) and as served
(`test_op/*`), tables, plots, the model card and the model, registered as
`pneumonia-chexnet`, which applies temperature and threshold. The description says what was
trained on which data, with the image counts once the data are loaded.

The run itself (checks, resume, checkpoint, failure) is `stages.runs.execute`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch

from pneumonia_aug import tracking
from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.contract import (
    N_SKIPPED_FILES,
    N_TEST,
    N_TRAIN,
    N_TRAIN_GENERATED,
    N_TRAIN_REAL_NORMAL,
    N_VAL,
    SKIPPED_ARTIFACT,
    TAG_CPU_THREADS,
    TAG_DEBUG_SUBSET,
    TAG_GAN,
    TAG_GAN_SEEDS,
    TAG_GENERATED_SET,
    TAG_REAL_FRACTION,
    TAG_SEED,
    TAG_SETTING,
    TAG_SYNTHETIC_FRACTION,
    TAG_SYNTHETIC_RUN,
    TRAIN_CLASSIFIER,
    Gan,
    classifier_run_name,
)
from pneumonia_aug.data.dataset import SUBSETS, ClassifierData, load_classifier_data
from pneumonia_aug.data.kermany import check_layout, resolve_data_dir
from pneumonia_aug.evaluation.groups import comparison_parts, key_tags
from pneumonia_aug.provenance import code_version
from pneumonia_aug.stages import classifier_results, describe
from pneumonia_aug.stages.runs import TrainingStage, execute
from pneumonia_aug.stages.synthetic import fetch_synthetic, find_synthetic_run
from pneumonia_aug.training.classifier import ClassifierResult, train_classifier
from pneumonia_aug.training.distributed import pick_device, precision

log = logging.getLogger(__name__)


def image_counts(data: ClassifierData) -> dict[str, int]:
    """What the run trained, validated and tested on (the count tags)."""
    train = data.train.manifest
    real = train["origin"] == "real"
    return {N_TRAIN: len(data.train.labels), N_TRAIN_REAL_NORMAL: int(
        (real & (train["label"] == "NORMAL")).sum()), N_TRAIN_GENERATED: int((~real).sum()),
        N_VAL: len(data.val.labels), N_TEST: len(data.test.labels)}


class ClassifierStage(TrainingStage):
    stage = TRAIN_CLASSIFIER
    what = "CheXNet"
    diverged_hint = "Lower lr (or use lr_scaling=none), or check the data"

    def __init__(self, cfg: ClassifierConfig):
        self.cfg, self.setting = cfg, cfg.parsed_setting
        self.gan = Gan.parse(self.setting.gan) if self.setting.gan else None
        # The run's params: the config, and the learning rate Adam actually ran with.
        self.params = cfg.to_dict() | {"lr_effective": cfg.effective_lr}
        self.run_name = classifier_run_name(self.setting, cfg.seed)
        self.n_generated = 0  # the images the generate run drew (a GAN setting's), once loaded

    def prepare(self, resume):
        """The data folder and, for a GAN setting, its generate run: checked before the run."""
        check_layout(resolve_data_dir(self.cfg.data_dir))
        if not self.gan:
            return None
        if resume:
            return resume.tags[TAG_SYNTHETIC_RUN]
        experiment = tracking.target_experiment_id(self.cfg.experiment_name)
        return find_synthetic_run(self.gan, self.cfg.synthetic_run_id, experiment, self.cfg)

    def tags(self, synthetic_run_id, dist) -> dict:
        s = self.setting
        tags = {TAG_SETTING: s.name, TAG_GAN: s.gan or "none", TAG_REAL_FRACTION: s.real_fraction,
                TAG_SYNTHETIC_FRACTION: s.synthetic_fraction, TAG_SEED: self.cfg.seed}
        if synthetic_run_id:
            tags |= {TAG_SYNTHETIC_RUN: synthetic_run_id, TAG_GAN_SEEDS: self.cfg.gan_seeds}
        if self.cfg.max_images_per_split:
            tags[TAG_DEBUG_SUBSET] = f"at most {self.cfg.max_images_per_split} images per split"
        return tags

    def description(self, synthetic_run_id, data: ClassifierData | None = None) -> str:
        counts = image_counts(data) if data is not None else None
        return describe.classifier_run(self.cfg, self.setting, synthetic_run_id, counts,
                                       self.n_generated)

    def load(self, synthetic_run_id) -> ClassifierData:
        generated = (fetch_synthetic(synthetic_run_id, self.gan, self.cfg.cache_dir)
                     if synthetic_run_id else None)
        c = self.cfg
        data = load_classifier_data(self.setting, generated, data_dir=c.data_dir,
                                    split_seed=c.split_seed, seed=c.seed, image_size=c.image_size,
                                    real_fraction_scope=c.real_fraction_scope,
                                    cache_dir=c.cache_dir,
                                    max_images_per_split=c.max_images_per_split,
                                    real_subset=c.real_subset)
        if generated is None:
            return data
        self.n_generated = len(generated)
        return replace(data, generated_digest=tracking.manifest_digest(generated))

    def log_inputs(self, data: ClassifierData, dist) -> None:
        # What must match for two runs to share a table, and a row (evaluation.groups).
        parts = comparison_parts(self.params, data.dataset_digest, code_version(),
                                 precision(pick_device(self.cfg.device)), dist.world_size)
        tags = (key_tags(parts) | image_counts(data)
                | {TAG_CPU_THREADS: torch.get_num_threads()})
        if data.generated_digest:
            tags[TAG_GENERATED_SET] = data.generated_digest
        if data.skipped:
            tags[N_SKIPPED_FILES] = len(data.skipped)
            tracking.log_dict([vars(s) for s in data.skipped], SKIPPED_ARTIFACT)
        tracking.set_tags(tags)
        for name in SUBSETS:
            tracking.log_manifest(getattr(data, name).manifest, name, source=str(data.data_dir))
        train = data.train.manifest
        synthetic = train[train["origin"] != "real"]
        if len(synthetic):
            tracking.log_manifest(synthetic, "synthetic",
                                  source=str(Path(synthetic["path"].iloc[0]).parent))

    def train(self, data, dist, checkpoint, metric_log, checkpoint_path):
        on_epoch = None
        if metric_log is not None:
            def on_epoch(row: dict) -> None:
                metric_log({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
        return train_classifier(data, self.cfg, on_epoch=on_epoch,
                                checkpoint_path=checkpoint_path, resume=checkpoint, dist=dist)

    def log_results(self, data: ClassifierData, result: ClassifierResult, metric_log,
                    checkpoint_path) -> None:
        classifier_results.log_results(self.cfg, data, result, metric_log)


def run_train_classifier(cfg: ClassifierConfig, resume_run_id: str = "", run_id: str = "",
                         parent_run_id: str = "") -> str:
    """Train one setting/seed as an MLflow run (a new one, or the claimed `run_id`), or continue
    the unfinished run `resume_run_id` from its checkpoint; return the run id."""
    return execute(ClassifierStage(cfg), resume_run_id, run_id, parent_run_id)
