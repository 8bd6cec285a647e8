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
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.contract import CONFIG_ARTIFACT, MANIFESTS_DIR, TAG_FAILURE_REASON
from pneumonia_aug.errors import PneumoniaAugError, TrackingError, TrackingOutageError

log = logging.getLogger(__name__)
DESCRIPTION_TAG = "mlflow.note.content"  # the UI's description of a run or a logged model
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# The UI's "Machine learning" kind (its training views), read from the experiment tag; the
# values are the UI's (mlflow/server/js: ExperimentKind.CUSTOM_MODEL_DEVELOPMENT).
MODEL_TRAINING_KIND = "custom_model_development"
TAG_VALUE_LIMIT = 8000  # MLflow's cap on a tag value


def _first_line(exc: MlflowException) -> str:
    return exc.message.splitlines()[0] if exc.message else str(exc)


# ---- runs ---------------------------------------------------------------------------------

def failure_line(exc: BaseException) -> str:
    """An exception as one line: a user error's message, else `Type: first line`."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, PneumoniaAugError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def record_failure(run_id: str, exc: BaseException) -> None:
    """Tag the run with why it failed (`failure_reason`) and add the line to its description.
    Never raises: recording a failure must not hide the failure itself."""
    line = failure_line(exc)[:1000]
    try:
        if run_tags(run_id).get(TAG_FAILURE_REASON) == line:
            return  # recorded already (by the run, before the CLI saw the error)
        tag_run(run_id, {TAG_FAILURE_REASON: line})
        add_to_description(run_id, f"**Failed:** {line}")
    except Exception as record_exc:  # noqa: BLE001 - the original error is what matters
        log.warning("could not record the failure of run %s: %s", run_id, record_exc)


def _guarded(run) -> Iterator:
    """Yield the run. An exception records its reason (`record_failure`), then marks the run
    FAILED; Ctrl-C (and SIGTERM, which the stages turn into it) ends it KILLED. After a
    tracking outage, one try to mark it FAILED; if the server is still away the run stays
    RUNNING there, and the outage error (not MLflow's) is what the user sees."""
    try:
        yield run
    except KeyboardInterrupt as exc:
        record_failure(run.info.run_id, exc)
        mlflow.end_run("KILLED")
        raise
    except TrackingOutageError:
        with single_try(), contextlib.suppress(Exception):
            mlflow.end_run("FAILED")
        raise
    except Exception as exc:
        record_failure(run.info.run_id, exc)
        raise


@contextlib.contextmanager
def single_try() -> Iterator[None]:
    """One try per MLflow request inside (MLflow reads the variable at each request), for
    callers that wait out failures themselves (the outbox), or after an outage has outlasted
    its limit, when another minute of MLflow's retries helps nobody."""
    name = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    saved = os.environ.get(name)
    os.environ[name] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name)
        else:
            os.environ[name] = saved


@dataclass
class _Adoption:
    run_id: str
    used: bool = False


_adoption: contextvars.ContextVar[_Adoption | None] = contextvars.ContextVar(
    "pneumonia_aug_adoption", default=None)


@contextlib.contextmanager
def adopting(run_id: str) -> Iterator[_Adoption]:
    """The next `start_run` in this thread continues the existing run `run_id` (made by a
    claim, `stages.reuse`) instead of creating one; `.used` says whether one did. If the block
    fails before any `start_run` took the run, the run is deleted: a claim nobody opened
    leaves nothing behind (not even in a stage process that was handed it)."""
    adoption = _Adoption(run_id)
    token = _adoption.set(adoption)
    try:
        yield adoption
    except BaseException:
        if not adoption.used:
            delete_run(run_id)
        raise
    finally:
        _adoption.reset(token)


def take_adoption() -> str | None:
    """The claimed run the next stage should continue, marked as taken (for an executor that
    runs the stage in another process and hands it the id: `adopting` there)."""
    adoption = _adoption.get()
    if adoption is None or adoption.used:
        return None
    adoption.used = True  # only the stage's own run: anything it nests is new
    return adoption.run_id



