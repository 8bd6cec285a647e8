"""Decode any image the data layer accepts into an 8-bit grayscale square array.

Real folders hold RGB, RGBA, CMYK, palette and 16-bit files besides the usual 8-bit
grayscale JPEGs. All become `uint8` grayscale. Images are *stretched* to `size x size`
(no crop, no padding) with an antialiased bilinear resize: the authors' GAN code stretched
to a square, and so did the 224 px copy of the set the CPU results used.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# A chest radiograph is at most ~3000 x 3000 px; anything far larger is refused before it
# is decoded (a decompression bomb: a small file that expands to gigabytes).
MAX_PIXELS = 50_000_000


class ImageDecodeError(Exception):
    """The file is not a readable image (truncated, corrupt, oversized)."""


def _to_grayscale(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 'L', scaling 16/32-bit data to 0-255 and dropping alpha onto black."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit radiographs use 0..65535; an 'I'/'F' image with a smaller range is stretched
        # by its own maximum rather than crushed to black.
        top = 65535.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    if img.mode == "CMYK":
        return img.convert("RGB").convert("L")
    return img.convert("L")


def decode_grayscale(source: str | os.PathLike | bytes, size: int) -> np.ndarray:
    """Decode a file (or its bytes) into a `(size, size)` uint8 array.

    Raises `ImageDecodeError` with the reason for empty, truncated, corrupt or oversized files.
    """
    return stretch(open_grayscale(source), size)


def stretch(gray: Image.Image, size: int) -> np.ndarray:
    """A grayscale image stretched to `(size, size)` uint8 (antialiased bilinear)."""
    return np.asarray(gray.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8).copy()


def open_grayscale(source: str | os.PathLike | bytes) -> Image.Image:
    """Decode a file (or its bytes) into an 8-bit grayscale ('L') image at its own size, the
    right way up (EXIF orientation); the same checks and errors as `decode_grayscale`."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageDecodeError("empty file")
        stream = io.BytesIO(source)
    else:
        if Path(source).stat().st_size == 0:
            raise ImageDecodeError("empty file")
        stream = open(source, "rb")
    try:
        with stream, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream)
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageDecodeError(
                    f"{width}x{height} px exceeds the {MAX_PIXELS:,} px limit "
                    "(possible decompression bomb)"
                )
            img.load()  # raises OSError on truncated data
            return _to_grayscale(ImageOps.exif_transpose(img))
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"possible decompression bomb ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        # PIL's message names the stream (`<_io.BytesIO object at 0x7f...>`), not the file.
        raise ImageDecodeError("unreadable image (not an image format PIL knows)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # PIL reports truncated and corrupt files as OSError (or ValueError, SyntaxError).
        raise ImageDecodeError(f"unreadable image ({exc})") from exc
