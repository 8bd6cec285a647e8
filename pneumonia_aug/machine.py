"""Facts about this machine: its CPU's name (benches, the study's estimate) and its processes
(the services' stack, the study's claims), read through psutil where the OS keeps them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import psutil

RUNNING = "running"  # not a zombie nor gone: what `process` reports as alive


def cpu_model() -> str:
    """The processor's name, e.g. "Intel(R) Xeon(R) Processor" (Linux), else what Python knows."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def process(pid: int) -> tuple[str, float] | None:
    """(state, start time) of `pid`: `running`, or `zombie` for an exited child not yet
    collected; the start time (seconds since the epoch, 0.01 s steps) tells a live pid from a
    reused one. None if there is no such process."""
    try:
        proc = psutil.Process(pid)
        state, started = proc.status(), round(proc.create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None
    return ("zombie" if state in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD) else RUNNING,
            started)


def start_time(pid: int) -> float:
    """When `pid` started (tells it from a later process with the same pid); -1 if gone."""
    found = process(pid)
    return found[1] if found else -1


def group_members(pgid: int) -> list[int]:
    """Running (not zombie) processes of process group `pgid`."""
    members = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            continue
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members
