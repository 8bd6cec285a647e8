"""The code version changes with the code only: a commit of docs or tests keeps every run
reusable, an edit or a new untracked module in the package does not. Checked on a real git
checkout in a temporary folder, through `find_reusable_run` on a real local store."""

import subprocess
from pathlib import Path

import mlflow
import pytest

from pneumonia_aug import provenance
from pneumonia_aug.contract import TAG_RUN_KEY
from pneumonia_aug.study.reuse import find_reusable_run, run_key

PARAMS = {"epochs": 2, "lr": 0.001}
FILES = {"pneumonia_aug/__init__.py": "", "pneumonia_aug/model.py": "WIDTH = 8\n",
         "entry_points/main.py": "", "MLproject": "name: p\n", "pyproject.toml": "[project]\n",
         "conda.yaml": "name: p\n", "README.md": "# p\n", "docs/usage.md": "use it\n",
         "tests/test_model.py": ""}


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                   check=True, capture_output=True)


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _commit(root: Path, files: dict) -> None:
    _write(root, files)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "change")


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A git checkout standing in for the project's: the code version is read from it."""
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q")
    _commit(root, FILES)
    for name in (provenance.CODE_VERSION_ENV, provenance.COMMIT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(provenance, "PROJECT_DIR", root)
    provenance.code_version.cache_clear()
    yield root
    provenance.code_version.cache_clear()


def _version() -> str:
    """What a new process (a later study) computes."""
    provenance.code_version.cache_clear()
    return provenance.code_version()


def _reusable() -> str | None:
    return find_reusable_run("reuse", run_key("train_classifier", PARAMS, {}), PARAMS)


def test_docs_only_commits_keep_runs_reusable_code_changes_do_not(checkout, tracking_uri):
    mlflow.set_experiment("reuse")
    first = _version()
    with mlflow.start_run() as run:
        mlflow.set_tags({TAG_RUN_KEY: run_key("train_classifier", PARAMS, {})})
        mlflow.log_params(PARAMS)
    assert _reusable() == run.info.run_id

    _commit(checkout, {"README.md": "# p, documented\n", "docs/usage.md": "use it well\n",
                       "tests/test_model.py": "def test(): pass\n"})
    assert _version() == first
    assert _reusable() == run.info.run_id

    _write(checkout, {"pneumonia_aug/__pycache__/model.cpython-311.pyc": "bytes"})
    assert _version() == first  # compiled files are not code

    _write(checkout, {"pneumonia_aug/extra.py": "X = 1\n"})  # untracked, not committed
    untracked = _version()
    assert untracked != first and _reusable() is None
    (checkout / "pneumonia_aug/extra.py").unlink()
    assert _version() == first and _reusable() == run.info.run_id

    _write(checkout, {"pneumonia_aug/model.py": "WIDTH = 16\n"})  # edited, not committed
    edited = _version()
    assert edited not in (first, untracked) and _reusable() is None
    _commit(checkout, {})
    committed = _version()
    assert committed != first and "+" not in committed and _reusable() is None

    _commit(checkout, {"conda.yaml": "name: p\ndependencies: [numpy]\n"})
    assert _version() != committed


def test_outside_a_checkout_of_the_project_the_baked_in_version_or_unknown(
        tmp_path, monkeypatch):
    for name in (provenance.CODE_VERSION_ENV, provenance.COMMIT_ENV):
        monkeypatch.delenv(name, raising=False)
    plain = tmp_path / "installed"
    plain.mkdir()
    monkeypatch.setattr(provenance, "PROJECT_DIR", plain)
    assert _version() == provenance.UNKNOWN
    # a package inside someone else's checkout is not the project's code at that commit
    _git(tmp_path, "init", "-q")
    _commit(tmp_path, {"other.txt": "x"})
    assert _version() == provenance.UNKNOWN
    monkeypatch.setenv(provenance.COMMIT_ENV, "abc123")  # the Docker image
    assert _version() == "abc123"
    monkeypatch.setenv(provenance.CODE_VERSION_ENV, "0123456789abcdef")  # the offline kit
    assert _version() == "0123456789abcdef"
    provenance.code_version.cache_clear()
