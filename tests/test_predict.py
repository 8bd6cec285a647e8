"""`predict` on a real registered classifier (one tiny run): file names with spaces and commas,
figures drawn on the original image (no heatmap at 32 px), the exit code, MLflow's download
bars, the README's Python snippet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import REPO, SHARED_DATA, make_kermany, mlflow_run, new_store, xray_like
from pneumonia_aug.cli import main

pytestmark = pytest.mark.slow
MODEL = "models:/pneumonia-chexnet/1"


@pytest.fixture(scope="module")
def store(tmp_path_factory, store_template) -> dict:
    """A tracking store holding one registered 32 px classifier (version 1)."""
    root = tmp_path_factory.mktemp("predict")
    env = _env(new_store(store_template, root), PNEUMONIA_AUG_CACHE_DIR=str(root / "cache"))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
        patch.chdir(root)
        result = CliRunner().invoke(main, [
            "train-classifier", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
            "--data-dir", str(make_kermany(root / "chest_xray"))])
    assert result.exit_code == 0, result.output[-3000:]
    # Logging the model downloads it back (MLflow checks the input example): no bar drawn.
    assert "Downloading artifacts" not in result.stderr
    return {"root": root, "env": env}


def _env(uri: str, **extra) -> dict:
    leaky = ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME",
             "MLFLOW_EXPERIMENT_ID")
    env = {k: v for k, v in os.environ.items() if k not in leaky}
    return env | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}


def test_mlflow_download_bars_are_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    CliRunner().invoke(main, ["data", "check", "--help"])
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    CliRunner().invoke(main, ["data", "check", "--help"])
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"  # the user's choice


def predict(store: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`pneumonia-aug predict` as a user runs it (its own process, from another folder)."""
    return subprocess.run([sys.executable, "-m", "pneumonia_aug.cli", "predict", "--model",
                           MODEL, "--output-dir", str(cwd / "out"), *args], cwd=cwd,
                          env=store["env"], capture_output=True, text=True, timeout=300)


def xray_file(path: Path, width: int, height: int) -> Path:
    xray_like(7, 64, "PNEUMONIA").resize((width, height)).save(path)
    return path


def test_names_with_spaces_overlays_at_the_original_size_and_exit_codes(store, tmp_path):
    spaced = xray_file(tmp_path / "chest x ray.png", 600, 400)
    large = xray_file(tmp_path / "large, with comma.png", 2048, 1536)
    (tmp_path / "list.txt").write_text(f"{large}\n\n")
    proc = predict(store, tmp_path, str(spaced), "--images-file", str(tmp_path / "list.txt"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *rows = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert header == ["image", "probability", "label", "threshold", "heatmap"]
    assert [r[0] for r in rows] == [str(spaced), str(large)]
    assert all(0 <= float(r[1]) <= 1 and 0 < float(r[3]) < 1 for r in rows)
    assert all(r[2] == ("PNEUMONIA" if float(r[1]) >= float(r[3]) else "NORMAL") for r in rows)
    # The figure is the original image (capped at 1024 px), under a caption band. A 32 px
    # model's Grad-CAM has no spatial resolution: no heatmap, the image alone, and the reason
    # in the caption and in a warning.
    small, big = (Image.open(r[4]) for r in rows)
    assert small.width == 600 and 400 < small.height < 560
    assert big.width == 1024 and 768 < big.height < 960
    band = np.asarray(small.convert("L"))[: small.height - 400]
    assert band.max() == 255 and np.median(band) == 0  # white text on black
    pixels = np.asarray(small)
    assert (pixels.max(axis=2) == pixels.min(axis=2)).all()  # gray: no heatmap drawn
    assert proc.stderr.count("no heatmap: at 32 px the last feature map is 1x1") == 2

    broken = tmp_path / "broken scan.jpeg"
    broken.write_bytes(b"not an image")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store["env"]["MLFLOW_TRACKING_URI"])
        result = CliRunner().invoke(main, ["predict", "--model", MODEL, "--output-dir",
                                           str(tmp_path / "out"), str(spaced), str(broken)])
    assert result.exit_code == 1  # one of two failed: not a success
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()][1:]
    assert rows[1][0] == str(broken) and rows[1][1].startswith("error: unreadable image")
    assert 0 <= float(rows[0][1]) <= 1  # the readable one still ran


def test_mlflow_run_predict_takes_a_list_with_spaces(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["env"]["MLFLOW_TRACKING_URI"])
    first = xray_file(tmp_path / "first scan.png", 100, 80)
    second = xray_file(tmp_path / "second.png", 90, 90)
    proc = mlflow_run("predict", {"model": MODEL, "images": f"{first},{second}",
                                  "output_dir": tmp_path / "out"}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines() if "\t" in line]
    assert [r[0] for r in rows] == ["image", str(first), str(second)]
    assert Image.open(rows[1][4]).width == 100


def readme_snippet() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Using a registered classifier", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_snippet_runs_from_anywhere(store, tmp_path):
    """The snippet names its tracking store and image by absolute paths; run from another
    folder against this test's store, it prints a prediction."""
    if not (SHARED_DATA / "test").is_dir():
        pytest.skip(f"the real Kermany data is not at {SHARED_DATA}")
    code = readme_snippet()
    store_line = "f\"sqlite:///{clone / 'mlflow.db'}\""
    assert store_line in code  # the store is explicit, not the working folder's mlflow.db
    assert "pneumonia_aug" not in code  # mlflow and pandas are all it needs
    clone_line = 'Path("~/pneumonia-aug").expanduser()'
    assert clone_line in code
    code = code.replace(store_line, repr(store["env"]["MLFLOW_TRACKING_URI"]))
    code = code.replace(clone_line, f"Path({str(REPO)!r})")
    image_line = 'clone.parent / "shared/data/chest_xray/'
    assert image_line in code
    code = code.replace(image_line, f"Path({str(SHARED_DATA)!r}) / \"")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=store["env"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "probability" in proc.stdout and ("PNEUMONIA" in proc.stdout
                                             or "NORMAL" in proc.stdout)
