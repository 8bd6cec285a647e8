"""Local checkpoints that outlive a failed upload or a killed process, and resuming from them.

A run writes its checkpoint under `CACHE_DIR/checkpoints/<run_id>/` and removes it only once
everything, model included, has reached the tracking server; if the upload fails (server
down, wrong S3 key) or the process is stopped, the file stays and the log says where.

`--resume RUN_ID` continues such a run: `load_resume` checks that the run can be continued
with the config given (the same as the run's), loads its checkpoint, and lists the metric
steps the run already has so that every epoch ends up logged exactly once (`outbox.MetricLog`).
A run logged under older metric names (`val_loss`, `train/loss`: before the UI's chart
sections were as they are, `contract`) is refused, saying why: continuing it would split each
curve between two names. It stays readable (Table 1, the champion gate); a new run replaces it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pneumonia_aug import tracking
from pneumonia_aug.contract import (
    CONFIG_ARTIFACT,
    OLDER_TAG_GIT_COMMIT,
    TAG_GIT_COMMIT,
    TAG_STAGE,
    older_metric_names,
)
from pneumonia_aug.data.cache import default_cache_dir
from pneumonia_aug.errors import PneumoniaAugError

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.pt"
# Config keys a resumed run may change: where things are, not what is computed (the dataset
# digest and the checkpoint's own location check those), and the experiment, which the run fixes.
RESUME_MAY_DIFFER = ("data_dir", "cache_dir", "experiment_name", "system_metrics")


class ResumeError(PneumoniaAugError):
    """A run that cannot be continued as asked."""


def checkpoint_folder(run_id: str, cache_dir: str = "") -> Path:
    return Path(cache_dir or default_cache_dir()) / "checkpoints" / run_id


@contextlib.contextmanager
def local_checkpoint(run_id: str, cache_dir: str = "") -> Iterator[Path]:
    folder = checkpoint_folder(run_id, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder / CHECKPOINT_FILE
    except BaseException:
        if any(folder.iterdir()):
            log.warning("run %s did not finish; its checkpoint is kept at %s (continue it with "
                        "`--resume %s` and the same options)", run_id, folder, run_id)
        raise
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Resume:
    run_id: str
    checkpoint: dict  # what the training loop saved after its last finished epoch
    tags: dict  # the run's tags (e.g. dataset_digest, synthetic_run_id)
    logged: dict[str, set[int]] = field(default_factory=dict)  # metric -> steps in the run


def load_resume(run_id: str, stage: str, config: dict, cache_dir: str = "") -> Resume:
    """Check that `run_id` is an unfinished `stage` run with this `config`; load its checkpoint.

    Reads MLflow only (the run is reopened later), so a refused resume leaves the run as it was.
    """
    run = tracking.run_info(run_id)
    tags = run.data.tags
    if tags.get(TAG_STAGE) != stage:
        raise ResumeError(f"run {run_id} is a {tags.get(TAG_STAGE, 'unknown')} run, not a "
                          f"{stage} run: resume it with the command that started it")
    if run.info.status == "FINISHED":
        raise ResumeError(f"run {run_id} already FINISHED: there is nothing to resume")
    _check_config(run_id, config)
    logged = tracking.metric_steps(run_id)
    _check_metric_names(run_id, logged, tags)
    path = checkpoint_folder(run_id, cache_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise ResumeError(
            f"no checkpoint of run {run_id} at {path}: it was never written (the run stopped "
            "before its first epoch ended) or the cache is elsewhere (set "
            "PNEUMONIA_AUG_CACHE_DIR or --cache-dir as for the run); start a new run instead")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    log.info("resuming run %s after epoch %d from %s", run_id, checkpoint["epoch"], path)
    return Resume(run_id, checkpoint, tags, logged)


def _check_metric_names(run_id: str, logged, tags: dict) -> None:
    older = older_metric_names(logged)
    if older:
        commit = tags.get(TAG_GIT_COMMIT) or tags.get(OLDER_TAG_GIT_COMMIT, "")
        raise ResumeError(
            f"run {run_id} was logged by an older version of pneumonia-aug, under older metric "
            f"names ({', '.join(older[:3])}{', ...' if len(older) > 3 else ''}) that this "
            f"version no longer logs: continuing it would split its curves between two names. "
            "Start a new run instead (a study does so by itself), or finish this one with the "
            "version that started it" + (f" (commit {commit[:12]})" if commit else ""))


def _check_config(run_id: str, config: dict) -> None:
    logged = tracking.read_dict_artifact(run_id, CONFIG_ARTIFACT)
    if logged is None:
        raise ResumeError(f"run {run_id} has no {CONFIG_ARTIFACT}: it stopped before "
                          "logging its config; start a new run instead")
    keys = (set(logged) | set(config)) - set(RESUME_MAY_DIFFER)
    differ = [f"{k}={logged.get(k)!r} (run) vs {config.get(k)!r} (given)"
              for k in sorted(keys) if tracking.normalize_param(logged.get(k))
              != tracking.normalize_param(config.get(k))]
    if differ:
        raise ResumeError(f"the options differ from run {run_id}'s: {'; '.join(differ)}. "
                          "Resume with the run's options (see its config.json)")
