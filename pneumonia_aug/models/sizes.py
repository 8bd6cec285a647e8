"""The GANs' image sizes, without torch (the config checks them before anything loads).

Both networks meet at 8x8 feature maps and grow by stride-2 stages: `S = 8 * 2**k`, k >= 2.
"""

from __future__ import annotations

BASE_SIZE = 8  # both networks meet at 8x8 feature maps


def gan_stages(image_size: int) -> int:
    """`k` for `image_size = 8 * 2**k`; ValueError unless `k >= 2` (32, 64, 128, 256, ...)."""
    k = (int(image_size) // BASE_SIZE).bit_length() - 1
    if image_size != BASE_SIZE * 2**k or k < 2:
        raise ValueError(
            f"image_size must be 8 * 2**k with k >= 2 (32, 64, 128, 256, ...), got {image_size}: "
            "the GANs upsample from 8x8 feature maps by stride-2 stages"
        )
    return k
