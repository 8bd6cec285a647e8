"""A study that grows over several `kit run`s: what an earlier run brought back travels to the
next one, so that it reuses every finished pair and trains only the missing seeds.

`kit prepare --store DIR` (DIR: the store earlier `kit import`s merged into) carries its
database (runs, params, metrics, tags; no artifacts) as `store.tar.xz` in the kit; `kit run`
unpacks it into its work folder, where the study's run reuse finds every finished run by its
key. A store brought back holds no weights and no generated images, so what a later stage
would need from an unfinished seed cannot be reused: a GAN run whose generation did not finish
(its generator is not there), and a generate run whose GAN-setting runs did not all finish
(its images are not there), travel deleted (`lifecycle_stage` deleted: kept in the database,
never reused), and the next run trains them again. A seed's Original run and its finished
classifier runs always travel: a table needs only their metrics. A GAN whose quality was not
measured yet is measured in a later run only if its feature network's weights are there;
otherwise the run says why not (`stages.gan_quality`).
"""

from __future__ import annotations

import shutil
import sqlite3
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

from pneumonia_aug import tracking
from pneumonia_aug.config import EXPERIMENT_NAME
from pneumonia_aug.contract import (
    GENERATE,
    TAG_STAGE,
    TAG_SYNTHETIC_RUN,
    TAG_TRAIN_GAN_RUN,
    TRAIN_CLASSIFIER,
    TRAIN_GAN,
)
from pneumonia_aug.errors import KitError
from pneumonia_aug.kit.layout import CARRIED_STORE, STORE_ARTIFACTS, STORE_DB


def store_uri(store_dir: Path) -> str:
    """The tracking URI of a local store (`mlflow.db` + `mlruns/`) in `store_dir`."""
    return f"sqlite:///{(store_dir / STORE_DB).resolve()}"


def not_carried(runs: list) -> dict[str, str]:
    """Run id -> why it travels deleted: GAN and generate runs whose outputs a later stage of
    an unfinished seed would need (module docstring). `runs`: the store's runs, any status."""
    by_id = {r.info.run_id: r for r in runs}
    consumers: dict[str, list] = defaultdict(list)  # generate run -> classifier runs using it
    generations: dict[str, list] = defaultdict(list)  # GAN run -> its generate runs
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG_STAGE) == TRAIN_CLASSIFIER and tags.get(TAG_SYNTHETIC_RUN):
            consumers[tags[TAG_SYNTHETIC_RUN]].append(run)
        elif tags.get(TAG_STAGE) == GENERATE and tags.get(TAG_TRAIN_GAN_RUN):
            generations[tags[TAG_TRAIN_GAN_RUN]].append(run)
    dropped = {}
    for run in runs:
        run_id, stage = run.info.run_id, run.data.tags.get(TAG_STAGE)
        if stage == GENERATE and run.info.status == "FINISHED":
            using = consumers.get(run_id, [])
            if not using or any(r.info.status != "FINISHED" for r in using):
                dropped[run_id] = "its GAN-setting runs did not all finish (images not here)"
    for run in runs:
        run_id = run.info.run_id
        if run.data.tags.get(TAG_STAGE) == TRAIN_GAN and run.info.status == "FINISHED":
            done = [g for g in generations.get(run_id, []) if g.info.status == "FINISHED"
                    and g.info.run_id not in dropped]
            if not done:
                dropped[run_id] = "its generation did not finish (generator not here)"
    return {run_id: why for run_id, why in dropped.items() if run_id in by_id}


def carry_store(store_dir: Path, kit_dir: Path) -> dict:
    """Write `kit_dir/CARRIED_STORE` from the store in `store_dir`; return what it holds."""
    db = store_dir / STORE_DB
    if not db.is_file():
        raise KitError(f"no {STORE_DB} in {store_dir}: give --store the folder `kit import` "
                       "merged earlier runs into")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        shutil.copyfile(db, copy / STORE_DB)
        with tracking.reading_store(store_uri(copy)):
            experiment = tracking.experiment_id(EXPERIMENT_NAME)
            runs = tracking.search_runs([experiment], "") if experiment else []
            dropped = not_carried(runs)
            for run_id in dropped:
                tracking.delete_run(run_id)
        with sqlite3.connect(copy / STORE_DB) as conn:
            conn.execute("VACUUM")
        with tarfile.open(kit_dir / CARRIED_STORE, "w:xz", preset=6) as tar:
            tar.add(copy / STORE_DB, arcname=STORE_DB)
    return {"runs": len(runs) - len(dropped), "travel_deleted": dropped,
            "artifact_root": str((store_dir / STORE_ARTIFACTS).resolve()),
            "bytes": (kit_dir / CARRIED_STORE).stat().st_size}
