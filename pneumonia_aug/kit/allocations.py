"""Which pairs finished in which run of a study that grew over several `kit run`s
(`allocations.md` beside the table): read from the merged store alone.

Every stage run knows the study that launched it (`stages.describe.launcher`: its parent, or
`launched_by_study` once a later study reused it), and each `kit run` is one study run. A
seed's pair is complete once every setting of the study has a finished classifier run of that
seed; it completed in the run that launched the last of them to finish. Seeds are listed in the
order their pairs completed: the seed-major order as it actually ran.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path

from pneumonia_aug import tracking
from pneumonia_aug.config import EXPERIMENT_NAME, PROFILES
from pneumonia_aug.contract import STUDY, TAG_SEED, TAG_SETTING, TAG_STAGE
from pneumonia_aug.kit.carry import store_uri
from pneumonia_aug.stages.describe import launcher


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M")


def completed_pairs(studies: list, runs: list) -> dict[str, list[int]]:
    """Study run id -> the seeds whose pair completed in it, in completion order. `studies`:
    the study runs (newest last: its settings define a pair); `runs`: the classifier runs."""
    settings = set(filter(None, studies[-1].data.params.get("settings_resolved", "").split(",")))
    finished: dict[int, dict[str, object]] = defaultdict(dict)
    for run in runs:
        tags = run.data.tags
        if run.info.status == "FINISHED" and tags.get(TAG_SETTING) in settings:
            seed = int(tags[TAG_SEED])
            known = finished[seed].get(tags[TAG_SETTING])
            if known is None or run.info.end_time < known.info.end_time:
                finished[seed][tags[TAG_SETTING]] = run  # the first to finish counts
    done = []
    for seed, by_setting in finished.items():
        if set(by_setting) == settings:
            last = max(by_setting.values(), key=lambda r: r.info.end_time)
            done.append((last.info.end_time, seed, launcher(last.data.tags)))
    by_study: dict[str, list[int]] = defaultdict(list)
    for _, seed, study in sorted(done):
        by_study[study].append(seed)
    return by_study


def allocations_page(store_dir: Path) -> str:
    """`allocations.md`: one row per study run (one per `kit run`) of the merged store; the
    planned seeds are its newest study's profile's."""
    with tracking.reading_store(store_uri(store_dir)):
        experiment = tracking.experiment_id(EXPERIMENT_NAME)
        studies = sorted(tracking.search_runs([experiment], f"tags.{TAG_STAGE} = '{STUDY}'"),
                         key=lambda r: r.info.start_time)
        runs = tracking.search_runs([experiment], f"tags.{TAG_STAGE} = 'train_classifier'")
    if not studies:
        return "No study run in the store.\n"
    pairs = completed_pairs(studies, runs)
    launched = defaultdict(int)
    for run in runs:
        launched[launcher(run.data.tags)] += 1
    total, lines = 0, ["| run | study run | started | classifier runs launched | pairs "
                       "completed | seeds, in the order they completed | complete so far |",
                       "|---:|---|---|---:|---:|---|---:|"]
    for i, study in enumerate(studies, 1):
        seeds = pairs.get(study.info.run_id, [])
        total += len(seeds)
        lines.append(f"| {i} | `{study.info.run_id[:8]}` | {_when(study.info.start_time)} UTC | "
                     f"{launched[study.info.run_id]} | {len(seeds)} | "
                     f"{', '.join(map(str, seeds)) or '-'} | {total} |")
    profile = PROFILES.get(studies[-1].data.params.get("profile", ""))
    of = f" of {profile.planned_seeds} planned" if profile and profile.planned_seeds else ""
    return (f"Pairs per run of the study (each a `kit run`): {total} complete{of}, settings "
            f"{studies[-1].data.params.get('settings_resolved', '?')}.\n\n"
            + "\n".join(lines) + "\n")
