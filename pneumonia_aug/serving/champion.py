"""The champion gate: whether a newly registered classifier version takes
`pneumonia-chexnet@champion` from the version that holds it.

- A version trained with a debug cap (`max_images_per_split` > 0) never does.
- The first eligible version does: there is no champion to compare it with.
- After that, a candidate does only when both were tested on the same test set (the digest of
  the `test` dataset input of their training runs) and, on it, the candidate's test AUROC is at
  most `ChampionGate.auroc_margin` below the champion's and its sensitivity is at least
  `ChampionGate.min_sensitivity`. Sensitivity is `test_op/recall` (the recall at a chosen
  operating point) when the run logged one, else `test/recall`.

The values are those the two training runs logged (read under today's names whichever version
logged them: `contract.current_metrics`); nothing is evaluated again. They are checked
with MLflow's model validation (`MetricThreshold`, `mlflow.validate_evaluation_results`, in
`tracking/validation.py`). MLflow compares with a baseline only by a required improvement (its
`min_absolute_change` must be positive), so the tolerated drop in AUROC is an absolute
threshold: the champion's AUROC less the margin. The decision, its reason and the compared
values become the candidate's version tags and end its description; a candidate that loses
stays registered, without the alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pneumonia_aug import tracking
from pneumonia_aug.config import ChampionGate
from pneumonia_aug.contract import (
    CHAMPION,
    CLASSIFIER_MODEL,
    TEST_AUROC,
    TEST_OP_RECALL,
    TEST_RECALL,
    current_metrics,
)
from pneumonia_aug.serving.registry import DEBUG_CAP_TAG, RUN_ID_TAG

TEST_SET = "test"  # the dataset input a training run logs its test manifest as
AUROC = TEST_AUROC
SENSITIVITIES = (TEST_OP_RECALL, TEST_RECALL)  # the first one a run logged
DECIDE_ATTEMPTS = 3  # decisions when the alias keeps moving under this one (then it is set)
PROMOTED, KEPT = "promoted", "kept"


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class Evidence:
    """What a version's training run logged on its test set."""

    test_set: str  # digest, "" when the run logged none
    auroc: float | None
    sensitivity: float | None
    sensitivity_metric: str

    @classmethod
    def of(cls, version) -> Evidence:
        run_id = version.run_id or version.tags.get(RUN_ID_TAG, "")
        if not run_id:
            return cls("", None, None, SENSITIVITIES[-1])
        metrics = current_metrics(tracking.run_info(run_id).data.metrics)
        key = next((k for k in SENSITIVITIES if k in metrics), SENSITIVITIES[-1])
        return cls(tracking.input_digest(run_id, TEST_SET), metrics.get(AUROC),
                   metrics.get(key), key)

    def tags(self, prefix: str = "") -> dict:
        """E.g. `test_auroc`, `test_sensitivity`, `test_set_digest` (after `prefix`)."""
        return {f"{prefix}test_set_digest": self.test_set or "none",
                f"{prefix}test_auroc": _number(self.auroc),
                f"{prefix}test_sensitivity": _number(self.sensitivity),
                f"{prefix}sensitivity_metric": self.sensitivity_metric}


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    champion: str | None  # the version that holds @champion afterwards
    compared_with: str = ""  # the champion the candidate was compared with, "" for none
    values: dict = field(default_factory=dict)  # the compared values, as version tags

    def tags(self) -> dict:
        return {"champion_decision": PROMOTED if self.promoted else KEPT,
                "champion_reason": self.reason,
                "compared_with_version": self.compared_with or "none"} | self.values

    def paragraph(self) -> str:
        return f"**@{CHAMPION}:** {self.tags()['champion_decision']}: {self.reason}."


def compare(candidate: Evidence, champion: Evidence, champion_version: str,
            gate: ChampionGate) -> list[str]:
    """Why `candidate` may not take the alias from `champion` (empty: it may)."""
    them = f"champion v{champion_version}'s"
    if not candidate.test_set or candidate.test_set != champion.test_set:
        return [f"tested on another test set than {them} (test digest "
                f"{candidate.test_set or 'none'} vs {champion.test_set or 'none'})"]
    if champion.auroc is None:
        return [f"{them} run logged no {AUROC} to compare with"]
    metrics = {AUROC: candidate.auroc, candidate.sensitivity_metric: candidate.sensitivity}
    failed = tracking.metric_failures(metrics, {
        AUROC: round(champion.auroc - gate.auroc_margin, 9),
        candidate.sensitivity_metric: gate.min_sensitivity})
    why = []
    if AUROC in failed:
        why.append(f"no {AUROC} logged" if candidate.auroc is None else
                   f"AUROC {candidate.auroc:.3f} is more than {gate.auroc_margin:g} below "
                   f"{them} {champion.auroc:.3f}")
    if candidate.sensitivity_metric in failed:
        why.append(f"no {candidate.sensitivity_metric} logged" if candidate.sensitivity is None
                   else f"sensitivity ({candidate.sensitivity_metric}) "
                        f"{candidate.sensitivity:.3f} is below {gate.min_sensitivity:g}")
    return why


def promote_champion(version: str, name: str = CLASSIFIER_MODEL,
                     gate: ChampionGate | None = None) -> Decision:
    """Decide whether the newly registered `version` takes `@champion`, move the alias if it
    does, and write the decision to the version's tags and the end of its description.

    Stages of a study end together: when the alias moved while this one decided (another
    version promoted meanwhile), it decides again against the new champion (up to
    `DECIDE_ATTEMPTS` times). Not a lock: two promotions within one round trip of the store
    can still both move it, the last one winning."""
    gate = gate or ChampionGate()
    candidate = tracking.model_version(name, version)
    for attempt in range(DECIDE_ATTEMPTS):
        current = tracking.alias_version(name, CHAMPION)
        decision = _decide(candidate, current, name, gate)
        if not decision.promoted:
            break
        if attempt == DECIDE_ATTEMPTS - 1 or tracking.alias_version(name, CHAMPION) == current:
            tracking.set_alias(name, CHAMPION, version)
            break
    tracking.tag_version(name, version, decision.tags())
    tracking.add_to_version_description(name, version, decision.paragraph())
    return decision


def _decide(candidate, current: str | None, name: str, gate: ChampionGate) -> Decision:
    """The gate's decision for `candidate` against the version `current` holding the alias."""
    version = str(candidate.version)
    cap = candidate.tags.get(DEBUG_CAP_TAG, "")
    if cap != "0":
        return Decision(False, f"trained with a debug cap ({DEBUG_CAP_TAG} "
                               f"{cap or 'not recorded'}): never champion", current)
    if current is None:
        return Decision(True, "the first version trained on the full data: no champion to "
                              "compare with yet", version, values=Evidence.of(candidate).tags())
    ours, theirs = Evidence.of(candidate), Evidence.of(tracking.model_version(name, current))
    values = ours.tags() | theirs.tags("champion_")
    why = compare(ours, theirs, current, gate)
    if why:
        return Decision(False, "; ".join(why), current, current, values)
    return Decision(
        True, f"on the same test set, AUROC {_number(ours.auroc)} vs champion v{current}'s "
              f"{_number(theirs.auroc)} (at most {gate.auroc_margin:g} lower allowed), "
              f"sensitivity {_number(ours.sensitivity)} (at least {gate.min_sensitivity:g})",
        version, current, values)
