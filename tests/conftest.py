"""Shared fixtures: the real data beside the clone, tiny Kermany trees, a private MLflow store,
and MLflow projects' entry points run through `mlflow run` or in this process."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# Resolved, as the package records a data folder: `../shared` may be a link to the data.
SHARED_DATA = (REPO.parent / "shared" / "data" / "chest_xray").resolve()


def pytest_configure(config):
    """Under pytest-xdist (pyproject.toml's addopts), each worker's torch, and the processes its
    tests start, take their share of the cores instead of each a thread per core (torch's
    default), which would put several threads on every core."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(workers)))


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """Collecting imports torch, MLflow and the package, as a command's start does: with the
    garbage collector paused, then what was imported frozen (`startup.paused_collector`)."""
    from pneumonia_aug.startup import paused_collector

    with paused_collector():
        return (yield)


# The files that took longest on three workers (90-290 s each on 2 cores, docs/development.md
# "Test time"), longest first. Only the order depends on it: a stale name costs time, no test.
LONGEST_FILES = ("test_study_parallel.py", "test_reliability.py", "test_kit_continuation.py",
                 "test_ddp.py", "test_stack_e2e.py", "test_environments.py", "test_services.py",
                 "test_resume.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first, then the other files holding long tests (marked slow or
    services), then the rest, each file's tests in their order: the workers take files one at
    a time, so the long ones start early and the short ones fill in at the end."""
    long = {item.path for item in items
            if item.get_closest_marker("slow") or item.get_closest_marker("services")}

    def rank(item) -> tuple[int, int]:
        if item.path.name in LONGEST_FILES:
            return 0, LONGEST_FILES.index(item.path.name)
        return (1 if item.path in long else 2), 0

    items.sort(key=rank)  # stable: a file's tests keep their order


def pytest_xdist_auto_num_workers(config) -> int:
    """`--numprocesses=auto`: a worker per core. The processes the long tests start keep the
    cores busy while those tests wait on them; a third worker on 2 cores cost more time (its
    collection, its share of every core) than it filled (docs/development.md, "Test time")."""
    return os.cpu_count() or 1


def _quiet_env(patch: pytest.MonkeyPatch, cache: Path) -> None:
    patch.setenv("PNEUMONIA_AUG_CACHE_DIR", str(cache))
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    # An `mlflow server` or `mlflow ui` a test starts itself runs as `services up` runs it:
    # without MLflow's job runner (7 processes, about 25 s of CPU, for GenAI features).
    patch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory):
    """The same for what module- and session-scoped fixtures run, before any test's own."""
    with pytest.MonkeyPatch.context() as patch:
        _quiet_env(patch, tmp_path_factory.getbasetemp() / "cache")
        yield


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test writes to the user's cache or tracking store; MLflow fails fast."""
    _quiet_env(monkeypatch, tmp_path_factory.getbasetemp() / "cache")
    leaky = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")
    for name in leaky:
        monkeypatch.delenv(name, raising=False)
    yield
    # mlflow.set_experiment() exports MLFLOW_EXPERIMENT_ID in-process; `mlflow run` then
    # refuses an --experiment-name beside it. Never let one test's choice reach the next.
    for name in leaky:
        os.environ.pop(name, None)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"the real Kermany data is not at {SHARED_DATA} (README, Quick start)")
    return SHARED_DATA


SMALL_REAL = {"train": 40, "test": 24}  # images per class


@pytest.fixture(scope="session")
def small_real_data(tmp_path_factory) -> Path:
    """A small copy of the real data (the first images of each folder), to train on in full:
    runs without a debug cap can become `@champion`, which capped ones never do."""
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"the real Kermany data is not at {SHARED_DATA} (README, Quick start)")
    root = tmp_path_factory.mktemp("small_real") / "chest_xray"
    for split, n in SMALL_REAL.items():
        for label in ("NORMAL", "PNEUMONIA"):
            (root / split / label).mkdir(parents=True)
            for path in sorted((SHARED_DATA / split / label).glob("*.jpeg"))[:n]:
                (root / split / label / path.name).write_bytes(path.read_bytes())
    return root


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, its tables made once: MLflow takes a second or two to
    create them, for every new store."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("store_template")
    MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


def new_store(template: Path, folder: Path) -> str:
    """A new store in `folder` (`mlflow.db`), as MLflow would create it with `folder` as the
    working directory; its URI."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "mlflow.db")
    with sqlite3.connect(folder / "mlflow.db") as db:  # the Default experiment's artifacts
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                   (str(folder / "mlruns" / "0"),))
    return f"sqlite:///{folder / 'mlflow.db'}"


def use_store(patch: pytest.MonkeyPatch, uri: str, folder: Path) -> None:
    """This process and its children log to `uri`, local artifacts under `folder`."""
    import mlflow

    forget_active_experiment()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.chdir(folder)  # local artifacts land under folder
    mlflow.set_tracking_uri(uri)


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch, store_template) -> str:
    """A private local tracking store (sqlite + local artifacts) for one test."""
    import mlflow

    uri = new_store(store_template, tmp_path)
    use_store(monkeypatch, uri, tmp_path)
    yield uri
    mlflow.set_tracking_uri(None)
    forget_active_experiment()


def study_here(template: Path, root: Path, args: list[str], env: dict | None = None) -> str:
    """The `study` command in this process on one CPU thread, as a stage process with
    OMP_NUM_THREADS=1 computes, into a new store in `root` (given `env`, with exactly that
    environment, the store's URI set over it): the store's URI."""
    import mlflow
    import torch
    from click.testing import CliRunner

    from pneumonia_aug.cli import main

    uri, threads = new_store(template, root), torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - set(env or os.environ):
            patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        use_store(patch, uri, root)
        torch.set_num_threads(1)
        try:
            result = CliRunner().invoke(main, ["study", *args])
        finally:
            torch.set_num_threads(threads)
            mlflow.set_tracking_uri(None)
            forget_active_experiment()
    assert result.exit_code == 0, result.output[-4000:]
    return uri


def forget_active_experiment() -> None:
    """`mlflow.set_experiment` in one test (or one in-process run) would otherwise name its
    experiment for the next test's store or run (it keeps the id in the process and in
    $MLFLOW_EXPERIMENT_ID): "No Experiment with id=1 exists" there."""
    import mlflow.tracking.fluent

    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.tracking.fluent._active_experiment_id = None


def xray_like(seed: int, size: int = 48, label: str = "NORMAL") -> Image.Image:
    """A grayscale image with structure (not constant), different per seed and class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 120 + 60 * np.sin(6 * xx + seed) * np.cos(4 * yy)
    if label == "PNEUMONIA":
        base += 50 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.5) ** 2) / 0.02)
    noise = rng.normal(0, 10, (size, size))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "L")


