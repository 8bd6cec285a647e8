"""Each stage run's wall time and training speed, from a study's store: where the time went.

Read from the runs themselves (the tracking store `kit import` unpacked), so the table needs
nothing but the store: start and end of each run in seconds from the study's first stage run,
its wall time, its training time and the images it trained on per second. Training time is a
classifier's `train/seconds` metric (its epochs, validation included); a GAN logs no such
metric, so its epochs' span is read from the timestamps of its per-epoch `epoch/d_loss` (first
to last, scaled by n/(n-1) for the first epoch; the FID/KID evaluations between epochs count).
The images trained on are the run's `n_train` tag (the metric `data/n_train` of an older run).
Runs logged under older metric names (`train_seconds`, `d_loss`, `train/d_loss`) are read the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from pneumonia_aug import tracking
from pneumonia_aug.contract import (
    D_LOSS,
    N_TRAIN,
    STUDY,
    TAG_STAGE,
    TRAIN_CLASSIFIER,
    TRAIN_GAN,
    TRAIN_SECONDS,
    current_metrics,
    image_count,
    logged_metric_name,
)


@dataclass(frozen=True)
class StageTime:
    run: str  # the run's name
    stage: str
    status: str
    start: float  # seconds from the study's first stage run
    end: float | None  # None while (or because) it never ended
    epochs: int | None = None
    training: float | None = None  # seconds of training (see the module docstring)
    images_per_s: float | None = None  # training images x epochs / training seconds

    @property
    def wall(self) -> float | None:
        return None if self.end is None else self.end - self.start


def _gan_training_seconds(run) -> float | None:
    key = logged_metric_name(D_LOSS, run.data.metrics)
    stamps = sorted(m.timestamp for m in tracking.metric_history(run.info.run_id, key))
    if len(stamps) < 2:
        return None
    return (stamps[-1] - stamps[0]) / 1000 * len(stamps) / (len(stamps) - 1)


def _epochs(run) -> int | None:
    epochs = run.data.params.get("epochs")
    return None if epochs is None else int(epochs)


def _training(run) -> tuple[float | None, float | None]:
    stage, metrics = run.data.tags.get(TAG_STAGE), current_metrics(run.data.metrics)
    if stage == TRAIN_CLASSIFIER:
        seconds = metrics.get(TRAIN_SECONDS)
    elif stage == TRAIN_GAN:
        seconds = _gan_training_seconds(run)
    else:
        return None, None
    epochs, n_train = _epochs(run), image_count(run.data.tags, metrics, N_TRAIN)
    if not seconds or epochs is None or n_train is None:
        return seconds, None
    return seconds, n_train * epochs / seconds


def stage_times(experiment_name: str) -> list[StageTime]:
    """Every stage run of the experiment (not the study runs), in the order they started."""
    experiment = tracking.experiment_id(experiment_name)
    if experiment is None:
        return []
    runs = [r for r in tracking.search_runs([experiment], f"tags.{TAG_STAGE} != '{STUDY}'")
            if r.data.tags.get(TAG_STAGE)]
    if not runs:
        return []
    zero = min(r.info.start_time for r in runs)
    rows = []
    for run in sorted(runs, key=lambda r: r.info.start_time):
        training, speed = _training(run)
        end = run.info.end_time
        rows.append(StageTime(run.info.run_name, run.data.tags[TAG_STAGE], run.info.status,
                              (run.info.start_time - zero) / 1000,
                              None if end is None else (end - zero) / 1000, _epochs(run),
                              training, speed))
    return rows


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown(rows: list[StageTime], heading: str, scale: str) -> str:
    """The rows as a Markdown page: a heading, the scale (what ran where), the table."""
    lines = [f"# {heading}", "", scale, "",
             "Times in seconds from the study's first stage run (each run's start and end as "
             "the store has them); training (s): a classifier's `train/seconds`, a GAN's span of "
             "epochs; images/s: training images times epochs over the training time, per run "
             "while others shared the machine. One run each: no spread is measured.", "",
             "| run | stage | status | epochs | start (s) | end (s) | wall (s) | training (s) "
             "| images/s (training) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.run} | {r.stage} | {r.status} | {_cell(r.epochs)} | {_cell(r.start)} | "
              f"{_cell(r.end)} | {_cell(r.wall)} | {_cell(r.training)} | "
              f"{_cell(r.images_per_s)} |"
              for r in rows]
    return "\n".join(lines) + "\n"
