"""Click options built from the config dataclasses (`pneumonia_aug.config`: default, help and
choices written once), and the decorator of the commands that log to MLflow.

Options accept both `--split-seed` and `--split_seed` (the second hidden from help), because
`mlflow run` passes undeclared `-P key=value` pairs as `--key value`.
"""

from __future__ import annotations

import dataclasses
import functools

import click

from pneumonia_aug.cli.types import WholeNumber
from pneumonia_aug.config import Reliability
from pneumonia_aug.startup import paused_collector

_ALIAS = "__alias"


def option(name: str, **kwargs):
    """`--split-seed`, plus the hidden alias `--split_seed` (what `mlflow run` passes for an
    undeclared `-P split_seed=...`); `fold_aliases` merges the two."""

    def decorate(func):
        func = click.option("--" + name.replace("_", "-"), name, **kwargs)(func)
        if "_" in name:
            same = {k: kwargs[k] for k in ("type", "is_flag", "flag_value") if k in kwargs}
            func = click.option(f"--{name}", f"{name}{_ALIAS}", default=None, hidden=True,
                                **same)(func)
        return func

    return decorate


def fold_aliases(func):
    """Call `func` with each hidden underscore alias's value moved to its option's name."""

    @functools.wraps(func)
    def wrapper(**params):
        values = {k: v for k, v in params.items() if not k.endswith(_ALIAS)}
        for key, value in params.items():
            if key.endswith(_ALIAS) and value is not None:
                values[key.removesuffix(_ALIAS)] = value
        return func(**values)

    return wrapper


def config_options(config_cls):
    """Decorator adding one option per dataclass field: its default, help text and choices.
    A bool field is a flag that also takes a value (`--system-metrics`, `--system-metrics
    false`), since `mlflow run -P system_metrics=true` passes `--system_metrics true`."""
    types = {"int": WholeNumber(), "float": float, "str": str, "bool": click.BOOL}

    def decorate(func):
        for f in reversed(dataclasses.fields(config_cls)):
            choices = f.metadata.get("choices")
            kind = click.Choice(choices, case_sensitive=False) if choices else types[str(f.type)]
            flag = ({"is_flag": False, "flag_value": True, "metavar": "[BOOLEAN]"}
                    if str(f.type) == "bool" else {})
            func = option(f.name, type=kind, default=f.default, show_default=True,
                          help=f.metadata.get("help", ""), **flag)(func)
        return func

    return decorate


# Options of a command beside its config's fields: passed to the command as they are.
EXTRA_OPTIONS = ("resume", "dry_run", "plan_gpus")


def tracked(config_cls):
    """A command that logs to MLflow: build (and so validate) its config from the options,
    then check the tracking server (fails in seconds), then call the command with the config."""

    def decorate(func):
        @config_options(config_cls)
        @functools.wraps(func)
        @fold_aliases
        def wrapper(**params):
            extra = {k: params.pop(k) for k in list(params) if k in EXTRA_OPTIONS}
            cfg = config_cls(**params)
            Reliability.from_env()  # a bad PNEUMONIA_AUG_*_S limit: refused before any run
            with paused_collector():
                from pneumonia_aug import tracking

                tracking.ensure_reachable(getattr(cfg, "experiment_name", None))
            return func(cfg, **extra)

        return wrapper

    return decorate
