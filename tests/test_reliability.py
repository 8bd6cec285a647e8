"""Reliability against the real stack (PostgreSQL + SeaweedFS + `mlflow server`): training
rides out a server outage, an outage past the limit stops the run for `--resume`, and
concurrent studies share their stage runs (one run per key).

One stack for the module; the outage tests stop and restart its MLflow server. Measured on 2
cores: 4.5 min in all (stack 16 s; ride-out 71 s, limit and resume 86 s, two studies 51 s,
race 33 s, database outage under 12 s), many minutes when other work loads the machine.
Needs PostgreSQL 15, `weed` and the real data in ../shared/data/chest_xray; skipped without them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO
from pneumonia_aug import services
from pneumonia_aug.services import base, postgres, processes
from pneumonia_aug.services.mlflow_server import start_mlflow

pytestmark = [pytest.mark.services, pytest.mark.slow,
              pytest.mark.skipif(bool(services.missing_prerequisites()),
                                 reason=services.missing_prerequisites() or "-")]

PER_EPOCH = ("epoch/loss_train", "epoch/loss_val", "epoch/val_accuracy", "epoch/val_precision",
             "epoch/val_recall", "epoch/val_specificity", "epoch/val_f1", "epoch/val_auroc",
             "epoch/lr_scale")
GAN_PER_EPOCH = ("epoch/d_loss", "epoch/g_loss", "epoch/d_real", "epoch/d_fake")
# The server stays away this long, then restarts (10-30 s more): epochs end in the outage.
OUTAGE_S = 5
START_S = 300.0  # a server start takes 10-30 s, minutes on a machine loaded by other work


class Stack:
    """The module's stack, and a way to stop and restart its MLflow server alone."""

    def __init__(self, root: Path):
        self.root = root
        state, _ = services.up(root, port=processes.free_ports(1)[0], workers=1,
                               timeout=START_S)
        self.uri = self._mlflow(state)["address"]

    @staticmethod
    def _mlflow(state: dict) -> dict:
        return next(s for s in state["services"] if s["name"] == "mlflow")

    def stop_mlflow(self) -> None:
        processes.stop_group(self._mlflow(base.read_state(self.root))["pid"])

    def start_mlflow(self) -> None:
        state = base.read_state(self.root)
        by_name = {s["name"]: s for s in state["services"]}

        def record(service: dict) -> None:
            state["services"] = [service if s["name"] == "mlflow" else s
                                 for s in state["services"]]
            base.write_state(self.root, state)

        start_mlflow(self.root, base.resolve_credentials(self.root), by_name["postgres"]["port"],
                     by_name["seaweedfs"]["address"], by_name["mlflow"]["port"], False, 1,
                     START_S, record)


    def pg_ctl(self, action: str) -> None:
        """Stop PostgreSQL behind the server, or start it again on the same port."""
        pg = next(s for s in base.read_state(self.root)["services"] if s["name"] == "postgres")
        data = self.root / "postgres"
        args = ["-m", "fast", "stop"] if action == "stop" else [
            "-l", self.root / "logs/postgres.log", "-o",
            f"-c listen_addresses={base.HOST} -p {pg['port']} -k '{self.root / 'pgsocket'}'",
            "start"]
        subprocess.run(postgres._as_pg_owner([postgres._pg_bin() / "pg_ctl", "-D", data, "-w",
                                              *args]), check=True, capture_output=True)
        if action == "start":  # the new postmaster, for `services down`
            state = base.read_state(self.root)
            pid = int((data / "postmaster.pid").read_text().split()[0])
            for service in state["services"]:
                if service["name"] == "postgres":
                    service.update(pid=pid, started=processes.start_time(pid))
            base.write_state(self.root, state)


@pytest.fixture(scope="module")
def stack():
    parent = Path(tempfile.mkdtemp(prefix="pneumonia-aug-reliability-"))
    parent.chmod(0o755)  # the postgres user must reach its folder
    root = parent / ".services"
    saved = {k: os.environ.pop(k) for k in base.CREDENTIAL_ENV.values() if k in os.environ}
    try:
        started = time.monotonic()
        stack = Stack(root)
        print(f"stack up in {time.monotonic() - started:.1f} s")
        yield stack
    finally:
        services.down(root)
        shutil.rmtree(parent, ignore_errors=True)
        os.environ.update(saved)


