"""`study --dry-run`: the stages the study would run or reuse, and how long it would take.

It walks the study's graph without launching anything: a stage whose upstream is all known
(reused) is looked up like `Study.stage` would (`study.reuse.find_reusable_run`, read-only:
nothing is claimed or tagged); a stage downstream of one that would run, runs too (its
upstream run ids will be new). Each stage to run gets an estimate (`study.estimate`), and
the whole study a wall time from replaying the graph on `width` slots in the order the walk
starts stages.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, replace

from pneumonia_aug.config import StudyConfig
from pneumonia_aug.contract import TRAIN_CLASSIFIER
from pneumonia_aug.study import estimate
from pneumonia_aug.study.executors import cpu_cores
from pneumonia_aug.study.graph import Node, StageCall
from pneumonia_aug.study.ledger import Study
from pneumonia_aug.study.nodes import FEATURES, parse_seeds, parse_settings, study_graph
from pneumonia_aug.study.reuse import find_reusable_run, run_key

TO_RUN = "(to run)"  # a result standing for a run not made yet


@dataclass
class Step:
    node: Node
    action: str  # "run", "reuse <run id>", or "skip: ..." (an upstream failed before)
    seconds: float = 0.0


def _look_up(node: Node, results: dict, experiment: str) -> str | None:
    if any(results[d] == TO_RUN for d in node.deps):
        return TO_RUN
    made = node.make(results)
    if not isinstance(made, StageCall):
        return made
    key = run_key(made.stage, made.params, made.upstream)
    return find_reusable_run(experiment, key, made.params) or TO_RUN


def plan_steps(cfg: StudyConfig, device: estimate.Device) -> list[Step]:
    """Each stage (the feature network is a choice, not a step): reused, or run and how long."""
    names = parse_settings(cfg.settings or cfg.spec.settings)
    study = Study(cfg.experiment_name, "")
    results: dict[str, object] = {}
    steps = []
    for node in study_graph(cfg, study, names, parse_seeds(cfg.seeds or cfg.spec.seeds)):
        result = results[node.name] = _look_up(node, results, cfg.experiment_name)
        if node.kind != FEATURES:
            steps.append(Step(node, "run" if result == TO_RUN else f"reuse {result}" if result
                              else "skip: upstream failed"))
    counts = Counter(s.node.kind for s in steps if s.action == "run")
    device = replace(device, counts=dict(counts))
    for step in steps:
        if step.action == "run":
            step.seconds = estimate.stage_seconds(step.node.kind, step.node.config, cfg.spec,
                                                  device)
    return steps


def wall_seconds(steps: list[Step], width: int) -> float:
    """Replay: each stage starts, in listing order, once its upstream is done and a slot is
    free (the walk does the same); compare and the other driver steps take no slot."""
    finish: dict[str, float] = {}
    slots = [0.0] * max(1, width)
    for step in steps:
        ready = max((finish.get(d, 0.0) for d in _stage_deps(step.node, steps)), default=0.0)
        if step.node.in_driver or not step.seconds:
            finish[step.node.name] = ready + step.seconds
            continue
        free = heapq.heappop(slots)
        finish[step.node.name] = max(ready, free) + step.seconds
        heapq.heappush(slots, finish[step.node.name])
    return max(finish.values(), default=0.0)


def _stage_deps(node: Node, steps: list[Step]) -> tuple[str, ...]:
    """Dependencies through the feature network (not a step): a GAN waits on the Originals."""
    if node.deps == (FEATURES,):
        return tuple(s.node.name for s in steps if s.node.kind == TRAIN_CLASSIFIER
                     and not s.node.deps)
    return node.deps


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def plan_width(cfg: StudyConfig, gpus: int, cores: int) -> int:
    """Stages at once: max_parallel; 0 = one per core (local; ray on CPUs, one core a task),
    or on GPUs with Ray four per card (a classifier task asks for a quarter)."""
    if cfg.max_parallel:
        return cfg.max_parallel
    return 4 * gpus if cfg.executor == "ray" and gpus else cores


def plan_study(cfg: StudyConfig, gpus: int | None = None) -> str:
    """The dry run's report (Markdown): on this machine, or as if it had `gpus` GPUs."""
    figures, gpus = estimate.this_device(gpus, cfg.spec.image_size)
    cores = cpu_cores()
    width = plan_width(cfg, gpus, cores)
    steps = plan_steps(cfg, estimate.Device(figures, gpus, cores, width,
                                            gan_owns_card=cfg.executor == "ray"))
    to_run = [s for s in steps if s.action == "run"]
    at_once = "one at a time" if width == 1 else f"up to {width} at once"
    where = (f"{gpus} GPU(s), up to {-(-width // gpus)} stage(s) sharing a card" if gpus
             else f"the CPU, {cores} core(s), {max(1, cores // width)} thread(s) per stage")
    rates = ", ".join(f"{v:g} img/s at batch {b}" for b, v in figures.classifier.items())
    lines = [f"Plan: profile {cfg.profile}, executor {cfg.executor}, {at_once}, on {where}.",
             f"Throughput ({figures.source}): classifier {rates}, GAN {figures.gan:g} img/s, at "
             f"{figures.image_size} px{', 1 thread' if figures.kind == 'cpu' else ''}.", "",
             "| stage | action | estimated |", "|---|---|---:|"]
    lines += [f"| {s.node.name} | {s.action} | {_duration(s.seconds) if s.seconds else '-'} |"
              for s in steps]
    lines += ["", f"{len(steps)} stages: {len(to_run)} to run, "
                  f"{sum(s.action.startswith('reuse') for s in steps)} reused. Stage time "
                  f"{_duration(sum(s.seconds for s in to_run))}; wall time about "
                  f"{_duration(wall_seconds(steps, width))} ({at_once})."]
    return "\n".join(lines)
