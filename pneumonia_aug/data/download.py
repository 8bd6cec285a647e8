"""Download and unpack the Kermany chest X-ray archive into a Kermany-layout folder.

The archive is streamed with the standard library into `DATA_DIR/.download/` (a dot folder,
which `check_layout` ignores), resumed with HTTP Range requests when a connection breaks
(`fetch.py`), checked against a sha256, unpacked with zip-slip protection (`archive.py`), and
validated here. No checksum is published for the archive, so the first download records its
sha256 next to it and later downloads are compared with that record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pneumonia_aug.data.archive import ARCHIVE_NAME, unpack, verify
from pneumonia_aug.data.fetch import fetch
from pneumonia_aug.data.kermany import (
    CLASSES,
    EXPECTED_COUNTS,
    IGNORED_DIRS,
    IMAGE_SUFFIXES,
    REQUIRED_SPLITS,
    SPLITS,
    check_layout,
)
from pneumonia_aug.errors import DataLayoutError, DownloadError

log = logging.getLogger(__name__)

# Kermany, Zhang, Goldbaum (2018), "Labeled Optical Coherence Tomography (OCT) and Chest X-Ray
# Images for Classification", Mendeley Data V2, doi 10.17632/rscbjbr9sj.2, licence CC BY 4.0.
MENDELEY_URL = (
    "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
    "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded"
)
DOWNLOAD_DIR = ".download"


def download_dataset(
    data_dir: str | os.PathLike,
    url: str = MENDELEY_URL,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    force: bool = False,
) -> Path:
    """Make `data_dir` a Kermany folder from the archive at `url`; return its resolved path.

    Does nothing when `data_dir` already holds a valid layout, unless `force`, which
    downloads again and replaces `data_dir/{train,val,test}`. Raises `DownloadError`.
    """
    root = Path(data_dir).expanduser().resolve()
    if not force and _holds_valid_layout(root):
        log.info("%s already holds the Kermany layout; not downloading (use --force to redo)", root)
        return root
    _check_target(root, force)
    workdir = root / DOWNLOAD_DIR
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / ARCHIVE_NAME
    part = workdir / (ARCHIVE_NAME + ".part")
    if force:
        archive.unlink(missing_ok=True)
    if archive.exists():
        # A previous run verified it but stopped before unpacking: check it again, reuse it.
        log.info("reusing %s", archive)
        verify(archive, workdir, sha256)
    else:
        log.info("downloading %s to %s", url, part)
        fetch(url, part, timeout, progress, ARCHIVE_NAME)
        verify(part, workdir, sha256)
        os.replace(part, archive)
    unpack(archive, root, workdir / "unpacked")
    check_layout(root)
    _compare_counts(root)
    # The unpacked folders are the cache now; 1.2 GB of zip would only double the disk use.
    archive.unlink()
    log.info("Kermany data ready in %s", root)
    return root


# --- target folder ---------------------------------------------------------------------


def _is_image(path: Path) -> bool:
    suffix_ok = path.suffix.lower() in IMAGE_SUFFIXES
    return suffix_ok and path.is_file() and not path.name.startswith(".")


def _count_images(root: Path) -> dict[tuple[str, str], int]:
    counts = {}
    for split in SPLITS:
        for label in CLASSES:
            folder = root / split / label
            counts[(split, label)] = sum(map(_is_image, folder.iterdir())) if folder.is_dir() else 0
    return counts


def _holds_valid_layout(root: Path) -> bool:
    """The folder tree is right and every required class folder holds images."""
    if not root.is_dir():
        return False
    try:
        check_layout(root)
    except DataLayoutError:
        return False
    counts = _count_images(root)
    return all(counts[(s, c)] > 0 for s in REQUIRED_SPLITS for c in CLASSES)


def _check_target(root: Path, force: bool) -> None:
    """Refuse early, before a 1.2 GB download, a folder that we would have to overwrite."""
    if not root.is_dir():
        return
    dirs = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    foreign = [d for d in dirs if d not in SPLITS and d not in IGNORED_DIRS]
    if foreign:
        raise DownloadError(
            f"{root} holds folders that are not Kermany splits {sorted(foreign)}: "
            f"choose an empty or new --data-dir"
        )
    splits = [d for d in dirs if d in SPLITS]
    if splits and not force:
        raise DownloadError(
            f"{root} holds {sorted(splits)} but not a complete Kermany layout: move it away, "
            f"or pass --force to replace {root}/{{train,val,test}} with a fresh download"
        )


def _compare_counts(root: Path) -> None:
    """Warn, not fail, when the image counts differ from the Mendeley archive's."""
    counts = _count_images(root)
    merged = {
        (split, label): counts[(split, label)] + (counts[("val", label)] if split == "train" else 0)
        for split, label in EXPECTED_COUNTS
    }
    differ = {k: (merged[k], v) for k, v in EXPECTED_COUNTS.items() if merged[k] != v}
    if differ:
        details = ", ".join(
            f"{s}/{c}: {got} (expected {want})" for (s, c), (got, want) in differ.items()
        )
        log.warning(
            "image counts in %s differ from the Mendeley archive's (train includes val): %s. "
            "Fine if this is another copy on purpose; otherwise check the download",
            root, details,
        )
    else:
        log.info("image counts match the Mendeley archive: %s", merged)
