"""`pneumonia-aug bench study`: the whole study one stage at a time against N stages at once.

Each width runs `pneumonia-aug study ... --max-parallel N` as a fresh process in a fresh store
(SQLite) and a fresh image cache, so nothing is reused and every width decodes the same images.
The widths run one after another on this machine; the first is the baseline of the ratios.
With `--rounds R` the widths run R times over, alternating (1, 2, 1, 2, ...), each round's
speed-up taken against its own baseline: on a shared machine the same study's wall time moves
between runs (docs/benchmarks.md, "Study: stages in parallel"), so one round cannot settle a
target a few percent away.
Each study's Table 1 (`table1.csv`) is compared with the baseline's: one thread per stage can
round differently from torch's own thread count, so "same table" is reported, not assumed.

Standard library only (and `bench.report`, `machine`, and the names `study.tasks` shares,
which import no torch): the studies run in child processes.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pneumonia_aug.bench.report import STUDY_HEADING, write_section
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.machine import cpu_model
from pneumonia_aug.study.tasks import PARENT_ONLY_ENV

log = logging.getLogger(__name__)
SUMMARY = re.compile(r"(\d+) stage runs used, (\d+) launched now, (\d+) failed")


@dataclass
class Width:
    n: int  # --max-parallel
    seconds: float
    launched: int  # stage runs the study launched (all of them: the store was empty)
    failed: int
    table: str  # its table1.csv
    round: int = 1


@dataclass
class StudyBench:
    heading: str
    widths: list[Width] = field(default_factory=list)
    markdown: str = ""


def parse_widths(text: str) -> list[int]:
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        widths = []
    if len(widths) < 2 or min(widths) < 1:
        raise PneumoniaAugError(f"--widths {text!r}: give two or more widths >= 1, the "
                                "baseline first, e.g. --widths 1,2")
    return widths


def _study(n: int, args: list[str], folder: Path, round_: int) -> Width:
    """Run the study at width `n` in `folder` (its own store and cache); raise if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in PARENT_ONLY_ENV}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "PNEUMONIA_AUG_CACHE_DIR": str(folder / "cache")}
    command = [sys.executable, "-m", "pneumonia_aug.cli", "study", *args,
               "--output-dir", str(folder / "out"), "--max-parallel", str(n)]
    log_path = folder / "study.log"
    log.info("[bench study] round %d, --max-parallel %d: running (log: %s)", round_, n, log_path)
    started = time.monotonic()
    with log_path.open("w") as out:
        code = subprocess.run(command, env=env, cwd=folder, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - started
    text = log_path.read_text()
    if code != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise PneumoniaAugError(f"the study at --max-parallel {n} failed (exit {code}); "
                                f"its log ends:\n{tail}")
    found = SUMMARY.findall(text)
    launched, failed = (int(found[-1][1]), int(found[-1][2])) if found else (-1, -1)
    table = folder / "out" / "table1.csv"
    log.info("[bench study] round %d, --max-parallel %d: %.0f s, %d stage runs", round_, n,
             seconds, launched)
    return Width(n, seconds, launched, failed, table.read_text() if table.exists() else "",
                 round_)


def render(result: StudyBench, command: str, date: str) -> str:
    rounds = sorted({w.round for w in result.widths})
    lines = [f"Measured {date}: `{command}` (each width in a fresh store and image cache, one "
             f"after another{', the rounds alternating' if len(rounds) > 1 else ''}).", "",
             "| Round | max-parallel | Stage runs | Failed | Wall time (s) | Speed-up | "
             "Same Table 1 |", "|---:|---:|---:|---:|---:|---:|---|"]
    speedups: dict[int, list[float]] = {}
    for r in rounds:
        widths = [w for w in result.widths if w.round == r]
        base = widths[0]
        for w in widths:
            same = "baseline" if w is base else ("yes" if w.table == base.table else "no")
            lines.append(f"| {r} | {w.n} | {w.launched} | {w.failed} | {w.seconds:.0f} | "
                         f"{base.seconds / w.seconds:.2f}x | {same} |")
            if w is not base:
                speedups.setdefault(w.n, []).append(base.seconds / w.seconds)
    if len(rounds) > 1:
        lines.append("")
        for n, values in speedups.items():
            lines.append(f"Speed-up of --max-parallel {n}, per round: "
                         f"{', '.join(f'{v:.2f}x' for v in values)}; median "
                         f"{statistics.median(values):.2f}x, range {min(values):.2f}x to "
                         f"{max(values):.2f}x ({len(values)} rounds).")
    return "\n".join(lines) + "\n"


def run_study_bench(profile: str, seeds: str, settings: str, widths: str, data_dir: str,
                    output: str, keep: bool, rounds: int = 1) -> StudyBench:
    from pneumonia_aug.data.kermany import resolve_data_dir

    ns = parse_widths(widths)
    args = (["--profile", profile] + (["--seeds", seeds] if seeds else [])
            + (["--settings", settings] if settings else []))
    shown = args + (["--data-dir", data_dir] if data_dir else [])
    args += ["--data-dir", str(resolve_data_dir(data_dir))]  # the studies run elsewhere
    cores = os.cpu_count() or 1
    result = StudyBench(f"{STUDY_HEADING}{profile} profile, {cpu_model()} ({cores} cores)")
    root = Path(tempfile.mkdtemp(prefix="bench-study-"))
    try:
        for r in range(1, rounds + 1):
            for n in ns:
                folder = root / f"round-{r}" / f"width-{n}"
                folder.mkdir(parents=True)
                result.widths.append(_study(n, args, folder, r))
    finally:
        if keep:
            log.info("[bench study] stores and logs kept in %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    command = (f"pneumonia-aug bench study {' '.join(shown)} --widths {widths}"
               + (f" --rounds {rounds}" if rounds > 1 else ""))
    result.markdown = render(result, command, datetime.date.today().isoformat())
    if output:
        write_section(Path(output), result.heading, result.markdown)
    return result
