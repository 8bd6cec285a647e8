"""The study's design (fast, no training): one GAN per seed listed seed by seed, or one shared
GAN; seeds and settings parsed once, before anything else; the time budget's pacing, in the
study and in the dry run's replay; what a later kit run can reuse of an earlier one's store."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from pneumonia_aug.config import StudyConfig
from pneumonia_aug.errors import PneumoniaAugError, SettingError
from pneumonia_aug.kit.carry import not_carried
from pneumonia_aug.settings import parse_seeds
from pneumonia_aug.study.graph import Node
from pneumonia_aug.study.ledger import Study
from pneumonia_aug.study.nodes import study_graph
from pneumonia_aug.study.pacing import Pacing
from pneumonia_aug.study.replay import replay

HEADLINE = "Original-1.0-0.0,DCGAN-1.0-0.6"


def test_seeds_are_lists_or_ranges_and_each_once():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3, 7") == [0, 1, 2, 3, 7]
    for bad, message in (("0,x", "ranges"), ("3-1", "ranges"), ("", "at least one"),
                         ("0-2,2", "twice")):
        with pytest.raises(PneumoniaAugError, match=message):
            parse_seeds(bad)


def test_a_study_config_resolves_its_seeds_settings_and_design_once():
    cfg = StudyConfig(profile="claim")
    assert cfg.seed_list == list(range(cfg.planned_seeds)) and cfg.planned_seeds >= 22
    assert [s.name for s in cfg.setting_list] == HEADLINE.split(",")
    assert cfg.design == "per-seed" and StudyConfig(gan_seeds="shared").design == "shared"
    with pytest.raises(SettingError, match="invalid setting 'DCGAN-1.5-0.6'"):
        StudyConfig(settings="Original-1.0-0.0,DCGAN-1.5-0.6")


@pytest.mark.parametrize("args", [
    ["train-classifier", "--setting", "DCGAN-1.5-0.6"],
    ["study", "--settings", "Original-1.0-0.0,FOO-1.0-0.3"],
    ["study", "--seeds", "0,one"],
])
def test_a_typo_fails_in_one_line_before_the_tracking_server_is_asked(args, monkeypatch):
    """Nothing listens on port 9: a config that reached the tracking check would fail there
    (and with retries, slowly), naming the server; these fail on the typo."""
    from pneumonia_aug.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "127.0.0.1:9" not in line, line


def test_per_seed_gives_each_seed_its_own_gan_and_generation_listed_seed_by_seed():
    cfg = StudyConfig(profile="tiny", seeds="0,1,2", settings=HEADLINE)
    nodes = study_graph(cfg, Study("x", ""))
    by_name = {n.name: n for n in nodes}
    for seed in (0, 1, 2):
        gan, generate = by_name[f"train_gan dcgan seed {seed}"], by_name[
            f"generate dcgan seed {seed}"]
        assert gan.config.seed == generate.config.seed == seed and gan.deps == ()
        assert generate.deps == (gan.name,)
        assert by_name[f"train_classifier DCGAN-1.0-0.6 seed {seed}"].deps == (generate.name,)
        assert by_name[f"gan_quality dcgan seed {seed}"].deps == (
            gan.name, f"feature network seed {seed}")
        assert by_name[f"feature network seed {seed}"].deps == (
            f"train_classifier Original-1.0-0.0 seed {seed}",)
    seeds = [n.seed for n in nodes[:-1]]
    assert seeds == sorted(seeds) and len(seeds) == 3 * 6  # seed-major, 6 nodes a pair
    assert nodes[-1].name == "compare" and nodes[-1].seed is None
    assert {n.config.gan_seeds for n in nodes if n.kind == "train_classifier"} == {"per-seed"}


def test_shared_keeps_one_gan_trained_and_drawn_with_seed_0():
    cfg = StudyConfig(profile="tiny", seeds="0,1,2", settings=HEADLINE, gan_seeds="shared")
    nodes = study_graph(cfg, Study("x", ""))
    gans = [n for n in nodes if n.kind == "train_gan"]
    generates = [n for n in nodes if n.kind == "generate"]
    assert [(g.name, g.config.seed, g.seed) for g in gans] == [("train_gan dcgan", 0, None)]
    assert [(g.config.seed, g.deps) for g in generates] == [(0, ("train_gan dcgan",))]
    rows = [n for n in nodes if n.name.startswith("train_classifier DCGAN")]
    assert [n.deps for n in rows] == [("generate dcgan",)] * 3
    assert {n.config.gan_seeds for n in rows} == {"shared"}


def _pair(seed: int) -> list[Node]:
    """A pair: its GAN (60 s), its Original (50 s), the GAN row (40 s) after the GAN."""
    def node(name, *deps):
        return Node(f"{name} {seed}", name, tuple(f"{d} {seed}" for d in deps),
                    make=lambda r: None, seed=seed)
    return [node("gan"), node("original"), node("row", "gan")]


SECONDS = {f"{name} {s}": took for s in range(4)
           for name, took in (("gan", 60), ("original", 50), ("row", 40))}


def test_the_replay_starts_seeds_in_order_as_slots_free():
    nodes = [n for s in range(4) for n in _pair(s)]
    timeline = replay(nodes, SECONDS, width=2)
    assert timeline.start["gan 0"] == timeline.start["original 0"] == 0
    assert timeline.start["row 0"] == 60 and timeline.start["gan 1"] == 50
    assert timeline.seed_spans(nodes)[0] == 100 and timeline.left_out == []
    # One slot: exactly the listing order.
    one = replay(nodes, SECONDS, width=1)
    assert one.wall == 4 * 150 and one.start["gan 1"] == 150


def test_with_a_budget_the_replay_leaves_out_the_seeds_whose_pair_would_not_fit():
    nodes = [n for s in range(4) for n in _pair(s)]
    timeline = replay(nodes, SECONDS, width=1, budget=320, span=150)
    assert timeline.left_out == [2, 3]  # seed 2 would start at 300, past 320 - 150
    assert timeline.complete_seeds(nodes, 320) == [0, 1]
    assert "gan 2" in timeline.skipped and timeline.wall == 300


def test_the_study_paces_seeds_by_the_longest_pair_so_far():
    now = [0.0]
    nodes = [n for s in range(3) for n in _pair(s)]
    pacing = Pacing(budget_s=250, estimate_s=100, nodes=nodes, clock=lambda: now[0])
    seed0 = nodes[:3]
    assert all(pacing.may_start(n) for n in seed0)  # 0 + 100 <= 250
    now[0] = 130.0  # seed 0's pair took 130 s: longer than the estimate
    for n in seed0:
        pacing.done(n)
    assert pacing.pair_s == 130
    assert not pacing.may_start(nodes[3])  # 130 + 130 > 250: seed 1 is left out ...
    assert not pacing.may_start(nodes[4]) and pacing.left_out == [1]  # ... all of it
    unpaced = Pacing(0, 0, nodes, clock=lambda: 1e9)
    assert all(unpaced.may_start(n) for n in nodes)


def _run(run_id, stage, status="FINISHED", **tags):
    return SimpleNamespace(info=SimpleNamespace(run_id=run_id, status=status),
                           data=SimpleNamespace(tags={"stage": stage, **tags}))


def test_a_later_kit_run_retrains_only_what_an_unfinished_seed_needs():
    """Seed 0 complete; seed 1: its GAN and generation finished, its GAN row was killed;
    seed 2: its GAN finished, its generation never ran; the Originals all finished."""
    runs = [_run("g0", "train_gan"), _run("n0", "generate", train_gan_run_id="g0"),
            _run("c0", "train_classifier", synthetic_run_id="n0"),
            _run("g1", "train_gan"), _run("n1", "generate", train_gan_run_id="g1"),
            _run("c1", "train_classifier", "KILLED", synthetic_run_id="n1"),
            _run("g2", "train_gan"),
            *[_run(f"o{s}", "train_classifier") for s in range(3)]]
    dropped = not_carried(runs)
    assert sorted(dropped) == ["g1", "g2", "n1"]
    assert "generation did not finish" in dropped["g2"] and "images" in dropped["n1"]
