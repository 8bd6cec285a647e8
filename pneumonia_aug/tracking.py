"""The one module that talks to MLflow: a thin, generic adapter.

Runs, params, metrics, artifacts, datasets, registry primitives, reachability and resume.
It knows no stage and no model: what to log and what the names mean is decided above it
(`contract`, `stages/`, `serving/`). MLflow's exceptions are turned into `TrackingError` here,
so no other module imports `mlflow` (except the pyfunc classes, which subclass MLflow's).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.contract import CONFIG_ARTIFACT, MANIFESTS_DIR
from pneumonia_aug.errors import TrackingError

log = logging.getLogger(__name__)


def _first_line(exc: MlflowException) -> str:
    return exc.message.splitlines()[0] if exc.message else str(exc)


# ---- runs ---------------------------------------------------------------------------------

def _guarded(run) -> Iterator:
    """Yield the run; Ctrl-C (and SIGTERM, which the stages turn into it) ends it KILLED."""
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise


# The run that runs started with none active nest under: a study's run, for its stages that
# run in other processes (a local stage process, a Ray task), where it is not the active run.
_nest_under: contextvars.ContextVar[str] = contextvars.ContextVar("nest_under", default="")


@contextlib.contextmanager
def nested_under(run_id: str) -> Iterator[None]:
    """Runs started inside (with no run active) are nested under `run_id`."""
    token = _nest_under.set(run_id)
    try:
        yield
    finally:
        _nest_under.reset(token)


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
    parent_run_id = parent_run_id or ("" if nested else _nest_under.get())
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
        yield from _guarded(run)


@contextlib.contextmanager
def resume_run(run_id: str) -> Iterator[mlflow.ActiveRun]:
    """Reopen an unfinished run (its status goes back to RUNNING) to log into it again; like
    `start_run`, an exception marks it FAILED and Ctrl-C KILLED."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched and launched != run_id:
        raise TrackingError(f"cannot resume run {run_id} inside the new run {launched} that "
                            f"`mlflow run` made: run `pneumonia-aug ... --resume {run_id}` "
                            f"directly, or `mlflow run --run-id {run_id} ...`")
    with mlflow.start_run(run_id=run_id) as run:
        yield from _guarded(run)


def tracking_uri() -> str:
    """Where runs go now (what another process must be pointed at to log to the same place)."""
    return mlflow.get_tracking_uri()


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def active_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


def experiment_id(experiment_name: str) -> str | None:
    experiment = MlflowClient().get_experiment_by_name(experiment_name)
    return experiment.experiment_id if experiment else None


def target_experiment_id(experiment_name: str) -> str | None:
    """The experiment a run opened now would go to (under `mlflow run`: the one it chose), or
    None when it does not exist yet."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched and mlflow.active_run() is None:
        return run_info(launched).info.experiment_id
    return experiment_id(experiment_name)


def run_info(run_id: str):
    """The MLflow run (info, data.params, data.tags, data.metrics); TrackingError if unknown."""
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(f"run {run_id} not found: {_first_line(exc)} (is "
                            "MLFLOW_TRACKING_URI the store the run was logged to?)") from exc


def run_tags(run_id: str) -> dict:
    return run_info(run_id).data.tags


def search_runs(experiment_ids: list[str], query: str, newest_first: bool = False,
                max_results: int | None = None) -> list:
    """Every run matching the filter string (all pages), or the first `max_results`."""
    client, runs, token = MlflowClient(), [], None
    order = ["attributes.start_time DESC"] if newest_first else None
    while True:
        page = client.search_runs(experiment_ids, query, order_by=order,
                                  max_results=max_results or 1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token or (max_results and len(runs) >= max_results):
            return runs[:max_results] if max_results else runs


def latest_finished_run(experiment_id: str, tags: dict) -> str | None:
    """The newest FINISHED run in the experiment whose tags all match, or None."""
    clauses = [f"tags.{k} = '{v}'" for k, v in tags.items()]
    clauses.append("attributes.status = 'FINISHED'")
    runs = search_runs([experiment_id], " and ".join(clauses), newest_first=True, max_results=1)
    return runs[0].info.run_id if runs else None


def normalize_param(value) -> str:
    """MLflow returns params as strings: compare `2`, `2.0` and `"2"` as the same value."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(int(number)) if number.is_integer() else repr(number)


