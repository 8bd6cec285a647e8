"""Download and unpack the Kermany chest X-ray archive into a Kermany-layout folder.

The archive is streamed with the standard library into `DATA_DIR/.download/` (a dot folder,
which `check_layout` ignores), resumed with HTTP Range requests when a connection breaks,
checked against a sha256, unpacked with zip-slip protection, and validated. No checksum is
published for the archive, so the first download records its sha256 next to it and later
downloads are compared with that record.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pneumonia_aug.data.kermany import (
    CLASSES,
    IGNORED_DIRS,
    IMAGE_SUFFIXES,
    REQUIRED_SPLITS,
    SPLITS,
    check_layout,
    file_sha256,
)
from pneumonia_aug.errors import DataLayoutError, DownloadError

log = logging.getLogger(__name__)

# Kermany, Zhang, Goldbaum (2018), "Labeled Optical Coherence Tomography (OCT) and Chest X-Ray
# Images for Classification", Mendeley Data V2, doi 10.17632/rscbjbr9sj.2, licence CC BY 4.0.
MENDELEY_URL = (
    "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
    "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded"
)
ARCHIVE_NAME = "ChestXRay2017.zip"
DOWNLOAD_DIR = ".download"
# Images per (split, label) in the Mendeley archive (docs/protocol.md, "Data"). Its train/ is
# Kaggle's train + val, so a copy with val/ is compared after merging val into train.
EXPECTED_COUNTS = {
    ("train", "NORMAL"): 1349,
    ("train", "PNEUMONIA"): 3883,
    ("test", "NORMAL"): 234,
    ("test", "PNEUMONIA"): 390,
}
RETRIES = 5
RETRY_WAIT_S = 2.0  # times the attempt number: servers that drop us often need a pause
CHUNK_BYTES = 1 << 20
USER_AGENT = "pneumonia-aug (python urllib)"  # some hosts refuse urllib's default agent
# Archivers' litter, never data.
_SKIPPED_NAMES = {".DS_Store", "Thumbs.db"}


class _IncompleteDownload(Exception):
    """The server closed the connection before sending the whole body."""


# Errors after which resuming makes sense. HTTPError is a URLError: 5xx lands here, 4xx is
# turned into a DownloadError before it can.
_RETRYABLE = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    _IncompleteDownload,
)


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
        _verify(archive, workdir, sha256)
    else:
        log.info("downloading %s to %s", url, part)
        _fetch(url, part, timeout, progress)
        _verify(part, workdir, sha256)
        os.replace(part, archive)
    _unpack(archive, root, workdir / "unpacked")
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


# --- download --------------------------------------------------------------------------


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Download `url` into `part`, resuming what is there; retry on broken connections."""
    for attempt in range(1, RETRIES + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            return
        except _RETRYABLE as exc:
            have = part.stat().st_size if part.exists() else 0
            log.warning(
                "download interrupted after %d bytes (%s: %s), attempt %d/%d",
                have, type(exc).__name__, exc, attempt, RETRIES,
            )
            if attempt == RETRIES:
                raise DownloadError(
                    f"could not download {url} after {RETRIES} attempts ({exc}); check the "
                    f"network and run the command again: it resumes from {part}"
                ) from exc
            time.sleep(RETRY_WAIT_S * attempt)


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Nothing left past `offset`: the part is already whole (a run stopped before
            # renaming it). The checksum decides whether it is good.
            log.info("%s is already complete (%d bytes)", part, offset)
            return
        if exc.code >= 500:
            raise
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}: check --url") from exc
    with response:
        if response.status == 206:
            if _range_start(response.headers.get("Content-Range")) != offset:
                part.unlink()  # a range we did not ask for: start over on the next attempt
                raise _IncompleteDownload("server answered another byte range")
            mode = "ab"
            log.info("resuming at byte %d", offset)
        else:
            if offset:  # the server ignored our Range: start over
                log.info("server does not resume; downloading from the start")
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        received = offset
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=ARCHIVE_NAME,
            disable=not progress,
        ) as bar:
            # urllib returns b"" instead of raising when the peer closes early, so the
            # byte count below is what tells a whole body from a cut one.
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise _IncompleteDownload(f"got {received} of {total} bytes")
    log.info("downloaded %d bytes", received)


def _range_start(content_range: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _verify(path: Path, workdir: Path, sha256: str | None) -> None:
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


# --- unpack ----------------------------------------------------------------------------


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


def _unpack(archive_path: Path, root: Path, scratch: Path) -> None:
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
            if target.exists():  # only reached with force (see _check_target)
                log.info("replacing %s", target)
                shutil.rmtree(target)
            os.replace(found / split, target)
    shutil.rmtree(scratch)


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
