"""Exceptions as one line: what a failed run records of its error (`failure_line`), and what
the layer quotes of MLflow's error when it raises the project's `TrackingError` instead
(`first_line`)."""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from pneumonia_aug.errors import PneumoniaAugError


def failure_line(exc: BaseException) -> str:
    """An exception as one line: a user error's message, else `Type: first line`."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, PneumoniaAugError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def first_line(exc: MlflowException) -> str:
    return exc.message.splitlines()[0] if exc.message else str(exc)
