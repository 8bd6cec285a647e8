"""The one module that talks to MLflow: runs, params, metrics, inputs, artifacts, registry.

Names that are the contract between stages (registered models, artifact paths, tags) are
defined here once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

log = logging.getLogger(__name__)

# Registered model names (the contract with downstream users; README documents them).
CLASSIFIER_MODEL = "pneumonia-chexnet"
# Artifact paths inside a classifier run.
MANIFESTS_DIR = "manifests"
PLOTS_DIR = "plots"
PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"
CONFIG_ARTIFACT = "config.json"
SKIPPED_ARTIFACT = "data/skipped_files.json"
PACKAGE_DIR = Path(__file__).resolve().parent


def git_commit() -> str:
    """The commit of the code that runs (`git rev-parse HEAD`), or "unknown" outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextlib.contextmanager
def start_run(experiment_name: str, run_name: str | None = None, tags: dict | None = None,
              parent_run_id: str = "") -> Iterator[mlflow.ActiveRun]:
    """Start a run (or, under `mlflow run`, continue the run it made).

    Inside another active run the new run is nested under it; `parent_run_id` nests it under
    that run instead. An exception marks the run FAILED and keeps everything logged so far;
    Ctrl-C marks it KILLED.
    """
    nested = mlflow.active_run() is not None
    launched_by_project = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested
    if not launched_by_project:
        mlflow.set_experiment(experiment_name)
    parent = None if launched_by_project else (parent_run_id or None)
    with mlflow.start_run(run_name=run_name, nested=nested, parent_run_id=parent) as run:
        if launched_by_project:
            actual = mlflow.get_experiment(run.info.experiment_id).name
            if actual != experiment_name:
                log.warning("this run lives in experiment %r (chosen by `mlflow run`), not %r; "
                            "pass `--experiment-name %s` to `mlflow run` to put it there",
                            actual, experiment_name, experiment_name)
            if run_name:
                mlflow.set_tag("mlflow.runName", run_name)
            if parent_run_id:
                mlflow.set_tag("mlflow.parentRunId", parent_run_id)
        if tags:
            set_tags(tags)
        try:
            yield run
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise


def run_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


def log_params(params: dict) -> None:
    """Log params, leaving alone any that `mlflow run` already logged (MLflow forbids changing
    a param; the user's spelling stays, the resolved config is in config.json)."""
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params
    new = {k: str(v) for k, v in params.items() if k not in existing}
    if new:
        mlflow.log_params(new)
    mlflow.log_dict(params, CONFIG_ARTIFACT)


def set_tags(tags: dict) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_metrics(metrics: dict, step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def manifest_digest(manifest: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for relpath, sha in sorted(zip(manifest["relpath"], manifest["sha256"])):
        digest.update(f"{relpath}:{sha}\n".encode())
    return digest.hexdigest()[:16]


def log_manifest(manifest: pd.DataFrame, name: str, source: str) -> str:
    """Log a subset's manifest as a dataset input (context = `name`) and as a CSV artifact."""
    columns = [c for c in manifest.columns if c != "path"]
    frame = manifest[columns].reset_index(drop=True)
    digest = manifest_digest(manifest)
    with warnings.catch_warnings():
        # A local path matches two equivalent MLflow source types; it picks one and warns.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest)
    mlflow.log_input(dataset, context=name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), MANIFESTS_DIR)
    return digest


def log_figure(fig, artifact_file: str) -> None:
    mlflow.log_figure(fig, artifact_file)


def log_dict(data, artifact_file: str) -> None:
    mlflow.log_dict(data, artifact_file)


def log_table(frame: pd.DataFrame, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent))


def log_artifact(path: str | Path, artifact_dir: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_dir)


def classifier_signature() -> ModelSignature:
    from pneumonia_aug.serving.pyfunc import IMAGE_COLUMN

    return ModelSignature(
        inputs=Schema([ColSpec("string", IMAGE_COLUMN)]),
        outputs=Schema([ColSpec("double", "probability"), ColSpec("string", "label")]),
    )


def log_classifier_model(state_dict: dict, config: dict, example_images: list[str | Path],
                         metadata: dict | None = None):
    """Log the classifier as a pyfunc (models from code) and register it.

    Returns MLflow's `ModelInfo` (`registered_model_version` holds the new version).
    """
    import torch

    from pneumonia_aug.serving import pyfunc

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save(state_dict, weights)
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        example = pd.DataFrame({pyfunc.IMAGE_COLUMN: [pyfunc.encode_image_file(p)
                                                      for p in example_images]})
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PACKAGE_DIR / "serving" / "mlflow_chexnet.py"),
            artifacts={pyfunc.WEIGHTS_ARTIFACT: str(weights),
                       pyfunc.CONFIG_ARTIFACT: str(config_path)},
            code_paths=[str(PACKAGE_DIR)],
            signature=classifier_signature(),
            input_example=example,
            registered_model_name=CLASSIFIER_MODEL,
            metadata=metadata,
            pip_requirements=_pip_requirements(),
        )


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in
            ("mlflow", "torch", "torchvision", "numpy", "pandas", "pillow", "scikit-learn")]


def load_model(model_uri: str):
    return mlflow.pyfunc.load_model(model_uri)


# --- finding upstream runs -------------------------------------------------------------

GENERATED_DIR = "generated"  # artifact folder of a generate run: the PNGs


def latest_finished_run(experiment_id: str, tags: dict) -> str | None:
    """The newest FINISHED run in the experiment whose tags all match, or None."""
    clauses = [f"tags.{k} = '{v}'" for k, v in tags.items()]
    clauses.append("attributes.status = 'FINISHED'")
    runs = MlflowClient().search_runs([experiment_id], " and ".join(clauses),
                                      order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def run_tags(run_id: str) -> dict:
    return MlflowClient().get_run(run_id).data.tags


def download_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                    dst_path=str(dst)))


# --- querying classifier runs for the comparison ------------------------------------------

RUN_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "auroc")


def experiment_id(experiment_name: str) -> str | None:
    experiment = MlflowClient().get_experiment_by_name(experiment_name)
    return experiment.experiment_id if experiment else None


def classifier_runs(experiment_ids: list[str], study_run_id: str = "") -> pd.DataFrame:
    """One row per classifier run: run_id, setting, seed, status, test_* metrics."""
    query = "tags.stage = 'train_classifier'"
    if study_run_id:
        query += f" and tags.study_run_id = '{study_run_id}'"
    rows = []
    for run in _search_all(experiment_ids, query):
        metrics = run.data.metrics
        rows.append({"run_id": run.info.run_id, "setting": run.data.tags.get("setting", ""),
                     "seed": int(run.data.tags.get("seed", -1)), "status": run.info.status,
                     **{f"test_{m}": metrics.get(f"test_{m}", float("nan")) for m in RUN_METRICS}})
    columns = ["run_id", "setting", "seed", "status", *(f"test_{m}" for m in RUN_METRICS)]
    return pd.DataFrame(rows, columns=columns)


def _search_all(experiment_ids: list[str], query: str) -> list:
    client, runs, token = MlflowClient(), [], None
    while True:
        page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_predictions(run_id: str) -> pd.DataFrame | None:
    """A classifier run's per-image test predictions, or None when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=PREDICTIONS_ARTIFACT, dst_path=tmp)
        except (MlflowException, OSError):
            return None
        return pd.read_csv(path)
