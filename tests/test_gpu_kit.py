"""The GPU kit's parts that decide what runs and what comes back: the carried wheels, the
deadline, the first bench, the refusals, the size cap, and the SIGTERM the time budget sends.
`tests/test_kit_continuation.py` runs prepare, run and import end to end."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from pneumonia_aug.config import PACK_RESERVE_S
from pneumonia_aug.kit import image, layout, run
from pneumonia_aug.kit.pack import pack_store
from pneumonia_aug.kit.supervise import Tee, run_until


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
