"""One study stage run away from the study's process: in a stage process or a Ray task.

A `Task` is plain data (the stage, its config's fields, the study run to nest under, the CPU
threads it may use), so it crosses a process boundary as JSON or a pickle. `run_task` rebuilds
the config, nests the stage's run under the study run, treats SIGTERM as Ctrl-C (the run ends
KILLED, its checkpoint kept) and returns an `outcome`: the run id, or the error the study
records. `stage_process` is the body of the local executor's stage processes: it writes the
outcome to a JSON file.

Stage processes are forked from a forkserver that imported torch, torchvision, MLflow and the
stages once, and MLflow's database stores, and built the maps model logging consults
(`PRELOAD`): what every stage process would otherwise redo at its start (the times:
docs/study.md, "Stages in parallel").
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from pneumonia_aug import logs
from pneumonia_aug.contract import GAN_QUALITY, GENERATE, TRAIN_CLASSIFIER, TRAIN_GAN
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.startup import paused_collector

log = logging.getLogger(__name__)
# Imported once by the forkserver the stage processes fork from (nothing there runs them):
# `study.preload` imports torch, MLflow and the stages and warms what logging a model consults.
PRELOAD = ["pneumonia_aug.study.preload"]
# Set by `mlflow run` for the study's own run: a stage process must open runs of its own.
PARENT_ONLY_ENV = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@dataclass(frozen=True)
class Task:
    stage: str  # TRAIN_CLASSIFIER, TRAIN_GAN, GENERATE or GAN_QUALITY
    config: dict  # the stage config's fields
    parent_run_id: str  # the study run
    threads: int = 0  # torch CPU threads (0 = leave torch's choice)
    run_id: str = ""  # the run the study claimed for this stage (`study.reuse`), continued

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Task:
        return cls(**json.loads(text))


def run_stage(stage: str, config, run_id: str = "", parent_run_id: str = "") -> str:
    """Run one stage with its config object in this process, into the claimed run `run_id`
    (else a new run nested under `parent_run_id`); return the run id."""
    if stage == TRAIN_CLASSIFIER:
        with paused_collector():
            from pneumonia_aug.stages.train_classifier import run_train_classifier
        return run_train_classifier(config, run_id=run_id, parent_run_id=parent_run_id)
    if stage == TRAIN_GAN:
        with paused_collector():
            from pneumonia_aug.stages.train_gan import run_train_gan
        return run_train_gan(config, run_id=run_id, parent_run_id=parent_run_id)
    if stage == GENERATE:
        with paused_collector():
            from pneumonia_aug.stages.generate import run_generate
        return run_generate(config, run_id=run_id, parent_run_id=parent_run_id)
    if stage == GAN_QUALITY:  # into the GAN run it measures: no run of its own
        with paused_collector():
            from pneumonia_aug.stages.gan_quality import measure
        return measure(config)
    raise ValueError(f"no stage {stage!r} runs as a task")


def _config(task: Task):
    from pneumonia_aug.config import ClassifierConfig, GANConfig, GenerateConfig, QualityConfig

    kind = {TRAIN_CLASSIFIER: ClassifierConfig, TRAIN_GAN: GANConfig,
            GENERATE: GenerateConfig, GAN_QUALITY: QualityConfig}[task.stage]
    return kind(**task.config)


def run_task(task: Task) -> dict:
    """Run the task here; `{"run_id": ...}`, or `{"error": ..., "user": bool}` for a failure
    (a user error, or a crash whose traceback is logged). Ctrl-C / SIGTERM propagate."""
    import torch

    from pneumonia_aug.stages.interrupts import sigterm_as_interrupt

    for name in PARENT_ONLY_ENV:
        os.environ.pop(name, None)
    if task.threads:
        torch.set_num_threads(task.threads)
    logs.setup()  # set up already in a stage process; a Ray worker's goes to the driver
    try:
        with sigterm_as_interrupt():
            return {"run_id": run_stage(task.stage, _config(task), task.run_id,
                                        task.parent_run_id)}
    except PneumoniaAugError as exc:
        return {"error": str(exc), "user": True}
    except Exception as exc:  # a crash: its run is FAILED; the study records it and goes on
        log.exception("%s stage crashed", task.stage)
        return {"error": f"{type(exc).__name__}: {exc}", "user": False}


class _Prefixed(io.TextIOBase):
    """A text stream that writes each line to `target` marked with the stage's label (a stage
    process shares the study's terminal; its lines must say whose they are)."""

    def __init__(self, target, label: str):
        self.target, self.label, self.pending = target, label, ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self.target.write(f"[{self.label}] {line}\n")
        self.target.flush()
        return len(text)

    def flush(self) -> None:
        self.target.flush()


def stage_process(task_json: str, result: str, env: dict, label: str) -> None:
    """A stage process: in a process group of its own (Ctrl-C reaches the study only, which stops
    it with SIGTERM), with the environment the executor chose, its output marked with
    `label`; the outcome goes to `result`; exit code 0 (a run), 2 (a failure), 130 (stopped)."""
    os.setsid()
    os.environ.clear()
    os.environ.update(env)
    sys.stdout = sys.stderr = _Prefixed(sys.__stderr__, label)
    task = Task.from_json(task_json)
    logs.setup()
    try:
        outcome = run_task(task)
    except KeyboardInterrupt:
        log.warning("%s stage stopped", task.stage)
        sys.exit(130)
    finally:
        sys.stdout.flush()
    Path(result).write_text(json.dumps(outcome))
    sys.exit(0 if "run_id" in outcome else 2)
