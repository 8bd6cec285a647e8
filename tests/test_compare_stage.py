"""`compare` over runs logged into a real local store with known metrics and predictions:
one table per comparison group, never a row that mixes groups."""

import json
import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from pneumonia_aug import tracking
from pneumonia_aug.cli import main
from pneumonia_aug.contract import PREDICTIONS_ARTIFACT, STUDY_RUNS_ARTIFACT
from pneumonia_aug.evaluation.groups import CONFIG_PARTS, RUN_PARTS, comparison_key

N_IMAGES = 40
QUICK = {"image_size": "32", "epochs": "5", "batch_size": "32", "lr": "0.001",
         "lr_scaling": "none", "pretrained": "none", "real_fraction_scope": "normal",
         "split_seed": "0", "max_images_per_split": "500", "dataset_digest": "a" * 16,
         "code_version": "c" * 40}


def _key(parts: dict) -> dict:
    """The key as a run records it: the key tag, and its parts as the params and tags the run
    logs anyway (the config's parts as params, the others as tags); the tags returned."""
    mlflow.log_params({k: v for k, v in parts.items() if k in CONFIG_PARTS})
    return {"comparison_key": comparison_key(parts)} | {
        tag: parts[part] for part, tag in RUN_PARTS.items() if part in parts}


def _json_key_tags(parts: dict) -> dict:
    """The key as runs of the version before recorded it: one JSON tag of the parts."""
    return {"comparison_key": comparison_key(parts),
            "comparison_parts": json.dumps(parts, sort_keys=True)}


def _older_key_tags(parts: dict) -> dict:
    """The key as runs made before `comparison_parts` recorded it: one `cmp.<part>` per part."""
    return {"comparison_key": comparison_key(parts)} | {f"cmp.{k}": v for k, v in parts.items()}