def tag_run(run_id: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def metric_steps(run_id: str) -> dict[str, set[int]]:
    """The steps each metric of the run has been logged at."""
    client = MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {key: {m.step for m in client.get_metric_history(run_id, key)} for key in keys}


# ---- logging into the active run ----------------------------------------------------------

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


def log_metrics(metrics: dict, step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


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
    mlflow.log_input(dataset, context=name, tags={"source_uri": str(source)})
    log_table(frame, f"{MANIFESTS_DIR}/{name}.csv")
    return digest


# ---- reading artifacts --------------------------------------------------------------------

def download_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    try:
        return Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))
    except MlflowException as exc:
        raise TrackingError(f"cannot download {artifact_path} of run {run_id}: "
                            f"{_first_line(exc)}") from exc


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


# ---- models and the registry --------------------------------------------------------------

def log_pyfunc_model(name: str, python_model: str | Path, artifacts: dict[str, str],
                     code_paths: list[str], inputs: list[tuple], outputs: list[tuple],
                     input_example: pd.DataFrame, registered_name: str,
                     metadata: dict | None = None, pip_requirements: list[str] | None = None):
    """Log a pyfunc "from code" and register it; returns MLflow's ModelInfo.

    `inputs`/`outputs` are the signature's columns as (type, name) or (type, name, required).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    def schema(columns):
        return Schema([ColSpec(c[0], c[1], required=c[2] if len(c) > 2 else True)
                       for c in columns])

    return mlflow.pyfunc.log_model(
        name=name, python_model=str(python_model), artifacts=artifacts, code_paths=code_paths,
        signature=ModelSignature(inputs=schema(inputs), outputs=schema(outputs)),
        input_example=input_example, registered_model_name=registered_name, metadata=metadata,
        pip_requirements=pip_requirements)


def load_python_model(model_uri: str):
    """A registered model's Python object, with a clear error when it cannot be loaded."""
    try:
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as exc:
        raise TrackingError(f"cannot load {model_uri}: {_first_line(exc)}. "
                            "See the versions in the UI (Models tab) or train one first.") from exc


def model_versions(name: str) -> list:
    """Every version of a registered model (version, tags, run_id, ...)."""
    return MlflowClient().search_model_versions(f"name='{name}'")


def tag_version(name: str, version: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def model_version_of(model_uri: str) -> tuple[str, str]:
    """(version, source run id) behind `models:/NAME@alias` or `models:/NAME/version`."""
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    try:
        if ref:
            version = client.get_model_version_by_alias(name, ref)
        else:
            name, _, number = model_uri.removeprefix("models:/").partition("/")
            version = client.get_model_version(name, number)
    except MlflowException as exc:
        raise TrackingError(f"no registered model at {model_uri}: train it first "
                            f"({_first_line(exc)})") from exc
    return str(version.version), version.run_id or ""


# ---- reachability -------------------------------------------------------------------------

def ensure_reachable(experiment_name: str | None = None, timeout: float = 5.0) -> None:
    """Fail in seconds, with a clear message, when the tracking server does not answer or,
    for an experiment whose artifacts this client writes to S3 itself (`s3://` location), when
    the bucket is missing or the key is wrong (MLflow's own client would retry for minutes)."""
    from pneumonia_aug.services.checks import check_s3, check_tracking_server

    check_tracking_server(mlflow.get_tracking_uri(), timeout=timeout)
    experiment = MlflowClient().get_experiment_by_name(experiment_name) if experiment_name else None
    location = experiment.artifact_location if experiment else ""
    if location.startswith("s3://"):
        env = os.environ.get
        check_s3(env("MLFLOW_S3_ENDPOINT_URL") or None, env("AWS_ACCESS_KEY_ID") or None,
                 env("AWS_SECRET_ACCESS_KEY") or None, location[5:].split("/")[0])
