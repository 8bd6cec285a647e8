"""What a study used, launched and failed: each stage reused or launched through `Study.stage`
(`study.reuse`), from the walk's threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.study.reuse import claim_or_reuse, run_key

log = logging.getLogger(__name__)


class Study:
    """Runs or reuses each stage; remembers what it used and what failed. `stage` may be
    called from several threads at once (the walk's), hence the lock."""

    def __init__(self, experiment_name: str, study_run_id: str):
        self.experiment_name = experiment_name
        self.study_run_id = study_run_id
        self.used: list[dict] = []
        self.failed: list[str] = []
        self.launched = 0
        self._lock = threading.Lock()

    def record_failure(self, message: str) -> None:
        with self._lock:
            self.failed.append(message)

    def measure(self, label: str, launch: Callable[[], str]) -> str | None:
        """A step that logs into an existing run (GAN quality): its run id, or None with the
        failure recorded (the study goes on)."""
        try:
            return launch()
        except PneumoniaAugError as exc:
            log.error("[study] %s failed: %s", label, exc)
            self.record_failure(f"{label}: {exc}")
            return None

    def stage(self, name: str, label: str, params: dict, upstream: dict,
              launch: Callable[[str], str]) -> str | None:
        """Reuse or launch the stage; safe against a concurrent study (`reuse.claim_or_reuse`)."""
        key = run_key(name, params, upstream)
        try:
            claim = claim_or_reuse(self.experiment_name, key, params, launch, label=label,
                                   parent_run_id=self.study_run_id)
        except PneumoniaAugError as exc:  # a failed stage is recorded, the study goes on
            log.error("[study] %s failed: %s", label, exc)
            self.record_failure(f"{label}: {exc}")
            return None
        with self._lock:
            self.launched += claim.launched
            self.used.append({"stage": name, "label": label, "run_id": claim.run_id})
        return claim.run_id
