"""SIGTERM handled as Ctrl-C, in a stage process and in a study process alike (standard library
only)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (`kill`, a scheduler's preemption, torchrun stopping its workers) like
    Ctrl-C: the run ends KILLED rather than FAILED, and its checkpoint stays for `--resume`."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (e.g. a stage called from a thread)
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