def _mark_model_training(experiment_id: str) -> None:
    """Set the experiment's kind to model training (the UI's training views), unless someone
    already chose a kind for it."""
    client = MlflowClient()
    if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)


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
              parent_run_id: str = "", description: str = "", system_metrics: bool = False
              ) -> Iterator[mlflow.ActiveRun]:
    """Start a run (or, under `mlflow run`, continue the run it made) in an experiment of the
    model-training kind, with `description` as what the UI shows of it.

    Inside another active run the new run is nested under it; `parent_run_id` nests it under
    that run instead. An exception marks the run FAILED with its `failure_reason` and keeps
    everything logged so far; Ctrl-C marks it KILLED. `system_metrics` turns on MLflow's
    system metrics (`system/*`); off, MLflow's own switch MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
    decides.
    """
    nested = mlflow.active_run() is not None
    adopted = take_adoption()
    launched_by_project = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested and not adopted
    if not launched_by_project:
        use_experiment(experiment_name)
    parent_run_id = parent_run_id or ("" if nested else _nest_under.get())
    parent = None if launched_by_project or adopted else (parent_run_id or None)
    with mlflow.start_run(run_id=adopted, run_name=run_name, nested=nested,
                          parent_run_id=parent,
                          log_system_metrics=_system_metrics(system_metrics)) as run:
        if launched_by_project:
            actual = mlflow.get_experiment(run.info.experiment_id).name
            if actual != experiment_name:
                log.warning("this run lives in experiment %r (chosen by `mlflow run`), not %r; "
                            "pass `--experiment-name %s` to `mlflow run` (or export "
                            "MLFLOW_EXPERIMENT_NAME=%s) to put it there",
                            actual, experiment_name, experiment_name, experiment_name)
            if run_name:
                mlflow.set_tag("mlflow.runName", run_name)
            if parent_run_id:
                mlflow.set_tag(PARENT_TAG, parent_run_id)
        _mark_model_training(run.info.experiment_id)
        if tags or description:
            set_tags({**(tags or {}), **({DESCRIPTION_TAG: description} if description else {})})
        yield from _guarded(run)


def _system_metrics(on: bool) -> bool | None:
    """`log_system_metrics` for `mlflow.start_run`: True when asked for, else None (MLflow then
    reads MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING)."""
    return True if on else None


@contextlib.contextmanager
def resume_run(run_id: str, system_metrics: bool = False) -> Iterator[mlflow.ActiveRun]:
    """Reopen an unfinished run (its status goes back to RUNNING) to log into it again; like
    `start_run`, an exception marks it FAILED and Ctrl-C KILLED."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched and launched != run_id:
        raise TrackingError(f"cannot resume run {run_id} inside the new run {launched} that "
                            f"`mlflow run` made: run `pneumonia-aug ... --resume {run_id}` "
                            f"directly, or `mlflow run --run-id {run_id} ...`")
    on = _system_metrics(system_metrics)
    with mlflow.start_run(run_id=run_id, log_system_metrics=on) as run:
        yield from _guarded(run)


def tracking_uri() -> str:
    """Where runs go now (what another process must be pointed at to log to the same place)."""
    return mlflow.get_tracking_uri()


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def current_run_id() -> str:
    """The active run's id, or "" when none is active."""
    run = mlflow.active_run()
    return run.info.run_id if run else ""


def active_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


def use_experiment(experiment_name: str) -> str:
    """Make the experiment (created if missing) the active one; its id.

    `mlflow.set_experiment` alone is not enough when another process creates the experiment
    at the same moment: it then returns the experiment without making it active, and the
    next run lands in the Default experiment. Setting it again by id always makes it active.
    """
    experiment = mlflow.set_experiment(experiment_name)
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return experiment.experiment_id


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


def create_run(experiment_name: str, tags: dict) -> tuple[str, int]:
    """A new RUNNING run with these tags, not made active; (run id, start time in ms)."""
    run = MlflowClient().create_run(use_experiment(experiment_name),
                                    tags={k: str(v) for k, v in tags.items()})
    return run.info.run_id, run.info.start_time


def delete_run(run_id: str) -> None:
    """Mark a run deleted (hidden from searches; `mlflow gc` removes it for good)."""
    MlflowClient().delete_run(run_id)


def terminate_run(run_id: str, status: str) -> None:
    MlflowClient().set_terminated(run_id, status)


