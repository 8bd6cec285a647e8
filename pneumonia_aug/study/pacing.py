"""Which seeds a study may still start under a time budget (`StudyConfig.time_budget_s`).

A machine held for a fixed time (a scheduler's job limit, a preemptible instance, a booked
slot) stops the study where it is. A seed started too late would leave half a pair: an
Original without its GAN row, or a GAN whose generation never ran. So a seed starts only while
the time left holds its pair: the longest pair that finished so far, or, before any did, the
dry run's estimate of one (`study.plan.seed_seconds`). Stages of a seed already started always
run. Without a budget every seed starts. The budget counts from the start of the study's
process (what a job limit counts), not from its first stage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

from pneumonia_aug import machine
from pneumonia_aug.study.graph import Node

log = logging.getLogger(__name__)


class Pacing:
    def __init__(self, budget_s: float, estimate_s: float, nodes: list[Node],
                 clock: Callable[[], float] = time.time, t0: float | None = None):
        self.budget_s, self.estimate_s, self.clock = budget_s, estimate_s, clock
        self.t0 = clock() if t0 is None else t0
        self.remaining = Counter(n.seed for n in nodes if n.seed is not None)
        self.started: dict[int, float] = {}
        self.spans: list[float] = []
        self.left_out: list[int] = []
        self._lock = threading.Lock()

    @classmethod
    def for_study(cls, cfg, nodes: list[Node], width: int) -> Pacing:
        if not cfg.time_budget_s:
            return cls(0.0, 0.0, nodes)
        from pneumonia_aug.study.plan import seed_seconds

        estimate = seed_seconds(cfg, nodes, width)
        started = machine.start_time(os.getpid())  # the process's start, in unix seconds
        log.info("[study] time budget %.0f s from the process's start: a seed starts while its "
                 "pair fits (about %.0f s by the estimate)", cfg.time_budget_s, estimate)
        return cls(cfg.time_budget_s, estimate, nodes, t0=started if started > 0 else None)

    @property
    def pair_s(self) -> float:
        """What one seed's pair is expected to take from its start."""
        return max([self.estimate_s, *self.spans])

    def may_start(self, node: Node) -> bool:
        """Whether the node may run: always, but for the first node of a seed that would not
        finish in the budget (its seed is then left out, all its nodes with it)."""
        if node.seed is None:
            return True
        with self._lock:
            if node.seed in self.started:
                return True
            if node.seed in self.left_out:
                return False
            elapsed = self.clock() - self.t0
            if self.budget_s and elapsed + self.pair_s > self.budget_s:
                log.warning("[study] seed %d not started: %.0f s of %.0f left, a pair takes "
                            "about %.0f s", node.seed, self.budget_s - elapsed, self.budget_s,
                            self.pair_s)
                self.left_out.append(node.seed)
                return False
            self.started[node.seed] = self.clock()
            return True

    def done(self, node: Node) -> None:
        """A node of a started seed has ended; the seed's last one records its pair's span."""
        if node.seed is None:
            return
        with self._lock:
            if node.seed not in self.started:
                return
            self.remaining[node.seed] -= 1
            if not self.remaining[node.seed]:
                self.spans.append(self.clock() - self.started[node.seed])
