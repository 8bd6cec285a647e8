"""Runs as records in the store, addressed by id (whether active or not): look one up, search,
create, tag, describe, nest, end and delete; the experiments they live in. `normalize_param`
compares params the way MLflow returns them (as strings)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.errors import TrackingError
from pneumonia_aug.tracking.failures import first_line
from pneumonia_aug.tracking.ui import (
    DESCRIPTION_TAG,
    PARENT_TAG,
    TAG_VALUE_LIMIT,
    run_page,
    ui_address,
)

# ---- experiments --------------------------------------------------------------------------

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


# ---- reading runs -------------------------------------------------------------------------

@contextmanager
def reading_store(uri: str) -> Iterator[None]:
    """Point this process's MLflow client at the store `uri` for a while (to read another)."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def run_info(run_id: str):
    """The MLflow run (info, data.params, data.tags, data.metrics); TrackingError if unknown."""
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(f"run {run_id} not found: {first_line(exc)} (is "
                            "MLFLOW_TRACKING_URI the store the run was logged to?)") from exc


def run_address(run_id: str) -> str:
    """The run's page in the UI, in full: on the tracking server for an http(s) store, else
    where `mlflow ui` serves this store by default."""
    run = run_info(run_id)
    return ui_address(mlflow.get_tracking_uri(), run_page(run.info.experiment_id, run_id))


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


def input_digest(run_id: str, name: str) -> str:
    """The digest of the run's dataset input named `name` (what `log_manifest` logged), or ""
    when it has none."""
    for dataset_input in run_info(run_id).inputs.dataset_inputs:
        if dataset_input.dataset.name == name:
            return dataset_input.dataset.digest
    return ""


def metric_history(run_id: str, key: str) -> list:
    """Every logged value of one metric (step, value, timestamp in ms), in logging order."""
    return MlflowClient().get_metric_history(run_id, key)


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


# ---- writing runs -------------------------------------------------------------------------

def tag_run(run_id: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def delete_tags(run_id: str, keys) -> None:
    """Remove those of these tags that the run has; a deleted run is left as it is."""
    client = MlflowClient()
    run = client.get_run(run_id)
    if run.info.lifecycle_stage == "deleted":
        return
    for key in keys:
        if key in run.data.tags:
            client.delete_tag(run_id, key)


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
