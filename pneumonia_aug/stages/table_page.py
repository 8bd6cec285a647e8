"""Table 1 in the UI: how the description of a run holding its files (the compare run, and the
study that ran it) begins. The UI shows a description's first two lines only, until "Show
more", under a fade that takes the clicks off all but the first line, and draws a Markdown
table without borders or padding: so its first line links the forest plot and the whole
table, then come the table in short as aligned text and the forest plot itself, in place; the
scale line after them says what the numbers can stand for."""

from __future__ import annotations

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.contract import FOREST_PLOT, TABLE_HTML
from pneumonia_aug.evaluation.report_text import aligned, summary

WIDTH = 100  # characters of the short table's lines (wider tables wrap into blocks)


def lead(table: pd.DataFrame, scale_line: str, experiment_id: str, run_id: str,
         head: str = "", other: str = "", then: str = "") -> str:
    """Markdown: `head` (default: what the table holds), the files of run `run_id` linked,
    `other` (a further link) after them; a paragraph `then` below that line; then the table
    and the forest plot."""
    links = [f"[forest plot]({tracking.artifact_page(experiment_id, run_id, FOREST_PLOT)})",
             f"[whole table]({tracking.artifact_page(experiment_id, run_id, TABLE_HTML)})"]
    head = head or (f"**Table 1** ({len(table)} settings, {int(table['n_runs'].sum())} "
                    "finished classifier runs)")
    return (f"{head}: " + " · ".join([*links, other] if other else links)
            + (f"\n\n{then}" if then else "") + "\n\n```text\n"
            + "\n".join(aligned(summary(table), WIDTH)) + "\n```\n\n"
            f"![forest plot: each GAN setting minus its Original]"
            f"({tracking.artifact_file(run_id, FOREST_PLOT)})\n\n{scale_line.strip()}")
