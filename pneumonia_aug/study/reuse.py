"""Run reuse for the study, safe when several studies (or parallel stages) run at once.

The key of a stage run is a digest of the entry point, the code version (`provenance`:
the code and dependency files at HEAD plus any uncommitted or untracked change to them, so a
commit of docs or tests alone keeps every run reusable), the parameters (normalised, since
MLflow returns params as strings) and the upstream run ids. So an interrupted study continues
where it stopped, a second identical call launches nothing new, and a changed parameter
reruns exactly the runs that depend on it. Code of unknown version (no git, no baked-in
version) never reuses a run.

**Claims.** MLflow has no unique constraint on tags, so two studies that reach the same stage
at the same moment would both launch it. `claim_or_reuse` prevents that optimistically:

1. A FINISHED run with the key (and the same params) exists: reuse it.
2. Claim: create a RUNNING run tagged with the key, its owner (host:pid) and a heartbeat.
3. Look for *rivals*: other live runs with the key (RUNNING and not stale, see 6).
   - None: this claim wins. The stage is launched with the claimed run's id (`launch(run_id)`:
     the stage's `start_run(run_id=...)` continues it), and a thread renews the heartbeat
     meanwhile. A stage that fails before opening its run (the run never got its stage tag)
     leaves nothing behind: the claimed run is deleted.
   - Some, and this claim is the earliest (start time, then run id): look once more after a
     short pause; if the rivals have given way by then, win as above, else give way.
   - Otherwise give way: tag the claim `claim.duplicate_of` the earliest rival, end it
     KILLED and delete it, and wait (polling) until the key is settled: a FINISHED run
     appears (reuse it), or no live run with the key is left (the winner failed, was killed
     or gave way: claim again from step 1, after a random pause so that two waiters do not
     collide again).
4. Why at most one wins: a claim wins only on a look, made after its own run was created,
   that shows no live rival. Of two winners, the later look would have seen the earlier
   winner's run, which was created before that winner's look and stays live while it runs.
5. The price: a loser's run is deleted (hidden; `mlflow gc` purges it), and two claims that
   see each other cost the later one a pause of about `claim_poll_s`.
6. A run counts as dead (its owner was SIGKILLed, or its host went away) when its owner
   process on this host is gone, or its heartbeat is older than `claim_stale_s`; it is then
   marked KILLED so the key can be claimed again. Heartbeats compare wall clocks: keep the
   hosts' clocks within a fraction of `claim_stale_s`.
7. Once a run has ended (FINISHED, FAILED, KILLED), its claim has served: `claim.owner` and
   `claim.heartbeat` are removed, since only live runs' are ever read (steps 3 and 6; a
   FINISHED run is found by its key and params alone). A run still live when its stage
   returns (its stage process was killed, or ending the run failed) keeps them: they are how
   another study tells that it is dead. A deleted loser keeps `claim.duplicate_of`: the one
   record of why it exists and whom it gave way to.

Limits and defaults: `config.Reliability` (env `PNEUMONIA_AUG_CLAIM_*`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pneumonia_aug import machine, tracking
from pneumonia_aug.config import Reliability
from pneumonia_aug.contract import (
    TAG_CLAIM_HEARTBEAT,
    TAG_CLAIM_OWNER,
    TAG_DUPLICATE_OF,
    TAG_RUN_KEY,
    TAG_STAGE,
)
from pneumonia_aug.provenance import UNKNOWN, code_version

log = logging.getLogger(__name__)
LIVE = ("RUNNING", "SCHEDULED")
CLAIM_TAGS = (TAG_CLAIM_OWNER, TAG_CLAIM_HEARTBEAT)  # read on live runs only: dropped at the end


def run_key(stage: str, params: dict, upstream: dict, code: str | None = None) -> str:
    payload = {"stage": stage, "code": code or code_version(), "upstream": upstream,
               "params": {k: tracking.normalize_param(v) for k, v in sorted(params.items())}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _params_match(run, params: dict) -> bool:
    logged = run.data.params
    return all(tracking.normalize_param(logged.get(k)) == tracking.normalize_param(v)
               for k, v in params.items())


def find_reusable_run(experiment_name: str, key: str, params: dict) -> str | None:
    """A FINISHED run with this key whose logged params match `params`, or None."""
    experiment = tracking.experiment_id(experiment_name)
    if experiment is None or code_version() == UNKNOWN:
        return None
    runs = tracking.search_runs(
        [experiment], f"tags.{TAG_RUN_KEY} = '{key}' and attributes.status = 'FINISHED'",
        newest_first=True, max_results=5)
    return next((run.info.run_id for run in runs if _params_match(run, params)), None)


@dataclass
class Claim:
    run_id: str
    launched: bool  # False: another run with the key was reused


def claim_or_reuse(experiment_name: str, key: str, params: dict, launch: Callable[[str], str],
                   label: str = "", parent_run_id: str = "",
                   limits: Reliability | None = None) -> Claim:
    """Reuse the FINISHED run with `key`, or launch the stage once even when other processes
    ask for the same key at the same moment (protocol: module docstring).

    `launch(run_id)` must open its run with `tracking.start_run(run_id=run_id)` (continuing
    the claimed run; "" when nothing was claimed: a new run) and return the run id; its
    exceptions propagate (the claimed run ends FAILED, or is deleted if the stage failed
    before opening it). The parent is set on the claimed run from the start.
    """
    limits = limits or Reliability.from_env()
    label = label or key
    if code_version() == UNKNOWN:  # no reuse, so nothing to claim
        log.info("[study] %s: launching (code of unknown version: no reuse)", label)
        return Claim(launch(""), True)
    while True:
        found = find_reusable_run(experiment_name, key, params)
        if found:
            log.info("[study] %s: reusing finished run %s", label, found)
            return Claim(found, False)
        claim = _try_claim(experiment_name, key, params, parent_run_id, limits)
        if claim is not None:
            log.info("[study] %s: launching", label)
            return Claim(_launch_into(claim, key, launch, limits), True)
        log.info("[study] %s: another study runs it; waiting for that run", label)
        found = _wait_until_settled(experiment_name, key, params, limits)
        if found:
            log.info("[study] %s: reusing run %s, finished by another study", label, found)
            return Claim(found, False)
        time.sleep(random.uniform(0, limits.claim_poll_s))  # the winner failed: claim again


def _try_claim(experiment_name: str, key: str, params: dict, parent_run_id: str,
               limits: Reliability) -> str | None:
    """Create this claim's run; return its id if it wins, else give way (delete it), None."""
    claim_tags = {TAG_RUN_KEY: key, TAG_CLAIM_OWNER: _owner(), TAG_CLAIM_HEARTBEAT: time.time()}
    if parent_run_id:
        claim_tags[tracking.PARENT_TAG] = parent_run_id
    run_id, started = tracking.create_run(experiment_name, claim_tags)
    for look in range(2):
        rivals, finished = _rivals(experiment_name, key, params, run_id, limits)
        if not rivals and not finished:
            return run_id
        earliest = min(rivals + finished, key=_order)
        if finished or look or _order(earliest) < (started, run_id):
            break
        time.sleep(min(1.0, limits.claim_poll_s))  # the earliest claim: let the others yield
    tracking.tag_run(run_id, {TAG_DUPLICATE_OF: earliest.info.run_id})
    tracking.terminate_run(run_id, "KILLED")
    tracking.delete_run(run_id)
    return None


