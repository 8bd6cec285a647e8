"""The names stages share."""

import pytest

from pneumonia_aug.contract import Gan, generator_model_name, newest_generator_uri, run_name


@pytest.mark.parametrize("text", ["dcgan", "DCGAN", "DcGaN", Gan.DCGAN])
def test_gan_parses_any_spelling_and_itself(text):
    assert Gan.parse(text) is Gan.DCGAN
    assert Gan.parse(text).display == "DCGAN" and Gan.parse(text).value == "dcgan"


def test_unknown_gan_names_the_choices():
    with pytest.raises(ValueError, match=r"model must be one of \['dcgan', 'cgan'\], not 'gan'"):
        Gan.parse("gan")


def test_registered_names():
    assert generator_model_name(Gan.CGAN) == generator_model_name("CGAN") == \
        "pneumonia-cgan-generator"
    assert newest_generator_uri("dcgan") == "models:/pneumonia-dcgan-generator@newest"


def test_ui_links_open_the_model_training_view():
    """MLflow 3.17's UI routes by the address's hash and reads `workflowType` from the query
    inside it; without it an experiment opens in the GenAI view."""
    from pneumonia_aug import tracking

    assert tracking.run_page("3", "abc") == \
        "#/experiments/3/runs/abc?workflowType=machine_learning"
    assert tracking.model_version_page("pneumonia-chexnet", "2") == \
        "#/models/pneumonia-chexnet/versions/2?workflowType=machine_learning"


def test_run_names_start_with_the_seed():
    assert run_name(2, "DCGAN-1.0-0.6") == "s2 DCGAN-1.0-0.6"
