"""Run one step of the kit as a child process, its output teed to the log, stopped at a deadline.

At the deadline the child's process group gets SIGTERM: a training stage turns it into Ctrl-C,
so its MLflow run ends KILLED with everything logged so far kept, and the study's parent run
ends KILLED too. Whatever still runs `grace` seconds later gets SIGKILL. Stdlib only: this
runs on the GPU machine before the carried wheels are installed.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass
class Outcome:
    returncode: int | None
    seconds: float
    stopped: bool  # the deadline came first: SIGTERM (and SIGKILL if needed) ended it
    killed: bool = False  # SIGTERM was not enough
    cpu_seconds: float = 0.0  # user + system time of the child and what it waited for


class Tee:
    """Lines to the console and to the log file, each with the seconds since the kit began."""

    def __init__(self, log: TextIO, start: float):
        self.log, self.start = log, start
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        stamped = f"[{time.monotonic() - self.start:6.0f}s] {text.rstrip()}\n"
        with self.lock:
            sys.stdout.write(stamped)
            sys.stdout.flush()
            self.log.write(stamped)
            self.log.flush()


def run_until(command: list[str], tee: Tee, deadline: float, env: dict | None = None,
              cwd: Path | None = None, grace: float = 30.0) -> Outcome:
    """Run `command` until it exits or `deadline` (a `time.monotonic()` value) passes."""
    start, cpu_before = time.monotonic(), _children_cpu()
    tee.line("$ " + " ".join(command))
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace", env=env, cwd=cwd,
                             start_new_session=True)  # its own group: SIGTERM reaches helpers
    reader = threading.Thread(target=_pump, args=(child, tee), daemon=True)
    reader.start()
    stopped = killed = False
    try:
        child.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        stopped = True
        tee.line(f"kit: time budget reached, stopping (SIGTERM) after {grace:.0f} s grace")
        killed = not _stop(child, grace)
        if killed:
            tee.line("kit: still running after SIGTERM: SIGKILL")
    reader.join(timeout=5)
    seconds, cpu = time.monotonic() - start, _children_cpu() - cpu_before
    tee.line(f"kit: exit code {child.returncode} after {seconds:.0f} s ({cpu:.0f} s of CPU)")
    return Outcome(child.returncode, seconds, stopped, killed, cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pump(child: subprocess.Popen, tee: Tee) -> None:
    for line in child.stdout:
        tee.line(line)


def _stop(child: subprocess.Popen, grace: float) -> bool:
    """SIGTERM the group, SIGKILL it after `grace`; True if SIGTERM was enough."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return sig == signal.SIGTERM
        try:
            child.wait(timeout=wait)
            return sig == signal.SIGTERM
        except subprocess.TimeoutExpired:
            continue
    return False
