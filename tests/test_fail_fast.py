"""A dead tracking server is reported in seconds, in one line, before any work starts."""

import socket
import subprocess
import sys
import time


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tracking_server_fails_fast(tiny_kermany, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # the CLI's own default
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pneumonia_aug.cli", "train-classifier",
                           "--data-dir", str(tiny_kermany), "--image-size", "32", "--epochs", "1"],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert "is unreachable" in proc.stderr and "pneumonia-aug services up" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 30  # seconds (interpreter start-up included), not MLflow's minutes of retries


def test_checkpoint_is_kept_until_the_upload_succeeds(tmp_path):
    import pytest

    from pneumonia_aug.stages.checkpoints import local_checkpoint

    with pytest.raises(ConnectionError):
        with local_checkpoint("run-a", str(tmp_path)) as path:
            path.write_bytes(b"weights")
            raise ConnectionError("artifact upload failed")
    assert (tmp_path / "checkpoints" / "run-a" / "checkpoint.pt").read_bytes() == b"weights"
    with local_checkpoint("run-b", str(tmp_path)) as path:
        path.write_bytes(b"weights")
    assert not (tmp_path / "checkpoints" / "run-b").exists()


def test_unreachable_s3_store_fails_fast(tiny_kermany, tracking_uri, monkeypatch):
    """An experiment whose artifacts go straight to S3: a dead endpoint is reported up front."""
    import mlflow

    mlflow.create_experiment("s3-exp", artifact_location="s3://mlflow/artifacts")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pneumonia_aug.cli", "train-classifier",
                           "--data-dir", str(tiny_kermany), "--image-size", "32", "--epochs", "1",
                           "--experiment-name", "s3-exp"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "S3 endpoint" in proc.stderr and "is unreachable" in proc.stderr
    assert time.monotonic() - started < 30
    assert not mlflow.search_runs(experiment_names=["s3-exp"]).shape[0]  # no run was started
