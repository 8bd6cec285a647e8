"""A run's life: start one (or continue the one `mlflow run` or a study's claim made, named by
its id), resume one, and end it FAILED or KILLED with its reason recorded when the code inside
raises."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.contract import TAG_FAILURE_REASON
from pneumonia_aug.errors import TrackingError, TrackingOutageError
from pneumonia_aug.tracking.active_run import set_tags
from pneumonia_aug.tracking.failures import failure_line
from pneumonia_aug.tracking.outages import single_try
from pneumonia_aug.tracking.records import (
    add_to_description,
    run_tags,
    tag_run,
    use_experiment,
)
from pneumonia_aug.tracking.ui import (
    DESCRIPTION_TAG,
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    PARENT_TAG,
)

log = logging.getLogger(__name__)


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


def _mark_model_training(experiment_id: str) -> None:
    """Set the experiment's kind to model training (the UI's training views), unless someone
    already chose a kind for it."""
    client = MlflowClient()
    if EXPERIMENT_KIND_TAG in client.get_experiment(experiment_id).tags:
        return
    try:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    except MlflowException:
        # Another process set it between the look and the write (a SQL store refuses the
        # second insert of the same tag): fine if the tag is there now.
        if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
            raise


@contextlib.contextmanager
def start_run(experiment_name: str, run_name: str | None = None, tags: dict | None = None,
              parent_run_id: str = "", description: str = "", system_metrics: bool = False,
              run_id: str = "") -> Iterator[mlflow.ActiveRun]:
    """Start a run (or, under `mlflow run`, continue the run it made) in an experiment of the
    model-training kind, with `description` as what the UI shows of it.

    `run_id` continues that existing run instead (one a study claimed for this stage: it
    already has its experiment and parent). Inside another active run the new run is nested
    under it; `parent_run_id` nests it under that run instead. An exception marks the run
    FAILED with its `failure_reason` and keeps everything logged so far; Ctrl-C marks it
    KILLED. `system_metrics` turns on MLflow's system metrics (`system/*`); off, MLflow's own
    switch MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING decides.
    """
    nested = mlflow.active_run() is not None
    launched_by_project = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested and not run_id
    if not launched_by_project and not run_id:
        use_experiment(experiment_name)
    parent = None if launched_by_project or run_id else (parent_run_id or None)
    with mlflow.start_run(run_id=run_id or None, run_name=run_name, nested=nested,
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
