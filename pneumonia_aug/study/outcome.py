"""How a stage ended, as every executor reports it: its run id, or `StageFailed` (recorded,
the study goes on), or `StageInterrupted` (the study is stopping)."""

from __future__ import annotations

from pneumonia_aug.errors import PneumoniaAugError


class StageFailed(PneumoniaAugError):
    """A stage that ended without a run to use; the study records it and goes on."""


class StageInterrupted(Exception):
    """A stage stopped because the study is stopping (not a failure to record)."""


def stage_outcome(label: str, outcome: dict) -> str:
    """The run id of a task's outcome, or StageFailed with its error."""
    if "run_id" in outcome:
        return outcome["run_id"]
    kind = "" if outcome.get("user") else "crashed: "
    raise StageFailed(f"{kind}{outcome.get('error', 'no outcome')}")
