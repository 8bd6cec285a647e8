"""`predict`: pneumonia probability, label and a Grad-CAM overlay for each image.

Loads a registered classifier (`models:/pneumonia-chexnet@champion` by default; when no
version holds the alias it stops before loading, naming the versions there are). Every image
format the data layer reads works; an unreadable file gets a message and the rest still run.
Probability and label are the served model's: calibrated by the version's temperature, the
label at its threshold (`serving/pyfunc.py`).
The overlay is drawn on the original image at its own resolution (at most 1024 px on its long
side), captioned with the label and probability, with the heatmap's colour scale below it.
Where the map has no spatial resolution (a 32 px model) or no contrast, the figure shows the
image alone and its caption says why (`evaluation/gradcam.py`); a warning says so too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pneumonia_aug import tracking
from pneumonia_aug.data.images import ImageDecodeError, open_grayscale, stretch
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.evaluation.gradcam import gradcam, overlay
from pneumonia_aug.serving.pyfunc import label_for
from pneumonia_aug.serving.registry import check_alias

log = logging.getLogger(__name__)


HEADER = ("image", "probability", "label", "threshold", "heatmap")  # what `predict` prints


@dataclass
class Prediction:
    image: str
    probability: float | None  # calibrated by the version's temperature
    label: str | None
    heatmap: str | None
    error: str | None = None
    threshold: float | None = None  # the version's: the label is PNEUMONIA at or above it

    def row(self) -> str:
        """One tab-separated line under `HEADER` (the error in the probability's place)."""
        if self.error:
            return f"{self.image}\terror: {self.error}"
        return (f"{self.image}\t{self.probability:.4f}\t{self.label}\t{self.threshold:.4f}\t"
                f"{self.heatmap}")


def predict_images(model_uri: str, images: list[str], output_dir: str | Path) -> list[Prediction]:
    if not images:
        raise PneumoniaAugError("give at least one image file to predict")
    check_alias(model_uri)
    model = tracking.load_python_model(model_uri)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in images:
        try:
            picture = open_grayscale(path)
        except (ImageDecodeError, OSError) as exc:
            log.error("%s: cannot read this image (%s); skipping it", path, exc)
            results.append(Prediction(path, None, None, None, str(exc)))
            continue
        # The model sees the image as it was trained: stretched to its working size.
        cam = gradcam(model.net, stretch(picture, model.image_size), model.temperature)
        label = label_for(cam.probability, model.threshold)
        caption = f"{label}   P(pneumonia) = {cam.probability:.3f}"
        if cam.reason:
            log.warning("%s: %s", path, cam.reason)
            caption += f"\n{cam.reason}"
        target = out / f"{Path(path).stem}_gradcam.png"
        overlay(picture, cam.heatmap, caption).save(target)
        results.append(Prediction(path, cam.probability, label, str(target),
                                  threshold=model.threshold))
    return results
