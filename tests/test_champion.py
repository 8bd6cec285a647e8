"""The champion gate: `@champion` moves only to a version trained on the full data that does as
well as the champion on the same test set, and each version says why. Against a real local
tracking store, with versions registered from small runs (no training)."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from pneumonia_aug import tracking
from pneumonia_aug.config import ChampionGate
from pneumonia_aug.serving.champion import promote_champion

NAME = "pneumonia-chexnet"
TEST_SET = pd.DataFrame({"relpath": ["test/NORMAL/a.jpeg", "test/PNEUMONIA/b.jpeg"],
                         "sha256": ["aa", "bb"], "path": ["/x/a.jpeg", "/x/b.jpeg"]})


def register(auroc: float, recall: float, cap: int = 0, test_set: pd.DataFrame = TEST_SET,
             more: dict | None = None, names: str = "test/{}") -> str:
    """A version whose training run logged these test metrics (`names`: how, `test_{}` as
    runs before the UI's chart sections did) and this test set."""
    with mlflow.start_run() as run:
        tracking.log_manifest(test_set, "test", source="/x")
        mlflow.log_metrics({names.format("auroc"): auroc, names.format("recall"): recall}
                           | (more or {}))
    client = MlflowClient()
    if not client.search_registered_models(f"name='{NAME}'"):
        client.create_registered_model(NAME)
    return str(client.create_model_version(NAME, source="file:///nowhere",
                                           run_id=run.info.run_id,
                                           tags={"max_images_per_split": str(cap)}).version)


def champion() -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, "champion").version)


def tags(version: str) -> dict:
    return MlflowClient().get_model_version(NAME, version).tags


def test_the_first_full_data_version_is_promoted_and_says_why(tracking_uri):
    debug = register(0.99, 0.99, cap=64)
    decision = promote_champion(debug)
    assert not decision.promoted and decision.champion is None
    assert tags(debug)["champion_decision"] == "kept"
    assert "debug cap" in tags(debug)["champion_reason"]

    first = register(0.80, 0.90)  # below the sensitivity floor: nothing to compare with yet
    MlflowClient().update_model_version(NAME, first, description="CheXNet on ...")
    decision = promote_champion(first)
    assert decision.promoted and champion() == first
    assert tags(first)["champion_decision"] == "promoted"
    assert "first version" in tags(first)["champion_reason"]
    assert tags(first)["compared_with_version"] == "none"
    assert tags(first)["test_auroc"] == "0.800"
    description = MlflowClient().get_model_version(NAME, first).description
    assert description.startswith("CheXNet on ...\n\n**@champion:** promoted: the first")


def test_a_worse_candidate_is_kept_out_and_a_good_one_promoted(tracking_uri):
    first = register(0.900, 0.96)
    promote_champion(first)

    lower_auroc = register(0.890, 0.99)  # 0.010 below, margin 0.005
    decision = promote_champion(lower_auroc)
    assert not decision.promoted and champion() == first
    found = tags(lower_auroc)
    assert found["champion_decision"] == "kept"
    assert found["compared_with_version"] == first
    assert found["champion_reason"] == (f"AUROC 0.890 is more than 0.005 below champion "
                                        f"v{first}'s 0.900")
    assert (found["test_auroc"], found["champion_test_auroc"]) == ("0.890", "0.900")
    assert found["test_set_digest"] == found["champion_test_set_digest"] != "none"
    assert "**@champion:** kept: AUROC 0.890" in \
        MlflowClient().get_model_version(NAME, lower_auroc).description

    insensitive = register(0.950, 0.94)
    assert not promote_champion(insensitive).promoted
    assert tags(insensitive)["champion_reason"] == "sensitivity (test/recall) 0.940 is below 0.95"

    within_margin = register(0.896, 0.95)
    decision = promote_champion(within_margin)
    assert decision.promoted and champion() == within_margin
    assert tags(within_margin)["champion_decision"] == "promoted"
    assert tags(within_margin)["compared_with_version"] == first
    assert "AUROC 0.896 vs champion" in tags(within_margin)["champion_reason"]

    # The recall at a chosen operating point, when the run logged one, is the sensitivity.
    at_operating_point = register(0.930, 0.50, more={"test_op/recall": 0.97})
    assert promote_champion(at_operating_point).promoted
    assert tags(at_operating_point)["sensitivity_metric"] == "test_op/recall"
    assert tags(at_operating_point)["test_sensitivity"] == "0.970"


