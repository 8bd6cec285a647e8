"""A registered GAN generator as an MLflow pyfunc model (models from code, no pickle).

Request: one row per draw, columns `n` (how many images), `seed`, and `label` (`NORMAL` or
`PNEUMONIA`; the CGAN needs it, the DCGAN ignores it). Response: one row per image with
`row` (the request row), `index` and `image` (a base64-encoded 8-bit grayscale PNG).
"""

from __future__ import annotations

import base64
import io
import json

import mlflow.pyfunc
import pandas as pd
import torch
from PIL import Image

from pneumonia_aug.models.gan import NORMAL, PNEUMONIA, build_gan
from pneumonia_aug.models.sampling import generate_images

LABELS = {"NORMAL": NORMAL, "PNEUMONIA": PNEUMONIA}
WEIGHTS_ARTIFACT = "weights"
CONFIG_ARTIFACT = "config"


def png_base64(image) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image, "L").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class GeneratorPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts[CONFIG_ARTIFACT]) as handle:
            self.config = json.load(handle)
        self.generator, _ = build_gan(self.config["model"], int(self.config["image_size"]),
                                      int(self.config["latent_dim"]))
        state = torch.load(context.artifacts[WEIGHTS_ARTIFACT], map_location="cpu",
                           weights_only=True)
        self.generator.load_state_dict(state)
        self.generator.eval()

    def generate(self, n: int, seed: int, label: str = "NORMAL"):
        if label not in LABELS:
            raise ValueError(f"label must be one of {sorted(LABELS)}, not {label!r}")
        return generate_images(self.generator, int(n), int(seed), LABELS[label])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rows = []
        for row, request in enumerate(model_input.to_dict("records")):
            label = request.get("label") or "NORMAL"
            for index, image in enumerate(self.generate(request["n"], request["seed"], label)):
                rows.append({"row": row, "index": index, "image": png_base64(image)})
        return pd.DataFrame(rows, columns=["row", "index", "image"])
