"""Which classifier runs `compare` tabulates (the `compare` stage: `stages.compare`).

Which runs (`CompareConfig.source`):
- `study` (default): the classifier runs a study used (its `study/runs.json`, reused runs
  included): `parent_run_id`, or the newest finished study of the experiment (none: as
  `experiment`).
- `experiment`: every classifier run of the experiment.
Either way the runs are split by comparison key (`evaluation.groups`): one table per group,
never a row that mixes groups. Found groups are listed with the key parts they differ in;
`group` picks one, else the study's only group or the experiment's newest complete group is
taken. Nor does a row mix generated sets: where a GAN setting's runs of the group drew from
several, the runs of the set of its newest run are kept and the others left out, named in the
log and in `compared_runs.json`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.config import PER_SEED, CompareConfig
from pneumonia_aug.contract import (
    STUDY,
    STUDY_RUNS_ARTIFACT,
    TAG_GENERATED_SET,
    TAG_SEED,
    TAG_SETTING,
    TAG_STAGE,
    TAG_SYNTHETIC_RUN,
    TEST,
    TRAIN_CLASSIFIER,
    current_metrics,
    metric,
)
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.evaluation.groups import (
    KEY_TAG,
    UNKNOWN,
    differing_parts,
    parts_of_run,
)
from pneumonia_aug.evaluation.table import METRICS, baseline_of
from pneumonia_aug.settings import parse_setting

log = logging.getLogger(__name__)
UNKEYED = "(no comparison key: made before keys were recorded)"


def classifier_runs(experiment_ids: list[str], run_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per classifier run (all of the experiments', or those in `run_ids`): run_id,
    setting, seed, status, start_time, key, parts, generated_set, and the Table 1 metrics
    under their names (`test/accuracy`, ...), read from runs of any version
    (`contract.current_metrics`)."""
    query = f"tags.{TAG_STAGE} = '{TRAIN_CLASSIFIER}'"
    if run_ids is not None:
        ids = ", ".join(f"'{r}'" for r in run_ids) or "''"
        query += f" and attributes.run_id IN ({ids})"
    rows = []
    for run in tracking.search_runs(experiment_ids, query):
        metrics, tags = current_metrics(run.data.metrics), run.data.tags
        rows.append({"run_id": run.info.run_id, "setting": tags.get(TAG_SETTING, ""),
                     "seed": int(tags.get(TAG_SEED, -1)), "status": run.info.status,
                     "start_time": run.info.start_time, "key": tags.get(KEY_TAG, UNKEYED),
                     "parts": parts_of_run(_normalized(run.data.params), tags),
                     "generated_set": _generated_set(tags),
                     **{metric(TEST, m): metrics.get(metric(TEST, m), float("nan"))
                        for m in METRICS}})
    columns = ["run_id", "setting", "seed", "status", "start_time", "key", "parts",
               "generated_set", *(metric(TEST, m) for m in METRICS)]
    return pd.DataFrame(rows, columns=columns)


def _normalized(params: dict) -> dict:
    """Params as one spelling (`mlflow run` logs them as typed: `1e-3` and `0.001` alike)."""
    return {k: tracking.normalize_param(v) for k, v in params.items()}


def _generated_set(tags: dict) -> str:
    """The generated images a GAN setting's run drew from (their digest); `unknown` for a GAN
    run made before it was recorded; "" for an Original run."""
    return tags.get(TAG_GENERATED_SET) or (UNKNOWN if tags.get(TAG_SYNTHETIC_RUN) else "")


def one_set_per_row(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs, each setting's drawn from one generated set (the shared GAN design; in the
    per-seed design every seed draws from its own): where they drew from several, the runs of
    the set of the setting's newest run; and one line per setting so cut."""
    keep = pd.Series(True, index=runs.index)
    notes = []
    for setting, row in runs.groupby("setting", sort=False):
        if row["parts"].iloc[0].get("gan_seeds") == PER_SEED:
            continue
        counts = row["generated_set"].value_counts()
        if len(counts) < 2:
            continue
        newest = row.loc[row["start_time"].idxmax(), "generated_set"]
        left_out = row[row["generated_set"] != newest]
        keep[left_out.index] = False
        notes.append(f"{setting}: its runs differ in generated_set ("
                     + ", ".join(f"{s} by {n} runs" for s, n in counts.items())
                     + f"); kept those of {newest} (the newest), left out "
                     + ", ".join(left_out["run_id"]))
    return runs[keep], notes


