"""How the trained networks become registered MLflow models ("models from code").

Each model is logged as a pyfunc whose code is a readable file of this package
(`mlflow_chexnet.py`, `mlflow_generator.py`) and whose weights are a plain `state_dict`
loaded with `torch.load(weights_only=True)`, so loading one executes no pickle.
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import torch

from pneumonia_aug import tracking
from pneumonia_aug.contract import CLASSIFIER_MODEL, Gan, generator_model_name
from pneumonia_aug.serving.pyfunc import (
    CONFIG_ARTIFACT,
    IMAGE_COLUMN,
    WEIGHTS_ARTIFACT,
    encode_image_file,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CLASSIFIER_INPUTS = [("string", IMAGE_COLUMN)]
CLASSIFIER_OUTPUTS = [("double", "probability"), ("string", "label")]
GENERATOR_INPUTS = [("long", "n"), ("long", "seed"), ("string", "label", False)]
GENERATOR_OUTPUTS = [("long", "row"), ("long", "index"), ("string", "image")]


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        if name != "mlflow":
            raise
        return version("mlflow-skinny")  # the same code without the UI (the GPU kit carries it)


def _pip_requirements() -> list[str]:
    return [f"{name}=={_version(name)}" for name in
            ("mlflow", "torch", "torchvision", "numpy", "pandas", "pillow", "scikit-learn")]


def _log(code_file: str, state_dict: dict, config: dict, inputs, outputs,
         example: pd.DataFrame, registered_name: str, metadata: dict | None):
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save(state_dict, weights)
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        return tracking.log_pyfunc_model(
            "model", PACKAGE_DIR / "serving" / code_file,
            {WEIGHTS_ARTIFACT: str(weights), CONFIG_ARTIFACT: str(config_path)}, [str(PACKAGE_DIR)],
            inputs, outputs, example, registered_name, metadata, _pip_requirements())


def log_classifier_model(state_dict: dict, config: dict, example_images: list[str | Path],
                         metadata: dict | None = None):
    """Log the classifier and register it as `pneumonia-chexnet`; returns MLflow's ModelInfo."""
    example = pd.DataFrame({IMAGE_COLUMN: [encode_image_file(p) for p in example_images]})
    return _log("mlflow_chexnet.py", state_dict, config, CLASSIFIER_INPUTS, CLASSIFIER_OUTPUTS,
                example, CLASSIFIER_MODEL, metadata)


def log_generator_model(gan: Gan, state_dict: dict, config: dict, metadata: dict | None = None):
    """Log a GAN generator and register it as `pneumonia-{dcgan,cgan}-generator`."""
    example = pd.DataFrame({"n": [2], "seed": [0], "label": ["NORMAL"]})
    return _log("mlflow_generator.py", state_dict, config, GENERATOR_INPUTS, GENERATOR_OUTPUTS,
                example, generator_model_name(gan), metadata)
