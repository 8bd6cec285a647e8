"""The study's stage graph, the walk, the executors' plumbing and the dry run's estimates
(fast: no training; the end-to-end runs are in test_study_parallel.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from pneumonia_aug import measured, tracking
from pneumonia_aug.config import ClassifierConfig, StudyConfig
from pneumonia_aug.contract import COMPARE, GAN_QUALITY, GENERATE, TRAIN_CLASSIFIER, TRAIN_GAN
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
    """The shared design: one block, its GANs first (they wait for nothing), the Originals, the
    feature network, then per GAN its quality step, generation and settings."""
    cfg = StudyConfig(profile="tiny", seeds="0,1", real_subset="fixed", gan_seeds="shared",
                      settings="Original-1.0-0.0,Original-0.3-0.0,DCGAN-1.0-0.3,DCGAN-0.3-0.6")
    study = Study("x", "")
    nodes = study_graph(cfg, study)
    names = [n.name for n in nodes]
    deps = {n.name: n.deps for n in nodes}
    originals = tuple(f"train_classifier Original-{r}-0.0 seed {s}" for r in ("1.0", "0.3")
                      for s in (0, 1))
    assert names[:7] == ["train_gan dcgan", "train_gan dcgan r=0.3", *originals,
                         "feature network"]
    assert deps["feature network"] == originals
    assert deps["train_gan dcgan"] == deps["train_gan dcgan r=0.3"] == ()
    assert deps["gan_quality dcgan r=0.3"] == ("train_gan dcgan r=0.3", "feature network")
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
    process by id, was never opened there."""
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
    with pytest.raises(StageFailed, match="nowhere"):
        executor.launch(call, claim)
    # The stage process never opened it; the study's claim code deletes such a run (tested in
    # test_claims.py): here it is left as it was made.
    assert MlflowClient().get_run(claim).info.lifecycle_stage == "active"


def _report_warmth(path: str) -> None:
    """In a stage process: what it inherited from the forkserver."""
    from mlflow.utils import requirements_utils

    Path(path).write_text(json.dumps({
        "stores": "mlflow.store.tracking.sqlalchemy_store" in sys.modules,
        # module -> distributions (the models' requirements read it too), and the reverse
        "modules": requirements_utils._MODULES_TO_PACKAGES is not None,
        "packages": requirements_utils._PACKAGES_TO_MODULES is not None}))


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
    assert json.loads(report.read_text()) == {"stores": True, "modules": True, "packages": True}


def test_prefixed_output_marks_each_whole_line():
    import io

    from pneumonia_aug.study.tasks import _Prefixed

    target = io.StringIO()
    out = _Prefixed(target, "stage s")
    out.write("one\ntw")
    out.write("o\nthree")
    assert target.getvalue() == "[stage s] one\n[stage s] two\n"


def _record(device: str, size: int, classifier: float, gan: float, kind: str = "gpu") -> dict:
    """A `bench train` record with these loop rates (images over seconds)."""
    return {"device": device, "kind": kind, "date": "2026-01-01", "source": "cmd",
            "image_size": size, "threads": 1,
            "variants": [{"key": measured.CLASSIFIER_LOOP, "batch": 16, "images": 320,
                          "seconds": 320 / classifier},
                         {"key": measured.GAN_LOOP, "batch": 16, "images": 320,
                          "seconds": 320 / gan}]}


RECORDED_GPU = [{"device": "GPU X", "kind": "gpu", "date": "2026-01-02", "source": "runs",
                 "image_size": size, "threads": 1, "classifier": {"64": rate}, "gan": 900.0}
                for size, rate in ((256, 300.0), (128, 600.0))]


def test_the_figures_are_this_devices_records_else_its_kinds_at_the_nearest_size():
    bench = [_record("NVIDIA A", 256, 1000.0, 800.0), _record("NVIDIA A (64 px)", 64, 90.0, 9.0),
             _record("CPU: Some CPU (1 thread)", 64, 25.0, 16.0, kind="cpu")]
    own = estimate.figures_for("NVIDIA A", "gpu", 128, bench, RECORDED_GPU)
    assert (own.image_size, own.classifier, own.gan) == (256, pytest.approx({16: 1000.0}),
                                                          pytest.approx(800.0))
    assert estimate.figures_for("NVIDIA A", "gpu", 32, bench, RECORDED_GPU).image_size == 64
    other = estimate.figures_for("NVIDIA B", "gpu", 160, bench, RECORDED_GPU)
    assert (other.image_size, other.classifier, other.gan) == (128, {64: 600.0}, 900.0)
    assert other.source == "GPU X, 2026-01-02, runs"
    cpu = estimate.figures_for("CPU: Another CPU", "cpu", 32, bench, RECORDED_GPU)
    assert cpu.classifier == pytest.approx({16: 25.0}) and cpu.kind == "cpu"
    with pytest.raises(PneumoniaAugError, match="bench train --device cpu"):
        estimate.figures_for("CPU: Another CPU", "cpu", 32, bench[:2], RECORDED_GPU)


