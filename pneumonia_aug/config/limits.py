"""The limits of the machine a study runs on, read from the environment: how long runs ride
out a tracking outage, how stage runs shared between studies are claimed."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from pneumonia_aug.config.fields import param
from pneumonia_aug.errors import PneumoniaAugError

RELIABILITY_ENV_PREFIX = "PNEUMONIA_AUG_"


@dataclass(frozen=True)
class Reliability:
    """How runs ride out tracking outages and share stages with concurrent studies
    (docs/operations.md). Read from the environment as `PNEUMONIA_AUG_<FIELD>` in capitals
    (e.g. `PNEUMONIA_AUG_TRACKING_OUTAGE_S=60`); not run parameters: they change no result."""

    tracking_outage_s: float = param(600.0, "longest tracking-server outage a training run "
                                            "rides out (its metrics and sample grids wait "
                                            "beside the checkpoint); past it the run stops, "
                                            "checkpoint kept, for --resume")
    tracking_probe_s: float = param(2.0, "seconds a probe of the tracking server waits")
    claim_heartbeat_s: float = param(30.0, "seconds between heartbeats of a claimed stage run")
    claim_stale_s: float = param(300.0, "a claimed stage run silent this long (or whose process "
                                        "on this host is gone) is dead: a waiting study "
                                        "launches the stage itself")
    claim_poll_s: float = param(2.0, "seconds between looks of a study waiting for a stage "
                                     "that another study runs")

    @classmethod
    def from_env(cls) -> Reliability:
        values = {}
        for f in fields(cls):
            name = RELIABILITY_ENV_PREFIX + f.name.upper()
            text = os.environ.get(name, "").strip()
            if not text:
                continue
            try:
                values[f.name] = float(text)
            except ValueError as exc:
                raise PneumoniaAugError(f"{name}={text!r} is not a number of seconds") from exc
            if values[f.name] <= 0:
                raise PneumoniaAugError(f"{name} must be positive, not {text}")
        return cls(**values)
