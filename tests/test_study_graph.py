"""The study's stage graph, the walk, the executors' plumbing and the dry run's estimates
(fast: no training; the end-to-end runs are in test_study_parallel.py)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from pneumonia_aug import tracking
from pneumonia_aug.config import ClassifierConfig, StudyConfig
from pneumonia_aug.contract import TRAIN_CLASSIFIER
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.study import estimate, plan
from pneumonia_aug.study.executors import LocalExecutor, make_executor
from pneumonia_aug.study.graph import Node, walk
from pneumonia_aug.study.ledger import Study
from pneumonia_aug.study.nodes import study_graph
from pneumonia_aug.study.tasks import Task, run_task


def _node(name: str, *deps: str, in_driver: bool = False) -> Node:
    return Node(name, "x", deps, make=lambda results: None, in_driver=in_driver)


def test_one_at_a_time_runs_the_nodes_in_listing_order():
    order = []
    nodes = [_node("a"), _node("b"), _node("c", "a"), _node("d", "b", "c")]
    walk(nodes, lambda node, results: order.append(node.name) or node.name.upper())
    assert order == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="missing|'c'"):
        walk([_node("d", "c"), _node("c")], lambda node, results: None)


def test_parallel_walk_runs_ready_nodes_together_and_driver_nodes_here():
    both = threading.Barrier(2, timeout=10)  # breaks unless "a" and "b" run at the same time
    seen = {}

    def run(node, results):
        seen[node.name] = (threading.current_thread() is threading.main_thread(),
                           {d: results[d] for d in node.deps})
        if node.name in ("a", "b"):
            both.wait()
        return node.name + "!"

    nodes = [_node("a"), _node("b"), _node("pick", "a", "b", in_driver=True),
             _node("c", "pick"), _node("end", "c", in_driver=True)]
    results = walk(nodes, run, width=2)
    assert results == {n.name: n.name + "!" for n in nodes}
    assert seen["pick"] == (True, {"a": "a!", "b": "b!"})
    assert seen["a"][0] is False and seen["end"][0] is True


def test_a_crash_in_the_walk_stops_what_runs_and_is_raised():
    stopped = threading.Event()

    def run(node, results):
        if node.name == "bad":
            raise RuntimeError("boom")
        stopped.wait(10)  # "slow" runs until the walk stops it
        return "ok"

    with pytest.raises(RuntimeError, match="boom"):
        walk([_node("slow"), _node("bad")], run, width=2, stop=stopped.set)
    assert stopped.is_set()


def test_the_study_graph_has_each_stage_after_what_it_needs():
    cfg = StudyConfig(profile="tiny", seeds="0,1", real_subset="fixed",
                      settings="Original-1.0-0.0,Original-0.3-0.0,DCGAN-1.0-0.3,DCGAN-0.3-0.6")
    study = Study("x", "")
    nodes = study_graph(cfg, study, cfg.settings.split(","), [0, 1])
    names = [n.name for n in nodes]
    deps = {n.name: n.deps for n in nodes}
    originals = tuple(f"train_classifier Original-{r}-0.0 seed {s}" for r in ("1.0", "0.3")
                      for s in (0, 1))
    assert names[:5] == [*originals, "feature network"]
    assert deps["feature network"] == originals
    assert deps["train_gan dcgan"] == deps["train_gan dcgan r=0.3"] == ("feature network",)
    assert deps["generate dcgan r=0.3"] == ("train_gan dcgan r=0.3",)
    assert deps["train_classifier DCGAN-0.3-0.6 seed 1"] == ("generate dcgan r=0.3",)
    assert deps["train_classifier DCGAN-1.0-0.3 seed 0"] == ("generate dcgan",)
    classifiers = [n for n in names if n.startswith(TRAIN_CLASSIFIER)]
    assert names[-1] == "compare" and sorted(deps["compare"]) == sorted(classifiers)
    assert len(classifiers) == 8
    # A GAN setting whose generation failed is recorded, not launched.
    node = next(n for n in nodes if n.name == "train_classifier DCGAN-1.0-0.3 seed 1")
    assert node.make({"generate dcgan": None}) is None
    assert study.failed == ["DCGAN-1.0-0.3 seed 1: no generated images (DCGAN failed)"]


def test_stage_processes_divide_the_cores_and_deal_the_gpus(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv("MLFLOW_RUN_ID", "the-study-run-under-mlflow-run")
    executor = LocalExecutor(2)
    envs = [executor._env(slot) for slot in range(3)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["3", "5", "3"]
    assert {e["OMP_NUM_THREADS"] for e in envs} == {"2"}
    assert all("MLFLOW_RUN_ID" not in e and e["MLFLOW_TRACKING_URI"] for e in envs)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # one GPU: every stage shares it
    assert LocalExecutor(3)._env(1)["CUDA_VISIBLE_DEVICES"] == "0"


def test_ray_missing_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(PneumoniaAugError, match=r"pip install -e '\.\[ray\]'"):
        make_executor("ray", 2)


def test_a_task_reports_a_user_error_as_its_outcome(tracking_uri, tmp_path):
    """What a stage process writes (and a Ray task returns) when its stage refuses the input:
    the message the study records, and no run left behind."""
    with tracking.start_run("pneumonia-aug", run_name="study") as parent:
        parent_id = parent.info.run_id
    cfg = ClassifierConfig(data_dir=str(tmp_path / "nowhere"), image_size=32, epochs=1)
    task = Task.from_json(Task(TRAIN_CLASSIFIER, cfg.to_dict(), parent_id).to_json())
    outcome = run_task(task)
    assert outcome["user"] is True and "nowhere" in outcome["error"]
    assert not tracking.search_runs([tracking.experiment_id("pneumonia-aug")],
                                    f"tags.mlflow.parentRunId = '{parent_id}'")


def test_a_stage_process_that_refuses_its_input_leaves_its_claim_nothing(tracking_uri,
                                                                         tmp_path):
    """Through a real stage process (forked from the forkserver): the stage's user error comes
    back as StageFailed with its message, and the run the study claimed for it, handed to that
    process, is deleted there (never opened)."""
    from mlflow import MlflowClient

    from pneumonia_aug.study.graph import StageCall
    from pneumonia_aug.study.outcome import StageFailed

    with tracking.start_run("pneumonia-aug", run_name="study") as parent:
        parent_id = parent.info.run_id
    claim, _ = tracking.create_run("pneumonia-aug", {"reuse_key": "k",
                                                     "mlflow.parentRunId": parent_id})
    cfg = ClassifierConfig(data_dir=str(tmp_path / "nowhere"), image_size=32, epochs=1)
    executor = LocalExecutor(2)
    executor.parent_run_id = parent_id
    call = StageCall(TRAIN_CLASSIFIER, "the-label", {}, {}, config=cfg)
    with tracking.adopting(claim) as adoption, pytest.raises(StageFailed, match="nowhere"):
        executor.launch(call)
    assert adoption.used  # handed to the stage process: not the driver's to delete
    assert MlflowClient().get_run(claim).info.lifecycle_stage == "deleted"


def _report_warmth(path: str) -> None:
    """In a stage process: what it inherited from the forkserver."""
    from mlflow.utils import requirements_utils

    from pneumonia_aug.serving import packaging

    Path(path).write_text(json.dumps({
        "stores": "mlflow.store.tracking.sqlalchemy_store" in sys.modules,
        "ours": packaging._distributions_by_module.cache_info().currsize,
        "mlflow": requirements_utils._PACKAGES_TO_MODULES is not None}))


def test_stage_processes_start_with_the_stores_imported_and_the_maps_built(tmp_path):
    """Per stage, a cold process spent about 1.2 s importing MLflow's database stores and 1.8 s
    building the distributions maps that logging a model consults: the forkserver does both
    once and each stage process inherits them."""
    executor = LocalExecutor(2)
    report = tmp_path / "warmth.json"
    proc = executor._context.Process(target=_report_warmth, args=(str(report),))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    assert json.loads(report.read_text()) == {"stores": True, "ours": 1, "mlflow": True}


def test_prefixed_output_marks_each_whole_line():
    import io

    from pneumonia_aug.study.tasks import _Prefixed

    target = io.StringIO()
    out = _Prefixed(target, "stage s")
    out.write("one\ntw")
    out.write("o\nthree")
    assert target.getvalue() == "[stage s] one\n[stage s] two\n"


def test_the_bench_figures_are_read_from_the_shipped_file():
    figures = estimate.read_bench("CPU", "cpu")
    assert figures is not None and figures.image_size == 64 and figures.threads == 1
    assert figures.classifier == {16: 25.7} and figures.gan == 16.7
    assert estimate.read_bench("NVIDIA H999", "gpu") is None  # no section: the defaults


def test_the_shipped_figures_are_those_of_docs_benchmarks():
    """`study/throughput.json` (in the package) is what the bench's writer makes of the
    checkout's docs/benchmarks.md: the two never disagree."""
    from pneumonia_aug.bench import report

    assert report.CHECKOUT_BENCHMARKS.is_file()
    shipped = json.loads(report.FIGURES.read_text())
    assert shipped == report.throughput_figures(report.CHECKOUT_BENCHMARKS.read_text())
    assert shipped == estimate.bench_figures()


