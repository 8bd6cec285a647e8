"""The whole study at the tiniest size, on a generated Kermany tree: through `mlflow run -e main`
(the main entry point's smoke test), nesting and Table 1; then the same call again and one
with a new seed, each in this process under a run MLflow's project code made
(`conftest.project_run`): what is reused and what reruns."""

import re

import pytest
from mlflow.tracking import MlflowClient

from conftest import make_kermany, mlflow_run, project_run

pytestmark = pytest.mark.slow


def _stage_runs(client, experiment_id):
    runs = client.search_runs([experiment_id], "tags.stage != 'study'", max_results=1000)
    return {r.info.run_id: r for r in runs}


def test_study_runs_nests_compares_and_reuses(tracking_uri, tmp_path):
    # more images than the tiny profile's caps (40 a split, 32 for a GAN): they apply
    data = make_kermany(tmp_path / "chest_xray", {"train": 44, "val": 4, "test": 8}, size=40)
    params = {"profile": "tiny", "seeds": "0", "settings": "Original-1.0-0.0,DCGAN-1.0-0.3",
              "data_dir": data, "output_dir": tmp_path / "study"}
    first = mlflow_run("main", params, tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    # Table 1 as aligned text, from the table the study wrote (into output_dir, not the checkout)
    assert re.search(r"^DCGAN-1\.0-0\.3 ", first.stdout, re.M) and "| " not in first.stdout
    assert (tmp_path / "study" / "table1.md").read_text().split()[:4] == \
        first.stdout.split()[:4] == ["Scale:", "profile", "tiny,", "32"]

    client = MlflowClient()
    experiment = client.get_experiment_by_name("pneumonia-aug").experiment_id
    (study,) = client.search_runs([experiment], "tags.stage = 'study'")
    runs = _stage_runs(client, experiment)
    stages = sorted(r.data.tags["stage"] for r in runs.values())
    assert stages == ["compare", "generate", "train_classifier", "train_classifier", "train_gan"]
    assert all(r.data.tags["mlflow.parentRunId"] == study.info.run_id for r in runs.values())
    assert all(r.info.status == "FINISHED" for r in runs.values())
    # Each stage was claimed by its key; once ended, its run keeps the key, not the claim.
    assert all(r.data.tags["reuse_key"] for r in runs.values())
    assert not [k for r in runs.values() for k in r.data.tags if k.startswith("claim.")]
    assert study.data.metrics["runs_launched"] == 5
    (gan_setting,) = [r for r in runs.values() if r.data.tags.get("setting") == "DCGAN-1.0-0.3"]
    (generate,) = [r for r in runs.values() if r.data.tags["stage"] == "generate"]
    assert gan_setting.data.tags["synthetic_run_id"] == generate.info.run_id
    (compare,) = [r for r in runs.values() if r.data.tags["stage"] == "compare"]
    assert {"table1.md", "table1.csv", "table1.html", "accuracy.png"} <= \
        {a.path for a in client.list_artifacts(compare.info.run_id)}

    # What the UI says: each run what it is and where its inputs came from, with links; the
    # study holds Table 1 (and its scale line) and links every run it used.
    def link(run):
        return (f"(#/experiments/{experiment}/runs/{run.info.run_id}"
                "?workflowType=machine_learning)")

    (gan,) = [r for r in runs.values() if r.data.tags["stage"] == "train_gan"]
    note = gan_setting.data.tags["mlflow.note.content"]
    assert note.startswith("**CheXNet** (DenseNet121) on **DCGAN-1.0-0.3** (all real images + "
                           "30% of the generated ones), seed 0, 32 px")
    tags = gan_setting.data.tags
    drawn = len(client.list_artifacts(generate.info.run_id, "generated"))
    assert (f"Trained on {tags['n_train']} images ({tags['n_train_real_normal']} real NORMAL, "
            f"{tags['n_train_generated']} generated of the {drawn} its generate run drew") in note
    assert int(tags["n_train_generated"]) == round(0.3 * drawn)
    assert f"Generated images from generate run [gen DC s0]{link(generate)}" in note
    assert f"(GAN run [GAN DC s0]{link(gan)})" in note
    assert f"(GAN run [GAN DC s0]{link(gan)})" in generate.data.tags["mlflow.note.content"]
    assert gan.data.tags["mlflow.note.content"].startswith(
        f"**DCGAN** trained on {gan.data.tags['n_train']} of the ")  # its debug cap applied
    table = (tmp_path / "study" / "table1.md").read_text().strip()
    assert compare.data.tags["mlflow.note.content"].startswith(
        f"**Table 1** from 2 classifier runs of study [study-tiny]{link(study)} (comparison "
        f"group `{compare.data.tags['comparison_key']}`): [forest plot]")
    assert table.split("\n", 1)[1] in compare.data.tags["mlflow.note.content"]  # all of it
    # The study's page leads with its own copy of the forest plot and table, then the runs.
    assert {"table1.md", "table1.csv", "table1.html", "accuracy.png", "forest.png"} <= \
        {a.path for a in client.list_artifacts(study.info.run_id)}
    description = study.data.tags["mlflow.note.content"]
    forest = (f"#/experiments/{experiment}/runs/{study.info.run_id}/artifacts/forest.png"
              "?workflowType=machine_learning")
    first, second = description.split("\n\n")[:2]  # links first: a folded page fades the rest
    assert first.startswith("**Table 1** (2 settings, 2 finished classifier runs): "
                            f"[forest plot]({forest}) · [whole table](")
    assert first.endswith(f" · [compare run]{link(compare)}")
    assert second == ("**Study**, profile `tiny`: settings Original-1.0-0.0, DCGAN-1.0-0.3; "
                      "seeds 0 (one GAN and one generated set per seed: gan_seeds=per-seed); "
                      f"data `{data}`.")
    assert f"get-artifact?path=forest.png&run_uuid={study.info.run_id}" in description
    assert table.splitlines()[0] in description  # the scale line
    assert "Not comparable with the paper's numbers" in description
    assert description.count(": new") == 5 and all(link(r) in description for r in runs.values())

    # The same call again launches nothing new.
    second, _ = project_run("main", params)
    assert second.exit_code == 0, second.output[-4000:]
    assert set(_stage_runs(client, experiment)) == set(runs)
    newest = client.search_runs([experiment], "tags.stage = 'study'",
                                order_by=["attributes.start_time DESC"])[0]
    assert newest.data.metrics["runs_launched"] == 0 and newest.data.metrics["runs_used"] == 5
    # The reused runs move under the study that used them last; the launcher stays in a tag.
    description = newest.data.tags["mlflow.note.content"]
    assert description.count(f"reused, launched by study [study-tiny]{link(study)}") == 5
    for run in _stage_runs(client, experiment).values():
        assert run.data.tags["mlflow.parentRunId"] == newest.info.run_id
        assert run.data.tags["launched_by_study"] == study.info.run_id

    # A new seed reruns exactly what depends on it: its GAN, generation, two classifier runs
    # (one GAN per seed) and compare.
    third, _ = project_run("main", {**params, "seeds": "0,1"})
    assert third.exit_code == 0, third.output[-4000:]
    added = [r for rid, r in _stage_runs(client, experiment).items() if rid not in runs]
    assert sorted((r.data.tags["stage"], r.data.tags.get("seed", "")) for r in added) == \
        [("compare", ""), ("generate", "1"), ("train_classifier", "1"), ("train_classifier", "1"),
         ("train_gan", "1")]
