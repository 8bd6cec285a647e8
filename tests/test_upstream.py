"""What a run may take from upstream: generated images only from a GAN that learned from the
classifier's own training split."""

import mlflow
import pytest

from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.contract import Gan
from pneumonia_aug.errors import SyntheticDataMissingError
from pneumonia_aug.stages.synthetic import find_synthetic_run


def _gan_and_generate(params: dict) -> str:
    with mlflow.start_run() as gan:
        mlflow.set_tags({"stage": "train_gan", "gan": "DCGAN"})
        mlflow.log_params(params)
    with mlflow.start_run() as generate:
        mlflow.set_tags({"stage": "generate", "gan": "DCGAN",
                         "train_gan_run_id": gan.info.run_id})
    return generate.info.run_id


def test_a_mismatched_generate_run_is_refused_naming_both(tracking_uri):
    experiment = mlflow.set_experiment("up").experiment_id
    good = _gan_and_generate({"split_seed": 0, "image_size": 32, "real_fraction": 1.0})
    cfg = ClassifierConfig(setting="DCGAN-1.0-0.6", image_size=32)
    assert find_synthetic_run(Gan.DCGAN, "", experiment, cfg) == good
    other_split = _gan_and_generate({"split_seed": 1, "image_size": 32})
    with pytest.raises(SyntheticDataMissingError,
                       match=r"split_seed 1 \(GAN run \w+\) vs 0 \(this run\)"):
        find_synthetic_run(Gan.DCGAN, other_split, experiment, cfg)
    other_size = _gan_and_generate({"split_seed": 0, "image_size": 64})
    with pytest.raises(SyntheticDataMissingError, match=r"image_size 64 .* vs 32"):
        find_synthetic_run(Gan.DCGAN, other_size, experiment, cfg)
    # The sound r < 1 variant needs a GAN that learned from the setting's subset only.
    fixed = ClassifierConfig(setting="DCGAN-0.3-0.6", image_size=32, real_subset="fixed")
    with pytest.raises(SyntheticDataMissingError, match=r"real_fraction 1.0 .* vs 0.3"):
        find_synthetic_run(Gan.DCGAN, good, experiment, fixed)
    subset = _gan_and_generate({"split_seed": 0, "image_size": 32, "real_fraction": 0.3,
                                "real_fraction_scope": "normal"})
    assert find_synthetic_run(Gan.DCGAN, subset, experiment, fixed) == subset
    # ... and the authors' variant a GAN that learned from all of them.
    with pytest.raises(SyntheticDataMissingError, match=r"real_fraction 0.3 .* vs 1.0"):
        find_synthetic_run(Gan.DCGAN, subset, experiment, cfg)
