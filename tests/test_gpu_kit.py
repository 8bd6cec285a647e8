"""The GPU kit without a GPU: prepare, run (in an environment holding only the GPU image's
packages, plus the carried wheels installed offline) and import, end to end; and its parts
that decide what comes back: the deadline, the size cap, the artifact locations."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO
from pneumonia_aug.config import PACK_RESERVE_S
from pneumonia_aug.kit import image, layout, run
from pneumonia_aug.kit.pack import pack_store
from pneumonia_aug.kit.supervise import Tee, run_until
from pneumonia_aug.services import processes

SETTINGS = "Original-1.0-0.0,DCGAN-1.0-0.3"
# The budget is the kit's business (tested above); here no step may be cut short, even on a
# machine so busy that importing torch takes a minute.
GENEROUS = ("--budget", "3000", "--bench-timeout", "3000")
DEVICE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # the file names `kit run` writes


def test_the_wheels_carry_only_what_the_image_lacks():
    assert not set(image.CARRIED) & image.IMAGE_PACKAGES
    assert {"torch", "torchvision", "pandas", "click", "pip"} <= image.IMAGE_PACKAGES
    assert "mlflow-skinny" in image.CARRIED and "mlflow" not in image.IMAGE_PACKAGES


def _child(on_sigterm: str) -> list[str]:
    code = ("import signal, sys, time\n"
            f"signal.signal(signal.SIGTERM, {on_sigterm})\n"
            "print('child', 'ready', flush=True)\n"
            "time.sleep(60)\n")
    return [sys.executable, "-c", code]


def test_a_step_is_stopped_at_its_deadline_and_its_output_kept(tmp_path):
    with open(tmp_path / "log", "w") as log:
        tee = Tee(log, time.monotonic())
        # 4 s: time for the child to start and set its handler on a busy machine
        obeys = run_until(_child("lambda *a: sys.exit(3)"), tee,
                          time.monotonic() + 4, grace=10)
        deaf = run_until(_child("signal.SIG_IGN"), tee, time.monotonic() + 4,
                         grace=1)
    assert obeys.stopped and not obeys.killed and obeys.returncode == 3
    assert obeys.seconds < 10  # the deadline, not the child's 60 s sleep
    assert deaf.stopped and deaf.killed and deaf.returncode == -9
    text = (tmp_path / "log").read_text()
    assert text.count("child ready") == 2 and "time budget reached" in text


@pytest.mark.parametrize("device, measured", [("cuda", [True, False]), ("cpu", [False, False])])
def test_the_first_bench_on_a_gpu_alone_measures_the_memory(monkeypatch, device, measured):
    """The 256 px models' memory is the same whatever a bench's size: measured once, and not
    estimated on the kit's time where there is no GPU to measure it."""
    calls = []
    monkeypatch.setattr(run, "_bench", lambda kit, size, batch, memory: calls.append(memory))
    kit = type("Kit", (), {"end": time.monotonic() + PACK_RESERVE_S + 3600})()
    kit.opts = type("Opts", (), {"device": device, "benches": [(256, 128), (128, 64)]})()
    run._benches(kit)
    assert calls == measured


def test_kit_commands_refuse_bad_input_in_one_line(tmp_path, tiny_kermany):
    from click.testing import CliRunner

    from pneumonia_aug.cli import main

    runner = CliRunner()
    missing = runner.invoke(main, ["kit", "run", "--kit-dir", str(tmp_path / "none"), "--out",
                                   str(tmp_path / "out")])
    assert missing.exit_code == 2 and "error: no kit.json" in missing.output
    assert not (tmp_path / "out").exists()  # refused before anything ran
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "kit.json").write_text("{}")
    few = runner.invoke(main, ["kit", "run", "--kit-dir", str(tmp_path / "kit"), "--out",
                               str(tmp_path / "out"), "--max-out-files", "7"])
    assert few.exit_code == 2 and "--max-out-files 7 is too few" in few.output, few.output
    assert not (tmp_path / "out").exists()
    too_big = runner.invoke(main, ["kit", "prepare", "--kit-dir", str(tmp_path / "kit"),
                                   "--data-dir", str(tiny_kermany), "--image-size", "32",
                                   "--python-version", "3.11", "--max-carried-mib", "0.1"])
    assert too_big.exit_code == 2, too_big.output
    assert "error: the transfer would carry" in too_big.output and "of 0.1 MiB" in too_big.output
    assert not (tmp_path / "kit" / "kit.json").exists()  # not a kit that looks ready


