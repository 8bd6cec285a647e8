"""Reading a run's artifacts back: download a file or folder, or read one as text, a dict or
a frame (None where the run has none); copy files from one run to another."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from pneumonia_aug.errors import TrackingError
from pneumonia_aug.tracking.failures import first_line
from pneumonia_aug.tracking.outages import upload_artifact


def download_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    try:
        return Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))
    except MlflowException as exc:
        raise TrackingError(f"cannot download {artifact_path} of run {run_id}: "
                            f"{first_line(exc)}") from exc


def read_text_artifact(run_id: str, artifact_path: str) -> str:
    return mlflow.artifacts.load_text(f"runs:/{run_id}/{artifact_path}")


def read_dict_artifact(run_id: str, artifact_path: str) -> dict | None:
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_path}")
    except (MlflowException, OSError):
        return None


def read_csv_artifact(run_id: str, artifact_path: str) -> pd.DataFrame | None:
    """A CSV artifact as a frame, or None when the run has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact_path, dst_path=tmp)
        except (MlflowException, OSError):
            return None
        return pd.read_csv(path)


def copy_artifacts(from_run: str, to_run: str, artifact_paths, local_dir: Path) -> dict:
    """Copy these files of run `from_run` to the same paths in run `to_run`, through
    `local_dir`, where they stay for the caller to read: artifact path -> local file."""
    copies = {}
    for artifact_path in artifact_paths:
        copies[artifact_path] = download_artifacts(from_run, artifact_path, local_dir)
        folder = str(Path(artifact_path).parent)
        upload_artifact(to_run, copies[artifact_path], None if folder == "." else folder)
    return copies
