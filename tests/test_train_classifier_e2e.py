"""A real classifier run on real X-rays through `mlflow run` (the train_classifier entry point's
smoke test), read back through MlflowClient; its failures before training, in this process
under a run MLflow's project code made (`conftest.project_run`)."""

import base64

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from PIL import Image

from conftest import mlflow_run, project_run
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
    assert run.info.run_name == "Orig1 s0"  # within the 12 characters the runs table shows
    tags = run.data.tags
    assert tags["setting"] == "Original-1.0-0.0" and tags["gan"] == "none"
    assert tags["real_fraction"] == "1.0" and tags["synthetic_fraction"] == "0.0"
    assert (tags["seed"] == "0" and len(tags["mlflow.source.git.commit"]) >= 7
            and len(tags["dataset_digest"]) == 16)
    # what the comparison key holds besides the params: on the CPU fp32, one process
    assert tags["precision"] == "fp32" and tags["world_size"] == "1"
    assert tags["code_version"] != "unknown" and len(tags["comparison_key"]) == 12
    assert not [k for k in tags if k.startswith(("cmp.", "claim.")) or k in (
        "comparison_parts", "git_commit", "model_uri")]
    assert int(tags["cpu_threads"]) >= 1 and "generated_set" not in tags
    assert run.data.params["image_size"] == "32" and run.data.params["weight_decay"] == "1e-05"
    # The paper's lr is for batch 16: linear scaling doubles it at batch 32, and Adam used that.
    assert run.data.params["lr"] == "0.001" and run.data.params["lr_scaling"] == "linear"
    assert float(run.data.params["lr_effective"]) == pytest.approx(2e-3)
    # the lr per epoch as a multiple of that: 1 until the plateau schedule lowers it
    assert client.get_metric_history(run.info.run_id, "epoch/lr_scale")[0].value == 1

    for key in ("epoch/loss_train", "epoch/loss_val", "epoch/val_accuracy",
                "epoch/val_precision", "epoch/val_recall", "epoch/val_specificity",
                "epoch/val_auroc", "epoch/lr_scale"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    metrics = run.data.metrics
    assert not [k for k in metrics if k.startswith("system/")]  # system metrics are opt-in
    # Every metric has a chart section in the UI, the per-epoch curves the first one.
    sections = sorted({k.split("/")[0] for k in metrics})
    assert sections == ["epoch", "model", "test", "test_op", "train"] and "/" in min(metrics)
    confusion = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="predictions/confusion.csv",
        dst_path=str(tmp_path / "c"))).set_index("at")
    tn, fp, fn, tp = confusion.loc["0.5 (Table 1)", ["tn", "fp", "fn", "tp"]]
    assert tn + fp + fn + tp == int(tags["n_test"]) == 64
    assert "n_skipped_files" not in tags  # none skipped
    # The summary metrics are the confusion matrix's, which is the predictions' at 0.5.
    assert metrics["test/accuracy"] == pytest.approx((tp + tn) / 64)
    assert metrics["test/recall"] == pytest.approx(tp / (tp + fn))
    assert metrics["test/specificity"] == pytest.approx(tn / (tn + fp))
    assert metrics["model/epoch"] in (1, 2) and metrics["train/seconds"] > 0

    # Temperature and operating point from validation; what they give on test.
    assert metrics["model/temperature"] > 0 and 0 < metrics["model/threshold"] < 1
    op = confusion.loc["served", ["tn", "fp", "fn", "tp"]].to_dict()
    assert confusion.loc["served", "threshold"] == pytest.approx(metrics["model/threshold"])
    assert sum(op.values()) == 64 and op["tp"] + op["fn"] == tp + fn
    assert metrics["test_op/specificity"] == pytest.approx(op["tn"] / (op["tn"] + op["fp"]))
    for name in ("test/ece", "test/ece_calibrated", "test/brier", "test/brier_calibrated",
                 "test/sens_at_spec90", "test/sens_at_spec95", "test/spec_at_sens90",
                 "test/spec_at_sens95"):
        assert 0 <= metrics[name] <= 1, name
    assert {"test/recall_bacteria", "test/recall_virus", "test_op/recall_virus",
            "test_op/recall_bacteria"} <= set(metrics)

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert all(len(inputs[name].dataset.digest) == 16 for name in ("train", "val", "test"))
    assert {t.value for d in inputs.values() for t in d.tags} >= {"train", "val", "test"}

    artifacts = set(_artifacts(client, run.info.run_id))
    assert {"config.json", "manifests/train.csv", "manifests/val.csv", "manifests/test.csv",
            "plots/learning_curves.png", "plots/confusion_matrix.png", "plots/roc.png",
            "plots/reliability.png", "plots/confusion_matrix_served.png",
            "predictions/test_predictions.csv", "predictions/test_subgroups.csv",
            "predictions/confusion.csv", "model_card.md"} <= artifacts
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                artifact_path="predictions/test_predictions.csv",
                                                dst_path=str(tmp_path / "dl"))
    predictions = pd.read_csv(local)
    assert len(predictions) == 64
    called = (predictions["probability"] >= 0.5).astype(int)
    assert (called == predictions["y_true"]).mean() == pytest.approx(metrics["test/accuracy"])
    assert ((called == 1) & (predictions["y_true"] == 1)).sum() == tp
    served = predictions["probability_calibrated"] >= metrics["model/threshold"]
    assert (served & (predictions["y_true"] == 1)).sum() == op["tp"]

    (version,) = client.search_model_versions("name='pneumonia-chexnet'")
    assert version.run_id == run.info.run_id and version.tags["max_images_per_split"] == "64"
    # MLflow 3: the logged model is named for what it is, has the run's config as params, and
    # the test metrics, on the test set, that the UI's model views rank versions by.
    assert version.source.startswith("models:/m-")  # the logged model (the run's Logged models)
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert model.name == "chexnet-Original-1_0-0_0-s0" and model.params["image_size"] == "32"
    linked = {m.key: m for m in model.metrics}
    assert linked["test/accuracy"].value == metrics["test/accuracy"]
    assert (linked["test/accuracy"].dataset_name, linked["test/accuracy"].dataset_digest) == \
        ("test", inputs["test"].dataset.digest)
    assert linked["model/val_loss"].dataset_name == "val"
    assert linked["model/threshold"].dataset_name == "val" and "test_op/recall" in linked
    # What the UI says: the experiment's kind, the run, the registered model and its version.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    note = tags["mlflow.note.content"]
    assert note.startswith("**CheXNet** (DenseNet121) on **Original-1.0-0.0** (all real images)"
                           ", seed 0, 32 px, 2 epochs, batch 32")
    assert f"at threshold 0.5 (Table 1): test accuracy {metrics['test/accuracy']:.3f}" in note
    assert (f"Trained on {tags['n_train']} images ({tags['n_train_real_normal']} real NORMAL, "
            f"the rest PNEUMONIA), validated on {tags['n_val']}, tested on 64.") in note
    assert ("[pneumonia-chexnet v1](#/models/pneumonia-chexnet/versions/1"
            "?workflowType=machine_learning)") in note
    assert model.tags["mlflow.note.content"] == note.split("\n\n**Result**")[0]
    assert version.description.startswith("CheXNet on Original-1.0-0.0, seed 0, 32 px")
    assert tags["dataset_digest"] in version.description and run.info.run_id in version.description
    # The version's page: its test metrics, how to load it, its test accuracy as a tag.
    assert f"test accuracy {metrics['test/accuracy']:.3f}, recall" in version.description
    assert (f'mlflow.pyfunc.load_model("models:/pneumonia-chexnet/{version.version}")'
            in version.description)
    assert f"predict --model models:/pneumonia-chexnet/{version.version}" in version.description
    # (a version tag keeps its name: tags are not charted)
    assert float(version.tags["test_accuracy"]) == pytest.approx(metrics["test/accuracy"])
    assert "**Input:**" in client.get_registered_model("pneumonia-chexnet").description
    # The model card, on the version's page: the served threshold with test-set intervals,
    # subgroups, calibration, limits.
    card = version.description.split("## Model card: ")[1]
    assert f"probability >= {metrics['model/threshold']:.3f}" in card
    assert "Not a medical device" in card
    n_pos, n_neg = int(tp + fn), int(tn + fp)
    assert f"sensitivity (recall) {metrics['test_op/recall']:.3f} [" in card
    assert f"(n = {n_pos})" in card and f"(n = {n_neg})" in card
    assert f"{metrics['test/ece']:.3f} before and {metrics['test/ece_calibrated']:.3f}" in card
    assert "bacteria" in card and "debug cap" in card and "patients" in card
    # A debug-capped run is registered but never @champion.
    assert tags["champion_version"].startswith("none")
    with pytest.raises(mlflow.exceptions.MlflowException, match="alias champion not found"):
        client.get_model_version_by_alias("pneumonia-chexnet", "champion")
    uri = f"models:/pneumonia-chexnet/{version.version}"
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.signature is not None
    files = sorted((shared_data / "test" / "PNEUMONIA").glob("*.jpeg"))[:2] + \
        sorted((shared_data / "test" / "NORMAL").glob("*.jpeg"))[:1]
    request = pd.DataFrame({"image": [base64.b64encode(f.read_bytes()).decode() for f in files]})
    out = model.predict(request)
    assert list(out.columns) == ["probability", "label", "threshold", "error"] and len(out) == 3
    assert out["probability"].astype(float).between(0, 1).all() and out["error"].isna().all()
    # The served label is at the run's threshold, on the calibrated probability.
    assert list(out["threshold"]) == pytest.approx([metrics["model/threshold"]] * 3)
    assert list(out["label"]) == ["PNEUMONIA" if p >= metrics["model/threshold"] else "NORMAL"
                                  for p in out["probability"]]
    # predict writes Grad-CAM overlays.
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"not an image")
    png = tmp_path / "rgba.png"
    Image.open(files[0]).convert("RGBA").save(png)
    result = CliRunner().invoke(main, ["predict", "--model", uri, "--output-dir",
                                       str(tmp_path / "heat"),
                                       str(files[0]), str(broken), str(png)])
    assert result.exit_code == 1, result.output  # one image failed: the command did not succeed
    header, *lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert header == ["image", "probability", "label", "threshold", "heatmap"]
    # The CLI's probability, label and threshold are the served model's for the same file.
    assert lines[0][0] == str(files[0])
    assert float(lines[0][1]) == pytest.approx(out["probability"][0], abs=1e-4)
    assert lines[0][2] == out["label"][0]
    assert float(lines[0][3]) == pytest.approx(out["threshold"][0], abs=1e-4)
    assert lines[1][0] == str(broken) and lines[1][1].startswith("error: unreadable image")
    assert (lines[2][0] == str(png)
            and float(lines[2][1]) == pytest.approx(float(lines[0][1]), abs=1e-3))
    overlay = Image.open(lines[0][4])  # drawn on the original, not the 32 px model input
    assert overlay.mode == "RGB" and overlay.width == Image.open(files[0]).width > 32


