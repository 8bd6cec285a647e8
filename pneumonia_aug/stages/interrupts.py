"""SIGTERM handled as Ctrl-C, in a stage process and in a study process alike, and neither one
raised inside the tracking store's database code (standard library only).

Python raises Ctrl-C's KeyboardInterrupt wherever the main thread happens to be. Raised inside
SQLAlchemy, in the middle of a read from a SQLite store, it leaves that read's statement open,
and the statement keeps SQLite's read lock for as long as the traceback lives, which is while
the run is being ended. Every write to the store then waits out the lock timeout and fails:
this run's own KILLED, and the writes of every other process on the same store. So a signal
that comes while the main thread is in that code is raised as the outermost call into it
returns (milliseconds later; at most the store's own lock timeout).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator


def _outermost_database_frame(frame):
    """The outermost frame, of this one and those that called it, in SQLAlchemy or one of
    MLflow's SQL stores; None if there is none."""
    found = None
    while frame is not None:
        module = frame.f_globals.get("__name__") or ""
        if "sqlalchemy" in module or module.startswith("mlflow.store.db"):
            found = frame
        frame = frame.f_back
    return found


def _interrupt(signum, frame):
    message = f"received signal {signal.Signals(signum).name}"
    outer = _outermost_database_frame(frame)
    if outer is None or sys.gettrace() not in (None, _untraced):  # a debugger's: left alone
        raise KeyboardInterrupt(message)

    def on_return(traced, event, arg):
        if event == "return" and traced is outer:
            sys.settrace(None)
            raise KeyboardInterrupt(message)
        return on_return

    outer.f_trace_lines = False
    outer.f_trace = on_return
    sys.settrace(_untraced)  # tracing on in this thread; the frames it calls are not traced


def _untraced(frame, event, arg):
    return None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (`kill`, a scheduler's preemption, torchrun stopping its workers) like
    Ctrl-C: the run ends KILLED rather than FAILED, and its checkpoint stays for `--resume`.
    Ctrl-C too, where nothing else handles it; neither is raised inside the store's database
    code (module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (e.g. a stage called from a thread)
        return
    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, _interrupt) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