def test_writing_the_checkouts_page_writes_the_figures(tmp_path, monkeypatch):
    from pneumonia_aug.bench import report

    page, figures = tmp_path / "benchmarks.md", tmp_path / "throughput.json"
    monkeypatch.setattr(report, "CHECKOUT_BENCHMARKS", page)
    monkeypatch.setattr(report, "FIGURES", figures)
    body = ("Measured today: `pneumonia-aug bench train --image-size 64 --batch-size 16`\n\n"
            "| classifier loop | 16 | 320 | 12.46 | 25.7 | n/a |\n"
            "| GAN loop | 16 | 320 | 19.18 | 16.7 | n/a |\n")
    report.write_section(tmp_path / "other.md", "CPU: Example (1 thread)", body)
    assert not figures.exists()  # another page: no figures
    report.write_section(page, "CPU: Example (1 thread)", body)
    sections = json.loads(figures.read_text())
    found = estimate.read_bench("CPU: Example", "cpu", sections)
    assert (found.image_size, found.classifier, found.gan) == (64, {16: 25.7}, 16.7)


def test_four_classifiers_share_a_card_at_its_best_throughput():
    one = estimate.Device(estimate.H200, gpus=1, cores=16, width=1)
    four = estimate.Device(estimate.H200, gpus=1, cores=16, width=4)
    assert one.classifier_rate(16, 256) == 543.0
    assert four.classifier_rate(16, 256) == pytest.approx(2031 / 4)
    # fewer pixels: a GAN gets through more images; a classifier on a GPU no more
    assert four.gan_rate(128) == pytest.approx(4 * four.gan_rate(256))
    assert four.classifier_rate(16, 128) == pytest.approx(2031 / 4)
    cpu = estimate.Device(estimate.CPU_DEFAULT, gpus=0, cores=2, width=1)
    assert cpu.classifier_rate(16, 32) == pytest.approx(4 * cpu.classifier_rate(16, 64))


