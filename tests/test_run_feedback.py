"""What a run tells while it works: the per-epoch progress bar (a terminal only), MLflow's system
metrics (opt-in), and a GAN setting without its data folder failing before any download."""

from __future__ import annotations

import io
import os
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from conftest import xray_like
from pneumonia_aug.cli import main
from pneumonia_aug.contract import GENERATE, GENERATED_DIR, TAG_GAN, TAG_STAGE, Gan
from pneumonia_aug.training.progress import PROGRESS_ENV, batch_starts


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, env, drawn", [(Terminal, None, True), (io.StringIO, None, False),
                                                (Terminal, "0", False)])
def test_progress_bar_on_a_terminal_only(monkeypatch, stream, env, drawn):
    err = stream()
    monkeypatch.setattr("sys.stderr", err)
    if env is not None:
        monkeypatch.setenv(PROGRESS_ENV, env)
    assert list(batch_starts(10, 4, "epoch 1/3")) == [0, 4, 8]  # range(0, 10, 4)
    assert ("epoch 1/3" in err.getvalue() and "img" in err.getvalue()) is drawn
    assert bool(err.getvalue()) is drawn


def _train(data: Path, *extra: str):
    result = CliRunner().invoke(main, ["train-classifier", "--image-size", "32", "--epochs", "1",
                                       "--batch-size", "8", "--data-dir", str(data), *extra])
    assert result.exit_code == 0, result.output
    return MlflowClient().get_run(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_system_metrics_are_opt_in(tiny_kermany, tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)

    def system(run) -> set[str]:
        return {k for k in run.data.metrics if k.startswith("system/")}

    # Off by default: test_train_classifier_logs_everything checks a run has none.
    on = _train(tiny_kermany, "--system-metrics")
    assert {"system/cpu_utilization_percentage",
            "system/system_memory_usage_megabytes"} <= system(on)
    assert on.data.params["system_metrics"] == "True"
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")  # MLflow's own switch
    assert "system/cpu_utilization_percentage" in system(_train(tiny_kermany))


def test_gan_setting_without_data_folder_fails_before_downloading(tracking_uri, tmp_path,
                                                                 monkeypatch):
    """The data folder is checked before the generated images are fetched: a GAN setting
    with no data fails in seconds, having downloaded nothing and opened no run."""
    monkeypatch.delenv("PNEUMONIA_AUG_DATA_DIR", raising=False)  # default: ./data/chest_xray
    images = tmp_path / "pngs"
    images.mkdir()
    for i in range(3):
        xray_like(i, 32).save(images / f"gen_{i}.png")
    mlflow.set_experiment("pneumonia-aug")
    with mlflow.start_run(tags={TAG_STAGE: GENERATE, TAG_GAN: Gan.DCGAN.display}) as run:
        mlflow.log_artifacts(str(images), GENERATED_DIR)
    generate_run = run.info.run_id

    result = CliRunner().invoke(main, ["train-classifier", "--setting", "DCGAN-1.0-0.6",
                                       "--synthetic-run-id", generate_run, "--image-size", "32",
                                       "--epochs", "1"])
    assert result.exit_code == 2 and "no Kermany chest X-ray data at" in result.output
    cache = Path(os.environ["PNEUMONIA_AUG_CACHE_DIR"]) / "runs" / generate_run
    assert not cache.exists()  # nothing downloaded
    client = MlflowClient()
    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [generate_run]  # no classifier run opened
