"""`pneumonia-aug bench estimate`: the dry run's estimate against the studies whose times were
recorded (`measured`, `recorded.json`: `runs`), as a section of docs/benchmarks.md.

Each recorded study is planned as `study --dry-run` plans it (`study.plan.plan_steps`, in an
empty store, so every stage runs and none is reused), on the figures the estimate reads for
that run's device and image size, at the run's width; each recorded stage (the longest of its
seeds) is set beside its estimate (the longest of its seeds' estimates), and the whole study's
span beside the plan's wall time. Nothing runs but the plan: seconds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pneumonia_aug import measured, tracking
from pneumonia_aug.bench.report import ESTIMATE_COMMAND, STUDY_HEADING, write_section
from pneumonia_aug.config import SHARED, StudyConfig
from pneumonia_aug.study import estimate, plan
from pneumonia_aug.study.ledger import Study
from pneumonia_aug.study.nodes import study_graph

HEADING = f"{STUDY_HEADING}the dry run's estimate against recorded runs"
SPAN = "whole study (span)"


@dataclass
class Compared:
    run: dict  # as recorded
    figures: str  # where the estimate's figures come from
    rows: list[tuple[str, float, float]]  # (stage, measured s, estimated s), the span last


def compare(run: dict) -> Compared:
    """One recorded run against its plan (in the tracking store in use: an empty one)."""
    width = run["max_parallel"]
    # The recorded studies shared one GAN per row (the design before per-seed GANs).
    cfg = StudyConfig(profile=run["profile"], seeds=run["seeds"], max_parallel=width,
                      gan_seeds=run.get("gan_seeds", SHARED))
    kind = "gpu" if run["gpus"] else "cpu"
    figures = estimate.figures_for(run["device"], kind, cfg.spec.image_size)
    nodes = study_graph(cfg, Study(cfg.experiment_name, ""))
    steps = plan.plan_steps(cfg, estimate.Device(figures, run["gpus"], run["cores"], width),
                            nodes)
    rows = [(stage, seconds, max(s.seconds for s in steps
                                 if f" {stage} " in f" {s.node.name} "))
            for stage, seconds in run["stages_s"].items()]
    rows.append((SPAN, run["span_s"], plan.wall_seconds(nodes, steps, width)))
    return Compared(run, figures.source, rows)


def compare_recorded(runs: list[dict] | None = None) -> list[Compared]:
    """Every recorded run (the package's unless given), planned in a throwaway empty store."""
    runs = measured.shipped(measured.RECORDED)["runs"] if runs is None else runs
    with tempfile.TemporaryDirectory() as tmp, \
            tracking.reading_store(f"sqlite:///{Path(tmp) / 'empty.db'}"):
        return [compare(run) for run in runs]


def render(compared: list[Compared]) -> str:
    """The section: how it was made, one table row per recorded stage, each run's sources."""
    lines = [f"Written by `{ESTIMATE_COMMAND}` from the recorded runs in "
             f"`{Path(measured.BENCH_PATH).with_name(measured.RECORDED)}` and the code of the "
             "dry run: each study planned as `study --dry-run` plans it on that run's device "
             "(every stage to run, none reused), at its width; a stage's time is the longest "
             "of its seeds'. Rewrite it when the estimate or its figures change "
             "(`tests/test_docs.py` checks it is fresh).", "",
             "| Recorded run | Date | Stage | Measured (s) | Estimated (s) | "
             "Estimated / measured |", "|---|---|---|---:|---:|---:|"]
    for c in compared:
        for stage, seconds, estimated in c.rows:
            lines.append(f"| {c.run['name']} | {c.run['date']} | {stage} | {seconds:.0f} | "
                         f"{estimated:.0f} | {estimated / seconds:.2f} |")
    lines += ["", "Measured in, and estimated from:", ""]
    for c in compared:
        note = f" ({c.run['note']})" if c.run.get("note") else ""
        gpus = c.run["gpus"]
        where = (f"{gpus} GPU{'s' * (gpus > 1)}, " if gpus else "") + f"{c.run['cores']} cores"
        lines.append(f"- {c.run['name']}: {c.run['source']}{note}; {c.run['device']}, {where}. "
                     f"Figures: {c.figures}.")
    return "\n".join(lines) + "\n"


def run_estimate_bench(output: str | Path | None = "docs/benchmarks.md") -> str:
    """The section, written into `output` (None or "": not written); its Markdown."""
    markdown = render(compare_recorded())
    if output:
        write_section(Path(output), HEADING, markdown)
    return markdown
