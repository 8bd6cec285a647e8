"""The registered classifier as an MLflow pyfunc model (no pickle), and its serving contract.

Request (one row per image): a column `image` holding an image file's bytes, base64-encoded
(line breaks allowed); any format the data layer reads (JPEG, PNG, TIFF, 16-bit, RGB...):

    {"dataframe_split": {"columns": ["image"], "data": [["/9j/4AAQSkZJRg..."]]}}

Response, when at least one row holds a readable image: HTTP 200 and one answer per row, in
order: `probability` (of PNEUMONIA, calibrated: sigmoid(logit / T) with the version's
temperature T), `label` (PNEUMONIA at probability >= the version's threshold) and `threshold`
(the one applied), with `error` null. Both T and the threshold were fitted on validation by
the training run; a version saved without them answers at T = 1 and 0.5. A row that cannot be
read (not base64, not an image, over the 50 Mpx limit, empty) gets `error` saying why, and
null `probability`, `label` and `threshold`. One bad row never fails the others.

    {"predictions": [{"probability": 0.97, "label": "PNEUMONIA", "threshold": 0.62,
                      "error": null},
                     {"probability": null, "label": null, "threshold": null,
                      "error": "not base64 (...)"}]}

A request with no rows, or none readable, is refused whole: HTTP 400 (`INVALID_PARAMETER_VALUE`)
whose message names every bad row (`row 0: ...`, the first row is 0) and its cause. A request
without an `image` column is refused by MLflow's schema check (400, "Model is missing inputs").
No response carries a stack trace or a path of the server: a failure of the model itself on
readable images is a 500 that says so, with the traceback in the server's log only.

The model is saved as "models from code" (MLflow 3): `mlflow_chexnet.py` beside this file
is the model's code, the weights are a plain `state_dict` loaded with
`torch.load(weights_only=True)`, so loading works with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from pneumonia_aug.contract import (
    ERROR_COLUMN,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    PROBABILITY_COLUMN,
    TEMPERATURE,
    TEMPERATURE_KEY,
    THRESHOLD,
    THRESHOLD_COLUMN,
    THRESHOLD_KEY,
)
from pneumonia_aug.data.images import ImageDecodeError, decode_grayscale
from pneumonia_aug.models.chexnet import CheXNet

log = logging.getLogger(__name__)

WEIGHTS_ARTIFACT = "weights"  # artifact names given by serving.packaging
CONFIG_ARTIFACT = "config"
INFERENCE_BATCH = 32  # images per forward pass: a large request must not need all at once
ROWS_NAMED = 20  # a refusal names at most this many bad rows, then counts the rest


class ServingError(MlflowException):
    """An error whose message reaches the client as raised.

    MLflow's scoring server (3.17, `scoring_server.invocations`) rewrites the `message` of an
    MlflowException from `predict` to "Failed to predict data '<the input frame>'. Error: ...":
    the repr of up to 60 rows of base64 text in front of the cause. That assignment is ignored
    here, so the client reads the cause alone.
    """

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):  # MlflowException.__init__ sets it first
            self._message = value


def encode_image_file(path) -> str:
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


@torch.no_grad()
def pneumonia_probabilities(net: CheXNet, images: np.ndarray,
                            temperature: float = TEMPERATURE) -> np.ndarray:
    """`(N, S, S)` uint8 -> `(N,)` pneumonia probabilities sigmoid(logit / temperature),
    INFERENCE_BATCH images at a time."""
    net.eval()
    out = []
    for start in range(0, len(images), INFERENCE_BATCH):
        x = torch.from_numpy(images[start:start + INFERENCE_BATCH]).unsqueeze(1).float() / 255.0
        out.append(torch.sigmoid(net(x) / temperature).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def label_for(probability: float, threshold: float = THRESHOLD) -> str:
    return "PNEUMONIA" if probability >= threshold else "NORMAL"


def decode_row(value, size: int) -> np.ndarray:
    """One request cell -> `(size, size)` uint8; ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise ValueError("no image (null)")
        raise ValueError(f"expected base64 text, got {type(value).__name__}")
    try:  # `base64 FILE` wraps lines: whitespace is not data
        data = base64.b64decode("".join(value.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 ({exc})") from exc
    try:
        return decode_grayscale(data, size)
    except ImageDecodeError as exc:
        raise ValueError(str(exc)) from exc
    except Exception as exc:  # hostile bytes can break a decoder in any way
        log.exception("decoder failure on a request row")
        raise ValueError(f"unreadable image ({type(exc).__name__})") from exc


def refusal(errors: dict[int, str], n_rows: int) -> ServingError:
    """The 400 for a request none of whose `n_rows` rows could be read."""
    named = "; ".join(f"row {row}: {cause}" for row, cause in list(errors.items())[:ROWS_NAMED])
    more = f"; and {len(errors) - ROWS_NAMED} more" if len(errors) > ROWS_NAMED else ""
    return ServingError(f"no row holds a readable image ({n_rows} rows): {named}{more}",
                        error_code=INVALID_PARAMETER_VALUE)


def response(n_rows: int, probabilities: dict[int, float], errors: dict[int, str],
             threshold: float = THRESHOLD) -> pd.DataFrame:
    """One answer per row. Object columns: missing values stay None, which MLflow writes as
    JSON null (a float column would hold NaN, which it writes as the invalid JSON `NaN`)."""
    probs = [probabilities.get(row) for row in range(n_rows)]
    return pd.DataFrame({
        PROBABILITY_COLUMN: [None if p is None else float(p) for p in probs],
        LABEL_COLUMN: [None if p is None else label_for(p, threshold) for p in probs],
        THRESHOLD_COLUMN: [None if p is None else float(threshold) for p in probs],
        ERROR_COLUMN: [errors.get(row) for row in range(n_rows)],
    }, dtype=object)


class CheXNetPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts[CONFIG_ARTIFACT]) as handle:
            self.config = json.load(handle)
        self.image_size = int(self.config["image_size"])
        # Fitted on validation by the training run; older versions have neither.
        self.temperature = float(self.config.get(TEMPERATURE_KEY, TEMPERATURE))
        self.threshold = float(self.config.get(THRESHOLD_KEY, THRESHOLD))
        self.net = CheXNet()
        state = torch.load(context.artifacts[WEIGHTS_ARTIFACT], map_location="cpu",
                           weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if IMAGE_COLUMN not in model_input:
            raise ServingError(f"expected a column '{IMAGE_COLUMN}' of base64-encoded image "
                               "files", error_code=INVALID_PARAMETER_VALUE)
        if len(model_input) == 0:
            raise ServingError(f"the request has no rows: send one row per image in the column "
                               f"'{IMAGE_COLUMN}'", error_code=INVALID_PARAMETER_VALUE)
        images, errors = {}, {}
        for row, value in enumerate(model_input[IMAGE_COLUMN]):
            try:
                images[row] = decode_row(value, self.image_size)
            except ValueError as exc:
                errors[row] = str(exc)
        if not images:
            raise refusal(errors, len(model_input))
        if errors:
            log.warning("%d of %d rows unreadable: %s", len(errors), len(model_input),
                        "; ".join(f"row {r}: {c}" for r, c in list(errors.items())[:ROWS_NAMED]))
        probabilities = dict(zip(images, self._probabilities(images), strict=True))
        return response(len(model_input), probabilities, errors, self.threshold)

    def _probabilities(self, images: dict[int, np.ndarray]) -> np.ndarray:
        try:
            return pneumonia_probabilities(self.net, np.stack(list(images.values())),
                                           self.temperature)
        except Exception as exc:  # a bug or no memory: the client gets a 500 without our traceback
            log.exception("the model failed on %d readable images", len(images))
            raise ServingError("the model failed on readable images; the server's log has the "
                               "details", error_code=INTERNAL_ERROR) from exc
