"""`kit prepare`, here: the one folder carried to the GPU machine (`.gpu/`, git-ignored).

It holds the data at the study's image size as one tar (`kit.data`), the wheels of what the
GPU image lacks for the target Python (`kit.wheels`, `kit.image.CARRIED`), with `--store` the
database of the runs earlier `kit run`s brought back (`kit.carry`), and `kit.json`: the code
version the runs will record (no .git travels), the data's digests, the wheels, the sizes.
The project's source travels with the working tree. Everything that travels, working tree
included, must stay under the transfer's limit (`max_carried`; `layout.MAX_CARRIED_MIB`
unless told): prepare reports the total and fails above it.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from pneumonia_aug.errors import KitError
from pneumonia_aug.kit import image
from pneumonia_aug.kit.data import compact_copy
from pneumonia_aug.kit.layout import (
    CARRIED_STORE,
    DATA,
    DATA_ARCHIVE,
    MANIFEST,
    MAX_CARRIED_MIB,
    MIB,
    WHEELS,
)
from pneumonia_aug.kit.wheels import WheelError, download
from pneumonia_aug.provenance import code_version, git_commit

log = logging.getLogger(__name__)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def working_tree_bytes(root: Path, leave_out: Path) -> int | None:
    """Bytes of what travels besides the carried paths: tracked files and
    untracked ones git does not ignore (None outside a git checkout)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=root, capture_output=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for name in listed.decode().split("\0"):
        path = root / name
        if name and path.is_file() and not path.resolve().is_relative_to(leave_out.resolve()):
            total += path.stat().st_size
    return total


def _data_archive(source: Path, archive: Path, image_size: int, workers: int) -> dict:
    """The compact copy of `source`, as `archive` (one tar holding `chest_xray/`)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = compact_copy(source, Path(tmp) / DATA, image_size, workers)
        # ustar, owner and time cleared: no per-file extended header (1 KiB each)
        with tarfile.open(archive, "w:gz", compresslevel=6, format=tarfile.USTAR_FORMAT) as tar:
            tar.add(Path(tmp) / DATA, arcname=DATA, filter=_plain)
    return data


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _check(sizes: dict) -> None:
    if sizes["total"] > sizes["limit"]:
        raise KitError(f"the transfer would carry {sizes['total'] / MIB:.1f} MiB (kit "
                       f"{sizes['kit'] / MIB:.1f}, working tree "
                       f"{(sizes['working_tree'] or 0) / MIB:.1f}), over the limit of "
                       f"{sizes['limit'] / MIB:g} MiB: use a smaller --image-size")


def _sizes(kit_dir: Path, root: Path, limit: int) -> dict:
    sizes = {"data": (kit_dir / DATA_ARCHIVE).stat().st_size,
             "wheels": folder_bytes(kit_dir / WHEELS),
             "kit": folder_bytes(kit_dir), "working_tree": working_tree_bytes(root, kit_dir)}
    sizes["total"] = sizes["kit"] + (sizes["working_tree"] or 0)
    sizes["limit"] = limit
    return sizes


def prepare(kit_dir: Path, data_dir: Path, image_size: int, python_version: str,
            workers: int = 1, root: Path | None = None,
            max_carried_mib: float = MAX_CARRIED_MIB, store: Path | None = None) -> dict:
    """Build `kit_dir`; return its manifest (also written to `kit_dir/kit.json`). `store`: a
    store earlier runs were imported into, whose runs the next run reuses. Fails when the kit
    and the working tree together would carry more than `max_carried_mib`."""
    from pneumonia_aug.kit.carry import carry_store

    root = root or Path.cwd()
    kit_dir.mkdir(parents=True, exist_ok=True)
    for stale in (kit_dir / MANIFEST, kit_dir / CARRIED_STORE, *(kit_dir / WHEELS).glob("*.whl")):
        stale.unlink(missing_ok=True)  # a kit that fails the size check must not look ready
    shutil.rmtree(kit_dir / "data", ignore_errors=True)  # what an older kit carried
    (kit_dir / "data.tar").unlink(missing_ok=True)
    data = _data_archive(data_dir, kit_dir / DATA_ARCHIVE, image_size, workers)
    carried = carry_store(store, kit_dir) if store else None
    limit = round(max_carried_mib * MIB)
    _check(_sizes(kit_dir, root, limit))  # before fetching wheels that cannot make it fit
    try:
        wheel_files = download(image.CARRIED, kit_dir / WHEELS, python_version)
    except WheelError as exc:
        raise KitError(str(exc)) from exc
    sizes = _sizes(kit_dir, root, limit)
    _check(sizes)
    manifest = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "git_commit": git_commit(),
        "python_version": python_version,
        "data": data,
        "store": carried,
        "wheels": {w.name: w.stat().st_size for w in wheel_files},
        "sizes": sizes,
    }
    (kit_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def describe(manifest: dict) -> str:
    """The lines `kit prepare` prints."""
    sizes, data = manifest["sizes"], manifest["data"]
    tree = sizes["working_tree"]
    store = manifest.get("store")
    carried = ([f"store: {store['runs']} runs of earlier kit runs ({store['bytes'] / MIB:.1f} MiB"
                f"), {len(store['travel_deleted'])} of them deleted (their seed did not finish: "
                "trained again)"] if store else [])
    return "\n".join([
        *carried,
        f"data: {data['images']} images at {data['image_size']} px (JPEG q{data['jpeg_quality']}"
        f"), {sizes['data'] / MIB:.1f} MiB, digest {data['digest']} (source "
        f"{data['source_digest']}); same validation split as the source: "
        f"{data['same_validation_split']}",
        f"wheels: {len(manifest['wheels'])} for Python {manifest['python_version']}, "
        f"{sizes['wheels'] / MIB:.1f} MiB",
        f"code: {manifest['code_version']}",
        f"carried: {sizes['kit'] / MIB:.1f} MiB kit + "
        + (f"{tree / MIB:.1f} MiB working tree" if tree is not None else "working tree unknown")
        + f" = {sizes['total'] / MIB:.1f} MiB of {sizes['limit'] / MIB:g} MiB",
    ])
