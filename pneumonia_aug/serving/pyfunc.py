"""The registered classifier as an MLflow pyfunc model (no pickle).

Request format (one row per image): a column `image` holding the image file's bytes,
base64-encoded; any format the data layer reads (JPEG, PNG, TIFF, 16-bit, RGB...). Example:

    {"dataframe_split": {"columns": ["image"], "data": [["/9j/4AAQSkZJRg..."]]}}

Response: per image `probability` (of PNEUMONIA) and `label` at the 0.5 threshold.

The model is saved as "models from code" (MLflow 3): `mlflow_chexnet.py` beside this file
is the model's code, the weights are a plain `state_dict` loaded with
`torch.load(weights_only=True)`, so loading works with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false.
"""

from __future__ import annotations

import base64
import binascii
import json

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from pneumonia_aug.contract import THRESHOLD
from pneumonia_aug.data.images import ImageDecodeError, decode_grayscale
from pneumonia_aug.models.chexnet import CheXNet

IMAGE_COLUMN = "image"
WEIGHTS_ARTIFACT = "weights"  # artifact names given by serving.packaging
CONFIG_ARTIFACT = "config"


def encode_image_file(path) -> str:
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


@torch.no_grad()
def pneumonia_probabilities(net: CheXNet, images: np.ndarray) -> np.ndarray:
    """`(N, S, S)` uint8 -> `(N,)` pneumonia probabilities."""
    x = torch.from_numpy(images).unsqueeze(1).float() / 255.0
    return torch.sigmoid(net.eval()(x)).numpy().astype(np.float64)


def labels_for(probs: np.ndarray) -> list[str]:
    return ["PNEUMONIA" if p >= THRESHOLD else "NORMAL" for p in probs]


class CheXNetPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts[CONFIG_ARTIFACT]) as handle:
            self.config = json.load(handle)
        self.image_size = int(self.config["image_size"])
        self.net = CheXNet()
        state = torch.load(context.artifacts[WEIGHTS_ARTIFACT], map_location="cpu",
                           weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()

    def decode(self, encoded: str, row: int) -> np.ndarray:
        try:
            return decode_grayscale(base64.b64decode(encoded, validate=True), self.image_size)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise ValueError(f"row {row}: '{IMAGE_COLUMN}' is not base64 image bytes") from exc
        except ImageDecodeError as exc:
            raise ValueError(f"row {row}: {exc}") from exc

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if IMAGE_COLUMN not in model_input:
            raise ValueError(f"expected a column '{IMAGE_COLUMN}' of base64-encoded image bytes")
        images = np.stack([self.decode(v, i) for i, v in enumerate(model_input[IMAGE_COLUMN])])
        probs = pneumonia_probabilities(self.net, images)
        return pd.DataFrame({"probability": probs, "label": labels_for(probs)})
