"""The tiny study fanned out: stage processes (`--max-parallel 2`) and a real Ray cluster give
the sequential study's numbers, nested the same; an interrupted parallel study resumes; a
failing stage leaves the others finished and the table listing it.

One sequential study (the reference, in its own store) is run once for the module, in the
test's process (the `study` command through click, one CPU thread). Each study compared with
it is `pneumonia-aug study` in a subprocess, with one CPU thread per stage so that every run
computes exactly what the sequential one did.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import SHARED_DATA, study_here
from pneumonia_aug.services import processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (SHARED_DATA / "train").is_dir(),
                                 reason=f"the real Kermany data is not at {SHARED_DATA}")]
BIN = Path(sys.executable).parent
SETTINGS = "Original-1.0-0.0,DCGAN-1.0-0.3"
NOT_COMPARED = ("train/seconds",)  # wall time, not a result


def _env(uri: str, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")}
    return env | {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1",
                  "PNEUMONIA_AUG_CACHE_DIR": str(cache), "MLFLOW_DISABLE_TELEMETRY": "true"}


def _study_cmd(cwd: Path, seeds: str = "0", *options: str) -> list[str]:
    return [sys.executable, "-m", "pneumonia_aug.cli", "study", "--profile", "tiny",
            "--seeds", seeds, "--settings", SETTINGS, "--data-dir", str(SHARED_DATA),
            "--output-dir", str(cwd / "out"), *options]


def _study(uri: str, cwd: Path, cache: Path, seeds: str = "0", *options: str):
    result = subprocess.run(_study_cmd(cwd, seeds, *options), env=_env(uri, cache), cwd=cwd,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _runs(uri: str, query: str = "") -> list:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("pneumonia-aug")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], query, max_results=1000)


def _newest_study(uri: str):
    return max(_runs(uri, "tags.stage = 'study'"), key=lambda r: r.info.start_time)


def _results(uri: str) -> dict:
    """(stage, setting or GAN, seed) -> metrics of every finished stage run, and whether it is
    nested under a study run."""
    studies = {r.info.run_id for r in _runs(uri, "tags.stage = 'study'")}
    found = {}
    for run in _runs(uri, "tags.stage != 'study' and attributes.status = 'FINISHED'"):
        tags = run.data.tags
        key = (tags["stage"], tags.get("setting", tags.get("gan", "")), tags.get("seed", ""))
        metrics = {k: v for k, v in run.data.metrics.items() if k not in NOT_COMPARED}
        assert key not in found, f"two finished {key} runs"
        found[key] = (metrics, tags.get("mlflow.parentRunId") in studies)
    return found


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "cache"


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, cache, store_template) -> tuple[str, dict, Path]:
    """The tiny study, one stage after another in this process: (store, results, folder)."""
    root = tmp_path_factory.mktemp("sequential")
    uri = study_here(store_template, root, _study_cmd(root)[4:], _env("", cache))
    return uri, _results(uri), root


def _processes():
    """(pid, the fields of /proc/PID/stat after the name) of every process there is."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit():
            yield int(entry.name), fields


def _children(pid: int) -> list[int]:
    return [child for child, fields in _processes() if int(fields[1]) == pid]


