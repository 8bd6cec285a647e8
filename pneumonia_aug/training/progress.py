"""A progress bar inside a long epoch: images done, rate and time left, on a terminal only.

The per-epoch log lines stay the record; the bar is for a person watching an epoch that takes
minutes. tqdm draws it on stderr when stderr is a terminal and stays silent otherwise (CI,
`mlflow run` piped to a file, tests); `PNEUMONIA_AUG_PROGRESS=0` silences it on a terminal
too. Under torchrun only rank 0 draws one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from tqdm.auto import tqdm

PROGRESS_ENV = "PNEUMONIA_AUG_PROGRESS"


def batch_starts(n_images: int, batch: int, desc: str, show: bool = True) -> Iterator[int]:
    """`range(0, n_images, batch)`, advancing a bar by each batch's images as it is done."""
    show = show and os.environ.get(PROGRESS_ENV, "1") != "0"
    # disable=None: tqdm's own test, off when stderr is no terminal.
    with tqdm(total=n_images, desc=desc, unit="img", leave=False, dynamic_ncols=True,
              disable=None if show else True) as bar:
        for start in range(0, n_images, batch):
            yield start
            bar.update(min(batch, n_images - start))
