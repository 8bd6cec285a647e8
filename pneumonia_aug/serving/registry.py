"""The registry policy: which version an alias points at.

- `pneumonia-chexnet@champion`: among the versions trained on the full data (no debug cap)
  at the largest image size any of them has, the one with the lowest validation loss (never
  test). Validation losses of other sizes or of capped subsets are not comparable, so a
  32 px smoke test or a debug run never becomes champion (it is still registered).
- `pneumonia-{dcgan,cgan}-generator@newest`: the newest generator of each GAN.
"""

from __future__ import annotations

from pneumonia_aug import tracking
from pneumonia_aug.contract import CHAMPION, CLASSIFIER_MODEL, NEWEST, Gan, generator_model_name

VAL_LOSS_TAG = "best_val_loss"  # version tags the champion is chosen by
IMAGE_SIZE_TAG = "image_size"
DEBUG_CAP_TAG = "max_images_per_split"  # 0 = the full data


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