def test_the_wall_time_replays_the_graph_on_the_slots():
    steps = [plan.Step(_node("a"), "run", 10), plan.Step(_node("b"), "run", 10),
             plan.Step(_node("c", "a", "b"), "run", 5), plan.Step(_node("r"), "reuse x")]
    assert plan.wall_seconds(steps, 1) == 25
    assert plan.wall_seconds(steps, 2) == 15


def test_the_dry_run_of_the_quick_study_is_near_its_measured_time(tracking_uri):
    """The quick study (one seed, one stage at a time) took 11 min 16 s on the 2-core machine
    whose 1-thread figures are `estimate.CPU_DEFAULT` (with other work on it; README). Those
    figures, not docs/benchmarks.md, which a bench on another CPU rewrites."""
    cfg = StudyConfig(profile="quick", seeds="0")
    device = estimate.Device(estimate.CPU_DEFAULT, gpus=0, cores=2, width=1)
    steps = plan.plan_steps(cfg, device)
    assert len(steps) == 17 and all(s.action == "run" for s in steps)
    assert 0.5 * 676 < plan.wall_seconds(steps, 1) < 1.5 * 676


# The short study on one H200 with 9 stages at once (docs/results/gpu-2026-12-04-2/stages.md):
# each stage's wall time (the longest of its seeds), and the span from the first stage run's
# start to the last one's end.
SHORT_H200 = {"Original-1.0-0.0": 115, "Original-0.3-0.0": 106, "train_gan cgan": 216,
              "train_gan dcgan": 79, "generate cgan": 11, "generate dcgan": 8,
              "DCGAN-1.0-0.6": 156,
              "DCGAN-0.3-0.6": 146, "CGAN-1.0-0.6": 109}
