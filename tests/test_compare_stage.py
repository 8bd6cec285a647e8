"""`compare` over runs logged into a real local store with known metrics and predictions."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from pneumonia_aug import tracking
from pneumonia_aug.cli import main

N_IMAGES = 40


def _log_classifier_run(setting, seed, correct, status="FINISHED"):
    """A classifier run whose first `correct` of N_IMAGES test images are right."""
    y = np.array([0, 1] * (N_IMAGES // 2))
    right = np.arange(N_IMAGES) < correct
    probs = np.where(right, np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.1, 0.9))
    with mlflow.start_run(run_name=f"{setting}-s{seed}") as run:
        mlflow.set_tags({"stage": "train_classifier", "setting": setting, "seed": seed})
        mlflow.log_metrics({"test_accuracy": correct / N_IMAGES, "test_precision": 0.8,
                            "test_recall": 0.9, "test_specificity": 0.7, "test_f1": 0.85,
                            "test_auroc": 0.9})
        tracking.log_table(pd.DataFrame({"relpath": [f"{i}.jpeg" for i in range(N_IMAGES)],
                                         "sha256": [f"{i:064x}" for i in range(N_IMAGES)],
                                         "y_true": y, "probability": probs}),
                           tracking.PREDICTIONS_ARTIFACT)
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_compare_builds_the_table_from_runs(tracking_uri, tmp_path):
    mlflow.set_experiment("cmp")
    accuracies = {"Original-1.0-0.0": [20, 22, 24], "DCGAN-1.0-0.6": [36, 38, 40]}
    for setting, corrects in accuracies.items():
        for seed, correct in enumerate(corrects):
            _log_classifier_run(setting, seed, correct)
    failed = _log_classifier_run("CGAN-1.0-0.6", 0, 30, status="FAILED")

    result = CliRunner().invoke(main, ["compare", "--experiment-name", "cmp", "--output-dir",
                                       str(tmp_path / "out"), "--n-boot", "500"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "table1.csv").set_index("setting")
    assert table.loc["Original-1.0-0.0", "n_runs"] == 3
    assert table.loc["Original-1.0-0.0", "accuracy_mean"] == pytest.approx(22 / 40)
    assert (table.loc["Original-1.0-0.0", "accuracy_std"]
            == pytest.approx(np.std([20, 22, 24], ddof=1) / 40))
    assert table.loc["DCGAN-1.0-0.6", "delta_accuracy"] == pytest.approx((38 - 22) / 40)
    assert table.loc["DCGAN-1.0-0.6", "delta_accuracy_p"] < 0.05
    assert table.loc["Original-1.0-0.0", "paper_accuracy"] == pytest.approx(0.89423)
    # the failed run and the Table 1 rows without runs are listed, not dropped
    assert (table.loc["CGAN-1.0-0.6", "n_runs"] == 0
            and failed in table.loc["CGAN-1.0-0.6", "missing_or_failed"])
    assert table.loc["CGAN-0.3-0.3", "n_runs"] == 0
    assert "| DCGAN-1.0-0.6 |" in result.output and "0.89423" in result.output
    html = (tmp_path / "out" / "table1.html").read_text()
    assert "data:image/png;base64" in html

    client = MlflowClient()
    experiment = client.get_experiment_by_name("cmp")
    (compare_run,) = client.search_runs([experiment.experiment_id], "tags.stage = 'compare'")
    names = {a.path for a in client.list_artifacts(compare_run.info.run_id)}
    assert {"table1.md", "table1.csv", "table1.html", "accuracy.png"} <= names
    assert compare_run.data.metrics["accuracy_mean/DCGAN-1.0-0.6"] == pytest.approx(38 / 40)


def test_compare_without_runs_says_what_to_do(tracking_uri, tmp_path):
    result = CliRunner().invoke(main, ["compare", "--experiment-name", "nothing-here"])
    assert result.exit_code == 2
    assert "no experiment named 'nothing-here'" in result.output
