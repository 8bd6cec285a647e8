"""Find the generated images a GAN setting adds: a `generate` run's PNGs.

`synthetic_run_id` names the run; when empty, the newest finished generate run of that GAN
in the experiment is used. `find_synthetic_run` checks it before the classifier's run opens
(a user error leaves no run behind); `fetch_synthetic` downloads its images once into the
cache. The run id is recorded as the tag `synthetic_run_id`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.config import PER_SEED, ClassifierConfig
from pneumonia_aug.contract import (
    GENERATE,
    GENERATED_DIR,
    TAG_GAN,
    TAG_SEED,
    TAG_STAGE,
    TAG_TRAIN_GAN_RUN,
    Gan,
)
from pneumonia_aug.data.cache import default_cache_dir
from pneumonia_aug.data.dataset import index_generated
from pneumonia_aug.errors import SyntheticDataMissingError, TrackingError


def find_synthetic_run(gan: Gan, synthetic_run_id: str, experiment_id: str | None,
                       classifier: ClassifierConfig) -> str:
    """The generate run whose images a `gan` setting adds; a clear error when there is none, or
    when its GAN learned from other images than the classifier's training split allows."""
    how_to = (f"train and sample the {gan.display} first: `mlflow run . -e train_gan -P model="
              f"{gan.value}` then `mlflow run . -e generate -P model={gan.value}` "
              "(same experiment), or pass synthetic_run_id=<a generate run id>")
    run_id = synthetic_run_id or (experiment_id and tracking.latest_finished_run(
        experiment_id, {TAG_STAGE: GENERATE, TAG_GAN: gan.display}))
    if not run_id:
        raise SyntheticDataMissingError(
            f"a {gan.display} setting needs generated images, but the experiment has no "
            f"finished `generate` run for the {gan.display}: {how_to}")
    try:
        tags = tracking.run_tags(run_id)
    except TrackingError as exc:
        raise SyntheticDataMissingError(f"synthetic_run_id {run_id} not found: {how_to}") from exc
    if tags.get(TAG_STAGE) != GENERATE or tags.get(TAG_GAN) != gan.display:
        raise SyntheticDataMissingError(
            f"run {run_id} is not a generate run of the {gan.display} (stage="
            f"{tags.get(TAG_STAGE)}, gan={tags.get(TAG_GAN)}): {how_to}")
    _check_upstream(run_id, tags.get(TAG_TRAIN_GAN_RUN, ""), classifier)
    if classifier.gan_seeds == PER_SEED:
        _check_per_seed(run_id, tags, classifier.seed)
    return run_id


def _check_per_seed(generate_run: str, tags: dict, seed: int) -> None:
    """In the per-seed design a run's images come from a GAN trained, and drawn, with its seed."""
    gan_run = tags.get(TAG_TRAIN_GAN_RUN, "")
    gan_seed = tracking.run_info(gan_run).data.params.get("seed") if gan_run else None
    drawn = tags.get(TAG_SEED)
    if str(drawn) != str(seed) or gan_seed is None or int(float(gan_seed)) != seed:
        raise SyntheticDataMissingError(
            f"gan_seeds=per-seed: seed {seed} must draw from a GAN trained with seed {seed} and "
            f"images drawn with seed {seed}, but generate run {generate_run} drew with seed "
            f"{drawn} from a GAN trained with seed {gan_seed}: pass the generate run of seed "
            f"{seed}, or gan_seeds=shared")


def _check_upstream(generate_run: str, gan_run: str, classifier: ClassifierConfig) -> None:
    """Refuse generated images whose GAN used another validation split (its training images
    would sit in the classifier's validation set), another image size (32 px images upsampled
    into a 256 px run), or another real subset: all real images (real_fraction 1) for the
    authors' `real_subset=per_seed`, the setting's fixed subset for `real_subset=fixed`."""
    if not gan_run:
        return
    gan = tracking.run_info(gan_run).data.params
    r = classifier.parsed_setting.real_fraction
    fixed = classifier.real_subset == "fixed"
    wanted = {"split_seed": classifier.split_seed, "image_size": classifier.image_size,
              "real_fraction": r if fixed else 1.0}
    if fixed:
        wanted["real_fraction_scope"] = classifier.real_fraction_scope
    differ = [f"{k} {gan.get(k, 'unset (1.0)' if k == 'real_fraction' else 'unset')} (GAN run "
              f"{gan_run}) vs {v} (this run)" for k, v in wanted.items()
              if tracking.normalize_param(gan.get(k, 1.0 if k == "real_fraction" else ""))
              != tracking.normalize_param(v)]
    if differ:
        raise SyntheticDataMissingError(
            f"generate run {generate_run} drew from a GAN trained differently: "
            f"{'; '.join(differ)}. Train and sample a GAN with the same values, or pass "
            "synthetic_run_id of a matching generate run")


def fetch_synthetic(run_id: str, gan: Gan, cache_dir: str = "") -> pd.DataFrame:
    """Index of the generated images of the generate run `run_id`, downloaded once."""
    local = Path(cache_dir or default_cache_dir()) / "runs" / run_id / GENERATED_DIR
    if not local.is_dir():
        # Download beside the target, then rename: an interrupted download is never reused.
        local.parent.mkdir(parents=True, exist_ok=True)
        # Stages running side by side may download the same images at once: the first rename
        # wins, and the others, finding the folder there, use it.
        with tempfile.TemporaryDirectory(dir=local.parent) as tmp:
            tracking.download_artifacts(run_id, GENERATED_DIR, tmp)
            try:
                os.replace(Path(tmp) / GENERATED_DIR, local)
            except OSError:
                if not local.is_dir():
                    raise
    return index_generated(local, gan.display)
