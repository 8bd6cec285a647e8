"""Several classifier stages fetching the same generated images at once (a study's stages side
by side on one GPU): every one gets the whole set, none fails on another's download."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
from PIL import Image

from pneumonia_aug.contract import GENERATED_DIR, Gan
from pneumonia_aug.stages.synthetic import fetch_synthetic

N_IMAGES, N_FETCHERS = 40, 6


def test_concurrent_fetches_of_one_generate_run_all_succeed(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8), "L").save(
            images / f"dcgan_{i:05d}.png")
    mlflow.set_experiment("fetch-race")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(images), GENERATED_DIR)
    cache = str(tmp_path / "cache")
    barrier = threading.Barrier(N_FETCHERS)

    def fetch(_: int) -> int:
        barrier.wait()  # all download at the same moment
        return len(fetch_synthetic(run.info.run_id, Gan.DCGAN, cache))

    with ThreadPoolExecutor(N_FETCHERS) as pool:
        counts = list(pool.map(fetch, range(N_FETCHERS)))
    assert counts == [N_IMAGES] * N_FETCHERS
    local = Path(cache) / "runs" / run.info.run_id / GENERATED_DIR
    assert len(list(local.glob("*.png"))) == N_IMAGES
    assert [p.name for p in local.parent.iterdir()] == [GENERATED_DIR]  # no leftovers
