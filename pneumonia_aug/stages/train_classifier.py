"""The `train_classifier` stage as a tracked run: data -> CheXNet -> metrics, plots, model.

Logged to the run (README "What a classifier run logs"): the resolved config as params and
`config.json`; tags `setting`, `gan`, `real_fraction`, `synthetic_fraction`, `seed`,
`git_commit`, `dataset_digest`; the train/val/test manifests as dataset inputs; per-epoch
losses and validation metrics; test metrics of the best weights; plots; per-image test
predictions; the model, registered as `pneumonia-chexnet`; the tag `world_size` (processes
under torchrun, 1 otherwise).

`resume_run_id` continues a run that was killed or failed, into the same run, from its last
checkpoint: every epoch ends up logged once, then the run finishes as a new one would.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pneumonia_aug import plots, tracking
from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.data.dataset import SUBSETS, ClassifierData, load_classifier_data
from pneumonia_aug.settings import Setting, parse_setting
from pneumonia_aug.stages.checkpoints import (
    MetricLog,
    Resume,
    ResumeError,
    load_resume,
    local_checkpoint,
    sigterm_as_interrupt,
)
from pneumonia_aug.stages.synthetic import resolve_synthetic
from pneumonia_aug.training import distributed
from pneumonia_aug.training.classifier import ClassifierResult, train_classifier

log = logging.getLogger(__name__)
STAGE = "train_classifier"


def _params(cfg: ClassifierConfig) -> dict:
    """The run's params: the config, and the learning rate Adam actually ran with."""
    return cfg.to_dict() | {"lr_effective": cfg.effective_lr}


def _log_data(data: ClassifierData) -> None:
    tracking.set_tags({"dataset_digest": data.dataset_digest})
    counts = {f"n_{name}": len(getattr(data, name).labels) for name in SUBSETS}
    train = data.train.manifest
    counts["n_train_generated"] = int((train["origin"] != "real").sum())
    counts["n_train_real_normal"] = int(((train["origin"] == "real")
                                         & (train["label"] == "NORMAL")).sum())
    counts["n_skipped_files"] = len(data.skipped)
    tracking.log_metrics(counts)
    if data.skipped:
        tracking.log_dict([vars(s) for s in data.skipped], tracking.SKIPPED_ARTIFACT)
    for name in SUBSETS:
        tracking.log_manifest(getattr(data, name).manifest, name, source=str(data.data_dir))
    synthetic = train[train["origin"] != "real"]
    if len(synthetic):
        tracking.log_manifest(synthetic, "synthetic",
                              source=str(Path(synthetic["path"].iloc[0]).parent))