SHORT_H200_SPAN = 453


def test_the_dry_run_of_the_short_study_is_near_its_h200_run(tracking_uri):
    """Each stage's estimate within 45% of its measured wall time, most within 20%, and the
    study's within 20%: the figures nearest 128 px are the short study's own."""
    cfg = StudyConfig(profile="short", max_parallel=9)
    figures, _ = estimate.this_device(1, cfg.spec.image_size)
    assert figures is estimate.H200_STUDY  # not the 256 px bench figures scaled by pixels
    steps = plan.plan_steps(cfg, estimate.Device(figures, gpus=1, cores=16, width=9))
    ratios = {}
    for step in steps:
        name = next((k for k in SHORT_H200 if k in step.node.name), None)
        if name:
            ratios[step.node.name] = step.seconds / SHORT_H200[name]
    assert len(ratios) == 19 and all(0.55 < r < 1.45 for r in ratios.values()), ratios
    assert sum(0.8 < r < 1.2 for r in ratios.values()) >= 15, ratios
    assert 0.8 * SHORT_H200_SPAN < plan.wall_seconds(steps, 9) < 1.2 * SHORT_H200_SPAN


# The medium study on one H200 (docs/results/medium-gpu/stages.md): six Originals side by side,
# then the GAN and its generation, then the six GAN-row runs side by side (the longest of each
# setting's seeds); the span the study would take in one run: the GAN rows started at 206 s.
MEDIUM_H200 = {"Original-1.0-0.0": 159, "Original-0.3-0.0": 139, "train_gan dcgan": 44,
               "DCGAN-1.0-0.6": 153, "DCGAN-0.3-0.6": 139}
MEDIUM_H200_SPAN = 206 + 153


def test_the_dry_run_of_the_medium_study_is_near_its_h200_run(tracking_uri):
    """At 32 px, below the 128 px the figures were measured at, a classifier is no faster per
    image on a GPU (it was estimated at a sixteenth of its time: a 2-minute study for 6)."""
    cfg = StudyConfig(profile="medium", max_parallel=7)
    figures, _ = estimate.this_device(1, cfg.spec.image_size)
    steps = plan.plan_steps(cfg, estimate.Device(figures, gpus=1, cores=16, width=7))
    ratios = {step.node.name: step.seconds / MEDIUM_H200[name] for step in steps
              for name in MEDIUM_H200 if name in step.node.name}
    assert len(ratios) == 13 and all(0.55 < r < 1.45 for r in ratios.values()), ratios
    assert 0.8 * MEDIUM_H200_SPAN < plan.wall_seconds(steps, 7) < 1.2 * MEDIUM_H200_SPAN


def test_the_study_section_of_the_benchmarks_is_no_device_section(tmp_path):
    from pneumonia_aug.bench import report
    from pneumonia_aug.bench.report import write_section

    output = tmp_path / "benchmarks.md"
    write_section(output, "CPU: Example (1 thread)", "cpu body\n")
    write_section(output, "Study: stages in parallel", "study body\n")
    assert "No GPU section yet" in output.read_text()
    assert report.throughput_figures(output.read_text()) == []