def _order(run) -> tuple[int, str]:
    return run.info.start_time, run.info.run_id


def _rivals(experiment_name: str, key: str, params: dict, mine: str, limits: Reliability):
    """(other live runs with the key, FINISHED ones with the same params); dead ones KILLED."""
    experiment = tracking.experiment_id(experiment_name)
    runs = tracking.search_runs([experiment], f"tags.{TAG_RUN_KEY} = '{key}'")
    live, finished = [], []
    for run in runs:
        if run.info.run_id == mine:
            continue
        if run.info.status == "FINISHED" and _params_match(run, params):
            finished.append(run)
        elif run.info.status in LIVE:
            if _is_dead(run, limits):
                log.warning("run %s holds key %s but its owner (%s) is gone: marking it KILLED",
                            run.info.run_id, key, run.data.tags.get(TAG_CLAIM_OWNER, "?"))
                tracking.terminate_run(run.info.run_id, "KILLED")
                _drop_claim(run.info.run_id)
            else:
                live.append(run)
    return live, finished


def _wait_until_settled(experiment_name: str, key: str, params: dict,
                        limits: Reliability) -> str | None:
    """Poll until a FINISHED run with the key appears (its id) or no live one is left (None)."""
    while True:
        live, finished = _rivals(experiment_name, key, params, "", limits)
        if finished:
            return max(finished, key=_order).info.run_id
        if not live:
            return None
        time.sleep(limits.claim_poll_s)


