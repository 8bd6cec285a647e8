"""Table 1 as plain text: aligned columns that fit a width, for a terminal (`compare`,
`study`) and for the UI's descriptions, whose Markdown tables are drawn without borders or
padding; and the short table a study's description leads with.

Pure presentation, like `report`: of the Markdown `report.to_markdown` writes, and of the frame
`evaluation.table.summarize` returns (or its CSV, read back).
"""

from __future__ import annotations

import re
import textwrap

import pandas as pd

from pneumonia_aug.evaluation.intervals import SEEDS, TEST_SET, is_interim
from pneumonia_aug.settings import parse_setting

GAP = "  "  # between columns


def aligned(rows: list[list[str]], width: int) -> list[str]:
    """`rows` (the first one the header) as lines of left-aligned columns, a rule under the
    header. Wider than `width`: the columns in blocks that fit, each repeating the first
    column, one block under the other."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    blocks, block = [], [0]
    for i in range(1, len(widths)):
        if block[1:] and sum(widths[j] + len(GAP) for j in [*block, i]) > width:
            blocks.append(block)
            block = [0]
        block.append(i)
    blocks.append(block)
    lines = []
    for number, columns in enumerate(blocks):
        if number:
            lines.append("")
        for r, row in enumerate(rows):
            lines.append(GAP.join(row[i].ljust(widths[i]) for i in columns).rstrip())
            if r == 0:
                lines.append(GAP.join("-" * widths[i] for i in columns))
    return lines


def _cells(line: str) -> list[str]:
    cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())]
    return cells[1:-1]


def markdown_to_text(markdown: str, width: int) -> str:
    """The Markdown of `report.to_markdown` (paragraphs, bold titles, tables, a list) as plain
    text no wider than `width` where a column allows: paragraphs wrapped, tables aligned."""
    out, table = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):  # not the rule under the header
                table.append(_cells(line))
            continue
        if table:
            out += aligned(table, width)
            table = []
        text = line.replace("**", "")
        indent = "  " if text.startswith("- ") else ""
        out += textwrap.wrap(text, width, subsequent_indent=indent) or [""]
    return "\n".join(out).strip() + "\n"


def _accuracy(row: pd.Series) -> str:
    if pd.isna(row["accuracy_mean"]):
        return "-"
    std = row["accuracy_std"]
    return f"{row['accuracy_mean']:.3f}" + (f" ± {std:.3f}" if pd.notna(std) else "")


def _delta(row: pd.Series) -> str:
    delta = row["delta_accuracy"]
    if pd.isna(delta):
        return ""
    lo, hi = row["delta_accuracy_ci_low"], row["delta_accuracy_ci_high"]
    text = f"{delta:+.3f}" + (f" [{lo:+.3f}, {hi:+.3f}]" if pd.notna(lo) else "")
    if row["interval"] == TEST_SET:
        return text + " test set only"
    p = row["delta_accuracy_p"]
    decides = row["interval"] == SEEDS and pd.notna(p) and not is_interim(row)
    return text + (f" p {p:.3f}" if decides else "")


def summary(table: pd.DataFrame) -> list[list[str]]:
    """Table 1 in five columns (header first): the setting, its finished runs, our test
    accuracy (mean ± SD over seeds), the paper's, and a GAN row's difference from its
    Original at the same r with its 95% interval (over seeds, or over the test set only)."""
    rows = [["setting", "runs", "accuracy", "paper", "Δ accuracy vs Original [95% CI]"]]
    for _, row in table.iterrows():
        gan = parse_setting(row["setting"]).gan
        paper = row["paper_accuracy"]
        rows.append([row["setting"], str(int(row["n_runs"])), _accuracy(row),
                     "" if pd.isna(paper) else f"{paper:.3f}", _delta(row) if gan else ""])
    return rows
