"""The `train_classifier` stage as a tracked run: data -> CheXNet -> metrics, plots, model.

Logged to the run (README "What a classifier run logs"): the resolved config as params and
`config.json`; tags `setting`, `gan`, `real_fraction`, `synthetic_fraction`, `seed`,
`git_commit`, `dataset_digest`; the train/val/test manifests as dataset inputs; per-epoch
losses and validation metrics; test metrics of the best weights; plots; per-image test
predictions; the model, registered as `pneumonia-chexnet`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pneumonia_aug import plots, tracking
from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.data.dataset import SUBSETS, ClassifierData, load_classifier_data
from pneumonia_aug.settings import parse_setting
from pneumonia_aug.stages.checkpoints import local_checkpoint
from pneumonia_aug.stages.synthetic import resolve_synthetic
from pneumonia_aug.training.classifier import ClassifierResult, train_classifier

log = logging.getLogger(__name__)
STAGE = "train_classifier"


def _log_data(data: ClassifierData) -> None:
    tracking.set_tags({"dataset_digest": data.dataset_digest})
    counts = {f"n_{name}": len(getattr(data, name).labels) for name in SUBSETS}
    train = data.train.manifest
    counts["n_train_generated"] = int((train["origin"] != "real").sum())
    counts["n_train_real_normal"] = int(((train["origin"] == "real") & (train["label"] == "NORMAL")).sum())
    counts["n_skipped_files"] = len(data.skipped)
    tracking.log_metrics(counts)
    if data.skipped:
        tracking.log_dict([vars(s) for s in data.skipped], tracking.SKIPPED_ARTIFACT)
    for name in SUBSETS:
        tracking.log_manifest(getattr(data, name).manifest, name, source=str(data.data_dir))
    synthetic = train[train["origin"] != "real"]
    if len(synthetic):
        tracking.log_manifest(synthetic, "synthetic", source=str(Path(synthetic["path"].iloc[0]).parent))


def _log_results(data: ClassifierData, result: ClassifierResult, cfg: ClassifierConfig):
    tracking.log_metrics({f"test_{k}": v for k, v in result.test_metrics.items()})
    tracking.log_metrics({"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                          "train_seconds": result.seconds})
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
    examples = [test.loc[test["label"] == label, "path"].iloc[0] for label in ("NORMAL", "PNEUMONIA")]
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


def run_train_classifier(cfg: ClassifierConfig) -> str:
    """Train one setting/seed as an MLflow run; return its run id."""
    setting = parse_setting(cfg.setting)
    cfg = replace(cfg, setting=setting.name)
    tags = {"stage": STAGE, "setting": setting.name, "gan": setting.gan or "none",
            "real_fraction": setting.real_fraction,
            "synthetic_fraction": setting.synthetic_fraction, "seed": cfg.seed,
            "git_commit": tracking.git_commit()}
    if cfg.max_images_per_split:
        tags["debug_subset"] = f"at most {cfg.max_images_per_split} images per split"
    with tracking.start_run(cfg.experiment_name, run_name=f"{setting.name}-s{cfg.seed}",
                            tags=tags) as run:
        tracking.log_params(cfg.to_dict())
        generated = None
        if setting.gan:
            generated = resolve_synthetic(setting.gan, cfg.synthetic_run_id,
                                          run.info.experiment_id, cfg.cache_dir)
        data = load_classifier_data(cfg, setting, generated)
        _log_data(data)
        with local_checkpoint(run.info.run_id, cfg.cache_dir) as checkpoint:
            result = train_classifier(
                data, cfg, checkpoint_path=checkpoint,
                on_epoch=lambda row: tracking.log_metrics(
                    {k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]),
            )
            info = _log_results(data, result, cfg)
        log.info("run %s: test accuracy %.3f, recall %.3f, precision %.3f; model %s version %s",
                 run.info.run_id, result.test_metrics["accuracy"], result.test_metrics["recall"],
                 result.test_metrics["precision"], tracking.CLASSIFIER_MODEL,
                 info.registered_model_version)
        return run.info.run_id
