"""MLflow's own evaluation of a classifier from its stored predictions, into the active run."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from pneumonia_aug.errors import TrackingError
from pneumonia_aug.tracking.failures import first_line


def evaluate_predictions(frame: pd.DataFrame, target: str, prediction: str, name: str,
                         classes: tuple[str, str], model_id: str | None = None,
                         metric_prefix: str = "") -> dict:
    """`mlflow.models.evaluate` as a binary classifier (`classes`: negative, positive) on a
    static frame of labels `target` and predicted labels `prediction`, logged as the dataset
    `name`: MLflow's classifier metrics (`metric_prefix` before their names) and confusion
    matrix, linked to the model `model_id`. No model is called. Returns the metrics."""
    dataset = mlflow.data.from_pandas(frame, targets=target, predictions=prediction, name=name)
    try:
        result = mlflow.models.evaluate(
            data=dataset, model_type="classifier", evaluators="default", model_id=model_id,
            evaluator_config={"pos_label": classes[1], "label_list": list(classes),
                              "log_model_explainability": False,
                              "metric_prefix": metric_prefix})
    except MlflowException as exc:
        raise TrackingError(f"MLflow's evaluation of {name} failed: {first_line(exc)}") from exc
    return dict(result.metrics)
