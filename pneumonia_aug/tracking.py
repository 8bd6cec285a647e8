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
def start_run(experiment_name: str, run_name: str | None = None,
              tags: dict | None = None, nested: bool = False) -> Iterator[mlflow.ActiveRun]:
    """Start (or, under `mlflow run`, continue) a run. An exception marks it FAILED and keeps
    everything logged so far; Ctrl-C marks it KILLED."""
    launched_by_project = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested
    if not launched_by_project:
        mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name=run_name, nested=nested) as run:
        if launched_by_project:
            actual = mlflow.get_experiment(run.info.experiment_id).name
            if actual != experiment_name:
                log.warning("this run lives in experiment %r (chosen by `mlflow run`), not %r; "
                            "pass `--experiment-name %s` to `mlflow run` to put it there",
                            actual, experiment_name, experiment_name)
        if run_name and launched_by_project:
            mlflow.set_tag("mlflow.runName", run_name)
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
