"""Find the generated images a GAN setting adds: a `generate` run's PNGs.

`synthetic_run_id` names the run; when empty, the newest finished generate run of that GAN
in the experiment is used. The run id is recorded as the tag `synthetic_run_id`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from pneumonia_aug import tracking
from pneumonia_aug.data.cache import default_cache_dir
from pneumonia_aug.data.dataset import index_generated
from pneumonia_aug.errors import SyntheticDataMissingError

GENERATE_STAGE = "generate"


def resolve_synthetic(
    gan: str, synthetic_run_id: str, experiment_id: str, cache_dir: str = ""
) -> pd.DataFrame:
    """Index of the generated images of `gan`, downloaded from its generate run."""
    how_to = (f"train and sample the {gan} first: `mlflow run . -e train_gan -P model="
              f"{gan.lower()}` then `mlflow run . -e generate -P model={gan.lower()}` "
              "(same experiment), or pass synthetic_run_id=<a generate run id>")
    run_id = synthetic_run_id or tracking.latest_finished_run(
        experiment_id, {"stage": GENERATE_STAGE, "gan": gan})
    if not run_id:
        raise SyntheticDataMissingError(
            f"a {gan} setting needs generated images, but experiment {experiment_id} has no "
            f"finished `generate` run for the {gan}: {how_to}")
    try:
        tags = tracking.run_tags(run_id)
    except MlflowException as exc:
        raise SyntheticDataMissingError(f"synthetic_run_id {run_id} not found: {how_to}") from exc
    if tags.get("stage") != GENERATE_STAGE or tags.get("gan") != gan:
        raise SyntheticDataMissingError(
            f"run {run_id} is not a generate run of the {gan} (stage={tags.get('stage')}, "
            f"gan={tags.get('gan')}): {how_to}")
    local = Path(cache_dir or default_cache_dir()) / "runs" / run_id / tracking.GENERATED_DIR
    if not local.is_dir():
        # Download beside the target, then rename: an interrupted download is never reused.
        local.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=local.parent) as tmp:
            tracking.download_artifacts(run_id, tracking.GENERATED_DIR, tmp)
            os.replace(Path(tmp) / tracking.GENERATED_DIR, local)
    tracking.set_tags({"synthetic_run_id": run_id})
    return index_generated(local, gan)
