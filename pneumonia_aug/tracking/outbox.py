"""What a training run logs while it trains, delivered exactly once through tracking outages.

Per-epoch metrics and sample grids go through a `MetricLog`. Each entry is first written to
an outbox beside the run's local checkpoint (`CACHE_DIR/checkpoints/<run_id>/outbox/`), then
sent. When the tracking server (or the PostgreSQL or S3 store behind it) is away, sending
fails, the entries stay in the outbox and training goes on; the next epoch sends everything
waiting, in order. An outage longer than `Reliability.tracking_outage_s` (default 10 min,
`PNEUMONIA_AUG_TRACKING_OUTAGE_S`) stops the run with `TrackingOutageError`: the checkpoint
and the outbox stay, and `--resume RUN_ID` sends what waits and finishes the run.

Exactly once: a metric keeps the timestamp it was first given, and MLflow's stores drop a
metric whose key, value, step and timestamp they already hold, so re-sending a batch whose
answer was lost adds nothing; a resumed run skips the (metric, step) pairs the server or the
outbox already has. Sample grids are files with fixed names, so a re-upload overwrites.

Why not MLflow's asynchronous logging (`log_metrics(..., synchronous=False)`): its queue
lives in memory only (a run stopped during an outage loses what waits), it drops a batch once
MLflow's HTTP retries are spent (about 4 minutes at MLflow's defaults), it carries no
artifacts, and it gives no point at which to stop cleanly.

Retry policy: the outbox is the retry loop for what a run logs while it trains. A probe of
`/health` (`tracking_probe_s`) comes before each send, and a send makes one try per request
(`outages.single_try`), so an epoch during an outage (of the server, or of its database or
S3 store, which answer 5xx) costs a second, not MLflow's retry schedule. Everything else
keeps MLflow's HTTP retries (the CLI's 3: a blip), and a server that is down at start-up
still fails in seconds (`tracking.ensure_reachable`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from pneumonia_aug.config import RELIABILITY_ENV_PREFIX, Reliability
from pneumonia_aug.errors import TrackingOutageError
from pneumonia_aug.tracking import outages

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"
ARTIFACTS_DIR = "artifacts"


class MetricLog:
    """Logs per-step metrics and artifacts of run `run_id` through the outbox in `outbox`.

    `logged`: metric -> steps the run already has (a resumed run's `Resume.logged`); those
    pairs are skipped, since a resumed run reports its checkpoint's last epoch again.
    """

    def __init__(self, run_id: str, outbox: Path, logged: dict[str, set[int]] | None = None,
                 limits: Reliability | None = None):
        self.run_id, self.outbox = run_id, Path(outbox)
        self.limits = limits or Reliability.from_env()
        self.logged = {k: set(v) for k, v in (logged or {}).items()}
        self.pending = self._read_pending()
        for row in self.pending:  # left by an earlier attempt of this run: sent first
            self.logged.setdefault(row["key"], set()).add(row["step"])
        self.down_since: float | None = None
        self.last_step = 0

    def __call__(self, metrics: dict, step: int) -> None:
        timestamp = outages.now_ms()
        for key, value in metrics.items():
            if step not in self.logged.get(key, ()):
                self.pending.append({"key": key, "value": float(value), "step": int(step),
                                     "timestamp": timestamp})
                self.logged.setdefault(key, set()).add(step)
        self.last_step = max(self.last_step, int(step))
        self._write_pending()
        self.flush()

    def log_image(self, image, artifact_file: str) -> None:
        """An image artifact (e.g. a sample grid), queued like a metric."""
        from PIL import Image

        path = self.outbox / ARTIFACTS_DIR / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        Image.fromarray(image).save(partial, format="PNG")
        os.replace(partial, path)  # a kill mid-write leaves no half image to upload
        self.flush()

    def log_arrays(self, artifact_file: str, **arrays) -> None:
        """Arrays as one compressed `.npz` artifact (e.g. images kept for a later measurement),
        queued like a metric."""
        import numpy as np

        path = self.outbox / ARTIFACTS_DIR / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(partial, path)
        self.flush()

    def flush(self, wait: bool = False) -> bool:
        """Send what waits; True when nothing is left. With `wait`, keep trying until it is all
        sent (the end of a run). Raises `TrackingOutageError` once the server has been away
        longer than the limit."""
        while True:
            if self._send():
                if self.down_since is not None:
                    log.info("tracking server back after %.0f s: everything waiting is logged",
                             time.monotonic() - self.down_since)
                self.down_since = None
                return True
            now = time.monotonic()
            if self.down_since is None:
                self.down_since = now
                log.warning("tracking server unavailable: run %s keeps training and holds %d "
                            "metric values and %d files in %s until it answers (for at most "
                            "%.0f s)", self.run_id, len(self.pending), len(self._artifacts()),
                            self.outbox, self.limits.tracking_outage_s)
            if now - self.down_since > self.limits.tracking_outage_s:
                raise TrackingOutageError(self._outage_message(now - self.down_since))
            if not wait:
                return False
            time.sleep(min(self.limits.tracking_probe_s, self.limits.tracking_outage_s))

    def _send(self) -> bool:
        artifacts = self._artifacts()
        if not self.pending and not artifacts:
            return True
        if not outages.reachable(self.limits.tracking_probe_s):
            return False
        try:
            with outages.single_try():  # the outbox retries at the next epoch, not MLflow now
                if self.pending:
                    outages.log_metric_rows(self.run_id, self.pending)
                    self.pending = []
                    self._write_pending()
                for path in artifacts:
                    relative = path.relative_to(self.outbox / ARTIFACTS_DIR)
                    parent = relative.parent.as_posix()
                    outages.upload_artifact(self.run_id, path,
                                             None if parent == "." else parent)
                    path.unlink()
        except Exception as exc:
            if not outages.is_outage(exc):
                raise
            log.debug("sending to the tracking server failed: %s", exc)
            return False
        return True

    def _artifacts(self) -> list[Path]:
        folder = self.outbox / ARTIFACTS_DIR
        return sorted(p for p in folder.rglob("*") if p.is_file()
                      and not p.name.endswith(".partial")) if folder.is_dir() else []

    def _read_pending(self) -> list[dict]:
        path = self.outbox / METRICS_FILE
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _write_pending(self) -> None:
        path = self.outbox / METRICS_FILE
        if not self.pending:
            path.unlink(missing_ok=True)
            return
        self.outbox.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(METRICS_FILE + ".partial")
        partial.write_text("".join(json.dumps(row) + "\n" for row in self.pending))
        os.replace(partial, path)

    def _outage_message(self, seconds: float) -> str:
        env = RELIABILITY_ENV_PREFIX + "TRACKING_OUTAGE_S"
        return (f"the tracking server {outages.tracking_uri()} has not answered for "
                f"{seconds:.0f} s (limit {self.limits.tracking_outage_s:.0f} s, {env}): run "
                f"{self.run_id} stopped after step {self.last_step}; its checkpoint and "
                f"{len(self.pending)} unsent metric values are kept in "
                f"{self.outbox.parent}. Once the server is back, continue it with "
                f"`--resume {self.run_id}` and the same options")
