"""Writes that lose a race with another process writing the same SQL store, tried again.

MLflow's SQL store reads, then writes, in one transaction. Runs that start or stop together (a
study's stages, started at once or stopped by one SIGTERM) can collide there in two ways: two
insert the same row (a dataset both log: the unique key refuses the second), or two upgrade
their read to a write at once on sqlite, which refuses one of them at once ("database is
locked") rather than let them wait on each other. Either way the losing transaction wrote
nothing, and the same call, made again, finds the other's row or a free database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from mlflow.exceptions import MlflowException

# How the stores word a lost race (sqlite, PostgreSQL, MySQL; a server passes the text on).
LOST_RACE = ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry",
             "database is locked")
ATTEMPTS = 5
PAUSE_S = 0.2  # doubled after each lost race
T = TypeVar("T")


def lost_race(exc: MlflowException) -> bool:
    return any(marker in str(exc) for marker in LOST_RACE)


def retry_lost_race(call: Callable[..., T], *args, **kwargs) -> T:
    """`call(*args, **kwargs)`, again (up to ATTEMPTS in all, pausing a little longer each
    time) while it fails only by losing a race with another writer."""
    for attempt in range(ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except MlflowException as exc:
            if attempt == ATTEMPTS - 1 or not lost_race(exc):
                raise
            time.sleep(PAUSE_S * 2**attempt)
    raise AssertionError("unreachable")  # the last attempt returned or raised