def metric_steps(run_id: str) -> dict[str, set[int]]:
    """The steps each metric of the run has been logged at."""
    client = MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {key: {m.step for m in client.get_metric_history(run_id, key)} for key in keys}


# ---- outages ------------------------------------------------------------------------------

def is_outage(exc: BaseException) -> bool:
    """True for a failure that waiting can cure: no connection, a timeout, or a 5xx/429 answer
    (a server whose database or artifact store is away answers 500 or 503)."""
    import requests

    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() >= 500 or exc.get_http_status_code() == 429
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError))


def reachable(timeout: float) -> bool:
    """Does the tracking server answer `/health` within `timeout` s (no retries)? A local store
    (sqlite, files) always does."""
    from pneumonia_aug.services.checks import check_tracking_server

    try:
        check_tracking_server(mlflow.get_tracking_uri(), timeout=timeout)
    except TrackingError:
        return False
    return True


def log_metric_rows(run_id: str, rows: list[dict]) -> None:
    """Log rows {key, value, step, timestamp} into a run, the active one or not. Sending a row
    again is harmless: the store drops a metric whose key, value, step and timestamp it has."""
    from mlflow.entities import Metric

    client = MlflowClient()
    for start in range(0, len(rows), 1000):  # MLflow's limit per batch
        client.log_batch(run_id, metrics=[
            Metric(r["key"], r["value"], r["timestamp"], r["step"])
            for r in rows[start:start + 1000]])


def upload_artifact(run_id: str, path: str | Path, artifact_dir: str | None) -> None:
    MlflowClient().log_artifact(run_id, str(path), artifact_dir)




def now_ms() -> int:
    return int(time.time() * 1000)


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


def describe_run(run_id: str, text: str) -> None:
    """Set what the UI shows as the run's description (Markdown)."""
    tag_run(run_id, {DESCRIPTION_TAG: text[:TAG_VALUE_LIMIT]})


def run_description(run_id: str) -> str:
    return run_tags(run_id).get(DESCRIPTION_TAG, "")


def add_to_description(run_id: str, paragraph: str) -> None:
    """Append a paragraph to the run's description (the end is kept if it grows too long)."""
    note = run_description(run_id)
    note = f"{note}\n\n{paragraph}" if note else paragraph
    tag_run(run_id, {DESCRIPTION_TAG: note[-TAG_VALUE_LIMIT:]})


def set_parent(run_id: str, parent_run_id: str) -> None:
    """Nest a run under another one (what the UI's run list groups by)."""
    tag_run(run_id, {PARENT_TAG: parent_run_id})


def run_page(experiment_id: str, run_id: str) -> str:
    """The UI's address of a run, relative to the UI's root (a link in a description)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def model_version_page(name: str, version: str) -> str:
    return f"#/models/{name}/versions/{version}"


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
                     metadata: dict | None = None, params: dict | None = None,
                     description: str = "", pip_requirements: list[str] | None = None):
    """Log a pyfunc "from code" as the logged model `name` (with `params` and `description`)
    and register it; returns MLflow's ModelInfo (`.model_id`, `.registered_model_version`).

    `inputs`/`outputs` are the signature's columns as (type, name) or (type, name, required).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    def schema(columns):
        return Schema([ColSpec(c[0], c[1], required=c[2] if len(c) > 2 else True)
                       for c in columns])

    info = mlflow.pyfunc.log_model(
        name=name, python_model=str(python_model), artifacts=artifacts, code_paths=code_paths,
        signature=ModelSignature(inputs=schema(inputs), outputs=schema(outputs)),
        input_example=input_example, registered_model_name=registered_name, metadata=metadata,
        params={k: str(v) for k, v in (params or {}).items()}, pip_requirements=pip_requirements)
    if description:  # after registering: the version would copy the tag among its own
        MlflowClient().set_logged_model_tags(info.model_id, {DESCRIPTION_TAG: description})
    return info


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


def describe_registered_model(name: str, text: str) -> None:
    """Set the registered model's description (Markdown): what it is, its input and output,
    how to load it."""
    MlflowClient().update_registered_model(name, description=text)


def describe_version(name: str, version: str, text: str) -> None:
    MlflowClient().update_model_version(name, str(version), description=text)


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
