"""Data-parallel training under torchrun: 2 CPU processes (gloo), one MLflow run per job.

The DCGAN trained without a stop is trained once for the module: the one-run test reads it, the
resume test holds the resumed run's numbers to it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import make_kermany, new_store
from pneumonia_aug.training.distributed import DistContext

PER_EPOCH = ("epoch/loss_train", "epoch/loss_val", "epoch/val_accuracy", "epoch/val_precision",
             "epoch/val_recall", "epoch/val_specificity", "epoch/val_f1", "epoch/val_auroc",
             "epoch/lr_scale")
GAN_PER_EPOCH = ("epoch/d_loss", "epoch/g_loss", "epoch/d_real", "epoch/d_fake")
GAN_EPOCHS = 8
# Samples and the images kept for GAN quality every 4 epochs: at 4 and 8.
GAN = ["train-gan", "--model", "dcgan", "--image-size", "32", "--epochs", str(GAN_EPOCHS),
       "--batch-size", "32", "--max-images", "64", "--sample-every", "4", "--eval-images", "16",
       "--feature-model-uri", ""]


@pytest.mark.parametrize("n", [7, 8, 48])
def test_shards_cover_the_permutation_in_equal_parts(n):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    shards = [DistContext(rank, 4).shard(order) for rank in range(4)]
    assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
    assert set(torch.cat(shards).tolist()) == set(range(n))
    # The ranks' k-th batches of 2 together are the k-th global batch of 8.
    assert set(torch.cat([s[:2] for s in shards]).tolist()) == set(order[:8].tolist())
    assert DistContext().shard(order) is order  # one process: untouched


def test_global_batch_must_split_evenly():
    from pneumonia_aug.errors import PneumoniaAugError

    assert DistContext(0, 2).local_batch(16) == 8
    with pytest.raises(PneumoniaAugError, match="multiple of 3"):
        DistContext(0, 3).local_batch(16)


def _torchrun_cmd(args: list[str]) -> list[str]:
    # --standalone: a free local port, so test runs in parallel do not collide.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "pneumonia_aug.cli", *args]


def _env(**more: str) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", **more}  # 2 processes on 2 cores


def _torchrun(args: list[str], cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_torchrun_cmd(args), env=_env(**env), cwd=cwd, capture_output=True,
                          text=True, timeout=600, check=False)


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A generated Kermany tree: 72 NORMAL training images (the GANs' 64 and more), 24 a class
    to test on."""
    return make_kermany(tmp_path_factory.mktemp("ddp") / "chest_xray",
                        {"train": 72, "val": 2, "test": 24}, size=40)


@pytest.fixture(scope="module")
def unbroken_gan(data, store_template, tmp_path_factory) -> tuple[MlflowClient, str]:
    """The DCGAN trained under torchrun from start to end, in a store of its own: (a client of
    that store, the run's id)."""
    folder = tmp_path_factory.mktemp("unbroken")
    uri = new_store(store_template, folder)
    done = _torchrun([*GAN, "--data-dir", str(data)], cwd=folder, MLFLOW_TRACKING_URI=uri)
    return MlflowClient(tracking_uri=uri), _ok(done)


@pytest.mark.slow
def test_torchrun_trains_the_classifier_as_one_run(data, tracking_uri, tmp_path):
    client = MlflowClient()
    run_id = _ok(_torchrun(["train-classifier", "--image-size", "32", "--epochs", "2",
                            "--batch-size", "16", "--max-images-per-split", "48",
                            "--data-dir", str(data)]))
    experiment = client.get_experiment_by_name("pneumonia-aug")
    (run,) = client.search_runs([experiment.experiment_id])  # one run, not one per process
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.tags["world_size"] == "2"
    for key in PER_EPOCH:
        assert [m.step for m in client.get_metric_history(run_id, key)] == [1, 2], key
    metrics = run.data.metrics
    confusion = pd.read_csv(client.download_artifacts(run_id, "predictions/confusion.csv",
                                                      str(tmp_path / "dl"))).set_index("at")
    tn, fp, fn, tp = confusion.loc["0.5 (Table 1)", ["tn", "fp", "fn", "tp"]]
    assert tn + fp + fn + tp == int(run.data.tags["n_test"]) == 48  # rank 0 scored all of test
    assert metrics["test/accuracy"] == pytest.approx((tp + tn) / 48)
    (version,) = client.search_model_versions("name='pneumonia-chexnet'")
    assert version.run_id == run_id


