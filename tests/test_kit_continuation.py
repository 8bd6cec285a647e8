"""The GPU kit end to end without a GPU, in an environment holding only the GPU image's
packages (plus the carried wheels, installed offline): a claim study that grows over two
`kit run`s. The first finishes seed 0's pair; the second, carrying what the first brought back
(`kit prepare --store`) and asked for seeds 0 and 1, reuses it, trains only seed 1's pair two
stages at once and runs a 1-step CPU bench; `kit import` merges both into one store, which
opens with `MlflowClient` and serves the table through `mlflow ui`. The same runs, the same
table as one uninterrupted study of the kit's data (run in the test's process, one CPU thread,
as the kit's study runs), nothing trained twice, and each seed's GAN row drawn from its own
GAN. A run whose budget holds no pair trains nothing and ends in time: the study's pacing
(`study.pacing`, tested with a clock of its own in test_study_design.py) behind the kit's
budget. Where a budget ends between two pairs depends on the machine's load by more than a
tiny pair lasts, so no test here relies on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, study_here
from pneumonia_aug.config import PACK_RESERVE_S
from pneumonia_aug.data.cache import CACHE_ENV
from pneumonia_aug.kit import image, layout, safetar
from pneumonia_aug.services import processes

pytestmark = pytest.mark.slow
HEADLINE = "Original-1.0-0.0,DCGAN-1.0-0.6"
DEVICE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # the file names `kit run` writes
# The bench of the second run: no step of it may be cut short, even on a busy machine.
BENCH = ("--bench", "32x4", "--bench-steps", "1", "--bench-timeout", "3000")


def _kit(*args: str, python: Path | str = sys.executable) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
           CACHE_ENV: os.environ[CACHE_ENV]}  # the tests' cache, not the user's
    done = subprocess.run([str(python), "-m", "pneumonia_aug.cli", "kit", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def _run(kit_dir: Path, out: Path, work: Path, python: Path, seeds: str = "0,1",
         budget: float = 3000, parallel: str = "1",
         bench: tuple[str, ...] = ("--bench", "none")) -> dict:
    shutil.rmtree(work, ignore_errors=True)  # a fresh machine each time, at the same path
    _kit("run", "--kit-dir", str(kit_dir), "--out", str(out), "--work-dir", str(work),
         "--profile", "tiny", "--seeds", seeds, "--settings", HEADLINE, "--device", "cpu",
         "--max-parallel", parallel, *bench, "--budget", f"{budget:.0f}", python=python)
    return json.loads((out / layout.RESULT).read_text())


def _uninterrupted(kit_dir: Path, root: Path, store_template: Path) -> Path:
    """The study the kit runs, every pair in one go, in this process on the kit's own data and
    one CPU thread, as the kit's study computes: the folder holding its store and its table."""
    safetar.extract(kit_dir / layout.DATA_ARCHIVE, root / "data")
    study_here(store_template, root, [
        "--profile", "tiny", "--seeds", "0,1", "--settings", HEADLINE, "--data-dir",
        str(root / "data" / layout.DATA), "--output-dir", str(root), "--experiment-name",
        "pneumonia-aug", "--max-parallel", "1"])
    return root


def _runs(store: Path) -> list:
    """The store's runs, read from a copy of its database: MLflow keeps one engine per URI
    for the process, which would go on reading a file `kit import` has since replaced."""
    copy = store.parent / f"{store.name}-read-{len(list(store.parent.glob('*-read-*')))}.db"
    shutil.copyfile(store / layout.STORE_DB, copy)
    client = MlflowClient(tracking_uri=f"sqlite:///{copy}")
    experiment = client.get_experiment_by_name("pneumonia-aug").experiment_id
    return client.search_runs([experiment], max_results=1000)


def _finished(store: Path) -> dict[tuple, object]:
    """(stage, setting or GAN, seed) -> its one FINISHED run (asserting there is one)."""
    runs = [r for r in _runs(store) if r.info.status == "FINISHED"
            and r.data.tags["stage"] not in ("study", "compare")]
    keys = [(r.data.tags["stage"], r.data.tags.get("setting") or r.data.tags.get("gan"),
             r.data.tags["seed"]) for r in runs]
    twice = [k for k, n in Counter(keys).items() if n > 1]
    assert not twice, f"trained twice: {twice}"
    return dict(zip(keys, runs, strict=True))


