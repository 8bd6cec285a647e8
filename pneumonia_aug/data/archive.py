"""The downloaded archive: checked against a sha256 (recorded on the first download, since none
is published), then unpacked with zip-slip protection into a Kermany layout."""

from __future__ import annotations

import logging
import os
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from pneumonia_aug.data.kermany import IGNORED_DIRS, REQUIRED_SPLITS, SPLITS, file_sha256
from pneumonia_aug.errors import DownloadError

log = logging.getLogger(__name__)

ARCHIVE_NAME = "ChestXRay2017.zip"
# Archivers' litter, never data.
_SKIPPED_NAMES = {".DS_Store", "Thumbs.db"}


def verify(path: Path, workdir: Path, sha256: str | None) -> None:
    """Check `path` against `sha256`, else against the recorded one; record it if new."""
    record = workdir / (ARCHIVE_NAME + ".sha256")
    actual = file_sha256(path)
    if sha256:
        expected, source = sha256.strip().lower(), "--sha256"
    elif record.exists():
        expected = record.read_text().split()[0].lower()
        source = f"the checksum recorded in {record}"
    else:
        expected, source = None, None
    if expected is not None and actual != expected:
        raise DownloadError(
            f"checksum mismatch for {path}: sha256 {actual}, expected {expected} from {source}. "
            f"Delete {path} and download again; if the archive was changed on purpose, pass "
            f"--sha256 {actual} (or delete {record})"
        )
    if sha256 or not record.exists():
        record.write_text(f"{actual}  {ARCHIVE_NAME}\n")
    if expected is None:
        log.info("no published checksum: recorded sha256 %s in %s", actual, record)
    else:
        log.info("sha256 %s matches %s", actual, source)


def _wanted_members(archive: zipfile.ZipFile, dest: Path) -> list[zipfile.ZipInfo]:
    """The members to extract; raises on any that would land outside `dest` (zip-slip)."""
    dest = dest.resolve()
    wanted = []
    for info in archive.infolist():
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", info.filename):
            raise DownloadError(
                f"refusing archive member {info.filename!r}: it would be written outside "
                f"{dest}. The archive is not the Kermany one; check --url"
            )
        if IGNORED_DIRS & set(name.parts) or name.name in _SKIPPED_NAMES or info.is_dir():
            continue
        wanted.append(info)
    return wanted


def _find_root(folder: Path) -> Path:
    """The shallowest folder holding both train/ and test/ (e.g. `chest_xray/`)."""
    candidates = [
        p for p in [folder, *folder.rglob("*")]
        if p.is_dir() and all((p / s).is_dir() for s in REQUIRED_SPLITS)
        and not IGNORED_DIRS & set(p.relative_to(folder).parts)
    ]
    if not candidates:
        raise DownloadError(
            f"the archive holds no folder with train/ and test/ inside; it is not the "
            f"Kermany chest X-ray archive ({ARCHIVE_NAME}): check --url"
        )
    return min(candidates, key=lambda p: (len(p.parts), str(p)))


def unpack(archive_path: Path, root: Path, scratch: Path) -> None:
    """Extract into `scratch`, then move the splits found inside to `root/{split}`."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive_path) as archive:
            # Check every member before writing any, so a bad archive leaves nothing behind.
            members = _wanted_members(archive, scratch)
            log.info("unpacking %d files from %s", len(members), archive_path)
            for info in members:
                archive.extract(info, scratch)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise DownloadError(
            f"{archive_path} is not a readable zip ({exc}): delete it and download again"
        ) from exc
    except DownloadError:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    found = _find_root(scratch)
    for split in SPLITS:
        if (found / split).is_dir():
            target = root / split
            if target.exists():  # only reached with force (see download._check_target)
                log.info("replacing %s", target)
                shutil.rmtree(target)
            os.replace(found / split, target)
    shutil.rmtree(scratch)
