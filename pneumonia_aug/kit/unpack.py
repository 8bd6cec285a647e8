"""`kit import`, here: unpack what came back from a `kit run` so that `mlflow ui` shows it.

The store archive unpacks into a git-ignored folder (`mlflow.db` + `mlruns/`). MLflow keeps
absolute artifact locations in the database (experiments, runs, logged models, model
versions), which still point at the GPU machine's work folder: each is rewritten to the folder
here, so the UI and `MlflowClient` find the artifacts. The table, its chart,
the benches' records and `result.json` are copied into a dated results folder for the docs,
with `stages.md` (each stage run's wall time and images/s, read from the store) and
`allocations.md` (which pairs finished in which `kit run`). The benches' records
(`bench_records`) then go where `bench train` writes its own (the command does that). A study
that grows over several `kit run`s (`kit prepare --store`) is imported into the same store
each time: merged, one store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

from pneumonia_aug import measured, tracking
from pneumonia_aug.config import EXPERIMENT_NAME
from pneumonia_aug.contract import COMPARE, FOREST_PLOT, TAG_STAGE
from pneumonia_aug.errors import KitError, TrackingError
from pneumonia_aug.kit import safetar, stage_times
from pneumonia_aug.kit.allocations import allocations_page
from pneumonia_aug.kit.carry import store_uri
from pneumonia_aug.kit.layout import (
    ALLOCATIONS,
    BENCH,
    LEFT_BEHIND,
    LOG,
    RESULT,
    STAGE_TIMES,
    STORE_ARCHIVE,
    STORE_ARTIFACTS,
    STORE_DB,
    TABLE_FILES,
)
from pneumonia_aug.kit.pack import rewrite_paths


def read_result(source: Path) -> dict:
    path = source / RESULT
    if not path.is_file():
        raise KitError(f"no {RESULT} in {source}: give the folder you copied back from the "
                       "GPU machine's --out folder")
    return json.loads(path.read_text())


def unpack_store(source: Path, store_dir: Path, artifact_root: str) -> int:
    """Unpack the store archive into `store_dir` and point its artifact locations there;
    return the number of locations rewritten. A store already there must be the one this kit
    run started from (`kit prepare --store`): the incoming database holds all of its runs and
    more, and replaces it; the new artifacts join the old ones (`merge`)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    if not (store_dir / STORE_DB).exists():
        safetar.extract(source / STORE_ARCHIVE, store_dir)  # no absolute paths, no links out
        return _point_here(store_dir, artifact_root)
    with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
        incoming = Path(tmp)
        safetar.extract(source / STORE_ARCHIVE, incoming)
        changed = _point_here(incoming, artifact_root, store_dir)
        merge(incoming, store_dir)
    return changed


def _point_here(store: Path, artifact_root: str, home: Path | None = None) -> int:
    new_root = str(((home or store) / STORE_ARTIFACTS).resolve())
    return rewrite_paths(store / STORE_DB, artifact_root.rstrip("/"), new_root)


def _run_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT run_uuid FROM runs")}


def merge(incoming: Path, store_dir: Path) -> None:
    """Put the store `incoming` (a kit run that started from `store_dir`'s runs) in place of
    `store_dir`'s: its database replaces the old one, its artifacts join the old ones."""
    missing = _run_ids(store_dir / STORE_DB) - _run_ids(incoming / STORE_DB)
    if missing:
        raise KitError(f"{store_dir} holds {len(missing)} runs this kit run did not start from "
                       f"(e.g. {sorted(missing)[0]}): it was prepared from another store, or "
                       "runs were added here since `kit prepare --store`; import into another "
                       "folder")
    if (incoming / STORE_ARTIFACTS).is_dir():
        shutil.copytree(incoming / STORE_ARTIFACTS, store_dir / STORE_ARTIFACTS,
                        dirs_exist_ok=True)
    for name in (LEFT_BEHIND, STORE_DB):  # the database last: a failure above leaves the old
        if (incoming / name).is_file():
            os.replace(incoming / name, store_dir / name)


