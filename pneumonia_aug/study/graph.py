"""The study as a graph of stages, and the walk that runs each once its upstream is done.

A `Node` is one stage (or one quick step in the driver, such as choosing the feature
network) with the names of the nodes it needs. Its `make` turns their results into the
`StageCall` that `Study.stage` reuses or launches, or into a value (the feature network's
URI), or None when an upstream failed. What runs the call (in this process, in a stage
process, as a Ray task) is the executor's business (`study.executors`); the walk only keeps
the order: every node after its dependencies, the lowest-numbered ready node first, so one at
a time is exactly the order the nodes were listed in.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageCall:
    """One stage as `Study.stage` sees it (reuse key parts), and what runs it: `config` for an
    executor, or `run_here(run_id)`, a call the driver makes itself into the claimed run
    (compare)."""

    stage: str
    label: str
    params: dict
    upstream: dict
    config: object | None = None
    run_here: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Node:
    name: str  # unique: the stage's label
    kind: str  # the stage (contract name), or a driver step's name
    deps: tuple[str, ...]
    make: Callable[[dict], StageCall | str | None] = field(repr=False)
    config: object | None = field(default=None, repr=False)  # as known before upstream runs
    in_driver: bool = False  # quick, and run in the driver's main thread, where the study run
    # is the active run (its stage runs nest under it as they always did)
    seed: int | None = None  # the seed whose pair it is part of (None: shared by the seeds)


def check_order(nodes: list[Node]) -> None:
    """Every dependency is an earlier node (so listing order is an order to run them in)."""
    seen: set[str] = set()
    for node in nodes:
        missing = [d for d in node.deps if d not in seen]
        if missing or node.name in seen:
            raise ValueError(f"node {node.name!r}: {'duplicate' if not missing else missing}")
        seen.add(node.name)


def walk(nodes: list[Node], run: Callable[[Node, dict], object], width: int = 1,
         stop: Callable[[], None] = lambda: None) -> dict[str, object]:
    """Run every node with `run(node, results so far)` once its dependencies have results; up
    to `width` at a time in threads (driver nodes in this thread). On any exception, Ctrl-C
    included, `stop()` ends what runs (the executor's processes or tasks) and it re-raises.
    Returns each node's result by name."""
    check_order(nodes)
    results: dict[str, object] = {}
    if width <= 1:
        for node in nodes:
            results[node.name] = run(node, results)
        return results
    pending, running = list(nodes), {}
    pool = ThreadPoolExecutor(width, thread_name_prefix="stage")
    try:
        while pending or running:
            _start_ready(pending, running, results, run, pool, width)
            if not running:
                break  # everything ran (the last nodes in the driver)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future).name] = future.result()
    except BaseException:
        stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _start_ready(pending: list[Node], running: dict[Future, Node], results: dict, run, pool,
                 width: int) -> None:
    """Start the ready nodes, lowest-numbered first, while there is room; a driver node runs
    at once, here (it may make more nodes ready, so look again)."""
    again = True
    while again:
        again = False
        for node in list(pending):
            if not all(d in results for d in node.deps):
                continue
            if node.in_driver:
                pending.remove(node)
                results[node.name] = run(node, results)
                again = True
                break
            if len(running) < width:
                pending.remove(node)
                running[pool.submit(run, node, dict(results))] = node
