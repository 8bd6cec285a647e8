"""Both GANs, generation and a GAN setting end to end at 32 px, on a generated Kermany tree.

One store for the module: a classifier (the @champion, whose features GAN quality would use),
a DCGAN and its generate run through `mlflow run` (the train_gan and generate entry points'
smoke tests), then a CGAN, its generate run and a DCGAN setting, each its entry point's
command in this process under a run MLflow's project code made (`conftest.project_run`).
Each test reads one part of what they logged.
"""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import make_kermany, mlflow_run, new_store, project_run, use_store

pytestmark = pytest.mark.slow
DATA = {"train": 40, "val": 4, "test": 8}  # images per class
GAN = {"image_size": 32, "batch_size": 32, "max_images": 32, "eval_images": 16}


def _ok(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.strip().splitlines()[-1]


def _in_process(entry_point: str, params: dict) -> str:
    result, run_id = project_run(entry_point, params)
    assert result.exit_code == 0, result.output[-4000:]
    return run_id


@pytest.fixture(scope="module")
def built(tmp_path_factory, store_template) -> dict:
    root = tmp_path_factory.mktemp("gan_e2e")
    data = make_kermany(root / "chest_xray", DATA, size=40)
    uri = new_store(store_template, root)
    ids = {"uri": uri, "root": root}
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, uri, root)
        # A small classifier first (no debug cap, so it becomes @champion): the feature
        # network GAN quality would measure in, were it not below its floors.
        ids["classifier"] = _in_process("train_classifier", {"image_size": 32, "epochs": 1,
                                                             "data_dir": data})
        ids["dcgan"] = _ok(mlflow_run("train_gan", {
            **GAN, "model": "dcgan", "epochs": 2, "sample_every": 1, "data_dir": data}, root))
        ids["generate"] = _ok(mlflow_run("generate", {"model": "dcgan", "n_images": 30,
                                                      "seed": 1}, root))
        ids["cgan"] = _in_process("train_gan", {**GAN, "model": "cgan", "epochs": 1,
                                                "sample_every": 0, "data_dir": data})
        # The newest generate run is the CGAN's: a DCGAN setting must not draw from it.
        ids["generate_cgan"] = _in_process("generate", {"model": "cgan", "n_images": 5})
        ids["setting"] = _in_process("train_classifier", {
            "image_size": 32, "setting": "DCGAN-1-0.6", "epochs": 1,
            "max_images_per_split": 48, "data_dir": data})
    return ids


@pytest.fixture
def runs(built, monkeypatch) -> dict:
    use_store(monkeypatch, built["uri"], built["root"])
    yield built
    mlflow.set_tracking_uri(None)


def test_a_dcgan_run_logs_each_epoch_once_on_its_capped_images(runs):
    client = MlflowClient()
    run = client.get_run(runs["dcgan"])
    assert run.info.status == "FINISHED" and run.data.tags["gan"] == "DCGAN"
    for key in ("epoch/d_loss", "epoch/g_loss", "epoch/d_real", "epoch/d_fake"):
        assert [m.step for m in client.get_metric_history(runs["dcgan"], key)] == [1, 2], key
    assert 0 < run.data.metrics["epoch/d_real"] < 1
    assert {k.split("/")[0] for k in run.data.metrics} == {"epoch"}  # all sectioned
    assert run.data.tags["n_train"] == "32"  # the images it trained on: the debug cap applied
    assert run.info.run_name == "GAN DC s0"


def test_a_dcgan_run_keeps_its_samples_eval_images_and_checkpoint(runs):
    client, dcgan = MlflowClient(), runs["dcgan"]
    names = {a.path for a in client.list_artifacts(dcgan, "samples")}
    assert names == {"samples/epoch_0001.png", "samples/epoch_0002.png"}
    plots = {a.path for a in client.list_artifacts(dcgan, "plots")}
    kept = {a.path for a in client.list_artifacts(dcgan, "quality/eval_images")}
    assert "plots/losses.png" in plots and kept == {
        "quality/eval_images/epoch_0001.npz", "quality/eval_images/epoch_0002.npz",
        "quality/eval_images/memorization.npz"}
    assert ({a.path for a in client.list_artifacts(dcgan, "checkpoints")}
            == {"checkpoints/checkpoint.pt"})