@pytest.fixture
def server(stack, monkeypatch):
    """The stack's server for this process and its children; MLflow's own retry policy."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.uri)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    mlflow.set_tracking_uri(stack.uri)
    yield stack
    mlflow.set_tracking_uri(None)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pneumonia_aug.cli", *map(str, args)]


def _env(**extra) -> dict:
    """What a user's shell has: the CLI's own retry policy (no test override), one thread."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_HTTP_REQUEST_MAX_RETRIES"}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def _wait_for_step(client, experiment: str, metric: str, step: int, proc) -> str:
    """The id of the experiment's run once `metric` has reached `step`."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        found = client.get_experiment_by_name(experiment)
        for run in client.search_runs([found.experiment_id]) if found else []:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
            if max(steps, default=0) >= step:
                return run.info.run_id
        time.sleep(0.3)
    _, stderr = proc.communicate(timeout=60)
    pytest.fail(f"no {metric} at step {step}:\n{stderr[-3000:]}")


def _steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_training_rides_out_a_server_outage(server, small_real_data, tmp_path):
    """The MLflow server dies after epoch 1 and comes back 5 s later: the run goes on, the
    epochs of the outage land once it is back, each exactly once, and it ends FINISHED."""
    from mlflow import MlflowClient

    epochs = 8
    client = MlflowClient()
    started = time.monotonic()
    proc = subprocess.Popen(
        _cli("train-classifier", "--image-size", 32, "--epochs", epochs, "--batch-size", 16,
             "--max-images-per-split", 48, "--data-dir", small_real_data,
             "--experiment-name", "outage"),
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        run_id = _wait_for_step(client, "outage", "epoch/loss_val", 1, proc)
        server.stop_mlflow()
        down_at = time.time()
        time.sleep(OUTAGE_S)
        assert proc.poll() is None  # still training (or waiting), not crashed
        server.start_mlflow()
        up_at = time.time()
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        proc.kill()
    print(f"outage {up_at - down_at:.1f} s (stopped {OUTAGE_S} s + restart); "
          f"whole test {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, stderr[-4000:]
    assert stdout.strip().splitlines()[-1] == run_id
    assert "tracking server unavailable" in stderr and "tracking server back after" in stderr
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for key in PER_EPOCH:
        assert _steps(client, run_id, key) == list(range(1, epochs + 1)), key
    for key in ("test/accuracy", "test/auroc", "model/epoch"):
        assert _steps(client, run_id, key) == [0], key
    # Epochs that ended during the outage keep the time they were logged at.
    stamps = [m.timestamp / 1000 for m in client.get_metric_history(run_id, "epoch/loss_train")]
    assert any(down_at < t < up_at for t in stamps), (down_at, up_at, stamps)
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert "plots/roc.png" in artifacts


def test_outage_past_the_limit_stops_the_run_and_resume_finishes_it(server, small_real_data,
                                                                     tmp_path):
    """A GAN run (a sample grid every epoch) loses its server for longer than the limit (4 s
    here): it stops with one clear line, checkpoint and outbox kept; back up, `--resume`
    sends what waited, trains the rest and ends with every epoch and grid logged once.

    Whatever the machine's speed: the run is paused (SIGSTOP) from the moment its first epoch
    is seen until the server is down, so at least one epoch, and its grid, ends in the outage;
    the limit then stops it mid-training or, if training ends first, in its final wait for
    the server (the same error)."""
    from mlflow import MlflowClient

    epochs, every = 20, 1
    args = ["train-gan", "--image-size", 32, "--epochs", epochs, "--batch-size", 16,
            "--max-images", 32, "--sample-every", every, "--eval-images", 8,
            "--data-dir", small_real_data, "--experiment-name", "limit"]
    client = MlflowClient()
    limit_env = {"PNEUMONIA_AUG_TRACKING_OUTAGE_S": "4"}
    proc = subprocess.Popen(_cli(*args), env=_env(**limit_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        run_id = _wait_for_step(client, "limit", "epoch/d_loss", 1, proc)
        proc.send_signal(signal.SIGSTOP)
        assert max(_steps(client, run_id, "epoch/d_loss")) < epochs  # epochs are left to train
        server.stop_mlflow()
        stopped = time.monotonic()
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
        server.start_mlflow()
    print(f"the run stopped {time.monotonic() - stopped:.1f} s into the outage")
    assert proc.returncode == 2, stderr[-3000:]
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("error: the tracking server") and "has not answered" in error
    assert f"--resume {run_id}" in error and "Traceback" not in stderr
    folder = Path(os.environ["PNEUMONIA_AUG_CACHE_DIR"]) / "checkpoints" / run_id
    assert (folder / "checkpoint.pt").is_file()
    assert list((folder / "outbox" / "artifacts" / "samples").glob("epoch_*.png"))

    resumed = subprocess.run(_cli(*args, "--resume", run_id), env=_env(), capture_output=True,
                             text=True, timeout=900, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in GAN_PER_EPOCH:
        assert _steps(client, run_id, key) == list(range(1, epochs + 1)), key
    grids = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert grids == {f"samples/epoch_{e:04d}.png" for e in range(every, epochs + 1, every)}
    assert not folder.exists()  # removed once everything was logged


def test_a_database_outage_costs_no_retry_schedule(server, tmp_path):
    """PostgreSQL behind the server goes away: the server answers 5xx, the outbox keeps what
    a run logs after one try (not MLflow's retry schedule), and sends it once it is back."""
    from mlflow import MlflowClient

    from pneumonia_aug import tracking
    from pneumonia_aug.tracking.outbox import MetricLog

    os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)  # MLflow's own retries (7)
    run_id, _ = tracking.create_run("db-outage", {})
    log = MetricLog(run_id, tmp_path / "outbox")
    log({"loss": 0.5}, step=1)
    server.pg_ctl("stop")
    try:
        tick = time.monotonic()
        log({"loss": 0.4}, step=2)
        assert not log.flush() and time.monotonic() - tick < 10  # minutes with retries
    finally:
        server.pg_ctl("start")
    assert log.flush(wait=True)
    assert sorted((m.step, m.value) for m in MlflowClient().get_metric_history(run_id, "loss")) \
        == [(1, 0.5), (2, 0.4)]


