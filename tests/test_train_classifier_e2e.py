"""A real classifier run on real X-rays through `mlflow run`, read back through MlflowClient."""

import base64

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from PIL import Image

from conftest import mlflow_run
from pneumonia_aug.cli import main

pytestmark = pytest.mark.slow


def _artifacts(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def test_train_classifier_logs_everything(shared_data, tracking_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    proc = mlflow_run("train_classifier", {
        "setting": "Original-1-0", "image_size": 32, "epochs": 2, "batch_size": 32,
        "lr_scaling": "linear", "data_dir": shared_data, "max_images_per_split": 64}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 2/2" in proc.stderr  # progress, a line per epoch

    client = MlflowClient()
    experiment = client.get_experiment_by_name("pneumonia-aug")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["setting"] == "Original-1.0-0.0" and tags["gan"] == "none"
    assert tags["real_fraction"] == "1.0" and tags["synthetic_fraction"] == "0.0"
    assert (tags["seed"] == "0" and len(tags["git_commit"]) >= 7
            and len(tags["dataset_digest"]) == 16)
    assert run.data.params["image_size"] == "32" and run.data.params["weight_decay"] == "1e-05"
    # The paper's lr is for batch 16: linear scaling doubles it at batch 32, and Adam used that.
    assert run.data.params["lr"] == "0.001" and run.data.params["lr_scaling"] == "linear"
    assert float(run.data.params["lr_effective"]) == pytest.approx(2e-3)
    assert client.get_metric_history(run.info.run_id, "lr")[0].value == pytest.approx(2e-3)

    for key in ("train_loss", "val_loss", "val_accuracy", "val_precision", "val_recall",
                "val_specificity", "val_auroc", "lr"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    metrics = run.data.metrics
    for key in ("accuracy", "precision", "recall", "specificity", "f1", "auroc"):
        assert 0.0 <= metrics[f"test_{key}"] <= 1.0
    assert (metrics["test_tn"] + metrics["test_fp"] + metrics["test_fn"] + metrics["test_tp"]
            == metrics["n_test"])
    assert metrics["n_test"] == 64 and metrics["n_skipped_files"] == 0

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert all(len(d.dataset.digest) == 16 for d in inputs.values())
    assert {t.value for d in inputs.values() for t in d.tags} >= {"train", "val", "test"}

    artifacts = set(_artifacts(client, run.info.run_id))
    assert {"config.json", "manifests/train.csv", "manifests/val.csv", "manifests/test.csv",
            "plots/learning_curves.png", "plots/confusion_matrix.png", "plots/roc.png",
            "predictions/test_predictions.csv"} <= artifacts
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                artifact_path="predictions/test_predictions.csv",
                                                dst_path=str(tmp_path / "dl"))
    assert len(pd.read_csv(local)) == 64

    (version,) = client.search_model_versions("name='pneumonia-chexnet'")
    assert version.run_id == run.info.run_id
    model = mlflow.pyfunc.load_model(f"models:/pneumonia-chexnet/{version.version}")
    assert model.metadata.signature is not None
    files = sorted((shared_data / "test" / "PNEUMONIA").glob("*.jpeg"))[:2] + \
        sorted((shared_data / "test" / "NORMAL").glob("*.jpeg"))[:1]
    request = pd.DataFrame({"image": [base64.b64encode(f.read_bytes()).decode() for f in files]})
    out = model.predict(request)
    assert list(out.columns) == ["probability", "label"] and len(out) == 3
    assert out["probability"].between(0, 1).all()
    assert set(out["label"]) <= {"NORMAL", "PNEUMONIA"}
    # The best version by validation loss holds @champion; predict writes Grad-CAM overlays.
    assert (client.get_model_version_by_alias("pneumonia-chexnet", "champion").version
            == version.version)
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"not an image")
    png = tmp_path / "rgba.png"
    Image.open(files[0]).convert("RGBA").save(png)
    result = CliRunner().invoke(main, ["predict", "--output-dir", str(tmp_path / "heat"),
                                       str(files[0]), str(broken), str(png)])
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert lines[0][0] == str(files[0]) and 0 <= float(lines[0][1]) <= 1
    assert lines[0][2] in ("NORMAL", "PNEUMONIA")
    assert lines[1][0] == str(broken) and lines[1][1].startswith("error: unreadable image")
    assert (lines[2][0] == str(png)
            and float(lines[2][1]) == pytest.approx(float(lines[0][1]), abs=1e-3))
    overlay = Image.open(lines[0][3])
    assert overlay.mode == "RGB" and overlay.size == (32, 32)


def test_gan_setting_without_generated_images_fails_clearly(shared_data, tracking_uri, tmp_path):
    proc = mlflow_run("train_classifier", {
        "setting": "DCGAN-1.0-0.6", "image_size": 32, "epochs": 1,
        "data_dir": shared_data, "max_images_per_split": 32}, tmp_path)
    assert proc.returncode != 0
    assert "needs generated images" in proc.stderr and "-e train_gan -P model=dcgan" in proc.stderr
    assert "Traceback" not in proc.stderr.split("needs generated images")[0][-2000:]
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("pneumonia-aug").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.params["setting"] == "DCGAN-1.0-0.6"  # what was logged is kept
    assert run.data.tags["setting"] == "DCGAN-1.0-0.6"


def test_bad_parameter_values_fail_with_a_clear_message(tiny_kermany, tracking_uri, tmp_path):
    proc = mlflow_run("train_classifier", {"setting": "DCGAN-1.5-0.6", "data_dir": tiny_kermany},
                      tmp_path)
    assert proc.returncode != 0 and "r=1.5 is outside (0, 1]" in proc.stderr
    proc = mlflow_run("train_classifier", {"epochs": "two", "data_dir": tiny_kermany}, tmp_path)
    assert proc.returncode != 0 and "'two' is not a whole number" in proc.stderr

