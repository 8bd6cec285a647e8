"""A content-addressed cache of decoded images: decode each file once per working size.

Entries are `CACHE_DIR/s{size}/{sha[:2]}/{sha}.npy` (uint8, `size x size`), keyed by the
file's sha256 and the size, so renamed or copied files, a second run and other settings all
reuse them. The folder is `$PNEUMONIA_AUG_CACHE_DIR`, else `~/.cache/pneumonia-aug`. An entry
that cannot be read, or holds the wrong shape or type, is a miss: warned about, removed and
decoded again.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
from tqdm.auto import tqdm

from pneumonia_aug.data.images import ImageDecodeError, decode_grayscale
from pneumonia_aug.data.kermany import SkippedFile

CACHE_ENV = "PNEUMONIA_AUG_CACHE_DIR"
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pneumonia-aug")


def write_atomically(target: Path, write: Callable[[IO], object], mode: str = "wb") -> None:
    """`write(handle)` into a temporary file beside `target`, then rename it: a crash or a
    parallel process never sees half a file, and a full disk leaves none behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ImageCache:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def entry(self, sha256: str, size: int) -> Path:
        return self.root / f"s{size}" / sha256[:2] / f"{sha256}.npy"

    def _store(self, target: Path, array: np.ndarray) -> None:
        write_atomically(target, lambda handle: np.save(handle, array))

    def _read(self, entry: Path, size: int) -> np.ndarray | None:
        """The cached image; None if there is none, or if it was damaged (then it is removed)."""
        try:
            with open(entry, "rb") as handle:
                array = np.lib.format.read_array(handle, allow_pickle=False)
        except FileNotFoundError:
            return None
        except ValueError as exc:  # truncated, empty or not a .npy file at all
            problem = str(exc)
        else:
            if array.shape == (size, size) and array.dtype == np.uint8:
                return array
            problem = f"{array.dtype} {array.shape}, not uint8 ({size}, {size})"
        log.warning("damaged cache entry %s (%s): removed, decoding the image again",
                    entry, problem)
        entry.unlink(missing_ok=True)
        return None

    def _decode(self, path: str, sha256: str, size: int) -> np.ndarray:
        array = decode_grayscale(path, size)
        self._store(self.entry(sha256, size), array)
        return array

    def load(
        self, paths: list[str], hashes: list[str], size: int, workers: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[SkippedFile]]:
        """Images as `(N, size, size)` uint8, a mask of those that decoded, and the failures."""
        out = np.zeros((len(paths), size, size), dtype=np.uint8)
        ok = np.ones(len(paths), dtype=bool)
        todo = []
        for i, sha in enumerate(hashes):
            array = self._read(self.entry(sha, size), size)
            if array is None:
                todo.append(i)
            else:
                out[i] = array
                self.hits += 1
        self.misses += len(todo)
        skipped: list[SkippedFile] = []
        if todo:
            log.info("decoding %d images to %d px into %s", len(todo), size, self.root)
            workers = workers or min(8, os.cpu_count() or 1)
            with ThreadPoolExecutor(workers) as pool:
                futures = {i: pool.submit(self._decode, paths[i], hashes[i], size) for i in todo}
                for i in tqdm(todo, desc=f"decode {size}px", unit="img", mininterval=2.0):
                    try:
                        out[i] = futures[i].result()
                    except ImageDecodeError as exc:
                        ok[i] = False
                        skipped.append(SkippedFile(paths[i], str(exc)))
        return out, ok, skipped
