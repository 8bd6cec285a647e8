"""Local checkpoints that outlive a failed upload.

A run writes its checkpoint under `CACHE_DIR/checkpoints/<run_id>/` and removes it only once
everything, model included, has reached the tracking server; if the upload fails (server
down, wrong S3 key) the file stays and the error says where.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from pneumonia_aug.data.cache import default_cache_dir

log = logging.getLogger(__name__)


@contextlib.contextmanager
def local_checkpoint(run_id: str, cache_dir: str = "") -> Iterator[Path]:
    folder = Path(cache_dir or default_cache_dir()) / "checkpoints" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder / "checkpoint.pt"
    except BaseException:
        if any(folder.iterdir()):
            log.warning("run %s did not finish; its checkpoint is kept at %s", run_id, folder)
        raise
    shutil.rmtree(folder, ignore_errors=True)
