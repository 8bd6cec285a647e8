"""What a classifier run logs once it has trained (`ClassifierStage.log_results`), in order:
the model registered, its measures linked to it, the tables and plots, the model card, the
champion decision, and the result in the run's description.

Each value is logged once, as one metric at one step: test measures at 0.5 (`test/*`, what
Table 1 reads), at the served threshold (`test_op/*`) and what validation chose (`model/*`),
linked to the model so the UI's model views rank versions by them. Counts are no measures:
the confusion cells at both thresholds are one table (`predictions/confusion.csv`), the recall
per subtype with its n and Wilson interval another (`predictions/test_subgroups.csv`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.contract import (
    CHOSEN_EPOCH,
    CHOSEN_TEMPERATURE,
    CHOSEN_THRESHOLD,
    CHOSEN_VAL_LOSS,
    CLASSIFIER_MODEL,
    CONFUSION_ARTIFACT,
    PLOTS_DIR,
    PREDICTIONS_ARTIFACT,
    SUBGROUPS_ARTIFACT,
    TAG_CHAMPION_VERSION,
    TAG_MODEL_VERSION,
    TAG_SEED,
    TAG_SETTING,
    TEST,
    TEST_OP,
    TEST_OP_RECALL,
    THRESHOLD,
    TRAIN_SECONDS,
    metric,
)
from pneumonia_aug.data.dataset import ClassifierData
from pneumonia_aug.evaluation import plots
from pneumonia_aug.evaluation.bedside import Bedside, assess
from pneumonia_aug.evaluation.metrics import CELLS
from pneumonia_aug.serving import champion, packaging, registry
from pneumonia_aug.stages import describe
from pneumonia_aug.stages.model_card import CARD_ARTIFACT, model_card
from pneumonia_aug.training.classifier import ClassifierResult

log = logging.getLogger(__name__)


@dataclass
class Measures:
    """The run's measures under their logged names: on test (at 0.5 and at the threshold)
    and what validation chose."""

    test: dict  # `test/*` and `test_op/*`
    chosen: dict  # `model/threshold`, `model/temperature`

    @property
    def all(self) -> dict:
        return self.test | self.chosen


def measure(result: ClassifierResult, bedside: Bedside) -> Measures:
    found = dict(bedside.metrics)
    chosen = {k: found.pop(k) for k in (CHOSEN_THRESHOLD, CHOSEN_TEMPERATURE)}
    at_half = {metric(TEST, k): v for k, v in result.test_metrics.items() if k not in CELLS}
    return Measures(at_half | found, chosen)


def register(cfg: ClassifierConfig, data: ClassifierData, result: ClassifierResult,
             bedside: Bedside, measures: Measures, metric_log):
    """Log and register the model (temperature and threshold inside); MLflow's ModelInfo."""
    test = data.test.manifest
    examples = [test.loc[test["label"] == label, "path"].iloc[0]
                for label in ("NORMAL", "PNEUMONIA")]
    try:
        return packaging.log_classifier_model(
            result.model.state_dict(), cfg.to_dict(), examples,
            metadata={"best_val_loss": result.best_val_loss, "setting": cfg.setting},
            description=tracking.run_description(tracking.active_run_id()),
            threshold=bedside.threshold, temperature=bedside.temperature)
    except Exception:
        metric_log(measures.all, step=0)  # the run keeps its results without a model
        raise


def log_measures(model_id: str, result: ClassifierResult, measures: Measures,
                 metric_log) -> None:
    """Straight to MLflow, not through `metric_log`: even a resumed run whose first try
    logged them has a new model to link them to."""
    tracking.log_metrics(measures.test, step=0, model_id=model_id, dataset="test")
    tracking.log_metrics({CHOSEN_VAL_LOSS: result.best_val_loss} | measures.chosen, step=0,
                         model_id=model_id, dataset="val")
    metric_log({CHOSEN_EPOCH: result.best_epoch, TRAIN_SECONDS: result.seconds}, step=0)


def log_tables(data: ClassifierData, result: ClassifierResult, bedside: Bedside) -> None:
    """Per-image predictions, the confusion cells at both thresholds, recall per subtype."""
    test = data.test.manifest
    tracking.log_table(pd.DataFrame({
        "relpath": test["relpath"], "sha256": test["sha256"], "subtype": test["subtype"],
        "y_true": data.test.labels.astype(int), "probability": result.test_probs,
        "probability_calibrated": bedside.test_probs_calibrated}), PREDICTIONS_ARTIFACT)
    tracking.log_table(pd.DataFrame([
        {"at": "0.5 (Table 1)", "threshold": THRESHOLD, "temperature": 1.0,
         **{k: result.test_metrics[k] for k in CELLS}},
        {"at": "served", "threshold": bedside.threshold, "temperature": bedside.temperature,
         **bedside.counts}]), CONFUSION_ARTIFACT)
    tracking.log_table(bedside.subgroups, SUBGROUPS_ARTIFACT)