def import_results(source: Path, store_dir: Path | None, results_dir: Path | None) -> dict:
    """Import a `kit run`'s outputs from `source`; return where everything went."""
    result = read_result(source)
    date = result["finished"][:10]
    store_dir = store_dir or Path("outputs") / f"gpu-{date}"
    results_dir = results_dir or Path("docs") / "results" / f"gpu-{date}"
    summary: dict = {"store_dir": str(store_dir), "results_dir": str(results_dir)}
    if (source / STORE_ARCHIVE).is_file():
        summary["locations_rewritten"] = unpack_store(source, store_dir, result["artifact_root"])
        shutil.copyfile(source / LOG, store_dir / LOG)  # the newest; and each one's, kept
        (store_dir / "logs").mkdir(exist_ok=True)
        shutil.copyfile(source / LOG, store_dir / "logs" / f"kit-{result['finished']}.log")
        summary["mlflow_ui"] = ("mlflow ui --backend-store-uri "
                                + store_uri(store_dir))
    results_dir.mkdir(parents=True, exist_ok=True)
    copied = [name for name in (*TABLE_FILES, BENCH, RESULT) if (source / name).is_file()]
    for name in copied:
        shutil.copyfile(source / name, results_dir / name)
    summary["copied"] = copied
    if (store_dir / STORE_DB).is_file():
        (results_dir / STAGE_TIMES).write_text(stage_times_page(store_dir, result))
        (results_dir / ALLOCATIONS).write_text(allocations_page(store_dir))
        summary["copied"] += [STAGE_TIMES, ALLOCATIONS]
        if forest_from_store(store_dir, results_dir):
            summary["copied"].append(FOREST_PLOT)
    return summary


def bench_records(source: Path) -> list[dict]:
    """The records of the benches a `kit run` brought back ([] when it ran none)."""
    return measured.bench_records(source / BENCH)


def _device(log: Path) -> str:
    """The GPU the machine report named in the kit's log, else "The machine"."""
    found = re.search(r"\] gpu (.+)$", log.read_text(), re.M) if log.is_file() else None
    return f"One {found.group(1).strip()}" if found else "The machine"


def stage_times_page(store_dir: Path, result: dict) -> str:
    """`stages.md`: every stage run of the imported store, with what ran where above it."""
    with tracking.reading_store(store_uri(store_dir)):
        rows = stage_times.stage_times(EXPERIMENT_NAME)
    study = result["study"]
    ended = " (stopped at the budget)" if study["stopped_at_budget"] else ""
    scale = (f"{_device(store_dir / LOG)}, {result['started'][:10]}: `kit run` "
             f"of the {study['profile']} profile with up to {study.get('max_parallel', '?')} "
             f"stages at once, code {result['kit']['code_version'][:12]}, data "
             f"{result['kit']['data']['digest']} ({result['kit']['data']['image_size']} px "
             f"copy); the study took {study['seconds']:.0f} s{ended}. The classifiers' scale "
             "is table1.md's; each run's epochs are in the table.")
    return stage_times.markdown(rows, f"Stage times of the {study['profile']} study",
                                scale)


def forest_from_store(store_dir: Path, results_dir: Path) -> bool:
    """The newest compare run's forest plot (it travels inside the store: the files brought
    back are few), into the results folder; False when there is none."""
    with tracking.reading_store(store_uri(store_dir)):
        experiment = tracking.experiment_id(EXPERIMENT_NAME)
        runs = tracking.search_runs([experiment], f"tags.{TAG_STAGE} = '{COMPARE}'",
                                    newest_first=True, max_results=1) if experiment else []
        try:
            return bool(runs) and tracking.download_artifacts(
                runs[0].info.run_id, FOREST_PLOT, results_dir).is_file()
        except TrackingError:
            return False  # a compare of older code drew no forest plot