def test_runs_logged_under_the_older_flat_names_pass_the_same_gate(tracking_uri):
    """`test_auroc`, `test_op_recall`: how runs logged before the chart sections named them.
    The gate reads them as `test/auroc`, `test_op/recall`, as a champion and as a candidate."""
    old = register(0.900, 0.50, names="test_{}", more={"test_op_recall": 0.96})
    assert promote_champion(old).promoted
    assert tags(old)["test_auroc"] == "0.900" and tags(old)["test_sensitivity"] == "0.960"
    assert tags(old)["sensitivity_metric"] == "test_op/recall"
    worse = register(0.850, 0.99)
    assert not promote_champion(worse).promoted and champion() == old
    assert "more than 0.005 below champion" in tags(worse)["champion_reason"]
    older_and_fine = register(0.899, 0.97, names="test_{}")
    assert promote_champion(older_and_fine).promoted and champion() == older_and_fine


def test_another_test_set_or_a_stricter_gate_refuses(tracking_uri):
    first = register(0.90, 0.96)
    promote_champion(first)
    other = register(0.99, 0.99, test_set=TEST_SET.iloc[:1])
    decision = promote_champion(other)
    assert not decision.promoted and champion() == first
    assert tags(other)["champion_reason"].startswith(
        f"tested on another test set than champion v{first}'s (test digest ")
    assert tags(other)["test_set_digest"] != tags(other)["champion_test_set_digest"]

    better = register(0.91, 0.97)
    assert not promote_champion(better, gate=ChampionGate(min_sensitivity=0.98)).promoted
    assert promote_champion(better).promoted  # the defaults let it in


def test_a_champion_that_moved_while_deciding_is_decided_against_again(tracking_uri,
                                                                        monkeypatch):
    """Stages ending together: this version read "no champion", then another took the alias
    before it set it. It decides again against that champion instead of overwriting it."""
    other, late = register(0.95, 0.97), register(0.90, 0.97)
    promote_champion(other)  # the other stage, between this one's read and its write
    real, reads = tracking.alias_version, []

    def first_read_is_stale(name: str, alias: str):
        reads.append(alias)  # this one's first read predates the other's promotion
        return None if len(reads) == 1 else real(name, alias)

    monkeypatch.setattr(tracking, "alias_version", first_read_is_stale)
    decision = promote_champion(late)
    assert not decision.promoted and decision.compared_with == other
    assert champion() == other


def _set_at(when: float, uri: str, version: str, alias: str) -> None:
    """One stage process: sets `alias` at the instant `when` (all of them at once)."""
    import os
    import time

    mlflow.set_tracking_uri(uri)
    time.sleep(max(0.0, when - time.time()))
    try:
        tracking.set_alias(NAME, alias, version)
    except Exception as exc:  # the exit code says it; the message helps reading a failure
        print(f"set_alias failed: {exc}", flush=True)
        os._exit(1)
    os._exit(0)


def test_processes_creating_one_alias_at_once_all_succeed(tracking_uri):
    """Several processes create the same new alias at one instant (as three classifier stages
    of a study did, each the first full-data version): the store refuses all inserts but one;
    none of them fails, and the alias points at one of their versions."""
    import multiprocessing
    import time

    versions = [register(0.9, 0.97) for _ in range(6)]
    context = multiprocessing.get_context("fork")
    for round_ in range(4):  # a fresh alias each round: each is a race between creations
        alias = f"race{round_}"
        when = time.time() + 1.5
        procs = [context.Process(target=_set_at, args=(when, tracking_uri, v, alias))
                 for v in versions]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [p.exitcode for p in procs] == [0] * len(procs), alias
        assert str(MlflowClient().get_model_version_by_alias(NAME, alias).version) in versions