RACER = """
import json, os, sys, time
from pathlib import Path
from pneumonia_aug import tracking
from pneumonia_aug.study.reuse import claim_or_reuse

folder, experiment, keys = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
(folder / f"ready-{os.getpid()}").touch()  # imported: waiting for the start signal
while not (folder / "go").exists():
    time.sleep(0.001)
go = float((folder / "go").read_text())
out = []
for i, key in enumerate(keys):
    def launch(run_id):
        with tracking.start_run(experiment, run_name=key, tags={"stage": "tiny"},
                                run_id=run_id) as run:
            tracking.log_params({"n": 1})
            time.sleep(2)  # the stage's work: the other caller must wait for it
            return run.info.run_id
    while time.time() < go + 5 * i:  # both callers start each key at the same moment
        time.sleep(0.001)
    claim = claim_or_reuse(experiment, key, {"n": 1}, launch, label=key)
    out.append([claim.run_id, claim.launched])
print(json.dumps(out))
"""


def test_identical_stages_at_the_same_moment_make_one_run(server, tmp_path):
    """Two processes claim the same three keys at the same millisecond: one run per key, both
    callers get its id, the loser's claim is deleted and names the winner."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    keys = ["race-a", "race-b", "race-c"]
    env = _env(PNEUMONIA_AUG_CLAIM_POLL_S="0.5")
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), "race", ",".join(keys)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go.tmp").write_text(str(time.time() + 0.5))
    (tmp_path / "go.tmp").rename(tmp_path / "go")  # atomic: a racer never reads it half-written
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    client = MlflowClient()
    experiment = client.get_experiment_by_name("race").experiment_id
    for i, key in enumerate(keys):
        (first, launched_a), (second, launched_b) = outs[0][i], outs[1][i]
        assert first == second and launched_a != launched_b, (key, outs)
        live = client.search_runs([experiment], f"tags.reuse_key = '{key}'")
        assert [r.info.run_id for r in live] == [first]
        assert live[0].info.status == "FINISHED"
        losers = client.search_runs([experiment], f"tags.reuse_key = '{key}'",
                                    run_view_type=ViewType.DELETED_ONLY)
        assert all(r.data.tags["claim.duplicate_of"] == first for r in losers)


def test_two_studies_at_once_share_their_runs(server, small_real_data, tmp_path):
    """Two identical tiny studies started together: no lost or duplicated runs; one
    classifier run and one compare run, used by both studies."""
    import mlflow
    from mlflow import MlflowClient

    args = _cli("study", "--profile", "tiny", "--seeds", 0, "--settings", "Original-1.0-0.0",
                "--data-dir", small_real_data, "--experiment-name", "two-studies")
    procs = [subprocess.Popen([*args, "--output-dir", tmp_path / f"study{i}"], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path) for i in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr[-4000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("two-studies").experiment_id
    runs = client.search_runs([experiment])
    by_stage = {}
    for run in runs:
        assert run.info.status == "FINISHED", run.info
        by_stage.setdefault(run.data.tags["stage"], []).append(run.info.run_id)
    assert sorted((stage, len(ids)) for stage, ids in by_stage.items()) == \
        [("compare", 1), ("study", 2), ("train_classifier", 1)]
    used = []
    for study in by_stage["study"]:
        record = mlflow.artifacts.load_dict(f"runs:/{study}/study/runs.json")
        used.append(sorted(u["run_id"] for u in record["used"]))
        assert record["failed"] == []
    assert used[0] == used[1] == sorted(by_stage["train_classifier"] + by_stage["compare"])
    launched = [client.get_run(s).data.metrics["runs_launched"] for s in by_stage["study"]]
    assert sorted(launched) in ([0, 2], [1, 1])
