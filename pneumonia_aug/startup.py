"""A process's first imports, with Python's cyclic garbage collector paused.

A command's first imports (torch, torchvision, MLflow, scikit-learn, SciPy, matplotlib) make a
few hundred thousand objects that live as long as the process, and the collector, which runs
every few hundred new objects, walks them again and again while they are made.
`paused_collector` pauses it while a block imports, then freezes what exists (`gc.freeze`:
later collections skip it, and a process forked from this one shares those pages instead of
copying each one the collector touches) and lets it run again. The time it saves:
docs/development.md, "Test time". Standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    """Pause the collector for the block; then, if the block imported anything, freeze what
    exists; then resume it as it was (an inner block leaves it paused for the outer one). A
    block that imported nothing new freezes nothing: garbage a long-lived process made since
    its start stays collectable."""
    enabled, modules = gc.isenabled(), len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > modules:
            gc.freeze()
        if enabled:
            gc.enable()
