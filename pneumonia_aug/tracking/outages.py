"""Tracking outages, and what the outbox (`tracking/outbox.py`) needs to wait one out.

Is an error an outage (`is_outage`), is the server back (`reachable`), does it answer at all
before a run starts (`ensure_reachable`), one try per request while the caller does the
waiting (`single_try`); then what the outbox sends once it is back: metric rows and files into
a run by id (a row sent twice is stored once), and the steps already stored (`metric_steps`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.errors import TrackingError


def tracking_uri() -> str:
    """Where runs go now (what another process must be pointed at to log to the same place)."""
    return mlflow.get_tracking_uri()


def now_ms() -> int:
    return int(time.time() * 1000)


def is_outage(exc: BaseException) -> bool:
    """True for a failure that waiting can cure: no connection, a timeout, or a 5xx/429 answer
    (a server whose database or artifact store is away answers 500 or 503)."""
    import requests

    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() >= 500 or exc.get_http_status_code() == 429
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError))


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


def reachable(timeout: float) -> bool:
    """Does the tracking server answer `/health` within `timeout` s (no retries)? A local store
    (sqlite, files) always does."""
    from pneumonia_aug.reachability import check_tracking_server

    try:
        check_tracking_server(mlflow.get_tracking_uri(), timeout=timeout)
    except TrackingError:
        return False
    return True


def ensure_reachable(experiment_name: str | None = None, timeout: float = 5.0) -> None:
    """Fail in seconds, with a clear message, when the tracking server does not answer or,
    for an experiment whose artifacts this client writes to S3 itself (`s3://` location), when
    the bucket is missing or the key is wrong (MLflow's own client would retry for minutes)."""
    from pneumonia_aug.reachability import check_s3, check_tracking_server

    check_tracking_server(mlflow.get_tracking_uri(), timeout=timeout)
    experiment = MlflowClient().get_experiment_by_name(experiment_name) if experiment_name else None
    location = experiment.artifact_location if experiment else ""
    if location.startswith("s3://"):
        env = os.environ.get
        check_s3(env("MLFLOW_S3_ENDPOINT_URL") or None, env("AWS_ACCESS_KEY_ID") or None,
                 env("AWS_SECRET_ACCESS_KEY") or None, location[5:].split("/")[0])


# ---- what the outbox sends, into a run by id ----------------------------------------------

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


def metric_steps(run_id: str) -> dict[str, set[int]]:
    """The steps each metric of the run has been logged at."""
    client = MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {key: {m.step for m in client.get_metric_history(run_id, key)} for key in keys}
