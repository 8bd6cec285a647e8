"""The skeleton both training stages share: one tracked run from checks to registered model.

`execute(stage)` does, for any `TrainingStage`:
1. before any run opens (so a user error leaves no run behind): the resume checks, then the
   stage's own checks and upstream look-ups (`prepare`);
2. opens the run, or reopens the interrupted one (`--resume`);
3. loads the data; a new run logs its params, dataset digest and inputs, and its description
   again with what it trains on (the counts it tagged); a resumed one must see the same data
   digest;
4. under torchrun, hands the run id, the upstream and the checkpoint to the other ranks (only
   rank 0 talks to MLflow);
5. trains with a local checkpoint (kept if anything fails, for `--resume`), logging each epoch
   exactly once through an outbox that rides out tracking outages (`tracking.outbox`); a
   non-finite loss ends the run FAILED with a one-line `error:`;
6. waits for the tracking server if it is away (up to the outage limit), then logs the
   results (plots, model, registry) while the checkpoint still exists.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pneumonia_aug import tracking
from pneumonia_aug.contract import (
    TAG_DATASET_DIGEST,
    TAG_RESUMED_AFTER,
    TAG_WORLD_SIZE,
)
from pneumonia_aug.errors import TrackingOutageError, TrainingDivergedError
from pneumonia_aug.stages.checkpoints import (
    Resume,
    ResumeError,
    load_resume,
    local_checkpoint,
)
from pneumonia_aug.stages.interrupts import sigterm_as_interrupt
from pneumonia_aug.stages.tags import stage_tags
from pneumonia_aug.tracking.outbox import MetricLog
from pneumonia_aug.training import distributed

log = logging.getLogger(__name__)


class TrainingStage:
    """What a training stage supplies; `execute` does the rest. Attributes set by subclasses:
    `stage` (contract name), `what` (for messages), `diverged_hint`, `cfg` (with `device`,
    `cache_dir`, `experiment_name`, `system_metrics`), `params` (what is logged and what
    `--resume` compares), `run_name`."""

    stage: str
    what: str
    diverged_hint: str = ""
    run_name: str
    params: dict

    def tags(self, upstream, dist) -> dict:
        """Tags of a new run, besides stage, code version and world size."""
        return {}

    def description(self, upstream, data=None) -> str:
        """A new run's description in the UI: what it is, where its inputs come from; with
        `data` (once loaded), also how many images it trains on."""
        return ""

    def prepare(self, resume: Resume | None):
        """Rank 0, before any run opens: check the user's input, find upstream runs; return
        what every rank needs to load the data (must be picklable)."""
        return None

    def load(self, upstream):
        """The data (anything with `.dataset_digest`), on every rank."""
        raise NotImplementedError

    def log_inputs(self, data, dist) -> None:
        """A new run only: datasets and counts."""

    def train(self, data, dist, checkpoint: dict | None, metric_log: MetricLog | None,
              checkpoint_path: Path | None):
        """Train (rank 0 gets `metric_log` and `checkpoint_path`, the others None)."""
        raise NotImplementedError

    def log_results(self, data, result, metric_log: MetricLog, checkpoint_path: Path) -> None:
        """Rank 0, after training, while the local checkpoint still exists."""


def _open_run(stage: TrainingStage, upstream, resume: Resume | None, dist, run_id: str,
              parent_run_id: str):
    """A new run (or the claimed `run_id` continued), or the interrupted one reopened (its tags
    and params are already there)."""
    metrics = stage.cfg.system_metrics
    if resume:
        tracking.tag_run(resume.run_id, {TAG_RESUMED_AFTER: resume.checkpoint["epoch"]})
        return tracking.resume_run(resume.run_id, system_metrics=metrics)
    tags = stage_tags(stage.stage, **{TAG_WORLD_SIZE: dist.world_size},
                      **stage.tags(upstream, dist))
    return tracking.start_run(stage.cfg.experiment_name, run_name=stage.run_name, tags=tags,
                              description=stage.description(upstream),
                              system_metrics=metrics, run_id=run_id, parent_run_id=parent_run_id)


def _check_same_data(resume: Resume, digest: str) -> None:
    if resume.tags.get(TAG_DATASET_DIGEST) != digest:
        raise ResumeError(f"the data changed since run {resume.run_id} started (dataset digest "
                          f"{digest}, the run's {resume.tags.get(TAG_DATASET_DIGEST)}): point "
                          "--data-dir at the run's data, or start a new run")


def _log_results(stage: TrainingStage, data, result, metric_log: MetricLog, path: Path,
                 run_id: str) -> None:
    """Wait for the tracking server if it is away (up to the outage limit), then log the
    results; a server lost in the middle stops the run with the way to finish it."""
    metric_log.flush(wait=True)
    try:
        stage.log_results(data, result, metric_log, path)
    except Exception as exc:
        if not tracking.is_outage(exc):
            raise
        reason = str(exc).splitlines()[0][:200]
        raise TrackingOutageError(
            f"the tracking server failed while run {run_id} logged its results ({reason}); "
            f"its checkpoint is kept: once the server is back, finish the run with "
            f"`--resume {run_id}` and the same options") from exc
    metric_log.flush(wait=True)


def execute(stage: TrainingStage, resume_run_id: str = "", run_id: str = "",
            parent_run_id: str = "") -> str:
    """Run `stage` as one tracked run and return its id: a new run (nested under
    `parent_run_id` when given), the claimed run `run_id` continued, or the interrupted run
    `resume_run_id` reopened. Under torchrun every process calls this and only rank 0 talks to
    MLflow."""
    cfg = stage.cfg
    with distributed.process_group(cfg.device) as dist, sigterm_as_interrupt():
        if not dist.is_main:
            # Rank 0 first checks, opens the run and decodes the images into the cache.
            run_id, upstream, checkpoint = dist.broadcast(None)
            stage.train(stage.load(upstream), dist, checkpoint, None, None)
            return run_id
        resume = None
        if resume_run_id:
            resume = load_resume(resume_run_id, stage.stage, stage.params, cfg.cache_dir)
        upstream = stage.prepare(resume)
        with _open_run(stage, upstream, resume, dist, run_id, parent_run_id) as run:
            run_id = run.info.run_id
            data = stage.load(upstream)
            if resume:
                _check_same_data(resume, data.dataset_digest)
            else:
                tracking.log_params(stage.params)
                tracking.set_tags({TAG_DATASET_DIGEST: data.dataset_digest})
                stage.log_inputs(data, dist)
                tracking.describe_run(run_id, stage.description(upstream, data))
            checkpoint = resume.checkpoint if resume else None
            dist.broadcast((run_id, upstream, checkpoint))
            with local_checkpoint(run_id, cfg.cache_dir) as path:
                metric_log = MetricLog(run_id, path.parent / "outbox",
                                       resume.logged if resume else None)
                metric_log.flush()  # what an earlier attempt left unsent
                try:
                    result = stage.train(data, dist, checkpoint, metric_log, path)
                except FloatingPointError as exc:
                    raise TrainingDivergedError(f"{stage.what} training diverged: {exc}. "
                                                f"{stage.diverged_hint}".strip()) from exc
                _log_results(stage, data, result, metric_log, path, run_id)
        return run_id
