"""A compact copy of a Kermany folder at one image size, small enough to carry.

Each image the data layer indexes is decoded exactly as training decodes it (grayscale,
stretched to `size` x `size`, antialiased bilinear: `data.images.decode_grayscale`) and saved
as a high-quality JPEG under the same relative path and file name. So the patient ids, the
split and the validation split (which groups identical files) stay the same, and training at
`size` on the copy sees the same pixels up to JPEG rounding (mean absolute error below one
grey level at quality 95). The file contents differ, so the copy's dataset digest differs
from the source's: both are recorded in the kit's manifest.
"""

from __future__ import annotations

import io
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from pneumonia_aug.data.images import ImageDecodeError, decode_grayscale
from pneumonia_aug.data.kermany import dataset_digest, index_kermany
from pneumonia_aug.data.splits import split_train_val

log = logging.getLogger(__name__)
JPEG_QUALITY = 95


def encode(source: str, size: int) -> bytes | None:
    """The image at `source`, as training would see it at `size`, as JPEG bytes; None if it
    cannot be decoded (training skips it too)."""
    try:
        pixels = decode_grayscale(source, size)
    except ImageDecodeError:
        return None
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def _encode_pair(args: tuple[str, int]) -> bytes | None:
    return encode(*args)


def compact_copy(source: Path, target: Path, size: int, workers: int = 1) -> dict:
    """Write the copy of `source` at `size` px into `target` (replaced); return its summary."""
    index, skipped = index_kermany(source)
    if target.exists():
        shutil.rmtree(target)
    jobs = [(path, size) for path in index["path"]]
    with ProcessPoolExecutor(workers) as pool:
        encoded = list(pool.map(_encode_pair, jobs, chunksize=64))
    unreadable = []
    for relpath, data in zip(index["relpath"], encoded, strict=True):
        if data is None:
            unreadable.append(relpath)
            continue
        out = target / relpath
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    copy_index, _ = index_kermany(target)
    log.info("kit: %d images re-encoded at %d px into %s (%d unreadable, %d non-images "
             "skipped)", len(copy_index), size, target, len(unreadable), len(skipped))
    return {
        "source": str(source),
        "image_size": size,
        "jpeg_quality": JPEG_QUALITY,
        "images": len(copy_index),
        "counts": {f"{s}/{lab}": int(n) for (s, lab), n in
                   copy_index.groupby(["split", "label"]).size().items()},
        "source_digest": dataset_digest(index),
        "digest": dataset_digest(copy_index),
        "unreadable": unreadable,
        "same_validation_split": _validation(index) == _validation(copy_index),
    }


def _validation(index) -> set[str]:
    """The images the default `split_seed` puts in validation, by relative path."""
    split = split_train_val(index)
    return set(split.loc[split["subset"] == "val", "relpath"])
