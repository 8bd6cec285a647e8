"""What a registered model ships: the few package files its code needs, installable pins, a
name, params and descriptions; and that it loads from that code alone, in a fresh Python that
cannot import the project."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import sysconfig
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from scipy.special import expit, logit

from conftest import xray_like
from pneumonia_aug import tracking
from pneumonia_aug.config import ClassifierConfig, GANConfig
from pneumonia_aug.contract import Gan
from pneumonia_aug.models.chexnet import CheXNet
from pneumonia_aug.models.gan import build_gan
from pneumonia_aug.serving import packaging
from pneumonia_aug.serving.pyfunc import CONFIG_ARTIFACT, WEIGHTS_ARTIFACT, CheXNetPyfunc

SERVING = packaging.PACKAGE_DIR / "serving"


def test_the_registered_description_names_every_column_the_model_answers():
    columns = [c[1] for c in packaging.CLASSIFIER_OUTPUTS]
    # what serving/pyfunc.py answers
    assert columns == ["probability", "label", "threshold", "error"]
    output = packaging.CLASSIFIER_ABOUT.split("- **Output:**", 1)[1].split("\n- ", 1)[0]
    assert all(f"`{column}`" in output for column in columns)


def test_a_model_ships_only_the_code_it_needs():
    chexnet = [str(p) for p in packaging.model_code(SERVING / "mlflow_chexnet.py")]
    assert chexnet == ["__init__.py", "contract.py", "data/__init__.py", "data/images.py",
                       "errors.py", "models/__init__.py", "models/chexnet.py",
                       "serving/__init__.py", "serving/pyfunc.py"]
    generator = [str(p) for p in packaging.model_code(SERVING / "mlflow_generator.py")]
    assert generator == ["__init__.py", "contract.py", "models/__init__.py", "models/gan.py",
                         "models/sampling.py", "models/sizes.py", "serving/__init__.py",
                         "serving/generator_pyfunc.py"]
    for entry, extra in (("mlflow_chexnet.py", {"torchvision"}), ("mlflow_generator.py", set())):
        pins = packaging.model_requirements(SERVING / entry)
        names = {p.split("==")[0] for p in pins}
        assert names == {"mlflow", "numpy", "pandas", "pillow", "torch"} | extra, pins
        assert all("+" not in p for p in pins), pins  # no +cu130: installable from PyPI
    # What both models ship: loaded in one process, the first one's package serves the next.
    assert [str(p) for p in packaging.served_code()] == sorted(set(chexnet) | set(generator))


# Run with `python -S` and only site-packages on the path: no .pth files, so the editable
# install of the project is invisible, and nothing but the model's own code can provide it.
def test_the_served_model_applies_its_temperature_and_threshold(tmp_path):
    """A version divides its logits by its temperature and calls PNEUMONIA at its threshold;
    one saved without them (before calibration existed) answers at T = 1 and 0.5."""
    torch.manual_seed(0)
    torch.save(CheXNet().state_dict(), tmp_path / "weights.pt")
    xray_like(0, 48, "PNEUMONIA").save(tmp_path / "x.png")
    request = pd.DataFrame({"image": [base64.b64encode((tmp_path / "x.png").read_bytes())
                                      .decode()]})
    answers = {}
    for name, extra in (("old", {}), ("new", {"temperature": 4.0, "threshold": 0.3})):
        (tmp_path / f"{name}.json").write_text(json.dumps({"image_size": 32} | extra))
        model = CheXNetPyfunc()
        model.load_context(SimpleNamespace(artifacts={
            WEIGHTS_ARTIFACT: str(tmp_path / "weights.pt"),
            CONFIG_ARTIFACT: str(tmp_path / f"{name}.json")}))
        answers[name] = model.predict(None, request).iloc[0]
    old, new = answers["old"], answers["new"]
    assert old["threshold"] == 0.5 and new["threshold"] == 0.3
    assert new["probability"] == pytest.approx(expit(logit(old["probability"]) / 4), abs=1e-6)
    for row in (old, new):
        assert row["label"] == ("PNEUMONIA" if row["probability"] >= row["threshold"]
                                else "NORMAL")
    assert np.isfinite([old["probability"], new["probability"]]).all()


LOADER = """
import base64, json, sys
import mlflow, pandas as pd
try:
    import pneumonia_aug
    before = pneumonia_aug.__file__
