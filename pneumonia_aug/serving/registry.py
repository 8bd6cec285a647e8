"""The registry policy: which version an alias points at.

- `pneumonia-chexnet@champion`: among the versions trained on the full data (no debug cap)
  at the largest image size any of them has, the one with the lowest validation loss (never
  test). Validation losses of other sizes or of capped subsets are not comparable, so a
  32 px smoke test or a debug run never becomes champion (it is still registered).
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

VAL_LOSS_TAG = "best_val_loss"  # version tags the champion is chosen by
IMAGE_SIZE_TAG = "image_size"
DEBUG_CAP_TAG = "max_images_per_split"  # 0 = the full data
TEST_ACCURACY_TAG = "test_accuracy"  # shown, never used to choose
LISTED_VERSIONS = 5  # versions an error lists by name; the rest are counted


def champion_of(versions: list) -> str | None:
    """The champion among registry versions (objects with `.version` and `.tags`), or None."""
    eligible = [v for v in versions if VAL_LOSS_TAG in v.tags and IMAGE_SIZE_TAG in v.tags
                and v.tags.get(DEBUG_CAP_TAG, "0") == "0"]
    if not eligible:
        return None
    size = max(int(v.tags[IMAGE_SIZE_TAG]) for v in eligible)
    _, best = min((float(v.tags[VAL_LOSS_TAG]), int(v.version)) for v in eligible
                  if int(v.tags[IMAGE_SIZE_TAG]) == size)
    return str(best)


def promote_champion(name: str = CLASSIFIER_MODEL) -> str | None:
    """Point `@champion` at `champion_of` the model's versions; return it (None: no version
    qualifies yet, and the alias stays where it was)."""
    best = champion_of(tracking.model_versions(name))
    if best is not None:
        tracking.set_alias(name, CHAMPION, best)
    return best


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
