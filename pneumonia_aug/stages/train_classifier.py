"""The `train_classifier` stage as a tracked run: data -> CheXNet -> metrics, plots, model.

Logged to the run (docs/stages.md, "What a classifier run logs"): the resolved config as params and
`config.json`; tags `setting`, `gan`, `real_fraction`, `synthetic_fraction`, `seed`,
`git_commit`, `code_version`, `dataset_digest` (and `synthetic_run_id` and `generated_set`
for GAN settings); the comparison key and its parts (`evaluation.groups`: precision and world
size among them); `cpu_threads`; the train/val/test manifests as dataset inputs; image counts
(`data/*`); per-epoch losses and validation metrics (`train/*`, `val/*`); the epoch kept, the
temperature and operating point chosen on validation (`chosen/*`); test metrics of the kept
weights at 0.5 (`test/*`) and what the temperature and operating point give on test
(`test_op/*`, `evaluation.bedside`); MLflow's classifier evaluation at that operating point;
plots; per-image test predictions; the model, registered as `pneumonia-chexnet`, which applies
temperature and threshold; the tag `world_size` (processes under torchrun, 1 otherwise).

The run itself (checks, resume, checkpoint, failure) is `stages.runs.execute`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pneumonia_aug import tracking
from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.contract import (
    CHOSEN_EPOCH,
    CHOSEN_TEMPERATURE,
    CHOSEN_THRESHOLD,
    CHOSEN_VAL_LOSS,
    CLASSIFIER_MODEL,
    DATA,
    MLFLOW_EVALUATION_PREFIX,
    N_SKIPPED_FILES,
    PLOTS_DIR,
    PREDICTIONS_ARTIFACT,
    SKIPPED_ARTIFACT,
    SUBGROUPS_ARTIFACT,
    TAG_CPU_THREADS,
    TAG_DEBUG_SUBSET,
    TAG_GAN,
    TAG_GENERATED_SET,
    TAG_MODEL_VERSION,
    TAG_SEED,
    TAG_SETTING,
    TAG_SYNTHETIC_RUN,
    TEST,
    TEST_OP,
    TEST_OP_RECALL,
    TRAIN_CLASSIFIER,
    TRAIN_SECONDS,
    Gan,
    metric,
    run_name,
)
from pneumonia_aug.data.dataset import SUBSETS, ClassifierData, load_classifier_data
from pneumonia_aug.data.kermany import CLASSES, check_layout, resolve_data_dir
from pneumonia_aug.evaluation import plots
from pneumonia_aug.evaluation.bedside import Bedside, assess
from pneumonia_aug.evaluation.groups import comparison_parts, key_tags
from pneumonia_aug.provenance import code_version
from pneumonia_aug.serving import champion, packaging, registry
from pneumonia_aug.stages import describe
from pneumonia_aug.stages.model_card import CARD_ARTIFACT, model_card
from pneumonia_aug.stages.runs import TrainingStage, execute
from pneumonia_aug.stages.synthetic import fetch_synthetic, find_synthetic_run
from pneumonia_aug.training.classifier import ClassifierResult, train_classifier
from pneumonia_aug.training.distributed import pick_device, precision

log = logging.getLogger(__name__)


class ClassifierStage(TrainingStage):
    stage = TRAIN_CLASSIFIER
    what = "CheXNet"
    diverged_hint = "Lower lr (or use lr_scaling=none), or check the data"

    def __init__(self, cfg: ClassifierConfig):
        self.cfg, self.setting = cfg, cfg.parsed_setting
        self.gan = Gan.parse(self.setting.gan) if self.setting.gan else None
        # The run's params: the config, and the learning rate Adam actually ran with.
        self.params = cfg.to_dict() | {"lr_effective": cfg.effective_lr}
        self.run_name = run_name(cfg.seed, self.setting.name)

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
        tags = {TAG_SETTING: s.name, TAG_GAN: s.gan or "none", "real_fraction": s.real_fraction,
                "synthetic_fraction": s.synthetic_fraction, TAG_SEED: self.cfg.seed}
        if synthetic_run_id:
            tags[TAG_SYNTHETIC_RUN] = synthetic_run_id
        if self.cfg.max_images_per_split:
            tags[TAG_DEBUG_SUBSET] = f"at most {self.cfg.max_images_per_split} images per split"
        return tags

    def description(self, synthetic_run_id) -> str:
        return describe.classifier_run(self.cfg, self.setting, synthetic_run_id)

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
        return replace(data, generated_digest=tracking.manifest_digest(generated))

    def log_inputs(self, data: ClassifierData, dist) -> None:
        # What must match for two runs to share a table, and a row (evaluation.groups).
        parts = comparison_parts(self.params, data.dataset_digest, code_version(),
                                 precision(pick_device(self.cfg.device)), dist.world_size)
        tags = key_tags(parts) | {TAG_CPU_THREADS: torch.get_num_threads()}
        if data.generated_digest:
            tags[TAG_GENERATED_SET] = data.generated_digest
        tracking.set_tags(tags)
        counts = {metric(DATA, f"n_{name}"): len(getattr(data, name).labels) for name in SUBSETS}
        train = data.train.manifest
        counts[metric(DATA, "n_train_generated")] = int((train["origin"] != "real").sum())
        counts[metric(DATA, "n_train_real_normal")] = int(((train["origin"] == "real")
                                                           & (train["label"] == "NORMAL")).sum())
        counts[N_SKIPPED_FILES] = len(data.skipped)
        tracking.log_metrics(counts)
        if data.skipped:
            tracking.log_dict([vars(s) for s in data.skipped], SKIPPED_ARTIFACT)
        for name in SUBSETS:
            tracking.log_manifest(getattr(data, name).manifest, name, source=str(data.data_dir))
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
        """The model first, then the test metrics linked to it (and to the test set), so the
        UI's model views list and rank the versions by them; the run keeps them too."""
        cfg, run_id = self.cfg, tracking.active_run_id()
        test = data.test.manifest
        examples = [test.loc[test["label"] == label, "path"].iloc[0]
                    for label in ("NORMAL", "PNEUMONIA")]
        # Temperature and threshold from validation only; then measured on test.
        bedside = assess(result.val_logits, data.val.labels, result.test_logits,
                         data.test.labels, test["subtype"], cfg.threshold_rule)
        chosen = {k: bedside.metrics.pop(k) for k in (CHOSEN_THRESHOLD, CHOSEN_TEMPERATURE)}
        test_metrics = ({metric(TEST, k): v for k, v in result.test_metrics.items()}
                        | bedside.metrics)
        try:
            info = packaging.log_classifier_model(
                result.model.state_dict(), cfg.to_dict(), examples,
                metadata={"best_val_loss": result.best_val_loss, "setting": cfg.setting},
                description=tracking.run_description(run_id), threshold=bedside.threshold,
                temperature=bedside.temperature)
        except Exception:
            metric_log(test_metrics | chosen, step=0)  # the run keeps its results without a model
            raise
        # Straight to MLflow, not through `metric_log`: even a resumed run whose first try
        # logged them has a new model to link them to.
        tracking.log_metrics(test_metrics, step=0, model_id=info.model_id, dataset="test")
        tracking.log_metrics({CHOSEN_VAL_LOSS: result.best_val_loss} | chosen, step=0,
                             model_id=info.model_id, dataset="val")
        metric_log({CHOSEN_EPOCH: result.best_epoch, TRAIN_SECONDS: result.seconds}, step=0)
        predictions = pd.DataFrame({"relpath": test["relpath"], "sha256": test["sha256"],
                                    "subtype": test["subtype"],
                                    "y_true": data.test.labels.astype(int),
                                    "probability": result.test_probs,
                                    "probability_calibrated": bedside.test_probs_calibrated})
        tracking.log_table(predictions, PREDICTIONS_ARTIFACT)
        self._log_bedside(data, bedside, info.model_id)
        tracking.log_figure(plots.learning_curves(result.history, result.best_epoch),
                            f"{PLOTS_DIR}/learning_curves.png")
        tracking.log_figure(plots.confusion_matrix_figure(result.test_metrics),
                            f"{PLOTS_DIR}/confusion_matrix.png")
        tracking.log_figure(plots.roc_figure(data.test.labels, result.test_probs,
                                             result.test_metrics["auroc"]),
                            f"{PLOTS_DIR}/roc.png")
        tracking.log_figure(plots.reliability_figure(data.test.labels, {
            "uncalibrated": result.test_probs,
            f"temperature {bedside.temperature:.2f}": bedside.test_probs_calibrated}),
            f"{PLOTS_DIR}/reliability.png")
        version = str(info.registered_model_version)
        tracking.tag_version(CLASSIFIER_MODEL, version, {
            registry.VAL_LOSS_TAG: result.best_val_loss, TAG_SETTING: cfg.setting,
            TAG_SEED: cfg.seed, registry.IMAGE_SIZE_TAG: cfg.image_size,
            registry.DEBUG_CAP_TAG: cfg.max_images_per_split,
            registry.TEST_ACCURACY_TAG: result.test_metrics["accuracy"], "run_id": run_id})
        served = describe.operating_point(test_metrics | chosen, cfg.threshold_rule)
        labels = data.test.labels.astype(int)
        card = model_card(cfg, test_metrics | chosen, int(labels.sum()),
                          int((labels == 0).sum()), data.dataset_digest, run_id,
                          f"models:/{CLASSIFIER_MODEL}/{version}")
        tracking.log_text(card, CARD_ARTIFACT)
        tracking.describe_version(CLASSIFIER_MODEL, version, describe.classifier_version(
            cfg, data.dataset_digest, run_id, result.test_metrics, CLASSIFIER_MODEL, version)
            + f"\n\n{card}")
        decision = champion.promote_champion(version)
        tracking.set_tags({"model_uri": info.model_uri, TAG_MODEL_VERSION: version,
                           "champion_version": decision.champion
                           or "none (no full-data version yet)"})
        tracking.add_to_description(run_id, describe.classifier_result(
            result.test_metrics, result.best_epoch, CLASSIFIER_MODEL, version) + f" {served}")
        log.info("run %s: test accuracy %.3f, recall %.3f, precision %.3f; model %s version %s",
                 run_id, result.test_metrics["accuracy"], result.test_metrics["recall"],
                 result.test_metrics["precision"], CLASSIFIER_MODEL, version)
        log.info("@champion: version %s %s: %s", version, decision.tags()["champion_decision"],
                 decision.reason)
        log.info("served at threshold %.3f (temperature %.2f): test specificity %.3f (%.3f at "
                 "0.5), recall %.3f", bedside.threshold, bedside.temperature,
                 test_metrics[metric(TEST_OP, "specificity")],
                 result.test_metrics["specificity"], test_metrics[TEST_OP_RECALL])

    @staticmethod
    def _log_bedside(data: ClassifierData, bedside: Bedside, model_id: str) -> None:
        """Recall per subtype as a table, and MLflow's classifier evaluation of the served
        labels (at the chosen threshold) on test: its metrics as `test_op_<MLflow's name>`
        (flat: `contract.MLFLOW_EVALUATION_PREFIX`) and its confusion matrix, in the UI's
        evaluation views, linked to the model."""
        tracking.log_table(bedside.subgroups, SUBGROUPS_ARTIFACT)
        classes = np.array(CLASSES)
        served = pd.DataFrame({
            "label": data.test.manifest["label"].to_numpy(),
            "prediction": classes[(bedside.test_probs_calibrated >= bedside.threshold)
                                  .astype(int)]})
        tracking.evaluate_predictions(served, "label", "prediction", "test_predictions",
                                      tuple(classes), model_id=model_id,
                                      metric_prefix=MLFLOW_EVALUATION_PREFIX)


def run_train_classifier(cfg: ClassifierConfig, resume_run_id: str = "", run_id: str = "",
                         parent_run_id: str = "") -> str:
    """Train one setting/seed as an MLflow run (a new one, or the claimed `run_id`), or continue
    the unfinished run `resume_run_id` from its checkpoint; return the run id."""
    return execute(ClassifierStage(cfg), resume_run_id, run_id, parent_run_id)
