"""The active run: its ids, and everything a stage logs into it (params, tags, metrics,
figures, images, dicts, text, tables, files, and its data subsets as dataset inputs)."""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.contract import CONFIG_ARTIFACT, MANIFESTS_DIR
from pneumonia_aug.errors import TrackingError
from pneumonia_aug.tracking.contention import retry_lost_race


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def current_run_id() -> str:
    """The active run's id, or "" when none is active."""
    run = mlflow.active_run()
    return run.info.run_id if run else ""


def active_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


def log_params(params: dict) -> None:
    """Log params, leaving alone any that `mlflow run` already logged (MLflow forbids changing
    a param; the user's spelling stays, the resolved config is in config.json)."""
    existing = MlflowClient().get_run(active_run_id()).data.params
    new = {k: str(v) for k, v in params.items() if k not in existing}
    if new:
        mlflow.log_params(new)
    mlflow.log_dict(params, CONFIG_ARTIFACT)


def set_tags(tags: dict) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_metrics(metrics: dict, step: int | None = None, model_id: str | None = None,
                dataset: str = "") -> None:
    """Log metrics to the active run; with `model_id` (and the name of one of the run's
    dataset inputs) they are also the logged model's metrics, on that dataset, which the UI's
    model views list and rank by."""
    extra = {"dataset": _run_dataset(dataset)} if dataset else {}
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step, model_id=model_id,
                       **extra)


def _run_dataset(name: str):
    for dataset_input in mlflow.get_run(active_run_id()).inputs.dataset_inputs:
        if dataset_input.dataset.name == name:
            return dataset_input.dataset
    raise TrackingError(f"run {active_run_id()} has no dataset input named {name!r}")


def log_figure(fig, artifact_file: str) -> None:
    mlflow.log_figure(fig, artifact_file)


def log_image(image, artifact_file: str) -> None:
    mlflow.log_image(image, artifact_file=artifact_file)


def log_dict(data, artifact_file: str) -> None:
    mlflow.log_dict(data, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_table(frame: pd.DataFrame, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent))


def log_artifact(path: str | Path, artifact_dir: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_dir)


def log_artifacts(folder: str | Path, artifact_dir: str) -> None:
    mlflow.log_artifacts(str(folder), artifact_dir)


def artifact_uri(artifact_path: str) -> str:
    return mlflow.get_artifact_uri(artifact_path)


# ---- datasets -----------------------------------------------------------------------------

def manifest_digest(manifest: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for relpath, sha in sorted(zip(manifest["relpath"], manifest["sha256"], strict=True)):
        digest.update(f"{relpath}:{sha}\n".encode())
    return digest.hexdigest()[:16]


def log_manifest(manifest: pd.DataFrame, name: str, source: str) -> str:
    """Log a subset's manifest as a dataset input (context = `name`) and as a CSV artifact.

    MLflow resolves `source` to a dataset source type; URIs it has no type for (`models:/`,
    `runs:/`, `mlflow-artifacts:/`) are kept in the input's `source_uri` tag instead.
    """
    frame = manifest[[c for c in manifest.columns if c != "path"]].reset_index(drop=True)
    digest = manifest_digest(manifest)
    with warnings.catch_warnings():
        # A local path matches two equivalent MLflow source types; it picks one and warns.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        try:
            dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest)
        except MlflowException:
            dataset = mlflow.data.from_pandas(frame, name=name, digest=digest)
    # Runs that start together log the same subset (a study's seeds, each with the same test
    # set): the store inserts its row once, and the others lose that race (`contention`).
    retry_lost_race(mlflow.log_input, dataset, context=name, tags={"source_uri": str(source)})
    log_table(frame, f"{MANIFESTS_DIR}/{name}.csv")
    return digest
