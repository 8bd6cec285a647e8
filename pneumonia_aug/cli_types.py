"""Click pieces shared by `pneumonia-aug` and its `services` group."""

from __future__ import annotations

import sys

import click

from pneumonia_aug.errors import PneumoniaAugError


class UserErrorGroup(click.Group):
    """Turn user errors into one line (`error: ...`) and exit code 2, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PneumoniaAugError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


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
