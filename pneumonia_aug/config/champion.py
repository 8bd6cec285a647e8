"""When a newly registered classifier takes the champion alias: a policy, not a run
parameter."""

from __future__ import annotations

from dataclasses import dataclass

from pneumonia_aug.config.fields import param


@dataclass(frozen=True)
class ChampionGate:
    """When a newly registered classifier version takes `pneumonia-chexnet@champion` from the
    version that holds it (`serving/champion.py`). Both must have been tested on the same test
    set; the values are those their training runs logged on it."""

    auroc_margin: float = param(0.005, "the candidate's test AUROC may be at most this much "
                                       "below the champion's")
    min_sensitivity: float = param(0.95, "the candidate's test sensitivity (recall of "
                                         "PNEUMONIA: test_op/recall at a chosen operating "
                                         "point when its run logged one, else test/recall) "
                                         "must be at least this")
