"""Pack a local MLflow store (sqlite db + artifact folder) into one archive under a size cap;
point a store's artifact locations at the folder it now lies in (`rewrite_paths`).

What comes back from the GPU machine has a size cap per file (`layout.MAX_OUT_FILE_MIB` unless
told), so some artifacts stay behind, in this order, until the archive fits:

1. always: `*.pt` files, the models' weights and the GANs' training checkpoints (tens of MB
   each; they cannot come back, and nothing in the UI reads them);
2. the generated images (`generated/`: thousands of PNGs per GAN, drawn again from a
   generator when needed);
3. the copies of this package's source inside each logged model (`code/`: the same files as
   the commit the runs record);
4. the largest remaining files, one by one.

The database, every run's params, metrics and tags, the plots, sample grids, predictions,
manifests and the compare run's table come back. `left_behind.txt` in the archive lists every
file left out, with its size and why. xz (preset 3: far faster than preset 6 for a few
percent more bytes, docs/offline-gpu.md) finds the repeats across runs that gzip misses.
Files are given up by an estimate first (images do not compress; text is counted at a
quarter of its size, what xz made of the project's text), so the archive is written about
once. Stdlib only (it runs on the GPU machine).
"""

from __future__ import annotations

import fnmatch
import io
import sqlite3
import tarfile
from pathlib import Path

from pneumonia_aug.contract import FOREST_PLOT
from pneumonia_aug.kit.layout import LEFT_BEHIND, STORE_ARTIFACTS, STORE_DB

ALWAYS_LEFT = (("*.pt", "model weights or a training checkpoint"),)
TIERS = (("*/generated/*", "a generated image"),
         ("*/models/m-*/artifacts/code/*", "a copy of the package source in a logged model"))
KEEP = (STORE_DB, "*/table1.*", "*/accuracy.png", f"*/{FOREST_PLOT}",  # never dropped
        "*/study/runs.json")
PACKED = (".png", ".jpg", ".jpeg", ".pt", ".gz", ".xz", ".zip")  # already compressed
XZ_PRESET = 3


def _estimate(path: str, size: int) -> float:
    """Bytes a file adds to the archive, roughly."""
    return size if path.lower().endswith(PACKED) else size / 4


def _matches(relpath: str, pattern: str) -> bool:
    return fnmatch.fnmatch(relpath, pattern)


def store_files(store: Path) -> dict[str, int]:
    """Relative path -> size of the database and every artifact file of the store."""
    files = {STORE_DB: (store / STORE_DB).stat().st_size}
    root = store / STORE_ARTIFACTS
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(store))] = path.stat().st_size
    return files


def _write(store: Path, keep: list[str], left: dict[str, str], files: dict[str, int],
           archive: Path) -> int:
    listing = "".join(f"{files[p]}\t{p}\t{why}\n" for p, why in sorted(left.items()))
    with tarfile.open(archive, "w:xz", preset=XZ_PRESET) as tar:
        for relpath in keep:
            tar.add(store / relpath, arcname=relpath, recursive=False)
        data = listing.encode()
        info = tarfile.TarInfo(LEFT_BEHIND)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive.stat().st_size


def _drop_order(files: dict[str, int], left: dict[str, str]):
    """(path, reason) in the order files are given up to make the archive fit."""
    for pattern, why in TIERS:
        for path in sorted(files):
            if path not in left and _matches(path, pattern):
                yield path, why
    keepers = [p for p in files if any(_matches(p, k) for k in KEEP)]
    rest = sorted((p for p in files if p not in left and p not in keepers),
                  key=lambda p: -files[p])
    for path in rest:
        yield path, "too large to fit the archive"


def _give_up(files: dict[str, int], left: dict[str, str], order, target: float) -> None:
    """Move files from `order` into `left` until the estimate of the rest is below `target`."""
    estimate = sum(_estimate(p, n) for p, n in files.items() if p not in left)
    for path, why in order:
        if estimate <= target:
            return
        left[path] = why
        estimate -= _estimate(path, files[path])
    if estimate > target:
        raise RuntimeError(f"the store does not fit {target:.0f} bytes even without artifacts")


def pack_store(store: Path, archive: Path, cap: int) -> dict:
    """Write `archive` (xz tar of `store`) no larger than `cap` bytes; return a summary."""
    files = store_files(store)
    left = {p: why for p in files for pattern, why in ALWAYS_LEFT if _matches(p, pattern)}
    order = _drop_order(files, left)
    _give_up(files, left, order, 0.9 * cap)
    size = _write(store, [p for p in files if p not in left], left, files, archive)
    while size > cap:  # the estimate was wrong: give up more, in proportion
        kept = sum(_estimate(p, n) for p, n in files.items() if p not in left)
        _give_up(files, left, order, kept * cap / size * 0.9)
        size = _write(store, [p for p in files if p not in left], left, files, archive)
    return {"archive_bytes": size, "files_packed": len(files) - len(left),
            "files_left_behind": len(left),
            "bytes_left_behind": sum(files[p] for p in left),
            "left_behind_by_reason": _by_reason(left, files)}


def _by_reason(left: dict[str, str], files: dict[str, int]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path, why in left.items():
        entry = out.setdefault(why, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += files[path]
    return out


def rewrite_paths(db: Path, old: str, new: str) -> int:
    """Replace `old` by `new` wherever it occurs in a text column of any table (the artifact
    locations begin with it; dataset sources hold it inside JSON); return the values changed.
    `old` is the GPU machine's work folder, a path nothing else contains."""
    changed = 0
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')
                       if r[2].upper().startswith(("VARCHAR", "TEXT", "CHAR"))]
            for column in columns:
                changed += conn.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE instr("{column}", ?) > 0', (old, new, old)).rowcount
    return changed
