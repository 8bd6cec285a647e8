"""A classifier alias no version holds (no `@champion` after a debug-capped study): `predict`,
`bench serve` and `train-gan`'s feature network say so in one line, list the versions there
are and name the URI to use, before any run opens. Against a real local tracking store."""

from __future__ import annotations

import logging

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from pneumonia_aug.bench.serve import run_serve_bench
from pneumonia_aug.cli import main
from pneumonia_aug.config import QualityConfig
from pneumonia_aug.errors import ModelVersionError
from pneumonia_aug.serving import registry
from pneumonia_aug.stages.gan_quality import measure

CHAMPION_URI = "models:/pneumonia-chexnet@champion"


def register(n: int) -> None:
    """`n` versions of `pneumonia-chexnet`, tagged as a 32 px debug-capped study tags them."""
    client = MlflowClient()
    client.create_registered_model("pneumonia-chexnet")
    for i in range(1, n + 1):
        client.create_model_version("pneumonia-chexnet", source=f"file:///nowhere/{i}", tags={
            "setting": f"DCGAN-1.0-0.{i}", "seed": "0", "image_size": "32",
            "max_images_per_split": "32", "test_accuracy": str(0.5 + i / 100),
            "best_val_loss": "0.7"})


def predict(tmp_path) -> str:
    image = tmp_path / "x.png"
    image.write_bytes(b"never read")
    result = CliRunner().invoke(main, ["predict", "--output-dir", str(tmp_path / "out"),
                                       str(image)])
    assert result.exit_code == 2, result.output
    return result.output


def test_no_champion_lists_the_versions_and_the_uri_to_use(tracking_uri, tmp_path):
    register(7)
    output = predict(tmp_path)
    assert len(output.strip().splitlines()) == 1  # one line, no traceback
    assert "no version of pneumonia-chexnet is @champion" in output
    assert "full data" in output
    listed = output.split("newest first: ", 1)[1]
    assert listed.startswith("v7 (DCGAN-1.0-0.7 s0, 32 px, test accuracy 0.570); v6 ")
    assert "v3 (" in listed and "v2 (" not in listed and "; and 2 more." in listed
    assert output.strip().endswith("Use --model models:/pneumonia-chexnet/7")
    assert mlflow.search_runs(search_all_experiments=True).empty  # no run was opened
    assert not (tmp_path / "out").exists()


def test_no_classifier_at_all_says_to_train_one(tracking_uri, tmp_path):
    output = predict(tmp_path)
    assert "no classifier is registered yet" in output
    assert "pneumonia-aug train-classifier --data-dir DIR" in output


def test_an_alias_that_exists_and_other_uris_pass(tracking_uri):
    register(2)
    MlflowClient().set_registered_model_alias("pneumonia-chexnet", "champion", "1")
    registry.check_alias(CHAMPION_URI)
    registry.check_alias("models:/pneumonia-chexnet/2")
    registry.check_alias("models:/pneumonia-dcgan-generator@newest")  # not the classifier's
    with pytest.raises(ModelVersionError, match=r"is @best\. .* v2 .*; v1 "):
        registry.check_alias("models:/pneumonia-chexnet@best")


def test_bench_serve_and_the_gan_feature_network_say_the_same(tracking_uri, caplog):
    register(1)
    with pytest.raises(ModelVersionError, match="Use --model models:/pneumonia-chexnet/1$"):
        run_serve_bench(CHAMPION_URI, output=None)
    gan_run = MlflowClient().create_run(
        MlflowClient().create_experiment("gans"), tags={"stage": "train_gan"}).info.run_id
    with caplog.at_level(logging.WARNING):
        measure(QualityConfig(gan_run_id=gan_run, feature_model_uri=CHAMPION_URI))
    reason = MlflowClient().get_run(gan_run).data.tags["quality_skipped"]
    for said in (caplog.text, reason):
        assert "GAN quality not measured: no version of pneumonia-chexnet is @champion" in said
        assert "Use --feature-model-uri models:/pneumonia-chexnet/1" in said


class _Weighted(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["weights"], "rb") as f:
            self.weights = f.read()

    def predict(self, context, model_input):
        return model_input


def test_a_version_whose_weights_stayed_behind_fails_in_one_line(tracking_uri, tmp_path):
    """A store brought back from an offline GPU machine holds every version but no weights:
    loading one says which file is missing and why, instead of a traceback."""
    from pneumonia_aug import tracking
    from pneumonia_aug.errors import TrackingError

    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"w")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="m", python_model=_Weighted(),
                                       artifacts={"weights": str(weights)},
                                       registered_model_name="left-behind")
    tracking.load_python_model("models:/left-behind/1")  # whole, it loads
    (stored,) = (tmp_path / "mlruns").rglob("weights.pt")
    stored.unlink()
    with pytest.raises(TrackingError, match="weights.pt is missing from the artifact store"):
        tracking.load_python_model("models:/left-behind/1")
    assert info.registered_model_version == 1
