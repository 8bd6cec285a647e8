"""One study stage run away from the study's process: in a stage process or a Ray task.

A `Task` is plain data (the stage, its config's fields, the study run to nest under, the CPU
threads it may use), so it crosses a process boundary as JSON or a pickle. `run_task` rebuilds
the config, nests the stage's run under the study run, treats SIGTERM as Ctrl-C (the run ends
KILLED, its checkpoint kept) and returns an `outcome`: the run id, or the error the study
records. `python -m pneumonia_aug.stages.tasks TASK_JSON RESULT_JSON` is the stage process of
the local executor: it writes the outcome to RESULT_JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from pneumonia_aug.contract import GENERATE, TRAIN_CLASSIFIER, TRAIN_GAN
from pneumonia_aug.errors import PneumoniaAugError

log = logging.getLogger(__name__)
# Set by `mlflow run` for the study's own run: a stage process must open runs of its own.
PARENT_ONLY_ENV = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@dataclass(frozen=True)
class Task:
    stage: str  # TRAIN_CLASSIFIER, TRAIN_GAN or GENERATE
    config: dict  # the stage config's fields
    parent_run_id: str  # the study run
    threads: int = 0  # torch CPU threads (0 = leave torch's choice)
    adopt_run_id: str = ""  # the run the study claimed for this stage (`stages.reuse`)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Task:
        return cls(**json.loads(text))


def run_stage(stage: str, config) -> str:
    """Run one stage with its config object in this process; return the run id."""
    if stage == TRAIN_CLASSIFIER:
        from pneumonia_aug.stages.train_classifier import run_train_classifier
        return run_train_classifier(config)
    if stage == TRAIN_GAN:
        from pneumonia_aug.stages.train_gan import run_train_gan
        return run_train_gan(config)
    if stage == GENERATE:
        from pneumonia_aug.stages.generate import run_generate
        return run_generate(config)
    raise ValueError(f"no stage {stage!r} runs as a task")


def _config(task: Task):
    from pneumonia_aug.config import ClassifierConfig, GANConfig, GenerateConfig

    kind = {TRAIN_CLASSIFIER: ClassifierConfig, TRAIN_GAN: GANConfig,
            GENERATE: GenerateConfig}[task.stage]
    return kind(**task.config)


def run_task(task: Task) -> dict:
    """Run the task here; `{"run_id": ...}`, or `{"error": ..., "user": bool}` for a failure
    (a user error, or a crash whose traceback is logged). Ctrl-C / SIGTERM propagate."""
    import torch

    from pneumonia_aug import tracking
    from pneumonia_aug.stages.checkpoints import sigterm_as_interrupt

    for name in PARENT_ONLY_ENV:
        os.environ.pop(name, None)
    if task.threads:
        torch.set_num_threads(task.threads)
    if not logging.getLogger().handlers:  # a Ray worker: its output goes to the driver
        _configure_logging()
    try:
        adopt = (tracking.adopting(task.adopt_run_id) if task.adopt_run_id
                 else contextlib.nullcontext())
        with tracking.nested_under(task.parent_run_id), adopt, sigterm_as_interrupt():
            return {"run_id": run_stage(task.stage, _config(task))}
    except PneumoniaAugError as exc:
        return {"error": str(exc), "user": True}
    except Exception as exc:  # a crash: its run is FAILED; the study records it and goes on
        log.exception("%s stage crashed", task.stage)
        return {"error": f"{type(exc).__name__}: {exc}", "user": False}


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("urllib3", "botocore", "matplotlib", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str]) -> int:
    task, result = Task.from_json(argv[0]), Path(argv[1])
    _configure_logging()
    try:
        outcome = run_task(task)
    except KeyboardInterrupt:
        log.warning("%s stage stopped", task.stage)
        return 130
    result.write_text(json.dumps(outcome))
    return 0 if "run_id" in outcome else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
