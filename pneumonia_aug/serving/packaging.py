"""How the trained networks become registered MLflow models ("models from code").

Each model is logged as a pyfunc whose code is a readable file of this package
(`mlflow_chexnet.py`, `mlflow_generator.py`) and whose weights are a plain `state_dict`
loaded with `torch.load(weights_only=True)`, so loading one executes no pickle.

What a model ships: not the whole package, only the modules the served models' code files
import, directly or not (`served_code`: a dozen files, nothing of training or tracking). Both
models ship the same files: a Python process holds one `pneumonia_aug`, so the first model
loaded provides it to the next, which must find its code there too. A model's pip
requirements are the distributions its code imports, pinned to the installed versions without
local labels such as `+cu130`, so they install from PyPI (`model_requirements`). MLflow's own
inference cannot be used here: it lists `pneumonia-aug` itself (not on PyPI) and then drops
torch as one of its dependencies.

Each model is named for what it is (`chexnet-DCGAN-1_0-0_6-s0`, `dcgan-generator-s0`) and
carries the run's config as its params.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import torch
from packaging.version import Version

from pneumonia_aug import tracking
from pneumonia_aug.contract import (
    CLASSIFIER_MODEL,
    ERROR_COLUMN,
    LABEL_COLUMN,
    PROBABILITY_COLUMN,
    TEMPERATURE,
    TEMPERATURE_KEY,
    THRESHOLD,
    THRESHOLD_COLUMN,
    THRESHOLD_KEY,
    Gan,
    generator_model_name,
)
from pneumonia_aug.serving.pyfunc import (
    CONFIG_ARTIFACT,
    IMAGE_COLUMN,
    WEIGHTS_ARTIFACT,
    encode_image_file,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PACKAGE = PACKAGE_DIR.name
MODEL_ENTRIES = ("mlflow_chexnet.py", "mlflow_generator.py")  # the models-from-code files
CLASSIFIER_INPUTS = [("string", IMAGE_COLUMN)]
# Not required: a row that cannot be read has only an `error` (serving/pyfunc.py).
CLASSIFIER_OUTPUTS = [("double", PROBABILITY_COLUMN, False), ("string", LABEL_COLUMN, False),
                      ("double", THRESHOLD_COLUMN, False), ("string", ERROR_COLUMN, False)]
GENERATOR_INPUTS = [("long", "n"), ("long", "seed"), ("string", "label", False)]
GENERATOR_OUTPUTS = [("long", "row"), ("long", "index"), ("string", "image")]


def _imports(path: Path) -> set[str]:
    """Every absolute import of a source file (anywhere in it), `from a import b` as both
    `a` and `a.b` (b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _imported_modules(path: Path) -> set[str]:
    """The `pneumonia_aug...` modules a source file imports."""
    return {n for n in _imports(path) if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _module_file(name: str) -> Path | None:
    """The source file of a package module, or None for a name that is not a module (a
    class or constant imported with `from module import name`)."""
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE_DIR / relative / "__init__.py", PACKAGE_DIR / f"{relative}.py"):
        if candidate.is_file():
            return candidate
    return None


def model_code(entry: Path) -> list[Path]:
    """Every package file `entry` needs: the modules it imports, recursively, and the
    `__init__.py` of each package on their way (relative to the package folder)."""
    needed, todo = set(), [entry]
    while todo:
        for name in _imported_modules(todo.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # packages on the way, then the module
                path = _module_file(".".join(parts[:depth]))
                if path is not None and path not in needed:
                    needed.add(path)
                    todo.append(path)
    return sorted(p.relative_to(PACKAGE_DIR) for p in needed)


def model_requirements(entry: Path) -> list[str]:
    """`dist==version` for each distribution that `entry` and the package files it needs
    import (not the standard library, not this package), local version labels dropped."""
    tops = {name.split(".")[0] for path in [entry, *(PACKAGE_DIR / p for p in model_code(entry))]
            for name in _imports(path)} - set(sys.stdlib_module_names) - {PACKAGE}
    owners = tracking.distributions_by_module()
    dists = set()
    for top in tops:
        found = owners.get(top, [])
        # `mlflow` is provided by mlflow, mlflow-skinny and mlflow-tracing: take its namesake.
        dists.update([top] if top in found else found)
    return sorted(f"{d}=={Version(version(d)).public}" for d in dists)


def warm_up() -> None:
    """Do now what logging the first model in this process would: MLflow's distributions maps
    (module -> distributions, which the requirements read too, and the reverse, for its
    requirement check). The forkserver that stage processes fork from calls it, so each stage
    inherits both instead of building them."""
    tracking.distributions_by_module()
    tracking.warm_requirement_checks()


def served_code() -> list[Path]:
    """What every model ships: the files any of the models' code files needs."""
    return sorted({p for entry in MODEL_ENTRIES for p in model_code(PACKAGE_DIR / "serving"
                                                                      / entry)})


def _copy_code(folder: Path) -> Path:
    """A copy of the package holding only `served_code`; returns its root."""
    root = folder / PACKAGE
    for relative in served_code():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE_DIR / relative, root / relative)
    return root


CLASSIFIER_ABOUT = f"""CheXNet (DenseNet121, one sigmoid output) trained on a mix of real and \
GAN-generated pediatric chest X-rays (Kermany et al. 2018), reproducing Tung et al., "Better \
Pneumonia Diagnosis with GAN-enabling Data Augmentation".

- **Input:** a DataFrame with a column `image`: base64-encoded image files (JPEG, PNG, TIFF, \
16-bit, RGB... anything the project's data layer reads); each is made 8-bit grayscale and \
stretched to the version's `image_size`.
- **Output:** one row per image, four columns: `{PROBABILITY_COLUMN}` (of PNEUMONIA, \
calibrated: the logit divided by the version's temperature before the sigmoid), \
`{LABEL_COLUMN}` (`PNEUMONIA` at probability >= the version's threshold, else `NORMAL`), \
`{THRESHOLD_COLUMN}` (that threshold) and `{ERROR_COLUMN}` (empty, or why the image could not be \
read; the other three are then empty). Temperature and threshold were fitted on the validation \
split, the threshold by the run's `threshold_rule` (by default the highest specificity at \
sensitivity >= 0.95); versions saved without them answer at temperature 1 and 0.5.
- **Load:** `mlflow.pyfunc.load_model("models:/pneumonia-chexnet/<version>")` (or \
`@champion`: the full-data version that did as well as the champion before it on the same \
test set, see its tags `champion_decision` and `champion_reason`; a debug-capped study \
promotes none), then `.predict(frame)`; \
`mlflow models serve -m models:/pneumonia-chexnet@champion --env-manager local`. Models from \
code, weights a plain `state_dict`: loads with `MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`.

Each version's description names its setting, seed, image size, data digest and run, its test \
metrics, how to load it, and whether it became `@champion`."""

GENERATOR_ABOUT = """The {gan} generator of Tung et al., "Better Pneumonia Diagnosis with \
GAN-enabling Data Augmentation": draws {what} pediatric chest X-rays (8-bit grayscale).

- **Input:** a DataFrame with one row per draw: `n` (how many images), `seed`, `label` \
(`NORMAL` or `PNEUMONIA`; {label_note}).
- **Output:** one row per image: `row` (the request row), `index`, `image` (a base64 PNG).
- **Load:** `mlflow.pyfunc.load_model("models:/{name}@newest")` (the newest version) or \
`/<version>`; `.unwrap_python_model().generate(n, seed)` gives uint8 arrays. Models from \
code, weights a plain `state_dict`: no pickle.

Each version's description names its training run, image size and data digest."""


def _log(code_file: str, model_name: str, state_dict: dict, config: dict, params: dict,
         inputs, outputs, example: pd.DataFrame, registered_name: str, metadata: dict | None,
         description: str):
    entry = PACKAGE_DIR / "serving" / code_file
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save(state_dict, weights)
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        return tracking.log_pyfunc_model(
            model_name, entry, {WEIGHTS_ARTIFACT: str(weights), CONFIG_ARTIFACT: str(config_path)},
            [str(_copy_code(Path(tmp) / "code"))], inputs, outputs, example,
            registered_name, metadata, params=params, description=description,
            pip_requirements=model_requirements(entry))


def _name_safe(text: str) -> str:
    return text.replace(".", "_")  # MLflow refuses `.` (and `/:%'"`) in a logged model's name


def classifier_model_name(setting: str, seed: int) -> str:
    """`chexnet-DCGAN-1_0-0_6-s0`: the logged model's name (the registry's is shared)."""
    return _name_safe(f"chexnet-{setting}-s{seed}")


def generator_logged_name(gan: Gan, seed: int, real_fraction: float = 1.0) -> str:
    """`dcgan-generator-s0`, or `dcgan-generator-r0_3-s0` for a GAN of the kept subset."""
    subset = f"-r{real_fraction:g}" if real_fraction < 1 else ""
    return _name_safe(f"{Gan.parse(gan).value}-generator{subset}-s{seed}")


def log_classifier_model(state_dict: dict, config: dict, example_images: list[str | Path],
                         metadata: dict | None = None, description: str = "",
                         temperature: float = TEMPERATURE, threshold: float = THRESHOLD):
    """Log the classifier (named for its setting and seed, with the config as params) and
    register it as `pneumonia-chexnet`; returns MLflow's ModelInfo. The served model divides
    its logits by `temperature` and calls PNEUMONIA at probability >= `threshold` (both kept
    in the model's config file)."""
    example = pd.DataFrame({IMAGE_COLUMN: [encode_image_file(p) for p in example_images]})
    name = classifier_model_name(config["setting"], config["seed"])
    served = config | {TEMPERATURE_KEY: temperature, THRESHOLD_KEY: threshold}
    info = _log("mlflow_chexnet.py", name, state_dict, served, config, CLASSIFIER_INPUTS,
                CLASSIFIER_OUTPUTS, example, CLASSIFIER_MODEL, metadata, description)
    tracking.describe_registered_model(CLASSIFIER_MODEL, CLASSIFIER_ABOUT)
    return info


def log_generator_model(gan: Gan, state_dict: dict, params: dict, metadata: dict | None = None,
                        description: str = ""):
    """Log a GAN generator (its run's config `params` as the model's params) and register it
    as `pneumonia-{dcgan,cgan}-generator`; returns MLflow's ModelInfo."""
    gan = Gan.parse(gan)
    config = {"model": gan.value, "image_size": params["image_size"],
              "latent_dim": params["latent_dim"]}
    example = pd.DataFrame({"n": [2], "seed": [0], "label": ["NORMAL"]})
    name = generator_logged_name(gan, params["seed"], float(params.get("real_fraction", 1.0)))
    registered = generator_model_name(gan)
    info = _log("mlflow_generator.py", name, state_dict, config, params, GENERATOR_INPUTS,
                GENERATOR_OUTPUTS, example, registered, metadata, description)
    conditional = gan is Gan.CGAN
    tracking.describe_registered_model(registered, GENERATOR_ABOUT.format(
        gan=gan.display, name=registered,
        what="NORMAL or PNEUMONIA" if conditional else "NORMAL",
        label_note="the CGAN draws that class" if conditional else "the DCGAN ignores it"))
    return info
