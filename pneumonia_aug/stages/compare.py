"""The `compare` stage: Table 1 of one comparison group, our numbers beside the paper's, from
the runs `stages.compare_runs` selects (a study's, or the experiment's; one group; one
generated set per row).

Writes `table1.md`, `table1.csv`, `table1.html` (self-contained), `accuracy.png` and
`forest.png` (each GAN row's difference from its Original) to `output_dir`, each stating the
group's scale, and logs them to a compare run whose description leads with the table in short
and the forest plot (`stages.table_page`), then holds the whole table. A study copies them to
its own run, whose page leads with them too (`describe.describe_study`). With `planned_seeds`,
each GAN row says where it stands in the plan: `interim: k of N planned seeds` and the decision
at its last planned look. The legend names the rows' GAN design and what it lets their
intervals cover.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.config import CompareConfig
from pneumonia_aug.contract import (
    ACCURACY_PLOT,
    COMPARE,
    FOREST_PLOT,
    PREDICTIONS_ARTIFACT,
    TABLE_CSV,
    TABLE_HTML,
    TABLE_MD,
    TABLE_OUTPUTS,
)
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.evaluation import report
from pneumonia_aug.evaluation.groups import KEY_TAG, Scale
from pneumonia_aug.evaluation.legend import GAN_SEEDS, UNRECORDED
from pneumonia_aug.evaluation.table import summarize
from pneumonia_aug.stages import describe, table_page
from pneumonia_aug.stages.compare_runs import select_runs
from pneumonia_aug.stages.tags import stage_tags

log = logging.getLogger(__name__)


def write_reports(table: pd.DataFrame, scale: Scale, output_dir: Path,
                  gan_seeds: str = UNRECORDED) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: output_dir / name for name in (*TABLE_OUTPUTS, FOREST_PLOT)}
    paths[TABLE_MD].write_text(report.to_markdown(table, scale, gan_seeds))
    report.to_csv(table, paths[TABLE_CSV])
    report.accuracy_chart(table, scale).savefig(paths[ACCURACY_PLOT], dpi=120,
                                                bbox_inches="tight")
    report.forest_plot(table, scale).savefig(paths[FOREST_PLOT], dpi=120, bbox_inches="tight")
    paths[TABLE_HTML].write_text(report.to_html(table, scale, paths[ACCURACY_PLOT],
                                                paths[FOREST_PLOT], gan_seeds=gan_seeds))
    return paths


@dataclass
class Compared:
    """What `compare` made: its run and the files it wrote."""

    run_id: str
    paths: dict[str, Path]


def _description(origin: str, table: pd.DataFrame, scale: Scale, markdown: str,
                 run_id: str) -> str:
    """The compare run's page: its origin and links, Table 1 in short with the forest plot,
    then the whole table (cut to MLflow's cap on a tag, the rest in table1.md)."""
    experiment = tracking.run_info(run_id).info.experiment_id
    head = table_page.lead(table, scale.line(), experiment, run_id, head=origin) + "\n\n"
    room = tracking.TAG_VALUE_LIMIT - len(head) - 80
    body = markdown.split("\n", 1)[-1].strip()  # the scale line is in the lead
    if len(body) > room:
        body = body[:room] + f"\n... (the whole table: {TABLE_MD})"
    return head + "### Table 1\n\n" + body


def build_compare(cfg: CompareConfig, run_ids: list[str] | None = None,
                  expected_settings=None, expected_seeds=None,
                  extra_params: dict | None = None, run_id: str = "",
                  gan_seeds: str = "") -> Compared:
    """Build the table of one comparison group and log it as a compare run (a new one, or the
    study's claimed `run_id`). `gan_seeds`: the GAN design of the rows
    (`evaluation.legend.GAN_SEEDS`); '' = what the runs recorded (their comparison key's
    part)."""
    experiment = tracking.experiment_id(cfg.experiment_name)
    if experiment is None:
        raise PneumoniaAugError(f"no experiment named {cfg.experiment_name!r}: run "
                                "train_classifier (or the main study) first, or pass the right "
                                "experiment_name")
    sel = select_runs(cfg, experiment, run_ids, expected_settings, expected_seeds)
    runs = sel.runs
    finished = runs[runs["status"] == "FINISHED"]
    log.info("comparing %d classifier runs (%d finished) of group %s over %d settings",
             len(runs), len(finished), sel.key, runs["setting"].nunique())
    predictions = {rid: p for rid in finished["run_id"]
                   if (p := tracking.read_csv_artifact(rid, PREDICTIONS_ARTIFACT)) is not None}
    table = summarize(runs, predictions, sel.expected_settings, sel.expected_seeds,
                      cfg.planned_seeds, cfg.planned_looks)
    counts = table["n_runs"]  # finished runs per setting, one per seed
    scale = Scale(sel.key, runs["parts"].iloc[0], tuple(sorted(set(finished["seed"]))),
                  (int(counts.min()), int(counts.max())))
    design = gan_seeds or scale.parts.get("gan_seeds", UNRECORDED)
    paths = write_reports(table, scale, Path(cfg.output_dir),
                          design if design in GAN_SEEDS else UNRECORDED)
    # Under a study the study is the active run: the table is of its runs.
    study = sel.study_run_id or tracking.current_run_id()
    origin = describe.compare_run(len(runs), study, sel.key)
    with tracking.start_run(cfg.experiment_name, run_name=COMPARE,
                            tags=stage_tags(COMPARE, **{KEY_TAG: sel.key}),
                            run_id=run_id) as run:
        run_id = run.info.run_id
        tracking.log_params({**cfg.to_dict(), "n_runs": len(runs), "study_run_id": study,
                             **(extra_params or {})})
        tracking.log_dict({"run_ids": runs["run_id"].tolist(), "group": sel.key,
                           "groups_found": sel.groups, "left_out": sel.left_out},
                          "compared_runs.json")
        for path in paths.values():
            tracking.log_artifact(path)
        for row in table.itertuples():
            if row.n_runs:
                tracking.log_metrics({f"accuracy_mean/{row.setting}": row.accuracy_mean,
                                      f"n_runs/{row.setting}": row.n_runs})
        tracking.describe_run(run_id, _description(origin, table, scale,
                                                   paths[TABLE_MD].read_text(), run_id))
    return Compared(run_id, paths)


def run_compare(cfg: CompareConfig, run_ids: list[str] | None = None,
                expected_settings=None, expected_seeds=None,
                extra_params: dict | None = None, run_id: str = "", gan_seeds: str = "") -> str:
    """`build_compare`, for those that need the run id only (the study); return it."""
    return build_compare(cfg, run_ids, expected_settings, expected_seeds, extra_params, run_id,
                         gan_seeds).run_id
