"""Both GANs, generation and a GAN setting end to end through `mlflow run`, at 32 px."""

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import mlflow_run

pytestmark = pytest.mark.slow


def _ok(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.strip().splitlines()[-1]


def _run(client, run_id):
    return client.get_run(run_id)


def test_gans_generate_and_feed_a_gan_setting(shared_data, small_real_data, tracking_uri,
                                              tmp_path):
    client = MlflowClient()
    common = {"image_size": 32, "data_dir": shared_data}
    # A small classifier first (no debug cap, so it becomes @champion): its features measure
    # GAN quality (FID/KID, memorization).
    _ok(mlflow_run("train_classifier", {"image_size": 32, "epochs": 1,
                                        "data_dir": small_real_data}, tmp_path))

    dcgan = _ok(mlflow_run("train_gan", {**common, "model": "dcgan", "epochs": 2, "batch_size": 32,
                                         "max_images": 64, "sample_every": 1, "eval_images": 16},
                           tmp_path))
    run = _run(client, dcgan)
    assert run.info.status == "FINISHED" and run.data.tags["gan"] == "DCGAN"
    for key in ("epoch/d_loss", "epoch/g_loss", "epoch/d_real", "epoch/d_fake"):
        assert [m.step for m in client.get_metric_history(dcgan, key)] == [1, 2], key
    assert 0 < run.data.metrics["epoch/d_real"] < 1
    metrics = run.data.metrics
    assert {k.split("/")[0] for k in metrics} == {"epoch"}  # all sectioned
    assert run.data.tags["n_train"] == "64"  # the images it trained on: the debug cap applied
    assert run.info.run_name == "GAN DC s0"
    # The champion (32 px, one epoch) is below the feature network's floors: no quality
    # metric, and the run says why (tests/test_gan_quality_stage.py measures one).
    assert "saw 32 px images (floor 64 px)" in run.data.tags["quality_skipped"]
    assert "fid_feature_model_uri" not in run.data.tags
    names = {a.path for a in client.list_artifacts(dcgan, "samples")}
    assert names == {"samples/epoch_0001.png", "samples/epoch_0002.png"}
    plots = {a.path for a in client.list_artifacts(dcgan, "plots")}
    kept = {a.path for a in client.list_artifacts(dcgan, "quality/eval_images")}
    assert "plots/losses.png" in plots and kept == {
        "quality/eval_images/epoch_0001.npz", "quality/eval_images/epoch_0002.npz",
        "quality/eval_images/memorization.npz"}
    assert ({a.path for a in client.list_artifacts(dcgan, "checkpoints")}
            == {"checkpoints/checkpoint.pt"})
    version = client.get_model_version_by_alias("pneumonia-dcgan-generator", "newest")
    assert version.run_id == dcgan
    assert ('load_model("models:/pneumonia-dcgan-generator/1")' in version.description
            and ".generate(16, 0)" in version.description)  # the version's page: how to load it

    cgan = _ok(mlflow_run("train_gan", {**common, "model": "cgan", "epochs": 1, "batch_size": 32,
                                        "max_images": 64, "sample_every": 0, "eval_images": 16},
                          tmp_path))
    assert client.get_model_version_by_alias("pneumonia-cgan-generator", "newest").run_id == cgan
    generator = (mlflow.pyfunc.load_model("models:/pneumonia-cgan-generator@newest")
                 .unwrap_python_model())
    normal, pneumonia = generator.generate(4, 7, "NORMAL"), generator.generate(4, 7, "PNEUMONIA")
    assert normal.shape == (4, 32, 32) and normal.dtype == np.uint8
    assert not np.array_equal(normal, pneumonia)  # the label changes the image
    assert np.array_equal(normal, generator.generate(4, 7, "NORMAL"))  # the seed fixes it

    generated = _ok(mlflow_run("generate", {"model": "dcgan", "n_images": 30, "seed": 1}, tmp_path))
    run = _run(client, generated)
    assert run.data.tags["stage"] == "generate" and run.data.tags["train_gan_run_id"] == dcgan
    assert len(client.list_artifacts(generated, "generated")) == 30
    assert run.data.metrics == {} and run.info.run_name == "gen DC s1"
    assert "**30 NORMAL images**" in run.data.tags["mlflow.note.content"]
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "generated" and len(inp.dataset.digest) == 16
    assert {a.path for a in client.list_artifacts(generated, "samples")} == {"samples/grid.png"}
    _ok(mlflow_run("generate", {"model": "cgan", "n_images": 5}, tmp_path))

    setting = _ok(mlflow_run("train_classifier", {**common, "setting": "DCGAN-1-0.6", "epochs": 1,
                                                  "max_images_per_split": 48}, tmp_path))
    run = _run(client, setting)
    assert run.data.tags["setting"] == "DCGAN-1.0-0.6"
    assert run.data.tags["synthetic_run_id"] == generated  # the newest finished DCGAN generate run
    assert run.data.tags["generated_set"] == inp.dataset.digest  # the images it drew from
    assert run.data.tags["n_train_generated"] == str(round(0.6 * 30))
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert inputs == {"train", "val", "test", "synthetic"}
    local = mlflow.artifacts.download_artifacts(run_id=setting, artifact_path="manifests",
                                                dst_path=str(tmp_path / "m"))
    import pandas as pd
    val = pd.read_csv(f"{local}/val.csv")
    test = pd.read_csv(f"{local}/test.csv")
    assert (val["origin"] == "real").all() and (test["origin"] == "real").all()


def test_non_finite_gan_loss_fails_the_run_cleanly(shared_data, tracking_uri, tmp_path):
    proc = mlflow_run("train_gan", {"model": "dcgan", "image_size": 32, "epochs": 3,
                                    "batch_size": 32, "max_images": 64, "lr_d": 1e10,
                                    "data_dir": shared_data, "sample_every": 1, "eval_images": 8},
                     tmp_path)
    assert proc.returncode != 0
    assert "training diverged" in proc.stderr and "Lower lr_d/lr_g" in proc.stderr
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("pneumonia-aug").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.params["lr_d"] == "10000000000.0"
    assert run.data.tags["dataset_digest"]  # logged before the failure, still there
    assert not client.search_registered_models("name='pneumonia-dcgan-generator'")
