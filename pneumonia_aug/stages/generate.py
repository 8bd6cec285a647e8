"""The `generate` stage: draw NORMAL images from a registered generator into a run.

Writes `n_images` 8-bit grayscale PNGs (the CGAN with the NORMAL label) as the artifact
folder `generated/` (the contract with `train_classifier`), logs them as the dataset input
`generated` with a digest, and a sample grid `samples/grid.png` (the paper's Figures 4-5). The
generator's URI is a param (as resolved); the tags name its version and its GAN run. The run
is named for the GAN and the seed (`gen DC s0`); its description says how many images it drew.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

import pandas as pd
from PIL import Image

from pneumonia_aug import tracking
from pneumonia_aug.config import GenerateConfig
from pneumonia_aug.contract import (
    GENERATE,
    GENERATED_DIR,
    TAG_GAN,
    TAG_GENERATOR_VERSION,
    TAG_SEED,
    TAG_TRAIN_GAN_RUN,
    Gan,
    generate_run_name,
    newest_generator_uri,
)
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.sampling import fixed_noise
from pneumonia_aug.stages import describe
from pneumonia_aug.stages.tags import stage_tags
from pneumonia_aug.training.distributed import pick_device
from pneumonia_aug.training.gan import sample_grid

log = logging.getLogger(__name__)


def _write_pngs(images, folder: Path, gan: Gan) -> pd.DataFrame:
    folder.mkdir(parents=True)
    rows = []
    for i, image in enumerate(images):
        path = folder / f"{gan.value}_{i:05d}.png"
        Image.fromarray(image, "L").save(path)
        rows.append({"path": str(path), "relpath": path.name, "split": "generated",
                     "label": "NORMAL", "patient_id": f"{gan.display}-{path.stem}",
                     "subtype": "", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                     "origin": gan.display})
    return pd.DataFrame(rows)


def _check_gan(uri: str, source_run: str, trained: str | None, gan: Gan) -> None:
    """Refuse a generator of the other GAN (its images would be labelled as this one's):
    `trained`, the GAN its source run trained."""
    if trained and trained != gan.display:
        raise PneumoniaAugError(
            f"{uri} is a {trained} generator (run {source_run}), not a {gan.display}: pass "
            f"model={Gan.parse(trained).value}, or the URI of a {gan.display} generator")


def run_generate(cfg: GenerateConfig, run_id: str = "", parent_run_id: str = "") -> str:
    """Generate `cfg.n_images` NORMAL images as an MLflow run (a new one nested under
    `parent_run_id` when given, or the claimed `run_id`); return its run id."""
    gan = cfg.gan
    uri = cfg.model_uri or newest_generator_uri(gan)
    version, source_run = tracking.model_version_of(uri)  # before the run: a user error
    source = tracking.run_info(source_run) if source_run else None
    _check_gan(uri, source_run, source.data.tags.get(TAG_GAN) if source else None, gan)
    tags = stage_tags(GENERATE, **{TAG_GAN: gan.display, TAG_SEED: cfg.seed,
                                   TAG_GENERATOR_VERSION: version, TAG_TRAIN_GAN_RUN: source_run})
    real_fraction = source.data.params.get("real_fraction", 1.0) if source else 1.0
    name = generate_run_name(gan, float(real_fraction), cfg.seed)
    with tracking.start_run(cfg.experiment_name, run_name=name, tags=tags, run_id=run_id,
                            parent_run_id=parent_run_id) as run:
        tracking.log_params(cfg.to_dict() | {"model_uri": uri})
        generator = tracking.load_python_model(uri)
        generator.generator.to(pick_device(cfg.device))
        log.info("drawing %d NORMAL images from %s (version %s)", cfg.n_images, uri, version)
        images = generator.generate(cfg.n_images, cfg.seed, "NORMAL")
        with tempfile.TemporaryDirectory() as tmp:
            manifest = _write_pngs(images, Path(tmp) / GENERATED_DIR, gan)
            tracking.log_artifacts(Path(tmp) / GENERATED_DIR, GENERATED_DIR)
            tracking.log_manifest(manifest, "generated",
                                  source=tracking.artifact_uri(GENERATED_DIR))
        grid_labels = 0 if gan is Gan.CGAN else None
        grid = sample_grid(generator.generator,
                           fixed_noise(64, generator.generator.latent_dim, cfg.seed), grid_labels)
        tracking.log_image(grid, "samples/grid.png")
        tracking.describe_run(run.info.run_id, describe.generate_run(
            cfg, uri, version, source_run, len(manifest)))
        return run.info.run_id