def test_gan_setting_without_generated_images_fails_clearly(tiny_kermany, tracking_uri):
    args = {"setting": "DCGAN-1.0-0.6", "image_size": 32, "epochs": 1, "data_dir": tiny_kermany,
            "max_images_per_split": 32}
    # Called directly: the check runs before any run opens, so none is left behind.
    result = CliRunner().invoke(main, ["train-classifier", *[
        x for k, v in args.items() for x in (f"--{k.replace('_', '-')}", str(v))]])
    assert result.exit_code == 2, result.output
    assert "needs generated images" in result.output and "-e train_gan -P model=dcgan" in \
        result.output
    client = MlflowClient()
    experiment = client.get_experiment_by_name("pneumonia-aug")
    assert experiment is None or not client.search_runs([experiment.experiment_id])
    # Under `mlflow run` the run exists before our code starts: it says why it failed, params
    # kept (`mlflow run` then ends it FAILED).
    result, run_id = project_run("train_classifier", args)
    assert result.exit_code == 2, result.output
    assert "needs generated images" in result.stderr and \
        "-e train_gan -P model=dcgan" in result.stderr
    assert "Traceback" not in result.output
    (run,) = client.search_runs([client.get_experiment_by_name("pneumonia-aug").experiment_id])
    assert run.info.run_id == run_id
    assert run.data.params["setting"] == "DCGAN-1.0-0.6"  # what was logged is kept
    assert "needs generated images" in run.data.tags["failure_reason"]  # and why it failed
    assert run.data.tags["mlflow.note.content"].startswith("**Failed:** a DCGAN setting needs")


def test_bad_parameter_values_fail_with_a_clear_message(tiny_kermany, tracking_uri):
    result, _ = project_run("train_classifier", {"setting": "DCGAN-1.5-0.6",
                                                 "data_dir": tiny_kermany})
    assert result.exit_code != 0 and "r=1.5 is outside (0, 1]" in result.stderr
    result, _ = project_run("train_classifier", {"epochs": "two", "data_dir": tiny_kermany})
    assert result.exit_code != 0 and "'two' is not a whole number" in result.stderr