def test_a_champion_below_the_feature_floors_measures_nothing_and_the_run_says_why(runs):
    # The champion (32 px, one epoch) is below the feature network's floors: no quality
    # metric, and the run says why (tests/test_gan_quality_stage.py measures one).
    client = MlflowClient()
    champion = client.get_model_version_by_alias("pneumonia-chexnet", "champion")
    assert champion.run_id == runs["classifier"]
    run = client.get_run(runs["dcgan"])
    assert "saw 32 px images (floor 64 px)" in run.data.tags["quality_skipped"]
    assert "fid_feature_model_uri" not in run.data.tags
    assert not [k for k in run.data.metrics if k.startswith("quality/")]


def test_the_dcgan_generator_is_registered_saying_how_to_load_it(runs):
    version = MlflowClient().get_model_version_by_alias("pneumonia-dcgan-generator", "newest")
    assert version.run_id == runs["dcgan"]
    assert ('load_model("models:/pneumonia-dcgan-generator/1")' in version.description
            and ".generate(16, 0)" in version.description)  # the version's page: how to load it


def test_the_cgan_generator_draws_by_label_and_seed(runs):
    client = MlflowClient()
    assert (client.get_model_version_by_alias("pneumonia-cgan-generator", "newest").run_id
            == runs["cgan"])
    generator = (mlflow.pyfunc.load_model("models:/pneumonia-cgan-generator@newest")
                 .unwrap_python_model())
    normal, pneumonia = generator.generate(4, 7, "NORMAL"), generator.generate(4, 7, "PNEUMONIA")
    assert normal.shape == (4, 32, 32) and normal.dtype == np.uint8
    assert not np.array_equal(normal, pneumonia)  # the label changes the image
    assert np.array_equal(normal, generator.generate(4, 7, "NORMAL"))  # the seed fixes it


def test_generate_logs_its_images_their_digest_and_a_grid(runs):
    client, generated = MlflowClient(), runs["generate"]
    run = client.get_run(generated)
    assert run.data.tags["stage"] == "generate" and run.data.tags["train_gan_run_id"] == \
        runs["dcgan"]
    assert len(client.list_artifacts(generated, "generated")) == 30
    assert run.data.metrics == {} and run.info.run_name == "gen DC s1"
    assert "**30 NORMAL images**" in run.data.tags["mlflow.note.content"]
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "generated" and len(inp.dataset.digest) == 16
    assert {a.path for a in client.list_artifacts(generated, "samples")} == {"samples/grid.png"}


def test_a_gan_setting_draws_from_the_newest_dcgan_generate_run(runs, tmp_path):
    client = MlflowClient()
    run = client.get_run(runs["setting"])
    assert run.data.tags["setting"] == "DCGAN-1.0-0.6"
    # the newest finished DCGAN generate run (a CGAN's came after it)
    assert run.data.tags["synthetic_run_id"] == runs["generate"]
    (inp,) = client.get_run(runs["generate"]).inputs.dataset_inputs
    assert run.data.tags["generated_set"] == inp.dataset.digest  # the images it drew from
    assert run.data.tags["n_train_generated"] == str(round(0.6 * 30))
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert inputs == {"train", "val", "test", "synthetic"}
    local = mlflow.artifacts.download_artifacts(run_id=runs["setting"],
                                                artifact_path="manifests",
                                                dst_path=str(tmp_path / "m"))
    val = pd.read_csv(f"{local}/val.csv")
    test = pd.read_csv(f"{local}/test.csv")
    assert (val["origin"] == "real").all() and (test["origin"] == "real").all()


def test_non_finite_gan_loss_fails_the_run_cleanly(tiny_kermany, tracking_uri):
    """Under `mlflow run` the run exists before training: a diverged GAN ends it FAILED, with
    one clear line and what was logged before kept."""
    result, run_id = project_run("train_gan", {
        "model": "dcgan", "image_size": 32, "epochs": 3, "batch_size": 8, "max_images": 16,
        "lr_d": 1e10, "data_dir": tiny_kermany, "sample_every": 1, "eval_images": 8})
    assert result.exit_code == 2, result.output[-3000:]
    assert "training diverged" in result.stderr and "Lower lr_d/lr_g" in result.stderr
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("pneumonia-aug").experiment_id])
    assert run.info.run_id == run_id
    assert run.info.status == "FAILED"  # ended by the stage itself (`mlflow run` does not here)
    assert run.data.params["lr_d"] == "10000000000.0"
    assert run.data.tags["dataset_digest"]  # logged before the failure, still there
    assert not client.search_registered_models("name='pneumonia-dcgan-generator'")
