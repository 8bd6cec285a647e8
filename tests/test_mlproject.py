"""MLproject repeats the user-facing parameters of the run configs: under `mlflow run` its
defaults win, so they must agree with the dataclasses (the one place defaults are written)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pneumonia_aug.config import (
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    QualityConfig,
    StudyConfig,
)
from pneumonia_aug.contract import DEFAULT_CLASSIFIER_URI

MLPROJECT = yaml.safe_load((Path(__file__).parent.parent / "MLproject").read_text())
CONFIGS = {"train_classifier": ClassifierConfig, "train_gan": GANConfig,
           "generate": GenerateConfig, "gan_quality": QualityConfig, "compare": CompareConfig,
           "main": StudyConfig}
TYPES = {"int": "int", "float": "float", "str": "string"}


def _coerce(kind: str, value):
    return {"int": int, "float": float, "string": str}[kind](value)


@pytest.mark.parametrize("entry_point", sorted(CONFIGS))
def test_entry_point_parameters_match_the_config(entry_point):
    fields = {f.name: f for f in dataclasses.fields(CONFIGS[entry_point])}
    params = MLPROJECT["entry_points"][entry_point]["parameters"]
    command = MLPROJECT["entry_points"][entry_point]["command"]
    for name, spec in params.items():
        assert name in fields, f"{entry_point}: MLproject parameter {name} is no config field"
        field = fields[name]
        assert spec["type"] == TYPES[str(field.type)], f"{entry_point}.{name}: type differs"
        default = _coerce(spec["type"], spec.get("default", ""))
        assert default == field.default, (f"{entry_point}.{name}: MLproject default {default!r}"
                                          f" vs config {field.default!r}")
        assert f"{{{name}}}" in command, f"{entry_point}: {name} is declared but never passed"


def test_predict_defaults_to_the_champion():
    params = MLPROJECT["entry_points"]["predict"]["parameters"]
    assert params["model"]["default"] == DEFAULT_CLASSIFIER_URI


def test_a_changed_default_is_caught(monkeypatch):
    """The check above can fail: a config whose default differs from MLproject's."""
    changed = dataclasses.make_dataclass("Changed", [("epochs", "int", dataclasses.field(
        default=99))])
    monkeypatch.setitem(CONFIGS, "probe", changed)
    monkeypatch.setitem(MLPROJECT["entry_points"], "probe", {
        "parameters": {"epochs": {"type": "int", "default": 100}}, "command": "x {epochs}"})
    with pytest.raises(AssertionError, match="MLproject default 100 vs config 99"):
        test_entry_point_parameters_match_the_config("probe")
