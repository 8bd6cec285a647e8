"""Run reuse for the study: a stage is launched only when no finished run with its key exists.

The key of a stage run is a digest of the entry point, the code version (the commit plus a
digest of uncommitted changes), the parameters (normalised, since MLflow returns params as
strings) and the upstream run ids. So an interrupted study continues where it stopped, a
second identical call launches nothing new, and a changed parameter reruns exactly the runs
that depend on it. Code of unknown version (no git, no baked-in commit) never reuses a run.
"""

from __future__ import annotations

import hashlib
import json

from pneumonia_aug import tracking
from pneumonia_aug.contract import TAG_RUN_KEY
from pneumonia_aug.stages.runs import UNKNOWN, code_version


def run_key(stage: str, params: dict, upstream: dict, code: str | None = None) -> str:
    payload = {"stage": stage, "code": code or code_version(), "upstream": upstream,
               "params": {k: tracking.normalize_param(v) for k, v in sorted(params.items())}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def find_reusable_run(experiment_name: str, key: str, params: dict) -> str | None:
    """A FINISHED run with this key whose logged params match `params`, or None."""
    experiment = tracking.experiment_id(experiment_name)
    if experiment is None or code_version() == UNKNOWN:
        return None
    runs = tracking.search_runs(
        [experiment], f"tags.{TAG_RUN_KEY} = '{key}' and attributes.status = 'FINISHED'",
        newest_first=True, max_results=5)
    for run in runs:
        logged = run.data.params
        if all(tracking.normalize_param(logged.get(k)) == tracking.normalize_param(v)
               for k, v in params.items()):
            return run.info.run_id
    return None
