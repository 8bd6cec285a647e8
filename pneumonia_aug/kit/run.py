"""`kit run`, on the GPU machine: wheels, the CUDA benches, the study, and what comes back.

One command within a time budget: install the carried wheels into a private folder
(offline), print what the machine has, run the study against a local sqlite store in a work
folder, then each bench in the time the study left, each as a child process stopped at its
deadline (`supervise`). The study gets the time budget less `PACK_RESERVE_S`, its stages up to
`max_parallel` at once (on one GPU they share it); stopped at the deadline, its
running stage ends KILLED and the finished runs stay, and a `compare` over the experiment's
finished classifier runs makes the table from them. Whatever happened, the store is packed
(`pack`, within the transfer's size of a file brought back) and the outputs are written to
`--out`. Stdlib only until the wheels
are in: the steps themselves run `python -m pneumonia_aug.cli` with them on `PYTHONPATH`.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pneumonia_aug import measured
from pneumonia_aug.config import EXPERIMENT_NAME, PACK_RESERVE_S
from pneumonia_aug.kit import safetar, wheels
from pneumonia_aug.kit.layout import (
    BENCH,
    CARRIED_STORE,
    DATA,
    DATA_ARCHIVE,
    DEFAULT_WORK_DIR,
    LOG,
    MANIFEST,
    MAX_OUT_FILE_MIB,
    MAX_OUT_FILES,
    MIB,
    RESULT,
    STORE_ARCHIVE,
    STORE_ARTIFACTS,
    STORE_DB,
    TABLE_FILES,
    WHEELS,
)
from pneumonia_aug.kit.pack import pack_store, rewrite_paths
from pneumonia_aug.kit.supervise import Outcome, Tee, run_until
from pneumonia_aug.provenance import CODE_VERSION_ENV, COMMIT_ENV

REPO = Path(__file__).resolve().parents[2]  # the working tree that travelled with the call
MIN_BENCH_S = 45.0  # a bench given less than this would time out before its first figure
# What the machine has, and whether the image's packages meet what the carried wheels ask
# for (they were installed with --no-deps): a too old typing-extensions, say, is named here
# rather than found as an import error deep in a stage.
MACHINE_REPORT = """
import importlib.metadata as m, platform, sys, torch
from packaging.requirements import Requirement
print("python", platform.python_version(), "torch", torch.__version__,
      "cuda", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
for name in ("numpy", "pandas", "scikit-learn", "protobuf", "typing-extensions"):
    print(name, m.version(name))
unmet, absent = [], set()
for dist in m.distributions(path=[sys.argv[1]]):
    for req in map(Requirement, dist.requires or []):
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = m.version(req.name)
        except m.PackageNotFoundError:
            absent.add(req.name)
            continue
        if have not in req.specifier:
            unmet.append(f"{dist.metadata['Name']} needs {req}, here {have}")
print("carried wheels: requirements not met:", "; ".join(unmet) or "none")
print("left out (not needed for a study):", ", ".join(sorted(absent)) or "none")
"""


@dataclass
class RunOptions:
    kit_dir: Path
    out: Path
    budget: float
    profile: str = "short"
    max_parallel: int = 1
    seeds: str = ""
    settings: str = ""
    benches: list[tuple[int, int]] = field(default_factory=list)  # (image size, batch size)
    bench_steps: int = 0  # 0 = the bench's own default
    bench_timeout: float = 150.0
    device: str = "cuda"
    work_dir: Path | None = None
    max_out_files: int = MAX_OUT_FILES  # the transfer's limits on what comes back
    max_out_file_mib: float = MAX_OUT_FILE_MIB

    @property
    def max_out_file(self) -> int:
        return round(self.max_out_file_mib * MIB)


@dataclass
class Step:
    name: str
    returncode: int | None
    seconds: float
    stopped: bool = False
    cpu_seconds: float | None = None


class KitRun:
    """The state of one `kit run`: the clock, the log, the work folder, the steps so far."""

    def __init__(self, opts: RunOptions, log):
        self.opts = opts
        self.start = time.monotonic()
        self.end = self.start + opts.budget
        self.tee = Tee(log, self.start)
        if opts.work_dir is None:  # one path for every run of a study (kit.layout)
            self.work = Path(tempfile.gettempdir()) / DEFAULT_WORK_DIR
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            self.work = opts.work_dir
        self.work = self.work.resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.manifest = json.loads((opts.kit_dir / MANIFEST).read_text())
        self.data = self.work / "data" / DATA  # unpacked from the kit's archive
        self.steps: list[Step] = []
        self.env = dict(os.environ)

    def child_env(self, site: Path) -> None:
        self.env.update({
            "PYTHONPATH": os.pathsep.join([str(REPO), str(site)]),
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.work / STORE_DB}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PNEUMONIA_AUG_CACHE_DIR": str(self.work / "cache"),
            # no .git travels: the code version and commit are those prepare recorded (a kit
            # prepared before the commit was recorded apart has its commit as code version)
            CODE_VERSION_ENV: self.manifest["code_version"],
            COMMIT_ENV: self.manifest.get("git_commit", self.manifest["code_version"]),
        })

    def step(self, name: str, args: list[str], deadline: float) -> Outcome:
        self.tee.line(f"== {name} ({max(0.0, deadline - time.monotonic()):.0f} s allowed)")
        outcome = run_until([sys.executable, *args], self.tee, deadline, env=self.env,
                            cwd=self.work)
        self.steps.append(Step(name, outcome.returncode, round(outcome.seconds, 1),
                               outcome.stopped, round(outcome.cpu_seconds, 1)))
        return outcome


def _cli(*args: str) -> list[str]:
    return ["-m", "pneumonia_aug.cli", *args]


def _study_args(opts: RunOptions, data: Path, output: Path, seconds: float) -> list[str]:
    args = ["study", "--profile", opts.profile, "--data-dir", str(data), "--output-dir",
            str(output), "--experiment-name", EXPERIMENT_NAME, "--max-parallel",
            str(opts.max_parallel), "--time-budget-s", f"{seconds:.0f}"]
    if opts.seeds:
        args += ["--seeds", opts.seeds]
    if opts.settings:
        args += ["--settings", opts.settings]
    return args


def _bench(kit: KitRun, size: int, batch: int, memory: bool) -> None:
    opts = kit.opts
    args = ["bench", "train", "--device", opts.device, "--image-size", str(size),
            "--batch-size", str(batch), "--data-dir", str(kit.data), "--output", "",
            "--figures", str(kit.work / f"bench-{size}x{batch}.json")]
    if not memory:
        args.append("--no-memory")
    if opts.bench_steps:
        args += ["--steps", str(opts.bench_steps), "--warmup", "1"]
    deadline = min(time.monotonic() + opts.bench_timeout, kit.end - PACK_RESERVE_S)
    kit.step(f"bench {size} px, batch {batch}", _cli(*args), deadline)


def _bench_records(kit: KitRun) -> list[dict]:
    """The benches' records, each device named with the size and the batch (two benches of
    one card are two records)."""
    records = []
    for size, batch in kit.opts.benches:
        found = measured.bench_records(kit.work / f"bench-{size}x{batch}.json")
        if not found:
            kit.tee.line(f"kit: the bench at {size} px, batch {batch} left no figures")
        for record in found:
            records.append({**record, "device": f"{record['device']} ({size} px, batch {batch})"})
    return records


def run_kit(opts: RunOptions) -> dict:
    """Everything `kit run` does; returns what it writes to result.json."""
    opts.out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    with open(opts.out / LOG, "w") as log:
        kit = KitRun(opts, log)
        kit.tee.line(f"kit: work folder {kit.work}, budget {opts.budget:.0f} s, code "
                     f"{kit.manifest['code_version']}, data {kit.manifest['data']['digest']}")
        study, error = Outcome(None, 0.0, False), ""
        try:
            study = _steps(kit)
        except Exception as exc:  # whatever broke, what exists still goes back
            error = f"{type(exc).__name__}: {exc}"
            kit.tee.line(f"kit: error: {error}")
        result = _finish(kit, study, started, error)
        kit.tee.line(f"kit: done in {time.monotonic() - kit.start:.0f} s; wrote "
                     f"{', '.join(result['outputs'])} to {opts.out}")
    return result


def _steps(kit: KitRun) -> Outcome:
    opts = kit.opts
    t0 = time.monotonic()
    site = kit.work / "site"
    installed = wheels.install(opts.kit_dir / WHEELS, site)
    kit.steps.append(Step("install wheels", 0, round(time.monotonic() - t0, 1)))
    kit.tee.line(f"kit: installed {len(installed)} wheels into {site}")
    safetar.extract(opts.kit_dir / DATA_ARCHIVE, kit.work / "data")
    kit.tee.line(f"kit: data unpacked into {kit.data}")
    _unpack_carried(kit)
    kit.child_env(site)
    kit.step("machine", ["-c", MACHINE_REPORT, str(site)], kit.end - PACK_RESERVE_S)
    left = kit.end - PACK_RESERVE_S - time.monotonic()
    study = kit.step(f"study, profile {opts.profile}",
                     _cli(*_study_args(opts, kit.data, kit.work / "study", left)),
                     kit.end - PACK_RESERVE_S)
    # A study stopped at the budget (or one that crashed) left finished runs without a table;
    # one that ended by itself without a table had nothing to compare (no seed fitted).
    cut_short = (kit.work / STORE_DB).is_file() and study.returncode != 0
    if cut_short and not (kit.work / "study" / TABLE_FILES[0]).is_file():
        kit.tee.line("kit: the study made no table; comparing its finished runs")
        kit.step("compare (finished runs)", _cli(
            "compare", "--source", "experiment", "--experiment-name", EXPERIMENT_NAME,
            "--output-dir", str(kit.work / "study")), kit.end - PACK_RESERVE_S / 2)
    _benches(kit)  # the study comes first: the benches get only the time it left
    return study


def _benches(kit: KitRun) -> None:
    """Each bench that still fits the budget. The memory of the 256 px models, whatever a
    bench's size, is measured once, by the first bench that runs, and only on a GPU: the
    estimate alone needs none (`bench train` makes it on any machine)."""
    memory = not kit.opts.device.startswith("cpu")
    for size, batch in kit.opts.benches:
        if kit.end - PACK_RESERVE_S - time.monotonic() < MIN_BENCH_S:
            kit.tee.line(f"kit: no time left for the bench at {size} px, batch {batch}")
            continue
        _bench(kit, size, batch, memory)
        memory = False


def _unpack_carried(kit: KitRun) -> None:
    """The runs earlier `kit run`s brought back (`kit prepare --store`), into the work folder's
    store, their artifact locations pointed here (they hold no artifacts: reuse needs none)."""
    carried = kit.manifest.get("store")
    if not carried or (kit.work / STORE_DB).exists():
        return
    safetar.extract(kit.opts.kit_dir / CARRIED_STORE, kit.work)
    changed = rewrite_paths(kit.work / STORE_DB, carried["artifact_root"].rstrip("/"),
                            str(kit.work / STORE_ARTIFACTS))
    kit.tee.line(f"kit: the store of earlier runs unpacked: {carried['runs']} runs, "
                 f"{changed} locations pointed at {kit.work / STORE_ARTIFACTS}")


def _finish(kit: KitRun, study: Outcome, started: datetime.datetime,
            error: str) -> dict:
    opts, out = kit.opts, kit.opts.out
    outputs = [LOG]
    store = None
    if (kit.work / STORE_DB).is_file():
        t0 = time.monotonic()
        try:
            store = pack_store(kit.work, out / STORE_ARCHIVE, opts.max_out_file)
            outputs.append(STORE_ARCHIVE)
        except Exception as exc:  # the table, benches and log still go back
            store = {"error": f"{type(exc).__name__}: {exc}"}
            kit.tee.line(f"kit: packing the store failed: {store['error']}")
        kit.steps.append(Step("pack store", 0, round(time.monotonic() - t0, 1)))
    for name in TABLE_FILES:
        source = kit.work / "study" / name
        if source.is_file() and source.stat().st_size <= opts.max_out_file:
            shutil.copyfile(source, out / name)
            outputs.append(name)
    if opts.benches:
        (out / BENCH).write_text(json.dumps(_bench_records(kit), indent=1) + "\n")
        outputs.append(BENCH)
    outputs.append(RESULT)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "budget_s": opts.budget,
        "seconds": round(time.monotonic() - kit.start, 1),
        "kit": {k: kit.manifest[k] for k in ("code_version", "python_version", "data")},
        "study": {"profile": opts.profile, "seeds": opts.seeds, "settings": opts.settings,
                  "max_parallel": opts.max_parallel,
                  "returncode": study.returncode, "stopped_at_budget": study.stopped,
                  "seconds": round(study.seconds, 1)},
        "steps": [asdict(s) for s in kit.steps],
        "artifact_root": str(kit.work / STORE_ARTIFACTS),
        "store": store,
        "outputs": outputs,
        "error": error,
    }
    (out / RESULT).write_text(json.dumps(result, indent=2) + "\n")
    return result
