"""The wheels the kit carries: downloaded here for the GPU machine's Python, installed there
without a network.

Each carried distribution (`image.CARRIED`) is fetched at the version installed here, the one
the project's tests ran with, as a binary wheel for the target interpreter and the manylinux
x86-64 platforms. There, `pip install --no-index --no-deps --target` puts them in a private
folder that goes on `PYTHONPATH` in front of nothing: the image's own packages stay as they are.
Stdlib only, because `install` runs before any of the wheels is there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# pip matches manylinux_2_N exactly: name every N the carried wheels are built for.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")


class WheelError(Exception):
    """pip could not fetch or install the wheels."""


def pinned(names: tuple[str, ...]) -> list[str]:
    """`name==version` for each name, at the version installed here."""
    from importlib.metadata import PackageNotFoundError, version

    missing, pins = [], []
    for name in names:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            missing.append(name)
    if missing:
        raise WheelError(f"not installed here, so no version to carry: {', '.join(missing)} "
                         "(install the project first: scripts/setup.sh)")
    return pins


def download(names: tuple[str, ...], folder: Path, python_version: str) -> list[Path]:
    """Fetch the wheels of `names` for CPython `python_version` on x86-64 Linux into `folder`
    (emptied first, so one version of each is carried)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", python_version,
               "--implementation", "cp", "--dest", str(folder)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    done = subprocess.run(command + pinned(names), capture_output=True, text=True)
    if done.returncode != 0:
        raise WheelError(f"pip download failed for Python {python_version}: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != len(names):
        raise WheelError(f"expected {len(names)} wheels in {folder}, found {len(wheels)}")
    return wheels


def install(folder: Path, target: Path) -> list[str]:
    """Install every wheel in `folder` into `target`, offline and without dependencies;
    return the wheel file names."""
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise WheelError(f"no wheels in {folder}: run `pneumonia-aug kit prepare` here first")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-compile", "--no-cache-dir", "--disable-pip-version-check", "--target",
         str(target), *map(str, wheels)], capture_output=True, text=True)
    if done.returncode != 0:
        raise WheelError(f"pip install --no-index failed: {done.stderr.strip()[-2000:]}")
    return [w.name for w in wheels]
