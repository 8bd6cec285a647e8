"""The names stages share."""

import pytest

from pneumonia_aug.contract import (
    Gan,
    current_metric_name,
    current_metrics,
    generator_model_name,
    logged_metric_name,
    newest_generator_uri,
    older_metric_names,
    run_name,
)


@pytest.mark.parametrize("text", ["dcgan", "DCGAN", "DcGaN", Gan.DCGAN])
def test_gan_parses_any_spelling_and_itself(text):
    assert Gan.parse(text) is Gan.DCGAN
    assert Gan.parse(text).display == "DCGAN" and Gan.parse(text).value == "dcgan"


def test_unknown_gan_names_the_choices():
    with pytest.raises(ValueError, match=r"model must be one of \['dcgan', 'cgan'\], not 'gan'"):
        Gan.parse("gan")


def test_registered_names():
    assert generator_model_name(Gan.CGAN) == generator_model_name("CGAN") == \
        "pneumonia-cgan-generator"
    assert newest_generator_uri("dcgan") == "models:/pneumonia-dcgan-generator@newest"


def test_ui_links_open_the_model_training_view():
    """MLflow 3.17's UI routes by the address's hash and reads `workflowType` from the query
    inside it; without it an experiment opens in the GenAI view."""
    from pneumonia_aug import tracking

    assert tracking.run_page("3", "abc") == \
        "#/experiments/3/runs/abc?workflowType=machine_learning"
    assert tracking.model_version_page("pneumonia-chexnet", "2") == \
        "#/models/pneumonia-chexnet/versions/2?workflowType=machine_learning"


def test_run_names_start_with_the_seed():
    assert run_name(2, "DCGAN-1.0-0.6") == "s2 DCGAN-1.0-0.6"


@pytest.mark.parametrize("old, new", [
    ("train_loss", "train/loss"), ("lr", "train/lr"), ("val_loss", "val/loss"),
    ("val_auroc", "val/auroc"), ("train_seconds", "train/seconds"),
    ("best_epoch", "chosen/epoch"), ("best_val_loss", "chosen/val_loss"),
    ("threshold", "chosen/threshold"), ("temperature", "chosen/temperature"),
    ("test_accuracy", "test/accuracy"), ("test_tn", "test/tn"),
    ("test_recall_virus_low", "test/recall_virus_low"), ("test_op_recall", "test_op/recall"),
    ("test_op_recall_bacteria_high", "test_op/recall_bacteria_high"),
    ("n_train", "data/n_train"), ("n_test_virus", "data/n_test_virus"),
    ("n_images", "data/n_images"), ("d_loss", "train/d_loss"), ("d_fake", "train/d_fake"),
    ("fid_xray", "quality/fid_xray"), ("kid_xray_std", "quality/kid_xray_std"),
    ("nn_distance_min", "quality/nn_distance_min"),
])
def test_older_flat_metric_names_read_as_todays(old, new):
    assert current_metric_name(old) == new
    assert current_metric_name(new) == new  # today's names stay


@pytest.mark.parametrize("name", [
    "test_op_accuracy_score", "test_op_true_positives", "system/cpu_utilization_percentage",
    "accuracy_mean/DCGAN-1.0-0.6", "runs_launched"])
def test_names_never_renamed_stay(name):
    """MLflow's evaluation's (flat, as MLflow must have them), MLflow's system metrics,
    compare's and the study's."""
    assert current_metric_name(name) == name


def test_a_runs_metrics_under_todays_names():
    old = {"test_accuracy": 0.8, "n_train": 10, "test_op_accuracy_score": 0.7}
    assert current_metrics(old) == {"test/accuracy": 0.8, "data/n_train": 10,
                                    "test_op_accuracy_score": 0.7}
    assert current_metrics({"test_accuracy": 0.1, "test/accuracy": 0.9}) == {
        "test/accuracy": 0.9}  # today's name wins
    assert older_metric_names(old) == ["n_train", "test_accuracy"]
    assert older_metric_names({"train/d_loss": 1, "test_op_example_count": 3}) == []
    assert logged_metric_name("train/d_loss", {"d_loss": 1.0}) == "d_loss"
    assert logged_metric_name("train/d_loss", {"train/d_loss": 1.0}) == "train/d_loss"