def _descendants(pid: int) -> list[int]:
    """Children, grandchildren...: stage processes are forked from a forkserver, the study's
    child."""
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(uri: str, query: str, proc: subprocess.Popen, timeout: float = 600):
    """The first run `query` finds, once there is one, while the study still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before it could be interrupted"
        found = _runs(uri, query)
        if found:
            return found[0]
        time.sleep(0.25)
    raise AssertionError(f"no run where {query} in {timeout} s")


def test_interrupted_parallel_study_resumes_with_the_sequential_numbers(
        sequential, tmp_path, cache):
    seq_uri, seq_results, _ = sequential
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Create the store first: the polling below must not race the study creating its tables.
    MlflowClient(tracking_uri=uri).search_experiments()
    proc = subprocess.Popen(_study_cmd(tmp_path, "0", "--max-parallel", "2"),
                            env=_env(uri, cache), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # Stopped while the GAN setting trains: its GAN and generation have finished; the Original
    # (which starts with the GAN) may have finished too, depending on the machine.
    try:
        running = _wait_for(uri, "tags.setting = 'DCGAN-1.0-0.3' and attributes.status = "
                                 "'RUNNING'", proc)
        stage_processes = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)  # as a scheduler stops a job
        output = proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-3000:]
    assert len(stage_processes) >= 2, stage_processes  # the forkserver and a stage
    deadline = time.monotonic() + 10  # the forkserver leaves once the study has gone
    while [p for p in stage_processes if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in stage_processes if _alive(p)]
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(running.info.run_id).info.status == "KILLED", output[-3000:]
    assert _newest_study(uri).info.status == "KILLED"
    assert not _runs(uri, "attributes.status = 'RUNNING'")
    finished = [r.data.tags["stage"] for r in
                _runs(uri, "tags.stage != 'study' and attributes.status = 'FINISHED'")]
    assert {"train_gan", "generate"} <= set(finished) and "compare" not in finished

    # The same call again: what finished is reused, the rest runs, as the sequential did.
    _study(uri, tmp_path, cache, "0", "--max-parallel", "2")
    resumed = _newest_study(uri)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.metrics["runs_launched"] == len(seq_results) - len(finished)
    assert resumed.data.metrics["runs_used"] == len(seq_results)  # launched or reused
    results = _results(uri)
    assert sorted(results) == sorted(seq_results)
    for key, (metrics, nested) in results.items():
        assert nested, f"{key} is not nested under a study run"
        assert metrics == seq_results[key][0], key
    runs_json = client.download_artifacts(resumed.info.run_id, "study/runs.json", str(tmp_path))
    used = json.loads(Path(runs_json).read_text())["used"]
    assert sorted(u["stage"] for u in used) == sorted(k[0] for k in seq_results)

    # And again: every run reused, nothing launched, not even the GAN's quality measurement,
    # settled when the network was found unfit for it (said once in the GAN run).
    result = _study(uri, tmp_path, cache, "0", "--max-parallel", "2")
    again = _newest_study(uri)
    assert again.data.metrics["runs_launched"] == 0 and again.data.metrics["runs_used"] == 5
    (gan,) = _runs(uri, "tags.stage = 'train_gan'")
    reason = gan.data.tags["quality_skipped"]
    assert gan.data.tags["mlflow.note.content"].count(reason) == 1
    assert reason not in result.stderr  # no stage process decided it again


def test_a_failing_stage_leaves_the_others_finished_and_is_listed(sequential, cache):
    """The sequential study's store, in parallel, in the shared GAN design with a new seed,
    where the one generated set both seeds' GAN setting needs no longer passes for the
    DCGAN's: those runs fail before opening, the Originals and compare still finish, and the
    table lists the missing seeds."""
    uri, _, root = sequential
    (generate,) = _runs(uri, "tags.stage = 'generate'")
    MlflowClient(tracking_uri=uri).set_tag(generate.info.run_id, "gan", "CGAN")
    result = _study(uri, root, cache, "0,1", "--max-parallel", "2", "--gan-seeds", "shared")
    study = _newest_study(uri)
    assert study.info.status == "FINISHED"
    assert study.data.metrics["stages_failed"] == 2
    assert "- DCGAN-1.0-0.3: seed 0 (missing); seed 1 (missing)" in result.stdout
    # launched by this study (reused runs are nested under it too, but launched by another)
    new = [r for r in _runs(uri, f"tags.`mlflow.parentRunId` = '{study.info.run_id}'")
           if "launched_by_study" not in r.data.tags]
    # The Originals too: the design is part of their comparison key.
    assert sorted((r.data.tags["stage"], r.data.tags.get("setting", ""),
                   r.data.tags.get("seed", ""), r.info.status) for r in new) == [
        ("compare", "", "", "FINISHED"),
        ("train_classifier", "Original-1.0-0.0", "0", "FINISHED"),
        ("train_classifier", "Original-1.0-0.0", "1", "FINISHED")]
    assert "is not a generate run of the DCGAN" in result.stderr


def _stop_session(leader: int) -> None:
    """Stop a process group we started, then every process whose sid (`ps`) is its leader
    (Ray's workers make groups of their own)."""
    processes.stop_group(leader)
    for pid, fields in _processes():
        if int(fields[3]) == leader:
            os.kill(pid, signal.SIGKILL)


def _wait_http(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def test_ray_cluster_study_gives_the_sequential_numbers(sequential, tmp_path, cache):
    pytest.importorskip("ray")
    _, seq_results, _ = sequential
    ray_port, mlflow_port = processes.free_ports(2)
    env = {k: v for k, v in _env("", cache).items() if k != "MLFLOW_TRACKING_URI"}
    # A short private temp dir: Ray's socket paths must stay under 107 characters.
    ray_tmp = Path(f"/tmp/ray-{os.getpid()}-{ray_port}")
    head = processes.spawn([str(BIN / "ray"), "start", "--head", f"--port={ray_port}",
                            "--num-cpus", "2", "--include-dashboard=false",
                            "--node-ip-address=127.0.0.1", f"--temp-dir={ray_tmp}",
                            "--disable-usage-stats", "--block"], tmp_path / "ray.log", env)
    server = processes.spawn([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                              f"sqlite:///{tmp_path / 'server.db'}", "--serve-artifacts",
                              "--artifacts-destination", str(tmp_path / "artifacts"),
                              "--host", "127.0.0.1", "--port", str(mlflow_port),
                              "--workers", "1"], tmp_path / "mlflow.log", env)
    uri = f"http://127.0.0.1:{mlflow_port}"
    try:
        _wait_http(f"{uri}/health")
        run = subprocess.run(_study_cmd(tmp_path, "0", "--executor", "ray", "--max-parallel",
                                        "2"), env=_env(uri, cache) | {
                                 "RAY_ADDRESS": f"127.0.0.1:{ray_port}"},
                             cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-4000:]
        assert "Ray cluster" in run.stderr and "'CPU': 2.0" in run.stderr
        results = _results(uri)
        assert sorted(results) == sorted(seq_results)
        for key, (metrics, nested) in results.items():
            assert nested, f"{key} is not nested under the study run"
            assert metrics == seq_results[key][0], key
    finally:
        _stop_session(server)
        _stop_session(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)
