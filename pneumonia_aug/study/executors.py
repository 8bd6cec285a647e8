"""Who runs a study's stages: this process, stage processes on this machine, or Ray.

Every executor has `launch(call, run_id) -> run id` (called by `Study.stage` when no finished
run can be reused, with the run it claimed for the stage, which the stage continues; blocks
until the stage is done; a failed stage raises `StageFailed`, which the study records and goes
on), `stop()` (end every stage still running: their runs end KILLED,
checkpoints kept) and `close()`, and a `width`: how many stages the walk runs at once.

- `InlineExecutor` (max_parallel 1, the default): each stage in the study's own process, one
  after another, nested under the study run because it is the active run.
- `LocalExecutor` (max_parallel N > 1): each stage in its own process (`tasks.stage_process`,
  forked from a forkserver that imported torch and MLflow once), N at a time, each with
  cores // N torch threads, each pinned to one GPU round-robin when there are several (with
  one, they share it). Stage processes start in process groups of their own, so Ctrl-C reaches the
  study only, which then sends each stage process one SIGTERM.
- `RayExecutor` (`study.ray_executor`): each stage a Ray task.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import tempfile
import threading
import time
from pathlib import Path

from pneumonia_aug import tracking
from pneumonia_aug.study.graph import StageCall
from pneumonia_aug.study.outcome import StageFailed, StageInterrupted, stage_outcome
from pneumonia_aug.study.tasks import PARENT_ONLY_ENV, PRELOAD, Task, run_stage, stage_process

log = logging.getLogger(__name__)
STOP_GRACE_S = 60.0  # for a stopped stage to end its run KILLED (an upload may be under way)


def cpu_cores() -> int:
    """The cores this study may use: $OMP_NUM_THREADS when set (the user's limit), else the
    cores this process may run on."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) > 0:
        return int(limit)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def visible_gpus() -> list[str]:
    """The GPU ids stage processes may be pinned to ($CUDA_VISIBLE_DEVICES, else all)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


class InlineExecutor:
    width = 1
    parent_run_id = ""  # its stages nest under the active run

    def launch(self, call: StageCall, run_id: str) -> str:
        return run_stage(call.stage, call.config, run_id)

    def stop(self) -> None:
        """Nothing to do: Ctrl-C / SIGTERM already reached the stage (it runs here)."""

    def close(self) -> None:
        pass


class LocalExecutor:
    parent_run_id = ""  # the study run, set once it is open

    def __init__(self, width: int):
        self.width = width or cpu_cores()
        self.threads = max(1, cpu_cores() // self.width)
        self.gpus = visible_gpus()
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.width):
            self._slots.put(slot)
        self._lock = threading.Lock()
        self._procs: set[multiprocessing.process.BaseProcess] = set()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)
        self._stopping = False
        log.info("[study] up to %d stage processes, %d CPU thread(s) each%s", self.width,
                 self.threads, f", GPUs {','.join(self.gpus)} dealt round-robin"
                 if len(self.gpus) > 1 else "")

    def launch(self, call: StageCall, run_id: str) -> str:
        slot = self._slots.get()
        try:
            return self._run(call, run_id, slot)
        finally:
            self._slots.put(slot)

    def _env(self, slot: int) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in PARENT_ONLY_ENV}
        env["MLFLOW_TRACKING_URI"] = tracking.tracking_uri()
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        if len(self.gpus) > 1:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def _run(self, call: StageCall, run_id: str, slot: int) -> str:
        task = Task(call.stage, call.config.to_dict(), self.parent_run_id, self.threads, run_id)
        with tempfile.TemporaryDirectory(prefix="pneumonia-aug-stage-") as tmp:
            result = Path(tmp) / "outcome.json"
            with self._lock:
                if self._stopping:
                    raise StageInterrupted(call.label)
                proc = self._context.Process(
                    target=stage_process, name=call.label,
                    args=(task.to_json(), str(result), self._env(slot), call.label))
                proc.start()
                self._procs.add(proc)
            proc.join()
            with self._lock:
                self._procs.discard(proc)
                stopping = self._stopping
            if result.exists():
                return stage_outcome(call.label, json.loads(result.read_text()))
        if stopping:
            raise StageInterrupted(call.label)
        raise StageFailed(f"the stage process exited with code {proc.exitcode} (its output, "
                          f"marked [{call.label}], is above)")

    def stop(self) -> None:
        """SIGTERM every stage process once (each ends its run KILLED), then wait for them;
        SIGKILL what is left after STOP_GRACE_S."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for proc in procs:
            log.warning("[study] stopping stage process %d", proc.pid)
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:  # each is joined by its launching thread; here only watched
            if not multiprocessing.connection.wait([proc.sentinel],
                                                   max(0.0, deadline - time.monotonic())):
                log.error("[study] stage process %d ignored SIGTERM: killing it", proc.pid)
                _signal(proc, signal.SIGKILL)

    def close(self) -> None:
        pass


def _signal(proc, sig: int) -> None:
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


def make_executor(executor: str, max_parallel: int):
    """The executor the study config asks for (its `parent_run_id` is set once the study run
    is open)."""
    if executor == "ray":
        from pneumonia_aug.study.ray_executor import RayExecutor

        return RayExecutor(max_parallel)
    if max_parallel == 1:
        return InlineExecutor()
    return LocalExecutor(max_parallel)
