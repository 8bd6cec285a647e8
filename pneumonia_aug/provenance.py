"""What code a run runs: the commit (provenance) and the code version (run reuse, comparison
groups).

The code version changes only when the code does. In a git checkout of the project it is a
digest of the git objects of `CODE_PATHS` at HEAD (the tree ids of the package and the entry
points, the blobs of the files that define the environment), plus, when any of those paths
differ from HEAD, a digest of their current content: edited, staged, deleted and new
untracked files alike (files git ignores, such as `__pycache__/`, do not count). A commit that
touches nothing else (README, docs/, tests/) keeps the code version, so runs stay reusable and
in the same comparison group; the commit itself is still recorded, as MLflow's tag
`mlflow.source.git.commit` (the source version its UI shows).

Outside a git checkout of the project (a Docker image, an installed package, an offline kit
without .git): `$PNEUMONIA_AUG_CODE_VERSION` (set by the kit), else `$PNEUMONIA_AUG_GIT_COMMIT`
(baked into the Docker image: its code version is its commit), else "unknown", which never
reuses a run.

Both are read once per process: the code that runs is what was imported, whatever happens to
the checkout later (a study whose checkout is edited while it runs records one version).
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
PACKAGE = "pneumonia_aug"
# What the code version covers: the code, and the files that say what it runs with.
CODE_PATHS = (PACKAGE, "entry_points", "MLproject", "pyproject.toml", "conda.yaml",
              "scripts/setup.sh")
COMMIT_ENV = "PNEUMONIA_AUG_GIT_COMMIT"  # baked into the Docker image, which has no .git
CODE_VERSION_ENV = "PNEUMONIA_AUG_CODE_VERSION"  # set by the offline kit, which has no .git
UNKNOWN = "unknown"
_GIT_ERRORS = (OSError, subprocess.SubprocessError, ValueError)


def _git(root: Path, *args: str) -> bytes:
    # GIT_OPTIONAL_LOCKS=0: `status` must not write the index of a checkout in use
    return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=30,
                          check=True, env=os.environ | {"GIT_OPTIONAL_LOCKS": "0"}).stdout


@functools.cache
def git_commit() -> str:
    """`$PNEUMONIA_AUG_GIT_COMMIT`, else `git rev-parse HEAD`, else "unknown"."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        return _git(PROJECT_DIR, "rev-parse", "HEAD").decode().strip()
    except _GIT_ERRORS:
        return UNKNOWN


@functools.cache
def code_version() -> str:
    """The code version of the running code (module docstring)."""
    for name in (CODE_VERSION_ENV, COMMIT_ENV):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return tree_version(PROJECT_DIR)
    except _GIT_ERRORS:
        return UNKNOWN


def tree_version(root: Path) -> str:
    """The code version of the git checkout at `root`: 16 hex digits for the code of HEAD, and
    `+` 8 more when the code in the working tree differs. ValueError when `root` is not the
    top of a checkout that holds the package at HEAD."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    if top.resolve() != root.resolve():
        raise ValueError(f"{root} is not the top of its git checkout ({top})")
    committed = _git(root, "ls-tree", "-z", "HEAD", "--", *CODE_PATHS)
    if f"\t{PACKAGE}\0".encode() not in committed:
        raise ValueError(f"HEAD of {root} holds no {PACKAGE}/")
    version = hashlib.sha256(committed).hexdigest()[:16]
    changed = _changed_content(root)
    return f"{version}+{changed}" if changed else version


def _changed_content(root: Path) -> str:
    """A digest of the paths under `CODE_PATHS` that differ from HEAD (their content, or that
    they are gone); "" when none do."""
    status = _git(root, "status", "--porcelain", "-z", "--untracked-files=all",
                  "--no-renames", "--", *CODE_PATHS)
    names = sorted({entry[3:] for entry in status.decode().split("\0") if entry})
    lines = []
    for name in names:
        if "__pycache__" in name.split("/") or name.endswith(".pyc"):
            continue
        path = root / name
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "gone"
        lines.append(f"{name}\0{content}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:8] if lines else ""
