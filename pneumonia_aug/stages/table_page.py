"""Table 1 in the UI: how the description of a run holding its files (the compare run, and the
study that ran it) begins. The UI shows a description's first lines only, until "Show more",
and draws a Markdown table without borders or padding: so it leads with links to the forest
plot and the whole table, then the table in short as aligned text, then the forest plot
itself, in place; the scale line after them says what the numbers can stand for."""

from __future__ import annotations

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.contract import FOREST_PLOT, TABLE_HTML
from pneumonia_aug.evaluation.report_text import aligned, summary

WIDTH = 100  # characters of the short table's lines (wider tables wrap into blocks)


def lead(table: pd.DataFrame, scale_line: str, experiment_id: str, run_id: str,
         other: str = "") -> str:
    """Markdown: the files of run `run_id` linked and shown; `other`: a further link (the
    compare run, on a study's page)."""
    links = [f"[forest plot]({tracking.artifact_page(experiment_id, run_id, FOREST_PLOT)})",
             f"[whole table]({tracking.artifact_page(experiment_id, run_id, TABLE_HTML)})"]
    n_runs = int(table["n_runs"].sum())
    return (f"**Table 1** ({len(table)} settings, {n_runs} finished classifier runs): "
            + " · ".join([*links, other] if other else links) + "\n\n```text\n"
            + "\n".join(aligned(summary(table), WIDTH)) + "\n```\n\n"
            f"![forest plot: each GAN setting minus its Original]"
            f"({tracking.artifact_file(run_id, FOREST_PLOT)})\n\n{scale_line.strip()}")
