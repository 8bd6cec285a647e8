"""The `compare` stage: Table 1 from the classifier runs, our numbers beside the paper's.

Writes `table1.md`, `table1.csv`, `table1.html` (self-contained) and `accuracy.png` to
`output_dir`, logs them as artifacts of a compare run (plus per-setting summary metrics),
and returns the run id and the Markdown table.

Which runs: those a study used (`parent_run_id` = the study's run; its `study/runs.json`
lists them, reused ones included), or explicit `run_ids`, or else every classifier run of
the experiment.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pneumonia_aug import comparison, tracking
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.settings import PAPER_TABLE1

log = logging.getLogger(__name__)
STAGE = "compare"
OUTPUTS = ("table1.md", "table1.csv", "table1.html", "accuracy.png")
STUDY_RUNS_ARTIFACT = "study/runs.json"  # written by the study (stages/study.py)


def write_reports(table, output_dir: Path) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: output_dir / name for name in OUTPUTS}
    paths["table1.md"].write_text(comparison.to_markdown(table))
    comparison.to_csv(table, paths["table1.csv"])
    figure = comparison.bar_chart(table)
    figure.savefig(paths["accuracy.png"], dpi=120, bbox_inches="tight")
    paths["table1.html"].write_text(comparison.to_html(table, paths["accuracy.png"]))
    return paths


def _study_run_ids(parent_run_id: str) -> list[str]:
    used = tracking.read_dict_artifact(parent_run_id, STUDY_RUNS_ARTIFACT)
    if used is None:
        raise PneumoniaAugError(f"run {parent_run_id} has no {STUDY_RUNS_ARTIFACT}: is it a "
                                "finished study run? (see the `main` entry point)")
    return [u["run_id"] for u in used["used"] if u["stage"] == "train_classifier"]


def run_compare(experiment_name: str, parent_run_id: str = "", output_dir: str = "outputs/compare",
                expected_settings=PAPER_TABLE1, n_boot: int = 2000,
                run_ids: list[str] | None = None, extra_params: dict | None = None) -> str:
    """Build the table and log it as a compare run; return the run id."""
    experiment = tracking.experiment_id(experiment_name)
    if experiment is None:
        raise PneumoniaAugError(f"no experiment named {experiment_name!r}: run train_classifier "
                                "(or the main study) first, or pass the right experiment_name")
    if parent_run_id and run_ids is None:
        run_ids = _study_run_ids(parent_run_id)
    runs = tracking.classifier_runs([experiment], run_ids)
    if runs.empty:
        raise PneumoniaAugError(f"no classifier runs in experiment {experiment_name!r}"
                                f"{' for study ' + parent_run_id if parent_run_id else ''}: "
                                "run train_classifier first")
    finished = runs[runs["status"] == "FINISHED"]
    log.info("comparing %d classifier runs (%d finished) over %d settings", len(runs),
             len(finished), runs["setting"].nunique())
    predictions = {rid: p for rid in finished["run_id"]
                   if (p := tracking.load_predictions(rid)) is not None}
    table = comparison.summarize(runs, predictions, n_boot=n_boot,
                                 expected_settings=expected_settings)
    paths = write_reports(table, Path(output_dir))
    with tracking.start_run(experiment_name, run_name="compare", tags={
            "stage": STAGE, "git_commit": tracking.git_commit()}) as run:
        tracking.log_params({"experiment_name": experiment_name, "parent_run_id": parent_run_id,
                             "n_runs": len(runs), "n_boot": n_boot, **(extra_params or {})})
        tracking.log_dict({"run_ids": runs["run_id"].tolist()}, "compared_runs.json")
        for path in paths.values():
            tracking.log_artifact(path)
        for row in table.itertuples():
            if row.n_runs:
                tracking.log_metrics({f"accuracy_mean/{row.setting}": row.accuracy_mean,
                                      f"n_runs/{row.setting}": row.n_runs})
        return run.info.run_id
