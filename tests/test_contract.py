"""The names stages share."""

import pytest

from pneumonia_aug.contract import (
    Gan,
    current_metric_name,
    current_metrics,
    generator_model_name,
    image_count,
    logged_metric_name,
    newest_generator_uri,
    older_metric_names,
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
    assert tracking.artifact_page("3", "abc", "forest.png") == \
        "#/experiments/3/runs/abc/artifacts/forest.png?workflowType=machine_learning"
    # a file as the UI's server hands it out: a picture in a description shows in place
    assert tracking.artifact_file("abc", "plots/a b.png") == \
        "get-artifact?path=plots/a%20b.png&run_uuid=abc"
    assert tracking.ui_address("sqlite:///x.db", "#/y") == "http://127.0.0.1:5000/#/y"
    assert tracking.ui_address("http://host:5000/", "#/y") == "http://host:5000/#/y"


@pytest.mark.parametrize("old, new", [
    ("train_loss", "epoch/loss_train"), ("val_loss", "epoch/loss_val"),
    ("val_auroc", "epoch/val_auroc"), ("train_seconds", "train/seconds"),
    ("best_epoch", "model/epoch"), ("best_val_loss", "model/val_loss"),
    ("threshold", "model/threshold"), ("temperature", "model/temperature"),
    ("test_accuracy", "test/accuracy"), ("test_op_recall", "test_op/recall"),
    ("test_op_recall_bacteria", "test_op/recall_bacteria"),
    ("d_loss", "epoch/d_loss"), ("d_fake", "epoch/d_fake"),
    ("fid_xray", "quality/fid_xray"), ("kid_xray_std", "quality/kid_xray_std"),
    ("nn_distance_min", "quality/nn_distance_min"),
    # the first chart sections
    ("train/loss", "epoch/loss_train"), ("val/loss", "epoch/loss_val"),
    ("val/accuracy", "epoch/val_accuracy"), ("chosen/epoch", "model/epoch"),
    ("chosen/threshold", "model/threshold"), ("train/d_real", "epoch/d_real"),
])
def test_older_metric_names_read_as_todays(old, new):
    assert current_metric_name(old) == new
    assert current_metric_name(new) == new  # today's names stay


@pytest.mark.parametrize("old, last", [
    ("lr", "train/lr"), ("train/lr", "train/lr"), ("n_train", "data/n_train"),
    ("n_test_virus", "data/n_test_virus"), ("test_tn", "test/tn"), ("test/tp", "test/tp"),
    ("test_recall_virus_low", "test/recall_virus_low"), ("data/n_images", "data/n_images"),
])
def test_metrics_no_longer_logged_keep_their_last_name(old, last):
    """The lr (today its ratio to the starting lr), counts (today tags or tables) and interval
    bounds (today in test_subgroups.csv) of older runs."""
    assert current_metric_name(old) == last


def test_image_counts_are_tags_or_an_older_runs_metrics():
    assert image_count({"n_train": "31"}, {}, "n_train") == 31
    assert image_count({}, current_metrics({"n_train": 48}), "n_train") == 48  # flat names
    assert image_count({}, {"data/n_train": 12}, "n_train") == 12  # the first sections
    assert image_count({}, {}, "n_val") is None


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
    assert older_metric_names({"train/d_loss": 1, "epoch/d_loss": 1}) == ["train/d_loss"]
    assert older_metric_names({"epoch/d_loss": 1, "test_op_example_count": 3}) == []
    assert logged_metric_name("epoch/d_loss", {"d_loss": 1.0}) == "d_loss"
    assert logged_metric_name("epoch/d_loss", {"train/d_loss": 1.0}) == "train/d_loss"
    assert logged_metric_name("epoch/d_loss", {"epoch/d_loss": 1.0}) == "epoch/d_loss"
