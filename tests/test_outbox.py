"""The outbox of a training run (`tracking.outbox.MetricLog`): what it logs while the tracking
server is away waits on disk and lands once it answers, exactly once; an outage past the limit
stops with a message that says how to resume.

The outage here is a tracking URI where nothing listens (the client sees what it sees when
the server dies), and "back" is the run's real store again; seconds, no server to start. The
same through a real server that is stopped and restarted: tests/test_reliability.py.
"""

from __future__ import annotations

import socket
import time

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pneumonia_aug import tracking
from pneumonia_aug.config import Reliability
from pneumonia_aug.errors import PneumoniaAugError, TrackingOutageError
from pneumonia_aug.tracking.outbox import MetricLog

LIMITS = Reliability(tracking_outage_s=60, tracking_probe_s=0.5)


@pytest.fixture
def run_id(tracking_uri) -> str:
    mlflow.set_experiment("outbox")
    return MlflowClient().create_run(mlflow.get_experiment_by_name("outbox").experiment_id
                                     ).info.run_id


def _dead_uri() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in MlflowClient().get_metric_history(run_id, key))


def test_metrics_and_grids_wait_and_land_once(run_id, tracking_uri, tmp_path):
    outbox = tmp_path / "outbox"
    log = MetricLog(run_id, outbox, limits=LIMITS)
    log({"loss": 0.5, "acc": 0.7}, step=1)  # the server is up: sent at once
    assert not (outbox / "metrics.jsonl").exists()

    mlflow.set_tracking_uri(_dead_uri())  # the server goes away
    log({"loss": 0.4, "acc": 0.8}, step=2)
    log.log_image(np.full((8, 8), 200, np.uint8), "samples/epoch_0002.png")
    assert not log.flush()
    assert len((outbox / "metrics.jsonl").read_text().splitlines()) == 2
    assert (outbox / "artifacts" / "samples" / "epoch_0002.png").is_file()

    mlflow.set_tracking_uri(tracking_uri)  # back
    log({"loss": 0.3, "acc": 0.9}, step=3)
    assert _history(run_id, "loss") == [(1, 0.5), (2, 0.4), (3, 0.3)]
    assert _history(run_id, "acc") == [(1, 0.7), (2, 0.8), (3, 0.9)]
    assert [a.path for a in MlflowClient().list_artifacts(run_id, "samples")] == \
        ["samples/epoch_0002.png"]
    assert not (outbox / "metrics.jsonl").exists() and not list(outbox.rglob("*.png"))


def test_a_batch_sent_twice_lands_once(run_id):
    """A send whose answer was lost is sent again: same timestamps, so nothing doubles."""
    rows = [{"key": "loss", "value": 0.5, "step": 1, "timestamp": tracking.now_ms()}]
    tracking.log_metric_rows(run_id, rows)
    tracking.log_metric_rows(run_id, rows)
    assert _history(run_id, "loss") == [(1, 0.5)]


def test_a_resumed_run_sends_what_waited_and_skips_what_it_has(run_id, tracking_uri, tmp_path):
    outbox = tmp_path / "outbox"
    MetricLog(run_id, outbox, limits=LIMITS)({"loss": 0.5}, step=1)
    mlflow.set_tracking_uri(_dead_uri())
    MetricLog(run_id, outbox, limits=LIMITS)({"loss": 0.4}, step=2)  # then the process stops

    mlflow.set_tracking_uri(tracking_uri)
    resumed = MetricLog(run_id, outbox, tracking.metric_steps(run_id), limits=LIMITS)
    assert resumed.flush()
    resumed({"loss": 0.4}, step=2)  # the checkpoint's last epoch, reported again
    resumed({"loss": 0.3}, step=3)
    assert _history(run_id, "loss") == [(1, 0.5), (2, 0.4), (3, 0.3)]


def test_an_outage_past_the_limit_stops_with_a_resume_hint(run_id, tmp_path):
    log = MetricLog(run_id, tmp_path / "outbox",
                    limits=Reliability(tracking_outage_s=0.3, tracking_probe_s=0.2))
    mlflow.set_tracking_uri(_dead_uri())
    log({"loss": 0.5}, step=1)  # the outage starts: kept, training goes on
    time.sleep(0.4)
    with pytest.raises(TrackingOutageError, match=f"stopped after step 2.*--resume {run_id}"):
        log({"loss": 0.4}, step=2)
    assert len((tmp_path / "outbox" / "metrics.jsonl").read_text().splitlines()) == 2


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PNEUMONIA_AUG_TRACKING_OUTAGE_S", "90")
    assert Reliability.from_env().tracking_outage_s == 90
    assert Reliability().tracking_outage_s == 600  # the default: 10 minutes
    monkeypatch.setenv("PNEUMONIA_AUG_CLAIM_STALE_S", "soon")
    with pytest.raises(PneumoniaAugError, match="PNEUMONIA_AUG_CLAIM_STALE_S='soon'"):
        Reliability.from_env()