def _log_results(data: ClassifierData, result: ClassifierResult, cfg: ClassifierConfig,
                 log_metrics: MetricLog):
    log_metrics({f"test_{k}": v for k, v in result.test_metrics.items()}, step=0)
    log_metrics({"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                 "train_seconds": result.seconds}, step=0)
    test = data.test.manifest
    predictions = pd.DataFrame({"relpath": test["relpath"], "sha256": test["sha256"],
                                "y_true": data.test.labels.astype(int),
                                "probability": result.test_probs})
    tracking.log_table(predictions, tracking.PREDICTIONS_ARTIFACT)
    tracking.log_figure(plots.learning_curves(result.history, result.best_epoch),
                        f"{tracking.PLOTS_DIR}/learning_curves.png")
    tracking.log_figure(plots.confusion_matrix_figure(result.test_metrics),
                        f"{tracking.PLOTS_DIR}/confusion_matrix.png")
    tracking.log_figure(plots.roc_figure(data.test.labels, result.test_probs,
                                         result.test_metrics["auroc"]),
                        f"{tracking.PLOTS_DIR}/roc.png")
    examples = [test.loc[test["label"] == label, "path"].iloc[0]
                for label in ("NORMAL", "PNEUMONIA")]
    info = tracking.log_classifier_model(
        result.model.state_dict(), cfg.to_dict(), examples,
        metadata={"best_val_loss": result.best_val_loss, "setting": cfg.setting},
    )
    version = str(info.registered_model_version)
    tracking.tag_version(tracking.CLASSIFIER_MODEL, version, {
        "best_val_loss": result.best_val_loss, "setting": cfg.setting, "seed": cfg.seed,
        "image_size": cfg.image_size, "run_id": tracking.active_run_id()})
    champion = tracking.promote_champion()
    tracking.set_tags({"model_uri": info.model_uri, "registered_model_version": version,
                       "champion_version": champion})
    return info


def run_train_classifier(cfg: ClassifierConfig, resume_run_id: str = "") -> str:
    """Train one setting/seed as an MLflow run, or continue the unfinished run `resume_run_id`
    from its checkpoint; return the run id. Under torchrun every process calls this and only
    rank 0 talks to MLflow."""
    setting = parse_setting(cfg.setting)
    cfg = replace(cfg, setting=setting.name)
    with distributed.process_group(cfg.device) as dist, sigterm_as_interrupt():
        if not dist.is_main:
            # Rank 0 first decodes the images into the cache and resolves the generated ones.
            run_id, generated, checkpoint = dist.broadcast(None)
            train_classifier(load_classifier_data(cfg, setting, generated), cfg,
                             resume=checkpoint, dist=dist)
            return run_id
        resume = None
        if resume_run_id:
            resume = load_resume(resume_run_id, STAGE, _params(cfg), cfg.cache_dir)
        with _open_run(cfg, setting, resume, dist) as run:
            run_id = run.info.run_id
            generated = None
            if setting.gan:
                synthetic = resume.tags["synthetic_run_id"] if resume else cfg.synthetic_run_id
                generated = resolve_synthetic(setting.gan, synthetic, run.info.experiment_id,
                                              cfg.cache_dir)
            data = load_classifier_data(cfg, setting, generated)
            if resume:
                _check_same_data(resume, data.dataset_digest)
            else:
                tracking.log_params(_params(cfg))
                _log_data(data)
            checkpoint = resume.checkpoint if resume else None
            dist.broadcast((run_id, generated, checkpoint))
            log_metrics = MetricLog(resume.logged if resume else None)
            with local_checkpoint(run_id, cfg.cache_dir) as path:
                result = train_classifier(
                    data, cfg, checkpoint_path=path, resume=checkpoint, dist=dist,
                    on_epoch=lambda row: log_metrics(
                        {k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]),
                )
                info = _log_results(data, result, cfg, log_metrics)
        log.info("run %s: test accuracy %.3f, recall %.3f, precision %.3f; model %s version %s",
                 run_id, result.test_metrics["accuracy"], result.test_metrics["recall"],
                 result.test_metrics["precision"], tracking.CLASSIFIER_MODEL,
                 info.registered_model_version)
        return run_id


def _open_run(cfg: ClassifierConfig, setting: Setting, resume: Resume | None,
              dist: distributed.DistContext):
    """A new run, or the interrupted one reopened (its tags and params are already there)."""
    if resume:
        tracking.tag_run(resume.run_id, {"resumed_after_epoch": resume.checkpoint["epoch"]})
        return tracking.resume_run(resume.run_id)
    tags = {"stage": STAGE, "setting": setting.name, "gan": setting.gan or "none",
            "real_fraction": setting.real_fraction,
            "synthetic_fraction": setting.synthetic_fraction, "seed": cfg.seed,
            "world_size": dist.world_size, "git_commit": tracking.git_commit()}
    if cfg.max_images_per_split:
        tags["debug_subset"] = f"at most {cfg.max_images_per_split} images per split"
    return tracking.start_run(cfg.experiment_name, run_name=f"{setting.name}-s{cfg.seed}",
                              tags=tags)


def _check_same_data(resume: Resume, digest: str) -> None:
    if resume.tags.get("dataset_digest") != digest:
        raise ResumeError(f"the data changed since run {resume.run_id} started (dataset digest "
                          f"{digest}, the run's {resume.tags.get('dataset_digest')}): point "
                          "--data-dir at the run's data, or start a new run")