def make_kermany(root: Path, per_class: dict | None = None, size: int = 48) -> Path:
    """A tiny Kermany tree with real image files and parseable patient names."""
    per_class = per_class or {"train": 12, "val": 2, "test": 4}
    seed = 0
    for split, n in per_class.items():
        for label in ("NORMAL", "PNEUMONIA"):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                seed += 1
                name = (f"IM-{seed:04d}-0001.jpeg" if label == "NORMAL"
                        else f"person{seed}_{'bacteria' if i % 2 else 'virus'}_{i}.jpeg")
                xray_like(seed, size, label).save(folder / name, quality=95)
    return root


@pytest.fixture
def tiny_kermany(tmp_path) -> Path:
    return make_kermany(tmp_path / "chest_xray")


# The state column of /proc/net/tcp: connections closed, not yet gone.
CLOSING = {"04": "FIN-WAIT-1", "05": "FIN-WAIT-2", "06": "TIME-WAIT", "0B": "CLOSING"}


def closing_sockets() -> dict[int, set[str]]:
    """Local port -> states of the IPv4 connections on it that are closed but not yet gone."""
    ports: dict[int, set[str]] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state in CLOSING:
            ports.setdefault(int(local.rsplit(":", 1)[1], 16), set()).add(CLOSING[state])
    return ports


def project_args(entry_point: str, params: dict) -> list[str]:
    """The `pneumonia-aug` arguments `mlflow run -e ENTRY_POINT -P k=v...` runs: MLproject's
    command with its defaults and `params`, as MLflow renders it, after the CLI command its
    module (entry_points/ENTRY_POINT.py) passes on."""
    from mlflow.projects import _project_spec

    module = (REPO / "entry_points" / f"{entry_point}.py").read_text()
    found = re.search(r'main\(\["([\w-]+)", \*sys\.argv\[1:\]\]', module)
    assert found, f"entry_points/{entry_point}.py does not pass sys.argv on to a command"
    command = found.group(1)
    spec = _project_spec.load_project(str(REPO)).get_entry_point(entry_point)
    words = shlex.split(spec.compute_command({k: str(v) for k, v in params.items()}, None))
    assert words[:3] == ["python", "-m", f"entry_points.{entry_point}"], words
    return [command, *words[3:]]


def project_run(entry_point: str, params: dict, experiment="pneumonia-aug"):
    """`mlflow run --env-manager local -e ENTRY_POINT` without its two processes: MLflow's own
    code makes the run (its tags, the entry point's parameters) and the environment it hands
    the command (MLFLOW_RUN_ID...), and the command runs in this process. Not done: what
    `mlflow run` does once the command has exited (it ends a run left RUNNING, FAILED after a
    non-zero exit). Returns (click's result, the run id)."""
    from click.testing import CliRunner
    from mlflow.projects import _resolve_experiment_id
    from mlflow.projects.utils import get_or_create_run, get_run_env_vars

    from pneumonia_aug.cli import main

    experiment_id = _resolve_experiment_id(experiment_name=experiment)
    run = get_or_create_run(None, str(REPO), experiment_id, str(REPO), None, entry_point,
                            {k: str(v) for k, v in params.items()})
    run_id = run.info.run_id
    env = get_run_env_vars(run_id, experiment_id)
    return CliRunner().invoke(main, project_args(entry_point, params), env=env), run_id


def mlflow_run(entry_point: str, params: dict, cwd: Path, experiment="pneumonia-aug"):
    cmd = [sys.executable, "-m", "mlflow", "run", str(REPO), "--env-manager", "local",
           "-e", entry_point, "--experiment-name", experiment]
    for key, value in params.items():
        cmd += ["-P", f"{key}={value}"]
    # `mlflow run --env-manager local` runs `python ...` from PATH: make it this interpreter.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def image_python(tmp_path_factory) -> Path:
    """A venv holding only the GPU image's packages the project needs (the kit's proof)."""
    from image_env import build_image_env, env_distributions
    from pneumonia_aug.kit import image

    python = build_image_env(tmp_path_factory.mktemp("image") / "venv")
    seen = env_distributions(python)
    # Nothing else there, but the project itself (an editable install is seen through its
    # metadata; the kit runs it from the carried source either way).
    seen -= {"pneumonia-aug"}
    assert seen <= image.IMAGE_PACKAGES, seen - image.IMAGE_PACKAGES
    assert {"torch", "torchvision", "pandas", "matplotlib", "click", "pip"} <= seen
    no_mlflow = subprocess.run([str(python), "-c", "import mlflow"], capture_output=True)
    assert no_mlflow.returncode != 0
    return python
