"""Writes that lose a race with another process writing the same SQL store, made again.

MLflow's SQL store looks for a dataset (experiment, name, digest) and inserts it when absent, in
one transaction. Runs that start together and log the same subset (a study's seeds, each with
the same test set or the same GAN training set) can all find it absent, and all but the first
insert fail on the unique key. The failed transaction wrote nothing; the same call, made again,
finds the row and only links it to its run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from mlflow.exceptions import MlflowException

# How the stores word the refused insert (sqlite, PostgreSQL, MySQL; a server passes it on).
LOST_RACE = ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")
ATTEMPTS = 3
PAUSE_S = 0.1  # doubled after each lost race
T = TypeVar("T")


def lost_race(exc: MlflowException) -> bool:
    return any(marker in str(exc) for marker in LOST_RACE)


def retry_lost_race(call: Callable[..., T], *args, **kwargs) -> T:
    """`call(*args, **kwargs)`, again (up to ATTEMPTS in all) while it fails only by losing
    an insert to another writer."""
    for attempt in range(ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except MlflowException as exc:
            if attempt == ATTEMPTS - 1 or not lost_race(exc):
                raise
            time.sleep(PAUSE_S * 2**attempt)
    raise AssertionError("unreachable")  # the last attempt returned or raised