def _log_classifier_run(setting, seed, correct, parts=QUICK, status="FINISHED", extra=None,
                        key=_key, names="test/{}"):
    """A classifier run whose first `correct` of N_IMAGES test images are right (`names`: its
    metric names, `test_{}` as runs before the UI's chart sections had them)."""
    y = np.array([0, 1] * (N_IMAGES // 2))
    right = np.arange(N_IMAGES) < correct
    probs = np.where(right, np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.1, 0.9))
    with mlflow.start_run(run_name=f"s{seed} {setting}") as run:
        mlflow.set_tags({"stage": "train_classifier", "setting": setting, "seed": seed,
                         **key(parts), **(extra or {})})
        mlflow.log_metrics({names.format(k): v for k, v in {
            "accuracy": correct / N_IMAGES, "precision": 0.8, "recall": 0.9,
            "specificity": 0.7, "f1": 0.85, "auroc": 0.9 + seed / 100}.items()})
        tracking.log_table(pd.DataFrame({"relpath": [f"{i}.jpeg" for i in range(N_IMAGES)],
                                         "sha256": [f"{i:064x}" for i in range(N_IMAGES)],
                                         "y_true": y, "probability": probs}),
                           PREDICTIONS_ARTIFACT)
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def _compare(tmp_path, *args):
    result = CliRunner().invoke(main, ["compare", "--experiment-name", "cmp", "--output-dir",
                                       str(tmp_path / "out"), *args], env={"COLUMNS": "120"})
    table = (pd.read_csv(tmp_path / "out" / "table1.csv").set_index("setting")
             if result.exit_code == 0 else None)
    return result, table


def test_compare_builds_the_table_from_runs(tracking_uri, tmp_path):
    mlflow.set_experiment("cmp")
    accuracies = {"Original-1.0-0.0": [20, 22, 24], "DCGAN-1.0-0.6": [36, 39, 40]}
    for setting, corrects in accuracies.items():
        for seed, correct in enumerate(corrects):
            _log_classifier_run(setting, seed, correct)
    failed = _log_classifier_run("CGAN-1.0-0.6", 0, 30, status="FAILED")
    _log_classifier_run("DCGAN-1.0-0.6", 3, 30, status="FAILED")  # asked, not finished

    result, table = _compare(tmp_path, "--source", "experiment")
    assert result.exit_code == 0, result.output
    assert table.loc["Original-1.0-0.0", "n_runs"] == 3
    assert table.loc["Original-1.0-0.0", "accuracy_mean"] == pytest.approx(22 / 40)
    assert (table.loc["Original-1.0-0.0", "accuracy_std"]
            == pytest.approx(np.std([20, 22, 24], ddof=1) / 40))
    assert table.loc["DCGAN-1.0-0.6", "delta_accuracy"] == pytest.approx((115 / 3 - 22) / 40)
    assert table.loc["DCGAN-1.0-0.6", "delta_accuracy_p"] < 0.05
    assert table.loc["Original-1.0-0.0", "paper_accuracy"] == pytest.approx(0.89423)
    # the failed run is listed by seed, not dropped
    assert (table.loc["CGAN-1.0-0.6", "n_runs"] == 0
            and f"seed 0 (FAILED run {failed})" in table.loc["CGAN-1.0-0.6", "missing_or_failed"])
    # The terminal gets aligned text as wide as it is, not Markdown; then the files and the run.
    output = result.output
    assert "| " not in output  # no Markdown table
    assert max(len(line) for line in output.splitlines() if not line.startswith("http")) <= 120
    assert re.search(r"^Original-1\.0-0\.0 +0\.894 ", output, re.M)  # the paper's block
    assert re.search(r"^DCGAN-1\.0-0\.6 +3 +0\.958 ± 0\.052", output, re.M)
    words = " ".join(output.split())  # wrapped to the width
    assert "Scale: profile quick" in words and "Not comparable" in words
    # the header counts the runs that finished: no seed 3, none of CGAN-1.0-0.6
    assert "seeds 0,1,2 (0-3 finished per setting)" in words
    assert f"to {(tmp_path / 'out').resolve()}" in words and "Wrote table1.md, " in words
    assert "data:image/png;base64" in (tmp_path / "out" / "table1.html").read_text()

    client = MlflowClient()
    experiment = client.get_experiment_by_name("cmp")
    (compare_run,) = client.search_runs([experiment.experiment_id], "tags.stage = 'compare'")
    run_id = compare_run.info.run_id
    assert (f"Logged run {run_id}; its page (after `mlflow ui --backend-store-uri "
            f"{tracking_uri}`):") in words
    assert output.splitlines()[-1] == (
        f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs/{run_id}"
        "?workflowType=machine_learning")
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"table1.md", "table1.csv", "table1.html", "accuracy.png", "forest.png"} <= names
    assert compare_run.data.metrics["accuracy_mean/DCGAN-1.0-0.6"] == pytest.approx(115 / 120)
    # The run's page leads with links, the table in short and the forest plot in place.
    # (its first line: the UI's fade over a folded description takes the clicks off the rest)
    lead, rest = compare_run.data.tags["mlflow.note.content"].split("\n\n", 1)
    assert lead.startswith("**Table 1** from 8 classifier runs of the experiment (comparison "
                           f"group `{comparison_key(QUICK)}`): [forest plot](#/experiments/"
                           f"{experiment.experiment_id}/runs/{run_id}/artifacts/forest.png"
                           "?workflowType=machine_learning) · [whole table](")
    assert rest.startswith("```text\nsetting ")
    assert "\n\nScale: profile quick" in rest and "### Table 1" in rest
    assert compare_run.data.tags["comparison_key"] == comparison_key(QUICK)


def test_a_mixed_experiment_gives_separate_groups_never_one_row(tracking_uri, tmp_path):
    """Two profiles, a debug run, two image sizes, two data digests: five groups."""
    mlflow.set_experiment("cmp")
    paper = QUICK | {"image_size": "256", "epochs": "100", "batch_size": "16",
                     "max_images_per_split": "0"}
    groups = {"quick": QUICK, "paper": paper, "debug": QUICK | {"max_images_per_split": "64"},
              "64px": QUICK | {"image_size": "64"}, "data2": QUICK | {"dataset_digest": "b" * 16}}
    for i, parts in enumerate(groups.values()):
        for seed in (0, 1):
            _log_classifier_run("Original-1.0-0.0", seed, 20 + i, parts)
            _log_classifier_run("DCGAN-1.0-0.6", seed, 30 + i + seed, parts)
    # The newest complete group is taken by default, and every group found is listed.
    result, table = _compare(tmp_path, "--source", "experiment")
    assert result.exit_code == 0, result.output
    assert table.loc["Original-1.0-0.0", "accuracy_mean"] == pytest.approx(24 / 40)  # data2
    # Each group alone: its own numbers in every row, two runs per row, never ten.
    for i, parts in enumerate(groups.values()):
        result, table = _compare(tmp_path, "--source", "experiment", "--group",
                                 comparison_key(parts)[:8])
        assert result.exit_code == 0, result.output
        assert table.loc["Original-1.0-0.0", "n_runs"] == 2
        assert table.loc["Original-1.0-0.0", "accuracy_mean"] == pytest.approx((20 + i) / 40)
        assert table.loc["DCGAN-1.0-0.6", "accuracy_mean"] == pytest.approx((30.5 + i) / 40)
    _, table = _compare(tmp_path, "--source", "experiment", "--group", comparison_key(paper))
    assert "Not comparable" not in (tmp_path / "out" / "table1.md").read_text()
    result, _ = _compare(tmp_path, "--source", "experiment", "--group", "zzz")
    assert result.exit_code == 2 and "matches 0 of the groups found" in result.output


