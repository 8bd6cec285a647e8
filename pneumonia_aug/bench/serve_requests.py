"""The requests `bench serve` sends, and what the serving contract says each must get back.

Every kind is one request body with a known answer (serving/pyfunc.py): good rows get HTTP 200
with a probability and a null error, bad rows in a batch with good ones get 200 with their
error, and a request with no readable row, no rows or no `image` column gets a 400 that names
the cause (and each bad row) without a stack trace. Anything else is an unexpected answer.
The client side: no torch, no MLflow.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from pneumonia_aug.contract import (
    ERROR_COLUMN,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    PROBABILITY_COLUMN,
    THRESHOLD_COLUMN,
)

LABELS = ("NORMAL", "PNEUMONIA")
OVERSIZED_PX = (8000, 7000)  # 56 Mpx: over the data layer's 50 Mpx limit


@dataclass(frozen=True)
class Kind:
    name: str
    rows: tuple  # the cells of the `image` column
    status: int  # the HTTP status the contract gives it
    bad_rows: frozenset = field(default_factory=frozenset)  # rows that must carry an error
    column: str = IMAGE_COLUMN

    @property
    def body(self) -> bytes:
        return json.dumps({"dataframe_split": {"columns": [self.column],
                                               "data": [[cell] for cell in self.rows]}}).encode()


def oversized_png(width: int, height: int) -> bytes:
    """A valid 1-bit black PNG of `width x height` px: a few KB that decode to megapixels."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def request_kinds(images: list[Path]) -> list[Kind]:
    """The request kinds, from real X-ray files (at least 4)."""
    good = [base64.b64encode(p.read_bytes()).decode("ascii") for p in images]
    not_base64 = "this is not base64 !"
    not_image = base64.b64encode(b"%PDF-1.4 not an image").decode("ascii")
    truncated = base64.b64encode(images[0].read_bytes()[:300]).decode("ascii")
    oversized = base64.b64encode(oversized_png(*OVERSIZED_PX)).decode("ascii")
    return [
        Kind("one good image", (good[0],), 200),
        Kind("batch of 4 good images", tuple(good[:4]), 200),
        Kind("batch: 2 good, 2 bad rows", (good[1], not_base64, good[2], not_image), 200,
             frozenset({1, 3})),
        Kind("no readable row (oversized, truncated)", (oversized, truncated), 400,
             frozenset({0, 1})),
        Kind("empty frame", (), 400),
        Kind("no image column", (good[3],), 400, column="picture"),
    ]


def problem(kind: Kind, status: int, body: bytes) -> str | None:
    """What is wrong with the answer `kind` got, or None when it is what the contract says."""
    if status != kind.status:
        return f"HTTP {status}, expected {kind.status}: {body[:200]!r}"
    try:  # strict JSON: no NaN
        answer = json.loads(body, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except ValueError as exc:
        return f"not JSON ({exc})"
    if status != 200:
        return _refusal_problem(kind, answer)
    rows = answer.get("predictions")
    if not isinstance(rows, list) or len(rows) != len(kind.rows):
        return f"expected {len(kind.rows)} predictions, got {str(rows)[:200]}"
    for i, row in enumerate(rows):
        bad = _row_problem(row, i in kind.bad_rows)
        if bad:
            return f"row {i}: {bad}"
    return None


def _row_problem(row: dict, bad: bool) -> str | None:
    probability, label, threshold, error = (row.get(k) for k in (
        PROBABILITY_COLUMN, LABEL_COLUMN, THRESHOLD_COLUMN, ERROR_COLUMN))
    if bad:
        ok = (isinstance(error, str) and error and probability is None and label is None
              and threshold is None)
        return None if ok else f"a bad row answered {row}"
    ok = (error is None and isinstance(probability, float) and 0.0 <= probability <= 1.0
          and isinstance(threshold, float)
          and label == LABELS[int(probability >= threshold)])
    return None if ok else f"a good row answered {row}"


def _refusal_problem(kind: Kind, answer: dict) -> str | None:
    message = answer.get("message", "")
    if "stack_trace" in answer or "Traceback" in message:
        return "a stack trace in the response"
    missing = [r for r in sorted(kind.bad_rows) if f"row {r}:" not in message]
    return f"rows {missing} not named in {message[:200]!r}" if missing else None
