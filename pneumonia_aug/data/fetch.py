"""Fetching a large file over HTTP with the standard library: streamed to a `.part` file,
resumed with Range requests when a connection breaks, retried a few times."""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from pneumonia_aug.errors import DownloadError

log = logging.getLogger(__name__)

RETRIES = 5
RETRY_WAIT_S = 2.0  # times the attempt number: servers that drop us often need a pause
CHUNK_BYTES = 1 << 20
USER_AGENT = "pneumonia-aug (python urllib)"  # some hosts refuse urllib's default agent


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


def fetch(url: str, part: Path, timeout: float, progress: bool, label: str) -> None:
    """Download `url` into `part`, resuming what is there; retry on broken connections. The
    progress bar (`progress`) is labelled `label`."""
    for attempt in range(1, RETRIES + 1):
        try:
            _fetch_once(url, part, timeout, progress, label)
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


def _fetch_once(url: str, part: Path, timeout: float, progress: bool, label: str) -> None:
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
            total=total, initial=offset, unit="B", unit_scale=True, desc=label,
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
