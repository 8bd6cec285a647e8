"""The registry policy: which version an alias points at.

- `pneumonia-chexnet@champion`: moved by the champion gate (`serving/champion.py`) only when
  a new version trained on the full data does as well as the champion on the same test set; a
  debug run never becomes champion (it is still registered).
- `pneumonia-{dcgan,cgan}-generator@newest`: the newest generator of each GAN.

A classifier alias that no version holds (no `@champion` after a debug-capped study) is
refused in one line that lists the versions there are and the URI to use instead
(`check_alias`).
"""

from __future__ import annotations

from pneumonia_aug import tracking
from pneumonia_aug.contract import (
    CHAMPION,
    CLASSIFIER_MODEL,
    NEWEST,
    TAG_SEED,
    TAG_SETTING,
    Gan,
    generator_model_name,
)
from pneumonia_aug.errors import ModelVersionError

# Version tags (the registry shows them as text; they are no run metrics, so the run's chart
# sections do not apply, and older versions are read by the same names).
VAL_LOSS_TAG = "best_val_loss"
IMAGE_SIZE_TAG = "image_size"
DEBUG_CAP_TAG = "max_images_per_split"  # 0 = the full data, the only data a champion has
TEST_ACCURACY_TAG = "test_accuracy"  # at 0.5, as Table 1 (the run's `test/accuracy`)
RUN_ID_TAG = "run_id"  # the run that trained the version
LISTED_VERSIONS = 5  # versions an error lists by name; the rest are counted


def set_newest(gan: Gan, version: str) -> None:
    tracking.set_alias(generator_model_name(gan), NEWEST, version)


def _version_words(version) -> str:
    """`v7 (DCGAN-1.0-0.6 s0, 32 px, test accuracy 0.625)`: what its tags say."""
    tags = version.tags
    words = [f"{tags[TAG_SETTING]} s{tags.get(TAG_SEED, '?')}" if TAG_SETTING in tags else "",
             f"{tags[IMAGE_SIZE_TAG]} px" if IMAGE_SIZE_TAG in tags else "",
             f"test accuracy {float(tags[TEST_ACCURACY_TAG]):.3f}"
             if TEST_ACCURACY_TAG in tags else ""]
    words = ", ".join(w for w in words if w)
    return f"v{version.version}" + (f" ({words})" if words else "")


def check_alias(model_uri: str, option: str = "--model") -> None:
    """Return when `model_uri` is not `models:/pneumonia-chexnet@ALIAS` or a version holds
    the alias; else raise a one-line `ModelVersionError` that lists the versions (newest first)
    and the URI of the newest to pass as `option`, or says how to train a first one."""
    name, at, alias = model_uri.removeprefix("models:/").partition("@")
    if not model_uri.startswith("models:/") or not at or name != CLASSIFIER_MODEL:
        return
    if tracking.alias_version(name, alias) is not None:
        return
    versions = sorted(tracking.model_versions(name), key=lambda v: int(v.version), reverse=True)
    if not versions:
        raise ModelVersionError(
            f"no {model_uri}: no classifier is registered yet; train one first: pneumonia-aug "
            "train-classifier --data-dir DIR (or the whole study: pneumonia-aug study "
            "--data-dir DIR)")
    why = (" (only a version trained on the full data, without a debug cap, becomes champion)"
           if alias == CHAMPION else "")
    listed = "; ".join(_version_words(v) for v in versions[:LISTED_VERSIONS])
    if len(versions) > LISTED_VERSIONS:
        listed += f"; and {len(versions) - LISTED_VERSIONS} more"
    raise ModelVersionError(
        f"no version of {name} is @{alias}{why}. Registered, newest first: {listed}. Use "
        f"{option} models:/{name}/{versions[0].version}")