def _pair_estimate(monkeypatch) -> float:
    """The pacing's estimate of one pair of the tiny study on this machine, one stage at once
    (s): what a seed's first stage must still find in the budget."""
    from pneumonia_aug.config import StudyConfig
    from pneumonia_aug.study.ledger import Study
    from pneumonia_aug.study.nodes import study_graph
    from pneumonia_aug.study.plan import seed_seconds

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as the kit's study sees the machine
    cfg = StudyConfig(profile="tiny", seeds="0,1", settings=HEADLINE)
    return seed_seconds(cfg, study_graph(cfg, Study(cfg.experiment_name, "")), 1)


def _rows(table: Path) -> list[str]:
    """The table's rows of numbers (not its scale line, notes or run ids)."""
    return [line for line in table.read_text().splitlines() if line.startswith("| ")]


def _check_sent(out: Path, result: dict) -> dict:
    """What the second run brought back: the agreed files, each within its cap; its bench."""
    sent = sorted(p.name for p in out.iterdir())
    assert sent == sorted(layout.OUT_FILES) and len(sent) <= layout.MAX_OUT_FILES
    assert all(DEVICE_NAME.match(n) and (out / n).stat().st_size <= layout.MAX_OUT_FILE_MIB
               * layout.MIB for n in sent)
    (bench,) = json.loads((out / layout.BENCH).read_text())  # the bench's record
    assert bench["device"].endswith("(32 px, batch 4)") and bench["variants"]
    assert bench["memory"] == []  # no GPU: no time spent estimating it
    assert "carried wheels: requirements not met: none" in (out / layout.LOG).read_text()
    assert result["store"]["left_behind_by_reason"]["model weights or a training checkpoint"]
    return bench


def _check_stage_times(results: Path) -> None:
    """stages.md: each stage run of both runs, by start; the second run's two at once."""
    stage_times = (results / layout.STAGE_TIMES).read_text()
    assert "up to 2 stages at once" in stage_times
    rows = [line for line in stage_times.splitlines() if line.startswith("| ") and "FINISHED"
            in line]  # 2 x 5 stage runs, none of them a study run
    stages = [line.split(" | ")[1] for line in rows]
    assert stages[:5] == ["train_gan", "train_classifier", "generate", "train_classifier",
                          "compare"]  # one after another
    assert sorted(stages[5:7]) == ["train_classifier", "train_gan"]  # the GAN beside the
    assert stages[7:] == ["generate", "train_classifier", "compare"]  # Original, either first
    gan = rows[stages.index("train_gan")].split(" | ")
    assert gan[3] == "1" and float(gan[6]) >= 0  # the tiny profile's 1 epoch, its wall time


def _check_store(store: Path) -> str:
    """The merged store holds both runs' studies and their artifacts; returns the newest
    compare's id."""
    client = MlflowClient(tracking_uri=f"sqlite:///{store / layout.STORE_DB}")
    experiment = client.get_experiment_by_name("pneumonia-aug")
    assert experiment.artifact_location.startswith(str(store))
    runs = client.search_runs([experiment.experiment_id])  # newest first
    assert sorted(r.data.tags["stage"] for r in runs) == sorted(
        2 * ["compare", "generate", "study", "train_classifier", "train_classifier",
             "train_gan"])
    assert all(r.info.status == "FINISHED" for r in runs)
    compare = next(r for r in runs if r.data.tags["stage"] == "compare")
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