@dataclass
class Selection:
    """The runs of one group, and what it was chosen from."""

    runs: pd.DataFrame
    key: str
    groups: list[str]  # one line per group found
    expected_settings: list[str]
    expected_seeds: list[int]
    study_run_id: str = ""
    left_out: list[str] = field(default_factory=list)  # runs cut from a row (one_set_per_row)


def _complete(runs: pd.DataFrame) -> bool:
    """Every GAN setting of the group has finished runs of its Original baseline too."""
    done = {parse_setting(s) for s in set(runs.loc[runs["status"] == "FINISHED", "setting"])}
    names = {s.name for s in done}
    return bool(done) and all(baseline_of(s) in names for s in done if s.gan)


def describe_groups(runs: pd.DataFrame) -> list[str]:
    lines = []
    for key, group in runs.groupby("key", sort=False):
        parts = group["parts"].iloc[0]
        lines.append(f"{key}: {len(group)} runs, {group['setting'].nunique()} settings, seeds "
                     f"{sorted(set(group['seed']))}, {parts.get('image_size', '?')} px, "
                     f"{parts.get('epochs', '?')} epochs, cap "
                     f"{parts.get('max_images_per_split', '?')}"
                     + ("" if _complete(group) else " (incomplete)"))
    return lines


def _groups_text(runs: pd.DataFrame, sep: str = "; ") -> str:
    """The groups found, and the key parts they differ in."""
    lines = describe_groups(runs)
    if len(lines) > 1:
        firsts = runs.groupby("key", sort=False)["parts"].first()
        lines.append(f"they differ in {differing_parts(firsts) or 'no recorded part'}")
    return sep.join(lines)


def choose_group(runs: pd.DataFrame, group: str, study: bool) -> str:
    """The key to tabulate: `group` (a key or its start), else the only one of a study, else
    the newest complete group (by its newest run)."""
    keys = list(dict.fromkeys(runs["key"]))
    if group:
        matches = [k for k in keys if k.startswith(group)]
        if len(matches) != 1:
            raise PneumoniaAugError(f"group {group!r} matches {len(matches)} of the groups found:"
                                    f" {_groups_text(runs)}")
        return matches[0]
    if len(keys) == 1:
        return keys[0]
    if study:
        raise PneumoniaAugError(f"the study's runs fall into {len(keys)} comparison groups "
                                f"({_groups_text(runs)}): pass --group KEY")
    newest = runs.groupby("key")["start_time"].max().sort_values(ascending=False)
    complete = [k for k in newest.index if _complete(runs[runs["key"] == k])]
    chosen = (complete or list(newest.index))[0]
    log.info("comparison groups found (taking %s; --group picks another):\n  %s", chosen,
             _groups_text(runs, "\n  "))
    return chosen


def _newest_study(experiment: str) -> str | None:
    return tracking.latest_finished_run(experiment, {TAG_STAGE: STUDY})


def select_runs(cfg: CompareConfig, experiment: str, run_ids: list[str] | None = None,
                expected_settings=None, expected_seeds=None) -> Selection:
    study = cfg.parent_run_id
    if run_ids is None and cfg.source == "study":
        study = study or _newest_study(experiment) or ""
        if study:
            used = tracking.read_dict_artifact(study, STUDY_RUNS_ARTIFACT)
            if used is None:
                raise PneumoniaAugError(f"run {study} has no {STUDY_RUNS_ARTIFACT}: is it a "
                                        "finished study run? (see the `main` entry point)")
            run_ids = [u["run_id"] for u in used["used"] if u["stage"] == TRAIN_CLASSIFIER]
            params = tracking.run_info(study).data.params
            seeds = params.get("seeds_resolved", params.get("seeds", ""))
            expected_seeds = expected_seeds or [int(s) for s in seeds.split(",") if s.strip()]
        else:
            log.info("no finished study in the experiment: comparing all its classifier runs")
    runs = classifier_runs([experiment], run_ids)
    if runs.empty:
        raise PneumoniaAugError(f"no classifier runs in experiment {cfg.experiment_name!r}"
                                f"{' for study ' + study if study else ''}: run "
                                "train_classifier (or the main study) first")
    key = choose_group(runs, cfg.group, study=run_ids is not None)
    chosen, left_out = one_set_per_row(runs[runs["key"] == key])
    for note in left_out:
        log.warning("group %s, %s", key, note)
    settings = list(expected_settings or []) or sorted(set(chosen["setting"]))
    return Selection(chosen, key, describe_groups(runs), settings,
                     list(expected_seeds or []), study, left_out)