def test_runs_of_an_older_version_share_a_table_with_new_ones(tracking_uri, tmp_path):
    """Runs logged before the UI's chart sections: flat metric names (`test_accuracy`) and one
    `cmp.<part>` tag per key part; runs of the version after: one JSON tag `comparison_parts`
    (the parts are params and tags now). The same key, the same row, their numbers averaged
    with the new runs', the parts read back from each (the scale line, the reason groups
    differ)."""
    mlflow.set_experiment("cmp")
    new = _log_classifier_run("Original-1.0-0.0", 0, 20)
    old = _log_classifier_run("Original-1.0-0.0", 1, 22, key=_older_key_tags, names="test_{}")
    json_era = _log_classifier_run("Original-1.0-0.0", 3, 24, key=_json_key_tags)
    assert "test_accuracy" in MlflowClient().get_run(old).data.metrics
    tags = MlflowClient().get_run(new).data.tags
    assert not [k for k in tags if k.startswith("cmp.") or k == "comparison_parts"]
    assert "cmp.epochs" in MlflowClient().get_run(old).data.tags
    assert "comparison_parts" in MlflowClient().get_run(json_era).data.tags
    result, table = _compare(tmp_path, "--source", "experiment")
    assert result.exit_code == 0, result.output
    assert table.loc["Original-1.0-0.0", "n_runs"] == 3
    assert table.loc["Original-1.0-0.0", "accuracy_mean"] == pytest.approx(22 / 40)
    assert table.loc["Original-1.0-0.0", "auroc_mean"] == pytest.approx((0.9 + 0.91 + 0.93) / 3)
    assert "Scale: profile quick, 32 px, 5 epochs" in " ".join(result.output.split())
    _log_classifier_run("Original-1.0-0.0", 2, 22, QUICK | {"epochs": "1"}, key=_older_key_tags)
    with mlflow.start_run(run_name="study"):
        mlflow.set_tag("stage", "study")
        mlflow.log_dict({"used": [{"stage": "train_classifier", "run_id": r.info.run_id}
                                  for r in MlflowClient().search_runs(
                                      [mlflow.get_experiment_by_name("cmp").experiment_id],
                                      "tags.stage = 'train_classifier'")],
                         "failed": []}, STUDY_RUNS_ARTIFACT)
    result, _ = _compare(tmp_path)
    assert result.exit_code == 2 and "they differ in epochs 1 / 5" in result.output


def test_a_study_compares_its_own_runs_and_refuses_mixed_groups(tracking_uri, tmp_path):
    mlflow.set_experiment("cmp")
    own = [_log_classifier_run("Original-1.0-0.0", s, 20 + s) for s in (0, 1)]
    other = _log_classifier_run("Original-1.0-0.0", 2, 39, QUICK | {"epochs": "1"})
    with mlflow.start_run(run_name="study") as study:
        mlflow.set_tag("stage", "study")
        mlflow.log_param("seeds", "0,1,2")
        mlflow.log_dict({"used": [{"stage": "train_classifier", "run_id": r} for r in own],
                         "failed": []}, STUDY_RUNS_ARTIFACT)
    # Default: the newest study's runs only; its seed 2 was expected and is listed missing.
    result, table = _compare(tmp_path)
    assert result.exit_code == 0, result.output
    assert table.loc["Original-1.0-0.0", "n_runs"] == 2
    assert "seed 2 (missing)" in table.loc["Original-1.0-0.0", "missing_or_failed"]
    with mlflow.start_run(run_name="study") as mixed:
        mlflow.set_tag("stage", "study")
        mlflow.log_dict({"used": [{"stage": "train_classifier", "run_id": r}
                                  for r in [*own, other]], "failed": []}, STUDY_RUNS_ARTIFACT)
    result, _ = _compare(tmp_path, "--parent-run-id", mixed.info.run_id)
    assert result.exit_code == 2 and "fall into 2 comparison groups" in result.output
    result, _ = _compare(tmp_path, "--parent-run-id", study.info.run_id)
    assert result.exit_code == 0


