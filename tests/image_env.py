"""A Python environment holding only the GPU image's packages, for the kit's proof.

The GPU machine's image has PyTorch and ~170 other packages but not MLflow
(`pneumonia_aug.kit.image.IMAGE_PACKAGES`). To show here that the kit's wheels are enough
there, the proof runs the kit in a fresh virtual environment (no system site-packages) whose
only third-party packages are the image's, and no others.

Which versions: the image's own (torch 2.11, numpy 2.5.2) cannot be installed for this
machine's Python 3.11, and the versions the registry offers are the ones the project's venv
already holds, torch 2.14.1 from the local wheel included. So the environment *links* those
distributions from the running interpreter's site-packages, instead of installing the same
files again: seconds and no disk, where reinstalling the CUDA build of torch costs a minute
and 5.5 GB. Only the image's packages that the project's dependency tree names are linked
(and pip, which the kit runs there): a stricter environment than the image.

A top-level folder that other distributions share (`nvidia/`, `google/`) is linked entry by
entry, so no file of a distribution outside the image leaks in.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from packaging.requirements import Requirement

from pneumonia_aug.kit.image import IMAGE_PACKAGES


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, md.Distribution]:
    site = sysconfig.get_paths()["purelib"]
    return {normalize(d.metadata["Name"]): d for d in md.distributions(path=[site])}


def dependency_closure(root: str, dists: dict[str, md.Distribution]) -> set[str]:
    """The distributions `root` needs, transitively (no extras; markers for this machine)."""
    seen, todo = set(), [normalize(root)]
    while todo:
        name = todo.pop()
        if name in seen or name not in dists:
            continue
        seen.add(name)
        for text in dists[name].requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(normalize(req.name))
    return seen - {normalize(root)}


def _files(dist: md.Distribution) -> list[tuple[str, ...]]:
    """The paths (relative to site-packages) a distribution installed, caches left out."""
    return [Path(f).parts for f in dist.files or []
            if not str(f).startswith("..") and "__pycache__" not in Path(f).parts]


def link_allowed(site: Path, target: Path, dists: dict[str, md.Distribution],
                 allowed: set[str]) -> int:
    """Symlink into `target` every file of the `allowed` distributions, a whole folder at once
    where no other distribution has files in it. Returns the number of links made."""
    owners: dict[tuple[str, ...], set[str]] = {}
    wanted: set[tuple[str, ...]] = set()
    for name, dist in dists.items():
        for parts in _files(dist):
            for depth in range(1, len(parts) + 1):
                owners.setdefault(parts[:depth], set()).add(name)
            if name in allowed:
                wanted.add(parts)
    links = 0

    def place(prefix: tuple[str, ...]) -> None:
        nonlocal links
        children = {p[:len(prefix) + 1] for p in wanted if p[:len(prefix)] == prefix}
        for child in sorted(children):
            if owners[child] <= allowed or child in wanted:  # only the image's, or a file
                (target.joinpath(*child)).symlink_to(site.joinpath(*child))
                links += 1
            else:
                target.joinpath(*child).mkdir()
                place(child)

    place(())
    return links


def build_image_env(folder: Path) -> Path:
    """A venv at `folder` with the image's packages the project needs (linked); its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    target = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    dists = installed()
    allowed = (dependency_closure("pneumonia-aug", dists) | {"pip"}) & set(IMAGE_PACKAGES)
    site = Path(sysconfig.get_paths()["purelib"])
    link_allowed(site, target, dists, allowed)
    return python


def env_distributions(python: Path) -> set[str]:
    """The distributions `python` sees with a clean environment."""
    code = ("import importlib.metadata as m; "
            "print('\\n'.join(sorted({d.metadata['Name'] for d in m.distributions()})))")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout
    return {normalize(n) for n in out.split()}
