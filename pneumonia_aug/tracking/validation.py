"""Metric values checked against thresholds with MLflow's model validation
(`mlflow.validate_evaluation_results` with `MetricThreshold`s), on metrics already logged: no
new evaluation. Which metrics and which thresholds is decided above this layer."""

from __future__ import annotations

import logging

import mlflow
from mlflow.models import EvaluationResult, MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException

# MLflow logs two lines per check at INFO ("... against baseline"); the caller says the result.
logging.getLogger("mlflow.models.evaluation.validation").setLevel(logging.WARNING)


def metric_failures(metrics: dict[str, float | None],
                    minimums: dict[str, float]) -> dict[str, str]:
    """MLflow's message for each metric of `minimums` that `metrics` lacks (or has as None) or
    has below its minimum; empty when all pass."""
    given = {k: v for k, v in metrics.items() if v is not None}
    failures = {}
    for key, minimum in minimums.items():  # one at a time: MLflow joins its messages
        threshold = {key: MetricThreshold(threshold=float(minimum), greater_is_better=True)}
        try:
            mlflow.validate_evaluation_results(threshold, EvaluationResult(given, {}, run_id=""))
        except ModelValidationFailedException as exc:
            failures[key] = exc.message
    return failures
