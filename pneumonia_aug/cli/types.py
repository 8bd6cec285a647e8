"""Click pieces the command groups share: the group that turns user errors into one line, and
the whole-number parameter type."""

from __future__ import annotations

import os
import sys

import click

from pneumonia_aug.errors import PneumoniaAugError, TrackingError


class UserErrorGroup(click.Group):
    """Turn user errors into one line (`error: ...`) and exit code 2, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PneumoniaAugError as exc:
            _record_on_launched_run(exc)
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def _record_on_launched_run(exc: PneumoniaAugError) -> None:
    """Under `mlflow run` the run exists before any check: say on it why it failed (not when
    the tracking server itself is the problem)."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id and not isinstance(exc, TrackingError):
        from pneumonia_aug import tracking

        tracking.record_failure(run_id, exc)


class WholeNumber(click.ParamType):
    """An int that also accepts `2.0` (MLflow's float params arrive that way)."""

    name = "integer"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if not number.is_integer():
            self.fail(f"{value!r} is not a whole number", param, ctx)
        return int(number)