def _launch_into(run_id: str, key: str, launch: Callable[[str], str],
                 limits: Reliability) -> str:
    try:
        with _heartbeat(run_id, limits):
            launched = launch(run_id)
    except BaseException:
        _delete_if_unopened(run_id)  # a claim no stage opened leaves nothing behind
        raise
    finally:
        _drop_claim(run_id)  # the heartbeat has stopped: nothing writes the tags again
    if launched != run_id:  # the stage made a run of its own: no claim held
        log.warning("the stage did not continue its claimed run %s; tagging %s with the key "
                    "instead (not safe against a concurrent study)", run_id, launched)
        tracking.delete_run(run_id)
        tracking.tag_run(launched, {TAG_RUN_KEY: key})
    return launched


def _delete_if_unopened(run_id: str) -> None:
    """Delete the claimed run if no stage opened it: every stage's run carries its stage tag
    from the moment it opens, a bare claim does not."""
    try:
        if TAG_STAGE not in tracking.run_tags(run_id):
            tracking.delete_run(run_id)
    except Exception as exc:  # an outage: the claim stays, KILLED later as a dead owner's
        log.debug("could not delete the unopened claim %s: %s", run_id, exc)


def _drop_claim(run_id: str) -> None:
    """Remove the claim's owner and heartbeat from a run that has ended (step 7); a live run,
    or a deleted one, is left as it is."""
    try:
        if tracking.run_info(run_id).info.status not in LIVE:
            tracking.delete_tags(run_id, CLAIM_TAGS)
    except Exception as exc:  # an outage: the tags stay, which no one reads on an ended run
        log.debug("could not drop the claim tags of run %s: %s", run_id, exc)


@contextlib.contextmanager
def _heartbeat(run_id: str, limits: Reliability) -> Iterator[None]:
    """Renew the claim's heartbeat tag every `claim_heartbeat_s` while the stage runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(limits.claim_heartbeat_s):
            try:
                tracking.tag_run(run_id, {TAG_CLAIM_HEARTBEAT: time.time()})
            except Exception as exc:  # an outage: the next beat tries again
                log.debug("heartbeat of run %s failed: %s", run_id, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{machine.start_time(pid)}"




def _is_dead(run, limits: Reliability) -> bool:
    """Its owner process on this host is gone, or its heartbeat is older than the limit."""
    tags = run.data.tags
    host, _, rest = tags.get(TAG_CLAIM_OWNER, "").partition(":")
    pid, _, started = rest.partition(":")
    if host == socket.gethostname() and pid.isdigit() and started not in ("", "-1"):
        if machine.start_time(int(pid)) != float(started):
            return True
    beat = float(tags.get(TAG_CLAIM_HEARTBEAT) or run.info.start_time / 1000)
    return time.time() - beat > limits.claim_stale_s