def _store(root: Path) -> Path:
    """A store on disk: a real sqlite file and artifact files of incompressible bytes."""
    run = root / "mlruns" / "1" / "abc" / "artifacts"
    sizes = {"generated/dcgan_00001.png": 60_000, "generated/dcgan_00002.png": 60_000,
             "plots/roc.png": 40_000, "samples/epoch_0001.png": 90_000,
             "predictions/test_predictions.csv": 20_000, "table1.md": 2_000}
    for name, size in sizes.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(os.urandom(size))
    weights = root / "mlruns" / "1" / "models" / "m-1" / "artifacts" / "artifacts"
    weights.mkdir(parents=True)
    (weights / "weights.pt").write_bytes(os.urandom(50_000))
    with sqlite3.connect(root / layout.STORE_DB) as conn:
        conn.execute("CREATE TABLE runs (artifact_uri VARCHAR(200))")
    return root


def test_the_store_archive_fits_its_cap_leaving_weights_then_generated_images(tmp_path):
    store = _store(tmp_path / "store")
    everything = pack_store(store, tmp_path / "all.tar.xz", cap=10**6)
    assert everything["left_behind_by_reason"] == {
        "model weights or a training checkpoint": {"files": 1, "bytes": 50_000}}
    fitted = pack_store(store, tmp_path / "fit.tar.xz", cap=200_000)
    assert (tmp_path / "fit.tar.xz").stat().st_size <= 200_000
    reasons = fitted["left_behind_by_reason"]
    assert reasons["a generated image"] == {"files": 2, "bytes": 120_000}
    with tarfile.open(tmp_path / "fit.tar.xz") as tar:
        names = set(tar.getnames())
        listing = tar.extractfile(layout.LEFT_BEHIND).read().decode()
    assert layout.STORE_DB in names and "mlruns/1/abc/artifacts/table1.md" in names
    assert "mlruns/1/abc/artifacts/plots/roc.png" in names
    assert "weights.pt" in listing and "dcgan_00001.png" in listing


def _kit(*args: str, python: Path | str = sys.executable, timeout: float = 1800, **kwargs):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([str(python), "-m", "pneumonia_aug.cli", "kit", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.mark.slow
def test_kit_prepares_runs_in_the_image_and_imports(small_real_data, image_python, tmp_path):
    kit_dir, out, work = tmp_path / "kit", tmp_path / "out", tmp_path / "work"
    timings = {}
    t0 = time.monotonic()
    prepared = _kit("prepare", "--kit-dir", str(kit_dir), "--data-dir", str(small_real_data),
                    "--image-size", "32", "--python-version", "3.11")
    timings["prepare"] = time.monotonic() - t0
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "carried:" in prepared.stdout
    manifest = json.loads((kit_dir / layout.MANIFEST).read_text())
    assert manifest["data"]["images"] == 128 and manifest["data"]["same_validation_split"]
    assert manifest["data"]["digest"] != manifest["data"]["source_digest"]
    assert len(manifest["wheels"]) == len(image.CARRIED)

    t0 = time.monotonic()
    ran = _kit("run", "--kit-dir", str(kit_dir), "--out", str(out), "--work-dir", str(work),
               "--profile", "tiny", "--seeds", "0", "--settings", SETTINGS, "--device", "cpu",
               "--max-parallel", "2",
               "--bench", "32x4", "--bench-steps", "1", *GENEROUS, python=image_python)
    timings["run"] = time.monotonic() - t0
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-4000:]
    result = json.loads((out / layout.RESULT).read_text())
    assert result["study"]["returncode"] == 0 and not result["study"]["stopped_at_budget"]
    sent = sorted(p.name for p in out.iterdir())
    assert sent == sorted(layout.OUT_FILES) and len(sent) <= layout.MAX_OUT_FILES
    assert all(DEVICE_NAME.match(n) and (out / n).stat().st_size <= layout.MAX_OUT_FILE_MIB
               * layout.MIB for n in sent)
    assert "| DCGAN-1.0-0.3 |" in (out / "table1.md").read_text()
    (bench,) = json.loads((out / layout.BENCH).read_text())  # the bench's record
    assert bench["device"].endswith("(32 px, batch 4)") and bench["variants"]
    assert bench["memory"] == []  # no GPU: no time spent estimating it
    assert "carried wheels: requirements not met: none" in (out / layout.LOG).read_text()
    assert result["store"]["left_behind_by_reason"]["model weights or a training checkpoint"]

    shutil.rmtree(work)  # the GPU machine's folder is gone
    t0 = time.monotonic()
    imported = _kit("import", str(out), "--store-dir", str(tmp_path / "store"),
                    "--results-dir", str(tmp_path / "results"),
                    "--figures", str(tmp_path / "bench.json"),
                    "--benchmarks", str(tmp_path / "benchmarks.md"))
    timings["import"] = time.monotonic() - t0
    assert imported.returncode == 0, imported.stderr[-3000:]
    summary = json.loads(imported.stdout)
    assert summary["locations_rewritten"] > 0
    with sqlite3.connect(tmp_path / "store" / layout.STORE_DB) as conn:
        assert not [line for line in conn.iterdump() if str(work / "mlruns") in line]
    assert (tmp_path / "results" / "table1.md").read_text() == (out / "table1.md").read_text()
    assert json.loads((tmp_path / "bench.json").read_text()) == [bench]  # the data first
    assert f"## {bench['device']}" in (tmp_path / "benchmarks.md").read_text()
    assert summary["benchmark_sections"] == [bench["device"]]
    assert (tmp_path / "results" / "forest.png").stat().st_size > 1000  # from the store
    stage_times = (tmp_path / "results" / layout.STAGE_TIMES).read_text()
    assert "up to 2 stages at once" in stage_times
    rows = [line for line in stage_times.splitlines() if line.startswith("| ") and "FINISHED"
            in line]  # the study's 5 stage runs, none of them the study run itself
    stages = [line.split(" | ")[1] for line in rows]  # by start: the GAN starts beside the
    assert sorted(stages[:2]) == ["train_classifier", "train_gan"]  # Original, either first
    assert stages[2:] == ["generate", "train_classifier", "compare"]
    gan = rows[stages.index("train_gan")].split(" | ")
    assert gan[3] == "1" and float(gan[6]) >= 0  # the tiny profile's 1 epoch, its wall time
    compare_id = _check_store(tmp_path / "store")
    t0 = time.monotonic()
    _check_ui(tmp_path / "store", compare_id, (out / "table1.md").read_text())
    timings["mlflow ui"] = time.monotonic() - t0
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})


