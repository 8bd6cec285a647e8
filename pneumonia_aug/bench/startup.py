"""`pneumonia-aug bench startup`: how long the command line takes to start, and what it loads.

Each command runs as a fresh process, as a user runs it: `python -c pass` (the interpreter
alone, the baseline), `pneumonia-aug --help` and `pneumonia-aug services status` on an empty
`--dir`. Each first runs once under `python -X importtime` (which also warms the file cache):
its report lists every module the process imported, so the heavy ones it loaded and its
slowest third-party imports are measured, not assumed. Then the plain commands are timed
`repeat` times each in interleaved rounds, so a machine that slows down part-way slows them
all alike; the median counts.

Standard library only (and `bench.report`, which imports no torch either): this process loads
nothing it would then measure in its children.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pneumonia_aug.bench.report import (
    STARTUP_FORBIDDEN,
    STARTUP_HEADING,
    STARTUP_TARGET_S,
    write_section,
)
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.machine import cpu_model

HEAVY_MODULES = ("torch", "mlflow", "pandas", "matplotlib")  # reported when imported
SLOWEST = 3  # third-party imports listed per command
SLOWEST_MIN_S = 0.005  # faster ones are not worth a mention


@dataclass
class Command:
    label: str  # as the table shows it, e.g. "pneumonia-aug --help"
    argv: list[str]  # what is timed
    probe: list[str]  # the same under `python -X importtime`
    seconds: list[float] = field(default_factory=list)  # one per timed run
    heavy: list[str] = field(default_factory=list)  # HEAVY_MODULES it imported
    slowest: list[tuple[str, float]] = field(default_factory=list)  # (package, cumulative s)
    baseline: bool = False  # `python -c pass`: what every other command is compared with

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def meets_target(self) -> bool:
        return self.median < STARTUP_TARGET_S and not set(self.heavy) & set(STARTUP_FORBIDDEN)


@dataclass
class StartupResult:
    machine: str  # the section heading after STARTUP_HEADING
    settings: dict
    commands: list[Command]  # the baseline first
    markdown: str = ""

    def ratio(self, command: Command) -> float:
        """`command`'s median over the baseline's."""
        return command.median / self.commands[0].median


def cli_prefix() -> list[str]:
    """How to start `pneumonia-aug`: its console script beside this interpreter, as installed,
    else `python -m pneumonia_aug.cli`."""
    script = Path(sys.executable).with_name("pneumonia-aug")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pneumonia_aug.cli"]


def commands(services_dir: str | os.PathLike) -> list[Command]:
    """The baseline and the two commands, each with the argv to time and to probe."""
    python, prefix = sys.executable, cli_prefix()
    as_script = prefix[1:] if prefix[0] == python else prefix  # `-m ...` or the script's path
    importtime = [python, "-X", "importtime"]
    rows = [Command("python -c pass", [python, "-c", "pass"], [*importtime, "-c", "pass"],
                    baseline=True)]
    for args in (["--help"], ["services", "status", "--dir", str(services_dir)]):
        label = "pneumonia-aug " + " ".join(args[:2])
        rows.append(Command(label, [*prefix, *args], [*importtime, *as_script, *args]))
    return rows


def parse_importtime(stderr: str) -> tuple[list[str], list[tuple[str, float]]]:
    """From `-X importtime` output: the HEAVY_MODULES imported, and the slowest third-party
    top-level packages by cumulative import time in seconds (at least SLOWEST_MIN_S; nested
    imports count in their importer's too)."""
    imported: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if cumulative.isdigit():
            imported.setdefault(name, int(cumulative) / 1e6)
    roots = {name.split(".")[0] for name in imported}
    heavy = [m for m in HEAVY_MODULES if m in roots]
    third_party = [(name, s) for name, s in imported.items()
                   if "." not in name and not name.startswith("_") and s >= SLOWEST_MIN_S
                   and name not in sys.stdlib_module_names and name != "pneumonia_aug"]
    return heavy, sorted(third_party, key=lambda item: -item[1])[:SLOWEST]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise PneumoniaAugError(f"`{' '.join(argv)}` exited with {done.returncode}:\n{tail}")
    return done


def measure(rows: list[Command], repeat: int) -> None:
    """Probe each command once (imports), then time `repeat` interleaved rounds."""
    for row in rows:
        row.heavy, row.slowest = parse_importtime(_run(row.probe).stderr)
    for _ in range(repeat):
        for row in rows:
            start = time.perf_counter()
            _run(row.argv)
            row.seconds.append(time.perf_counter() - start)


def render(result: StartupResult) -> str:
    s = result.settings
    lines = [f"Measured {s['date']} with Python {s['python']}: `{s['command']}` ({s['repeat']} "
             f"run(s) per command, interleaved; `pneumonia-aug` = `{s['cli']}`).", "",
             "| Command | Median (s) | x baseline | Heavy modules imported | Slowest third-party "
             f"imports (cumulative s) | Under {STARTUP_TARGET_S:g} s, no "
             f"{' / '.join(STARTUP_FORBIDDEN)} |", "|---|---:|---:|---|---|---|"]
    for row in result.commands:
        heavy = ", ".join(row.heavy) or "none"
        slowest = ", ".join(f"{name} {sec:.2f}" for name, sec in row.slowest) or "none"
        met = "baseline" if row.baseline else ("yes" if row.meets_target() else "no")
        lines.append(f"| `{row.label}` | {row.median:.2f} | {result.ratio(row):.1f} | {heavy} | "
                     f"{slowest} | {met} |")
    return "\n".join(lines) + "\n"


def run_startup(repeat: int = 5, output: str | Path | None = "docs/benchmarks.md"
                ) -> StartupResult:
    """Time the commands; write this machine's startup section of `output` (None: don't)."""
    if repeat < 1:
        raise PneumoniaAugError("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as services_dir:
        rows = commands(services_dir)
        measure(rows, repeat)
    prefix = cli_prefix()
    settings = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
                "command": f"pneumonia-aug bench startup --repeat {repeat}", "repeat": repeat,
                "cli": " ".join([Path(prefix[0]).name, *prefix[1:]])}
    result = StartupResult(cpu_model(), settings, rows)
    result.markdown = render(result)
    if output:
        write_section(Path(output), STARTUP_HEADING + result.machine, result.markdown)
    return result
