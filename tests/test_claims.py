"""Claims on a stage key (`study.reuse.claim_or_reuse`) on a local store, in seconds: a live
claim is waited for and reused, a dead one (owner gone, or heartbeat stale) is taken over, and
a stage that fails before opening its run leaves no run. Two processes racing through a real
server, and two whole studies at once: tests/test_reliability.py.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from pneumonia_aug import machine, tracking
from pneumonia_aug.config import Reliability
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.study.reuse import claim_or_reuse

FAST = Reliability(claim_poll_s=0.2, claim_heartbeat_s=0.2, claim_stale_s=60)
KEY, PARAMS = "key-1", {"n": 1}


STAGE_TAGS = {"stage": "train_classifier"}  # what every stage's run carries from its start


def _launch(calls: list):
    def launch(run_id: str) -> str:
        with tracking.start_run("claims", run_name="stage", tags=STAGE_TAGS,
                                run_id=run_id) as run:
            tracking.log_params(PARAMS)
            calls.append(run.info.run_id)
            return run.info.run_id
    return launch


def _rival(owner: str, heartbeat: float) -> str:
    """A RUNNING run holding KEY, as another study's claim would be."""
    run_id, _ = tracking.create_run("claims", {"reuse_key": KEY, "claim.owner": owner,
                                               "claim.heartbeat": heartbeat})
    return run_id


def _claim_tags(run_id: str) -> set[str]:
    return {k for k in MlflowClient().get_run(run_id).data.tags if k.startswith("claim.")}


def _runs(view=ViewType.ACTIVE_ONLY) -> list:
    experiment = mlflow.get_experiment_by_name("claims").experiment_id
    return MlflowClient().search_runs([experiment], f"tags.reuse_key = '{KEY}'",
                                      run_view_type=view)


def test_a_live_claim_is_waited_for_then_reused(tracking_uri):
    me = f"{socket.gethostname()}:{os.getpid()}:{machine.start_time(os.getpid())}"
    rival = _rival(me, time.time())  # alive: this very process

    def finish() -> None:
        # Only once our claim has lost (deleted, naming the rival) does the rival finish: the
        # claimant is then waiting, however slow its start.
        deadline = time.monotonic() + 120
        while not _runs(ViewType.DELETED_ONLY) and time.monotonic() < deadline:
            time.sleep(0.05)
        MlflowClient().log_param(rival, "n", 1)
        MlflowClient().set_terminated(rival, "FINISHED")

    threading.Thread(target=finish).start()
    calls = []
    claim = claim_or_reuse("claims", KEY, PARAMS, _launch(calls), limits=FAST)
    assert (claim.run_id, claim.launched, calls) == (rival, False, [])
    assert [r.info.run_id for r in _runs()] == [rival]
    (loser,) = _runs(ViewType.DELETED_ONLY)
    assert loser.data.tags["claim.duplicate_of"] == rival


@pytest.mark.parametrize("owner, age", [
    (f"{socket.gethostname()}:{os.getpid()}:1", 0),  # this host, the process is gone
    ("another-host:4242:99", 3600),  # another host, silent for an hour
], ids=["this-host-process-gone", "another-host-silent"])
def test_a_dead_claim_is_taken_over(tracking_uri, owner, age):
    dead = _rival(owner, time.time() - age)
    calls = []
    claim = claim_or_reuse("claims", KEY, PARAMS, _launch(calls), limits=FAST)
    assert claim.launched and calls == [claim.run_id]
    assert MlflowClient().get_run(dead).info.status == "KILLED"
    # Ended runs keep no claim: the winner's run once it finished, the dead one once killed.
    for run_id in (claim.run_id, dead):
        assert not _claim_tags(run_id), run_id
    assert MlflowClient().get_run(claim.run_id).data.tags["reuse_key"] == KEY
    assert sorted((r.info.status, r.info.run_id) for r in _runs()) == \
        [("FINISHED", claim.run_id), ("KILLED", dead)]
    again = claim_or_reuse("claims", KEY, PARAMS, _launch(calls), limits=FAST)
    assert (again.run_id, again.launched, len(calls)) == (claim.run_id, False, 1)


def test_a_claim_holds_while_its_run_lives_and_goes_when_it_fails(tracking_uri):
    seen = {}

    def launch(run_id: str) -> str:
        with tracking.start_run("claims", run_name="stage", tags=STAGE_TAGS,
                                run_id=run_id) as run:
            seen["live"] = _claim_tags(run.info.run_id)  # what another study looks at
            raise PneumoniaAugError("the stage failed")

    with pytest.raises(PneumoniaAugError, match="the stage failed"):
        claim_or_reuse("claims", KEY, PARAMS, launch, limits=FAST)
    assert seen["live"] == {"claim.owner", "claim.heartbeat"}
    (run,) = _runs()
    assert run.info.status == "FAILED" and not _claim_tags(run.info.run_id)
    assert run.data.tags["reuse_key"] == KEY


def test_a_stage_that_fails_before_its_run_leaves_no_run(tracking_uri):
    def launch(run_id: str) -> str:
        raise PneumoniaAugError("no generate run: run `generate` first")

    with pytest.raises(PneumoniaAugError, match="no generate run"):
        claim_or_reuse("claims", KEY, PARAMS, launch, limits=FAST)
    assert _runs() == []


def test_a_run_lands_in_its_experiment_when_another_process_creates_it(tracking_uri,
                                                                       monkeypatch):
    """The race that put one of two concurrent studies' runs in the Default experiment:
    MLflow's `set_experiment` looks the name up, finds nothing, and another process creates
    the experiment before this one can (replayed here: the lookup is made to miss once)."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    MlflowClient().create_experiment("raced")  # the other process's
    lookup = TrackingServiceClient.get_experiment_by_name
    misses = iter([True])

    def late_lookup(self, name):
        return None if next(misses, False) else lookup(self, name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", late_lookup)
    with tracking.start_run("raced", run_name="mine") as run:
        landed = run.info.experiment_id
    assert next(misses, "spent") == "spent"  # the race was replayed
    assert landed == mlflow.get_experiment_by_name("raced").experiment_id
