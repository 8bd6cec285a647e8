"""The study's stages as Ray tasks, on the cluster at $RAY_ADDRESS (else a local one).

Ray does the scheduling: each stage is one task asking for what it needs (`RESOURCES`: a CPU
core, and on a cluster with GPUs a quarter of a card for a classifier or a generation, so that
four share one, and a whole card for a GAN), Ray starts it where that is free and retries it
when its worker or node dies (`max_retries`; an error inside the stage is not retried: the
study records it and goes on). Every task logs to the study's tracking server: its URI, and
the project's and MLflow's settings from the driver's environment, travel in the job's
runtime env. Each node needs the project installed (e.g. the Docker image) and the data at
the same path. Ray is optional (`pip install -e ".[ray]"`): nothing else imports this module.
"""

from __future__ import annotations

import logging
import os
import threading

from pneumonia_aug import tracking
from pneumonia_aug.contract import TRAIN_GAN
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.study.graph import StageCall
from pneumonia_aug.study.outcome import StageFailed, StageInterrupted, stage_outcome
from pneumonia_aug.study.tasks import PARENT_ONLY_ENV, Task, run_task

log = logging.getLogger(__name__)
# (CPU cores, GPUs) a stage's task asks for on a cluster with GPUs; without, the cores only.
# A small-batch classifier leaves most of a card idle (docs/benchmarks.md): four share one. A
# GAN at batch 128 fills one.
RESOURCES = {TRAIN_GAN: (1, 1.0)}
SHARED_GPU = (1, 0.25)
MAX_RETRIES = 2  # a task whose worker or node died is run again (a new run; the old one stays)
FORWARDED_ENV = ("MLFLOW_", "PNEUMONIA_AUG_", "AWS_")  # prefixes of what the tasks inherit


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise PneumoniaAugError("executor=ray needs Ray: pip install -e '.[ray]'") from exc
    return ray


def task_env() -> dict:
    """The driver's tracking URI and settings, for every task's environment."""
    env = {k: v for k, v in os.environ.items()
           if k.startswith(FORWARDED_ENV) and k not in PARENT_ONLY_ENV}
    env["MLFLOW_TRACKING_URI"] = tracking.tracking_uri()
    return env


class RayExecutor:
    parent_run_id = ""  # the study run, set once it is open

    def __init__(self, width: int):
        ray = self.ray = _ray()
        # ray.init() connects to $RAY_ADDRESS when set, else starts a cluster on this machine.
        try:
            ray.init(runtime_env={"env_vars": task_env()}, log_to_driver=True)
        except ConnectionError as exc:
            raise PneumoniaAugError(f"cannot reach the Ray cluster at "
                                    f"{os.environ.get('RAY_ADDRESS', '(local)')}: {exc}") from exc
        self.has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        # 0: every ready stage in flight at once; Ray queues what does not fit.
        self.width = width or 1_000_000
        self._remote = ray.remote(run_task)
        self._lock = threading.Lock()
        self._refs: set = set()
        self._stopping = False
        log.info("[study] Ray cluster: %s", ray.cluster_resources())

    def launch(self, call: StageCall, run_id: str) -> str:
        cpus, gpus = RESOURCES.get(call.stage, SHARED_GPU)
        task = Task(call.stage, call.config.to_dict(), self.parent_run_id, cpus, run_id)
        options = {"num_cpus": cpus, "num_gpus": gpus if self.has_gpus else 0,
                   "max_retries": MAX_RETRIES, "name": call.label}
        with self._lock:
            if self._stopping:
                raise StageInterrupted(call.label)
            ref = self._remote.options(**options).remote(task)
            self._refs.add(ref)
        try:
            self.ray.wait([ref], num_returns=1)
            outcome = self.ray.get(ref)
        except self.ray.exceptions.TaskCancelledError as exc:
            raise StageInterrupted(call.label) from exc
        except self.ray.exceptions.RayError as exc:  # its worker died, retries spent, ...
            raise StageFailed(f"Ray task failed: {str(exc).strip().splitlines()[-1]}") from exc
        finally:
            with self._lock:
                self._refs.discard(ref)
        return stage_outcome(call.label, outcome)

    def stop(self) -> None:
        """Cancel every task: a running one gets KeyboardInterrupt (its run ends KILLED, its
        checkpoint kept), a queued one never starts."""
        with self._lock:
            self._stopping = True
            refs = list(self._refs)
        for ref in refs:
            self.ray.cancel(ref)

    def close(self) -> None:
        self.ray.shutdown()
