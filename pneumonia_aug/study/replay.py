"""The walk replayed on a clock: when each stage of a study would start and end, given how long
each takes, `width` slots, and (with a time budget) the pacing rule that a seed starts only
while its pair can still finish (`study.pacing`).

It follows `study.graph.walk`: a node starts once its dependencies are done and a slot is
free, the lowest-numbered ready node first; a driver step (compare) takes its time but no slot;
what takes no time (reused stages, choosing the feature network) ends as soon as it is ready.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from pneumonia_aug.study.graph import Node


@dataclass
class Timeline:
    """When each node would start and end; the seeds the budget left out (their nodes end,
    without running, as soon as they are reached, as in the walk)."""

    start: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)
    left_out: list[int] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)

    @property
    def wall(self) -> float:
        return max(self.end.values(), default=0.0)

    def seed_spans(self, nodes: list[Node]) -> dict[int, float]:
        """Seed -> from its first node's start to its last node's end (seeds that ran)."""
        spans: dict[int, list[float]] = {}
        for node in nodes:
            if node.seed is not None and node.name not in self.skipped:
                first_last = spans.setdefault(node.seed, [self.start[node.name], 0.0])
                first_last[0] = min(first_last[0], self.start[node.name])
                first_last[1] = max(first_last[1], self.end[node.name])
        return {seed: last - first for seed, (first, last) in spans.items()}

    def complete_seeds(self, nodes: list[Node], by: float) -> list[int]:
        """Seeds that ran and every node of which has ended by `by`."""
        seeds = {n.seed for n in nodes if n.seed is not None} - set(self.left_out)
        return sorted(s for s in seeds if all(
            self.end[n.name] <= by for n in nodes if n.seed == s))


def replay(nodes: list[Node], seconds: dict[str, float], width: int, budget: float = 0.0,
           span: float = 0.0) -> Timeline:
    """Each node's start and end. `seconds[name]`: how long a stage takes (absent: none).
    With `budget`, a seed whose first node would start after `budget - span` is left out."""
    timeline = Timeline()
    pending = list(nodes)
    running: list[tuple[float, int, str, bool]] = []  # (end, order, name, holds a slot)
    order = {node.name: i for i, node in enumerate(nodes)}
    started: set[int] = set()
    now = 0.0
    while pending or running:
        node = _next_ready(pending, timeline, now, running, width)
        while node is not None:
            pending.remove(node)
            timeline.start[node.name] = now
            if node.seed is not None and node.seed not in started:
                if node.seed in timeline.left_out or (budget and now + span > budget):
                    if node.seed not in timeline.left_out:
                        timeline.left_out.append(node.seed)
                    timeline.skipped.add(node.name)
                    timeline.end[node.name] = now
                    node = _next_ready(pending, timeline, now, running, width)
                    continue
                started.add(node.seed)
            took = seconds.get(node.name, 0.0)
            if not took:
                timeline.end[node.name] = now
            else:  # a driver step (compare) takes its time, but no slot
                heapq.heappush(running, (now + took, order[node.name], node.name,
                                         not node.in_driver))
            node = _next_ready(pending, timeline, now, running, width)
        if not running:
            break
        now = running[0][0]
        while running and running[0][0] == now:
            timeline.end[heapq.heappop(running)[2]] = now
    return timeline


def _next_ready(pending: list[Node], timeline: Timeline, now: float,
                running: list[tuple[float, int, str, bool]], width: int) -> Node | None:
    """The lowest-numbered pending node whose dependencies have ended and that may start now:
    a driver node at once, a stage while a slot is free."""
    room = sum(slot for *_, slot in running) < max(1, width)
    for node in pending:
        if (node.in_driver or room) and all(timeline.end.get(d, now + 1) <= now
                                            for d in node.deps):
            return node
    return None
