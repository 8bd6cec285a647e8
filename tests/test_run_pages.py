"""What MLflow's UI shows of the runs: names that tell a study's runs apart in the width the
runs table shows, a classifier run's charts (few, each value once, the per-epoch curves first),
and every number a description, model card or tag states held to the value the run logged or
the images it counted."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from pneumonia_aug.cli import main
from pneumonia_aug.contract import (
    EPOCH,
    NAME_WIDTH,
    Gan,
    classifier_run_name,
    gan_run_name,
    generate_run_name,
)
from pneumonia_aug.evaluation.report_text import aligned, markdown_to_text
from pneumonia_aug.evaluation.subgroups import wilson_interval
from pneumonia_aug.settings import PAPER_TABLE1, parse_setting

MAX_CHARTS = 45  # metric keys of one classifier run
SEEDS = range(100)  # seeds 0-99 (one row needs about 30 at the GPU study's spread)


def test_the_first_characters_of_a_name_tell_every_run_of_a_study_apart():
    names = [classifier_run_name(parse_setting(s), seed) for s in PAPER_TABLE1 for seed in SEEDS]
    names += [f(gan, r, seed) for f in (gan_run_name, generate_run_name) for gan in Gan
              for r in (1.0, 0.3) for seed in SEEDS]
    assert max(len(n) for n in names) <= NAME_WIDTH
    assert len({n[:NAME_WIDTH] for n in names}) == len(names) == 12 * 100 + 8 * 100
    assert classifier_run_name(parse_setting("DCGAN-1.0-0.6"), 0) == "DC1+.6 s0"
    assert classifier_run_name(parse_setting("Original-0.3-0.0"), 12) == "Orig.3 s12"
    assert classifier_run_name(parse_setting("CGAN-0.3-1.0"), 2) == "CG.3+1 s2"
    assert gan_run_name("cgan", 0.3, 4) == "GAN CG.3 s4"
    assert generate_run_name(Gan.DCGAN, 1.0, 0) == "gen DC s0"


def test_tables_as_text_fit_the_width_and_keep_every_cell():
    rows = [["setting", "accuracy", "Δ accuracy vs Original [95% CI]"],
            ["Original-1.0-0.0", "0.790", ""],
            ["DCGAN-1.0-0.6", "0.800", "+0.010 [-0.030, +0.050]"]]
    wide = aligned(rows, 200)
    assert wide[0].split() == ["setting", "accuracy", "Δ", "accuracy", "vs", "Original", "[95%",
                               "CI]"]
    assert wide[3].index("0.800") == wide[0].index("accuracy")  # columns line up
    narrow = aligned(rows, 40)  # the last column wraps into a block of its own
    assert max(len(line) for line in narrow[:4]) <= 40 and len(narrow) == 2 * (len(rows) + 1) + 1
    assert narrow[5].startswith("setting") and "+0.010 [-0.030, +0.050]" in narrow[-1]
    text = markdown_to_text("Scale: " + "word " * 40 + "\n\n**Ours**\n\n| a | b |\n|---|---|\n"
                            "| x \\| y | 1 |\n\n- one\n", 60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "Ours\n\na      b\n-----  -\nx | y  1\n\n- one" in text


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def _numbers(text: str) -> list[str]:
    """The decimals a text states (0.790, 1.23), not the integers or the 0.5 of a threshold."""
    return re.findall(r"(?<![\w.])-?\d+\.\d{2,3}(?![\d])", text)


def _stated(text: str, allowed: set[str]) -> None:
    unknown = [n for n in _numbers(text) if n.lstrip("-+") not in allowed]
    assert not unknown, f"numbers not among the run's values: {unknown}"


def _roundings(values) -> set[str]:
    return {f"{v:.{d}f}" for v in values for d in (2, 3)}


def _manifest_rows(client, run_id: str, name: str, tmp_path: Path) -> int:
    path = client.download_artifacts(run_id, f"manifests/{name}.csv", str(tmp_path))
    return len(pd.read_csv(path))


@pytest.mark.slow
def test_a_gan_setting_run_states_only_what_it_logged(tiny_kermany, tracking_uri, tmp_path):
    data = str(tiny_kermany)
    gan = _cli("train-gan", "--model", "dcgan", "--image-size", "32", "--epochs", "1",
               "--batch-size", "4", "--max-images", "6", "--sample-every", "0",
               "--feature-model-uri", "", "--data-dir", data)
    generate = _cli("generate", "--model", "dcgan", "--n-images", "10")
    classifier = _cli("train-classifier", "--setting", "DCGAN-1.0-0.6", "--synthetic-run-id",
                      generate, "--image-size", "32", "--epochs", "2", "--batch-size", "8",
                      "--data-dir", data)
    client = MlflowClient()

    # The GAN: its description and count tag say what it trained on, its debug cap applied.
    run = client.get_run(gan)
    available = _manifest_rows(client, gan, "gan_train", tmp_path)
    assert run.info.run_name == "GAN DC s0" and int(run.data.tags["n_train"]) == 6 < available
    assert (f"trained on 6 of the {available} real NORMAL training images"
            in run.data.tags["mlflow.note.content"])
    assert sorted(k.split("/")[0] for k in run.data.metrics)[0] == EPOCH
    generated = client.get_run(generate)
    assert generated.info.run_name == "gen DC s0"
    assert len(client.list_artifacts(generate, "generated")) == 10
    assert "**10 NORMAL images**" in generated.data.tags["mlflow.note.content"]

    run = client.get_run(classifier)
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.run_name == "DC1+.6 s0"

    # Charts: few, each value once, the per-epoch curves first.
    assert len(metrics) <= MAX_CHARTS
    for key in metrics:
        steps = [m.step for m in client.get_metric_history(classifier, key)]
        assert len(steps) == len(set(steps)), f"{key} logged twice at one step: {steps}"
        assert (steps == [1, 2]) is key.startswith(f"{EPOCH}/"), key
    sections = sorted({k.split("/")[0] for k in metrics})
    assert sections[0] == EPOCH and "/" in min(metrics)  # no flat "Model metrics" before it
    assert sorted(k for k in metrics if k.startswith(f"{EPOCH}/"))[:2] == [
        "epoch/loss_train", "epoch/loss_val"]  # the section's first row
    assert [m.value for m in client.get_metric_history(classifier, "epoch/lr_scale")][0] == 1

    # Counts are tags, each the images of the run's manifests.
    n = {name: _manifest_rows(client, classifier, name, tmp_path)
         for name in ("train", "val", "test", "synthetic")}
    assert (tags["n_train"], tags["n_val"], tags["n_test"], tags["n_train_generated"]) == (
        str(n["train"]), str(n["val"]), str(n["test"]), str(n["synthetic"]))
    assert n["synthetic"] == 6  # 60% of the 10 drawn
    train = pd.read_csv(client.download_artifacts(classifier, "manifests/train.csv",
                                                  str(tmp_path / "t")))
    assert tags["n_train_real_normal"] == str(
        ((train["origin"] == "real") & (train["label"] == "NORMAL")).sum())
    description = tags["mlflow.note.content"]
    assert (f"Trained on {n['train']} images ({tags['n_train_real_normal']} real NORMAL, 6 "
            f"generated of the 10 its generate run drew, the rest PNEUMONIA), validated on "
            f"{n['val']}, tested on {n['test']}.") in description
    assert "(all real images + 60% of the generated ones)" in description
    confusion = pd.read_csv(client.download_artifacts(classifier, "predictions/confusion.csv",
                                                      str(tmp_path / "c"))).set_index("at")
    assert (confusion[["tn", "fp", "fn", "tp"]].sum(axis=1) == n["test"]).all()
    at_half = confusion.loc["0.5 (Table 1)"]
    assert metrics["test/accuracy"] == pytest.approx((at_half.tp + at_half.tn) / n["test"])

    # Every decimal stated is a logged value (or a Wilson interval of one over its images).
    (version,) = client.search_model_versions("name='pneumonia-chexnet'")
    card = Path(client.download_artifacts(classifier, "model_card.md", str(tmp_path))).read_text()
    labels = pd.read_csv(client.download_artifacts(classifier, "manifests/test.csv",
                                                   str(tmp_path / "m")))["label"]
    positives, negatives = int((labels == "PNEUMONIA").sum()), int((labels == "NORMAL").sum())
    subgroups = pd.read_csv(client.download_artifacts(
        classifier, "predictions/test_subgroups.csv", str(tmp_path / "s")))
    intervals = [wilson_interval(round(metrics[k] * n_), n_) for k, n_ in (
        ("test_op/recall", positives), ("test_op/specificity", negatives),
        ("test_op/accuracy", n["test"]))]
    intervals += [(row.recall_low, row.recall_high) for row in subgroups.itertuples()]
    allowed = _roundings([*metrics.values(), *(b for i in intervals for b in i)])
    for text in (description, version.description, card):
        _stated(text, allowed)
    assert f"(n = {positives})" in card and f"(n = {negatives})" in card
    served = subgroups[subgroups["threshold"] != 0.5].set_index("subtype")["n"]
    for subtype, count in served.items():
        assert f"{subtype} " in card and f"(n = {count})" in card
    # The version says which numbers are at 0.5 and which as served.
    assert (f"at threshold 0.5 (Table 1): test accuracy {metrics['test/accuracy']:.3f}"
            in version.description)
    assert (f"as served (calibrated, threshold {metrics['model/threshold']:.3f}): test accuracy "
            f"{metrics['test_op/accuracy']:.3f}") in version.description
    # Tags that state a number: the version's, from the run's metrics.
    assert float(version.tags["test_accuracy"]) == metrics["test/accuracy"]
    assert float(version.tags["best_val_loss"]) == metrics["model/val_loss"]
    assert version.tags["run_id"] == classifier

    # The tags a user sees: no machinery that repeats another tag or a param.
    assert not {"git_commit", "study_run_id", "comparison_parts", "model_uri"} & set(tags)
    assert tags["mlflow.source.git.commit"] and tags["code_version"]
    assert tags["precision"] == "fp32" and tags["world_size"] == "1"
    mlflow.set_tracking_uri(tracking_uri)