@pytest.mark.slow
def test_torchrun_trains_a_gan_as_one_run(unbroken_gan):
    """The DCGAN: one run; the images kept for GAN quality written once, by rank 0."""
    client, gan_id = unbroken_gan
    (gan,) = client.search_runs([client.get_experiment_by_name("pneumonia-aug").experiment_id])
    assert gan.info.run_id == gan_id  # one run, not one per process
    assert gan.info.status == "FINISHED" and gan.data.tags["world_size"] == "2"
    for key in GAN_PER_EPOCH:
        assert [m.step for m in client.get_metric_history(gan_id, key)] == list(
            range(1, GAN_EPOCHS + 1)), key
    assert 0 < gan.data.metrics["epoch/d_real"] < 1
    kept = {a.path for a in client.list_artifacts(gan_id, "quality/eval_images")}
    assert kept == {"quality/eval_images/epoch_0004.npz", "quality/eval_images/epoch_0008.npz",
                    "quality/eval_images/memorization.npz"}
    assert client.get_model_version_by_alias("pneumonia-dcgan-generator", "newest").run_id == gan_id


@pytest.mark.slow
def test_torchrun_gan_resumes_exactly_after_sigterm(data, tracking_uri, unbroken_gan):
    """Stopping torchrun (SIGTERM, as a scheduler does) ends the run KILLED; `--resume` under
    torchrun continues it: every rank gets the checkpoint and its own random state back.
    (The single-process SIGTERM path is the same code with world size 1; SIGKILL is covered
    by tests/test_resume.py.)"""
    import time

    gan = [*GAN, "--data-dir", str(data)]
    client = MlflowClient()
    reference_client, reference = unbroken_gan
    proc = subprocess.Popen(_torchrun_cmd([*gan, "--experiment-name", "resumed"]), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_id, deadline = None, time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            experiment = client.get_experiment_by_name("resumed")
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
            history = client.get_metric_history(runs[0].info.run_id, "epoch/d_loss") if runs else []
            if max((m.step for m in history), default=0) >= 2:
                run_id = runs[0].info.run_id
                proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
                break
            time.sleep(0.1)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert run_id is not None, "the run ended before epoch 2 was logged"
    assert client.get_run(run_id).info.status == "KILLED"  # like Ctrl-C, not FAILED
    assert len(client.get_metric_history(run_id, "epoch/d_loss")) < GAN_EPOCHS
    checkpoint = Path(os.environ["PNEUMONIA_AUG_CACHE_DIR"]) / "checkpoints" / run_id
    assert (checkpoint / "checkpoint.pt").is_file()

    assert _ok(_torchrun([*gan, "--experiment-name", "resumed", "--resume", run_id])) == run_id
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in GAN_PER_EPOCH:
        resumed = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        unbroken = sorted(reference_client.get_metric_history(reference, key),
                          key=lambda m: m.step)
        assert [m.step for m in resumed] == list(range(1, GAN_EPOCHS + 1)), key
        assert [m.value for m in resumed] == pytest.approx([m.value for m in unbroken], abs=1e-6)
    samples = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert samples == {f"samples/epoch_{e:04d}.png" for e in (4, 8)}
    assert client.get_model_version_by_alias("pneumonia-dcgan-generator", "newest").run_id == run_id
    assert not checkpoint.exists()  # removed once everything was logged