except ImportError:
    before = None
classifier = mlflow.pyfunc.load_model(sys.argv[1])
image = base64.b64encode(open(sys.argv[3], "rb").read()).decode()
out = classifier.predict(pd.DataFrame({"image": [image]}))
generator = mlflow.pyfunc.load_model(sys.argv[2])
drawn = generator.predict(pd.DataFrame({"n": [3], "seed": [1], "label": ["NORMAL"]}))
print(json.dumps({"before": before, "label": out["label"][0], "drawn": len(drawn),
                  "threshold": out["threshold"][0],
                  "modules": {k: m.__file__ for k, m in sys.modules.items()
                              if k.startswith("pneumonia_aug")}}))
"""


@pytest.mark.slow
def test_models_load_from_their_shipped_code_alone(tracking_uri, tmp_path):
    examples = []
    for label in ("NORMAL", "PNEUMONIA"):
        examples.append(tmp_path / f"{label}.png")
        xray_like(len(examples), 48, label).save(examples[-1])
    cfg = ClassifierConfig(setting="DCGAN-1.0-0.6", seed=2, image_size=32)
    gan_cfg = GANConfig(model="cgan", image_size=32, seed=1)
    with tracking.start_run("packaging", run_name="models"):
        classifier = packaging.log_classifier_model(CheXNet().state_dict(), cfg.to_dict(),
                                                    examples, description="A test model.",
                                                    temperature=1.5, threshold=0.25)
        generator, _ = build_gan("cgan", 32)
        drawer = packaging.log_generator_model(Gan.CGAN, generator.state_dict(),
                                               gan_cfg.to_dict())

    client = MlflowClient()
    logged = client.get_logged_model(classifier.model_id)
    assert logged.name == "chexnet-DCGAN-1_0-0_6-s2"
    assert logged.params["setting"] == "DCGAN-1.0-0.6" and logged.params["image_size"] == "32"
    assert logged.tags["mlflow.note.content"] == "A test model."
    version = client.get_model_version("pneumonia-chexnet", classifier.registered_model_version)
    assert "mlflow.note.content" not in version.tags  # the version has its own description
    assert client.get_logged_model(drawer.model_id).name == "cgan-generator-s1"
    about = client.get_registered_model("pneumonia-chexnet").description
    assert "**Input:**" in about and "**Output:**" in about and "load_model" in about
    assert "PNEUMONIA" in client.get_registered_model("pneumonia-cgan-generator").description

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)),
           "PYTHONPATH": sysconfig.get_paths()["purelib"], "MLFLOW_TRACKING_URI": tracking_uri,
           "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    uris = [f"models:/pneumonia-chexnet/{classifier.registered_model_version}",
            f"models:/pneumonia-cgan-generator/{drawer.registered_model_version}"]
    proc = subprocess.run([sys.executable, "-S", "-c", LOADER, *uris, str(examples[1])],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["before"] is None  # the project itself is not importable there
    assert seen["label"] in ("NORMAL", "PNEUMONIA") and seen["drawn"] == 3
    assert seen["threshold"] == 0.25  # the version's, kept in its config file
    assert all("/code/pneumonia_aug/" in path for path in seen["modules"].values()), seen
    assert "pneumonia_aug.models.sampling" in seen["modules"]
    assert not any(name.startswith(("pneumonia_aug.training", "pneumonia_aug.stages",
                                    "pneumonia_aug.tracking."))
                   or name == "pneumonia_aug.tracking" for name in seen["modules"])