def test_precision_and_world_size_split_groups_and_the_refusal_names_them(tracking_uri,
                                                                          tmp_path):
    mlflow.set_experiment("cmp")
    gpu = QUICK | {"precision": "bf16", "world_size": "2"}
    runs = [_log_classifier_run("Original-1.0-0.0", 0, 20, QUICK | {"precision": "fp32",
                                                                   "world_size": "1"}),
            _log_classifier_run("Original-1.0-0.0", 1, 30, gpu)]
    with mlflow.start_run(run_name="study"):
        mlflow.set_tag("stage", "study")
        mlflow.log_dict({"used": [{"stage": "train_classifier", "run_id": r} for r in runs],
                         "failed": []}, STUDY_RUNS_ARTIFACT)
    result, _ = _compare(tmp_path)
    assert result.exit_code == 2 and "fall into 2 comparison groups" in result.output
    assert "they differ in precision bf16 / fp32; world_size 1 / 2" in result.output
    assert MlflowClient().get_run(runs[1]).data.tags["precision"] == "bf16"  # a tag of its own
    result, table = _compare(tmp_path, "--group", comparison_key(gpu))
    assert result.exit_code == 0 and table.loc["Original-1.0-0.0", "n_runs"] == 1
    assert "bf16 precision, world size 2" in (tmp_path / "out" / "table1.md").read_text()


def test_a_row_never_mixes_generated_sets(tracking_uri, tmp_path):
    """A GAN setting's runs of two generated sets in one group: the newest set's are kept, the
    others left out by name."""
    mlflow.set_experiment("cmp")
    for seed in (0, 1):
        _log_classifier_run("Original-1.0-0.0", seed, 20)
    old = [_log_classifier_run("DCGAN-1.0-0.6", seed, 24, extra={
        "synthetic_run_id": "gen-old", "generated_set": "set-old"}) for seed in (0, 1)]
    new = [_log_classifier_run("DCGAN-1.0-0.6", seed, 36, extra={
        "synthetic_run_id": "gen-new", "generated_set": "set-new"}) for seed in (0, 1)]
    result, table = _compare(tmp_path, "--source", "experiment")
    assert result.exit_code == 0, result.output
    assert table.loc["DCGAN-1.0-0.6", "n_runs"] == 2
    assert table.loc["DCGAN-1.0-0.6", "accuracy_mean"] == pytest.approx(36 / 40)
    client = MlflowClient()
    experiment = client.get_experiment_by_name("cmp").experiment_id
    (compare_run,) = client.search_runs([experiment], "tags.stage = 'compare'")
    compared = mlflow.artifacts.load_dict(f"runs:/{compare_run.info.run_id}/compared_runs.json")
    assert set(compared["run_ids"]) & set(old + new) == set(new)
    (note,) = compared["left_out"]
    assert note.startswith("DCGAN-1.0-0.6: its runs differ in generated_set (")
    assert all(r in note for r in old) and "kept those of set-new" in note


def test_compare_without_runs_says_what_to_do(tracking_uri, tmp_path):
    result = CliRunner().invoke(main, ["compare", "--experiment-name", "nothing-here"])
    assert result.exit_code == 2
    assert "no experiment named 'nothing-here'" in result.output


def test_compare_with_planned_seeds_says_interim(tracking_uri, tmp_path):
    """`--planned-seeds`: the table says how far the plan is and decides only at its looks;
    a plan too small for its looks is refused in one line."""
    mlflow.set_experiment("cmp")
    for seed, (base, gan) in enumerate([(20, 24), (22, 23), (24, 30)]):
        _log_classifier_run("Original-1.0-0.0", seed, base)
        _log_classifier_run("DCGAN-1.0-0.6", seed, gan)
    result, table = _compare(tmp_path, "--source", "experiment", "--planned-seeds", "8")
    assert result.exit_code == 0, result.output
    line = table.loc["DCGAN-1.0-0.6", "plan_line"]
    assert line.startswith("interim: 3 of 8 planned seeds; decision at look 1 (2 pairs): ")
    words = " ".join(result.output.split())  # the terminal's text, wrapped to its width
    assert line.endswith("; next look at 4") and f"DCGAN-1.0-0.6: {line}" in words
    assert table.loc["DCGAN-1.0-0.6", "planned_looks"] == "2,4,6,8"
    client = MlflowClient()
    experiment = client.get_experiment_by_name("cmp").experiment_id
    (run,) = client.search_runs([experiment], "tags.stage = 'compare'")
    assert run.data.params["planned_seeds"] == "8"
    result, _ = _compare(tmp_path, "--source", "experiment", "--planned-seeds", "5")
    assert result.exit_code == 2
    assert "planned_seeds 5 cannot hold 4 looks: plan at least 8 seeds" in result.output
