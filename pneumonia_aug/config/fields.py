"""The field machinery of every config: a field with its default, help text and choices
(`param`), values coerced to their declared types (they arrive as strings from `mlflow run
-P`), and checks that fail as one line."""

from __future__ import annotations

from dataclasses import asdict, field, fields

from pneumonia_aug.errors import PneumoniaAugError


def param(default, help: str, choices: tuple[str, ...] | None = None):
    """A config field: its default, the help text the CLI shows, and its choices if any."""
    return field(default=default, metadata={"help": help, "choices": choices})


def to_bool(value) -> bool:
    """`True`, or the strings `mlflow run -P` and the CLI give (`true`/`false`, `1`/`0`,
    `yes`/`no`); anything else is a ValueError."""
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(value)


def coerce_fields(config) -> None:
    """Coerce every field to its declared type (values arrive as strings from `mlflow run -P`)
    and check choices."""
    for f in fields(config):
        value = getattr(config, f.name)
        kind = {"int": int, "float": float, "str": str, "bool": to_bool}[str(f.type)]
        try:
            value = kind(float(value)) if kind is int and str(value).strip() else kind(value)
            if kind is int and float(getattr(config, f.name)) != value:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise PneumoniaAugError(
                f"parameter {f.name}={getattr(config, f.name)!r} is not a valid {f.type}") from exc
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise PneumoniaAugError(f"{f.name} must be one of {choices}, not {value!r}")
        setattr(config, f.name, value)


def check(checks: list[tuple[bool, str]]) -> None:
    """Raise the first failed check's message (one line: the user sees it as `error: ...`)."""
    for ok, message in checks:
        if not ok:
            raise PneumoniaAugError(message)


class Config:
    """A run config: its fields as a dict (the logged params, the checkpoint's copy)."""

    def to_dict(self) -> dict:
        return asdict(self)
