"""`study --dry-run`: the stages the study would run or reuse, and how long it would take.

It walks the study's graph without launching anything: a stage whose upstream is all known
(reused) is looked up like `Study.stage` would (`study.reuse.find_reusable_run`, read-only:
nothing is claimed or tagged); a stage downstream of one that would run, runs too (its
upstream run ids will be new). Each stage to run gets an estimate (`study.estimate`), and
the whole study a wall time from replaying the walk on `width` slots (`study.replay`). A
profile with planned seeds also gets what one time-limited run of the kit (`ALLOCATION_S`)
finishes, paced as the study paces itself (`study.pacing`), and how many such runs the plan
needs.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, replace

from pneumonia_aug.config import ALLOCATION_STUDY_S, StudyConfig
from pneumonia_aug.contract import GAN_QUALITY
from pneumonia_aug.stages.tags import quality_settled
from pneumonia_aug.study import estimate
from pneumonia_aug.study.executors import cpu_cores
from pneumonia_aug.study.graph import Node, StageCall
from pneumonia_aug.study.ledger import Study
from pneumonia_aug.study.nodes import FEATURES, study_graph
from pneumonia_aug.study.replay import Timeline, replay
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
    if made.stage == GAN_QUALITY:
        done = quality_settled(made.config.gan_run_id, made.config.feature_model_uri)
        return made.config.gan_run_id if done else TO_RUN
    key = run_key(made.stage, made.params, made.upstream)
    return find_reusable_run(experiment, key, made.params) or TO_RUN


def plan_steps(cfg: StudyConfig, device: estimate.Device,
               nodes: list[Node] | None = None) -> list[Step]:
    """Each stage (driver steps such as choosing the feature network are not steps): reused,
    or run and how long."""
    nodes = nodes or study_graph(cfg, Study(cfg.experiment_name, ""))
    results: dict[str, object] = {}
    steps = []
    for node in nodes:
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


def timeline(nodes: list[Node], steps: list[Step], width: int, budget: float = 0.0,
             span: float = 0.0) -> Timeline:
    return replay(nodes, {s.node.name: s.seconds for s in steps}, width, budget, span)


def wall_seconds(nodes: list[Node], steps: list[Step], width: int) -> float:
    return timeline(nodes, steps, width).wall


def _pair_seconds(nodes: list[Node], steps: list[Step], width: int) -> float:
    """A seed's pair from its first stage's start to its last one's end, as the replay of the
    whole study has it (the median over seeds: early ones share the card with fewer)."""
    spans = [s for s in timeline(nodes, steps, width).seed_spans(nodes).values() if s > 0]
    return statistics.median(spans) if spans else 0.0


def seed_seconds(cfg: StudyConfig, nodes: list[Node], width: int) -> float:
    """The pacing's estimate of one pair, on this machine, every stage to run."""
    figures, gpus = estimate.this_device(None, cfg.spec.image_size)
    device = estimate.Device(figures, gpus, cpu_cores(), width)
    steps = [Step(n, "run") for n in nodes if not n.in_driver]
    counts = Counter(s.node.kind for s in steps)
    device = replace(device, counts=dict(counts))
    for step in steps:
        step.seconds = estimate.stage_seconds(step.node.kind, step.node.config, cfg.spec, device)
    return _pair_seconds(nodes, steps, width)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _clock(seconds: float) -> str:
    """When, from the study's start: `h:mm:ss`, or `m:ss` under an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plan_width(cfg: StudyConfig, gpus: int, cores: int) -> int:
    """Stages at once: max_parallel; 0 = one per core (local; ray on CPUs, one core a task),
    or on GPUs with Ray four per card (a classifier task asks for a quarter)."""
    if cfg.max_parallel:
        return cfg.max_parallel
    return 4 * gpus if cfg.executor == "ray" and gpus else cores


def allocations(nodes: list[Node], steps: list[Step], width: int,
                budget: float = ALLOCATION_STUDY_S) -> list[str]:
    """What time-limited runs of `budget` seconds of study each finish, the study paced as it
    paces itself: the plan's seeds still to run, allocation after allocation."""
    span = _pair_seconds(nodes, steps, width)
    to_run = sorted({s.node.seed for s in steps if s.action == "run" and s.node.seed is not None})
    if not to_run or not span:
        return []
    first = timeline(nodes, steps, width, budget, span)
    pairs = len([s for s in first.complete_seeds(nodes, budget) if s in to_run])
    lines = [f"One run of {_duration(budget)} of study (the kit's default allocation) starts "
             f"a seed while its pair fits (a pair: about {_duration(span)} from its start, "
             f"sharing the card) and finishes about {pairs} pair(s)."]
    if pairs:
        needed = math.ceil(len(to_run) / pairs)
        lines.append(f"The {len(to_run)} seed(s) still to run need about {needed} such run(s) "
                     f"({_duration(needed * budget)} of study time).")
    else:
        lines.append("No pair fits one run: give the study more time per run (`kit run "
                     "--budget`) or fewer stages at once.")
    return lines


def plan_study(cfg: StudyConfig, gpus: int | None = None) -> str:
    """The dry run's report (Markdown): on this machine, or as if it had `gpus` GPUs."""
    figures, gpus = estimate.this_device(gpus, cfg.spec.image_size)
    cores = cpu_cores()
    width = plan_width(cfg, gpus, cores)
    nodes = study_graph(cfg, Study(cfg.experiment_name, ""))
    steps = plan_steps(cfg, estimate.Device(figures, gpus, cores, width,
                                            gan_owns_card=cfg.executor == "ray"), nodes)
    to_run = [s for s in steps if s.action == "run"]
    at_once = "one at a time" if width == 1 else f"up to {width} at once"
    where = (f"{gpus} GPU(s), up to {-(-width // gpus)} stage(s) sharing a card" if gpus
             else f"the CPU, {cores} core(s), {max(1, cores // width)} thread(s) per stage")
    rates = ", ".join(f"{v:g} img/s at batch {b}" for b, v in figures.classifier.items())
    when = timeline(nodes, steps, width)
    lines = [f"Plan: profile {cfg.profile}, GAN design {cfg.design}, executor {cfg.executor}, "
             f"{at_once}, on {where}.",
             f"Throughput ({figures.source}): classifier {rates}, GAN {figures.gan:g} img/s, at "
             f"{figures.image_size} px{', 1 thread' if figures.kind == 'cpu' else ''}.", "",
             "| stage | action | estimated | starts | ends |", "|---|---|---:|---:|---:|"]
    lines += [f"| {s.node.name} | {s.action} | {_duration(s.seconds) if s.seconds else '-'} | "
              f"{_clock(when.start[s.node.name])} | {_clock(when.end[s.node.name])} |"
              for s in steps]
    lines += ["", f"{len(steps)} stages: {len(to_run)} to run, "
                  f"{sum(s.action.startswith('reuse') for s in steps)} reused. Stage time "
                  f"{_duration(sum(s.seconds for s in to_run))}; wall time about "
                  f"{_duration(when.wall)} ({at_once})."]
    if cfg.planned_seeds:
        running = {s.node.seed for s in to_run}
        done = [seed for seed in cfg.seed_list if seed not in running]
        lines += ["", f"Planned: {cfg.planned_seeds} seeds (pairs), from the power analysis "
                      f"(docs/statistics.md); this study runs seeds {cfg.seeds or cfg.spec.seeds}"
                      f", listed seed by seed; {len(done)} complete already.",
                  *allocations(nodes, steps, width)]
    return "\n".join(lines)