def test_a_claim_study_grows_over_two_kit_runs(small_real_data, image_python, tmp_path,
                                               store_template, monkeypatch):
    kit_dir, work = tmp_path / "kit", tmp_path / "work"
    prepared = _kit("prepare", "--kit-dir", str(kit_dir), "--data-dir", str(small_real_data),
                    "--image-size", "32", "--python-version", "3.11")
    assert "carried:" in prepared.stdout
    manifest = json.loads((kit_dir / layout.MANIFEST).read_text())
    assert manifest["data"]["images"] == 128 and manifest["data"]["same_validation_split"]
    assert manifest["data"]["digest"] != manifest["data"]["source_digest"]
    assert len(manifest["wheels"]) == len(image.CARRIED)
    whole = _uninterrupted(kit_dir, tmp_path / "whole", store_template)  # all pairs at once

    # The study gets the budget less the kit's start and PACK_RESERVE_S: less than a pair.
    short = _run(kit_dir, tmp_path / "short", work, image_python,
                 budget=PACK_RESERVE_S + _pair_estimate(monkeypatch))
    assert short["study"]["returncode"] == 0 and not short["study"]["stopped_at_budget"]
    log = (tmp_path / "short" / layout.LOG).read_text()
    assert "seeds not started (time budget): 0, 1" in log
    assert "compare not run: no classifier run to compare" in log
    assert "failed stages" not in log and "comparing its finished runs" not in log

    first = _run(kit_dir, tmp_path / "first", work, image_python, seeds="0")
    assert first["study"]["returncode"] == 0
    store, results = tmp_path / "store", tmp_path / "results"
    _kit("import", str(tmp_path / "first"), "--store-dir", str(store), "--results-dir",
         str(results), "--benchmarks", "")
    assert {k[2] for k in _finished(store)} == {"0"}, "the first run: seed 0's pair alone"
    assert "interim: 1 of" not in (tmp_path / "first" / "table1.md").read_text()  # no plan

    prepared = _kit("prepare", "--kit-dir", str(kit_dir), "--data-dir", str(small_real_data),
                    "--image-size", "32", "--python-version", "3.11", "--store", str(store))
    assert "store: " in prepared.stdout and "0 of them deleted" in prepared.stdout
    out = tmp_path / "second"
    second = _run(kit_dir, out, work, image_python, parallel="2", bench=BENCH)
    assert second["study"]["returncode"] == 0 and not second["study"]["stopped_at_budget"]
    bench = _check_sent(out, second)
    shutil.rmtree(work)  # the GPU machine's folder is gone
    imported = _kit("import", str(out), "--store-dir", str(store), "--results-dir",
                    str(results), "--figures", str(tmp_path / "bench.json"),
                    "--benchmarks", str(tmp_path / "benchmarks.md"))
    summary = json.loads(imported.stdout)
    assert summary["locations_rewritten"] > 0
    with sqlite3.connect(store / layout.STORE_DB) as conn:
        assert not [line for line in conn.iterdump() if str(work / "mlruns") in line]
    assert json.loads((tmp_path / "bench.json").read_text()) == [bench]  # the data first
    assert f"## {bench['device']}" in (tmp_path / "benchmarks.md").read_text()
    assert summary["benchmark_sections"] == [bench["device"]]

    merged, reference = _finished(store), _finished(whole)
    assert sorted(merged) == sorted(reference) and len(merged) == 2 * 4  # 2 seeds x 4 stages
    for key, run in merged.items():  # the same numbers as one uninterrupted run
        assert run.data.metrics.get("test/accuracy") == \
            reference[key].data.metrics.get("test/accuracy"), key
    assert _rows(out / "table1.md") == _rows(whole / "table1.md")
    # Each seed's GAN row drew from a generation of its own seed, from a GAN of its own seed.
    for seed in ("0", "1"):
        row = merged[("train_classifier", "DCGAN-1.0-0.6", seed)]
        generate = merged[("generate", "DCGAN", seed)]
        assert row.data.tags["synthetic_run_id"] == generate.info.run_id
        assert generate.data.tags["train_gan_run_id"] == \
            merged[("train_gan", "DCGAN", seed)].info.run_id
    pages = (results / layout.ALLOCATIONS).read_text()
    assert "| 1 |" in pages and "| 2 |" in pages and "2 complete" in pages
    assert (results / "table1.md").read_text() == (out / "table1.md").read_text()
    assert (results / "forest.png").stat().st_size > 1000  # from the store
    _check_stage_times(results)
    _check_ui(store, _check_store(store), (out / "table1.md").read_text())
