"""A run killed mid-training continues with `--resume RUN_ID` into the same MLflow run, logs
every epoch exactly once, and ends with the numbers of a run that was never interrupted."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from conftest import forget_active_experiment, make_kermany
from pneumonia_aug.cli import main

pytestmark = pytest.mark.slow

CLASSIFIER_EPOCHS = 4
CLASSIFIER = ["train-classifier", "--image-size", "32", "--epochs", str(CLASSIFIER_EPOCHS),
              "--batch-size", "16", "--max-images-per-split", "48"]
PER_EPOCH = ("epoch/loss_train", "epoch/loss_val", "epoch/val_accuracy", "epoch/val_precision",
             "epoch/val_recall", "epoch/val_specificity", "epoch/val_f1", "epoch/val_auroc",
             "epoch/lr_scale")
def _command(args: list[str], data: Path, experiment: str) -> list[str]:
    return [sys.executable, "-m", "pneumonia_aug.cli", *args, "--data-dir", str(data),
            "--experiment-name", experiment]


def _env() -> dict:
    # One thread in every run: CPU kernels then add in the same order in the interrupted, the
    # resumed and the reference run (and 2 shared cores run faster without oversubscription).
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(args, data, experiment) -> str:
    """The CLI in this process (no other process importing torch), on one thread as the
    killed process: the run id it prints."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = _in_process(args, data, experiment)
    finally:
        torch.set_num_threads(threads)
        forget_active_experiment()  # the next command chooses its own
    assert result.exit_code == 0, result.output[-4000:]
    return result.stdout.strip().splitlines()[-1]


def _steps(client, run_id, key) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def _history(client, run_id, key) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def _start_and_kill(args, data, experiment, metric, sig) -> str:
    """Start a run, send `sig` once `metric` has been logged for epoch 2; return the run id."""
    proc = subprocess.Popen(_command(args, data, experiment), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    client, run_id, deadline = MlflowClient(), None, time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            experiment_ = client.get_experiment_by_name(experiment)
            runs = client.search_runs([experiment_.experiment_id]) if experiment_ else []
            if runs and max(_steps(client, runs[0].info.run_id, metric), default=0) >= 2:
                run_id = runs[0].info.run_id
                proc.send_signal(sig)
                break
            time.sleep(0.1)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert run_id is not None, f"the run ended before epoch 2 was logged:\n{stderr[-3000:]}"
    return run_id


def _in_process(args, data, experiment):
    """The CLI in this process (a refusal comes before any training): click's result."""
    return CliRunner().invoke(main, _command(args, data, experiment)[3:])


def test_classifier_resumes_after_sigkill(tracking_uri, tmp_path):
    data = make_kermany(tmp_path / "chest_xray", {"train": 24, "val": 2, "test": 12})
    client = MlflowClient()
    reference = client.get_run(_run(CLASSIFIER, data, "reference"))

    run_id = _start_and_kill(CLASSIFIER, data, "resumed", "epoch/loss_train", signal.SIGKILL)
    assert client.get_run(run_id).info.status == "RUNNING"  # SIGKILL leaves no time to end it
    # killed mid-training
    assert max(_steps(client, run_id, "epoch/loss_train")) < CLASSIFIER_EPOCHS
    checkpoint = Path(os.environ["PNEUMONIA_AUG_CACHE_DIR"]) / "checkpoints" / run_id
    assert (checkpoint / "checkpoint.pt").is_file()

    # Refusals leave the run as it was and say what to do.
    changed = _in_process([*CLASSIFIER, "--epochs", "5", "--resume", run_id], data, "resumed")
    assert changed.exit_code == 2 and "epochs=4 (run) vs 5 (given)" in changed.stderr
    checkpoint.rename(tmp_path / "moved")
    missing = _in_process([*CLASSIFIER, "--resume", run_id], data, "resumed")
    assert missing.exit_code == 2
    assert f"no checkpoint of run {run_id} at {checkpoint}" in missing.stderr
    (tmp_path / "moved").rename(checkpoint)
    assert client.get_run(run_id).info.status == "RUNNING"

    assert _run([*CLASSIFIER, "--resume", run_id], data, "resumed") == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment_by_name("resumed")
    assert len(client.search_runs([experiment.experiment_id])) == 1  # the same run, no new one
    for key in PER_EPOCH:
        assert _steps(client, run_id, key) == list(range(1, CLASSIFIER_EPOCHS + 1)), key
        # The same draws, weights and optimizer state as the unbroken run, to float precision.
        assert _history(client, run_id, key) == pytest.approx(
            _history(client, reference.info.run_id, key), abs=1e-6), key
    for key, value in reference.data.metrics.items():
        if key.startswith(("test/", "test_op/", "model/")):
            assert run.data.metrics[key] == pytest.approx(value, abs=1e-6), key
            # logged as often as by the unbroken run: once, at step 0
            assert _steps(client, run_id, key) == _steps(client, reference.info.run_id,
                                                         key) == [0], key
    assert not checkpoint.exists()  # removed once everything was logged
    versions = client.search_model_versions("name='pneumonia-chexnet'")
    assert [v.run_id for v in versions].count(run_id) == 1
    assert client.get_run(reference.info.run_id).data.tags["world_size"] == "1"


def test_a_run_of_an_older_version_is_refused_saying_why(tracking_uri, tmp_path):
    """A run logged under the flat metric names of before the UI's chart sections (and its
    commit in the tag of then, `git_commit`) cannot be continued under the new ones (each
    curve would be split in two): refused before anything changes, with what to do
    instead."""
    import mlflow

    from pneumonia_aug.stages.checkpoints import ResumeError, load_resume

    config = {"setting": "Original-1.0-0.0", "epochs": 4}
    with mlflow.start_run() as run:
        mlflow.set_tags({"stage": "train_classifier", "git_commit": "0123456789abcdef"})
        mlflow.log_dict(config, "config.json")
        mlflow.log_metrics({"n_train": 48, "n_val": 48})
        for epoch in (1, 2):
            mlflow.log_metrics({"train_loss": 0.7, "val_loss": 0.6}, step=epoch)
    MlflowClient().set_terminated(run.info.run_id, "KILLED")
    with pytest.raises(ResumeError) as refused:
        load_resume(run.info.run_id, "train_classifier", config, str(tmp_path))
    message = str(refused.value)
    assert "older version of pneumonia-aug" in message and "n_train, n_val, train_loss" in message
    assert "Start a new run instead" in message and "(commit 0123456789ab)" in message
    assert MlflowClient().get_run(run.info.run_id).info.status == "KILLED"  # left as it was
