"""GAN quality measured after the GAN trained (`stages.gan_quality`), in process on a generated
Kermany tree: the images a GAN run kept, measured into that run at their epochs' steps, once
per feature network; nothing measured in a network below the floors, and the run says why."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import make_kermany, new_store, use_store
from pneumonia_aug.config import ClassifierConfig, GANConfig, QualityConfig
from pneumonia_aug.contract import TAG_FID_FEATURE_MODEL_URI, TAG_QUALITY_SKIPPED
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.stages.gan_quality import measure
from pneumonia_aug.stages.tags import quality_settled
from pneumonia_aug.stages.train_classifier import run_train_classifier
from pneumonia_aug.stages.train_gan import run_train_gan

FEATURES = "models:/pneumonia-chexnet/1"


@pytest.fixture(scope="module")
def features(tmp_path_factory, store_template) -> dict:
    """A store holding a 32 px classifier (version 1: the feature network), and the tree it
    trained on."""
    root = tmp_path_factory.mktemp("gan_quality")
    data = make_kermany(root / "chest_xray")
    uri = new_store(store_template, root)
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, uri, root)
        run_train_classifier(ClassifierConfig(image_size=32, epochs=1, batch_size=4,
                                              data_dir=str(data)))
    mlflow.set_tracking_uri(None)
    return {"uri": uri, "root": root, "data": data}


@pytest.fixture
def gan_and_features(features, monkeypatch):
    """A DCGAN run, in the feature network's store, that kept its images at epochs 1 and 2,
    measured in nothing yet."""
    use_store(monkeypatch, features["uri"], features["root"])
    yield run_train_gan(GANConfig(image_size=32, epochs=2, batch_size=8, sample_every=1,
                                  eval_images=8, data_dir=str(features["data"]),
                                  feature_model_uri=""))
    mlflow.set_tracking_uri(None)


def test_kept_images_are_measured_into_the_gan_run_once(gan_and_features):
    client, gan = MlflowClient(), gan_and_features
    tags = client.get_run(gan).data.tags
    assert not tags.get(TAG_FID_FEATURE_MODEL_URI) and not tags.get(TAG_QUALITY_SKIPPED)
    assert not quality_settled(gan, FEATURES)
    relaxed = QualityConfig(gan_run_id=gan, feature_model_uri=FEATURES,
                            min_feature_image_size=32, min_feature_auroc=0.0)
    assert measure(relaxed) == gan
    for key in ("quality/fid_xray", "quality/kid_xray", "quality/kid_xray_std"):
        assert [m.step for m in client.get_metric_history(gan, key)] == [1, 2], key
    run = client.get_run(gan)
    assert run.data.metrics["quality/nn_distance_median"] >= \
        run.data.metrics["quality/nn_distance_min"] >= 0
    assert (run.data.tags["fid_feature_model_uri"], run.data.tags["fid_feature_model_version"]) \
        == (FEATURES, "1")
    assert "quality/closest_pairs.png" in {a.path for a in client.list_artifacts(gan, "quality")}
    assert "measured in the features of `models:/pneumonia-chexnet/1`" in \
        run.data.tags["mlflow.note.content"]
    measure(relaxed)  # again in the same network: nothing new
    assert len(client.get_metric_history(gan, "quality/fid_xray")) == 2
    assert quality_settled(gan, FEATURES) and not quality_settled(gan, "models:/other/1")


def test_a_network_below_the_floors_measures_nothing_and_says_why(gan_and_features):
    client, gan = MlflowClient(), gan_and_features
    measure(QualityConfig(gan_run_id=gan, feature_model_uri=FEATURES))
    run = client.get_run(gan)
    reason = run.data.tags[TAG_QUALITY_SKIPPED]
    assert "saw 32 px images (floor 64 px)" in reason
    assert not [k for k in run.data.metrics if k.startswith("quality/")]
    assert reason in run.data.tags["mlflow.note.content"]
    # Settled for that network (a study launches nothing more for it); said once, not again.
    assert run.data.tags["quality_skipped_in"] == FEATURES and quality_settled(gan, FEATURES)
    measure(QualityConfig(gan_run_id=gan, feature_model_uri=FEATURES))
    assert client.get_run(gan).data.tags["mlflow.note.content"].count(reason) == 1
    measure(QualityConfig(gan_run_id=gan, feature_model_uri=FEATURES, min_feature_image_size=32,
                          min_feature_auroc=1.01))  # no network reaches it
    reason = client.get_run(gan).data.tags[TAG_QUALITY_SKIPPED]
    assert "validation AUROC" in reason and "(floor 1.01)" in reason and "px" not in reason
    assert not client.get_run(gan).data.tags.get(TAG_FID_FEATURE_MODEL_URI)
    with pytest.raises(PneumoniaAugError, match="not a train_gan run"):
        measure(QualityConfig(gan_run_id=client.get_model_version(
            "pneumonia-chexnet", "1").run_id, feature_model_uri=FEATURES))
