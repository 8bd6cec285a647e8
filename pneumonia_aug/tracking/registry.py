"""Models and the registry: log a pyfunc "from code" and register it, load one back, and a
registered model's versions, tags, aliases and descriptions. Which model gets which alias is
decided above this layer (`serving/registry.py`)."""

from __future__ import annotations

import functools
from importlib.metadata import packages_distributions
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pneumonia_aug.errors import TrackingError
from pneumonia_aug.tracking.failures import first_line
from pneumonia_aug.tracking.ui import DESCRIPTION_TAG


def distributions_by_module() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it: MLflow's own map,
    which logging a model with pip requirements checks them against, built once per process
    (about 0.9 s on 2 cores); so the package's requirements and MLflow's check read one map
    and the process builds it once. (A private MLflow helper: where it is gone, the map is
    importlib's, built here.)"""
    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_modules_to_packages_map()
        return requirements_utils._MODULES_TO_PACKAGES
    except (ImportError, AttributeError):
        return _importlib_distributions()


@functools.cache
def _importlib_distributions() -> dict[str, list[str]]:
    return packages_distributions()


def warm_requirement_checks() -> None:
    """Build MLflow's package -> module map now: logging a model with pip requirements checks
    them against it, and it takes about 0.9 s the first time in each process. Processes forked
    after this inherit it. (A private MLflow helper: where it is gone, each process builds the
    map itself, as before.)"""
    try:
        from mlflow.utils.requirements_utils import _init_packages_to_modules_map
    except ImportError:
        return
    _init_packages_to_modules_map()


def log_pyfunc_model(name: str, python_model: str | Path, artifacts: dict[str, str],
                     code_paths: list[str], inputs: list[tuple], outputs: list[tuple],
                     input_example: pd.DataFrame, registered_name: str,
                     metadata: dict | None = None, params: dict | None = None,
                     description: str = "", pip_requirements: list[str] | None = None):
    """Log a pyfunc "from code" as the logged model `name` (with `params` and `description`)
    and register it; returns MLflow's ModelInfo (`.model_id`, `.registered_model_version`).

    `inputs`/`outputs` are the signature's columns as (type, name) or (type, name, required).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    def schema(columns):
        return Schema([ColSpec(c[0], c[1], required=c[2] if len(c) > 2 else True)
                       for c in columns])

    info = mlflow.pyfunc.log_model(
        name=name, python_model=str(python_model), artifacts=artifacts, code_paths=code_paths,
        signature=ModelSignature(inputs=schema(inputs), outputs=schema(outputs)),
        input_example=input_example, registered_model_name=registered_name, metadata=metadata,
        params={k: str(v) for k, v in (params or {}).items()}, pip_requirements=pip_requirements)
    if description:  # after registering: the version would copy the tag among its own
        MlflowClient().set_logged_model_tags(info.model_id, {DESCRIPTION_TAG: description})
    return info


def load_python_model(model_uri: str):
    """A registered model's Python object, with a clear error when it cannot be loaded."""
    try:
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as exc:
        raise TrackingError(f"cannot load {model_uri}: {first_line(exc)}. "
                            "See the versions in the UI (Model registry, in its Model training "
                            "view) or train one first.") from exc
    except FileNotFoundError as exc:  # the version is registered, a file of it is not there
        raise TrackingError(
            f"cannot load {model_uri}: {exc.filename or exc} is missing from the artifact store "
            "(a store brought back from an offline GPU machine keeps no weights: its "
            "left_behind.txt lists them). Use a version trained where its files were kept."
        ) from exc


def model_versions(name: str) -> list:
    """Every version of a registered model (version, tags, run_id, ...)."""
    return MlflowClient().search_model_versions(f"name='{name}'")


def alias_version(name: str, alias: str) -> str | None:
    """The version `models:/NAME@ALIAS` points at; None when the model or the alias does not
    exist."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise TrackingError(f"cannot look up {name}@{alias}: {first_line(exc)}") from exc


def model_version(name: str, version: str):
    """One version of a registered model (version, tags, run_id, description)."""
    return MlflowClient().get_model_version(name, str(version))


def tag_version(name: str, version: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def describe_registered_model(name: str, text: str) -> None:
    """Set the registered model's description (Markdown): what it is, its input and output,
    how to load it."""
    MlflowClient().update_registered_model(name, description=text)


def describe_version(name: str, version: str, text: str) -> None:
    MlflowClient().update_model_version(name, str(version), description=text)


def add_to_version_description(name: str, version: str, paragraph: str) -> None:
    """Append a paragraph to the version's description."""
    note = model_version(name, version).description or ""
    describe_version(name, version, f"{note}\n\n{paragraph}" if note else paragraph)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` at `version`. Two processes creating the same new alias at one instant
    (stages of a study ending together): the store refuses the second insert (a unique key,
    in SQLite and PostgreSQL alike); that call sets it again, now an update of the row the
    other created (the last one wins, as with any update)."""
    client = MlflowClient()
    try:
        client.set_registered_model_alias(name, alias, str(version))
    except MlflowException as exc:
        if "unique" not in str(exc).lower():
            raise
        client.set_registered_model_alias(name, alias, str(version))


def model_version_of(model_uri: str) -> tuple[str, str]:
    """(version, source run id) behind `models:/NAME@alias` or `models:/NAME/version`."""
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    try:
        if ref:
            version = client.get_model_version_by_alias(name, ref)
        else:
            name, _, number = model_uri.removeprefix("models:/").partition("/")
            version = client.get_model_version(name, number)
    except MlflowException as exc:
        raise TrackingError(f"no registered model at {model_uri}: train it first "
                            f"({first_line(exc)})") from exc
    return str(version.version), version.run_id or ""