def _check_store(store: Path) -> str:
    """The imported store holds the study's runs and their artifacts; returns compare's id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / layout.STORE_DB}")
    experiment = client.get_experiment_by_name("pneumonia-aug")
    assert experiment.artifact_location.startswith(str(store))
    runs = client.search_runs([experiment.experiment_id])
    stages = sorted(r.data.tags["stage"] for r in runs)
    assert stages == ["compare", "generate", "study", "train_classifier", "train_classifier",
                      "train_gan"]
    assert all(r.info.status == "FINISHED" for r in runs)
    (compare,) = [r for r in runs if r.data.tags["stage"] == "compare"]
    assert {"table1.md", "accuracy.png"} <= {a.path for a in
                                              client.list_artifacts(compare.info.run_id)}
    classifier = next(r for r in runs if r.data.tags["stage"] == "train_classifier")
    assert "test/accuracy" in classifier.data.metrics
    plots = {a.path for a in client.list_artifacts(classifier.info.run_id, "plots")}
    assert "plots/roc.png" in plots
    return compare.info.run_id


def _check_ui(store: Path, compare_id: str, table: str) -> None:
    """`mlflow ui` on the imported store serves the compare run's table."""
    port = processes.free_ports(1)[0]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
         f"sqlite:///{store / layout.STORE_DB}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], cwd=store, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no mlflow ui"
                time.sleep(1)
        url = f"{base}/get-artifact?path=table1.md&run_uuid={compare_id}"
        assert urllib.request.urlopen(url, timeout=30).read().decode() == table
    finally:
        processes.stop_group(server.pid)
        server.wait(timeout=10)


@pytest.mark.slow
def test_a_study_stopped_by_sigterm_ends_killed_with_its_running_stage(small_real_data,
                                                                      tracking_uri):
    """What the kit's time budget relies on: SIGTERM, in a stage or between two, ends the
    study's run and its running stage KILLED, not left RUNNING."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.search_experiments()  # create the store's tables now: two processes must not race
    command = [sys.executable, "-m", "pneumonia_aug.cli", "study", "--profile", "tiny",
               "--seeds", "0", "--settings", "Original-1.0-0.0", "--data-dir",
               str(small_real_data), "--output-dir", "study"]
    deadline, stages = time.monotonic() + 600, []
    proc = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and time.monotonic() < deadline and len(stages) < 2:
            experiment = client.get_experiment_by_name("pneumonia-aug")
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
            # the study + a stage that opened its run (a claim not yet opened has no stage
            # tag: SIGTERM then deletes it and leaves no stage run to look at)
            stages = [r for r in runs if r.info.status == "RUNNING" and "stage" in r.data.tags]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert len(stages) == 2, f"no stage was running:\n{stderr[-3000:]}"
    status = {r.data.tags["stage"]: r.info.status for r in
              client.search_runs([experiment.experiment_id])}
    assert status["study"] == "KILLED" and "RUNNING" not in status.values()
    # the stage may have finished in the instant between the look and the signal
    assert status["train_classifier"] in ("KILLED", "FINISHED")