def log_plots(data: ClassifierData, result: ClassifierResult, bedside: Bedside) -> None:
    labels = data.test.labels
    tracking.log_figure(plots.learning_curves(result.history, result.best_epoch),
                        f"{PLOTS_DIR}/learning_curves.png")
    tracking.log_figure(plots.confusion_matrix_figure(
        result.test_metrics, f"Test confusion matrix at {THRESHOLD}"),
        f"{PLOTS_DIR}/confusion_matrix.png")
    tracking.log_figure(plots.confusion_matrix_figure(
        bedside.counts, f"Test, as served (threshold {bedside.threshold:.3f})"),
        f"{PLOTS_DIR}/confusion_matrix_served.png")
    tracking.log_figure(plots.roc_figure(labels, result.test_probs,
                                         result.test_metrics["auroc"]), f"{PLOTS_DIR}/roc.png")
    tracking.log_figure(plots.reliability_figure(labels, {
        "uncalibrated": result.test_probs,
        f"temperature {bedside.temperature:.2f}": bedside.test_probs_calibrated}),
        f"{PLOTS_DIR}/reliability.png")


def log_card(cfg: ClassifierConfig, data: ClassifierData, bedside: Bedside,
             measures: Measures, run_id: str, version: str) -> None:
    """The model card, as the run's `model_card.md` and in the version's description."""
    labels = data.test.labels.astype(int)
    subtypes = bedside.subgroups.drop_duplicates("subtype").set_index("subtype")["n"]
    card = model_card(cfg, measures.all, int(labels.sum()), int((labels == 0).sum()),
                      subtypes.astype(int).to_dict(), data.dataset_digest, run_id,
                      f"models:/{CLASSIFIER_MODEL}/{version}")
    tracking.log_text(card, CARD_ARTIFACT)
    tracking.describe_version(CLASSIFIER_MODEL, version, describe.classifier_version(
        cfg, data.dataset_digest, run_id, measures.all, CLASSIFIER_MODEL, version)
        + f"\n\n{card}")


def log_results(cfg: ClassifierConfig, data: ClassifierData, result: ClassifierResult,
                metric_log) -> None:
    """Everything a trained classifier run logs (module docstring)."""
    run_id = tracking.active_run_id()
    # Temperature and threshold from validation only; then measured on test.
    bedside = assess(result.val_logits, data.val.labels, result.test_logits,
                     data.test.labels, data.test.manifest["subtype"], cfg.threshold_rule)
    measures = measure(result, bedside)
    info = register(cfg, data, result, bedside, measures, metric_log)
    log_measures(info.model_id, result, measures, metric_log)
    log_tables(data, result, bedside)
    log_plots(data, result, bedside)
    version = str(info.registered_model_version)
    tracking.tag_version(CLASSIFIER_MODEL, version, {
        registry.VAL_LOSS_TAG: result.best_val_loss, TAG_SETTING: cfg.setting,
        TAG_SEED: cfg.seed, registry.IMAGE_SIZE_TAG: cfg.image_size,
        registry.DEBUG_CAP_TAG: cfg.max_images_per_split,
        registry.TEST_ACCURACY_TAG: result.test_metrics["accuracy"],
        registry.RUN_ID_TAG: run_id})
    log_card(cfg, data, bedside, measures, run_id, version)
    decision = champion.promote_champion(version)
    tracking.set_tags({TAG_MODEL_VERSION: version, TAG_CHAMPION_VERSION: decision.champion
                       or "none (no full-data version yet)"})
    tracking.add_to_description(run_id, describe.classifier_result(
        measures.test, result.best_epoch, CLASSIFIER_MODEL, version) + " "
        + describe.operating_point(measures.all, cfg.threshold_rule))
    log.info("run %s: at 0.5, test accuracy %.3f, recall %.3f, precision %.3f; model %s "
             "version %s", run_id, result.test_metrics["accuracy"],
             result.test_metrics["recall"], result.test_metrics["precision"], CLASSIFIER_MODEL,
             version)
    log.info("@champion: version %s %s: %s", version, decision.tags()["champion_decision"],
             decision.reason)
    log.info("served at threshold %.3f (temperature %.2f): test specificity %.3f (%.3f at "
             "0.5), recall %.3f", bedside.threshold, bedside.temperature,
             measures.test[metric(TEST_OP, "specificity")],
             result.test_metrics["specificity"], measures.test[TEST_OP_RECALL])

