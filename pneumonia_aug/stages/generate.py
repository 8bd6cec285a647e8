"""The `generate` stage: draw NORMAL images from a registered generator into a run.

Writes `n_images` 8-bit grayscale PNGs (the CGAN with the NORMAL label) as the artifact
folder `generated/` (the contract with `train_classifier`), logs them as the dataset input
`generated` with a digest, and a sample grid `samples/grid.png` (the paper's Figures 4-5).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

import pandas as pd
from PIL import Image

from pneumonia_aug import tracking
from pneumonia_aug.config import EXPERIMENT_NAME
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.gan import GAN_MODELS
from pneumonia_aug.stages.synthetic import GENERATE_STAGE
from pneumonia_aug.training.gan import fixed_noise, sample_grid

log = logging.getLogger(__name__)
N_IMAGES = 4000  # the paper generates 4000 NORMAL images per GAN


def _write_pngs(images, folder: Path, gan: str) -> pd.DataFrame:
    folder.mkdir(parents=True)
    rows = []
    for i, image in enumerate(images):
        path = folder / f"{gan.lower()}_{i:05d}.png"
        Image.fromarray(image, "L").save(path)
        rows.append({"path": str(path), "relpath": path.name, "split": "generated",
                     "label": "NORMAL", "patient_id": f"{gan}-{path.stem}", "subtype": "",
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "origin": gan})
    return pd.DataFrame(rows)


def run_generate(model: str = "dcgan", model_uri: str = "", n_images: int = N_IMAGES,
                 seed: int = 0, experiment_name: str = EXPERIMENT_NAME) -> str:
    """Generate `n_images` NORMAL images as an MLflow run; return its run id."""
    model = model.lower()
    if model not in GAN_MODELS:
        raise PneumoniaAugError(f"model must be one of {GAN_MODELS}, not {model!r}")
    if n_images < 1:
        raise PneumoniaAugError(f"n_images must be at least 1, not {n_images}")
    gan = model.upper()
    uri = model_uri or f"models:/{tracking.generator_model_name(gan)}@{tracking.NEWEST}"
    version, source_run = tracking.model_version_of(uri)
    tags = {"stage": GENERATE_STAGE, "gan": gan, "seed": seed, "model_uri": uri,
            "generator_version": version, "train_gan_run_id": source_run,
            "git_commit": tracking.git_commit()}
    with tracking.start_run(experiment_name, run_name=f"{GENERATE_STAGE}-{model}-s{seed}",
                            tags=tags) as run:
        tracking.log_params({"model": model, "model_uri": uri, "n_images": n_images,
                             "seed": seed, "experiment_name": experiment_name})
        generator = tracking.load_python_model(uri)
        log.info("drawing %d NORMAL images from %s (version %s)", n_images, uri, version)
        images = generator.generate(n_images, seed, "NORMAL")
        with tempfile.TemporaryDirectory() as tmp:
            manifest = _write_pngs(images, Path(tmp) / tracking.GENERATED_DIR, gan)
            tracking.log_artifacts(Path(tmp) / tracking.GENERATED_DIR, tracking.GENERATED_DIR)
            tracking.log_manifest(manifest, "generated",
                                  source=tracking.artifact_uri(tracking.GENERATED_DIR))
        grid_labels = 0 if model == "cgan" else None
        grid = sample_grid(generator.generator,
                           fixed_noise(64, generator.generator.latent_dim, seed), grid_labels)
        tracking.log_image(grid, "samples/grid.png")
        tracking.log_metrics({"n_images": len(images)})
        return run.info.run_id