def test_a_classifier_stage_is_its_images_over_the_rate_plus_its_overhead(monkeypatch):
    """By hand: Kermany's pooled training images (1349 NORMAL + 3883 PNEUMONIA), 90% of them
    trained on, 10% validating each epoch, 624 test images once; evaluation at 3x the rate."""
    monkeypatch.setattr(estimate, "OVERHEAD_S", {"cpu": {TRAIN_CLASSIFIER: 7.0}})
    figures = estimate.Throughput("cpu", "test", 32, {16: 100.0}, 50.0)
    device = estimate.Device(figures, gpus=0, cores=2, width=1)  # 2 threads: 200 img/s
    cfg = ClassifierConfig(setting="Original-1.0-0.0", image_size=32, batch_size=16, epochs=2)
    train, val = 0.9 * (1349 + 3883), 0.1 * (1349 + 3883)
    expected = 2 * train / 200 + (2 * val + 624) / 600
    assert estimate.classifier_seconds(cfg, 0, device) == pytest.approx(expected)
    profile = StudyConfig(profile="quick").spec
    assert estimate.stage_seconds(TRAIN_CLASSIFIER, cfg, profile, device) == pytest.approx(
        7.0 + expected)
    capped = ClassifierConfig(**{**cfg.to_dict(), "max_images_per_split": 500})
    assert estimate.classifier_seconds(capped, 0, device) == pytest.approx(
        2 * 500 / 200 + (2 * 500 + 500) / 600)


def test_every_shipped_figure_says_its_device_date_and_source():
    recorded = measured.shipped(measured.RECORDED)
    entries = [*measured.bench_records(), *recorded["throughput"], *recorded["overhead"],
               *recorded["runs"]]
    assert len(entries) >= 6
    for entry in entries:
        assert all(entry[key] for key in ("device", "date", "source")), entry
    stages = {TRAIN_CLASSIFIER, TRAIN_GAN, GENERATE, COMPARE, GAN_QUALITY}
    assert all(set(estimate.OVERHEAD_S[kind]) == stages for kind in ("cpu", "gpu"))


def test_a_built_wheel_ships_the_figures(tmp_path):
    """An installed package has no docs/: the estimate reads the figures from the package."""
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path), str(repo)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {f"pneumonia_aug/measured/{name}" for name in (measured.BENCH, measured.RECORDED)} \
        <= shipped


def test_four_classifiers_share_a_card_at_its_best_throughput():
    card = estimate.Throughput("gpu", "test", 256, {16: 543.0, 128: 2031.0}, 1589.0)
    one = estimate.Device(card, gpus=1, cores=16, width=1)
    four = estimate.Device(card, gpus=1, cores=16, width=4)
    assert one.classifier_rate(16, 256) == 543.0
    assert four.classifier_rate(16, 256) == pytest.approx(2031 / 4)
    # fewer pixels: a GAN gets through more images; a classifier on a GPU no more
    assert four.gan_rate(128) == pytest.approx(4 * four.gan_rate(256))
    assert four.classifier_rate(16, 128) == pytest.approx(2031 / 4)
    cpu = estimate.Device(estimate.Throughput("cpu", "test", 64, {16: 25.0}, 16.0), gpus=0,
                          cores=2, width=1)
    assert cpu.classifier_rate(16, 32) == pytest.approx(4 * cpu.classifier_rate(16, 64))


def test_the_wall_time_replays_the_graph_on_the_slots():
    steps = [plan.Step(_node("a"), "run", 10), plan.Step(_node("b"), "run", 10),
             plan.Step(_node("c", "a", "b"), "run", 5), plan.Step(_node("r"), "reuse x")]
    nodes = [s.node for s in steps]
    assert plan.wall_seconds(nodes, steps, 1) == 25
    assert plan.wall_seconds(nodes, steps, 2) == 15


def test_the_dry_run_plans_every_stage_of_the_quick_study(tracking_uri):
    """Nothing in the store: each of the 17 stages of one seed runs, with an estimate; one at
    a time, the study takes their sum."""
    cfg = StudyConfig(profile="quick", seeds="0")
    figures = estimate.Throughput("cpu", "test", 64, {16: 25.0}, 16.0)
    nodes = study_graph(cfg, Study(cfg.experiment_name, ""))
    steps = plan.plan_steps(cfg, estimate.Device(figures, gpus=0, cores=2, width=1), nodes)
    assert len(steps) == 19 and all(s.action == "run" and s.seconds > 0 for s in steps)
    assert plan.wall_seconds(nodes, steps, 1) == pytest.approx(sum(s.seconds for s in steps))
